/// What a node asks its shell to do. The shell carries directives out in the order given:
/// `persist` is handed to storage (which may finish it later and then reports `persisted`),
/// `send` goes to the transport, `restoreSnapshot` and `apply` go to the state machine.
public enum RaftDirective: Hashable, Sendable, CustomStringConvertible {
    /// Make this durable, then call `persisted(write.id)`. Writes must complete in order.
    case persist(StorageWrite)
    /// Deliver this message. Every message handed out here may already be sent: messages that
    /// depend on a pending write are held inside the node until the write is acknowledged.
    case send(RaftMessage)
    /// Replace the state machine with this snapshot (it was received from the leader).
    case restoreSnapshot(Snapshot)
    /// Apply these committed entries to the state machine, in order. They are durable here.
    case apply([LogEntry])
    /// The node's role changed (also sent on a new term in the same role).
    case roleChanged(RaftRole, term: Term)
    /// The node learned of a new leader, or lost track of the leader (`nil`).
    case leaderChanged(NodeID?, term: Term)
    /// A message from `peer` was refused because no correct peer sends it (an impossible term,
    /// index or claim). Nothing of it was applied. The shell counts it, logs it (rate-limited)
    /// and drops the connection the frame came on.
    case refused(NodeID, reason: String)

    public var description: String {
        switch self {
        case .persist(let w): return "persist \(w)"
        case .send(let m): return "send \(m)"
        case .restoreSnapshot(let s): return "restore snapshot \(s.metadata.last)"
        case .apply(let entries):
            return "apply \(entries.first?.index ?? 0)…\(entries.last?.index ?? 0)"
        case .roleChanged(let role, let term): return "role \(role) t\(term)"
        case .leaderChanged(let leader, let term): return "leader \(leader.map(\.description) ?? "none") t\(term)"
        case .refused(let peer, let reason): return "refused \(peer): \(reason)"
        }
    }
}

public enum RaftRole: String, Hashable, Sendable {
    case follower
    /// Asking for pre-votes: would a quorum vote for it? Its term has not moved yet.
    case preCandidate = "pre-candidate"
    case candidate
    case leader
}

/// The result of an accepted proposal: where the entries will sit if they commit, and what the
/// node wants done now. The position alone does not mean committed; watch `apply`.
public struct Proposal: Sendable {
    public var positions: [LogPosition]
    public var directives: [RaftDirective]
}

public enum ProposalRejection: Error, Hashable, Sendable, CustomStringConvertible {
    case notLeader(knownLeader: NodeID?)
    case leadershipTransferInProgress(to: NodeID)
    /// A membership change is in the log but not committed yet; one change at a time.
    case membershipChangePending(index: LogIndex)
    /// A new leader must commit an entry of its own term before it may change membership.
    case leaderNotYetCommittedInTerm
    case invalidMembershipChange(MembershipError)
    case learnerNotCaughtUp(NodeID, lag: LogIndex)
    case cannotRemoveLeader
    /// After the change, fewer voters than a quorum would be answering the leader.
    case wouldLoseQuorum(active: Int, needed: Int, voters: Int)
    case emptyProposal

    public var description: String {
        switch self {
        case .notLeader(let leader): return "not the leader (leader: \(leader.map(\.description) ?? "unknown"))"
        case .leadershipTransferInProgress(let to): return "leadership transfer to \(to) in progress"
        case .membershipChangePending(let index): return "membership change at \(index) not committed yet"
        case .leaderNotYetCommittedInTerm: return "new leader has not committed an entry of its term yet"
        case .invalidMembershipChange(let e): return "invalid membership change: \(e)"
        case .learnerNotCaughtUp(let id, let lag):
            return "learner \(id) is \(lag) entries behind; promote it once caught up"
        case .cannotRemoveLeader: return "cannot remove the leader; transfer leadership first"
        case .wouldLoseQuorum(let active, let needed, let voters):
            return "refused: after the change \(active) of \(voters) voters would be answering, fewer than the quorum of \(needed); bring the others back first"

        case .emptyProposal: return "nothing to propose"
        }
    }
}

public enum TransferRejection: Error, Hashable, Sendable, CustomStringConvertible {
    case notLeader(knownLeader: NodeID?)
    case targetIsSelf
    case targetNotAVoter(NodeID)
    case noCandidate

    public var description: String {
        switch self {
        case .notLeader(let leader): return "not the leader (leader: \(leader.map(\.description) ?? "unknown"))"
        case .targetIsSelf: return "already the leader"
        case .targetNotAVoter(let id): return "\(id) is not a voter"
        case .noCandidate: return "no other voter to transfer to"
        }
    }
}

public enum CompactionError: Error, Hashable, Sendable, CustomStringConvertible {
    case notApplied(requested: LogIndex, applied: LogIndex)
    case alreadyCompacted(requested: LogIndex, snapshot: LogIndex)

    public var description: String {
        switch self {
        case .notApplied(let r, let a): return "cannot snapshot through \(r): only \(a) is applied"
        case .alreadyCompacted(let r, let s):
            return "cannot snapshot through \(r): the log is already compacted through \(s)"
        }
    }
}

/// A leader's view of one member, for `/cluster` and the simulator.
public struct MemberProgress: Hashable, Sendable {
    public var id: NodeID
    public var isVoter: Bool
    public var match: LogIndex
    public var next: LogIndex
    public var state: String
    public var recentlyActive: Bool
}
