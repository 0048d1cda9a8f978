public import NIOCore
import Synchronization

/// Holds every connection a listener has accepted and wrapped until its accept loop takes it.
///
/// Why this exists: NIO hands accepted children to the accept loop through the listener's async
/// stream. A child accepted while the listener closes is wrapped (its `NIOAsyncWriter` created)
/// but never delivered, and a `NIOAsyncChannel` released without `executeThenClose` traps the
/// whole process ("Deinited NIOAsyncWriter without calling finish()", swift-nio#2637). For us that
/// was a replica — or the venue — dying because a peer dialled during shutdown. So the wrapper is
/// held here from the moment it exists; the accept loop `claim`s each one it serves, and once the
/// loop has ended `closeUnclaimed()` refuses new children and closes the ones never claimed.
public final class AcceptedConnections<Inbound: Sendable, Outbound: Sendable>: Sendable {
    private struct State {
        var closed = false
        var pending: [ObjectIdentifier: NIOAsyncChannel<Inbound, Outbound>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Connections wrapped but not yet claimed or closed.
    public var unclaimedCount: Int { state.withLock { $0.pending.count } }

    /// Wraps a freshly accepted child. Call it from the child channel initializer, on the child's
    /// event loop, after adding the handlers. Once `closeUnclaimed()` ran it closes the child and
    /// throws: the accept loop no longer reads, and NIO does not close a child whose async
    /// initializer failed.
    public func wrap(
        _ channel: any Channel,
        configuration: NIOAsyncChannel<Inbound, Outbound>.Configuration = .init()
    ) throws -> NIOAsyncChannel<Inbound, Outbound> {
        try state.withLock { state throws -> NIOAsyncChannel<Inbound, Outbound> in
            guard !state.closed else {
                channel.close(promise: nil)
                throw ChannelError.ioOnClosedChannel
            }
            let wrapped = try NIOAsyncChannel<Inbound, Outbound>(
                wrappingChannelSynchronously: channel,
                configuration: configuration
            )
            state.pending[ObjectIdentifier(channel)] = wrapped
            return wrapped
        }
    }

    /// The accept loop takes `connection` over and must close it with `executeThenClose`. False
    /// when `closeUnclaimed()` already closed it: then the caller must not touch it.
    public func claim(_ connection: NIOAsyncChannel<Inbound, Outbound>) -> Bool {
        state.withLock { $0.pending.removeValue(forKey: ObjectIdentifier(connection.channel)) != nil }
    }

    /// Refuses every later child and closes each wrapped one the accept loop never claimed.
    /// Call it after the listener's `executeThenClose` returned. Returns how many it closed.
    @discardableResult
    public func closeUnclaimed() async -> Int {
        let unclaimed = state.withLock { state in
            state.closed = true
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for connection in unclaimed {
            try? await connection.executeThenClose { _, _ in }
        }
        return unclaimed.count
    }
}
