import Foundation
public import Hummingbird
import NIOCore
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
/// | `GET /orders` | the journal's orders (`?limit=N`, newest last) |
/// | `GET /positions` | positions derived from journaled fills |
/// | `GET /trading` | trading phase (HALTED with its reason), broker session, market feed |
/// | `GET /trading/tick-to-order` | raw tick-to-order samples of orders this replica sent |
/// | `POST /admin/trading/pause`, `/resume` | `{"reason": "…"}`: journaled; no new orders while paused |
/// | `POST /admin/orders/resolve` | `{"clordid": "BTN-3-41", "outcome": "not-received" or "filled", "quantity": 100, "price": "187.25", "reason": "…"}`: journaled; settles an order reconciliation could not |
/// | `POST /admin/debug/kill-on-next-order` | `{"when": "before-send"}` or `after-send` (debug only) |
/// | `POST /admin/debug/stall` | `{"ms": 3000}`: wedge the loop (only with `debug.endpoints: true`) |
public struct AdminAPI: Sendable {
    let consensus: ConsensusLoop
    let metrics: DaemonMetrics
    let token: AdminToken
    let debugEndpoints: Bool
    let transferTimeout: Duration
    let trading: TradingServices?

    public init(
        consensus: ConsensusLoop, metrics: DaemonMetrics, token: AdminToken, debugEndpoints: Bool,
        transferTimeout: Duration, trading: TradingServices? = nil
    ) {
        self.trading = trading
        self.consensus = consensus
        self.metrics = metrics
        self.token = token
        self.debugEndpoints = debugEndpoints
        self.transferTimeout = transferTimeout
    }

    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ in await self.healthz() }
        router.get("/readyz") { _, _ in await self.readyz() }
        router.get("/leader") { _, _ in await self.leader() }
        router.get("/cluster") { _, _ in await self.cluster() }
        router.get("/metrics") { _, _ in
            await self.consensus.refreshPeerMetrics()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.registry.emitToBuffer()))
            )
        }
        router.post("/admin/transfer-leadership") { request, _ in
            try await self.authorized(request) { body in try await self.transfer(body) }
        }
        router.post("/admin/propose") { request, _ in
            try await self.authorized(request) { body in try await self.propose(body) }
        }
        router.get("/orders") { request, _ in await self.orders(request) }
        router.get("/positions") { _, _ in await self.positions() }
        router.get("/trading") { _, _ in await self.tradingStatus() }
        router.get("/trading/tick-to-order") { _, _ in await self.tickToOrder() }
        router.post("/admin/trading/pause") { request, _ in
            try await self.authorized(request) { body in try await self.pause(true, body) }
        }
        router.post("/admin/trading/resume") { request, _ in
            try await self.authorized(request) { body in try await self.pause(false, body) }
        }
        router.post("/admin/orders/resolve") { request, _ in
            try await self.authorized(request) { body in try await self.resolveOrder(body) }
        }
        router.post("/admin/debug/kill-on-next-order") { request, _ in
            guard self.debugEndpoints else {
                return Self.json(["error": "debug endpoints are disabled (debug.endpoints: false)"], status: .notFound)
            }
            guard let trading = self.trading else { return Self.tradingDisabled() }
            return try await self.authorized(request) { body in
                struct Arm: Decodable { var when: TradingEngine.KillPoint }
                guard let arm = try Self.decode(Arm.self, from: body) else {
                    return Self.json(["error": "body must be {\"when\": \"before-send\" | \"after-send\" | \"stop-before-write\" | \"none\"}"], status: .badRequest)
                }
                await trading.engine.armKill(arm.when)
                return Self.json(["armed": arm.when.rawValue], status: .accepted)
            }
        }
        router.post("/admin/debug/stall") { request, _ in
            guard self.debugEndpoints else {
                return Self.json(["error": "debug endpoints are disabled (debug.endpoints: false)"], status: .notFound)
            }
            return try await self.authorized(request) { body in
                let ms = (try Self.decode(StallRequest.self, from: body))?.ms ?? 0
                guard (1...60_000).contains(ms) else {
                    return Self.json(["error": "ms must be from 1 to 60000"], status: .badRequest)
                }
                // Answer once the loop is blocked (not merely asked to block), so a caller can time
                // what it observes from the answer. The stall itself outlives this request.
                let (entered, signal) = AsyncStream.makeStream(of: Void.self)
                Task { await self.consensus.debugStall(for: .milliseconds(ms), entered: { signal.yield() }) }
                for await _ in entered { break }
                return Self.json(["stalled_ms": ms], status: .accepted)
            }
        }
        return router
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

    func cluster() async -> Response {
        Self.json(await consensus.clusterView(), status: .ok)
    }

    // MARK: - Actions

    struct TransferRequest: Decodable {
        var to: UInt64?
    }

    struct ProposeRequest: Decodable {
        var count: Int?
        var size: Int?
    }

    struct StallRequest: Decodable {
        var ms: Int?
    }

    func transfer(_ body: ByteBuffer) async throws -> Response {
        let request = try Self.decode(TransferRequest.self, from: body)
        let target = request?.to.map { NodeID($0) }
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

    func propose(_ body: ByteBuffer) async throws -> Response {
        let request = try Self.decode(ProposeRequest.self, from: body)
        let count = request?.count ?? 1
        let size = request?.size ?? 256
        guard (1...100_000).contains(count) else {
            return Self.json(["error": "count must be from 1 to 100000"], status: .badRequest)
        }
        guard (0...(1 << 20)).contains(size) else {
            return Self.json(["error": "size must be from 0 to 1048576 bytes"], status: .badRequest)
        }
        let started = ContinuousClock.now
        var commands: [[UInt8]] = []
        commands.reserveCapacity(count)
        for i in 0..<count {
            var bytes = [UInt8](repeating: 0x2E, count: size)
            withUnsafeBytes(of: UInt64(i).bigEndian) { raw in
                for (k, b) in raw.enumerated() where k < size { bytes[k] = b }
            }
            commands.append(bytes)
        }
        do {
            let positions = try await consensus.propose(commands, waitForCommit: true)
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

    private func authorized(
        _ request: Request, _ body: (ByteBuffer) async throws -> Response
    ) async throws -> Response {
        guard let token = token.current else {
            return Self.json(
                ["error": "admin actions are disabled: set admin.token or admin.token_file"], status: .forbidden)
        }
        let presented = request.headers[.authorization] ?? ""
        guard Self.constantTimeEquals(presented, "Bearer \(token)") else {
            return Self.json(["error": "missing or wrong bearer token"], status: .unauthorized)
        }
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try await body(buffer)
        } catch let error as DecodingError {
            return Self.json(["error": "request body is not valid: \(Self.describe(error))"], status: .badRequest)
        }
    }

    private static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T? {
        guard buffer.readableBytes > 0 else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
            .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

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
