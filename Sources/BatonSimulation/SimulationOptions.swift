@_spi(Testing) public import RaftCore

/// The kinds of trouble a seed's world throws at the cluster. A seed picks one mix (seed modulo the
/// number of mixes) unless one is forced, so any run of consecutive seeds covers every mix.
public enum FaultMix: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Only client load and the odd leadership transfer: elections and replication on a good day.
    case calm
    /// Message loss, duplication, long delays and so reordering.
    case lossy
    /// Symmetric and asymmetric partitions that come and go.
    case partitions
    /// kill -9 and restart, losing all that was not yet durable; slow disks.
    case crashes
    /// SIGSTOP / SIGCONT of leaders and followers, with clocks that run at different rates.
    case pausesAndDrift = "pauses-and-drift"
    /// Leadership transfers and one-at-a-time membership changes under load, with some loss.
    case reconfiguration
    /// New leaders crash moments after they win, with entries sent one at a time: terms pile up
    /// with logs that differ in their tails, which is where commit-rule mistakes show (figure 8).
    case leaderChurn = "leader-churn"
    /// Everything at once.
    case everything

    public var description: String { rawValue }

    public static func forSeed(_ seed: UInt64) -> FaultMix { allCases[Int(seed % UInt64(allCases.count))] }

    var lossRate: Double {
        switch self {
        case .lossy: return 0.08
        case .leaderChurn: return 0.1
        case .everything: return 0.05
        case .reconfiguration: return 0.01
        default: return 0
        }
    }
    var duplicationRate: Double { self == .lossy || self == .everything ? 0.03 : 0 }
    /// Extra delay drawn for a share of messages, which reorders them.
    var jitter: Duration { self == .lossy || self == .everything ? .milliseconds(40) : .zero }
    var partitions: Bool { self == .partitions || self == .everything }
    var crashes: Bool { self == .crashes || self == .everything || self == .leaderChurn }
    /// The chance that a node that just became leader is killed within a few milliseconds.
    var newLeaderCrashRate: Double { self == .leaderChurn ? 0.6 : self == .everything ? 0.1 : 0 }
    /// Entries sent one per message.
    var tinyBatches: Bool { self == .reconfiguration || self == .everything || self == .leaderChurn }
    var slowDisks: Bool { self == .crashes || self == .everything || self == .pausesAndDrift }
    var pauses: Bool { self == .pausesAndDrift || self == .everything }
    var clockDrift: Bool { self == .pausesAndDrift || self == .everything }
    var transfers: Bool { self != .lossy }
    var membershipChanges: Bool { self == .reconfiguration || self == .everything || self == .crashes }
}

public struct SimulationOptions: Sendable {
    /// Voters at the start (3 or 5). One more node starts as a learner.
    public var voters: Int = 3
    public var learners: Int = 1
    /// How long faults are injected, in simulated time; then the world heals.
    public var chaosDuration: Duration = .seconds(4)
    /// After healing, a leader must be elected and a new proposal commit within this bound.
    public var livenessBound: Duration = .seconds(5)
    /// Force one fault mix instead of choosing by seed.
    public var mix: FaultMix?
    public var settings: RaftSettings = RaftSettings()
    /// The largest rate difference of a node's clock from real time (as a fraction). Kept within
    /// what `settings.maxClockDrift` covers; see `RaftSettings.leaseDuration`.
    public var maxClockRateError: Double = 0.02
    /// Log entries a node applies before it takes a snapshot and compacts its log.
    public var compactionInterval: LogIndex = 40
    /// How many of the last events a failure report shows.
    public var traceLength: Int = 40

    public init() {}

    /// The largest `maxClockRateError` the lease can tolerate with these settings: the leader's
    /// lease (`electionTimeoutMin - maxClockDrift` on its clock) must end, in real time, before
    /// a follower's `electionTimeoutMin` (on its clock) can, with the two clocks off in
    /// opposite directions: (min − drift) / (1 − ρ) ≤ min / (1 + ρ).
    public var tolerableClockRateError: Double {
        let minimum = settings.electionTimeoutMin.milliseconds
        let drift = settings.maxClockDrift.milliseconds
        // Solve (min − drift)(1 + ρ) = min (1 − ρ) for ρ.
        return drift / (2 * minimum - drift)
    }

    public func problems() -> [String] {
        var problems = settings.problems().map(\.description)
        if !(3...7).contains(voters) { problems.append("voters = \(voters) is invalid: must be 3 to 7") }
        if learners < 0 || learners > 2 { problems.append("learners = \(learners) is invalid: must be 0 to 2") }
        if maxClockRateError > tolerableClockRateError {
            problems.append(
                "max clock rate error \(maxClockRateError) exceeds what max_clock_drift covers (\(tolerableClockRateError))"
            )
        }
        if chaosDuration < .zero { problems.append("chaos duration must not be negative") }
        return problems
    }
}
