public import BatonMarketData

/// What the strategy receives from the feed, in order.
public enum FeedEvent: Sendable, Hashable {
    /// The ticks of one frame of the active source, in sequence order. One array per frame
    /// keeps the per-tick cost of the hand-over near zero at tens of thousands of ticks a second.
    case ticks(source: FeedSource, [MarketTick])
    /// From here on ticks come from `to`. The two sources number their ticks independently and
    /// may be slightly ahead of or behind each other: a discontinuity, not a continuation.
    case sourceSwitched(from: FeedSource, to: FeedSource, reason: FeedSwitchReason)
    /// The active source skipped sequence numbers `from...to`: those ticks were never received.
    /// Reported before the batch whose ticks revealed it.
    case gap(source: FeedSource, from: UInt64, to: UInt64)
    /// The active source started numbering afresh (it restarted): a discontinuity.
    case sequenceReset(source: FeedSource, lastSequence: UInt64, newSequence: UInt64)
    /// The consumer fell behind and the buffer filled: this many ticks (and `switches` switch
    /// events) were dropped before this event. What follows is live again.
    case overflow(droppedTicks: Int, droppedSwitches: Int)
}

/// A snapshot for the admin plane; cheap to take.
public struct FeedStatus: Sendable, Hashable {
    public var active: FeedSource
    public var switches: UInt64
    public var sources: [FeedSourceStatus]
    /// Ticks and other events dropped because the consumer was behind.
    public var droppedTicks: UInt64
}

public struct FeedSourceStatus: Sendable, Hashable {
    public var source: FeedSource
    public var url: String
    public var health: FeedSourceHealth
    public var connected: Bool
    public var lastSequence: UInt64
    /// Time since the last tick or heartbeat (since start, if none yet).
    public var stalenessMillis: Int64
    public var ticks: UInt64
    public var gaps: UInt64
    public var missedTicks: UInt64
    public var duplicatesDropped: UInt64
    public var decodeErrors: UInt64
    public var reconnects: UInt64
}
