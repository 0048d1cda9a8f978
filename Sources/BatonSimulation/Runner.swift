@_spi(Testing) public import RaftCore

/// What a batch of seeds found.
public struct SimulationSummary: Sendable {
    public var seeds = 0
    public var steps = 0
    public var failures: [SeedResult] = []
    public var recoveries: [Duration] = []
    public var faultsInjected = 0
    public var elections = 0
    public var committedEntries: UInt64 = 0
    public var seedsPerMix: [FaultMix: Int] = [:]

    public init() {}

    mutating func add(_ result: SeedResult) {
        seeds += 1
        steps += result.steps
        if result.violation != nil { failures.append(result) }
        if let recovery = result.recovery { recoveries.append(recovery) }
        faultsInjected += result.faultsInjected
        elections += result.elections
        committedEntries += result.committedEntries
        seedsPerMix[result.mix, default: 0] += 1
    }

    mutating func merge(_ other: SimulationSummary) {
        seeds += other.seeds
        steps += other.steps
        failures += other.failures
        recoveries += other.recoveries
        faultsInjected += other.faultsInjected
        elections += other.elections
        committedEntries += other.committedEntries
        for (mix, count) in other.seedsPerMix { seedsPerMix[mix, default: 0] += count }
    }

    /// The closing line `baton-sim` prints: `N seeds, S steps, V violations`.
    public var closingLine: String { "\(seeds) seeds, \(steps) steps, \(failures.count) violations" }

    public func recoveryPercentile(_ p: Double) -> Duration? {
        guard !recoveries.isEmpty else { return nil }
        let sorted = recoveries.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
}

public enum SimulationRunner {
    /// Runs every seed in `seeds`, spread over `parallelism` tasks. Each seed is independent and
    /// deterministic, so the summary does not depend on how the work was spread.
    public static func run(seeds: [UInt64], options: SimulationOptions, parallelism: Int = 2) async
        -> SimulationSummary
    {
        await run(seeds: seeds, options: options, defect: nil, parallelism: parallelism)
    }

    @_spi(Testing) public static func run(
        seeds: [UInt64],
        options: SimulationOptions,
        defect: RaftDefect?,
        parallelism: Int = 2
    ) async -> SimulationSummary {
        var total = await spread(seeds, over: parallelism, into: SimulationSummary()) { summary, seed in
            var simulation = Simulation(seed: seed, options: options, defect: defect)
            summary.add(simulation.run())
        } merge: { $0.merge($1) }
        total.failures.sort { $0.seed < $1.seed }
        return total
    }

    /// The command that replays one seed.
    @_spi(Testing) public static func replayCommand(seed: UInt64, options: SimulationOptions, defect: RaftDefect?)
        -> String
    {
        var command = "swift run -c release baton-sim --seed \(seed) --nodes \(options.voters)"
        if let mix = options.mix { command += " --mix \(mix)" }
        if options.chaosDuration != SimulationOptions().chaosDuration {
            command += " --chaos-ms \(Int(options.chaosDuration.milliseconds))"
        }
        if let defect { command += " --defect \(defect.rawValue)" }
        return command
    }

    /// A failure report: what broke, how to replay it, and the events that led there.
    @_spi(Testing) public static func report(_ result: SeedResult, options: SimulationOptions, defect: RaftDefect?)
        -> String
    {
        guard let violation = result.violation else { return "seed \(result.seed): all properties held" }
        var lines = [
            "VIOLATION seed \(result.seed) (mix \(result.mix)): \(violation)",
            "  replay: \(replayCommand(seed: result.seed, options: options, defect: defect))",
            "  last \(result.trace.count) events:",
        ]
        lines += result.trace.map { "    \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// What a batch of trading seeds found.
public struct TradingSimulationSummary: Sendable {
    public var seeds = 0
    public var steps = 0
    public var failures: [TradingSeedResult] = []
    public var intents = 0
    public var executions = 0
    public var possResends = 0
    public var takeovers = 0
    public var faults = 0
    public var halts = 0
    public var seedsPerMix: [TradingFaultMix: Int] = [:]

    public init() {}

    mutating func add(_ result: TradingSeedResult) {
        seeds += 1
        steps += result.steps
        if result.violation != nil { failures.append(result) }
        intents += result.intents
        executions += result.executions
        possResends += result.possResends
        takeovers += result.takeovers
        faults += result.faults
        halts += result.halts
        seedsPerMix[result.mix, default: 0] += 1
    }

    mutating func merge(_ other: TradingSimulationSummary) {
        seeds += other.seeds
        steps += other.steps
        failures += other.failures
        intents += other.intents
        executions += other.executions
        possResends += other.possResends
        takeovers += other.takeovers
        faults += other.faults
        halts += other.halts
        for (mix, count) in other.seedsPerMix { seedsPerMix[mix, default: 0] += count }
    }

    public var closingLine: String { "\(seeds) seeds, \(steps) steps, \(failures.count) violations" }
}

public enum TradingSimulationRunner {
    /// Runs every seed, spread over `parallelism` tasks; the summary does not depend on the spread.
    public static func run(seeds: [UInt64], options: TradingSimulationOptions, parallelism: Int = 2) async
        -> TradingSimulationSummary
    {
        var total = await spread(seeds, over: parallelism, into: TradingSimulationSummary()) { summary, seed in
            var simulation = TradingSimulation(seed: seed, options: options)
            summary.add(simulation.run())
        } merge: { $0.merge($1) }
        total.failures.sort { $0.seed < $1.seed }
        return total
    }

    public static func replayCommand(seed: UInt64, options: TradingSimulationOptions) -> String {
        var command = "swift run -c release baton-sim --trading --seed \(seed) --nodes \(options.voters)"
        if let mix = options.mix { command += " --mix \(mix)" }
        if options.chaosDuration != TradingSimulationOptions().chaosDuration {
            command += " --chaos-ms \(Int(options.chaosDuration.milliseconds))"
        }
        if let defect = options.defect { command += " --defect \(defect.rawValue)" }
        return command
    }

    public static func report(_ result: TradingSeedResult, options: TradingSimulationOptions) -> String {
        guard let violation = result.violation else { return "seed \(result.seed): all properties held" }
        var lines = [
            "VIOLATION seed \(result.seed) (mix \(result.mix)): \(violation)",
            "  replay: \(replayCommand(seed: result.seed, options: options))",
            "  last \(result.trace.count) events:",
        ]
        lines += result.trace.map { "    \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// Runs independent, deterministic seeds over `parallelism` tasks (seed k to worker k mod n), so
/// the merged summary does not depend on how the work was spread.
func spread<Summary: Sendable>(
    _ seeds: [UInt64], over parallelism: Int, into empty: Summary,
    run: @escaping @Sendable (inout Summary, UInt64) -> Void,
    merge: (inout Summary, Summary) -> Void
) async -> Summary {
    let workers = max(1, min(parallelism, seeds.count))
    return await withTaskGroup(of: Summary.self) { group in
        for worker in 0..<workers {
            let share = stride(from: worker, to: seeds.count, by: workers).map { seeds[$0] }
            group.addTask {
                var summary = empty
                for seed in share { run(&summary, seed) }
                return summary
            }
        }
        var total = empty
        for await part in group { merge(&total, part) }
        return total
    }
}
