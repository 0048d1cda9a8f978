import BatonMarketData
import CompressNIO
import Foundation
public import Logging
public import Metrics
import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `feed.capture.*`: where and how a replica records the raw feed it receives.
public struct TickCaptureSettings: Sendable, Hashable {
    public var directory: String
    /// A file is closed and compressed once it holds this many bytes…
    public var rotateBytes: Int64
    /// …or has been open this long (and always when its UTC day ends).
    public var rotateAfter: Duration
    /// Days of capture kept besides today.
    public var retainDays: Int
    /// The most the capture directory may hold; the oldest closed files go first.
    public var maxBytes: Int64
    /// Bytes of received frames waiting for the writer. A full buffer drops the newest frames
    /// (and counts their lines); the feed never waits for the disk.
    public var bufferBytes: Int
    /// How often the writer takes what is buffered to disk.
    public var flushInterval: Duration
    /// Files open at once; past it the least recently written one is rotated. A feed that
    /// invents a new symbol in every line cannot make the writer hold a descriptor for each.
    public var maxOpenFiles: Int

    public init(
        directory: String, rotateBytes: Int64 = 64 << 20, rotateAfter: Duration = .seconds(3600), retainDays: Int = 7,
        maxBytes: Int64 = 10 << 30, bufferBytes: Int = 32 << 20, flushInterval: Duration = .milliseconds(200),
        maxOpenFiles: Int = 256
    ) {
        self.directory = directory
        self.rotateBytes = rotateBytes
        self.rotateAfter = rotateAfter
        self.retainDays = retainDays
        self.maxBytes = maxBytes
        self.bufferBytes = bufferBytes
        self.flushInterval = flushInterval
        self.maxOpenFiles = maxOpenFiles
    }

    public func validate() throws(FeedConfigurationError) {
        func fail(_ key: String, _ value: some CustomStringConvertible, _ reason: String) -> FeedConfigurationError {
            FeedConfigurationError(setting: "feed.capture.\(key)", value: "\(value)", reason: reason)
        }
        guard !directory.isEmpty else { throw fail("dir", directory, "must name a directory") }
        // A whole file is compressed in memory on rotation: the bound keeps that bounded too.
        guard (1 << 16...1 << 30).contains(rotateBytes) else { throw fail("rotate_mb", rotateBytes >> 20, "must be in 1…1024 MiB") }
        guard rotateAfter >= .seconds(1), rotateAfter <= .seconds(86_400) else {
            throw fail("rotate_after_s", rotateAfter, "must be in 1…86400 seconds")
        }
        guard (0...3650).contains(retainDays) else { throw fail("retain_days", retainDays, "must be in 0…3650") }
        guard maxBytes >= rotateBytes else {
            throw fail("max_mb", maxBytes >> 20, "must be at least feed.capture.rotate_mb (\(rotateBytes >> 20))")
        }
        guard (1 << 16...1 << 30).contains(bufferBytes) else { throw fail("buffer_kb", bufferBytes >> 10, "must be in 64…1048576 KiB") }
        guard flushInterval >= .milliseconds(1), flushInterval <= .seconds(10) else {
            throw fail("flush_ms", flushInterval, "must be in 1…10000 ms")
        }
        guard (1...4096).contains(maxOpenFiles) else { throw fail("max_open_files", maxOpenFiles, "must be in 1…4096") }
    }
}

/// What the capture has done, for `/status` and the tests.
public struct TickCaptureStatus: Sendable, Hashable, Codable {
    public var directory: String
    public var linesWritten: UInt64
    /// Lines lost because the buffer was full (the writer fell behind) or a write failed.
    public var linesDropped: UInt64
    public var bytesWritten: UInt64
    public var filesRotated: UInt64
    public var filesDeleted: UInt64
    public var writeErrors: UInt64
    public var lastError: String?
    public var bufferedBytes: Int
    public var openFiles: Int
}

/// Records the raw feed a replica receives (see `TickCaptureFormat` for the layout).
///
/// The feed client hands it every frame as received (`offer`), from the thread that read it:
/// that call copies the frame into a bounded buffer under a lock and returns, whatever the disk
/// is doing. The writer (`run`, one `Service`) takes the buffer every `flushInterval` and does
/// the file work on NIO's blocking-I/O pool: appends, rotation (close, gzip, delete the
/// original), retention. A failing disk costs the capture lines, counted and logged, never the
/// replica: `run` does not throw once started, because a capture is evidence, not a duty, and a
/// full disk on every replica at once must not stop the cluster.
public final class TickCapture: Service, Sendable {
    public let settings: TickCaptureSettings
    private let logger: Logger
    private let metrics: CaptureMetrics
    private let buffer: Mutex<Buffered>
    private let writer: Mutex<CaptureWriter>
    private let totals: Mutex<TickCaptureStatus>

    struct Chunk: Sendable {
        var source: FeedSource
        var receivedAtNanos: Int64
        var bytes: [UInt8]
    }

    struct Buffered: Sendable {
        var chunks: [Chunk] = []
        var bytes = 0
    }

    /// Creates the capture directory (a clear error now beats a silent capture of nothing) and
    /// compresses files an earlier run left open.
    public init(settings: TickCaptureSettings, logger: Logger, metricsFactory: (any MetricsFactory)? = nil) throws {
        try settings.validate()
        do {
            try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        } catch {
            throw FeedConfigurationError(
                setting: "feed.capture.dir", value: settings.directory, reason: "cannot be created: \(error.localizedDescription)")
        }
        guard access(settings.directory, W_OK) == 0 else {
            throw FeedConfigurationError(setting: "feed.capture.dir", value: settings.directory, reason: "is not writable")
        }
        self.settings = settings
        self.logger = logger
        self.metrics = CaptureMetrics(factory: metricsFactory ?? MetricsSystem.factory)
        buffer = Mutex(Buffered())
        writer = Mutex(CaptureWriter(settings: settings))
        totals = Mutex(
            TickCaptureStatus(
                directory: settings.directory, linesWritten: 0, linesDropped: 0, bytesWritten: 0, filesRotated: 0,
                filesDeleted: 0, writeErrors: 0, lastError: nil, bufferedBytes: 0, openFiles: 0))
    }

    // MARK: - The feed's side

    /// One frame as received. Never blocks on I/O: at most a copy under an uncontended lock.
    public func offer(_ frame: UnsafeBufferPointer<UInt8>, from source: FeedSource, receivedAtNanos: Int64) {
        guard !frame.isEmpty else { return }
        let accepted = buffer.withLock { buffered -> Bool in
            guard buffered.bytes + frame.count <= settings.bufferBytes else { return false }
            buffered.chunks.append(Chunk(source: source, receivedAtNanos: receivedAtNanos, bytes: Array(frame)))
            buffered.bytes += frame.count
            return true
        }
        if !accepted {
            let lines = Self.lineCount(frame)
            totals.withLock { $0.linesDropped += UInt64(lines) }
            metrics.dropped(source).increment(by: lines)
        }
    }

    static func lineCount(_ frame: UnsafeBufferPointer<UInt8>) -> Int {
        var lines = 0
        for byte in frame where byte == UInt8(ascii: "\n") { lines += 1 }
        return frame.last == UInt8(ascii: "\n") ? lines : lines + 1
    }

    public func status() -> TickCaptureStatus {
        let bufferedBytes = buffer.withLock { $0.bytes }
        var status = totals.withLock { $0 }
        status.bufferedBytes = bufferedBytes
        return status
    }

    // MARK: - The writer

    public func run() async throws {
        await drain(final: false, recoverLeftovers: true)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: self.settings.flushInterval) } catch { break }
                await self.drain(final: false, recoverLeftovers: false)
            }
        }
        await drain(final: true, recoverLeftovers: false)
        let status = status()
        logger.info(
            "tick capture stopped",
            metadata: [
                "capture.lines": "\(status.linesWritten)", "capture.dropped": "\(status.linesDropped)",
                "capture.rotated": "\(status.filesRotated)",
            ])
    }

    /// Takes everything buffered to disk; `final` also closes and compresses every open file.
    /// Public for the benchmark, which drives the writer without a service group.
    public func drain(final: Bool, recoverLeftovers: Bool = false) async {
        let (chunks, taken) = buffer.withLock { buffered -> ([Chunk], Int) in
            defer { buffered = Buffered() }
            return (buffered.chunks, buffered.bytes)
        }
        // What had piled up since the last drain: how close the writer came to dropping.
        metrics.buffered.record(taken)
        let work: @Sendable () -> CaptureWriter.Report = { [self] in
            writer.withLock { writer in
                var report = CaptureWriter.Report()
                if recoverLeftovers { writer.recoverLeftovers(into: &report) }
                writer.write(chunks, now: wallClockNanos(), into: &report)
                if final { writer.rotateAll(into: &report) }
                writer.enforceRetention(now: wallClockNanos(), force: final || report.rotated > 0, into: &report)
                report.openFiles = writer.files.count
                return report
            }
        }
        let report: CaptureWriter.Report
        do {
            report = try await NIOThreadPool.singleton.runIfActive(work)
        } catch {
            report = work()  // the pool is shutting down: finish on this thread rather than lose lines
        }
        record(report)
    }

    private func record(_ report: CaptureWriter.Report) {
        for source in FeedSource.allCases {
            if let lines = report.lines[source], lines > 0 { metrics.lines(source).increment(by: lines) }
            if let lines = report.dropped[source], lines > 0 { metrics.dropped(source).increment(by: lines) }
        }
        if report.bytes > 0 { metrics.bytes.increment(by: report.bytes) }
        if report.rotated > 0 { metrics.rotations.increment(by: report.rotated) }
        if !report.errors.isEmpty { metrics.writeErrors.increment(by: report.errors.count) }
        if report.writeNanos > 0 { metrics.writeDuration.recordNanoseconds(report.writeNanos) }
        let shouldLog = totals.withLock { totals -> Bool in
            totals.linesWritten += UInt64(report.lines.values.reduce(0, +))
            totals.linesDropped += UInt64(report.dropped.values.reduce(0, +))
            totals.bytesWritten += UInt64(report.bytes)
            totals.filesRotated += UInt64(report.rotated)
            totals.filesDeleted += UInt64(report.deleted)
            totals.openFiles = report.openFiles
            let first = totals.writeErrors == 0
            totals.writeErrors += UInt64(report.errors.count)
            if let last = report.errors.last { totals.lastError = last }
            // The first failure and then one in a thousand: a full disk fails every write.
            return !report.errors.isEmpty && (first || totals.writeErrors % 1000 < UInt64(report.errors.count))
        }
        if shouldLog, let error = report.errors.last {
            logger.error(
                "tick capture write failed; lines dropped",
                metadata: ["capture.dir": "\(settings.directory)", "capture.error": "\(error)", "capture.errors": "\(report.errors.count)"])
        }
    }
}

/// The writer's files; touched only by one drain at a time (under `TickCapture.writer`).
struct CaptureWriter: Sendable {
    struct Key: Hashable, Sendable {
        var source: FeedSource
        var date: String
        var symbol: String
    }

    struct OpenFile: Sendable {
        var descriptor: Int32
        /// Relative to the capture directory.
        var path: String
        var bytes: Int64 = 0
        var openedAtNanos: Int64
        var lastWriteNanos: Int64
        var pending: [UInt8] = []
        var pendingLines = 0
    }

    struct Report: Sendable {
        var lines: [FeedSource: Int] = [:]
        var dropped: [FeedSource: Int] = [:]
        var bytes = 0
        var rotated = 0
        var deleted = 0
        var errors: [String] = []
        var writeNanos: Int64 = 0
        var openFiles = 0
    }

    let settings: TickCaptureSettings
    var files: [Key: OpenFile] = [:]
    var serial = 0
    var lastRetentionNanos: Int64 = 0

    init(settings: TickCaptureSettings) { self.settings = settings }

    private func absolute(_ path: String) -> String { "\(settings.directory)/\(path)" }

    mutating func write(_ chunks: [TickCapture.Chunk], now: Int64, into report: inout Report) {
        guard !chunks.isEmpty else {
            rotateDue(now: now, into: &report)
            return
        }
        let started = ContinuousClock.now
        var latestDate = ""
        for chunk in chunks {
            let date = TickCaptureFormat.utcDate(nanos: chunk.receivedAtNanos)
            if date > latestDate { latestDate = date }
            chunk.bytes.withUnsafeBufferPointer { frame in
                var start = 0
                while start < frame.count {
                    var end = start
                    while end < frame.count && frame[end] != UInt8(ascii: "\n") { end += 1 }
                    var lineEnd = end
                    if lineEnd > start && frame[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                    if lineEnd > start {
                        let line = UnsafeBufferPointer(rebasing: frame[start..<lineEnd])
                        if case .record(let symbol) = TickCaptureFormat.kind(of: line) {
                            let key = Key(source: chunk.source, date: date, symbol: symbol)
                            if files[key] == nil { open(key, now: now, into: &report) }
                            if files[key] != nil {
                                TickCaptureFormat.appendRecord(line, receivedAtNanos: chunk.receivedAtNanos, to: &files[key]!.pending)
                                files[key]!.pendingLines += 1
                            } else {
                                report.dropped[chunk.source, default: 0] += 1
                            }
                        }
                    }
                    start = end + 1
                }
            }
        }
        for key in Array(files.keys) { flush(key, now: now, into: &report) }
        report.writeNanos = Int64((ContinuousClock.now - started).nanoseconds)
        // A day that has ended gets no more records (receive times only go forward).
        for (key, _) in files where key.date < latestDate { rotate(key, into: &report) }
        rotateDue(now: now, into: &report)
    }

    private mutating func rotateDue(now: Int64, into report: inout Report) {
        let limit = settings.rotateAfter.nanoseconds
        for (key, file) in files where file.bytes >= settings.rotateBytes || now - file.openedAtNanos >= limit {
            rotate(key, into: &report)
        }
    }

    private mutating func open(_ key: Key, now: Int64, into report: inout Report) {
        if files.count >= settings.maxOpenFiles, let idle = files.min(by: { $0.value.lastWriteNanos < $1.value.lastWriteNanos }) {
            flush(idle.key, now: now, into: &report)
            rotate(idle.key, into: &report)
        }
        let partition = TickCaptureFormat.partition(date: key.date, symbol: key.symbol)
        do {
            try FileManager.default.createDirectory(atPath: absolute(partition), withIntermediateDirectories: true)
        } catch {
            report.errors.append("\(absolute(partition)): \(error.localizedDescription)")
            return
        }
        // O_EXCL: a name is never reused, even by a replica restarted within the same second.
        for _ in 0..<1000 {
            serial += 1
            let path = "\(partition)/\(TickCaptureFormat.fileName(source: key.source.rawValue, openedAtNanos: now, serial: serial))"
            let descriptor = Glibc.open(absolute(path), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                files[key] = OpenFile(descriptor: descriptor, path: path, openedAtNanos: now, lastWriteNanos: now)
                return
            }
            guard errno == EEXIST else {
                report.errors.append("\(absolute(path)): \(String(cString: strerror(errno)))")
                return
            }
        }
        report.errors.append("\(absolute(partition)): no free file name")
    }

    private mutating func flush(_ key: Key, now: Int64, into report: inout Report) {
        guard var file = files[key], !file.pending.isEmpty else { return }
        let failure = file.pending.withUnsafeBytes { raw -> String? in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(file.descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += written
            }
            return nil
        }
        if let failure {
            // What this file had is lost (part of it may be on disk): counted, and the file is
            // closed so the next line starts a fresh one once the disk has room again.
            report.errors.append("\(absolute(file.path)): \(failure)")
            report.dropped[key.source, default: 0] += file.pendingLines
            file.pending = []
            file.pendingLines = 0
            files[key] = file
            rotate(key, into: &report)
            return
        }
        report.lines[key.source, default: 0] += file.pendingLines
        report.bytes += file.pending.count
        file.bytes += Int64(file.pending.count)
        file.pending.removeAll(keepingCapacity: true)
        file.pendingLines = 0
        file.lastWriteNanos = now
        files[key] = file
    }

    mutating func rotateAll(into report: inout Report) {
        for key in Array(files.keys) {
            flush(key, now: files[key]?.lastWriteNanos ?? 0, into: &report)
            rotate(key, into: &report)
        }
    }

    /// Closes the file and replaces it with its gzip (written beside it, then renamed, so a
    /// crash leaves either the whole original or the whole compressed file).
    private mutating func rotate(_ key: Key, into report: inout Report) {
        guard let file = files.removeValue(forKey: key) else { return }
        close(file.descriptor)
        if file.bytes == 0 {
            unlink(absolute(file.path))
            return
        }
        if let error = Self.compress(absolute(file.path)) {
            report.errors.append(error)
        } else {
            report.rotated += 1
        }
    }

    /// Compresses a closed capture file to `<path>.gz` and removes it; the error, if any.
    static func compress(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return "\(path): cannot be read for compression" }
        var input = ByteBuffer(bytes: data)
        let compressed: ByteBuffer
        do {
            compressed = try input.compress(with: .gzip())
        } catch {
            return "\(path): gzip failed: \(error)"
        }
        let temporary = "\(path).gz.partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(compressed.readableBytesView)) else {
            return "\(temporary): cannot be written"
        }
        guard rename(temporary, "\(path).gz") == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            return "\(path).gz: \(reason)"
        }
        unlink(path)
        return nil
    }

    /// Files a crashed run left uncompressed (`.ticks`) are compressed now; half-written
    /// compressions (`.partial`) are removed, their originals are still there.
    mutating func recoverLeftovers(into report: inout Report) {
        for file in stored() {
            if file.path.hasSuffix(".partial") {
                unlink(absolute(file.path))
            } else if file.path.hasSuffix(".\(TickCaptureFormat.recordedExtension)") {
                if let error = Self.compress(absolute(file.path)) { report.errors.append(error) } else { report.rotated += 1 }
            }
        }
    }

    /// Retention runs after a rotation and at least once a minute.
    mutating func enforceRetention(now: Int64, force: Bool, into report: inout Report) {
        guard force || now - lastRetentionNanos >= 60_000_000_000 else { return }
        lastRetentionNanos = now
        let open = Set(files.values.map(\.path))
        let expired = TickCaptureFormat.expired(
            stored(), nowNanos: now, retainDays: settings.retainDays, maxBytes: settings.maxBytes, open: open)
        for path in expired {
            if unlink(absolute(path)) == 0 { report.deleted += 1 }
        }
        if !expired.isEmpty { removeEmptyPartitions() }
    }

    /// Every file under `date=*/symbol=*/`.
    func stored() -> [TickCaptureFormat.StoredFile] {
        let manager = FileManager.default
        var found: [TickCaptureFormat.StoredFile] = []
        for date in (try? manager.contentsOfDirectory(atPath: settings.directory)) ?? [] where date.hasPrefix("date=") {
            for symbol in (try? manager.contentsOfDirectory(atPath: absolute(date))) ?? [] where symbol.hasPrefix("symbol=") {
                for name in (try? manager.contentsOfDirectory(atPath: absolute("\(date)/\(symbol)"))) ?? [] {
                    let path = "\(date)/\(symbol)/\(name)"
                    var info = stat()
                    guard stat(absolute(path), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                    found.append(.init(path: path, bytes: Int64(info.st_size)))
                }
            }
        }
        return found
    }

    private func removeEmptyPartitions() {
        let manager = FileManager.default
        for date in (try? manager.contentsOfDirectory(atPath: settings.directory)) ?? [] where date.hasPrefix("date=") {
            for symbol in (try? manager.contentsOfDirectory(atPath: absolute(date))) ?? [] { rmdir(absolute("\(date)/\(symbol)")) }
            rmdir(absolute(date))
        }
    }
}

struct CaptureMetrics: Sendable {
    let primaryLines: Counter
    let backupLines: Counter
    let primaryDropped: Counter
    let backupDropped: Counter
    let bytes: Counter
    let rotations: Counter
    let writeErrors: Counter
    let buffered: Gauge
    let writeDuration: Timer

    init(factory: any MetricsFactory) {
        func counter(_ label: String, _ source: String? = nil) -> Counter {
            Counter(label: label, dimensions: source.map { [("source", $0)] } ?? [], factory: factory)
        }
        primaryLines = counter("baton_capture_lines_total", "primary")
        backupLines = counter("baton_capture_lines_total", "backup")
        primaryDropped = counter("baton_capture_dropped_lines_total", "primary")
        backupDropped = counter("baton_capture_dropped_lines_total", "backup")
        bytes = counter("baton_capture_bytes_total")
        rotations = counter("baton_capture_rotations_total")
        writeErrors = counter("baton_capture_write_errors_total")
        buffered = Gauge(label: "baton_capture_buffered_bytes", factory: factory)
        writeDuration = Timer(label: "baton_capture_write_seconds", factory: factory)
    }

    func lines(_ source: FeedSource) -> Counter { source == .primary ? primaryLines : backupLines }
    func dropped(_ source: FeedSource) -> Counter { source == .primary ? primaryDropped : backupDropped }
}
