/// Why a byte stream is not a valid sequence of Baton frames, and where.
///
/// A peer connection cannot resynchronise after a bad frame (there is no way to find the next frame
/// boundary that an attacker could not fake), so every `WireError` while decoding means: close the
/// connection, log this error, let the dialler reconnect.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The stream does not start with "BATN": not a Baton peer, or a TLS/plain-TCP mismatch.
        case badMagic
        /// The frame's format version is not one this build speaks.
        case unsupportedVersion
        /// The frame type byte names no frame type.
        case unknownFrameType
        /// Flag bits are set that this version does not define.
        case unknownFlags
        /// The frame belongs to another cluster.
        case wrongClusterID(expected: ClusterID)
        /// The declared frame length exceeds the configured maximum; refused before buffering it.
        case frameTooLarge(limit: Int)
        /// The CRC32C trailer does not match the header and payload.
        case checksumMismatch(computed: UInt32)
        /// A field runs past the end of the payload.
        case truncated(needed: Int, available: Int)
        /// The payload holds bytes after its last field.
        case trailingBytes(count: Int)
        /// An enum discriminator (message body, entry payload, membership change) is unknown.
        case unknownTag
        /// A value that no correct sender produces (a boolean of 7, non-contiguous entries, …).
        case invalidValue(reason: String)
        /// A text field is not valid UTF-8.
        case invalidUTF8
        /// Encoding: the frame would exceed the maximum frame length (or a field its length prefix).
        case tooLargeToEncode(limit: Int)
    }

    public var kind: Kind
    /// The field the problem is in, e.g. `header.magic` or `raft.appendEntries.entries[3].payload`.
    public var field: String
    /// The position in the byte stream (counted from the first byte the decoder was given) where
    /// the field starts; for encoding errors, the position inside the frame being encoded.
    public var offset: Int
    /// The offending value as read, when it is a number.
    public var value: UInt64?

    public init(_ kind: Kind, field: String, offset: Int, value: UInt64? = nil) {
        self.kind = kind
        self.field = field
        self.offset = offset
        self.value = value
    }

    public var description: String {
        let valueText = value.map { " (value \($0), 0x\(String($0, radix: 16)))" } ?? ""
        let problem: String
        switch kind {
        case .badMagic:
            problem =
                "the stream does not start with the magic \"BATN\"; the peer is not a Baton replica, "
                + "or one side uses TLS and the other does not"
        case .unsupportedVersion:
            problem = "frame format version is not \(WireFormat.version); upgrade the older replica"
        case .unknownFrameType:
            problem = "no frame type has this number; the peer runs a newer or corrupt build"
        case .unknownFlags:
            problem = "flag bits are set that format version \(WireFormat.version) does not define"
        case .wrongClusterID(let expected):
            problem =
                "the frame is for another cluster (this node is in cluster \(expected)); "
                + "check the cluster id in both replicas' configuration"
        case .frameTooLarge(let limit):
            problem =
                "the frame would be larger than the maximum of \(limit) bytes; it was refused before "
                + "buffering it. Raise the maximum frame length on both sides if the sender is right"
        case .checksumMismatch(let computed):
            problem =
                "CRC32C mismatch (computed 0x\(String(computed, radix: 16))); the frame was corrupted "
                + "in transit or by the sender"
        case .truncated(let needed, let available):
            problem = "the payload ends inside this field (needs \(needed) bytes, \(available) left)"
        case .trailingBytes(let count):
            problem = "\(count) bytes follow the last field of the payload"
        case .unknownTag:
            problem = "unknown tag; the peer runs a newer or corrupt build"
        case .invalidValue(let reason):
            problem = "impossible value: \(reason)"
        case .invalidUTF8:
            problem = "text is not valid UTF-8"
        case .tooLargeToEncode(let limit):
            problem = "cannot encode: larger than the limit of \(limit) bytes"
        }
        return "wire frame error at stream byte \(offset), field \(field)\(valueText): \(problem)"
    }
}
