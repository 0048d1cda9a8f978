import ArgumentParser
import BatonFeed
import BatonMarketData
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench feed-capture`: what recording the feed costs the feed. The same frames go
/// through the feed's ingest path (FeedMonitor) with and without `TickCapture.offer` in front of
/// it, alternating in one run, while the capture's writer drains on its schedule as in batond.
struct FeedCapture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feed-capture",
        abstract: "Feed ingest with and without tick capture (ratio in one run), the feed's offer call, and the writer's throughput.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Ticks per run.")
    var ticks: Int = 1_000_000
    @Option(help: "Ticks per WebSocket frame.")
    var ticksPerFrame: Int = 50
    @Option(help: "Runs of each (alternating; the median is reported).")
    var runs: Int = 5
    @Option(help: "The capture's buffer (feed.capture.buffer_kb).")
    var bufferKB: Int = 32_768
    @Option(help: "Rotate at this size (feed.capture.rotate_mb), so the runs include gzip on rotation.")
    var rotateMB: Int = 16
    @Option(help: "Feed rate in ticks/s (0: as fast as the core goes, which outruns any disk: the buffer fills and drops).")
    var rate: Int = 0

    struct Run: Codable {
        var ticksPerSecondWithout: Double
        var ticksPerSecondWith: Double
        var offerNanosP50: Double
        var offerNanosP99: Double
        var offerNanosMax: Double
        var linesWritten: UInt64
        var linesDropped: UInt64
        var bytesWritten: UInt64
        var writerBusySeconds: Double
        var compressedBytes: Int64
    }

    func validate() throws {
        guard ticks >= ticksPerFrame, ticksPerFrame > 0, runs > 0, runs <= 50 else {
            throw ValidationError("--ticks must be at least --ticks-per-frame (> 0); --runs from 1 to 50")
        }
        guard (0...100_000_000).contains(rate), rate == 0 || ticks / rate <= 600 else {
            throw ValidationError("--rate \(rate): from 0 to 100000000 ticks/s, and at most 600 s of ticks per run")
        }
    }

    func run() async throws {
        say("machine: \(machineDescription())")
        let symbols = ["AAPL", "MSFT", "NVDA", "AMZN"]
        let frames = FeedIngestBenchmark.makeFrames(frames: ticks / ticksPerFrame, ticksPerFrame: ticksPerFrame, symbols: symbols)
        let total = frames.count * ticksPerFrame
        let frameBytes = frames.reduce(0) { $0 + $1.count }
        say("\(total) ticks in \(frames.count) frames (\(format(Double(frameBytes) / 1_048_576, 1)) MiB) \(rate == 0 ? "unpaced" : "at \(rate) ticks/s"); buffer \(bufferKB) KiB, rotation at \(rotateMB) MiB")
        var results: [Run] = []
        for index in 0..<runs {
            let without = ingest(frames, capture: nil).seconds
            let directory = "\(common.workDir)/baton-bench-capture-\(getpid())-\(index)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let capture = try TickCapture(
                settings: TickCaptureSettings(
                    directory: directory, rotateBytes: Int64(rotateMB) << 20, bufferBytes: bufferKB << 10, flushInterval: .milliseconds(200)),
                logger: Logger(label: "baton.bench.capture"))
            // The writer as batond runs it: a drain every flush interval, timed.
            let busy = Mutex<Duration>(.zero)
            let stop = Atomic<Bool>(false)
            let writer = Task {
                while !stop.load(ordering: .relaxed) {
                    try? await Task.sleep(for: capture.settings.flushInterval)
                    let began = ContinuousClock.now
                    await capture.drain(final: false)
                    busy.withLock { $0 += ContinuousClock.now - began }
                }
            }
            let measured = ingest(frames, capture: capture)
            stop.store(true, ordering: .relaxed)
            await writer.value
            let began = ContinuousClock.now
            await capture.drain(final: true)
            let writerBusy = busy.withLock { $0 } + (ContinuousClock.now - began)
            let status = capture.status()
            let offers = measured.offers.sorted()
            results.append(
                Run(
                    ticksPerSecondWithout: Double(total) / without, ticksPerSecondWith: Double(total) / measured.seconds,
                    offerNanosP50: offers[offers.count / 2], offerNanosP99: offers[offers.count * 99 / 100], offerNanosMax: offers.last!,
                    linesWritten: status.linesWritten, linesDropped: status.linesDropped, bytesWritten: status.bytesWritten,
                    writerBusySeconds: writerBusy.seconds, compressedBytes: Self.bytes(under: directory, suffix: ".gz")))
            let r = results.last!
            say(
                "run \(index + 1): without \(format(r.ticksPerSecondWithout, 0)) ticks/s, with capture \(format(r.ticksPerSecondWith, 0)) ticks/s (\(format(r.ticksPerSecondWith / r.ticksPerSecondWithout, 3))×); offer p50 \(format(r.offerNanosP50, 0)) ns p99 \(format(r.offerNanosP99, 0)) ns max \(format(r.offerNanosMax / 1000, 1)) µs; written \(r.linesWritten) lines, dropped \(r.linesDropped); writer busy \(format(r.writerBusySeconds, 3)) s")
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let ratio = median(results.map { $0.ticksPerSecondWith / $0.ticksPerSecondWithout })
        let writerRate = median(results.map { Double($0.bytesWritten) / max($0.writerBusySeconds, 1e-9) / 1_048_576 })
        let lineRate = median(results.map { Double($0.linesWritten) / max($0.writerBusySeconds, 1e-9) })
        let compression = median(results.map { Double($0.compressedBytes) / Double(max($0.bytesWritten, 1)) })
        say("feed ingest with capture / without: median \(format(ratio, 3))× (\(format(median(results.map(\.ticksPerSecondWith)), 0)) vs \(format(median(results.map(\.ticksPerSecondWithout)), 0)) ticks/s)")
        say("offer (the feed's call): median p50 \(format(median(results.map(\.offerNanosP50)), 0)) ns, p99 \(format(median(results.map(\.offerNanosP99)), 0)) ns, worst max \(format(results.map(\.offerNanosMax).max()! / 1000, 1)) µs per \(ticksPerFrame)-tick frame")
        say("writer: median \(format(writerRate, 1)) MiB/s, \(format(lineRate, 0)) lines/s while busy (write + gzip on rotation); gzip to \(format(compression * 100, 1))% of the raw size; dropped lines in all runs: \(results.reduce(UInt64(0)) { $0 + $1.linesDropped })")
        try writeJSON(results, to: common.json)
    }

    /// The ingest loop as MarketFeedClient runs it per frame: the capture's copy first, then the
    /// monitor. Returns the loop's time and each offer call's, in ns.
    func ingest(_ frames: [[UInt8]], capture: TickCapture?) -> (seconds: Double, offers: [Double]) {
        var monitor = FeedMonitor(settings: FeedMonitorSettings(symbols: []), startedAt: 0)
        _ = monitor.sourceConnected(.primary, at: 0)
        var offers: [Double] = []
        offers.reserveCapacity(capture == nil ? 0 : frames.count)
        var forwarded = 0
        var now: Int64 = 0
        // Receive times of today: the capture's retention deletes days older than retain_days.
        let today = Int64(Date().timeIntervalSince1970 * 1e9)
        let clock = ContinuousClock()
        let start = clock.now
        let framePeriod: Duration? = rate == 0 ? nil : .nanoseconds(Int64(ticksPerFrame) * 1_000_000_000 / Int64(rate))
        var due = start
        for frame in frames {
            if let framePeriod {
                // Paced as a feed arrives: spin to the frame's time (sleeping would add the
                // scheduler's wake-up to every frame and pace far below the rate).
                due += framePeriod
                while clock.now < due {}
            }
            now += 1_000
            // Both loops read the clock around the offer, so the ratio is the offer's cost alone.
            let before = clock.now
            if let capture {
                frame.withUnsafeBufferPointer { capture.offer($0, from: .primary, receivedAtNanos: today + now) }
            }
            let took = (clock.now - before).components
            if capture != nil { offers.append(Double(took.seconds) * 1e9 + Double(took.attoseconds) / 1e9) }
            forwarded += monitor.receiveFrame(frame, from: .primary, at: now, receiveTimeNanos: now).forwarded.count
        }
        let seconds = (clock.now - start).seconds
        precondition(forwarded == frames.count * ticksPerFrame, "the monitor forwarded \(forwarded) of \(frames.count * ticksPerFrame)")
        return (seconds, offers)
    }

    static func bytes(under directory: String, suffix: String) -> Int64 {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
        var total: Int64 = 0
        for case let path as String in walker where path.hasSuffix(suffix) {
            var info = stat()
            if stat("\(directory)/\(path)", &info) == 0 { total += Int64(info.st_size) }
        }
        return total
    }
}
