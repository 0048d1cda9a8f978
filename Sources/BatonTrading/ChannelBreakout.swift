/// One symbol's channel breakout parameters.
public struct BreakoutParameters: Sendable, Hashable, Codable {
    public var symbol: String
    /// How many previous trades make the channel.
    public var lookback: Int
    /// Absolute position the strategy wants when long or short.
    public var quantity: Int64
    /// When false, a breakout below the channel means flat rather than short.
    public var allowShort: Bool
    /// Orders are limits this many basis points through the breakout trade (a buy above it, a
    /// sell below): the most slippage the strategy accepts to follow a breakout. nil: market
    /// orders, which is what a deployment journaled before limit orders existed decodes to.
    public var limitOffsetBps: Int64?
    /// How long a limit order works: IOC (a breakout not caught at once is not chased), DAY or GTC.
    public var timeInForce: OrderTimeInForce

    public init(
        symbol: String, lookback: Int = 20, quantity: Int64 = 100, allowShort: Bool = false, limitOffsetBps: Int64? = nil,
        timeInForce: OrderTimeInForce = .immediateOrCancel
    ) {
        self.symbol = symbol
        self.lookback = lookback
        self.quantity = quantity
        self.allowShort = allowShort
        self.limitOffsetBps = limitOffsetBps
        self.timeInForce = timeInForce
    }

    private enum CodingKeys: String, CodingKey {
        case symbol, lookback, quantity, allowShort, limitOffsetBps, timeInForce
    }

    /// Journals written before limit orders have neither key: market orders, as they were.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        symbol = try container.decode(String.self, forKey: .symbol)
        lookback = try container.decode(Int.self, forKey: .lookback)
        quantity = try container.decode(Int64.self, forKey: .quantity)
        allowShort = try container.decode(Bool.self, forKey: .allowShort)
        limitOffsetBps = try container.decodeIfPresent(Int64.self, forKey: .limitOffsetBps)
        timeInForce = try container.decodeIfPresent(OrderTimeInForce.self, forKey: .timeInForce) ?? .day
    }

    /// Problems with these parameters, each naming the field (empty when valid).
    public var problems: [String] {
        var out: [String] = []
        if symbol.isEmpty { out.append("symbol is empty") }
        if lookback < 2 || lookback > 10_000 { out.append("lookback must be from 2 to 10000 (got \(lookback))") }
        if quantity <= 0 { out.append("quantity must be positive (got \(quantity))") }
        if let bps = limitOffsetBps, !(0...1_000).contains(bps) { out.append("limit_offset_bps must be from 0 to 1000 (got \(bps))") }
        return out
    }

    var orderStyle: OrderStyle {
        guard let limitOffsetBps else { return .market }
        return OrderStyle(kind: .limit, limitOffsetBps: limitOffsetBps, timeInForce: timeInForce)
    }
}

/// Donchian channel breakout for one symbol: long when a trade prints above the highest of the
/// previous `lookback` trades, short (or flat) when one prints below the lowest; inside the
/// channel it keeps what it wants. A different kind of rule from the crossover (it follows
/// extremes, not averages), so that the registry holds more than one.
///
/// O(1) amortized per tick: monotonic queues of the window's candidates for its maximum and its
/// minimum, each price entering and leaving them once.
public struct ChannelBreakout: Strategy {
    public static let name = "channel-breakout"
    public var name: String { Self.name }
    public var symbol: String { parameters.symbol }
    public var quantity: Int64 { parameters.quantity }
    public let parameters: BreakoutParameters
    public let version: String
    public private(set) var regime: TargetDirection?
    public private(set) var ticks: UInt64 = 0
    /// (tick number, price), prices decreasing from the front: the front is the window's maximum.
    private var highs = MonotonicQueue()
    /// Prices increasing from the front: the front is the window's minimum.
    private var lows = MonotonicQueue()

    public init(parameters: BreakoutParameters, version: String = "1") {
        self.parameters = parameters
        self.version = version
    }

    public var orderStyle: OrderStyle { parameters.orderStyle }

    /// The channel (lowest, highest) of the previous `lookback` trades, once that many were seen.
    public var channel: (low: Int64, high: Int64)? {
        guard ticks >= UInt64(parameters.lookback), let high = highs.front, let low = lows.front else { return nil }
        return (low.price, high.price)
    }

    public mutating func onTick(sequence: UInt64, price: Int64, receivedNanos: Int64) -> StrategySignal? {
        // Judged against the previous trades, before this one joins the channel.
        var next: TargetDirection?
        if let (low, high) = channel {
            if price > high {
                next = .long
            } else if price < low {
                next = parameters.allowShort ? .short : .flat
            }
        }
        ticks &+= 1
        let oldest = ticks > UInt64(parameters.lookback) ? ticks - UInt64(parameters.lookback) : 0
        highs.push(tick: ticks, price: price, keepsFrontAbove: true, after: oldest)
        lows.push(tick: ticks, price: price, keepsFrontAbove: false, after: oldest)
        guard let next, next != regime else { return nil }
        regime = next
        return signal(next, sequence: sequence, price: price, receivedNanos: receivedNanos)
    }

    public mutating func reset() {
        highs = MonotonicQueue()
        lows = MonotonicQueue()
        ticks = 0
    }
}

/// A queue of (tick, price) kept monotonic in price, over an array with a moving head (no
/// per-tick shifting); compacted when the dead prefix outgrows the live part.
struct MonotonicQueue: Sendable {
    private var items: [(tick: UInt64, price: Int64)] = []
    private var head = 0

    var front: (tick: UInt64, price: Int64)? { head < items.count ? items[head] : nil }

    /// Adds a trade, first dropping from the back what it dominates (a lower or equal price when
    /// the front is the maximum, a higher or equal one when it is the minimum) and from the front
    /// what has left the window (ticks at or before `after`).
    mutating func push(tick: UInt64, price: Int64, keepsFrontAbove: Bool, after oldest: UInt64) {
        while items.count > head, let last = items.last, keepsFrontAbove ? last.price <= price : last.price >= price {
            items.removeLast()
        }
        items.append((tick, price))
        while head < items.count, items[head].tick <= oldest { head += 1 }
        if head > 64, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
