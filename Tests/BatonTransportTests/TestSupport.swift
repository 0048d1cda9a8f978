import BatonTestCluster
import BatonTransport
import BatonWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import RaftCore
import Synchronization

/// Collects what a transport receives, so tests can wait for a condition instead of racing the
/// single-consumer `inbound` stream.
final class Inbox: Sendable {
    private final class Received: Sendable {
        let messages = Mutex<[RaftMessage]>([])
    }

    private let received = Received()

    init(_ transport: PeerTransport) {
        let received = self.received
        // Ends when the transport shuts down and finishes `inbound`.
        Task {
            for await message in transport.inbound {
                transport.consumed(message)
                received.messages.withLock { $0.append(message) }
            }
        }
    }

    var messages: [RaftMessage] { received.messages.withLock { $0 } }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// Ports that were free a moment ago on 127.0.0.1. Transports need each other's ports before they
/// start, so the tests reserve them first (the listener sets SO_REUSEADDR).
func freePorts(_ count: Int) async throws -> [Int] {
    var channels: [any Channel] = []
    for _ in 0..<count {
        channels.append(
            try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: 0)
                .get()
        )
    }
    let ports = channels.compactMap { $0.localAddress?.port }
    for channel in channels { try await channel.close() }
    return ports
}

func heartbeat(from: NodeID, to: NodeID, round: UInt64 = 1) -> RaftMessage {
    RaftMessage(from: from, to: to, term: 1, body: .heartbeat(Heartbeat(leaderCommit: 0, round: round)))
}

func round(of message: RaftMessage) -> UInt64 {
    if case .heartbeat(let h) = message.body { return h.round }
    return 0
}

func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["BATON_TEST_LOG"] == nil ? .critical : .debug
    return logger
}

func makeTransport(
    _ id: NodeID,
    cluster: ClusterID = 1,
    port: Int,
    peers: [NodeID: Int],
    tls: MutualTLSOptions? = nil,
    queue: Int = 4096,
    listenHost: String = "127.0.0.1",
    peerHost: String = "127.0.0.1",
    allowPlaintextFromNetwork: Bool = false
) -> PeerTransport {
    PeerTransport(
        options: PeerTransportOptions(
            clusterID: cluster,
            nodeID: id,
            advertisedName: "test-\(id)",
            listenHost: listenHost,
            listenPort: port,
            peers: peers.mapValues { PeerAddress(host: peerHost, port: $0) },
            tls: tls,
            allowPlaintextFromNetwork: allowPlaintextFromNetwork,
            reconnectBackoff: ReconnectBackoff(minimum: .milliseconds(20), maximum: .milliseconds(200)),
            sendQueueCapacity: queue,
            handshakeTimeout: .seconds(3),
            connectTimeout: .seconds(1)
        ),
        logger: testLogger("test.\(id)")
    )
}

/// Runs `body`, then shuts every transport down, whether `body` threw or not.
func withTransports(_ transports: [PeerTransport], _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        for transport in transports { await transport.shutdown() }
        throw error
    }
    for transport in transports { await transport.shutdown() }
}

func status(_ transport: PeerTransport, _ peer: NodeID) -> PeerStatus? {
    transport.peerStatus().first { $0.id == peer }
}

extension TestPKI {
    /// Makes `<node>.pem` / `<node>.key`, signed by `ca`, naming `node` as a DNS subjectAltName
    /// (the name the transport checks against the node id claimed: `node-<id>`); returns the TLS
    /// options for it.
    func makeNode(_ node: String, ca: String) throws -> MutualTLSOptions {
        try makeCertificate(node, ca: ca, subjectAltNames: ["IP:127.0.0.1", "DNS:\(node)"])
        return MutualTLSOptions(
            caCertificatePath: path("\(ca).pem"), certificatePath: path("\(node).pem"),
            privateKeyPath: path("\(node).key"))
    }
}

/// This host's first IPv4 address that is not loopback: a connection to it arrives from a
/// non-loopback source address without leaving the machine.
func nonLoopbackAddress() -> String? {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return nil }
    defer { freeifaddrs(list) }
    var cursor: UnsafeMutablePointer<ifaddrs>? = first
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0
        else { continue }
        let text = String(cString: host)
        if !text.hasPrefix("127.") { return text }
    }
    return nil
}
