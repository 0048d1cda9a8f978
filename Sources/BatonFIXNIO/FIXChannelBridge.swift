import BatonFIX
import NIOCore

/// What one connection's loop reacts to, in the order it happened.
enum FIXConnectionEvent: Sendable {
    case received([UInt8])
    case closed(reason: String)
    case tick
    /// The condition, if any, is checked on the connection's loop right before the message is
    /// stamped and written; it returns why not to send, or nil.
    case send(FIXMessage, (@Sendable () -> String?)?, CheckedContinuation<Int, any Error>)
    case logout
    /// The permit was withdrawn: close at once, without a Logout.
    case revoked(reason: String)
}

/// Turns channel callbacks into events for the connection loop; does nothing else, so every
/// decision stays with the session.
final class FIXChannelBridge: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let events: AsyncStream<FIXConnectionEvent>.Continuation
    private var failure: String?

    init(events: AsyncStream<FIXConnectionEvent>.Continuation) {
        self.events = events
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        events.yield(.received(Array(buffer.readableBytesView)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = failure ?? "\(error)"
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.yield(.closed(reason: failure ?? "connection closed"))
        context.fireChannelInactive()
    }
}
