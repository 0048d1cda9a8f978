public import BatonMarketData

/// The simulated market: one seeded random walk per symbol, producing trades with a best bid
/// and offer around them.
///
/// Everything but the exchange time is a function of the seed alone, so a backup feed started
/// with the same seed produces the same stream, and a test can predict it.
public struct TickGenerator: Sendable {
    public struct Settings: Hashable, Sendable {
        public var seed: UInt64
        /// Traded symbols; ticks go to them in turn.
        public var symbols: [String]
        /// Start prices in units of 1/`TickCodec.priceScale`; a symbol without one starts at 100.
        public var startPrices: [String: Int64]
        /// The largest step of one tick, in basis points of the price.
        public var volatilityBps: Int64

        public init(seed: UInt64, symbols: [String], startPrices: [String: Int64] = [:], volatilityBps: Int64 = 2) {
            self.seed = seed
            self.symbols = symbols
            self.startPrices = startPrices
            self.volatilityBps = volatilityBps
        }
    }

    public static let defaultStartPrice: Int64 = 100 * TickCodec.priceScale
    /// No walk goes below one cent: a price of zero or less would make every order nonsense.
    public static let minimumPrice: Int64 = TickCodec.priceScale / 100

    public let settings: Settings
    public private(set) var lastSequence: UInt64 = 0
    private var random: SplitMix64
    private var prices: [Int64]
    private var nextSymbolIndex = 0
    private let symbolIndex: [String: Int]

    public init(settings: Settings) {
        precondition(!settings.symbols.isEmpty, "TickGenerator needs at least one symbol: \(settings)")
        self.settings = settings
        // A stream of its own: orders (which draw from the matcher's stream) never shift the market.
        random = SplitMix64(seed: settings.seed ^ 0x6D61_726B_6574_0001)
        prices = settings.symbols.map { settings.startPrices[$0] ?? TickGenerator.defaultStartPrice }
        var index: [String: Int] = [:]
        for (i, symbol) in settings.symbols.enumerated() { index[symbol] = i }
        symbolIndex = index
    }

    /// The last trade price of a symbol (its start price before its first tick); nil for a
    /// symbol this market does not trade.
    public func price(of symbol: String) -> Int64? {
        symbolIndex[symbol].map { prices[$0] }
    }

    /// The next tick of the stream, stamped with the venue's clock.
    public mutating func next(exchangeTimeNanos: Int64) -> MarketTick {
        let i = nextSymbolIndex
        nextSymbolIndex = (nextSymbolIndex + 1) % settings.symbols.count
        let price = prices[i]
        let maxStep = max(1, price * settings.volatilityBps / 10_000)
        let step = Int64(random.next(below: UInt64(2 * maxStep + 1))) - maxStep
        let newPrice = max(TickGenerator.minimumPrice, price + step)
        prices[i] = newPrice
        // Spread of 1 to 3 bps, at least one price unit each side.
        let halfSpread = max(1, newPrice * Int64(1 + random.next(below: 3)) / 20_000)
        let size = Int64(1 + random.next(below: 10)) * 100
        lastSequence += 1
        return MarketTick(
            sequence: lastSequence, symbol: settings.symbols[i], price: newPrice, size: size,
            bid: newPrice - halfSpread, ask: newPrice + halfSpread, exchangeTimeNanos: exchangeTimeNanos)
    }
}
