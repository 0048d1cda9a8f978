@_spi(Testing) import BatonSimulation
@_spi(Testing) import RaftCore
import Testing

/// The CI-sized sample of seeded runs, and proof that the checker catches broken nodes.
@Suite struct SeededSimulationTests {
    /// Seeds 1…N cover every fault mix in turn (the mix is the seed modulo the number of mixes).
    @Test(arguments: [(voters: 3, seeds: 420), (voters: 5, seeds: 140)])
    func sampleOfSeedsHoldsEveryProperty(voters: Int, seeds: Int) async {
        var options = SimulationOptions()
        options.voters = voters
        options.chaosDuration = .seconds(3)
        let summary = await SimulationRunner.run(
            seeds: (1...UInt64(seeds)).map { $0 }, options: options, parallelism: 2)
        for failure in summary.failures.prefix(3) {
            Issue.record("\(SimulationRunner.report(failure, options: options, defect: nil))")
        }
        #expect(summary.failures.isEmpty)
        #expect(summary.seeds == seeds)
        // The run must have been a real fight, not a quiet afternoon.
        for mix in FaultMix.allCases {
            #expect(summary.seedsPerMix[mix, default: 0] >= seeds / FaultMix.allCases.count)
        }
        #expect(summary.faultsInjected > seeds * 5)
        #expect(summary.elections > seeds)
        #expect(summary.committedEntries > UInt64(seeds * 50))
        // Liveness was checked on every seed: each one recovered after healing, or it failed above.
        #expect(summary.recoveries.count == seeds)
        print("simulation sample (\(voters) voters): \(summary.closingLine)")
    }

    /// Runs seeds with a defective node until the first violation, within a budget.
    static func firstViolation(
        defect: RaftDefect, mix: FaultMix, budget: Int
    ) -> (seed: UInt64, violation: Violation, report: String)? {
        var options = SimulationOptions()
        options.mix = mix
        options.chaosDuration = .seconds(3)
        for seed in 1...UInt64(budget) {
            var world = Simulation(seed: seed, options: options, defect: defect)
            let result = world.run()
            if let violation = result.violation {
                return (seed, violation, SimulationRunner.report(result, options: options, defect: defect))
            }
        }
        return nil
    }

    @Test(arguments: [
        (RaftDefect.votesTwiceInTerm, FaultMix.calm, [Violation.Property.electionSafety]),
        (.acknowledgesBeforePersisting, .crashes, [.leaderCompleteness, .stateMachineSafety, .logMatching]),
        (.ignoresLogUpToDateCheck, .crashes, [.leaderCompleteness, .stateMachineSafety]),
    ])
    func checkerCatchesBrokenNode(defect: RaftDefect, mix: FaultMix, expected: [Violation.Property]) throws {
        let found = try #require(
            Self.firstViolation(defect: defect, mix: mix, budget: 300),
            "300 seeds of \(mix) with \(defect) and the checker found nothing"
        )
        #expect(expected.contains(found.violation.property), "\(found.violation)")
        // The report says how to replay the failing seed and shows what led there.
        #expect(found.report.contains("swift run -c release baton-sim --seed \(found.seed)"))
        #expect(found.report.contains("--defect \(defect.rawValue)"))
        #expect(found.report.contains("last "))
    }

    @Test func aSeedReplaysExactly() {
        var options = SimulationOptions()
        options.chaosDuration = .seconds(2)
        for seed: UInt64 in [7, 13] {
            var first = Simulation(seed: seed, options: options)
            var second = Simulation(seed: seed, options: options)
            let a = first.run()
            let b = second.run()
            #expect(a.steps == b.steps)
            #expect(a.elections == b.elections)
            #expect(a.committedEntries == b.committedEntries)
            #expect(a.recovery == b.recovery)
        }
    }

    @Test func optionsRejectClockErrorTheLeaseCannotCover() {
        var options = SimulationOptions()
        #expect(options.problems().isEmpty)
        options.maxClockRateError = 0.2
        #expect(options.problems().contains { $0.contains("clock rate error") })
        options.maxClockRateError = 0.01
        options.voters = 2
        #expect(options.problems().contains { $0.contains("voters") })
    }
}
