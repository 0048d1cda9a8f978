/// The state that must survive a crash before the node may act on it (Raft figure 2's
/// "persistent state on all servers", plus the commit index as a restart hint).
public struct HardState: Hashable, Sendable, CustomStringConvertible {
    public var term: Term
    public var votedFor: NodeID?
    /// Not needed for safety (it can be re-learned) but lets a restarted node apply at once.
    public var commit: LogIndex

    public init(term: Term = 0, votedFor: NodeID? = nil, commit: LogIndex = 0) {
        self.term = term
        self.votedFor = votedFor
        self.commit = commit
    }

    public var description: String { "term \(term) vote \(votedFor.map(\.description) ?? "-") commit \(commit)" }
}

public struct SnapshotMetadata: Hashable, Sendable {
    /// The last entry the snapshot covers.
    public var last: LogPosition
    /// The configuration in effect at `last.index`.
    public var configuration: ClusterConfiguration

    public init(last: LogPosition, configuration: ClusterConfiguration) {
        self.last = last
        self.configuration = configuration
    }
}

/// The application state as of `metadata.last`, opaque to the core.
public struct Snapshot: Hashable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// Identifies one storage write. Writes are carried out and acknowledged in order, so an
/// acknowledgement of write `n` says every write up to `n` is durable.
public struct StorageWriteID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "w\(rawValue)" }
}

/// One durable write the node asks for. Storage applies the parts in this order, atomically:
/// install `snapshot` (discarding log entries it covers), delete every entry at or after
/// `truncateFrom`, append `entries`, store `hardState`.
/// Then it reports `persisted(id)`; until then the node holds back every message whose promise
/// depends on the write (see `doc/consensus.md`, "what is persisted when").
public struct StorageWrite: Hashable, Sendable, CustomStringConvertible {
    public var id: StorageWriteID
    public var hardState: HardState?
    public var snapshot: Snapshot?
    public var truncateFrom: LogIndex?
    public var entries: [LogEntry]

    public init(
        id: StorageWriteID,
        hardState: HardState? = nil,
        snapshot: Snapshot? = nil,
        truncateFrom: LogIndex? = nil,
        entries: [LogEntry] = []
    ) {
        self.id = id
        self.hardState = hardState
        self.snapshot = snapshot
        self.truncateFrom = truncateFrom
        self.entries = entries
    }

    public var description: String {
        var parts = ["\(id)"]
        if let hardState { parts.append("hs(\(hardState))") }
        if let snapshot { parts.append("snapshot \(snapshot.metadata.last)") }
        if let truncateFrom { parts.append("truncate≥\(truncateFrom)") }
        if let first = entries.first, let last = entries.last { parts.append("entries \(first.index)…\(last.index)") }
        return parts.joined(separator: " ")
    }
}

/// What a node finds in its storage when it starts: everything the acknowledged writes put there.
public struct DurableState: Hashable, Sendable {
    public var hardState: HardState
    public var snapshot: Snapshot?
    /// Entries after the snapshot, contiguous.
    public var entries: [LogEntry]

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [LogEntry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }

    /// A reference implementation of the write contract, used by the simulator and tests; the
    /// SQLite journal implements the same contract.
    public mutating func apply(_ write: StorageWrite) {
        if let snap = write.snapshot {
            snapshot = snap
            entries.removeAll { $0.index <= snap.metadata.last.index }
        }
        if let from = write.truncateFrom {
            entries.removeAll { $0.index >= from }
        }
        if !write.entries.isEmpty {
            if let last = entries.last {
                precondition(
                    write.entries[0].index == last.index + 1,
                    "write \(write) does not continue the durable log ending at \(last.position)"
                )
            }
            entries.append(contentsOf: write.entries)
        }
        if let hs = write.hardState { hardState = hs }
    }
}
