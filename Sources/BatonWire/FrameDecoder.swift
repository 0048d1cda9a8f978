/// Turns a byte stream into frames. A value type that does no I/O: feed it bytes as they arrive,
/// pull frames until it returns nil (it needs more bytes), repeat.
///
/// It never traps and never allocates from a length it has not checked, whatever the bytes: every
/// read is bounds-checked, every count is bounded by the bytes that are actually there, and a
/// declared frame length over `maximumFrameLength` is refused as soon as the header is in, before
/// the payload is waited for. After an error the stream cannot be trusted to find the next frame
/// boundary, so the decoder stays failed and throws the same error again; close the connection.
public struct FrameDecoder: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// The largest whole frame (header, payload and trailer) accepted, in bytes. Values below
        /// `WireFormat.overhead` are raised to it; values above what the u32 length can describe
        /// are lowered to that.
        public var maximumFrameLength: Int
        /// When set, a frame of another cluster is an error. The transport leaves this unset and
        /// checks the cluster in its handshake, so that it can tell the dialler why it is refused.
        public var expectedClusterID: ClusterID?

        public init(
            maximumFrameLength: Int = WireFormat.defaultMaximumFrameLength,
            expectedClusterID: ClusterID? = nil
        ) {
            self.maximumFrameLength = maximumFrameLength
            self.expectedClusterID = expectedClusterID
        }

        static func effectiveMaximum(_ configured: Int) -> Int {
            let ceiling = Int(UInt32.max) + WireFormat.overhead
            return min(max(configured, WireFormat.overhead), ceiling)
        }
    }

    public let configuration: Configuration
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var failure: WireError?
    /// Stream offset of the first byte not yet decoded (all bytes of all frames returned so far).
    public private(set) var consumedByteCount = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Bytes received but not yet returned as part of a frame.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(WireError) -> Frame? {
        if let failure { throw failure }
        let start = readIndex
        let offset = consumedByteCount
        let configuration = self.configuration
        let result = buffer.withUnsafeBytes { raw in
            Result { () throws(WireError) -> (frame: Frame, byteCount: Int)? in
                try Self.decodeFrame(
                    from: UnsafeRawBufferPointer(rebasing: raw[start...]),
                    streamOffset: offset,
                    configuration: configuration
                )
            }
        }
        switch result {
        case .failure(let error):
            failure = error
            throw error
        case .success(nil):
            return nil
        case .success(let (frame, byteCount)?):
            readIndex += byteCount
            consumedByteCount += byteCount
            // Drop consumed bytes once they are the larger part of the buffer, so a long-lived
            // connection neither grows the buffer nor moves bytes on every frame.
            if readIndex == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                readIndex = 0
            } else if readIndex >= 4096 && readIndex * 2 >= buffer.count {
                buffer.removeFirst(readIndex)
                readIndex = 0
            }
            return frame
        }
    }

    /// Decodes the frame at the start of `bytes`, if it is all there: returns the frame and how
    /// many bytes it took, or nil when more bytes are needed. Nothing is consumed; the caller moves
    /// its read position by `byteCount` (this is what a NIO `ByteToMessageDecoder` wants).
    ///
    /// Header fields are checked as soon as they are present, so garbage fails on its first byte
    /// and an oversized length fails before the payload arrives. `streamOffset` is the position
    /// of `bytes[0]` in the stream, used only to say where an error is.
    public static func decodeFrame(
        from bytes: UnsafeRawBufferPointer,
        streamOffset: Int = 0,
        configuration: Configuration = Configuration()
    ) throws(WireError) -> (frame: Frame, byteCount: Int)? {
        let available = bytes.count
        for i in 0..<min(available, WireFormat.magic.count) where bytes[i] != WireFormat.magic[i] {
            throw WireError(.badMagic, field: "header.magic", offset: streamOffset + i, value: UInt64(bytes[i]))
        }
        guard available >= 5 else { return nil }
        guard bytes[4] == WireFormat.version else {
            throw WireError(
                .unsupportedVersion, field: "header.version", offset: streamOffset + 4, value: UInt64(bytes[4]))
        }
        guard available >= 6 else { return nil }
        guard let type = FrameType(rawValue: bytes[5]) else {
            throw WireError(.unknownFrameType, field: "header.type", offset: streamOffset + 5, value: UInt64(bytes[5]))
        }
        guard available >= WireFormat.headerLength else {
            // Check the fixed fields that are already here, so garbage fails as early as it can.
            if available >= 8 { try checkFlags(bytes, streamOffset) }
            if available >= 16 { try checkCluster(bytes, streamOffset, configuration) }
            return nil
        }
        try checkFlags(bytes, streamOffset)
        let clusterID = try checkCluster(bytes, streamOffset, configuration)
        let payloadLength = Int(bigEndian(bytes, at: 16, width: 4))
        let limit = Configuration.effectiveMaximum(configuration.maximumFrameLength)
        // Both sides are far below Int.max (payloadLength < 2^32), so this cannot overflow.
        let frameLength = WireFormat.overhead + payloadLength
        guard frameLength <= limit else {
            throw WireError(
                .frameTooLarge(limit: limit),
                field: "header.payloadLength",
                offset: streamOffset + 16,
                value: UInt64(payloadLength)
            )
        }
        guard available >= frameLength else { return nil }

        let checked = WireFormat.headerLength + payloadLength
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<checked]))
        let stored = UInt32(truncatingIfNeeded: bigEndian(bytes, at: checked, width: 4))
        guard crc.checksum == stored else {
            throw WireError(
                .checksumMismatch(computed: crc.checksum),
                field: "trailer.crc32c",
                offset: streamOffset + checked,
                value: UInt64(stored)
            )
        }

        var reader = WireReader(
            UnsafeRawBufferPointer(rebasing: bytes[WireFormat.headerLength..<checked]),
            baseOffset: streamOffset + WireFormat.headerLength
        )
        let body: Frame.Body
        switch type {
        case .hello, .helloAccepted:
            let helloReader = reader
            let hello = try reader.readHello(type == .hello ? "hello" : "helloAccepted")
            guard hello.clusterID == clusterID else {
                throw helloReader.error(
                    .invalidValue(
                        reason: "the hello names cluster \(hello.clusterID) but its frame header \(clusterID)"),
                    "hello.clusterID",
                    value: hello.clusterID.rawValue
                )
            }
            body = type == .hello ? .hello(hello) : .helloAccepted(hello)
        case .helloRejected:
            body = .helloRejected(
                reason: try reader.readString("helloRejected.reason", maximumLength: WireFormat.maximumReasonLength)
            )
        case .raft:
            body = .raft(try reader.readRaftMessage())
        case .replicaStatus:
            body = .replicaStatus(try reader.readReplicaStatus())
        }
        try reader.finish("payload")
        return (Frame(clusterID: clusterID, body: body), frameLength)
    }

    private static func checkFlags(_ bytes: UnsafeRawBufferPointer, _ streamOffset: Int) throws(WireError) {
        let flags = bigEndian(bytes, at: 6, width: 2)
        guard flags == 0 else {
            throw WireError(.unknownFlags, field: "header.flags", offset: streamOffset + 6, value: flags)
        }
    }

    @discardableResult
    private static func checkCluster(
        _ bytes: UnsafeRawBufferPointer,
        _ streamOffset: Int,
        _ configuration: Configuration
    ) throws(WireError) -> ClusterID {
        let clusterID = ClusterID(bigEndian(bytes, at: 8, width: 8))
        if let expected = configuration.expectedClusterID, expected != clusterID {
            throw WireError(
                .wrongClusterID(expected: expected),
                field: "header.clusterID",
                offset: streamOffset + 8,
                value: clusterID.rawValue
            )
        }
        return clusterID
    }

    /// Callers have checked that `bytes` holds `offset + width` bytes.
    private static func bigEndian(_ bytes: UnsafeRawBufferPointer, at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in offset..<(offset + width) { value = (value << 8) | UInt64(bytes[i]) }
        return value
    }
}
