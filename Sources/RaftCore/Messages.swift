/// A message between two replicas. The transport frames and delivers it; the core never assumes
/// that a message arrives, arrives once, or arrives in order.
public struct RaftMessage: Hashable, Sendable, CustomStringConvertible {
    public var from: NodeID
    public var to: NodeID
    /// The sender's term, except for pre-vote traffic, which speaks of the term a pre-candidate
    /// would campaign in without having moved to it.
    public var term: Term
    public var body: Body

    public init(from: NodeID, to: NodeID, term: Term, body: Body) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }

    public enum Body: Hashable, Sendable {
        case appendEntries(AppendEntries)
        case appendEntriesResponse(AppendEntriesResponse)
        case heartbeat(Heartbeat)
        case heartbeatResponse(HeartbeatResponse)
        case requestVote(RequestVote)
        case requestVoteResponse(RequestVoteResponse)
        case installSnapshot(InstallSnapshot)
        /// The leader tells a caught-up follower to campaign at once (leadership transfer).
        case timeoutNow
    }

    /// Roughly how many bytes the message holds, for byte-bounded queues (entries and snapshot
    /// data dominate; the rest is counted as a fixed overhead).
    public var approximateSize: Int {
        switch body {
        case .appendEntries(let append): return 64 + append.entries.reduce(0) { $0 + $1.approximateSize }
        case .installSnapshot(let install):
            return 64 + install.snapshot.data.count + 16 * install.snapshot.metadata.configuration.members.count
        default: return 64
        }
    }

    /// Whether the message comes from a leader to its followers (and so proves the leader alive).
    public var isFromLeader: Bool {
        switch body {
        case .appendEntries, .heartbeat, .installSnapshot, .timeoutNow: return true
        default: return false
        }
    }

    public var description: String {
        let kind: String
        switch body {
        case .appendEntries(let m):
            kind = "append(prev \(m.previous), \(m.entries.count) entries, commit \(m.leaderCommit), round \(m.round))"
        case .appendEntriesResponse(let m):
            kind =
                m.rejected
                ? "append-reject(\(m.index), hint \(m.rejectHint), round \(m.round))"
                : "append-ok(\(m.index), round \(m.round))"
        case .heartbeat(let m): kind = "heartbeat(commit \(m.leaderCommit), round \(m.round))"
        case .heartbeatResponse(let m): kind = "heartbeat-ok(round \(m.round))"
        case .requestVote(let m):
            kind =
                "\(m.isPreVote ? "pre-vote" : "vote")(last \(m.lastLog)\(m.isLeadershipTransfer ? ", transfer" : ""))"
        case .requestVoteResponse(let m):
            kind = "\(m.isPreVote ? "pre-vote" : "vote")-\(m.granted ? "granted" : "rejected")"
        case .installSnapshot(let m): kind = "snapshot(\(m.snapshot.metadata.last), round \(m.round))"
        case .timeoutNow: kind = "timeout-now"
        }
        return "\(from)→\(to) t\(term) \(kind)"
    }
}

public struct AppendEntries: Hashable, Sendable {
    /// The entry immediately before `entries`; the follower must hold it to accept.
    public var previous: LogPosition
    public var entries: [LogEntry]
    public var leaderCommit: LogIndex
    /// The leader's heartbeat round when this was sent; echoed back, it dates the follower's ack
    /// for the leader lease.
    public var round: UInt64

    public init(previous: LogPosition, entries: [LogEntry], leaderCommit: LogIndex, round: UInt64) {
        self.previous = previous
        self.entries = entries
        self.leaderCommit = leaderCommit
        self.round = round
    }
}

public struct AppendEntriesResponse: Hashable, Sendable {
    /// On success, the follower's last index known to match the leader's log (and durable).
    /// On rejection, the `previous.index` that did not match.
    public var index: LogIndex
    public var rejected: Bool
    /// On rejection, where the leader should look next: the follower's last index at or below
    /// `index` whose term is at most `rejectHintTerm` (fast back-tracking, thesis §5.3).
    public var rejectHint: LogPosition
    public var round: UInt64

    public init(
        index: LogIndex, rejected: Bool, rejectHint: LogPosition = LogPosition(term: 0, index: 0), round: UInt64
    ) {
        self.index = index
        self.rejected = rejected
        self.rejectHint = rejectHint
        self.round = round
    }
}

public struct Heartbeat: Hashable, Sendable {
    /// The leader's commit index capped at what it knows this follower holds, so a follower never
    /// commits an entry it has not been shown to match.
    public var leaderCommit: LogIndex
    public var round: UInt64

    public init(leaderCommit: LogIndex, round: UInt64) {
        self.leaderCommit = leaderCommit
        self.round = round
    }
}

public struct HeartbeatResponse: Hashable, Sendable {
    public var round: UInt64
    public init(round: UInt64) { self.round = round }
}

public struct RequestVote: Hashable, Sendable {
    public var isPreVote: Bool
    public var lastLog: LogPosition
    /// Set when the campaign follows a TimeoutNow: voters then set aside the rule that they do
    /// not vote while they hear from a live leader, because that leader asked for this election.
    public var isLeadershipTransfer: Bool

    public init(isPreVote: Bool, lastLog: LogPosition, isLeadershipTransfer: Bool = false) {
        self.isPreVote = isPreVote
        self.lastLog = lastLog
        self.isLeadershipTransfer = isLeadershipTransfer
    }
}

public struct RequestVoteResponse: Hashable, Sendable {
    public var isPreVote: Bool
    public var granted: Bool

    public init(isPreVote: Bool, granted: Bool) {
        self.isPreVote = isPreVote
        self.granted = granted
    }
}

public struct InstallSnapshot: Hashable, Sendable {
    public var snapshot: Snapshot
    public var round: UInt64

    public init(snapshot: Snapshot, round: UInt64) {
        self.snapshot = snapshot
        self.round = round
    }
}
