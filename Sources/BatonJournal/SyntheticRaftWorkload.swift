public import RaftCore

/// A deterministic stream of valid storage writes of every shape a `RaftNode` issues: appends,
/// elections that truncate an uncommitted tail and rewrite it, compaction snapshots, snapshots
/// installed from a leader, hard-state-only writes. The same seed and starting state give the
/// same writes, so a crash test can recompute what a killed writer had submitted, and a benchmark
/// can replay a realistic mix.
///
/// `state` is the reference (`DurableState.apply`) applied to every write returned so far.
public struct SyntheticRaftWorkload: Sendable {
    public private(set) var state: DurableState
    public private(set) var nextWriteID: StorageWriteID
    private var random: SplitMix64
    private let voters: Set<NodeID> = [1, 2, 3]

    /// - Parameters:
    ///   - state: what the journal holds now (a fresh one, or `RaftJournal.load().state`).
    public init(
        seed: UInt64, resumingFrom state: DurableState = DurableState(),
        firstWriteID: StorageWriteID = StorageWriteID(1)
    ) {
        self.state = state
        self.nextWriteID = firstWriteID
        self.random = SplitMix64(seed: seed)
    }

    private var lastPosition: LogPosition {
        if let last = state.entries.last { return last.position }
        return state.snapshot?.metadata.last ?? LogPosition(term: 0, index: 0)
    }

    /// The next write, already applied to `state`.
    public mutating func next() -> StorageWrite {
        var write = StorageWrite(id: nextWriteID)
        nextWriteID = StorageWriteID(nextWriteID.rawValue + 1)
        var hard = state.hardState
        let roll = random.next() % 100
        let last = lastPosition
        let snapshotIndex = state.snapshot?.metadata.last.index ?? 0

        if hard.term == 0 || (roll >= 70 && roll < 80) {
            // An election: a new term and vote, maybe replacing the uncommitted tail, then the new
            // leader's no-op and a few commands.
            hard.term += 1
            hard.votedFor = voters.sorted()[Int(random.next() % UInt64(voters.count))]
            var from = last.index + 1
            if last.index > hard.commit && random.next() % 2 == 0 {
                from = hard.commit + 1 + random.next() % (last.index - hard.commit)
                write.truncateFrom = from
            }
            write.entries = [LogEntry(term: hard.term, index: from, payload: .leaderNoop)]
            write.entries += makeEntries(term: hard.term, from: from + 1, count: Int(random.next() % 4))
        } else if roll < 70 {
            write.entries = makeEntries(term: hard.term, from: last.index + 1, count: 1 + Int(random.next() % 8))
        } else if roll < 88, hard.commit > snapshotIndex {
            // Compaction: the state machine has a snapshot through a committed index.
            let through = snapshotIndex + 1 + random.next() % (hard.commit - snapshotIndex)
            let term = state.entries.first { $0.index == through }?.term ?? last.term
            write.snapshot = makeSnapshot(at: LogPosition(term: term, index: through))
        } else if roll < 93 {
            // A leader's snapshot past what we hold (or conflicting with it), as InstallSnapshot
            // persists it: the snapshot, then everything after it deleted.
            hard.term += 1
            hard.votedFor = nil
            let index = hard.commit + 1 + random.next() % (last.index - hard.commit + 20)
            write.snapshot = makeSnapshot(at: LogPosition(term: hard.term, index: index))
            write.truncateFrom = index + 1
            hard.commit = index
            write.entries = makeEntries(term: hard.term, from: index + 1, count: Int(random.next() % 3))
        } else if roll < 97 {
            // Hard state only: a vote in a new term.
            hard.term += 1
            hard.votedFor = voters.sorted()[Int(random.next() % UInt64(voters.count))]
        } else if last.index > hard.commit {
            // Truncation alone: a new leader's log is shorter than our uncommitted tail.
            hard.term += 1
            hard.votedFor = nil
            write.truncateFrom = hard.commit + 1 + random.next() % (last.index - hard.commit)
        } else {
            write.entries = makeEntries(term: hard.term, from: last.index + 1, count: 1)
        }

        // Commit some of what is now in the log (never past its end).
        let newLast = write.entries.last?.index ?? (write.truncateFrom.map { min($0 - 1, last.index) } ?? last.index)
        if newLast > hard.commit && random.next() % 3 != 0 {
            hard.commit += 1 + random.next() % (newLast - hard.commit)
        }
        hard.commit = min(hard.commit, max(newLast, write.snapshot?.metadata.last.index ?? 0))
        if hard != state.hardState { write.hardState = hard }
        state.apply(write)
        return write
    }

    private mutating func makeEntries(term: Term, from index: LogIndex, count: Int) -> [LogEntry] {
        (0..<count).map { offset in
            let payload: LogEntry.Payload
            switch random.next() % 20 {
            case 0: payload = .membership(.addLearner(NodeID(4 + random.next() % 3)))
            case 1: payload = .membership(.remove(NodeID(4 + random.next() % 3)))
            case 2: payload = .command([])  // empty commands must round-trip too
            default: payload = .command(bytes(16 + Int(random.next() % 240)))
            }
            return LogEntry(term: term, index: index + LogIndex(offset), payload: payload)
        }
    }

    private mutating func makeSnapshot(at position: LogPosition) -> Snapshot {
        let learners: Set<NodeID> = random.next() % 2 == 0 ? [] : [NodeID(4)]
        return Snapshot(
            metadata: SnapshotMetadata(
                last: position, configuration: ClusterConfiguration(voters: voters, learners: learners)),
            data: bytes(256 + Int(random.next() % 8192))
        )
    }

    private mutating func bytes(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            withUnsafeBytes(of: random.next()) { bytes.append(contentsOf: $0.prefix(count - bytes.count)) }
        }
        return bytes
    }
}
