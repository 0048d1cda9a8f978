@_spi(Testing) import BatonJournal
import BatonMarketData
import BatonTestCluster
import BatonTrading
import Foundation
import RaftCore
import Testing

/// baton-replay held to the live cluster: the leader's journaled decisions for a captured
/// session equal what `baton-replay` decides on the leader's own capture of it.
@Suite(.serialized) struct ReplayParityProcessTests {
    /// One decision as both sides can state it: the tick that decided it and what it decided.
    /// ClOrdIDs differ on purpose (they come from log positions) and so do the risk gate's words
    /// about rate windows (each side's clock), so neither is compared.
    struct Decision: Hashable, CustomStringConvertible {
        var symbol: String
        var tickSequence: UInt64
        var tickPrice: String
        var tickReceivedNanos: Int64
        var direction: String
        var strategy: String
        var version: String
        var outcome: String
        var side: String
        var quantity: String
        var kind: String
        var description: String {
            "\(symbol)#\(tickSequence)@\(tickPrice) \(direction) \(strategy) v\(version) \(outcome) \(side) \(quantity) \(kind)"
        }
    }

    /// The replay's decisions.csv. Every column before the last (the risk text, which may be
    /// quoted) is a plain field.
    static func replayDecisions(_ path: String) throws -> [Decision] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let header = lines.first.map { $0.split(separator: ",").map(String.init) } ?? []
        func column(_ name: String) throws -> Int {
            guard let at = header.firstIndex(of: name) else { throw ClusterFailure("\(path): no column \(name) in \(header)") }
            return at
        }
        let at = try ["symbol", "tick_sequence", "tick_price", "tick_received_ns", "direction", "strategy", "version", "outcome", "side", "quantity", "kind"].map(column)
        return try lines.dropFirst().map { line in
            let fields = line.split(separator: ",", maxSplits: header.count - 1, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == header.count, let sequence = UInt64(fields[at[1]]), let received = Int64(fields[at[3]]) else {
                throw ClusterFailure("\(path): unreadable row \(line)")
            }
            return Decision(
                symbol: fields[at[0]], tickSequence: sequence, tickPrice: fields[at[2]], tickReceivedNanos: received,
                direction: fields[at[4]], strategy: fields[at[5]], version: fields[at[6]], outcome: fields[at[7]],
                side: fields[at[8]], quantity: fields[at[9]], kind: fields[at[10]])
        }
    }

    /// The committed trading commands of a stopped replica's journal, with their log positions.
    static func journaledCommands(_ directory: String) throws -> [(term: UInt64, index: UInt64, command: TradingCommand)] {
        let recovered = try RaftJournal(directory: directory).load()
        return try recovered.state.entries.filter { $0.index <= recovered.state.hardState.commit }.compactMap { entry in
            guard case .command(let payload) = entry.payload, let command = try TradingCommand.decode(payload) else { return nil }
            return (entry.term, entry.index, command)
        }
    }

    /// When the live leader had an order open on each symbol: from its decision to its terminal
    /// report's receipt, plus `margin` for that report's commit and apply. A tick received in
    /// one met an order in flight live, while the replay's venue had filled it at the deciding
    /// tick: a difference of timing, not of decision code. With no terminal report, open to the end.
    static func openStretches(
        _ journal: [(term: UInt64, index: UInt64, command: TradingCommand)], margin: Int64
    ) -> [String: [ClosedRange<Int64>]] {
        var settled: [String: Int64] = [:]
        for (_, _, command) in journal {
            if case .execution(let report) = command, ["2", "4", "8", "C"].contains(report.ordStatus) {
                settled[report.clOrdID] = report.receivedAtNanos
            }
        }
        var stretches: [String: [ClosedRange<Int64>]] = [:]
        for (term, index, command) in journal {
            guard case .orderIntent(let intent) = command else { continue }
            let id = makeClOrdID(prefix: intent.clOrdIDPrefix, term: term, index: index)
            let end = settled[id].map { max($0 + margin, intent.decidedAtNanos) } ?? .max
            stretches[intent.signal.symbol, default: []].append(intent.decidedAtNanos...end)
        }
        return stretches
    }

    static func decision(_ command: TradingCommand) -> Decision? {
        func price(_ units: Int64) -> String { TickCodec.formatPrice(units) }
        switch command {
        case .orderIntent(let intent):
            let s = intent.signal
            return Decision(
                symbol: s.symbol, tickSequence: s.tickSequence, tickPrice: price(s.tickPrice), tickReceivedNanos: s.tickReceivedNanos,
                direction: s.direction.rawValue, strategy: s.strategy, version: s.strategyVersion, outcome: "intent",
                side: intent.side.rawValue, quantity: "\(intent.quantity)", kind: intent.kind.rawValue)
        case .riskRejection(let rejection):
            let s = rejection.signal
            return Decision(
                symbol: s.symbol, tickSequence: s.tickSequence, tickPrice: price(s.tickPrice), tickReceivedNanos: s.tickReceivedNanos,
                direction: s.direction.rawValue, strategy: s.strategy, version: s.strategyVersion, outcome: "rejected",
                side: "", quantity: "", kind: "")
        default:
            return nil
        }
    }

    @Test func theLeadersJournaledDecisionsEqualTheReplayOfItsOwnCapture() async throws {
        // Ticks far enough apart that each order is normally filled before the symbol's next
        // tick (the replay's venue fills at the tick that decided); where a loaded machine
        // stretched one live, the comparison ends before it (`openStretches`).
        let cluster = try TradingCluster(
            options: TradingProcessTests.options {
                $0.captureFeed = true
                $0.tickRate = 20
                $0.fastWindow = 3
                $0.slowWindow = 8
                // No source switch on a loaded machine: the leader trades on the primary only.
                $0.feedStaleAfterMs = 3000
                $0.maxOrdersPerMinute = 10_000
                $0.maxOrdersPerHour = 100_000
            })
        var passed = false
        defer {
            cluster.shutdown()
            if passed { cluster.removeDirectory() } else { print("replay parity: logs kept in \(cluster.directory)") }
        }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        let start = try #require(await cluster.trading(leader)?.engine.tradingFromSequence, "the leader says where it began trading")
        try await cluster.waitUntil("twenty fills at the venue", timeout: .seconds(90)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 20
        }
        try await TradingProcessTests.settle(cluster, leader: leader)
        let view = try #require(await cluster.trading(leader))
        #expect(view.engine.phase == "trading", "no failover: n\(leader) still leads")
        #expect(view.engine.tradingFromSequence == start, "n\(leader) began trading once")
        #expect(view.feed.switches == 0 && view.feed.active == "primary", "\(view.feed)")
        let (_, metrics) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/metrics")
        let dropped = String(decoding: metrics, as: UTF8.self).split(separator: "\n").filter {
            $0.hasPrefix("baton_feed_dropped_ticks_total") || $0.hasPrefix("baton_capture_dropped_lines_total")
        }
        #expect(dropped.allSatisfy { $0.hasSuffix(" 0") }, "nothing dropped between feed, strategy and capture: \(dropped)")
        // A clean stop writes out the capture's last lines and closes the journal.
        await cluster.stopReplicas()

        let data = cluster.replicas[leader]!.dataDirectory
        let journal = try Self.journaledCommands(data)
        let commands = journal.map(\.command)
        let pausedAt = try #require(
            commands.compactMap { command -> Int64? in
                if case .tradingPaused(true, _, _, let at) = command { return at }
                return nil
            }.first, "the settle's pause is journaled")
        // Ticks received well before the pause were decided before it; later ones the live
        // leader ignored (paused) while the replay, which knows nothing of the pause, decides.
        let before = pausedAt - 250_000_000
        let allLive = commands.compactMap(Self.decision)

        let out = cluster.directory + "/replay"
        let run = try ChildProcesses.run(
            "baton-replay",
            ["--config", cluster.replicas[leader]!.configPath, "--capture", data + "/capture", "--source", "primary",
             "--out", out, "--lead-after-sequence", "\(start)"])
        #expect(run.status == 0, "\(run.output)")
        let allReplayed = try Self.replayDecisions(out + "/decisions.csv")
        var live = allLive.filter { $0.tickReceivedNanos < before }
        var replayed = allReplayed.filter { $0.tickReceivedNanos < before }
        // Where the two first differ, the difference must be one of timing: a decision, on
        // either side, on a tick that met the live leader's order still open. The comparison
        // then ends there, and everything before it must be equal and long enough to matter.
        let stretches = Self.openStretches(journal, margin: 250_000_000)
        func metAnOpenOrder(_ decision: Decision?) -> Bool {
            guard let decision else { return false }
            return stretches[decision.symbol, default: []].contains { $0.contains(decision.tickReceivedNanos) }
        }
        var ending = "the pause"
        if let first = (0..<max(live.count, replayed.count)).first(where: { live[safe: $0] != replayed[safe: $0] }) {
            let differing = [live[safe: first], replayed[safe: first]]
            #expect(
                differing.contains(where: metAnOpenOrder),
                "decision \(first) differs and met no live order in flight: live \(differing[0].map(\.description) ?? "none"), replay \(differing[1].map(\.description) ?? "none")\n\(run.output)")
            let cut = differing.compactMap { $0?.tickReceivedNanos }.min() ?? before
            live = live.filter { $0.tickReceivedNanos < cut }
            replayed = replayed.filter { $0.tickReceivedNanos < cut }
            ending = "decision \(first), where a signal met a live order in flight"
        }

        print("replay parity: n\(leader) traded from tick \(start); \(live.count) journaled decisions (\(live.filter { $0.outcome == "intent" }.count) intents) before \(ending), replay \(replayed.count); \(run.output.split(separator: "\n").first ?? "")")
        #expect(live.filter { $0.outcome == "intent" }.count >= 10, "too few decisions before the comparison ended: \(live)")
        #expect(replayed == live)
        passed = replayed == live
    }
}

fileprivate extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
