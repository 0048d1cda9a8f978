import BatonTransport
import BatonWire
public import Logging
public import RaftCore
public import ServiceLifecycle

/// `RaftNetwork` on the SwiftNIO peer transport, as a lifecycle service: bound before the
/// service group starts (so `READY=1` means the port is bound), closed after the consensus
/// loop has stopped (so a stopping leader can still send TimeoutNow).
public final class TCPPeerNetwork: RaftNetwork, Service {
    let transport: PeerTransport
    let logger: Logger
    /// `cluster.members` from the configuration: where to dial a member whose membership change
    /// carried no address (the founding members).
    let configuredAddresses: [NodeID: PeerAddress]

    private init(transport: PeerTransport, logger: Logger, configuredAddresses: [NodeID: PeerAddress]) {
        self.transport = transport
        self.logger = logger
        self.configuredAddresses = configuredAddresses
    }

    /// Binds the peer port and starts dialling the other members.
    public static func start(configuration: BatondConfiguration, logger: Logger) async throws -> TCPPeerNetwork {
        var peers: [NodeID: PeerAddress] = [:]
        for (id, endpoint) in configuration.members {
            peers[id] = PeerAddress(host: endpoint.host, port: endpoint.port)
        }
        let options = PeerTransportOptions(
            clusterID: ClusterID(configuration.clusterID),
            nodeID: configuration.nodeID,
            listenHost: configuration.peerListen.host,
            listenPort: configuration.peerListen.port,
            peers: peers,
            tls: configuration.tls.map {
                MutualTLSOptions(
                    caCertificatePath: $0.caCertificate, certificatePath: $0.certificate, privateKeyPath: $0.privateKey)
            },
            allowPlaintextFromNetwork: configuration.allowPlaintextPeers
        )
        if configuration.tls == nil {
            if configuration.allowPlaintextPeers {
                logger.warning(
                    """
                    peers speak plain TCP and are accepted from any address (tls.allow_plaintext: true): \
                    anyone who reaches the peer port can speak Raft to this replica
                    """)
            } else if !isLoopback(configuration.peerListen.host) {
                logger.notice(
                    "no TLS: the peer port accepts loopback connections only; configure tls.* for replicas on other hosts")
            }
        }
        let transport = PeerTransport(options: options, logger: logger)
        try await transport.start()
        logger.info("peer port bound", metadata: ["peer.listen": "\(configuration.peerListen)"])
        return TCPPeerNetwork(transport: transport, logger: logger, configuredAddresses: peers)
    }

    /// Dials the members of the log's configuration: at the address their membership change
    /// carried, else at the configured one. A member with neither cannot be reached and says so.
    public func membersChanged(_ configuration: ClusterConfiguration) {
        var wanted: [NodeID: PeerAddress] = [:]
        for member in configuration.members {
            if let text = configuration.addresses[member], let address = PeerAddress(parsing: text) {
                wanted[member] = address
            } else if let address = configuredAddresses[member] {
                wanted[member] = address
            } else {
                logger.error(
                    "a member has no address: add it to cluster.members, or re-add it with one (batonctl member add ID ADDR)",
                    metadata: ["raft.member": "\(member)", "raft.configuration": "\(configuration)"])
            }
        }
        transport.setPeers(wanted)
    }

    public func send(_ message: RaftMessage) { transport.send(message) }

    public var inbound: AsyncStream<RaftMessage> { transport.inbound }

    public func dropConnections(from peer: NodeID) { transport.dropConnections(from: peer) }

    public func consumed(_ message: RaftMessage) { transport.consumed(message) }

    public func linkStatus() async -> [PeerLinkStatus] {
        transport.peerStatus().map {
            PeerLinkStatus(
                id: $0.id.rawValue, address: $0.address.description, connected: $0.connected, queued: $0.queued,
                dropped: $0.dropped, reconnects: $0.reconnects, lastError: $0.lastError
            )
        }
    }

    public func run() async throws {
        // Nothing to do while running (NIO runs the connections); close on shutdown.
        try? await gracefulShutdown()
        await transport.shutdown()
    }
}
