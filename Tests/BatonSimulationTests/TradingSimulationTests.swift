@_spi(Testing) import BatonSimulation
import BatonTrading
import Testing

/// The trading simulator: RaftNodes, trading cores and a strict broker under faults. The CI
/// sample is small; `baton-sim --trading --seeds 10000` is the on-demand run.
@Suite struct TradingSimulationTests {
    @Test("the order path holds with the channel breakout's signals too")
    func breakoutSampleHolds() async {
        var options = TradingSimulationOptions()
        options.strategy = "channel-breakout"
        let summary = await TradingSimulationRunner.run(seeds: Array(UInt64(1)...14), options: options, parallelism: 2)
        for failure in summary.failures { Issue.record("\(TradingSimulationRunner.report(failure, options: options))") }
        #expect(summary.failures.isEmpty)
        #expect(summary.intents > 50 && summary.executions == summary.intents, "\(summary.intents) intents")
        #expect(summary.takeovers > 14)
        var unknown = options
        unknown.strategy = "rsi"
        #expect(unknown.problems() == ["strategy rsi is unknown: use ma-crossover or channel-breakout"])
    }

    @Test("a CI-sized sample of seeds holds every trading property, 3 and 5 replicas")
    func sampleHolds() async {
        for voters in [3, 5] {
            var options = TradingSimulationOptions()
            options.voters = voters
            let seeds = voters == 3 ? Array(UInt64(1)...28) : Array(UInt64(1)...14)
            let summary = await TradingSimulationRunner.run(seeds: seeds, options: options, parallelism: 2)
            for failure in summary.failures { Issue.record("\(TradingSimulationRunner.report(failure, options: options))") }
            #expect(summary.failures.isEmpty)
            // The sample must have exercised something: orders, failovers, faults of every mix.
            #expect(summary.intents > 100)
            #expect(summary.executions == summary.intents)
            #expect(summary.takeovers > seeds.count)
            #expect(summary.possResends > 0, "no order was ever proved lost and re-sent: the sample is too tame")
            #expect(TradingFaultMix.allCases.allSatisfy { (summary.seedsPerMix[$0] ?? 0) > 0 })
        }
    }

    /// Each broken core must be caught by the checker: the first seed (of a bounded search)
    /// whose world exposes it ends in a ClOrdID executed twice.
    @Test(
        "the checker catches each broken trading core",
        arguments: [
            (TradingDefect.noLeaseWait, TradingFaultMix.pauses),
            (.resendWithoutReconciling, .broker),
            (.trustsLateAck, .broker),
            (.transferWithoutDraining, .transfers),
        ])
    func brokenCoresAreCaught(defect: TradingDefect, mix: TradingFaultMix) {
        var options = TradingSimulationOptions()
        options.defect = defect
        options.mix = mix
        var caught: TradingSeedResult?
        for seed in UInt64(1)...150 {
            var simulation = TradingSimulation(seed: seed, options: options)
            let result = simulation.run()
            if result.violation?.property == .duplicateExecution {
                caught = result
                break
            }
        }
        #expect(caught != nil, "\(defect.rawValue) went unnoticed in 150 seeds of \(mix)")
    }

    @Test("the same seed replays the same run")
    func deterministic() {
        var options = TradingSimulationOptions()
        options.mix = .everything
        var a = TradingSimulation(seed: 7, options: options)
        var b = TradingSimulation(seed: 7, options: options)
        let first = a.run()
        let second = b.run()
        #expect(first.steps == second.steps)
        #expect(first.intents == second.intents)
        #expect(first.executions == second.executions)
    }

    @Test("options that no core could be safe under are refused")
    func impossibleOptionsRefused() {
        var options = TradingSimulationOptions()
        options.gatewayLatencyMax = .milliseconds(150)
        #expect(options.problems().contains { $0.contains("gateway latency") })
    }
}
