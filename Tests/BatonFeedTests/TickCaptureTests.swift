import BatonMarketData
import Foundation
import Logging
import Testing

@testable import BatonFeed

/// The capture's layout, bounds and failure modes on a real directory, and one capture of a
/// live WebSocket feed read back.
@Suite struct TickCaptureTests {
    static let day: Int64 = 86_400_000_000_000
    /// 2026-12-05T00:00:00Z.
    static let dec5: Int64 = 1_796_428_800_000_000_000

    static func directory() -> String {
        let path = NSTemporaryDirectory() + "baton-capture-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func files(under directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? [])
            .filter { !$0.hasSuffix("/") && $0.split(separator: "/").count == 3 }.sorted()
    }

    static func kind(_ line: String) -> TickCaptureFormat.LineKind {
        Array(line.utf8).withUnsafeBufferPointer { TickCaptureFormat.kind(of: $0) }
    }

    @Test("a line files under its symbol; heartbeats are not recorded; a symbol that is not a plain name cannot choose a path")
    func lineKinds() {
        #expect(Self.kind("T,7,AAPL,187.25,100,187.2,187.3,1") == .record(symbol: "AAPL"))
        #expect(Self.kind("T,7,BRK.B,1,1,1,1,1") == .record(symbol: "BRK.B"))
        #expect(Self.kind("H,7,1") == .heartbeat)
        #expect(Self.kind("T,7,../../etc,1,1,1,1,1") == .record(symbol: "_invalid"))
        #expect(Self.kind("T,7,a/b,1,1,1,1,1") == .record(symbol: "_invalid"))
        #expect(Self.kind("T,7,.hidden,1,1,1,1,1") == .record(symbol: "_invalid"))
        #expect(Self.kind("T,7,,1,1,1,1,1") == .record(symbol: "_invalid"))
        #expect(Self.kind("T,7,\(String(repeating: "X", count: 33)),1") == .record(symbol: "_invalid"))
        #expect(Self.kind("Q,garbage") == .record(symbol: "_invalid"))
        #expect(Self.kind("T") == .record(symbol: "_invalid"))
    }

    @Test("dates and stamps are UTC and exact across a leap day and the epoch")
    func calendar() {
        #expect(TickCaptureFormat.utcDate(nanos: 0) == "1970-01-01")
        #expect(TickCaptureFormat.utcDate(nanos: -1) == "1969-12-31")
        #expect(TickCaptureFormat.utcDate(nanos: Self.dec5) == "2026-12-05")
        #expect(TickCaptureFormat.utcDate(nanos: Self.dec5 - 1) == "2026-12-04")
        #expect(TickCaptureFormat.utcDate(nanos: 951_782_400_000_000_000) == "2000-02-29")
        #expect(TickCaptureFormat.utcStamp(nanos: Self.dec5 + 3_723_000_000_000) == "20261205T010203")
    }

    @Test("retention deletes days past retain_days, then the oldest closed files over max bytes, never an open file")
    func retention() {
        let files: [TickCaptureFormat.StoredFile] = [
            .init(path: "date=2026-11-20/symbol=AAPL/primary-20261120T000000-1.ticks.gz", bytes: 10),
            .init(path: "date=2026-12-03/symbol=AAPL/primary-20261203T000000-2.ticks.gz", bytes: 40),
            .init(path: "date=2026-12-04/symbol=MSFT/primary-20261204T000000-3.ticks.gz", bytes: 40),
            .init(path: "date=2026-12-04/symbol=AAPL/primary-20261204T100000-4.ticks.gz", bytes: 40),
            .init(path: "date=2026-12-05/symbol=AAPL/primary-20261205T000000-5.ticks", bytes: 40),
        ]
        let now = Self.dec5 + 3_600_000_000_000
        let open: Set = ["date=2026-12-05/symbol=AAPL/primary-20261205T000000-5.ticks"]
        #expect(TickCaptureFormat.expired(files, nowNanos: now, retainDays: 7, maxBytes: 1_000, open: open) == [files[0].path])
        // 120 of 170 bytes must go: the two oldest closed files after the expired day.
        #expect(
            TickCaptureFormat.expired(files, nowNanos: now, retainDays: 7, maxBytes: 100, open: open)
                == [files[0].path, files[1].path, files[2].path])
        // Only the open file is left to keep: it stays even though it is over the limit alone.
        #expect(TickCaptureFormat.expired(files, nowNanos: now, retainDays: 0, maxBytes: 1, open: open).count == 4)
    }

    static func frame(_ sequences: ClosedRange<UInt64>, symbol: String, at: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        for sequence in sequences {
            // Prices and sizes that do not repeat, so compressed files are not trivially small.
            let noise = Int64((sequence &* 0x9E37_79B9_7F4A_7C15) >> 40)
            TickCodec.appendTrade(
                MarketTick(
                    sequence: sequence, symbol: symbol, price: 1_000_000 + noise % 100_000, size: noise % 9_973, bid: 1,
                    ask: 2, exchangeTimeNanos: at + noise),
                to: &bytes)
        }
        return bytes
    }

    static func offer(_ capture: TickCapture, _ bytes: [UInt8], _ source: FeedSource, at: Int64) {
        bytes.withUnsafeBufferPointer { capture.offer($0, from: source, receivedAtNanos: at) }
    }

    @Test("frames are partitioned by UTC day and symbol per source, compressed when the day ends or the writer stops, and read back in receive order")
    func partitionsAndReadsBack() async throws {
        let dir = Self.directory()
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir), logger: Logger(label: "test"))
        let lateDec4 = Self.dec5 - 1_000_000
        Self.offer(capture, Self.frame(1...3, symbol: "AAPL", at: lateDec4) + Self.frame(4...4, symbol: "MSFT", at: lateDec4), .primary, at: lateDec4)
        Self.offer(capture, Array("H,4,1\n".utf8), .primary, at: lateDec4 + 1)
        Self.offer(capture, Self.frame(1...3, symbol: "AAPL", at: lateDec4), .backup, at: lateDec4 + 2)
        await capture.drain(final: false)
        // Still the 4th: every file is open.
        #expect(Self.files(under: dir).allSatisfy { $0.hasSuffix(".ticks") })
        Self.offer(capture, Self.frame(5...6, symbol: "AAPL", at: Self.dec5) + Array("T,7,../../x,oops,1,1,1,1\n".utf8), .primary, at: Self.dec5 + 5)
        await capture.drain(final: false)
        let afterMidnight = Self.files(under: dir)
        #expect(afterMidnight.filter { $0.hasPrefix("date=2026-12-04/") }.allSatisfy { $0.hasSuffix(".ticks.gz") }, "\(afterMidnight)")
        await capture.drain(final: true)
        let files = Self.files(under: dir)
        #expect(files.allSatisfy { $0.hasSuffix(".ticks.gz") }, "\(files)")
        #expect(Set(files.map { String($0.split(separator: "/").prefix(2).joined(separator: "/")) }) == [
            "date=2026-12-04/symbol=AAPL", "date=2026-12-04/symbol=MSFT", "date=2026-12-05/symbol=AAPL", "date=2026-12-05/symbol=_invalid",
        ])
        #expect(files.filter { $0.contains("/backup-") }.count == 1)
        let status = capture.status()
        #expect(status.linesWritten == 10 && status.linesDropped == 0 && status.writeErrors == 0)

        let primary = try TickCaptureReader.read(directory: dir, source: "primary")
        #expect(primary.ticks.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(primary.ticks.map(\.symbol) == ["AAPL", "AAPL", "AAPL", "MSFT", "AAPL", "AAPL"])
        #expect(primary.ticks.prefix(4).allSatisfy { $0.receiveTimeNanos == lateDec4 })
        #expect(primary.ticks.last?.receiveTimeNanos == Self.dec5 + 5)
        #expect(primary.undecodable == ["bad price": 1], "the hostile line is kept and refused on reading, as live")
        let backup = try TickCaptureReader.read(directory: dir, source: "backup")
        #expect(backup.ticks.map(\.sequence) == [1, 2, 3] && backup.ticks.allSatisfy { $0.receiveTimeNanos == lateDec4 + 2 })
        let oneDay = try TickCaptureReader.read(directory: dir, source: "primary", dates: ["2026-12-05"], symbols: ["AAPL"])
        #expect(oneDay.ticks.map(\.sequence) == [5, 6])
    }

    @Test("a full buffer drops the newest frames and counts every line; the feed's call never waits for the disk")
    func fullBufferDropsAndCounts() async throws {
        let dir = Self.directory()
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir, bufferBytes: 1 << 16), logger: Logger(label: "test"))
        let frame = Self.frame(1...100, symbol: "AAPL", at: Self.dec5)  // ~4 KB, 100 lines
        var offered = 0
        while offered * frame.count < 3 << 16 {
            Self.offer(capture, frame, .primary, at: Self.dec5 + Int64(offered))
            offered += 1
        }
        let kept = (1 << 16) / frame.count
        #expect(capture.status().linesDropped == UInt64((offered - kept) * 100))
        await capture.drain(final: true)
        let status = capture.status()
        #expect(status.linesWritten == UInt64(kept * 100))
        #expect(status.linesWritten + status.linesDropped == UInt64(offered * 100))
        #expect(try TickCaptureReader.read(directory: dir).ticks.count == kept * 100)
    }

    @Test("files rotate at rotate_bytes and max bytes deletes the oldest closed ones")
    func rotatesBySizeAndKeepsUnderMaxBytes() async throws {
        let dir = Self.directory()
        let settings = TickCaptureSettings(directory: dir, rotateBytes: 1 << 16, maxBytes: 1 << 16)
        let capture = try TickCapture(settings: settings, logger: Logger(label: "test"))
        var sequence: UInt64 = 1
        for round in 0..<12 {
            // ~40 KB of lines a round: every second round crosses 64 KiB and rotates.
            Self.offer(capture, Self.frame(sequence...(sequence + 999), symbol: "AAPL", at: Self.dec5), .primary, at: Self.dec5 + Int64(round))
            sequence += 1000
            await capture.drain(final: false)
        }
        await capture.drain(final: true)
        let status = capture.status()
        #expect(status.filesRotated >= 6, "\(status)")
        #expect(status.filesDeleted > 0, "\(status)")
        let bytes = Self.files(under: dir).reduce(0) { total, path in
            total + ((try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(path)")[.size] as? Int) ?? 0)
        }
        #expect(bytes <= 1 << 16)
        // What is left is the newest: the last ticks written are all there.
        let ticks = try TickCaptureReader.read(directory: dir).ticks
        #expect(ticks.last?.sequence == sequence - 1)
        #expect(!ticks.isEmpty && ticks.map(\.sequence) == Array(ticks.first!.sequence...(sequence - 1)))
    }

    @Test("a write that fails costs the capture its lines, counted with the error; the writer keeps going")
    func writeFailureIsCountedNotFatal() async throws {
        let dir = Self.directory()
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir), logger: Logger(label: "test"))
        // A file where the partition directory would go: the writer cannot open anything there.
        try FileManager.default.createDirectory(atPath: "\(dir)/date=2026-12-05", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(dir)/date=2026-12-05/symbol=AAPL", contents: Data("in the way".utf8))
        Self.offer(capture, Self.frame(1...5, symbol: "AAPL", at: Self.dec5), .primary, at: Self.dec5)
        Self.offer(capture, Self.frame(6...7, symbol: "MSFT", at: Self.dec5), .primary, at: Self.dec5)
        await capture.drain(final: true)
        let status = capture.status()
        #expect(status.linesDropped == 5 && status.linesWritten == 2)
        #expect(status.writeErrors >= 1 && status.lastError?.contains("symbol=AAPL") == true, "\(status)")
        #expect(try TickCaptureReader.read(directory: dir).ticks.map(\.sequence) == [6, 7])
    }

    @Test("files a crashed run left open are compressed when the next one starts")
    func leftoversAreCompressed() async throws {
        let dir = Self.directory()
        let partition = "\(dir)/date=2026-12-05/symbol=AAPL"
        try FileManager.default.createDirectory(atPath: partition, withIntermediateDirectories: true)
        var record: [UInt8] = []
        Array("T,1,AAPL,100,1,1,1,1".utf8).withUnsafeBufferPointer {
            TickCaptureFormat.appendRecord($0, receivedAtNanos: Self.dec5, to: &record)
        }
        FileManager.default.createFile(atPath: "\(partition)/primary-20261205T000000-1.ticks", contents: Data(record))
        FileManager.default.createFile(atPath: "\(partition)/primary-20261205T000000-1.ticks.gz.partial", contents: Data("half".utf8))
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir), logger: Logger(label: "test"))
        await capture.drain(final: false, recoverLeftovers: true)
        #expect(Self.files(under: dir) == ["date=2026-12-05/symbol=AAPL/primary-20261205T000000-1.ticks.gz"])
        #expect(try TickCaptureReader.read(directory: dir).ticks.map(\.receiveTimeNanos) == [Self.dec5])
    }

    @Test("a bad capture directory or setting is refused with its key")
    func badSettingsAreRefused() throws {
        let file = Self.directory() + "/not-a-dir"
        FileManager.default.createFile(atPath: file, contents: Data())
        #expect(throws: FeedConfigurationError.self) { try TickCapture(settings: .init(directory: file + "/x"), logger: Logger(label: "t")) }
        #expect(throws: FeedConfigurationError(setting: "feed.capture.buffer_kb", value: "0", reason: "must be in 64…1048576 KiB")) {
            try TickCaptureSettings(directory: "/tmp/x", bufferBytes: 10).validate()
        }
    }

    @Test("a live WebSocket feed's frames are captured as received and read back as the client delivered them")
    func capturesALiveFeed() async throws {
        let dir = Self.directory()
        let capture = try TickCapture(settings: TickCaptureSettings(directory: dir, flushInterval: .milliseconds(20)), logger: Logger(label: "test"))
        let primary = TestFeedSource(mode: .idle)
        let port = try await primary.start()
        primary.enqueue(Frames.trades(1...10))
        primary.enqueue(Frames.trades(11...12) + Array("T,13,AAPL,oops\n".utf8) + Frames.trades(13...14))
        primary.enqueue(Frames.trades(10...12))  // a resent frame: the client drops it, the capture keeps it
        primary.enqueue(Frames.trades(15...20, symbol: "MSFT"))
        let configuration = try FeedConfiguration(primaryURL: "ws://127.0.0.1:\(port)/feed")
        let delivered = try await withFeedClient(configuration, capture: capture) { _, log in
            try await waitUntil("20 ticks arrived") { log.ticks(from: .primary).count >= 20 }
            await capture.drain(final: true)
            return log.ticks(from: .primary)
        }
        await primary.stop()
        let read = try TickCaptureReader.read(directory: dir)
        #expect(read.undecodable.values.reduce(0, +) == 1)
        var seen: UInt64 = 0
        let deduplicated = read.ticks.filter { tick in
            defer { seen = max(seen, tick.sequence) }
            return tick.sequence > seen
        }
        #expect(deduplicated == delivered, "the same ticks with the same receive times")
        #expect(read.ticks.count == 23)
        #expect(capture.status().linesWritten == 24, "every trade line and the malformed one; heartbeats not")
    }
}
