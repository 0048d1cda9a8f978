import BatonMarketData
import Testing

@testable import BatonFeed

private let ms: Int64 = 1_000_000

/// Frames in the wire format, built with the real encoder.
enum Frames {
    static func trades(_ sequences: some Sequence<UInt64>, symbol: String = "AAPL") -> [UInt8] {
        var bytes: [UInt8] = []
        for sequence in sequences {
            TickCodec.appendTrade(tick(sequence, symbol: symbol), to: &bytes)
        }
        return bytes
    }

    static func heartbeat(_ lastSequence: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        TickCodec.appendHeartbeat(lastSequence: lastSequence, exchangeTimeNanos: 1, to: &bytes)
        return bytes
    }

    static func tick(_ sequence: UInt64, symbol: String = "AAPL") -> MarketTick {
        MarketTick(
            sequence: sequence, symbol: symbol, price: 1_872_500, size: 100, bid: 1_872_400, ask: 1_872_600,
            exchangeTimeNanos: 1_767_225_600_000_000_000 + Int64(sequence))
    }
}

/// A monitor with both sources connected at t=0 and heard from once.
private func connectedMonitor(
    staleAfter: Int64 = 500 * ms, recoverAfter: Int64 = 2_000 * ms, symbols: Set<String> = []
) -> FeedMonitor {
    var monitor = FeedMonitor(
        settings: FeedMonitorSettings(staleAfterNanos: staleAfter, recoverAfterNanos: recoverAfter, symbols: symbols),
        startedAt: 0)
    _ = monitor.sourceConnected(.primary, at: 0)
    _ = monitor.sourceConnected(.backup, at: 0)
    return monitor
}

private func switches(_ directives: [FeedDirective]) -> [FeedDirective] {
    directives.filter { if case .switched = $0 { true } else { false } }
}

@Suite struct FeedMonitorTests {
    /// A source may claim any sequence: jumps of nearly 10^19, repeated across sequence resets,
    /// saturate the missed count instead of trapping every replica that reads the source.
    @Test func repeatedHugeJumpsSaturateTheMissedCount() {
        var monitor = connectedMonitor()
        func trade(_ sequence: UInt64) -> [UInt8] { Array("T,\(sequence),AAPL,187.25,100,187.24,187.26,1\n".utf8) }
        let huge: UInt64 = 9_999_999_999_999_999_999
        var at: Int64 = 1
        for _ in 0..<3 {
            _ = monitor.receiveFrame(trade(1), from: .primary, at: at * ms, receiveTimeNanos: at)
            _ = monitor.receiveFrame(trade(huge), from: .primary, at: (at + 1) * ms, receiveTimeNanos: at + 1)
            // The source restarts its sequence on a new connection.
            _ = monitor.sourceDisconnected(.primary, at: (at + 2) * ms, reason: "test")
            _ = monitor.sourceConnected(.primary, at: (at + 3) * ms)
            at += 4
        }
        #expect(monitor.primary.gaps == 3)
        #expect(monitor.primary.missedTicks == UInt64.max)
    }

    @Test func forwardsOnlyTheActiveSourcesTicksInOrder() {
        var monitor = connectedMonitor()
        let primary = monitor.receiveFrame(Frames.trades(1...3), from: .primary, at: 1 * ms, receiveTimeNanos: 42)
        let backup = monitor.receiveFrame(Frames.trades(7...9), from: .backup, at: 1 * ms, receiveTimeNanos: 43)
        #expect(primary.forwarded.map(\.sequence) == [1, 2, 3])
        #expect(primary.forwarded.allSatisfy { $0.receiveTimeNanos == 42 })
        #expect(backup.forwarded.isEmpty)
        #expect(backup.ticksReceived == 3)
        #expect(monitor.backup.ticksReceived == 3)
        #expect(monitor.backup.ticksForwarded == 0)
        #expect(monitor.primary.ticksForwarded == 3)
        #expect(monitor.backup.lastSequence == 9)
    }

    @Test func sequenceJumpIsAGapWithItsRange() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades(1...3), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        let outcome = monitor.receiveFrame(Frames.trades([7, 8]), from: .primary, at: 2 * ms, receiveTimeNanos: 0)
        #expect(outcome.directives == [.gapDetected(source: .primary, from: 4, to: 6)])
        #expect(outcome.forwarded.map(\.sequence) == [7, 8])
        #expect(monitor.primary.gaps == 1)
        #expect(monitor.primary.missedTicks == 3)
    }

    @Test func heartbeatAheadOfTheLastTickIsAGap() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades(1...2), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        let quiet = monitor.receiveFrame(Frames.heartbeat(2), from: .primary, at: 2 * ms, receiveTimeNanos: 0)
        #expect(quiet.directives.isEmpty)
        let lost = monitor.receiveFrame(Frames.heartbeat(5), from: .primary, at: 3 * ms, receiveTimeNanos: 0)
        #expect(lost.directives == [.gapDetected(source: .primary, from: 3, to: 5)])
        // The gap is not reported a second time when the next tick follows the heartbeat.
        let next = monitor.receiveFrame(Frames.trades([6]), from: .primary, at: 4 * ms, receiveTimeNanos: 0)
        #expect(next.directives.isEmpty)
        #expect(next.forwarded.map(\.sequence) == [6])
    }

    @Test func duplicatesAndOutOfOrderTicksAreDroppedAndCounted() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades(1...5), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        let outcome = monitor.receiveFrame(
            Frames.trades([4, 5, 3, 6]), from: .primary, at: 2 * ms, receiveTimeNanos: 0)
        #expect(outcome.forwarded.map(\.sequence) == [6])
        #expect(outcome.directives.isEmpty)
        #expect(monitor.primary.duplicatesDropped == 3)
        #expect(monitor.primary.lastSequence == 6)
    }

    @Test func malformedLineIsReportedAndTheRestOfTheFrameForwarded() {
        var monitor = connectedMonitor()
        var frame = Frames.trades(1...2)
        frame += Array("T,3,AAPL,not-a-price,1,1,1,1\n".utf8)
        frame += Frames.trades(3...4)
        let outcome = monitor.receiveFrame(frame, from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        #expect(outcome.forwarded.map(\.sequence) == [1, 2, 3, 4])
        #expect(outcome.decodeErrors.count == 1)
        #expect(outcome.decodeErrors.first?.line == 3)
        #expect(monitor.primary.decodeErrors == 1)
    }

    @Test func otherSymbolsAreFilteredButStillCountForGaps() {
        var monitor = connectedMonitor(symbols: ["AAPL"])
        var frame = Frames.trades([1], symbol: "AAPL")
        frame += Frames.trades([2], symbol: "MSFT")
        frame += Frames.trades([3], symbol: "AAPL")
        let outcome = monitor.receiveFrame(frame, from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        #expect(outcome.forwarded.map(\.sequence) == [1, 3])
        #expect(outcome.directives.isEmpty)
        #expect(monitor.primary.ticksFilteredOut == 1)
    }

    @Test func stalePrimarySwitchesToAHealthyBackup() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades([1]), from: .primary, at: 0, receiveTimeNanos: 0)
        for t in stride(from: Int64(0), through: 600 * ms, by: Int(50 * ms)) {
            _ = monitor.receiveFrame(Frames.heartbeat(0), from: .backup, at: t, receiveTimeNanos: 0)
        }
        #expect(switches(monitor.check(now: 450 * ms)).isEmpty)
        #expect(monitor.active == .primary)
        let directives = monitor.check(now: 550 * ms)
        #expect(directives.contains(.becameStale(source: .primary, silentNanos: 550 * ms)))
        #expect(switches(directives) == [.switched(from: .primary, to: .backup, reason: .stale(silentNanos: 550 * ms))])
        #expect(monitor.active == .backup)
        // Now the backup's ticks go downstream and the primary's do not.
        let backup = monitor.receiveFrame(Frames.trades([10]), from: .backup, at: 560 * ms, receiveTimeNanos: 0)
        #expect(backup.forwarded.map(\.sequence) == [10])
    }

    @Test func disconnectedPrimarySwitchesAtOnce() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.heartbeat(0), from: .primary, at: 10 * ms, receiveTimeNanos: 0)
        _ = monitor.receiveFrame(Frames.heartbeat(0), from: .backup, at: 10 * ms, receiveTimeNanos: 0)
        let directives = monitor.sourceDisconnected(.primary, at: 20 * ms, reason: "reset")
        #expect(switches(directives) == [.switched(from: .primary, to: .backup, reason: .disconnected)])
    }

    @Test func goesBackToThePrimaryOnlyAfterRecoverAfterOfHealth() {
        var monitor = connectedMonitor()
        var t: Int64 = 0
        func beat(_ sources: [FeedSource]) {
            for source in sources {
                _ = monitor.receiveFrame(Frames.heartbeat(0), from: source, at: t, receiveTimeNanos: 0)
            }
        }
        beat([.primary, .backup])
        // Primary silent for 600 ms: switch to backup.
        while t < 600 * ms {
            t += 50 * ms
            beat([.backup])
            _ = monitor.check(now: t)
        }
        #expect(monitor.active == .backup)
        // Primary resumes at 650 ms; it must stay on the backup until 650 + 2000 ms.
        var switchedBackAt: Int64?
        while t < 3_000 * ms {
            t += 50 * ms
            beat([.primary, .backup])
            let directives = monitor.check(now: t)
            if switchedBackAt == nil, !switches(directives).isEmpty {
                switchedBackAt = t
                #expect(switches(directives) == [.switched(from: .backup, to: .primary, reason: .primaryRecovered)])
            }
        }
        #expect(switchedBackAt == 2_650 * ms)
        #expect(monitor.active == .primary)
        #expect(monitor.switches == 2)
    }

    @Test func aFlappingPrimaryDoesNotDragTheFeedBack() {
        var monitor = connectedMonitor()
        var t: Int64 = 0
        var primaryTalks = true
        var switchCount = 0
        // The primary alternates 1 s of silence and 1 s of heartbeats for 10 s; the backup is steady.
        while t < 10_000 * ms {
            if (t / (1_000 * ms)) % 2 == 1 { primaryTalks = true } else { primaryTalks = t < 100 * ms }
            if primaryTalks {
                _ = monitor.receiveFrame(Frames.heartbeat(0), from: .primary, at: t, receiveTimeNanos: 0)
            }
            _ = monitor.receiveFrame(Frames.heartbeat(0), from: .backup, at: t, receiveTimeNanos: 0)
            switchCount += switches(monitor.check(now: t)).count
            t += 50 * ms
        }
        #expect(switchCount == 1)
        #expect(monitor.active == .backup)
    }

    @Test func bothStaleStaysOnTheActiveSourceAndReportsOnce() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades([1]), from: .primary, at: 0, receiveTimeNanos: 0)
        _ = monitor.receiveFrame(Frames.trades([1]), from: .backup, at: 0, receiveTimeNanos: 0)
        let first = monitor.check(now: 600 * ms)
        #expect(switches(first).isEmpty)
        #expect(first.contains(.becameStale(source: .primary, silentNanos: 600 * ms)))
        #expect(first.contains(.becameStale(source: .backup, silentNanos: 600 * ms)))
        #expect(first.contains(.noHealthySource(active: .primary)))
        let second = monitor.check(now: 700 * ms)
        #expect(second.isEmpty)
        #expect(monitor.active == .primary)
        // The backup wakes up first: the feed moves to it; the primary is recovered later.
        let backup = monitor.receiveFrame(Frames.trades([2]), from: .backup, at: 710 * ms, receiveTimeNanos: 0)
        #expect(backup.directives == [.recovered(source: .backup)])
        #expect(
            switches(monitor.check(now: 720 * ms)) == [
                .switched(from: .primary, to: .backup, reason: .stale(silentNanos: 720 * ms))
            ])
    }

    @Test func aBackupThatConnectsFirstDoesNotWinTheStart() {
        var monitor = FeedMonitor(settings: FeedMonitorSettings(), startedAt: 0)
        _ = monitor.sourceConnected(.backup, at: 5 * ms)
        _ = monitor.receiveFrame(Frames.trades([1]), from: .backup, at: 6 * ms, receiveTimeNanos: 0)
        #expect(switches(monitor.check(now: 50 * ms)).isEmpty)
        _ = monitor.sourceConnected(.primary, at: 60 * ms)
        let outcome = monitor.receiveFrame(Frames.trades([1]), from: .primary, at: 61 * ms, receiveTimeNanos: 0)
        #expect(outcome.forwarded.count == 1)
        #expect(monitor.active == .primary)
        // But a primary that never shows up is given up on after staleAfter.
        var lonely = FeedMonitor(settings: FeedMonitorSettings(), startedAt: 0)
        _ = lonely.sourceConnected(.backup, at: 5 * ms)
        _ = lonely.receiveFrame(Frames.heartbeat(0), from: .backup, at: 490 * ms, receiveTimeNanos: 0)
        #expect(switches(lonely.check(now: 499 * ms)).isEmpty)
        #expect(
            switches(lonely.check(now: 500 * ms)) == [.switched(from: .primary, to: .backup, reason: .disconnected)])
    }

    @Test func reconnectWithRestartedNumberingIsAResetNotDuplicates() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades(1...100), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        _ = monitor.sourceDisconnected(.primary, at: 2 * ms, reason: "gone")
        _ = monitor.sourceConnected(.primary, at: 3 * ms)
        let outcome = monitor.receiveFrame(Frames.trades(1...3), from: .primary, at: 4 * ms, receiveTimeNanos: 0)
        #expect(outcome.directives.contains(.sequenceReset(source: .primary, lastSequence: 100, newSequence: 1)))
        #expect(outcome.directives.contains(.recovered(source: .primary)))
        #expect(outcome.forwarded.map(\.sequence) == [1, 2, 3])
        #expect(monitor.primary.duplicatesDropped == 0)
    }

    @Test func reconnectThatMissedTicksReportsTheGap() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades(1...10), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        _ = monitor.sourceDisconnected(.primary, at: 2 * ms, reason: "gone")
        _ = monitor.sourceConnected(.primary, at: 3 * ms)
        let outcome = monitor.receiveFrame(Frames.trades(15...16), from: .primary, at: 4 * ms, receiveTimeNanos: 0)
        #expect(outcome.directives.contains(.gapDetected(source: .primary, from: 11, to: 14)))
    }

    @Test func withoutABackupItNeverSwitchesButStillReports() {
        var monitor = FeedMonitor(settings: FeedMonitorSettings(hasBackup: false), startedAt: 0)
        _ = monitor.sourceConnected(.primary, at: 0)
        _ = monitor.receiveFrame(Frames.trades([1]), from: .primary, at: 0, receiveTimeNanos: 0)
        let directives = monitor.check(now: 600 * ms)
        #expect(switches(directives).isEmpty)
        #expect(directives.contains(.becameStale(source: .primary, silentNanos: 600 * ms)))
        #expect(directives.contains(.noHealthySource(active: .primary)))
    }

    @Test func aSourceSendingOnlyGarbageGoesStale() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.heartbeat(0), from: .primary, at: 0, receiveTimeNanos: 0)
        _ = monitor.receiveFrame(Frames.heartbeat(0), from: .backup, at: 0, receiveTimeNanos: 0)
        for t in stride(from: 50 * ms, through: 600 * ms, by: Int(50 * ms)) {
            let garbage = monitor.receiveFrame(Array("garbage\n".utf8), from: .primary, at: t, receiveTimeNanos: 0)
            #expect(garbage.decodeErrors.count == 1)
            _ = monitor.receiveFrame(Frames.heartbeat(0), from: .backup, at: t, receiveTimeNanos: 0)
        }
        #expect(monitor.health(of: .primary, at: 600 * ms) == .stale)
        #expect(switches(monitor.check(now: 600 * ms)).count == 1)
        #expect(monitor.active == .backup)
    }

    @Test func ticksDecodedElsewhereGetTheSameChecks() {
        var monitor = connectedMonitor(symbols: ["AAPL"])
        var directives: [FeedDirective] = []
        #expect(monitor.receiveTick(Frames.tick(1), from: .primary, at: 1 * ms, into: &directives))
        #expect(!monitor.receiveTick(Frames.tick(1), from: .primary, at: 1 * ms, into: &directives))
        #expect(!monitor.receiveTick(Frames.tick(2, symbol: "MSFT"), from: .primary, at: 1 * ms, into: &directives))
        #expect(!monitor.receiveTick(Frames.tick(5), from: .backup, at: 1 * ms, into: &directives))
        monitor.receiveHeartbeat(lastSequence: 4, from: .primary, at: 2 * ms, into: &directives)
        #expect(directives == [.gapDetected(source: .primary, from: 3, to: 4)])
        #expect(monitor.receiveTick(Frames.tick(5), from: .primary, at: 3 * ms, into: &directives))
        #expect(monitor.primary.duplicatesDropped == 1)
        #expect(monitor.primary.ticksForwarded == 2)
    }

    @Test func shutdownIsNotReportedAsAnOutage() {
        var monitor = connectedMonitor()
        _ = monitor.receiveFrame(Frames.trades([1]), from: .primary, at: 1 * ms, receiveTimeNanos: 0)
        monitor.sourceClosedForShutdown(.primary)
        monitor.sourceClosedForShutdown(.backup)
        #expect(!monitor.primary.connected && !monitor.backup.connected)
        #expect(monitor.active == .primary)
        #expect(monitor.switches == 0)
    }

    @Test func backoffDoublesWithJitterWithinBoundsAndResets() {
        var backoff = ReconnectBackoff(.milliseconds(50) ... .seconds(2))
        var generator = SystemRandomNumberGenerator()
        var ceilings: [Int64] = []
        for _ in 0..<10 {
            let delay = backoff.nextDelay(using: &generator).nanoseconds
            #expect(delay >= 25 * ms && delay <= 2_000 * ms)
            ceilings.append(delay)
        }
        // Step n lies in [min·2ⁿ/2, min·2ⁿ] (capped): the first ≤ 50 ms, the tenth ≥ 1 s.
        #expect(ceilings[0] <= 50 * ms)
        #expect(ceilings[9] >= 1_000 * ms)
        backoff.reset()
        #expect(backoff.nextDelay(using: &generator).nanoseconds <= 50 * ms)
    }

    @Test(arguments: [
        ("http://127.0.0.1:9880/feed", "must start with ws:// or wss://"),
        ("ws://:9880/feed", "has no host"),
        ("ws://127.0.0.1:99999/feed", "has port \"99999\""),
        ("ws://127.0.0.1:abc/feed", "has port \"abc\""),
        ("ws://user:pw@127.0.0.1/feed", "must not carry credentials"),
    ])
    func badURLsAreRejectedSayingWhich(url: String, reason: String) {
        do {
            _ = try FeedConfiguration(primaryURL: "ws://127.0.0.1:9880/feed", backupURL: url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.setting == "backup feed URL")
            #expect(error.value == url)
            #expect(error.reason.contains(reason))
        }
    }

    @Test func goodConfigurationIsAccepted() throws {
        let configuration = try FeedConfiguration(
            primaryURL: "ws://127.0.0.1:9880/feed", backupURL: "wss://[::1]:9881/feed", symbols: ["AAPL"])
        #expect(configuration.monitorSettings.hasBackup)
        #expect(throws: FeedConfigurationError.self) {
            try FeedConfiguration(primaryURL: "ws://127.0.0.1:9880/feed", backupURL: "ws://127.0.0.1:9880/feed")
        }
        #expect(throws: FeedConfigurationError.self) {
            try FeedConfiguration(primaryURL: "ws://127.0.0.1:9880/feed", staleAfter: .zero)
        }
    }

    @Test func benchmarkPathForwardsEveryTick() {
        let frames = FeedIngestBenchmark.makeFrames(frames: 10, ticksPerFrame: 50)
        #expect(FeedIngestBenchmark.decodeBenchmark(frames: frames) == 500)
        #expect(FeedIngestBenchmark.decodeBenchmark(frames: frames, symbols: ["AAPL"]) > 0)
    }
}
