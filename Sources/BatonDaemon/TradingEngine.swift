public import BatonFIX
public import BatonFIXNIO
public import BatonFeed
import BatonMarketData
public import BatonTrading
import Foundation
public import Logging
public import RaftCore

/// The trading shell: it owns the replicated `TradingState`, runs the strategies on the feed, and
/// — on the leader only — turns committed intents into orders and reports back into the log.
///
/// Every replica applies the same committed commands (`applied(_:)`) and runs the strategies on
/// the same feed. Only the leader proposes, and it sends an order only when the intent is
/// committed, its reconciliation is done (`Reconciler`), and its lease is valid at the moment of
/// writing. Followers compare their own (shadow) decisions with the leader's committed ones.
public actor TradingEngine: CommittedEntryConsumer {
    public enum Phase: String, Sendable, Codable {
        case follower
        /// Leader, waiting for its lease, its session, or its log to catch up.
        case waiting
        case reconciling
        case trading
        case halted
    }

    let configuration: TradingConfiguration
    let nodeID: NodeID
    let logger: Logger
    let metrics: TradingMetrics
    private var state = TradingState()
    private var strategies: [String: MovingAverageCrossover] = [:]
    private let limits: RiskLimits
    private var reconciler: Reconciler
    private var consensus: ConsensusLoop?
    private var initiator: FIXInitiator?
    private var leadership: LeadershipView?
    /// Highest log index seen by `applied(_:)`, trading command or not.
    private var appliedThrough: LogIndex = 0
    private var phase: Phase = .follower
    private var haltReason: String?
    /// Symbols with an intent proposed by this leader and not yet applied.
    private var inFlightSymbols: Set<String> = []
    /// Orders this leader wrote (or is writing) in its current term: never twice.
    private var sentLocally: [String: Int64] = [:]
    private var lastSendFailure: Int64 = 0
    private var proposedExecIDs: Set<String> = []
    private var proposedReconciliations: Set<String> = []
    /// The latest direction this replica's own strategy chose per symbol (shadow on followers).
    private var shadowDirection: [String: TargetDirection] = [:]
    private var sessionActive = false
    /// The last tick per symbol (sequence, price), for standing signals at takeover.
    private var lastTicks: [String: (sequence: UInt64, price: Int64)] = [:]
    private var ledTerm: Term?
    /// Set while a planned hand-over drains: no decision is proposed and no order is written.
    private var handingOver = false
    /// MsgSeqNum of each OrderStatusRequest this leader sent → its ClOrdID, so a Reject or
    /// BusinessMessageReject of the request (RefSeqNum) is matched to the question.
    private var statusRequestSeqNums: [Int: String] = [:]
    /// The sequence block this leader asked the log for and has not seen applied (term, when).
    private var reservationPending: (term: Term, since: Int64)?
    /// "SenderCompID->TargetCompID": the cluster's one broker session.
    private var sessionName: String { "\(configuration.senderCompID)->\(configuration.targetCompID)" }
    /// Test-only fault injection (debug endpoints): SIGKILL this process around the next order.
    public enum KillPoint: String, Sendable, Codable {
        /// After the intent is committed, before its NewOrderSingle is written.
        case beforeSend = "before-send"
        /// Right after the NewOrderSingle is written, before OrderSent or any report is journaled.
        case afterSend = "after-send"
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
    public private(set) var shadowAgreements: UInt64 = 0
    public private(set) var shadowDivergences: UInt64 = 0

    public init(configuration: TradingConfiguration, nodeID: NodeID, logger: Logger, metrics: TradingMetrics) {
        self.configuration = configuration
        self.nodeID = nodeID
        self.logger = logger
        self.metrics = metrics
        limits = RiskLimits(
            maxOrdersPerMinute: configuration.risk.maxOrdersPerMinute,
            maxOrdersPerHour: configuration.risk.maxOrdersPerHour, maxPosition: configuration.risk.maxPosition,
            maxOrderQuantity: configuration.risk.maxOrderQuantity)
        reconciler = Reconciler(
            settings: .init(
                answerTimeoutNanos: Int64(configuration.reconcileAnswerTimeout.nanosecondsClamped),
                attemptsBeforeHalt: configuration.reconcileAttemptsBeforeHalt))
        for symbol in configuration.symbols {
            strategies[symbol] = MovingAverageCrossover(
                parameters: CrossoverParameters(
                    symbol: symbol, fastWindow: configuration.fastWindow, slowWindow: configuration.slowWindow,
                    threshold: configuration.threshold, quantity: configuration.quantity,
                    allowShort: configuration.allowShort),
                version: configuration.strategyVersion)
        }
    }

    /// Wires the shells the engine acts through (they are built after it: the consensus loop
    /// takes the engine as its state machine).
    public func attach(consensus: ConsensusLoop, initiator: FIXInitiator) {
        self.consensus = consensus
        self.initiator = initiator
    }

    /// Rebuilds the state from the journal's applied commands at start, before the loop runs.
    public func restore(_ commands: [(term: UInt64, index: UInt64, payload: [UInt8])]) throws {
        for (term, index, payload) in commands {
            guard let command = try TradingCommand.decode(payload) else { continue }
            state.apply(command, term: term, index: index)
            appliedThrough = max(appliedThrough, index)
        }
        publishPositions()
        logger.info(
            "trading state restored from the journal",
            metadata: [
                "trading.orders": "\(state.orders.count)", "trading.open_orders": "\(state.openOrderCount)",
                "journal.applied_index": "\(appliedThrough)",
            ])
    }

    // MARK: - Committed entries (every replica)

    public func applied(_ entries: [LogEntry]) async {
        var toSend = false
        for entry in entries {
            appliedThrough = max(appliedThrough, entry.index)
            guard case .command(let payload) = entry.payload else { continue }
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
                continue
            }
            guard let command else { continue }
            for effect in state.apply(command, term: entry.term, index: entry.index) {
                toSend = handle(effect, command: command) || toSend
            }
        }
        publishPositions()
        if toSend, phase == .trading { await sendCommittedIntents() }
    }

    /// Returns true when an order may now need sending.
    private func handle(_ effect: TradingState.Effect, command: TradingCommand) -> Bool {
        switch effect {
        case .orderCommitted(let order):
            inFlightSymbols.remove(order.symbol)
            phaseMarks[order.intent.traceID]?.applied = Self.wallNanos()
            metrics.intents.increment()
            compareWithShadow(order.intent.signal)
            logger.info(
                "order intent committed",
                metadata: [
                    "order.clordid": "\(order.clOrdID)", "order.symbol": "\(order.symbol)",
                    "order.side": "\(order.intent.side.rawValue)", "order.qty": "\(order.intent.quantity)",
                    "trace.id": "\(order.intent.traceID)",
                ])
            return true
        case .rejectionCommitted(let rejection):
            inFlightSymbols.remove(rejection.signal.symbol)
            metrics.riskRejections.increment()
            compareWithShadow(rejection.signal)
            logger.info(
                "signal rejected by the risk gate",
                metadata: [
                    "signal.symbol": "\(rejection.signal.symbol)",
                    "signal.direction": "\(rejection.signal.direction.rawValue)", "risk.reason": "\(rejection.reason)",
                ])
            return false
        case .orderChanged(let order):
            if case .resolved(let resolution) = command {
                logger.notice(
                    "order resolved by an operator",
                    metadata: [
                        "order.clordid": "\(order.clOrdID)", "order.status": "\(order.status.rawValue)",
                        "resolution.by": "\(resolution.by)", "resolution.reason": "\(resolution.reason)",
                    ])
                carryOut(reconciler.onResolved(clOrdID: resolution.clOrdID))
                return false
            }
            if case .reconciled(let reconciliation) = command {
                proposedReconciliations.remove(reconciliation.clOrdID)
                let directives = reconciler.onCommitted(reconciliation)
                carryOut(directives)
                return order.status == .intent
            }
            if order.status.isTerminal, reconciler.isAsking(about: order.clOrdID) {
                logger.notice(
                    "an open question settled by a journaled report", metadata: ["order.clordid": "\(order.clOrdID)"])
                carryOut(reconciler.onResolved(clOrdID: order.clOrdID))
            }
            return false
        case .filled(let clOrdID, let symbol, let quantity, let price):
            metrics.fills.increment()
            logger.info(
                "fill journaled",
                metadata: [
                    "order.clordid": "\(clOrdID)", "order.symbol": "\(symbol)", "fill.qty": "\(quantity)",
                    "fill.price": "\(TickCodec.formatPrice(price))",
                ])
            return false
        case .duplicateExecution:
            metrics.duplicateReports.increment()
            return false
        case .anomaly(let text):
            metrics.anomalies.increment()
            logger.error("trading journal anomaly", metadata: ["anomaly": "\(text)"])
            return false
        case .pausedChanged(let paused):
            logger.notice(paused ? "trading paused" : "trading resumed")
            return false
        case .sequenceReserved(let reservation, let first, let through):
            onSequenceReserved(reservation, first: first, through: through)
            return false
        }
    }

    private func compareWithShadow(_ signal: SignalOrigin) {
        guard leadership?.role != .leader else { return }
        guard let mine = shadowDirection[signal.symbol] else { return }
        if mine == signal.direction {
            shadowAgreements += 1
            metrics.shadowAgreements.increment()
        } else {
            shadowDivergences += 1
            metrics.shadowDivergences.increment()
        }
    }

    // MARK: - Market feed (every replica)

    public func onFeed(_ event: FeedEvent) async {
        switch event {
        case .ticks(_, let ticks):
            metrics.ticks.increment(by: Int64(ticks.count))
            for tick in ticks {
                guard var strategy = strategies[tick.symbol] else { continue }
                let signal = strategy.onTick(
                    sequence: tick.sequence, price: tick.price, receivedNanos: tick.receiveTimeNanos)
                strategies[tick.symbol] = strategy
                lastTicks[tick.symbol] = (tick.sequence, tick.price)
                if let signal { await decide(signal) }
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

    private func decide(_ signal: StrategySignal) async {
        shadowDirection[signal.origin.symbol] = signal.origin.direction
        metrics.signals.increment()
        guard leadership?.role == .leader else { return }
        guard !handingOver else {
            logger.info(
                "signal not acted on: handing leadership over",
                metadata: ["signal.symbol": "\(signal.origin.symbol)", "signal.direction": "\(signal.origin.direction.rawValue)"])
            return
        }
        guard phase == .trading else {
            logger.info(
                "signal not acted on: trading is \(phase.rawValue)",
                metadata: ["signal.symbol": "\(signal.origin.symbol)", "signal.direction": "\(signal.origin.direction.rawValue)"])
            return
        }
        guard !state.paused else {
            // The pause is journaled once, with who and why; a rejection per signal while it lasts
            // would only grow the journal (and keep every replica's log moving while an operator
            // waits for it to settle).
            logger.info(
                "signal not acted on: trading is paused",
                metadata: ["signal.symbol": "\(signal.origin.symbol)", "signal.direction": "\(signal.origin.direction.rawValue)"])
            return
        }
        let now = Self.wallNanos()
        let command: TradingCommand
        switch RiskGate.evaluate(signal, state: state, limits: limits, now: now, inFlight: inFlightSymbols) {
        case .approved(let side, let quantity, let checks):
            command = .orderIntent(
                OrderIntent(
                    signal: signal.origin, side: side, kind: .market, quantity: quantity, limitPrice: nil,
                    timeInForce: .day, riskDecision: "approved: \(checks)", traceID: Self.traceID(),
                    clOrdIDPrefix: configuration.clOrdIDPrefix, decidedAtNanos: now))
        case .rejected(let reason):
            // A signal for a symbol whose intent is still committing is not news; everything else
            // is journaled with its reason.
            if inFlightSymbols.contains(signal.origin.symbol) { return }
            command = .riskRejection(RiskRejection(signal: signal.origin, reason: reason, decidedAtNanos: now))
        }
        inFlightSymbols.insert(signal.origin.symbol)
        if case .orderIntent(let intent) = command {
            if phaseMarks.count > 1000 { phaseMarks = [:] }
            phaseMarks[intent.traceID] = (Self.wallNanos(), nil)
        }
        if !(await propose(command, what: "decision for \(signal.origin.symbol)")) {
            inFlightSymbols.remove(signal.origin.symbol)
        }
    }

    // MARK: - Broker messages

    public func onApplicationMessage(_ message: FIXMessage) async {
        switch message.msgType {
        case "8":
            let report: FIXExecutionReport
            do {
                report = try FIXExecutionReport(message)
            } catch {
                metrics.anomalies.increment()
                logger.error("unreadable ExecutionReport ignored", metadata: ["error": "\(error)", "fix": "\(message)"])
                return
            }
            await onExecutionReport(report, msgSeqNum: message.msgSeqNum)
        case "9":
            logger.warning("OrderCancelReject from the broker", metadata: ["fix": "\(message)"])
        case "3", "j":
            let refSeqNum = message[FIXTag.refSeqNum].flatMap { Int($0) }
            let refMsgType = message[FIXTag.refMsgType] ?? ""
            let name = message.msgType == "j" ? "BusinessMessageReject(j)" : "session Reject(3)"
            let reason = message[message.msgType == "j" ? 380 : 373].map { " reason \($0)" } ?? ""
            let text = message[FIXTag.text].map { " \"\($0.prefix(120))\"" } ?? ""
            let asked = refSeqNum.flatMap { statusRequestSeqNums[$0] }
                ?? (refMsgType == "H" ? message[379].flatMap { reconciler.isAsking(about: $0) ? $0 : nil } : nil)
            if let clOrdID = asked {
                logger.error(
                    "the broker refused an OrderStatusRequest: the order stays unknown",
                    metadata: ["order.clordid": "\(clOrdID)", "fix": "\(message)"])
                carryOut(
                    reconciler.onStatusRequestRefused(
                        clOrdID: clOrdID, answer: "\(name)\(reason)\(text)", now: Self.wallNanos()))
            } else {
                logger.error("the broker rejected one of our messages (\(name))", metadata: ["fix": "\(message)"])
            }
        default:
            logger.warning("unexpected application message from the broker", metadata: ["fix": "\(message)"])
        }
    }

    private func onExecutionReport(_ report: FIXExecutionReport, msgSeqNum: Int?) async {
        var record: ExecutionRecord
        switch Self.record(report, session: configuration.senderCompID, now: Self.wallNanos()) {
        case .success(let checked):
            record = checked
            record.msgSeqNum = msgSeqNum
        case .failure(let refusal):
            // Never journaled: every replica would apply it. The order stays as the journal has it;
            // a status report that is refused the same way halts reconciliation naming the value.
            metrics.anomalies.increment()
            logger.error(
                "ExecutionReport refused at the boundary",
                metadata: [
                    "fix.execid": "\(report.execID)", "order.clordid": "\(report.clOrdID ?? "")", "reason": "\(refusal.reason)",
                ])
            if report.execType == .orderStatus, let clOrdID = report.clOrdID, reconciler.isAsking(about: clOrdID) {
                carryOut(
                    reconciler.onStatusRequestRefused(
                        clOrdID: clOrdID, answer: "a status report we cannot represent (\(refusal.reason))",
                        now: Self.wallNanos()))
            }
            return
        }
        guard leadership?.role == .leader else {
            // The leader journals reports; one arriving here belongs to an order this replica sent
            // while it led. The current leader learns it by reconciling.
            metrics.reportsOnFollower.increment()
            logger.info(
                "ExecutionReport on a follower's session left to the leader's reconciliation",
                metadata: ["order.clordid": "\(record.clOrdID)", "fix.execid": "\(record.execID)"])
            return
        }
        if record.execType == FIXExecType.orderStatus.rawValue {
            guard reconciler.isAsking(about: record.clOrdID) else { return }
            carryOut(reconciler.onStatusReport(record, now: Self.wallNanos()))
            return
        }
        guard state.orders[record.clOrdID] != nil else {
            metrics.anomalies.increment()
            logger.error("ExecutionReport for a ClOrdID the journal does not know", metadata: ["order.clordid": "\(record.clOrdID)"])
            return
        }
        guard !state.executionIDs.contains(record.execID), !proposedExecIDs.contains(record.execID) else { return }
        proposedExecIDs.insert(record.execID)
        if !(await propose(.execution(record), what: "ExecutionReport \(record.execID)")) {
            proposedExecIDs.remove(record.execID)
        }
    }

    struct ReportRefusal: Error {
        /// Names the field and the value, e.g. "AvgPx(6)=1e20 is above 1000000000".
        var reason: String
    }

    /// The broker's ExecutionReport in journal units, or why it cannot be: every quantity a
    /// whole number in 0…10^12, every price in 0…10^9 (TradingBounds). This is the boundary: a
    /// report that passes it can always be applied, on every replica, on every restart.
    static func record(_ report: FIXExecutionReport, session: String, now: Int64) -> Result<ExecutionRecord, ReportRefusal> {
        func quantityField(_ name: String, _ value: FIXDecimal?) -> Result<Int64, ReportRefusal> {
            guard let value else { return .success(0) }
            guard let whole = quantity(value), TradingBounds.isQuantity(whole) else {
                return .failure(ReportRefusal(reason: "\(name)=\(value) is not a whole quantity in 0…\(TradingBounds.maxQuantity)"))
            }
            return .success(whole)
        }
        func priceField(_ name: String, _ value: FIXDecimal?) -> Result<Int64, ReportRefusal> {
            guard let value else { return .success(0) }
            guard let units = price(value), TradingBounds.isPrice(units) else {
                return .failure(
                    ReportRefusal(reason: "\(name)=\(value) is not a price in 0…\(TickCodec.formatPrice(TradingBounds.maxPriceUnits))"))
            }
            return .success(units)
        }
        return Result { () throws(ReportRefusal) -> ExecutionRecord in
            ExecutionRecord(
                clOrdID: report.clOrdID ?? "", execID: report.execID, venueOrderID: report.orderID,
                execType: report.execType.rawValue, ordStatus: report.ordStatus.rawValue,
                lastQuantity: try quantityField("LastQty(32)", report.lastQty).get(),
                lastPrice: try priceField("LastPx(31)", report.lastPx).get(),
                cumulativeQuantity: try quantityField("CumQty(14)", report.cumQty).get(),
                averagePrice: try priceField("AvgPx(6)", report.avgPx).get(),
                leavesQuantity: try quantityField("LeavesQty(151)", report.leavesQty).get(),
                ordRejReason: report.ordRejReason, text: report.text.map { String($0.prefix(500)) }, session: session,
                receivedAtNanos: now)
        }
    }

    /// FIX decimal → price units (1/10_000); nil when it cannot be represented. Finer prices
    /// are truncated: the venue quotes in ticks of at most four places.
    static func price(_ value: FIXDecimal) -> Int64? {
        var units = value.units
        var scale = value.scale
        while scale < 4 {
            let (next, overflow) = units.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            units = next
            scale += 1
        }
        while scale > 4 {
            units /= 10
            scale -= 1
        }
        return units
    }

    /// FIX decimal → whole quantity; nil for fractional quantities (not traded here).
    static func quantity(_ value: FIXDecimal) -> Int64? {
        var units = value.units
        var scale = value.scale
        while scale > 0 {
            guard units % 10 == 0 else { return nil }
            units /= 10
            scale -= 1
        }
        return units
    }

    // MARK: - Leader duties

    /// Runs the leader's duties every few milliseconds: notices leadership and session changes,
    /// drives reconciliation, sends committed intents, and makes silent orders unknown.
    public func runDuties(every interval: Duration = .milliseconds(10)) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            await duty()
        }
    }

    func duty() async {
        guard let consensus, let initiator else { return }
        let view = consensus.leaseCell.leadership
        leadership = view
        let session = await initiator.status()
        let active = session.session == .active
        let sessionDropped = sessionActive && !active
        sessionActive = active
        let now = Self.wallNanos()

        guard view.role == .leader else {
            revokeSession(initiator, reason: "this replica is no longer the leader")
            if ledTerm != nil { loseLeadership(reason: "no longer leader") }
            setPhase(.follower)
            return
        }
        if ledTerm != view.term {
            if ledTerm != nil { loseLeadership(reason: "new term") }
            revokeSession(initiator, reason: "a new term began")
            ledTerm = view.term
            logger.notice("leading: trading waits for the lease, the broker session and the log", metadata: ["raft.term": "\(view.term)"])
        }
        guard view.leaseRemaining != nil else {
            // The lease is what keeps another leader from existing: without it this replica lets
            // go of the broker session at once, so a successor can log on.
            revokeSession(initiator, reason: "the leader lease lapsed")
            if phase != .waiting && phase != .follower {
                logger.warning("leader lease lapsed: trading waits until it holds it again")
                carryOut(reconciler.stop())
            }
            setPhase(.waiting)
            return
        }
        if let start = view.termStartIndex, appliedThrough >= start {
            await holdSession(initiator, term: view.term, nextSenderSeqNum: session.nextSenderSeqNum, now: now)
        }
        if sessionDropped, phase != .waiting {
            // Reports may have been lost with the connection: ask again about everything open.
            logger.warning("broker session dropped while leading; reconciling again once it is back")
            carryOut(reconciler.stop())
            setPhase(.waiting)
        }
        switch phase {
        case .follower, .waiting:
            setPhase(.waiting)
            guard view.leaseRemaining != nil, active, let start = view.termStartIndex, appliedThrough >= start else {
                return
            }
            setPhase(.reconciling)
            logger.notice("reconciling open orders with the broker", metadata: ["trading.open_orders": "\(state.openOrderCount)"])
            carryOut(reconciler.begin(term: view.term, state: state, now: now))
        case .reconciling, .halted:
            carryOut(reconciler.onTick(now: now))
        case .trading:
            await sendCommittedIntents()
            await checkAcknowledgements(now: now)
        }
    }

    /// The leader's claim on the broker session: a block of outbound MsgSeqNums reserved through
    /// the log (granted to the initiator when it is applied), extended when half used.
    private func holdSession(_ initiator: FIXInitiator, term: Term, nextSenderSeqNum next: Int, now: Int64) async {
        if let pending = reservationPending {
            // A proposal lost to a leadership change never applies in this term; ask again.
            guard pending.term != term || now - pending.since > 2_000_000_000 else { return }
            reservationPending = nil
        }
        if let session = state.sequenceSession, session != sessionName {
            let reason =
                "this replica is configured for broker session \(sessionName), but the cluster's journal "
                + "reserved sequence numbers for \(session): every replica must use the same CompIDs"
            if haltReason != reason {
                logger.critical("refusing the broker session", metadata: ["reason": "\(reason)"])
                haltReason = reason
                setPhase(.halted)
            }
            return
        }
        let block = configuration.sequenceBlock
        if let permit = initiator.permit {
            guard permit.senderSeqCeiling - next < block / 2 else { return }
        }
        reservationPending = (term, now)
        let reservation = SequenceReservation(
            session: sessionName, count: block, term: term, node: nodeID.rawValue, atNanos: now)
        if !(await propose(.sequenceReserved(reservation), what: "sequence block")) { reservationPending = nil }
    }

    /// A reservation applied: this leader's own (of its term) becomes its permit.
    private func onSequenceReserved(_ reservation: SequenceReservation, first: Int, through: Int) {
        guard let initiator, reservation.node == nodeID.rawValue, reservation.term == ledTerm,
            leadership?.role == .leader, reservation.session == sessionName
        else { return }
        reservationPending = nil
        if initiator.permit != nil {
            initiator.extendCeiling(to: through)
            logger.debug("broker session sequence numbers extended", metadata: ["fix.sender_seq_ceiling": "\(through)"])
            return
        }
        let inbound = state.lastInboundSeqNum
        initiator.grant(
            FIXSessionPermit(
                firstSenderSeqNum: first, senderSeqCeiling: through, nextTargetSeqNum: inbound > 0 ? inbound + 1 : nil))
        logger.notice(
            "taking over the broker session",
            metadata: [
                "fix.first_sender_seq_num": "\(first)", "fix.sender_seq_ceiling": "\(through)",
                "fix.next_target_seq_num": "\(inbound > 0 ? String(inbound + 1) : "store")",
            ])
    }

    private func revokeSession(_ initiator: FIXInitiator, reason: String) {
        reservationPending = nil
        guard initiator.permit != nil else { return }
        logger.notice("letting go of the broker session", metadata: ["reason": "\(reason)"])
        initiator.revoke(reason: reason)
    }

    private func loseLeadership(reason: String) {
        carryOut(reconciler.stop())
        ledTerm = nil
        handingOver = false
        inFlightSymbols = []
        sentLocally = [:]
        proposedExecIDs = []
        proposedReconciliations = []
        logger.notice("stopped leading: no orders from this replica", metadata: ["reason": "\(reason)"])
    }

    private func setPhase(_ next: Phase) {
        guard next != phase else { return }
        phase = next
        if next != .halted { haltReason = nil }
        metrics.setPhase(next)
    }

    private func carryOut(_ directives: [Reconciler.Directive]) {
        for directive in directives {
            switch directive {
            case .requestStatus(let clOrdID, let symbol, let side):
                let request = FIXOrderStatusRequest(
                    clOrdID: clOrdID, symbol: symbol, side: side == .buy ? .buy : .sell)
                Task { await self.requestStatus(request) }
            case .journal(let reconciliation):
                guard !proposedReconciliations.contains(reconciliation.clOrdID) else { continue }
                proposedReconciliations.insert(reconciliation.clOrdID)
                logger.notice(
                    "reconciled with the broker",
                    metadata: ["order.clordid": "\(reconciliation.clOrdID)", "reconcile.finding": "\(reconciliation.finding.summary)"])
                Task { await self.journalReconciliation(reconciliation) }
            case .phaseChanged(let next):
                switch next {
                case .idle: break
                case .reconciling: setPhase(.reconciling)
                case .trading:
                    setPhase(.trading)
                    logger.notice("reconciliation complete: trading", metadata: ["raft.term": "\(reconciler.term)"])
                    Task { await self.actOnStandingSignals() }
                case .halted(let reason):
                    setPhase(.halted)
                    haltReason = reason
                    metrics.halts.increment()
                    logger.critical("trading HALTED", metadata: ["halt.reason": "\(reason)"])
                }
            }
        }
    }

    /// On becoming able to trade: the warm (shadow) strategies may already want a position the
    /// journal does not have, e.g. the old leader saw the crossing and died before its intent.
    /// Each such standing signal goes through the risk gate like any other.
    private func actOnStandingSignals() async {
        for symbol in configuration.symbols {
            guard phase == .trading, let strategy = strategies[symbol], let last = lastTicks[symbol],
                let signal = strategy.standingSignal(
                    position: state.position(symbol), lastSequence: last.sequence, lastPrice: last.price)
            else { continue }
            // An order in flight settles the position first; the gate says so without a journal
            // entry for something that is not a new decision.
            guard state.openOrder(for: symbol) == nil, !inFlightSymbols.contains(symbol) else { continue }
            logger.info(
                "acting on the standing signal at takeover",
                metadata: ["signal.symbol": "\(symbol)", "signal.direction": "\(signal.origin.direction.rawValue)"])
            await decide(signal)
        }
    }

    private func journalReconciliation(_ reconciliation: Reconciliation) async {
        guard !(await propose(.reconciled(reconciliation), what: "reconciliation of \(reconciliation.clOrdID)")) else {
            return
        }
        proposedReconciliations.remove(reconciliation.clOrdID)
        reconciler.onJournalFailed(clOrdID: reconciliation.clOrdID, now: Self.wallNanos())
    }

    private func requestStatus(_ request: FIXOrderStatusRequest) async {
        guard let initiator else { return }
        do {
            let seqNum = try await initiator.send(request.message)
            if statusRequestSeqNums.count > 10_000 { statusRequestSeqNums = [:] }
            statusRequestSeqNums[seqNum] = request.clOrdID
        } catch {
            logger.warning(
                "could not send to the broker",
                metadata: ["fix.what": "OrderStatusRequest \(request.clOrdID)", "error": "\(error)"])
        }
    }

    /// Sends every committed intent this leader may send: intents of its own term, and orders its
    /// reconciliation proved the broker never received (again, with PossResend=Y).
    private func sendCommittedIntents() async {
        guard phase == .trading, !handingOver, let term = ledTerm else { return }
        let now = Self.wallNanos()
        // After a refused send, wait a little before trying again rather than spinning.
        guard now - lastSendFailure > 100_000_000 else { return }
        for order in state.openOrders where order.status == .intent && sentLocally[order.clOrdID] == nil {
            guard order.term == term || order.reconciledInTerm == term else { continue }
            await send(order, term: term)
        }
    }

    private func send(_ order: OrderRecord, term: Term) async {
        guard let consensus, let initiator, !handingOver else { return }
        sentLocally[order.clOrdID] = Self.wallNanos()
        // The lease is checked at the last moment: an order goes out only while no other replica
        // can have been elected.
        let leaseCell = consensus.leaseCell
        let minimumLease = configuration.minimumLeaseToSend
        guard let lease = leaseCell.leaseRemaining(inTerm: term), lease >= minimumLease else {
            sentLocally[order.clOrdID] = nil
            logger.notice("order held: no valid lease", metadata: ["order.clordid": "\(order.clOrdID)"])
            return
        }
        let possResend = !order.sends.isEmpty || order.reconciledInTerm != nil
        let intent = order.intent
        let message = FIXNewOrderSingle(
            clOrdID: order.clOrdID, symbol: order.symbol, side: intent.side == .buy ? .buy : .sell,
            transactTime: FIXInitiator.systemTime(), orderQty: FIXDecimal(units: intent.quantity),
            ordType: intent.kind == .market ? .market : .limit,
            price: intent.limitPrice.map { FIXDecimal(units: $0, scale: 4) },
            timeInForce: Self.timeInForce(intent.timeInForce), account: configuration.account, possResend: possResend
        ).message
        if killPoint == .beforeSend { Self.die("before sending \(order.clOrdID)") }
        let seqNum: Int
        do {
            // Checked again on the session's loop right before the message is stamped and written.
            // With at least `max_order_age` of lease left at that moment, the venue either gets the
            // order while no other leader can exist, or refuses it as stale (its SendingTime is too
            // old), so a pause between check and write cannot make an ex-leader's order count.
            seqNum = try await initiator.send(message) {
                guard let left = leaseCell.leaseRemaining(inTerm: term), left >= minimumLease else {
                    return "lease lost or under \(minimumLease) left before writing \(order.clOrdID)"
                }
                return nil
            }
            if killPoint == .afterSend { Self.die("after sending \(order.clOrdID)") }
        } catch let error as FIXInitiatorError {
            switch error {
            case .disconnected(_, let seq?) :
                // The bytes may have left: only the broker can say. Reconciliation will ask.
                logger.error("order fate unknown: connection lost while sending", metadata: ["order.clordid": "\(order.clOrdID)", "fix.seq": "\(seq)"])
                await propose(
                    .orderUnknown(OrderUnknown(clOrdID: order.clOrdID, reason: "connection lost while sending: \(error)", atNanos: Self.wallNanos())),
                    what: "unknown \(order.clOrdID)")
            default:
                // Not written: it may be sent later, by this leader or, after reconciliation, the next.
                sentLocally[order.clOrdID] = nil
                lastSendFailure = Self.wallNanos()
                logger.warning("order not sent", metadata: ["order.clordid": "\(order.clOrdID)", "error": "\(error)"])
            }
            return
        } catch {
            sentLocally[order.clOrdID] = nil
            lastSendFailure = Self.wallNanos()
            logger.warning("order not sent", metadata: ["order.clordid": "\(order.clOrdID)", "error": "\(error)"])
            return
        }
        let sentAt = Self.wallNanos()
        sentLocally[order.clOrdID] = sentAt
        metrics.ordersSent.increment()
        if !possResend, intent.signal.tickReceivedNanos > 0 {
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
            possResend ? "order re-sent with PossResend=Y" : "order sent",
            metadata: ["order.clordid": "\(order.clOrdID)", "fix.seq": "\(seqNum)", "lease.ms": "\(lease.milliseconds)"])
        let sent = OrderSent(
            clOrdID: order.clOrdID, session: configuration.senderCompID, msgSeqNum: seqNum, sentAtNanos: sentAt,
            leaseRemainingNanos: Int64(lease.nanosecondsClamped), possResend: possResend)
        await propose(.orderSent(sent), what: "OrderSent \(order.clOrdID)")
    }

    /// An order written by this leader that the broker has not answered within the timeout is
    /// unknown, and the whole open book is reconciled again.
    private func checkAcknowledgements(now: Int64) async {
        let timeout = Int64(configuration.ackTimeout.nanosecondsClamped)
        var silent: [String] = []
        for (id, sentAt) in sentLocally {
            guard let order = state.orders[id], order.status == .sent || order.status == .intent else {
                // Answered: the broker has spoken, nothing left to watch.
                sentLocally[id] = nil
                continue
            }
            if now - sentAt > timeout { silent.append(id) }
        }
        guard !silent.isEmpty else { return }
        // Stop trading first, then append each OrderUnknown and wait for the log to take it, so
        // that it lands before any reconciliation the next duty cycle starts: an OrderUnknown
        // applied after the reconciliation that answered it would leave the order stuck.
        carryOut(reconciler.stop())
        setPhase(.waiting)
        for id in silent.sorted() {
            sentLocally[id] = nil
            logger.error("no answer from the broker: order unknown", metadata: ["order.clordid": "\(id)"])
            await propose(
                .orderUnknown(OrderUnknown(clOrdID: id, reason: "no answer within \(configuration.ackTimeout)", atNanos: now)),
                what: "unknown \(id)")
        }
    }

    /// Appends a command to the log (without waiting for the commit: applying it is the answer).
    /// False when the log refused it.
    @discardableResult
    private func propose(_ command: TradingCommand, what: String) async -> Bool {
        guard let consensus else { return false }
        do {
            _ = try await consensus.propose([command.encoded()], waitForCommit: false)
            return true
        } catch {
            logger.warning("proposal failed", metadata: ["proposal": "\(what)", "error": "\(error)"])
            return false
        }
    }

    static func timeInForce(_ tif: OrderTimeInForce) -> FIXTimeInForce {
        switch tif {
        case .day: return .day
        case .goodTillCancel: return .goodTillCancel
        case .immediateOrCancel: return .immediateOrCancel
        }
    }

    static func wallNanos() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    static func traceID() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    // MARK: - Planned hand-over

    /// Stops new decisions and sends, then waits until every order this leader has written (or
    /// is writing) is answered in the journal. Only then may the lease go and TimeoutNow leave:
    /// the target reconciles at once, without waiting out a lease, and the broker's "unknown" is
    /// a proof only for an order it has finished processing. Age is no proof: an order can arrive
    /// within `max_order_age` and still sit in the broker's order gateway (see
    /// `baton-venue --order-latency-ms`). Orders still unanswered at `timeout` are reported, and
    /// the loop refuses the hand-over.
    public func prepareHandOver(timeout: Duration) async -> HandOverReport {
        handingOver = true
        let started = Self.wallNanos()
        let deadline = started + Int64(timeout.nanosecondsClamped)
        func unanswered() -> [String: Int64] {
            sentLocally.filter { id, _ in
                guard let order = state.orders[id] else { return false }
                return order.status == .intent || order.status == .sent
            }
        }
        let inFlight = unanswered()
        var left = inFlight
        while !left.isEmpty {
            if Self.wallNanos() >= deadline { break }
            try? await Task.sleep(for: .milliseconds(2))
            left = unanswered()
        }
        let report = HandOverReport(
            inFlight: inFlight.count, unanswered: left.keys.sorted(),
            waitedMs: Double(Self.wallNanos() - started) / 1e6)
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
        guard handingOver else { return }
        handingOver = false
        logger.notice("hand-over abandoned: still leading")
    }

    // MARK: - Operator actions

    public func armKill(_ point: KillPoint) {
        logger.warning("armed: this process will SIGKILL itself around its next order", metadata: ["kill.point": "\(point.rawValue)"])
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
        guard let consensus else { throw ConsensusError.stopped }
        guard let order = state.orders[clOrdID] else { throw ResolveError.unknownOrder(clOrdID) }
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
        _ = try await consensus.propose([TradingCommand.resolved(resolution).encoded()], waitForCommit: true)
        return orders(matching: clOrdID) ?? orders(limit: 1)[0]
    }

    func orders(matching clOrdID: String) -> OrderView? {
        state.orders[clOrdID].map(view)
    }

    public func setPaused(_ paused: Bool, by: String, reason: String) async throws {
        guard let consensus else { throw ConsensusError.stopped }
        _ = try await consensus.propose(
            [TradingCommand.tradingPaused(paused: paused, by: by, reason: reason, atNanos: Self.wallNanos()).encoded()],
            waitForCommit: true)
    }

    // MARK: - Views

    private func publishPositions() {
        for (symbol, position) in state.positions { metrics.setPosition(symbol, position.quantity) }
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
        /// Who resolved the order by hand, if anyone (its text says what they said).
        public var resolvedBy: String?
    }

    public func orders(limit: Int) -> [OrderView] {
        state.orderList.suffix(limit).map(view)
    }

    private func view(_ o: OrderRecord) -> OrderView {
            OrderView(
                clOrdID: o.clOrdID, logIndex: o.index, logTerm: o.term, symbol: o.symbol, side: o.intent.side.rawValue,
                quantity: o.intent.quantity, status: o.status.rawValue, cumQty: o.cumulativeQuantity,
                avgPx: TickCodec.formatPrice(o.averagePrice), leavesQty: o.leavesQuantity, sends: o.sends.count,
                possResend: o.sends.contains(where: \.possResend), reconciledInTerm: o.reconciledInTerm,
                unknownReason: o.unknownReason, text: o.lastText, riskDecision: o.intent.riskDecision,
                traceID: o.intent.traceID, signalDirection: o.intent.signal.direction.rawValue,
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
        state.positions.values.sorted { $0.symbol < $1.symbol }.map { p in
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
        public var anomalies: [String]
    }

    public func status() -> StatusView {
        StatusView(
            node: nodeID.rawValue, phase: phase.rawValue, haltReason: haltReason, paused: state.paused,
            pauseReason: state.pauseReason, orders: state.orders.count, openOrders: state.openOrderCount,
            unknownOrders: state.openOrders.filter { $0.status == .unknown }.count,
            riskRejections: state.rejections.count, lastRejection: state.rejections.last?.reason,
            shadowAgreements: shadowAgreements, shadowDivergences: shadowDivergences, appliedIndex: appliedThrough,
            anomalies: state.anomalies)
    }

    public var tickToOrderSamples: [Int64] { recentTickToOrder }
    /// [tick → proposed, proposed → applied, applied → written] per sent order, in ns.
    public var tickToOrderPhases: [[Int64]] { recentPhases }

    public var recentRejections: [RiskRejection] { Array(state.rejections.suffix(50)) }
}

extension Reconciliation.Finding {
    var summary: String {
        switch self {
        case .venueKnows(let report): return "venue has it: OrdStatus=\(report.ordStatus) CumQty=\(report.cumulativeQuantity)"
        case .neverReceived(let text): return "venue never received it (\(text)): will re-send with PossResend=Y"
        }
    }
}
