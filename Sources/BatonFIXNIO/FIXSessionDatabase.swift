public import BatonFIX
import Foundation
import GRDB

/// The durable side of a `FIXSessionStore`: both sequence numbers and the application messages
/// sent (for answering ResendRequest), in an SQLite file of its own (WAL, `synchronous = FULL`).
///
/// One file belongs to one session: it records BeginString, SenderCompID and TargetCompID when
/// created, and refuses to open for another session, so two replicas (or a renamed session)
/// can never share sequence numbers by mistake.
///
/// Stored messages are bounded: only the newest `maxStoredMessages` application messages (by
/// MsgSeqNum) are kept. A ResendRequest reaching further back is answered with
/// SequenceReset-GapFill for the messages no longer stored, which FIX allows (the counterparty
/// learns that those numbers will not come again); for orders that matters little, since a
/// resent order older than that would be stale anyway and reconciliation asks the broker.
public final class FIXSessionDatabase: Sendable {
    public let path: String
    public let maxStoredMessages: Int
    // GRDB's DatabaseQueue is Sendable: it serializes every access on its own dispatch queue.
    private let database: DatabaseQueue

    /// Opens (creating if needed) the store for one session.
    ///
    /// - Throws: `FIXSessionDatabaseError` if the file cannot be opened, is not a session store,
    ///   or belongs to another session.
    /// - Parameter synchronous: fsync every change (`synchronous = FULL`, the default). Without
    ///   it (`NORMAL`) a change survives a crash of the process but not of the machine, as
    ///   QuickFIX's FileStore without FileStoreSync: after a power loss the session may reuse a
    ///   sequence number and need a reset with the broker. Orders stay deduplicated by ClOrdID.
    public init(path: String, settings: FIXSessionSettings, maxStoredMessages: Int = 50_000, synchronous: Bool = true)
        throws(FIXSessionDatabaseError)
    {
        self.path = path
        self.maxStoredMessages = max(1, maxStoredMessages)
        do {
            var configuration = Configuration()
            configuration.label = "baton.fix-session"
            configuration.busyMode = .timeout(5)
            // WAL and `synchronous` are set here rather than through GRDB's `journalMode = .wal`,
            // which would force `synchronous = NORMAL`: a sequence number must be on disk before
            // the message carrying it can reach the broker.
            configuration.prepareDatabase { db in
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                guard mode?.lowercased() == "wal" else {
                    throw FIXSessionDatabaseError(
                        path: path, "SQLite refused WAL mode (journal_mode is \(mode ?? "?"))")
                }
                try db.execute(sql: synchronous ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            }
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
            try database.write { db in
                let identity = [settings.beginString, settings.senderCompID, settings.targetCompID]
                if let row = try Row.fetchOne(
                    db, sql: "SELECT begin_string, sender_comp_id, target_comp_id FROM fix_session WHERE id = 1")
                {
                    let stored: [String] = [row[0], row[1], row[2]]
                    guard stored == identity else {
                        throw FIXSessionDatabaseError(
                            path: path,
                            "belongs to session \(stored.joined(separator: " ")), not "
                                + "\(identity.joined(separator: " ")); use one store file per session")
                    }
                } else {
                    try db.execute(
                        sql: """
                            INSERT INTO fix_session (id, begin_string, sender_comp_id, target_comp_id,
                                next_sender_seq_num, next_target_seq_num) VALUES (1, ?, ?, ?, 1, 1)
                            """,
                        arguments: StatementArguments(identity))
                }
            }
        } catch let error as FIXSessionDatabaseError {
            throw error
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot open: \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE fix_session (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        begin_string TEXT NOT NULL,
                        sender_comp_id TEXT NOT NULL,
                        target_comp_id TEXT NOT NULL,
                        next_sender_seq_num INTEGER NOT NULL,
                        next_target_seq_num INTEGER NOT NULL
                    );
                    CREATE TABLE fix_sent_message (
                        msg_seq_num INTEGER PRIMARY KEY,
                        encoded BLOB NOT NULL
                    );
                    """)
        }
        return migrator
    }

    /// Everything stored, for `FIXSession(settings:store:)`. A stored message that no longer
    /// decodes is left out (its number is gap-filled on resend) rather than stopping the session.
    public func load() throws(FIXSessionDatabaseError) -> FIXSessionStore {
        do {
            return try database.read { db in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT next_sender_seq_num, next_target_seq_num FROM fix_session WHERE id = 1")
                else { throw FIXSessionDatabaseError(path: path, "the session row is missing") }
                var store = FIXSessionStore(nextSenderSeqNum: row[0], nextTargetSeqNum: row[1])
                let rows = try Row.fetchCursor(db, sql: "SELECT msg_seq_num, encoded FROM fix_sent_message")
                while let message = try rows.next() {
                    let seq: Int = message[0]
                    let bytes: [UInt8] = Array((message[1] as Data?) ?? Data())
                    var decoder = FIXMessageDecoder()
                    decoder.append(bytes)
                    if let decoded = try? decoder.next() { store.sentApplicationMessages[seq] = decoded }
                }
                return store
            }
        } catch let error as FIXSessionDatabaseError {
            throw error
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot load: \(error)")
        }
    }

    /// Makes `changes` durable, in order, in one transaction (one fsync). Returns once SQLite has
    /// committed with `synchronous = FULL`.
    public func apply(_ changes: [FIXSessionPersist]) async throws(FIXSessionDatabaseError) {
        guard !changes.isEmpty else { return }
        let keep = maxStoredMessages
        do {
            try await database.write { db in try Self.apply(changes, keep: keep, in: db) }
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot persist \(changes.count) change(s): \(error)")
        }
    }

    /// The same as `apply(_:)`, blocking the caller (tests, tools).
    public func applySynchronously(_ changes: [FIXSessionPersist]) throws(FIXSessionDatabaseError) {
        guard !changes.isEmpty else { return }
        let keep = maxStoredMessages
        do {
            try database.write { db in try Self.apply(changes, keep: keep, in: db) }
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot persist \(changes.count) change(s): \(error)")
        }
    }

    private static func apply(_ changes: [FIXSessionPersist], keep: Int, in db: Database) throws {
        for change in changes {
            switch change {
            case .sent(let seqNum, let message):
                try db.execute(
                    sql: "UPDATE fix_session SET next_sender_seq_num = ? WHERE id = 1", arguments: [seqNum + 1])
                if let message {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO fix_sent_message (msg_seq_num, encoded) VALUES (?, ?)",
                        arguments: [seqNum, Data(message.encoded())])
                    // A range delete on the primary key: cheap enough to run on every insert.
                    try db.execute(
                        sql: "DELETE FROM fix_sent_message WHERE msg_seq_num <= ?", arguments: [seqNum - keep])
                }
            case .received(let next):
                try db.execute(sql: "UPDATE fix_session SET next_target_seq_num = ? WHERE id = 1", arguments: [next])
            case .reset(let sender, let target):
                try db.execute(
                    sql: "UPDATE fix_session SET next_sender_seq_num = ?, next_target_seq_num = ? WHERE id = 1",
                    arguments: [sender, target])
                try db.execute(sql: "DELETE FROM fix_sent_message")
            }
        }
    }

    /// How many application messages are stored (for status pages and tests).
    public func storedMessageCount() throws(FIXSessionDatabaseError) -> Int {
        do {
            return try database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fix_sent_message") ?? 0 }
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot count stored messages: \(error)")
        }
    }

    /// The `synchronous` level SQLite actually runs with (2 = FULL).
    public func synchronousLevel() throws(FIXSessionDatabaseError) -> Int {
        do {
            return try database.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
        } catch {
            throw FIXSessionDatabaseError(path: path, "cannot read PRAGMA synchronous: \(error)")
        }
    }
}

public struct FIXSessionDatabaseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "FIX session store \(path): \(reason)" }
}
