import RaftCore

/// A broken safety or liveness property, with where and when it was seen.
public struct Violation: Sendable, CustomStringConvertible {
    public enum Property: String, Sendable, CaseIterable {
        case electionSafety = "election safety"
        case leaderAppendOnly = "leader append-only"
        case logMatching = "log matching"
        case leaderCompleteness = "leader completeness"
        case stateMachineSafety = "state-machine safety"
        case leaseExclusivity = "lease exclusivity"
        case nodeIntegrity = "node integrity"
        case liveness
        // The trading simulator's properties.
        case duplicateExecution = "no ClOrdID executed twice"
        case executionWithoutIntent = "every execution has a committed intent"
        case intentLost = "no committed intent lost"
        case positionsDiverge = "positions equal the broker's fills"
        case sessionExclusivity = "one replica on the broker session"
    }

    public var property: Property
    public var detail: String
    public var step: Int
    public var time: Duration

    public var description: String { "\(property.rawValue) violated at step \(step) (t=\(time)): \(detail)" }
}

/// Checks Raft's safety properties incrementally, after every step of the simulated world.
///
/// Each check is the property itself, not a proxy: every entry any node writes is registered by
/// (index, term) with its predecessor's term and payload, so two logs that disagree anywhere below
/// a shared (index, term) are caught as soon as one of them is written (log matching); every
/// index any node commits or applies must hold the same entry everywhere (state-machine safety);
/// a new leader must hold every committed entry (leader completeness).
struct InvariantChecker {
    private struct EntryFacts: Equatable {
        var previousTerm: Term
        var payload: LogEntry.Payload
    }

    private var leaderOfTerm: [Term: NodeID] = [:]
    private var entries: [LogPosition: EntryFacts] = [:]
    private var committed: [LogIndex: LogEntry] = [:]
    private(set) var highestCommitted: LogIndex = 0
    /// The highest index committed by the leader of each term. Leader completeness speaks of
    /// leaders of later terms only: a stale leader of an older term may lack newer commits.
    private var highestCommittedInTerm: [Term: LogIndex] = [:]
    private var seenCommit: [NodeID: LogIndex] = [:]
    private var seenIntegrityFailures: [NodeID: Int] = [:]

    /// Called with the directives of one node's step and the node after it.
    mutating func observe(
        node: RaftNode,
        before: (role: RaftRole, term: Term, lastIndex: LogIndex),
        directives: [RaftDirective]
    ) -> (Violation.Property, String)? {
        let id = node.id
        for directive in directives {
            switch directive {
            case .roleChanged(.leader, let term):
                if let other = leaderOfTerm[term], other != id {
                    return (.electionSafety, "\(id) and \(other) both became leader of term \(term)")
                }
                leaderOfTerm[term] = id
                if let problem = checkLeaderCompleteness(node) { return (.leaderCompleteness, problem) }
            case .persist(let write):
                if before.role == .leader, node.role == .leader, node.term == before.term,
                    let from = write.truncateFrom, from <= before.lastIndex
                {
                    return (
                        .leaderAppendOnly,
                        "leader \(id) of term \(node.term) rewrote its log from \(from) (it ended at \(before.lastIndex))"
                    )
                }
                if let problem = registerWritten(write.entries, node: node) { return (.logMatching, problem) }
            case .refused(let peer, let reason):
                // Every node in the simulator runs the same code: a refusal means the screening
                // is stricter than what correct peers send (or a defect made a peer incorrect).
                return (.nodeIntegrity, "\(id) refused a message from \(peer): \(reason)")
            case .apply(let applied):
                for entry in applied {
                    if let problem = registerCommitted(entry, by: id, inTerm: node.term, what: "applied") {
                        return (.stateMachineSafety, problem)
                    }
                }
            default:
                break
            }
        }
        let seen = seenCommit[id] ?? 0
        if node.commitIndex > seen {
            var index = max(seen, node.snapshotIndex) + 1
            while index <= node.commitIndex {
                if let entry = node.entry(at: index),
                    let problem = registerCommitted(entry, by: id, inTerm: node.term, what: "committed")
                {
                    return (.stateMachineSafety, problem)
                }
                index += 1
            }
        }
        seenCommit[id] = node.commitIndex
        if node.integrityFailures.count > seenIntegrityFailures[id, default: 0] {
            seenIntegrityFailures[id] = node.integrityFailures.count
            return (.nodeIntegrity, "\(id): \(node.integrityFailures.last!)")
        }
        return nil
    }

    /// A restarted node starts over from what storage kept.
    mutating func restarted(_ node: RaftNode) {
        seenCommit[node.id] = node.commitIndex
    }

    private mutating func registerWritten(_ written: [LogEntry], node: RaftNode) -> String? {
        for entry in written {
            guard let previousTerm = node.term(at: entry.index - 1) else { continue }
            let facts = EntryFacts(previousTerm: previousTerm, payload: entry.payload)
            if let known = entries[entry.position] {
                if known != facts {
                    return
                        "\(node.id) wrote \(entry) after term \(previousTerm), but another log holds \(entry.position) "
                        + "with \(known.payload) after term \(known.previousTerm)"
                }
            } else {
                entries[entry.position] = facts
            }
        }
        return nil
    }

    private mutating func registerCommitted(_ entry: LogEntry, by id: NodeID, inTerm term: Term, what: String)
        -> String?
    {
        if let known = committed[entry.index] {
            if known != entry {
                return "\(id) \(what) \(entry) at index \(entry.index), but \(known) was committed there"
            }
            return nil
        }
        committed[entry.index] = entry
        highestCommitted = max(highestCommitted, entry.index)
        highestCommittedInTerm[term] = max(highestCommittedInTerm[term] ?? 0, entry.index)
        return nil
    }

    private func checkLeaderCompleteness(_ leader: RaftNode) -> String? {
        // Entries committed in earlier terms form a prefix of the log; the new leader needs all of it.
        let required = highestCommittedInTerm.lazy.filter { $0.key < leader.term }.map(\.value).max() ?? 0
        guard required > leader.snapshotIndex else { return nil }
        if leader.lastIndex < required {
            return
                "new leader \(leader.id) of term \(leader.term) ends at \(leader.lastIndex) but \(required) was committed in an earlier term"
        }
        var index = leader.snapshotIndex + 1
        while index <= required {
            if let known = committed[index], leader.entry(at: index) != known {
                let has = leader.entry(at: index).map(\.description) ?? "nothing"
                return
                    "new leader \(leader.id) of term \(leader.term) holds \(has) at \(index), but \(known) is committed"
            }
            index += 1
        }
        return nil
    }
}
