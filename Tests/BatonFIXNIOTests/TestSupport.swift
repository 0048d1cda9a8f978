import BatonFIX
import BatonFIXNIO
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory under the system's temporary directory; removed by `remove()`.
struct TemporaryDirectory {
    let url: URL
    var path: String { url.path }

    init(_ label: String) throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("baton-fixnio-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["BATON_TEST_LOG"] == "1" ? .trace : .error
    return logger
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    guard port > 0 else { throw TestFailure("could not find a free loopback port") }
    return port
}

/// Collects an initiator's application messages so tests can wait for one.
actor MessageInbox {
    private(set) var messages: [FIXMessage] = []

    func append(_ message: FIXMessage) { messages.append(message) }

    /// Starts collecting; the task ends when the stream finishes.
    nonisolated func collect(_ stream: AsyncStream<FIXMessage>) -> Task<Void, Never> {
        Task {
            for await message in stream { await self.append(message) }
        }
    }

    func first(
        _ what: String, timeout: Duration = .seconds(10), where predicate: @Sendable (FIXMessage) -> Bool
    ) async throws -> FIXMessage {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if let message = messages.first(where: predicate) { return message }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("no \(what) within \(timeout); received: \(messages.map(\.description))")
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
    _ what: String, timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out after \(timeout) waiting for \(what)")
}

func limitOrder(_ clOrdID: String, price: String = "187.25", quantity: Int64 = 100) -> FIXMessage {
    FIXNewOrderSingle(
        clOrdID: clOrdID, symbol: "AAPL", side: .buy, transactTime: FIXInitiator.systemTime(),
        orderQty: FIXDecimal(units: quantity), ordType: .limit, price: FIXDecimal(price), timeInForce: .day
    ).message
}

func initiatorSettings(sender: String = "BATON1", target: String = "EXECUTOR", heartBtInt: Int = 1)
    -> FIXSessionSettings
{
    FIXSessionSettings(
        role: .initiator, senderCompID: sender, targetCompID: target, heartBtInt: heartBtInt, logonTimeout: 5,
        logoutTimeout: 2)
}
