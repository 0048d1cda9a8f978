import BatonJournal
import Dispatch
public import Logging
public import RaftCore

/// `RaftStorage` on the SQLite journal: Raft writes go through the group-commit writer (many
/// writes, one fsync), state-machine updates straight to the journal.
public final class JournalStorage: RaftStorage {
    let journal: RaftJournal
    let writer: GroupCommitWriter
    let logger: Logger
    private let applyQueue = DispatchQueue(label: "baton.journal.apply")

    public init(directory: String, durability: BatondConfiguration.Durability, metrics: DaemonMetrics, logger: Logger)
        throws
    {
        let options = JournalOptions(durability: durability == .full ? .full : .normal, logger: logger)
        journal = try RaftJournal(directory: directory, options: options)
        writer = GroupCommitWriter(journal: journal) { stats in
            metrics.journalAppend.record(stats.transactionDuration)
            metrics.journalBatchEntries.record(Double(stats.entries))
        }
        self.logger = logger
    }

    /// What the journal holds: the Raft state to start the node from, and how far the state
    /// machine has applied.
    public func recover() throws -> (durable: DurableState, appliedIndex: LogIndex) {
        let recovered = try journal.load()
        return (recovered.state, recovered.appliedIndex)
    }

    public func submit(_ write: StorageWrite) {
        do {
            try writer.submit(write)
        } catch {
            // The acknowledgement stream has already finished with the failure that stopped the
            // writer, and the consensus loop stops on it; nothing here may be acknowledged.
            logger.critical("journal write refused", metadata: ["journal.write": "\(write.id)", "error": "\(error)"])
        }
    }

    public var durableWrites: AsyncThrowingStream<StorageWriteID, any Error> { writer.acknowledgements }

    /// Runs on a serial queue of its own: the transaction blocks on fsync, which must not hold one
    /// of Swift concurrency's few cooperative threads (two on this machine kind).
    public func applyCommitted(_ entries: [LogEntry]) async throws {
        let journal = self.journal
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            applyQueue.async {
                do {
                    try journal.applyCommitted(entries)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    public func restoreSnapshot(_ snapshot: Snapshot) throws { try journal.restoreSnapshot(snapshot) }
}
