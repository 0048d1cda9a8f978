import BatonJournal
import Foundation
import RaftCore
import Testing

/// Membership changes on real processes, as the runbook does them: a dead replica is removed, a
/// new one joins as a learner on an empty data directory under a new node id, catches up and is
/// promoted; the old one, started again with its old data, is refused by every member and
/// changes nothing. etcd's safety checks refuse what would lose quorum or promote a laggard.
@Suite("membership on real processes", .serialized)
struct MembershipProcessTests {
    static func batonctl(_ arguments: [String], admin: String) throws -> (status: Int32, output: String) {
        try BatonctlTests.run(arguments + ["--admin", admin])
    }

    @Test func replaceADeadReplicaAndRefuseItsReturn() async throws {
        // n4 is the replacement: no founder's configuration lists it, so its address reaches the
        // members only through `member add`.
        let cluster = try LocalCluster(size: 4, spares: [4])
        for id: UInt64 in [1, 2, 3] { try cluster.start(id) }
        do {
            let admin = cluster.replicas.keys.sorted().map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
            let leader = try await cluster.waitForLeader(agreeing: 2)
            for _ in 0..<5 { _ = await cluster.propose(count: 20) }
            let dead = [UInt64](arrayLiteral: 1, 2, 3).first { $0 != leader }!
            let survivor = [UInt64](arrayLiteral: 1, 2, 3).first { $0 != leader && $0 != dead }!
            cluster.kill9(dead)
            // Let the leader's CheckQuorum rounds see it silent.
            try await Task.sleep(for: .seconds(1))

            // Removing the live follower would leave the leader and a dead voter: no quorum.
            let unsafe = try Self.batonctl(["member", "remove", "\(survivor)"], admin: admin)
            #expect(unsafe.status != 0, "\(unsafe.output)")
            #expect(unsafe.output.contains("fewer than the quorum"), "\(unsafe.output)")

            let removed = try Self.batonctl(["member", "remove", "\(dead)"], admin: admin)
            #expect(removed.status == 0, "\(removed.output)")
            #expect(removed.output.contains("remove(n\(dead)) committed"), "\(removed.output)")
            #expect(!removed.output.contains("learners"), "\(removed.output)")

            // A replica joins as a learner: batonctl says so without --learner.
            // By name: the members resolve it on every dial (as a StatefulSet pod's DNS name).
            let address = "localhost:\(cluster.replicas[4]!.peerPort)"
            let voterAdd = try Self.batonctl(["member", "add", "4", address], admin: admin)
            #expect(voterAdd.status != 0 && voterAdd.output.contains("--learner"), "\(voterAdd.output)")
            let added = try Self.batonctl(["member", "add", "4", address, "--learner"], admin: admin)
            #expect(added.status == 0, "\(added.output)")
            #expect(added.output.contains("add-learner(n4@\(address)) committed"), "\(added.output)")
            #expect(added.output.contains("learners 4"), "\(added.output)")

            // Not running yet, so not caught up: promoting it is refused.
            let early = try Self.batonctl(["member", "promote", "4"], admin: admin)
            #expect(early.status != 0, "\(early.output)")
            #expect(early.output.contains("entries behind"), "\(early.output)")

            for _ in 0..<5 { _ = await cluster.propose(count: 20) }
            try cluster.start(4)
            var caughtUp = false
            var list = ""
            for _ in 0..<150 where !caughtUp {
                list = try Self.batonctl(["member", "list"], admin: admin).output
                caughtUp = list.split(separator: "\n").contains { line in
                    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                    return fields.first == "n4" && fields.contains("learner") && fields.count >= 4 && fields[3] == "0"
                }
                if !caughtUp { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(caughtUp, "n4 caught up as a learner:\n\(list)\n\(cluster.tail(4))")
            let promoted = try Self.batonctl(["member", "promote", "4"], admin: admin)
            #expect(promoted.status == 0, "\(promoted.output)")
            #expect(promoted.output.contains("voters \([leader, survivor, 4].sorted().map(String.init).joined(separator: ","))"), "\(promoted.output)")

            // The three voters commit without the dead one's id.
            let termBefore = try #require(await cluster.view(leader)).term
            #expect(await cluster.propose(count: 20) != nil)

            // The old replica comes back with its old data and its old vote. It must be refused
            // by every member, not rejoin, and not disturb the term.
            try cluster.start(dead)
            try await Task.sleep(for: .seconds(3))
            for _ in 0..<5 { #expect(await cluster.propose(count: 20) != nil) }
            let leaderNow = try await cluster.waitForLeader(agreeing: 3)
            #expect(leaderNow == leader)
            #expect(try #require(await cluster.view(leader)).term == termBefore, "the returning replica moved the term")
            let oldView = await cluster.view(dead)
            #expect(oldView?.role != "leader" && oldView?.leader == nil, "\(String(describing: oldView))")
            #expect(cluster.tail(dead, lines: 400).contains("is not in the peer list"), "\(cluster.tail(dead))")
            let table = try Self.batonctl(["member", "list"], admin: admin).output
            #expect(!table.contains("n\(dead) "), "\(table)")

            // The cluster as it is now converges, and every journal verifies and agrees.
            cluster.kill9(dead)
            let applied = try await cluster.waitForConvergence()
            var logs: [UInt64: [LogIndex: LogEntry]] = [:]
            // Followers first: a leader stopped first hands over, and its successor's no-op
            // would be committed on the others only.
            for id in [survivor, 4, leader] {
                let status = try await cluster.stop(id)
                #expect(status == 0, "n\(id) exited with \(status)\n\(cluster.tail(id))")
                let report = try cluster.verifyJournal(id)
                #expect(report.isIntact, "n\(id): \(report)")
                logs[id] = try cluster.committedLog(id)
            }
            for id in [survivor, 4] {
                #expect(logs[id]?.count == logs[leader]?.count, "n\(id) holds \(logs[id]?.count ?? 0) committed entries")
                for (index, entry) in logs[leader] ?? [:] { #expect(logs[id]?[index] == entry, "n\(id) disagrees at \(index)") }
            }
            // The replacement holds the whole log from index 1, with its own addition in it.
            #expect(logs[4]?[1] != nil && (logs[4]?.count ?? 0) >= Int(applied) - 1)
            #expect(logs[4]?.values.contains { $0.payload == .membership(.addLearner(4, address: address)) } == true)
        } catch {
            Issue.record("\(error)\n\(cluster.logs())")
        }
        await cluster.shutdown()
    }
}
