extension Frame {
    /// The frame's bytes, ready to write to a connection.
    ///
    /// Throws `WireError` with kind `.tooLargeToEncode` when the frame would be longer than
    /// `maximumFrameLength` (the peer would refuse it) or a field does not fit its length prefix.
    /// The advertised name must be at most `WireFormat.maximumNameLength` UTF-8 bytes; a rejection
    /// reason is shortened to `WireFormat.maximumReasonLength`.
    public func encoded(maximumFrameLength: Int = WireFormat.defaultMaximumFrameLength) throws(WireError) -> [UInt8] {
        var writer = WireWriter(reservingCapacity: 128)
        writer.bytes.append(contentsOf: WireFormat.magic)
        writer.writeUInt8(WireFormat.version)
        writer.writeUInt8(type.rawValue)
        writer.writeUInt16(0)  // flags: version 1 defines none
        writer.writeUInt64(clusterID.rawValue)
        writer.writeUInt32(0)  // payload length, filled in below
        switch body {
        case .hello(let hello), .helloAccepted(let hello):
            try writer.writeHello(hello)
        case .helloRejected(let reason):
            try writer.writeRejection(reason)
        case .raft(let message):
            try writer.writeRaftMessage(message)
        case .replicaStatus(let status):
            try writer.writeReplicaStatus(status)
        }
        let payloadLength = writer.bytes.count - WireFormat.headerLength
        let limit = FrameDecoder.Configuration.effectiveMaximum(maximumFrameLength)
        guard payloadLength <= limit - WireFormat.overhead, let length = UInt32(exactly: payloadLength) else {
            throw WireError(.tooLargeToEncode(limit: limit), field: "payload", offset: WireFormat.headerLength)
        }
        for (i, shift) in [24, 16, 8, 0].enumerated() {
            writer.bytes[16 + i] = UInt8(truncatingIfNeeded: length >> UInt32(shift))
        }
        writer.writeUInt32(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }
}
