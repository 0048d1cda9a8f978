import BatonFIX
import NIOCore
import Synchronization

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

/// Bytes handed to the connection loop and not processed yet: the bridge stops reading past
/// `high` and the loop resumes reading once it has worked the backlog down to `high / 2`.
final class FIXInboundBacklog: Sendable {
    private struct State {
        var bytes = 0
        var heldRead = false
        var heldReads = 0
    }
    private let state = Mutex(State())
    let high: Int
    private let channel = Mutex<(any Channel)?>(nil)

    init(high: Int) { self.high = max(1, high) }

    var heldReads: Int { state.withLock { $0.heldReads } }

    func attach(_ channel: any Channel) { self.channel.withLock { $0 = channel } }

    func received(_ count: Int) { state.withLock { $0.bytes += count } }

    /// Whether a read may go ahead now; if not, it is held until `processed` frees room.
    func mayRead() -> Bool {
        state.withLock { state in
            guard state.bytes > high else { return true }
            if !state.heldRead { state.heldReads += 1 }
            state.heldRead = true
            return false
        }
    }

    func processed(_ count: Int) {
        let resume = state.withLock { state -> Bool in
            state.bytes = max(0, state.bytes - count)
            guard state.heldRead, state.bytes <= high / 2 else { return false }
            state.heldRead = false
            return true
        }
        if resume, let channel = channel.withLock({ $0 }) {
            channel.eventLoop.execute { channel.read() }
        }
    }
}

/// Turns channel callbacks into events for the connection loop; does nothing else, so every
/// decision stays with the session. It holds back the socket's reads while the loop is behind
/// (`FIXInboundBacklog`), so a flood from the broker queues in TCP, not in memory.
final class FIXChannelBridge: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let events: AsyncStream<FIXConnectionEvent>.Continuation
    private let backlog: FIXInboundBacklog
    private var failure: String?

    init(events: AsyncStream<FIXConnectionEvent>.Continuation, backlog: FIXInboundBacklog) {
        self.events = events
        self.backlog = backlog
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        backlog.received(buffer.readableBytes)
        events.yield(.received(Array(buffer.readableBytesView)))
    }

    func read(context: ChannelHandlerContext) {
        if backlog.mayRead() { context.read() }
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
