import BatonMarketData
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@testable import BatonFeed

/// A market-data source on 127.0.0.1: a real Hummingbird server that upgrades `/feed` to a
/// WebSocket and streams the tick line format, driven by the test (stream, go silent, send
/// exactly these frames). Its sequence counter outlives connections and restarts, like a venue's.
final class TestFeedSource: Sendable {
    enum Mode: Sendable {
        /// `ticksPerFrame` new ticks every 5 ms.
        case streaming
        /// Heartbeats only, every 5 ms.
        case idle
        /// Nothing at all, connection kept open: what a hung feed handler looks like.
        case silent
    }

    private struct State {
        var mode: Mode
        var queued: [[UInt8]] = []
        var nextSequence: UInt64
        var ticksPerFrame = 5
        var server: Task<Void, any Error>?
        var serviceGroup: ServiceGroup?
        var connections = 0
        /// How long the server sits on a WebSocket upgrade request before accepting it.
        var upgradeDelay: Duration = .zero
    }

    private let state: Mutex<State>
    let symbol: String

    init(mode: Mode, firstSequence: UInt64 = 1, symbol: String = "AAPL") {
        state = Mutex(State(mode: mode, nextSequence: firstSequence))
        self.symbol = symbol
    }

    var connections: Int { state.withLock { $0.connections } }

    func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func setUpgradeDelay(_ delay: Duration) { state.withLock { $0.upgradeDelay = delay } }

    /// Sends `frame` as is (once) on the current or next connection, ahead of anything else.
    func enqueue(_ frame: [UInt8]) { state.withLock { $0.queued.append(frame) } }

    private func nextFrame() -> [UInt8]? {
        state.withLock { state in
            if !state.queued.isEmpty { return state.queued.removeFirst() }
            var frame: [UInt8] = []
            switch state.mode {
            case .streaming:
                for _ in 0..<state.ticksPerFrame {
                    TickCodec.appendTrade(Frames.tick(state.nextSequence, symbol: symbol), to: &frame)
                    state.nextSequence += 1
                }
            case .idle:
                TickCodec.appendHeartbeat(
                    lastSequence: state.nextSequence - 1, exchangeTimeNanos: wallClockNanos(), to: &frame)
            case .silent:
                return nil
            }
            return frame
        }
    }

    /// Starts serving; `port` 0 picks a free one. Returns the bound port.
    @discardableResult
    func start(port: Int = 0) async throws -> Int {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: Router(),
            server: .http1WebSocketUpgrade { request, _, _ in
                guard request.path == "/feed" else { return .dontUpgrade }
                try await Task.sleep(for: self.state.withLock { $0.upgradeDelay })
                return .upgrade([:]) { _, outbound, _ in
                    self.state.withLock { $0.connections += 1 }
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        if let frame = self.nextFrame() {
                            try await outbound.write(.text(String(decoding: frame, as: UTF8.self)))
                        }
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
            },
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? -1)
                portContinuation.finish()
            },
            logger: Logger(label: "test-feed-source")
        )
        // Run under a ServiceGroup so that `stop()` can shut the server down gracefully.
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [app], logger: Logger(label: "test-feed-source")))
        let server = Task {
            defer { portContinuation.finish() }
            try await serviceGroup.run()
        }
        state.withLock {
            $0.server = server
            $0.serviceGroup = serviceGroup
        }
        for await bound in portStream { return bound }
        throw TestFailure("feed source server did not start")
    }

    /// Shuts the server down, closing its connections: gracefully, so that the listener closes
    /// before its accept loop stops. Cancelling a Hummingbird server while a reconnecting client's
    /// connection sits accepted but unserved traps the whole test process ("Deinited
    /// NIOAsyncWriter without calling finish()", swift-nio#2637). Cancels only if the graceful
    /// shutdown has not finished within five seconds.
    func stop() async {
        let (server, serviceGroup) = state.withLock { state in
            defer {
                state.server = nil
                state.serviceGroup = nil
            }
            return (state.server, state.serviceGroup)
        }
        guard let server else { return }
        await serviceGroup?.triggerGracefulShutdown()
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = await server.result
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !finished {
            server.cancel()
            _ = await server.result
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Everything the consumer received, for the test to look at while the client runs.
final class EventLog: Sendable {
    private let events = Mutex<[(at: ContinuousClock.Instant, event: FeedEvent)]>([])

    func append(_ event: FeedEvent) { events.withLock { $0.append((.now, event)) } }

    var all: [FeedEvent] { events.withLock { $0.map(\.event) } }

    func ticks(from source: FeedSource) -> [MarketTick] {
        all.flatMap { event -> [MarketTick] in
            if case .ticks(source, let ticks) = event { return ticks }
            return []
        }
    }

    /// When the first event matching `predicate` arrived.
    func firstTime(where predicate: (FeedEvent) -> Bool) -> ContinuousClock.Instant? {
        events.withLock { $0.first { predicate($0.event) }?.at }
    }
}

/// Polls `condition` every 10 ms; fails the test with `what` if it does not hold within `timeout`.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            throw TestFailure("timed out waiting until \(what)")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Runs a client for the duration of `body`, with every event it delivers collected in a log.
func withFeedClient<T: Sendable>(
    _ configuration: FeedConfiguration, metrics: RecordingMetrics = RecordingMetrics(), capture: TickCapture? = nil,
    _ body: (MarketFeedClient, EventLog) async throws -> T
) async throws -> T {
    var logger = Logger(label: "test-feed-client")
    logger.logLevel = .info
    let client = try MarketFeedClient(configuration: configuration, logger: logger, metricsFactory: metrics, capture: capture)
    let log = EventLog()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        group.addTask {
            for await event in client.events { log.append(event) }
        }
        do {
            let result = try await body(client, log)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

private func isSwitch(from: FeedSource, to: FeedSource) -> (FeedEvent) -> Bool {
    { event in
        if case .sourceSwitched(from, to, _) = event { return true }
        return false
    }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct MarketFeedClientTests {
    @Test func ticksArriveInOrderWithReceiveTimes() async throws {
        let primary = TestFeedSource(mode: .idle)
        let port = try await primary.start()
        primary.enqueue(Frames.trades(1...10))
        primary.enqueue(Frames.trades(11...25))
        primary.enqueue(Frames.trades(26...30))
        let before = wallClockNanos()
        let configuration = try FeedConfiguration(primaryURL: "ws://127.0.0.1:\(port)/feed")
        try await withFeedClient(configuration) { client, log in
            try await waitUntil("30 ticks arrived") { log.ticks(from: .primary).count >= 30 }
            let ticks = log.ticks(from: .primary)
            let after = wallClockNanos()
            #expect(ticks.map(\.sequence) == Array(1...30))
            #expect(ticks.allSatisfy { $0.receiveTimeNanos >= before && $0.receiveTimeNanos <= after })
            #expect(ticks.allSatisfy { $0.symbol == "AAPL" && $0.price == 1_872_500 })
            let status = client.status()
            #expect(status.active == .primary)
            #expect(status.sources.count == 1)
            #expect(status.sources.first?.connected == true)
            #expect(status.sources.first?.lastSequence == 30)
            #expect(status.sources.first?.ticks == 30)
            #expect(status.sources.first?.gaps == 0)
        }
        await primary.stop()
    }

    @Test func malformedLineIsCountedAndTheRestOfTheFrameArrives() async throws {
        let primary = TestFeedSource(mode: .idle)
        let port = try await primary.start()
        var frame = Frames.trades(1...3)
        frame += Array("T,4,AAPL,187.25,100,187.2,187.3\n".utf8)  // one field short
        frame += Array("Q,this is not a market data line\n".utf8)
        frame += Frames.trades(4...6)
        primary.enqueue(frame)
        primary.enqueue(Frames.trades(9...10))  // 7 and 8 never sent: a gap
        let configuration = try FeedConfiguration(primaryURL: "ws://127.0.0.1:\(port)/feed", symbols: ["AAPL"])
        let metrics = RecordingMetrics()
        try await withFeedClient(configuration, metrics: metrics) { client, log in
            try await waitUntil("8 ticks arrived") { log.ticks(from: .primary).count >= 8 }
            #expect(log.ticks(from: .primary).map(\.sequence) == [1, 2, 3, 4, 5, 6, 9, 10])
            #expect(log.all.contains(.gap(source: .primary, from: 7, to: 8)))
            let status = try #require(client.status().sources.first)
            #expect(status.decodeErrors == 2)
            #expect(status.gaps == 1)
            #expect(status.missedTicks == 2)
            // Metrics are updated just after the events are handed over: wait, then check exactly.
            try await waitUntil("the metrics caught up") {
                metrics.value("baton_feed_ticks_total", source: "primary") ?? 0 >= 8
                    && metrics.value("baton_feed_gaps_total", source: "primary") ?? 0 >= 1
                    && metrics.value("baton_feed_decode_errors_total", source: "primary") ?? 0 >= 2
            }
            #expect(metrics.value("baton_feed_decode_errors_total", source: "primary") == 2)
            #expect(metrics.value("baton_feed_gaps_total", source: "primary") == 1)
            #expect(metrics.value("baton_feed_ticks_total", source: "primary") == 8)
        }
        await primary.stop()
    }

    @Test func silentPrimarySwitchesToBackupAndBackAfterRecovery() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let backup = TestFeedSource(mode: .streaming, firstSequence: 1_000_000)
        let primaryPort = try await primary.start()
        let backupPort = try await backup.start()
        let staleAfter = Duration.milliseconds(500)
        let recoverAfter = Duration.seconds(1)
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:\(primaryPort)/feed", backupURL: "ws://127.0.0.1:\(backupPort)/feed",
            staleAfter: staleAfter, recoverAfter: recoverAfter)
        let metrics = RecordingMetrics()
        try await withFeedClient(configuration, metrics: metrics) { client, log in
            try await waitUntil("primary ticks flow") { log.ticks(from: .primary).count >= 20 }
            #expect(log.ticks(from: .backup).isEmpty)
            #expect(metrics.value("baton_feed_source_active", source: "primary") == 1)
            #expect(metrics.value("baton_feed_source_active", source: "backup") == 0)
            try await waitUntil("backup ticks counted") {
                (metrics.value("baton_feed_ticks_total", source: "backup") ?? 0) > 0
            }
            #expect(client.status().sources.last?.ticks ?? 0 > 0)  // the backup is subscribed all along

            let silenced = ContinuousClock.now
            primary.setMode(.silent)
            try await waitUntil("the consumer was told of the switch to the backup") {
                log.firstTime(where: isSwitch(from: .primary, to: .backup)) != nil
            }
            let switched = try #require(log.firstTime(where: isSwitch(from: .primary, to: .backup)))
            let switchDelay = silenced.duration(to: switched)
            #expect(switchDelay >= staleAfter - .milliseconds(60))
            #expect(switchDelay < staleAfter + .milliseconds(700))
            try await waitUntil("backup ticks flow") { log.ticks(from: .backup).count >= 20 }
            try await waitUntil("the switch was counted") { metrics.value("baton_feed_switches_total") == 1 }
            #expect(metrics.value("baton_feed_source_active", source: "primary") == 0)
            #expect(metrics.value("baton_feed_source_active", source: "backup") == 1)
            #expect((metrics.value("baton_feed_staleness_seconds", source: "primary") ?? 0) >= 0.5)
            #expect((metrics.value("baton_feed_staleness_seconds", source: "backup") ?? 1) < 0.5)

            let resumed = ContinuousClock.now
            primary.setMode(.streaming)
            try await waitUntil("the consumer was told of the switch back to the primary") {
                log.firstTime(where: isSwitch(from: .backup, to: .primary)) != nil
            }
            let back = try #require(log.firstTime(where: isSwitch(from: .backup, to: .primary)))
            let recoverDelay = resumed.duration(to: back)
            #expect(recoverDelay >= recoverAfter)
            #expect(recoverDelay < recoverAfter + staleAfter + .milliseconds(700))
            try await waitUntil("primary ticks flow again") {
                log.all.last.map { if case .ticks(.primary, _) = $0 { true } else { false } } ?? false
            }

            // The consumer saw: primary ticks, one switch, backup ticks only, one switch, primary ticks.
            var phase = 0
            for event in log.all {
                switch (phase, event) {
                case (0, .ticks(.primary, _)), (1, .ticks(.backup, _)), (2, .ticks(.primary, _)): break
                case (0, .sourceSwitched(.primary, .backup, _)), (1, .sourceSwitched(.backup, .primary, _)): phase += 1
                default: Issue.record("unexpected event in phase \(phase): \(event)")
                }
            }
            #expect(phase == 2)
            // Each source's ticks reached the consumer at most once and in order.
            for source in FeedSource.allCases {
                let sequences = log.ticks(from: source).map(\.sequence)
                #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 })
            }
            #expect(client.status().switches == 2)
            try await waitUntil("the switch back was counted") { metrics.value("baton_feed_switches_total") == 2 }
            #expect(metrics.value("baton_feed_source_active", source: "primary") == 1)
        }
        await primary.stop()
        await backup.stop()
    }

    @Test func reconnectsWhenThePrimaryComesBackOnTheSamePort() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let backup = TestFeedSource(mode: .streaming, firstSequence: 1_000_000)
        let primaryPort = try await primary.start()
        let backupPort = try await backup.start()
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:\(primaryPort)/feed", backupURL: "ws://127.0.0.1:\(backupPort)/feed",
            recoverAfter: .milliseconds(500), reconnectBackoff: .milliseconds(20) ... .milliseconds(200))
        try await withFeedClient(configuration) { client, log in
            try await waitUntil("primary ticks flow") { log.ticks(from: .primary).count >= 10 }

            await primary.stop()
            try await waitUntil("primary seen down") { client.status().sources.first?.connected == false }
            try await waitUntil("the consumer was told of the switch to the backup") {
                log.firstTime(where: isSwitch(from: .primary, to: .backup)) != nil
            }
            #expect(
                log.all.contains { event in
                    if case .sourceSwitched(.primary, .backup, .disconnected) = event { return true }
                    return false
                })
            // Down for a while: several refused reconnects, none of which may disturb the backup.
            try await Task.sleep(for: .milliseconds(400))
            #expect(client.status().active == .backup)

            try await primary.start(port: primaryPort)
            try await waitUntil("primary reconnected") {
                client.status().sources.first?.connected == true && primary.connections >= 1
            }
            #expect(client.status().sources.first?.reconnects == 1)
            try await waitUntil("the consumer was told of the switch back to the primary") {
                log.firstTime(where: isSwitch(from: .backup, to: .primary)) != nil
            }
            let before = log.ticks(from: .primary).count
            try await waitUntil("primary ticks flow after the reconnect") {
                log.ticks(from: .primary).count > before
            }
        }
        await primary.stop()
        await backup.stop()
    }

    @Test func aConnectionSilentForTooLongIsMadeAgain() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let port = try await primary.start()
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:\(port)/feed", staleAfter: .milliseconds(200),
            reconnectBackoff: .milliseconds(20) ... .milliseconds(100), reconnectWhenSilentFor: .milliseconds(400))
        try await withFeedClient(configuration) { client, log in
            try await waitUntil("ticks flow") { log.ticks(from: .primary).count >= 10 }
            primary.setMode(.silent)
            try await waitUntil("a second connection was made") { primary.connections >= 2 }
            primary.setMode(.streaming)
            let before = log.ticks(from: .primary).count
            try await waitUntil("ticks flow on the new connection") { log.ticks(from: .primary).count > before }
            #expect((client.status().sources.first?.reconnects ?? 0) >= 1)
        }
        await primary.stop()
    }

    @Test func gracefulShutdownStopsTheClientAndEndsTheEventStream() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let port = try await primary.start()
        let client = try MarketFeedClient(
            configuration: FeedConfiguration(primaryURL: "ws://127.0.0.1:\(port)/feed"),
            logger: Logger(label: "test-feed-client"), metricsFactory: RecordingMetrics())
        let group = ServiceGroup(
            configuration: .init(services: [client], logger: Logger(label: "test-service-group")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ticks = 0
            for await event in client.events {
                if case .ticks(_, let batch) = event { ticks += batch.count }
                if ticks >= 20 { break }
            }
            await group.triggerGracefulShutdown()
            try await tasks.next()  // the group's run returned: the client stopped by itself
            var after = client.events.makeAsyncIterator()
            // Whatever was still buffered drains, then the stream ends instead of waiting forever.
            while await after.next() != nil {}
            #expect(client.status().sources.first?.connected == false)
        }
        await primary.stop()
    }

    @Test func aClientBuiltLongBeforeItRunsStillStartsOnThePrimary() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let backup = TestFeedSource(mode: .streaming, firstSequence: 1_000_000)
        let primaryPort = try await primary.start()
        let backupPort = try await backup.start()
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:\(primaryPort)/feed", backupURL: "ws://127.0.0.1:\(backupPort)/feed",
            staleAfter: .milliseconds(200))
        // The backup answers at once, the primary only after 100 ms: within staleAfter of the
        // start, so the primary must still be the one used.
        primary.setUpgradeDelay(.milliseconds(100))
        let client = try MarketFeedClient(
            configuration: configuration, logger: Logger(label: "test-feed-client"), metricsFactory: RecordingMetrics())
        try await Task.sleep(for: .milliseconds(400))  // longer than staleAfter
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            var sources: [FeedSource] = []
            for await event in client.events {
                if case .ticks(let source, _) = event { sources.append(source) }
                if case .sourceSwitched = event { Issue.record("switched at start: \(event)") }
                if sources.count >= 10 { break }
            }
            #expect(sources.allSatisfy { $0 == .primary })
            group.cancelAll()
        }
        await primary.stop()
        await backup.stop()
    }

    @Test func aSlowConsumerIsToldWhatItLost() async throws {
        let primary = TestFeedSource(mode: .streaming)
        let port = try await primary.start()
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:\(port)/feed", eventBufferCapacity: 4)
        let client = try MarketFeedClient(configuration: configuration, logger: Logger(label: "test-feed-client"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            // Nobody reads for a while: the buffer (4 frames) overflows.
            try await waitUntil("ticks were dropped") { client.status().droppedTicks > 0 }
            var iterator = client.events.makeAsyncIterator()
            var buffered = 0
            var overflow: FeedEvent?
            while overflow == nil, let event = await iterator.next() {
                if case .overflow = event { overflow = event } else { buffered += 1 }
            }
            #expect(buffered == 4)
            if case .overflow(let droppedTicks, let droppedSwitches) = overflow {
                #expect(droppedTicks > 0)
                #expect(droppedSwitches == 0)
            } else {
                Issue.record("no overflow event")
            }
            group.cancelAll()
        }
        await primary.stop()
    }
}
