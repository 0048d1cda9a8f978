import BatonWire
import RaftCore
import Testing

@Suite("Frame codec")
struct FrameCodecTests {
    @Test("every frame shape survives encode → decode, and re-encodes to the same bytes", arguments: WireSamples.frames)
    func roundTrip(name: String, frame: Frame) throws {
        let bytes = try frame.encoded()
        let decoded = decodeAll(bytes)
        #expect(decoded.error == nil, "\(name)")
        #expect(decoded.frames == [frame], "\(name)")
        let reencoded = try #require(decoded.frames.first).encoded()
        #expect(reencoded == bytes, "\(name): one message, one encoding")
        let direct = try bytes.withUnsafeBytes { raw in try FrameDecoder.decodeFrame(from: raw) }
        #expect(direct?.byteCount == bytes.count)
        // Every strict prefix needs more data and is never an error.
        for cut in [0, 1, 4, 5, 6, 7, 15, 19, 20, bytes.count - 1] where cut < bytes.count {
            let prefix = try Array(bytes[..<cut]).withUnsafeBytes { raw in try FrameDecoder.decodeFrame(from: raw) }
            #expect(prefix == nil, "\(name): prefix of \(cut) bytes")
        }
    }

    @Test("the exact bytes of one heartbeat frame (the format cannot drift silently)")
    func knownAnswer() throws {
        let frame = Frame(
            clusterID: ClusterID(0x0102_0304_0506_0708),
            body: .raft(RaftMessage(from: 1, to: 2, term: 3, body: .heartbeat(Heartbeat(leaderCommit: 4, round: 5))))
        )
        let expected: [UInt8] = [
            0x42, 0x41, 0x54, 0x4E,  // "BATN"
            0x01,  // version
            0x04,  // type: raft
            0x00, 0x00,  // flags
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // cluster id
            0x00, 0x00, 0x00, 0x29,  // payload length 41
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // from n1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,  // to n2
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,  // term 3
            0x03,  // body: heartbeat
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,  // leader commit 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,  // round 5
            0xAC, 0xA9, 0x6B, 0x92,  // CRC32C, computed independently (bitwise, in Python)
        ]
        #expect(try frame.encoded() == expected)
        #expect(decodeAll(expected).frames == [frame])
    }

    @Test("any split of a stream of frames gives the same frames", arguments: [1, 2, 3, 7, 19, 20, 21, 64, 1000])
    func fixedSplits(chunk: Int) {
        let bytes = WireSamples.allBytes
        let result = decodeAll(bytes, chunks: [chunk])
        #expect(result.error == nil)
        #expect(result.frames == WireSamples.frames.map(\.frame))
    }

    @Test("random splits of a stream of frames give the same frames (seeded)")
    func randomSplits() {
        let bytes = WireSamples.allBytes
        let expected = WireSamples.frames.map(\.frame)
        var random = SplitMix64(seed: 0x5EED)
        for _ in 0..<200 {
            let chunks = (0..<16).map { _ in Int.random(in: 1...90, using: &random) }
            let result = decodeAll(bytes, chunks: chunks)
            #expect(result.error == nil)
            #expect(result.frames == expected, "chunks \(chunks)")
        }
    }

    @Test("the decoder drops consumed bytes and keeps no more than one partial frame")
    func bufferIsCompacted() throws {
        let one = try WireSamples.frames[10].frame.encoded()
        var decoder = FrameDecoder()
        for _ in 0..<500 {
            decoder.append(one)
            decoder.append(one[0..<5])
            #expect(try decoder.next() != nil)
            decoder.append(one[5...])
            #expect(try decoder.next() != nil)
            #expect(try decoder.next() == nil)
            #expect(decoder.bufferedByteCount == 0)
        }
        #expect(decoder.consumedByteCount == 1000 * one.count)
    }

    @Test("encoding refuses a frame over the maximum and a name over its limit; a long reason is shortened")
    func encodingLimits() throws {
        let big = WireSamples.raft(
            .appendEntries(
                AppendEntries(
                    previous: LogPosition(term: 1, index: 0),
                    entries: [LogEntry(term: 1, index: 1, payload: .command([UInt8](repeating: 1, count: 200)))],
                    leaderCommit: 0, round: 0
                )))
        #expect(throws: WireError.self) { try big.encoded(maximumFrameLength: 100) }
        do {
            _ = try big.encoded(maximumFrameLength: 100)
        } catch {
            #expect(error.kind == .tooLargeToEncode(limit: 100))
        }
        #expect(try big.encoded(maximumFrameLength: 1000).count > 200)

        let longName = Frame(
            clusterID: 1,
            body: .hello(Hello(nodeID: 1, clusterID: 1, advertisedName: String(repeating: "x", count: 256)))
        )
        #expect(throws: WireError.self) { try longName.encoded() }

        let reason = String(repeating: "é", count: 600)  // 1200 UTF-8 bytes
        let rejected = try Frame(clusterID: 1, body: .helloRejected(reason: reason)).encoded()
        guard case .helloRejected(let sent)? = decodeAll(rejected).frames.first?.body else {
            Issue.record("rejection did not decode")
            return
        }
        #expect(sent.utf8.count == 1024)
        #expect(reason.hasPrefix(sent))
    }
}
