import Testing

@testable import RaftCore

/// A peer's message that no correct peer sends is refused and counted; it never traps the node
/// or reaches its log.
@Suite("Hostile peer input")
struct HostileInputTests {
    static func follower() -> RaftNode {
        let clock = ManualClock()
        return RaftNode(
            id: 1, settings: .testing(), bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            clock: clock.raftClock, random: SplitMix64(seed: 1)
        )
    }

    static func append(_ entries: [LogEntry], previous: LogPosition = LogPosition(term: 0, index: 0)) -> RaftMessage {
        RaftMessage(
            from: 2, to: 1, term: 1,
            body: .appendEntries(AppendEntries(previous: previous, entries: entries, leaderCommit: 0, round: 1))
        )
    }

    @Test(arguments: [MembershipChange.promoteLearner(9), .remove(7), .addLearner(2)])
    func membershipChangeThatDoesNotFitIsRefused(change: MembershipChange) {
        var node = Self.follower()
        let directives = node.receive(
            Self.append([
                LogEntry(term: 1, index: 1, payload: .leaderNoop),
                LogEntry(term: 1, index: 2, payload: .membership(change)),
            ])
        )
        #expect(node.refusedMessages == 1)
        #expect(node.lastRefusal?.contains("\(change)") == true, "\(node.lastRefusal ?? "")")
        #expect(node.lastIndex == 1, "the valid prefix may stay; the bad entry must not")
        #expect(node.configuration == ClusterConfiguration(voters: [1, 2, 3]))
        #expect(node.integrityFailures.isEmpty)
        #expect(!directives.contains { if case .send = $0 { return true } else { return false } }, "no acknowledgement")
    }

    @Test func entriesThatSkipAnIndexAreRefused() {
        var node = Self.follower()
        _ = node.receive(
            Self.append([
                LogEntry(term: 1, index: 1, payload: .leaderNoop), LogEntry(term: 1, index: 3, payload: .leaderNoop),
            ])
        )
        #expect(node.refusedMessages == 1)
        #expect(node.lastIndex == 0)
    }
}
