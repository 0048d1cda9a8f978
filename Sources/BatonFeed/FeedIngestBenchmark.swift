import BatonMarketData

/// The feed's ingest path without the network, for `baton-bench` and for profiling: the same
/// `FeedMonitor.receiveFrame` (TickCodec decode, sequence checks, symbol filter, forwarding) that
/// `MarketFeedClient` runs on every frame.
public enum FeedIngestBenchmark {
    /// `frames` frames of `ticksPerFrame` trade lines each, sequences from 1, cycling `symbols`.
    public static func makeFrames(
        frames: Int, ticksPerFrame: Int, symbols: [String] = ["AAPL", "MSFT", "NVDA", "AMZN"]
    ) -> [[UInt8]] {
        let symbols = symbols.isEmpty ? ["AAPL"] : symbols
        var sequence: UInt64 = 0
        var result: [[UInt8]] = []
        result.reserveCapacity(frames)
        for _ in 0..<frames {
            var frame: [UInt8] = []
            frame.reserveCapacity(ticksPerFrame * 64)
            for _ in 0..<ticksPerFrame {
                sequence += 1
                let price = 1_872_500 + Int64(sequence % 1000)
                TickCodec.appendTrade(
                    MarketTick(
                        sequence: sequence, symbol: symbols[Int(sequence % UInt64(symbols.count))], price: price,
                        size: 100, bid: price - 100, ask: price + 100,
                        exchangeTimeNanos: 1_767_225_600_000_000_000 + Int64(sequence) * 20_000),
                    to: &frame)
            }
            result.append(frame)
        }
        return result
    }

    /// Feeds `frames` to a fresh monitor as the primary (the active source) and returns how many
    /// ticks it forwarded. The caller times it.
    public static func decodeBenchmark(frames: [[UInt8]], symbols: Set<String> = []) -> Int {
        var monitor = FeedMonitor(settings: FeedMonitorSettings(symbols: symbols), startedAt: 0)
        _ = monitor.sourceConnected(.primary, at: 0)
        var forwarded = 0
        var now: Int64 = 0
        for frame in frames {
            now += 1_000
            let outcome = monitor.receiveFrame(frame, from: .primary, at: now, receiveTimeNanos: now)
            forwarded += outcome.forwarded.count
        }
        return forwarded
    }
}
