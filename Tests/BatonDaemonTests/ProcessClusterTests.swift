import BatonJournal
import Foundation
import RaftCore
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real `batond` processes on loopback under kill -9, SIGSTOP, transfers and full restarts. After
/// each: the replicas converge, every journal's chain verifies, and no acknowledged entry is lost.
@Suite("batond processes", .serialized)
struct ProcessClusterTests {
    /// Entries the cluster acknowledged (committed) to a client, by position.
    final class Acknowledged: Sendable {
        private let positions = Mutex<[LogPosition]>([])
        func add(_ reply: LocalCluster.ProposeReply) {
            guard let first = position(reply.first), let last = position(reply.last) else { return }
            positions.withLock { list in
                // A batch is contiguous and in one term.
                for index in first.index...last.index { list.append(LogPosition(term: last.term, index: index)) }
            }
        }
        var all: [LogPosition] { positions.withLock { $0 } }
    }

    /// Proposes batches until `stop` says so, recording what was acknowledged.
    static func load(_ cluster: LocalCluster, acknowledged: Acknowledged, until stop: @Sendable () -> Bool) async {
        while !stop() {
            if let reply = await cluster.propose(count: 10) {
                acknowledged.add(reply)
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Stops every replica, then checks each journal and that every acknowledged entry is in it.
    static func checkJournals(_ cluster: LocalCluster, acknowledged: [LogPosition]) async throws {
        for id in cluster.replicas.keys.sorted() {
            let status = try await cluster.stop(id)
            #expect(status == 0, "n\(id) exited with \(status) on SIGTERM\n\(cluster.tail(id))")
        }
        var logs: [UInt64: [LogIndex: LogEntry]] = [:]
        for id in cluster.replicas.keys.sorted() {
            let report = try cluster.verifyJournal(id)
            #expect(report.isIntact, "n\(id): \(report)")
            logs[id] = try cluster.committedLog(id)
        }
        for ack in acknowledged {
            for (id, log) in logs {
                let entry = log[ack.index]
                #expect(
                    entry?.term == ack.term,
                    "acknowledged entry \(ack) is \(entry.map(\.description) ?? "missing") on n\(id)")
            }
        }
        // Every replica holds the same committed entries where their committed ranges overlap.
        let reference = logs.values.max { $0.count < $1.count } ?? [:]
        for (id, log) in logs {
            for (index, entry) in log { #expect(reference[index] == entry, "n\(id) disagrees at \(index)") }
        }
    }

    /// Runs `body` against a started cluster; on any error, records it with every replica's log.
    static func withCluster(size: Int = 3, _ body: (LocalCluster) async throws -> Void) async throws {
        let cluster = try LocalCluster(size: size)
        try cluster.startAll()
        do {
            try await body(cluster)
        } catch {
            Issue.record("\(error)\n\(cluster.logs())")
        }
        await cluster.shutdown()
    }

    @Test func killLeaderWhileProposing() async throws {
        try await Self.withCluster { cluster in
            let first = try await cluster.waitForLeader()
            let acknowledged = Acknowledged()
            let stop = Mutex(false)
            async let loader: Void = Self.load(cluster, acknowledged: acknowledged, until: { stop.withLock { $0 } })
            try await Task.sleep(for: .milliseconds(700))
            let killedAt = ContinuousClock.now
            cluster.kill9(first)
            let second = try await cluster.waitForLeader(excluding: [first])
            let failover = ContinuousClock.now - killedAt
            #expect(second != first)
            #expect(failover < .seconds(3), "failover took \(failover)")
            try await Task.sleep(for: .milliseconds(500))
            try cluster.start(first)
            try await Task.sleep(for: .milliseconds(500))
            stop.withLock { $0 = true }
            await loader
            #expect(acknowledged.all.count > 50, "the load must have made progress on both sides of the kill")
            _ = try await cluster.waitForConvergence(atLeast: acknowledged.all.map(\.index).max() ?? 0)
            try await Self.checkJournals(cluster, acknowledged: acknowledged.all)
        }
    }

    @Test func stoppedLeaderStepsDownWithoutALease() async throws {
        try await Self.withCluster { cluster in
            let first = try await cluster.waitForLeader()
            // Elected is not yet settled: the lease starts with the first heartbeat round a
            // quorum acknowledges (on a loaded machine, a few rounds after the election).
            var before = try #require(await cluster.view(first))
            for _ in 0..<100 where before.leaseRemainingMs == nil && before.role == "leader" {
                try await Task.sleep(for: .milliseconds(20))
                before = try #require(await cluster.view(first))
            }
            #expect(before.leaseRemainingMs != nil, "a settled leader holds its lease: \(before)")
            cluster.signal(first, SIGSTOP)
            let second = try await cluster.waitForLeader(excluding: [first])
            try await Task.sleep(for: .milliseconds(800))  // well past the election timeout
            cluster.signal(first, SIGCONT)
            // From the moment it runs again, it must never claim a lease: its clock says the
            // lease ran out while it was stopped, whatever it still believes about its role.
            let deadline = ContinuousClock.now + .seconds(3)
            var steppedDown = false
            while ContinuousClock.now < deadline {
                if let view = await cluster.view(first) {
                    #expect(
                        view.leaseRemainingMs == nil || view.role != "leader" || view.term > before.term,
                        "n\(first) claims a lease after SIGCONT: \(view)")
                    if view.role == "follower" && view.term > before.term {
                        steppedDown = true
                        #expect(view.leader == second || view.leader != first)
                        break
                    }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(steppedDown, "n\(first) did not step down after SIGCONT")
            let acknowledged = Acknowledged()
            for _ in 0..<5 { if let r = await cluster.propose(count: 10) { acknowledged.add(r) } }
            _ = try await cluster.waitForConvergence(atLeast: acknowledged.all.map(\.index).max() ?? 0)
            try await Self.checkJournals(cluster, acknowledged: acknowledged.all)
        }
    }

    @Test func transferLeadershipUnderLoad() async throws {
        try await Self.withCluster { cluster in
            let first = try await cluster.waitForLeader()
            let acknowledged = Acknowledged()
            let stop = Mutex(false)
            async let loader: Void = Self.load(cluster, acknowledged: acknowledged, until: { stop.withLock { $0 } })
            try await Task.sleep(for: .milliseconds(400))
            let target = cluster.replicas.keys.sorted().first { $0 != first }!
            let (status, body) = try await cluster.request(
                first, "/admin/transfer-leadership", method: .POST, body: "{\"to\": \(target)}", timeout: 5
            )
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            let second = try await cluster.waitForLeader()
            #expect(second == target)
            try await Task.sleep(for: .milliseconds(400))
            stop.withLock { $0 = true }
            await loader
            _ = try await cluster.waitForConvergence(atLeast: acknowledged.all.map(\.index).max() ?? 0)
            try await Self.checkJournals(cluster, acknowledged: acknowledged.all)
        }
    }

    @Test func restartEveryReplicaAtOnce() async throws {
        try await Self.withCluster { cluster in
            _ = try await cluster.waitForLeader()
            let acknowledged = Acknowledged()
            for _ in 0..<10 { if let r = await cluster.propose(count: 20) { acknowledged.add(r) } }
            for id in cluster.replicas.keys { cluster.kill9(id) }
            try cluster.startAll()
            _ = try await cluster.waitForLeader()
            if let r = await cluster.propose(count: 5) { acknowledged.add(r) }
            _ = try await cluster.waitForConvergence(atLeast: acknowledged.all.map(\.index).max() ?? 0)
            #expect(acknowledged.all.count >= 200)
            try await Self.checkJournals(cluster, acknowledged: acknowledged.all)
        }
    }

    @Test func sigtermOnTheLeaderHandsOver() async throws {
        try await Self.withCluster { cluster in
            let first = try await cluster.waitForLeader()
            let started = ContinuousClock.now
            let status = try await cluster.stop(first)
            #expect(status == 0)
            #expect(ContinuousClock.now - started < .seconds(5), "a stopping leader exits within a bounded time")
            let second = try await cluster.waitForLeader(excluding: [first], timeout: .seconds(3))
            #expect(second != first)
            let log = cluster.tail(first, lines: 200)
            #expect(log.contains("leadership handed over"), "the leader transferred before exiting\n\(log)")
        }
    }
}
