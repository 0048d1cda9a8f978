import BatonTransport
import BatonWire
import NIOCore
import NIOPosix
import RaftCore
import Testing

/// Real transports on 127.0.0.1. Serialized: they share the machine's two cores with each other.
@Suite("Peer transport on loopback", .serialized, .timeLimit(.minutes(2)))
struct PeerTransportTests {
    @Test("two transports exchange messages both ways")
    func twoWay() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]])
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            #expect(a.boundPort == ports[0])
            let inboxA = Inbox(a)
            let inboxB = Inbox(b)
            for round in 1...50 as ClosedRange<UInt64> {
                a.send(heartbeat(from: 1, to: 2, round: round))
                b.send(heartbeat(from: 2, to: 1, round: round))
            }
            #expect(await eventually { inboxA.messages.count == 50 && inboxB.messages.count == 50 })
            // In order, per direction, and nothing lost on a healthy connection.
            #expect(inboxB.messages.map(round(of:)) == Array(1...50))
            #expect(inboxA.messages.allSatisfy { $0.from == 2 && $0.to == 1 })
            #expect(await eventually { status(a, 2)?.connected == true && status(b, 1)?.connected == true })
        }
    }

    @Test("three transports: every pair exchanges in both directions")
    func threeNodes() async throws {
        let ports = try await freePorts(3)
        let ids: [NodeID] = [1, 2, 3]
        let transports = ids.enumerated().map { index, id in
            makeTransport(
                id,
                port: ports[index],
                peers: Dictionary(
                    uniqueKeysWithValues: ids.enumerated().filter { $0.element != id }.map {
                        ($0.element, ports[$0.offset])
                    })
            )
        }
        try await withTransports(transports) {
            for transport in transports { try await transport.start() }
            let inboxes = transports.map(Inbox.init)
            for (index, from) in ids.enumerated() {
                for to in ids where to != from { transports[index].send(heartbeat(from: from, to: to)) }
            }
            for (index, to) in ids.enumerated() {
                let expected = Set(ids.filter { $0 != to })
                #expect(
                    await eventually { Set(inboxes[index].messages.map(\.from)) == expected }, "\(to) heard from all")
            }
            // A message for an unknown node is dropped, not delivered anywhere.
            transports[0].send(heartbeat(from: 1, to: 42))
            #expect(transports[0].peerStatus().map(\.id) == [2, 3])
        }
    }

    @Test("without TLS a peer from beyond loopback is refused unless plaintext is allowed explicitly")
    func plaintextIsLoopbackOnly() async throws {
        let host = try #require(nonLoopbackAddress(), "this host needs a non-loopback IPv4 address for the test")
        for allowed in [false, true] {
            let ports = try await freePorts(2)
            // a listens on every address; b dials a's non-loopback address, so a sees b's
            // connection come from that address, not from 127.0.0.1.
            let a = makeTransport(
                1, port: ports[0], peers: [2: ports[1]], listenHost: "0.0.0.0", peerHost: "127.0.0.1",
                allowPlaintextFromNetwork: allowed)
            let b = makeTransport(2, port: ports[1], peers: [1: ports[0]], peerHost: host)
            try await withTransports([a, b]) {
                try await a.start()
                try await b.start()
                let inboxA = Inbox(a)
                b.send(heartbeat(from: 2, to: 1))
                if allowed {
                    #expect(await eventually { inboxA.messages.count == 1 })
                    #expect(a.refusedPlaintextCount == 0)
                } else {
                    #expect(await eventually { a.refusedPlaintextCount >= 2 && (status(b, 1)?.reconnects ?? 0) >= 2 })
                    #expect(inboxA.messages.isEmpty)
                    #expect(status(b, 1)?.connected == false)
                }
            }
        }
    }

    @Test("a peer with another cluster id is refused, and told why")
    func wrongCluster() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, cluster: 1, port: ports[0], peers: [2: ports[1]])
        let stranger = makeTransport(2, cluster: 99, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, stranger]) {
            try await a.start()
            try await stranger.start()
            let inboxA = Inbox(a)
            stranger.send(heartbeat(from: 2, to: 1))
            #expect(
                await eventually {
                    status(stranger, 1)?.lastError?.contains("cluster id 99 does not match cluster id 1 of n1") == true
                },
                "\(String(describing: status(stranger, 1)))"
            )
            #expect(status(stranger, 1)?.connected == false)
            try await Task.sleep(for: .milliseconds(200))
            #expect(inboxA.messages.isEmpty)
        }
    }

    @Test("a node id that is not in the acceptor's peer list is refused, and told why")
    func unknownNode() async throws {
        let ports = try await freePorts(3)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]])
        let intruder = makeTransport(9, port: ports[2], peers: [1: ports[0]])
        try await withTransports([a, intruder]) {
            try await a.start()
            try await intruder.start()
            let inboxA = Inbox(a)
            intruder.send(heartbeat(from: 9, to: 1))
            #expect(
                await eventually {
                    status(intruder, 1)?.lastError?.contains("node id n9 is not in the peer list of n1") == true
                },
                "\(String(describing: status(intruder, 1)))"
            )
            try await Task.sleep(for: .milliseconds(200))
            #expect(inboxA.messages.isEmpty)
            #expect(status(intruder, 1)?.reconnects ?? 0 >= 1, "the intruder keeps retrying with backoff")
        }
    }

    @Test("a dialler reconnects after the remote transport is shut down and started again on the same port")
    func reconnect() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]])
        let b1 = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await a.start()
        try await withTransports([a]) {
            try await b1.start()
            let inbox1 = Inbox(b1)
            a.send(heartbeat(from: 1, to: 2, round: 1))
            #expect(await eventually { inbox1.messages.count == 1 })
            await b1.shutdown()
            #expect(await eventually { status(a, 2)?.connected == false })
            let reconnectsBefore = status(a, 2)?.reconnects ?? 0

            let b2 = makeTransport(2, port: ports[1], peers: [1: ports[0]])
            try await withTransports([b2]) {
                try await b2.start()
                let inbox2 = Inbox(b2)
                // A message written into the dying connection may be lost (Raft resends); keep sending.
                var round: UInt64 = 2
                let delivered = await eventually {
                    round += 1
                    a.send(heartbeat(from: 1, to: 2, round: round))
                    return !inbox2.messages.isEmpty
                }
                #expect(delivered)
                #expect(status(a, 2)?.connected == true)
                #expect((status(a, 2)?.reconnects ?? 0) > reconnectsBefore)
            }
        }
    }

    @Test("while a peer is down its queue is bounded: new messages are dropped and counted")
    func boundedQueue() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]], queue: 8)
        try await withTransports([a]) {
            try await a.start()
            for round in 1...20 as ClosedRange<UInt64> { a.send(heartbeat(from: 1, to: 2, round: round)) }
            let peer = try #require(status(a, 2))
            #expect(peer.queued == 8)
            #expect(peer.dropped == 12)
            #expect(peer.connected == false)
            #expect(await eventually { status(a, 2)?.lastError != nil && (status(a, 2)?.reconnects ?? 0) >= 2 })

            // When the peer comes up, the oldest queued messages (the ones kept) are delivered.
            let b = makeTransport(2, port: ports[1], peers: [1: ports[0]])
            try await withTransports([b]) {
                try await b.start()
                let inbox = Inbox(b)
                #expect(await eventually { inbox.messages.count == 8 })
                #expect(inbox.messages.first.map(round(of:)) == 1)
                #expect(status(a, 2)?.queued == 0)
            }
        }
    }

    @Test("garbage from a raw socket closes that connection only; the peers carry on")
    func garbageConnection() async throws {
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]])
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            let inboxA = Inbox(a)
            b.send(heartbeat(from: 2, to: 1, round: 1))
            #expect(await eventually { inboxA.messages.count == 1 })

            let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: ports[0]) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let closedByServer = try await raw.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
                return try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        do {
                            for try await _ in inbound {}
                        } catch {
                            // A reset is a close too.
                        }
                        return true
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(5))
                        return false
                    }
                    let first = try await group.next() ?? false
                    group.cancelAll()
                    return first
                }
            }
            #expect(closedByServer, "the server closes a connection that sends garbage")

            b.send(heartbeat(from: 2, to: 1, round: 2))
            #expect(await eventually { inboxA.messages.count == 2 })
            let inboxB = Inbox(b)
            a.send(heartbeat(from: 1, to: 2, round: 3))
            #expect(await eventually { inboxB.messages.count == 1 })
        }
    }

    @Test("invalid options are refused at start with every problem named")
    func invalidOptions() async throws {
        let transport = PeerTransport(
            options: PeerTransportOptions(
                clusterID: 1, nodeID: 1, advertisedName: String(repeating: "n", count: 300),
                listenPort: 70_000, peers: [2: PeerAddress(host: "127.0.0.1", port: 0)], sendQueueCapacity: 0
            ),
            logger: testLogger("invalid")
        )
        await #expect {
            try await transport.start()
        } throws: { error in
            guard case TransportError.invalidOptions(let problems) = error else { return false }
            return problems.count == 4
        }
        await transport.shutdown()
    }
}
