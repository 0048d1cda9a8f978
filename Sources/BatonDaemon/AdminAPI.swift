import BatonTrading
import BatonTransport
import Foundation
public import Hummingbird
import HTTPTypes
public import Logging
public import NIOCore
public import RaftCore

/// The admin HTTP plane: probes, state, Prometheus metrics, and actions behind a bearer token.
///
/// | route | answers |
/// |---|---|
/// | `GET /healthz` | 200 while the consensus loop makes progress, 503 when it is wedged |
/// | `GET /readyz` | 200 when a leader is known and this node is caught up within the bound |
/// | `GET /leader` | 200 only on the leader, 503 elsewhere (with the leader's id if known) |
/// | `GET /cluster` | members, roles, term, commit/match indexes, lag, lease, peer links |
/// | `GET /metrics` | Prometheus text |
/// | `POST /admin/transfer-leadership` | `{"to": 2}` or `{}` for the most caught-up follower |
/// | `POST /admin/propose` | `{"count": 100, "size": 256}`: test entries, answered once committed |
/// | `POST /admin/members` | `{"action": "add-learner"\|"promote"\|"remove", "id": 4, "address": "host:7100"}`: one membership change (admin role) |
/// | `GET /orders` | the journal's orders (`?limit=N`, newest last) |
/// | `GET /positions` | positions derived from journaled fills |
/// | `GET /trading` | trading phase (HALTED with its reason), broker session, market feed |
/// | `GET /trading/tick-to-order` | raw tick-to-order samples of orders this replica sent |
/// | `GET /slo` | each SLO's budget left, burn rate per window and firing rules (this replica's windows) |
/// | `POST /admin/trading/pause`, `/resume` | `{"reason": "…"}`: journaled; no new orders while paused |
/// | `GET /strategies` | what each symbol runs: strategy, version, parameters, who deployed it |
/// | `GET /canary` | the latest canary: steps, checks with their measurements, decisions |
/// | `POST /admin/canary` | `{"name", "version", "steps", "interval_s", "reason"[, "max_failed_checks", "symbols", "parameters"]}`: start a canary |
/// | `POST /admin/canary/decide` | `{"action": "promote" \| "promote-full" \| "abort" \| "pause" \| "resume", "reason"}` |
/// | `POST /admin/strategies` | `{"name", "version", "reason"[, "symbols", "parameters"]}`: journaled; every replica switches at that entry |
/// | `POST /admin/orders/resolve` | `{"clordid": "BTN-3-41", "outcome": "not-received" or "filled", "quantity": 100, "price": "187.25", "reason": "…"}`: journaled; settles an order reconciliation could not |
/// | `POST /admin/debug/kill-on-next-order` | `{"when": "before-send"}` or `after-send` (debug only) |
/// | `POST /admin/debug/stall` | `{"ms": 3000}`: wedge the loop (only with `debug.endpoints: true`) |
/// | `GET /audit` | the journaled admin actions (`?limit=N`, newest last) |
/// | `GET /alerts` | open incidents, pending and recent alert deliveries per sink (`?limit=N` recent) |
/// | `POST /admin/alerts/test` | `{"sink": "slack"}`: one test event from this replica, answered with the receiver's verdict |
///
/// Every route but the probes needs a bearer token of a role (`AdminAPI.routes` is the table);
/// every POST that passes is journaled as an AuditRecord naming the token, not the caller's say.
public struct AdminAPI: Sendable {
    let consensus: ConsensusLoop
    let metrics: DaemonMetrics
    let credentials: AdminCredentials
    let limiter: AuthFailureLimiter
    let debugEndpoints: Bool
    let transferTimeout: Duration
    let commitTimeout: Duration
    let trading: TradingServices?
    let node: NodeID
    let logger: Logger

    public init(
        consensus: ConsensusLoop, metrics: DaemonMetrics, credentials: AdminCredentials, debugEndpoints: Bool,
        transferTimeout: Duration, trading: TradingServices? = nil, node: NodeID, logger: Logger,
        limiter: AuthFailureLimiter = AuthFailureLimiter(), commitTimeout: Duration = .seconds(10)
    ) {
        self.trading = trading
        self.consensus = consensus
        self.metrics = metrics
        self.credentials = credentials
        self.limiter = limiter
        self.debugEndpoints = debugEndpoints
        self.transferTimeout = transferTimeout
        self.commitTimeout = commitTimeout
        self.node = node
        self.logger = logger
    }

    /// One route and the least role that may call it (nil: open to everyone, the probes).
    public struct Route: Sendable, Hashable {
        public var method: String
        public var path: String
        public var role: AdminRole?
    }

    /// Every route the admin plane serves; the tests walk it with every kind of token.
    public static let routes: [Route] = [
        Route(method: "GET", path: "/healthz", role: nil),
        Route(method: "GET", path: "/readyz", role: nil),
        Route(method: "GET", path: "/leader", role: nil),
        Route(method: "GET", path: "/cluster", role: .viewer),
        Route(method: "GET", path: "/metrics", role: .viewer),
        Route(method: "GET", path: "/orders", role: .viewer),
        Route(method: "GET", path: "/positions", role: .viewer),
        Route(method: "GET", path: "/trading", role: .viewer),
        Route(method: "GET", path: "/trading/tick-to-order", role: .viewer),
        Route(method: "GET", path: "/slo", role: .viewer),
        Route(method: "GET", path: "/audit", role: .viewer),
        Route(method: "GET", path: "/alerts", role: .viewer),
        Route(method: "GET", path: "/strategies", role: .viewer),
        Route(method: "POST", path: "/admin/strategies", role: .operator),
        Route(method: "GET", path: "/canary", role: .viewer),
        Route(method: "POST", path: "/admin/canary", role: .operator),
        Route(method: "POST", path: "/admin/canary/decide", role: .operator),
        Route(method: "POST", path: "/admin/alerts/test", role: .operator),
        Route(method: "POST", path: "/admin/trading/pause", role: .operator),
        Route(method: "POST", path: "/admin/trading/resume", role: .operator),
        Route(method: "POST", path: "/admin/transfer-leadership", role: .operator),
        Route(method: "POST", path: "/admin/orders/resolve", role: .operator),
        Route(method: "POST", path: "/admin/propose", role: .admin),
        Route(method: "POST", path: "/admin/members", role: .admin),
        Route(method: "POST", path: "/admin/debug/kill-on-next-order", role: .admin),
        Route(method: "POST", path: "/admin/debug/stall", role: .admin),
    ]

    /// The largest request body any route reads; more is a 413, never buffered.
    static let maxBodyBytes = 64 * 1024

    public func buildRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.get("/healthz") { _, _ in await self.healthz() }
        router.get("/readyz") { _, _ in await self.readyz() }
        router.get("/leader") { _, _ in await self.leader() }
        view(router, "/cluster") { _ in Self.json(await self.consensus.clusterView(), status: .ok) }
        view(router, "/metrics") { _ in
            await self.consensus.refreshPeerMetrics()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.registry.emitToBuffer()))
            )
        }
        view(router, "/orders") { request in await self.orders(request) }
        view(router, "/positions") { _ in await self.positions() }
        view(router, "/trading") { _ in await self.tradingStatus() }
        view(router, "/trading/tick-to-order") { _ in await self.tickToOrder() }
        view(router, "/slo") { _ in await self.serviceLevels() }
        view(router, "/audit") { request in await self.auditLog(request) }
        view(router, "/alerts") { request in await self.alerts(request) }
        view(router, "/strategies") { _ in await self.strategies() }
        action(router, "/admin/strategies") { body, principal, _ in
            try await self.deployStrategy(body, principal: principal)
        }
        view(router, "/canary") { _ in await self.canary() }
        action(router, "/admin/canary") { body, principal, _ in
            try await self.startCanary(body, principal: principal)
        }
        action(router, "/admin/canary/decide") { body, principal, _ in
            try await self.decideCanary(body, principal: principal)
        }
        action(router, "/admin/alerts/test") { body, principal, _ in
            try await self.testAlert(body, principal: principal)
        }
        action(router, "/admin/transfer-leadership") { body, principal, source in
            try await self.transfer(body, principal: principal, source: source)
        }
        action(router, "/admin/propose") { body, _, _ in try await self.propose(body) }
        action(router, "/admin/members") { body, _, _ in try await self.changeMembership(body) }
        action(router, "/admin/trading/pause") { body, principal, _ in
            try await self.pause(true, body, principal: principal)
        }
        action(router, "/admin/trading/resume") { body, principal, _ in
            try await self.pause(false, body, principal: principal)
        }
        action(router, "/admin/orders/resolve") { body, principal, _ in
            try await self.resolveOrder(body, principal: principal)
        }
        action(router, "/admin/debug/kill-on-next-order", auditFirst: true) { body, _, _ in
            guard self.debugEndpoints else {
                return Self.json(["error": "debug endpoints are disabled (debug.endpoints: false)"], status: .notFound)
            }
            guard let trading = self.trading else { return Self.tradingDisabled() }
            guard let arm = try Self.decode(AdminArmRequest<TradingEngine.KillPoint>.self, from: body) else {
                return Self.json(["error": "body must be {\"when\": \"before-send\" | \"after-send\" | \"stop-before-write\" | \"none\"}"], status: .badRequest)
            }
            await trading.engine.armKill(arm.when)
            return Self.json(["armed": arm.when.rawValue], status: .accepted)
        }
        action(router, "/admin/debug/stall", auditFirst: true) { body, _, _ in
            guard self.debugEndpoints else {
                return Self.json(["error": "debug endpoints are disabled (debug.endpoints: false)"], status: .notFound)
            }
            let ms: Int
            switch StallRequest.milliseconds(try Self.decode(StallRequest.self, from: body)) {
            case .success(let value): ms = value
            case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
            }
            // Answer once the loop is blocked (not merely asked to block), so a caller can time
            // what it observes from the answer. The stall itself outlives this request.
            let (entered, signal) = AsyncStream.makeStream(of: Void.self)
            Task { await self.consensus.debugStall(for: .milliseconds(ms), entered: { signal.yield() }) }
            for await _ in entered { break }
            return Self.json(["stalled_ms": ms], status: .accepted)
        }
        return router
    }

    private func role(for method: String, _ path: String) -> AdminRole {
        // Every registered route is in the table (a test checks it); admin is the safe default.
        Self.routes.first(where: { $0.method == method && $0.path == path })?.role ?? .admin
    }

    /// A GET behind a viewer token.
    private func view(
        _ router: Router<AdminRequestContext>, _ path: String,
        _ handler: @escaping @Sendable (Request) async throws -> Response
    ) {
        let needed = role(for: "GET", path)
        router.get(RouterPath(path)) { request, context in
            switch self.authenticate(request, context, needs: needed) {
            case .failure(let refusal): return refusal.response
            case .success:
                do {
                    let response = try await handler(request)
                    self.metrics.countAdminAnswer(status: Int(response.status.code))
                    return response
                } catch {
                    self.metrics.countAdminAnswer(status: 500)
                    throw error
                }
            }
        }
    }

    /// A POST behind a token of its role, journaled with its outcome.
    private func action(
        _ router: Router<AdminRequestContext>, _ path: String, auditFirst: Bool = false,
        _ handler: @escaping @Sendable (ByteBuffer, AdminPrincipal, String) async throws -> Response
    ) {
        let needed = role(for: "POST", path)
        router.post(RouterPath(path)) { request, context in
            let source = Self.source(context)
            let principal: AdminPrincipal
            switch self.authenticate(request, context, needs: needed) {
            case .failure(let refusal): return refusal.response
            case .success(let who): principal = who
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maxBodyBytes)
            } catch {
                return Self.json(
                    ["error": "request body is larger than \(Self.maxBodyBytes) bytes"], status: .contentTooLarge)
            }
            // A debug kill point may end this process before an answer could be journaled, so
            // those are journaled as requested before they act.
            if auditFirst {
                await self.journalAudit(
                    principal: principal, source: source, action: "POST \(path)", body: body, status: 0,
                    outcome: "requested")
            }
            var response: Response
            do {
                response = try await handler(body, principal, source)
            } catch let error as DecodingError {
                response = Self.json(["error": "request body is not valid: \(Self.describe(error))"], status: .badRequest)
            } catch {
                self.metrics.countAdminAnswer(status: 500)
                throw error
            }
            let (answered, text) = await Self.collect(response)
            self.metrics.countAdminAnswer(status: Int(answered.status.code))
            if auditFirst { return answered }
            await self.journalAudit(
                principal: principal, source: source, action: "POST \(path)", body: body,
                status: Int(answered.status.code), outcome: text)
            return answered
        }
    }

    struct Refusal: Error {
        var response: Response
    }

    /// Who the bearer token names, if its role suffices. Failures are counted per source (and
    /// answered 429 once a source has used up its tries) and logged at most once per 10 s each.
    func authenticate(_ request: Request, _ context: AdminRequestContext, needs: AdminRole) -> Result<
        AdminPrincipal, Refusal
    > {
        let source = Self.source(context)
        let route = "\(request.method.rawValue) \(request.uri.path)"
        guard !credentials.isEmpty else {
            return .failure(
                Refusal(
                    response: Self.json(
                        ["error": "the admin plane has no tokens: set admin.tokens_file (or admin.token_file)"],
                        status: .forbidden)))
        }
        if limiter.isLimited(source) {
            metrics.adminAuthFailures.increment()
            return .failure(
                Refusal(
                    response: Self.json(
                        ["error": "too many failed authentications from \(source); try again in a minute"],
                        status: .tooManyRequests)))
        }
        guard let principal = credentials.authenticate(authorization: request.headers[.authorization]) else {
            metrics.adminAuthFailures.increment()
            let (log, suppressed) = limiter.recordFailure(source)
            if log {
                logger.warning(
                    "admin authentication failed",
                    metadata: [
                        "admin.source": "\(source)", "admin.route": "\(route)",
                        "admin.failures_not_logged": "\(suppressed)",
                    ])
            }
            var response = Self.json(["error": "missing or wrong bearer token"], status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"batond\""
            return .failure(Refusal(response: response))
        }
        guard principal.role >= needs else {
            logger.notice(
                "admin request refused: role too low",
                metadata: [
                    "admin.source": "\(source)", "admin.route": "\(route)", "admin.principal": "\(principal.name)",
                    "admin.role": "\(principal.role.rawValue)", "admin.needs": "\(needs.rawValue)",
                ])
            return .failure(
                Refusal(
                    response: Self.json(
                        [
                            "error":
                                "token '\(principal.name)' has role \(principal.role.rawValue); \(route) needs \(needs.rawValue)"
                        ], status: .forbidden)))
        }
        return .success(principal)
    }

    static func source(_ context: AdminRequestContext) -> String {
        context.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Journals what an action did. A replica that is not (or no longer) leader cannot journal;
    /// then the record goes to the log, which is all it can do.
    func journalAudit(
        principal: AdminPrincipal, source: String, action: String, body: ByteBuffer, status: Int, outcome: String
    ) async {
        let record = AuditRecord(
            atNanos: TradingEngine.wallNanos(), node: node.rawValue, principal: principal.name,
            role: principal.role.rawValue, source: source, action: action,
            request: String(decoding: body.readableBytesView, as: UTF8.self), status: status, outcome: outcome)
        var journaled = false
        var why = "trading is not enabled on this replica, so there is no state machine to journal it in"
        if let engine = trading?.engine {
            do {
                try await withDeadline(commitTimeout) { try await engine.journalAudit(record) }
                journaled = true
            } catch {
                why = "\(error)"
            }
        }
        logger.notice(
            journaled ? "admin action" : "admin action (audit not journaled)",
            metadata: [
                "admin.principal": "\(record.principal)", "admin.role": "\(record.role)",
                "admin.source": "\(record.source)", "admin.action": "\(record.action)",
                "admin.status": "\(record.status)",
            ].merging(journaled ? [:] : ["audit.error": "\(why)"]) { a, _ in a })
    }

    /// A response's body, read back so the audit can say what it answered.
    static func collect(_ response: Response) async -> (Response, String) {
        final class Collector: ResponseBodyWriter {
            var buffer = ByteBuffer()
            func write(_ part: ByteBuffer) async throws { buffer.writeImmutableBuffer(part) }
            func finish(_ trailingHeaders: HTTPFields?) async throws {}
        }
        let collector = Collector()
        do {
            try await response.body.write(collector)
        } catch {
            return (response, "")
        }
        let bytes = collector.buffer
        let rebuilt = Response(status: response.status, headers: response.headers, body: .init(byteBuffer: bytes))
        return (rebuilt, String(decoding: bytes.readableBytesView, as: UTF8.self))
    }

    func auditLog(_ request: Request) async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let limitText = request.uri.queryParameters.get("limit") ?? "100"
        guard let limit = Int(limitText), (1...TradingState.maxAuditKept).contains(limit) else {
            return Self.json(
                ["error": "limit must be from 1 to \(TradingState.maxAuditKept), got \(limitText.prefix(20))"],
                status: .badRequest)
        }
        return Self.json(await trading.engine.auditRecords(limit: limit), status: .ok)
    }

    // MARK: - Probes

    func healthz() async -> Response {
        let health = await consensus.health()
        let body: [String: String] = [
            "status": health.loopIsTicking ? "ok" : "wedged",
            "since_last_tick_ms": String(format: "%.1f", health.sinceLastTick.milliseconds),
        ]
        return Self.json(body, status: health.loopIsTicking ? .ok : .serviceUnavailable)
    }

    func readyz() async -> Response {
        let health = await consensus.health()
        struct Ready: Encodable {
            var ready: Bool
            var reason: String
            var role: String
            var term: UInt64
            var leader: UInt64?
            var lag: UInt64
            /// Beside readiness, not part of it: a HALTED leader is still a ready replica (it must
            /// stay reachable and keep reconciling), but on-call needs to see why it does not trade.
            var tradingPhase: String?
            var tradingHaltReason: String?
        }
        let trading = await self.trading?.engine.status()
        let body = Ready(
            ready: health.ready, reason: health.readinessReason, role: health.role.rawValue, term: health.term,
            leader: health.leader?.rawValue, lag: health.lag, tradingPhase: trading?.phase,
            tradingHaltReason: trading?.haltReason
        )
        return Self.json(body, status: health.ready ? .ok : .serviceUnavailable)
    }

    func leader() async -> Response {
        let health = await consensus.health()
        struct Leader: Encodable {
            var leader: UInt64?
            var term: UInt64
            var isLeader: Bool
        }
        let isLeader = health.role == .leader
        return Self.json(
            Leader(leader: health.leader?.rawValue, term: health.term, isLeader: isLeader),
            status: isLeader ? .ok : .serviceUnavailable
        )
    }

    // MARK: - Actions

    // The bodies and their checks are in AdminRequestBodies.swift (Foundation only, fuzzed alone).
    typealias TransferRequest = AdminTransferRequest
    typealias ProposeRequest = AdminProposeRequest
    typealias StallRequest = AdminStallRequest

    static let maxProposeBytes = AdminProposeRequest.maxBytes

    func transfer(_ body: ByteBuffer, principal: AdminPrincipal, source: String) async throws -> Response {
        let request = try Self.decode(TransferRequest.self, from: body)
        let target = request?.to.map { NodeID($0) }
        // Journaled before: once the transfer succeeds this replica can no longer journal, and
        // the record of who moved the leader must not depend on the move failing.
        if await consensus.health().role == .leader {
            await journalAudit(
                principal: principal, source: source, action: "POST /admin/transfer-leadership", body: body,
                status: 0, outcome: "requested")
        }
        let started = ContinuousClock.now
        do {
            let (newLeader, drain) = try await consensus.transferLeadershipDrained(to: target, timeout: transferTimeout)
            struct Done: Encodable {
                var newLeader: UInt64?
                var tookMs: Double
                /// Orders in flight when sends stopped, how long their answers took, and any still
                /// unanswered (past max_order_age) when the lease was withdrawn.
                var drain: HandOverReport
            }
            return Self.json(
                Done(
                    newLeader: newLeader?.rawValue, tookMs: (ContinuousClock.now - started).milliseconds, drain: drain),
                status: .ok)
        } catch let error as ConsensusError {
            return Self.error(error)
        }
    }

    /// One membership change through the log; answers once it is committed, with the new
    /// configuration. Refusals (not caught up, would lose quorum, one change at a time) are 409s
    /// that say why.
    func changeMembership(_ body: ByteBuffer) async throws -> Response {
        let change: MembershipChange
        switch AdminMemberRequest.change(try Self.decode(AdminMemberRequest.self, from: body)) {
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        case .success(.addLearner(let id, let address)):
            guard let parsed = PeerAddress(parsing: address) else {
                return Self.json(
                    ["error": "address '\(address.prefix(80))' is not host:port (for example 10.0.0.4:7100)"],
                    status: .badRequest)
            }
            change = .addLearner(NodeID(id), address: parsed.description)
        case .success(.promote(let id)): change = .promoteLearner(NodeID(id))
        case .success(.remove(let id)): change = .remove(NodeID(id))
        }
        do {
            let position = try await withDeadline(commitTimeout) {
                try await self.consensus.proposeMembershipChange(change)
            }
            let view = await consensus.clusterView()
            struct Changed: Encodable {
                var change: String
                var logIndex: UInt64
                var voters: [UInt64]
                var learners: [UInt64]
            }
            logger.notice(
                "membership changed", metadata: ["raft.change": "\(change)", "raft.index": "\(position.index)"])
            return Self.json(
                Changed(change: change.description, logIndex: position.index, voters: view.voters, learners: view.learners),
                status: .ok)
        } catch let error as ConsensusError {
            return Self.error(error)
        }
    }

    func propose(_ body: ByteBuffer) async throws -> Response {
        let count: Int
        let size: Int
        switch ProposeRequest.entries(try Self.decode(ProposeRequest.self, from: body)) {
        case .success(let entries): (count, size) = entries
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        let started = ContinuousClock.now
        let commands = ProposeRequest.commands(count: count, size: size)
        do {
            let consensus = self.consensus
            let positions = try await withDeadline(commitTimeout) { [commands] in
                try await consensus.propose(commands, waitForCommit: true)
            }
            struct Done: Encodable {
                var first: String
                var last: String
                var count: Int
                var tookMs: Double
            }
            return Self.json(
                Done(
                    first: positions.first!.description, last: positions.last!.description, count: positions.count,
                    tookMs: (ContinuousClock.now - started).milliseconds
                ),
                status: .ok
            )
        } catch let error as ConsensusError {
            return Self.error(error)
        }
    }

    // MARK: - Helpers

    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T? {
        try AdminRequestBody.decode(T.self, from: Data(buffer.readableBytesView))
    }

    static func describe(_ error: DecodingError) -> String { AdminRequestBody.describe(error) }

    static func error(_ error: ConsensusError) -> Response {
        switch error {
        case .rejected(.notLeader(let leader)), .transferRejected(.notLeader(let leader)):
            struct NotLeader: Encodable {
                var error: String
                var leader: UInt64?
            }
            return json(NotLeader(error: error.description, leader: leader?.rawValue), status: .conflict)
        case .transferRejected(.targetNotAVoter), .transferRejected(.targetIsSelf), .transferRejected(.noCandidate):
            return json(["error": error.description], status: .badRequest)
        case .timedOut:
            return json(["error": error.description], status: .gatewayTimeout)
        case .handOverRefused:
            return json(["error": error.description], status: .conflict)
        case .rejected(.invalidMembershipChange), .rejected(.learnerNotCaughtUp), .rejected(.wouldLoseQuorum),
            .rejected(.membershipChangePending), .rejected(.cannotRemoveLeader), .rejected(.leaderNotYetCommittedInTerm):
            return json(["error": error.description], status: .conflict)
        default:
            return json(["error": error.description], status: .serviceUnavailable)
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
