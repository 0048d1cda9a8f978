import BatonListener
public import BatonWire
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
public import RaftCore
import Synchronization

/// Carries Raft messages between replicas over TCP (optionally mutual TLS).
///
/// Each replica dials every peer and uses that outbound connection only to send to it; it accepts
/// connections from peers and only receives on them. So each direction has one owner, and a
/// replica never has to decide which of two simultaneous connections to keep.
///
/// The dialler speaks first with a `hello`; the acceptor checks the cluster id, the protocol
/// version and that the node id is one of its peers, and answers `helloAccepted` or
/// `helloRejected(reason)` and closes. Only then do raft frames flow. A connection that sends
/// anything malformed is closed alone; the listener and other peers carry on.
///
/// A final class rather than an actor so that `send` can be called synchronously from the
/// consensus loop without a hop: every piece of mutable state is behind a `Mutex` (or inside a
/// `PeerOutbox`, which has its own), and everything else is immutable and `Sendable`.
public final class PeerTransport: Sendable {
    public let options: PeerTransportOptions
    /// Messages received from accepted peers, each checked to come from the node that shook hands.
    /// Consume it from one task. Finishes on `shutdown()`.
    public let inbound: AsyncStream<RaftMessage>

    private let inboundContinuation: AsyncStream<RaftMessage>.Continuation
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    /// Who this replica dials, changed at run time by `setPeers` as membership changes are
    /// appended to the log. Apart from `state` so that `send`, on the consensus loop's path,
    /// takes a short lock of its own.
    private let directory: Mutex<Directory>
    private let state: Mutex<State>
    /// Accepted connections from the moment NIO wraps them until `serveInbound` claims them;
    /// the ones a closing listener never delivers are closed here (see `AcceptedConnections`).
    private let accepted = AcceptedConnections<Frame, Frame>()

    private enum Phase { case idle, starting, running, shutDown }

    private struct Directory {
        var addresses: [NodeID: PeerAddress]
        var outboxes: [NodeID: PeerOutbox]
        /// One dialler task per peer while running; `setPeers` starts and cancels them.
        var diallers: [NodeID: Task<Void, Never>] = [:]
        /// The outbound connection each peer's dialler has up, to close it when the peer goes.
        var outbound: [NodeID: any Channel] = [:]
        /// Set while running: what a dialler started later needs.
        var dialling: (tls: TLSContexts?, on: Bool) = (nil, false)
    }

    private struct PeerCounters {
        var connected = false
        var reconnects: UInt64 = 0
        var lastError: String?
    }

    private struct State {
        var phase = Phase.idle
        var boundPort: Int?
        var runTask: Task<Void, Never>?
        /// The accept loop runs apart from `runTask` and is never cancelled: it ends when the
        /// closed listener's stream of connections ends, after handing every connection already
        /// accepted to `serveInbound` (NIO requires each accepted `NIOAsyncChannel` to be closed
        /// through `executeThenClose`; a cancelled loop would drop the buffered ones).
        var acceptTask: Task<Void, Never>?
        var serverChannel: (any Channel)?
        var liveChannels: [ObjectIdentifier: any Channel] = [:]
        var peers: [NodeID: PeerCounters] = [:]
        var inboundDropped: UInt64 = 0
        var foreignFrames: UInt64 = 0
        var refusedPlaintext: UInt64 = 0
        /// Bytes yielded to `inbound` and not yet reported `consumed`.
        var inboundBytes = 0
        /// Open accepted connections, in all and per source address (for the caps).
        var inboundOpen = 0
        var inboundBySource: [String: Int] = [:]
        var refusedOverCap: UInt64 = 0
        /// Accepted connections past their handshake, by the peer they speak for.
        var inboundByPeer: [NodeID: [ObjectIdentifier: any Channel]] = [:]
        var droppedForRefusal: UInt64 = 0
        /// The latest status each peer reported about itself, and when it arrived.
        var statuses: [NodeID: (status: ReplicaStatus, at: ContinuousClock.Instant)] = [:]
    }

    /// - Parameters:
    ///   - eventLoopGroup: where connections run; nil for NIO's process-wide singleton.
    public init(
        options: PeerTransportOptions,
        logger: Logger = Logger(label: "baton.transport"),
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) {
        self.options = options
        var logger = logger
        logger[metadataKey: "transport.node"] = "\(options.nodeID)"
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        let peers = options.peers.filter { $0.key != options.nodeID }
        directory = Mutex(
            Directory(
                addresses: peers,
                outboxes: peers.mapValues { _ in
                    PeerOutbox(capacity: options.sendQueueCapacity, maxBytes: options.sendQueueBytes)
                }))
        (inbound, inboundContinuation) = AsyncStream.makeStream(
            of: RaftMessage.self,
            bufferingPolicy: .bufferingOldest(max(1, options.inboundBufferCapacity))
        )
        state = Mutex(State(peers: peers.mapValues { _ in PeerCounters() }))
    }

    /// The port the listener is bound to, once `start()` returned.
    public var boundPort: Int? { state.withLock { $0.boundPort } }

    /// Received messages dropped because the consumer of `inbound` fell `inboundBufferCapacity` behind.
    public var inboundDroppedCount: UInt64 { state.withLock { $0.inboundDropped } }

    /// Raft frames dropped because their `from` or `to` did not match the handshake.
    public var mismatchedSenderCount: UInt64 { state.withLock { $0.foreignFrames } }
    /// Plain-TCP connections from beyond loopback closed at accept.
    public var refusedPlaintextCount: UInt64 { state.withLock { $0.refusedPlaintext } }
    /// Connections closed at accept because `maxInboundConnections` (or the per-source cap) were open.
    public var refusedOverCapCount: UInt64 { state.withLock { $0.refusedOverCap } }
    /// Inbound connections closed by `dropConnections(from:)`.
    public var droppedConnectionCount: UInt64 { state.withLock { $0.droppedForRefusal } }
    /// Bytes received and not yet consumed.
    public var inboundQueuedBytes: Int { state.withLock { $0.inboundBytes } }

    /// The consumer of `inbound` took `message`: its bytes leave the inbound budget.
    public func consumed(_ message: RaftMessage) {
        let size = message.approximateSize
        state.withLock { $0.inboundBytes = max(0, $0.inboundBytes - size) }
    }

    /// Closes every accepted connection that speaks for `peer` (after the consensus core refused
    /// one of its messages). Returns how many were closed. The peer may dial again.
    @discardableResult
    public func dropConnections(from peer: NodeID) -> Int {
        let channels = state.withLock { state -> [any Channel] in
            let channels = Array(state.inboundByPeer[peer, default: [:]].values)
            state.droppedForRefusal += UInt64(channels.count)
            return channels
        }
        for channel in channels { channel.close(promise: nil) }
        return channels.count
    }

    /// Binds the listener and starts dialling every peer. Returns once the port is bound; throws
    /// if the options are invalid, TLS material cannot be loaded, or the address cannot be bound.
    public func start() async throws {
        let problems = options.problems()
        guard problems.isEmpty else { throw TransportError.invalidOptions(problems) }
        try state.withLock { state in
            guard state.phase == .idle else { throw TransportError.alreadyStarted }
            state.phase = .starting
        }
        let tls: TLSContexts?
        let server: NIOAsyncChannel<NIOAsyncChannel<Frame, Frame>, Never>
        do {
            tls = try options.tls.map { try TLSContexts($0) }
            server = try await bind(tls: tls)
        } catch {
            state.withLock { $0.phase = .idle }
            throw error
        }
        let port = server.channel.localAddress?.port
        // One unstructured task owns the listener and the diallers, because the API is start/shutdown
        // rather than a `run()` scope; `shutdown()` cancels it and waits for it, so nothing outlives
        // the transport.
        let task = Task { await self.run(tls: tls) }
        let acceptTask = Task { await self.acceptLoop(server) }
        let stillWanted = state.withLock { state -> Bool in
            guard state.phase == .starting else { return false }
            state.phase = .running
            state.boundPort = port
            state.runTask = task
            state.acceptTask = acceptTask
            state.serverChannel = server.channel
            return true
        }
        if !stillWanted {
            // `shutdown()` ran while we were binding.
            task.cancel()
            server.channel.close(promise: nil)
            await task.value
            await acceptTask.value
            return
        }
        logger.info(
            "listening for peers",
            metadata: [
                "transport.address": "\(options.listenHost):\(port.map(String.init) ?? "?")",
                "transport.tls": "\(tls != nil)",
                "transport.peers": "\(directory.withLock { $0.addresses.keys }.sorted().map(\.description).joined(separator: ","))",
            ]
        )
    }

    /// Queues `message` for `message.to` and returns at once. When that peer's queue is full, or
    /// the peer is unknown, the message is dropped (and counted): Raft tolerates lost messages.
    public func send(_ message: RaftMessage) {
        guard let outbox = directory.withLock({ $0.outboxes[message.to] }) else {
            logger.debug("dropped a message for an unknown peer", metadata: ["peer.id": "\(message.to)"])
            return
        }
        if !outbox.offer(message) {
            logger.trace("send queue full, dropped a message", metadata: ["peer.id": "\(message.to)"])
        }
    }

    /// Sends this replica's status to every peer that speaks protocol 2, with its next frames
    /// (an unsent older status is replaced). Never blocks.
    public func publish(_ status: ReplicaStatus) {
        for outbox in directory.withLock({ Array($0.outboxes.values) }) { outbox.offer(status: status) }
    }

    /// The latest status each peer reported about itself, and how long ago it arrived.
    public func replicaStatuses() -> [NodeID: (status: ReplicaStatus, age: Duration)] {
        let now = ContinuousClock.now
        return state.withLock { $0.statuses }.mapValues { ($0.status, now - $0.at) }
    }

    /// Every peer's connection state and counters, in node id order.
    public func peerStatus() -> [PeerStatus] {
        let counters = state.withLock { $0.peers }
        let (peers, outboxes) = directory.withLock { ($0.addresses, $0.outboxes) }
        return peers.keys.sorted().map { id in
            let peer = counters[id] ?? PeerCounters()
            let outbox = outboxes[id]
            return PeerStatus(
                id: id,
                address: peers[id] ?? PeerAddress(host: "?", port: 0),
                connected: peer.connected,
                queued: outbox?.queuedCount ?? 0,
                dropped: outbox?.droppedCount ?? 0,
                reconnects: peer.reconnects,
                lastError: peer.lastError
            )
        }
    }

    /// Closes the listener and every connection, stops dialling and finishes `inbound`. Queued
    /// messages are dropped. Safe to call more than once, and before `start()`.
    public func shutdown() async {
        let (task, acceptTask, server, channels) = state.withLock { state in
            state.phase = .shutDown
            defer {
                state.liveChannels.removeAll()
                state.serverChannel = nil
                state.runTask = nil
                state.acceptTask = nil
            }
            return (state.runTask, state.acceptTask, state.serverChannel, Array(state.liveChannels.values))
        }
        for outbox in directory.withLock({ Array($0.outboxes.values) }) { outbox.close() }
        server?.close(promise: nil)
        for channel in channels { channel.close(promise: nil) }
        task?.cancel()
        await task?.value
        await acceptTask?.value
        inboundContinuation.finish()
        if task != nil { logger.info("peer transport shut down") }
    }

    // MARK: - Listener

    private func bind(tls: TLSContexts?) async throws -> NIOAsyncChannel<NIOAsyncChannel<Frame, Frame>, Never> {
        let configuration = FrameDecoder.Configuration(maximumFrameLength: options.maximumFrameLength)
        let maximumFrameLength = options.maximumFrameLength
        let accepted = self.accepted
        do {
            return try await ServerBootstrap(group: eventLoopGroup)
                // A restarted replica must get its port back while old connections sit in TIME_WAIT.
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: options.listenHost, port: options.listenPort) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server))
                        }
                        // Until the hello is in, the connection is anonymous: a small first frame.
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(
                                WireFrameDecoder(
                                    configuration: configuration,
                                    firstFrameMaximumLength: WireFormat.maximumHelloFrameLength))
                        )
                        try channel.pipeline.syncOperations.addHandler(
                            MessageToByteHandler(WireFrameEncoder(maximumFrameLength: maximumFrameLength))
                        )
                        return try accepted.wrap(channel)
                    }
                }
        } catch {
            throw TransportError.bindFailed(address: "\(options.listenHost):\(options.listenPort)", reason: "\(error)")
        }
    }

    /// Starts a dialler per peer, and later ones as `setPeers` adds peers; on cancellation
    /// (`shutdown`) stops them all and waits for them.
    private func run(tls: TLSContexts?) async {
        directory.withLock { directory in
            directory.dialling = (tls, true)
            for (id, address) in directory.addresses {
                guard let outbox = directory.outboxes[id] else { continue }
                directory.diallers[id] = Task { await self.dialLoop(peer: id, address: address, outbox: outbox, tls: tls) }
            }
        }
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(3600)) } catch { break }
        }
        let diallers = directory.withLock { directory -> [Task<Void, Never>] in
            directory.dialling.on = false
            defer { directory.diallers.removeAll() }
            return Array(directory.diallers.values)
        }
        for dialler in diallers { dialler.cancel() }
        for dialler in diallers { await dialler.value }
    }

    /// Makes `wanted` the set of peers (this node's own id is ignored): a new one gets a send
    /// queue and a dialler, one no longer wanted (or at a new address) has its queue closed, its
    /// dialler stopped and its connections both ways closed, and its hello is refused from then
    /// on. Membership changes call it as they are appended to the log.
    public func setPeers(_ wanted: [NodeID: PeerAddress]) {
        let wanted = wanted.filter { $0.key != options.nodeID }
        var stopped: [(id: NodeID, dialler: Task<Void, Never>?, outbox: PeerOutbox?, channel: (any Channel)?)] = []
        var added: [NodeID] = []
        directory.withLock { directory in
            for (id, address) in directory.addresses where wanted[id] != address {
                directory.addresses[id] = nil
                stopped.append(
                    (id, directory.diallers.removeValue(forKey: id), directory.outboxes.removeValue(forKey: id),
                     directory.outbound.removeValue(forKey: id)))
            }
            for (id, address) in wanted where directory.addresses[id] == nil {
                let outbox = PeerOutbox(capacity: options.sendQueueCapacity, maxBytes: options.sendQueueBytes)
                directory.addresses[id] = address
                directory.outboxes[id] = outbox
                added.append(id)
                if directory.dialling.on {
                    let tls = directory.dialling.tls
                    directory.diallers[id] = Task { await self.dialLoop(peer: id, address: address, outbox: outbox, tls: tls) }
                }
            }
        }
        guard !stopped.isEmpty || !added.isEmpty else { return }
        state.withLock { state in
            for peer in stopped { state.peers[peer.id] = nil; state.statuses[peer.id] = nil }
            for id in added { state.peers[id] = PeerCounters() }
        }
        for peer in stopped {
            peer.dialler?.cancel()
            peer.outbox?.close()
            peer.channel?.close(promise: nil)
            dropConnections(from: peer.id)
        }
        logger.notice(
            "peers changed",
            metadata: [
                "transport.peers": "\(wanted.keys.sorted().map(\.description).joined(separator: ","))",
                "transport.added": "\(added.sorted().map(\.description).joined(separator: ","))",
                "transport.removed": "\(stopped.map(\.id).sorted().map(\.description).joined(separator: ","))",
            ])
    }

    private func acceptLoop(_ server: NIOAsyncChannel<NIOAsyncChannel<Frame, Frame>, Never>) async {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        // Each connection catches its own errors: one bad peer cannot stop the listener.
                        group.addTask { await self.serveInbound(connection) }
                    }
                }
            }
        } catch {
            if !isShuttingDown {
                logger.error("peer listener failed; no peer can reach this node", metadata: ["error": "\(error)"])
            }
        }
        let closed = await accepted.closeUnclaimed()
        if closed > 0 {
            logger.debug("closed connections accepted as the listener closed", metadata: ["connections": "\(closed)"])
        }
    }

    /// One accepted connection: handshake, then receive raft frames until it closes.
    private func serveInbound(_ connection: NIOAsyncChannel<Frame, Frame>) async {
        // Not ours once the listener's shutdown closed it.
        guard accepted.claim(connection) else { return }
        let channel = connection.channel
        var logger = self.logger
        logger[metadataKey: "peer.address"] = "\(channel.remoteAddress.map { "\($0)" } ?? "unknown")"
        guard register(channel) else {
            // Shutting down. Close through the async wrapper: dropping a NIOAsyncChannel without
            // executeThenClose leaves its writer unfinished, which NIO treats as a fatal error.
            try? await connection.executeThenClose { _, _ in }
            return
        }
        defer { unregister(channel) }
        if options.tls == nil, !options.allowPlaintextFromNetwork, !Self.isLoopback(channel.remoteAddress) {
            state.withLock { $0.refusedPlaintext += 1 }
            logger.warning(
                "refused a plain-TCP peer connection from beyond loopback: configure tls.* (or tls.allow_plaintext: true)")
            try? await connection.executeThenClose { _, _ in }
            return
        }
        let source = channel.remoteAddress?.ipAddress ?? "unknown"
        guard admitConnection(from: source) else {
            logger.debug("closed a peer connection at accept: connection cap reached")
            try? await connection.executeThenClose { _, _ in }
            return
        }
        defer { releaseConnection(from: source) }
        // However the connection ends (the peer, a bad frame, a refusal, shutdown).
        defer { untrack(channel) }
        let timeout = options.handshakeTimeout
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
        do {
            try await connection.executeThenClose { frames, outbound in
                var iterator = frames.makeAsyncIterator()
                guard let first = try await iterator.next() else {
                    deadline.cancel()
                    logger.debug("inbound connection closed before its hello")
                    return
                }
                deadline.cancel()
                let peerID: NodeID
                switch admit(first) {
                case .failure(let rejection):
                    logger.warning(
                        "refused a peer",
                        metadata: [
                            "peer.id": "\(rejection.nodeID.map { "\($0)" } ?? "?")",
                            "handshake.reason": "\(rejection.reason)",
                        ]
                    )
                    try await outbound.write(
                        Frame(clusterID: options.clusterID, body: .helloRejected(reason: rejection.reason)))
                    return
                case .success(let hello):
                    if let tls = options.tls,
                        let problem = try await Self.identityProblem(channel, expected: tls.certificateName(for: hello.nodeID))
                    {
                        logger.warning(
                            "refused a peer: its certificate does not name the node id it claims",
                            metadata: ["peer.id": "\(hello.nodeID)", "handshake.reason": "\(problem)"])
                        try await outbound.write(
                            Frame(
                                clusterID: options.clusterID,
                                body: .helloRejected(reason: "claims node id \(hello.nodeID) but \(problem)")))
                        return
                    }
                    peerID = hello.nodeID
                    track(channel, peer: peerID)
                    logger[metadataKey: "peer.id"] = "\(peerID)"
                    try await outbound.write(Frame(clusterID: options.clusterID, body: .helloAccepted(ownHello)))
                    logger.info("accepted a peer", metadata: ["peer.name": "\(hello.advertisedName)"])
                }
                while let frame = try await iterator.next() {
                    if frame.clusterID == options.clusterID, case .replicaStatus(let status) = frame.body {
                        // A peer speaks for itself only: a status about another node is forged.
                        guard status.node == peerID else {
                            state.withLock { $0.foreignFrames += 1 }
                            logger.warning(
                                "closing inbound connection: a replica status about another node",
                                metadata: ["replica.status.node": "\(status.node)"])
                            return
                        }
                        state.withLock { $0.statuses[peerID] = (status, ContinuousClock.now) }
                        continue
                    }
                    guard frame.clusterID == options.clusterID, case .raft(let message) = frame.body else {
                        logger.warning(
                            "closing inbound connection: unexpected frame after the handshake",
                            metadata: ["frame": "\(frame)"]
                        )
                        return
                    }
                    guard message.from == peerID, message.to == options.nodeID else {
                        state.withLock { $0.foreignFrames += 1 }
                        logger.warning(
                            "dropped a raft message whose sender or recipient does not match the handshake",
                            metadata: ["raft.from": "\(message.from)", "raft.to": "\(message.to)"]
                        )
                        continue
                    }
                    let size = message.approximateSize
                    let budget = options.inboundBufferBytes
                    let admitted = state.withLock { state -> Bool in
                        guard state.inboundBytes == 0 || state.inboundBytes + size <= budget else {
                            state.inboundDropped += 1
                            return false
                        }
                        state.inboundBytes += size
                        return true
                    }
                    if admitted, case .dropped = inboundContinuation.yield(message) {
                        state.withLock {
                            $0.inboundDropped += 1
                            $0.inboundBytes -= size
                        }
                    }
                }
                logger.debug("inbound connection closed by the peer")
            }
        } catch {
            deadline.cancel()
            if isShuttingDown {
                logger.debug("inbound connection ended by shutdown", metadata: ["error": "\(error)"])
            } else {
                logger.warning("closed an inbound connection", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }

    /// nil when the TLS peer's certificate carries `expected` as a DNS subjectAltName (or, when it
    /// has none, as its common name); otherwise what it carries instead.
    static func identityProblem(_ channel: any Channel, expected: String) async throws -> String? {
        let der: [UInt8]? = try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
            return try handler.peerCertificate?.toDERBytes()
        }.get()
        guard let der else { return "it presented no certificate" }
        let names = PeerCertificateNames(der: der)
        guard let names else { return "its certificate could not be parsed" }
        if names.all.contains(expected) { return nil }
        return "its certificate names \(names.all.isEmpty ? "nothing" : names.all.joined(separator: ", ")), not \(expected)"
    }

    private struct Rejection: Error {
        var nodeID: NodeID?
        var reason: String
    }

    /// Whether the first frame of an inbound connection lets the peer in, and if not, why (the
    /// reason goes back to the dialler, so it says what to change).
    private func admit(_ frame: Frame) -> Result<Hello, Rejection> {
        guard case .hello(let hello) = frame.body else {
            return .failure(Rejection(nodeID: nil, reason: "expected a hello as the first frame, got \(frame.type)"))
        }
        guard frame.clusterID == options.clusterID else {
            return .failure(
                Rejection(
                    nodeID: hello.nodeID,
                    reason:
                        "cluster id \(frame.clusterID) does not match cluster id \(options.clusterID) of \(options.nodeID); "
                        + "the dialling replica is configured for another cluster"
                )
            )
        }
        guard (WireFormat.oldestProtocolVersion...WireFormat.protocolVersion).contains(hello.protocolVersion) else {
            return .failure(
                Rejection(
                    nodeID: hello.nodeID,
                    reason:
                        "protocol version \(hello.protocolVersion) is not supported by \(options.nodeID), which speaks "
                        + "\(WireFormat.oldestProtocolVersion) to \(WireFormat.protocolVersion); upgrade one replica at a time"
                )
            )
        }
        guard hello.nodeID != options.nodeID else {
            return .failure(
                Rejection(
                    nodeID: hello.nodeID,
                    reason:
                        "node id \(hello.nodeID) is the accepting node's own id; two replicas are configured with the same node id"
                )
            )
        }
        let peers = directory.withLock { $0.addresses }
        guard peers[hello.nodeID] != nil else {
            let known = peers.keys.sorted().map(\.description).joined(separator: ", ")
            return .failure(
                Rejection(
                    nodeID: hello.nodeID,
                    reason: "node id \(hello.nodeID) is not in the peer list of \(options.nodeID) (\(known)); "
                        + "add it there, or correct the dialler's node id"
                )
            )
        }
        return .success(hello)
    }

    private var ownHello: Hello {
        Hello(nodeID: options.nodeID, clusterID: options.clusterID, advertisedName: options.advertisedName)
    }

    // MARK: - Dialler

    /// Keeps one outbound connection to `peer` up for as long as the transport runs.
    private func dialLoop(peer: NodeID, address: PeerAddress, outbox: PeerOutbox, tls: TLSContexts?) async {
        var logger = self.logger
        logger[metadataKey: "peer.id"] = "\(peer)"
        logger[metadataKey: "peer.address"] = "\(address)"
        var backoff = options.reconnectBackoff
        var random = SystemRandomNumberGenerator()
        var firstAttempt = true
        while !Task.isCancelled {
            if !firstAttempt { updatePeer(peer) { $0.reconnects += 1 } }
            firstAttempt = false
            do {
                try await connectAndSend(peer: peer, address: address, tls: tls, outbox: outbox, logger: logger) {
                    backoff.reset()
                }
                updatePeer(peer) {
                    $0.connected = false; $0.lastError = "connection closed"
                }
                if !Task.isCancelled { logger.info("connection to peer closed; redialling") }
            } catch {
                let description = Self.describe(error)
                updatePeer(peer) {
                    $0.connected = false; $0.lastError = description
                }
                if Task.isCancelled { break }
                let level: Logger.Level = backoff.failures == 0 ? .warning : .debug
                logger.log(level: level, "cannot connect to peer", metadata: ["error": "\(description)"])
            }
            let delay = backoff.nextDelay(using: &random)
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
        }
        updatePeer(peer) { $0.connected = false }
    }

    private func connectAndSend(
        peer: NodeID,
        address: PeerAddress,
        tls: TLSContexts?,
        outbox: PeerOutbox,
        logger: Logger,
        onAccepted: () -> Void
    ) async throws {
        let configuration = FrameDecoder.Configuration(maximumFrameLength: options.maximumFrameLength)
        let connection = try await ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(TimeAmount(options.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // No host name: peers are verified against the cluster CA, not a DNS name.
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls.client, serverHostname: nil)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(
                            WireFrameDecoder(
                                configuration: configuration,
                                firstFrameMaximumLength: WireFormat.maximumHandshakeReplyLength))
                    )
                    // Outbound frames are encoded by the writer below, one message at a time, so the
                    // pipeline carries bytes (see `WireFrameEncoder`).
                    return try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let channel = connection.channel
        guard register(channel) else {
            try? await connection.executeThenClose { _, _ in }  // see serveInbound
            throw CancellationError()
        }
        defer { unregister(channel) }
        // Known by peer, so that `setPeers` can close it; a peer removed meanwhile is not dialled on.
        let stillAPeer = directory.withLock { directory -> Bool in
            guard directory.outboxes[peer] === outbox else { return false }
            directory.outbound[peer] = channel
            return true
        }
        guard stillAPeer else {
            try? await connection.executeThenClose { _, _ in }
            throw CancellationError()
        }
        defer {
            directory.withLock { directory in
                if directory.outbound[peer] === channel { directory.outbound[peer] = nil }
            }
        }
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(options.handshakeTimeout)) {
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        let maximumFrameLength = options.maximumFrameLength
        let clusterID = options.clusterID
        try await connection.executeThenClose { frames, outbound in
            try await outbound.write(
                ByteBuffer(bytes: try Frame(clusterID: clusterID, body: .hello(ownHello)).encoded()))
            var iterator = frames.makeAsyncIterator()
            guard let reply = try await iterator.next() else {
                throw TransportError.handshakeFailed(
                    peer: peer, reason: "the connection closed before the peer answered our hello")
            }
            deadline.cancel()
            var peerVersion = WireFormat.oldestProtocolVersion
            switch reply.body {
            case .helloAccepted(let hello) where hello.nodeID == peer && reply.clusterID == clusterID:
                peerVersion = hello.protocolVersion
                if let tls = options.tls,
                    let problem = try await Self.identityProblem(channel, expected: tls.certificateName(for: peer))
                {
                    throw TransportError.handshakeFailed(
                        peer: peer, reason: "the replica at \(address) answers as \(peer) but \(problem)")
                }
            case .helloAccepted(let hello):
                throw TransportError.handshakeFailed(
                    peer: peer,
                    reason: "the replica at \(address) is \(hello.nodeID) of cluster \(reply.clusterID), "
                        + "not \(peer) of cluster \(clusterID); check the peer addresses"
                )
            case .helloRejected(let reason):
                throw TransportError.rejected(peer: peer, reason: reason)
            default:
                throw TransportError.handshakeFailed(peer: peer, reason: "expected a hello answer, got \(reply.type)")
            }
            onAccepted()
            updatePeer(peer) { $0.connected = true }
            logger.info("connected to peer")
            // A peer on protocol 1 would close the connection on a status frame.
            let sendsStatus = peerVersion >= WireFormat.replicaStatusSince
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while let batch = await outbox.take() {
                        if sendsStatus, let status = batch.status {
                            do {
                                try await outbound.write(
                                    ByteBuffer(bytes: try Frame(clusterID: clusterID, body: .replicaStatus(status)).encoded()))
                            } catch {
                                channel.close(promise: nil)
                                throw error
                            }
                        }
                        for message in batch.messages {
                            let bytes: [UInt8]
                            do {
                                bytes = try Frame(clusterID: clusterID, body: .raft(message))
                                    .encoded(maximumFrameLength: maximumFrameLength)
                            } catch {
                                outbox.countDropped()
                                logger.error(
                                    "dropped a raft message that cannot be encoded",
                                    metadata: ["raft.message": "\(message)", "error": "\(error)"]
                                )
                                continue
                            }
                            do {
                                try await outbound.write(ByteBuffer(bytes: bytes))
                            } catch {
                                // Closing ends the read loop below, which ends this connection.
                                channel.close(promise: nil)
                                throw error
                            }
                        }
                    }
                }
                // The acceptor sends nothing after accepting; reading tells us when it goes away.
                do {
                    while let frame = try await iterator.next() {
                        logger.warning(
                            "ignoring an unexpected frame from the accepting peer", metadata: ["frame": "\(frame)"])
                    }
                } catch {
                    group.cancelAll()
                    throw error
                }
                group.cancelAll()
            }
        }
    }

    /// An error as a person should read it: TLS failures say what to check.
    private static func describe(_ error: any Error) -> String {
        if error is NIOSSLError || error is BoringSSLError {
            return "TLS handshake failed (\(error)); both replicas must use TLS, with certificates signed by the "
                + "cluster CA named in tls.caCertificatePath"
        }
        return "\(error)"
    }

    // MARK: - State

    private var isShuttingDown: Bool { state.withLock { $0.phase == .shutDown } }

    private func updatePeer(_ id: NodeID, _ update: (inout PeerCounters) -> Void) {
        state.withLock { state in
            var counters = state.peers[id] ?? PeerCounters()
            update(&counters)
            state.peers[id] = counters
        }
    }

    /// Tracks a live connection so that `shutdown()` can close it; false once shut down.
    private func register(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard state.phase != .shutDown else { return false }
            state.liveChannels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    private func unregister(_ channel: any Channel) {
        _ = state.withLock { $0.liveChannels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Counts an accepted connection against the caps; false (and counted) when over one.
    private func admitConnection(from source: String) -> Bool {
        let (total, perSource) = (options.maxInboundConnections, options.maxInboundConnectionsPerSource)
        return state.withLock { state in
            guard state.inboundOpen < total, state.inboundBySource[source, default: 0] < perSource else {
                state.refusedOverCap += 1
                return false
            }
            state.inboundOpen += 1
            state.inboundBySource[source, default: 0] += 1
            return true
        }
    }

    private func releaseConnection(from source: String) {
        state.withLock { state in
            state.inboundOpen -= 1
            let left = state.inboundBySource[source, default: 1] - 1
            state.inboundBySource[source] = left > 0 ? left : nil
        }
    }

    private func track(_ channel: any Channel, peer: NodeID) {
        state.withLock { $0.inboundByPeer[peer, default: [:]][ObjectIdentifier(channel)] = channel }
    }

    private func untrack(_ channel: any Channel) {
        state.withLock { state in
            for peer in state.inboundByPeer.keys {
                state.inboundByPeer[peer]?.removeValue(forKey: ObjectIdentifier(channel))
                if state.inboundByPeer[peer]?.isEmpty == true { state.inboundByPeer[peer] = nil }
            }
        }
    }
}
