import BatonTestCluster
import BatonWire
import Foundation
import NIOCore
import NIOPosix
import RaftCore
import Testing

/// A hostile peer frame against a running cluster (issue 10). Without TLS the peer port trusts
/// loopback, so a local process can shake hands as a member and speak Raft. Every frame below
/// trapped or halted the replica that read it before the node screened its input: a second
/// leader in the leader's own term (integrity failure → fatalError), a term at the edge of
/// UInt64 (`term + 1`), an acknowledgement of index UInt64.max (`Progress.acknowledge`), an
/// InstallSnapshot through UInt64.max. The leader must refuse them, drop the connection, keep
/// its leadership and trade on.
@Suite(.serialized) struct HostilePeerProcessTests {
    typealias Raw = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// Dials `port`, says hello as `claimed`, sends `frames` and reads until the replica closes.
    /// Returns whether it closed the connection within `within`.
    static func speak(
        to port: Int, as claimed: NodeID, frames: [RaftMessage], within: Duration
    ) async throws -> Bool {
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
            }
        return try await raw.executeThenClose { inbound, outbound in
            let hello = Hello(nodeID: claimed, clusterID: 777, advertisedName: "hostile")
            try await outbound.write(ByteBuffer(bytes: try Frame(clusterID: 777, body: .hello(hello)).encoded()))
            for message in frames {
                try await outbound.write(ByteBuffer(bytes: try Frame(clusterID: 777, body: .raft(message)).encoded()))
            }
            return try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    do { for try await _ in inbound {} } catch {}
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: within)
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
        }
    }

    static func leaderTerm(_ cluster: TradingCluster, _ id: UInt64) async throws -> UInt64 {
        let (_, body) = try await cluster.get("\(cluster.replicas[id]!.adminURL)/leader")
        let json = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        return try #require((json?["term"] as? NSNumber)?.uint64Value)
    }

    static func refusedTotal(_ cluster: TradingCluster, _ id: UInt64) async throws -> Double {
        let (_, body) = try await cluster.get("\(cluster.replicas[id]!.adminURL)/metrics")
        let line = String(decoding: body, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("baton_raft_refused_messages_total") }
        return line.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0
    }

    @Test func hostilePeerFramesDoNotStopTheLeader() async throws {
        var options = TradingCluster.Options()
        options.fastWindow = 3
        options.slowWindow = 8
        options.tickRate = 600
        options.symbols = ["AAPL"]
        let cluster = try TradingCluster(options: options)
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("a first fill", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 1
        }
        let term = try await Self.leaderTerm(cluster, leader)
        let follower = try #require(cluster.ids.first { $0 != leader })
        let me = NodeID(leader)
        let claimed = NodeID(follower)
        func message(_ term: Term, _ body: RaftMessage.Body) -> RaftMessage {
            RaftMessage(from: claimed, to: me, term: term, body: body)
        }
        let hostile: [[RaftMessage]] = [
            [message(term, .heartbeat(Heartbeat(leaderCommit: 1 << 40, round: 1)))],
            [message(term, .appendEntriesResponse(AppendEntriesResponse(index: .max, rejected: false, round: 1)))],
            [message(.max, .timeoutNow)],
            [message(.max - 1, .heartbeat(Heartbeat(leaderCommit: 0, round: 1)))],
            [
                message(
                    term,
                    .installSnapshot(
                        InstallSnapshot(
                            snapshot: Snapshot(
                                metadata: SnapshotMetadata(
                                    last: LogPosition(term: term, index: .max),
                                    configuration: ClusterConfiguration(voters: [1, 2, 3])),
                                data: [0]),
                            round: 1)))
            ],
        ]
        let port = cluster.replicas[leader]!.peerPort
        for frames in hostile {
            #expect(
                try await Self.speak(to: port, as: claimed, frames: frames, within: .seconds(10)),
                "the leader drops a connection that sent \(frames)")
        }
        #expect(cluster.ids.allSatisfy { cluster.isRunning($0) }, "every replica still runs\n\(cluster.logs())")
        #expect(try await Self.refusedTotal(cluster, leader) >= Double(hostile.count))
        #expect(try await Self.leaderTerm(cluster, leader) == term, "no frame moved the term")
        #expect(await cluster.tradingLeader() == leader, "the leader kept its lease")
        let fillsBefore = try await cluster.venueStatistics().fills
        try await cluster.waitUntil("trading goes on after the hostile frames", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= fillsBefore + 3
        }
        let log = try String(contentsOfFile: cluster.replicas[leader]!.logPath, encoding: .utf8)
        #expect(log.contains("refused a peer message that no correct peer sends"))
        #expect(cluster.ids.allSatisfy { cluster.isRunning($0) })
        cluster.removeDirectory()
    }
}
