/// How a replica's capture of the raw feed is laid out on disk: pure, so the writer (the feed
/// client's shell), the reader (`baton-replay`) and the tests agree on every byte and path.
///
/// A capture record is the line exactly as it arrived, behind its receive time:
///
///     <receive_wall_ns> <line as received>\n
///
/// The receive time is what replay needs (the live engine decided at that moment; rate limits
/// and canary intervals run on it) and the feed line itself does not carry it. Records go to
/// `<dir>/date=YYYY-MM-DD/symbol=SYM/<source>-<opened>-<serial>.ticks`, gzip-compressed to
/// `….ticks.gz` on rotation. The date is the receive time's UTC day. Heartbeat lines are not
/// recorded: they carry no market data and no symbol to file them under. A trade line whose
/// symbol is not a plain name (a hostile feed could send `../../etc`) is filed under
/// `symbol=_invalid`, so a line can never choose where it is written.
public enum TickCaptureFormat {
    public static let recordedExtension = "ticks"
    public static let compressedExtension = "ticks.gz"
    /// Where lines whose symbol field is not a plain name go (see the type's documentation).
    public static let invalidSymbol = "_invalid"
    public static let maxSymbolLength = 32

    /// What a line is, for the capture: a heartbeat (not recorded) or a line to file under
    /// a symbol partition.
    public enum LineKind: Equatable, Sendable {
        case heartbeat
        case record(symbol: String)
    }

    /// Looks only at the line type and the third field: the capture keeps what arrived, valid
    /// or not, and leaves judging a line to the decoder (replay decodes it again).
    public static func kind(of line: UnsafeBufferPointer<UInt8>) -> LineKind {
        if line.count >= 2, line[0] == UInt8(ascii: "H"), line[1] == comma { return .heartbeat }
        guard line.count >= 2, line[0] == UInt8(ascii: "T"), line[1] == comma else {
            return .record(symbol: invalidSymbol)
        }
        var i = 2
        while i < line.count && line[i] != comma { i += 1 }  // the sequence
        let start = i + 1
        var end = start
        while end < line.count && line[end] != comma { end += 1 }
        guard start < line.count, end > start, end - start <= maxSymbolLength, line[start] != UInt8(ascii: ".") else {
            return .record(symbol: invalidSymbol)
        }
        for byte in line[start..<end] where !isSymbolByte(byte) { return .record(symbol: invalidSymbol) }
        return .record(symbol: String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self))
    }

    static func isSymbolByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Appends one record: the receive time, a space, the line, a newline.
    public static func appendRecord(_ line: UnsafeBufferPointer<UInt8>, receivedAtNanos: Int64, to buffer: inout [UInt8]) {
        TickCodec.appendSigned(receivedAtNanos, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: line)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// One record's receive time and where its line starts, or nil when it is not a record.
    public static func parseRecord(_ record: UnsafeBufferPointer<UInt8>) -> (receivedAtNanos: Int64, lineStart: Int)? {
        guard let space = record.firstIndex(of: UInt8(ascii: " ")), space > 0, space <= 20 else { return nil }
        var value: Int64 = 0
        for byte in record[0..<space] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(Int64(digit))
            guard !o1, !o2 else { return nil }
            value = plus
        }
        return (value, space + 1)
    }

    // MARK: - Calendar

    /// The UTC calendar day of `nanos` since the Unix epoch, as `YYYY-MM-DD` (the proleptic
    /// Gregorian calendar; Howard Hinnant's days-to-civil). Pure, so no time zone database or
    /// Foundation calendar decides where a record goes.
    public static func utcDate(nanos: Int64) -> String {
        let days = nanos >= 0 ? nanos / 86_400_000_000_000 : (nanos - 86_399_999_999_999) / 86_400_000_000_000
        let (year, month, day) = civil(daysSinceEpoch: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// `YYYYMMDDTHHMMSS` in UTC, for file names that sort in time order.
    public static func utcStamp(nanos: Int64) -> String {
        let seconds = nanos / 1_000_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let (year, month, day) = civil(daysSinceEpoch: days)
        let inDay = seconds - days * 86_400
        return "\(pad(year, 4))\(pad(month, 2))\(pad(day, 2))T\(pad(inDay / 3600, 2))\(pad(inDay / 60 % 60, 2))\(pad(inDay % 60, 2))"
    }

    static func civil(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    // MARK: - Paths

    /// `date=YYYY-MM-DD/symbol=SYM`, relative to the capture directory.
    public static func partition(date: String, symbol: String) -> String { "date=\(date)/symbol=\(symbol)" }

    /// A capture file's name, without the compressed suffix.
    public static func fileName(source: String, openedAtNanos: Int64, serial: Int) -> String {
        "\(source)-\(utcStamp(nanos: openedAtNanos))-\(serial).\(recordedExtension)"
    }

    /// A file found under the capture directory, as the retention planner sees it.
    public struct StoredFile: Hashable, Sendable {
        /// Relative to the capture directory: `date=…/symbol=…/<name>`.
        public var path: String
        public var bytes: Int64
        public init(path: String, bytes: Int64) {
            self.path = path
            self.bytes = bytes
        }

        /// The partition's date, or nil when the path is not a capture file's.
        public var date: String? {
            guard path.hasPrefix("date="), path.count >= 15 else { return nil }
            return String(path.dropFirst(5).prefix(10))
        }
        public var source: String? {
            path.split(separator: "/").last.flatMap { $0.split(separator: "-").first.map(String.init) }
        }
        public var isCompressed: Bool { path.hasSuffix(".\(compressedExtension)") }
        /// Files sort oldest first by date, then by the time in their name (the partition's
        /// symbol does not matter for age).
        var ageKey: (String, String, Int) {
            // <source>-<stamp>-<serial>.ticks[.gz]: the serial compared as a number (10 after 9).
            let parts = (path.split(separator: "/").last ?? "").split(separator: "-")
            let serial = parts.count >= 3 ? Int(parts[2].prefix { $0.isNumber }) ?? 0 : 0
            return (date ?? "", parts.count >= 2 ? String(parts[1]) : "", serial)
        }
    }

    /// Which files retention deletes: every file of a day older than `retainDays` (today is
    /// day 0: `retainDays` 1 keeps today and yesterday), then the oldest closed files until the
    /// total is at most `maxBytes`. Files still being written are never deleted; a capture the
    /// writer cannot fit is its own problem (it rotates sooner), not a reason to lose a file
    /// that is open.
    public static func expired(
        _ files: [StoredFile], nowNanos: Int64, retainDays: Int, maxBytes: Int64, open: Set<String>
    ) -> [String] {
        let cutoff = utcDate(nanos: nowNanos - Int64(retainDays) * 86_400_000_000_000)
        var deleted: [String] = []
        var kept: [StoredFile] = []
        for file in files where !open.contains(file.path) {
            if let date = file.date, date < cutoff { deleted.append(file.path) } else { kept.append(file) }
        }
        var total = files.filter { open.contains($0.path) }.reduce(0) { $0 + $1.bytes } + kept.reduce(0) { $0 + $1.bytes }
        for file in kept.sorted(by: { $0.ageKey < $1.ageKey }) where total > maxBytes {
            deleted.append(file.path)
            total -= file.bytes
        }
        return deleted
    }

    private static let comma = UInt8(ascii: ",")
}
