@testable import BatonTransport
import BatonWire
import NIOCore
import NIOPosix
import RaftCore
import Synchronization
import Testing

/// Protocol 2's `replicaStatus` frames: a replica's word on its own disk and journal reaches its
/// peers, is believed only about the peer that sent it, and is never sent to a protocol-1 peer.
@Suite("Replica status frames on loopback", .serialized, .timeLimit(.minutes(2)))
struct ReplicaStatusTests {
    @Test("a replica's status reaches its peer, and a newer one replaces it")
    func statusReachesThePeer() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]])
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            let first = ReplicaStatus(node: 1, diskFreeBasisPoints: 4_200, journal: .verified(through: 77))
            a.publish(first)
            #expect(await eventually { b.replicaStatuses()[1]?.status == first })
            let broken = ReplicaStatus(node: 1, diskFreeBasisPoints: 150, journal: .failed(reason: "chain broken at entry 12"))
            a.publish(broken)
            #expect(await eventually { b.replicaStatuses()[1]?.status == broken })
            #expect((b.replicaStatuses()[1]?.age ?? .seconds(99)) < .seconds(5))
            #expect(a.replicaStatuses().isEmpty, "b published nothing")
            // Raft traffic still flows beside it.
            let inbox = Inbox(b)
            a.send(heartbeat(from: 1, to: 2, round: 9))
            #expect(await eventually { inbox.messages.contains { round(of: $0) == 9 } })
        }
    }

    @Test("a status about another node closes the connection and is not kept")
    func forgedStatus() async throws {
        let ports = try await freePorts(2)
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0], 3: ports[0]])
        try await withTransports([b]) {
            try await b.start()
            let raw = try await HostilePeerTests.connectRaw(port: ports[1])
            let hello = try Frame(clusterID: 1, body: .hello(Hello(nodeID: 1, clusterID: 1, advertisedName: "n1"))).encoded()
            let forged = try Frame(
                clusterID: 1, body: .replicaStatus(ReplicaStatus(node: 3, diskFreeBasisPoints: 0, journal: .unchecked))
            ).encoded()
            #expect(try await HostilePeerTests.closedByServer(raw, sending: hello + forged, within: .seconds(5)))
            #expect(b.replicaStatuses().isEmpty)
        }
    }

    @Test("a peer announcing protocol 1 is accepted, and a dialler sends a protocol-1 acceptor no status")
    func protocolOnePeers() async throws {
        let ports = try await freePorts(2)
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([b]) {
            try await b.start()
            // As acceptor: a v1 hello gets a helloAccepted.
            let raw = try await HostilePeerTests.connectRaw(port: ports[1])
            let answer = try await raw.executeThenClose { inbound, outbound -> Frame.Body? in
                try await outbound.write(
                    ByteBuffer(
                        bytes: try Frame(
                            clusterID: 1, body: .hello(Hello(nodeID: 1, clusterID: 1, protocolVersion: 1, advertisedName: "old"))
                        ).encoded()))
                var decoder = FrameDecoder()
                for try await chunk in inbound {
                    decoder.append(chunk.readableBytesView)
                    if let frame = try decoder.next() { return frame.body }
                }
                return nil
            }
            guard case .helloAccepted(let hello)? = answer else {
                Issue.record("\(String(describing: answer))")
                return
            }
            #expect(hello.protocolVersion == WireFormat.protocolVersion)
        }

        // As dialler: an acceptor that answers as protocol 1 gets the raft frames and no status.
        let received = Mutex<[FrameType]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: ports[0]) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let serving = Task {
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    try? await connection.executeThenClose { inbound, outbound in
                        var decoder = FrameDecoder()
                        for try await chunk in inbound {
                            decoder.append(chunk.readableBytesView)
                            while let frame = try decoder.next() {
                                received.withLock { $0.append(frame.type) }
                                if case .hello = frame.body {
                                    try await outbound.write(
                                        ByteBuffer(
                                            bytes: try Frame(
                                                clusterID: 1,
                                                body: .helloAccepted(
                                                    Hello(nodeID: 1, clusterID: 1, protocolVersion: 1, advertisedName: "old"))
                                            ).encoded()))
                                }
                            }
                        }
                    }
                }
            }
        }
        let dialler = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([dialler]) {
            try await dialler.start()
            dialler.publish(ReplicaStatus(node: 2, diskFreeBasisPoints: 9_000, journal: .unchecked))
            #expect(
                await eventually {
                    dialler.send(heartbeat(from: 2, to: 1, round: 3))
                    return received.withLock { $0.contains(.raft) }
                })
            dialler.publish(ReplicaStatus(node: 2, diskFreeBasisPoints: 8_000, journal: .unchecked))
            dialler.send(heartbeat(from: 2, to: 1, round: 4))
            #expect(await eventually { received.withLock { $0.filter { $0 == .raft }.count >= 2 } })
            #expect(!received.withLock { $0.contains(.replicaStatus) }, "\(received.withLock { $0 })")
        }
        serving.cancel()
        try? await server.channel.close()
    }
}
