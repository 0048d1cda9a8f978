/// Everything `baton-venue` is told on its command line.
public struct VenueConfiguration: Hashable, Sendable {
    public var host: String
    /// 0 picks a free port (the bound one is printed and reported).
    public var fixPort: Int
    public var httpPort: Int
    public var compID: String
    public var seed: UInt64
    public var symbols: [String]
    /// In units of 1/`TickCodec.priceScale`.
    public var startPrices: [String: Int64]
    public var ticksPerSecond: Int
    public var slippageBps: Int64
    public var partialFillProbability: Double
    public var partialFillSlices: Int
    /// Refuse NewOrderSingles whose SendingTime is older than this many ms (0: no limit).
    public var maxOrderAgeMilliseconds: Int64 = 0
    /// Replay application messages on ResendRequest (false: gap-fill them, VenueCore.Settings).
    public var resendsApplicationMessages = true
    /// SendingTime tolerance of the FIX sessions, in seconds (nil: not checked).
    public var sendingTimeToleranceSeconds: Int? = 120
    /// Order gateway latency (VenueCore.Settings.orderLatencyMilliseconds); 0: none.
    public var orderLatencyMilliseconds: Int64 = 0
    /// Where ClOrdIDs are unique and visible: the session (default, as at brokers) or the account.
    public var clOrdIDScope: MatchingEngine.ClOrdIDScope = .session
    /// The book, the sessions' sequence numbers and sent messages survive a restart in this file
    /// (JSON lines, appended before anything is sent); nil keeps everything in memory.
    public var stateFile: String?
    /// Answer OrderStatusRequests with a BusinessMessageReject (VenueCore.Settings).
    public var rejectsStatusRequests = false
    /// Password(554) per SenderCompID that Logon must carry; nil: none asked for.
    public var passwords: [String: String]?
    public var volatilityBps: Int64
    /// Counterparties allowed to log on; nil accepts any SenderCompID.
    public var sessions: Set<String>?
    /// Serve the market feed only (a backup feed): no FIX listener.
    public var feedOnly: Bool

    public init(
        host: String = "127.0.0.1", fixPort: Int = 9878, httpPort: Int = 9880, compID: String = "VENUE",
        seed: UInt64 = 42, symbols: [String] = ["AAPL", "MSFT", "EURUSD"], startPrices: [String: Int64] = [:],
        ticksPerSecond: Int = 1000, slippageBps: Int64 = 1, partialFillProbability: Double = 0,
        partialFillSlices: Int = 3, volatilityBps: Int64 = 2, sessions: Set<String>? = nil, feedOnly: Bool = false
    ) {
        self.host = host
        self.fixPort = fixPort
        self.httpPort = httpPort
        self.compID = compID
        self.seed = seed
        self.symbols = symbols
        self.startPrices = startPrices
        self.ticksPerSecond = ticksPerSecond
        self.slippageBps = slippageBps
        self.partialFillProbability = partialFillProbability
        self.partialFillSlices = partialFillSlices
        self.volatilityBps = volatilityBps
        self.sessions = sessions
        self.feedOnly = feedOnly
    }

    var tickGeneratorSettings: TickGenerator.Settings {
        TickGenerator.Settings(seed: seed, symbols: symbols, startPrices: startPrices, volatilityBps: volatilityBps)
    }

    var matchingSettings: MatchingEngine.Settings {
        MatchingEngine.Settings(
            seed: seed, slippageBps: slippageBps, partialFillProbability: partialFillProbability,
            partialFillSlices: partialFillSlices, maxOrderAgeMilliseconds: maxOrderAgeMilliseconds,
            clOrdIDScope: clOrdIDScope)
    }
}
