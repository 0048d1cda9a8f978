import BatonMarketData
import BatonTrading
import Testing

@Suite struct TickCodecTests {
    @Test func tradeAndHeartbeatRoundTrip() {
        let tick = MarketTick(
            sequence: 42, symbol: "AAPL", price: 1_872_500, size: 300, bid: 1_872_400, ask: 1_872_600,
            exchangeTimeNanos: 1_764_000_000_123_456_789)
        var frame: [UInt8] = []
        TickCodec.appendTrade(tick, to: &frame)
        TickCodec.appendHeartbeat(lastSequence: 42, exchangeTimeNanos: 7, to: &frame)
        #expect(String(decoding: frame, as: UTF8.self) == "T,42,AAPL,187.25,300,187.24,187.26,1764000000123456789\nH,42,7\n")
        var ticks: [MarketTick] = []
        var beats: [(UInt64, Int64)] = []
        var errors: [TickDecodingError] = []
        TickCodec.decodeFrame(
            frame, receiveTimeNanos: 99, onTick: { ticks.append($0) }, onHeartbeat: { beats.append(($0, $1)) },
            onError: { errors.append($0) })
        var expected = tick
        expected.receiveTimeNanos = 99
        #expect(ticks == [expected])
        #expect(beats.count == 1 && beats[0] == (42, 7))
        #expect(errors.isEmpty)
    }

    @Test func malformedLinesAreReportedAndTheRestDecodes() {
        let text = "T,1,AAPL,10,1,9.9,10.1,5\nT,2,AAPL,abc,1,9,10,5\nX,3\nT,3,AAPL,10.12345,1,9,10,5\nT,4,MSFT,1.5,2,1.4,1.6,6"
        var ticks: [MarketTick] = []
        var errors: [TickDecodingError] = []
        TickCodec.decodeFrame(
            Array(text.utf8), receiveTimeNanos: 0, onTick: { ticks.append($0) }, onHeartbeat: { _, _ in },
            onError: { errors.append($0) })
        #expect(ticks.map(\.sequence) == [1, 4])
        #expect(ticks.last?.price == 15_000)
        #expect(errors.map(\.line) == [2, 3, 4])
        #expect(errors[0].reason == "bad price")
        #expect(errors[2].reason == "bad price", "five fractional digits would be rounded, so they are refused")
    }

    @Test func pricesFormatAndParse() {
        #expect(TickCodec.formatPrice(1_000_000) == "100")
        #expect(TickCodec.formatPrice(1_000_500) == "100.05")
        #expect(TickCodec.formatPrice(-5) == "-0.0005")
        #expect(TickCodec.parsePrice("100.05") == 1_000_500)
        #expect(TickCodec.parsePrice("1.") == 10_000)
        #expect(TickCodec.parsePrice("") == nil)
        #expect(TickCodec.parsePrice("1.2.3") == nil)
    }

    /// Every replica reads the same line: one that overflows the price arithmetic must be a
    /// decode error on that line, never a trap (issue 10).
    @Test func pricesThatWouldOverflowAreRefusedOnTheirLine() {
        let text = "T,1,AAPL,999999999999999,1,1,1,0\nT,2,AAPL,1,1,-999999999999999,1,0\nT,3,AAPL,1000000000,1,1,1,0\n"
            + "T,4,AAPL,1000000000.0001,1,1,1,0\nT,5,AAPL,10,1,9,11,0"
        var ticks: [MarketTick] = []
        var errors: [TickDecodingError] = []
        TickCodec.decodeFrame(
            Array(text.utf8), receiveTimeNanos: 0, onTick: { ticks.append($0) }, onHeartbeat: { _, _ in },
            onError: { errors.append($0) })
        #expect(ticks.map(\.sequence) == [3, 5], "the largest price is accepted, the rest decode")
        #expect(ticks.first?.price == TickCodec.maxPriceUnits)
        #expect(errors.map(\.line) == [1, 2, 4])
        #expect(errors.map(\.reason) == ["bad price", "bad bid", "bad price"])
    }
}

@Suite struct HostileValueTests {
    /// The largest prices the feed accepts, over the largest window: the averages' products
    /// leave Int64, and must not trap.
    @Test func theCrossoverCopesWithTheLargestPricesAndWindow() throws {
        var strategy = MovingAverageCrossover(
            parameters: CrossoverParameters(symbol: "AAPL", fastWindow: 9_999, slowWindow: 10_000, threshold: 0, quantity: 1),
            version: "1")
        var signals = 0
        for n in 0..<20_000 {
            let price = n < 10_000 ? TickCodec.maxPriceUnits - 1 : TickCodec.maxPriceUnits
            if strategy.onTick(sequence: UInt64(n + 1), price: price, receivedNanos: 0) != nil { signals += 1 }
        }
        #expect(signals >= 1, "rising prices cross, computed exactly")
    }

    /// A journaled report from before the boundary check, with values that overflow: applying
    /// it records an anomaly on every replica, never a trap (a crash loop on restart).
    @Test func anOutOfRangeReportInTheJournalIsAnAnomalyNotATrap() {
        var state = TradingState()
        state.apply(.orderIntent(intent("AAPL")), term: 1, index: 1)
        let effects = state.apply(
            .execution(
                report("BTN-1-1", exec: "X1", status: "2", last: 100, lastPx: Int64.max / 2, cum: 100, avg: Int64.max / 2)),
            term: 1, index: 2)
        #expect(effects.contains { if case .anomaly = $0 { true } else { false } })
        #expect(state.position("AAPL") == 0)
        // In range but large: products are taken wide, the position and average are exact.
        state.apply(
            .execution(
                report(
                    "BTN-1-1", exec: "X2", status: "2", last: 100, lastPx: TickCodec.maxPriceUnits, cum: 100,
                    avg: TickCodec.maxPriceUnits)), term: 1, index: 3)
        #expect(state.position("AAPL") == 100)
        #expect(state.positions["AAPL"]?.averagePrice == TickCodec.maxPriceUnits)
    }
}
