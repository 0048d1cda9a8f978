@testable import BatonTransport
import BatonWire
import NIOCore
import NIOPosix
import RaftCore
import Testing

/// What a connection may do before and after its handshake is bounded: the first frame's size,
/// how many connections a source (and everyone) may hold open, and the bytes queued each way.
@Suite("Hostile peers on loopback", .serialized, .timeLimit(.minutes(2)))
struct HostilePeerTests {
    static func transport(
        _ id: NodeID, port: Int, peers: [NodeID: Int], perSource: Int = 8, total: Int = 64,
        handshakeTimeout: Duration = .seconds(30)
    ) -> PeerTransport {
        PeerTransport(
            options: PeerTransportOptions(
                clusterID: 1, nodeID: id, listenPort: port,
                peers: peers.mapValues { PeerAddress(host: "127.0.0.1", port: $0) },
                reconnectBackoff: ReconnectBackoff(minimum: .milliseconds(20), maximum: .milliseconds(200)),
                maxInboundConnections: total, maxInboundConnectionsPerSource: perSource,
                handshakeTimeout: handshakeTimeout, connectTimeout: .seconds(1)
            ),
            logger: testLogger("hostile.\(id)")
        )
    }

    typealias RawConnection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connectRaw(port: Int) async throws -> RawConnection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try RawConnection(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Sends `bytes` (if any) and waits up to `within` for the server to close; true if it did.
    static func closedByServer(_ raw: RawConnection, sending bytes: [UInt8] = [], within: Duration) async throws
        -> Bool
    {
        try await raw.executeThenClose { inbound, outbound in
            if !bytes.isEmpty { try await outbound.write(ByteBuffer(bytes: bytes)) }
            return try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    do { for try await _ in inbound {} } catch {}  // a reset is a close too
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

    @Test("a first frame larger than a hello is refused from its header, long before the handshake timeout")
    func oversizeFirstFrame() async throws {
        let ports = try await freePorts(1)
        let a = Self.transport(1, port: ports[0], peers: [2: 1])
        try await withTransports([a]) {
            try await a.start()
            // A well-formed header announcing a 64 KiB raft frame: legal after a handshake (the
            // limit is 16 MiB), not as a connection's first words. Only the header is sent.
            var header = try Array(Frame(clusterID: 1, body: .raft(heartbeat(from: 2, to: 1))).encoded().prefix(20))
            let length = UInt32(64 << 10)
            header[16...19] = [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
            let raw = try await Self.connectRaw(port: ports[0])
            // The handshake timeout is 30 s: a close within 10 s is the frame limit's doing.
            #expect(try await Self.closedByServer(raw, sending: header, within: .seconds(10)))
        }
    }

    @Test("connections over the per-source cap are closed at accept and counted; a real peer gets in once they go")
    func perSourceCap() async throws {
        let ports = try await freePorts(2)
        let a = Self.transport(1, port: ports[0], peers: [2: ports[1]], perSource: 2)
        try await withTransports([a]) {
            try await a.start()
            let first = try await Self.connectRaw(port: ports[0])
            let second = try await Self.connectRaw(port: ports[0])
            #expect(await eventually { a.refusedOverCapCount == 0 })
            let third = try await Self.connectRaw(port: ports[0])
            #expect(try await Self.closedByServer(third, within: .seconds(10)), "the third from 127.0.0.1 is closed")
            #expect(a.refusedOverCapCount == 1)
            // The two idle ones hold their places until they go (or the handshake timeout).
            try await first.executeThenClose { _, _ in }
            try await second.executeThenClose { _, _ in }

            let b = Self.transport(2, port: ports[1], peers: [1: ports[0]])
            try await withTransports([b]) {
                try await b.start()
                let inbox = Inbox(a)
                b.send(heartbeat(from: 2, to: 1, round: 1))
                #expect(await eventually { inbox.messages.count == 1 })
            }
        }
    }

    @Test("the total cap holds across sources")
    func totalCap() async throws {
        let ports = try await freePorts(1)
        let a = Self.transport(1, port: ports[0], peers: [2: 1], perSource: 8, total: 1)
        try await withTransports([a]) {
            try await a.start()
            let first = try await Self.connectRaw(port: ports[0])
            let second = try await Self.connectRaw(port: ports[0])
            #expect(try await Self.closedByServer(second, within: .seconds(10)))
            #expect(a.refusedOverCapCount == 1)
            try await first.executeThenClose { _, _ in }
        }
    }

    @Test("dropping a peer's connections (after a refused message) closes them; the peer redials and is heard again")
    func dropConnections() async throws {
        let ports = try await freePorts(2)
        let a = Self.transport(1, port: ports[0], peers: [2: ports[1]])
        let b = Self.transport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            let inbox = Inbox(a)
            b.send(heartbeat(from: 2, to: 1, round: 1))
            #expect(await eventually { inbox.messages.count == 1 })
            #expect(a.dropConnections(from: 2) == 1)
            #expect(a.droppedConnectionCount == 1)
            #expect(await eventually { (status(b, 1)?.reconnects ?? 0) >= 1 })
            #expect(
                await eventually {
                    b.send(heartbeat(from: 2, to: 1, round: 2))
                    return inbox.messages.contains { round(of: $0) == 2 }
                })
        }
    }

    @Test("the send queue is bounded in bytes as well as in messages")
    func outboxBytes() {
        let outbox = PeerOutbox(capacity: 100, maxBytes: 3 * 1100)
        func append(_ bytes: Int) -> RaftMessage {
            RaftMessage(
                from: 1, to: 2, term: 1,
                body: .appendEntries(
                    AppendEntries(
                        previous: LogPosition(term: 0, index: 0),
                        entries: [LogEntry(term: 1, index: 1, payload: .command(Array(repeating: 7, count: bytes)))],
                        leaderCommit: 0, round: 1)))
        }
        // One message always fits an empty queue, however large.
        #expect(outbox.offer(append(10_000)))
        #expect(!outbox.offer(append(1000)))
        #expect(outbox.droppedCount == 1)
        outbox.close()
        let fresh = PeerOutbox(capacity: 100, maxBytes: 3 * 1100)
        #expect(fresh.offer(append(1000)))
        #expect(fresh.offer(append(1000)))
        #expect(fresh.offer(append(1000)))
        #expect(!fresh.offer(append(1000)), "a fourth kilobyte append is over 3300 bytes")
        #expect(!fresh.offer(heartbeat(from: 1, to: 2)), "3 × 1088 + 64 bytes is over 3300")
        #expect(fresh.queuedBytes <= 3300)
    }

    @Test("inbound bytes are bounded: what the consumer has not taken counts against the budget")
    func inboundBytes() async throws {
        let ports = try await freePorts(2)
        let a = PeerTransport(
            options: PeerTransportOptions(
                clusterID: 1, nodeID: 1, listenPort: ports[0], peers: [2: PeerAddress(host: "127.0.0.1", port: ports[1])],
                inboundBufferBytes: 64 << 10, maximumFrameLength: 64 << 10),
            logger: testLogger("hostile.1"))
        let b = Self.transport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            // Nobody consumes `a.inbound`: 20 appends of 10 KiB fill the 64 KiB budget after 6.
            for i in 1...20 as ClosedRange<UInt64> {
                b.send(
                    RaftMessage(
                        from: 2, to: 1, term: 1,
                        body: .appendEntries(
                            AppendEntries(
                                previous: LogPosition(term: 0, index: 0),
                                entries: [LogEntry(term: 1, index: 1, payload: .command(Array(repeating: 1, count: 10_000)))],
                                leaderCommit: 0, round: i))))
            }
            #expect(await eventually { a.inboundDroppedCount == 14 })
            #expect(a.inboundQueuedBytes <= 64 << 10)
        }
    }
}
