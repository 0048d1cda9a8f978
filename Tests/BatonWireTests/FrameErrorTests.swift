import BatonWire
import RaftCore
import Testing

/// One malformed stream and the error it must produce.
struct ErrorCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var configuration = FrameDecoder.Configuration()
    var kind: WireError.Kind
    var field: String
    var offset: Int
    var value: UInt64?

    var testDescription: String { name }
}

private let valid: [UInt8] = (try? WireSamples.frames[10].frame.encoded()) ?? []  // a heartbeat
private let headerLength = WireFormat.headerLength

private func replacing(_ bytes: [UInt8], at index: Int, with new: [UInt8]) -> [UInt8] {
    var copy = bytes
    copy.replaceSubrange(index..<(index + new.count), with: new)
    return copy
}

private func u64(_ v: UInt64) -> [UInt8] { WireSamples.bigEndian(v, width: 8) }
private func u32(_ v: UInt64) -> [UInt8] { WireSamples.bigEndian(v, width: 4) }
private func u16(_ v: UInt64) -> [UInt8] { WireSamples.bigEndian(v, width: 2) }

private let raft = FrameType.raft.rawValue
private let hello = FrameType.hello.rawValue
private let payloadStart = headerLength
private let bodyStart = payloadStart + 25  // after from, to, term and the body tag

private let errorCases: [ErrorCase] = [
    ErrorCase(
        name: "bad magic, first byte", bytes: Array("GET / HTTP/1.1\r\n".utf8), kind: .badMagic, field: "header.magic",
        offset: 0, value: 0x47),
    // Refused on the third byte, without waiting for a whole header.
    ErrorCase(
        name: "bad magic, third byte only", bytes: [0x42, 0x41, 0x00], kind: .badMagic, field: "header.magic",
        offset: 2, value: 0),
    ErrorCase(
        name: "TLS client hello to a plain listener", bytes: [0x16, 0x03, 0x01, 0x02, 0x00], kind: .badMagic,
        field: "header.magic", offset: 0, value: 0x16),
    ErrorCase(
        name: "unsupported version", bytes: replacing(valid, at: 4, with: [2]), kind: .unsupportedVersion,
        field: "header.version", offset: 4, value: 2),
    ErrorCase(
        name: "unknown frame type", bytes: replacing(valid, at: 5, with: [0x77]), kind: .unknownFrameType,
        field: "header.type", offset: 5, value: 0x77),
    ErrorCase(
        name: "frame type zero", bytes: Array(replacing(valid, at: 5, with: [0])[0..<6]), kind: .unknownFrameType,
        field: "header.type", offset: 5, value: 0),
    ErrorCase(
        name: "unknown flags", bytes: replacing(valid, at: 6, with: [0x80, 0x01]), kind: .unknownFlags,
        field: "header.flags", offset: 6, value: 0x8001),
    ErrorCase(
        name: "wrong cluster id",
        bytes: Array(valid[0..<16]),
        configuration: .init(expectedClusterID: 99),
        kind: .wrongClusterID(expected: 99), field: "header.clusterID", offset: 8, value: WireSamples.cluster.rawValue
    ),
    ErrorCase(
        name: "oversize length refused from the header alone",
        bytes: Array(replacing(valid, at: 16, with: u32(1_000))[0..<headerLength]),
        configuration: .init(maximumFrameLength: 1_000),
        kind: .frameTooLarge(limit: 1_000), field: "header.payloadLength", offset: 16, value: 1_000
    ),
    ErrorCase(
        name: "largest possible length with the default maximum",
        bytes: Array(replacing(valid, at: 16, with: [0xFF, 0xFF, 0xFF, 0xFF])[0..<headerLength]),
        kind: .frameTooLarge(limit: WireFormat.defaultMaximumFrameLength), field: "header.payloadLength", offset: 16,
        value: 0xFFFF_FFFF
    ),
    ErrorCase(
        name: "crc mismatch",
        bytes: replacing(valid, at: payloadStart + 30, with: [0xEE]),
        kind: .checksumMismatch(
            computed: CRC32C.checksum(replacing(valid, at: payloadStart + 30, with: [0xEE])[0..<(valid.count - 4)])),
        field: "trailer.crc32c", offset: valid.count - 4
    ),
    ErrorCase(
        name: "truncated payload (heartbeat missing its round)",
        bytes: WireSamples.frameBytes(type: raft, payload: WireSamples.raftPrefix(tag: 3) + u64(4) + [0, 0, 0]),
        kind: .truncated(needed: 8, available: 3), field: "raft.heartbeat.round", offset: bodyStart + 8
    ),
    ErrorCase(
        name: "empty raft payload",
        bytes: WireSamples.frameBytes(type: raft, payload: []),
        kind: .truncated(needed: 8, available: 0), field: "raft.from", offset: payloadStart
    ),
    ErrorCase(
        name: "trailing bytes after a heartbeat response",
        bytes: WireSamples.frameBytes(type: raft, payload: WireSamples.raftPrefix(tag: 4) + u64(1) + [0xAA, 0xBB]),
        kind: .trailingBytes(count: 2), field: "payload", offset: bodyStart + 8
    ),
    ErrorCase(
        name: "unknown raft body tag",
        bytes: WireSamples.frameBytes(type: raft, payload: WireSamples.raftPrefix(tag: 0x63)),
        kind: .unknownTag, field: "raft.body", offset: bodyStart - 1, value: 0x63
    ),
    ErrorCase(
        name: "boolean that is neither 0 nor 1",
        bytes: WireSamples.frameBytes(type: raft, payload: WireSamples.raftPrefix(tag: 6) + [0, 2]),
        kind: .invalidValue(reason: "a boolean is 0 or 1"), field: "raft.requestVoteResponse.granted",
        offset: bodyStart + 1, value: 2
    ),
    ErrorCase(
        name: "entry count larger than the payload could hold (no allocation)",
        bytes: WireSamples.frameBytes(
            type: raft, payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(5) + u64(5) + u64(0) + u32(0xFFFF_FFFF)),
        kind: .truncated(needed: 0xFFFF_FFFF * 17, available: 0), field: "raft.appendEntries.entries.count",
        offset: bodyStart + 32, value: 0xFFFF_FFFF
    ),
    ErrorCase(
        name: "command length past the end",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(5) + u64(0) + u64(0) + u32(1) + u64(1) + u64(6) + [1]
                + u32(0x7FFF_FFFF) + [1, 2]
        ),
        kind: .truncated(needed: 0x7FFF_FFFF, available: 2), field: "raft.appendEntries.entries[0].command",
        offset: bodyStart + 36 + 21
    ),
    ErrorCase(
        name: "entries not contiguous after previous",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(5) + u64(0) + u64(0) + u32(1) + u64(1) + u64(7) + [0]
        ),
        kind: .invalidValue(reason: "entries must be contiguous after previous index 5; expected index 6"),
        field: "raft.appendEntries.entries[0].index", offset: bodyStart + 36, value: 7
    ),
    ErrorCase(
        name: "entry after index UInt64.max",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(.max) + u64(0) + u64(0) + u32(1) + u64(1) + u64(0)
                + [0]
        ),
        kind: .invalidValue(
            reason: "entries must be contiguous after previous index \(UInt64.max); expected index beyond UInt64.max"),
        field: "raft.appendEntries.entries[0].index", offset: bodyStart + 36, value: 0
    ),
    ErrorCase(
        name: "unknown entry payload tag",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(5) + u64(0) + u64(0) + u32(1) + u64(1) + u64(6) + [9]
        ),
        kind: .unknownTag, field: "raft.appendEntries.entries[0].payload", offset: bodyStart + 36 + 16, value: 9
    ),
    ErrorCase(
        name: "unknown membership change",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 1) + u64(1) + u64(5) + u64(0) + u64(0) + u32(1) + u64(1) + u64(6) + [
                2, 0,
            ] + u64(4)
        ),
        kind: .unknownTag, field: "raft.appendEntries.entries[0].membership", offset: bodyStart + 36 + 17, value: 0
    ),
    ErrorCase(
        name: "snapshot voters not ascending",
        bytes: WireSamples.frameBytes(
            type: raft, payload: WireSamples.raftPrefix(tag: 7) + u64(1) + u64(1) + u32(2) + u64(3) + u64(2)),
        kind: .invalidValue(reason: "node ids must be strictly ascending (previous 3)"),
        field: "raft.installSnapshot.voters[1]", offset: bodyStart + 16 + 4 + 8, value: 2
    ),
    ErrorCase(
        name: "snapshot node both voter and learner",
        bytes: WireSamples.frameBytes(
            type: raft,
            payload: WireSamples.raftPrefix(tag: 7) + u64(1) + u64(1) + u32(1) + u64(3) + u32(1) + u64(3) + u32(0)
                + u64(0)
        ),
        kind: .invalidValue(reason: "node n3 is both a voter and a learner"),
        field: "raft.installSnapshot.learners", offset: bodyStart + 16 + 12 + 12, value: 3
    ),
    ErrorCase(
        name: "hello name not UTF-8",
        bytes: WireSamples.frameBytes(
            type: hello, payload: u64(1) + u64(WireSamples.cluster.rawValue) + u16(1) + u16(2) + [0xC3, 0x28]),
        kind: .invalidUTF8, field: "hello.advertisedName", offset: payloadStart + 20
    ),
    ErrorCase(
        name: "hello name too long",
        bytes: WireSamples.frameBytes(
            type: hello,
            payload: u64(1) + u64(WireSamples.cluster.rawValue) + u16(1) + u16(300) + Array(repeating: 0x61, count: 300)
        ),
        kind: .invalidValue(reason: "longer than the maximum of 255 bytes"), field: "hello.advertisedName.length",
        offset: payloadStart + 18, value: 300
    ),
    ErrorCase(
        name: "hello names another cluster than its header",
        bytes: WireSamples.frameBytes(type: hello, payload: u64(1) + u64(5) + u16(1) + u16(0)),
        kind: .invalidValue(reason: "the hello names cluster 5 but its frame header \(WireSamples.cluster)"),
        field: "hello.clusterID", offset: payloadStart, value: 5
    ),
]

@Suite("Frame decoder errors")
struct FrameErrorTests {
    @Test("each malformed stream produces its error, at the right field and byte", arguments: errorCases)
    func malformed(_ testCase: ErrorCase) throws {
        for chunks in [[Int](), [1], [3, 5]] {
            let result = decodeAll(testCase.bytes, chunks: chunks, configuration: testCase.configuration)
            let error = try #require(result.error, "\(testCase.name) with chunks \(chunks) decoded without error")
            #expect(error.kind == testCase.kind)
            #expect(error.field == testCase.field)
            #expect(error.offset == testCase.offset)
            if let value = testCase.value { #expect(error.value == value) }
            #expect(!error.description.isEmpty)
        }
    }

    @Test("a replica status with a free share above 100 % or an unknown journal tag is refused, naming the field")
    func replicaStatusBounds() throws {
        let status = try Frame(
            clusterID: WireSamples.cluster, body: .replicaStatus(ReplicaStatus(node: 2, diskFreeBasisPoints: 5, journal: .unchecked))
        ).encoded()
        func refix(_ bytes: [UInt8]) -> [UInt8] {
            // The CRC over the changed bytes, so that only the field is wrong.
            var copy = Array(bytes.dropLast(4))
            copy += WireSamples.bigEndian(UInt64(CRC32C.checksum(copy)), width: 4)
            return copy
        }
        for (offset, patch, field, kind) in [
            (payloadStart + 8, u16(10_001), "replicaStatus.diskFreeBasisPoints", WireError.Kind.invalidValue(reason: "a free share above 10000 basis points")),
            (payloadStart + 10, [UInt8(3)], "replicaStatus.journal", .unknownTag),
        ] {
            var decoder = FrameDecoder()
            decoder.append(refix(replacing(status, at: offset, with: patch)))
            let error = try #require(throws: WireError.self) { try decoder.next() }
            #expect(error.field == field && error.kind == kind && error.offset == offset, "\(error)")
        }
    }

    @Test("offsets count from the start of the stream, not the frame")
    func offsetsAreStreamOffsets() throws {
        let good = try WireSamples.frames[0].frame.encoded()
        let result = decodeAll(good + good + replacing(valid, at: 4, with: [9]))
        #expect(result.frames.count == 2)
        #expect(result.error?.offset == 2 * good.count + 4)
        #expect(result.error?.description.contains("stream byte \(2 * good.count + 4), field header.version") == true)
    }

    @Test("after an error the decoder stays failed, whatever follows")
    func failureIsSticky() throws {
        var decoder = FrameDecoder()
        decoder.append([0x00])
        #expect(throws: WireError.self) { try decoder.next() }
        decoder.append(valid)
        #expect(throws: WireError.self) { try decoder.next() }
    }

    @Test("a maximum below the frame overhead is raised to it rather than refusing everything")
    func tinyMaximumIsClamped() throws {
        let timeout = try WireSamples.raft(.timeoutNow).encoded()
        #expect(timeout.count == 49)
        let clamped = decodeAll(timeout, configuration: .init(maximumFrameLength: 0))
        #expect(clamped.error?.kind == .frameTooLarge(limit: WireFormat.overhead))
        #expect(decodeAll(timeout, configuration: .init(maximumFrameLength: 49)).frames.count == 1)
    }
}
