import Dispatch
public import RaftCore
import Synchronization

/// Carries out storage writes in the background with group commit: while one transaction is being
/// committed, new writes queue up, and the next transaction takes ALL of them, so that many writes
/// share one fsync. Acknowledgements come out in write order, each only after its transaction
/// committed, through `acknowledgements`.
///
/// Use one writer per journal for the Raft side; `RaftJournal`'s state-machine methods may be
/// called alongside it (the journal serializes transactions).
public final class GroupCommitWriter: Sendable {
    /// The highest write id of each committed transaction, in order. An element `w` says that
    /// every write up to `w` is durable: call `RaftNode.persisted(w)`. After a failed transaction
    /// the stream finishes with its error; the writes of that transaction and every later one are
    /// not acknowledged. After `close()` it finishes once the queue is drained.
    public let acknowledgements: AsyncThrowingStream<StorageWriteID, any Error>

    private struct State: Sendable {
        var queue: [StorageWrite] = []
        /// A drain is scheduled or running on `writerQueue`; new writes just join `queue`.
        var draining = false
        var lastSubmitted: StorageWriteID?
        var closed = false
        var failure: JournalError?
    }

    private let journal: RaftJournal
    private let onCommit: @Sendable (JournalWriteStats) -> Void
    private let continuation: AsyncThrowingStream<StorageWriteID, any Error>.Continuation
    private let state = Mutex(State())
    // A serial queue of its own: the blocking SQLite commit never runs on Swift concurrency's
    // cooperative threads, and at most one transaction is in flight.
    private let writerQueue = DispatchQueue(label: "baton.journal.group-commit", qos: .userInitiated)

    /// - Parameter onCommit: called on the writer's queue after each committed transaction, before
    ///   its acknowledgement is delivered, with what it wrote and how long it took (for the
    ///   commit-latency and batch-size histograms). Keep it short: the next commit waits for it.
    public init(journal: RaftJournal, onCommit: @escaping @Sendable (JournalWriteStats) -> Void = { _ in }) {
        self.journal = journal
        self.onCommit = onCommit
        (acknowledgements, continuation) = AsyncThrowingStream.makeStream(of: StorageWriteID.self)
    }

    deinit {
        continuation.finish()
    }

    /// Queues `write` and returns at once; it becomes durable with the next transaction.
    /// Throws, without queueing, if the id does not follow the previous one or the writer has
    /// stopped (closed, or an earlier transaction failed).
    public func submit(_ write: StorageWrite) throws(JournalError) {
        let path = journal.path
        let scheduleDrain = try state.withLock { state throws(JournalError) -> Bool in
            if let failure = state.failure {
                throw JournalError(.writerStopped(reason: "an earlier transaction failed: \(failure)"), path: path)
            }
            if state.closed { throw JournalError(.writerStopped(reason: "it was closed"), path: path) }
            if let last = state.lastSubmitted, write.id <= last {
                throw JournalError(.writeIDOutOfOrder(write: write.id, after: last), path: path)
            }
            state.lastSubmitted = write.id
            state.queue.append(write)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if scheduleDrain { writerQueue.async { self.drain() } }
    }

    /// Takes no more writes; `acknowledgements` finishes after the queued ones are committed.
    public func close() {
        let finishNow = state.withLock { state -> Bool in
            state.closed = true
            return !state.draining
        }
        if finishNow { continuation.finish() }
    }

    /// Commits batch after batch until the queue is empty. Runs on `writerQueue` only.
    private func drain() {
        while true {
            let next = state.withLock { state -> (batch: [StorageWrite], finish: Bool) in
                if state.queue.isEmpty {
                    state.draining = false
                    return ([], state.closed)
                }
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, false)
            }
            guard let last = next.batch.last else {
                if next.finish { continuation.finish() }
                return
            }
            do {
                let stats = try journal.write(next.batch)
                onCommit(stats)
                continuation.yield(last.id)
            } catch {
                let failure =
                    (error as? JournalError) ?? JournalError(.storageFailed(reason: "\(error)"), path: journal.path)
                state.withLock { state in
                    state.failure = failure
                    state.queue.removeAll()
                    state.draining = false
                }
                continuation.finish(throwing: error)
                return
            }
        }
    }
}
