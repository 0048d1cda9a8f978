import ArgumentParser
import AsyncHTTPClient
import BatonJournal
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// The on-call command line over the admin API (and, for `journal verify`, over a data dir).
@main
struct BatonCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batonctl",
        abstract: "On-call CLI for a Baton cluster.",
        subcommands: [
            Status.self, Orders.self, Strategy.self, Canary.self, Positions.self, Trading.self, ServiceLevels.self, Alerts.self, Pause.self, Resume.self,
            TransferLeadership.self, Member.self, Propose.self, Audit.self, Journal.self,
        ]
    )
}

struct AdminOptions: ParsableArguments {
    @Option(
        name: .customLong("admin"),
        help: "Comma-separated admin URLs of the replicas (env BATON_ADMIN_URLS; default: the local cluster)."
    )
    var adminURLs: String =
        ProcessInfo.processInfo.environment["BATON_ADMIN_URLS"]
        ?? "http://127.0.0.1:7201,http://127.0.0.1:7202,http://127.0.0.1:7203"

    // The token never comes from argv: every user of the host can read another's command line
    // in /proc. It comes from the environment or from a file only its owner can read.
    @Option(
        name: .customLong("token-file"),
        help: "File (mode 0600) holding the bearer token (default: env BATON_ADMIN_TOKEN).")
    var tokenFile: String?

    /// The bearer token: `--token-file`'s contents, else BATON_ADMIN_TOKEN, else none.
    var token: String? {
        if let tokenFile {
            return (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
        }
        return ProcessInfo.processInfo.environment["BATON_ADMIN_TOKEN"]
    }

    @Option(
        name: .customLong("ca-file"),
        help: "PEM file of the CA that signed the admin plane's certificate, for https:// replicas whose certificate the system does not trust (default: env BATON_ADMIN_CA_FILE).")
    var caOption: String?

    /// `--ca-file`, else BATON_ADMIN_CA_FILE, else none (the system's trust roots).
    var caFile: String? { caOption ?? ProcessInfo.processInfo.environment["BATON_ADMIN_CA_FILE"] }

    @Option(help: "Seconds to wait for each replica (1 to 3600).")
    var timeout: Int = 5

    mutating func validate() throws {
        guard (1...3600).contains(timeout) else {
            throw ValidationError("--timeout \(timeout) must be between 1 and 3600 seconds")
        }
        guard !urls.isEmpty else {
            throw ValidationError("--admin '\(adminURLs)' names no replica: give comma-separated URLs like http://127.0.0.1:7201")
        }
        for url in urls where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--admin: '\(url)' is not an http(s) URL")
        }
        if let caFile {
            do {
                guard try !NIOSSLCertificate.fromPEMFile(caFile).isEmpty else {
                    throw ValidationError("--ca-file \(caFile) holds no PEM certificate")
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("--ca-file \(caFile): not a readable PEM certificate file (\(error))")
            }
        }
        if let tokenFile {
            var info = stat()
            guard stat(tokenFile, &info) == 0 else {
                throw ValidationError("--token-file \(tokenFile): \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw ValidationError(
                    "--token-file \(tokenFile) has mode \(String(info.st_mode & 0o777, radix: 8)): "
                        + "a token must not be readable by group or other (chmod 600)")
            }
            guard let token, !token.isEmpty else {
                throw ValidationError("--token-file \(tokenFile) is unreadable or empty")
            }
        }
    }

    var urls: [String] {
        adminURLs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }
}

/// What `/cluster` returns (see BatonDaemon.ConsensusLoop.ClusterView).
struct ClusterView: Decodable {
    struct Member: Decodable {
        var id: UInt64
        var voter: Bool
        var match: UInt64?
        var lag: UInt64?
        var state: String?
    }
    struct Peer: Decodable {
        var id: UInt64
        var connected: Bool
    }
    var node: UInt64
    var role: String
    var term: UInt64
    var leader: UInt64?
    var commitIndex: UInt64
    var appliedIndex: UInt64
    var lastIndex: UInt64
    var leaseRemainingMs: Double?
    var members: [Member]
    var peers: [Peer]
}

enum Admin {
    static func get(_ url: String, ca: String?, timeout: Int, token: String? = nil) async throws -> (status: UInt, body: Data) {
        try await send(url, method: .GET, token: token, body: nil, ca: ca, timeout: timeout)
    }

    static func send(_ url: String, method: HTTPMethod, token: String?, body: Data?, ca: String?, timeout: Int)
        async throws -> (status: UInt, body: Data)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        guard let ca else {
            return try await execute(request, on: HTTPClient.shared, timeout: timeout)
        }
        // A private CA: a client that trusts it (and only it) for this request. The host name is
        // still verified against the certificate; batonctl makes a handful of requests a run.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        tls.minimumTLSVersion = .tlsv12
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            let reply = try await execute(request, on: client, timeout: timeout)
            try await client.shutdown()
            return reply
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private static func execute(_ request: HTTPClientRequest, on client: HTTPClient, timeout: Int) async throws
        -> (status: UInt, body: Data)
    {
        let response = try await client.execute(request, timeout: .seconds(Int64(timeout)))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Asks every replica who leads and returns the leader's admin URL.
    static func findLeader(_ options: AdminOptions) async throws -> String {
        // Why each replica was not the leader: a 503 is an answer; a refused connection or a
        // certificate the CA did not sign is not, and the operator needs to see which it was.
        var unreachable: [String] = []
        for url in options.urls {
            do {
                let (status, _) = try await get("\(url)/leader", ca: options.caFile, timeout: options.timeout)
                if status == 200 { return url }
            } catch {
                unreachable.append("\(url): \(error)")
            }
        }
        if unreachable.count == options.urls.count {
            throw ValidationError("no replica answered: \(unreachable.joined(separator: "; "))")
        }
        throw ValidationError(
            "no replica at \(options.urls.joined(separator: ", ")) answers /leader with 200: no leader right now?"
                + (unreachable.isEmpty ? "" : " (unreachable: \(unreachable.joined(separator: "; ")))"))
    }

    static func message(_ body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let error = object["error"] {
            return "\(error)"
        }
        return String(decoding: body, as: UTF8.self)
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show every replica's view of the cluster as a table.")
    @OptionGroup var options: AdminOptions

    func run() async throws {
        var rows: [[String]] = [
            ["NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "LEASE", "PEERS UP", "ADMIN"]
        ]
        var leaders: Set<UInt64> = []
        var unreachable: [String] = []
        for url in options.urls {
            do {
                let (_, body) = try await Admin.get("\(url)/cluster", ca: options.caFile, timeout: options.timeout, token: options.token)
                let view = try Admin.decoder.decode(ClusterView.self, from: body)
                if view.role == "leader" { leaders.insert(view.node) }
                rows.append([
                    "n\(view.node)", view.role, "\(view.term)", view.leader.map { "n\($0)" } ?? "-",
                    "\(view.commitIndex)", "\(view.appliedIndex)", "\(view.lastIndex)",
                    view.leaseRemainingMs.map { String(format: "%.0fms", $0) } ?? "-",
                    "\(view.peers.filter(\.connected).count)/\(view.peers.count)", url,
                ])
            } catch {
                rows.append(["?", "unreachable", "-", "-", "-", "-", "-", "-", "-", url])
                unreachable.append("\(url): \(error)")
            }
        }
        printTable(rows)
        for problem in unreachable { print("unreachable: \(problem)") }
        if leaders.count > 1 { print("warning: more than one replica reports itself leader (different terms?)") }
        if leaders.isEmpty { print("no leader right now") }
    }
}

struct TransferLeadership: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer-leadership",
        abstract: "Hand leadership from the current leader to another voter (default: the most caught-up)."
    )
    @OptionGroup var options: AdminOptions
    @Option(help: "Target node id.")
    var to: UInt64?

    func run() async throws {
        let leader = try await Admin.findLeader(options)
        let body = try JSONSerialization.data(withJSONObject: to.map { ["to": $0] } ?? [:])
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/transfer-leadership", method: .POST, token: options.token, body: body,
            ca: options.caFile, timeout: options.timeout + 5
        )
        guard status == 200 else { throw ValidationError("transfer failed (HTTP \(status)): \(Admin.message(reply))") }
        print(String(decoding: reply, as: UTF8.self))
    }
}

/// Membership, one change at a time through the log (etcd's `member` commands). Replacing a
/// dead replica: `member remove OLD`, start the new one on an empty data directory with a new
/// node id, `member add NEW ADDR --learner`, wait until `member list` shows it caught up,
/// `member promote NEW` (runbooks/replica-operations.md).
struct Member: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add, promote and remove members (admin role).",
        subcommands: [MemberList.self, MemberAdd.self, MemberPromote.self, MemberRemove.self], defaultSubcommand: MemberList.self)

    static func change(_ request: [String: Any], options: AdminOptions) async throws {
        let leader = try await Admin.findLeader(options)
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/members", method: .POST, token: options.token,
            body: try JSONSerialization.data(withJSONObject: request), ca: options.caFile, timeout: options.timeout + 5)
        guard status == 200 else {
            throw ValidationError("membership change refused (HTTP \(status)): \(Admin.message(reply))")
        }
        struct Changed: Decodable {
            var change: String
            var logIndex: UInt64
            var voters: [UInt64]
            var learners: [UInt64]
        }
        let changed = try Admin.decoder.decode(Changed.self, from: reply)
        let learners = changed.learners.isEmpty ? "" : ", learners \(changed.learners.map(String.init).joined(separator: ","))"
        print("\(changed.change) committed at \(changed.logIndex): voters \(changed.voters.map(String.init).joined(separator: ","))\(learners)")
    }
}

struct MemberList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The leader's view of every member: voter or learner, match index and lag.")
    @OptionGroup var options: AdminOptions

    func run() async throws {
        let leader = try await Admin.findLeader(options)
        let (_, body) = try await Admin.get("\(leader)/cluster", ca: options.caFile, timeout: options.timeout, token: options.token)
        let view = try Admin.decoder.decode(ClusterView.self, from: body)
        var rows: [[String]] = [["NODE", "KIND", "MATCH", "LAG", "STATE"]]
        for member in view.members {
            rows.append([
                "n\(member.id)\(member.id == view.node ? " (leader)" : "")", member.voter ? "voter" : "learner",
                member.match.map(String.init) ?? "-", member.lag.map(String.init) ?? "-",
                member.id == view.node ? "-" : member.state ?? "-",  // the leader replicates to others, not itself
            ])
        }
        printTable(rows)
    }
}

struct MemberAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a replica as a learner: it receives the log and votes in nothing until promoted.")
    @OptionGroup var options: AdminOptions
    @Argument(help: "The new replica's node id (never one a removed replica had).") var id: UInt64
    @Argument(help: "The address its peers dial, host:port.") var address: String
    @Flag(help: "Add as a learner (required: a replica joins as a learner and is promoted once caught up).")
    var learner = false

    func validate() throws {
        guard learner else {
            throw ValidationError("a replica joins as a learner: pass --learner, then `member promote \(id)` once it is caught up")
        }
    }

    func run() async throws {
        try await Member.change(["action": "add-learner", "id": id, "address": address], options: options)
    }
}

struct MemberPromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote", abstract: "Make a caught-up learner a voter (refused while it lags or if quorum would be lost).")
    @OptionGroup var options: AdminOptions
    @Argument(help: "The learner's node id.") var id: UInt64

    func run() async throws { try await Member.change(["action": "promote", "id": id], options: options) }
}

struct MemberRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a voter or learner (refused if the voters left could not form a quorum now).")
    @OptionGroup var options: AdminOptions
    @Argument(help: "The member's node id.") var id: UInt64

    func run() async throws { try await Member.change(["action": "remove", "id": id], options: options) }
}

struct Propose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Propose test entries through the leader and wait until they are committed."
    )
    @OptionGroup var options: AdminOptions
    @Option(help: "Entries per request.")
    var count: Int = 10
    @Option(help: "Bytes per entry.")
    var size: Int = 256
    @Option(help: "Number of requests, one after the other.")
    var repeatCount: Int = 1

    func run() async throws {
        let leader = try await Admin.findLeader(options)
        let body = try JSONSerialization.data(withJSONObject: ["count": count, "size": size])
        for _ in 0..<max(1, repeatCount) {
            let (status, reply) = try await Admin.send(
                "\(leader)/admin/propose", method: .POST, token: options.token, body: body, ca: options.caFile, timeout: options.timeout + 5
            )
            guard status == 200 else {
                throw ValidationError("propose failed (HTTP \(status)): \(Admin.message(reply))")
            }
            print(String(decoding: reply, as: UTF8.self))
        }
    }
}

struct Journal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a replica's journal.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the journal's SHA-256 chain and report the first broken link."
        )
        @Option(help: "The replica's data directory.")
        var dataDir: String

        func run() async throws {
            // The journal logs at info when it opens; a CLI's output is its report alone.
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
            let report = try RaftJournal.verify(directory: dataDir)
            print(report.description)
            if !report.isIntact { throw ExitCode(1) }
        }
    }
}

/// Prints rows as aligned columns.
func printTable(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

/// Reads a trading view from one replica: the leader's by default (it is the one acting), any
/// replica with `--node`.
struct TradingSource: ParsableArguments {
    @Option(help: "Ask this replica (1-based position in --admin) instead of the leader.")
    var node: Int?

    func url(_ options: AdminOptions) async throws -> String {
        if let node {
            guard (1...options.urls.count).contains(node) else {
                throw ValidationError("--node \(node) is not one of the \(options.urls.count) admin URLs")
            }
            return options.urls[node - 1]
        }
        return try await Admin.findLeader(options)
    }

    func fetch(_ path: String, _ options: AdminOptions) async throws -> Data {
        let base = try await url(options)
        let (status, body) = try await Admin.get("\(base)\(path)", ca: options.caFile, timeout: options.timeout, token: options.token)
        guard status == 200 else { throw ValidationError("\(base)\(path): HTTP \(status): \(Admin.message(body))") }
        return body
    }
}

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The journal's orders: list them (default), or resolve one by hand.",
        subcommands: [OrdersList.self, ResolveOrder.self], defaultSubcommand: OrdersList.self)
}

struct OrdersList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the journal's orders (newest last).")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource
    @Option(help: "How many of the newest orders.")
    var limit: Int = 20

    struct Order: Decodable {
        var clOrdId: String
        var symbol: String
        var side: String
        var quantity: Int64
        var status: String
        var cumQty: Int64
        var avgPx: String
        var sends: Int
        var possResend: Bool
        var reconciledInTerm: UInt64?
        var unknownReason: String?
        var resolvedBy: String?
        var text: String?
        /// Absent from replicas older than the strategy registry.
        var strategy: String?
        var strategyVersion: String?
    }

    func run() async throws {
        let body = try await source.fetch("/orders?limit=\(limit)", options)
        let orders = try Admin.decoder.decode([Order].self, from: body)
        var rows = [["CLORDID", "SYMBOL", "SIDE", "QTY", "STATUS", "FILLED", "AVG PX", "SENDS", "STRATEGY", "NOTE"]]
        for o in orders {
            var note: [String] = []
            if o.possResend { note.append("re-sent PossResend=Y") }
            if let term = o.reconciledInTerm { note.append("reconciled in term \(term)") }
            if let why = o.unknownReason { note.append("unknown: \(why)") }
            if let by = o.resolvedBy { note.append("resolved by \(by)") }
            rows.append([
                o.clOrdId, o.symbol, o.side, "\(o.quantity)", o.status, "\(o.cumQty)", o.avgPx, "\(o.sends)",
                o.strategy.map { "\($0) v\(o.strategyVersion ?? "?")" } ?? "-", note.joined(separator: "; "),
            ])
        }
        printTable(rows)
        if orders.isEmpty { print("no orders yet") }
    }
}

/// After checking with the broker (runbooks/trading.md, "An order reconciliation cannot settle"),
/// an operator says what happened to an order the cluster holds HALTED on.
struct ResolveOrder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Resolve an open order by hand, after checking with the broker (journaled and audited).",
        discussion: """
            Use it only for an order the leader cannot reconcile (trading HALTED names it). Check with the
            broker first: its order blotter or desk, by ClOrdID. Then either:
              batonctl orders resolve BTN-3-41 --not-received --reason "desk: never received, ticket 123"
              batonctl orders resolve BTN-3-41 --filled 100@187.25 --reason "desk: filled, ticket 123"
            A not-received order closes and is never re-sent; a filled one moves the position.
            """)
    @OptionGroup var options: AdminOptions
    @Argument(help: "The order's ClOrdID (batonctl orders).") var clOrdID: String
    @Flag(help: "The broker confirms it never received the order.") var notReceived = false
    @Option(help: "The broker confirms this total fill, as QTY@AVGPX (e.g. 100@187.25); nothing more will fill.")
    var filled: String?
    @Option(help: "What the broker confirmed, and where (journaled).") var reason: String

    func validate() throws {
        guard notReceived != (filled != nil) else {
            throw ValidationError("give exactly one of --not-received or --filled QTY@PX")
        }
        if let filled {
            let parts = filled.split(separator: "@")
            guard parts.count == 2, let quantity = Int64(parts[0]), quantity > 0, !parts[1].isEmpty else {
                throw ValidationError("--filled \(filled): expected QTY@PX with a whole quantity, e.g. 100@187.25")
            }
        }
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("--reason must say what the broker confirmed")
        }
    }

    func run() async throws {
        var request: [String: Any] = ["clordid": clOrdID, "reason": reason]
        if let filled {
            let parts = filled.split(separator: "@")
            request["outcome"] = "filled"
            request["quantity"] = Int64(parts[0]) ?? 0
            request["price"] = String(parts[1])
        } else {
            request["outcome"] = "not-received"
        }
        let leader = try await Admin.findLeader(options)
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/orders/resolve", method: .POST, token: options.token,
            body: try JSONSerialization.data(withJSONObject: request), ca: options.caFile, timeout: options.timeout + 5)
        guard status == 200 else {
            throw ValidationError("resolving \(clOrdID) failed (HTTP \(status)): \(Admin.message(reply))")
        }
        let order = try Admin.decoder.decode(OrdersList.Order.self, from: reply)
        print("\(order.clOrdId): \(order.status), filled \(order.cumQty) at \(order.avgPx) — \(order.text ?? "")")
    }
}

struct Strategy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What each symbol runs (default), or deploy a strategy version (journaled and audited).",
        subcommands: [StrategyList.self, StrategyDeploy.self], defaultSubcommand: StrategyList.self)
}

struct StrategyList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "What each symbol runs, and who put it there.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource

    struct Running: Decodable {
        var symbol: String
        var strategy: String
        var version: String
        var parameters: [String: String]
        var source: String
        var deployedBy: String?
        var reason: String?
        var logIndex: UInt64?
    }

    func run() async throws {
        let running = try Admin.decoder.decode([Running].self, from: try await source.fetch("/strategies", options))
        var rows = [["SYMBOL", "STRATEGY", "VERSION", "PARAMETERS", "FROM"]]
        for r in running {
            let from = r.source == "deployment" ? "deployed by \(r.deployedBy ?? "?") at log index \(r.logIndex ?? 0): \(r.reason ?? "")" : r.source
            rows.append([
                r.symbol, r.strategy, r.version, r.parameters.keys.sorted().map { "\($0)=\(r.parameters[$0] ?? "")" }.joined(separator: " "), from,
            ])
        }
        printTable(rows)
    }
}

struct StrategyDeploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Put a strategy version on some symbols (all traded ones by default); every replica switches at once.",
        discussion: """
              batonctl strategy deploy channel-breakout --version 2 --param lookback=30 --param allow_short=true \\
                --reason "breakout v2, backtest 2026-11"
            Strategies: ma-crossover (fast_window, slow_window, threshold, quantity, allow_short),
            channel-breakout (lookback, quantity, allow_short). A parameter left out takes its default.
            """)
    @OptionGroup var options: AdminOptions
    @Argument(help: "The strategy's name (batonctl strategy deploy --help lists them).") var name: String
    @Option(help: "The version journaled with every intent it decides.") var version: String
    @Option(name: .customLong("symbol"), help: "A symbol to deploy it on (repeat; default: every traded symbol).")
    var symbols: [String] = []
    @Option(name: .customLong("param"), help: "A parameter as KEY=VALUE (repeat).") var params: [String] = []
    @Option(help: "Why this version goes out (journaled).") var reason: String

    func validate() throws {
        for param in params where !param.contains("=") || param.hasPrefix("=") {
            throw ValidationError("--param \(param): expected KEY=VALUE, e.g. lookback=30")
        }
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
    }

    func run() async throws {
        var parameters: [String: String] = [:]
        for param in params {
            let (key, value) = (param.prefix { $0 != "=" }, param.drop { $0 != "=" }.dropFirst())
            parameters[String(key)] = String(value)
        }
        var request: [String: Any] = ["name": name, "version": version, "reason": reason, "parameters": parameters]
        if !symbols.isEmpty { request["symbols"] = symbols }
        let leader = try await Admin.findLeader(options)
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/strategies", method: .POST, token: options.token,
            body: try JSONSerialization.data(withJSONObject: request), ca: options.caFile, timeout: options.timeout + 5)
        guard status == 200 else {
            throw ValidationError("deploying \(name) v\(version) failed (HTTP \(status)): \(Admin.message(reply))")
        }
        let running = try Admin.decoder.decode([StrategyList.Running].self, from: reply)
        for r in running where r.source == "deployment" && r.strategy == name && r.version == version {
            print("\(r.symbol): \(r.strategy) v\(r.version) from log index \(r.logIndex ?? 0)")
        }
    }
}

struct Canary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a candidate strategy version beside the baseline on a growing share of its quantity.",
        subcommands: [CanaryStatus.self, CanaryStart.self, CanaryPromote.self, CanaryAbort.self, CanaryPause.self, CanaryResume.self],
        defaultSubcommand: CanaryStatus.self)
}

/// GET /canary, as batonctl reads it.
struct CanaryReply: Decodable {
    struct Step: Decodable { var step: Int; var percent: Int; var state: String }
    struct Measurement: Decodable {
        var orders: Int; var brokerRejects: Int; var riskRefusals: Int; var orderedQuantity: Int64; var filledQuantity: Int64
        var slippageBps: Int; var windowPnL: Int64?; var windowPnl: Int64?; var markToMarket: Int64; var allocation: Int64
        var pnl: Int64 { windowPnL ?? windowPnl ?? 0 }
    }
    struct Check: Decodable {
        var logIndex: UInt64; var step: Int; var outcome: String; var failures: [String]; var candidate: Measurement
        var baseline: Measurement; var drawdown: Int64
    }
    struct Decision: Decodable { var action: String; var by: String; var detail: String; var percent: Int; var index: UInt64 }
    var strategy: String
    var version: String
    var symbols: [String]
    var status: String
    var step: Int
    var percent: Int
    var intervalSeconds: Int64
    var passedChecks: Int
    var failedChecks: Int
    var maxFailedChecks: Int
    var rollback: String
    var startedBy: String
    var endReason: String?
    var steps: [Step]
    var checks: [Check]
    var decisions: [Decision]

    func print() {
        Swift.print("canary \(strategy) v\(version) on \(symbols.joined(separator: ",")): \(status), step \(step)/\(steps.count) at \(percent)%, checks passed \(passedChecks), failed \(failedChecks)/\(maxFailedChecks), every \(intervalSeconds) s, rollback \(rollback), started by \(startedBy)")
        if let endReason { Swift.print("ended: \(endReason)") }
        printTable([["STEP", "PERCENT", "STATE"]] + steps.map { ["\($0.step)", "\($0.percent)%", $0.state] })
        var rows = [["INDEX", "STEP", "OUTCOME", "ORDERS c/b", "REJECTS", "FILL", "SLIP bps", "PnL c/b", "DRAWDOWN", "FAILURES"]]
        for c in checks.suffix(20) {
            rows.append([
                "\(c.logIndex)", "\(c.step)", c.outcome, "\(c.candidate.orders)/\(c.baseline.orders)", "\(c.candidate.brokerRejects)",
                "\(c.candidate.filledQuantity)/\(c.candidate.orderedQuantity)", "\(c.candidate.slippageBps)",
                "\(c.candidate.pnl)/\(c.baseline.pnl)", "\(c.drawdown)", c.failures.joined(separator: "; "),
            ])
        }
        printTable(rows)
        printTable([["INDEX", "ACTION", "BY", "PERCENT", "DETAIL"]] + decisions.suffix(20).map { ["\($0.index)", $0.action, $0.by, "\($0.percent)%", $0.detail] })
    }
}

struct CanaryStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The canary's steps, checks and decisions.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource

    func run() async throws {
        try Admin.decoder.decode(CanaryReply.self, from: try await source.fetch("/canary", options)).print()
    }
}

struct CanaryStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a canary of a strategy version beside the baseline.",
        discussion: """
              batonctl canary start --strategy channel-breakout --version 2 --param lookback=30 \\
                --steps 5,25,50,100 --interval 10m --max-failed-checks 2 --reason "breakout v2"
            Each step gives the candidate that percentage of the symbol's quantity; the baseline keeps
            the rest. A check every interval judges it (trading.canary.* limits); a passed check moves
            to the next step, the last one promotes it.
            """)
    @OptionGroup var options: AdminOptions
    @Option(help: "The candidate's strategy (batonctl strategy deploy --help lists them).") var strategy: String
    @Option(help: "The candidate's version.") var version: String
    @Option(name: .customLong("param"), help: "A parameter as KEY=VALUE (repeat).") var params: [String] = []
    @Option(name: .customLong("symbol"), help: "A symbol to run it on (repeat; default: every traded symbol).")
    var symbols: [String] = []
    @Option(help: "Rising percentages, the last 100.") var steps: String = "5,25,50,100"
    @Option(help: "How often a check judges the step: 90s, 10m, 1h.") var interval: String = "10m"
    @Option(help: "Failed checks that abort it.") var maxFailedChecks: Int = 2
    @Option(help: "Why (journaled).") var reason: String

    static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600]
        if let unit = text.last.flatMap({ units[$0] }), let value = Int(text.dropLast()) { return value * unit }
        return Int(text)
    }

    func validate() throws {
        for param in params where !param.contains("=") || param.hasPrefix("=") {
            throw ValidationError("--param \(param): expected KEY=VALUE, e.g. lookback=30")
        }
        guard steps.split(separator: ",").allSatisfy({ Int($0.trimmingCharacters(in: .whitespaces)) != nil }) else {
            throw ValidationError("--steps \(steps): expected percentages like 5,25,50,100")
        }
        guard Self.seconds(interval) != nil else { throw ValidationError("--interval \(interval): expected e.g. 90s, 10m or 1h") }
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
    }

    func run() async throws {
        var parameters: [String: String] = [:]
        for param in params {
            parameters[String(param.prefix { $0 != "=" })] = String(param.drop { $0 != "=" }.dropFirst())
        }
        var request: [String: Any] = [
            "name": strategy, "version": version, "reason": reason, "parameters": parameters,
            "steps": steps.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) },
            "interval_s": Self.seconds(interval) ?? 0, "max_failed_checks": maxFailedChecks,
        ]
        if !symbols.isEmpty { request["symbols"] = symbols }
        let leader = try await Admin.findLeader(options)
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/canary", method: .POST, token: options.token,
            body: try JSONSerialization.data(withJSONObject: request), ca: options.caFile, timeout: options.timeout + 5)
        guard status == 200 else {
            throw ValidationError("starting the canary of \(strategy) v\(version) failed (HTTP \(status)): \(Admin.message(reply))")
        }
        try Admin.decoder.decode(CanaryReply.self, from: reply).print()
    }
}

/// promote, promote --full, abort, pause, resume: one request each, journaled with who.
enum CanaryDecision {
    static func send(_ action: String, reason: String?, _ options: AdminOptions) async throws {
        var request: [String: Any] = ["action": action]
        if let reason { request["reason"] = reason }
        let leader = try await Admin.findLeader(options)
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/canary/decide", method: .POST, token: options.token,
            body: try JSONSerialization.data(withJSONObject: request), ca: options.caFile, timeout: options.timeout + 5)
        guard status == 200 else { throw ValidationError("canary \(action) failed (HTTP \(status)): \(Admin.message(reply))") }
        try Admin.decoder.decode(CanaryReply.self, from: reply).print()
    }
}

struct CanaryPromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "promote", abstract: "Move the canary to its next step now (--full: make it the baseline now).")
    @OptionGroup var options: AdminOptions
    @Flag(help: "Skip the remaining steps: the candidate becomes the baseline.") var full = false
    @Option(help: "Why (journaled).") var reason: String?
    func run() async throws { try await CanaryDecision.send(full ? "promote-full" : "promote", reason: reason, options) }
}

struct CanaryAbort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Abort the canary and roll it back (trading.canary.rollback).")
    @OptionGroup var options: AdminOptions
    @Option(help: "Why (journaled).") var reason: String?
    func run() async throws { try await CanaryDecision.send("abort", reason: reason, options) }
}

struct CanaryPause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Hold the canary at its step: no checks count until resumed (the kill limit still applies).")
    @OptionGroup var options: AdminOptions
    @Option(help: "Why (journaled).") var reason: String?
    func run() async throws { try await CanaryDecision.send("pause", reason: reason, options) }
}

struct CanaryResume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused canary on a fresh analysis window.")
    @OptionGroup var options: AdminOptions
    @Option(help: "Why (journaled).") var reason: String?
    func run() async throws { try await CanaryDecision.send("resume", reason: reason, options) }
}

struct Positions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show positions derived from journaled fills.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource

    struct Position: Decodable {
        var symbol: String
        var quantity: Int64
        var averagePrice: String
        var realizedPnl: String
        var filledQuantity: Int64
        var fills: Int
    }

    func run() async throws {
        let body = try await source.fetch("/positions", options)
        let positions = try Admin.decoder.decode([Position].self, from: body)
        var rows = [["SYMBOL", "POSITION", "AVG PX", "REALIZED P&L", "FILLED", "FILLS"]]
        for p in positions {
            rows.append([p.symbol, "\(p.quantity)", p.averagePrice, p.realizedPnl, "\(p.filledQuantity)", "\(p.fills)"])
        }
        printTable(rows)
        if positions.isEmpty { print("no positions yet") }
    }
}

struct ServiceLevels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slo",
        abstract: "Each SLO's error budget left and burn rate per window, as the leader measures them.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource

    struct View: Decodable {
        struct Status: Decodable {
            struct Window: Decodable {
                var window: String
                var good: UInt64
                var bad: UInt64
                var burnRate: Double
            }
            var slo: String
            var objective: Double
            var period: String
            var budgetRemaining: Double
            var windows: [Window]
            var firing: [String]
        }
        var node: UInt64
        var leader: Bool
        var slos: [Status]
    }

    func run() async throws {
        let view = try Admin.decoder.decode(View.self, from: try await source.fetch("/slo", options))
        let windows = view.slos.first?.windows.map(\.window) ?? []
        var rows = [["SLO", "OBJECTIVE", "PERIOD", "BUDGET LEFT"] + windows.map { "BURN \($0)" } + ["EVENTS 5m", "FIRING"]]
        for slo in view.slos {
            let burns = windows.map { name in
                slo.windows.first { $0.window == name }.map { String(format: "%.2f", $0.burnRate) } ?? "-"
            }
            let recent = slo.windows.first { $0.window == "5m" }.map { "\($0.good) good, \($0.bad) bad" } ?? "-"
            rows.append(
                [slo.slo, String(format: "%g%%", slo.objective * 100), slo.period, String(format: "%.1f%%", slo.budgetRemaining * 100)]
                    + burns + [recent, slo.firing.isEmpty ? "-" : slo.firing.joined(separator: "; ")])
        }
        printTable(rows)
        if !view.leader {
            print("n\(view.node) is not the leader: only the leader sees the broker's answers, so its windows are empty")
        }
    }
}

struct Alerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open incidents and alert deliveries (default), or send a test alert to one sink.",
        subcommands: [AlertsList.self, AlertsTest.self], defaultSubcommand: AlertsList.self)
}

struct AlertsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Open incidents, pending deliveries and the newest finished ones, from the leader's outbox.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource
    @Option(help: "How many finished deliveries to show (1 to 200).")
    var limit: Int = 20

    struct View: Decodable {
        struct Incident: Decodable {
            var identity: String
            var key: String
            var level: String
            var summary: String
            var since: String
            var runbook: String?
        }
        struct Delivery: Decodable {
            var sink: String
            var status: String
            var attempts: Int
            var at: String?
            var lastError: String?
            var notBefore: String?
        }
        struct Entry: Decodable {
            var id: UInt64
            var key: String
            var action: String
            var level: String
            var summary: String
            var deliveries: [Delivery]
        }
        struct Sink: Decodable {
            var name: String
            var minSeverity: String
        }
        var node: UInt64
        var leader: Bool
        var sinks: [Sink]
        var open: [Incident]
        var pending: [Entry]
        var recent: [Entry]
    }

    func run() async throws {
        guard (1...200).contains(limit) else { throw ValidationError("--limit must be from 1 to 200") }
        let view = try Admin.decoder.decode(View.self, from: try await source.fetch("/alerts?limit=\(limit)", options))
        print("sinks: " + (view.sinks.isEmpty ? "none configured (alerts.*)" : view.sinks.map { "\($0.name) (\($0.minSeverity) and above)" }.joined(separator: ", ")))
        print("\nOPEN INCIDENTS (\(view.open.count))")
        if view.open.isEmpty {
            print("none")
        } else {
            printTable([["KEY", "LEVEL", "SINCE", "SUMMARY"]] + view.open.map { [$0.key, $0.level, $0.since, $0.summary] })
            for incident in view.open { if let runbook = incident.runbook { print("  \(incident.key): \(runbook)") } }
        }
        func rows(_ entries: [View.Entry]) -> [[String]] {
            entries.flatMap { entry in
                entry.deliveries.map { d in
                    let when = d.at ?? d.notBefore.map { "not before \($0)" } ?? "-"
                    return [entry.key, entry.action, d.sink, d.status, "\(d.attempts)", when, d.lastError ?? ""]
                }
            }
        }
        let header = ["KEY", "ACTION", "SINK", "STATUS", "ATTEMPTS", "AT", "LAST ERROR"]
        print("\nPENDING DELIVERIES (\(view.pending.count) events)")
        if view.pending.isEmpty { print("none") } else { printTable([header] + rows(view.pending)) }
        print("\nRECENT DELIVERIES (newest last)")
        if view.recent.isEmpty { print("none") } else { printTable([header] + rows(view.recent)) }
        if !view.leader {
            print("\nn\(view.node) is not the leader: its outbox is the journal's as far as it has applied it; only the leader delivers")
        }
    }
}

struct AlertsTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send one test alert (info) to SINK from a replica, not journaled, and print the receiver's verdict.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource
    @Argument(help: "pagerduty, slack, telegram or webhook.")
    var sink: String

    func run() async throws {
        guard ["pagerduty", "slack", "telegram", "webhook"].contains(sink) else {
            throw ValidationError("'\(sink)' is not a sink: use pagerduty, slack, telegram or webhook")
        }
        let base = try await source.url(options)
        let body = try JSONSerialization.data(withJSONObject: ["sink": sink])
        let (status, reply) = try await Admin.send(
            "\(base)/admin/alerts/test", method: .POST, token: options.token, body: body, ca: options.caFile,
            timeout: options.timeout + 15)
        struct Answer: Decodable {
            var node: UInt64
            var sink: String
            var delivered: Bool
            var outcome: String
        }
        guard status == 200 || status == 502, let answer = try? Admin.decoder.decode(Answer.self, from: reply) else {
            throw ValidationError("alerts test \(sink) failed (HTTP \(status)): \(Admin.message(reply))")
        }
        print("n\(answer.node) → \(answer.sink): \(answer.outcome)")
        if !answer.delivered { throw ExitCode(1) }
    }
}

struct Trading: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every replica's trading phase, broker session and market feed.")
    @OptionGroup var options: AdminOptions

    struct View: Decodable {
        struct Engine: Decodable {
            var node: UInt64
            var phase: String
            var haltReason: String?
            var paused: Bool
            var orders: Int
            var openOrders: Int
            var shadowAgreements: UInt64
            var shadowDivergences: UInt64
            var lastRejection: String?
        }
        struct Session: Decodable {
            var senderCompId: String
            var status: String
            var nextSenderSeqNum: Int
            var nextTargetSeqNum: Int
        }
        struct Feed: Decodable {
            struct Source: Decodable {
                var source: String
                var health: String
                var ticks: UInt64
                var stalenessMs: Int64
            }
            var active: String
            var sources: [Source]
        }
        var engine: Engine
        var session: Session
        var feed: Feed
    }

    func run() async throws {
        var rows = [["NODE", "PHASE", "ORDERS", "OPEN", "SESSION", "SEQ OUT/IN", "FEED", "SHADOW AGREE/DIFF", "NOTE"]]
        for url in options.urls {
            do {
                let (status, body) = try await Admin.get("\(url)/trading", ca: options.caFile, timeout: options.timeout, token: options.token)
                guard status == 200 else {
                    rows.append(["?", "HTTP \(status)", "-", "-", "-", "-", "-", "-", Admin.message(body)])
                    continue
                }
                let v = try Admin.decoder.decode(View.self, from: body)
                let feed = v.feed.sources.map { "\($0.source):\($0.health)" }.joined(separator: ",")
                var note: [String] = []
                if let halt = v.engine.haltReason { note.append("HALTED: \(halt)") }
                if v.engine.paused { note.append("paused") }
                if let rejection = v.engine.lastRejection { note.append("last rejection: \(rejection)") }
                rows.append([
                    "n\(v.engine.node)", v.engine.phase, "\(v.engine.orders)", "\(v.engine.openOrders)",
                    "\(v.session.senderCompId) \(v.session.status)", "\(v.session.nextSenderSeqNum)/\(v.session.nextTargetSeqNum)",
                    "\(v.feed.active) (\(feed))", "\(v.engine.shadowAgreements)/\(v.engine.shadowDivergences)",
                    note.joined(separator: "; "),
                ])
            } catch {
                rows.append(["?", "unreachable", "-", "-", "-", "-", "-", "-", url])
            }
        }
        printTable(rows)
    }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pause trading: no new orders (journaled).")
    @OptionGroup var options: AdminOptions
    @Option(help: "Why (journaled).")
    var reason: String = "paused from batonctl"

    func run() async throws { try await setPaused(true, reason: reason, options) }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resume trading after a pause (journaled).")
    @OptionGroup var options: AdminOptions
    @Option(help: "Why (journaled).")
    var reason: String = "resumed from batonctl"

    func run() async throws { try await setPaused(false, reason: reason, options) }
}

func setPaused(_ paused: Bool, reason: String, _ options: AdminOptions) async throws {
    let leader = try await Admin.findLeader(options)
    let body = try JSONSerialization.data(withJSONObject: ["reason": reason])
    let path = paused ? "pause" : "resume"
    let (status, reply) = try await Admin.send(
        "\(leader)/admin/trading/\(path)", method: .POST, token: options.token, body: body, ca: options.caFile, timeout: options.timeout + 5)
    guard status == 200 else { throw ValidationError("\(path) failed (HTTP \(status)): \(Admin.message(reply))") }
    print(paused ? "trading paused" : "trading resumed")
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The journaled admin actions: who (the token's name and role), from where, what, and what came of it.")
    @OptionGroup var options: AdminOptions
    @OptionGroup var source: TradingSource
    @Option(help: "How many of the newest actions.")
    var limit: Int = 50

    struct Record: Decodable {
        var atNanos: Int64
        var node: UInt64
        var principal: String
        var role: String
        var source: String
        var action: String
        var request: String
        var status: Int
        var outcome: String
    }

    func run() async throws {
        let body = try await source.fetch("/audit?limit=\(limit)", options)
        let records = try Admin.decoder.decode([Record].self, from: body)
        let format = ISO8601DateFormatter()
        var rows = [["TIME (UTC)", "NODE", "WHO", "ROLE", "FROM", "ACTION", "STATUS", "REQUEST", "OUTCOME"]]
        for r in records {
            let time = format.string(from: Date(timeIntervalSince1970: Double(r.atNanos) / 1e9))
            rows.append([
                time, "n\(r.node)", r.principal, r.role, r.source, r.action, r.status == 0 ? "started" : "\(r.status)",
                String(r.request.prefix(60)), String(r.outcome.prefix(80)),
            ])
        }
        printTable(rows)
        if records.isEmpty { print("no admin actions journaled yet") }
    }
}
