import BatonListener
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The listener race behind a CI crash: connections NIO accepted and wrapped while the listener
/// closed were never delivered to the accept loop, and releasing their `NIOAsyncChannel`
/// unclosed trapped the whole process. Without `AcceptedConnections` this test crashes.
@Suite struct AcceptedConnectionsTests {
    @Test func connectionsAcceptedButNeverServedAreClosedNotDropped() async throws {
        let accepted = AcceptedConnections<ByteBuffer, ByteBuffer>()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try accepted.wrap(channel) }
            }
        let port = try #require(server.channel.localAddress?.port)
        // Below the listener stream's high watermark (10), so NIO accepts them all unread.
        let burst = 6
        var clients: [any Channel] = []
        for _ in 0..<burst {
            clients.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get())
        }
        #expect(await eventually { accepted.unclaimedCount == burst }, "every dial is accepted and wrapped")

        // The accept loop ends without taking any of them, as it does when shutdown races a burst.
        try await server.executeThenClose { _ in }
        #expect(await accepted.closeUnclaimed() == burst)
        #expect(accepted.unclaimedCount == 0)

        // Each dialler sees its connection closed by the listener: none is left open or leaked.
        for client in clients {
            #expect(await closes(client), "an accepted connection the loop never served is left open")
        }
    }

    /// The exact window of the crash: the child's event loop is busy, so its initializer runs
    /// only after the listener closed; the wrapper can never be delivered, and without the
    /// registry NIO traps when the child then becomes active. The listener must refuse it.
    @Test func aConnectionWrappedAfterTheListenerClosedIsRefused() async throws {
        let listenerLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let childLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let accepted = AcceptedConnections<ByteBuffer, ByteBuffer>()
        let server = try await ServerBootstrap(group: listenerLoop, childGroup: childLoop)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try accepted.wrap(channel) }
            }
        let port = try #require(server.channel.localAddress?.port)
        // Holds every child back: its initializer, registration and activation queue behind this.
        childLoop.next().execute { usleep(600_000) }
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await Task.sleep(for: .milliseconds(150))  // the listener accepts it meanwhile
        try await server.executeThenClose { _ in }
        #expect(await accepted.closeUnclaimed() == 0)
        #expect(await closes(client), "a connection wrapped after the listener closed is left open")
        #expect(accepted.unclaimedCount == 0)
        try await listenerLoop.shutdownGracefully()
        try await childLoop.shutdownGracefully()
    }

    @Test func aConnectionClaimedByTheAcceptLoopIsNotClosedByTheListener() async throws {
        let accepted = AcceptedConnections<ByteBuffer, ByteBuffer>()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try accepted.wrap(channel) }
            }
        let port = try #require(server.channel.localAddress?.port)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        let echoed = try await server.executeThenClose { connections in
            var iterator = connections.makeAsyncIterator()
            let connection = try #require(try await iterator.next())
            #expect(accepted.claim(connection))
            #expect(!accepted.claim(connection), "a connection is claimed once")
            try await client.writeAndFlush(ByteBuffer(string: "ping"))
            return try await connection.executeThenClose { inbound, _ in
                var bytes = inbound.makeAsyncIterator()
                return try await bytes.next().map { String(buffer: $0) }
            }
        }
        #expect(echoed == "ping")
        #expect(await accepted.closeUnclaimed() == 0)
        #expect(await closes(client))
    }

    /// Whether `client` is closed within five seconds (false rather than a hung test).
    private func closes(_ client: any Channel) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await client.closeFuture.get()) != nil }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            client.close(promise: nil)
            return first
        }
    }
}
