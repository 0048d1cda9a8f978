public import BatonMarketData
import CompressNIO
import Foundation
import NIOCore

/// Why a capture could not be read: the file and, for a bad record, its line.
public struct TickCaptureReadError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var reason: String
    public var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(reason)" }
}

/// Reads a capture directory back (for `baton-replay` and the parity test): one source's
/// records from every partition, in the order they were received.
public enum TickCaptureReader {
    /// One decoded tick with its receive time, and how many lines were not ticks.
    public struct Session: Sendable {
        public var ticks: [MarketTick]
        public var files: Int
        /// Lines the decoder refused (the live feed refused them too), by reason.
        public var undecodable: [String: Int]
    }

    /// A decompressed file larger than this is refused rather than read: rotation keeps files
    /// far below it, so a bigger one is not a capture file.
    public static let maxFileBytes = 2 << 30

    /// Every capture file of `source` under `directory`, optionally only some dates and
    /// symbols, decoded and merged by receive time (a frame's lines keep their order: ties keep
    /// file and line order). Lines the live decoder would refuse are counted and skipped, the
    /// same way the live feed skipped them.
    public static func read(
        directory: String, source: String = "primary", dates: Set<String>? = nil, symbols: Set<String>? = nil
    ) throws(TickCaptureReadError) -> Session {
        let manager = FileManager.default
        guard let partitions = try? manager.contentsOfDirectory(atPath: directory) else {
            throw TickCaptureReadError(path: directory, line: nil, reason: "is not a readable directory")
        }
        var paths: [String] = []
        for date in partitions.sorted() where date.hasPrefix("date=") {
            if let dates, !dates.contains(String(date.dropFirst(5))) { continue }
            for symbol in ((try? manager.contentsOfDirectory(atPath: "\(directory)/\(date)")) ?? []).sorted()
            where symbol.hasPrefix("symbol=") {
                if let symbols, !symbols.contains(String(symbol.dropFirst(7))) { continue }
                let folder = "\(directory)/\(date)/\(symbol)"
                for name in ((try? manager.contentsOfDirectory(atPath: folder)) ?? []).sorted()
                where name.hasPrefix("\(source)-")
                    && (name.hasSuffix(".\(TickCaptureFormat.recordedExtension)")
                        || name.hasSuffix(".\(TickCaptureFormat.compressedExtension)"))
                {
                    paths.append("\(folder)/\(name)")
                }
            }
        }
        var stamped: [(at: Int64, order: Int, tick: MarketTick)] = []
        var undecodable: [String: Int] = [:]
        for path in paths {
            let bytes = try contents(of: path)
            try bytes.withUnsafeBufferPointer { (buffer) throws(TickCaptureReadError) in
                var start = 0
                var lineNumber = 0
                while start < buffer.count {
                    var end = start
                    while end < buffer.count && buffer[end] != UInt8(ascii: "\n") { end += 1 }
                    lineNumber += 1
                    if end > start {
                        let record = UnsafeBufferPointer(rebasing: buffer[start..<end])
                        guard let (receivedAt, lineStart) = TickCaptureFormat.parseRecord(record) else {
                            throw TickCaptureReadError(path: path, line: lineNumber, reason: "not a capture record (<receive_ns> <line>)")
                        }
                        let line = UnsafeBufferPointer(rebasing: record[lineStart...])
                        TickCodec.decodeFrame(
                            line, receiveTimeNanos: receivedAt,
                            onTick: { stamped.append((receivedAt, stamped.count, $0)) },
                            onHeartbeat: { _, _ in },
                            onError: { undecodable[$0.reason, default: 0] += 1 })
                    }
                    start = end + 1
                }
            }
        }
        stamped.sort { ($0.at, $0.tick.sequence, $0.order) < ($1.at, $1.tick.sequence, $1.order) }
        return Session(ticks: stamped.map(\.tick), files: paths.count, undecodable: undecodable)
    }

    static func contents(of path: String) throws(TickCaptureReadError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TickCaptureReadError(path: path, line: nil, reason: "cannot be read")
        }
        guard path.hasSuffix(".gz") else { return Array(data) }
        var buffer = ByteBuffer(bytes: data)
        do {
            var plain = try buffer.decompress(with: .gzip(), maxSize: maxFileBytes)
            return plain.readBytes(length: plain.readableBytes) ?? []
        } catch {
            throw TickCaptureReadError(path: path, line: nil, reason: "is not a whole gzip file: \(error)")
        }
    }
}
