import Foundation
internal import GRDB
public import RaftCore

/// What a replica finds in its journal when it starts.
public struct RecoveredJournal: Hashable, Sendable {
    /// Hard state, snapshot and the entries after it: exactly what the acknowledged writes stored.
    public var state: DurableState
    /// How far the state machine had applied; hand it to `RaftNode.init(appliedIndex:)`.
    public var appliedIndex: LogIndex

    public init(state: DurableState, appliedIndex: LogIndex) {
        self.state = state
        self.appliedIndex = appliedIndex
    }

    /// True when the log's snapshot is ahead of the state machine: the replica stopped after a
    /// leader's snapshot was persisted but before the state machine restored it. Call
    /// `RaftJournal.restoreSnapshot(_:)` with `state.snapshot` before applying any entry.
    public var stateMachineNeedsSnapshot: Bool {
        guard let snapshot = state.snapshot else { return false }
        return appliedIndex < snapshot.metadata.last.index
    }
}

/// What one journal transaction did; the daemon feeds these into its commit histograms.
public struct JournalWriteStats: Hashable, Sendable, CustomStringConvertible {
    /// Storage writes committed in the transaction.
    public var writes: Int
    /// Log entries appended.
    public var entries: Int
    /// Payload bytes stored: commands, membership changes and snapshot data.
    public var bytes: Int
    /// From the start of the transaction until its commit returned, fsync included.
    public var transactionDuration: Duration
    /// The highest write id committed, if any.
    public var lastWrite: StorageWriteID?

    public init(
        writes: Int = 0,
        entries: Int = 0,
        bytes: Int = 0,
        transactionDuration: Duration = .zero,
        lastWrite: StorageWriteID? = nil
    ) {
        self.writes = writes
        self.entries = entries
        self.bytes = bytes
        self.transactionDuration = transactionDuration
        self.lastWrite = lastWrite
    }

    public var description: String {
        let last = lastWrite.map { " through \($0)" } ?? ""
        return "\(writes) writes\(last), \(entries) entries, \(bytes) B in \(transactionDuration.milliseconds) ms"
    }
}

/// A replica's durable journal: the Raft log, hard state and snapshot, and the state machine's
/// tables, in one SQLite database (WAL mode) at `<directory>/baton.sqlite`.
///
/// Every method is one transaction, so a crash at any point (the process killed, the machine
/// losing power with `.full` durability) leaves the journal as it was after the last committed
/// call. Calls are serialized on one connection; the class is safe to share between threads.
public final class RaftJournal: Sendable {
    /// The database file's name inside the journal directory.
    public static let fileName = "baton.sqlite"

    /// The database file.
    public let path: String
    public let options: JournalOptions
    // GRDB's DatabaseQueue is Sendable: it serializes every access on its own dispatch queue.
    private let database: DatabaseQueue

    /// Opens the journal in `directory`, creating the directory, the database and its tables as
    /// needed. Opening runs SQLite's recovery of the WAL, so a journal left by a killed process
    /// opens as of its last committed transaction.
    public init(directory: String, options: JournalOptions = .init()) throws {
        let directoryURL = URL(fileURLWithPath: directory, isDirectory: true)
        let path = directoryURL.appendingPathComponent(Self.fileName).path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw JournalError(
                    .cannotCreateDirectory(reason: "\(directory) exists and is not a directory"), path: path)
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw JournalError(.cannotCreateDirectory(reason: "\(error)"), path: path)
            }
        }
        self.path = path
        self.options = options
        self.database = try Self.open(path: path, durability: options.durability)
        // A torn or corrupted page must stop the replica at start with a clear word, not surface
        // later as a wrong read in the middle of an election or an apply.
        let check = try database.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        guard check == ["ok"] else {
            throw JournalError(
                .corrupt(what: "PRAGMA quick_check found: \(check.prefix(5).joined(separator: "; "))"), path: path)
        }
        try JournalSchema.migrator.migrate(database)
        options.logger.info(
            "journal opened",
            metadata: ["journal.path": "\(path)", "journal.durability": "\(options.durability.rawValue)"]
        )
    }

    private static func open(path: String, durability: JournalOptions.Durability) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = "baton.journal"
        // `batonctl verify` or a backup may hold the database briefly while the daemon runs;
        // wait for it rather than fail a Raft write at once.
        configuration.busyMode = .timeout(5)
        // WAL and `synchronous` are set here rather than through GRDB's `journalMode = .wal`,
        // which would force `synchronous = NORMAL` after this runs.
        configuration.prepareDatabase { db in
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode?.lowercased() == "wal" else {
                throw JournalError(
                    .corrupt(what: "SQLite refused WAL mode (journal_mode is \(mode ?? "unknown"))"),
                    path: path
                )
            }
            try db.execute(sql: "PRAGMA synchronous = \(durability.pragmaValue)")
            if durability == .full {
                // Where fsync does not reach the platter (macOS), use F_FULLFSYNC; a no-op on Linux.
                try db.execute(sql: "PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON")
            }
        }
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// The durability the connection actually runs with, read back from SQLite.
    public func effectiveDurability() throws -> JournalOptions.Durability {
        let level = try database.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        switch level {
        case 2: return .full
        case 1: return .normal
        default:
            throw JournalError(
                .corrupt(what: "unexpected PRAGMA synchronous \(level.map(String.init) ?? "NULL")"), path: path)
        }
    }

    // MARK: - Raft side

    /// Everything the acknowledged writes stored, for `RaftNode.init(durable:appliedIndex:)`.
    /// Throws if the log is not contiguous after the snapshot or a row cannot be decoded.
    public func load() throws -> RecoveredJournal {
        let path = self.path
        return try database.read { db in
            let reader = JournalReader(db: db, path: path)
            let snapshot = try reader.snapshot()?.snapshot
            let entries = try reader.entries(after: snapshot?.metadata.last.index ?? 0)
            return RecoveredJournal(
                state: DurableState(hardState: try reader.hardState(), snapshot: snapshot, entries: entries),
                appliedIndex: try reader.appliedIndex()
            )
        }
    }

    /// Carries out `batch` in order and in ONE transaction, with the semantics of
    /// `DurableState.apply(_:)` for each write: install the snapshot (dropping the entries it
    /// covers), delete entries at or after `truncateFrom`, append the entries, store the hard state.
    ///
    /// When this returns, every write of the batch is durable (as far as `options.durability`
    /// promises) and may be acknowledged with `RaftNode.persisted(_:)`. When it throws, none is:
    /// the transaction is rolled back whole. Writes that break the contract (entries that do not
    /// continue the log, a snapshot older than the stored one) are refused with a `JournalError`.
    @discardableResult
    public func write(_ batch: [StorageWrite]) throws -> JournalWriteStats {
        guard !batch.isEmpty else { return JournalWriteStats() }
        let path = self.path
        let clock = ContinuousClock()
        let start = clock.now
        do {
            var stats = try database.write { db in
                var transaction = JournalTransaction(db: db, path: path)
                for write in batch { try transaction.apply(write) }
                return transaction.stats
            }
            stats.transactionDuration = clock.now - start
            return stats
        } catch {
            options.logger.error(
                "journal write failed; nothing of the batch was stored",
                metadata: [
                    "journal.path": "\(path)",
                    "journal.writes": "\(batch[0].id)…\(batch[batch.count - 1].id)",
                    "journal.error": "\(error)",
                ]
            )
            throw error
        }
    }

    // MARK: - State machine side

    /// Applied commands whose payload starts with `marker`, in log order, as (term, index, payload):
    /// how a state machine kept in memory (the trading engine) is rebuilt at start. Only applied
    /// entries are returned, so the result is exactly what the state machine had seen.
    public func appliedCommands(withMarker marker: UInt8) throws -> [(term: UInt64, index: UInt64, payload: [UInt8])] {
        try database.read { db in
            var out: [(term: UInt64, index: UInt64, payload: [UInt8])] = []
            let rows = try Row.fetchCursor(
                db, sql: "SELECT log_index, term, payload FROM applied_commands WHERE substr(payload, 1, 1) = ? ORDER BY log_index",
                arguments: [Data([marker])])
            while let row = try rows.next() {
                let index: Int64 = row["log_index"]
                let term: Int64 = row["term"]
                let payload: Data = row["payload"]
                out.append((UInt64(index), UInt64(term), [UInt8](payload)))
            }
            return out.map { (term: $0.1, index: $0.0, payload: $0.2) }
        }
    }

    /// Records committed entries as applied, in one transaction: commands go into
    /// `applied_commands`, and the applied index moves to the last entry.
    ///
    /// Entries at or below the applied index are skipped: after a restart `RaftNode` may hand
    /// over again entries applied before the crash (it caps its applied index at the commit hint).
    /// Call it only for entries `RaftNode` returned in `.apply`, which are durable in the log.
    public func applyCommitted(_ entries: [LogEntry]) throws {
        guard !entries.isEmpty else { return }
        let path = self.path
        for (previous, entry) in zip(entries, entries.dropFirst()) where entry.index != previous.index &+ 1 {
            throw JournalError(.applyNotContiguous(previous: previous.index, index: entry.index), path: path)
        }
        // The state machine can always be rebuilt from the durable log (entries are re-applied from
        // `applied_index` on restart, and applying is idempotent), so its transaction does not wait
        // for an fsync of its own: with WAL and synchronous=NORMAL its frames become durable with
        // the next FULL commit of the Raft log, or a checkpoint. This halves the fsyncs per write.
        let relaxed = options.durability == .full
        try database.writeWithoutTransaction { db in
            if relaxed { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            do {
                try db.inTransaction {
                    try Self.applyFresh(entries, db: db, path: path)
                    return .commit
                }
            } catch {
                if relaxed { try db.execute(sql: "PRAGMA synchronous = FULL") }
                throw error
            }
            if relaxed { try db.execute(sql: "PRAGMA synchronous = FULL") }
        }
    }

    private static func applyFresh(_ entries: [LogEntry], db: Database, path: String) throws {
        let applied = try JournalReader(db: db, path: path).appliedIndex()
        let fresh = entries.drop { $0.index <= applied }
        guard let first = fresh.first, let last = fresh.last else { return }
        guard first.index == applied + 1 else {
            throw JournalError(.applyGap(firstIndex: first.index, appliedIndex: applied), path: path)
        }
        let insert = try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO applied_commands (log_index, term, payload) VALUES (?, ?, ?)"
        )
        for entry in fresh {
            guard case .command(let bytes) = entry.payload else { continue }
            try insert.execute(arguments: [
                try sqlInteger(entry.index, "log index", path), try sqlInteger(entry.term, "term", path),
                Data(bytes),
            ])
        }
        try Self.setAppliedIndex(last.index, db: db, path: path)
    }

    /// Replaces the state machine with `snapshot` (a leader's InstallSnapshot), in one transaction.
    ///
    /// Call it after the write that carries the snapshot is acknowledged, so that the state machine
    /// is never ahead of the durable log; if the replica stops in between, `load()` reports
    /// `stateMachineNeedsSnapshot` and the restore is done again at startup.
    public func restoreSnapshot(_ snapshot: Snapshot) throws {
        let path = self.path
        try database.write { db in
            // The snapshot's data stands for every command before it. The order journal's tables
            // will be rebuilt from it here once the state machine has a snapshot format.
            try db.execute(sql: "DELETE FROM applied_commands")
            try Self.setAppliedIndex(snapshot.metadata.last.index, db: db, path: path)
        }
    }

    private static func setAppliedIndex(_ index: LogIndex, db: Database, path: String) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO state_machine_meta (id, applied_index) VALUES (1, ?)",
            arguments: [try sqlInteger(index, "applied index", path)]
        )
    }

    // MARK: - Verification

    /// Recomputes the hash chain of this journal and checks its hard state; see
    /// `verify(directory:)`.
    public func verify() throws -> JournalVerification {
        let path = self.path
        return try database.read { db in try JournalVerifier(db: db, path: path).run() }
    }

    /// Recomputes the hash chain from the snapshot (or genesis) through the last entry and checks
    /// that the hard state and the state machine agree with the log. Reports the first broken
    /// link; does not repair anything. Throws only if the journal cannot be read at all.
    public static func verify(directory: String) throws -> JournalVerification {
        let path = URL(fileURLWithPath: directory, isDirectory: true).appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: path) else { throw JournalError(.noJournal, path: path) }
        return try RaftJournal(directory: directory).verify()
    }

    /// `verify(directory:)` for a replica checking its own journal while it runs: a read-only
    /// connection of its own and one read transaction, with no migration, pragma write or
    /// integrity scan at open, so it takes no lock the daemon's writer could wait for (in WAL
    /// mode a reader never blocks the writer; opening a full journal could, for seconds, and a
    /// follower whose appends wait costs its leader the quorum).
    public static func verifyWhileRunning(directory: String) throws -> JournalVerification {
        let path = URL(fileURLWithPath: directory, isDirectory: true).appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: path) else { throw JournalError(.noJournal, path: path) }
        var configuration = Configuration()
        configuration.label = "baton.journal.verify"
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        return try database.read { db in try JournalVerifier(db: db, path: path).run() }
    }

    /// Test support: changes the stored entry at `index` without updating its chain, as a disk
    /// error or a hand edit would, so that tests can prove `verify` catches it.
    @_spi(Testing)
    public func corruptEntryForTesting(at index: LogIndex) throws {
        let path = self.path
        try database.write { db in
            let key = try sqlInteger(index, "log index", path)
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT kind, payload FROM raft_log WHERE log_index = ?", arguments: [key])
            else {
                throw JournalError(.corrupt(what: "no entry \(index) to corrupt"), path: path)
            }
            let kind: Int64 = row["kind"]
            let payload: Data? = row["payload"]
            if kind == Int64(StoredPayload.command), var bytes = payload.map(Array.init), !bytes.isEmpty {
                bytes[0] ^= 0x01
                try db.execute(
                    sql: "UPDATE raft_log SET payload = ? WHERE log_index = ?", arguments: [Data(bytes), key])
            } else {
                try db.execute(
                    sql: "UPDATE raft_log SET kind = 1, payload = ?, membership = NULL WHERE log_index = ?",
                    arguments: [Data([0xBA]), key]
                )
            }
        }
    }
}

// MARK: - Inside a transaction

/// A point the chain continues from: a log row, the snapshot, or genesis.
struct ChainPoint {
    var index: LogIndex
    var term: Term
    var chain: [UInt8]

    static let genesis = ChainPoint(index: 0, term: 0, chain: LogChain.genesis)
}

func sqlInteger(_ value: UInt64, _ what: String, _ path: String) throws -> Int64 {
    guard let integer = Int64(exactly: value) else {
        throw JournalError(.valueOutOfRange(what: what, value: value), path: path)
    }
    return integer
}

func unsigned(_ value: Int64, _ what: @autoclosure () -> String, _ path: String) throws -> UInt64 {
    guard value >= 0 else { throw JournalError(.corrupt(what: "\(what()) is negative (\(value))"), path: path) }
    return UInt64(value)
}

/// Reads the journal inside a transaction.
struct JournalReader {
    let db: Database
    let path: String

    func hardState() throws -> HardState {
        guard let row = try Row.fetchOne(db, sql: "SELECT term, voted_for, commit_index FROM hard_state WHERE id = 1")
        else { return HardState() }
        let votedFor: Int64? = row["voted_for"]
        return HardState(
            term: try unsigned(row["term"], "hard state term", path),
            // Node ids are stored by their bit pattern: any UInt64 is a valid id.
            votedFor: votedFor.map { NodeID(UInt64(bitPattern: $0)) },
            commit: try unsigned(row["commit_index"], "hard state commit index", path)
        )
    }

    func snapshotHeader() throws -> ChainPoint? {
        guard let row = try Row.fetchOne(db, sql: "SELECT last_index, last_term, chain FROM snapshot WHERE id = 1")
        else { return nil }
        return ChainPoint(
            index: try unsigned(row["last_index"], "snapshot last index", path),
            term: try unsigned(row["last_term"], "snapshot last term", path),
            chain: [UInt8](row["chain"] as Data)
        )
    }

    func snapshot() throws -> (snapshot: Snapshot, chain: [UInt8])? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT last_index, last_term, voters, learners, addresses, data, chain FROM snapshot WHERE id = 1"
            )
        else { return nil }
        let votersText: String = row["voters"]
        let learnersText: String = row["learners"]
        let addressesText: String = row["addresses"]
        guard let voters = MembershipText.decodeNodes(votersText),
            let learners = MembershipText.decodeNodes(learnersText),
            let addresses = MembershipText.decodeAddresses(addressesText)
        else {
            throw JournalError(
                .corrupt(
                    what: "snapshot configuration is not readable (voters '\(votersText)', learners '\(learnersText)', addresses '\(addressesText.prefix(200))')"),
                path: path
            )
        }
        let data: Data? = row["data"]
        let last = LogPosition(
            term: try unsigned(row["last_term"], "snapshot last term", path),
            index: try unsigned(row["last_index"], "snapshot last index", path)
        )
        let snapshot = Snapshot(
            metadata: SnapshotMetadata(
                last: last, configuration: ClusterConfiguration(voters: voters, learners: learners, addresses: addresses)),
            data: data.map(Array.init) ?? []
        )
        return (snapshot, [UInt8](row["chain"] as Data))
    }

    func logRow(at index: LogIndex) throws -> ChainPoint? {
        guard let key = Int64(exactly: index),
            let row = try Row.fetchOne(
                db, sql: "SELECT term, chain FROM raft_log WHERE log_index = ?", arguments: [key])
        else { return nil }
        return ChainPoint(
            index: index, term: try unsigned(row["term"], "term of entry \(index)", path),
            chain: [UInt8](row["chain"] as Data))
    }

    func lastLogRow() throws -> ChainPoint? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT log_index, term, chain FROM raft_log ORDER BY log_index DESC LIMIT 1")
        else { return nil }
        let index = try unsigned(row["log_index"], "log index", path)
        return ChainPoint(
            index: index, term: try unsigned(row["term"], "term of entry \(index)", path),
            chain: [UInt8](row["chain"] as Data))
    }

    /// The entries after `snapshotIndex`, checked to be contiguous from `snapshotIndex + 1`.
    func entries(after snapshotIndex: LogIndex) throws -> [LogEntry] {
        var entries: [LogEntry] = []
        let rows = try Row.fetchCursor(
            db, sql: "SELECT log_index, term, kind, payload, membership FROM raft_log ORDER BY log_index")
        var expected = snapshotIndex + 1
        while let row = try rows.next() {
            let stored = try StoredRow(row, path: path)
            guard stored.index == expected else {
                let what =
                    stored.index < expected
                    ? "entry \(stored.index) is covered by the snapshot at \(snapshotIndex) but still stored"
                    : "entries \(expected)…\(stored.index - 1) are missing before entry \(stored.index)"
                throw JournalError(.corrupt(what: what), path: path)
            }
            switch stored.payload.decoded() {
            case .payload(let payload):
                entries.append(LogEntry(term: stored.term, index: stored.index, payload: payload))
            case .unreadable(let reason):
                throw JournalError(.corrupt(what: "entry \(stored.index): \(reason)"), path: path)
            }
            expected += 1
        }
        return entries
    }

    func appliedIndex() throws -> LogIndex {
        guard let applied = try Int64.fetchOne(db, sql: "SELECT applied_index FROM state_machine_meta WHERE id = 1")
        else { return 0 }
        return try unsigned(applied, "applied index", path)
    }
}

/// One `raft_log` row as stored, before its payload is decoded.
struct StoredRow {
    var index: LogIndex
    var term: Term
    var payload: StoredPayload

    init(_ row: Row, path: String) throws {
        index = try unsigned(row["log_index"], "log index", path)
        term = try unsigned(row["term"], "term of entry \(index)", path)
        let kind: Int64 = row["kind"]
        let bytes: Data? = row["payload"]
        payload = StoredPayload(
            // Out-of-range kinds become 255, which `decoded()` reports as unknown.
            kind: UInt8(exactly: kind) ?? 255,
            command: bytes.map(Array.init),
            membershipText: row["membership"]
        )
    }
}

/// Applies storage writes inside one transaction, keeping the hash chain.
struct JournalTransaction {
    let db: Database
    let path: String
    private(set) var stats = JournalWriteStats()

    init(db: Database, path: String) {
        self.db = db
        self.path = path
    }

    private var reader: JournalReader { JournalReader(db: db, path: path) }

    /// The same steps, in the same order, as `DurableState.apply(_:)`.
    mutating func apply(_ write: StorageWrite) throws {
        if let snapshot = write.snapshot { try install(snapshot, by: write.id) }
        if let from = write.truncateFrom {
            // Clamped: a truncation point past any storable index deletes nothing, as in the reference.
            try db.execute(sql: "DELETE FROM raft_log WHERE log_index >= ?", arguments: [Int64(clamping: from)])
        }
        if !write.entries.isEmpty { try append(write.entries, by: write.id) }
        if let hardState = write.hardState {
            try db.execute(
                sql: "INSERT OR REPLACE INTO hard_state (id, term, voted_for, commit_index) VALUES (1, ?, ?, ?)",
                arguments: [
                    try sqlInteger(hardState.term, "term", path),
                    hardState.votedFor.map { Int64(bitPattern: $0.rawValue) },
                    try sqlInteger(hardState.commit, "commit index", path),
                ]
            )
        }
        stats.writes += 1
        stats.lastWrite = write.id
    }

    private mutating func install(_ snapshot: Snapshot, by write: StorageWriteID) throws {
        let position = snapshot.metadata.last
        let current = try reader.snapshotHeader()
        if let current, position.index < current.index {
            throw JournalError(
                .snapshotRegresses(write: write, snapshotIndex: position.index, currentSnapshotIndex: current.index),
                path: path
            )
        }
        // The snapshot's chain is the chain at its last index, so that the log after it still
        // verifies. A leader's snapshot past our own log starts a new segment (LogChain.anchor).
        let chain: [UInt8]
        var relink = false
        if position.index == 0 {
            chain = LogChain.genesis
        } else if let row = try reader.logRow(at: position.index), row.term == position.term {
            chain = row.chain
        } else if let current, current.index == position.index, current.term == position.term {
            chain = current.chain
        } else {
            chain = LogChain.anchor(for: snapshot)
            relink = true
        }
        let index = try sqlInteger(position.index, "snapshot index", path)
        try db.execute(sql: "DELETE FROM raft_log WHERE log_index <= ?", arguments: [index])
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO snapshot (id, last_index, last_term, voters, learners, addresses, data, chain)
                VALUES (1, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                index, try sqlInteger(position.term, "snapshot term", path),
                MembershipText.encode(snapshot.metadata.configuration.voters),
                MembershipText.encode(snapshot.metadata.configuration.learners),
                MembershipText.encode(snapshot.metadata.configuration.addresses),
                Data(snapshot.data), Data(chain),
            ]
        )
        stats.bytes += snapshot.data.count
        if relink { try relinkEntries(after: position.index, from: chain) }
    }

    /// Entries kept after a snapshot that starts a new chain segment are linked to it again.
    private func relinkEntries(after index: LogIndex, from chain: [UInt8]) throws {
        let rows = try Row.fetchAll(
            db,
            sql:
                "SELECT log_index, term, kind, payload, membership FROM raft_log WHERE log_index > ? ORDER BY log_index",
            arguments: [try sqlInteger(index, "snapshot index", path)]
        )
        let update = try db.cachedStatement(sql: "UPDATE raft_log SET chain = ? WHERE log_index = ?")
        var previous = chain
        for row in rows {
            let stored = try StoredRow(row, path: path)
            previous = LogChain.link(
                previous: previous, term: stored.term, index: stored.index, kind: stored.payload.kind,
                body: stored.payload.body
            )
            try update.execute(arguments: [Data(previous), try sqlInteger(stored.index, "log index", path)])
        }
    }

    private mutating func append(_ entries: [LogEntry], by write: StorageWriteID) throws {
        for (previous, entry) in zip(entries, entries.dropFirst()) where entry.index != previous.index &+ 1 {
            throw JournalError(
                .entriesNotContiguous(write: write, previous: previous.index, index: entry.index), path: path)
        }
        // Stricter than the reference, which accepts any first index when no entry is left: the
        // first entry must follow the snapshot, or the log would have a hole that cannot be replayed.
        let predecessor = try reader.lastLogRow() ?? reader.snapshotHeader() ?? .genesis
        guard entries[0].index == predecessor.index + 1 else {
            throw JournalError(
                .entriesDoNotContinueLog(
                    write: write, firstIndex: entries[0].index, expectedIndex: predecessor.index + 1),
                path: path
            )
        }
        let insert = try db.cachedStatement(
            sql: "INSERT INTO raft_log (log_index, term, kind, payload, membership, chain) VALUES (?, ?, ?, ?, ?, ?)"
        )
        var previous = predecessor.chain
        for entry in entries {
            let stored = StoredPayload(entry.payload)
            let body = stored.body
            previous = LogChain.link(
                previous: previous, term: entry.term, index: entry.index, kind: stored.kind, body: body)
            try insert.execute(arguments: [
                try sqlInteger(entry.index, "log index", path), try sqlInteger(entry.term, "term", path),
                Int64(stored.kind), stored.command.map { Data($0) }, stored.membershipText, Data(previous),
            ])
            stats.bytes += body.count
        }
        stats.entries += entries.count
    }
}
