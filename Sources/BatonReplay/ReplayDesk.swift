public import BatonDaemon
public import BatonFIX
public import BatonMarketData
public import BatonTrading
public import BatonVenue

/// Captured ticks through the live engine's decision code, against the venue's matching model:
/// one replica's `TradingCore` as a leader whose every proposal commits at once, its orders
/// written as the NewOrderSingles the live engine writes (`OrderMessages`), executed by the venue
/// simulator's `MatchingEngine`, and its reports read back through the live engine's boundary.
///
/// Pure and single-threaded: time is the ticks' receive time, so a day of ticks replays in
/// seconds and twice the same input gives the same output, byte for byte. What differs from the
/// live cluster, on purpose: no network (an order reaches the venue at the tick that decided
/// it), one replica (no failover), and the venue's fills at the captured prices with its
/// configured slippage. The decisions (intents and risk refusals) depend only on the ticks and
/// the fills' quantities, which is what the parity test holds the live cluster to.
public struct ReplayDesk: Sendable {
    public struct Decision: Sendable, Hashable {
        public var atNanos: Int64
        public var symbol: String
        public var tickSequence: UInt64
        public var tickPrice: Int64
        /// When the replica received the tick (0 for a standing signal acted on when trading began).
        public var tickReceivedNanos: Int64
        public var direction: TargetDirection
        public var strategy: String
        public var version: String
        public var sleeve: Sleeve?
        /// "intent" or "rejected".
        public var outcome: String
        public var clOrdID: String?
        public var side: OrderSide?
        public var quantity: Int64?
        public var kind: OrderKind?
        public var limitPrice: Int64?
        public var timeInForce: OrderTimeInForce?
        /// The risk gate's words: its checks for an intent, its reason for a refusal.
        public var risk: String
    }

    public struct Fill: Sendable, Hashable {
        public var atNanos: Int64
        public var clOrdID: String
        public var symbol: String
        public var side: OrderSide
        public var quantity: Int64
        public var price: Int64
    }

    public struct Summary: Sendable, Hashable, Codable {
        public var ticks = 0
        public var duplicateTicks = 0
        public var intents = 0
        public var rejections = 0
        public var orders = 0
        public var fills = 0
        public var filledQuantity: Int64 = 0
        public var firstTickNanos: Int64 = 0
        public var lastTickNanos: Int64 = 0
        /// Per symbol: position, realised and marked PnL in currency (price units / 10_000).
        public var symbols: [String: SymbolResult] = [:]
        public var realizedPnL: Double = 0
        public var totalPnL: Double = 0
        public var phase = ""
    }

    public struct SymbolResult: Sendable, Hashable, Codable {
        public var position: Int64
        public var lastPrice: Int64
        public var realizedPnL: Double
        public var unrealizedPnL: Double
    }

    public private(set) var core: TradingCore
    public private(set) var venue: MatchingEngine
    public private(set) var decisions: [Decision] = []
    public private(set) var fills: [Fill] = []
    public private(set) var summary = Summary()
    /// Where the replay's session (the cluster's SenderCompID) is at the venue.
    let session: String
    let term: UInt64 = 1
    var index: UInt64 = 0
    var now: Int64
    var nextSeqNum = 1
    var lastSequence: UInt64 = 0
    var lastPrices: [String: Int64] = [:]
    var leading: LeadershipInput { LeadershipInput(isLeader: true, term: term, leaseRemainingNanos: 10_000_000_000, termStartIndex: 1) }
    /// Ticks up to this sequence only warm the strategies, as on a follower; nil once leading.
    var leadAfterSequence: UInt64?

    /// A leader that has reconciled with an empty venue and is trading at `startNanos`; or, with
    /// `leadAfterSequence`, a follower shadowing the feed that becomes that leader on the first
    /// tick past the sequence: how a live leader that began trading there saw the session (its
    /// `/trading` says where: `trading_from_sequence`).
    public init(
        settings: TradingCore.Settings, venue venueSettings: MatchingEngine.Settings, startNanos: Int64, leadAfterSequence: UInt64? = nil
    ) {
        core = TradingCore(settings: settings)
        venue = MatchingEngine(settings: venueSettings, prices: [:])
        session = settings.senderCompID
        now = startNanos
        self.leadAfterSequence = leadAfterSequence
        if leadAfterSequence == nil { takeTheLead() }
    }

    private mutating func takeTheLead() {
        leadAfterSequence = nil
        // Entry 1 is the term's first (Raft's no-op): a leader trades only once it has applied it.
        index = 1
        core.applied(through: index)
        duty(sessionActive: false)
        // The core waits for a logged-on session to settle before it reconciles and trades. The
        // warm strategies' standing signals are acted on as it begins, as on the live leader.
        for _ in 0..<100 where core.phase != .trading {
            now += 100_000_000
            duty(sessionActive: true)
        }
    }

    /// One captured tick: the venue's price moves (filling working orders it reaches), then the
    /// strategy sees it, then the leader's duty runs, as on the live leader.
    public mutating func replay(_ tick: MarketTick) {
        // The feed client drops a sequence it has already seen (the other copy of a resent
        // frame); so does the replay.
        if tick.sequence <= lastSequence && lastSequence != 0 {
            summary.duplicateTicks += 1
            return
        }
        lastSequence = tick.sequence
        now = max(now, tick.receiveTimeNanos)
        if summary.ticks == 0 { summary.firstTickNanos = tick.receiveTimeNanos }
        summary.ticks += 1
        summary.lastTickNanos = tick.receiveTimeNanos
        lastPrices[tick.symbol] = tick.price
        if let last = leadAfterSequence {
            guard tick.sequence > last else {
                // A follower's shadow: the strategies learn the tick, nothing is decided.
                _ = venue.onMarketTick(tick, now: timestamp)
                _ = core.onTick(symbol: tick.symbol, sequence: tick.sequence, price: tick.price, receivedNanos: tick.receiveTimeNanos, now: now)
                return
            }
            takeTheLead()
        }
        receive(venue.onMarketTick(tick, now: timestamp))
        run(core.onTick(symbol: tick.symbol, sequence: tick.sequence, price: tick.price, receivedNanos: tick.receiveTimeNanos, now: now))
        duty(sessionActive: true)
    }

    /// The state after the last tick, in the summary's terms.
    public mutating func finish() -> Summary {
        summary.phase = core.phase.rawValue
        summary.orders = core.state.orderList.count
        var realized = 0.0
        var total = 0.0
        for (symbol, position) in core.state.positions {
            let last = lastPrices[symbol] ?? position.averagePrice
            let unrealized = Double(position.quantity) * Double(last - position.averagePrice) / Double(TickCodec.priceScale)
            let result = SymbolResult(
                position: position.quantity, lastPrice: last,
                realizedPnL: Double(position.realizedPnL) / Double(TickCodec.priceScale), unrealizedPnL: unrealized)
            summary.symbols[symbol] = result
            realized += result.realizedPnL
            total += result.realizedPnL + unrealized
        }
        summary.realizedPnL = realized
        summary.totalPnL = total
        return summary
    }

    // MARK: - Carrying out the core's directives

    private var timestamp: FIXTimestamp { FIXTimestamp(millisecondsSinceEpoch: now / 1_000_000) }

    private mutating func duty(sessionActive: Bool) {
        run(core.onDuty(now: now, leadership: leading, session: SessionInput(active: sessionActive, nextSenderSeqNum: nextSeqNum)))
    }

    private mutating func run(_ directives: [TradingDirective]) {
        var queue = directives[...]
        while let directive = queue.popFirst() {
            var next: [TradingDirective] = []
            switch directive {
            case .propose(let command):
                index += 1
                next = core.apply(command, term: term, index: index, now: now)
                core.applied(through: index)
            case .send(let send):
                let seq = nextSeqNum
                nextSeqNum += 1
                next = core.onOrderWritten(send, msgSeqNum: seq, leaseRemainingNanos: 10_000_000_000, now: now)
                let order = OrderMessages.newOrderSingle(send, transactTime: timestamp)
                next += deliver(venue.newOrder(order, session: session, now: timestamp, sendingTime: timestamp))
            case .requestStatus(let clOrdID, let symbol, let side):
                next = deliver(
                    venue.statusRequest(
                        FIXOrderStatusRequest(clOrdID: clOrdID, symbol: symbol, side: side == .buy ? .buy : .sell),
                        session: session, now: timestamp))
            case .requestMassStatus(let requestID):
                core.onMassStatusRequestWritten(requestID: requestID, msgSeqNum: nextSeqNum)
                nextSeqNum += 1
                next = deliver(venue.massStatusRequest(FIXOrderMassStatusRequest(massStatusReqID: requestID), session: session, now: timestamp))
            case .report(let report):
                note(report)
            case .grantSession(let grant):
                nextSeqNum = max(nextSeqNum, grant.firstSenderSeqNum)
            case .extendSession, .revokeSession, .deliverAlerts:
                break
            case .handOverLeadership:
                break  // the replay's one leader has nobody to hand over to; its venue is always reachable
            }
            queue.append(contentsOf: next)
        }
    }

    private mutating func receive(_ reports: [VenueReport]) { run(deliver(reports)) }

    /// The venue's reports through the live engine's boundary (`OrderMessages.inbound`).
    private mutating func deliver(_ reports: [VenueReport]) -> [TradingDirective] {
        var directives: [TradingDirective] = []
        for report in reports where report.session == session && report.message.msgType == "8" {
            switch OrderMessages.inbound(report.message, session: session, now: now) {
            case .report(let record, let possDup, let massStatus):
                directives += core.onExecutionReport(record, possDup: possDup, massStatus: massStatus, now: now)
            case .refused(let clOrdID, let isStatusReport, let reason):
                directives += core.onReportRefused(clOrdID: clOrdID, isStatusReport: isStatusReport, reason: reason, now: now)
            case .unreadable:
                break
            }
        }
        return directives
    }

    private mutating func note(_ report: TradingReport) {
        switch report {
        case .intentCommitted(let order):
            let intent = order.intent
            summary.intents += 1
            decisions.append(
                Decision(
                    atNanos: intent.decidedAtNanos, symbol: intent.signal.symbol, tickSequence: intent.signal.tickSequence,
                    tickPrice: intent.signal.tickPrice,
                    tickReceivedNanos: intent.signal.tickReceivedNanos, direction: intent.signal.direction, strategy: intent.signal.strategy,
                    version: intent.signal.strategyVersion, sleeve: intent.signal.sleeve, outcome: "intent",
                    clOrdID: order.clOrdID, side: intent.side, quantity: intent.quantity, kind: intent.kind,
                    limitPrice: intent.limitPrice, timeInForce: intent.timeInForce, risk: intent.riskDecision))
        case .rejectionCommitted(let rejection):
            summary.rejections += 1
            let signal = rejection.signal
            decisions.append(
                Decision(
                    atNanos: rejection.decidedAtNanos, symbol: signal.symbol, tickSequence: signal.tickSequence,
                    tickPrice: signal.tickPrice,
                    tickReceivedNanos: signal.tickReceivedNanos, direction: signal.direction, strategy: signal.strategy,
                    version: signal.strategyVersion, sleeve: signal.sleeve, outcome: "rejected", risk: rejection.reason))
        case .filled(let clOrdID, let symbol, let quantity, let price):
            summary.fills += 1
            summary.filledQuantity += quantity
            let side = core.state.orders[clOrdID]?.intent.side ?? .buy
            fills.append(Fill(atNanos: now, clOrdID: clOrdID, symbol: symbol, side: side, quantity: quantity, price: price))
        default:
            break
        }
    }
}
