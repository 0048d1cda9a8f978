public import BatonWire
public import RaftCore

/// Where a peer listens.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }

    /// `host:port`, `[v6]:port`: the one way an address is read, from a config file or from a
    /// membership change in the log. Nil when it is not one.
    public init?(parsing raw: String) {
        guard let colon = raw.lastIndex(of: ":"), let port = Int(raw[raw.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(raw[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "=" || $0 == "/" }) else { return nil }
        self.init(host: host, port: port)
    }
}

/// Mutual TLS with a cluster CA: each replica presents a certificate signed by the CA and accepts
/// only peers whose certificate the CA signed. Host names are not checked (replicas are addressed
/// by IP and move between hosts); instead the certificate must name the node id its holder
/// claims in the handshake — a DNS subjectAltName (or, lacking SANs, the common name) equal to
/// `node-<id>` or the name configured for that id — checked by both sides. Without that, any
/// replica's certificate could speak as any other replica.
public struct MutualTLSOptions: Hashable, Sendable {
    /// PEM file with the cluster CA certificate(s); the only trust roots used.
    public var caCertificatePath: String
    /// PEM file with this replica's certificate (and any intermediates, leaf first).
    public var certificatePath: String
    /// PEM file with this replica's private key.
    public var privateKeyPath: String

    /// The certificate name each node id must carry, where it is not `node-<id>`.
    public var peerNames: [NodeID: String]

    public init(
        caCertificatePath: String, certificatePath: String, privateKeyPath: String, peerNames: [NodeID: String] = [:]
    ) {
        self.caCertificatePath = caCertificatePath
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.peerNames = peerNames
    }

    /// The name a certificate must carry to speak as `id`.
    public func certificateName(for id: NodeID) -> String { peerNames[id] ?? "node-\(id.rawValue)" }
}

public struct PeerTransportOptions: Sendable {
    public var clusterID: ClusterID
    public var nodeID: NodeID
    /// Shown to peers in the handshake and in their logs; at most 255 UTF-8 bytes.
    public var advertisedName: String
    public var listenHost: String
    /// 0 lets the system choose; `PeerTransport.boundPort` tells which it chose.
    public var listenPort: Int
    /// Every other replica; an entry for this node's own id is ignored. Only these ids may dial in.
    public var peers: [NodeID: PeerAddress]
    /// Mutual TLS; nil for plain TCP (tests and trusted networks only).
    public var tls: MutualTLSOptions?
    /// Without TLS, inbound connections from beyond loopback are closed at once unless this is
    /// set (`tls.allow_plaintext`): a plain peer port on a network lets anyone speak Raft to it.
    public var allowPlaintextFromNetwork: Bool
    public var reconnectBackoff: ReconnectBackoff
    /// Messages waiting per peer before new ones are dropped (and counted).
    public var sendQueueCapacity: Int
    /// Bytes (entries and snapshot data, roughly) queued per peer before new messages are dropped.
    public var sendQueueBytes: Int
    /// Received messages waiting for the consumer of `inbound` before new ones are dropped.
    public var inboundBufferCapacity: Int
    /// Bytes of received messages waiting for the consumer before new ones are dropped (counted
    /// in `inboundDroppedCount`). The consumer reports what it took with `consumed(_:)`.
    public var inboundBufferBytes: Int
    /// Accepted connections open at once, in all and from one source address; further ones are
    /// closed at accept (counted in `refusedOverCapCount`). Each peer needs one.
    public var maxInboundConnections: Int
    public var maxInboundConnectionsPerSource: Int
    public var maximumFrameLength: Int
    /// How long a new connection may take to complete its hello exchange before it is closed.
    public var handshakeTimeout: Duration
    public var connectTimeout: Duration

    public init(
        clusterID: ClusterID,
        nodeID: NodeID,
        advertisedName: String? = nil,
        listenHost: String = "127.0.0.1",
        listenPort: Int = 0,
        peers: [NodeID: PeerAddress],
        tls: MutualTLSOptions? = nil,
        allowPlaintextFromNetwork: Bool = false,
        reconnectBackoff: ReconnectBackoff = ReconnectBackoff(minimum: .milliseconds(50), maximum: .seconds(2)),
        sendQueueCapacity: Int = 4096,
        sendQueueBytes: Int = 64 << 20,
        inboundBufferCapacity: Int = 16_384,
        inboundBufferBytes: Int = 128 << 20,
        maxInboundConnections: Int = 64,
        maxInboundConnectionsPerSource: Int = 8,
        maximumFrameLength: Int = WireFormat.defaultMaximumFrameLength,
        handshakeTimeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(2)
    ) {
        self.clusterID = clusterID
        self.nodeID = nodeID
        self.advertisedName = advertisedName ?? "\(nodeID)"
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.peers = peers
        self.tls = tls
        self.allowPlaintextFromNetwork = allowPlaintextFromNetwork
        self.reconnectBackoff = reconnectBackoff
        self.sendQueueCapacity = sendQueueCapacity
        self.inboundBufferCapacity = inboundBufferCapacity
        self.sendQueueBytes = sendQueueBytes
        self.inboundBufferBytes = inboundBufferBytes
        self.maxInboundConnections = maxInboundConnections
        self.maxInboundConnectionsPerSource = maxInboundConnectionsPerSource
        self.maximumFrameLength = maximumFrameLength
        self.handshakeTimeout = handshakeTimeout
        self.connectTimeout = connectTimeout
    }

    /// Every problem with these options, each saying which option and what to do; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if advertisedName.utf8.count > WireFormat.maximumNameLength {
            problems.append(
                "advertisedName is \(advertisedName.utf8.count) UTF-8 bytes; shorten it to at most \(WireFormat.maximumNameLength)"
            )
        }
        if !(0...65_535).contains(listenPort) {
            problems.append("listenPort \(listenPort) is not a TCP port (0…65535)")
        }
        for (id, address) in peers.sorted(by: { $0.key < $1.key }) where !(1...65_535).contains(address.port) {
            problems.append("peers[\(id)] port \(address.port) is not a TCP port (1…65535)")
        }
        if sendQueueCapacity < 1 { problems.append("sendQueueCapacity must be at least 1 (is \(sendQueueCapacity))") }
        if inboundBufferCapacity < 1 {
            problems.append("inboundBufferCapacity must be at least 1 (is \(inboundBufferCapacity))")
        }
        if sendQueueBytes < maximumFrameLength {
            problems.append("sendQueueBytes \(sendQueueBytes) must hold at least one frame of \(maximumFrameLength) bytes")
        }
        if inboundBufferBytes < maximumFrameLength {
            problems.append(
                "inboundBufferBytes \(inboundBufferBytes) must hold at least one frame of \(maximumFrameLength) bytes")
        }
        if maxInboundConnections < 1 || maxInboundConnectionsPerSource < 1 {
            problems.append(
                "maxInboundConnections (\(maxInboundConnections)) and maxInboundConnectionsPerSource "
                    + "(\(maxInboundConnectionsPerSource)) must be at least 1")
        }
        if maximumFrameLength < 1024 {
            problems.append("maximumFrameLength \(maximumFrameLength) is too small for a handshake; use at least 1024")
        }
        if reconnectBackoff.minimum <= .zero { problems.append("reconnectBackoff.minimum must be positive") }
        if handshakeTimeout <= .zero { problems.append("handshakeTimeout must be positive") }
        return problems
    }
}

/// One peer as `/cluster` and the metrics see it.
public struct PeerStatus: Hashable, Sendable {
    public var id: NodeID
    public var address: PeerAddress
    /// An outbound connection is up and its handshake was accepted.
    public var connected: Bool
    /// Messages waiting to be sent.
    public var queued: Int
    /// Messages dropped: queue full, or too large to encode.
    public var dropped: UInt64
    /// Connection attempts after the first one.
    public var reconnects: UInt64
    /// Why the last connection attempt or connection ended, if one did.
    public var lastError: String?
}

public enum TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidOptions([String])
    case alreadyStarted
    case bindFailed(address: String, reason: String)
    case tlsMaterial(option: String, path: String, reason: String)
    /// The acceptor refused our hello.
    case rejected(peer: NodeID, reason: String)
    /// The handshake did not go as the protocol says.
    case handshakeFailed(peer: NodeID, reason: String)

    public var description: String {
        switch self {
        case .invalidOptions(let problems):
            return "invalid peer transport options: " + problems.joined(separator: "; ")
        case .alreadyStarted:
            return "the peer transport was already started; create a new PeerTransport to start again"
        case .bindFailed(let address, let reason):
            return "cannot listen for peers on \(address): \(reason). Check that no other process uses the port "
                + "and that the address is one of this host's"
        case .tlsMaterial(let option, let path, let reason):
            return "cannot load \(option) from \(path): \(reason). Check the file exists, is readable and holds PEM"
        case .rejected(let peer, let reason):
            return "\(peer) refused our connection: \(reason)"
        case .handshakeFailed(let peer, let reason):
            return "handshake with \(peer) failed: \(reason)"
        }
    }
}
