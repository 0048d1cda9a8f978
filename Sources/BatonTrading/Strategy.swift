import BatonMarketData

/// One symbol's MA crossover parameters.
public struct CrossoverParameters: Sendable, Hashable, Codable {
    public var symbol: String
    public var fastWindow: Int
    public var slowWindow: Int
    /// The fast average must clear the slow one by this much (price units) before the regime
    /// flips: hysteresis against noise around the crossing.
    public var threshold: Int64
    /// Absolute position the strategy wants when long or short.
    public var quantity: Int64
    /// When false, a bearish crossing means flat rather than short.
    public var allowShort: Bool

    public init(
        symbol: String, fastWindow: Int = 10, slowWindow: Int = 30, threshold: Int64 = 0, quantity: Int64 = 100,
        allowShort: Bool = false
    ) {
        self.symbol = symbol
        self.fastWindow = fastWindow
        self.slowWindow = slowWindow
        self.threshold = threshold
        self.quantity = quantity
        self.allowShort = allowShort
    }

    /// Problems with these parameters, each naming the field (empty when valid).
    public var problems: [String] {
        var out: [String] = []
        if symbol.isEmpty { out.append("symbol is empty") }
        if fastWindow < 1 { out.append("fast window must be at least 1 (got \(fastWindow))") }
        if slowWindow <= fastWindow { out.append("slow window (\(slowWindow)) must exceed the fast one (\(fastWindow))") }
        if slowWindow > 10_000 { out.append("slow window (\(slowWindow)) is above 10000") }
        if threshold < 0 { out.append("threshold must not be negative") }
        if quantity <= 0 { out.append("quantity must be positive (got \(quantity))") }
        return out
    }
}

/// A direction change the strategy wants.
public struct StrategySignal: Sendable, Hashable {
    public var origin: SignalOrigin
    public var targetQuantity: Int64
    /// How the strategy wants the order placed; the risk gate decides the side and quantity.
    public var style: OrderStyle = .market
}

/// How a strategy's orders go to the venue: market, or a limit a number of basis points through
/// the deciding trade's price with a time in force.
public struct OrderStyle: Sendable, Hashable {
    public var kind: OrderKind
    public var limitOffsetBps: Int64
    public var timeInForce: OrderTimeInForce

    public init(kind: OrderKind, limitOffsetBps: Int64 = 0, timeInForce: OrderTimeInForce = .day) {
        self.kind = kind
        self.limitOffsetBps = limitOffsetBps
        self.timeInForce = timeInForce
    }

    public static let market = OrderStyle(kind: .market)

    /// The limit for `side` off `price` (price units), rounded away from the trade to the venue's
    /// cent so a buy is never below, nor a sell above, the offset asked for; nil for market.
    public func limitPrice(side: OrderSide, price: Int64) -> Int64? {
        guard kind == .limit else { return nil }
        let cent: Int64 = 100
        let offset = Int64((Int128(price) * Int128(limitOffsetBps) + 9_999) / 10_000)
        switch side {
        case .buy:
            let limit = price + offset
            return (limit + cent - 1) / cent * cent
        case .sell:
            let limit = max(cent, price - offset)
            return limit / cent * cent
        }
    }
}

/// A trading strategy for one symbol: pure, and deterministic from its parameters and the
/// trades it is fed, so that every replica computes the same signals from the same feed (the
/// leader acts on them, followers keep theirs warm for a takeover and compare). Each is named
/// and versioned, and its signals carry both (`SignalOrigin`): every intent and fill says which
/// strategy and version decided it. `StrategySpec` lists the ones there are.
public protocol Strategy: Sendable {
    var name: String { get }
    var version: String { get }
    var symbol: String { get }
    /// The position size it wants when long (short is the negative).
    var quantity: Int64 { get }
    /// The direction it currently wants; nil until it has seen enough trades to say.
    var regime: TargetDirection? { get }
    /// Feeds one trade price; returns a signal when the wanted direction changes.
    mutating func onTick(sequence: UInt64, price: Int64, receivedNanos: Int64) -> StrategySignal?
    /// Forget what was seen (a feed discontinuity that makes it meaningless, e.g. a long gap).
    mutating func reset()
    /// How its orders are placed (market unless the strategy says otherwise).
    var orderStyle: OrderStyle { get }
}

extension Strategy {
    public var orderStyle: OrderStyle { .market }

    /// The position `direction` stands for.
    public func target(_ direction: TargetDirection) -> Int64 {
        switch direction {
        case .long: quantity
        case .short: -quantity
        case .flat: 0
        }
    }

    func signal(_ direction: TargetDirection, sequence: UInt64, price: Int64, receivedNanos: Int64) -> StrategySignal {
        StrategySignal(
            origin: SignalOrigin(
                strategy: name, strategyVersion: version, symbol: symbol, direction: direction, tickSequence: sequence,
                tickPrice: price, tickReceivedNanos: receivedNanos),
            targetQuantity: target(direction), style: orderStyle)
    }

    /// The signal the current regime stands for when `position` is not where it wants it: what a
    /// new leader acts on as soon as it may trade, so a decision the old leader saw but did not
    /// turn into an order (it died first) is not lost. nil when the regime is unknown or the
    /// position already matches it. The tick fields name the last tick seen; `receivedNanos` is
    /// 0 because no tick triggered this decision (it is left out of tick-to-order).
    public func standingSignal(position: Int64, lastSequence: UInt64, lastPrice: Int64) -> StrategySignal? {
        guard let regime, target(regime) != position else { return nil }
        return signal(regime, sequence: lastSequence, price: lastPrice, receivedNanos: 0)
    }
}

/// MA(fast)/MA(slow) crossover for one symbol, O(1) per tick with exact integer sums.
///
/// Runs on every replica from the same ticks: the leader acts on its signals, followers keep the
/// state warm for takeover and compare their decisions with the leader's committed ones.
public struct MovingAverageCrossover: Strategy {
    public static let name = "ma-crossover"
    public var name: String { Self.name }
    public var symbol: String { parameters.symbol }
    public var quantity: Int64 { parameters.quantity }
    public let parameters: CrossoverParameters
    public let version: String
    private var window: [Int64]
    private var head = 0
    private var count = 0
    private var fastSum: Int64 = 0
    private var slowSum: Int64 = 0
    public private(set) var regime: TargetDirection?
    public private(set) var ticks: UInt64 = 0

    public init(parameters: CrossoverParameters, version: String = "1") {
        self.parameters = parameters
        self.version = version
        window = Array(repeating: 0, count: parameters.slowWindow)
    }

    /// The fast and slow averages in price units, once the slow window is full.
    public var averages: (fast: Int64, slow: Int64)? {
        guard count == parameters.slowWindow else { return nil }
        return (fastSum / Int64(parameters.fastWindow), slowSum / Int64(parameters.slowWindow))
    }

    /// Feeds one trade price; returns a signal when the regime changes.
    public mutating func onTick(sequence: UInt64, price: Int64, receivedNanos: Int64) -> StrategySignal? {
        ticks &+= 1
        let slow = parameters.slowWindow
        let fast = parameters.fastWindow
        // The ring holds the last `slow` prices; `head` is where the next one goes.
        if count == slow { slowSum -= window[head] } else { count += 1 }
        window[head] = price
        slowSum += price
        fastSum += price
        if count > fast {
            // The price that just left the fast window sits `fast` places behind the new one.
            var leaving = head - fast
            if leaving < 0 { leaving += slow }
            fastSum -= window[leaving]
        }
        head += 1
        if head == slow { head = 0 }
        guard count == slow else { return nil }

        // Compare fast/F with slow/S without dividing: fast·S vs slow·F (exact).
        // In Int128: sums of up to 10,000 prices of up to 10^13 units, times a window, pass Int64.
        let scaledFast = Int128(fastSum) * Int128(slow)
        let scaledSlow = Int128(slowSum) * Int128(fast)
        let scaledThreshold = Int128(parameters.threshold) * Int128(fast) * Int128(slow)
        let next: TargetDirection
        if scaledFast - scaledSlow > scaledThreshold {
            next = .long
        } else if scaledSlow - scaledFast > scaledThreshold {
            next = parameters.allowShort ? .short : .flat
        } else {
            return nil
        }
        guard next != regime else { return nil }
        regime = next
        return signal(next, sequence: sequence, price: price, receivedNanos: receivedNanos)
    }

    /// Forget the averages (a feed discontinuity that makes them meaningless, e.g. a long gap).
    public mutating func reset() {
        head = 0
        count = 0
        fastSum = 0
        slowSum = 0
    }
}

/// Which strategy runs on a symbol, with its parameters: the registry of the strategies there
/// are. A value (Codable, Hashable), so that what runs can be configured, compared and, later,
/// journaled; `make` builds the strategy it names.
public enum StrategySpec: Sendable, Hashable, Codable {
    case maCrossover(CrossoverParameters)
    case channelBreakout(BreakoutParameters)

    /// The registered names, with what each does, for errors and `--help`.
    public static let registry: [(name: String, summary: String)] = [
        (MovingAverageCrossover.name, "moving-average crossover: fast_window, slow_window, threshold, quantity, allow_short"),
        (
            ChannelBreakout.name,
            "channel breakout on the last lookback trades, limit orders through the breakout: lookback, quantity, allow_short, limit_offset_bps, time_in_force"
        ),
    ]

    public var name: String {
        switch self {
        case .maCrossover: MovingAverageCrossover.name
        case .channelBreakout: ChannelBreakout.name
        }
    }

    public var symbol: String {
        switch self {
        case .maCrossover(let p): p.symbol
        case .channelBreakout(let p): p.symbol
        }
    }

    /// The position it wants when long.
    public var quantity: Int64 {
        switch self {
        case .maCrossover(let p): p.quantity
        case .channelBreakout(let p): p.quantity
        }
    }

    /// Problems with the parameters, each naming the field (empty when valid).
    public var problems: [String] {
        switch self {
        case .maCrossover(let p): p.problems
        case .channelBreakout(let p): p.problems
        }
    }

    public func make(version: String) -> any Strategy {
        switch self {
        case .maCrossover(let p): MovingAverageCrossover(parameters: p, version: version)
        case .channelBreakout(let p): ChannelBreakout(parameters: p, version: version)
        }
    }
}

extension StrategySpec {
    /// The parameters each strategy takes, by the names the admin API and the configuration use.
    public static let parameterKeys: [String: [String]] = [
        MovingAverageCrossover.name: ["fast_window", "slow_window", "threshold", "quantity", "allow_short"],
        ChannelBreakout.name: ["lookback", "quantity", "allow_short", "limit_offset_bps", "time_in_force"],
    ]

    /// A strategy of the registry on `symbol`, from named parameters (text, as a request or a
    /// file gives them); absent ones take their defaults. Every problem names its parameter.
    public static func parse(name: String, symbol: String, parameters: [String: String]) -> Result<StrategySpec, StrategyProblems> {
        guard let keys = parameterKeys[name] else {
            return .failure(
                StrategyProblems([
                    "'\(name.prefix(40))' is not a strategy: use \(registry.map(\.name).joined(separator: " or "))"
                ]))
        }
        var problems: [String] = []
        for key in parameters.keys.sorted() where !keys.contains(key) {
            problems.append("parameters.\(key.prefix(40)) is not a parameter of \(name): it takes \(keys.joined(separator: ", "))")
        }
        func integer(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>) -> Int {
            guard let text = parameters[key] else { return fallback }
            guard let value = Int(text), range.contains(value) else {
                problems.append("parameters.\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(40))'")
                return fallback
            }
            return value
        }
        func flag(_ key: String) -> Bool {
            guard let text = parameters[key] else { return false }
            guard text == "true" || text == "false" else {
                problems.append("parameters.\(key) must be true or false, got '\(text.prefix(40))'")
                return false
            }
            return text == "true"
        }
        let quantity = Int64(integer("quantity", 100, 1...1_000_000_000))
        let allowShort = flag("allow_short")
        let spec: StrategySpec
        if name == ChannelBreakout.name {
            // New deployments place limits (5 bps through the breakout, IOC) unless told
            // otherwise; "market" asks for market orders.
            var offset: Int64? = 5
            if let text = parameters["limit_offset_bps"] {
                if text == "market" {
                    offset = nil
                } else if let value = Int64(text), (0...1_000).contains(value) {
                    offset = value
                } else {
                    problems.append("parameters.limit_offset_bps must be a whole number from 0 to 1000 or 'market', got '\(text.prefix(40))'")
                }
            }
            var timeInForce = OrderTimeInForce.immediateOrCancel
            if let text = parameters["time_in_force"] {
                if let value = OrderTimeInForce(rawValue: text) {
                    timeInForce = value
                } else {
                    problems.append("parameters.time_in_force must be ioc, day or gtc, got '\(text.prefix(40))'")
                }
            }
            spec = .channelBreakout(
                BreakoutParameters(
                    symbol: symbol, lookback: integer("lookback", 20, 2...10_000), quantity: quantity, allowShort: allowShort,
                    limitOffsetBps: offset, timeInForce: timeInForce))
        } else {
            var threshold: Int64 = 0
            if let text = parameters["threshold"] {
                if let units = TickCodec.parsePrice(text), units >= 0 {
                    threshold = units
                } else {
                    problems.append("parameters.threshold must be a non-negative price with at most 4 places, got '\(text.prefix(40))'")
                }
            }
            spec = .maCrossover(
                CrossoverParameters(
                    symbol: symbol, fastWindow: integer("fast_window", 10, 1...10_000),
                    slowWindow: integer("slow_window", 30, 2...10_000), threshold: threshold, quantity: quantity,
                    allowShort: allowShort))
        }
        problems += spec.problems.map { "parameters: \($0)" }
        return problems.isEmpty ? .success(spec) : .failure(StrategyProblems(problems))
    }

    /// The parameters as named text, the way `parse` reads them back.
    public var parameters: [String: String] {
        switch self {
        case .maCrossover(let p):
            [
                "fast_window": "\(p.fastWindow)", "slow_window": "\(p.slowWindow)", "threshold": TickCodec.formatPrice(p.threshold),
                "quantity": "\(p.quantity)", "allow_short": "\(p.allowShort)",
            ]
        case .channelBreakout(let p):
            [
                "lookback": "\(p.lookback)", "quantity": "\(p.quantity)", "allow_short": "\(p.allowShort)",
                "limit_offset_bps": p.limitOffsetBps.map { "\($0)" } ?? "market", "time_in_force": p.timeInForce.rawValue,
            ]
        }
    }
}

/// Why a strategy's parameters were refused, each line naming the parameter.
public struct StrategyProblems: Error, Sendable, Hashable, CustomStringConvertible {
    public var problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}

/// A strategy version an operator put on some symbols (`POST /admin/strategies`): journaled, so
/// every replica switches at the same log position and a new leader runs what the old one ran.
public struct StrategyDeployment: Codable, Sendable, Hashable {
    /// One per symbol it covers.
    public var specs: [StrategySpec]
    public var version: String
    public var by: String
    public var reason: String
    public var atNanos: Int64

    public init(specs: [StrategySpec], version: String, by: String, reason: String, atNanos: Int64) {
        self.specs = specs
        self.version = version
        self.by = by
        self.reason = reason
        self.atNanos = atNanos
    }

    /// Why a replica would not apply it (nil: it is sound). Checked when applied, so a journal
    /// entry from a bad or hostile proposer changes nothing on any replica.
    public var problem: String? {
        if specs.isEmpty { return "it covers no symbol" }
        if Set(specs.map(\.symbol)).count != specs.count { return "it names a symbol twice" }
        if version.isEmpty || version.utf8.count > 32 { return "version must be 1 to 32 bytes" }
        if let bad = specs.first(where: { !$0.problems.isEmpty }) { return "\(bad.symbol): \(bad.problems.joined(separator: "; "))" }
        return nil
    }
}

/// What runs on a symbol after a deployment, and who put it there.
public struct DeployedStrategy: Codable, Sendable, Hashable {
    public var spec: StrategySpec
    public var version: String
    public var by: String
    public var reason: String
    public var atNanos: Int64
    /// The log position of the deployment.
    public var index: UInt64
}
