public import NIOSSL
import BatonFIX
import BatonListener
import Foundation
public import Hummingbird
public import HummingbirdWebSocket
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle

/// The FIX 4.4 acceptor: accepts TCP connections and feeds their bytes to the venue, one task
/// per connection, each catching its own errors so one bad peer cannot stop the listener.
public struct FIXAcceptor: Service {
    public let venue: Venue
    public let logger: Logger
    private let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    /// Held from accept until `serve` claims them, so a connection accepted as the listener
    /// closes is closed rather than trapping the venue (see `AcceptedConnections`).
    private let accepted: AcceptedConnections<ByteBuffer, ByteBuffer>

    /// A TLS server context from PEM files; errors name the option and the file.
    public static func tlsContext(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw VenueTLSError(description: "--tls-cert \(certificatePath): \(error)")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw VenueTLSError(description: "--tls-key \(keyPath): \(error)")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw VenueTLSError(description: "--tls-cert/--tls-key do not form a TLS identity: \(error)")
        }
    }

    /// The port actually bound (the configured one, or the free port picked for 0).
    public var port: Int { server.channel.localAddress?.port ?? 0 }

    /// Binds now, so a caller learns the port before the service runs.
    /// - Parameter tls: a server context to speak FIX over TLS (`baton-venue --tls-cert`).
    public static func bind(host: String, port: Int, venue: Venue, logger: Logger, tls: NIOSSLContext? = nil)
        async throws -> FIXAcceptor
    {
        let accepted = AcceptedConnections<ByteBuffer, ByteBuffer>()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    return try accepted.wrap(channel)
                }
            }
        return FIXAcceptor(venue: venue, logger: logger, server: server, accepted: accepted)
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                // On shutdown: stop accepting, log every session out, and close whatever is
                // still open once the counterparties had time to answer.
                try? await gracefulShutdown()
                server.channel.close(promise: nil)
                await venue.logoutAllFIXSessions(text: "venue shutting down")
                for _ in 0..<60 where await venue.fixConnectionCount > 0 {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                await venue.closeAllFIXConnections(reason: "venue shutting down")
            }
            do {
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await serve(connection) }
                    }
                }
            } catch {
                logger.debug("FIX listener closed: \(error)")
            }
            await accepted.closeUnclaimed()
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        guard accepted.claim(connection) else { return }  // closed by the listener's shutdown
        let remote = connection.channel.remoteAddress?.description ?? "unknown"
        let (writes, writer) = AsyncStream<Venue.FIXOutbound>.makeStream()
        let id = await venue.fixConnectionOpened(writer: writer, remote: remote)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await item in writes {
                            switch item {
                            case .bytes(let bytes): try await outbound.write(ByteBuffer(bytes: bytes))
                            case .close: return
                            }
                        }
                    }
                    group.addTask {
                        for try await buffer in inbound {
                            await venue.fixBytesReceived(id, Array(buffer.readableBytesView))
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.info("FIX connection \(id) ended: \(error)")
        }
        await venue.fixConnectionClosed(id)
    }
}

/// Drives the venue's clocks: the market feed about once a millisecond, FIX session timers
/// five times a second.
public struct VenueClock: Service {
    public let venue: Venue
    public let runsFIXTimers: Bool

    public init(venue: Venue, runsFIXTimers: Bool) {
        self.venue = venue
        self.runsFIXTimers = runsFIXTimers
    }

    public func run() async throws {
        var steps = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(1))
            await venue.feedStep()
            steps += 1
            if runsFIXTimers && steps % 200 == 0 { await venue.fixTimerTick() }
        }
    }
}

/// The venue's HTTP side on one port: the market feed WebSocket (`/feed`), inspection
/// (`/orders`, `/duplicates`, `/refusals`, `/stats`, `/healthz`) and outage control (`/admin/feed/…`).
public func buildVenueApplication(
    venue: Venue, host: String, port: Int, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: BasicRequestContext.self)
    router.get("/healthz") { _, _ in "ok\n" }
    router.get("/orders") { _, _ in
        try jsonResponse(await venue.orders.map(OrderView.init))
    }
    router.get("/duplicates") { _, _ in
        try jsonResponse(await venue.duplicates.map(DuplicateView.init))
    }
    router.get("/refusals") { _, _ in
        try jsonResponse(await venue.refusals.map(RefusalView.init))
    }
    router.get("/stats") { _, _ in
        try jsonResponse(await venue.statistics())
    }
    // Test hooks for hostile input: a raw feed line, and a raw application message on a session.
    router.post("/admin/feed/inject") { request, _ in
        let body = try await request.body.collect(upTo: 8 * 1024)
        guard let inject = try? JSONDecoder().decode(FeedInjection.self, from: Data(buffer: body)), !inject.line.isEmpty,
            inject.line.utf8.count <= 4096
        else {
            throw HTTPError(.badRequest, message: "POST /admin/feed/inject needs {\"line\": \"…\"} of 1 to 4096 bytes\n")
        }
        await venue.injectFeedLine(inject.line)
        return "injected\n"
    }
    router.post("/admin/fix/inject") { request, _ in
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let inject = try? JSONDecoder().decode(MessageInjection.self, from: Data(buffer: body)),
            !inject.session.isEmpty, !inject.msgType.isEmpty, inject.fields.allSatisfy({ $0.count == 2 && Int($0[0]) != nil })
        else {
            throw HTTPError(
                .badRequest,
                message: "POST /admin/fix/inject needs {\"session\": \"BATON1\", \"msgType\": \"8\", \"fields\": [[\"37\", \"O-1\"], …]}\n")
        }
        let fields = inject.fields.map { FIXField(Int($0[0]) ?? 0, $0[1]) }
        await venue.injectMessage(FIXMessage(msgType: inject.msgType, fields: fields), to: inject.session)
        return "injected\n"
    }
    router.post("/admin/feed/pause") { request, context in
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let pause = try? JSONDecoder().decode(FeedPause.self, from: Data(buffer: body)) else {
            throw HTTPError(
                .badRequest, message: "POST /admin/feed/pause needs a JSON body like {\"seconds\": 2.5}\n")
        }
        guard pause.seconds.isFinite, pause.seconds >= 0, pause.seconds <= 3600 else {
            throw HTTPError(.badRequest, message: "seconds must be between 0 and 3600, got \(pause.seconds)\n")
        }
        await venue.pauseFeed(seconds: pause.seconds)
        return "feed paused for \(pause.seconds) s\n"
    }
    router.post("/admin/status-requests") { request, _ in
        struct Switch: Decodable { var answer: Bool }
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let toggle = try? JSONDecoder().decode(Switch.self, from: Data(buffer: body)) else {
            throw HTTPError(.badRequest, message: "POST /admin/status-requests needs {\"answer\": false} or {\"answer\": true}\n")
        }
        await venue.setIgnoresStatusRequests(!toggle.answer)
        return toggle.answer ? "status requests answered\n" : "status requests ignored\n"
    }
    // A FIX connection drop: every connection closed at once, without a Logout.
    router.post("/admin/fix/drop") { _, _ in
        let count = await venue.fixConnectionCount
        await venue.closeAllFIXConnections(reason: "dropped by POST /admin/fix/drop")
        return "dropped \(count) FIX connection(s)\n"
    }
    router.post("/admin/feed/resume") { _, _ in
        await venue.resumeFeed()
        return "feed resumed\n"
    }

    let webSocketRouter = Router(context: BasicWebSocketRequestContext.self)
    webSocketRouter.ws("/feed") { inbound, outbound, _ in
        let (id, frames) = await venue.subscribe()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in inbound {}  // the feed is one-way; this notices the close
                }
                group.addTask {
                    for await frame in frames { try await outbound.write(.text(frame)) }
                }
                group.addTask {
                    // Let the HTTP server's graceful shutdown finish instead of waiting on us.
                    try await gracefulShutdown()
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            logger.debug("feed subscriber \(id) ended: \(error)")
        }
        await venue.unsubscribe(id)
    }

    return Application(
        router: router,
        server: .http1WebSocketUpgrade(webSocketRouter: webSocketRouter),
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "baton-venue"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        logger: logger
    )
}

private struct FeedPause: Decodable {
    var seconds: Double
}

private struct FeedInjection: Decodable {
    var line: String
}

private struct MessageInjection: Decodable {
    var session: String
    var msgType: String
    var fields: [[String]]
}

private func jsonResponse(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = try encoder.encode(value)
    return Response(
        status: .ok, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

/// One order in `GET /orders`. Quantities and prices are decimal strings.
public struct OrderView: Codable, Hashable, Sendable {
    public var orderID: String
    public var clOrdID: String
    public var session: String
    public var ownerSession: String
    public var symbol: String
    public var side: String
    public var ordType: String
    public var timeInForce: String
    public var orderQty: String
    public var price: String?
    public var possResend: Bool
    public var status: String
    public var ordStatus: String
    public var cumQty: String
    public var avgPx: String
    public var leavesQty: String
    /// UTC, FIX format (`YYYYMMDD-HH:MM:SS.sss`).
    public var receivedAt: String
    public var text: String?

    public init(_ order: VenueOrder) {
        orderID = order.orderID
        clOrdID = order.clOrdID
        session = order.session
        ownerSession = order.ownerSession
        symbol = order.symbol
        side = order.side == .buy ? "buy" : order.side == .sell ? "sell" : order.side.rawValue
        ordType = order.ordType == .market ? "market" : order.ordType == .limit ? "limit" : order.ordType.rawValue
        switch order.timeInForce {
        case .day: timeInForce = "DAY"
        case .goodTillCancel: timeInForce = "GTC"
        case .immediateOrCancel: timeInForce = "IOC"
        default: timeInForce = order.timeInForce.rawValue
        }
        orderQty = VenueDecimal.string(order.orderQty)
        price = order.price.map(VenueDecimal.string)
        possResend = order.possResend
        ordStatus = order.status.rawValue
        switch order.status {
        case .new: status = "new"
        case .partiallyFilled: status = "partially-filled"
        case .filled: status = "filled"
        case .canceled: status = "canceled"
        case .rejected: status = "rejected"
        case .expired: status = "expired"
        default: status = order.status.rawValue
        }
        cumQty = VenueDecimal.string(order.cumQty)
        avgPx = VenueDecimal.string(order.avgPx)
        leavesQty = VenueDecimal.string(order.leavesQty)
        receivedAt = order.receivedAt.fixString
        text = order.rejectText
    }
}

/// One entry of `GET /duplicates`.
public struct DuplicateView: Codable, Hashable, Sendable {
    public var clOrdID: String
    public var session: String
    public var possResend: Bool
    public var receivedAt: String
    public var originalSession: String
    public var originalReceivedAt: String

    public init(_ attempt: DuplicateOrderAttempt) {
        clOrdID = attempt.clOrdID
        session = attempt.session
        possResend = attempt.possResend
        receivedAt = attempt.receivedAt.fixString
        originalSession = attempt.originalSession
        originalReceivedAt = attempt.originalReceivedAt.fixString
    }
}

/// One entry of `GET /refusals`: a NewOrderSingle refused before it became an order.
public struct RefusalView: Codable, Hashable, Sendable {
    public var clOrdID: String
    public var session: String
    public var possResend: Bool
    public var receivedAt: String
    public var sendingTime: String
    public var ordRejReason: Int
    public var text: String

    public init(_ refusal: RefusedOrder) {
        clOrdID = refusal.clOrdID
        session = refusal.session
        possResend = refusal.possResend
        receivedAt = refusal.receivedAt.fixString
        sendingTime = refusal.sendingTime.fixString
        ordRejReason = refusal.ordRejReason
        text = refusal.text
    }
}

public struct VenueTLSError: Error, CustomStringConvertible {
    public var description: String
}
