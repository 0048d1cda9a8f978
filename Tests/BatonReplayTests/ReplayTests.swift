import BatonDaemon
import BatonFeed
import BatonMarketData
import BatonReplay
import BatonTrading
import BatonVenue
import Foundation
import Logging
import Testing

/// The venue's generated market, written through the real capture and read back, replayed
/// through the live engine's decision code against the venue's matching model.
@Suite struct ReplayTests {
    static func capturedSession() async throws -> [MarketTick] {
        let dir = NSTemporaryDirectory() + "baton-replay-\(UUID().uuidString)"
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir), logger: Logger(label: "test"))
        var generator = TickGenerator(settings: .init(seed: 42, symbols: ["AAPL", "MSFT"], volatilityBps: 8))
        var at: Int64 = 1_796_428_800_000_000_000
        for _ in 0..<4_000 {
            let tick = generator.next(exchangeTimeNanos: at)
            var line: [UInt8] = []
            TickCodec.appendTrade(tick, to: &line)
            line.withUnsafeBufferPointer { capture.offer($0, from: .primary, receivedAtNanos: at) }
            at += 50_000_000
        }
        await capture.drain(final: true)
        return try TickCaptureReader.read(directory: dir).ticks
    }

    static func settings() -> TradingCore.Settings {
        var settings = CanarySettings.base
        settings.strategies = [
            .maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 5, slowWindow: 20, quantity: 100, allowShort: true)),
            .channelBreakout(BreakoutParameters(symbol: "MSFT", lookback: 20, quantity: 50, allowShort: true, limitOffsetBps: 5)),
        ]
        return settings
    }

    static func replay(_ ticks: [MarketTick]) -> (ReplayDesk, ReplayDesk.Summary) {
        var desk = ReplayDesk(
            settings: settings(), venue: MatchingEngine.Settings(seed: 1), startNanos: ticks[0].receiveTimeNanos - 1_000_000_000)
        for tick in ticks { desk.replay(tick) }
        let summary = desk.finish()
        return (desk, summary)
    }

    @Test("a replay trades both strategies through the venue model, its positions are its fills, and it is deterministic")
    func replayIsFaithfulAndDeterministic() async throws {
        let ticks = try await Self.capturedSession()
        #expect(ticks.count == 4_000)
        let (desk, summary) = Self.replay(ticks)
        #expect(summary.phase == "trading")
        #expect(summary.ticks == 4_000 && summary.duplicateTicks == 0)
        #expect(summary.intents > 10 && summary.fills > 0)
        let byStrategy = Dictionary(grouping: desk.decisions.filter { $0.outcome == "intent" }, by: \.strategy)
        #expect(byStrategy["ma-crossover"]?.allSatisfy { $0.kind == .market } == true)
        #expect(byStrategy["channel-breakout"]?.allSatisfy { $0.kind == .limit && $0.timeInForce == .immediateOrCancel } == true)
        for symbol in ["AAPL", "MSFT"] {
            let filled = desk.fills.filter { $0.symbol == symbol }.reduce(Int64(0)) { $0 + ($1.side == .buy ? $1.quantity : -$1.quantity) }
            #expect(summary.symbols[symbol]?.position == filled, "\(symbol)")
        }
        #expect(abs(summary.symbols["AAPL"]?.position ?? 0) <= 100 && abs(summary.symbols["MSFT"]?.position ?? 0) <= 50)
        let (again, againSummary) = Self.replay(ticks)
        #expect(again.decisions == desk.decisions && again.fills == desk.fills && againSummary == summary)
    }

    @Test("leading after a sequence: the ticks up to it only warm the strategies, as on a follower")
    func leadingAfterASequence() async throws {
        let ticks = try await Self.capturedSession()
        let after = ticks[1_999].sequence
        var desk = ReplayDesk(
            settings: Self.settings(), venue: MatchingEngine.Settings(seed: 1), startNanos: ticks[0].receiveTimeNanos - 1_000_000_000,
            leadAfterSequence: after)
        for tick in ticks { desk.replay(tick) }
        let summary = desk.finish()
        #expect(summary.phase == "trading" && summary.ticks == 4_000)
        #expect(summary.intents > 5)
        // Each decision is on a tick past the sequence, or a standing signal of the warm
        // strategies acted on as trading began (a live leader's too: no receive time).
        for decision in desk.decisions {
            #expect(decision.tickSequence > after || decision.tickReceivedNanos == 0, "\(decision)")
        }
        let (full, _) = Self.replay(ticks)
        #expect(full.decisions.contains { $0.tickSequence <= after }, "a leader from the start decides on the first half")
    }

    @Test("a resent tick is dropped as the feed client drops it")
    func duplicatesAreDropped() async throws {
        let ticks = try await Self.capturedSession()
        var doubled: [MarketTick] = []
        for tick in ticks.prefix(500) { doubled += [tick, tick] }
        let (_, summary) = Self.replay(doubled)
        #expect(summary.ticks == 500 && summary.duplicateTicks == 500)
        let (_, single) = Self.replay(Array(ticks.prefix(500)))
        #expect(single.intents == summary.intents && single.fills == summary.fills)
    }
}

enum CanarySettings {
    static let base = TradingCore.Settings(
        node: 1, senderCompID: "BATON", targetCompID: "VENUE", account: "ACC", clOrdIDPrefix: "BTN", strategies: [],
        strategyVersion: "1",
        limits: RiskLimits(maxOrdersPerMinute: 1_000, maxOrdersPerHour: 100_000, maxPosition: 1_000, maxOrderQuantity: 1_000),
        reconciler: .init(answerTimeoutNanos: 200_000_000, attemptsBeforeHalt: 3), maxOrderAgeNanos: 100_000_000,
        ackTimeoutNanos: 250_000_000, sequenceBlock: 1_000_000)
}
