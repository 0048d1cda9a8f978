import ArgumentParser
import BatonDaemon
import BatonFeed
import BatonReplay
import BatonVenue
import Foundation

/// `baton-replay`: a replica's captured feed through the live engine's strategy, risk gate and
/// order-state code, against the venue simulator's matching model, as fast as the machine goes.
@main
struct BatonReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-replay",
        abstract: "Replay a tick capture through the trading engine against the venue's matching model.",
        discussion: """
            Reads the capture written under feed.capture.dir (date=YYYY-MM-DD/symbol=SYM/<source>-….ticks[.gz]),
            runs it through the strategies and risk limits of a batond configuration file, and writes
            decisions.csv, orders.csv, fills.csv, pnl.csv and summary.json to --out.
            """)

    @Option(help: "A batond configuration file: its trading.* settings are the ones replayed.")
    var config: String

    @Option(help: "The capture directory (a replica's feed.capture.dir).")
    var capture: String

    @Option(help: "Which source's lines to replay: primary or backup.")
    var source: String = "primary"

    @Option(help: "Only these UTC days (YYYY-MM-DD); repeat for more. Default: every day captured.")
    var date: [String] = []

    @Option(help: "Where the CSV files and summary.json go.")
    var out: String = "replay-out"

    @Option(help: "The venue's slippage for orders that take liquidity, in basis points.")
    var slippageBps: Int64 = 1

    @Option(help: "The venue's random seed (partial fills).")
    var seed: UInt64 = 1

    @Option(
        help: ArgumentHelp(
            "Ticks up to this sequence only warm the strategies; the replay leads from the next one.",
            discussion: "To replay what a live leader decided, give the trading_from_sequence of its GET /trading: the last tick it had seen when it began trading."))
    var leadAfterSequence: UInt64?

    func run() throws {
        guard source == "primary" || source == "backup" else {
            throw ValidationError("--source '\(source)' is not a feed source: use primary or backup")
        }
        for day in date where TickCaptureFormatCheck.isDate(day) == false {
            throw ValidationError("--date '\(day)' is not a day: expected YYYY-MM-DD")
        }
        let configuration = try Daemon.loadConfiguration(path: config, environment: ProcessInfo.processInfo.environment)
        guard let trading = configuration.trading else {
            throw ValidationError("\(config): trading is not enabled (trading.enabled: true), so there is nothing to replay")
        }
        let started = ContinuousClock.now
        let session = try TickCaptureReader.read(
            directory: capture, source: source, dates: date.isEmpty ? nil : Set(date),
            symbols: trading.symbols.isEmpty ? nil : Set(trading.symbols))
        guard let first = session.ticks.first else {
            throw ValidationError("\(capture): no \(source) ticks\(date.isEmpty ? "" : " on \(date.joined(separator: ", "))") for \(trading.symbols.joined(separator: ", "))")
        }
        let read = ContinuousClock.now
        var desk = ReplayDesk(
            settings: trading.coreSettings(node: configuration.nodeID.rawValue),
            venue: MatchingEngine.Settings(seed: seed, slippageBps: slippageBps),
            startNanos: first.receiveTimeNanos - 1_000_000_000, leadAfterSequence: leadAfterSequence)
        for tick in session.ticks { desk.replay(tick) }
        let summary = desk.finish()
        let replayed = ContinuousClock.now
        try ReplayReport.write(desk, summary: summary, to: out)
        let span = Double(summary.lastTickNanos - summary.firstTickNanos) / 1e9
        let took = (replayed - read).seconds
        print("replayed \(summary.ticks) ticks (\(session.files) files, \(summary.duplicateTicks) duplicates dropped) spanning \(String(format: "%.1f", span)) s in \(String(format: "%.3f", took)) s: \(took > 0 ? String(format: "%.0f", span / took) : "∞")× real time; read in \(String(format: "%.3f", (read - started).seconds)) s")
        if !session.undecodable.isEmpty {
            print("lines the decoder refused (as the live feed did): \(session.undecodable.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
        }
        print("decisions: \(summary.intents) intents, \(summary.rejections) risk refusals; \(summary.orders) orders, \(summary.fills) fills (\(summary.filledQuantity) filled)")
        for (symbol, result) in summary.symbols.sorted(by: { $0.key < $1.key }) {
            print("  \(symbol): position \(result.position) at \(String(format: "%.4f", Double(result.lastPrice) / 10_000)), realised \(String(format: "%.2f", result.realizedPnL)), unrealised \(String(format: "%.2f", result.unrealizedPnL))")
        }
        print("PnL \(String(format: "%.2f", summary.totalPnL)) (realised \(String(format: "%.2f", summary.realizedPnL))); engine phase at the end: \(summary.phase)")
        print("wrote \(out)/decisions.csv, orders.csv, fills.csv, pnl.csv, summary.json")
    }
}

enum TickCaptureFormatCheck {
    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0].count == 4 && parts[1].count == 2 && parts[2].count == 2
            && parts.allSatisfy { $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
