public import BatonFIX
public import BatonMarketData

/// The venue's matching model for one account, as a value: requests and market ticks in,
/// ExecutionReports out, no I/O, no clock, no randomness but its own seeded stream.
///
/// Market orders fill at the current price with slippage against the taker; limit orders fill
/// at once when marketable, otherwise rest until the walk trades through them. Partial fills
/// (when configured) split an order into slices, one per tick. A ClOrdID is unique within its
/// scope for all time: a second NewOrderSingle with it is refused with OrdRejReason 6 and
/// recorded, which makes the venue the fence against sending an order twice.
///
/// The scope is the FIX session by default, as at most brokers: ClOrdID uniqueness, status
/// lookups, cancels and every ExecutionReport belong to the session (SenderCompID) that sent the
/// order, and another session asking about it hears "unknown". `ClOrdIDScope.account` is the
/// lenient model (one namespace for the account, the last session to ask takes the reports);
/// no test of the no-duplicate proof may use it.
public struct MatchingEngine: Sendable {
    public enum ClOrdIDScope: String, Hashable, Sendable, CaseIterable {
        case session
        case account
    }

    public struct Settings: Hashable, Sendable {
        /// Where a ClOrdID is unique and visible (see the type's documentation).
        public var clOrdIDScope: ClOrdIDScope
        public var seed: UInt64
        /// Slippage against the taker for market (and marketable limit) orders, in basis points.
        public var slippageBps: Int64
        /// Probability that an order fills in slices rather than all at once.
        public var partialFillProbability: Double
        /// How many slices a partially filled order is cut into.
        public var partialFillSlices: Int
        /// A NewOrderSingle whose SendingTime is older than this (ms) is refused as stale, before
        /// its ClOrdID is looked at or remembered; 0 turns the check off. It bounds how late an
        /// order written by a sender that has since lost its right to send can still count.
        public var maxOrderAgeMilliseconds: Int64

        public init(
            seed: UInt64, slippageBps: Int64 = 1, partialFillProbability: Double = 0, partialFillSlices: Int = 3,
            maxOrderAgeMilliseconds: Int64 = 0, clOrdIDScope: ClOrdIDScope = .session
        ) {
            self.clOrdIDScope = clOrdIDScope
            self.maxOrderAgeMilliseconds = maxOrderAgeMilliseconds
            self.seed = seed
            self.slippageBps = slippageBps
            self.partialFillProbability = partialFillProbability
            self.partialFillSlices = partialFillSlices
        }
    }

    public struct Totals: Hashable, Sendable, Codable {
        public var orders = 0
        public var duplicateAttempts = 0
        /// NewOrderSingles refused because their SendingTime was too old.
        public var staleOrders = 0
        /// ExecutionReports produced, of every ExecType.
        public var executions = 0
        public var fills = 0
        public var filledQuantity: Int64 = 0
    }

    public let settings: Settings
    public private(set) var orders: [VenueOrder] = []
    public private(set) var duplicates: [DuplicateOrderAttempt] = []
    /// NewOrderSingles refused before they became orders (stale SendingTime), newest last: the
    /// ClOrdID is not remembered for uniqueness, but the refusal is, so an audit can tell "refused
    /// with a reason" from "never arrived". Bounded; `totals.staleOrders` keeps the full count.
    public private(set) var refusals: [RefusedOrder] = []
    public static let maxRefusalsKept = 100_000
    public private(set) var totals = Totals()
    /// Net filled quantity per symbol (buys minus sells), in units of 1/scale.
    public private(set) var positions: [String: Int64] = [:]
    /// By `key(session:clOrdID:)`: the ClOrdID alone in account scope, with the session otherwise.
    private var indexByClOrdID: [String: Int] = [:]
    /// Open orders waiting for the market, by symbol, in arrival order.
    private var working: [String: [Int]] = [:]
    private var prices: [String: Int64]
    private var random: SplitMix64
    private var nextExecID = 1
    private var nextOrderID = 1
    /// Orders changed since `takeChanges()` (every change is followed by a report of it), and
    /// how many duplicates and refusals were ever recorded (the kept lists are bounded).
    private var changedOrders: Set<Int> = []
    private var duplicatesRecorded = 0
    private var refusalsRecorded = 0
    private var duplicatesTaken = 0
    private var refusalsTaken = 0
    private var countersTaken: Counters?

    /// The engine's scalars, for the venue's state file.
    public struct Counters: Codable, Sendable, Hashable {
        public var totals: Totals
        public var positions: [String: Int64]
        public var nextExecID: Int
        public var nextOrderID: Int
        public var randomState: UInt64
    }

    /// What changed since the last call: orders (by index), new duplicates and refusals, and
    /// the scalars; nil when nothing did.
    mutating func takeChanges() -> (orders: [(Int, VenueOrder)], duplicates: [DuplicateOrderAttempt], refusals: [RefusedOrder], counters: Counters)? {
        let newDuplicates = duplicatesRecorded - duplicatesTaken
        let newRefusals = refusalsRecorded - refusalsTaken
        let counters = Counters(
            totals: totals, positions: positions, nextExecID: nextExecID, nextOrderID: nextOrderID,
            randomState: random.state)
        // An answer about no order (unknown ClOrdID, no orders) still uses up an ExecID.
        guard !changedOrders.isEmpty || newDuplicates > 0 || newRefusals > 0 || counters != countersTaken else {
            return nil
        }
        countersTaken = counters
        let changed = changedOrders.sorted().map { ($0, orders[$0]) }
        changedOrders = []
        duplicatesTaken = duplicatesRecorded
        refusalsTaken = refusalsRecorded
        return (
            changed, Array(duplicates.suffix(min(newDuplicates, duplicates.count))),
            Array(refusals.suffix(min(newRefusals, refusals.count))),
            counters
        )
    }

    /// Rebuilds the book from the state file (at start, before any event).
    mutating func restore(_ state: VenueRestoredState) {
        orders = state.orders
        duplicates = state.duplicates
        refusals = Array(state.refusals.suffix(Self.maxRefusalsKept))
        duplicatesRecorded = state.duplicates.count
        refusalsRecorded = state.refusals.count
        duplicatesTaken = duplicatesRecorded
        refusalsTaken = refusalsRecorded
        if let counters = state.engine {
            totals = counters.totals
            positions = counters.positions
            nextExecID = counters.nextExecID
            nextOrderID = counters.nextOrderID
            random = SplitMix64(seed: counters.randomState)
            countersTaken = counters
        }
        indexByClOrdID = [:]
        working = [:]
        for (index, order) in orders.enumerated() {
            indexByClOrdID[key(session: order.session, clOrdID: order.clOrdID)] = index
            if !order.isTerminal { working[order.symbol, default: []].append(index) }
        }
    }

    /// - Parameter prices: the symbols the venue trades and their prices now.
    public init(settings: Settings, prices: [String: Int64]) {
        self.settings = settings
        self.prices = prices
        random = SplitMix64(seed: settings.seed ^ 0x6D61_7463_6865_7201)
    }

    /// The first order received with `clOrdID` on any session (for inspection, not for FIX).
    public func order(clOrdID: String) -> VenueOrder? {
        orders.first { $0.clOrdID == clOrdID }
    }

    /// The order `session` knows as `clOrdID`, in the configured scope.
    public func order(clOrdID: String, session: String) -> VenueOrder? {
        indexByClOrdID[key(session: session, clOrdID: clOrdID)].map { orders[$0] }
    }

    private func key(session: String, clOrdID: String) -> String {
        switch settings.clOrdIDScope {
        case .session: return "\(session)\u{1}\(clOrdID)"
        case .account: return clOrdID
        }
    }

    /// In account scope the session that last referred to an order receives its reports; in
    /// session scope they stay with the session that sent it.
    private mutating func takeOver(_ index: Int, by session: String) {
        if settings.clOrdIDScope == .account { orders[index].ownerSession = session }
    }

    public func price(of symbol: String) -> Int64? { prices[symbol] }

    // MARK: - Requests

    /// NewOrderSingle(D) from `session`.
    public mutating func newOrder(
        _ request: FIXNewOrderSingle, session: String, now: FIXTimestamp, sendingTime: FIXTimestamp? = nil,
        receivedAt: FIXTimestamp? = nil
    ) -> [VenueReport] {
        var reports: [VenueReport] = []
        // The age is the order's on arrival at the venue's session, not after its own gateway.
        let arrival = receivedAt ?? now
        if settings.maxOrderAgeMilliseconds > 0, let sendingTime,
            arrival.milliseconds(since: sendingTime) > settings.maxOrderAgeMilliseconds
        {
            totals.staleOrders += 1
            var report = FIXExecutionReport(
                orderID: "NONE", clOrdID: request.clOrdID, execID: makeExecID(), execType: .rejected,
                ordStatus: .rejected, symbol: request.symbol, side: request.side, orderQty: request.orderQty,
                leavesQty: 0, cumQty: 0, avgPx: 0, ordRejReason: 99, transactTime: now,
                text: "stale order: SendingTime \(sendingTime.fixString) is \(arrival.milliseconds(since: sendingTime)) ms old "
                    + "(limit \(settings.maxOrderAgeMilliseconds) ms); not accepted and not remembered")
            report.price = request.price
            if refusals.count == Self.maxRefusalsKept { refusals.removeFirst(Self.maxRefusalsKept / 10) }
            refusalsRecorded += 1
            refusals.append(
                RefusedOrder(
                    clOrdID: request.clOrdID, session: session, possResend: request.possResend, receivedAt: arrival,
                    sendingTime: sendingTime, ordRejReason: 99, text: report.text ?? "stale order"))
            append(report, to: session, into: &reports)
            return reports
        }
        if let index = indexByClOrdID[key(session: session, clOrdID: request.clOrdID)] {
            let original = orders[index]
            duplicatesRecorded += 1
            duplicates.append(
                DuplicateOrderAttempt(
                    clOrdID: request.clOrdID, session: session, possResend: request.possResend, receivedAt: now,
                    originalSession: original.session, originalReceivedAt: original.receivedAt))
            totals.duplicateAttempts += 1
            takeOver(index, by: session)
            var report = FIXExecutionReport(
                orderID: "NONE", clOrdID: request.clOrdID, execID: makeExecID(), execType: .rejected,
                ordStatus: .rejected, symbol: request.symbol, side: request.side, orderQty: request.orderQty,
                leavesQty: 0, cumQty: 0, avgPx: 0, ordRejReason: 6, transactTime: now,
                text: "duplicate ClOrdID \(request.clOrdID): first received from \(original.session) at "
                    + "\(original.receivedAt.fixString) as \(original.orderID); this NewOrderSingle was not accepted")
            report.price = request.price
            append(report, to: session, into: &reports)
            return reports
        }

        let timeInForce = request.timeInForce ?? .day
        var order = VenueOrder(
            orderID: "O-\(nextOrderID)", clOrdID: request.clOrdID, session: session, ownerSession: session,
            symbol: request.symbol, side: request.side, ordType: request.ordType, timeInForce: timeInForce,
            orderQty: VenueDecimal.units(request.orderQty) ?? 0, price: request.price.flatMap(VenueDecimal.units),
            possResend: request.possResend, status: .new, receivedAt: now)
        nextOrderID += 1
        totals.orders += 1

        if let reason = rejection(of: request, timeInForce: timeInForce) {
            order.status = .rejected
            order.rejectText = reason.text
            record(order)
            append(
                executionReport(order, execType: .rejected, ordRejReason: reason.code, text: reason.text, now: now),
                to: session, into: &reports)
            return reports
        }
        if order.side == .sellShort { order.side = .sell }
        if settings.partialFillProbability > 0, settings.partialFillSlices > 1,
            random.nextUnit() < settings.partialFillProbability
        {
            order.slicesLeft = settings.partialFillSlices
        }
        let index = record(order)
        append(executionReport(orders[index], execType: .new, now: now), to: session, into: &reports)

        // Take liquidity now if the order can: market orders always, limits when marketable.
        if let market = prices[order.symbol], isMarketable(orders[index], marketPrice: market) {
            fillSlice(index, marketPrice: market, taker: true, now: now, into: &reports)
        }
        if !orders[index].isTerminal {
            if timeInForce == .immediateOrCancel {
                cancel(index, text: "IOC: unfilled quantity canceled", now: now, into: &reports)
            } else {
                working[order.symbol, default: []].append(index)
            }
        }
        return reports
    }

    /// OrderStatusRequest(H): the order's real state, or a proof that the ClOrdID was never
    /// received (OrdStatus 8, OrdRejReason 5). Never creates an order.
    public mutating func statusRequest(
        _ request: FIXOrderStatusRequest, session: String, now: FIXTimestamp
    ) -> [VenueReport] {
        var reports: [VenueReport] = []
        guard let index = indexByClOrdID[key(session: session, clOrdID: request.clOrdID)] else {
            append(
                FIXExecutionReport(
                    orderID: "NONE", clOrdID: request.clOrdID, execID: makeExecID(), execType: .orderStatus,
                    ordStatus: .rejected, symbol: request.symbol, side: request.side, leavesQty: 0, cumQty: 0,
                    avgPx: 0, ordRejReason: 5, transactTime: now,
                    text: "unknown ClOrdID \(request.clOrdID): no NewOrderSingle with it was ever received"),
                to: session, into: &reports)
            return reports
        }
        takeOver(index, by: session)
        append(executionReport(orders[index], execType: .orderStatus, now: now), to: session, into: &reports)
        return reports
    }

    /// OrderMassStatusRequest(AF): one status report per order of the session (of the account in
    /// account scope, where the requesting session takes them over), or of one symbol for
    /// MassStatusReqType 1, the last with LastRptRequested=Y.
    public mutating func massStatusRequest(
        _ request: FIXOrderMassStatusRequest, session: String, now: FIXTimestamp
    ) -> [VenueReport] {
        var reports: [VenueReport] = []
        let selected = orders.indices.filter { i in
            (settings.clOrdIDScope == .account || orders[i].session == session)
                && (request.massStatusReqType != 1 || request.symbol == nil || orders[i].symbol == request.symbol)
        }
        guard !selected.isEmpty else {
            var report = FIXExecutionReport(
                orderID: "NONE", clOrdID: nil, execID: makeExecID(), execType: .orderStatus, ordStatus: .rejected,
                symbol: request.symbol ?? "[N/A]", side: .buy, leavesQty: 0, cumQty: 0, avgPx: 0,
                massStatusReqID: request.massStatusReqID, transactTime: now,
                text: "no orders for this account")
            report.ordRejReason = 5
            var message = report.message
            message.set(911, "0")
            message.set(912, "Y")
            totals.executions += 1
            reports.append(VenueReport(session: session, message: message))
            return reports
        }
        for (n, i) in selected.enumerated() {
            takeOver(i, by: session)
            var report = executionReport(orders[i], execType: .orderStatus, now: now)
            report.massStatusReqID = request.massStatusReqID
            var message = report.message
            message.set(911, String(selected.count))
            if n == selected.count - 1 { message.set(912, "Y") }
            totals.executions += 1
            reports.append(VenueReport(session: session, message: message))
        }
        return reports
    }

    /// OrderCancelRequest(F): cancels a working order, or answers OrderCancelReject saying why not.
    public mutating func cancelRequest(
        _ request: FIXOrderCancelRequest, session: String, now: FIXTimestamp
    ) -> [VenueReport] {
        var reports: [VenueReport] = []
        guard let index = indexByClOrdID[key(session: session, clOrdID: request.origClOrdID)] else {
            reports.append(
                VenueReport(
                    session: session,
                    message: FIXOrderCancelReject(
                        orderID: "NONE", clOrdID: request.clOrdID, origClOrdID: request.origClOrdID,
                        ordStatus: .rejected, cxlRejReason: 1,
                        text: "unknown order: no NewOrderSingle with ClOrdID \(request.origClOrdID) was received"
                    ).message))
            return reports
        }
        takeOver(index, by: session)
        let order = orders[index]
        guard !order.isTerminal else {
            reports.append(
                VenueReport(
                    session: session,
                    message: FIXOrderCancelReject(
                        orderID: order.orderID, clOrdID: request.clOrdID, origClOrdID: request.origClOrdID,
                        ordStatus: order.status, cxlRejReason: 0,
                        text: "too late to cancel: order \(order.orderID) is already \(statusName(order.status))"
                    ).message))
            return reports
        }
        working[order.symbol]?.removeAll { $0 == index }
        orders[index].status = .canceled
        var report = executionReport(orders[index], execType: .canceled, now: now)
        report.clOrdID = request.clOrdID
        report.origClOrdID = request.origClOrdID
        append(report, to: session, into: &reports)
        return reports
    }

    // MARK: - Market

    /// A trade printed on the market: the matcher's price moves to it, and working orders it
    /// reaches fill (one slice per tick). Reports go to each order's owner session.
    public mutating func onMarketTick(_ tick: MarketTick, now: FIXTimestamp) -> [VenueReport] {
        prices[tick.symbol] = tick.price
        guard let indices = working[tick.symbol], !indices.isEmpty else { return [] }
        var reports: [VenueReport] = []
        for index in indices where isMarketable(orders[index], marketPrice: tick.price) {
            fillSlice(index, marketPrice: tick.price, taker: orders[index].ordType == .market, now: now, into: &reports)
        }
        working[tick.symbol]?.removeAll { orders[$0].isTerminal }
        return reports
    }

    /// The trading day ended: DAY orders still working expire.
    public mutating func endOfDay(now: FIXTimestamp) -> [VenueReport] {
        var reports: [VenueReport] = []
        for (symbol, indices) in working {
            for index in indices where orders[index].timeInForce == .day && !orders[index].isTerminal {
                orders[index].status = .expired
                append(
                    executionReport(
                        orders[index], execType: .expired, text: "DAY order expired at end of day", now: now),
                    to: orders[index].ownerSession, into: &reports)
            }
            working[symbol]?.removeAll { orders[$0].isTerminal }
        }
        return reports
    }

    // MARK: - Internals

    private func rejection(of request: FIXNewOrderSingle, timeInForce: FIXTimeInForce) -> (code: Int, text: String)? {
        guard prices[request.symbol] != nil else {
            return (
                1, "unknown symbol \(request.symbol): this venue trades \(prices.keys.sorted().joined(separator: ", "))"
            )
        }
        guard [FIXSide.buy, .sell, .sellShort].contains(request.side) else {
            return (99, "Side(54) \(request.side.rawValue) is not supported (1 buy, 2 sell, 5 sell short)")
        }
        guard let qty = VenueDecimal.units(request.orderQty), qty > 0 else {
            return (13, "OrderQty(38) \(request.orderQty) must be positive with at most 4 decimals")
        }
        _ = qty
        switch request.ordType {
        case .market:
            break
        case .limit:
            guard let price = request.price else { return (99, "limit order without Price(44)") }
            guard let units = VenueDecimal.units(price), units > 0 else {
                return (99, "Price(44) \(price) must be positive with at most 4 decimals")
            }
        default:
            return (99, "OrdType(40) \(request.ordType.rawValue) is not supported (1 market, 2 limit)")
        }
        guard [FIXTimeInForce.day, .goodTillCancel, .immediateOrCancel].contains(timeInForce) else {
            return (99, "TimeInForce(59) \(timeInForce.rawValue) is not supported (0 DAY, 1 GTC, 3 IOC)")
        }
        return nil
    }

    private func isMarketable(_ order: VenueOrder, marketPrice: Int64) -> Bool {
        guard !order.isTerminal else { return false }
        guard let limit = order.price else { return true }
        return order.isBuy ? marketPrice <= limit : marketPrice >= limit
    }

    /// Fills the next slice of an order. A taker pays slippage (capped by its limit); a resting
    /// limit order the market traded through fills at its limit.
    private mutating func fillSlice(
        _ index: Int, marketPrice: Int64, taker: Bool, now: FIXTimestamp, into reports: inout [VenueReport]
    ) {
        let order = orders[index]
        let remaining = order.orderQty - order.cumQty
        guard remaining > 0 else { return }
        var quantity = remaining
        if order.slicesLeft > 1 {
            let whole = VenueDecimal.scale
            var slice = order.orderQty / Int64(settings.partialFillSlices)
            if slice >= whole { slice -= slice % whole }
            quantity = min(remaining, max(1, slice))
            orders[index].slicesLeft -= 1
        }
        var price: Int64
        if taker {
            let slip = marketPrice * settings.slippageBps / 10_000
            price = order.isBuy ? marketPrice + slip : max(1, marketPrice - slip)
            if let limit = order.price { price = order.isBuy ? min(price, limit) : max(price, limit) }
        } else {
            price = order.price ?? marketPrice
        }
        orders[index].cumQty += quantity
        orders[index].notional += Int128(quantity) * Int128(price)
        orders[index].status = orders[index].cumQty >= order.orderQty ? .filled : .partiallyFilled
        if orders[index].status == .filled { orders[index].slicesLeft = 0 }
        totals.fills += 1
        totals.filledQuantity += quantity
        positions[order.symbol, default: 0] += order.isBuy ? quantity : -quantity
        var report = executionReport(orders[index], execType: .trade, now: now)
        report.lastQty = VenueDecimal.decimal(quantity)
        report.lastPx = VenueDecimal.decimal(price)
        append(report, to: order.ownerSession, into: &reports)
    }

    private mutating func cancel(_ index: Int, text: String, now: FIXTimestamp, into reports: inout [VenueReport]) {
        working[orders[index].symbol]?.removeAll { $0 == index }
        orders[index].status = .canceled
        append(
            executionReport(orders[index], execType: .canceled, text: text, now: now), to: orders[index].ownerSession,
            into: &reports)
    }

    @discardableResult
    private mutating func record(_ order: VenueOrder) -> Int {
        orders.append(order)
        indexByClOrdID[key(session: order.session, clOrdID: order.clOrdID)] = orders.count - 1
        return orders.count - 1
    }

    private mutating func makeExecID() -> String {
        defer { nextExecID += 1 }
        return "E-\(nextExecID)"
    }

    private mutating func executionReport(
        _ order: VenueOrder, execType: FIXExecType, ordRejReason: Int? = nil, text: String? = nil, now: FIXTimestamp
    ) -> FIXExecutionReport {
        if let index = indexByClOrdID[key(session: order.session, clOrdID: order.clOrdID)] { changedOrders.insert(index) }
        return FIXExecutionReport(
            orderID: order.orderID, clOrdID: order.clOrdID, execID: makeExecID(), execType: execType,
            ordStatus: order.status, symbol: order.symbol, side: order.side,
            orderQty: VenueDecimal.decimal(order.orderQty), price: order.price.map(VenueDecimal.decimal),
            leavesQty: VenueDecimal.decimal(order.leavesQty), cumQty: VenueDecimal.decimal(order.cumQty),
            avgPx: VenueDecimal.decimal(order.avgPx), ordRejReason: ordRejReason, transactTime: now,
            text: text ?? (execType == .orderStatus ? order.rejectText : nil))
    }

    private mutating func append(_ report: FIXExecutionReport, to session: String, into reports: inout [VenueReport]) {
        totals.executions += 1
        reports.append(VenueReport(session: session, message: report.message))
    }

    private func statusName(_ status: FIXOrdStatus) -> String {
        switch status {
        case .filled: return "filled"
        case .canceled: return "canceled"
        case .rejected: return "rejected"
        case .expired: return "expired"
        case .doneForDay: return "done for the day"
        default: return "in status \(status.rawValue)"
        }
    }
}
