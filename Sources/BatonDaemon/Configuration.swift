public import BatonAlerting
public import BatonFIXNIO
public import BatonFeed
import BatonMarketData
import BatonTransport
import Foundation
public import Logging
public import RaftCore
import Yams

/// Everything `batond` is configured with. Read from a YAML file, then overridden by environment
/// variables named after each key: `raft.heartbeat_interval_ms` ← `BATON_RAFT_HEARTBEAT_INTERVAL_MS`.
/// See `doc/configuration.md`.
public struct BatondConfiguration: Sendable {
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The node id of `cluster.node_id: from-hostname`: the ordinal a StatefulSet puts after the
    /// last '-' of its pods' names (before any domain), plus one, since node ids start at 1.
    public static func ordinalNodeID(fromHostname hostname: String) -> UInt64? {
        let name = hostname.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
        guard let dash = name.lastIndex(of: "-"), let ordinal = UInt32(name[name.index(after: dash)...]),
            ordinal < UInt32.max
        else { return nil }
        return UInt64(ordinal) + 1
    }

    /// The kernel's host name (`parse` prefers `HOSTNAME` from its environment: Kubernetes sets
    /// it to the pod's name).
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public enum Durability: String, Sendable, CaseIterable {
        /// Every commit is fsynced before it is acknowledged (SQLite `synchronous=FULL`).
        case full
        /// WAL with `synchronous=NORMAL`: survives a process crash, not a power loss.
        case normal
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        case json
        case text
    }

    public struct TLS: Sendable, Hashable {
        public var caCertificate: String
        public var certificate: String
        public var privateKey: String
    }

    public struct AdminTLS: Sendable, Hashable {
        public var certificate: String
        public var privateKey: String
    }

    public var clusterID: UInt64
    public var nodeID: NodeID
    public var dataDirectory: String
    /// Every voter and learner of the cluster, this node included.
    public var members: [NodeID: Endpoint]
    public var peerListen: Endpoint
    public var adminListen: Endpoint
    public var bootstrap: ClusterConfiguration
    public var raft: RaftSettings
    public var durability: Durability
    /// The tokens the admin plane accepts, with their names and roles (only digests are kept).
    /// From `admin.tokens_file`, plus `admin.token`/`admin.token_file` as one token named
    /// `admin` with the admin role.
    public var adminCredentials: [AdminCredential]
    /// Open admin connections beyond this are closed at accept.
    public var adminMaxConnections: Int
    /// An admin connection with no request for this long is closed.
    public var adminIdleTimeout: Duration
    /// Failed authentications a source may make per minute before it is answered 429.
    public var adminAuthFailuresPerMinute: Int
    /// Serve the admin plane over HTTPS with this certificate and key.
    public var adminTLS: AdminTLS?
    public var tls: TLS?
    /// Plain-TCP peers from beyond loopback (`tls.allow_plaintext: true`). Without TLS and without
    /// this, the peer port accepts loopback connections only.
    public var allowPlaintextPeers: Bool
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// How long a leader stopping on SIGTERM tries to hand leadership over before it exits anyway.
    public var shutdownTransferTimeout: Duration
    /// A follower is ready when it is at most this many entries behind what the leader committed.
    public var readinessMaxLag: UInt64
    /// Enables `/admin/debug/*` (stalling the consensus loop for watchdog tests). Off in production.
    public var debugEndpoints: Bool
    /// How often the replica verifies its own journal's hash chain in the background
    /// (`journal.verify_interval_s`; nil: never). The result goes to the leader's alert rules.
    public var journalVerifyInterval: Duration? = .seconds(3600)
    /// nil unless `trading.enabled`.
    public var trading: TradingConfiguration?

    /// Where this configuration came from, for messages.
    public var source: String
}

/// A configuration problem: which key, where, what was found and what is allowed.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var key: String
    public var line: Int?
    public var message: String

    public var description: String {
        let place = line.map { "\(source):\($0)" } ?? source
        return "\(place): \(key): \(message)"
    }
}

/// All problems found in one configuration, so a person can fix them in one go.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]
    public var description: String {
        "invalid configuration:\n" + errors.map { "  - \($0.description)" }.joined(separator: "\n")
    }
}

extension BatondConfiguration {
    /// Every key the file may hold, with its meaning; used for unknown-key errors and the docs.
    public static let keys: [(key: String, meaning: String)] = [
        ("cluster.id", "cluster id (a positive integer); peers from another cluster are refused"),
        ("cluster.node_id", "this node's id (a positive integer listed under members), or from-hostname: the StatefulSet ordinal + 1"),
        ("cluster.members", "map of node id → peer address host:port, for every voter and learner"),
        ("cluster.node_ids", "with node_id: from-hostname, host name → node id for a pod whose ordinal's id was retired (a replaced replica)"),
        ("cluster.voters", "node ids that vote when the cluster is first created"),
        ("cluster.learners", "node ids that start as learners when the cluster is first created"),
        ("data_dir", "directory of this node's journal"),
        ("listen.peer", "host:port for peer traffic (default: this node's members entry)"),
        ("listen.admin", "host:port of the admin HTTP plane (default 127.0.0.1:7200 + node id)"),
        ("raft.tick_interval_ms", "consensus tick (default 2)"),
        ("raft.heartbeat_interval_ms", "leader heartbeat (default 50)"),
        ("raft.election_timeout_min_ms", "lower bound of the election timeout (default 300)"),
        ("raft.election_timeout_max_ms", "upper bound of the election timeout (default 600)"),
        ("raft.max_clock_drift_ms", "subtracted from the leader lease (default 30)"),
        ("raft.max_inflight_messages", "appends in flight per follower (default 64)"),
        ("raft.max_inflight_bytes", "entry bytes in flight per follower (default 8 MiB)"),
        ("raft.max_bytes_per_append", "entry bytes per append message (default 256 KiB)"),
        ("journal.durability", "full (fsync every commit, default) or normal (WAL, survives process crashes only)"),
        ("journal.verify_interval_s", "verify the journal's hash chain in the background this often, the first time 30 s after start; the leader pages a failure (default 3600, 0: never)"),
        ("admin.token", "one bearer token with the admin role (or admin.token_file; prefer admin.tokens_file)"),
        ("admin.token_file", "file (mode 0600) holding that token"),
        ("admin.tokens_file", "tokens with names and roles: lines `name viewer|operator|admin sha256:<hex>`"),
        ("admin.max_connections", "open admin connections beyond this are closed at accept (default 64)"),
        ("admin.idle_timeout_s", "an idle admin connection is closed after this long (default 60)"),
        ("admin.auth_failures_per_minute", "failed authentications per source and minute before 429 (default 10)"),
        ("admin.tls.cert", "serve the admin plane over HTTPS with this certificate (PEM)"),
        ("admin.tls.key", "and this private key (PEM, mode 0600)"),
        ("tls.allow_plaintext", "without TLS, accept peers from beyond loopback (default false)"),
        ("tls.ca", "cluster CA certificate (PEM); enables mutual TLS between peers"),
        ("tls.cert", "this node's certificate (PEM)"),
        ("tls.key", "this node's private key (PEM)"),
        ("log.level", "trace, debug, info, notice, warning, error or critical (default info)"),
        ("log.format", "json (default) or text"),
        ("shutdown.transfer_timeout_ms", "how long a stopping leader tries to hand over (default 2000)"),
        ("readiness.max_lag_entries", "a follower is ready within this many entries of the leader (default 1000)"),
        ("debug.endpoints", "enable /admin/debug/* (default false; for tests only)"),
        ("trading.enabled", "run the trading engine: strategy, risk gate, orders (default false)"),
        ("trading.symbols", "symbols the strategy trades, e.g. [AAPL, MSFT]"),
        ("trading.account", "Account(1) on every order (default BATON)"),
        ("trading.clordid_prefix", "ClOrdID prefix: ids are <prefix>-<term>-<index> (default BTN)"),
        ("trading.strategy.name", "the strategy run on every symbol: ma-crossover (default) or channel-breakout"),
        ("trading.strategy.lookback", "channel-breakout: trades that make the channel (2 to 10000, default 20)"),
        ("trading.strategy.limit_offset_bps", "channel-breakout: limit orders this far through the breakout trade, 0 to 1000 bps, or market (default 5)"),
        ("trading.strategy.time_in_force", "channel-breakout: how long its limit orders work: ioc (default), day or gtc"),
        ("trading.strategy.fast_window", "MA crossover fast window in ticks (default 10)"),
        ("trading.strategy.slow_window", "MA crossover slow window in ticks (default 30)"),
        ("trading.strategy.threshold", "price difference the fast MA must clear, e.g. 0.01 (default 0)"),
        ("trading.strategy.quantity", "position the strategy takes when long (or short) (default 100)"),
        ("trading.strategy.allow_short", "a bearish crossing goes short instead of flat (default false)"),
        ("trading.strategy.version", "strategy version journaled with each intent (default 1)"),
        ("trading.canary.max_reject_permille", "a canary check fails above this many broker rejects per 1000 candidate orders (default 200)"),
        ("trading.canary.max_slippage_bps", "a canary check fails when the candidate's fills slip more than this against the arrival price (default 50)"),
        ("trading.canary.min_fill_permille", "a canary check fails below this many filled per 1000 ordered (default 800)"),
        ("trading.canary.max_pnl_shortfall", "a canary check fails when the candidate's PnL per unit of quantity trails the baseline's by more than this price (default 0.50)"),
        ("trading.canary.max_order_rate_percent", "a canary check fails when the candidate sends more than this percentage of the baseline's orders (default 300)"),
        ("trading.canary.order_count_floor", "candidate orders per window never counted as over-trading (default 4)"),
        ("trading.canary.max_risk_refusals", "a canary check fails above this many risk-gate refusals of the candidate (default 5)"),
        ("trading.canary.kill_drawdown", "a candidate drawdown beyond this amount (currency) aborts the canary at once (default 1000.00)"),
        ("trading.canary.rollback", "an aborted candidate's position: flatten (default) or hand-to-baseline"),
        ("trading.risk.max_orders_per_minute", "risk gate: orders per rolling minute (default 10)"),
        ("trading.risk.max_orders_per_hour", "risk gate: orders per rolling hour (default 200)"),
        ("trading.risk.max_position", "risk gate: largest absolute position per symbol (default 1000)"),
        ("trading.risk.max_order_quantity", "risk gate: largest single order (default 1000)"),
        ("trading.ack_timeout_ms", "a sent order with no answer for this long becomes unknown (default 2000)"),
        ("trading.reconcile.answer_timeout_ms", "wait for one status report before asking again (default 1000)"),
        ("trading.reconcile.attempts_before_halt", "unanswered status requests before HALTED (default 3)"),
        ("trading.slo.order_ack.objective", "share of orders the broker must answer within the threshold, e.g. 0.999 (default 0.999)"),
        ("trading.slo.order_ack.threshold_ms", "an answer later than this after the intent committed is a bad event (default 250)"),
        ("trading.slo.period_days", "the SLO period the error budget is counted over (default 30)"),
        ("trading.slo.order_path.objective", "share of committed orders the leader writes to the broker within the bound (default 0.999)"),
        ("trading.slo.order_path.bound_ms", "an order written later than this after its intent committed, or never, is a bad event (default 1000)"),
        ("trading.slo.leader.objective", "share of seconds a replica knows a leader (default 0.999)"),
        ("trading.slo.feed.objective", "share of seconds the active market-data source is healthy (default 0.99)"),
        ("trading.slo.admin.objective", "share of admin API answers (token-guarded routes) that are not a 5xx (default 0.999)"),
        ("venue.fix", "host:port of the broker's FIX 4.4 acceptor"),
        ("venue.sender_comp_id", "the cluster's SenderCompID, the same on every replica: one broker session (default BATON)"),
        ("venue.sequence_block", "outbound MsgSeqNums a leader reserves through the log at a time (default 1000)"),
        ("venue.target_comp_id", "the broker's CompID (default VENUE)"),
        ("venue.heartbeat_s", "FIX HeartBtInt in seconds (default 5)"),
        ("venue.store_sync", "fsync the FIX session store on every message (default true)"),
        ("venue.username", "Username(553) sent on Logon, if the broker issued one"),
        ("venue.password_file", "file holding the Password(554) sent on Logon (never logged; trailing newline ignored)"),
        ("venue.tls.ca_file", "PEM file of the CA the broker's certificate must chain to; set it to speak TLS to the broker"),
        ("venue.tls.cert_file", "PEM client certificate to present to the broker (with venue.tls.key_file)"),
        ("venue.tls.key_file", "PEM private key of venue.tls.cert_file"),
        ("venue.tls.server_name", "the name the broker's certificate must carry (also sent as SNI); without it only the chain is checked"),
        ("venue.mass_status", "reconcile with one OrderMassStatusRequest(AF) instead of one OrderStatusRequest per open order; orders its answer leaves out are then asked about one by one (default false)"),
        ("venue.reset_seq_num_on_logon", "send ResetSeqNumFlag(141)=Y on every Logon, restarting both sequences (default false: only when the broker asks for it)"),
        ("venue.hand_over_after_ms", "a leader whose broker session is down this long hands leadership to a follower, then waits twice as long each time (default 5000; 0: never)"),
        ("venue.max_order_age_ms", "the broker refuses orders whose SendingTime is older; orders go out only with more lease left (default 100)"),
        ("alerts.pagerduty.routing_key_file", "file (mode 0600) holding the PagerDuty Events API v2 routing key: pages go there"),
        ("alerts.pagerduty.url", "the Events API endpoint (default https://events.pagerduty.com/v2/enqueue)"),
        ("alerts.slack.webhook_url_file", "file (mode 0600) holding a Slack incoming webhook URL"),
        ("alerts.telegram.token_file", "file (mode 0600) holding a Telegram bot token (with alerts.telegram.chat_id)"),
        ("alerts.telegram.chat_id", "the Telegram chat the bot posts to"),
        ("alerts.telegram.base_url", "the Bot API's base URL (default https://api.telegram.org)"),
        ("alerts.webhook.url", "a receiver of Alertmanager's webhook body (version 4)"),
        ("alerts.webhook.receiver", "the receiver name the webhook body carries (default baton)"),
        ("alerts.pagerduty.min_severity", "the least severity paged: critical, error (default), warning or info"),
        ("alerts.slack.min_severity", "the least severity posted to Slack: critical, error, warning or info (default)"),
        ("alerts.telegram.min_severity", "the least severity sent to Telegram: critical, error, warning or info (default)"),
        ("alerts.pagerduty.quiet_hours", "a daily UTC window like 22:00-07:00 in which only critical events go to pagerduty; the rest wait for its end"),
        ("alerts.pagerduty.min_interval_ms", "least time between two sends to pagerduty (default 500)"),
        ("alerts.slack.quiet_hours", "a daily UTC window like 22:00-07:00 in which only critical events go to slack; the rest wait for its end"),
        ("alerts.slack.min_interval_ms", "least time between two sends to slack (default 1000)"),
        ("alerts.telegram.quiet_hours", "a daily UTC window like 22:00-07:00 in which only critical events go to telegram; the rest wait for its end"),
        ("alerts.telegram.min_interval_ms", "least time between two sends to telegram (default 1000)"),
        ("alerts.webhook.quiet_hours", "a daily UTC window like 22:00-07:00 in which only critical events go to webhook; the rest wait for its end"),
        ("alerts.webhook.min_interval_ms", "least time between two sends to webhook (default 0)"),
        ("alerts.slack.group_window_ms", "a burst to slack goes as one message: its oldest event waits this long for others (default 0: each alone)"),
        ("alerts.slack.group_max", "the most events one grouped slack message carries, 2 to 20 (default 10)"),
        ("alerts.telegram.group_window_ms", "a burst to telegram goes as one message: its oldest event waits this long for others (default 0: each alone)"),
        ("alerts.telegram.group_max", "the most events one grouped telegram message carries, 2 to 20 (default 10)"),
        ("alerts.webhook.group_window_ms", "a burst to the webhook goes as one Alertmanager group: its oldest event waits this long for others (default 0: each alone)"),
        ("alerts.webhook.group_max", "the most alerts one grouped webhook body carries, 2 to 20 (default 10)"),
        ("alerts.slack.trades", "also send trade notifications (signal approved, fill, order error) to slack, best effort, not journaled (default false)"),
        ("alerts.telegram.trades", "also send trade notifications (signal approved, fill, order error) to telegram, best effort, not journaled (default false)"),
        ("alerts.webhook.trades", "also send trade notifications (signal approved, fill, order error) to webhook, best effort, not journaled (default false)"),
        ("alerts.webhook.min_severity", "the least severity sent to the webhook: critical, error, warning or info (default)"),
        ("feed.primary", "primary market-data WebSocket URL, e.g. ws://127.0.0.1:9880/feed"),
        ("feed.backup", "backup market-data WebSocket URL (optional)"),
        ("feed.stale_after_ms", "a source silent this long is stale (default 500)"),
        ("feed.recover_after_ms", "the primary must be healthy this long before switching back (default 2000)"),
        ("feed.capture.dir", "record the raw feed of both sources here (relative: under node.data_dir); unset: no capture"),
        ("feed.capture.rotate_mb", "a capture file is closed and gzip-compressed at this size (default 64)"),
        ("feed.capture.rotate_after_s", "…or after this long open, and always at the end of its UTC day (default 3600)"),
        ("feed.capture.retain_days", "days of capture kept besides today (default 7)"),
        ("feed.capture.max_mb", "the most the capture may hold; the oldest closed files are deleted first (default 10240)"),
        ("feed.capture.buffer_kb", "received frames waiting for the writer; when full, frames are dropped and counted (default 32768)"),
        ("feed.capture.flush_ms", "how often the writer takes the buffer to disk (default 200)"),
    ]

    /// The environment variable that overrides `key`.
    public static func environmentName(for key: String) -> String {
        "BATON_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Parses a YAML document and applies environment overrides. Throws `ConfigurationErrors`
    /// listing every problem.
    public static func parse(yaml: String, source: String, environment: [String: String]) throws(ConfigurationErrors)
        -> BatondConfiguration
    {
        var reader = ConfigReader(source: source)
        reader.load(yaml: yaml)
        reader.applyEnvironment(environment, keys: keys.map(\.key))
        reader.hostname = environment["HOSTNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? BatondConfiguration.hostname()
        return try reader.build()
    }
}

/// Flattens the YAML into dotted keys with their lines, then reads each known key once.
private struct ConfigReader {
    struct Value {
        var text: String?
        var list: [String]?
        var map: [(String, String)]?
        var line: Int?
        var fromEnvironment: String?
    }

    let source: String
    var values: [String: Value] = [:]
    var errors: [ConfigurationError] = []
    var consumed: Set<String> = []
    /// For `cluster.node_id: from-hostname`.
    var hostname = ""

    init(source: String) { self.source = source }

    mutating func fail(_ key: String, _ message: String) {
        let value = values[key]
        let place = value?.fromEnvironment.map { "environment \($0)" }
        errors.append(
            ConfigurationError(
                source: place ?? source, key: key, line: place == nil ? value?.line : nil, message: message
            )
        )
    }

    mutating func load(yaml: String) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            errors.append(
                ConfigurationError(
                    source: source, key: "(file)", line: Self.line(of: error),
                    message: "not valid YAML: \(Self.redacted(error))"))
            return
        }
        guard let root else { return }
        // A file that is one value or a list (the wrong file, say a token file) has no keys; never
        // echo it, it may be a secret.
        guard case .mapping = root else {
            let found = if case .sequence = root { "a list" } else { "a single value" }
            errors.append(
                ConfigurationError(
                    source: source, key: "(file)", line: root.mark?.line,
                    message: "expected a map of keys (such as `cluster:` at the start of a line), found \(found)"))
            return
        }
        flatten(root, prefix: "")
    }

    /// Yams' own description quotes the offending line, which may be `token: <the secret>`:
    /// say where and what is wrong, never the text.
    static func redacted(_ error: any Error) -> String {
        guard let yaml = error as? YamlError else { return "the file could not be parsed" }
        switch yaml {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        default:
            return "the file could not be parsed (details withheld: they may quote a secret)"
        }
    }

    static func line(of error: any Error) -> Int? {
        guard let yaml = error as? YamlError else { return nil }
        switch yaml {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    private mutating func flatten(_ node: Node, prefix: String) {
        let line = node.mark.map { $0.line }
        switch node {
        case .mapping(let mapping):
            // A map of scalars under a key that takes a map (cluster.members, cluster.node_ids) stays a map.
            if prefix == "cluster.members" || prefix == "cluster.node_ids" {
                var pairs: [(String, String)] = []
                for (key, value) in mapping {
                    guard let k = key.string, let v = value.string else {
                        errors.append(
                            ConfigurationError(
                                source: source, key: prefix, line: key.mark?.line,
                                message: prefix == "cluster.members"
                                    ? "expected `node id: host:port` entries" : "expected `hostname: node id` entries"
                            )
                        )
                        continue
                    }
                    pairs.append((k, v))
                }
                values[prefix] = Value(map: pairs, line: line)
                return
            }
            for (key, value) in mapping {
                guard let name = key.string else { continue }
                flatten(value, prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
            }
        case .sequence(let sequence):
            values[prefix] = Value(list: sequence.compactMap(\.string), line: line)
        case .scalar(let scalar):
            values[prefix] = Value(text: scalar.string, line: line)
        }
    }

    mutating func applyEnvironment(_ environment: [String: String], keys: [String]) {
        for key in keys {
            let name = BatondConfiguration.environmentName(for: key)
            guard let raw = environment[name] else { continue }
            if key == "cluster.members" || key == "cluster.node_ids" {
                // BATON_CLUSTER_MEMBERS="1=127.0.0.1:7101,2=127.0.0.1:7102", BATON_CLUSTER_NODE_IDS="baton-2=4"
                let pairs = raw.split(separator: ",").map { item -> (String, String) in
                    let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                    return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
                }
                values[key] = Value(map: pairs, fromEnvironment: name)
            } else if key == "cluster.voters" || key == "cluster.learners" || key == "trading.symbols" {
                values[key] = Value(
                    list: raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                    fromEnvironment: name)
            } else {
                values[key] = Value(text: raw, fromEnvironment: name)
            }
        }
    }

    mutating func text(_ key: String) -> String? {
        consumed.insert(key)
        guard let value = values[key] else { return nil }
        guard let text = value.text else {
            fail(key, "expected a single value")
            return nil
        }
        return text
    }

    mutating func required(_ key: String) -> String? {
        let value = text(key)
        if value == nil && values[key] == nil { fail(key, "is required") }
        return value
    }

    mutating func integer(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) -> Int {
        guard let raw = text(key) else { return defaultValue }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            fail(
                key, "'\(raw)' is not allowed: expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            return defaultValue
        }
        return value
    }

    mutating func nodeIDs(_ key: String) -> [NodeID]? {
        consumed.insert(key)
        guard let value = values[key] else { return nil }
        guard let list = value.list ?? value.text.map({ [$0] }) else { return nil }
        var ids: [NodeID] = []
        for item in list {
            guard let raw = UInt64(item), raw > 0 else {
                fail(key, "'\(item)' is not a node id: expected positive integers")
                continue
            }
            ids.append(NodeID(raw))
        }
        return ids
    }

    mutating func endpoint(_ key: String, _ raw: String) -> BatondConfiguration.Endpoint? {
        guard let address = PeerAddress(parsing: raw) else {
            if raw.hasPrefix(":") || raw.hasPrefix("[]:") {
                fail(key, "'\(raw)' has no host: expected host:port")
            } else {
                fail(key, "'\(raw)' is not an address: expected host:port, for example 127.0.0.1:7101")
            }
            return nil
        }
        return BatondConfiguration.Endpoint(host: address.host, port: address.port)
    }

    mutating func build() throws(ConfigurationErrors) -> BatondConfiguration {
        let clusterID = UInt64(integer("cluster.id", default: 0, in: 1...Int.max))
        let nodeRaw: Int
        consumed.insert("cluster.node_ids")
        let fromHostname = text("cluster.node_id")?.trimmingCharacters(in: .whitespaces) == "from-hostname"
        if values["cluster.node_ids"] != nil && !fromHostname {
            fail("cluster.node_ids", "is read only with cluster.node_id: from-hostname")
        }
        if fromHostname, let assigned = values["cluster.node_ids"]?.map?.first(where: {
            $0.0 == hostname || $0.0 == hostname.split(separator: ".", maxSplits: 1).first.map(String.init)
        })?.1 {
            // A replaced replica: its ordinal's id was removed from the cluster and is never
            // reused, so the operator gave the pod a new one.
            if let id = UInt64(assigned.trimmingCharacters(in: .whitespaces)), id > 0, id <= UInt64(UInt32.max) {
                nodeRaw = Int(id)
            } else {
                fail("cluster.node_ids", "'\(assigned.prefix(40))' for \(hostname) is not a node id: expected a positive integer")
                nodeRaw = 0
            }
        } else if fromHostname {
            // A StatefulSet's pods are named <set>-<ordinal>: pod baton-0 is node 1.
            if let id = BatondConfiguration.ordinalNodeID(fromHostname: hostname) {
                nodeRaw = Int(id)
            } else {
                fail(
                    "cluster.node_id",
                    "from-hostname needs a host name ending in -<ordinal> (a StatefulSet pod such as baton-0); this host is '\(hostname.prefix(100))'"
                )
                nodeRaw = 0
            }
        } else {
            nodeRaw = integer("cluster.node_id", default: 0, in: 1...Int(UInt32.max))
        }
        if values["cluster.id"] == nil { fail("cluster.id", "is required") }
        if values["cluster.node_id"] == nil { fail("cluster.node_id", "is required") }
        let nodeID = NodeID(UInt64(nodeRaw))

        consumed.insert("cluster.members")
        var members: [NodeID: BatondConfiguration.Endpoint] = [:]
        if let map = values["cluster.members"]?.map {
            // An empty map (`members: {}`, or BATON_CLUSTER_MEMBERS set to nothing) names no
            // node, not even this one: refused, rather than every check below passing vacuously.
            if map.isEmpty { fail("cluster.members", "is empty: list every member as node id → host:port") }
            for (idText, address) in map {
                guard let raw = UInt64(idText), raw > 0 else {
                    fail("cluster.members", "'\(idText)' is not a node id: expected a positive integer")
                    continue
                }
                // "1" and "01" are the same node: two addresses for it would silently lose one.
                if let other = map.map(\.0).first(where: { $0 != idText && UInt64($0) == raw }), idText > other {
                    fail("cluster.members", "'\(other)' and '\(idText)' are the same node id \(raw): list each node once")
                    continue
                }
                if let endpoint = endpoint("cluster.members.\(idText)", address) { members[NodeID(raw)] = endpoint }
            }
        } else {
            fail("cluster.members", "is required: a map of node id → host:port for every member")
        }
        if nodeRaw > 0, !members.isEmpty, members[nodeID] == nil {
            fail(
                "cluster.node_id",
                "\(nodeRaw) is not listed under cluster.members (\(members.keys.sorted().map(\.description)))")
        }

        let voters = nodeIDs("cluster.voters") ?? members.keys.sorted()
        let learners = nodeIDs("cluster.learners") ?? []
        for id in voters + learners where members[id] == nil && !members.isEmpty {
            fail(
                voters.contains(id) ? "cluster.voters" : "cluster.learners", "\(id) is not listed under cluster.members"
            )
        }
        if voters.isEmpty { fail("cluster.voters", "needs at least one voter") }
        if !Set(voters).isDisjoint(with: learners) {
            fail("cluster.learners", "a node cannot be both voter and learner")
        }

        let dataDirectory = required("data_dir") ?? ""
        let peerListen =
            text("listen.peer").flatMap { endpoint("listen.peer", $0) } ?? members[nodeID]
            ?? BatondConfiguration.Endpoint(host: "127.0.0.1", port: 7100 + nodeRaw)
        let adminListen =
            text("listen.admin").flatMap { endpoint("listen.admin", $0) }
            ?? BatondConfiguration.Endpoint(host: "127.0.0.1", port: 7200 + nodeRaw)
        // The default is no port for node ids above 58335; getaddrinfo would bind it modulo 65536.
        if values["listen.admin"] == nil, adminListen.port > 65535 {
            fail("listen.admin", "is required when cluster.node_id is above 58335: the default 7200 + node id is not a port")
        }

        var raft = RaftSettings()
        // 2 ms rather than RaftSettings' 10 ms: election timeouts are whole ticks, and with 10 ms
        // ticks [300, 600) ms offers only 30 values, so two survivors of a failed leader time out
        // together (and split the vote) far more often than a fine draw would let them.
        raft.tickInterval = .milliseconds(integer("raft.tick_interval_ms", default: 2, in: 1...1000))
        raft.heartbeatInterval = .milliseconds(integer("raft.heartbeat_interval_ms", default: 50, in: 1...60_000))
        raft.electionTimeoutMin = .milliseconds(integer("raft.election_timeout_min_ms", default: 300, in: 1...600_000))
        raft.electionTimeoutMax = .milliseconds(integer("raft.election_timeout_max_ms", default: 600, in: 1...600_000))
        raft.maxClockDrift = .milliseconds(integer("raft.max_clock_drift_ms", default: 30, in: 0...600_000))
        raft.maxInflightMessages = integer("raft.max_inflight_messages", default: 64, in: 1...65_536)
        raft.maxInflightBytes = integer("raft.max_inflight_bytes", default: 8 << 20, in: 1...(1 << 30))
        raft.maxBytesPerAppend = integer("raft.max_bytes_per_append", default: 256 << 10, in: 1...(64 << 20))
        for problem in raft.problems() {
            // RaftSettings names its keys without the unit the file uses.
            let name = String(problem.key.split(separator: "/").first ?? "")
            let durations: Set<String> = [
                "tick_interval", "heartbeat_interval", "election_timeout_min", "election_timeout_max",
                "max_clock_drift",
            ]
            let key = "raft." + name + (durations.contains(name) ? "_ms" : "")
            fail(key, "\(problem.value) is not allowed: must be \(problem.allowed)")
        }

        let verifySeconds = integer("journal.verify_interval_s", default: 3600, in: 0...604_800)
        let durabilityText = text("journal.durability") ?? "full"
        let durability = BatondConfiguration.Durability(rawValue: durabilityText) ?? .full
        if BatondConfiguration.Durability(rawValue: durabilityText) == nil {
            fail("journal.durability", "'\(durabilityText)' is not allowed: use full or normal")
        }

        var credentials: [AdminCredential] = []
        var token = text("admin.token")
        if let file = text("admin.token_file") {
            if let problem = SecretFile.problem(path: file) {
                fail("admin.token_file", problem)
            } else {
                do {
                    token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(
                        in: .whitespacesAndNewlines)
                } catch {
                    fail("admin.token_file", "cannot read \(file): \(error.localizedDescription)")
                }
            }
        }
        if let t = token {
            if t.count < 16 {
                fail(
                    values["admin.token"] != nil ? "admin.token" : "admin.token_file",
                    "is too short: use at least 16 characters")
            } else {
                credentials.append(AdminCredential(name: "admin", role: .admin, token: t))
            }
        }
        if let file = text("admin.tokens_file") {
            do {
                let contents = try String(contentsOfFile: file, encoding: .utf8)
                switch AdminTokensFile.parse(contents, fileIsPrivate: SecretFile.isPrivate(path: file)) {
                case .success(let parsed):
                    for credential in parsed where credentials.contains(where: { $0.name == credential.name }) {
                        fail("admin.tokens_file", "\(file): the name '\(credential.name)' is also admin.token's")
                    }
                    credentials += parsed
                case .failure(let problem):
                    fail("admin.tokens_file", "\(file): \(problem)")
                }
            } catch {
                fail("admin.tokens_file", "cannot read \(file): \(error.localizedDescription)")
            }
        }
        let adminMaxConnections = integer("admin.max_connections", default: 64, in: 1...65_536)
        let adminIdleSeconds = integer("admin.idle_timeout_s", default: 60, in: 1...86_400)
        let authFailures = integer("admin.auth_failures_per_minute", default: 10, in: 1...1_000_000)
        var adminTLS: BatondConfiguration.AdminTLS?
        switch (text("admin.tls.cert"), text("admin.tls.key")) {
        case (nil, nil): break
        case (let cert?, let key?):
            if let problem = SecretFile.problem(path: key) { fail("admin.tls.key", problem) }
            adminTLS = .init(certificate: cert, privateKey: key)
        default:
            fail("admin.tls", "admin.tls.cert and admin.tls.key go together: set both or neither")
        }
        let plaintextText = text("tls.allow_plaintext") ?? "false"
        if plaintextText != "true" && plaintextText != "false" {
            fail("tls.allow_plaintext", "'\(plaintextText.prefix(20))' is not allowed: use true or false")
        }

        var tls: BatondConfiguration.TLS?
        let ca = text("tls.ca")
        let cert = text("tls.cert")
        let key = text("tls.key")
        if ca != nil || cert != nil || key != nil {
            if let ca, let cert, let key {
                if let problem = SecretFile.problem(path: key) { fail("tls.key", problem) }
                tls = .init(caCertificate: ca, certificate: cert, privateKey: key)
            } else {
                fail("tls", "tls.ca, tls.cert and tls.key go together: set all three or none")
            }
        }

        let levelText = text("log.level") ?? "info"
        let logLevel = Logger.Level(rawValue: levelText) ?? .info
        if Logger.Level(rawValue: levelText) == nil {
            fail(
                "log.level", "'\(levelText)' is not allowed: use trace, debug, info, notice, warning, error or critical"
            )
        }
        let formatText = text("log.format") ?? "json"
        let logFormat = BatondConfiguration.LogFormat(rawValue: formatText) ?? .json
        if BatondConfiguration.LogFormat(rawValue: formatText) == nil {
            fail("log.format", "'\(formatText)' is not allowed: use json or text")
        }
        let transferTimeout = integer("shutdown.transfer_timeout_ms", default: 2000, in: 0...60_000)
        let maxLag = integer("readiness.max_lag_entries", default: 1000, in: 0...Int(Int32.max))
        let debugText = text("debug.endpoints") ?? "false"
        if debugText != "true" && debugText != "false" {
            fail("debug.endpoints", "'\(debugText)' is not allowed: use true or false")
        }

        var trading = tradingSection(nodeID: nodeRaw)
        trading?.clusterName = "baton-\(clusterID)"
        let lease = raft.electionTimeoutMin - raft.maxClockDrift
        if let trading, trading.minimumLeaseToSend >= lease {
            fail(
                "venue.max_order_age_ms",
                "\(trading.maxOrderAge.milliseconds) ms leaves no room in the leader lease "
                    + "(raft.election_timeout_min_ms − raft.max_clock_drift_ms = \(lease.milliseconds) ms; "
                    + "orders need the age limit + 20 ms of lease left)")
        }

        let known = Set(BatondConfiguration.keys.map(\.key))
        for key in values.keys.sorted() where !consumed.contains(key) && !known.contains(key) {
            if key.hasPrefix("cluster.members.") { continue }
            // A key without a section (`"": 1`, `.: 1`) gets no list: every key would match.
            let section = key.split(separator: ".").first.map(String.init) ?? ""
            let suggestion = section.isEmpty ? [] : known.filter { $0.hasPrefix(section) }.sorted()
            if key.isEmpty {
                errors.append(
                    ConfigurationError(
                        source: source, key: "\"\"", line: values[key]?.line, message: "an empty key is not a known key"))
                continue
            }
            fail(
                key,
                "is not a known key"
                    + (suggestion.isEmpty ? "" : "; keys in this section: \(suggestion.joined(separator: ", "))"))
        }

        guard errors.isEmpty else { throw ConfigurationErrors(errors: errors) }
        var configuration = BatondConfiguration(
            clusterID: clusterID,
            nodeID: nodeID,
            dataDirectory: dataDirectory,
            members: members,
            peerListen: peerListen,
            adminListen: adminListen,
            bootstrap: ClusterConfiguration(voters: Set(voters), learners: Set(learners)),
            raft: raft,
            durability: durability,
            adminCredentials: credentials,
            adminMaxConnections: adminMaxConnections,
            adminIdleTimeout: .seconds(adminIdleSeconds),
            adminAuthFailuresPerMinute: authFailures,
            adminTLS: adminTLS,
            tls: tls,
            allowPlaintextPeers: plaintextText == "true",
            logLevel: logLevel,
            logFormat: logFormat,
            shutdownTransferTimeout: .milliseconds(transferTimeout),
            readinessMaxLag: UInt64(maxLag),
            debugEndpoints: debugText == "true",
            trading: trading,
            source: source
        )
        configuration.journalVerifyInterval = verifySeconds == 0 ? nil : .seconds(verifySeconds)
        return configuration
    }
}

/// The trading engine's settings: strategy, risk limits, broker session and market feed.
/// One configured alert receiver (`alerts.*`), secrets read from their files.
public enum AlertSinkSettings: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    case pagerDuty(routingKey: String, url: String)
    case slack(webhookURL: String)
    case telegram(token: String, chatID: String, baseURL: String)
    case webhook(url: String, receiver: String, externalURL: String)

    /// Without the routing key, webhook URL or token.
    public var description: String {
        switch self {
        case .pagerDuty(_, let url): "pagerduty(\(url))"
        case .slack: "slack(***)"
        case .telegram(_, let chat, _): "telegram(chat \(chat))"
        case .webhook(let url, let receiver, _): "webhook(\(receiver) at \(url))"
        }
    }

    public var debugDescription: String { description }
}

public struct TradingConfiguration: Sendable, Equatable {
    /// The strategies `trading.strategy.name` may name (BatonTrading's `StrategySpec.registry`;
    /// a test keeps the two the same), each with the keys that are its alone.
    public static let strategyKeys = [
        "ma-crossover": ["trading.strategy.fast_window", "trading.strategy.slow_window", "trading.strategy.threshold"],
        "channel-breakout": ["trading.strategy.lookback", "trading.strategy.limit_offset_bps", "trading.strategy.time_in_force"],
    ]

    public var symbols: [String]
    public var account: String
    public var clOrdIDPrefix: String
    public var strategyVersion: String
    /// `trading.strategy.name`: which of `StrategySpec.registry` runs on every symbol.
    public var strategyName = "ma-crossover"
    /// channel-breakout's channel, in trades.
    public var lookback = 20
    /// channel-breakout's limit offset (nil: market orders) and time in force.
    public var limitOffsetBps: Int64? = 5
    public var timeInForce = "ioc"
    public var fastWindow: Int
    public var slowWindow: Int
    /// Price units (1/10_000).
    public var threshold: Int64
    public var quantity: Int64
    public var allowShort: Bool
    public var risk: RiskLimitsSettings
    public var ackTimeout: Duration
    public var reconcileAnswerTimeout: Duration
    public var reconcileAttemptsBeforeHalt: Int
    public var venue: BatondConfiguration.Endpoint
    public var senderCompID: String
    public var targetCompID: String
    public var heartbeatSeconds: Int
    /// fsync the FIX session store on every message.
    public var storeSync: Bool
    public var username: String? = nil
    /// Read from `venue.password_file`; its description is `***`.
    public var password: FIXPassword? = nil
    public var resetSeqNumOnLogon = false
    /// Reconcile with OrderMassStatusRequest(AF) (`venue.mass_status`).
    public var massStatus = false
    /// `trading.canary.*`: each analysis check's limits, the kill drawdown (price units ×
    /// quantity) and the rollback ("flatten" or "hand-to-baseline").
    public var canary = CanarySettings()

    public struct CanarySettings: Sendable, Equatable {
        public var maxRejectPermille = 200
        public var maxSlippageBps = 50
        public var minFillPermille = 800
        public var maxPnLShortfall: Int64 = 5_000
        public var maxOrderRatePercent = 300
        public var orderCountFloor = 4
        public var maxRiskRefusals = 5
        public var killDrawdown: Int64 = 10_000_000
        public var rollback = "flatten"
        public init() {}
    }
    /// TLS to the broker (`venue.tls.*`); nil: plain TCP.
    public var tls: FIXTLSSettings?
    /// Outbound MsgSeqNums a leader reserves through the log at a time (SequenceReservation).
    public var sequenceBlock = 1000
    /// The broker refuses a NewOrderSingle whose SendingTime is older than this.
    public var maxOrderAge: Duration
    /// `venue.hand_over_after_ms`: a leader that cannot reach the broker this long hands
    /// leadership over (nil: never).
    public var brokerHandOverAfter: Duration? = .seconds(5)
    /// An order is written only with at least this much lease left: the broker's limit on an
    /// order's age plus a margin for writing it.
    public var minimumLeaseToSend: Duration { maxOrderAge + .milliseconds(20) }
    public var feedPrimary: String
    public var feedBackup: String?
    public var feedStaleAfter: Duration
    public var feedRecoverAfter: Duration
    /// `feed.capture.*`: nil when this replica does not record its feed.
    public var feedCapture: TickCaptureSettings?
    /// The order acknowledgement SLO (`trading.slo.*`): this share of committed orders answered
    /// by the broker within `orderAckThreshold`, over `sloPeriodDays`.
    /// Where the leader delivers alerts (`alerts.*`), by sink name.
    public var alertSinks: [String: AlertSinkSettings] = [:]
    /// Per sink, the least severity it receives (`alerts.<sink>.min_severity`): "critical",
    /// "error", "warning" or "info". PagerDuty defaults to error, so that it pages; the chats
    /// and the webhook take everything.
    public var alertMinimumSeverity: [String: String] = [:]
    /// Per sink, quiet hours (`alerts.<sink>.quiet_hours`) and pace (`alerts.<sink>.min_interval_ms`).
    public var alertQuietHours: [String: QuietHours] = [:]
    public var alertMinimumIntervalMillis: [String: Int64] = [:]
    /// Per sink that groups bursts (`alerts.<sink>.group_window_ms`, `group_max`).
    public var alertGroupWindowMillis: [String: Int64] = [:]
    public var alertGroupMaximum: [String: Int] = [:]
    /// The sinks that also take trade notifications (`alerts.<sink>.trades: true`).
    public var alertTradeSinks: [String] = []
    /// "baton-<cluster.id>": names the cluster in alerts.
    public var clusterName = "baton"
    public var orderAckObjective = 0.999
    public var orderAckThreshold: Duration = .milliseconds(250)
    public var sloPeriodDays = 30
    /// Order path availability: committed intents written to the broker within the bound.
    public var orderPathObjective = 0.999
    public var orderPathBound: Duration = .milliseconds(1000)
    /// Leader availability (seconds with a leader known) and feed freshness (seconds with a
    /// healthy active source), sampled once a second on every replica.
    public var leaderObjective = 0.999
    public var feedObjective = 0.99
    /// Admin API availability: answers of the token-guarded routes that are not a 5xx.
    public var adminObjective = 0.999

    public struct RiskLimitsSettings: Sendable, Equatable {
        public var maxOrdersPerMinute: Int
        public var maxOrdersPerHour: Int
        public var maxPosition: Int64
        public var maxOrderQuantity: Int64
    }
}

extension ConfigReader {
    /// The one line of the secret file `key` names (a password, a routing key, a bot token):
    /// refused when group or other may read the file, never quoted in an error, its line end
    /// (LF or CRLF) not part of it.
    mutating func secretLine(_ key: String, maxBytes: Int) -> String? {
        guard let file = text(key) else { return nil }
        guard FileManager.default.fileExists(atPath: file) else {
            fail(key, "cannot read \(file): no such file")
            return nil
        }
        if let problem = SecretFile.problem(path: file) {
            fail(key, problem)
            return nil
        }
        do {
            var secret = try String(contentsOfFile: file, encoding: .utf8)
            // "\r\n" is one Character, which is neither "\n" nor "\r".
            while secret.hasSuffix("\n") || secret.hasSuffix("\r") || secret.hasSuffix("\r\n") { secret.removeLast() }
            guard !secret.isEmpty, secret.utf8.count <= maxBytes, !secret.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                // Never the contents: only what is wrong with them.
                fail(key, "\(file) must hold one line of 1 to \(maxBytes) printable characters")
                return nil
            }
            return secret
        } catch {
            fail(key, "cannot read \(file): \(error.localizedDescription)")
            return nil
        }
    }

    /// The `alerts.*` sinks that are configured. A URL must be http(s); secrets come from files.
    mutating func alertSinks() -> [String: AlertSinkSettings] {
        var sinks: [String: AlertSinkSettings] = [:]
        func url(_ key: String, _ value: String?) -> String? {
            guard let value else { return nil }
            guard value.hasPrefix("http://") || value.hasPrefix("https://"), value.utf8.count <= 2048,
                !value.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
            else {
                // A webhook URL may itself be the secret: never quoted.
                fail(key, "is not an http(s) URL")
                return nil
            }
            return value
        }
        if let key = secretLine("alerts.pagerduty.routing_key_file", maxBytes: 64) {
            let endpoint = url("alerts.pagerduty.url", text("alerts.pagerduty.url")) ?? "https://events.pagerduty.com/v2/enqueue"
            sinks["pagerduty"] = .pagerDuty(routingKey: key, url: endpoint)
        } else if text("alerts.pagerduty.url") != nil {
            fail("alerts.pagerduty.url", "needs alerts.pagerduty.routing_key_file")
        }
        if let hook = secretLine("alerts.slack.webhook_url_file", maxBytes: 2048), let checked = url("alerts.slack.webhook_url_file", hook) {
            sinks["slack"] = .slack(webhookURL: checked)
        }
        let chat = text("alerts.telegram.chat_id")
        if let token = secretLine("alerts.telegram.token_file", maxBytes: 256) {
            if let chat, !chat.isEmpty, chat.utf8.count <= 64, chat.utf8.allSatisfy({ $0 == 0x2D || $0 == 0x40 || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) {
                let base = url("alerts.telegram.base_url", text("alerts.telegram.base_url")) ?? "https://api.telegram.org"
                sinks["telegram"] = .telegram(token: token, chatID: chat, baseURL: base)
            } else {
                fail("alerts.telegram.chat_id", "is required with alerts.telegram.token_file: a chat id like -1001234567890 or @channel")
            }
        } else if chat != nil {
            fail("alerts.telegram.chat_id", "needs alerts.telegram.token_file")
        }
        if let hook = url("alerts.webhook.url", text("alerts.webhook.url")) {
            let receiver = text("alerts.webhook.receiver") ?? "baton"
            sinks["webhook"] = .webhook(url: hook, receiver: String(receiver.prefix(64)), externalURL: "")
        }
        return sinks
    }

    mutating func tradingSection(nodeID: Int) -> TradingConfiguration? {
        let enabledText = text("trading.enabled") ?? "false"
        if enabledText != "true" && enabledText != "false" {
            fail("trading.enabled", "'\(enabledText)' is not allowed: use true or false")
        }
        guard enabledText == "true" else {
            // Keys of a disabled section are still checked for spelling (below), not used.
            for (key, _) in BatondConfiguration.keys
            where key.hasPrefix("trading.") || key.hasPrefix("venue.") || key.hasPrefix("feed.") || key.hasPrefix("alerts.") {
                consumed.insert(key)
            }
            return nil
        }
        consumed.insert("trading.symbols")
        let symbols = (values["trading.symbols"]?.list ?? values["trading.symbols"]?.text.map { [$0] } ?? [])
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if symbols.isEmpty { fail("trading.symbols", "is required when trading.enabled: list the symbols to trade") }
        // Symbols and the account go into FIX fields: a control byte (SOH above all) would inject tags.
        func printable(_ text: String) -> Bool { !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) }
        for symbol in symbols where symbol.utf8.count > 32 || symbol.contains(",") || symbol.contains(" ") || !printable(symbol) {
            fail("trading.symbols", "'\(symbol.debugDescription)' is not a symbol: at most 32 printable characters, no commas or spaces")
        }
        if Set(symbols).count != symbols.count { fail("trading.symbols", "lists a symbol twice") }
        let account = text("trading.account") ?? "BATON"
        if account.isEmpty || account.utf8.count > 64 || !printable(account) {
            fail("trading.account", "\(account.debugDescription) is not an Account(1): 1 to 64 printable characters")
        }
        let prefix = text("trading.clordid_prefix") ?? "BTN"
        if prefix.isEmpty || prefix.utf8.count > 12 || prefix.contains("-") {
            fail("trading.clordid_prefix", "'\(prefix)' is not allowed: 1 to 12 characters without '-'")
        }
        let strategyName = text("trading.strategy.name") ?? "ma-crossover"
        let ownKeys = TradingConfiguration.strategyKeys
        if ownKeys[strategyName] == nil {
            fail(
                "trading.strategy.name",
                "'\(strategyName.prefix(40))' is not a strategy: use "
                    + ownKeys.keys.sorted().map { "\($0) (\(ownKeys[$0]!.map { $0.split(separator: ".").last ?? "" }.joined(separator: ", ")))" }
                    .joined(separator: " or "))
        }
        // A key of the other strategy is a mistake (it would do nothing): named, not ignored.
        for (name, keys) in ownKeys.sorted(by: { $0.key < $1.key }) where name != strategyName && ownKeys[strategyName] != nil {
            for key in keys where text(key) != nil {
                fail(key, "applies to \(name) only; trading.strategy.name is \(strategyName)")
            }
        }
        let lookback = integer("trading.strategy.lookback", default: 20, in: 2...10_000)
        var limitOffsetBps: Int64? = 5
        if let raw = text("trading.strategy.limit_offset_bps") {
            if raw == "market" {
                limitOffsetBps = nil
            } else if let value = Int64(raw), (0...1_000).contains(value) {
                limitOffsetBps = value
            } else {
                fail("trading.strategy.limit_offset_bps", "'\(raw.prefix(40))' is not allowed: a whole number of basis points from 0 to 1000, or market")
            }
        }
        let timeInForce = text("trading.strategy.time_in_force") ?? "ioc"
        if !["ioc", "day", "gtc"].contains(timeInForce) {
            fail("trading.strategy.time_in_force", "'\(timeInForce.prefix(40))' is not allowed: use ioc, day or gtc")
        }
        let fast = integer("trading.strategy.fast_window", default: 10, in: 1...10_000)
        let slow = integer("trading.strategy.slow_window", default: 30, in: 2...10_000)
        if slow <= fast {
            fail("trading.strategy.slow_window", "\(slow) must be larger than trading.strategy.fast_window (\(fast))")
        }
        var threshold: Int64 = 0
        if let raw = text("trading.strategy.threshold") {
            if let parsed = TickCodec.parsePrice(raw.trimmingCharacters(in: .whitespaces)), parsed >= 0 {
                threshold = parsed
            } else {
                fail("trading.strategy.threshold", "'\(raw)' is not a price: a non-negative decimal with at most 4 places")
            }
        }
        let quantity = integer("trading.strategy.quantity", default: 100, in: 1...1_000_000_000)
        let shortText = text("trading.strategy.allow_short") ?? "false"
        if shortText != "true" && shortText != "false" {
            fail("trading.strategy.allow_short", "'\(shortText)' is not allowed: use true or false")
        }
        let version = text("trading.strategy.version") ?? "1"
        var canary = TradingConfiguration.CanarySettings()
        canary.maxRejectPermille = integer("trading.canary.max_reject_permille", default: 200, in: 0...1000)
        canary.maxSlippageBps = integer("trading.canary.max_slippage_bps", default: 50, in: 0...10_000)
        canary.minFillPermille = integer("trading.canary.min_fill_permille", default: 800, in: 0...1000)
        canary.maxOrderRatePercent = integer("trading.canary.max_order_rate_percent", default: 300, in: 1...100_000)
        canary.orderCountFloor = integer("trading.canary.order_count_floor", default: 4, in: 0...1_000_000)
        canary.maxRiskRefusals = integer("trading.canary.max_risk_refusals", default: 5, in: 0...1_000_000)
        for (key, fallback) in [("trading.canary.max_pnl_shortfall", Int64(5_000)), ("trading.canary.kill_drawdown", Int64(10_000_000))] {
            var value = fallback
            if let raw = text(key) {
                if let parsed = TickCodec.parsePrice(raw.trimmingCharacters(in: .whitespaces)), parsed >= 0, key.hasSuffix("shortfall") || parsed > 0 {
                    value = parsed
                } else {
                    fail(key, "'\(raw.prefix(40))' is not an amount: a \(key.hasSuffix("shortfall") ? "non-negative" : "positive") decimal with at most 4 places")
                }
            }
            if key.hasSuffix("shortfall") { canary.maxPnLShortfall = value } else { canary.killDrawdown = value }
        }
        canary.rollback = text("trading.canary.rollback") ?? "flatten"
        if canary.rollback != "flatten" && canary.rollback != "hand-to-baseline" {
            fail("trading.canary.rollback", "'\(canary.rollback.prefix(40))' is not allowed: use flatten or hand-to-baseline")
        }
        let perMinute = integer("trading.risk.max_orders_per_minute", default: 10, in: 1...1_000_000)
        let perHour = integer("trading.risk.max_orders_per_hour", default: 200, in: 1...100_000_000)
        if perHour < perMinute {
            fail("trading.risk.max_orders_per_hour", "\(perHour) is below trading.risk.max_orders_per_minute (\(perMinute))")
        }
        let maxPosition = integer("trading.risk.max_position", default: 1_000, in: 1...1_000_000_000)
        let maxOrder = integer("trading.risk.max_order_quantity", default: 1_000, in: 1...1_000_000_000)
        if quantity > maxPosition {
            fail("trading.strategy.quantity", "\(quantity) exceeds trading.risk.max_position (\(maxPosition)): every signal would be rejected")
        }
        let ackTimeout = integer("trading.ack_timeout_ms", default: 2000, in: 10...600_000)
        let answerTimeout = integer("trading.reconcile.answer_timeout_ms", default: 1000, in: 10...600_000)
        let attempts = integer("trading.reconcile.attempts_before_halt", default: 3, in: 1...1000)
        var venue = BatondConfiguration.Endpoint(host: "127.0.0.1", port: 9878)
        if let raw = required("venue.fix"), let endpoint = endpoint("venue.fix", raw) {
            if endpoint.port == 0 { fail("venue.fix", "port 0 is not a broker address") }
            venue = endpoint
        }
        // One broker session for the whole cluster: every replica must use the same CompIDs.
        let sender = text("venue.sender_comp_id") ?? "BATON"
        let target = text("venue.target_comp_id") ?? "VENUE"
        for (key, value) in [("venue.sender_comp_id", sender), ("venue.target_comp_id", target)]
        where value.isEmpty || value.utf8.contains(where: { $0 <= 0x20 || $0 == 0x01 || $0 >= 0x7F }) {
            fail(key, "'\(value)' is not a CompID: printable ASCII without spaces")
        }
        let heartbeat = integer("venue.heartbeat_s", default: 5, in: 1...3600)
        let sequenceBlock = integer("venue.sequence_block", default: 1000, in: 10...1_000_000)
        let maxOrderAge = integer("venue.max_order_age_ms", default: 100, in: 1...60_000)
        let storeSyncText = text("venue.store_sync") ?? "true"
        if storeSyncText != "true" && storeSyncText != "false" {
            fail("venue.store_sync", "'\(storeSyncText)' is not allowed: use true or false")
        }
        let username = text("venue.username")
        if let username, username.isEmpty || username.utf8.count > 128
            || username.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        {
            fail("venue.username", "must be 1 to 128 printable characters")
        }
        let password = secretLine("venue.password_file", maxBytes: 128).map(FIXPassword.init)
        let resetText = text("venue.reset_seq_num_on_logon") ?? "false"
        if resetText != "true" && resetText != "false" {
            fail("venue.reset_seq_num_on_logon", "'\(resetText)' is not allowed: use true or false")
        }
        var tls: FIXTLSSettings?
        let tlsCA = text("venue.tls.ca_file")
        let tlsCert = text("venue.tls.cert_file")
        let tlsKey = text("venue.tls.key_file")
        let tlsName = text("venue.tls.server_name")
        if let tlsCA {
            for (key, path) in [("venue.tls.ca_file", tlsCA), ("venue.tls.cert_file", tlsCert), ("venue.tls.key_file", tlsKey)] {
                if let path, !FileManager.default.isReadableFile(atPath: path) { fail(key, "cannot read \(path)") }
            }
            if (tlsCert == nil) != (tlsKey == nil) {
                fail("venue.tls.cert_file", "venue.tls.cert_file and venue.tls.key_file go together")
            }
            tls = FIXTLSSettings(caCertificatePath: tlsCA, certificatePath: tlsCert, privateKeyPath: tlsKey, serverName: tlsName)
        } else if tlsCert != nil || tlsKey != nil || tlsName != nil {
            fail("venue.tls.ca_file", "is required when any other venue.tls key is set")
        }
        let massStatusText = text("venue.mass_status") ?? "false"
        if massStatusText != "true" && massStatusText != "false" {
            fail("venue.mass_status", "'\(massStatusText)' is not allowed: use true or false")
        }
        if ackTimeout <= maxOrderAge {
            // After an ack timeout the leader reconciles at once: the silent order must be past
            // the broker's gateway by then, or "unknown" would not prove it lost.
            fail(
                "trading.ack_timeout_ms",
                "\(ackTimeout) must be above venue.max_order_age_ms (\(maxOrderAge)): an order unanswered for this long must be past the broker's gateway")
        }
        let primary = required("feed.primary") ?? ""
        let backup = text("feed.backup")
        for (key, url) in [("feed.primary", primary), ("feed.backup", backup ?? "ws://x")]
        where !(url.hasPrefix("ws://") || url.hasPrefix("wss://")) {
            fail(key, "'\(url)' is not a WebSocket URL: expected ws://host:port/path")
        }
        let stale = integer("feed.stale_after_ms", default: 500, in: 10...600_000)
        let recover = integer("feed.recover_after_ms", default: 2000, in: 0...600_000)
        var configuration = TradingConfiguration(
            symbols: symbols, account: account, clOrdIDPrefix: prefix, strategyVersion: version, fastWindow: fast,
            slowWindow: slow, threshold: threshold, quantity: Int64(quantity), allowShort: shortText == "true",
            risk: .init(
                maxOrdersPerMinute: perMinute, maxOrdersPerHour: perHour, maxPosition: Int64(maxPosition),
                maxOrderQuantity: Int64(maxOrder)),
            ackTimeout: .milliseconds(ackTimeout), reconcileAnswerTimeout: .milliseconds(answerTimeout),
            reconcileAttemptsBeforeHalt: attempts, venue: venue, senderCompID: sender, targetCompID: target,
            heartbeatSeconds: heartbeat, storeSync: storeSyncText != "false", maxOrderAge: .milliseconds(maxOrderAge),
            feedPrimary: primary, feedBackup: backup, feedStaleAfter: .milliseconds(stale),
            feedRecoverAfter: .milliseconds(recover))
        configuration.username = username
        configuration.password = password
        configuration.strategyName = strategyName
        configuration.lookback = lookback
        configuration.limitOffsetBps = limitOffsetBps
        configuration.timeInForce = timeInForce
        configuration.canary = canary
        configuration.sequenceBlock = sequenceBlock
        let handOverAfter = integer("venue.hand_over_after_ms", default: 5000, in: 0...3_600_000)
        configuration.brokerHandOverAfter = handOverAfter == 0 ? nil : .milliseconds(handOverAfter)
        configuration.resetSeqNumOnLogon = resetText == "true"
        configuration.massStatus = massStatusText == "true"
        configuration.tls = tls
        if let directory = text("feed.capture.dir") {
            configuration.feedCapture = TickCaptureSettings(
                directory: directory,
                rotateBytes: Int64(integer("feed.capture.rotate_mb", default: 64, in: 1...1024)) << 20,
                rotateAfter: .seconds(integer("feed.capture.rotate_after_s", default: 3600, in: 1...86_400)),
                retainDays: integer("feed.capture.retain_days", default: 7, in: 0...3650),
                maxBytes: Int64(integer("feed.capture.max_mb", default: 10_240, in: 1...16_777_216)) << 20,
                bufferBytes: integer("feed.capture.buffer_kb", default: 32_768, in: 64...1_048_576) << 10,
                flushInterval: .milliseconds(integer("feed.capture.flush_ms", default: 200, in: 1...10_000)))
            if let settings = configuration.feedCapture, settings.maxBytes < settings.rotateBytes {
                fail("feed.capture.max_mb", "\(settings.maxBytes >> 20) is below feed.capture.rotate_mb (\(settings.rotateBytes >> 20)): one file would not fit")
            }
        }
        func objective(_ key: String, default fallback: Double) -> Double {
            guard let raw = text(key) else { return fallback }
            // A share strictly between 0 and 1: the error budget (1 - objective) divides every
            // burn rate. Written as a decimal, not a percentage.
            if let objective = Double(raw), objective > 0, objective < 1, raw.utf8.count <= 12 { return objective }
            fail(key, "'\(raw.prefix(40))' is not a share between 0 and 1 (e.g. 0.999 for 99.9 %)")
            return fallback
        }
        configuration.orderAckObjective = objective("trading.slo.order_ack.objective", default: 0.999)
        configuration.orderPathObjective = objective("trading.slo.order_path.objective", default: 0.999)
        configuration.orderPathBound = .milliseconds(integer("trading.slo.order_path.bound_ms", default: 1000, in: 1...600_000))
        configuration.leaderObjective = objective("trading.slo.leader.objective", default: 0.999)
        configuration.feedObjective = objective("trading.slo.feed.objective", default: 0.99)
        configuration.adminObjective = objective("trading.slo.admin.objective", default: 0.999)
        configuration.orderAckThreshold = .milliseconds(integer("trading.slo.order_ack.threshold_ms", default: 250, in: 1...600_000))
        configuration.sloPeriodDays = integer("trading.slo.period_days", default: 30, in: 4...366)
        configuration.alertSinks = alertSinks()
        for sink in ["pagerduty", "slack", "telegram", "webhook"] {
            let key = "alerts.\(sink).min_severity"
            let fallback = sink == "pagerduty" ? "error" : "info"
            let value = text(key) ?? fallback
            guard ["critical", "error", "warning", "info"].contains(value) else {
                fail(key, "'\(value.prefix(40))' is not a severity: use critical, error, warning or info")
                continue
            }
            if text(key) != nil, configuration.alertSinks[sink] == nil {
                fail(key, "is set, but alerts.\(sink) is not configured")
            }
            if configuration.alertSinks[sink] != nil { configuration.alertMinimumSeverity[sink] = value }
            // Each receiver's documented pace: PagerDuty about 120 events a minute per routing
            // key, Telegram about one message a second per chat, Slack one a second per webhook.
            let pace = ["pagerduty": 500, "slack": 1_000, "telegram": 1_000][sink] ?? 0
            let interval = integer("alerts.\(sink).min_interval_ms", default: pace, in: 0...3_600_000)
            if configuration.alertSinks[sink] != nil { configuration.alertMinimumIntervalMillis[sink] = Int64(interval) }
            if sink == "pagerduty" {
                for key in ["group_window_ms", "group_max"] where text("alerts.pagerduty.\(key)") != nil {
                    fail("alerts.pagerduty.\(key)", "is not allowed: PagerDuty takes one event per request, under its own dedup_key")
                }
            } else {
                let window = integer("alerts.\(sink).group_window_ms", default: 0, in: 0...600_000)
                let most = integer(
                    "alerts.\(sink).group_max", default: AlertDispatcher.Settings.defaultGroupMaximum,
                    in: 2...AlertDispatcher.Settings.largestGroup)
                if configuration.alertSinks[sink] != nil, window > 0 {
                    configuration.alertGroupWindowMillis[sink] = Int64(window)
                    configuration.alertGroupMaximum[sink] = most
                }
            }
            if sink != "pagerduty" {
                let trades = text("alerts.\(sink).trades") ?? "false"
                if trades != "true" && trades != "false" {
                    fail("alerts.\(sink).trades", "'\(trades.prefix(40))' is not allowed: use true or false")
                } else if trades == "true" {
                    if configuration.alertSinks[sink] == nil {
                        fail("alerts.\(sink).trades", "is true, but alerts.\(sink) is not configured")
                    } else {
                        configuration.alertTradeSinks.append(sink)
                    }
                }
            }
            if let quiet = text("alerts.\(sink).quiet_hours") {
                if let hours = QuietHours(quiet) {
                    configuration.alertQuietHours[sink] = hours
                } else {
                    fail("alerts.\(sink).quiet_hours", "'\(quiet.prefix(40))' is not a window like 22:00-07:00 (UTC, HH:MM-HH:MM, start ≠ end)")
                }
            }
        }
        return configuration
    }
}

/// The broker logon password: kept out of every description, log line and error.
public struct FIXPassword: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "***" }
    public var debugDescription: String { "***" }
}
