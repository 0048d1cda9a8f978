import ArgumentParser
import AsyncHTTPClient
import Foundation

struct ClusterOptions: ParsableArguments {
    @Option(help: "The batond executable.")
    var batond: String = ".build/release/batond"
}

/// One measured round of `failover` or `transfer`.
struct Round: Codable {
    var round: Int
    var from: UInt64
    var to: UInt64
    /// failover: kill → first 200 from the new leader. transfer: transfer request → first 200 from
    /// the new leader.
    var toFirstCommitMs: Double
    /// transfer: the longest interval without any commit completion, from the last completion
    /// before the request to the first completion on the new leader.
    var gapMs: Double?
    /// transfer: the same longest interval over the 300 ms before the request (the load's own
    /// rhythm, for comparison).
    var steadyGapMs: Double?
    /// transfer: how long `POST /admin/transfer-leadership` took to answer.
    var requestMs: Double?
}

struct RoundsReport: Codable {
    var machine: [String: String]
    var benchmark: String
    var proposeIntervalMs: Double
    var workers: Int
    var rounds: [Round]
    var toFirstCommitMs: LatencySummary
    var gapMs: LatencySummary?
    var steadyGapMs: LatencySummary?
    var proposeFailures: Int
    var proposeCompletions: Int
}

/// Starts the cluster and the steady load, runs `rounds`, stops both.
func withSteadyLoad(
    batond: String, workDir: String, prefix: String, interval: Duration, workers: Int,
    _ body: (BatonCluster, SteadyProposer) async throws -> [Round]
) async throws -> (rounds: [Round], failures: Int, completions: Int) {
    try await withChildCleanup {
        try await withHTTPClient(failFast: true) { client in
            let scratch = try makeScratchDirectory(base: workDir, prefix: prefix)
            let cluster = try BatonCluster(batond: batond, directory: scratch, client: client)
            try cluster.startAll()
            _ = try await cluster.waitForCommittingLeader()
            let proposer = SteadyProposer(cluster: cluster, interval: interval, workers: workers)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await proposer.run() }
                do {
                    // Let the load reach its rhythm before the first round.
                    try await Task.sleep(for: .seconds(1))
                    let rounds = try await body(cluster, proposer)
                    proposer.stop()
                    try await group.waitForAll()
                    cluster.stopAll()
                    return (rounds, proposer.failures, proposer.completedCount)
                } catch {
                    proposer.stop()
                    group.cancelAll()
                    throw error
                }
            }
        }
    }
}

func printRounds(_ title: String, _ report: RoundsReport) {
    say("\n== \(title): \(report.rounds.count) rounds")
    func line(_ name: String, _ s: LatencySummary) {
        say(
            "| \(name) | \(s.count) | \(format(s.p50, 1)) | \(format(s.p90, 1)) | \(format(s.p99, 1)) | "
                + "\(format(s.max, 1)) |"
        )
    }
    say("| measure | rounds | p50 ms | p90 ms | p99 ms | max ms |")
    say("|---|---|---|---|---|---|")
    line("to first commit on the new leader", report.toFirstCommitMs)
    if let gap = report.gapMs { line("longest gap without a commit", gap) }
    if let steady = report.steadyGapMs { line("longest gap in the 300 ms before (steady load)", steady) }
    say("steady load: \(report.proposeCompletions) proposals committed, \(report.proposeFailures) refused or failed")
}

// MARK: - failover

struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "kill -9 the leader under load; time until a new leader commits. Restart, converge, repeat."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Rounds (leader kills).")
    var kills: Int = 50

    @Option(help: "Milliseconds between proposals of the steady load.")
    var intervalMs: Int = 5

    @Option(help: "Seconds of steady load after the killed replica has caught up, before the next kill.")
    var settleSeconds: Double = 1.0

    func run() async throws {
        guard (1...1000).contains(kills) else { throw ValidationError("--kills must be from 1 to 1000") }
        let settle = Duration.milliseconds(Int64(settleSeconds * 1000))
        say("failover: \(kills) kills, a propose every \(intervalMs) ms against whoever leads")
        let (rounds, failures, completions) = try await withSteadyLoad(
            batond: cluster.batond, workDir: common.workDir, prefix: "baton-bench-failover",
            interval: .milliseconds(intervalMs), workers: 1
        ) { cluster, proposer in
            var rounds: [Round] = []
            for round in 1...kills {
                try ChildProcesses.shared.requireRunning(cluster.replicas.map(\.processName))
                let leader = try await cluster.waitForLeader()
                // The load must be committing on this leader before it is killed.
                guard
                    await proposer.firstCompletion(after: .now, timeout: .seconds(10), matching: { $0.node == leader })
                        != nil
                else {
                    throw BenchError(
                        "round \(round): no commit on leader n\(leader) within 10 s\n\(cluster.logTails())")
                }
                let killedAt = ContinuousClock.now
                cluster.kill9(leader)
                guard
                    let first = await proposer.firstCompletion(
                        after: killedAt, timeout: .seconds(15), matching: { $0.node != leader }
                    )
                else {
                    throw BenchError(
                        "round \(round): no new leader committed within 15 s of killing n\(leader)\n"
                            + cluster.logTails()
                    )
                }
                let took = (first.at - killedAt).milliseconds
                rounds.append(Round(round: round, from: leader, to: first.node, toFirstCommitMs: took))
                say("round \(round): killed n\(leader), n\(first.node) committed after \(format(took, 1)) ms")
                try cluster.start(leader)
                proposer.pause()
                _ = try await cluster.waitForConvergence()
                proposer.resume()
                try await Task.sleep(for: settle)
            }
            return rounds
        }
        let report = RoundsReport(
            machine: machineDescription(), benchmark: "failover", proposeIntervalMs: Double(intervalMs), workers: 1,
            rounds: rounds, toFirstCommitMs: LatencySummary(rounds.map(\.toFirstCommitMs)), gapMs: nil,
            steadyGapMs: nil, proposeFailures: failures, proposeCompletions: completions
        )
        printRounds("failover (kill -9 of the leader)", report)
        try writeJSON(report, to: common.json)
    }
}

// MARK: - transfer

struct Transfer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Planned leadership transfers under load; the longest gap without a commit around each."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Transfers.")
    var count: Int = 50

    @Option(help: "Milliseconds between proposals of each load worker.")
    var intervalMs: Int = 2

    @Option(help: "Load workers (proposals in flight at most).")
    var workers: Int = 2

    @Option(help: "Seconds of steady load between transfers.")
    var settleSeconds: Double = 0.5

    func run() async throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be from 1 to 1000") }
        let settle = Duration.milliseconds(Int64(settleSeconds * 1000))
        say("transfer: \(count) transfers, \(workers) workers each proposing every \(intervalMs) ms")
        let (rounds, failures, completions) = try await withSteadyLoad(
            batond: cluster.batond, workDir: common.workDir, prefix: "baton-bench-transfer",
            interval: .milliseconds(intervalMs), workers: workers
        ) { cluster, proposer in
            var rounds: [Round] = []
            for round in 1...count {
                try ChildProcesses.shared.requireRunning(cluster.replicas.map(\.processName))
                let leader = try await cluster.waitForLeader()
                guard
                    await proposer.firstCompletion(after: .now, timeout: .seconds(10), matching: { $0.node == leader })
                        != nil
                else {
                    throw BenchError(
                        "round \(round): no commit on leader n\(leader) within 10 s\n\(cluster.logTails())")
                }
                let requested = ContinuousClock.now
                let reply = try? await cluster.request(
                    leader, "/admin/transfer-leadership", method: .POST, body: "{}", timeout: .seconds(5)
                )
                let answered = ContinuousClock.now
                guard let reply, reply.status == 200 else {
                    let text = reply.map { "\($0.status) \(String(decoding: $0.body, as: UTF8.self))" } ?? "no answer"
                    throw BenchError("round \(round): transfer from n\(leader) failed: \(text)\n\(cluster.logTails())")
                }
                guard
                    let first = await proposer.firstCompletion(
                        after: requested, timeout: .seconds(10), matching: { $0.node != leader }
                    )
                else {
                    throw BenchError(
                        "round \(round): no commit on a new leader within 10 s of the transfer\n\(cluster.logTails())")
                }
                let before = proposer.lastCompletion(before: requested)?.at ?? requested
                let gap = Self.longestGap(proposer.completions(from: before, to: first.at).map(\.at))
                let steady = Self.longestGap(
                    proposer.completions(from: requested - .milliseconds(300), to: requested).map(\.at)
                )
                let r = Round(
                    round: round, from: leader, to: first.node, toFirstCommitMs: (first.at - requested).milliseconds,
                    gapMs: gap, steadyGapMs: steady, requestMs: (answered - requested).milliseconds
                )
                rounds.append(r)
                say(
                    "round \(round): n\(leader) → n\(first.node): first commit after \(format(r.toFirstCommitMs, 1)) ms, "
                        + "longest gap \(format(gap, 1)) ms (steady \(format(steady, 1)) ms), "
                        + "request \(format(r.requestMs ?? 0, 1)) ms"
                )
                try await Task.sleep(for: settle)
            }
            return rounds
        }
        let report = RoundsReport(
            machine: machineDescription(), benchmark: "transfer", proposeIntervalMs: Double(intervalMs),
            workers: workers, rounds: rounds, toFirstCommitMs: LatencySummary(rounds.map(\.toFirstCommitMs)),
            gapMs: LatencySummary(rounds.compactMap(\.gapMs)),
            steadyGapMs: LatencySummary(rounds.compactMap(\.steadyGapMs)),
            proposeFailures: failures, proposeCompletions: completions
        )
        printRounds("planned leadership transfer", report)
        try writeJSON(report, to: common.json)
    }

    /// The longest interval between consecutive instants (0 with fewer than two).
    static func longestGap(_ instants: [ContinuousClock.Instant]) -> Double {
        guard instants.count > 1 else { return 0 }
        return zip(instants, instants.dropFirst()).map { ($1 - $0).milliseconds }.max() ?? 0
    }
}
