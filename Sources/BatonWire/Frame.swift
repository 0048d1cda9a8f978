public import RaftCore

/// The constants of the frame layout. Every frame is, big-endian:
///
///     magic "BATN" (4) ‖ version (u8) ‖ frame type (u8) ‖ flags (u16) ‖ cluster id (u64)
///     ‖ payload length (u32) ‖ payload ‖ CRC32C over header and payload (u32)
public enum WireFormat {
    public static let magic: [UInt8] = [0x42, 0x41, 0x54, 0x4E]  // "BATN"
    /// The frame format version. Bump it, never reinterpret a field of an existing version.
    public static let version: UInt8 = 1
    /// The protocol version a replica announces in its `Hello`. 2 added `replicaStatus` frames;
    /// 3 added member addresses (`addLearnerAt`, `installSnapshotWithAddresses`), which are sent
    /// only once an operator adds a member with an address: upgrade every replica first.
    public static let protocolVersion: UInt16 = 3
    /// The oldest protocol version a replica accepts from a peer, so that replicas can be
    /// upgraded one at a time: a peer that announced less than `replicaStatusSince` is sent no
    /// `replicaStatus` frames.
    public static let oldestProtocolVersion: UInt16 = 1
    public static let replicaStatusSince: UInt16 = 2
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

/// What a replica says about its own health to its peers, about once a second (protocol 2):
/// what the leader cannot see from Raft alone, for its alert rules (a follower's disk filling,
/// its journal failing verification while it still votes).
public struct ReplicaStatus: Hashable, Sendable {
    public enum Journal: Hashable, Sendable {
        /// Not verified since this process started.
        case unchecked
        /// The hash chain verified through this index at the last check.
        case verified(through: UInt64)
        /// The last check found the journal broken; the reason says where (at most
        /// `WireFormat.maximumReasonLength` UTF-8 bytes, shortened when encoding).
        case failed(reason: String)
    }

    /// The replica the status is about: it must be the peer that sends it.
    public var node: NodeID
    /// The free share of the file system holding the data directory, in 1/10 000 (0…10 000);
    /// nil when it could not be read.
    public var diskFreeBasisPoints: UInt16?
    public var journal: Journal

    public static let basisPoints: UInt16 = 10_000

    public init(node: NodeID, diskFreeBasisPoints: UInt16?, journal: Journal) {
        self.node = node
        self.diskFreeBasisPoints = diskFreeBasisPoints
        self.journal = journal
    }
}

/// The number in a frame's type byte.
public enum FrameType: UInt8, Hashable, Sendable, CaseIterable {
    case hello = 1
    case helloAccepted = 2
    case helloRejected = 3
    case raft = 4
    /// Protocol 2: a `ReplicaStatus`, sent by the dialler on its own connection.
    case replicaStatus = 5
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
        case replicaStatus(ReplicaStatus)
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
        case .replicaStatus: return .replicaStatus
        }
    }

    public var description: String {
        switch body {
        case .hello(let h):
            return "hello(\(h.nodeID) '\(h.advertisedName)' cluster \(h.clusterID) v\(h.protocolVersion))"
        case .helloAccepted(let h): return "hello-accepted(\(h.nodeID) '\(h.advertisedName)')"
        case .helloRejected(let reason): return "hello-rejected(\(reason))"
        case .raft(let m): return "raft(\(m))"
        case .replicaStatus(let s): return "replica-status(\(s.node) disk \(s.diskFreeBasisPoints.map(String.init) ?? "?") \(s.journal))"
        }
    }
}
