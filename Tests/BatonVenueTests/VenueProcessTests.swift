import AsyncHTTPClient
import BatonFIX
import BatonMarketData
import BatonVenue
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import Testing

struct VenueTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real `baton-venue` process on loopback with ports picked by the kernel.
final class VenueProcess: Sendable {
    let process: Process
    let fixPort: Int
    let httpPort: Int

    static func executable() throws -> String {
        let name = "baton-venue"
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name),
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                ".build/debug/\(name)"),
        ]
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        throw VenueTestError("cannot find \(name) next to the tests (looked in \(candidates.map(\.path)))")
    }

    init(arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executable())
        process.arguments = ["--fix-port", "0", "--http-port", "0", "--log-level", "warning"] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        self.process = process
        // The one line the venue prints once it listens carries the real ports. Read on a
        // thread of its own: a blocking read must not hold a concurrency thread, and killing the
        // process ends it if the line never comes.
        let firstLine = LockedFrames()
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            var bytes: [UInt8] = []
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                bytes.append(contentsOf: chunk)
                if bytes.contains(UInt8(ascii: "\n")) { break }
            }
            firstLine.append(String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self))
        }
        let deadline = Date().addingTimeInterval(30)
        while firstLine.all.isEmpty && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if firstLine.all.isEmpty { kill(process.processIdentifier, SIGKILL) }
        let line = firstLine.all.first ?? ""
        func port(_ key: String) -> Int {
            guard let range = line.range(of: "\(key)=127.0.0.1:") else { return 0 }
            return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        fixPort = port("fix")
        httpPort = port("http")
        guard line.hasPrefix("baton-venue listening"), httpPort > 0 else {
            process.terminate()
            throw VenueTestError("unexpected first line from baton-venue: \"\(line)\"")
        }
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

func withTimeout<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw VenueTestError("timed out after \(seconds) s")
        }
        guard let result = try await group.next() else { throw VenueTestError("no result") }
        group.cancelAll()
        return result
    }
}

func fixNow() -> FIXTimestamp {
    FIXTimestamp(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
}

/// A FIX initiator over a real TCP connection, driven by BatonFIX's session state machine.
struct FIXTestInitiator {
    var session: FIXSession
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var delivered: [FIXMessage] = []

    mutating func carryOut(_ directives: [FIXSessionDirective]) async throws {
        for directive in directives {
            switch directive {
            case .send(_, let bytes): try await outbound.write(ByteBuffer(bytes: bytes))
            case .deliver(let message): delivered.append(message)
            case .disconnect(let reason): throw VenueTestError("initiator disconnected: \(reason)")
            default: break
            }
        }
    }

    mutating func logon() async throws {
        try await carryOut(session.onConnected(now: fixNow()))
        while session.status != .active { try await readOnce() }
    }

    mutating func send(_ message: FIXMessage) async throws {
        try await carryOut(try session.send(message, now: fixNow()))
    }

    mutating func readOnce() async throws {
        guard let buffer = try await inbound.next() else { throw VenueTestError("venue closed the connection") }
        try await carryOut(session.onReceived(bytes: buffer.readableBytesView, now: fixNow()))
    }

    /// Reads until `count` application messages have been delivered in all.
    mutating func read(until count: Int) async throws -> [FIXMessage] {
        while delivered.count < count { try await readOnce() }
        return delivered
    }
}

func withFIXInitiator<T: Sendable>(
    port: Int, compID: String, _ body: @escaping @Sendable (inout FIXTestInitiator) async throws -> T
) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        var initiator = FIXTestInitiator(
            session: FIXSession(
                settings: FIXSessionSettings(
                    role: .initiator, senderCompID: compID, targetCompID: "VENUE", heartBtInt: 5)),
            inbound: inbound.makeAsyncIterator(), outbound: outbound)
        try await initiator.logon()
        return try await body(&initiator)
    }
}

func httpGet(_ client: HTTPClient, port: Int, _ path: String) async throws -> (status: UInt, body: Data) {
    let response = try await client.execute(
        HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 16 << 20)
    return (response.status.code, Data(buffer: body))
}

func httpPost(_ client: HTTPClient, port: Int, _ path: String, json: String) async throws -> UInt {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(string: json))
    let response = try await client.execute(request, timeout: .seconds(10))
    _ = try await response.body.collect(upTo: 1 << 20)
    return response.status.code
}

/// Trades and heartbeats from the first `frames` text frames of `/feed`.
func readFeed(port: Int, frames wanted: Int) async throws -> (ticks: [MarketTick], heartbeats: Int, frames: Int) {
    let collected = try await withTimeout(seconds: 30) {
        let lines = LockedFrames()
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)/feed", logger: Logger(label: "feed-test")
        ) { inbound, _, _ in
            var count = 0
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                lines.append(text)
                count += 1
                if count >= wanted { break }
            }
        }
        return lines.all
    }
    var ticks: [MarketTick] = []
    var heartbeats = 0
    var errors: [TickDecodingError] = []
    for frame in collected {
        TickCodec.decodeFrame(
            Array(frame.utf8), receiveTimeNanos: 1, onTick: { ticks.append($0) },
            onHeartbeat: { _, _ in heartbeats += 1 },
            onError: { errors.append($0) })
    }
    guard errors.isEmpty else { throw VenueTestError("feed lines did not decode: \(errors)") }
    return (ticks, heartbeats, collected.count)
}

final class LockedFrames: @unchecked Sendable {
    // Only the one WebSocket handler task appends; `all` is read after it has finished.
    private let lock = NSLock()
    private var frames: [String] = []
    func append(_ frame: String) { lock.withLock { frames.append(frame) } }
    var all: [String] { lock.withLock { frames } }
}

@Suite(.serialized) struct VenueProcessTests {
    @Test func theVenueTradesOverFIXRecordsDuplicatesAndStreamsTheFeed() async throws {
        let venue = try await VenueProcess(arguments: [
            "--seed", "42", "--symbols", "AAPL,MSFT", "--start-prices", "AAPL=187.25,MSFT=411.10",
            "--tick-rate", "2000", "--sessions", "BATON1,BATON2",
        ])
        defer { venue.stop() }
        #expect(venue.fixPort > 0)

        let messages = try await withTimeout(seconds: 30) { [port = venue.fixPort] in
            try await withFIXInitiator(port: port, compID: "BATON1") { initiator in
                let order = FIXNewOrderSingle(
                    clOrdID: "BATON-1-7", symbol: "AAPL", side: .buy, transactTime: fixNow(), orderQty: 100,
                    ordType: .market, timeInForce: .day)
                try await initiator.send(order.message)
                _ = try await initiator.read(until: 2)
                var again = order
                again.possResend = true
                try await initiator.send(again.message)
                _ = try await initiator.read(until: 3)
                try await initiator.send(
                    FIXOrderStatusRequest(clOrdID: "BATON-1-8", symbol: "AAPL", side: .buy).message)
                return try await initiator.read(until: 4)
            }
        }
        let reports = try messages.map { try FIXExecutionReport($0) }
        #expect(reports.map(\.execType) == [.new, .trade, .rejected, .orderStatus])
        #expect(reports[1].ordStatus == .filled)
        #expect(reports[1].cumQty.description == "100")
        #expect(reports[2].ordRejReason == 6)
        #expect(reports[3].ordStatus == .rejected)
        #expect(reports[3].ordRejReason == 5)
        #expect(Set(reports.map(\.execID)).count == 4)
        let fillPrice = try #require(reports[1].lastPx?.doubleValue)
        #expect(abs(fillPrice - 187.25) < 5)

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let orders = try JSONDecoder().decode(
                [OrderView].self, from: try await httpGet(client, port: venue.httpPort, "/orders").body)
            #expect(orders.count == 1)
            #expect(orders.first?.clOrdID == "BATON-1-7")
            #expect(orders.first?.session == "BATON1")
            #expect(orders.first?.status == "filled")
            #expect(orders.first?.cumQty == "100")
            #expect(orders.first?.possResend == false)

            let duplicates = try JSONDecoder().decode(
                [DuplicateView].self, from: try await httpGet(client, port: venue.httpPort, "/duplicates").body)
            #expect(duplicates.map(\.clOrdID) == ["BATON-1-7"])
            #expect(duplicates.first?.possResend == true)

            let stats = try JSONDecoder().decode(
                VenueStatistics.self, from: try await httpGet(client, port: venue.httpPort, "/stats").body)
            #expect(stats.orders == 1)
            #expect(stats.duplicateAttempts == 1)
            #expect(stats.fills == 1)
            #expect(stats.filledQuantity == "100")
            #expect(stats.positions["AAPL"] == "100")
            #expect(stats.sessions["BATON1"]?.logons == 1)
            #expect(stats.sessions["BATON1"]?.orders == 2)
            #expect(stats.sessions["BATON1"]?.statusRequests == 1)
            #expect(stats.feed.lastSequence > 0)

            #expect(try await httpGet(client, port: venue.httpPort, "/healthz").status == 200)
            #expect(try await httpPost(client, port: venue.httpPort, "/admin/feed/pause", json: "{\"sec\": 1}") == 400)

            let feed = try await readFeed(port: venue.httpPort, frames: 5)
            #expect(feed.frames == 5)
            #expect(feed.ticks.count >= 5)
            #expect(Set(feed.ticks.map(\.symbol)).isSubset(of: ["AAPL", "MSFT"]))
            let sequences = feed.ticks.map(\.sequence)
            #expect(sequences == Array(sequences[0]...sequences[0] + UInt64(sequences.count - 1)))

            // An outage: no ticks and no heartbeats while paused.
            #expect(
                try await httpPost(client, port: venue.httpPort, "/admin/feed/pause", json: "{\"seconds\": 30}") == 200)
            let silent = try await withTimeout(seconds: 5) { [port = venue.httpPort] in
                try await silentFeed(port: port, for: .milliseconds(600))
            }
            #expect(silent)
            #expect(try await httpPost(client, port: venue.httpPort, "/admin/feed/resume", json: "") == 200)
            let resumed = try await readFeed(port: venue.httpPort, frames: 2)
            #expect(resumed.ticks.count > 0)
            #expect((resumed.ticks.first?.sequence ?? 0) > (sequences.last ?? 0) + 1_000)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()

        // SIGTERM stops it cleanly.
        kill(venue.process.processIdentifier, SIGTERM)
        try await withTimeout(seconds: 15) { [process = venue.process] in
            while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(venue.process.terminationStatus == 0)
    }

    @Test func aFeedOnlyBackupWithTheSameSeedStreamsTheSameMarket() async throws {
        let arguments = ["--seed", "7", "--symbols", "AAPL,MSFT,EURUSD", "--tick-rate", "1000"]
        let primary = try await VenueProcess(arguments: arguments)
        defer { primary.stop() }
        let backup = try await VenueProcess(arguments: arguments + ["--feed-only"])
        defer { backup.stop() }
        #expect(backup.fixPort == 0)  // no FIX listener, so no fix= in its line

        async let a = readFeed(port: primary.httpPort, frames: 300)
        async let b = readFeed(port: backup.httpPort, frames: 300)
        let (fromPrimary, fromBackup) = try await (a, b)
        func key(_ t: MarketTick) -> String { "\(t.sequence),\(t.symbol),\(t.price),\(t.size),\(t.bid),\(t.ask)" }
        let primaryBySeq = Dictionary(fromPrimary.ticks.map { ($0.sequence, key($0)) }, uniquingKeysWith: { a, _ in a })
        let common = fromBackup.ticks.filter { primaryBySeq[$0.sequence] != nil }
        #expect(common.count > 20)
        for tick in common { #expect(primaryBySeq[tick.sequence] == key(tick)) }
    }

    @Test func sigtermLogsSessionsOutClosesTheFeedAndExitsCleanly() async throws {
        let venue = try await VenueProcess(arguments: ["--tick-rate", "500"])
        defer { venue.stop() }
        let frames = LockedFrames()
        let subscriber = Task { [port = venue.httpPort] in
            try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/feed", logger: Logger(label: "feed-test")) {
                inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    if case .text(let text) = message { frames.append(text) }
                }
            }
        }
        let reason = try await withTimeout(seconds: 20) {
            [port = venue.fixPort, pid = venue.process.processIdentifier] in
            try await withFIXInitiator(port: port, compID: "BATON3") { initiator in
                while frames.all.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                kill(pid, SIGTERM)
                do {
                    while true { try await initiator.readOnce() }
                } catch {
                    return "\(error)"
                }
            }
        }
        #expect(reason.contains("venue shutting down"))
        try await withTimeout(seconds: 15) { [process = venue.process] in
            while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(venue.process.terminationStatus == 0)
        // The subscriber's connection ended with the venue rather than hanging.
        _ = try await withTimeout(seconds: 5) { await subscriber.result }
    }

    @Test func badArgumentsAreRefusedNamingTheFlag() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try VenueProcess.executable())
        process.arguments = ["--start-prices", "GOOG=10", "--symbols", "AAPL"]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = Pipe()
        try process.run()
        let output = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("--start-prices"))
        #expect(output.contains("GOOG"))
    }
}

/// True when `/feed` sends nothing at all for `duration`.
func silentFeed(port: Int, for duration: Duration) async throws -> Bool {
    let frames = LockedFrames()
    try await WebSocketClient.connect(
        url: "ws://127.0.0.1:\(port)/feed", logger: Logger(label: "feed-test")
    ) { inbound, outbound, _ in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    if case .text(let text) = message { frames.append(text) }
                }
            }
            // Closing our side ends the inbound stream once the venue answers the close.
            try await Task.sleep(for: duration)
            try await outbound.close(.normalClosure, reason: nil)
            try await group.waitForAll()
        }
    }
    return frames.all.isEmpty
}
