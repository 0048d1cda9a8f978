import Foundation
import Synchronization

/// The steady client load of the failover and transfer benchmarks: `workers` loops, each sending
/// one `POST /admin/propose` every `interval` to whichever replica leads, following the 409's
/// leader hint and otherwise trying the next running replica. Every 200 is recorded with the
/// time it arrived and the replica that answered it, which is what the benchmarks measure.
final class SteadyProposer: Sendable {
    struct Completion: Sendable {
        var at: ContinuousClock.Instant
        var node: UInt64
    }

    private struct State {
        var completions: [Completion] = []
        var failures = 0
        var paused = false
        var stopped = false
    }

    let cluster: BatonCluster
    let interval: Duration
    let workers: Int
    /// Bounds memory and the run: a worker stops after this many requests.
    let maxRequestsPerWorker: Int
    private let state = Mutex(State())
    private static let notLeaderDecoder = JSONDecoder()

    init(cluster: BatonCluster, interval: Duration, workers: Int = 1, maxRequestsPerWorker: Int = 1_000_000) {
        self.cluster = cluster
        self.interval = interval
        self.workers = workers
        self.maxRequestsPerWorker = maxRequestsPerWorker
    }

    func stop() { state.withLock { $0.stopped = true } }
    func pause() { state.withLock { $0.paused = true } }
    func resume() { state.withLock { $0.paused = false } }
    var failures: Int { state.withLock { $0.failures } }
    var completedCount: Int { state.withLock { $0.completions.count } }

    /// Runs until `stop()`.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask { await self.runWorker(startingAt: self.cluster.ids[worker % self.cluster.ids.count]) }
            }
        }
    }

    private struct NotLeader: Decodable {
        var leader: UInt64?
    }

    private func runWorker(startingAt first: UInt64) async {
        let clock = ContinuousClock()
        let ids = cluster.ids
        var target = first
        func next(after id: UInt64) -> UInt64 { ids[(ids.firstIndex(of: id)! + 1) % ids.count] }
        for _ in 0..<maxRequestsPerWorker {
            let (paused, stopped) = state.withLock { ($0.paused, $0.stopped) }
            if stopped { return }
            if paused {
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            if !cluster.isRunning(target) {
                target = next(after: target)
                try? await Task.sleep(for: .milliseconds(1))
                continue
            }
            let sent = clock.now
            let reply = try? await cluster.request(
                target, "/admin/propose", method: .POST, body: "{\"count\":1,\"size\":256}", timeout: .seconds(2)
            )
            let answered = clock.now
            if let reply, reply.status == 200 {
                state.withLock { $0.completions.append(Completion(at: answered, node: target)) }
                try? await clock.sleep(until: sent + interval, tolerance: .zero)
                continue
            }
            state.withLock { $0.failures += 1 }
            if let reply, reply.status == 409,
                let hint = (try? Self.notLeaderDecoder.decode(NotLeader.self, from: reply.body))?.leader,
                hint != target, cluster.isRunning(hint)
            {
                target = hint
                continue
            }
            target = next(after: target)
            // A refused connection or a follower's 409 comes back at once; do not spin the CPU the
            // replicas need for their election.
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Completions in [from, to], in time order.
    func completions(from: ContinuousClock.Instant, to: ContinuousClock.Instant) -> [Completion] {
        recent(since: from).filter { $0.at <= to }.sorted { $0.at < $1.at }
    }

    /// The latest completion before `instant` (looking back at most 10 s).
    func lastCompletion(before instant: ContinuousClock.Instant) -> Completion? {
        recent(since: instant - .seconds(10)).filter { $0.at < instant }.max { $0.at < $1.at }
    }

    /// Completions at or after `since`. They are appended in nearly time order (workers race by
    /// microseconds), so the scan walks back from the end with a second of slack.
    private func recent(since: ContinuousClock.Instant) -> [Completion] {
        state.withLock { state in
            var found: [Completion] = []
            for c in state.completions.reversed() {
                if c.at < since - .seconds(1) { break }
                if c.at >= since { found.append(c) }
            }
            return found
        }
    }

    /// The first completion after `instant` that satisfies `matching`, waiting up to `timeout`.
    func firstCompletion(
        after instant: ContinuousClock.Instant, timeout: Duration, matching: @Sendable (Completion) -> Bool
    ) async -> Completion? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = recent(since: instant).filter { $0.at > instant && matching($0) }.min { $0.at < $1.at }
            if let found { return found }
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}
