public import BatonMarketData

/// Paces the tick stream to the configured rate, batches it into frames, and decides when a
/// heartbeat is due or the feed is paused. Pure: the shell passes both clocks in.
///
/// The walk advances at the tick rate whether anyone listens or the feed is paused, so the
/// matcher's price keeps moving through an outage, like a real market.
public struct MarketFeed: Sendable {
    public struct Settings: Hashable, Sendable {
        /// Ticks per second over all symbols.
        public var ticksPerSecond: Int
        /// A heartbeat line goes out when no trade was sent for this long.
        public var heartbeatIntervalNanos: Int64
        /// The most ticks one step generates, so a stalled process catches up in bounded bursts
        /// instead of one huge frame.
        public var maxTicksPerStep: Int

        public init(ticksPerSecond: Int, heartbeatIntervalNanos: Int64 = 100_000_000, maxTicksPerStep: Int = 5_000) {
            self.ticksPerSecond = ticksPerSecond
            self.heartbeatIntervalNanos = heartbeatIntervalNanos
            self.maxTicksPerStep = maxTicksPerStep
        }
    }

    public let settings: Settings
    public private(set) var generator: TickGenerator
    /// Monotonic time of the first step; pacing counts ticks from here.
    private var startNanos: Int64?
    private var generated: Int64 = 0
    private var lastFrameNanos: Int64 = 0
    public private(set) var pausedUntilNanos: Int64?

    public init(settings: Settings, generator: TickGenerator) {
        self.settings = settings
        self.generator = generator
    }

    public func isPaused(monotonicNanos: Int64) -> Bool {
        pausedUntilNanos.map { monotonicNanos < $0 } ?? false
    }

    /// Stops sending ticks and heartbeats for `nanos`; the walk goes on.
    public mutating func pause(forNanos nanos: Int64, monotonicNanos: Int64) {
        pausedUntilNanos = monotonicNanos + max(0, nanos)
    }

    public mutating func resume() {
        pausedUntilNanos = nil
    }

    /// Generates the ticks due by `monotonicNanos`, hands each to `onTick` (the matcher), and
    /// appends the frame to send (trades, or a heartbeat when one is due) to `frame`.
    /// Returns true when `frame` holds something to send to subscribers.
    public mutating func step(
        monotonicNanos: Int64, wallNanos: Int64, frame: inout [UInt8], onTick: (MarketTick) -> Void
    ) -> Bool {
        if startNanos == nil {
            startNanos = monotonicNanos
            lastFrameNanos = monotonicNanos
        }
        let elapsed = monotonicNanos - (startNanos ?? monotonicNanos)
        let due = Int64((Double(elapsed) * Double(settings.ticksPerSecond) / 1e9).rounded(.down))
        var count = Int(min(Int64(settings.maxTicksPerStep), max(0, due - generated)))
        if due - generated > Int64(settings.maxTicksPerStep) * 10 {
            // Far behind (the process was stopped): forget the backlog rather than replay it.
            generated = due - Int64(count)
        }
        generated += Int64(count)
        let paused = isPaused(monotonicNanos: monotonicNanos)
        if !paused, pausedUntilNanos != nil { pausedUntilNanos = nil }
        while count > 0 {
            let tick = generator.next(exchangeTimeNanos: wallNanos)
            onTick(tick)
            if !paused { TickCodec.appendTrade(tick, to: &frame) }
            count -= 1
        }
        if paused { return false }
        if frame.isEmpty {
            guard monotonicNanos - lastFrameNanos >= settings.heartbeatIntervalNanos else { return false }
            TickCodec.appendHeartbeat(
                lastSequence: generator.lastSequence, exchangeTimeNanos: wallNanos, to: &frame)
        }
        lastFrameNanos = monotonicNanos
        return true
    }
}
