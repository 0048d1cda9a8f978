/// The market-data line format, shared by the venue simulator (which writes it) and the feed
/// client (which reads it).
///
/// A WebSocket text frame carries one or more lines, each ending in `\n`:
///
///     T,<seq>,<symbol>,<price>,<size>,<bid>,<ask>,<exchange_ns>   a trade with the best bid/ask
///     H,<seq_of_last_tick>,<exchange_ns>                          heartbeat: alive, no trade
///
/// Prices are decimals with at most four fractional digits (`187.25`). Text rather than binary so
/// an on-call engineer can read a capture; the decoder works on bytes without allocating per field
/// so the format is not what limits ingest.
public enum TickCodec {
    public static let priceScale: Int64 = 10_000
    static let fractionDigits = 4
    /// The largest price (and bid/ask magnitude) a line may carry: one billion, in price units.
    /// Every replica reads the same feed, so a value that could overflow arithmetic downstream
    /// (averages, notionals) is refused here, on the line, rather than trapping every replica.
    public static let maxPriceUnits: Int64 = 1_000_000_000 * priceScale

    // MARK: - Encoding

    public static func appendTrade(_ tick: MarketTick, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "T"))
        buffer.append(comma)
        appendInteger(tick.sequence, to: &buffer)
        buffer.append(comma)
        buffer.append(contentsOf: tick.symbol.utf8)
        buffer.append(comma)
        appendPrice(tick.price, to: &buffer)
        buffer.append(comma)
        appendSigned(tick.size, to: &buffer)
        buffer.append(comma)
        appendPrice(tick.bid, to: &buffer)
        buffer.append(comma)
        appendPrice(tick.ask, to: &buffer)
        buffer.append(comma)
        appendSigned(tick.exchangeTimeNanos, to: &buffer)
        buffer.append(newline)
    }

    public static func appendHeartbeat(lastSequence: UInt64, exchangeTimeNanos: Int64, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "H"))
        buffer.append(comma)
        appendInteger(lastSequence, to: &buffer)
        buffer.append(comma)
        appendSigned(exchangeTimeNanos, to: &buffer)
        buffer.append(newline)
    }

    /// `price` in units of 1/`priceScale` as a decimal with trailing zeros trimmed.
    public static func formatPrice(_ price: Int64) -> String {
        var bytes: [UInt8] = []
        appendPrice(price, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses a decimal price ("187.25", "-0.5", "42") into units of 1/`priceScale`.
    public static func parsePrice(_ text: String) -> Int64? {
        Array(text.utf8).withUnsafeBufferPointer { parseDecimal($0, from: 0, to: $0.count) }
    }

    // MARK: - Decoding

    /// Decodes every line of a frame. A malformed line does not stop the rest: it goes to
    /// `onError` with its line number and reason, and decoding continues with the next line.
    /// A frame that does not end in a newline has a last line like any other (a sender that
    /// forgot the final `\n` loses nothing).
    public static func decodeFrame(
        _ bytes: some Collection<UInt8>,
        receiveTimeNanos: Int64,
        onTick: (MarketTick) -> Void,
        onHeartbeat: (_ lastSequence: UInt64, _ exchangeTimeNanos: Int64) -> Void,
        onError: (TickDecodingError) -> Void
    ) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            decodeLines(buffer, receiveTimeNanos, onTick, onHeartbeat, onError)
        }
        if handled == nil {
            Array(bytes).withUnsafeBufferPointer { decodeLines($0, receiveTimeNanos, onTick, onHeartbeat, onError) }
        }
    }

    private static func decodeLines(
        _ buffer: UnsafeBufferPointer<UInt8>,
        _ receiveTimeNanos: Int64,
        _ onTick: (MarketTick) -> Void,
        _ onHeartbeat: (UInt64, Int64) -> Void,
        _ onError: (TickDecodingError) -> Void
    ) {
        var lineStart = 0
        var lineNumber = 0
        let count = buffer.count
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && buffer[lineEnd] != newline { lineEnd += 1 }
            lineNumber += 1
            var end = lineEnd
            if end > lineStart && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end > lineStart {
                switch decodeLine(buffer, from: lineStart, to: end, receiveTimeNanos: receiveTimeNanos) {
                case .trade(let tick): onTick(tick)
                case .heartbeat(let sequence, let time): onHeartbeat(sequence, time)
                case .failure(let reason):
                    let shown = String(decoding: UnsafeBufferPointer(rebasing: buffer[lineStart..<min(end, lineStart + 120)]), as: UTF8.self)
                    onError(TickDecodingError(line: lineNumber, reason: reason, text: shown))
                }
            }
            lineStart = lineEnd + 1
        }
    }

    private enum LineResult {
        case trade(MarketTick)
        case heartbeat(UInt64, Int64)
        case failure(String)
    }

    private static func decodeLine(
        _ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int, receiveTimeNanos: Int64
    ) -> LineResult {
        // Field starts (and one past the last field's end): at most 8 fields; more is an error,
        // not something to ignore. Kept inline so a line costs no allocation.
        var starts = InlineArray<9, Int>(repeating: 0)
        starts[0] = start
        var fields = 1
        var i = start
        while i < end {
            if buffer[i] == comma {
                guard fields < 8 else { return .failure("more than 8 fields") }
                starts[fields] = i + 1
                fields += 1
            }
            i += 1
        }
        starts[fields] = end + 1
        func field(_ n: Int) -> (Int, Int) { (starts[n], starts[n + 1] - 1) }
        let (kindStart, kindEnd) = field(0)
        guard kindEnd - kindStart == 1 else { return .failure("unknown line type") }
        switch buffer[kindStart] {
        case UInt8(ascii: "T"):
            guard fields == 8 else { return .failure("a trade line has 8 fields, this one has \(fields)") }
            let (seqS, seqE) = field(1)
            guard let sequence = parseUnsigned(buffer, from: seqS, to: seqE) else { return .failure("bad sequence") }
            let (symS, symE) = field(2)
            guard symE > symS, symE - symS <= 32 else { return .failure("bad symbol") }
            let symbol = String(decoding: UnsafeBufferPointer(rebasing: buffer[symS..<symE]), as: UTF8.self)
            let (pS, pE) = field(3)
            guard let price = parseDecimal(buffer, from: pS, to: pE), price > 0 else { return .failure("bad price") }
            let (zS, zE) = field(4)
            guard let size = parseSigned(buffer, from: zS, to: zE), size >= 0 else { return .failure("bad size") }
            let (bS, bE) = field(5)
            guard let bid = parseDecimal(buffer, from: bS, to: bE) else { return .failure("bad bid") }
            let (aS, aE) = field(6)
            guard let ask = parseDecimal(buffer, from: aS, to: aE) else { return .failure("bad ask") }
            let (tS, tE) = field(7)
            guard let time = parseSigned(buffer, from: tS, to: tE) else { return .failure("bad exchange time") }
            return .trade(
                MarketTick(
                    sequence: sequence, symbol: symbol, price: price, size: size, bid: bid, ask: ask,
                    exchangeTimeNanos: time, receiveTimeNanos: receiveTimeNanos))
        case UInt8(ascii: "H"):
            guard fields == 3 else { return .failure("a heartbeat line has 3 fields, this one has \(fields)") }
            let (seqS, seqE) = field(1)
            guard let sequence = parseUnsigned(buffer, from: seqS, to: seqE) else { return .failure("bad sequence") }
            let (tS, tE) = field(2)
            guard let time = parseSigned(buffer, from: tS, to: tE) else { return .failure("bad exchange time") }
            return .heartbeat(sequence, time)
        default:
            return .failure("unknown line type")
        }
    }

    // MARK: - Numbers

    private static let comma = UInt8(ascii: ",")
    private static let newline = UInt8(ascii: "\n")
    private static let zero = UInt8(ascii: "0")

    private static func parseUnsigned(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> UInt64? {
        guard end > start, end - start <= 19 else { return nil }
        var value: UInt64 = 0
        for i in start..<end {
            let digit = buffer[i] &- zero
            guard digit < 10 else { return nil }
            value = value * 10 + UInt64(digit)
        }
        return value
    }

    private static func parseSigned(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int64? {
        guard end > start else { return nil }
        if buffer[start] == UInt8(ascii: "-") {
            guard let magnitude = parseUnsigned(buffer, from: start + 1, to: end), magnitude <= UInt64(Int64.max) else {
                return nil
            }
            return -Int64(magnitude)
        }
        guard let magnitude = parseUnsigned(buffer, from: start, to: end), magnitude <= UInt64(Int64.max) else {
            return nil
        }
        return Int64(magnitude)
    }

    /// A decimal with at most `fractionDigits` fractional digits, scaled to `priceScale`. More
    /// digits would be silently rounded, so they are an error instead.
    static func parseDecimal(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int64? {
        guard end > start, end - start <= 24 else { return nil }
        var i = start
        var negative = false
        if buffer[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var units: Int64 = 0
        var digits = 0
        var fraction = -1
        while i < end {
            let byte = buffer[i]
            if byte == UInt8(ascii: ".") {
                guard fraction < 0 else { return nil }
                fraction = 0
            } else {
                let digit = byte &- zero
                guard digit < 10 else { return nil }
                if fraction >= 0 {
                    fraction += 1
                    guard fraction <= fractionDigits else { return nil }
                }
                digits += 1
                guard digits <= 15 else { return nil }
                units = units * 10 + Int64(digit)
            }
            i += 1
        }
        guard digits > 0 else { return nil }
        var scale = max(fraction, 0)
        while scale < fractionDigits {
            // 15 digits scaled by 10^4 can pass Int64.max: refuse instead of trapping.
            let (next, overflow) = units.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            units = next
            scale += 1
        }
        guard units <= maxPriceUnits else { return nil }
        return negative ? -units : units
    }

    static func appendInteger(_ value: UInt64, to buffer: inout [UInt8]) {
        if value == 0 {
            buffer.append(zero)
            return
        }
        var digits = InlineArray<20, UInt8>(repeating: 0)
        var count = 0
        var rest = value
        while rest > 0 {
            digits[count] = zero + UInt8(rest % 10)
            rest /= 10
            count += 1
        }
        for i in stride(from: count - 1, through: 0, by: -1) { buffer.append(digits[i]) }
    }

    static func appendSigned(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        appendInteger(value.magnitude, to: &buffer)
    }

    private static func appendPrice(_ price: Int64, to buffer: inout [UInt8]) {
        if price < 0 { buffer.append(UInt8(ascii: "-")) }
        let magnitude = price.magnitude
        let scale = UInt64(priceScale)
        appendInteger(magnitude / scale, to: &buffer)
        var fraction = magnitude % scale
        guard fraction != 0 else { return }
        var width = fractionDigits
        while fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        buffer.append(UInt8(ascii: "."))
        var divisor: UInt64 = 1
        for _ in 1..<width { divisor *= 10 }
        while divisor > 0 {
            buffer.append(zero + UInt8((fraction / divisor) % 10))
            divisor /= 10
        }
    }
}
