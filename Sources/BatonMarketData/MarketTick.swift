/// One normalised market-data event: a trade with the best bid and offer at that moment.
///
/// Prices are fixed-point integers (units of 1/`TickCodec.priceScale`) so that the strategy's
/// sums and comparisons are exact and identical on every replica: a follower's shadow decision
/// may differ from the leader's only because it saw different ticks, never because of rounding.
public struct MarketTick: Sendable, Hashable {
    /// Per-source stream sequence: starts at 1 and goes up by one per tick.
    public var sequence: UInt64
    public var symbol: String
    /// Last trade price, in units of 1/`TickCodec.priceScale`.
    public var price: Int64
    public var size: Int64
    public var bid: Int64
    public var ask: Int64
    /// The venue's clock, nanoseconds since the Unix epoch.
    public var exchangeTimeNanos: Int64
    /// Set by the receiver when the frame arrived; 0 on the wire.
    public var receiveTimeNanos: Int64

    public init(
        sequence: UInt64, symbol: String, price: Int64, size: Int64, bid: Int64, ask: Int64,
        exchangeTimeNanos: Int64, receiveTimeNanos: Int64 = 0
    ) {
        self.sequence = sequence
        self.symbol = symbol
        self.price = price
        self.size = size
        self.bid = bid
        self.ask = ask
        self.exchangeTimeNanos = exchangeTimeNanos
        self.receiveTimeNanos = receiveTimeNanos
    }
}

/// Why one line of a market-data frame could not be decoded.
public struct TickDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line number within the frame.
    public var line: Int
    public var reason: String
    /// The offending line (truncated to 120 bytes), for the log.
    public var text: String

    public init(line: Int, reason: String, text: String) {
        self.line = line
        self.reason = reason
        self.text = text
    }

    public var description: String { "market data line \(line): \(reason): \"\(text)\"" }
}
