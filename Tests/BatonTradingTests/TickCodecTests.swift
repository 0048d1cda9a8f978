import BatonMarketData
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
}
