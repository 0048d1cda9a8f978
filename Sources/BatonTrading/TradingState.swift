public import BatonAlerting
import BatonMarketData

/// What the trading state can represent, checked where values come in (the feed line, the
/// ExecutionReport, the operator's resolution) so that what is journaled can always be applied.
public enum TradingBounds {
    /// Prices in price units: at most one billion (TickCodec.maxPriceUnits).
    public static let maxPriceUnits: Int64 = TickCodec.maxPriceUnits
    /// Quantities: at most 10^12.
    public static let maxQuantity: Int64 = 1_000_000_000_000

    public static func isPrice(_ units: Int64) -> Bool { (0...maxPriceUnits).contains(units) }
    public static func isQuantity(_ value: Int64) -> Bool { (0...maxQuantity).contains(value) }
}

/// One order as the journal knows it.
public struct OrderRecord: Codable, Sendable, Hashable {
    public var clOrdID: String
    /// Log position of the intent.
    public var term: UInt64
    public var index: UInt64
    public var intent: OrderIntent
    public var status: OrderStatus
    public var venueOrderID: String?
    public var cumulativeQuantity: Int64 = 0
    /// Average fill price in price units; with `cumulativeQuantity` it gives the filled notional.
    public var averagePrice: Int64 = 0
    public var leavesQuantity: Int64
    /// Every time the order was written to the venue (more than one only after reconciliation
    /// proved the venue never received it).
    public var sends: [OrderSent] = []
    public var executions: Int = 0
    public var unknownReason: String?
    public var lastText: String?
    /// Set when a new leader asked the venue about this order and journaled the answer.
    public var reconciledInTerm: UInt64?
    /// Set when an operator resolved the order by hand.
    public var resolution: OrderResolution?

    public var symbol: String { intent.signal.symbol }
}

/// Net position in one symbol, derived from fills on every replica.
public struct Position: Codable, Sendable, Hashable {
    public var symbol: String
    /// Signed: positive long, negative short.
    public var quantity: Int64 = 0
    /// Average entry price of the open quantity (price units).
    public var averagePrice: Int64 = 0
    /// Realised profit and loss in price units × quantity (i.e. currency × 10_000).
    public var realizedPnL: Int64 = 0
    public var filledQuantity: Int64 = 0
    public var fills: Int = 0
}

/// The replicated trading state: orders, executions seen, positions, risk counters. Every replica
/// applies the same committed commands in the same order and so holds the same value; the leader
/// additionally acts on it (sends, reconciles).
public struct TradingState: Sendable {
    public private(set) var orders: [String: OrderRecord] = [:]
    /// ClOrdIDs in log order, for listing.
    public private(set) var orderSequence: [String] = []
    /// ClOrdIDs of orders not yet terminal, in log order: few at any time (the risk gate allows
    /// one per symbol), so the hot paths never walk the whole history.
    private var openIDs: [String] = []
    public private(set) var positions: [String: Position] = [:]
    public private(set) var executionIDs: Set<String> = []
    public private(set) var rejections: [RiskRejection] = []
    /// Decision times of committed intents, oldest first, for the rate limits.
    public private(set) var intentTimes: [Int64] = []
    public private(set) var paused = false
    /// Per symbol, the strategy an operator deployed last (absent: the configured one runs).
    public private(set) var strategies: [String: DeployedStrategy] = [:]
    public private(set) var pauseReason: String?
    public private(set) var lastAppliedIndex: UInt64 = 0
    /// Highest outbound MsgSeqNum reserved for the broker session (0: none yet), and the session
    /// it was reserved for.
    public private(set) var senderSeqCeiling = 0
    public private(set) var sequenceSession: String?
    /// Highest inbound MsgSeqNum of a journaled ExecutionReport (0: none).
    public private(set) var lastInboundSeqNum = 0
    /// The last leader's drained hand-over, while nothing of a later term has been applied since
    /// (a later leader may have written orders) and it was not abandoned.
    public private(set) var handOver: HandOver?
    /// Commands that referred to an order the journal does not know (should not happen; counted
    /// and kept visible rather than trapping).
    public private(set) var anomalies: [String] = []
    /// The admin plane's journaled actions, oldest first (the newest `maxAuditKept`).
    public private(set) var audit: [AuditRecord] = []
    /// Open incidents and the alert events still to deliver (doc/alerting.md).
    public private(set) var alerts = AlertOutbox()
    /// The latest canary (running, paused, or how it ended), nil before the first.
    public private(set) var canary: CanaryState?
    /// Per symbol, the candidate sleeve's part of the position (only symbols a canary ran on);
    /// the baseline holds the rest.
    public private(set) var candidateBooks: [String: SleeveBook] = [:]
    /// Per symbol, the cash every fill moved (price units × quantity, negative for buying).
    public private(set) var cashFlows: [String: Int64] = [:]
    public static let maxRejectionsKept = 1_000
    public static let maxAuditKept = 10_000
    static let maxAnomaliesKept = 100

    public init() {}

    /// What applying a command changed, so the shell can act (the leader sends new intents) and
    /// keep metrics.
    public enum Effect: Sendable, Hashable {
        case orderCommitted(OrderRecord)
        case rejectionCommitted(RiskRejection)
        case orderChanged(OrderRecord)
        case filled(clOrdID: String, symbol: String, quantity: Int64, price: Int64)
        case duplicateExecution(execID: String)
        case anomaly(String)
        case pausedChanged(Bool)
        /// MsgSeqNums first...through are reserved for `reservation`'s leader.
        case sequenceReserved(SequenceReservation, first: Int, through: Int)
        case handOver(HandOver)
        case alert(AlertOutbox.Effect)
        /// These symbols run a new strategy from here on.
        case strategiesDeployed([DeployedStrategy])
        case canary(CanaryState.Effect)
    }

    /// Applies one committed command found at log position (term, index).
    @discardableResult
    public mutating func apply(_ command: TradingCommand, term: UInt64, index: UInt64) -> [Effect] {
        lastAppliedIndex = max(lastAppliedIndex, index)
        if let mark = handOver, term != mark.term { handOver = nil }
        switch command {
        case .orderIntent(let intent):
            let id = makeClOrdID(prefix: intent.clOrdIDPrefix, term: term, index: index)
            guard orders[id] == nil else { return [noteAnomaly("intent \(id) applied twice")] }
            let record = OrderRecord(
                clOrdID: id, term: term, index: index, intent: intent, status: .intent,
                leavesQuantity: intent.quantity)
            orders[id] = record
            orderSequence.append(id)
            openIDs.append(id)
            intentTimes.append(intent.decidedAtNanos)
            // Keep an hour of decisions: the longest rate-limit window.
            let horizon = intent.decidedAtNanos - 3_600_000_000_000
            if let firstKept = intentTimes.firstIndex(where: { $0 > horizon }), firstKept > 0 {
                intentTimes.removeFirst(firstKept)
            }
            return [.orderCommitted(record)]

        case .riskRejection(let rejection):
            rejections.append(rejection)
            if rejections.count > Self.maxRejectionsKept { rejections.removeFirst(rejections.count - Self.maxRejectionsKept) }
            return [.rejectionCommitted(rejection)]

        case .orderSent(let sent):
            guard var order = orders[sent.clOrdID] else { return [noteAnomaly("OrderSent for unknown \(sent.clOrdID)")] }
            order.sends.append(sent)
            // A report may already have been journaled (it can overtake OrderSent in the log);
            // only an order the venue has not spoken about becomes "sent".
            if order.status == .intent || order.status == .unknown { order.status = .sent }
            store(order)
            return [.orderChanged(order)]

        case .execution(let record):
            return applyExecution(record, reconciledInTerm: nil)

        case .orderUnknown(let unknown):
            guard var order = orders[unknown.clOrdID] else {
                return [noteAnomaly("OrderUnknown for unknown \(unknown.clOrdID)")]
            }
            guard !order.status.isTerminal else { return [] }
            order.status = .unknown
            order.unknownReason = unknown.reason
            store(order)
            return [.orderChanged(order)]

        case .reconciled(let reconciliation):
            guard var order = orders[reconciliation.clOrdID] else {
                return [noteAnomaly("Reconciliation for unknown \(reconciliation.clOrdID)")]
            }
            switch reconciliation.finding {
            case .venueKnows(let report):
                return applyExecution(report, reconciledInTerm: reconciliation.term)
            case .neverReceived(let text):
                guard !order.status.isTerminal else {
                    return [noteAnomaly("venue denies \(order.clOrdID), which the journal has as \(order.status)")]
                }
                // Fills prove the venue had it: re-sending would trade the quantity again.
                guard order.cumulativeQuantity == 0 else {
                    return [
                        noteAnomaly(
                            "venue denies \(order.clOrdID), which has journaled fills (CumQty \(order.cumulativeQuantity)); not re-sent")
                    ]
                }
                // Still not terminal: the leader re-sends it (PossResend=Y, same ClOrdID).
                order.status = .intent
                order.reconciledInTerm = reconciliation.term
                order.lastText = text
                store(order)
                return [.orderChanged(order)]
            }

        case .tradingPaused(let paused, _, let reason, _):
            self.paused = paused
            pauseReason = paused ? reason : nil
            return [.pausedChanged(paused)]

        case .resolved(let resolution):
            return applyResolution(resolution)

        case .sequenceReserved(let reservation):
            // Bounded so the arithmetic cannot trap on a hostile or corrupt entry: FIX MsgSeqNum
            // stops at 2^31 - 1 anyway.
            let count = reservation.count
            let first = senderSeqCeiling + 1
            let (through, overflow) = senderSeqCeiling.addingReportingOverflow(count)
            guard (1...1_000_000_000).contains(count), !overflow, through <= Int(Int32.max) else {
                return [noteAnomaly("sequence reservation of \(reservation.count) after \(senderSeqCeiling) ignored")]
            }
            senderSeqCeiling = through
            sequenceSession = reservation.session
            return [.sequenceReserved(reservation, first: first, through: through)]

        case .handOver(let mark):
            handOver = mark.drained && mark.term == term ? mark : nil
            return [.handOver(mark)]

        case .audit(let record):
            audit.append(record)
            if audit.count > Self.maxAuditKept { audit.removeFirst(audit.count - Self.maxAuditKept) }
            return []

        case .alert(let command):
            return alerts.apply(command, index: index).map { .alert($0) }

        case .strategyDeployed(let deployment):
            if let problem = deployment.problem { return [noteAnomaly("strategy deployment ignored: \(problem)")] }
            let deployed = deployment.specs.map {
                DeployedStrategy(
                    spec: $0, version: deployment.version, by: deployment.by, reason: deployment.reason,
                    atNanos: deployment.atNanos, index: index)
            }
            for strategy in deployed { strategies[strategy.spec.symbol] = strategy }
            return [.strategiesDeployed(deployed)]

        case .canary(let command):
            return applyCanary(command, index: index).map { .canary($0) }
        }
    }

    private mutating func applyCanary(_ command: CanaryCommand, index: UInt64) -> [CanaryState.Effect] {
        if case .start(let plan) = command, !(canary?.isActive ?? false) {
            if let problem = plan.problem { return [.ignored("canary not started: \(problem)")] }
            if let held = plan.symbols.first(where: { (candidateBooks[$0]?.quantity ?? 0) != 0 }) {
                return [.ignored("canary not started: the last candidate still holds \(candidateBooks[held]?.quantity ?? 0) \(held)")]
            }
            var baseline: Int64 = 0
            for symbol in plan.symbols {
                candidateBooks[symbol] = SleeveBook()
                if let mark = plan.startMarks[symbol] {
                    baseline &+= SleeveBook(quantity: position(symbol), cash: cashFlows[symbol] ?? 0).markToMarket(at: mark)
                }
            }
            let started = CanaryState(plan: plan, index: index, baselineMarkToMarket: baseline)
            canary = started
            return [.started(started)]
        }
        guard var current = canary else { return [.ignored("no canary")] }
        let effects = current.apply(command, index: index)
        for effect in effects {
            switch effect {
            case .promoted(let ended):
                // The candidate becomes the baseline: its sleeve is simply the position now.
                for spec in ended.plan.candidate {
                    candidateBooks[spec.symbol] = nil
                    strategies[spec.symbol] = DeployedStrategy(
                        spec: spec, version: ended.plan.version, by: "canary promoted (\(ended.decisions.last?.by ?? "?"))",
                        reason: ended.plan.reason, atNanos: ended.decisions.last?.atNanos ?? 0, index: index)
                }
            case .aborted(let ended) where ended.plan.rollback == .handToBaseline:
                for symbol in ended.plan.symbols { candidateBooks[symbol] = nil }
            default:
                break
            }
        }
        canary = current
        return effects
    }

    /// The part of `symbol`'s position that belongs to `sleeve` (nil: no canary, the baseline).
    public func sleevePosition(_ symbol: String, _ sleeve: Sleeve?) -> Int64 {
        let candidate = candidateBooks[symbol]?.quantity ?? 0
        return sleeve == .candidate ? candidate : position(symbol) - candidate
    }

    /// An operator's resolution closes an order that is still open; it never reopens or changes
    /// a terminal one, and it never contradicts the fills the journal already holds.
    private mutating func applyResolution(_ resolution: OrderResolution) -> [Effect] {
        guard var order = orders[resolution.clOrdID] else {
            return [noteAnomaly("resolution of unknown order \(resolution.clOrdID)")]
        }
        guard !order.status.isTerminal else {
            return [noteAnomaly("resolution of \(order.clOrdID) ignored: it is already \(order.status.rawValue)")]
        }
        var effects: [Effect] = []
        switch resolution.outcome {
        case .notReceived:
            guard order.cumulativeQuantity == 0 else {
                return [noteAnomaly("resolution 'not received' of \(order.clOrdID) ignored: it has journaled fills")]
            }
            order.status = .notSent
            order.lastText = "resolved by \(resolution.by): not received by the broker (\(resolution.reason))"
        case .filled(let quantity, let price):
            guard quantity >= order.cumulativeQuantity, quantity <= order.intent.quantity, quantity > 0, price > 0 else {
                return [
                    noteAnomaly(
                        "resolution 'filled \(quantity)' of \(order.clOrdID) ignored: journal has CumQty \(order.cumulativeQuantity) of \(order.intent.quantity)")
                ]
            }
            guard TradingBounds.isQuantity(quantity), TradingBounds.isPrice(price) else {
                return [noteAnomaly("resolution of \(order.clOrdID) out of range (\(quantity) at \(price)); ignored")]
            }
            if quantity > order.cumulativeQuantity {
                let delta = quantity - order.cumulativeQuantity
                let notional = Int128(quantity) * Int128(price) - Int128(order.cumulativeQuantity) * Int128(order.averagePrice)
                let implied = notional / Int128(delta)
                let fillPrice = (0...Int128(TradingBounds.maxPriceUnits)).contains(implied) ? Int64(implied) : price
                applyFill(symbol: order.symbol, side: order.intent.side, quantity: delta, price: fillPrice, sleeve: order.intent.signal.sleeve)
                effects.append(.filled(clOrdID: order.clOrdID, symbol: order.symbol, quantity: delta, price: fillPrice))
            }
            order.cumulativeQuantity = quantity
            order.averagePrice = price
            order.status = quantity == order.intent.quantity ? .filled : .canceled
            order.lastText =
                "resolved by \(resolution.by): filled \(quantity) at \(price) per the broker (\(resolution.reason))"
        }
        order.leavesQuantity = 0
        order.resolution = resolution
        store(order)
        effects.append(.orderChanged(order))
        return effects
    }

    /// Reports drive the order by cumulative quantity, not by LastQty: a report can be missed (the
    /// old leader died before journaling it) and its successor or a status report carries the
    /// venue's cumulative figures, so the position moves by exactly the difference, once.
    private mutating func applyExecution(_ report: ExecutionRecord, reconciledInTerm: UInt64?) -> [Effect] {
        if let seq = report.msgSeqNum, (1...Int(Int32.max)).contains(seq) {
            lastInboundSeqNum = max(lastInboundSeqNum, seq)
        }
        if reconciledInTerm == nil {
            guard !executionIDs.contains(report.execID) else { return [.duplicateExecution(execID: report.execID)] }
        }
        executionIDs.insert(report.execID)
        if report.ordRejReason == 6 {
            // "Duplicate ClOrdID": the venue refused a second NewOrderSingle and says nothing
            // about the order it already has. Recorded, never applied to the order.
            return [noteAnomaly("venue refused a duplicate NewOrderSingle for \(report.clOrdID) (ExecID \(report.execID))")]
        }
        guard var order = orders[report.clOrdID] else {
            return [noteAnomaly("ExecutionReport \(report.execID) for unknown ClOrdID \(report.clOrdID)")]
        }
        var effects: [Effect] = []
        order.executions += 1
        order.venueOrderID = report.venueOrderID.isEmpty ? order.venueOrderID : report.venueOrderID
        if let term = reconciledInTerm { order.reconciledInTerm = term }
        if let text = report.text { order.lastText = text }
        // Bounded on the way in (TradingEngine refuses such a report); a journal written before
        // that check still applies without trapping, as an anomaly.
        guard TradingBounds.isQuantity(report.cumulativeQuantity), TradingBounds.isQuantity(report.leavesQuantity),
            TradingBounds.isQuantity(report.lastQuantity), TradingBounds.isPrice(report.averagePrice),
            TradingBounds.isPrice(report.lastPrice)
        else {
            return [
                noteAnomaly(
                    "ExecutionReport \(report.execID) for \(report.clOrdID) out of range (CumQty \(report.cumulativeQuantity) "
                        + "AvgPx \(report.averagePrice) LastQty \(report.lastQuantity) LastPx \(report.lastPrice)); not applied")
            ]
        }
        let newCum = report.cumulativeQuantity
        let isBustOrCorrection = report.execType == "H" || report.execType == "G"
        if isBustOrCorrection {
            // Trade cancel (bust) or correction: the venue's new cumulative figures replace the
            // journal's. Undo what the journal had at its average, then apply the venue's.
            if order.cumulativeQuantity > 0 {
                applyFill(
                    symbol: order.symbol, side: order.intent.side == .buy ? .sell : .buy,
                    quantity: order.cumulativeQuantity, price: order.averagePrice, sleeve: order.intent.signal.sleeve)
                effects.append(
                    .filled(
                        clOrdID: order.clOrdID, symbol: order.symbol, quantity: -order.cumulativeQuantity,
                        price: order.averagePrice))
            }
            if newCum > 0 {
                applyFill(symbol: order.symbol, side: order.intent.side, quantity: newCum, price: report.averagePrice, sleeve: order.intent.signal.sleeve)
                effects.append(.filled(clOrdID: order.clOrdID, symbol: order.symbol, quantity: newCum, price: report.averagePrice))
            }
            order.cumulativeQuantity = newCum
            order.averagePrice = report.averagePrice
        } else if newCum > order.cumulativeQuantity {
            let oldNotional = Int128(order.cumulativeQuantity) * Int128(order.averagePrice)
            let newNotional = Int128(newCum) * Int128(report.averagePrice)
            let delta = newCum - order.cumulativeQuantity
            // The fill's own price when the report is the whole delta; otherwise the price implied
            // by the cumulative figures (or the new average, when those figures imply nonsense).
            let implied = (newNotional - oldNotional) / Int128(delta)
            let price =
                (report.lastQuantity == delta && report.lastPrice > 0)
                ? report.lastPrice
                : ((0...Int128(TradingBounds.maxPriceUnits)).contains(implied) ? Int64(implied) : report.averagePrice)
            applyFill(symbol: order.symbol, side: order.intent.side, quantity: delta, price: price, sleeve: order.intent.signal.sleeve)
            order.cumulativeQuantity = newCum
            order.averagePrice = report.averagePrice
            effects.append(.filled(clOrdID: order.clOrdID, symbol: order.symbol, quantity: delta, price: price))
        }
        order.leavesQuantity = report.leavesQuantity
        if let status = Self.status(fromOrdStatus: report.ordStatus) {
            // Never walk back from a terminal state (a late status report of an older state),
            // except when the venue busts or corrects a trade: then its word is the new state.
            if !order.status.isTerminal || status.isTerminal || isBustOrCorrection { order.status = status }
        }
        if order.status == .unknown || order.status == .intent, reconciledInTerm != nil {
            order.status = .sent
        }
        store(order)
        effects.append(.orderChanged(order))
        return effects
    }

    static func status(fromOrdStatus ordStatus: String) -> OrderStatus? {
        switch ordStatus {
        case "0": return .new
        case "1": return .partiallyFilled
        case "2": return .filled
        case "4": return .canceled
        case "8": return .rejected
        case "C": return .expired
        case "A": return .sent
        case "3": return .canceled  // done for day: nothing more will fill
        default: return nil
        }
    }

    private mutating func store(_ order: OrderRecord) {
        orders[order.clOrdID] = order
        if order.status.isTerminal {
            if let at = openIDs.firstIndex(of: order.clOrdID) { openIDs.remove(at: at) }
        } else if !openIDs.contains(order.clOrdID) {
            // A bust reopened a terminal order: it is open again, in log order.
            openIDs.append(order.clOrdID)
            openIDs.sort { (orders[$0]?.index ?? 0) < (orders[$1]?.index ?? 0) }
        }
    }

    /// Quantities and prices are bounded (TradingBounds); products are taken in Int128, and a
    /// sum that would leave Int64 saturates and is recorded as an anomaly instead of trapping.
    private mutating func applyFill(symbol: String, side: OrderSide, quantity: Int64, price: Int64, sleeve: Sleeve?) {
        var position = positions[symbol] ?? Position(symbol: symbol)
        let signed = quantity * side.sign
        let old = position.quantity
        let (new, positionOverflow) = old.addingReportingOverflow(signed)
        guard !positionOverflow else {
            _ = noteAnomaly("position in \(symbol) would leave the representable range; fill of \(quantity) not applied")
            return
        }
        let cash = -Int128(signed) * Int128(price)
        cashFlows[symbol] = Int64(clamping: Int128(cashFlows[symbol] ?? 0) + cash)
        if sleeve == .candidate, var book = candidateBooks[symbol] {
            book.quantity = Int64(clamping: Int128(book.quantity) + Int128(signed))
            book.cash = Int64(clamping: Int128(book.cash) + cash)
            candidateBooks[symbol] = book
        }
        if old == 0 || (old > 0) == (signed > 0) {
            // Opening or adding: weighted average entry.
            let total = Int128(old.magnitude) * Int128(position.averagePrice) + Int128(quantity) * Int128(price)
            position.averagePrice = Int64(clamping: total / Int128(new.magnitude))
        } else {
            // Reducing or flipping: realise P&L on the closed part.
            let closed = min(old.magnitude, UInt64(quantity))
            let pnl = Int128(closed) * (Int128(price) - Int128(position.averagePrice)) * (old > 0 ? 1 : -1)
            let total = Int128(position.realizedPnL) + pnl
            if total > Int128(Int64.max) || total < Int128(Int64.min) {
                _ = noteAnomaly("realised P&L in \(symbol) saturated at the representable range")
            }
            position.realizedPnL = Int64(clamping: total)
            if signed.magnitude > old.magnitude { position.averagePrice = price } else if new == 0 { position.averagePrice = 0 }
        }
        position.quantity = new
        position.filledQuantity = Int64(clamping: Int128(position.filledQuantity) + Int128(quantity))
        position.fills += 1
        positions[symbol] = position
    }

    private mutating func noteAnomaly(_ text: String) -> Effect {
        anomalies.append(text)
        if anomalies.count > Self.maxAnomaliesKept { anomalies.removeFirst() }
        return .anomaly(text)
    }

    // MARK: - Queries

    public func position(_ symbol: String) -> Int64 { positions[symbol]?.quantity ?? 0 }

    /// Orders not yet terminal, in log order: what a new leader must reconcile.
    public var openOrders: [OrderRecord] { openIDs.compactMap { orders[$0] } }

    public var openOrderCount: Int { openIDs.count }

    public func openOrder(for symbol: String) -> OrderRecord? {
        for id in openIDs.reversed() {
            if let order = orders[id], order.symbol == symbol { return order }
        }
        return nil
    }

    /// Intents decided in (now − window, now].
    public func intents(within windowNanos: Int64, before now: Int64) -> Int {
        var count = 0
        for time in intentTimes.reversed() {
            if time <= now - windowNanos { break }
            count += 1
        }
        return count
    }

    public var orderList: [OrderRecord] { orderSequence.compactMap { orders[$0] } }
}
