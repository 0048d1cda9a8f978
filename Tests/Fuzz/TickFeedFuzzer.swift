// libFuzzer target for the market-data line codec and the feed monitor. Built by Fuzz/run.sh
// with `swiftc -sanitize=fuzzer,address`, against BatonMarketData and the NIO-free files of
// BatonFeed compiled as modules.
//
// The input is what market-data sources send: frames of `T,…` / `H,…` lines, one frame per
// paragraph (frames are separated by an empty line). A paragraph that starts with `#` is not
// sent: it scripts the shell's side of things for the frames after it, one character per event,
// so a seed can stage a failover (see `Script` below). Between frames the monitor is `check`ed,
// as the shell does every 50 ms.
//
// Properties checked on every input (a violation traps, which libFuzzer reports as a crash):
// - decoding and monitoring never trap, overflow or read out of bounds (ASan, Swift's checks);
// - every decoded line keeps the limits the decoder promises (price > 0, |bid|, |ask| and price
//   within maxPriceUnits, size >= 0, a symbol of 1…32 bytes without a comma) and re-encodes to a
//   line that decodes to the same value; each non-empty line is exactly one tick, heartbeat or
//   error, whether the whole input is decoded at once or as the frames the monitor gets;
// - the monitor accounts for a frame the same whether it decodes the frame itself
//   (`receiveFrame`) or is handed the decoded ticks and heartbeats one by one (`receiveTick`,
//   `receiveHeartbeat`); and it never forwards a sequence at or below one it already forwarded
//   from that source, except right after reporting that the source reset its numbering.
import BatonFeed
import BatonMarketData

/// Runs one input before the first real one: tables built lazily and kept for the life of the
/// process would otherwise be reported as that input's leak.
@_cdecl("LLVMFuzzerInitialize")
public func tickFeedFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let frame = Array("#pc\n\nT,1,AAPL,187.25,100,187.2,187.3,0\nH,1,0\nX\n".utf8)
    frame.withUnsafeBufferPointer { _ = tickFeedFuzzerTestOneInput($0.baseAddress!, $0.count) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func tickFeedFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = decode(bytes[...])
    checkLines(whole, of: bytes[...])

    // Two configurations, so that both the switching logic and the single-source, filtered
    // path see every input.
    var runs = [
        MonitorPair(settings: FeedMonitorSettings()),
        MonitorPair(settings: FeedMonitorSettings(hasBackup: false, symbols: ["AAPL", "MSFT"])),
    ]
    var decodedInFrames = Decoded()
    var script = Script()
    for paragraph in paragraphs(bytes) {
        if paragraph.first == UInt8(ascii: "#") {
            script.used = true
            for event in paragraph.dropFirst() { script.apply(event, to: &runs) }
            continue
        }
        let frame = decode(paragraph)
        decodedInFrames.append(frame)
        for i in runs.indices { runs[i].receive(paragraph, frame, from: script.source, at: script.now) }
        script.now += Script.frameStep
        for i in runs.indices { runs[i].check(at: script.now) }
    }
    // Paragraph splitting only removes empty lines, which the decoder skips anyway; `#` lines
    // are errors when decoded as market data, so they only count when nothing was scripted.
    if !script.used {
        precondition(
            decodedInFrames.ticks == whole.ticks && decodedInFrames.heartbeats == whole.heartbeats
                && decodedInFrames.errorCount == whole.errorCount,
            "decoding frame by frame differs from decoding the whole input")
    }
    return 0
}

// MARK: - Decoding

private struct Decoded {
    var ticks: [MarketTick] = []
    var heartbeats: [Heartbeat] = []
    /// Ticks and heartbeats in line order, for feeding them one by one.
    var items: [Item] = []
    var errors: [TickDecodingError] = []
    var errorCount = 0

    mutating func append(_ other: Decoded) {
        ticks += other.ticks
        heartbeats += other.heartbeats
        errorCount += other.errorCount
    }
}

private struct Heartbeat: Equatable {
    var lastSequence: UInt64
    var exchangeTimeNanos: Int64
}

private enum Item {
    case tick(MarketTick)
    case heartbeat(Heartbeat)
}

/// A receive time that is not 0, so that a decoder that dropped it would be noticed.
private let receiveTime: Int64 = 1_733_130_000_000_000_000

private func decode(_ bytes: ArraySlice<UInt8>) -> Decoded {
    var result = Decoded()
    TickCodec.decodeFrame(
        bytes, receiveTimeNanos: receiveTime,
        onTick: { tick in
            result.ticks.append(tick)
            result.items.append(.tick(tick))
        },
        onHeartbeat: { sequence, time in
            let heartbeat = Heartbeat(lastSequence: sequence, exchangeTimeNanos: time)
            result.heartbeats.append(heartbeat)
            result.items.append(.heartbeat(heartbeat))
        },
        onError: { error in
            result.errors.append(error)
            result.errorCount += 1
        })
    return result
}

private func checkLines(_ decoded: Decoded, of bytes: ArraySlice<UInt8>) {
    // A line is what lies between newlines, less one trailing CR; empty ones are skipped.
    var lines = 0
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        if !(line.isEmpty || line.elementsEqual([UInt8(ascii: "\r")])) { lines += 1 }
    }
    precondition(
        decoded.ticks.count + decoded.heartbeats.count + decoded.errorCount == lines,
        "\(lines) lines gave \(decoded.ticks.count) ticks, \(decoded.heartbeats.count) heartbeats and "
            + "\(decoded.errorCount) errors")
    var previousLine = 0
    for error in decoded.errors {
        precondition(error.line > previousLine && error.text.utf8.count <= 120 * 3, "bad error \(error)")
        previousLine = error.line
    }

    for tick in decoded.ticks {
        precondition(tick.price > 0 && tick.price <= TickCodec.maxPriceUnits, "price out of range: \(tick)")
        precondition(tick.bid.magnitude <= TickCodec.maxPriceUnits.magnitude, "bid out of range: \(tick)")
        precondition(tick.ask.magnitude <= TickCodec.maxPriceUnits.magnitude, "ask out of range: \(tick)")
        precondition(tick.size >= 0, "negative size: \(tick)")
        let symbol = tick.symbol.utf8
        precondition(
            !symbol.isEmpty && symbol.count <= 32 * 3 && !symbol.contains(UInt8(ascii: ",")), "bad symbol: \(tick)")
        precondition(tick.receiveTimeNanos == receiveTime, "receive time not stamped: \(tick)")
        precondition(TickCodec.parsePrice(TickCodec.formatPrice(tick.price)) == tick.price, "price text round trip")
        // A symbol that is not UTF-8 comes out repaired (U+FFFD), so it may re-encode longer
        // than the 32 bytes a line may carry: only a valid one has to survive the round trip.
        guard symbol.count <= 32 else { continue }
        var line: [UInt8] = []
        TickCodec.appendTrade(tick, to: &line)
        let again = decode(line[...])
        precondition(
            again.ticks == [tick] && again.errorCount == 0 && again.heartbeats.isEmpty,
            "\(tick) re-encodes to \(String(decoding: line, as: UTF8.self)), which decodes differently")
    }
    for heartbeat in decoded.heartbeats {
        var line: [UInt8] = []
        TickCodec.appendHeartbeat(
            lastSequence: heartbeat.lastSequence, exchangeTimeNanos: heartbeat.exchangeTimeNanos, to: &line)
        let again = decode(line[...])
        precondition(again.heartbeats == [heartbeat] && again.errorCount == 0 && again.ticks.isEmpty, "heartbeat round trip")
    }
}

/// Frames: the input split at empty lines (`\n\n`, or `\n\r\n`).
private func paragraphs(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var start = 0
    var lineStart = 0
    var i = 0
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "\n") {
            let line = bytes[lineStart..<i]
            if line.isEmpty || line.elementsEqual([UInt8(ascii: "\r")]) {
                if lineStart > start { result.append(bytes[start..<lineStart]) }
                start = i + 1
            }
            lineStart = i + 1
        }
        i += 1
    }
    if start < bytes.count { result.append(bytes[start...]) }
    return result
}

// MARK: - The shell's side

/// What a `#` paragraph can do, one character per event, applied to every monitor:
///
///     p / b   later frames come from the primary / the backup
///     c / d   the current source connects / disconnects
///     x       the current source is closed for shutdown
///     t / T   a quarter of staleAfter / twice staleAfter passes, then `check`
///     k       `check` now
///
/// Other characters (newlines included) are ignored. Time is a monotonic clock in nanoseconds
/// that only moves forward, by at most 2 × staleAfter per byte, so it cannot overflow within
/// -max_len: the shell never passes such times, and a trap there would be the harness's fault.
private struct Script {
    static let frameStep: Int64 = 1_000_000
    static let start: Int64 = 1_000_000_000_000
    static let staleAfter = FeedMonitorSettings().staleAfterNanos
    var now = Script.start
    var source = FeedSource.primary
    var used = false

    mutating func apply(_ event: UInt8, to runs: inout [MonitorPair]) {
        used = true
        switch event {
        case UInt8(ascii: "p"): source = .primary
        case UInt8(ascii: "b"): source = .backup
        case UInt8(ascii: "c"): for i in runs.indices { runs[i].connect(source, at: now) }
        case UInt8(ascii: "d"): for i in runs.indices { runs[i].disconnect(source, at: now) }
        case UInt8(ascii: "x"): for i in runs.indices { runs[i].closeForShutdown(source) }
        case UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "k"):
            if event == UInt8(ascii: "t") { now += Script.staleAfter / 4 }
            if event == UInt8(ascii: "T") { now += Script.staleAfter * 2 }
            for i in runs.indices { runs[i].check(at: now) }
        default: break
        }
    }
}

/// Two monitors with the same settings that must agree: `framed` decodes frames itself,
/// `itemised` is handed what the fuzzer decoded, line by line.
private struct MonitorPair {
    let settings: FeedMonitorSettings
    var framed: FeedMonitor
    var itemised: FeedMonitor
    /// Last sequence forwarded per source; forgotten when the source reports a reset.
    var lastForwarded: [FeedSource: UInt64] = [:]
    var missedTicks: [FeedSource: UInt64] = [:]
    var decodeErrors: [FeedSource: UInt64] = [:]

    init(settings: FeedMonitorSettings) {
        self.settings = settings
        framed = FeedMonitor(settings: settings, startedAt: Script.start)
        itemised = framed
    }

    mutating func connect(_ source: FeedSource, at now: Int64) {
        let a = framed.sourceConnected(source, at: now)
        let b = itemised.sourceConnected(source, at: now)
        agree(a, b, "sourceConnected")
    }

    mutating func disconnect(_ source: FeedSource, at now: Int64) {
        let a = framed.sourceDisconnected(source, at: now, reason: "fuzz")
        let b = itemised.sourceDisconnected(source, at: now, reason: "fuzz")
        agree(a, b, "sourceDisconnected")
    }

    mutating func closeForShutdown(_ source: FeedSource) {
        framed.sourceClosedForShutdown(source)
        itemised.sourceClosedForShutdown(source)
        agree([], [], "sourceClosedForShutdown")
    }

    mutating func check(at now: Int64) {
        let a = framed.check(now: now)
        let b = itemised.check(now: now)
        agree(a, b, "check")
    }

    mutating func receive(_ bytes: ArraySlice<UInt8>, _ decoded: Decoded, from source: FeedSource, at now: Int64) {
        let activeBefore = framed.active
        let outcome = framed.receiveFrame(bytes, from: source, at: now, receiveTimeNanos: receiveTime)
        precondition(framed.active == activeBefore, "the active source changed inside a frame")
        precondition(outcome.ticksReceived == decoded.ticks.count, "receiveFrame saw a different number of ticks")
        precondition(outcome.decodeErrors == decoded.errors, "receiveFrame reported different decode errors")
        precondition(source == framed.active || outcome.forwarded.isEmpty, "forwarded ticks of the inactive source")

        var forwarded: [MarketTick] = []
        var directives: [FeedDirective] = []
        for item in decoded.items {
            var step: [FeedDirective] = []
            switch item {
            case .tick(let tick):
                if itemised.receiveTick(tick, from: source, at: now, into: &step) {
                    forwarded.append(tick)
                    checkForwarded(tick, from: source, resetBefore: step)
                }
            case .heartbeat(let heartbeat):
                itemised.receiveHeartbeat(lastSequence: heartbeat.lastSequence, from: source, at: now, into: &step)
            }
            checkDirectives(step)
            directives += step
        }
        precondition(outcome.forwarded == forwarded, "receiveFrame and receiveTick forwarded different ticks")
        precondition(
            counts(outcome.directives) == counts(directives), "receiveFrame and receiveTick gave different directives")
        decodeErrors[source, default: 0] += UInt64(decoded.errorCount)
        agree([], [], "receive")
    }

    private mutating func checkForwarded(_ tick: MarketTick, from source: FeedSource, resetBefore step: [FeedDirective]) {
        let reset = step.contains {
            if case .sequenceReset(let s, _, _) = $0 { s == source } else { false }
        }
        if let last = lastForwarded[source], !reset {
            precondition(tick.sequence > last, "forwarded sequence \(tick.sequence) after \(last) from \(source)")
        }
        lastForwarded[source] = tick.sequence
    }

    private mutating func checkDirectives(_ directives: [FeedDirective]) {
        for directive in directives {
            switch directive {
            case .gapDetected(let source, let from, let to):
                precondition(from <= to && from > 0, "empty gap \(from)…\(to) on \(source)")
            case .sequenceReset(let source, let last, let new):
                precondition(new <= last, "reset that goes up: \(last) → \(new) on \(source)")
                // A new stream: what was forwarded before no longer orders it.
                lastForwarded[source] = nil
            case .switched(let from, let to, _):
                precondition(from != to && settings.hasBackup, "switch \(from) → \(to) with hasBackup \(settings.hasBackup)")
            default:
                break
            }
        }
    }

    /// The two monitors' directives (as multisets: the same events, not necessarily in the same
    /// order within one call) and per-source bookkeeping must match.
    private mutating func agree(_ a: [FeedDirective], _ b: [FeedDirective], _ what: String) {
        precondition(counts(a) == counts(b), "\(what): directives differ:\n\(a)\n\(b)")
        checkDirectives(b)
        precondition(framed.active == itemised.active && framed.switches == itemised.switches, "\(what): active differs")
        for source in FeedSource.allCases {
            var x = framed.state(of: source)
            let y = itemised.state(of: source)
            // Only receiveFrame sees bad lines; its count is checked against the decoder's.
            precondition(x.decodeErrors == decodeErrors[source, default: 0], "\(what): \(source) decode errors")
            x.decodeErrors = 0
            precondition(x == y, "\(what): \(source) state differs:\n\(x)\n\(y)")
            precondition(y.missedTicks >= missedTicks[source, default: 0], "missed-tick count went down: \(y)")
            precondition(y.gaps <= y.missedTicks, "more gaps than missed ticks: \(y)")
            precondition(
                y.ticksForwarded + y.ticksFilteredOut + y.duplicatesDropped <= y.ticksReceived,
                "more ticks forwarded, filtered or dropped than received: \(y)")
            missedTicks[source] = y.missedTicks
        }
    }
}

private func counts(_ directives: [FeedDirective]) -> [FeedDirective: Int] {
    directives.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}
