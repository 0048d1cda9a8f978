public import RaftCore

/// Why the journal refused or could not carry out an operation. Its `description` says what was
/// wrong, where (journal file, write id, log index) and what to do about it.
public struct JournalError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The journal directory could not be created or is not a directory.
        case cannotCreateDirectory(reason: String)
        /// `verify` was pointed at a directory that holds no journal.
        case noJournal
        /// A write's entries start at `firstIndex`, but the log (after the write's snapshot and
        /// truncation) ends at `expectedIndex - 1`.
        case entriesDoNotContinueLog(write: StorageWriteID, firstIndex: LogIndex, expectedIndex: LogIndex)
        /// Inside one write, entry `index` follows entry `previous`.
        case entriesNotContiguous(write: StorageWriteID, previous: LogIndex, index: LogIndex)
        /// A write installs a snapshot older than the one the journal holds.
        case snapshotRegresses(write: StorageWriteID, snapshotIndex: LogIndex, currentSnapshotIndex: LogIndex)
        /// A number does not fit SQLite's signed 64-bit INTEGER.
        case valueOutOfRange(what: String, value: UInt64)
        /// Committed entries handed to the state machine skip indexes it has not applied.
        case applyGap(firstIndex: LogIndex, appliedIndex: LogIndex)
        /// Committed entries handed to the state machine are not in index order.
        case applyNotContiguous(previous: LogIndex, index: LogIndex)
        /// The group-commit writer was given write ids out of order.
        case writeIDOutOfOrder(write: StorageWriteID, after: StorageWriteID)
        /// The group-commit writer was closed, or stopped after an earlier failure.
        case writerStopped(reason: String)
        /// SQLite failed (disk full, I/O error, permissions, ...).
        case storageFailed(reason: String)
        /// Stored data that this code could never have written.
        case corrupt(what: String)
    }

    public var kind: Kind
    /// The journal's database file (or directory, before it exists).
    public var path: String

    public init(_ kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    public var description: String {
        let subject = "journal \(path)"
        switch kind {
        case .cannotCreateDirectory(let reason):
            return "\(subject): cannot create the journal directory (\(reason)); check the path and its permissions"
        case .noJournal:
            return "\(subject): no journal here (baton.sqlite is missing); check the data directory path"
        case .entriesDoNotContinueLog(let write, let first, let expected):
            return
                "\(subject): write \(write) appends entries starting at index \(first), but the log ends at "
                + "\(expected - 1) so the next entry must be \(expected); the write was rejected and nothing of its "
                + "batch was stored (a truncateFrom or snapshot is missing from the write, or writes were reordered)"
        case .entriesNotContiguous(let write, let previous, let index):
            return
                "\(subject): write \(write) carries entry \(index) right after entry \(previous); entries of one write "
                + "must have consecutive indexes; the write was rejected and nothing of its batch was stored"
        case .snapshotRegresses(let write, let snapshotIndex, let current):
            return
                "\(subject): write \(write) installs a snapshot at index \(snapshotIndex), older than the stored "
                + "snapshot at \(current); snapshots only move forward; the write was rejected and nothing of its "
                + "batch was stored"
        case .valueOutOfRange(let what, let value):
            return "\(subject): \(what) \(value) does not fit SQLite's signed 64-bit INTEGER (max \(Int64.max))"
        case .applyGap(let first, let applied):
            return
                "\(subject): the state machine has applied through \(applied) but was handed entries starting at "
                + "\(first); committed entries must be applied in order without gaps"
        case .applyNotContiguous(let previous, let index):
            return
                "\(subject): committed entries to apply are not consecutive (\(index) follows \(previous)); "
                + "hand them over in log order"
        case .writeIDOutOfOrder(let write, let after):
            return
                "\(subject): write \(write) was submitted after \(after); write ids must increase, because an "
                + "acknowledgement of one write vouches for every write before it"
        case .writerStopped(let reason):
            return "\(subject): the group-commit writer takes no more writes: \(reason)"
        case .storageFailed(let reason):
            return "\(subject): SQLite failed: \(reason); check free disk space, the file's permissions and the disk"
        case .corrupt(let what):
            return
                "\(subject): corrupt journal: \(what); run `verify` on it, and restore this replica from a backup "
                + "or a peer's snapshot"
        }
    }
}
