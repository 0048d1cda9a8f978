internal import GRDB

/// The journal's tables. Migrations are append-only: never edit a registered migration, add a new
/// one, because replicas in the field have already run the old ones.
///
/// Tables are STRICT so that a value of the wrong type is refused at write time instead of being
/// stored and misread after a restart. Terms, indexes and node ids are INTEGERs (node ids by their
/// 64-bit pattern); quantities and prices are decimal TEXT, exact where REAL would round.
enum JournalSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-raft-and-state-machine") { db in
            try db.execute(sql: raftTables)
            try db.execute(sql: stateMachineTables)
            try db.execute(sql: orderJournalTables)
        }
        // Members added at run time carry their peer address in the log; a snapshot keeps them.
        migrator.registerMigration("v2-snapshot-member-addresses") { db in
            try db.execute(sql: "ALTER TABLE snapshot ADD COLUMN addresses TEXT NOT NULL DEFAULT ''")
        }
        return migrator
    }

    private static let raftTables = """
        -- One row per log entry after the snapshot. `chain` links it to its predecessor (LogChain).
        CREATE TABLE raft_log (
            log_index INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            kind INTEGER NOT NULL,          -- 0 leader no-op, 1 command, 2 membership change
            payload BLOB,                   -- command bytes
            membership TEXT,                -- e.g. 'add-learner:4'
            chain BLOB NOT NULL
        ) STRICT;

        -- Raft's persistent state (term, vote) plus the commit index as a restart hint. One row.
        CREATE TABLE hard_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            term INTEGER NOT NULL,
            voted_for INTEGER,
            commit_index INTEGER NOT NULL
        ) STRICT;

        -- The latest snapshot: the log before and at last_index is gone. One row.
        CREATE TABLE snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_index INTEGER NOT NULL,
            last_term INTEGER NOT NULL,
            voters TEXT NOT NULL,           -- '1,2,3'
            learners TEXT NOT NULL,
            data BLOB,
            chain BLOB NOT NULL             -- the chain at last_index, where the log's chain continues
        ) STRICT;
        """

    private static let stateMachineTables = """
        -- How far the state machine has applied the committed log. One row.
        CREATE TABLE state_machine_meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            applied_index INTEGER NOT NULL
        ) STRICT;

        -- Committed commands as applied, until the order journal decodes them into the tables below.
        CREATE TABLE applied_commands (
            log_index INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            payload BLOB
        ) STRICT;
        """

    // The order journal's tables (ARCHITECTURE.md §4). Empty until the state machine fills them;
    // every row records the log index that last changed it, so a replica can say how current it is.
    private static let orderJournalTables = """
        CREATE TABLE orders (
            cl_ord_id TEXT PRIMARY KEY,     -- '<prefix>-<term>-<index>' of the OrderIntent entry
            intent_term INTEGER NOT NULL,
            intent_index INTEGER NOT NULL UNIQUE,
            strategy TEXT NOT NULL,
            strategy_version TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,             -- 'buy' / 'sell'
            order_type TEXT NOT NULL,       -- 'market' / 'limit'
            quantity TEXT NOT NULL,
            limit_price TEXT,
            risk_decision TEXT NOT NULL,
            trace_id TEXT,
            status TEXT NOT NULL,           -- PendingNew, New, PartiallyFilled, Filled, Canceled, Rejected, Expired, Unknown
            cum_qty TEXT NOT NULL DEFAULT '0',
            avg_px TEXT,
            broker_order_id TEXT,
            sent_session TEXT,              -- OrderSent: FIX session that sent it
            sent_at TEXT,
            sent_lease_end_ns INTEGER,
            updated_index INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX orders_by_status ON orders(status);

        -- Every ExecutionReport once: the primary key is the broker's ExecID, which deduplicates.
        CREATE TABLE executions (
            exec_id TEXT PRIMARY KEY,
            cl_ord_id TEXT NOT NULL REFERENCES orders(cl_ord_id),
            log_index INTEGER NOT NULL,
            exec_type TEXT NOT NULL,
            ord_status TEXT NOT NULL,
            last_qty TEXT,
            last_px TEXT,
            leaves_qty TEXT,
            cum_qty TEXT,
            avg_px TEXT,
            transact_time TEXT,
            text TEXT
        ) STRICT;
        CREATE INDEX executions_by_order ON executions(cl_ord_id);

        CREATE TABLE positions (
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            quantity TEXT NOT NULL,         -- signed: negative is short
            average_price TEXT,
            realized_pnl TEXT NOT NULL DEFAULT '0',
            updated_index INTEGER NOT NULL,
            PRIMARY KEY (account, symbol)
        ) STRICT;

        -- The risk gate's replicated counters (orders per window, notional, losses, ...).
        CREATE TABLE risk_counters (
            scope TEXT NOT NULL,            -- 'global', a strategy, or a symbol
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            window_start TEXT,
            updated_index INTEGER NOT NULL,
            PRIMARY KEY (scope, name)
        ) STRICT;

        -- Every admin action, as committed through the log.
        CREATE TABLE admin_audit (
            log_index INTEGER PRIMARY KEY,
            term INTEGER NOT NULL,
            actor TEXT NOT NULL,            -- token name, never the token
            role TEXT NOT NULL,             -- viewer / operator / admin
            action TEXT NOT NULL,
            parameters TEXT,                -- JSON
            requested_at TEXT NOT NULL,
            outcome TEXT
        ) STRICT;

        -- Alerts to deliver; kept until sent so that none is lost across a failover.
        CREATE TABLE alert_outbox (
            id INTEGER PRIMARY KEY,
            log_index INTEGER NOT NULL,
            dedup_key TEXT NOT NULL,
            sink TEXT NOT NULL,             -- pagerduty / slack / telegram / webhook
            action TEXT NOT NULL,           -- trigger / acknowledge / resolve
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            details TEXT,                   -- JSON
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT
        ) STRICT;
        CREATE INDEX alert_outbox_pending ON alert_outbox(state, next_attempt_at);
        """
}
