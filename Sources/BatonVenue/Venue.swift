public import BatonFIX
public import BatonMarketData
import Foundation
public import Logging

/// The venue's shell: owns the FIX core (sessions and matching engine) and the market feed,
/// and carries out what they return. One actor, so the matcher sees every tick in the same
/// order as the feed sends it, and a report's sequence number order is its write order.
public actor Venue {
    /// What a FIX connection's writer task receives.
    public enum FIXOutbound: Sendable {
        case bytes([UInt8])
        case close(reason: String)
    }

    public let configuration: VenueConfiguration
    let logger: Logger
    private(set) var core: VenueCore
    private var feed: MarketFeed
    private var frame: [UInt8] = []
    private var subscribers: [Int: AsyncStream<String>.Continuation] = [:]
    private var nextSubscriberID = 1
    private var fixWriters: [FIXConnectionID: AsyncStream<FIXOutbound>.Continuation] = [:]
    private var nextConnectionID = 1
    private var framesSent = 0
    private var currentDay: Int64?
    private var stateFile: VenueStateFile?

    /// With `restoringState` and a state file named in the configuration, the venue comes back
    /// with the book and sessions the file holds, and appends every change to it.
    public init(configuration: VenueConfiguration, logger: Logger, restoringState: Bool) throws {
        self.configuration = configuration
        self.logger = logger
        let generator = TickGenerator(settings: configuration.tickGeneratorSettings)
        var prices: [String: Int64] = [:]
        for symbol in configuration.symbols { prices[symbol] = generator.price(of: symbol) }
        var coreSettings = VenueCore.Settings(
            compID: configuration.compID, allowedSessions: configuration.sessions,
            orderLatencyMilliseconds: configuration.orderLatencyMilliseconds,
            rejectsStatusRequests: configuration.rejectsStatusRequests, passwords: configuration.passwords,
            sendingTimeToleranceSeconds: configuration.sendingTimeToleranceSeconds)
        coreSettings.resendsApplicationMessages = configuration.resendsApplicationMessages
        var core = VenueCore(
            settings: coreSettings,
            engine: MatchingEngine(settings: configuration.matchingSettings, prices: prices))
        if restoringState, let path = configuration.stateFile {
            let restored = try VenueStateFile.read(path: path)
            core.restoreState(restored)
            stateFile = try VenueStateFile(path: path)
            logger.notice(
                "venue state restored",
                metadata: [
                    "venue.state_file": "\(path)", "venue.records": "\(restored.records)",
                    "venue.orders": "\(restored.orders.count)", "venue.sessions": "\(restored.stores.keys.sorted())",
                ])
        }
        self.core = core
        feed = MarketFeed(
            settings: MarketFeed.Settings(ticksPerSecond: configuration.ticksPerSecond), generator: generator)
        frame.reserveCapacity(64 * 1024)
    }

    /// A venue in memory only.
    public init(configuration: VenueConfiguration, logger: Logger) {
        var memory = configuration
        memory.stateFile = nil
        // Cannot throw without a state file.
        try! self.init(configuration: memory, logger: logger, restoringState: false)
    }

    // MARK: - Clocks

    static func wallNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    static func fixNow() -> FIXTimestamp {
        FIXTimestamp(millisecondsSinceEpoch: wallNanos() / 1_000_000)
    }

    // MARK: - Market feed

    /// Generates the ticks due now, lets the matcher see each, and sends one frame to every
    /// subscriber. Called about once a millisecond.
    public func feedStep() {
        let wall = Self.wallNanos()
        let now = FIXTimestamp(millisecondsSinceEpoch: wall / 1_000_000)
        frame.removeAll(keepingCapacity: true)
        var directives: [VenueCore.Directive] = []
        let ready = feed.step(monotonicNanos: Self.monotonicNanos(), wallNanos: wall, frame: &frame) { tick in
            directives.append(contentsOf: core.marketTick(tick, now: now))
        }
        if core.ordersInGateway > 0 { directives.append(contentsOf: core.releaseOrders(now: now)) }
        carryOut(directives)
        guard ready, !subscribers.isEmpty else { return }
        // Normally one frame per step; a catch-up burst is cut at line ends so that no frame
        // exceeds what a default WebSocket client accepts (16 KiB).
        var start = 0
        while start < frame.count {
            var end = min(frame.count, start + Self.maxFrameBytes)
            if end < frame.count {
                while end > start + 1 && frame[end - 1] != UInt8(ascii: "\n") { end -= 1 }
            }
            broadcast(String(decoding: frame[start..<end], as: UTF8.self))
            start = end
        }
    }

    static let maxFrameBytes = 16_000

    private func broadcast(_ text: String) {
        framesSent += 1
        for (id, subscriber) in subscribers {
            if case .dropped = subscriber.yield(text) {
                // A subscriber that cannot keep up is cut off: it reconnects and sees the gap,
                // which is honest, rather than the venue buffering without bound.
                logger.warning("feed subscriber \(id) is too slow; disconnecting it")
                subscriber.finish()
                subscribers[id] = nil
            }
        }
    }

    public func subscribe() -> (id: Int, frames: AsyncStream<String>) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(4096))
        let id = nextSubscriberID
        nextSubscriberID += 1
        subscribers[id] = continuation
        logger.info("feed subscriber \(id) connected", metadata: ["feed.subscribers": "\(subscribers.count)"])
        return (id, stream)
    }

    public func unsubscribe(_ id: Int) {
        guard let continuation = subscribers.removeValue(forKey: id) else { return }
        continuation.finish()
        logger.info("feed subscriber \(id) left", metadata: ["feed.subscribers": "\(subscribers.count)"])
    }

    /// Stops ticks and heartbeats to subscribers for `seconds`; the market keeps moving.
    public func pauseFeed(seconds: Double) {
        feed.pause(forNanos: Int64(seconds * 1e9), monotonicNanos: Self.monotonicNanos())
        logger.notice("feed paused for \(seconds) s")
    }

    /// Test hook: sends `line` to every feed subscriber as it is (a hostile or broken line).
    public func injectFeedLine(_ line: String) {
        logger.notice("injecting a raw feed line", metadata: ["feed.line": "\(line.prefix(200))"])
        broadcast(line.hasSuffix("\n") ? line : line + "\n")
    }

    /// Test hook: sends an application message of the caller's making on `session` (a hostile
    /// ExecutionReport, say), through the session layer like any report.
    public func injectMessage(_ message: FIXMessage, to session: String) {
        logger.notice("injecting a FIX message", metadata: ["fix.session": "\(session)", "fix": "\(message)"])
        carryOut(core.inject(message, to: session, now: Self.fixNow()))
    }

    /// Test hook: stop (or resume) answering OrderStatusRequests while sessions stay up.
    public func setIgnoresStatusRequests(_ ignores: Bool) {
        core.ignoresStatusRequests = ignores
        logger.notice(ignores ? "status requests are ignored from now on" : "status requests are answered again")
    }

    public func resumeFeed() {
        feed.resume()
        logger.notice("feed resumed")
    }

    // MARK: - FIX

    /// Drives session timers, and expires DAY orders when the UTC day changes.
    public func fixTimerTick() {
        let now = Self.fixNow()
        var directives = core.timerTick(now: now)
        let day = now.millisecondsSinceEpoch / 86_400_000
        if let currentDay, day != currentDay { directives += core.endOfDay(now: now) }
        currentDay = day
        carryOut(directives)
    }

    public func fixConnectionOpened(writer: AsyncStream<FIXOutbound>.Continuation, remote: String) -> FIXConnectionID {
        let id = nextConnectionID
        nextConnectionID += 1
        fixWriters[id] = writer
        core.connectionOpened(id)
        logger.info("FIX connection \(id) from \(remote)")
        return id
    }

    public func fixBytesReceived(_ id: FIXConnectionID, _ bytes: [UInt8]) {
        carryOut(core.bytesReceived(id, bytes, now: Self.fixNow()))
    }

    public func fixConnectionClosed(_ id: FIXConnectionID) {
        fixWriters.removeValue(forKey: id)?.finish()
        carryOut(core.connectionClosed(id, now: Self.fixNow()))
    }

    /// Sends Logout to every logged-on session; each disconnects when its counterparty answers
    /// (or after the logout timeout).
    public func logoutAllFIXSessions(text: String) {
        carryOut(core.logoutAll(text: text, now: Self.fixNow()))
    }

    public var fixConnectionCount: Int { fixWriters.count }

    public func closeAllFIXConnections(reason: String) {
        for (id, writer) in fixWriters {
            writer.yield(.close(reason: reason))
            writer.finish()
            carryOut(core.connectionClosed(id, now: Self.fixNow()))
        }
        fixWriters = [:]
    }

    private func carryOut(_ directives: [VenueCore.Directive]) {
        // What changed is on disk before anything about it is written to a counterparty.
        if let stateFile {
            do {
                try stateFile.append(core.takeStateChanges())
            } catch {
                // A broker that cannot keep its book stops rather than acknowledge what a restart
                // would forget.
                logger.critical("venue state file write failed; stopping", metadata: ["error": "\(error)"])
                FileHandle.standardError.write(Data("baton-venue: \(error)\n".utf8))
                exit(74)
            }
        }
        for directive in directives {
            switch directive {
            case .write(let id, let bytes):
                fixWriters[id]?.yield(.bytes(bytes))
            case .close(let id, let reason):
                if let writer = fixWriters.removeValue(forKey: id) {
                    writer.yield(.close(reason: reason))
                    writer.finish()
                }
            case .log(let level, let text):
                switch level {
                case .debug: logger.debug("\(text)")
                case .info: logger.info("\(text)")
                case .notice: logger.notice("\(text)")
                case .warning: logger.warning("\(text)")
                }
            }
        }
    }

    // MARK: - Inspection

    public var orders: [VenueOrder] { core.engine.orders }
    public var duplicates: [DuplicateOrderAttempt] { core.engine.duplicates }
    public var refusals: [RefusedOrder] { core.engine.refusals }

    public func statistics() -> VenueStatistics {
        let engine = core.engine
        return VenueStatistics(
            orders: engine.totals.orders, duplicateAttempts: engine.totals.duplicateAttempts,
            staleOrders: engine.totals.staleOrders,
            executions: engine.totals.executions, fills: engine.totals.fills,
            filledQuantity: VenueDecimal.string(engine.totals.filledQuantity),
            positions: engine.positions.mapValues(VenueDecimal.string),
            sessions: core.sessionCounters.mapValues { counters in
                VenueStatistics.Session(
                    logons: counters.logons, messagesIn: counters.messagesIn, messagesOut: counters.messagesOut,
                    orders: counters.orders, ordersSinceLogon: counters.ordersSinceLogon,
                    statusRequests: counters.statusRequests, massStatusRequests: counters.massStatusRequests,
                    cancelRequests: counters.cancelRequests, rejects: counters.rejects)
            },
            feed: VenueStatistics.Feed(
                lastSequence: feed.generator.lastSequence, subscribers: subscribers.count, framesSent: framesSent,
                paused: feed.isPaused(monotonicNanos: Self.monotonicNanos()),
                prices: Dictionary(
                    uniqueKeysWithValues: configuration.symbols.map {
                        ($0, VenueDecimal.string(core.engine.price(of: $0) ?? 0))
                    })))
    }
}

/// `GET /stats`.
public struct VenueStatistics: Codable, Hashable, Sendable {
    public struct Session: Codable, Hashable, Sendable {
        public var logons: Int
        public var messagesIn: Int
        public var messagesOut: Int
        public var orders: Int
        /// Orders since the latest Logon of the session.
        public var ordersSinceLogon: Int
        public var statusRequests: Int
        public var massStatusRequests: Int
        public var cancelRequests: Int
        public var rejects: Int
    }

    public struct Feed: Codable, Hashable, Sendable {
        public var lastSequence: UInt64
        public var subscribers: Int
        public var framesSent: Int
        public var paused: Bool
        public var prices: [String: String]
    }

    public var orders: Int
    public var duplicateAttempts: Int
    /// NewOrderSingles refused as stale (SendingTime older than --max-order-age-ms).
    public var staleOrders: Int
    public var executions: Int
    public var fills: Int
    public var filledQuantity: String
    /// Net filled position per symbol for the account: buys minus sells.
    public var positions: [String: String]
    public var sessions: [String: Session]
    public var feed: Feed
}
