public import BatonWire
public import NIOCore

/// Decodes Baton frames from a byte stream, for a NIO pipeline. A thin shell over
/// `FrameDecoder.decodeFrame`: it never moves the reader index until a whole frame is there, and
/// a `WireError` (bad magic, CRC, oversize length, …) is thrown into the pipeline, which closes
/// the connection. The offsets in its errors count from the connection's first byte.
public struct WireFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Frame

    public let configuration: FrameDecoder.Configuration
    /// The limit for the connection's first frame (the handshake), if smaller than the usual one.
    public let firstFrameMaximumLength: Int?
    private var streamOffset = 0

    public init(
        configuration: FrameDecoder.Configuration = FrameDecoder.Configuration(), firstFrameMaximumLength: Int? = nil
    ) {
        self.configuration = configuration
        self.firstFrameMaximumLength = firstFrameMaximumLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let offset = streamOffset
        var configuration = self.configuration
        if streamOffset == 0, let first = firstFrameMaximumLength {
            configuration.maximumFrameLength = min(configuration.maximumFrameLength, first)
        }
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(WireError) -> (frame: Frame, byteCount: Int)? in
                try FrameDecoder.decodeFrame(from: raw, streamOffset: offset, configuration: configuration)
            }
        }
        guard let (frame, byteCount) = try result.get() else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: byteCount)
        streamOffset += byteCount
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        // A partial frame at EOF is simply dropped with the connection; Raft resends.
        try decode(context: context, buffer: &buffer)
    }
}

/// Encodes Baton frames for a NIO pipeline.
///
/// `MessageToByteHandler` stays failed after one encoding error, so the transport only writes
/// frames through this encoder that cannot fail (handshake frames); raft messages are encoded by
/// the sender first, so that one message too large to send is dropped alone.
public struct WireFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public let maximumFrameLength: Int

    public init(maximumFrameLength: Int = WireFormat.defaultMaximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    public func encode(data: Frame, out: inout ByteBuffer) throws {
        out.writeBytes(try data.encoded(maximumFrameLength: maximumFrameLength))
    }
}
