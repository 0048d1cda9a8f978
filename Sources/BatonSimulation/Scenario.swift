@_spi(Testing) public import RaftCore

/// What a scripted scenario may look at between steps.
public struct NodeView: Sendable {
    public var id: NodeID
    public var isRunning: Bool
    public var role: RaftRole?
    public var term: Term
    public var lastLog: LogPosition
    public var commitIndex: LogIndex
    public var holdsLease: Bool
}

/// One step of a scripted scenario: the same world as a seeded run (random delays and disk
/// latencies from the seed, every property checked after every event), but the faults are
/// chosen by the script. Used to drive the cluster into a known-hard corner such as figure 8.
public enum ScenarioStep: Sendable {
    /// Let simulated time pass.
    case run(Duration)
    /// Let time pass until the condition holds, failing the scenario after `timeout`.
    case runUntil(String, timeout: Duration, @Sendable ([NodeView]) -> Bool)
    /// Block these directed links until `heal` with the same label.
    case block(String, [(from: NodeID, to: NodeID)])
    /// Pass every message through `rewrite` until `heal` with the same label: nil drops it.
    /// A rewrite must leave a message its sender could have sent (for example an append with
    /// fewer trailing entries, as a smaller batch would have been).
    case intercept(String, @Sendable (RaftMessage) -> RaftMessage?)
    case heal(String)
    case crash(NodeID)
    case restart(NodeID)
    /// Propose commands at whichever running node leads in the newest term.
    case propose(count: Int)

    /// Drop every message the predicate selects until `heal` with the same label.
    public static func drop(_ label: String, _ predicate: @escaping @Sendable (RaftMessage) -> Bool) -> ScenarioStep {
        .intercept(label) { predicate($0) ? nil : $0 }
    }

    /// Cut each append the predicate selects just before its first entry that `entry` selects.
    public static func truncateAppends(
        _ label: String,
        where selects: @escaping @Sendable (RaftMessage) -> Bool,
        before entry: @escaping @Sendable (LogEntry) -> Bool
    ) -> ScenarioStep {
        .intercept(label) { message in
            guard selects(message), case .appendEntries(var append) = message.body,
                let cut = append.entries.firstIndex(where: entry)
            else { return message }
            append.entries.removeSubrange(cut...)
            var rewritten = message
            rewritten.body = .appendEntries(append)
            return rewritten
        }
    }

    /// Every link between `members`, except those touching `center`, blocked: only `center` can
    /// collect a quorum of votes among them.
    public static func star(_ label: String, center: NodeID, among members: [NodeID]) -> ScenarioStep {
        let others = members.filter { $0 != center }
        var links: [(from: NodeID, to: NodeID)] = []
        for a in others { for b in others where a != b { links.append((a, b)) } }
        return .block(label, links)
    }

    /// Every link between `node` and `others`, both ways, blocked.
    public static func isolate(_ label: String, _ node: NodeID, from others: [NodeID]) -> ScenarioStep {
        .block(label, others.filter { $0 != node }.flatMap { [(from: node, to: $0), (from: $0, to: node)] })
    }
}

public struct ScenarioOutcome: Sendable {
    /// The first property the world broke, if any.
    public var violation: Violation?
    /// The step that could not complete (a `runUntil` that timed out), if any.
    public var stuckAt: String?
    public var steps: Int
    public var trace: [String]
}
