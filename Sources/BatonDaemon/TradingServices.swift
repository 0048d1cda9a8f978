import BatonAlerting
import BatonFIX
public import BatonFIXNIO
public import BatonFeed
import BatonTrading
import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import RaftCore
public import ServiceLifecycle

/// The trading side of a replica: the engine, the broker session (a hot standby on followers)
/// and the market feed (shadowed on followers), built only when `trading.enabled`.
public struct TradingServices: Sendable {
    public let engine: TradingEngine
    public let initiator: FIXInitiator
    public let feed: MarketFeedClient
    /// The feed's recorder, when `feed.capture.dir` is set.
    public let capture: TickCapture?

    static func build(
        configuration: BatondConfiguration, storage: JournalStorage, metrics: DaemonMetrics,
        logger makeLogger: (String) -> Logger
    ) async throws -> TradingServices? {
        guard let trading = configuration.trading else { return nil }
        let engine = TradingEngine(
            configuration: trading, nodeID: configuration.nodeID, logger: makeLogger("batond.trading"),
            metrics: TradingMetrics(node: configuration.nodeID.rawValue, registry: metrics.registry),
            adminAnswers: metrics.adminAnswerTally)
        try await engine.restore(storage.journal.appliedCommands(withMarker: TradingCommand.marker))
        var settings = FIXSessionSettings(
            role: .initiator, senderCompID: trading.senderCompID, targetCompID: trading.targetCompID,
            heartBtInt: trading.heartbeatSeconds,
            // An order goes out only from the leader, under its lease: never from a resend after a
            // reconnect. The next leader's reconciliation decides whether it is sent again.
            resendsApplicationMessages: false)
        settings.resetSeqNumOnLogon = trading.resetSeqNumOnLogon
        settings.username = trading.username
        settings.password = trading.password?.value
        var options = FIXInitiatorOptions(
            // A new leader's first Logon is often refused while the broker still holds the old
            // leader's connection: retry quickly, and never wait long between attempts.
            reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .seconds(2)),
            syncsStore: trading.storeSync)
        // One broker session for the cluster: only the leader, holding a block of sequence
        // numbers reserved through the log, connects (TradingEngine grants the permit).
        options.requiresPermit = true
        options.tls = trading.tls
        let initiator = try FIXInitiator(
            settings: settings, host: trading.venue.host, port: trading.venue.port,
            storePath: "\(configuration.dataDirectory)/fix-\(trading.senderCompID).sqlite",
            logger: makeLogger("batond.fix"), options: options)
        let feedConfiguration = try FeedConfiguration(
            primaryURL: trading.feedPrimary, backupURL: trading.feedBackup, symbols: Set(trading.symbols),
            staleAfter: trading.feedStaleAfter, recoverAfter: trading.feedRecoverAfter)
        var capture: TickCapture?
        if var settings = trading.feedCapture {
            if !settings.directory.hasPrefix("/") { settings.directory = "\(configuration.dataDirectory)/\(settings.directory)" }
            capture = try TickCapture(
                settings: settings, logger: makeLogger("batond.capture"),
                metricsFactory: PrometheusMetricsFactory(registry: metrics.registry))
        }
        let feed = try MarketFeedClient(
            configuration: feedConfiguration, logger: makeLogger("batond.feed"),
            metricsFactory: PrometheusMetricsFactory(registry: metrics.registry), capture: capture)
        return TradingServices(engine: engine, initiator: initiator, feed: feed, capture: capture)
    }

    /// In ServiceGroup order: on shutdown (reverse order) the engine stops first, so nothing is
    /// sent while the session logs out and the leader hands over.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        // The capture starts before the feed and stops after it, so it writes the feed's last
        // frames before it closes and compresses its files.
        (capture.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? [])
            + [.init(service: initiator), .init(service: feed), .init(service: TradingService(services: self))]
    }
}

/// Feeds the engine: market events, broker messages, and the leader's duty cycle.
struct TradingService: Service {
    let services: TradingServices

    func run() async throws {
        let engine = services.engine
        let feed = services.feed
        let initiator = services.initiator
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in feed.events { await engine.onFeed(event) }
            }
            group.addTask {
                for await message in initiator.applicationMessages {
                    initiator.consumedApplicationMessage()
                    await engine.onApplicationMessage(message)
                }
            }
            group.addTask { try await engine.runDuties() }
            try await gracefulShutdown()
            group.cancelAll()
        }
    }
}

// MARK: - Admin plane

extension AdminAPI {
    func orders(_ request: Request) async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 1000
        guard (1...100_000).contains(limit) else {
            return Self.json(["error": "limit must be from 1 to 100000"], status: .badRequest)
        }
        return Self.json(await trading.engine.orders(limit: limit), status: .ok)
    }

    /// Raw tick-to-order samples in nanoseconds (bounded; the newest last), for benchmarks.
    func tickToOrder() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        struct Samples: Encodable {
            var nanoseconds: [Int64]
            /// Per order: tick → proposed, proposed → applied, applied → written.
            var phases: [[Int64]]
        }
        return Self.json(
            Samples(
                nanoseconds: await trading.engine.tickToOrderSamples, phases: await trading.engine.tickToOrderPhases),
            status: .ok)
    }

    func positions() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        return Self.json(await trading.engine.positions(), status: .ok)
    }

    struct TradingStatusView: Encodable {
        var engine: TradingEngine.StatusView
        var session: Session
        var feed: Feed
        struct Session: Encodable {
            var senderCompId: String
            var targetCompId: String
            var status: String
            var nextSenderSeqNum: Int
            var nextTargetSeqNum: Int
            var connections: Int
            var lastError: String?
        }
        struct Feed: Encodable {
            var active: String
            var switches: UInt64
            var sources: [Source]
            /// The raw feed's recorder (`feed.capture.*`); absent when this replica does not capture.
            var capture: TickCaptureStatus?
            struct Source: Encodable {
                var source: String
                var url: String
                var health: String
                var connected: Bool
                var lastSequence: UInt64
                var stalenessMs: Int64
                var ticks: UInt64
                var gaps: UInt64
                var decodeErrors: UInt64
            }
        }
    }

    func tradingStatus() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let session = await trading.initiator.status()
        let feed = trading.feed.status()
        let view = TradingStatusView(
            engine: await trading.engine.status(),
            session: .init(
                senderCompId: session.senderCompID, targetCompId: session.targetCompID, status: session.session.rawValue,
                nextSenderSeqNum: session.nextSenderSeqNum, nextTargetSeqNum: session.nextTargetSeqNum,
                connections: session.connections, lastError: session.lastError),
            feed: .init(
                active: "\(feed.active)", switches: feed.switches,
                sources: feed.sources.map {
                    .init(
                        source: "\($0.source)", url: $0.url, health: "\($0.health)", connected: $0.connected,
                        lastSequence: $0.lastSequence, stalenessMs: $0.stalenessMillis, ticks: $0.ticks, gaps: $0.gaps,
                        decodeErrors: $0.decodeErrors)
                }, capture: trading.capture?.status()))
        return Self.json(view, status: .ok)
    }

    struct ServiceLevelView: Encodable {
        var node: UInt64
        /// Only the leader sees the broker's answers: a follower's windows are empty.
        var leader: Bool
        var slos: [SLOEvaluator.Status]
    }

    func serviceLevels() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let view = ServiceLevelView(
            node: node.rawValue, leader: await consensus.health().role == .leader,
            slos: await trading.engine.serviceLevelStatus())
        return Self.json(view, status: .ok)
    }

    func alerts(_ request: Request) async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 50
        guard (1...AlertOutbox.keptDone).contains(limit) else {
            return Self.json(["error": "limit must be from 1 to \(AlertOutbox.keptDone)"], status: .badRequest)
        }
        let leader = await consensus.health().role == .leader
        return Self.json(await trading.engine.alertsView(leader: leader, recentLimit: limit), status: .ok)
    }

    func testAlert(_ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let sink: String
        switch AdminAlertTestRequest.sink(try Self.decode(AdminAlertTestRequest.self, from: body)) {
        case .success(let value): sink = value
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        guard let (delivered, outcome) = await trading.engine.testAlert(sink: sink, by: principal.description) else {
            return Self.json(["error": "no \(sink) sink is configured on n\(node.rawValue) (alerts.\(sink).*)"], status: .notFound)
        }
        struct Answer: Encodable {
            var node: UInt64
            var sink: String
            var delivered: Bool
            var outcome: String
        }
        // 502: the receiver (or the way to it) said no; the request itself was fine.
        return Self.json(
            Answer(node: node.rawValue, sink: sink, delivered: delivered, outcome: outcome), status: delivered ? .ok : .badGateway)
    }

    /// What every symbol runs now.
    func strategies() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        return Self.json(await trading.engine.strategyViews(), status: .ok)
    }

    /// An operator puts a strategy version on some symbols: checked against the registry here,
    /// journaled, and applied by every replica at that entry.
    func deployStrategy(_ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let request: AdminStrategyRequest.Deployment
        switch AdminStrategyRequest.deployment(try Self.decode(AdminStrategyRequest.self, from: body)) {
        case .success(let value): request = value
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        let specs: [StrategySpec]
        switch await trading.engine.strategySpecs(for: request) {
        case .success(let value): specs = value
        case .failure(let problems): return Self.json(["error": problems.description], status: .badRequest)
        }
        do {
            try await withDeadline(commitTimeout) {
                try await trading.engine.deployStrategies(
                    specs, version: request.version, by: principal.description, reason: request.reason)
            }
        } catch let error as ConsensusError {
            return Self.error(error)
        }
        return Self.json(await trading.engine.strategyViews(), status: .ok)
    }

    /// The latest canary: its plan, step, checks with their measurements, and decisions.
    func canary() async -> Response {
        guard let trading else { return Self.tradingDisabled() }
        guard let canary = await trading.engine.canaryState() else {
            return Self.json(["error": "no canary has run on this cluster (start one with batonctl canary start)"], status: .notFound)
        }
        return Self.json(CanaryView(canary), status: .ok)
    }

    /// An operator starts a canary: the candidate is checked as a deployment is, then journaled.
    func startCanary(_ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let request: AdminCanaryRequest.Start
        switch AdminCanaryRequest.start(try Self.decode(AdminCanaryRequest.self, from: body)) {
        case .success(let value): request = value
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        let specs: [StrategySpec]
        switch await trading.engine.strategySpecs(for: request.deployment) {
        case .success(let value): specs = value
        case .failure(let problems): return Self.json(["error": problems.description], status: .badRequest)
        }
        return try await canaryAnswer {
            try await trading.engine.startCanary(
                specs, version: request.deployment.version, steps: request.steps, intervalSeconds: request.intervalSeconds,
                maxFailedChecks: request.maxFailedChecks, by: principal.description, reason: request.deployment.reason)
        }
    }

    /// Journals a canary change within the commit timeout and answers with the canary as it
    /// then stands, or 409 with why the controller would not take it.
    private func canaryAnswer(_ change: @escaping @Sendable () async throws -> Result<CanaryState, StrategyProblems>) async throws -> Response {
        let outcome: Result<CanaryState, StrategyProblems>
        do {
            outcome = try await withDeadline(commitTimeout) { try await change() }
        } catch let error as ConsensusError {
            return Self.error(error)
        }
        switch outcome {
        case .success(let canary): return Self.json(CanaryView(canary), status: .ok)
        case .failure(let problems): return Self.json(["error": problems.description], status: .conflict)
        }
    }

    /// promote, promote-full, abort, pause, resume: journaled with who did it.
    func decideCanary(_ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let action: CanaryAction
        let reason: String
        switch AdminCanaryDecisionRequest.decision(try Self.decode(AdminCanaryDecisionRequest.self, from: body)) {
        case .success(let value):
            guard let known = CanaryAction(rawValue: value.action) else {
                return Self.json(["error": "action '\(value.action)' is not known here"], status: .badRequest)
            }
            (action, reason) = (known, value.reason)
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        let by = principal.description
        return try await canaryAnswer { try await trading.engine.canaryDecision(action, by: by, reason: reason) }
    }

    func pause(_ paused: Bool, _ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let reason: String
        switch AdminPauseRequest.reason(try Self.decode(AdminPauseRequest.self, from: body), paused: paused) {
        case .success(let value): reason = value
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        do {
            try await withDeadline(commitTimeout) {
                try await trading.engine.setPaused(paused, by: principal.description, reason: reason)
            }
        } catch let error as ConsensusError {
            return Self.error(error)
        }
        return Self.json(["paused": paused], status: .ok)
    }

    /// An operator settles an order that reconciliation could not (after checking with the
    /// broker): journaled as an OrderResolution with who and why, then the leader trades on.
    func resolveOrder(_ body: ByteBuffer, principal: AdminPrincipal) async throws -> Response {
        guard let trading else { return Self.tradingDisabled() }
        let resolution: AdminResolveRequest.Resolution
        switch AdminResolveRequest.resolution(try Self.decode(AdminResolveRequest.self, from: body)) {
        case .success(let value): resolution = value
        case .failure(let refusal): return Self.json(["error": refusal.message], status: .badRequest)
        }
        let outcome: OrderResolution.Outcome =
            switch resolution.outcome {
            case .notReceived: .notReceived
            case .filled(let quantity, let price): .filled(quantity: quantity, price: price)
            }
        do {
            let by = principal.description
            let order = try await withDeadline(commitTimeout) {
                try await trading.engine.resolve(
                    clOrdID: resolution.clOrdID, outcome: outcome, by: by, reason: resolution.reason)
            }
            return Self.json(order, status: .ok)
        } catch let error as TradingEngine.ResolveError {
            return Self.json(["error": error.description], status: error.isUnknownOrder ? .notFound : .conflict)
        } catch let error as ConsensusError {
            return Self.error(error)
        }
    }

    static func tradingDisabled() -> Response {
        json(["error": "trading is not enabled on this replica (trading.enabled: false)"], status: .notFound)
    }
}


/// `GET /canary`: the canary as a table of steps and checks (batonctl canary status prints it).
struct CanaryView: Encodable {
    struct Step: Encodable {
        var step: Int
        var percent: Int
        /// "done", "current", "waiting" (or "promoted"/"aborted" for the current one at the end).
        var state: String
    }
    struct Check: Encodable {
        var logIndex: UInt64
        var step: Int
        var outcome: String
        var failures: [String]
        var atNanos: Int64
        var candidate: SleeveMeasurement
        var baseline: SleeveMeasurement
        var drawdown: Int64
    }
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
    var killDrawdown: Int64
    var rollback: String
    var startedBy: String
    var startIndex: UInt64
    var endReason: String?
    var steps: [Step]
    var checks: [Check]
    var decisions: [CanaryDecision]

    init(_ canary: CanaryState) {
        let plan = canary.plan
        strategy = plan.strategyName
        version = plan.version
        symbols = plan.symbols
        status = canary.status.rawValue
        step = canary.stepIndex + 1
        percent = plan.steps[canary.stepIndex]
        intervalSeconds = plan.intervalNanos / 1_000_000_000
        passedChecks = canary.passedChecks
        failedChecks = canary.failedChecks
        maxFailedChecks = plan.maxFailedChecks
        killDrawdown = plan.killDrawdown
        rollback = plan.rollback.rawValue
        startedBy = plan.by
        startIndex = canary.startIndex
        endReason = canary.endReason
        steps = plan.steps.enumerated().map { index, percent in
            let state =
                index < canary.stepIndex || canary.status == .promoted ? "done"
                : index == canary.stepIndex ? (canary.isActive ? "current" : canary.status.rawValue) : "waiting"
            return Step(step: index + 1, percent: percent, state: state)
        }
        checks = canary.checks.map {
            Check(
                logIndex: $0.index, step: $0.check.step + 1, outcome: $0.outcome, failures: $0.failures, atNanos: $0.check.atNanos,
                candidate: $0.check.candidate, baseline: $0.check.baseline, drawdown: $0.check.drawdown)
        }
        decisions = canary.decisions
    }
}
