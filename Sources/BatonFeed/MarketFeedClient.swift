import BatonMarketData
import HummingbirdWSClient
public import Logging
public import Metrics
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps a WebSocket connection to each configured market-data source, runs a `FeedMonitor` over
/// them, and hands the active source's ticks to one consumer through `events`.
///
/// Both sources are subscribed all the time, so a switch costs no connect and no subscribe:
/// the backup's ticks are already arriving, counted and dropped, when the primary goes quiet.
///
/// Why an `AsyncStream` with a bounded buffer rather than a callback: a market feed cannot be
/// slowed down, so a slow consumer must lose data, and it must be told that it did. The stream
/// is filled while the monitor's lock is held, so events keep their order (a switch is never
/// overtaken by the new source's ticks) and no consumer code ever runs under that lock, which
/// lets the consumer call `status()` freely. A full buffer drops the newest events and the
/// next event that fits is `.overflow`, saying how many ticks went missing. Events carry one
/// frame's ticks each, so the hand-over costs one enqueue per frame, not per tick.
public final class MarketFeedClient: Service, Sendable {
    public let configuration: FeedConfiguration
    /// The active source's ticks and the feed's discontinuities, in order, for exactly one
    /// consumer. Finishes when `run()` returns.
    public let events: AsyncStream<FeedEvent>

    private let continuation: AsyncStream<FeedEvent>.Continuation
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let metrics: FeedMetrics
    private let origin: ContinuousClock.Instant
    private let shared: Mutex<Shared>
    /// Where every frame received from either source is recorded, if the replica captures.
    private let capture: TickCapture?

    private struct Shared: Sendable {
        var monitor: FeedMonitor
        var pendingDroppedTicks = 0
        var pendingDroppedSwitches = 0
        var totalDroppedTicks: UInt64 = 0
        var decodeErrorLog = [DecodeErrorLogWindow(), DecodeErrorLogWindow()]
        /// The primary's first connection attempt got past its channel setup (see
        /// `maintainConnection`).
        var primaryAttempted = false
    }

    /// - Parameters:
    ///   - metricsFactory: where the `baton_feed_*` metrics go; the bootstrapped system if nil.
    public init(
        configuration: FeedConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsFactory: (any MetricsFactory)? = nil,
        capture: TickCapture? = nil
    ) throws(FeedConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.capture = capture
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.metrics = FeedMetrics(factory: metricsFactory ?? MetricsSystem.factory)
        self.origin = .now
        (events, continuation) = AsyncStream.makeStream(
            of: FeedEvent.self, bufferingPolicy: .bufferingOldest(configuration.eventBufferCapacity))
        shared = Mutex(Shared(monitor: FeedMonitor(settings: configuration.monitorSettings, startedAt: 0)))
        metrics.source(.primary).active.record(1)
        metrics.source(.backup).active.record(0)
    }

    private var sources: [FeedSource] {
        configuration.backupURL == nil ? [.primary] : [.primary, .backup]
    }

    // MARK: - Service

    /// Connects to every source and keeps going until cancelled or a graceful shutdown.
    public func run() async throws {
        // The sources' grace period to connect runs from here, not from init: the daemon may
        // build the client well before it starts it.
        let startedAt = monotonicNanos()
        shared.withLock { shared in
            shared.monitor = FeedMonitor(settings: configuration.monitorSettings, startedAt: startedAt)
        }
        logger.info(
            "market feed starting",
            metadata: [
                "feed.primary": "\(configuration.primaryURL)",
                "feed.backup": "\(configuration.backupURL ?? "none")",
                "feed.symbols":
                    "\(configuration.symbols.isEmpty ? "all" : configuration.symbols.sorted().joined(separator: " "))",
            ])
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for source in self.sources {
                    group.addTask { await self.maintainConnection(to: source) }
                }
                group.addTask { await self.runChecks() }
            }
        }
        continuation.finish()
        logger.info("market feed stopped")
    }

    /// A snapshot for the admin plane; takes the monitor's lock for a moment.
    public func status() -> FeedStatus {
        let now = monotonicNanos()
        return shared.withLock { shared in
            let monitor = shared.monitor
            return FeedStatus(
                active: monitor.active,
                switches: monitor.switches,
                sources: sources.map { source in
                    let state = monitor.state(of: source)
                    return FeedSourceStatus(
                        source: source,
                        url: configuration.url(of: source) ?? "",
                        health: monitor.health(of: source, at: now),
                        connected: state.connected,
                        lastSequence: state.lastSequence,
                        stalenessMillis: monitor.silence(of: source, at: now) / 1_000_000,
                        ticks: state.ticksReceived,
                        gaps: state.gaps,
                        missedTicks: state.missedTicks,
                        duplicatesDropped: state.duplicatesDropped,
                        decodeErrors: state.decodeErrors,
                        reconnects: state.connects > 0 ? state.connects - 1 : 0)
                },
                droppedTicks: shared.totalDroppedTicks)
        }
    }

    // MARK: - Connections

    private func maintainConnection(to source: FeedSource) async {
        guard let url = configuration.url(of: source) else { return }
        var backoff = ReconnectBackoff(configuration.reconnectBackoff)
        var generator = SystemRandomNumberGenerator()
        var wsLogger = logger
        wsLogger[metadataKey: "feed.source"] = "\(source)"
        let client = WebSocketClient(
            url: url,
            configuration: .init(maxFrameSize: configuration.maxFrameSize),
            eventLoopGroup: eventLoopGroup,
            logger: wsLogger
        ) { inbound, _, _ in
            if source == .primary { self.shared.withLock { $0.primaryAttempted = true } }
            self.connectionOpened(source)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.readFrames(inbound, from: source) }
                group.addTask { try await self.cutWhenSilent(source) }
                try await group.next()
                group.cancelAll()
            }
        }
        if source == .backup {
            // Two first-ever WebSocket channel setups on two event loops at the same instant
            // crashed a replica in the Swift 6.3 runtime (a null metadata pointer in
            // swift_conformsToProtocol under configureUpgradableHTTPClientPipeline, while the
            // other loop ran the same setup). Every replica starts both sources at once, so this
            // was a correlated startup crash; the backup's first dial waits for the primary's
            // first attempt (at most a second), after which the metadata exists.
            for _ in 0..<200 where !Task.isCancelled && !shared.withLock({ $0.primaryAttempted }) {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        while !Task.isCancelled {
            let reason: String
            do {
                if let close = try await client.run() {
                    reason = "closed by the source (\(close.closeCode)\(close.reason.map { ": \($0)" } ?? ""))"
                } else {
                    reason = "connection closed"
                }
            } catch {
                reason = "\(error)"
            }
            if source == .primary { shared.withLock { $0.primaryAttempted = true } }
            if Task.isCancelled { break }
            if connectionClosed(source, reason: reason) { backoff.reset() }
            let delay = backoff.nextDelay(using: &generator)
            logger.debug(
                "market feed reconnect scheduled",
                metadata: ["feed.source": "\(source)", "feed.delay_ms": "\(delay.nanoseconds / 1_000_000)"])
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        shared.withLock { $0.monitor.sourceClosedForShutdown(source) }
    }

    private func readFrames(_ inbound: WebSocketInboundStream, from source: FeedSource) async throws {
        // Fragments of one message, collected until its final frame.
        var fragments: ByteBuffer?
        for try await frame in inbound {
            switch frame.opcode {
            case .text, .binary:
                if frame.fin {
                    receive(frame.data, from: source)
                } else {
                    fragments = frame.data
                }
            case .continuation:
                guard var collected = fragments else { continue }
                var data = frame.data
                guard collected.readableBytes + data.readableBytes <= configuration.maxFrameSize else {
                    throw FeedMessageTooLarge(limit: configuration.maxFrameSize)
                }
                collected.writeBuffer(&data)
                if frame.fin {
                    fragments = nil
                    receive(collected, from: source)
                } else {
                    fragments = collected
                }
            }
        }
    }

    /// A connection that says nothing (no tick, no heartbeat) for long is probably half-open;
    /// the monitor has long since stopped using it, and only a new connection can bring it back.
    private func cutWhenSilent(_ source: FeedSource) async throws {
        let limit = configuration.reconnectWhenSilentFor.nanoseconds
        while true {
            try await Task.sleep(for: configuration.checkInterval)
            let now = monotonicNanos()
            let silent = shared.withLock { shared -> Int64 in
                let state = shared.monitor.state(of: source)
                let since = max(state.lastHeardNanos ?? .min, state.connectedAtNanos ?? now)
                return now - since
            }
            if silent >= limit { throw FeedSourceSilent(silentNanos: silent) }
        }
    }

    private func connectionOpened(_ source: FeedSource) {
        let now = monotonicNanos()
        let directives = shared.withLock { shared in
            let directives = shared.monitor.sourceConnected(source, at: now)
            deliver(directives, into: &shared)
            return directives
        }
        carryOut(directives)
    }

    /// Returns whether the connection had worked for at least `staleAfter`: only then does the
    /// next retry start from the shortest delay again, so a source that accepts and drops at once
    /// is not hammered at the minimum delay.
    private func connectionClosed(_ source: FeedSource, reason: String) -> Bool {
        let now = monotonicNanos()
        let (connectedAt, directives) = shared.withLock { shared in
            let state = shared.monitor.state(of: source)
            let connectedAt = state.connected ? state.connectedAtNanos : nil
            let directives = shared.monitor.sourceDisconnected(source, at: now, reason: reason)
            deliver(directives, into: &shared)
            return (connectedAt, directives)
        }
        if connectedAt == nil {
            logger.debug(
                "market feed connect failed", metadata: ["feed.source": "\(source)", "feed.error": "\(reason)"])
        }
        carryOut(directives)
        return connectedAt.map { now - $0 >= configuration.staleAfter.nanoseconds } ?? false
    }

    // MARK: - Frames

    private func receive(_ frame: ByteBuffer, from source: FeedSource) {
        let now = monotonicNanos()
        let receivedAt = wallClockNanos()
        let (outcome, loggable, suppressed) = frame.withUnsafeReadableBytes { raw in
            let bytes = UnsafeBufferPointer(
                start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count)
            // Before the monitor, outside its lock: the capture keeps what arrived, duplicates
            // and malformed lines included, and its copy never holds up the other source.
            capture?.offer(bytes, from: source, receivedAtNanos: receivedAt)
            return shared.withLock { shared in
                let outcome = shared.monitor.receiveFrame(bytes, from: source, at: now, receiveTimeNanos: receivedAt)
                deliver(outcome.directives, into: &shared)
                if !outcome.forwarded.isEmpty {
                    deliver(.ticks(source: source, outcome.forwarded), ticks: outcome.forwarded.count, into: &shared)
                }
                var loggable = 0
                var suppressed = 0
                if !outcome.decodeErrors.isEmpty {
                    (loggable, suppressed) = shared.decodeErrorLog[source == .primary ? 0 : 1].admit(
                        outcome.decodeErrors.count, at: now)
                }
                return (outcome, loggable, suppressed)
            }
        }
        let sourceMetrics = metrics.source(source)
        if outcome.ticksReceived > 0 { sourceMetrics.ticks.increment(by: outcome.ticksReceived) }
        if !outcome.decodeErrors.isEmpty {
            sourceMetrics.decodeErrors.increment(by: outcome.decodeErrors.count)
            if suppressed > 0 {
                logger.warning(
                    "market data lines not logged (rate limit)",
                    metadata: ["feed.source": "\(source)", "feed.suppressed": "\(suppressed)"])
            }
            for error in outcome.decodeErrors.prefix(loggable) {
                logger.warning(
                    "malformed market data line skipped",
                    metadata: [
                        "feed.source": "\(source)", "feed.line": "\(error.line)", "feed.reason": "\(error.reason)",
                        "feed.text": "\(error.text)",
                    ])
            }
        }
        if !outcome.directives.isEmpty { carryOut(outcome.directives) }
    }

    // MARK: - Periodic check

    private func runChecks() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.checkInterval)
            } catch {
                return
            }
            let now = monotonicNanos()
            let (directives, silences) = shared.withLock { shared in
                let directives = shared.monitor.check(now: now)
                deliver(directives, into: &shared)
                return (directives, sources.map { shared.monitor.silence(of: $0, at: now) })
            }
            for (source, silence) in zip(sources, silences) {
                metrics.source(source).staleness.record(Double(silence) / 1e9)
            }
            if !directives.isEmpty { carryOut(directives) }
        }
    }

    // MARK: - Delivery (called with the lock held)

    private func deliver(_ directives: [FeedDirective], into shared: inout Shared) {
        for directive in directives {
            switch directive {
            case .switched(let from, let to, let reason):
                deliver(.sourceSwitched(from: from, to: to, reason: reason), ticks: 0, into: &shared)
            case .gapDetected(let gapSource, let from, let to) where gapSource == shared.monitor.active:
                deliver(.gap(source: gapSource, from: from, to: to), ticks: 0, into: &shared)
            case .sequenceReset(let resetSource, let last, let new) where resetSource == shared.monitor.active:
                deliver(
                    .sequenceReset(source: resetSource, lastSequence: last, newSequence: new), ticks: 0, into: &shared)
            default:
                break
            }
        }
    }

    private func deliver(_ event: FeedEvent, ticks: Int, into shared: inout Shared) {
        if shared.pendingDroppedTicks > 0 || shared.pendingDroppedSwitches > 0 {
            let notice = FeedEvent.overflow(
                droppedTicks: shared.pendingDroppedTicks, droppedSwitches: shared.pendingDroppedSwitches)
            if case .enqueued = continuation.yield(notice) {
                shared.pendingDroppedTicks = 0
                shared.pendingDroppedSwitches = 0
            } else {
                recordDropped(event, ticks: ticks, into: &shared)
                return
            }
        }
        if case .dropped = continuation.yield(event) {
            recordDropped(event, ticks: ticks, into: &shared)
        }
    }

    private func recordDropped(_ event: FeedEvent, ticks: Int, into shared: inout Shared) {
        shared.pendingDroppedTicks += ticks
        shared.totalDroppedTicks += UInt64(ticks)
        if case .sourceSwitched = event { shared.pendingDroppedSwitches += 1 }
        metrics.droppedTicks.increment(by: ticks)
    }

    // MARK: - Logs and metrics (outside the lock)

    private func carryOut(_ directives: [FeedDirective]) {
        for directive in directives {
            switch directive {
            case .switched(let from, let to, let reason):
                metrics.source(from).active.record(0)
                metrics.source(to).active.record(1)
                metrics.switches.increment()
                logger.warning(
                    "market feed switched source",
                    metadata: ["feed.from": "\(from)", "feed.to": "\(to)", "feed.reason": "\(reason)"])
            case .gapDetected(let source, let from, let to):
                metrics.source(source).gaps.increment()
                logger.warning(
                    "market feed gap",
                    metadata: [
                        "feed.source": "\(source)", "feed.gap_from": "\(from)", "feed.gap_to": "\(to)",
                        "feed.missed": "\(to - from + 1)",
                    ])
            case .sequenceReset(let source, let last, let new):
                logger.warning(
                    "market feed sequence restarted",
                    metadata: [
                        "feed.source": "\(source)", "feed.last_sequence": "\(last)", "feed.new_sequence": "\(new)",
                    ])
            case .becameStale(let source, let silentNanos):
                logger.warning(
                    "market feed source stale",
                    metadata: ["feed.source": "\(source)", "feed.silent_ms": "\(silentNanos / 1_000_000)"])
            case .recovered(let source):
                logger.info("market feed source recovered", metadata: ["feed.source": "\(source)"])
            case .noHealthySource(let active):
                logger.error(
                    "no healthy market feed source; holding on to the active one",
                    metadata: ["feed.active": "\(active)"])
            case .log(.info, let message):
                logger.info("\(message)")
            case .log(.warning, let message):
                logger.warning("\(message)")
            }
        }
    }

    // MARK: - Clocks

    /// Monotonic time for the monitor: staleness must not jump when NTP steps the wall clock.
    private func monotonicNanos() -> Int64 {
        origin.duration(to: .now).nanoseconds
    }
}

/// Wall-clock nanoseconds since the Unix epoch, the tick's receive time (comparable with the
/// venue's exchange time, which a monotonic clock is not).
func wallClockNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

struct FeedMessageTooLarge: Error, CustomStringConvertible {
    var limit: Int
    var description: String { "fragmented message longer than maxFrameSize (\(limit) bytes); reconnecting" }
}

struct FeedSourceSilent: Error, CustomStringConvertible {
    var silentNanos: Int64
    var description: String { "source silent for \(silentNanos / 1_000_000) ms; reconnecting" }
}

/// At most `limit` malformed-line log entries per source per second: a source that sends garbage
/// at feed rate must not drown the log (the counter still counts every one).
struct DecodeErrorLogWindow: Sendable {
    var limit = 10
    var windowStart: Int64 = .min
    var logged = 0
    var suppressed = 0

    /// Of `count` new errors at `now`: how many to log, and how many earlier ones went unlogged
    /// (reported once when a new window opens).
    mutating func admit(_ count: Int, at now: Int64) -> (log: Int, suppressedBefore: Int) {
        var suppressedBefore = 0
        if windowStart == .min || now - windowStart >= 1_000_000_000 {
            suppressedBefore = suppressed
            windowStart = now
            logged = 0
            suppressed = 0
        }
        let log = min(count, max(0, limit - logged))
        logged += log
        suppressed += count - log
        return (log, suppressedBefore)
    }
}

struct FeedMetrics: Sendable {
    struct Source: Sendable {
        let ticks: Counter
        let gaps: Counter
        let decodeErrors: Counter
        let staleness: Gauge
        let active: Gauge
    }

    let primary: Source
    let backup: Source
    let switches: Counter
    let droppedTicks: Counter

    init(factory: any MetricsFactory) {
        func source(_ name: String) -> Source {
            let dimensions = [("source", name)]
            return Source(
                ticks: Counter(label: "baton_feed_ticks_total", dimensions: dimensions, factory: factory),
                gaps: Counter(label: "baton_feed_gaps_total", dimensions: dimensions, factory: factory),
                decodeErrors: Counter(
                    label: "baton_feed_decode_errors_total", dimensions: dimensions, factory: factory),
                staleness: Gauge(label: "baton_feed_staleness_seconds", dimensions: dimensions, factory: factory),
                active: Gauge(label: "baton_feed_source_active", dimensions: dimensions, factory: factory))
        }
        primary = source("primary")
        backup = source("backup")
        switches = Counter(label: "baton_feed_switches_total", factory: factory)
        droppedTicks = Counter(label: "baton_feed_dropped_ticks_total", factory: factory)
    }

    func source(_ source: FeedSource) -> Source {
        source == .primary ? primary : backup
    }
}
