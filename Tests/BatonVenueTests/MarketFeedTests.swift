import BatonMarketData
import Testing

@testable import BatonVenue

@Suite struct TickGeneratorTests {
    let settings = TickGenerator.Settings(
        seed: 42, symbols: ["AAPL", "MSFT", "EURUSD"], startPrices: ["AAPL": 1_872_500, "MSFT": 4_111_000])

    /// Everything but the exchange time.
    func stream(_ settings: TickGenerator.Settings, count: Int, timeBase: Int64) -> [MarketTick] {
        var generator = TickGenerator(settings: settings)
        return (0..<count).map { i in
            var tick = generator.next(exchangeTimeNanos: timeBase + Int64(i))
            tick.exchangeTimeNanos = 0
            return tick
        }
    }

    @Test func theStreamIsAFunctionOfTheSeedOnly() {
        let a = stream(settings, count: 2_000, timeBase: 0)
        let b = stream(settings, count: 2_000, timeBase: 9_999_999)
        #expect(a == b)
        var other = settings
        other.seed = 43
        #expect(stream(other, count: 2_000, timeBase: 0) != a)
    }

    @Test func sequencesCountFromOneAndSymbolsTakeTurns() {
        let ticks = stream(settings, count: 6, timeBase: 0)
        #expect(ticks.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(ticks.map(\.symbol) == ["AAPL", "MSFT", "EURUSD", "AAPL", "MSFT", "EURUSD"])
    }

    @Test func pricesWalkFromTheirStartWithinTheVolatilityAndKeepBidBelowAsk() {
        let ticks = stream(settings, count: 3_000, timeBase: 0)
        var last: [String: Int64] = ["AAPL": 1_872_500, "MSFT": 4_111_000, "EURUSD": 1_000_000]
        var moved = false
        for tick in ticks {
            let previous = last[tick.symbol] ?? 0
            #expect(abs(tick.price - previous) <= max(1, previous * 2 / 10_000))
            #expect(tick.bid < tick.price && tick.price < tick.ask)
            #expect(tick.size > 0)
            if tick.price != previous { moved = true }
            last[tick.symbol] = tick.price
        }
        #expect(moved)
    }

    @Test func ticksRoundTripThroughTheWireFormat() {
        var generator = TickGenerator(settings: settings)
        var frame: [UInt8] = []
        var sent: [MarketTick] = []
        for _ in 0..<20 {
            let tick = generator.next(exchangeTimeNanos: 1_764_000_000_000_000_000)
            sent.append(tick)
            TickCodec.appendTrade(tick, to: &frame)
        }
        var received: [MarketTick] = []
        var errors: [TickDecodingError] = []
        TickCodec.decodeFrame(
            frame, receiveTimeNanos: 0, onTick: { received.append($0) }, onHeartbeat: { _, _ in },
            onError: { errors.append($0) })
        #expect(errors.isEmpty)
        #expect(received == sent)
    }
}

@Suite struct MarketFeedTests {
    func feed(rate: Int) -> MarketFeed {
        MarketFeed(
            settings: MarketFeed.Settings(ticksPerSecond: rate),
            generator: TickGenerator(settings: TickGenerator.Settings(seed: 1, symbols: ["AAPL", "MSFT"])))
    }

    @Test func ticksArePacedToTheRateAndBatchedPerStep() {
        var feed = feed(rate: 50_000)
        var frame: [UInt8] = []
        var seen = 0
        #expect(!feed.step(monotonicNanos: 0, wallNanos: 0, frame: &frame) { _ in seen += 1 })
        #expect(seen == 0)
        #expect(feed.step(monotonicNanos: 1_000_000, wallNanos: 0, frame: &frame) { _ in seen += 1 })
        #expect(seen == 50)  // 50,000/s for 1 ms
        #expect(frame.filter { $0 == UInt8(ascii: "\n") }.count == 50)
        frame.removeAll()
        #expect(feed.step(monotonicNanos: 1_000_000_000, wallNanos: 0, frame: &frame) { _ in seen += 1 })
        #expect(seen == 5_050)  // capped burst per step
        #expect(feed.generator.lastSequence == 5_050)
    }

    @Test func aHeartbeatGoesOutEvery100msWithoutTrades() {
        var feed = feed(rate: 1)  // one tick a second
        var frame: [UInt8] = []
        _ = feed.step(monotonicNanos: 0, wallNanos: 0, frame: &frame) { _ in }
        #expect(!feed.step(monotonicNanos: 50_000_000, wallNanos: 0, frame: &frame) { _ in })
        #expect(feed.step(monotonicNanos: 100_000_000, wallNanos: 7, frame: &frame) { _ in })
        #expect(String(decoding: frame, as: UTF8.self) == "H,0,7\n")
        frame.removeAll()
        #expect(!feed.step(monotonicNanos: 150_000_000, wallNanos: 0, frame: &frame) { _ in })
        #expect(feed.step(monotonicNanos: 1_000_000_000, wallNanos: 9, frame: &frame) { _ in })
        #expect(String(decoding: frame, as: UTF8.self).hasPrefix("T,1,AAPL,"))
    }

    @Test func pauseStopsTicksAndHeartbeatsButTheWalkAndMatcherKeepGoing() {
        var feed = feed(rate: 1_000)
        var frame: [UInt8] = []
        var matched = 0
        _ = feed.step(monotonicNanos: 0, wallNanos: 0, frame: &frame) { _ in }
        feed.pause(forNanos: 2_500_000_000, monotonicNanos: 0)
        for ms in stride(from: Int64(10), through: 2_000, by: 10) {
            #expect(!feed.step(monotonicNanos: ms * 1_000_000, wallNanos: 0, frame: &frame) { _ in matched += 1 })
        }
        #expect(frame.isEmpty)
        #expect(matched == 2_000)
        #expect(feed.generator.lastSequence == 2_000)
        // Sends again once the pause is over; the sequence shows the gap to subscribers.
        #expect(feed.step(monotonicNanos: 2_600_000_000, wallNanos: 0, frame: &frame) { _ in })
        #expect(String(decoding: frame, as: UTF8.self).hasPrefix("T,2001,"))

        frame.removeAll()
        feed.pause(forNanos: 10_000_000_000, monotonicNanos: 2_600_000_000)
        #expect(!feed.step(monotonicNanos: 2_700_000_000, wallNanos: 0, frame: &frame) { _ in })
        feed.resume()
        #expect(feed.step(monotonicNanos: 2_800_000_000, wallNanos: 0, frame: &frame) { _ in })
    }
}
