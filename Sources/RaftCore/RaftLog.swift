/// The in-memory log of one node: a snapshot (possibly empty) followed by contiguous entries.
/// It also tracks the membership configuration in effect at every index after the snapshot,
/// because a configuration takes effect when it is appended, and is undone when it is truncated.
struct RaftLog: Sendable {
    private(set) var snapshot: SnapshotMetadata
    private(set) var entries: [LogEntry]
    /// Membership entries after the snapshot, in log order, with the configuration they produce.
    private var configurations: [(index: LogIndex, configuration: ClusterConfiguration)] = []

    init(snapshot: SnapshotMetadata, entries: [LogEntry]) {
        self.snapshot = snapshot
        self.entries = []
        for entry in entries { append(entry) }
    }

    var snapshotIndex: LogIndex { snapshot.last.index }
    var firstIndex: LogIndex { snapshotIndex + 1 }
    var lastIndex: LogIndex { snapshotIndex + LogIndex(entries.count) }
    var lastTerm: Term { entries.last?.term ?? snapshot.last.term }
    var lastPosition: LogPosition { LogPosition(term: lastTerm, index: lastIndex) }

    /// The configuration of the last membership entry in the log, or the snapshot's.
    var configuration: ClusterConfiguration { configurations.last?.configuration ?? snapshot.configuration }

    /// The index of the newest membership entry, if one is in the log after the snapshot.
    var lastMembershipIndex: LogIndex? { configurations.last?.index }

    func configuration(at index: LogIndex) -> ClusterConfiguration {
        configurations.last { $0.index <= index }?.configuration ?? snapshot.configuration
    }

    /// The term of the entry at `index`, or nil if it is compacted away or beyond the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshot.last.term }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - firstIndex)].term
    }

    func entry(at index: LogIndex) -> LogEntry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - firstIndex)]
    }

    func matches(_ position: LogPosition) -> Bool { term(at: position.index) == position.term }

    /// Whether a candidate whose last entry is `other` is at least as up to date as this log (§5.4.1).
    func isUpToDate(_ other: LogPosition) -> Bool {
        other.term > lastTerm || (other.term == lastTerm && other.index >= lastIndex)
    }

    /// Entries in `[from, through]`, at most `maxBytes` of them but always at least one.
    func entries(from: LogIndex, through: LogIndex, maxBytes: Int) -> [LogEntry] {
        guard from >= firstIndex, from <= through, through <= lastIndex else { return [] }
        var result: [LogEntry] = []
        var bytes = 0
        for i in Int(from - firstIndex)...Int(through - firstIndex) {
            let size = entries[i].approximateSize
            if !result.isEmpty && bytes + size > maxBytes { break }
            result.append(entries[i])
            bytes += size
        }
        return result
    }

    func entries(after index: LogIndex, through: LogIndex) -> ArraySlice<LogEntry> {
        guard through > index, index >= snapshotIndex, through <= lastIndex else { return [] }
        return entries[Int(index + 1 - firstIndex)...Int(through - firstIndex)]
    }

    mutating func append(_ entry: LogEntry) {
        precondition(entry.index == lastIndex + 1, "append of \(entry.position) after \(lastPosition)")
        entries.append(entry)
        if case .membership(let change) = entry.payload {
            configurations.append((entry.index, configuration.applyingCommittedToLog(change)))
        }
    }

    /// Drops every entry at or after `index`, and the configurations they brought.
    mutating func truncate(from index: LogIndex) {
        guard index <= lastIndex else { return }
        precondition(index > snapshotIndex, "truncate from \(index) into the snapshot ending at \(snapshotIndex)")
        entries.removeLast(Int(lastIndex - index + 1))
        configurations.removeAll { $0.index >= index }
    }

    /// The largest index at or below `index` whose term is at most `term` (fast back-tracking).
    func lastIndex(atOrBelow index: LogIndex, withTermAtMost term: Term) -> LogIndex {
        var i = min(index, lastIndex)
        while i > snapshotIndex, let t = self.term(at: i), t > term { i -= 1 }
        return i
    }

    /// Replaces what the log holds up to `metadata.last` with a snapshot, keeping later entries
    /// only when the log agrees with the snapshot about its last entry.
    mutating func install(_ metadata: SnapshotMetadata) {
        let keepSuffix = matches(metadata.last)
        if keepSuffix && metadata.last.index <= lastIndex {
            entries.removeFirst(Int(metadata.last.index - snapshotIndex))
        } else {
            entries.removeAll()
        }
        configurations.removeAll { $0.index <= metadata.last.index || !keepSuffix }
        snapshot = metadata
    }
}
