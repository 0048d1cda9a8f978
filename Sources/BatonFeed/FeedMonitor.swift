public import BatonMarketData

/// One of the two market-data sources a replica subscribes to.
public enum FeedSource: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case primary
    case backup

    public var description: String { rawValue }

    var other: FeedSource { self == .primary ? .backup : .primary }
}

/// How a source looks to the monitor at a given instant.
public enum FeedSourceHealth: String, Sendable, Hashable, CustomStringConvertible {
    /// Connected and heard from (tick or heartbeat) within `staleAfter`.
    case healthy
    /// Not heard from yet, but still within `staleAfter` of start or of connecting: too early to
    /// call it stale, too early to switch to it.
    case pending
    /// Connected, but silent for `staleAfter` or longer.
    case stale
    /// No connection.
    case disconnected

    public var description: String { rawValue }
}

/// Why the monitor changed the active source.
public enum FeedSwitchReason: Sendable, Hashable, CustomStringConvertible {
    /// The active source went silent for `staleAfter` while the other one was healthy.
    case stale(silentNanos: Int64)
    /// The active source's connection was lost while the other one was healthy.
    case disconnected
    /// The primary has been healthy again for `recoverAfter`: go back to it.
    case primaryRecovered

    public var description: String {
        switch self {
        case .stale(let silentNanos): "stale for \(silentNanos / 1_000_000) ms"
        case .disconnected: "disconnected"
        case .primaryRecovered: "primary healthy again"
        }
    }
}

/// What the monitor asks its shell to do or report. Ticks to forward travel separately (see
/// `FeedFrameOutcome.forwarded`) so that the hot path allocates nothing for directives.
public enum FeedDirective: Sendable, Hashable {
    /// Ticks of the active source now come from `to`. The two sources number their ticks
    /// independently, so downstream must treat this as a discontinuity in the stream.
    case switched(from: FeedSource, to: FeedSource, reason: FeedSwitchReason)
    /// `source` skipped sequence numbers `from...to` (inclusive): those ticks were never received.
    case gapDetected(source: FeedSource, from: UInt64, to: UInt64)
    /// `source` restarted its numbering (after a reconnect its first tick came at or below the
    /// last one seen): a new stream, accepted, and a discontinuity like a switch.
    case sequenceReset(source: FeedSource, lastSequence: UInt64, newSequence: UInt64)
    /// `source` has been silent for `staleAfter` (reported once per episode).
    case becameStale(source: FeedSource, silentNanos: Int64)
    /// `source` was stale or disconnected and is being heard from again.
    case recovered(source: FeedSource)
    /// Neither source is healthy: the active one is kept, and nothing is being forwarded. Reported
    /// once per episode; `recovered` of a source ends it.
    case noHealthySource(active: FeedSource)
    /// Something worth a log line that is neither a switch nor a gap.
    case log(FeedLogLevel, String)
}

public enum FeedLogLevel: Sendable, Hashable {
    case info, warning
}

/// Tuning of a `FeedMonitor`. Times are nanoseconds of a monotonic clock.
public struct FeedMonitorSettings: Sendable, Hashable {
    /// A source not heard from (no tick, no heartbeat) for this long is stale.
    public var staleAfterNanos: Int64 = 500_000_000
    /// The primary must have been healthy for this long before the feed goes back to it, so a
    /// primary that flaps does not drag the strategy back and forth.
    public var recoverAfterNanos: Int64 = 2_000_000_000
    /// Whether a backup is configured at all; without one the monitor never switches.
    public var hasBackup: Bool = true
    /// Symbols to forward; empty forwards every symbol. Other symbols still count for gap
    /// detection, since the sequence numbers the whole stream.
    public var symbols: Set<String> = []

    public init(
        staleAfterNanos: Int64 = 500_000_000, recoverAfterNanos: Int64 = 2_000_000_000, hasBackup: Bool = true,
        symbols: Set<String> = []
    ) {
        self.staleAfterNanos = staleAfterNanos
        self.recoverAfterNanos = recoverAfterNanos
        self.hasBackup = hasBackup
        self.symbols = symbols
    }
}

/// Per-source bookkeeping, also the admin plane's view of a source.
public struct FeedSourceState: Sendable, Hashable {
    public var connected = false
    /// When the current connection was made (monotonic ns); nil while disconnected.
    public var connectedAtNanos: Int64?
    /// Last time a tick or heartbeat arrived (monotonic ns).
    public var lastHeardNanos: Int64?
    /// Since when the source has been continuously healthy; nil while it is not.
    public var healthySinceNanos: Int64?
    /// Highest sequence accepted from this source (ticks, or a heartbeat's last-tick sequence).
    public var lastSequence: UInt64 = 0
    /// The next tick is the first of a new connection: a jump is a gap, a step back a reset.
    var awaitingFirstTick = true
    /// Whether `becameStale` has been reported and `recovered` not yet.
    var reportedUnhealthy = false
    public var ticksReceived: UInt64 = 0
    public var ticksForwarded: UInt64 = 0
    public var ticksFilteredOut: UInt64 = 0
    public var heartbeats: UInt64 = 0
    public var gaps: UInt64 = 0
    public var missedTicks: UInt64 = 0
    public var duplicatesDropped: UInt64 = 0
    public var sequenceResets: UInt64 = 0
    public var decodeErrors: UInt64 = 0
    public var connects: UInt64 = 0
    public var disconnects: UInt64 = 0

    public init() {}
}

/// What one received frame produced.
public struct FeedFrameOutcome: Sendable {
    /// Ticks to hand downstream, in sequence order; empty unless the frame came from the
    /// active source.
    public var forwarded: [MarketTick] = []
    public var directives: [FeedDirective] = []
    /// Malformed lines; the rest of the frame was still decoded.
    public var decodeErrors: [TickDecodingError] = []
    /// Ticks decoded from the frame, forwarded or not (for the per-source tick counter).
    public var ticksReceived = 0

    public init() {}
}

/// Decides which of two market-data sources the strategy listens to, and notices when a source
/// skips ticks, repeats them or falls silent.
///
/// A pure state machine: no I/O, no clock reads. The shell passes every time in (monotonic
/// nanoseconds), feeds it connection changes and frames, calls `check(now:)` periodically (every
/// 50 ms or so: staleness is only noticed there), and carries out what comes back.
///
/// Guarantees, which every replica relies on to see each tick once from the source it uses:
/// - only ticks from the active source are forwarded, each at most once per source stream:
///   a sequence at or below the last accepted one is dropped and counted;
/// - the active source changes only in `check`, `sourceConnected` and `sourceDisconnected`, never
///   in the middle of a frame, and every change is a `.switched` directive.
public struct FeedMonitor: Sendable {
    public let settings: FeedMonitorSettings
    public private(set) var active: FeedSource = .primary
    public private(set) var primary = FeedSourceState()
    public private(set) var backup = FeedSourceState()
    public private(set) var switches: UInt64 = 0
    /// When the monitor started; sources get `staleAfter` from here to connect before they count
    /// as down, so a backup that happens to connect first does not win the start.
    public let startedAtNanos: Int64
    private var reportedNoHealthySource = false

    public init(settings: FeedMonitorSettings = FeedMonitorSettings(), startedAt nowNanos: Int64) {
        self.settings = settings
        self.startedAtNanos = nowNanos
    }

    public func state(of source: FeedSource) -> FeedSourceState {
        source == .primary ? primary : backup
    }

    private mutating func withState<R>(_ source: FeedSource, _ body: (inout FeedSourceState) -> R) -> R {
        switch source {
        case .primary: body(&primary)
        case .backup: body(&backup)
        }
    }

    // MARK: - Health

    public func health(of source: FeedSource, at now: Int64) -> FeedSourceHealth {
        let state = state(of: source)
        guard state.connected, let connectedAt = state.connectedAtNanos else {
            let neverConnected = state.connects == 0
            return neverConnected && now - startedAtNanos < settings.staleAfterNanos ? .pending : .disconnected
        }
        guard let lastHeard = state.lastHeardNanos, lastHeard >= connectedAt else {
            return now - connectedAt < settings.staleAfterNanos ? .pending : .stale
        }
        return now - lastHeard < settings.staleAfterNanos ? .healthy : .stale
    }

    /// Time since the source was last heard from (or since start, if never), for the staleness gauge.
    public func silence(of source: FeedSource, at now: Int64) -> Int64 {
        max(0, now - (state(of: source).lastHeardNanos ?? startedAtNanos))
    }

    // MARK: - Connection events

    public mutating func sourceConnected(_ source: FeedSource, at now: Int64) -> [FeedDirective] {
        var directives: [FeedDirective] = []
        withState(source) { state in
            state.connected = true
            state.connectedAtNanos = now
            state.healthySinceNanos = nil
            state.awaitingFirstTick = true
            state.connects += 1
        }
        directives.append(.log(.info, "\(source) feed connected"))
        decideActive(at: now, into: &directives)
        return directives
    }

    public mutating func sourceDisconnected(_ source: FeedSource, at now: Int64, reason: String) -> [FeedDirective] {
        var directives: [FeedDirective] = []
        let wasConnected = state(of: source).connected
        withState(source) { state in
            state.connected = false
            state.connectedAtNanos = nil
            state.healthySinceNanos = nil
            state.awaitingFirstTick = true
            if wasConnected { state.disconnects += 1 }
            state.reportedUnhealthy = true
        }
        if wasConnected { directives.append(.log(.warning, "\(source) feed disconnected: \(reason)")) }
        decideActive(at: now, into: &directives)
        return directives
    }

    /// The shell is stopping and closed `source` itself: record it without judging health, so a
    /// shutdown is not reported as an outage.
    public mutating func sourceClosedForShutdown(_ source: FeedSource) {
        withState(source) { state in
            if state.connected { state.disconnects += 1 }
            state.connected = false
            state.connectedAtNanos = nil
            state.healthySinceNanos = nil
            state.awaitingFirstTick = true
        }
    }

    // MARK: - Frames

    /// Decodes one WebSocket frame from `source` (received at monotonic `now`, stamped with wall
    /// clock `receiveTimeNanos`) and accounts for every line in it.
    public mutating func receiveFrame(
        _ bytes: some Collection<UInt8>, from source: FeedSource, at now: Int64, receiveTimeNanos: Int64
    ) -> FeedFrameOutcome {
        var outcome = FeedFrameOutcome()
        let forwarding = source == active
        // A source that sends only garbage is not alive in any useful sense: only a line that
        // decoded counts as hearing from it.
        var heartbeats = 0
        TickCodec.decodeFrame(
            bytes, receiveTimeNanos: receiveTimeNanos,
            onTick: { tick in
                outcome.ticksReceived += 1
                if accept(sequence: tick.sequence, from: source, into: &outcome.directives) {
                    if !settings.symbols.isEmpty && !settings.symbols.contains(tick.symbol) {
                        withState(source) { $0.ticksFilteredOut += 1 }
                    } else if forwarding {
                        outcome.forwarded.append(tick)
                    }
                }
            },
            onHeartbeat: { lastSequence, _ in
                heartbeats += 1
                acceptHeartbeat(lastSequence: lastSequence, from: source, into: &outcome.directives)
            },
            onError: { error in
                outcome.decodeErrors.append(error)
            })
        if outcome.ticksReceived + heartbeats > 0 {
            heard(from: source, at: now, into: &outcome.directives)
        }
        let forwardedCount = UInt64(outcome.forwarded.count)
        let received = UInt64(outcome.ticksReceived)
        let errors = UInt64(outcome.decodeErrors.count)
        withState(source) { state in
            state.ticksReceived += received
            state.ticksForwarded += forwardedCount
            state.decodeErrors += errors
            state.heartbeats += UInt64(heartbeats)
        }
        return outcome
    }

    /// A tick that someone else decoded. Returns whether to forward it, with directives appended.
    public mutating func receiveTick(
        _ tick: MarketTick, from source: FeedSource, at now: Int64, into directives: inout [FeedDirective]
    ) -> Bool {
        heard(from: source, at: now, into: &directives)
        withState(source) { $0.ticksReceived += 1 }
        guard accept(sequence: tick.sequence, from: source, into: &directives) else { return false }
        if !settings.symbols.isEmpty && !settings.symbols.contains(tick.symbol) {
            withState(source) { $0.ticksFilteredOut += 1 }
            return false
        }
        guard source == active else { return false }
        withState(source) { $0.ticksForwarded += 1 }
        return true
    }

    public mutating func receiveHeartbeat(
        lastSequence: UInt64, from source: FeedSource, at now: Int64, into directives: inout [FeedDirective]
    ) {
        heard(from: source, at: now, into: &directives)
        withState(source) { $0.heartbeats += 1 }
        acceptHeartbeat(lastSequence: lastSequence, from: source, into: &directives)
    }

    private mutating func heard(from source: FeedSource, at now: Int64, into directives: inout [FeedDirective]) {
        let staleAfter = settings.staleAfterNanos
        let recovered = withState(source) { state -> Bool in
            // A silence longer than staleAfter between two checks still restarts the health clock.
            if let last = state.lastHeardNanos, now - last >= staleAfter { state.healthySinceNanos = nil }
            if !state.connected {
                // Frames can only come over a connection; the shell reported them out of order.
                state.connected = true
                state.connectedAtNanos = now
                state.connects += 1
            }
            state.lastHeardNanos = now
            if state.healthySinceNanos == nil { state.healthySinceNanos = now }
            guard state.reportedUnhealthy else { return false }
            state.reportedUnhealthy = false
            return true
        }
        if recovered {
            directives.append(.recovered(source: source))
            reportedNoHealthySource = false
        }
    }

    /// Sequence bookkeeping for one tick; false means drop it.
    private mutating func accept(sequence: UInt64, from source: FeedSource, into directives: inout [FeedDirective])
        -> Bool
    {
        withState(source) { state in
            let last = state.lastSequence
            if state.awaitingFirstTick {
                state.awaitingFirstTick = false
                if last != 0 && sequence <= last {
                    state.sequenceResets += 1
                    state.lastSequence = sequence
                    directives.append(.sequenceReset(source: source, lastSequence: last, newSequence: sequence))
                    return true
                }
            }
            if sequence <= last {
                state.duplicatesDropped += 1
                return false
            }
            // The very first tick of a source may start anywhere: we joined a running stream.
            if last != 0 && sequence > last + 1 {
                state.gaps &+= 1
                state.missedTicks = Self.saturatingAdd(state.missedTicks, sequence - last - 1)
                directives.append(.gapDetected(source: source, from: last + 1, to: sequence - 1))
            }
            state.lastSequence = sequence
            return true
        }
    }

    /// A heartbeat says which tick the source sent last: if we have not seen it, ticks were lost
    /// even though nothing arrived to show a jump.
    private mutating func acceptHeartbeat(
        lastSequence: UInt64, from source: FeedSource, into directives: inout [FeedDirective]
    ) {
        withState(source) { state in
            let last = state.lastSequence
            if state.awaitingFirstTick {
                // The first word on a new connection sets the baseline; a reset shows on the next tick.
                if last != 0 && lastSequence < last {
                    state.sequenceResets += 1
                    state.lastSequence = lastSequence
                    state.awaitingFirstTick = false
                    directives.append(
                        .sequenceReset(source: source, lastSequence: last, newSequence: lastSequence))
                    return
                }
            }
            guard lastSequence > last else { return }
            if last != 0 {
                state.gaps &+= 1
                state.missedTicks = Self.saturatingAdd(state.missedTicks, lastSequence - last)
                directives.append(.gapDetected(source: source, from: last + 1, to: lastSequence))
            }
            state.lastSequence = lastSequence
            state.awaitingFirstTick = false
        }
    }

    // MARK: - Periodic check

    /// Notices sources that fell silent and switches the active source if needed. Call it every
    /// few tens of milliseconds: a source is noticed stale at most one interval after `staleAfter`.
    public mutating func check(now: Int64) -> [FeedDirective] {
        var directives: [FeedDirective] = []
        for source in FeedSource.allCases where source == .primary || settings.hasBackup {
            let health = health(of: source, at: now)
            if health == .stale || health == .disconnected {
                let silent = silence(of: source, at: now)
                let newlyUnhealthy = withState(source) { state -> Bool in
                    state.healthySinceNanos = nil
                    guard !state.reportedUnhealthy else { return false }
                    state.reportedUnhealthy = true
                    return true
                }
                if newlyUnhealthy && health == .stale {
                    directives.append(.becameStale(source: source, silentNanos: silent))
                }
            }
        }
        decideActive(at: now, into: &directives)
        return directives
    }

    private mutating func decideActive(at now: Int64, into directives: inout [FeedDirective]) {
        guard settings.hasBackup else {
            reportIfNothingHealthy(at: now, into: &directives)
            return
        }
        let activeHealth = health(of: active, at: now)
        let otherHealth = health(of: active.other, at: now)
        if activeHealth == .stale || activeHealth == .disconnected {
            if otherHealth == .healthy {
                let reason: FeedSwitchReason =
                    activeHealth == .stale ? .stale(silentNanos: silence(of: active, at: now)) : .disconnected
                switchActive(to: active.other, reason: reason, into: &directives)
                return
            }
        } else if active == .backup, health(of: .primary, at: now) == .healthy,
            let since = primary.healthySinceNanos, now - since >= settings.recoverAfterNanos
        {
            switchActive(to: .primary, reason: .primaryRecovered, into: &directives)
            return
        }
        reportIfNothingHealthy(at: now, into: &directives)
    }

    private mutating func reportIfNothingHealthy(at now: Int64, into directives: inout [FeedDirective]) {
        let sources: [FeedSource] = settings.hasBackup ? [.primary, .backup] : [.primary]
        let anyUsable = sources.contains { source in
            let health = health(of: source, at: now)
            return health == .healthy || health == .pending
        }
        if anyUsable {
            reportedNoHealthySource = false
        } else if !reportedNoHealthySource {
            reportedNoHealthySource = true
            directives.append(.noHealthySource(active: active))
        }
    }

    private mutating func switchActive(
        to source: FeedSource, reason: FeedSwitchReason, into directives: inout [FeedDirective]
    ) {
        let previous = active
        active = source
        switches += 1
        reportedNoHealthySource = false
        directives.append(.switched(from: previous, to: source, reason: reason))
    }
}

extension FeedMonitor {
    /// A source can claim any sequence; repeated jumps near 2^64 must not trap the replica.
    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
