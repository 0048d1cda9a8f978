import BatonFIX
import BatonFIXNIO
import NIOCore
import NIOPosix
import Synchronization

/// A FIX acceptor written for tests, on 127.0.0.1: answers Logon, TestRequest and Logout like a
/// broker would, records everything it receives, and lets a test send any bytes (garbled ones
/// included) or drop the connection. Its outbound MsgSeqNum continues across connections.
final class ScriptedBroker: Sendable {
    struct State {
        var connections: [any Channel] = []
        var received: [FIXMessage] = []
        var nextSeqNum = 1
        var accepted = 0
        /// Off: Logon goes unanswered (a broker that hangs during the handshake).
        var answersLogon = true
    }

    static let compID = "BROKER"
    let state = Mutex(State())
    private let server = Mutex<(any Channel)?>(nil)
    let port: Int

    private init(port: Int) {
        self.port = port
    }

    static func start(port: Int = 0) async throws -> ScriptedBroker {
        let holder = Mutex<ScriptedBroker?>(nil)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let broker = holder.withLock({ $0 }) else { throw TestFailure("broker not ready") }
                    broker.state.withLock {
                        $0.connections.append(channel)
                        $0.accepted += 1
                    }
                    try channel.pipeline.syncOperations.addHandler(BrokerHandler(broker: broker))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        let broker = ScriptedBroker(port: channel.localAddress?.port ?? port)
        broker.server.withLock { $0 = channel }
        holder.withLock { $0 = broker }
        return broker
    }

    var received: [FIXMessage] { state.withLock { $0.received } }
    var accepted: Int { state.withLock { $0.accepted } }

    func received(_ msgType: String) -> [FIXMessage] { received.filter { $0.msgType == msgType } }

    /// Stamps the header with the next MsgSeqNum and encodes.
    func stamp(_ message: FIXMessage) -> [UInt8] {
        var message = message
        let seq = state.withLock { state -> Int in
            defer { state.nextSeqNum += 1 }
            return state.nextSeqNum
        }
        message.set(FIXTag.senderCompID, Self.compID)
        message.set(FIXTag.targetCompID, "BATON1")
        message.set(FIXTag.msgSeqNum, String(seq))
        message.set(FIXTag.sendingTime, FIXInitiator.systemTime().fixString)
        return message.encoded()
    }

    /// The MsgSeqNum the next stamped message gets; `skip` consumes it for a hand-made frame.
    func takeSeqNum() -> Int {
        state.withLock { state in
            defer { state.nextSeqNum += 1 }
            return state.nextSeqNum
        }
    }

    func send(_ message: FIXMessage) async throws {
        try await sendRaw(stamp(message))
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        guard let channel = state.withLock({ $0.connections.last }) else { throw TestFailure("no connection") }
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Closes every connection without a Logout (a network drop as the initiator sees it).
    func dropConnections() async {
        let channels = state.withLock { state -> [any Channel] in
            defer { state.connections = [] }
            return state.connections
        }
        for channel in channels { try? await channel.close() }
    }

    func stop() async {
        await dropConnections()
        let server = self.server.withLock { $0 }
        try? await server?.close()
    }

    fileprivate func record(_ message: FIXMessage) {
        state.withLock { $0.received.append(message) }
    }

    /// A frame with correct BodyLength and CheckSum around any body, for messages the codec
    /// would refuse to build.
    static func frame(body: String, corruptCheckSum: Bool = false) -> [UInt8] {
        var bytes = Array("8=FIX.4.4\u{01}9=\(body.utf8.count)\u{01}".utf8) + Array(body.utf8)
        var sum = FIXMessage.checksum(bytes[...])
        if corruptCheckSum { sum = (sum + 1) % 256 }
        let digits = String(sum)
        bytes += Array("10=\(String(repeating: "0", count: 3 - digits.count) + digits)\u{01}".utf8)
        return bytes
    }
}

private final class BrokerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let broker: ScriptedBroker
    private var decoder = FIXMessageDecoder()

    init(broker: ScriptedBroker) {
        self.broker = broker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        decoder.append(buffer.readableBytesView)
        while true {
            guard let message = try? decoder.next() else { return }
            broker.record(message)
            switch message.msgType {
            case "A":
                guard broker.state.withLock({ $0.answersLogon }) else { break }
                reply(FIXLogon(heartBtInt: Int(message[FIXTag.heartBtInt] ?? "") ?? 30).message, context: context)
            case "1":
                reply(FIXHeartbeat(testReqID: message[FIXTag.testReqID]).message, context: context)
            case "5":
                reply(FIXLogout().message, context: context)
                context.close(promise: nil)
            default:
                break
            }
        }
    }

    private func reply(_ message: FIXMessage, context: ChannelHandlerContext) {
        context.writeAndFlush(
            Self.wrapOutboundOut(context.channel.allocator.buffer(bytes: broker.stamp(message))), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
