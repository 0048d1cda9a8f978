/// One entry of the replicated log.
public struct LogEntry: Hashable, Sendable, CustomStringConvertible {
    public enum Payload: Hashable, Sendable {
        /// Appended by every new leader so that it can commit entries of earlier terms (Raft §5.4.2).
        case leaderNoop
        /// An opaque application command (an order intent, a fill, an admin action …).
        case command([UInt8])
        /// A one-server membership change; it takes effect as soon as it is in a log (thesis §4.1).
        case membership(MembershipChange)
    }

    public var term: Term
    public var index: LogIndex
    public var payload: Payload

    public init(term: Term, index: LogIndex, payload: Payload) {
        self.term = term
        self.index = index
        self.payload = payload
    }

    public var position: LogPosition { LogPosition(term: term, index: index) }

    /// The size used for flow control and batching: payload bytes plus a fixed header allowance.
    public var approximateSize: Int {
        switch payload {
        case .leaderNoop: return 24
        case .command(let bytes): return 24 + bytes.count
        case .membership: return 40
        }
    }

    public var description: String {
        switch payload {
        case .leaderNoop: return "\(position) noop"
        case .command(let bytes): return "\(position) cmd(\(bytes.count)B)"
        case .membership(let change): return "\(position) \(change)"
        }
    }
}

/// A change of one server's membership. Changing one server at a time keeps every majority of the
/// old configuration overlapping every majority of the new one, so no joint consensus is needed.
public enum MembershipChange: Hashable, Sendable, CustomStringConvertible {
    /// A new non-voting replica that receives the log but is not counted in any quorum, and the
    /// address its peers dial (`host:port`), which every member learns from the log. Without an
    /// address, the members' configured address book is used.
    case addLearner(NodeID, address: String? = nil)
    /// Make a caught-up learner a voter.
    case promoteLearner(NodeID)
    /// Remove a voter or a learner.
    case remove(NodeID)

    public var node: NodeID {
        switch self {
        case .addLearner(let id, _), .promoteLearner(let id), .remove(let id): return id
        }
    }

    public var description: String {
        switch self {
        case .addLearner(let id, let address): return "add-learner(\(id)\(address.map { "@\($0)" } ?? ""))"
        case .promoteLearner(let id): return "promote(\(id))"
        case .remove(let id): return "remove(\(id))"
        }
    }
}

/// The set of servers a cluster consists of at one point of the log.
public struct ClusterConfiguration: Hashable, Sendable, CustomStringConvertible {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>
    /// Peer addresses that membership changes carried (`host:port`), for members added after the
    /// cluster was configured. Not part of any quorum rule: where to dial, not who votes.
    public var addresses: [NodeID: String]

    public init(voters: Set<NodeID>, learners: Set<NodeID> = [], addresses: [NodeID: String] = [:]) {
        self.voters = voters
        self.learners = learners.subtracting(voters)
        let members = voters.union(learners)
        self.addresses = addresses.filter { members.contains($0.key) }
    }

    public var members: Set<NodeID> { voters.union(learners) }
    public var quorum: Int { voters.count / 2 + 1 }

    public func contains(_ id: NodeID) -> Bool { voters.contains(id) || learners.contains(id) }

    /// The configuration after `change`, or why the change is not allowed from this one.
    public func applying(_ change: MembershipChange) -> Result<ClusterConfiguration, MembershipError> {
        var next = self
        switch change {
        case .addLearner(let id, let address):
            guard !contains(id) else { return .failure(.alreadyMember(id)) }
            next.learners.insert(id)
            if let address { next.addresses[id] = address }
        case .promoteLearner(let id):
            guard learners.contains(id) else { return .failure(.notALearner(id)) }
            next.learners.remove(id)
            next.voters.insert(id)
        case .remove(let id):
            guard contains(id) else { return .failure(.notAMember(id)) }
            guard !(voters.contains(id) && voters.count == 1) else { return .failure(.wouldRemoveLastVoter(id)) }
            next.voters.remove(id)
            next.learners.remove(id)
            next.addresses[id] = nil
        }
        return .success(next)
    }

    /// Applies a change that is already in a log; logs only ever hold valid changes, so a failure
    /// here is a corrupted log and worth stopping for.
    func applyingCommittedToLog(_ change: MembershipChange) -> ClusterConfiguration {
        switch applying(change) {
        case .success(let next): return next
        case .failure(let error):
            preconditionFailure("log holds an invalid membership change \(change) for \(self): \(error)")
        }
    }

    public var description: String {
        let v = voters.sorted().map(\.description).joined(separator: ",")
        let l = learners.sorted().map(\.description).joined(separator: ",")
        return l.isEmpty ? "{\(v)}" : "{\(v) learners:\(l)}"
    }
}

public enum MembershipError: Error, Hashable, Sendable, CustomStringConvertible {
    case alreadyMember(NodeID)
    case notALearner(NodeID)
    case notAMember(NodeID)
    case wouldRemoveLastVoter(NodeID)

    public var description: String {
        switch self {
        case .alreadyMember(let id): return "\(id) is already a member"
        case .notALearner(let id): return "\(id) is not a learner; only learners can be promoted"
        case .notAMember(let id): return "\(id) is not a member"
        case .wouldRemoveLastVoter(let id): return "\(id) is the last voter and cannot be removed"
        }
    }
}
