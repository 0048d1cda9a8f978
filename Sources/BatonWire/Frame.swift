public import RaftCore

/// The constants of the frame layout. Every frame is, big-endian:
///
///     magic "BATN" (4) ‖ version (u8) ‖ frame type (u8) ‖ flags (u16) ‖ cluster id (u64)
///     ‖ payload length (u32) ‖ payload ‖ CRC32C over header and payload (u32)
public enum WireFormat {
    public static let magic: [UInt8] = [0x42, 0x41, 0x54, 0x4E]  // "BATN"
    /// The frame format version. Bump it, never reinterpret a field of an existing version.
    public static let version: UInt8 = 1
    /// The protocol version a replica announces in its `Hello`.
    public static let protocolVersion: UInt16 = 1
    public static let headerLength = 20
    public static let trailerLength = 4
    /// Header plus trailer: the size of a frame with an empty payload.
    public static let overhead = headerLength + trailerLength
    public static let defaultMaximumFrameLength = 16 << 20
    /// The longest advertised name, in UTF-8 bytes.
    public static let maximumNameLength = 255
    /// The longest rejection reason, in UTF-8 bytes; longer reasons are shortened when encoding.
    public static let maximumReasonLength = 1024
    /// The most voters (or learners) a configuration on the wire may list; real clusters have a
    /// handful, and the bound keeps a snapshot frame's decoding cheap.
    public static let maximumMembers = 1024
    /// The first frame an acceptor reads is the dialler's hello (about 300 bytes at most): before
    /// it, a connection is anonymous, so it gets no more than this to say who it is.
    public static let maximumHelloFrameLength = 512
    /// The first frame a dialler reads: the acceptor's hello, or a rejection with its reason.
    public static let maximumHandshakeReplyLength = overhead + 2 + maximumReasonLength + 64
}

/// Which Baton cluster a frame belongs to. Replicas of different clusters that reach each other by
/// mistake (a reused port, a copied configuration) refuse each other's frames.
public struct ClusterID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// What a replica says about itself when it dials a peer, and what the peer answers on acceptance.
public struct Hello: Hashable, Sendable {
    public var nodeID: NodeID
    public var clusterID: ClusterID
    public var protocolVersion: UInt16
    /// A name for logs and `/cluster` (host name, pod name); at most `WireFormat.maximumNameLength`
    /// UTF-8 bytes. Not an identity: identity is `nodeID`, and with mutual TLS the certificate.
    public var advertisedName: String

    public init(
        nodeID: NodeID,
        clusterID: ClusterID,
        protocolVersion: UInt16 = WireFormat.protocolVersion,
        advertisedName: String
    ) {
        self.nodeID = nodeID
        self.clusterID = clusterID
        self.protocolVersion = protocolVersion
        self.advertisedName = advertisedName
    }
}

/// The number in a frame's type byte.
public enum FrameType: UInt8, Hashable, Sendable, CaseIterable {
    case hello = 1
    case helloAccepted = 2
    case helloRejected = 3
    case raft = 4
}

/// One frame on a peer connection.
public struct Frame: Hashable, Sendable, CustomStringConvertible {
    public enum Body: Hashable, Sendable {
        /// The dialler's first frame.
        case hello(Hello)
        /// The acceptor's answer when it takes the connection; raft frames may follow.
        case helloAccepted(Hello)
        /// The acceptor's answer when it refuses the connection, just before it closes it.
        case helloRejected(reason: String)
        case raft(RaftMessage)
    }

    public var clusterID: ClusterID
    public var body: Body

    public init(clusterID: ClusterID, body: Body) {
        self.clusterID = clusterID
        self.body = body
    }

    public var type: FrameType {
        switch body {
        case .hello: return .hello
        case .helloAccepted: return .helloAccepted
        case .helloRejected: return .helloRejected
        case .raft: return .raft
        }
    }

    public var description: String {
        switch body {
        case .hello(let h):
            return "hello(\(h.nodeID) '\(h.advertisedName)' cluster \(h.clusterID) v\(h.protocolVersion))"
        case .helloAccepted(let h): return "hello-accepted(\(h.nodeID) '\(h.advertisedName)')"
        case .helloRejected(let reason): return "hello-rejected(\(reason))"
        case .raft(let m): return "raft(\(m))"
        }
    }
}
