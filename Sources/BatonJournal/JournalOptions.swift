public import Logging

/// How a journal trades commit latency for durability.
public struct JournalOptions: Sendable {
    /// When a committed transaction is on stable storage.
    public enum Durability: String, Sendable, Hashable, CaseIterable {
        /// `PRAGMA synchronous = FULL` on the WAL: every commit waits for an fsync of the WAL file,
        /// so an acknowledged write survives a crash of the process *and* of the machine (power
        /// loss, kernel panic). This is what Raft's safety argument assumes of "persisted": a vote
        /// or an acknowledged entry must never be forgotten. The price is one fsync per commit,
        /// which group commit (`GroupCommitWriter`) spreads over every write queued meanwhile.
        case full
        /// `PRAGMA synchronous = NORMAL` on the WAL: commits do not fsync; the WAL is synced only
        /// at checkpoints. A crash of the *process* loses nothing (the data is in the OS page
        /// cache), but a crash of the *machine* can lose the last transactions — on every replica
        /// at once in a zone-wide power cut. A replica that forgets a vote or an acknowledged entry
        /// can break election safety or lose a committed order, so use this only where losing the
        /// tail is acceptable: tests, benchmarks, or replicas whose disks have power-loss protection.
        case normal

        var pragmaValue: String {
            switch self {
            case .full: return "FULL"
            case .normal: return "NORMAL"
            }
        }
    }

    /// Defaults to `.full`; see `Durability` for the trade-off.
    public var durability: Durability
    /// Where the journal reports opening, recovery and failed transactions.
    public var logger: Logger

    public init(durability: Durability = .full, logger: Logger = Logger(label: "baton.journal")) {
        self.durability = durability
        self.logger = logger
    }
}
