public import BatonAlerting
public import BatonFIX
public import BatonFIXNIO
public import BatonFeed
import BatonMarketData
public import BatonTrading
import Foundation
import Synchronization
public import Logging
public import RaftCore

/// The trading shell. Everything that decides is `TradingCore` (BatonTrading), a pure value the
/// trading simulator drives too; this actor feeds it events with the time — committed entries,
/// ticks, broker messages, a duty tick every 10 ms with fresh views of consensus and the session —
/// and carries out its directives: proposals, writes and status requests in the order given (one
/// outbox task), session grants and revocations at once, reports as logs and metrics.
public actor TradingEngine: CommittedEntryConsumer {
    public typealias Phase = TradingPhase

    let configuration: TradingConfiguration
    let nodeID: NodeID
    let logger: Logger
    let metrics: TradingMetrics
    private var core: TradingCore
    private var consensus: ConsensusLoop?
    private var initiator: FIXInitiator?
    /// What the alert rules read beyond the core (IncidentObservation.swift).
    var feed: MarketFeedClient?
    var dataDirectory: String?
    /// This replica's and its followers' words on their disks and journals (nil: not watched).
    var replicaHealth: ReplicaHealth?
    var incidentWatch = IncidentWatch()
    /// Trade notifications to the chats that asked for them (best effort, leader only).
    var tradeNotifier: TradeNotifier
    var leadsForNotifications = false
    private var publishedPhase: Phase = .follower
    /// Directives that go out in order: proposals, order writes, status requests.
    private let outbox: AsyncStream<TradingDirective>.Continuation
    private let outboxStream: AsyncStream<TradingDirective>
    /// Alert deliveries the core asked for, carried out beside the outbox (never in it).
    private let alertJobs: AsyncStream<([UInt64], String, [AlertEvent])>.Continuation
    private let alertJobStream: AsyncStream<([UInt64], String, [AlertEvent])>
    private let alertSinks: [String: AlertSink]
    let alertDeliverer = AlertDeliverer()
    /// Test-only fault injection (debug endpoints): SIGKILL this process around the next order.
    public enum KillPoint: String, Sendable, Codable {
        /// After the intent is committed, before its NewOrderSingle is written.
        case beforeSend = "before-send"
        /// Right after the NewOrderSingle is written, before OrderSent or any report is journaled.
        case afterSend = "after-send"
        /// SIGSTOP this process after the lease check passed and before the bytes are written:
        /// whoever armed it sends SIGCONT (the chaos run). The window the broker must fence.
        case stopBeforeWrite = "stop-before-write"
        /// Disarms.
        case none
    }
    private var killPoint: KillPoint?
    /// Raw tick-to-order samples (ns) of the orders this replica sent, newest last, bounded: the
    /// benchmark reads percentiles from these rather than from histogram buckets.
    private var recentTickToOrder: [Int64] = []
    /// Where the time goes, per order sent: tick → decision proposed, → intent applied here,
    /// → order written (ns each). Keyed by trace id until the order is written.
    private var phaseMarks: [String: (proposed: Int64, applied: Int64?)] = [:]
    private var recentPhases: [[Int64]] = []
    static let tickToOrderKept = 20_000
    /// The order acknowledgement SLO, fed from the core's reports (on the leader).
    /// nil only when a hand-built configuration held an invalid objective (the loader refuses
    /// one): the SLO is then not measured, and the start-up log says why.
    private var serviceLevels: ServiceLevels?
    private let serviceLevelMetrics: [ServiceLevelMetrics]
    private var lastServiceLevelSample: Int64 = .min / 2
    /// The admin plane's answers, for the admin availability SLO (nil: not measured here).
    private let adminAnswers: AdminAnswerTally?
    /// Admin actions waiting for their command to be applied here, not just committed: the
    /// answer they give is read from this replica's state, which lags the commit by an apply.
    private var applyWaiters: [(id: UInt64, index: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextApplyWaiter: UInt64 = 0
    public var shadowAgreements: UInt64 { core.shadowAgreements }
    public var shadowDivergences: UInt64 { core.shadowDivergences }

    public init(
        configuration: TradingConfiguration, nodeID: NodeID, logger: Logger, metrics: TradingMetrics,
        adminAnswers: AdminAnswerTally? = nil
    ) {
        self.adminAnswers = adminAnswers
        self.configuration = configuration
        self.nodeID = nodeID
        self.logger = logger
        self.metrics = metrics
        (outboxStream, outbox) = AsyncStream<TradingDirective>.makeStream()
        (alertJobStream, alertJobs) = AsyncStream<([UInt64], String, [AlertEvent])>.makeStream()
        alertSinks = configuration.alertSinks.mapValues(AlertSink.init)
        do {
            let levels = try ServiceLevels(
                .init(
                    orderAck: configuration.orderAckObjective, ackThreshold: configuration.orderAckThreshold,
                    orderPath: configuration.orderPathObjective, orderPathBound: configuration.orderPathBound,
                    leader: configuration.leaderObjective, feed: configuration.feedObjective, admin: configuration.adminObjective,
                    periodDays: configuration.sloPeriodDays))
            serviceLevels = levels
            serviceLevelMetrics = levels.evaluators.map { slo in
                ServiceLevelMetrics(objective: slo.evaluator.objective, node: "\(nodeID.rawValue)", registry: metrics.registry)
            }
        } catch {
            logger.error("an SLO objective is invalid; the SLOs are not measured", metadata: ["error": "\(error)"])
            serviceLevels = nil
            serviceLevelMetrics = []
        }
        core = TradingCore(settings: configuration.coreSettings(node: nodeID.rawValue))
        tradeNotifier = TradeNotifier(
            settings: .init(sinks: configuration.alertTradeSinks, minimumIntervalMillis: configuration.alertMinimumIntervalMillis))
    }

    private func logAlert(_ effect: AlertOutbox.Effect) {
        switch effect {
        case .raised(let entry):
            let level: Logger.Level =
                switch entry.event.level {
                case .critical, .error: .error
                case .warning: .warning
                case .info: .notice
                }
            logger.log(
                level: level, "alert raised",
                metadata: [
                    "alert.key": "\(entry.event.key)", "alert.level": "\(entry.event.level.rawValue)",
                    "alert.summary": "\(entry.event.summary)",
                ])
        case .resolvedIncident(let entry):
            logger.notice("alert resolved", metadata: ["alert.key": "\(entry.event.key)"])
        case .ignored:
            break
        case .delivered(let id, let sink):
            logger.info("alert delivered", metadata: ["alert.id": "\(id)", "alert.sink": "\(sink)"])
        case .retryLater(let id, let sink, let attempts, let reason):
            logger.warning(
                "alert delivery failed; retrying later",
                metadata: ["alert.id": "\(id)", "alert.sink": "\(sink)", "alert.attempts": "\(attempts)", "error": "\(reason)"])
        case .gaveUp(let id, let sink, let reason):
            logger.error(
                "alert delivery given up", metadata: ["alert.id": "\(id)", "alert.sink": "\(sink)", "error": "\(reason)"])
        }
    }

    /// Wires the shells the engine acts through (they are built after it: the consensus loop
    /// takes the engine as its state machine).
    func attach(
        consensus: ConsensusLoop, initiator: FIXInitiator, feed: MarketFeedClient? = nil, dataDirectory: String? = nil,
        health: ReplicaHealth? = nil
    ) {
        self.replicaHealth = health
        self.consensus = consensus
        self.initiator = initiator
        self.feed = feed
        self.dataDirectory = dataDirectory
    }

    /// Rebuilds the state from the journal's applied commands at start, before the loop runs.
    public func restore(_ commands: [(term: UInt64, index: UInt64, payload: [UInt8])]) throws {
        for (term, index, payload) in commands {
            guard let command = try TradingCommand.decode(payload) else { continue }
            core.restore(command, term: term, index: index)
        }
        publishPositions()
        logger.info(
            "trading state restored from the journal",
            metadata: [
                "trading.orders": "\(core.state.orders.count)", "trading.open_orders": "\(core.state.openOrderCount)",
                "journal.applied_index": "\(core.appliedThrough)",
            ])
    }

    // MARK: - Events in

    public func applied(_ entries: [LogEntry]) async {
        for entry in entries {
            guard case .command(let payload) = entry.payload else {
                core.applied(through: entry.index)
                continue
            }
            let command: TradingCommand?
            do {
                command = try TradingCommand.decode(payload)
            } catch {
                // A trading entry this version cannot read: every replica hits the same entry, so
                // this is a deployment problem (mixed versions), not a local fault. Say it loudly.
                logger.critical(
                    "cannot decode a committed trading command; it is skipped",
                    metadata: ["raft.index": "\(entry.index)", "error": "\(error)"])
                metrics.anomalies.increment()
                core.applied(through: entry.index)
                continue
            }
            guard let command else {
                core.applied(through: entry.index)
                continue
            }
            carryOut(core.apply(command, term: entry.term, index: entry.index, now: Self.coreNanos()))
        }
        publishPositions()
        resumeApplyWaiters()
    }

    // MARK: - Admin commands: journaled, then read back once applied

    /// Proposes one command, waits for its commit and then for this replica to apply it, so the
    /// caller's answer (the order as resolved, the canary as started) is the journal's outcome.
    /// Bounded by the caller's deadline (a cancelled wait leaves no waiter behind).
    private func proposeAndApply(_ command: TradingCommand) async throws {
        guard let consensus else { throw ConsensusError.stopped }
        let positions = try await consensus.propose([command.encoded()], waitForCommit: true)
        guard let index = positions.last?.index else { return }
        try await waitUntilApplied(index)
    }

    private func waitUntilApplied(_ index: UInt64) async throws {
        if core.appliedThrough >= index { return }
        let id = nextApplyWaiter
        nextApplyWaiter += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard !Task.isCancelled else {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                applyWaiters.append((id, index, continuation))
            }
        } onCancel: {
            Task { await self.abandonApplyWaiter(id) }
        }
    }

    private func resumeApplyWaiters() {
        guard !applyWaiters.isEmpty else { return }
        let applied = core.appliedThrough
        let ready = applyWaiters.filter { $0.index <= applied }
        applyWaiters.removeAll { $0.index <= applied }
        for waiter in ready { waiter.continuation.resume() }
    }

    private func abandonApplyWaiter(_ id: UInt64) {
        guard let i = applyWaiters.firstIndex(where: { $0.id == id }) else { return }
        applyWaiters.remove(at: i).continuation.resume(throwing: CancellationError())
    }

    public func onFeed(_ event: FeedEvent) async {
        switch event {
        case .ticks(_, let ticks):
            metrics.ticks.increment(by: Int64(ticks.count))
            for tick in ticks {
                carryOut(
                    core.onTick(
                        symbol: tick.symbol, sequence: tick.sequence, price: tick.price,
                        receivedNanos: tick.receiveTimeNanos, now: Self.coreNanos()))
            }
        case .sourceSwitched, .gap, .sequenceReset:
            // The feed client logs these with their details; the averages simply continue on the
            // new source's prices (both sources quote the same market).
            break
        case .overflow(let ticks, let switches):
            logger.error(
                "strategy fell behind the market feed; events dropped",
                metadata: ["feed.dropped_ticks": "\(ticks)", "feed.dropped_switches": "\(switches)"])
        }
    }

    public func onApplicationMessage(_ message: FIXMessage) async {
        let now = Self.coreNanos()
        switch message.msgType {
        case "8":
            switch OrderMessages.inbound(message, session: configuration.senderCompID, now: now) {
            case .unreadable(let error):
                metrics.anomalies.increment()
                logger.error("unreadable ExecutionReport ignored", metadata: ["error": "\(error)", "fix": "\(message)"])
            case .report(let record, let possDup, let massStatus):
                carryOut(core.onExecutionReport(record, possDup: possDup, massStatus: massStatus, now: now))
            case .refused(let clOrdID, let isStatusReport, let reason):
                // Never journaled: every replica would apply it. The order stays as the journal has it.
                carryOut(core.onReportRefused(clOrdID: clOrdID, isStatusReport: isStatusReport, reason: reason, now: now))
            }
        case "9":
            logger.warning("OrderCancelReject from the broker", metadata: ["fix": "\(message)"])
        case "3", "j":
            let name = message.msgType == "j" ? "BusinessMessageReject(j)" : "session Reject(3)"
            let reason = message[message.msgType == "j" ? 380 : 373].map { " reason \($0)" } ?? ""
            let text = message[FIXTag.text].map { " \"\($0.prefix(120))\"" } ?? ""
            carryOut(
                core.onRejected(
                    refSeqNum: message[FIXTag.refSeqNum].flatMap { Int($0) }, refMsgType: message[FIXTag.refMsgType] ?? "",
                    businessRejectRefID: message[379], answer: "\(name)\(reason)\(text)", now: now))
        default:
            logger.warning("unexpected application message from the broker", metadata: ["fix": "\(message)"])
        }
    }

    /// Runs the leader's duty every few milliseconds and carries out, in order, what it asks.
    public func runDuties(every interval: Duration = .milliseconds(10)) async throws {
        // The outbox is not awaited on shutdown: a proposal or write in flight when the service
        // group stops (the consensus loop is stopping too) must not hold the process up.
        let carrier = Task { await self.runOutbox() }
        let courier = Task { await self.runAlertDeliveries() }
        defer {
            outbox.finish()
            carrier.cancel()
            alertJobs.finish()
            courier.cancel()
        }
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            await duty()
        }
    }

    func duty() async {
        guard let consensus, let initiator else { return }
        let view = consensus.leaseCell.leadership
        let session = await initiator.status()
        await observeForIncidents(view, consensus: consensus, now: Self.coreNanos())
        notifyTrades(leading: view.role == .leader, now: Self.coreNanos())
        carryOut(
            core.onDuty(
                now: Self.coreNanos(),
                leadership: LeadershipInput(
                    isLeader: view.role == .leader, term: view.term,
                    leaseRemainingNanos: view.leaseRemaining.map { Int64($0.nanosecondsClamped) },
                    termStartIndex: view.termStartIndex),
                session: SessionInput(active: session.session == .active, nextSenderSeqNum: session.nextSenderSeqNum)))
        sampleServiceLevels(view, now: Self.coreNanos())
        evaluateServiceLevels(now: Self.coreNanos())
    }

    /// Once a second: the time-based SLIs (a leader known, the feed fresh), and the order path's
    /// late writes.
    private func sampleServiceLevels(_ view: LeadershipView, now: Int64) {
        guard serviceLevels != nil, now - lastServiceLevelSample >= 1_000_000_000 else { return }
        lastServiceLevelSample = now
        var feedFresh: Bool?
        if let status = feed?.status(), let active = status.sources.first(where: { $0.source == status.active }),
            !status.sources.allSatisfy({ $0.health == .pending })
        {
            feedFresh = active.health == .healthy
        }
        serviceLevels?.sample(leaderKnown: view.leader != nil, feedFresh: feedFresh, now: now)
        if let answers = adminAnswers?.take() { serviceLevels?.adminAnswered(good: answers.good, bad: answers.bad, now: now) }
        serviceLevels?.sweepUnwritten(now: now, leading: view.role == .leader)
    }

    private func evaluateServiceLevels(now: Int64) {
        guard var levels = serviceLevels, let changes = levels.evaluateIfDue(now: now) else { return }
        serviceLevels = levels
        for change in changes {
            switch change {
            case .raise(let slo, let rule, let long, let short):
                incidentWatch.burnRaised(slo: slo, rule: rule, long: long, short: short, now: now)
                logger.error(
                    "SLO burning its error budget too fast",
                    metadata: [
                        "slo.name": "\(slo)", "slo.rule": "\(rule)", "slo.severity": "\(rule.severity.rawValue)",
                        "slo.burn_rate.long": "\(long)", "slo.burn_rate.short": "\(short)",
                    ])
            case .resolve(let slo, let rule):
                incidentWatch.burnResolved(slo: slo, rule: rule)
                logger.notice("SLO burn back under the rule's rate", metadata: ["slo.name": "\(slo)", "slo.rule": "\(rule)"])
            }
        }
        for (slo, gauges) in zip(levels.evaluators, serviceLevelMetrics) {
            gauges.publish(slo.evaluator.status(at: now), firingRules: slo.evaluator.firingRules, totals: slo.evaluator.totals)
        }
    }

    /// The replicated alert outbox as applied here.
    var alertOutbox: AlertOutbox { core.state.alerts }

    /// The alert rules' view beyond the core (IncidentObservation.swift).
    func observe(_ external: IncidentRules.External) { core.observe(external) }

    /// What `GET /slo` shows.
    public func serviceLevelStatus() -> [SLOEvaluator.Status] { serviceLevels?.status(now: Self.coreNanos()) ?? [] }

    // MARK: - Directives out

    private func carryOut(_ directives: [TradingDirective]) {
        for directive in directives {
            switch directive {
            case .report(let report):
                log(report)
            case .grantSession(let grant):
                initiator?.grant(
                    FIXSessionPermit(
                        firstSenderSeqNum: grant.firstSenderSeqNum, senderSeqCeiling: grant.senderSeqCeiling,
                        nextTargetSeqNum: grant.nextTargetSeqNum))
            case .extendSession(let ceiling):
                initiator?.extendCeiling(to: ceiling)
            case .revokeSession(let reason):
                initiator?.revoke(reason: reason)
            case .handOverLeadership(let reason):
                handOverLeadership(reason: reason)
            case .deliverAlerts(let ids, let sink, let events):
                // Off the order path: a slow receiver must never hold a proposal or a write.
                alertJobs.yield((ids, sink, events))
            case .propose, .send, .requestStatus, .requestMassStatus:
                if case .propose(.orderIntent(let intent)) = directive {
                    if phaseMarks.count > 1000 { phaseMarks = [:] }
                    phaseMarks[intent.traceID] = (Self.wallNanos(), nil)
                }
                outbox.yield(directive)
            }
        }
        if core.phase != publishedPhase {
            publishedPhase = core.phase
            metrics.setPhase(core.phase)
        }
    }

    /// The core's broker hand-over, off the actor: the planned path of `batonctl
    /// transfer-leadership` (drain, mark, TimeoutNow to the most caught-up follower), except
    /// that orders left unanswered do not stop it: cut off from the broker, this leader cannot
    /// get them answered, and the next one treats them as after a failover.
    private func handOverLeadership(reason: String) {
        guard let consensus else { return }
        logger.warning("handing leadership over: the broker is unreachable from here", metadata: ["reason": "\(reason)"])
        metrics.brokerHandOvers.increment()
        let logger = self.logger
        Task {
            do {
                let leader = try await consensus.transferLeadershipUndrained(timeout: .seconds(3))
                logger.notice("leadership handed over for the broker", metadata: ["raft.leader": "\(leader.map(\.description) ?? "?")"])
            } catch {
                logger.warning("broker hand-over did not happen; this replica asks again later", metadata: ["error": "\(error)"])
            }
        }
    }

    private func runOutbox() async {
        for await directive in outboxStream {
            switch directive {
            case .propose(let command):
                if !(await propose(command)) { core.onProposalFailed(command, now: Self.coreNanos()) }
            case .send(let send):
                await write(send)
            case .requestStatus(let clOrdID, let symbol, let side):
                await requestStatus(FIXOrderStatusRequest(clOrdID: clOrdID, symbol: symbol, side: side == .buy ? .buy : .sell))
            case .requestMassStatus(let requestID):
                do {
                    if let seq = try await initiator?.send(FIXOrderMassStatusRequest(massStatusReqID: requestID).message) {
                        core.onMassStatusRequestWritten(requestID: requestID, msgSeqNum: seq)
                    }
                } catch {
                    logger.warning(
                        "could not send to the broker", metadata: ["fix.what": "OrderMassStatusRequest \(requestID)", "error": "\(error)"])
                }
            case .report, .grantSession, .extendSession, .revokeSession, .deliverAlerts, .handOverLeadership:
                break
            }
        }
    }

    /// Deliveries run side by side (the dispatcher already keeps one per sink at a time), each
    /// reporting back to the core with its outcome.
    private func runAlertDeliveries() async {
        let deliverer = alertDeliverer
        let sinks = alertSinks
        await withDiscardingTaskGroup { group in
            for await (ids, name, events) in alertJobStream {
                group.addTask {
                    let outcome: DeliveryOutcome
                    if let sink = sinks[name] {
                        outcome = await deliverer.deliver(events, to: sink)
                    } else {
                        outcome = .refused(reason: "no sink named \(name) is configured on this replica")
                    }
                    await self.alertDelivered(ids: ids, sink: name, outcome: outcome)
                }
            }
        }
    }

    private func alertDelivered(ids: [UInt64], sink: String, outcome: DeliveryOutcome) {
        carryOut(core.onAlertOutcome(ids: ids, sink: sink, outcome: outcome, now: Self.coreNanos()))
    }

    private func write(_ send: OrderToSend) async {
        guard let consensus, let initiator else { return }
        let order = send.order
        let intent = order.intent
        let leaseCell = consensus.leaseCell
        let term = send.term
        let minimumLease = Duration.nanoseconds(send.minimumLeaseNanos)
        let message = OrderMessages.newOrderSingle(send, transactTime: FIXInitiator.systemTime()).message
        if killPoint == .beforeSend { Self.die("before sending \(order.clOrdID)") }
        let stopsInside = killPoint == .stopBeforeWrite
        if stopsInside { killPoint = nil }
        let seqNum: Int
        do {
            // The lease is checked on the session's loop right before the message is stamped and
            // written: an order goes out only while no other replica can have been elected.
            seqNum = try await initiator.send(message) {
                guard let left = leaseCell.leaseRemaining(inTerm: term), left >= minimumLease else {
                    return "lease lost or under \(minimumLease) left before writing \(order.clOrdID)"
                }
                if stopsInside {
                    FileHandle.standardError.write(Data("batond: debug SIGSTOP before writing \(order.clOrdID)\n".utf8))
                    kill(getpid(), SIGSTOP)
                }
                return nil
            }
            if killPoint == .afterSend { Self.die("after sending \(order.clOrdID)") }
        } catch FIXInitiatorError.disconnected(let reason, let seq?) {
            carryOut(
                core.onOrderLostInFlight(
                    clOrdID: order.clOrdID, reason: "connection lost while sending (MsgSeqNum \(seq)): \(reason)",
                    now: Self.coreNanos()))
            return
        } catch {
            carryOut(core.onOrderNotWritten(clOrdID: order.clOrdID, reason: "\(error)", now: Self.coreNanos()))
            return
        }
        let sentAt = Self.wallNanos()
        let lease = leaseCell.leaseRemaining(inTerm: term) ?? .zero
        metrics.ordersSent.increment()
        if !send.possResend, intent.signal.tickReceivedNanos > 0 {
            let nanos = max(0, sentAt - intent.signal.tickReceivedNanos)
            metrics.tickToOrder.recordNanoseconds(nanos)
            if recentTickToOrder.count == Self.tickToOrderKept { recentTickToOrder.removeFirst(Self.tickToOrderKept / 2) }
            recentTickToOrder.append(nanos)
            if let marks = phaseMarks.removeValue(forKey: intent.traceID), let applied = marks.applied {
                if recentPhases.count == Self.tickToOrderKept { recentPhases.removeFirst(Self.tickToOrderKept / 2) }
                recentPhases.append([
                    marks.proposed - intent.signal.tickReceivedNanos, applied - marks.proposed, sentAt - applied,
                ])
            }
        }
        logger.info(
            send.possResend ? "order re-sent with PossResend=Y" : "order sent",
            metadata: ["order.clordid": "\(order.clOrdID)", "fix.seq": "\(seqNum)", "lease.ms": "\(lease.milliseconds)"])
        serviceLevels?.orderWritten(clOrdID: order.clOrdID, now: Self.coreNanos())
        carryOut(
            core.onOrderWritten(
                send, msgSeqNum: seqNum, leaseRemainingNanos: Int64(lease.nanosecondsClamped), now: Self.coreNanos()))
    }

    private func requestStatus(_ request: FIXOrderStatusRequest) async {
        guard let initiator else { return }
        do {
            let seqNum = try await initiator.send(request.message)
            core.onStatusRequestWritten(clOrdID: request.clOrdID, msgSeqNum: seqNum)
        } catch {
            logger.warning(
                "could not send to the broker",
                metadata: ["fix.what": "OrderStatusRequest \(request.clOrdID)", "error": "\(error)"])
        }
    }

    /// Appends a command to the log (without waiting for the commit: applying it is the answer).
    /// False when the log refused it.
    private func propose(_ command: TradingCommand) async -> Bool {
        guard let consensus else { return false }
        do {
            _ = try await consensus.propose([command.encoded()], waitForCommit: false)
            return true
        } catch {
            logger.warning("proposal failed", metadata: ["proposal": "\(command.name)", "error": "\(error)"])
            return false
        }
    }

    // swift-format-ignore
    private func log(_ report: TradingReport) {
        switch report {
        case .intentCommitted(let order):
            metrics.intents.increment()
            if core.phase != .follower { serviceLevels?.intentCommitted(clOrdID: order.clOrdID, now: Self.coreNanos()) }
            tradeNote(
                .approved, order.clOrdID,
                "\(order.intent.side.rawValue.uppercased()) \(order.intent.quantity) \(order.symbol) approved (\(order.clOrdID))",
                ["symbol": order.symbol, "side": order.intent.side.rawValue, "quantity": "\(order.intent.quantity)"])
            phaseMarks[order.intent.traceID]?.applied = Self.wallNanos()
            logger.info(
                "order intent committed",
                metadata: [
                    "order.clordid": "\(order.clOrdID)", "order.symbol": "\(order.symbol)",
                    "order.side": "\(order.intent.side.rawValue)", "order.qty": "\(order.intent.quantity)",
                    "trace.id": "\(order.intent.traceID)",
                ])
        case .rejectionCommitted(let rejection):
            metrics.riskRejections.increment()
            logger.info(
                "signal rejected by the risk gate",
                metadata: [
                    "signal.symbol": "\(rejection.signal.symbol)",
                    "signal.direction": "\(rejection.signal.direction.rawValue)", "risk.reason": "\(rejection.reason)",
                ])
        case .resolvedByOperator(let order, let resolution):
            logger.notice(
                "order resolved by an operator",
                metadata: [
                    "order.clordid": "\(order.clOrdID)", "order.status": "\(order.status.rawValue)",
                    "resolution.by": "\(resolution.by)", "resolution.reason": "\(resolution.reason)",
                ])
        case .settledByReport(let clOrdID):
            logger.notice("an open question settled by a journaled report", metadata: ["order.clordid": "\(clOrdID)"])
        case .filled(let clOrdID, let symbol, let quantity, let price):
            metrics.fills.increment()
            tradeNote(
                .filled, clOrdID, "fill: \(quantity) \(symbol) @ \(TickCodec.formatPrice(price)) (\(clOrdID))",
                ["symbol": symbol, "quantity": "\(quantity)", "price": TickCodec.formatPrice(price)])
            logger.info(
                "fill journaled",
                metadata: [
                    "order.clordid": "\(clOrdID)", "order.symbol": "\(symbol)", "fill.qty": "\(quantity)",
                    "fill.price": "\(TickCodec.formatPrice(price))",
                ])
        case .duplicateExecution:
            metrics.duplicateReports.increment()
        case .anomaly(let text):
            metrics.anomalies.increment()
            logger.error("trading journal anomaly", metadata: ["anomaly": "\(text)"])
        case .pausedChanged(let paused):
            logger.notice(paused ? "trading paused" : "trading resumed")
        case .strategiesDeployed(let deployed, let ignored):
            for strategy in deployed where !ignored.contains(strategy.spec.symbol) {
                logger.notice(
                    "strategy deployed",
                    metadata: [
                        "strategy.symbol": "\(strategy.spec.symbol)", "strategy.name": "\(strategy.spec.name)",
                        "strategy.version": "\(strategy.version)", "strategy.by": "\(strategy.by)",
                        "strategy.reason": "\(strategy.reason)", "raft.index": "\(strategy.index)",
                    ])
            }
            if !ignored.isEmpty {
                metrics.anomalies.increment()
                logger.error(
                    "strategy deployment names symbols this replica does not trade; left as they were",
                    metadata: ["strategy.symbols": "\(ignored.joined(separator: ","))"])
            }
        case .canary(let change):
            logCanary(change)
        case .shadow(let agreed):
            (agreed ? metrics.shadowAgreements : metrics.shadowDivergences).increment()
        case .signal:
            metrics.signals.increment()
        case .signalIgnored(let symbol, let direction, let why):
            logger.info(
                "signal not acted on: \(why)",
                metadata: ["signal.symbol": "\(symbol)", "signal.direction": "\(direction.rawValue)"])
        case .standingSignal(let symbol, let direction):
            logger.info(
                "acting on the standing signal at takeover",
                metadata: ["signal.symbol": "\(symbol)", "signal.direction": "\(direction.rawValue)"])
        case .reportOnFollower(let clOrdID, let execID):
            metrics.reportsOnFollower.increment()
            logger.info(
                "ExecutionReport on a follower left to the leader",
                metadata: ["order.clordid": "\(clOrdID)", "fix.execid": "\(execID)"])
        case .reportForUnknownOrder(let clOrdID):
            metrics.anomalies.increment()
            logger.error("ExecutionReport for a ClOrdID the journal does not know", metadata: ["order.clordid": "\(clOrdID)"])
        case .reportRefused(let clOrdID, let reason):
            metrics.anomalies.increment()
            logger.error(
                "ExecutionReport refused at the boundary", metadata: ["order.clordid": "\(clOrdID)", "reason": "\(reason)"])
        case .statusRequestRefused(let clOrdID, let answer):
            logger.error(
                "the broker refused an OrderStatusRequest: the order stays unknown",
                metadata: ["order.clordid": "\(clOrdID)", "fix.answer": "\(answer)"])
        case .messageRejected(let answer):
            logger.error("the broker rejected one of our messages", metadata: ["fix.answer": "\(answer)"])
        case .reconciledFinding(let reconciliation):
            logger.notice(
                "reconciled with the broker",
                metadata: ["order.clordid": "\(reconciliation.clOrdID)", "reconcile.finding": "\(reconciliation.finding.summary)"])
        case .leading(let term):
            logger.notice("leading: trading waits for the lease, the broker session and the log", metadata: ["raft.term": "\(term)"])
        case .leadershipLost(let reason):
            logger.notice("stopped leading: no orders from this replica", metadata: ["reason": "\(reason)"])
        case .leaseLapsed:
            logger.warning("leader lease lapsed: trading waits until it holds it again")
        case .sessionDropped:
            logger.warning("broker session dropped while leading; reconciling again once it is back")
        case .reconciling(let open, let settled):
            logger.notice(
                "reconciling open orders with the broker",
                metadata: ["trading.open_orders": "\(open)", "session.settled_ms": "\(settled / 1_000_000)"])
        case .trading(let term):
            logger.notice("reconciliation complete: trading", metadata: ["raft.term": "\(term)"])
        case .halted(let reason):
            metrics.halts.increment()
            logger.critical("trading HALTED", metadata: ["halt.reason": "\(reason)"])
        case .sessionTaken(let grant):
            logger.notice(
                "taking over the broker session",
                metadata: [
                    "fix.first_sender_seq_num": "\(grant.firstSenderSeqNum)", "fix.sender_seq_ceiling": "\(grant.senderSeqCeiling)",
                    "fix.next_target_seq_num": "\(grant.nextTargetSeqNum.map(String.init) ?? "store")",
                ])
        case .sessionExtended(let ceiling):
            logger.debug("broker session sequence numbers extended", metadata: ["fix.sender_seq_ceiling": "\(ceiling)"])
        case .sessionReleased(let reason):
            logger.notice("letting go of the broker session", metadata: ["reason": "\(reason)"])
        case .sessionRefused(let reason):
            metrics.halts.increment()
            logger.critical("refusing the broker session", metadata: ["reason": "\(reason)"])
        case .orderHeld(let clOrdID, let why):
            logger.notice("order held: \(why)", metadata: ["order.clordid": "\(clOrdID)"])
        case .orderNotWritten(let clOrdID, let reason):
            tradeNote(.error, clOrdID, "order \(clOrdID) not sent: \(reason)", ["reason": reason])
            logger.warning("order not sent", metadata: ["order.clordid": "\(clOrdID)", "error": "\(reason)"])
        case .orderUnknown(let clOrdID, let reason):
            metrics.ordersUnknown.increment()
            tradeNote(.error, clOrdID, "order \(clOrdID) fate unknown: \(reason)", ["reason": reason])
            serviceLevels?.orderUnknown(now: Self.coreNanos())
            logger.error("order fate unknown", metadata: ["order.clordid": "\(clOrdID)", "reason": "\(reason)"])
        case .alert(let effect):
            logAlert(effect)
        case .orderAcknowledged(_, let latency):
            metrics.orderAckSeconds.recordNanoseconds(latency)
            serviceLevels?.orderAcknowledged(latencyNanos: latency, now: Self.coreNanos())
        case .handOverMarked(let drained):
            logger.notice(drained ? "hand-over journaled: this leader writes nothing more" : "hand-over abandoned: trading on")
        }
    }

    /// The trading core's clock: CLOCK_MONOTONIC anchored once to the wall clock, so journaled
    /// times read as wall times while the core's waits (the settle after logon, the ack timeout,
    /// the lease margin, reconciliation timeouts) never jump with an NTP step.
    static func coreNanos() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return clockAnchor.wall + (Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec) - clockAnchor.monotonic)
    }

    private static let clockAnchor: (wall: Int64, monotonic: Int64) = {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return (wallNanos(), Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }()

    static func wallNanos() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// A canary's decisions as log lines; an abort is critical (it also pages, through the
    /// `canary-aborted` incident, where alert sinks are configured).
    private func logCanary(_ change: CanaryState.Effect) {
        switch change {
        case .started(let canary):
            logger.notice("canary started", metadata: ["canary.strategy": "\(canary.plan.strategyName)", "canary.version": "\(canary.plan.version)", "canary.steps": "\(canary.plan.steps)"])
        case .stepChanged(let percent):
            logger.notice("canary step", metadata: ["canary.percent": "\(percent)"])
        case .checked(let record):
            logger.notice("canary check", metadata: ["canary.step": "\(record.check.step + 1)", "canary.outcome": "\(record.outcome)", "canary.failures": "\(record.failures.joined(separator: "; "))"])
        case .paused(let paused):
            logger.notice(paused ? "canary paused" : "canary resumed")
        case .promoted(let canary):
            logger.notice("canary promoted", metadata: ["canary.strategy": "\(canary.plan.strategyName)", "canary.version": "\(canary.plan.version)"])
        case .aborted(let canary):
            metrics.canaryAborts.increment()
            logger.critical("canary aborted and rolled back", metadata: ["canary.strategy": "\(canary.plan.strategyName)", "canary.version": "\(canary.plan.version)", "canary.reason": "\(canary.endReason ?? "")", "canary.rollback": "\(canary.plan.rollback.rawValue)"])
        case .ignored(let why):
            logger.warning("canary command ignored", metadata: ["canary.why": "\(why)"])
        }
    }

    // MARK: - Planned hand-over

    /// Stops new decisions and sends, then waits until every order this leader has written (or
    /// is writing) is answered in the journal, and journals the hand-over mark. Only then may the
    /// lease go and TimeoutNow leave: the target, seeing the mark, reconciles at once without
    /// waiting out `max_order_age`, and the broker's "unknown" is a proof only for an order it has
    /// finished processing. Age is no proof: an order can arrive within `max_order_age` and still
    /// sit in the broker's order gateway (see `baton-venue --order-latency-ms`). Orders still
    /// unanswered at `timeout` are reported, and the loop refuses the hand-over.
    public func prepareHandOver(timeout: Duration) async -> HandOverReport {
        core.beginHandOver()
        let started = Self.wallNanos()
        let deadline = started + Int64(timeout.nanosecondsClamped)
        let inFlight = core.unansweredWrites
        var left = inFlight
        while !left.isEmpty {
            if Self.wallNanos() >= deadline { break }
            try? await Task.sleep(for: .milliseconds(2))
            left = core.unansweredWrites
        }
        if left.isEmpty, let consensus, let mark = core.handOverMark(now: Self.coreNanos()) {
            // Bounded: on shutdown the loop may no longer commit anything, and a hand-over that
            // cannot journal its mark is refused rather than waited for.
            let payload = mark.encoded()
            let committed: Bool = await withCheckedContinuation { continuation in
                let once = ResumeOnce()
                Task {
                    let ok = (try? await consensus.propose([payload], waitForCommit: true)) != nil
                    if once.claim() { continuation.resume(returning: ok) }
                }
                Task {
                    try? await Task.sleep(for: .milliseconds(500))
                    if once.claim() { continuation.resume(returning: false) }
                }
            }
            if committed {
                log(.handOverMarked(drained: true))
            } else {
                left = ["(the hand-over mark did not commit within 500 ms)"]
            }
        }
        let report = HandOverReport(
            inFlight: inFlight.count, unanswered: left, waitedMs: Double(Self.wallNanos() - started) / 1e6)
        metrics.handOverDrainSeconds.recordNanoseconds(Self.wallNanos() - started)
        logger.notice(
            "hand-over: sends stopped, in-flight orders drained",
            metadata: [
                "handover.in_flight": "\(report.inFlight)", "handover.unanswered": "\(report.unanswered.count)",
                "handover.waited_ms": "\(report.waitedMs)",
            ])
        return report
    }

    public func handOverAbandoned() {
        guard core.isHandingOver else { return }
        carryOut(core.abandonHandOver(now: Self.coreNanos()))
        logger.notice("hand-over abandoned: still leading")
    }

    // MARK: - Operator actions

    public func armKill(_ point: KillPoint) {
        guard point != .none else {
            killPoint = nil
            logger.notice("debug kill point disarmed")
            return
        }
        logger.warning(
            "armed: this process will \(point == .stopBeforeWrite ? "SIGSTOP" : "SIGKILL") itself around its next order",
            metadata: ["kill.point": "\(point.rawValue)"])
        killPoint = point
    }

    private static func die(_ when: String) -> Never {
        FileHandle.standardError.write(Data("batond: debug kill \(when)\n".utf8))
        kill(getpid(), SIGKILL)
        fatalError("unreachable: SIGKILL did not stop the process")
    }

    public enum ResolveError: Error, CustomStringConvertible {
        case unknownOrder(String)
        case alreadyTerminal(String, status: String)
        case invalid(String)

        public var description: String {
            switch self {
            case .unknownOrder(let id): return "no order \(id) in the journal"
            case .alreadyTerminal(let id, let status):
                return "order \(id) is already \(status): only open orders (unknown, pending) are resolved by hand"
            case .invalid(let why): return why
            }
        }

        var isUnknownOrder: Bool {
            if case .unknownOrder = self { return true }
            return false
        }
    }

    /// Journals an operator's resolution of an open order and returns the order as applied. The
    /// checks here give the operator a clear answer; the state applies the same rules again.
    public func resolve(clOrdID: String, outcome: OrderResolution.Outcome, by: String, reason: String) async throws
        -> OrderView
    {
        guard consensus != nil else { throw ConsensusError.stopped }
        guard let order = core.state.orders[clOrdID] else { throw ResolveError.unknownOrder(clOrdID) }
        guard !order.status.isTerminal else { throw ResolveError.alreadyTerminal(clOrdID, status: order.status.rawValue) }
        switch outcome {
        case .notReceived:
            guard order.cumulativeQuantity == 0 else {
                throw ResolveError.invalid(
                    "order \(clOrdID) has journaled fills (CumQty \(order.cumulativeQuantity)): the broker had it; "
                        + "resolve it as filled with the broker's total")
            }
        case .filled(let quantity, _):
            guard quantity >= order.cumulativeQuantity, quantity <= order.intent.quantity else {
                throw ResolveError.invalid(
                    "quantity \(quantity) for \(clOrdID) must be between its journaled fills (\(order.cumulativeQuantity)) "
                        + "and its order quantity (\(order.intent.quantity))")
            }
        }
        let resolution = OrderResolution(
            clOrdID: clOrdID, outcome: outcome, by: by, reason: reason, atNanos: Self.wallNanos())
        try await proposeAndApply(.resolved(resolution))
        return orders(matching: clOrdID) ?? orders(limit: 1)[0]
    }

    func orders(matching clOrdID: String) -> OrderView? {
        core.state.orders[clOrdID].map(view)
    }

    /// What a symbol runs, and where it came from: the configuration, or a journaled deployment.
    public struct StrategyView: Codable, Sendable {
        public var symbol: String
        public var strategy: String
        public var version: String
        public var parameters: [String: String]
        /// "configuration" or "deployment".
        public var source: String
        public var deployedBy: String?
        public var reason: String?
        public var logIndex: UInt64?
    }

    public func strategyViews() -> [StrategyView] {
        configuration.strategySpecs.map { configured in
            if let deployed = core.state.strategies[configured.symbol] {
                return StrategyView(
                    symbol: configured.symbol, strategy: deployed.spec.name, version: deployed.version,
                    parameters: deployed.spec.parameters, source: "deployment", deployedBy: deployed.by, reason: deployed.reason,
                    logIndex: deployed.index)
            }
            return StrategyView(
                symbol: configured.symbol, strategy: configured.name, version: configuration.strategyVersion,
                parameters: configured.parameters, source: "configuration")
        }
    }

    /// The strategies a deployment request asks for, checked against the registry, the symbols
    /// this cluster trades, and the position cap; each problem names what is wrong.
    func strategySpecs(for request: AdminStrategyRequest.Deployment) -> Result<[StrategySpec], StrategyProblems> {
        let traded = configuration.symbols
        let symbols = request.symbols ?? traded
        let untraded = symbols.filter { !traded.contains($0) }
        guard untraded.isEmpty else {
            return .failure(
                StrategyProblems([
                    "symbols \(untraded.map { "'\($0)'" }.joined(separator: ", ")) are not traded here (trading.symbols: \(traded.joined(separator: ", ")))"
                ]))
        }
        var specs: [StrategySpec] = []
        for symbol in symbols {
            switch StrategySpec.parse(name: request.name, symbol: symbol, parameters: request.parameters) {
            case .success(let spec): specs.append(spec)
            case .failure(let problems): return .failure(problems)
            }
        }
        let quantity = Int64(request.parameters["quantity"].flatMap { Int($0) } ?? 100)
        guard quantity <= configuration.risk.maxPosition else {
            return .failure(
                StrategyProblems([
                    "parameters.quantity \(quantity) exceeds trading.risk.max_position (\(configuration.risk.maxPosition)): every signal would be rejected"
                ]))
        }
        return .success(specs)
    }

    public func deployStrategies(_ specs: [StrategySpec], version: String, by: String, reason: String) async throws {
        guard consensus != nil else { throw ConsensusError.stopped }
        let deployment = StrategyDeployment(specs: specs, version: version, by: by, reason: reason, atNanos: Self.wallNanos())
        try await proposeAndApply(.strategyDeployed(deployment))
    }

    /// The latest canary as the journal has it (nil before the first).
    public func canaryState() -> CanaryState? { core.state.canary }

    /// Starts a canary of `specs` at `version`: checked against the registry like a deployment
    /// (the caller did), against a canary already running, and journaled with this replica's
    /// last trade prices (the baseline's starting mark) and the configured limits.
    public func startCanary(
        _ specs: [StrategySpec], version: String, steps: [Int], intervalSeconds: Int, maxFailedChecks: Int,
        by: String, reason: String
    ) async throws -> Result<CanaryState, StrategyProblems> {
        guard consensus != nil else { throw ConsensusError.stopped }
        if let running = core.state.canary, running.isActive {
            return .failure(StrategyProblems(["a canary of \(running.plan.strategyName) v\(running.plan.version) is \(running.status.rawValue): promote or abort it first"]))
        }
        let settings = configuration.canary
        var thresholds = CanaryThresholds()
        thresholds.maxRejectPermille = settings.maxRejectPermille
        thresholds.maxSlippageBps = settings.maxSlippageBps
        thresholds.minFillPermille = settings.minFillPermille
        thresholds.maxPnLShortfallPerUnit = settings.maxPnLShortfall
        thresholds.maxOrderRatePercent = settings.maxOrderRatePercent
        thresholds.orderCountFloor = settings.orderCountFloor
        thresholds.maxRiskRefusals = settings.maxRiskRefusals
        let plan = CanaryPlan(
            candidate: specs, version: version, steps: steps, intervalNanos: Int64(intervalSeconds) * 1_000_000_000,
            maxFailedChecks: maxFailedChecks, thresholds: thresholds, killDrawdown: settings.killDrawdown,
            rollback: CanaryRollback(rawValue: settings.rollback) ?? .flatten, startMarks: core.lastTradePrices,
            by: by, reason: reason, atNanos: Self.wallNanos())
        if let problem = plan.problem { return .failure(StrategyProblems([problem])) }
        try await proposeAndApply(.canary(.start(plan)))
        guard let started = core.state.canary, started.plan == plan else {
            return .failure(StrategyProblems(["the canary was journaled but not started (see the log for why)"]))
        }
        return .success(started)
    }

    /// An operator's promote, promote --full, abort, pause or resume, journaled with who.
    public func canaryDecision(_ action: CanaryAction, by: String, reason: String) async throws -> Result<CanaryState, StrategyProblems> {
        guard consensus != nil else { throw ConsensusError.stopped }
        guard let canary = core.state.canary, canary.isActive else {
            return .failure(StrategyProblems(["no canary is running (the last one \(core.state.canary.map { "was \($0.status.rawValue)" } ?? "does not exist"))"]))
        }
        let before = canary.decisions.count
        try await proposeAndApply(.canary(.manual(action: action, by: by, reason: reason, atNanos: Self.wallNanos())))
        guard let after = core.state.canary, after.decisions.count > before else {
            return .failure(StrategyProblems(["\(action.rawValue) changed nothing: the canary is \(core.state.canary?.status.rawValue ?? "gone")"]))
        }
        return .success(after)
    }

    public func setPaused(_ paused: Bool, by: String, reason: String) async throws {
        guard consensus != nil else { throw ConsensusError.stopped }
        try await proposeAndApply(.tradingPaused(paused: paused, by: by, reason: reason, atNanos: Self.wallNanos()))
    }

    /// Journals an admin-plane action (through the log like every trading command, so every
    /// replica holds the same audit trail and a failover keeps it).
    public func journalAudit(_ record: AuditRecord) async throws {
        guard consensus != nil else { throw ConsensusError.stopped }
        try await proposeAndApply(.audit(record))
    }

    /// The newest `limit` journaled admin actions, oldest first.
    public func auditRecords(limit: Int) -> [AuditRecord] { Array(core.state.audit.suffix(limit)) }

    // MARK: - Views

    private func publishPositions() {
        for (symbol, position) in core.state.positions { metrics.setPosition(symbol, position.quantity) }
    }

    public struct OrderView: Codable, Sendable {
        public var clOrdID: String
        public var logIndex: UInt64
        public var logTerm: UInt64
        public var symbol: String
        public var side: String
        public var quantity: Int64
        public var status: String
        public var cumQty: Int64
        public var avgPx: String
        public var leavesQty: Int64
        public var sends: Int
        public var possResend: Bool
        public var reconciledInTerm: UInt64?
        public var unknownReason: String?
        public var text: String?
        public var riskDecision: String
        public var traceID: String
        public var signalDirection: String
        /// The strategy and version whose signal the order came from (its fills are theirs).
        public var strategy: String
        public var strategyVersion: String
        /// Who resolved the order by hand, if anyone (its text says what they said).
        public var resolvedBy: String?
    }

    public func orders(limit: Int) -> [OrderView] {
        core.state.orderList.suffix(limit).map(view)
    }

    private func view(_ o: OrderRecord) -> OrderView {
            OrderView(
                clOrdID: o.clOrdID, logIndex: o.index, logTerm: o.term, symbol: o.symbol, side: o.intent.side.rawValue,
                quantity: o.intent.quantity, status: o.status.rawValue, cumQty: o.cumulativeQuantity,
                avgPx: TickCodec.formatPrice(o.averagePrice), leavesQty: o.leavesQuantity, sends: o.sends.count,
                possResend: o.sends.contains(where: \.possResend), reconciledInTerm: o.reconciledInTerm,
                unknownReason: o.unknownReason, text: o.lastText, riskDecision: o.intent.riskDecision,
                traceID: o.intent.traceID, signalDirection: o.intent.signal.direction.rawValue,
                strategy: o.intent.signal.strategy, strategyVersion: o.intent.signal.strategyVersion,
                resolvedBy: o.resolution?.by)
    }

    public struct PositionView: Codable, Sendable {
        public var symbol: String
        public var quantity: Int64
        public var averagePrice: String
        public var realizedPnl: String
        public var filledQuantity: Int64
        public var fills: Int
    }

    public func positions() -> [PositionView] {
        core.state.positions.values.sorted { $0.symbol < $1.symbol }.map { p in
            PositionView(
                symbol: p.symbol, quantity: p.quantity, averagePrice: TickCodec.formatPrice(p.averagePrice),
                realizedPnl: TickCodec.formatPrice(p.realizedPnL), filledQuantity: p.filledQuantity, fills: p.fills)
        }
    }

    public struct StatusView: Codable, Sendable {
        public var node: UInt64
        public var phase: String
        public var haltReason: String?
        public var paused: Bool
        public var pauseReason: String?
        public var orders: Int
        public var openOrders: Int
        public var unknownOrders: Int
        public var riskRejections: Int
        public var lastRejection: String?
        public var shadowAgreements: UInt64
        public var shadowDivergences: UInt64
        public var appliedIndex: UInt64
        /// See `TradingCore.tradingFromSequence`; nil until this replica has traded.
        public var tradingFromSequence: UInt64?
        public var anomalies: [String]
    }

    public func status() -> StatusView {
        let state = core.state
        return StatusView(
            node: nodeID.rawValue, phase: core.phase.rawValue, haltReason: core.haltReason, paused: state.paused,
            pauseReason: state.pauseReason, orders: state.orders.count, openOrders: state.openOrderCount,
            unknownOrders: state.openOrders.filter { $0.status == .unknown }.count,
            riskRejections: state.rejections.count, lastRejection: state.rejections.last?.reason,
            shadowAgreements: core.shadowAgreements, shadowDivergences: core.shadowDivergences,
            appliedIndex: core.appliedThrough, tradingFromSequence: core.tradingFromSequence,
            anomalies: state.anomalies)
    }

    public var tickToOrderSamples: [Int64] { recentTickToOrder }
    /// [tick → proposed, proposed → applied, applied → written] per sent order, in ns.
    public var tickToOrderPhases: [[Int64]] { recentPhases }

    public var recentRejections: [RiskRejection] { Array(core.state.rejections.suffix(50)) }
}

extension Reconciliation.Finding {
    var summary: String {
        switch self {
        case .venueKnows(let report): return "venue has it: OrdStatus=\(report.ordStatus) CumQty=\(report.cumulativeQuantity)"
        case .neverReceived(let text): return "venue never received it (\(text)): will re-send with PossResend=Y"
        }
    }
}

extension TradingCommand {
    /// What a proposal is, for log lines.
    var name: String {
        switch self {
        case .orderIntent(let intent): return "decision for \(intent.signal.symbol)"
        case .riskRejection(let rejection): return "decision for \(rejection.signal.symbol)"
        case .orderSent(let sent): return "OrderSent \(sent.clOrdID)"
        case .execution(let record): return "ExecutionReport \(record.execID)"
        case .orderUnknown(let unknown): return "unknown \(unknown.clOrdID)"
        case .reconciled(let reconciliation): return "reconciliation of \(reconciliation.clOrdID)"
        case .tradingPaused: return "pause"
        case .resolved(let resolution): return "resolution of \(resolution.clOrdID)"
        case .sequenceReserved: return "sequence block"
        case .handOver: return "hand-over mark"
        case .audit(let record): return "audit of \(record.action)"
        case .alert(.raise(let identity, _, _)): return "alert raised: \(identity)"
        case .alert(.resolve(let identity, _, _)): return "alert resolved: \(identity)"
        case .alert(.attempted(let id, let sink, _)): return "alert \(id) delivery to \(sink)"
        case .strategyDeployed(let deployment): return "deployment of \(deployment.specs.first?.name ?? "?") v\(deployment.version)"
        case .canary(.start(let plan)): return "canary start of \(plan.strategyName) v\(plan.version)"
        case .canary(.check(let check)): return "canary check of step \(check.step + 1)"
        case .canary(.manual(let action, _, _, _)): return "canary \(action.rawValue)"
        }
    }
}

/// Lets exactly one of several racers resume a continuation.
final class ResumeOnce: Sendable {
    private let claimed = Mutex(false)

    func claim() -> Bool {
        claimed.withLock { taken in
            if taken { return false }
            taken = true
            return true
        }
    }
}

extension TradingConfiguration {
    /// The strategy of each symbol, as the trading core builds them.
    public var strategySpecs: [StrategySpec] {
        symbols.map { symbol in
            strategyName == ChannelBreakout.name
                ? .channelBreakout(
                    BreakoutParameters(
                        symbol: symbol, lookback: lookback, quantity: quantity, allowShort: allowShort,
                        limitOffsetBps: limitOffsetBps, timeInForce: OrderTimeInForce(rawValue: timeInForce) ?? .immediateOrCancel))
                : .maCrossover(
                    CrossoverParameters(
                        symbol: symbol, fastWindow: fastWindow, slowWindow: slowWindow, threshold: threshold,
                        quantity: quantity, allowShort: allowShort))
        }
    }
}
