internal import Crypto
public import RaftCore

/// The SHA-256 hash chain that makes the Raft log tamper-evident.
///
/// Every log row stores `chain = SHA256(previous ‖ be64(term) ‖ be64(index) ‖ kind ‖ body)`, where
/// `previous` is the chain of the entry before it, or the snapshot's chain when the entry follows
/// the snapshot, or 32 zero bytes (`genesis`) for index 1. `kind` is one byte (0 no-op,
/// 1 command, 2 membership change) and `body` the command bytes, the membership change in its
/// stored text form, or nothing for a no-op. Because each link covers its predecessor, changing
/// any stored entry breaks every link after it, and `RaftJournal.verify` finds the first one.
public enum LogChain {
    /// The chain "before" index 1.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// The chain of `entry`, given the chain of the entry (or snapshot) just before it.
    public static func link(previous: [UInt8], entry: LogEntry) -> [UInt8] {
        let stored = StoredPayload(entry.payload)
        return link(previous: previous, term: entry.term, index: entry.index, kind: stored.kind, body: stored.body)
    }

    static func link(previous: [UInt8], term: Term, index: LogIndex, kind: UInt8, body: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        withUnsafeBytes(of: term.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: index.bigEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(data: [kind])
        hasher.update(data: body)
        return Array(hasher.finalize())
    }

    /// The chain of a snapshot that this journal cannot link to its own log (a leader sent it, and
    /// we do not hold the entry it ends at). It starts a new chain segment that commits to the
    /// snapshot's position and contents; `verify` checks the log from there on. The domain byte 3
    /// keeps it from ever equalling an entry's link.
    static func anchor(for snapshot: Snapshot) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("baton.snapshot".utf8))
        withUnsafeBytes(of: snapshot.metadata.last.term.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: snapshot.metadata.last.index.bigEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(data: [3])
        hasher.update(data: snapshot.data)
        return Array(hasher.finalize())
    }
}

/// How a log entry's payload is laid out in the `raft_log` row (`kind`, `payload`, `membership`).
struct StoredPayload {
    static let noop: UInt8 = 0
    static let command: UInt8 = 1
    static let membership: UInt8 = 2

    var kind: UInt8
    /// The command bytes (`payload` column), if a command.
    var command: [UInt8]?
    /// The membership change as text (`membership` column), if a membership change.
    var membershipText: String?

    init(_ payload: LogEntry.Payload) {
        switch payload {
        case .leaderNoop:
            kind = Self.noop
        case .command(let bytes):
            kind = Self.command
            command = bytes
        case .membership(let change):
            kind = Self.membership
            membershipText = MembershipText.encode(change)
        }
    }

    init(kind: UInt8, command: [UInt8]?, membershipText: String?) {
        self.kind = kind
        self.command = command
        self.membershipText = membershipText
    }

    /// The bytes the chain covers after the kind byte.
    var body: [UInt8] {
        switch kind {
        case Self.command: return command ?? []
        case Self.membership: return Array((membershipText ?? "").utf8)
        default: return []
        }
    }

    enum Decoded {
        case payload(LogEntry.Payload)
        /// What is wrong with the row.
        case unreadable(String)
    }

    func decoded() -> Decoded {
        switch kind {
        case Self.noop:
            return .payload(.leaderNoop)
        case Self.command:
            // SQLite cannot tell an empty BLOB from NULL once bound, so an empty command reads back as NULL.
            return .payload(.command(command ?? []))
        case Self.membership:
            guard let text = membershipText, let change = MembershipText.decode(text) else {
                return .unreadable("membership change \(membershipText.map { "'\($0)'" } ?? "NULL") is not readable")
            }
            return .payload(.membership(change))
        default:
            return .unreadable("unknown entry kind \(kind) (0 no-op, 1 command, 2 membership)")
        }
    }
}

/// Text forms stored in TEXT columns, readable with the sqlite3 shell during an incident.
enum MembershipText {
    static func encode(_ change: MembershipChange) -> String {
        switch change {
        case .addLearner(let id, nil): return "add-learner:\(id.rawValue)"
        // The address last: it may itself contain ':' (host:port, an IPv6 literal).
        case .addLearner(let id, let address?): return "add-learner:\(id.rawValue):\(address)"
        case .promoteLearner(let id): return "promote-learner:\(id.rawValue)"
        case .remove(let id): return "remove:\(id.rawValue)"
        }
    }

    static func decode(_ text: String) -> MembershipChange? {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let raw = UInt64(parts[1]) else { return nil }
        if parts.count == 3 {
            guard parts[0] == "add-learner", !parts[2].isEmpty else { return nil }
            return .addLearner(NodeID(raw), address: String(parts[2]))
        }
        switch parts[0] {
        case "add-learner": return .addLearner(NodeID(raw))
        case "promote-learner": return .promoteLearner(NodeID(raw))
        case "remove": return .remove(NodeID(raw))
        default: return nil
        }
    }

    /// Member addresses as lines of `id=host:port`, sorted by id (an address holds neither '\n'
    /// nor '='; the admin plane refuses one that does); empty for none.
    static func encode(_ addresses: [NodeID: String]) -> String {
        addresses.sorted { $0.key < $1.key }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: "\n")
    }

    static func decodeAddresses(_ text: String) -> [NodeID: String]? {
        if text.isEmpty { return [:] }
        var addresses: [NodeID: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let raw = UInt64(parts[0]), !parts[1].isEmpty else { return nil }
            addresses[NodeID(raw)] = String(parts[1])
        }
        return addresses
    }

    /// Node ids as sorted, comma-separated decimals ("1,2,3"); empty for no nodes.
    static func encode(_ nodes: Set<NodeID>) -> String {
        nodes.sorted().map { String($0.rawValue) }.joined(separator: ",")
    }

    static func decodeNodes(_ text: String) -> Set<NodeID>? {
        if text.isEmpty { return [] }
        var nodes = Set<NodeID>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let raw = UInt64(part) else { return nil }
            nodes.insert(NodeID(raw))
        }
        return nodes
    }
}
