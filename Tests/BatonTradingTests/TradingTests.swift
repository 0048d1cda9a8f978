import BatonMarketData
@testable import BatonTrading
import Testing

func signal(_ symbol: String = "AAPL", _ direction: TargetDirection = .long, target: Int64 = 100, at time: Int64 = 0)
    -> StrategySignal
{
    StrategySignal(
        origin: SignalOrigin(
            strategy: "ma-crossover", strategyVersion: "1", symbol: symbol, direction: direction, tickSequence: 1,
            tickPrice: 1_000_000, tickReceivedNanos: time),
        targetQuantity: target)
}

func intent(_ symbol: String = "AAPL", side: OrderSide = .buy, quantity: Int64 = 100, at time: Int64 = 0) -> OrderIntent {
    OrderIntent(
        signal: signal(symbol, side == .buy ? .long : .flat, target: quantity, at: time).origin, side: side,
        kind: .market, quantity: quantity, limitPrice: nil, timeInForce: .day, riskDecision: "ok", traceID: "t",
        clOrdIDPrefix: "BTN", decidedAtNanos: time)
}

func report(
    _ clOrdID: String, exec: String, type: String = "F", status: String, last: Int64 = 0, lastPx: Int64 = 0, cum: Int64,
    avg: Int64, leaves: Int64 = 0, rej: Int? = nil
) -> ExecutionRecord {
    ExecutionRecord(
        clOrdID: clOrdID, execID: exec, venueOrderID: "V1", execType: type, ordStatus: status, lastQuantity: last,
        lastPrice: lastPx, cumulativeQuantity: cum, averagePrice: avg, leavesQuantity: leaves, ordRejReason: rej,
        text: nil, session: "BATON1", receivedAtNanos: 0)
}

@Suite struct StrategyTests {
    @Test func crossingUpThenDownSignalsLongThenFlat() {
        var strategy = MovingAverageCrossover(parameters: CrossoverParameters(symbol: "AAPL", fastWindow: 2, slowWindow: 4, quantity: 50))
        var signals: [StrategySignal] = []
        let prices: [Int64] = [100, 100, 100, 100, 110, 120, 130, 120, 100, 80, 60]
        for (i, p) in prices.enumerated() {
            if let s = strategy.onTick(sequence: UInt64(i + 1), price: p, receivedNanos: Int64(i)) { signals.append(s) }
        }
        #expect(signals.map(\.origin.direction) == [.long, .flat])
        #expect(signals.map(\.targetQuantity) == [50, 0])
        #expect(signals[0].origin.tickSequence == 5, "the first tick where MA(2) > MA(4)")
    }

    @Test func thresholdHoldsTheRegimeThroughNoise() {
        var strategy = MovingAverageCrossover(
            parameters: CrossoverParameters(symbol: "X", fastWindow: 2, slowWindow: 4, threshold: 50, quantity: 1, allowShort: true))
        var count = 0
        for (i, p) in [1000, 1000, 1000, 1000, 1010, 990, 1010, 990, 1010].enumerated() {
            if strategy.onTick(sequence: UInt64(i), price: Int64(p), receivedNanos: 0) != nil { count += 1 }
        }
        #expect(count == 0)
    }

    @Test func averagesMatchANaiveComputation() {
        var strategy = MovingAverageCrossover(parameters: CrossoverParameters(symbol: "X", fastWindow: 3, slowWindow: 7))
        var prices: [Int64] = []
        var state: UInt64 = 7
        for i in 0..<200 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let p = 1_000_000 + Int64(state >> 50)
            prices.append(p)
            _ = strategy.onTick(sequence: UInt64(i), price: p, receivedNanos: 0)
            if prices.count >= 7 {
                let fast = prices.suffix(3).reduce(0, +) / 3
                let slow = prices.suffix(7).reduce(0, +) / 7
                #expect(strategy.averages?.fast == fast)
                #expect(strategy.averages?.slow == slow)
            }
        }
    }

    @Test func aStandingSignalIsTheRegimeThePositionDoesNotMatch() {
        var strategy = MovingAverageCrossover(parameters: CrossoverParameters(symbol: "AAPL", fastWindow: 2, slowWindow: 4, quantity: 50))
        #expect(strategy.standingSignal(position: 0, lastSequence: 0, lastPrice: 0) == nil, "no regime yet")
        for (i, p) in [100, 100, 100, 100, 110, 120].enumerated() {
            _ = strategy.onTick(sequence: UInt64(i + 1), price: Int64(p), receivedNanos: 1)
        }
        #expect(strategy.regime == .long)
        let standing = strategy.standingSignal(position: 0, lastSequence: 6, lastPrice: 120)
        #expect(standing?.targetQuantity == 50 && standing?.origin.direction == .long)
        #expect(standing?.origin.tickReceivedNanos == 0, "not a tick-triggered decision")
        #expect(strategy.standingSignal(position: 50, lastSequence: 6, lastPrice: 120) == nil)
    }

    @Test func parametersAreValidated() {
        #expect(CrossoverParameters(symbol: "", fastWindow: 5, slowWindow: 5, quantity: 0).problems.count == 3)
        #expect(CrossoverParameters(symbol: "A").problems.isEmpty)
    }
}

@Suite struct TradingStateTests {
    @Test func aBreakoutAboveTheChannelGoesLongAndOneBelowGoesFlatOrShort() {
        var flat = ChannelBreakout(parameters: BreakoutParameters(symbol: "AAPL", lookback: 3, quantity: 40))
        var short = ChannelBreakout(parameters: BreakoutParameters(symbol: "AAPL", lookback: 3, quantity: 40, allowShort: true), version: "7")
        let prices: [Int64] = [100, 105, 102, 106, 104, 103, 101, 99, 99, 98, 104]
        var flatSignals: [StrategySignal] = []
        var shortSignals: [StrategySignal] = []
        for (i, p) in prices.enumerated() {
            if let s = flat.onTick(sequence: UInt64(i + 1), price: p, receivedNanos: 0) { flatSignals.append(s) }
            if let s = short.onTick(sequence: UInt64(i + 1), price: p, receivedNanos: 0) { shortSignals.append(s) }
        }
        // 106 clears 105 (ticks 1-3); 104 and 103 stay inside; 101 breaks below 103 (ticks 4-6 are
        // 106, 104, 103); 99, 99 and 98 only confirm it; 104 clears 99, 99, 98.
        #expect(flatSignals.map(\.origin.tickSequence) == [4, 7, 11])
        #expect(flatSignals.map(\.targetQuantity) == [40, 0, 40])
        #expect(shortSignals.map(\.targetQuantity) == [40, -40, 40])
        #expect(shortSignals.allSatisfy { $0.origin.strategy == "channel-breakout" && $0.origin.strategyVersion == "7" })
        #expect(short.channel?.low == 98 && short.channel?.high == 104)
        short.reset()
        #expect(short.channel == nil)
        #expect(short.standingSignal(position: 0, lastSequence: 11, lastPrice: 104)?.targetQuantity == 40, "the regime survives a reset")
    }

    @Test func theChannelMatchesANaiveComputationOverALongRandomWalk() {
        for lookback in [2, 5, 64, 300] {
            var strategy = ChannelBreakout(parameters: BreakoutParameters(symbol: "X", lookback: lookback, allowShort: true))
            var prices: [Int64] = []
            var regime: TargetDirection?
            var state: UInt64 = UInt64(lookback)
            var price: Int64 = 1_000_000
            for i in 0..<5_000 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                price += Int64(state >> 60) - 7  // steps of -7…+8, trends included
                let window = prices.suffix(lookback)
                var expected: TargetDirection?
                if window.count == lookback {
                    if price > window.max()! { expected = .long } else if price < window.min()! { expected = .short }
                }
                let signal = strategy.onTick(sequence: UInt64(i), price: price, receivedNanos: 0)
                if let expected, expected != regime {
                    #expect(signal?.origin.direction == expected, "lookback \(lookback), tick \(i)")
                    regime = expected
                } else {
                    #expect(signal == nil, "lookback \(lookback), tick \(i)")
                }
                prices.append(price)
                let next = prices.suffix(lookback)
                if next.count == lookback { #expect(strategy.channel.map { [$0.low, $0.high] } == [next.min()!, next.max()!]) }
            }
        }
    }

    @Test func theRegistryNamesEachStrategyAndBuildsIt() {
        let specs: [StrategySpec] = [
            .maCrossover(CrossoverParameters(symbol: "AAPL")), .channelBreakout(BreakoutParameters(symbol: "MSFT", lookback: 10)),
        ]
        #expect(specs.map(\.name) == StrategySpec.registry.map(\.name))
        #expect(specs.map { $0.make(version: "3").name } == ["ma-crossover", "channel-breakout"])
        #expect(specs.map { $0.make(version: "3").symbol } == ["AAPL", "MSFT"])
        #expect(BreakoutParameters(symbol: "", lookback: 1, quantity: 0).problems.count == 3)
        #expect(StrategySpec.channelBreakout(BreakoutParameters(symbol: "A", lookback: 10_001)).problems == ["lookback must be from 2 to 10000 (got 10001)"])
    }

    @Test func strategyParametersAreParsedByNameAndEachProblemNamesItsParameter() {
        #expect(
            StrategySpec.parse(name: "channel-breakout", symbol: "AAPL", parameters: ["lookback": "30", "allow_short": "true"])
                == .success(
                    .channelBreakout(
                        BreakoutParameters(symbol: "AAPL", lookback: 30, quantity: 100, allowShort: true, limitOffsetBps: 5, timeInForce: .immediateOrCancel))))
        #expect(
            StrategySpec.parse(name: "ma-crossover", symbol: "AAPL", parameters: ["threshold": "0.05", "fast_window": "3", "slow_window": "9"])
                == .success(.maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 3, slowWindow: 9, threshold: 500))))
        guard case .failure(let problems) = StrategySpec.parse(
            name: "channel-breakout", symbol: "AAPL", parameters: ["fast_window": "3", "lookback": "x", "allow_short": "yes"])
        else {
            Issue.record("accepted")
            return
        }
        #expect(problems.problems == [
            "parameters.fast_window is not a parameter of channel-breakout: it takes lookback, quantity, allow_short, limit_offset_bps, time_in_force",
            "parameters.allow_short must be true or false, got 'yes'",
            "parameters.lookback must be a whole number from 2 to 10000, got 'x'",
        ])
        guard case .failure(let unknown) = StrategySpec.parse(name: "rsi", symbol: "AAPL", parameters: [:]) else { return }
        #expect(unknown.description == "'rsi' is not a strategy: use ma-crossover or channel-breakout")
        guard case .failure(let windows) = StrategySpec.parse(name: "ma-crossover", symbol: "AAPL", parameters: ["fast_window": "9", "slow_window": "9"]) else { return }
        #expect(windows.problems == ["parameters: slow window (9) must exceed the fast one (9)"])
        // What `parameters` gives back parses to the same spec.
        for spec: StrategySpec in [.maCrossover(CrossoverParameters(symbol: "X", threshold: 125)), .channelBreakout(BreakoutParameters(symbol: "X", lookback: 7))] {
            #expect(StrategySpec.parse(name: spec.name, symbol: "X", parameters: spec.parameters) == .success(spec))
        }
    }

    @Test func intentGetsItsClOrdIDFromTheLogPosition() {
        var state = TradingState()
        let effects = state.apply(.orderIntent(intent()), term: 3, index: 17)
        #expect(state.orders["BTN-3-17"]?.status == .intent)
        #expect(effects.count == 1)
    }

    @Test func fillsDriveStatusAndPositionOnceEvenWhenReportsRepeatOrGoMissing() {
        var state = TradingState()
        state.apply(.orderIntent(intent(quantity: 100)), term: 1, index: 1)
        state.apply(.orderSent(OrderSent(clOrdID: "BTN-1-1", session: "B1", msgSeqNum: 2, sentAtNanos: 0, leaseRemainingNanos: 1, possResend: false)), term: 1, index: 2)
        #expect(state.orders["BTN-1-1"]?.status == .sent)
        state.apply(.execution(report("BTN-1-1", exec: "E1", type: "0", status: "0", cum: 0, avg: 0, leaves: 100)), term: 1, index: 3)
        state.apply(.execution(report("BTN-1-1", exec: "E2", status: "1", last: 40, lastPx: 100, cum: 40, avg: 100, leaves: 60)), term: 1, index: 4)
        // The same report again (a PossDup resend): no second fill.
        let dup = state.apply(.execution(report("BTN-1-1", exec: "E2", status: "1", last: 40, lastPx: 100, cum: 40, avg: 100, leaves: 60)), term: 1, index: 5)
        #expect(dup == [.duplicateExecution(execID: "E2")])
        #expect(state.position("AAPL") == 40)
        // E3 (20 @ 110) was lost; E4 carries the cumulative figures: 100 @ avg 106.
        state.apply(.execution(report("BTN-1-1", exec: "E4", status: "2", last: 40, lastPx: 103, cum: 100, avg: 106, leaves: 0)), term: 1, index: 6)
        #expect(state.position("AAPL") == 100)
        #expect(state.orders["BTN-1-1"]?.status == .filled)
        #expect(state.positions["AAPL"]?.averagePrice == 106)
        #expect(state.openOrders.isEmpty)
    }

    @Test func sellingRealisesPnLAndTerminalStatesStay() {
        var state = TradingState()
        state.apply(.orderIntent(intent(quantity: 10)), term: 1, index: 1)
        state.apply(.execution(report("BTN-1-1", exec: "A", status: "2", last: 10, lastPx: 100, cum: 10, avg: 100)), term: 1, index: 2)
        state.apply(.orderIntent(intent(side: .sell, quantity: 10)), term: 1, index: 3)
        state.apply(.execution(report("BTN-1-3", exec: "B", status: "2", last: 10, lastPx: 130, cum: 10, avg: 130)), term: 1, index: 4)
        #expect(state.position("AAPL") == 0)
        #expect(state.positions["AAPL"]?.realizedPnL == 300)
        // A late "new" report cannot walk a filled order back.
        state.apply(.execution(report("BTN-1-3", exec: "C", type: "0", status: "0", cum: 10, avg: 130)), term: 1, index: 5)
        #expect(state.orders["BTN-1-3"]?.status == .filled)
    }

    @Test func unknownAndReconciliation() {
        var state = TradingState()
        state.apply(.orderIntent(intent()), term: 1, index: 1)
        state.apply(.orderUnknown(OrderUnknown(clOrdID: "BTN-1-1", reason: "session dropped", atNanos: 0)), term: 1, index: 2)
        #expect(state.orders["BTN-1-1"]?.status == .unknown)
        state.apply(.reconciled(Reconciliation(clOrdID: "BTN-1-1", finding: .neverReceived(text: "unknown order"), term: 2, atNanos: 0)), term: 2, index: 4)
        #expect(state.orders["BTN-1-1"]?.status == .intent)
        #expect(state.orders["BTN-1-1"]?.reconciledInTerm == 2)
        state.apply(.reconciled(Reconciliation(clOrdID: "BTN-1-1", finding: .venueKnows(report("BTN-1-1", exec: "S1", type: "I", status: "2", cum: 100, avg: 100)), term: 2, atNanos: 0)), term: 2, index: 5)
        #expect(state.orders["BTN-1-1"]?.status == .filled)
        #expect(state.position("AAPL") == 100)
        let anomaly = state.apply(.orderSent(OrderSent(clOrdID: "NOPE", session: "", msgSeqNum: 0, sentAtNanos: 0, leaseRemainingNanos: 0, possResend: false)), term: 2, index: 6)
        #expect(anomaly.count == 1 && state.anomalies.count == 1)
    }

    @Test func commandsRoundTripAndForeignPayloadsAreNotTrading() throws {
        let command = TradingCommand.orderIntent(intent())
        #expect(try TradingCommand.decode(command.encoded()) == command)
        #expect(try TradingCommand.decode(Array("hello".utf8)) == nil)
        #expect(throws: (any Error).self) { try TradingCommand.decode([TradingCommand.marker, 0x7B]) }
    }
}

@Suite struct RiskGateTests {
    let limits = RiskLimits(maxOrdersPerMinute: 2, maxOrdersPerHour: 3, maxPosition: 150, maxOrderQuantity: 200)

    @Test func approvesAndSizesTheOrderToTheTarget() {
        var state = TradingState()
        state.apply(.orderIntent(intent(quantity: 50)), term: 1, index: 1)
        state.apply(.execution(report("BTN-1-1", exec: "A", status: "2", last: 50, lastPx: 1, cum: 50, avg: 1)), term: 1, index: 2)
        let decision = RiskGate.evaluate(signal(.init("AAPL"), .flat, target: 0), state: state, limits: limits, now: 1)
        guard case .approved(let side, let quantity, _) = decision else {
            Issue.record("expected approval, got \(decision)")
            return
        }
        #expect(side == .sell && quantity == 50)
    }

    @Test func rejectsWithReasons() {
        var state = TradingState()
        #expect(RiskGate.evaluate(signal(target: 0), state: state, limits: limits, now: 0) == .rejected(reason: "already flat 0 AAPL"))
        #expect(RiskGate.evaluate(signal(target: 151), state: state, limits: limits, now: 0) == .rejected(reason: "target position 151 AAPL exceeds the cap of 150"))
        #expect(RiskGate.evaluate(signal(), state: state, limits: limits, now: 0, inFlight: ["AAPL"]) == .rejected(reason: "an intent for AAPL is being committed"))
        // Intents still committing for other symbols fill the window as committed ones do.
        #expect(
            RiskGate.evaluate(signal(), state: state, limits: limits, now: 0, inFlight: ["MSFT", "GBP"], intentsInFlight: 2)
                == .rejected(reason: "rate limit: 2 orders in the last minute (max 2)"))
        state.apply(.orderIntent(intent(at: 0)), term: 1, index: 1)
        #expect(RiskGate.evaluate(signal(), state: state, limits: limits, now: 0) == .rejected(reason: "order BTN-1-1 for AAPL is in flight (intent)"))
        state.apply(.orderIntent(intent("MSFT", at: 10)), term: 1, index: 2)
        let minute = RiskGate.evaluate(signal("EURUSD"), state: state, limits: limits, now: 20)
        #expect(minute == .rejected(reason: "rate limit: 2 orders in the last minute (max 2)"))
        // A minute later the per-minute window has room, but the hour does not after a third.
        state.apply(.orderIntent(intent("GBP", at: 61_000_000_000)), term: 1, index: 3)
        let hour = RiskGate.evaluate(signal("EURUSD"), state: state, limits: limits, now: 122_000_000_000)
        #expect(hour == .rejected(reason: "rate limit: 3 orders in the last hour (max 3)"))
        state.apply(.tradingPaused(paused: true, by: "ops", reason: "maintenance", atNanos: 0), term: 1, index: 4)
        #expect(RiskGate.evaluate(signal("EURUSD"), state: state, limits: limits, now: 0) == .rejected(reason: "trading paused: maintenance"))
    }
}

@Suite struct ReconcilerTests {
    func stateWithOpenOrders() -> TradingState {
        var state = TradingState()
        state.apply(.orderIntent(intent("AAPL")), term: 1, index: 1)
        state.apply(.orderIntent(intent("MSFT")), term: 1, index: 2)
        state.apply(.orderIntent(intent("EURUSD")), term: 1, index: 3)
        state.apply(.execution(report("BTN-1-3", exec: "X", status: "2", last: 100, lastPx: 1, cum: 100, avg: 1)), term: 1, index: 4)
        return state
    }

    @Test func massStatusAsksOnceAndAsksAloneAboutWhatItsAnswerLeftOut() {
        var reconciler = Reconciler(settings: .init(massStatus: true))
        let start = reconciler.begin(term: 2, state: stateWithOpenOrders(), now: 0)
        #expect(start.contains(.requestMassStatus(requestID: "MS-2-1")))
        #expect(!start.contains { if case .requestStatus = $0 { true } else { false } })
        // The answer lists BTN-1-1 only; absence proves nothing about BTN-1-2.
        let known = reconciler.onStatusReport(report("BTN-1-1", exec: "S1", type: "I", status: "2", cum: 100, avg: 1), now: 1)
        #expect(known.contains { if case .journal = $0 { true } else { false } })
        #expect(reconciler.onMassStatusComplete(requestID: "MS-9-9", now: 2).isEmpty, "another request's end")
        let after = reconciler.onMassStatusComplete(requestID: "MS-2-1", now: 2)
        #expect(after == [.requestStatus(clOrdID: "BTN-1-2", symbol: "MSFT", side: .buy)])
        #expect(reconciler.pendingMassStatus == nil)
    }

    @Test func asksAboutEveryOpenOrderAndTradesOnceAllAnswersAreJournaled() {
        var reconciler = Reconciler()
        let start = reconciler.begin(term: 2, state: stateWithOpenOrders(), now: 0)
        #expect(start.filter { if case .requestStatus = $0 { true } else { false } }.count == 2)
        #expect(reconciler.phase == .reconciling(outstanding: 2))
        let known = reconciler.onStatusReport(report("BTN-1-1", exec: "S1", type: "I", status: "2", cum: 100, avg: 1), now: 1)
        guard case .journal(let r1) = known.first, case .venueKnows = r1.finding else {
            Issue.record("expected a venueKnows finding, got \(known)")
            return
        }
        let unknown = reconciler.onStatusReport(report("BTN-1-2", exec: "S2", type: "I", status: "8", cum: 0, avg: 0, rej: 5), now: 1)
        guard case .journal(let r2) = unknown.first, case .neverReceived = r2.finding else {
            Issue.record("expected a neverReceived finding, got \(unknown)")
            return
        }
        #expect(reconciler.onCommitted(r1) == [.phaseChanged(.reconciling(outstanding: 1))])
        #expect(reconciler.onCommitted(r2) == [.phaseChanged(.trading)])
    }

    @Test func anUnansweredOrderHaltsTradingAndAnswersLaterResumeIt() {
        var reconciler = Reconciler(settings: .init(answerTimeoutNanos: 10, attemptsBeforeHalt: 2))
        _ = reconciler.begin(term: 2, state: stateWithOpenOrders(), now: 0)
        let r1 = reconciler.onStatusReport(report("BTN-1-1", exec: "S1", type: "I", status: "2", cum: 100, avg: 1), now: 1)
        guard case .journal(let f1) = r1.first else { return }
        _ = reconciler.onCommitted(f1)
        #expect(reconciler.onTick(now: 10) == [.requestStatus(clOrdID: "BTN-1-2", symbol: "MSFT", side: .buy)])
        let halted = reconciler.onTick(now: 20)
        #expect(reconciler.phase.name == "halted")
        #expect(halted.contains(.requestStatus(clOrdID: "BTN-1-2", symbol: "MSFT", side: .buy)), "a halted leader keeps asking")
        let late = reconciler.onStatusReport(report("BTN-1-2", exec: "S2", type: "I", status: "0", cum: 0, avg: 0, leaves: 100), now: 25)
        guard case .journal(let f2) = late.first else { return }
        #expect(reconciler.onCommitted(f2) == [.phaseChanged(.trading)])
    }

    @Test func nothingOpenMeansTradingAtOnce() {
        var reconciler = Reconciler()
        #expect(reconciler.begin(term: 5, state: TradingState(), now: 0) == [.phaseChanged(.trading)])
        #expect(reconciler.stop() == [.phaseChanged(.idle)])
    }
}

@Suite struct DuplicateRejectTests {
    @Test func aDuplicateClOrdIDRejectDoesNotTouchTheOrder() {
        var state = TradingState()
        state.apply(.orderIntent(intent()), term: 1, index: 1)
        state.apply(.execution(report("BTN-1-1", exec: "F1", status: "2", last: 100, lastPx: 5, cum: 100, avg: 5)), term: 1, index: 2)
        let effects = state.apply(
            .execution(report("BTN-1-1", exec: "R1", type: "8", status: "8", cum: 0, avg: 0, rej: 6)), term: 2, index: 3)
        #expect(state.orders["BTN-1-1"]?.status == .filled, "the venue's refusal of a second copy is not the order's state")
        #expect(state.position("AAPL") == 100)
        #expect(effects.count == 1 && state.anomalies.count == 1)
    }
}

/// Reconciliation never guesses (issue 9): only the standard unknown-order answer proves "never
/// received", and only for an order the journal has no proof of.
@Suite struct ReconciliationWithoutGuessingTests {
    func reconciler(_ state: TradingState) -> Reconciler {
        var reconciler = Reconciler(settings: .init(answerTimeoutNanos: 10, attemptsBeforeHalt: 3))
        _ = reconciler.begin(term: 2, state: state, now: 0)
        return reconciler
    }

    func oneOpenOrder(partFilled: Bool = false) -> TradingState {
        var state = TradingState()
        state.apply(.orderIntent(intent("AAPL")), term: 1, index: 1)
        if partFilled {
            state.apply(
                .execution(report("BTN-1-1", exec: "P1", status: "1", last: 40, lastPx: 100_000, cum: 40, avg: 100_000, leaves: 60)),
                term: 1, index: 2)
        }
        return state
    }

    func unknownAnswer(rej: Int?, orderID: String = "NONE") -> ExecutionRecord {
        var answer = report("BTN-1-1", exec: "S1", type: "I", status: "8", cum: 0, avg: 0, rej: rej)
        answer.venueOrderID = orderID
        answer.text = "Unknown order"
        return answer
    }

    @Test func theStandardUnknownAnswerProvesNeverReceived() {
        var r = reconciler(oneOpenOrder())
        let out = r.onStatusReport(unknownAnswer(rej: 5), now: 1)
        guard case .journal(let finding) = out.first, case .neverReceived = finding.finding else {
            Issue.record("expected neverReceived, got \(out)")
            return
        }
    }

    @Test func aRejectedStatusWithoutReasonFiveOrAnOrderIDProvesNothingAndHalts() {
        var r = reconciler(oneOpenOrder())
        let out = r.onStatusReport(unknownAnswer(rej: 99), now: 1)
        #expect(!out.contains { if case .journal = $0 { true } else { false } }, "nothing journaled: \(out)")
        guard case .halted(let reason) = r.phase else {
            Issue.record("expected HALTED, got \(r.phase)")
            return
        }
        #expect(reason.contains("OrdRejReason=99") && reason.contains("BTN-1-1"), "\(reason)")
        // It keeps asking; a real answer later settles it.
        #expect(r.onTick(now: 11).contains(.requestStatus(clOrdID: "BTN-1-1", symbol: "AAPL", side: .buy)))
        let known = r.onStatusReport(report("BTN-1-1", exec: "S2", type: "I", status: "2", cum: 100, avg: 10), now: 12)
        guard case .journal(let finding) = known.first else {
            Issue.record("expected a finding, got \(known)")
            return
        }
        #expect(r.onCommitted(finding) == [.phaseChanged(.trading)])
    }

    @Test func aRejectedStatusWithTheBrokersOrderIDIsTheOrdersState() {
        var r = reconciler(oneOpenOrder())
        let out = r.onStatusReport(unknownAnswer(rej: 99, orderID: "O-7"), now: 1)
        guard case .journal(let finding) = out.first, case .venueKnows = finding.finding else {
            Issue.record("expected venueKnows, got \(out)")
            return
        }
    }

    @Test func aDenialOfAnOrderWithJournaledFillsHaltsAndIsNeverReSent() {
        var state = oneOpenOrder(partFilled: true)
        var r = reconciler(state)
        let out = r.onStatusReport(unknownAnswer(rej: 5), now: 1)
        #expect(!out.contains { if case .journal = $0 { true } else { false } })
        guard case .halted(let reason) = r.phase else {
            Issue.record("expected HALTED, got \(r.phase)")
            return
        }
        #expect(reason.contains("journaled fills (CumQty 40)"), "\(reason)")
        #expect(!r.onTick(now: 100).contains { if case .requestStatus = $0 { true } else { false } }, "a contradiction is not re-asked")
        // Even if such a finding reached the log, the state would not re-send the order.
        let effects = state.apply(
            .reconciled(Reconciliation(clOrdID: "BTN-1-1", finding: .neverReceived(text: "x"), term: 2, atNanos: 0)),
            term: 2, index: 3)
        #expect(state.orders["BTN-1-1"]?.status == .partiallyFilled)
        #expect(effects.contains { if case .anomaly = $0 { true } else { false } })
        // The operator resolves it with the broker's total; trading resumes.
        state.apply(
            .resolved(OrderResolution(clOrdID: "BTN-1-1", outcome: .filled(quantity: 100, price: 110_000), by: "op", reason: "desk", atNanos: 0)),
            term: 2, index: 4)
        #expect(state.orders["BTN-1-1"]?.status == .filled)
        #expect(state.orders["BTN-1-1"]?.averagePrice == 110_000)
        #expect(state.position("AAPL") == 100)
        // The journal had 40 at 10.0000; the broker's total is 100 at 11.0000: the other 60 at ~11.6667.
        #expect(abs((state.positions["AAPL"]?.averagePrice ?? 0) - 110_000) <= 1)
        #expect(r.onResolved(clOrdID: "BTN-1-1") == [.phaseChanged(.trading)])
    }

    @Test func aRefusedStatusRequestHaltsNamingTheBrokersAnswer() {
        var r = reconciler(oneOpenOrder())
        let out = r.onStatusRequestRefused(
            clOrdID: "BTN-1-1", answer: "BusinessMessageReject(j) reason 3 \"Unsupported Message Type\"", now: 1)
        guard case .phaseChanged(.halted(let reason)) = out.last else {
            Issue.record("expected HALTED, got \(out)")
            return
        }
        #expect(reason.contains("BusinessMessageReject(j)") && reason.contains("BTN-1-1"))
        // Attempts do not replace the broker's words in the reason.
        _ = r.onTick(now: 11)
        _ = r.onTick(now: 22)
        _ = r.onTick(now: 33)
        #expect(r.phase == .halted(reason: reason))
    }

    @Test func resolvingNotReceivedClosesTheOrderWithoutASend() {
        var state = oneOpenOrder()
        state.apply(
            .resolved(OrderResolution(clOrdID: "BTN-1-1", outcome: .notReceived, by: "op", reason: "desk", atNanos: 0)),
            term: 2, index: 2)
        #expect(state.orders["BTN-1-1"]?.status == .notSent)
        #expect(state.openOrders.isEmpty)
        #expect(state.position("AAPL") == 0)
        // Terminal: a later resolution or a denial changes nothing.
        let again = state.apply(
            .resolved(OrderResolution(clOrdID: "BTN-1-1", outcome: .filled(quantity: 100, price: 1), by: "op", reason: "x", atNanos: 0)),
            term: 2, index: 3)
        #expect(state.orders["BTN-1-1"]?.status == .notSent && state.position("AAPL") == 0)
        #expect(again.contains { if case .anomaly = $0 { true } else { false } })
    }

    @Test func aBustTakesTheFillOutOfThePositionAndACorrectionReplacesIt() {
        var state = TradingState()
        state.apply(.orderIntent(intent("AAPL")), term: 1, index: 1)
        state.apply(.execution(report("BTN-1-1", exec: "F1", status: "2", last: 100, lastPx: 10, cum: 100, avg: 10)), term: 1, index: 2)
        #expect(state.position("AAPL") == 100)
        // Trade cancel: the venue's cumulative figures drop to 0 and the order is open again.
        state.apply(
            .execution(report("BTN-1-1", exec: "B1", type: "H", status: "0", cum: 0, avg: 0, leaves: 100)), term: 1, index: 3)
        #expect(state.position("AAPL") == 0)
        #expect(state.orders["BTN-1-1"]?.status == .new)
        #expect(state.openOrders.map(\.clOrdID) == ["BTN-1-1"])
        // Filled again, then corrected to 60 at 12.
        state.apply(.execution(report("BTN-1-1", exec: "F2", status: "2", last: 100, lastPx: 11, cum: 100, avg: 11)), term: 1, index: 4)
        state.apply(
            .execution(report("BTN-1-1", exec: "C1", type: "G", status: "1", cum: 60, avg: 12, leaves: 40)), term: 1, index: 5)
        #expect(state.position("AAPL") == 60)
        #expect(state.orders["BTN-1-1"]?.cumulativeQuantity == 60)
        #expect(state.positions["AAPL"]?.averagePrice == 12)
    }
}

/// The cluster's one broker session: outbound MsgSeqNums are reserved through the log, each
/// block after the last, so a new leader starts above anything an earlier one could have sent.
@Suite struct SequenceReservationTests {
    @Test func blocksFollowEachOtherAndEveryReplicaComputesTheSame() {
        var a = TradingState()
        var b = TradingState()
        let first = SequenceReservation(session: "BATON->VENUE", count: 1000, term: 2, node: 1, atNanos: 0)
        let second = SequenceReservation(session: "BATON->VENUE", count: 500, term: 3, node: 2, atNanos: 0)
        let effects = [a.apply(.sequenceReserved(first), term: 2, index: 5), a.apply(.sequenceReserved(second), term: 3, index: 9)]
        _ = b.apply(.sequenceReserved(first), term: 2, index: 5)
        _ = b.apply(.sequenceReserved(second), term: 3, index: 9)
        #expect(effects[0] == [.sequenceReserved(first, first: 1, through: 1000)])
        #expect(effects[1] == [.sequenceReserved(second, first: 1001, through: 1500)])
        #expect(a.senderSeqCeiling == 1500 && b.senderSeqCeiling == 1500)
        #expect(a.sequenceSession == "BATON->VENUE")
    }

    @Test func aHostileCountIsAnAnomalyNotATrap() {
        var state = TradingState()
        func reserve(_ count: Int, at index: UInt64) -> [TradingState.Effect] {
            state.apply(.sequenceReserved(SequenceReservation(session: "S", count: count, term: 1, node: 1, atNanos: 0)), term: 1, index: index)
        }
        _ = reserve(Int.max, at: 1)
        _ = reserve(0, at: 2)
        #expect(state.senderSeqCeiling == 0)
        _ = reserve(1_000_000_000, at: 3)
        _ = reserve(1_000_000_000, at: 4)
        let beyond = reserve(1_000_000_000, at: 5)  // past MsgSeqNum's 2^31 - 1
        #expect(state.senderSeqCeiling == 2_000_000_000)
        #expect(beyond.count == 1 && state.anomalies.count == 3)
    }

    @Test func theHighestJournaledInboundMsgSeqNumIsKept() {
        var state = TradingState()
        _ = state.apply(.orderIntent(intent()), term: 1, index: 1)
        var early = report("BTN-1-1", exec: "E1", type: "0", status: "0", cum: 0, avg: 0, leaves: 100)
        early.msgSeqNum = 41
        var late = report("BTN-1-1", exec: "E2", status: "2", last: 100, lastPx: 10, cum: 100, avg: 10)
        late.msgSeqNum = 42
        _ = state.apply(.execution(late), term: 1, index: 2)
        _ = state.apply(.execution(early), term: 1, index: 3)  // a resend (PossDup) arrives later
        #expect(state.lastInboundSeqNum == 42)
    }
}
