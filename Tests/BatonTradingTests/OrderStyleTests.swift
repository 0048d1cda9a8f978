import BatonMarketData
import Foundation
import Testing

@testable import BatonTrading

/// The channel breakout's limit orders: the price through the breakout, the time in force on
/// the intent, and journals from before limit orders still reading as market orders.
@Suite struct OrderStyleTests {
    @Test("a limit is the offset through the trade, rounded away from it to the cent")
    func limitPrices() {
        let style = OrderStyle(kind: .limit, limitOffsetBps: 5, timeInForce: .immediateOrCancel)
        // 5 bps of 187.25 is 0.0936...: a buy at most 187.35, a sell at least 187.15.
        #expect(style.limitPrice(side: .buy, price: 1_872_500) == 1_873_500)
        #expect(style.limitPrice(side: .sell, price: 1_872_500) == 1_871_500)
        #expect(OrderStyle(kind: .limit, limitOffsetBps: 0).limitPrice(side: .buy, price: 1_872_550) == 1_872_600)
        #expect(OrderStyle(kind: .limit, limitOffsetBps: 0).limitPrice(side: .sell, price: 1_872_550) == 1_872_500)
        #expect(OrderStyle.market.limitPrice(side: .buy, price: 1_872_500) == nil)
    }

    @Test("the breakout's intents are IOC limits through the breakout price; the crossover's stay market")
    func breakoutPlacesLimitOrders() {
        var desk = CanaryDesk()
        let breakout = StrategySpec.parse(name: "channel-breakout", symbol: "AAPL", parameters: ["lookback": "5", "allow_short": "true"])
        guard case .success(let spec) = breakout else {
            Issue.record("\(breakout)")
            return
        }
        #expect(spec == .channelBreakout(BreakoutParameters(symbol: "AAPL", lookback: 5, allowShort: true, limitOffsetBps: 5, timeInForce: .immediateOrCancel)))
        desk.run(desk.commit(.strategyDeployed(StrategyDeployment(specs: [spec], version: "3", by: "test", reason: "", atNanos: desk.now))))
        for _ in 0..<400 { desk.tick() }
        let intents = desk.intents.filter { $0.signal.strategy == "channel-breakout" }
        #expect(intents.count > 3)
        for intent in intents {
            #expect(intent.kind == .limit && intent.timeInForce == .immediateOrCancel)
            let limit = intent.limitPrice ?? 0
            #expect(intent.side == .buy ? limit > intent.signal.tickPrice : limit < intent.signal.tickPrice)
        }
        #expect(desk.intents.filter { $0.signal.strategy == "ma-crossover" }.allSatisfy { $0.kind == .market && $0.limitPrice == nil })
    }

    @Test("a breakout deployment journaled before limit orders decodes to market orders; a new one round-trips")
    func oldJournalsDecodeAsMarket() throws {
        let old = #"{"channelBreakout":{"_0":{"symbol":"AAPL","lookback":20,"quantity":100,"allowShort":false}}}"#
        let decoded = try JSONDecoder().decode(StrategySpec.self, from: Data(old.utf8))
        guard case .channelBreakout(let parameters) = decoded else {
            Issue.record("\(decoded)")
            return
        }
        #expect(parameters.limitOffsetBps == nil && parameters.orderStyle == .market)
        let new = StrategySpec.channelBreakout(BreakoutParameters(symbol: "AAPL", limitOffsetBps: 7, timeInForce: .goodTillCancel))
        #expect(try JSONDecoder().decode(StrategySpec.self, from: JSONEncoder().encode(new)) == new)
        #expect(StrategySpec.parse(name: "channel-breakout", symbol: "AAPL", parameters: new.parameters) == .success(new))
        let refused = StrategySpec.parse(name: "channel-breakout", symbol: "AAPL", parameters: ["limit_offset_bps": "-1", "time_in_force": "fok"])
        #expect(refused == .failure(StrategyProblems([
            "parameters.limit_offset_bps must be a whole number from 0 to 1000 or 'market', got '-1'",
            "parameters.time_in_force must be ioc, day or gtc, got 'fok'",
        ])))
    }
}
