import BatonTransport
import BatonWire
import NIOCore
import NIOEmbedded
import NIOTestUtils
import RaftCore
import Testing

@Suite("NIO frame codec")
struct CodecHandlerTests {
    static let frames: [Frame] = [
        Frame(clusterID: 7, body: .hello(Hello(nodeID: 1, clusterID: 7, advertisedName: "a"))),
        Frame(clusterID: 7, body: .helloAccepted(Hello(nodeID: 2, clusterID: 7, advertisedName: "b"))),
        Frame(clusterID: 7, body: .helloRejected(reason: "no")),
        Frame(clusterID: 7, body: .raft(heartbeat(from: 1, to: 2))),
        Frame(
            clusterID: 7,
            body: .raft(
                RaftMessage(
                    from: 1, to: 2, term: 3,
                    body: .appendEntries(
                        AppendEntries(
                            previous: LogPosition(term: 2, index: 4),
                            entries: [
                                LogEntry(term: 3, index: 5, payload: .command([1, 2, 3])),
                                LogEntry(term: 3, index: 6, payload: .membership(.addLearner(9))),
                            ],
                            leaderCommit: 4, round: 8
                        )
                    )
                )
            )
        ),
    ]

    @Test("the decoder passes ByteToMessageDecoderVerifier (every split, leftovers, reentrancy)")
    func verifier() throws {
        var pairs: [(ByteBuffer, [Frame])] = try Self.frames.map { (ByteBuffer(bytes: try $0.encoded()), [$0]) }
        let all = try Self.frames.flatMap { try $0.encoded() }
        pairs.append((ByteBuffer(bytes: all), Self.frames))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { WireFrameDecoder() }
    }

    @Test("encoder and decoder in one pipeline round-trip frames")
    func pipelineRoundTrip() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WireFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WireFrameEncoder()))
        for frame in Self.frames {
            try channel.writeOutbound(frame)
            let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
            try channel.writeInbound(bytes)
            #expect(try channel.readInbound(as: Frame.self) == frame)
        }
        _ = try channel.finish()
    }

    @Test("garbage is a WireError in the pipeline, without waiting for more bytes")
    func garbageFails() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WireFrameDecoder()))
        #expect(throws: WireError.self) { try channel.writeInbound(ByteBuffer(bytes: [0x42, 0x41, 0x00])) }
        _ = try? channel.finish()
    }
}

@Suite("Reconnect backoff")
struct ReconnectBackoffTests {
    @Test("delays double from the minimum up to the maximum, jittered within the upper half, and reset")
    func growth() {
        var backoff = ReconnectBackoff(minimum: .milliseconds(50), maximum: .seconds(2))
        var random = SplitMix64(seed: 42)
        var ceilings: [Duration] = []
        for _ in 0..<10 {
            let ceiling = backoff.ceiling
            ceilings.append(ceiling)
            let delay = backoff.nextDelay(using: &random)
            #expect(delay >= ceiling / 2 && delay <= ceiling)
        }
        #expect(Array(ceilings.prefix(7)) == [50, 100, 200, 400, 800, 1600, 2000].map { Duration.milliseconds($0) })
        #expect(ceilings.last == .seconds(2))
        backoff.reset()
        #expect(backoff.ceiling == .milliseconds(50))
    }

    @Test("many failures neither overflow nor exceed the maximum")
    func noOverflow() {
        var backoff = ReconnectBackoff(minimum: .seconds(1), maximum: .seconds(30))
        var random = SplitMix64(seed: 1)
        for _ in 0..<200 { _ = backoff.nextDelay(using: &random) }
        #expect(backoff.ceiling == .seconds(30))
    }
}
