import NIOSSL
public import BatonFIX
import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A FIX 4.4 initiator over TCP: runs a `FIXSession` (role `.initiator`) on a connection to the
/// broker, keeps it logged on, and keeps its sequence numbers and sent messages durable.
///
/// One loop per connection handles every event in turn (bytes in, a tick, a message to send,
/// a logout) and carries the session's directives out in order: a `persist` is committed to
/// SQLite before the bytes of any later `send` are written, so a restart never reuses a
/// MsgSeqNum nor fails to answer a ResendRequest. When the connection drops, the initiator dials
/// again with bounded exponential backoff and jitter; sequence numbers continue (no
/// ResetSeqNumFlag unless the settings ask for it). On graceful shutdown it sends Logout, waits
/// up to `logoutTimeout` for the reply, then closes.
///
/// Each connection starts from what the store holds, so the messages kept in memory for resend
/// start at most at `maxStoredMessages`; within one connection they grow with every message sent
/// (FIXSession has no way to drop old ones yet), which a reconnect trims again.
///
/// `applicationMessages` is unbounded: batond must consume it. Received bytes are not
/// back-pressured either; the broker is trusted not to flood.
public actor FIXInitiator: Service {
    public nonisolated let settings: FIXSessionSettings
    public nonisolated let host: String
    public nonisolated let port: Int
    /// Every application message the session delivers (ExecutionReport, OrderCancelReject, the
    /// counterparty's session Reject(3) …), in order, exactly once per connection. After a
    /// reconnect the broker may resend some with PossDupFlag=Y: deduplicate by ExecID.
    /// Finishes when `run()` returns.
    public nonisolated let applicationMessages: AsyncStream<FIXMessage>

    private let applicationSink: AsyncStream<FIXMessage>.Continuation
    /// Application messages yielded and not yet reported consumed.
    private let undelivered = Mutex(0)
    /// The current connection's unprocessed inbound bytes (replaced on each connection).
    private var inboundBacklog: FIXInboundBacklog?
    private let database: FIXSessionDatabase
    private let options: FIXInitiatorOptions
    private let eventLoopGroup: any EventLoopGroup
    private let wallClock: @Sendable () -> FIXTimestamp
    private var logger: Logger
    private var backoff: FIXReconnectBackoff
    private var snapshot: FIXInitiatorStatus
    private var randomness = SystemRandomNumberGenerator()

    private struct Control: Sendable {
        var connection: AsyncStream<FIXConnectionEvent>.Continuation?
        var shuttingDown = false
        /// With `options.requiresPermit`: whether, and up to which MsgSeqNum, this initiator may
        /// be connected and send.
        var permit: FIXSessionPermit?
    }

    /// Shared with `requestShutdown()`, which runs outside the actor (a signal handler's task).
    private let control = Mutex(Control())

    /// - Parameters:
    ///   - settings: the session; its role must be `.initiator`.
    ///   - storePath: the SQLite file for this session's sequence numbers and sent messages,
    ///     e.g. `<data_dir>/fix-<SenderCompID>.sqlite`. Created if missing.
    ///   - eventLoopGroup: NIO's shared singleton group unless given.
    ///   - wallClock: the time stamped on messages (SendingTime) and driving heartbeats; read
    ///     once per event.
    /// - Throws: `FIXSessionDatabaseError` if the store cannot be opened or belongs to another
    ///   session, `FIXInitiatorConfigurationError` for settings an initiator cannot run with.
    private let tlsContext: NIOSSLContext?

    /// The client side of TLS to the broker; errors name the option and the file.
    static func clientContext(_ tls: FIXTLSSettings) throws -> NIOSSLContext {
        func certificates(_ option: String, _ path: String) throws -> [NIOSSLCertificate] {
            let found: [NIOSSLCertificate]
            do { found = try NIOSSLCertificate.fromPEMFile(path) } catch {
                throw FIXInitiatorConfigurationError("\(option): cannot read \(path) (\(error))")
            }
            guard !found.isEmpty else { throw FIXInitiatorConfigurationError("\(option): \(path) holds no PEM certificate") }
            return found
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(try certificates("venue.tls.ca_file", tls.caCertificatePath))
        configuration.certificateVerification = tls.serverName == nil ? .noHostnameVerification : .fullVerification
        switch (tls.certificatePath, tls.privateKeyPath) {
        case (let certificate?, let key?):
            configuration.certificateChain = try certificates("venue.tls.cert_file", certificate).map { .certificate($0) }
            do { configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) } catch {
                throw FIXInitiatorConfigurationError("venue.tls.key_file: cannot read \(key) (\(error))")
            }
        case (nil, nil):
            break
        default:
            throw FIXInitiatorConfigurationError("venue.tls.cert_file and venue.tls.key_file go together")
        }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw FIXInitiatorConfigurationError("venue.tls: not a usable TLS configuration (\(error))")
        }
    }

    public init(
        settings: FIXSessionSettings, host: String, port: Int, storePath: String, logger: Logger,
        options: FIXInitiatorOptions = FIXInitiatorOptions(),
        eventLoopGroup: (any EventLoopGroup)? = nil,
        wallClock: @escaping @Sendable () -> FIXTimestamp = FIXInitiator.systemTime
    ) throws {
        guard settings.role == .initiator else {
            throw FIXInitiatorConfigurationError("FIXInitiator needs FIXSessionSettings with role .initiator")
        }
        guard (1...65535).contains(port) else {
            throw FIXInitiatorConfigurationError("port \(port) for \(host) is not in 1…65535")
        }
        self.settings = settings
        self.host = host
        self.port = port
        self.options = options
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.wallClock = wallClock
        self.backoff = options.reconnectBackoff
        self.tlsContext = try options.tls.map(Self.clientContext)
        self.database = try FIXSessionDatabase(
            path: storePath, settings: settings, maxStoredMessages: options.maxStoredMessages,
            synchronous: options.syncsStore)
        let store = try database.load()
        var logger = logger
        logger[metadataKey: "fix.session"] = "\(settings.senderCompID)->\(settings.targetCompID)"
        self.logger = logger
        self.snapshot = FIXInitiatorStatus(
            senderCompID: settings.senderCompID, targetCompID: settings.targetCompID, session: .disconnected,
            nextSenderSeqNum: store.nextSenderSeqNum, nextTargetSeqNum: store.nextTargetSeqNum, connections: 0,
            failedConnectAttempts: 0, deliveredMessages: 0)
        (applicationMessages, applicationSink) = AsyncStream.makeStream(of: FIXMessage.self)
    }

    /// The wall clock in milliseconds, as FIX timestamps carry it.
    public static let systemTime: @Sendable () -> FIXTimestamp = {
        FIXTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }

    // MARK: - API

    /// Connects, logs on and stays logged on until cancelled or until graceful shutdown (which
    /// logs out cleanly first). Call once.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.runConnections()
        } onGracefulShutdown: {
            self.requestShutdown()
        }
        applicationSink.finish()
        logger.info("FIX initiator stopped")
    }

    /// Logs out (if logged on), closes, and makes `run()` return. Safe to call from anywhere,
    /// any number of times.
    public nonisolated func requestShutdown() {
        let connection = control.withLock { control -> AsyncStream<FIXConnectionEvent>.Continuation? in
            control.shuttingDown = true
            return control.connection
        }
        connection?.yield(.logout)
    }

    /// Sends an application message if the session is active. Returns its MsgSeqNum once the
    /// store has recorded it and its bytes were written to the socket.
    ///
    /// Never queues: a message that cannot go out now throws `FIXInitiatorError.notLoggedOn`
    /// (or `.disconnected` / `.storeFailed`), and an order refused here was not sent.
    ///
    /// - Parameter condition: checked right before the message is stamped (SendingTime) and
    ///   written, on the connection's own loop: the last moment at which sending can still be
    ///   refused. It returns why not to send, or nil. Baton's leader passes its lease check here,
    ///   so the time between the check and the write is as short as the loop can make it.
    public func send(_ message: FIXMessage, onlyIf condition: (@Sendable () -> String?)? = nil) async throws -> Int {
        let type = message.msgType ?? ""
        guard !["0", "1", "2", "3", "4", "5", "A"].contains(type) else {
            throw FIXInitiatorError.sessionMessageType(type)
        }
        guard snapshot.session == .active, let connection = control.withLock({ $0.connection }) else {
            throw FIXInitiatorError.notLoggedOn(snapshot.session)
        }
        return try await withCheckedThrowingContinuation { continuation in
            if case .terminated = connection.yield(.send(message, condition, continuation)) {
                continuation.resume(throwing: FIXInitiatorError.notLoggedOn(.disconnected))
            }
        }
    }

    public func status() -> FIXInitiatorStatus {
        var status = snapshot
        status.readsHeld = inboundBacklog?.heldReads ?? 0
        return status
    }

    /// The consumer of `applicationMessages` took one: room for the next delivery. A consumer
    /// that never calls this gets `options.maxUndeliveredMessages` and then the session waits.
    public nonisolated func consumedApplicationMessage() {
        undelivered.withLock { $0 = max(0, $0 - 1) }
    }

    /// Waits (polling every millisecond, cut short by shutdown) while the consumer is
    /// `maxUndeliveredMessages` behind. Dropping would lose a report the broker will not resend
    /// (its sequence number is already taken); waiting backs the flood up into TCP instead.
    private func waitForRoomToDeliver() async {
        guard undelivered.withLock({ $0 }) >= options.maxUndeliveredMessages else { return }
        snapshot.deliveryWaits += 1
        logger.warning(
            "application messages are not being consumed; holding back the session",
            metadata: ["fix.undelivered": "\(options.maxUndeliveredMessages)"])
        while undelivered.withLock({ $0 }) >= options.maxUndeliveredMessages, !shuttingDown, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Lets the initiator connect (with `options.requiresPermit`) and send up to
    /// `permit.senderSeqCeiling`. A permit granted while connected only moves the ceiling; its
    /// sequence numbers apply from the next connection.
    public nonisolated func grant(_ permit: FIXSessionPermit) {
        control.withLock { $0.permit = permit }
    }

    /// Raises the ceiling of the current permit (no-op without one, or if lower).
    public nonisolated func extendCeiling(to ceiling: Int) {
        control.withLock { control in
            if let permit = control.permit, ceiling > permit.senderSeqCeiling {
                control.permit?.senderSeqCeiling = ceiling
            }
        }
    }

    /// Withdraws the permit and closes the connection at once, without a Logout: another
    /// replica is about to, or may already, own the session. Does not dial again until granted.
    public nonisolated func revoke(reason: String) {
        let connection = control.withLock { control -> AsyncStream<FIXConnectionEvent>.Continuation? in
            guard control.permit != nil else { return nil }
            control.permit = nil
            return control.connection
        }
        connection?.yield(.revoked(reason: reason))
    }

    /// The permit held now, if any.
    public nonisolated var permit: FIXSessionPermit? { control.withLock { $0.permit } }

    /// Returns once the session is logged on; throws `FIXInitiatorError.timedOut` otherwise.
    public func waitUntilActive(timeout: Duration) async throws {
        try await waitUntil("session active", timeout: timeout) { $0.session == .active }
    }

    /// Returns once `condition` holds for the status; throws `FIXInitiatorError.timedOut`.
    public func waitUntil(
        _ what: String, timeout: Duration, _ condition: @Sendable (FIXInitiatorStatus) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !condition(snapshot) {
            guard ContinuousClock.now < deadline else {
                throw FIXInitiatorError.timedOut(
                    "\(what) within \(timeout) (session \(snapshot.session.rawValue), connections "
                        + "\(snapshot.connections), last error: \(snapshot.lastError ?? "none"))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: - Connections

    private var shuttingDown: Bool { control.withLock { $0.shuttingDown } }

    private func runConnections() async {
        logger.info("FIX initiator starting", metadata: ["fix.peer": "\(host):\(port)"])
        while !shuttingDown && !Task.isCancelled {
            if options.requiresPermit {
                await waitForPermit()
                guard !shuttingDown && !Task.isCancelled else { break }
            }
            let (events, sink) = AsyncStream.makeStream(of: FIXConnectionEvent.self)
            let backlog = FIXInboundBacklog(high: options.maxUnprocessedBytes)
            inboundBacklog = backlog
            do {
                let channel = try await connect(events: sink, backlog: backlog)
                backlog.attach(channel)
                await runSession(on: channel, events: events, sink: sink)
            } catch {
                snapshot.failedConnectAttempts += 1
                recordError("cannot connect to \(host):\(port): \(error)")
                sink.finish()
            }
            guard !shuttingDown && !Task.isCancelled else { break }
            // Revoked: wait for the next grant rather than for a backoff.
            if options.requiresPermit && permit == nil { continue }
            let delay = backoff.nextDelay(using: &randomness)
            logger.info("reconnecting", metadata: ["fix.reconnect_in": "\(delay)"])
            await sleep(delay)
        }
    }

    /// Until a permit is granted (checked every 5 ms: a new leader waits on this), shutdown or
    /// cancellation.
    private func waitForPermit() async {
        if permit == nil { logger.info("waiting for a session permit: another replica owns the broker session") }
        while permit == nil && !shuttingDown {
            do { try await Task.sleep(for: .milliseconds(5)) } catch { return }
        }
    }

    /// Sleeps for `delay`, cut short by shutdown (checked every 50 ms) or cancellation.
    private func sleep(_ delay: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: delay)
        while !shuttingDown, clock.now < deadline {
            let slice = min(Duration.milliseconds(50), clock.now.duration(to: deadline))
            do { try await clock.sleep(for: slice) } catch { return }
        }
    }

    private func connect(
        events: AsyncStream<FIXConnectionEvent>.Continuation, backlog: FIXInboundBacklog
    ) async throws -> any Channel {
        let timeout = options.connectTimeout.components
        let tls = tlsContext
        let serverName = options.tls?.serverName
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(.nanoseconds(timeout.seconds * 1_000_000_000 + timeout.attoseconds / 1_000_000_000))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(FIXChannelBridge(events: events, backlog: backlog))
                }
            }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        // On loopback a dial to a port nobody listens on can pick that same port as its own and
        // "connect" to itself (TCP simultaneous open); that is no broker.
        if let local = channel.localAddress, local == channel.remoteAddress {
            try? await channel.close()
            throw SelfConnection(description: "connected to itself at \(local): nothing listens on \(host):\(port)")
        }
        return channel
    }

    private func runSession(
        on channel: any Channel, events: AsyncStream<FIXConnectionEvent>,
        sink: AsyncStream<FIXConnectionEvent>.Continuation
    ) async {
        let registered = control.withLock { control -> Bool in
            guard !control.shuttingDown else { return false }
            control.connection = sink
            return true
        }
        defer {
            control.withLock { $0.connection = nil }
        }
        guard registered else {
            try? await channel.close()
            sink.finish()
            return
        }
        let connectedAt = wallClock()
        snapshot.connections += 1
        snapshot.connectedSince = connectedAt
        logger.info(
            "connected", metadata: ["fix.peer": "\(host):\(port)", "fix.connections": "\(snapshot.connections)"])

        // Every connection starts from the durable store: what survived is exactly what the
        // broker may ask for, and a persist that failed last time is not trusted from memory.
        var connection: Connection
        do {
            var store = try database.load()
            if options.requiresPermit {
                guard let permit else {
                    try? await channel.close()
                    sink.finish()
                    snapshot.connectedSince = nil
                    return
                }
                // The cluster's numbers, not this replica's: start above anything any earlier
                // owner of the session could have sent, and ask the broker again for whatever
                // the journal has not recorded.
                let nextSender = max(store.nextSenderSeqNum, permit.firstSenderSeqNum)
                let nextTarget = permit.nextTargetSeqNum ?? store.nextTargetSeqNum
                if nextSender != store.nextSenderSeqNum || nextTarget != store.nextTargetSeqNum {
                    try await database.apply([.reset(nextSenderSeqNum: nextSender, nextTargetSeqNum: nextTarget)])
                    store = try database.load()
                }
                logger.info(
                    "session permit applied",
                    metadata: [
                        "fix.next_sender_seq_num": "\(nextSender)", "fix.next_target_seq_num": "\(nextTarget)",
                        "fix.sender_seq_ceiling": "\(permit.senderSeqCeiling)",
                    ])
            }
            connection = Connection(channel: channel, session: FIXSession(settings: settings, store: store))
        } catch {
            recordError("\(error)")
            try? await channel.close()
            sink.finish()
            snapshot.connectedSince = nil
            return
        }
        // Cancelled implicitly when this function returns.
        async let _ = Self.tick(every: options.tickInterval, into: sink)
        var iterator = events.makeAsyncIterator()
        await perform(connection.session.onConnected(now: connectedAt), on: &connection)
        while connection.isOpen, let event = await iterator.next(isolation: #isolation) {
            await handle(event, on: &connection)
        }
        if connection.session.status != .disconnected {
            // Cancelled: the session has not seen the end of its connection yet.
            await perform(connection.session.onDisconnected(now: wallClock()), on: &connection)
        }
        try? await channel.close()
        control.withLock { $0.connection = nil }
        sink.finish()
        let reason = connection.closeReason ?? "connection ended"
        while let event = await iterator.next(isolation: #isolation) {
            if case .send(_, _, let continuation) = event {
                continuation.resume(throwing: FIXInitiatorError.disconnected(reason: reason, seqNum: nil))
            }
        }
        snapshot.session = .disconnected
        snapshot.connectedSince = nil
        snapshot.activeSince = nil
        snapshot.lastDisconnect = reason
        if connection.cleanLogout {
            logger.info("disconnected", metadata: ["fix.reason": "\(reason)"])
        } else {
            recordError(reason)
        }
    }

    private static func tick(every interval: Duration, into sink: AsyncStream<FIXConnectionEvent>.Continuation) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if case .terminated = sink.yield(.tick) { return }
        }
    }

    /// One connection's state, owned by its loop.
    private struct Connection {
        let channel: any Channel
        var session: FIXSession
        var isOpen = true
        var closeReason: String?
        /// The connection ended with a confirmed (or requested) Logout, not an error.
        var cleanLogout = false
        var loggingOut = false

        init(channel: any Channel, session: FIXSession) {
            self.channel = channel
            self.session = session
        }
    }

    private func handle(_ event: FIXConnectionEvent, on connection: inout Connection) async {
        switch event {
        case .received(let bytes):
            await perform(connection.session.onReceived(bytes: bytes, now: wallClock()), on: &connection)
            inboundBacklog?.processed(bytes.count)
        case .tick:
            await perform(connection.session.onTick(now: wallClock()), on: &connection)
        case .logout:
            connection.loggingOut = true
            logger.info("logging out")
            await perform(connection.session.logout(text: "shutting down", now: wallClock()), on: &connection)
        case .send(let message, let condition, let continuation):
            let directives: [FIXSessionDirective]
            // The clock is read before the condition, so SendingTime never postdates the check.
            let now = wallClock()
            if let refusal = condition?() {
                continuation.resume(throwing: FIXInitiatorError.refused(refusal))
                return
            }
            do {
                directives = try connection.session.send(message, now: now)
            } catch {
                switch error {
                case .notLoggedOn(let status): continuation.resume(throwing: FIXInitiatorError.notLoggedOn(status))
                case .sessionMessageType(let type):
                    continuation.resume(throwing: FIXInitiatorError.sessionMessageType(type))
                }
                return
            }
            var seqNum: Int?
            // The application message's own number (kept for resend or not, depending on the
            // session's settings); session messages written alongside have other types.
            for case .send(let written, _) in directives where written.msgType == message.msgType {
                seqNum = written.msgSeqNum
            }
            let outcome = await perform(directives, on: &connection)
            switch outcome {
            case .done:
                if let seqNum {
                    continuation.resume(returning: seqNum)
                } else {
                    continuation.resume(throwing: FIXInitiatorError.storeFailed("the session stored no MsgSeqNum"))
                }
            case .storeFailed(let reason): continuation.resume(throwing: FIXInitiatorError.storeFailed(reason))
            case .writeFailed(let reason):
                continuation.resume(throwing: FIXInitiatorError.disconnected(reason: reason, seqNum: seqNum))
            }
        case .revoked(let reason):
            connection.closeReason = connection.closeReason ?? "session permit revoked: \(reason)"
            connection.isOpen = false
            try? await connection.channel.close()
            await perform(connection.session.onDisconnected(now: wallClock()), on: &connection)
        case .closed(let reason):
            connection.isOpen = false
            connection.closeReason = connection.closeReason ?? reason
            if connection.loggingOut { connection.cleanLogout = true }
            await perform(connection.session.onDisconnected(now: wallClock()), on: &connection)
        }
        snapshot.nextSenderSeqNum = connection.session.store.nextSenderSeqNum
        snapshot.nextTargetSeqNum = connection.session.store.nextTargetSeqNum
    }

    private enum Outcome {
        case done
        case storeFailed(String)
        case writeFailed(String)
    }

    /// Carries directives out in order: persists are committed (one transaction for those in a
    /// row) before the next send is written; writes in a row are flushed together and awaited.
    @discardableResult
    private func perform(_ directives: [FIXSessionDirective], on connection: inout Connection) async -> Outcome {
        var persists: [FIXSessionPersist] = []
        var writes: [EventLoopFuture<Void>] = []
        let channel = connection.channel
        // The session has already moved on; show it before the first await lets status() in.
        snapshot.nextSenderSeqNum = connection.session.store.nextSenderSeqNum
        snapshot.nextTargetSeqNum = connection.session.store.nextTargetSeqNum

        do {
            for directive in directives {
                switch directive {
                case .persist(let change):
                    persists.append(change)
                case .send(let message, let bytes):
                    if options.requiresPermit {
                        let ceiling = control.withLock { $0.permit?.senderSeqCeiling } ?? 0
                        if let seq = message.msgSeqNum, seq > ceiling {
                            // Above the ceiling another replica may use these numbers after us.
                            try await commit(&persists)
                            try? await awaitWrites(&writes)
                            let reason =
                                "MsgSeqNum \(seq) is above the reserved ceiling \(ceiling): the cluster has not "
                                + "reserved more sequence numbers for this replica"
                            connection.closeReason = connection.closeReason ?? reason
                            connection.isOpen = false
                            try? await channel.close()
                            return .writeFailed(reason)
                        }
                    }
                    try await commit(&persists)
                    writes.append(channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)))
                    // Session-level messages (Logon, Logout, ResendRequest, SequenceReset,
                    // Reject) are few and are what an on-call engineer reads after a session
                    // problem; every other message is trace. Passwords are redacted by FIXField.
                    let sessionLevel = ["A", "5", "2", "4", "3"].contains(message.msgType ?? "")
                    logger.log(level: sessionLevel ? .debug : .trace, "sent", metadata: ["fix.message": "\(message)"])
                case .deliver(let message):
                    await waitForRoomToDeliver()
                    undelivered.withLock { $0 += 1 }
                    applicationSink.yield(message)
                    snapshot.deliveredMessages += 1
                case .disconnect(let reason):
                    try await commit(&persists)
                    // Let a Logout or Reject reach the counterparty before the close.
                    try? await awaitWrites(&writes)
                    connection.closeReason = connection.closeReason ?? reason
                    // A Logout that went unanswered is worth an error; one answered is not.
                    connection.cleanLogout =
                        reason.hasPrefix("Logout confirmed") || reason.hasPrefix("logout requested before Logon")
                    connection.isOpen = false
                    try? await channel.close()
                case .statusChanged(let status):
                    snapshot.session = status
                    if status == .active {
                        backoff.reset()
                        snapshot.activeSince = wallClock()
                        logger.info(
                            "logged on",
                            metadata: [
                                "fix.next_sender_seq_num": "\(connection.session.store.nextSenderSeqNum)",
                                "fix.next_target_seq_num": "\(connection.session.store.nextTargetSeqNum)",
                            ])
                    }
                case .log(let text):
                    logger.notice("\(text)")
                }
            }
            try await commit(&persists)
            try await awaitWrites(&writes)
            return .done
        } catch let error as FIXSessionDatabaseError {
            // Nothing after this point may reach the broker: the store no longer covers it.
            logger.error("closing the connection: \(error)")
            connection.closeReason = "\(error)"
            connection.isOpen = false
            try? await channel.close()
            return .storeFailed("\(error)")
        } catch {
            connection.closeReason = connection.closeReason ?? "write failed: \(error)"
            connection.isOpen = false
            try? await channel.close()
            return .writeFailed("\(error)")
        }
    }

    private func commit(_ persists: inout [FIXSessionPersist]) async throws(FIXSessionDatabaseError) {
        guard !persists.isEmpty else { return }
        try await database.apply(persists)
        persists.removeAll()
    }

    private func awaitWrites(_ writes: inout [EventLoopFuture<Void>]) async throws {
        defer { writes.removeAll() }
        for write in writes { try await write.get() }
    }

    private func recordError(_ reason: String) {
        snapshot.lastError = reason
        snapshot.lastErrorAt = wallClock()
        logger.warning("FIX connection: \(reason)")
    }
}

struct SelfConnection: Error, CustomStringConvertible {
    var description: String
}

public struct FIXInitiatorConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
