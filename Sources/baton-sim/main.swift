import ArgumentParser
@_spi(Testing) import BatonSimulation
import BatonTrading
import Foundation
@_spi(Testing) import RaftCore

/// Runs whole Raft clusters in one process under a seeded, faulty world and checks every safety
/// property after every step. The last line is always `N seeds, S steps, V violations`.
@main
struct BatonSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-sim",
        abstract: "Deterministic simulation of Baton's Raft core (or, with --trading, the whole trading path) under faults."
    )

    @Flag(help: "Simulate the trading path: Raft nodes, trading cores and a strict broker.")
    var trading = false

    @Option(help: "How many seeds to run, starting at --first-seed.")
    var seeds: Int = 100

    @Option(help: "The first seed of a --seeds run.")
    var firstSeed: UInt64 = 1

    @Option(help: "Run this one seed and print its trace (replays a failure).")
    var seed: UInt64?

    @Option(help: "Voters in the cluster: 3 or 5 (one more node starts as a learner).")
    var nodes: Int = 3

    @Option(help: "Force a fault mix: \(FaultMix.allCases.map(\.rawValue).joined(separator: ", ")).")
    var mix: String?

    @Option(help: "Simulated milliseconds of fault injection before the world heals.")
    var chaosMs: Int = 4000

    @Option(help: "Parallel workers (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: .hidden)
    var defect: String?

    @Option(help: "With --trading, the strategy every core runs: ma-crossover or channel-breakout.")
    var strategy: String = "ma-crossover"

    mutating func run() async throws {
        guard nodes == 3 || nodes == 5 else {
            throw ValidationError("--nodes must be 3 or 5, not \(nodes)")
        }
        if trading {
            try await runTrading()
            return
        }
        var options = SimulationOptions()
        options.voters = nodes
        options.chaosDuration = .milliseconds(chaosMs)
        if let mix {
            guard let parsed = FaultMix(rawValue: mix) else {
                throw ValidationError(
                    "--mix \(mix) is unknown: use one of \(FaultMix.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.mix = parsed
        }
        let problems = options.problems()
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
        var parsedDefect: RaftDefect?
        if let defect {
            guard let d = RaftDefect(rawValue: defect) else {
                throw ValidationError(
                    "--defect \(defect) is unknown: use one of \(RaftDefect.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            parsedDefect = d
        }

        let seedList: [UInt64]
        if let seed {
            seedList = [seed]
            options.traceLength = 200
        } else {
            guard seeds > 0 else { throw ValidationError("--seeds must be at least 1") }
            seedList = (0..<UInt64(seeds)).map { firstSeed + $0 }
        }

        let started = ContinuousClock.now
        let summary = await SimulationRunner.run(
            seeds: seedList, options: options, defect: parsedDefect, parallelism: max(1, jobs)
        )
        let elapsed = ContinuousClock.now - started

        for failure in summary.failures.prefix(5) {
            print(SimulationRunner.report(failure, options: options, defect: parsedDefect))
        }
        if summary.failures.count > 5 {
            print(
                "… and \(summary.failures.count - 5) more failing seeds: \(summary.failures.dropFirst(5).prefix(20).map(\.seed))"
            )
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let mixes = FaultMix.allCases.map { "\($0)=\(summary.seedsPerMix[$0] ?? 0)" }.joined(separator: " ")
        print("nodes: \(nodes) voters + 1 learner; mixes: \(mixes)")
        print(
            "faults injected: \(summary.faultsInjected), elections won: \(summary.elections), "
                + "entries committed: \(summary.committedEntries)"
        )
        if let p50 = summary.recoveryPercentile(0.5), let p99 = summary.recoveryPercentile(0.99),
            let max = summary.recoveries.max()
        {
            print(
                "recovery after heal (leader + new commit): p50 \(fmt(p50.milliseconds)) ms, "
                    + "p99 \(fmt(p99.milliseconds)) ms, max \(fmt(max.milliseconds)) ms"
            )
        }
        print(
            "wall time \(fmt(seconds)) s, \(fmt(Double(summary.steps) / max(seconds, 1e-9))) steps/s, \(jobs) workers"
        )
        print(summary.closingLine)
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }

    private func fmt(_ value: Double) -> String { String(format: "%.1f", value) }

    private func seedList() throws -> [UInt64] {
        if let seed { return [seed] }
        guard seeds > 0 else { throw ValidationError("--seeds must be at least 1") }
        return (0..<UInt64(seeds)).map { firstSeed + $0 }
    }

    private func runTrading() async throws {
        var options = TradingSimulationOptions()
        options.voters = nodes
        options.chaosDuration = .milliseconds(chaosMs == 4000 ? 3000 : chaosMs)
        if let mix {
            guard let parsed = TradingFaultMix(rawValue: mix) else {
                throw ValidationError(
                    "--mix \(mix) is unknown with --trading: use one of \(TradingFaultMix.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.mix = parsed
        }
        if let defect {
            guard let parsed = TradingDefect(rawValue: defect) else {
                throw ValidationError(
                    "--defect \(defect) is unknown with --trading: use one of \(TradingDefect.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.defect = parsed
        }
        options.strategy = strategy
        if seed != nil { options.traceLength = 300 }
        let problems = options.problems()
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
        let list = try seedList()
        let started = ContinuousClock.now
        let summary = await TradingSimulationRunner.run(seeds: list, options: options, parallelism: max(1, jobs))
        let elapsed = ContinuousClock.now - started
        for failure in summary.failures.prefix(5) { print(TradingSimulationRunner.report(failure, options: options)) }
        if summary.failures.count > 5 {
            print("… and \(summary.failures.count - 5) more failing seeds: \(summary.failures.dropFirst(5).prefix(20).map(\.seed))")
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let mixes = TradingFaultMix.allCases.map { "\($0)=\(summary.seedsPerMix[$0] ?? 0)" }.joined(separator: " ")
        print("trading: \(nodes) voters\(options.defect.map { ", defect \($0.rawValue)" } ?? ""); mixes: \(mixes)")
        print(
            "faults injected: \(summary.faults), takeovers: \(summary.takeovers), intents committed: \(summary.intents), "
                + "executions at the broker: \(summary.executions), PossResend orders: \(summary.possResends), halts: \(summary.halts)")
        print("wall time \(fmt(seconds)) s, \(fmt(Double(summary.steps) / max(seconds, 1e-9))) steps/s, \(jobs) workers")
        print(summary.closingLine)
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}
