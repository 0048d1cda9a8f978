import ArgumentParser
import BatonFeed
import BatonMarketData
import BatonTestCluster
import BatonTrading
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The trading path's benchmarks (doc/benchmarks.md): tick-to-order latency, feed ingest,
/// failover to the first order the venue acknowledges from a new leader, resident memory, and
/// the full chaos run.
struct TradingOptions: ParsableArguments {
    @Option(help: "Symbols traded.")
    var symbols: String = "AAPL,MSFT"
    @Option(help: "MA fast window (short windows cross often, so orders flow).")
    var fastWindow: Int = 3
    @Option(help: "MA slow window.")
    var slowWindow: Int = 8
    @Option(help: "Journal durability of the replicas: full or normal.")
    var durability: String = "full"
    @Option(help: "fsync the FIX session store on every message (venue.store_sync).")
    var fixStoreSync: Bool = true

    func clusterOptions(tickRate: Int) -> TradingCluster.Options {
        var options = TradingCluster.Options()
        options.symbols = symbols.split(separator: ",").map(String.init)
        options.fastWindow = fastWindow
        options.slowWindow = slowWindow
        options.tickRate = tickRate
        options.maxOrdersPerMinute = 1_000_000
        options.maxOrdersPerHour = 60_000_000
        options.logLevel = "notice"
        options.durability = durability
        options.fixStoreSync = fixStoreSync
        return options
    }
}

struct TickToOrder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick-to-order",
        abstract: "Leader tick received → NewOrderSingle written (incl. the quorum commit), per feed rate; and RSS.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var trading: TradingOptions
    @Option(help: "Feed rates (ticks/s over all symbols).")
    var rates: String = "1000,10000"
    @Option(help: "Orders to measure per rate (bounded by --seconds).")
    var orders: Int = 300
    @Option(help: "Longest time per rate, seconds.")
    var seconds: Int = 60

    struct Result: Codable {
        var rate: Int
        var microseconds: LatencySummary
        var venueOrders: Int
        var rssMiB: [String: Double]
    }

    func run() async throws {
        say("machine: \(machineDescription())")
        var results: [Result] = []
        for rate in try list(rates) as [Int] {
            let cluster = try TradingCluster(options: trading.clusterOptions(tickRate: rate))
            killOnSignal(cluster)
            do {
                try await cluster.startAll()
                let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
                // Warm up, then measure only orders sent after it.
                try await Task.sleep(for: .seconds(2))
                let skip = try await samples(cluster, leader).count
                let deadline = ContinuousClock.now + .seconds(seconds)
                var measured: [Int64] = []
                while ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(500))
                    measured = Array(try await samples(cluster, leader).dropFirst(skip))
                    if measured.count >= orders { break }
                }
                var rss: [String: Double] = [:]
                for id in cluster.ids {
                    if let pid = cluster.pid(id), let bytes = BatonTestCluster.ChildProcesses.residentBytes(pid: pid) {
                        rss["n\(id)"] = Double(bytes) / 1_048_576
                    }
                }
                if let pid = cluster.processes.pid("venue"), let bytes = BatonTestCluster.ChildProcesses.residentBytes(pid: pid) {
                    rss["venue"] = Double(bytes) / 1_048_576
                }
                let summary = LatencySummary(measured.prefix(orders).map { Double($0) / 1000 })
                let phases = try await phaseSamples(cluster, leader).suffix(summary.count)
                let names = ["tick→proposed", "proposed→applied (quorum commit)", "applied→written (lease check, FIX store, socket)"]
                for (i, name) in names.enumerated() {
                    let part = LatencySummary(phases.map { Double($0[i]) / 1000 })
                    say("  \(name): p50=\(format(part.p50 / 1000, 3)) ms p99=\(format(part.p99 / 1000, 3)) ms")
                }
                let venueOrders = try await cluster.venueStatistics().orders
                results.append(Result(rate: rate, microseconds: summary, venueOrders: venueOrders, rssMiB: rss))
                say(
                    "tick-to-order at \(rate) ticks/s: n=\(summary.count) p50=\(format(summary.p50 / 1000, 3)) ms "
                        + "p90=\(format(summary.p90 / 1000, 3)) ms p99=\(format(summary.p99 / 1000, 3)) ms "
                        + "max=\(format(summary.max / 1000, 3)) ms (leader n\(leader); venue orders \(venueOrders))")
                say("resident memory at \(rate) ticks/s: " + rss.keys.sorted().map { "\($0)=\(format(rss[$0]!, 1)) MiB" }.joined(separator: " "))
            } catch {
                cluster.shutdown()
                throw error
            }
            cluster.shutdown()
            try? FileManager.default.removeItem(atPath: cluster.directory)
        }
        try writeJSON(results, to: common.json)
    }

    func phaseSamples(_ cluster: TradingCluster, _ leader: UInt64) async throws -> [[Int64]] {
        let (_, body) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/trading/tick-to-order", timeout: 5)
        struct Samples: Decodable { var phases: [[Int64]] }
        return try JSONDecoder().decode(Samples.self, from: body).phases.filter { $0.count == 3 }
    }

    func samples(_ cluster: TradingCluster, _ leader: UInt64) async throws -> [Int64] {
        let (status, body) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/trading/tick-to-order", timeout: 5)
        guard status == 200 else { throw ValidationError("tick-to-order samples: HTTP \(status)") }
        struct Samples: Decodable { var nanoseconds: [Int64] }
        return try JSONDecoder().decode(Samples.self, from: body).nanoseconds
    }
}

struct FeedIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feed-ingest",
        abstract: "Ticks per second one core decodes and runs through the strategy (no network).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Ticks per run.")
    var ticks: Int = 2_000_000
    @Option(help: "Ticks per WebSocket frame.")
    var ticksPerFrame: Int = 50
    @Option(help: "Runs (the best and the median are reported).")
    var runs: Int = 5

    struct Result: Codable {
        var ticksPerSecondDecodeOnly: [Double]
        var ticksPerSecondDecodeAndStrategy: [Double]
    }

    func run() async throws {
        say("machine: \(machineDescription())")
        let symbols = ["AAPL", "MSFT", "NVDA", "AMZN"]
        let frames = FeedIngestBenchmark.makeFrames(
            frames: max(1, ticks / ticksPerFrame), ticksPerFrame: ticksPerFrame, symbols: symbols)
        let total = frames.count * ticksPerFrame
        var decodeOnly: [Double] = []
        var withStrategy: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<runs {
            let start = clock.now
            let forwarded = FeedIngestBenchmark.decodeBenchmark(frames: frames)
            decodeOnly.append(Double(total) / (clock.now - start).seconds)
            precondition(forwarded == total, "the monitor forwarded \(forwarded) of \(total) ticks")

            var monitor = FeedMonitor(settings: FeedMonitorSettings(symbols: Set(symbols)), startedAt: 0)
            _ = monitor.sourceConnected(.primary, at: 0)
            var strategies = Dictionary(
                uniqueKeysWithValues: symbols.map {
                    ($0, MovingAverageCrossover(parameters: CrossoverParameters(symbol: $0)))
                })
            var signals = 0
            var now: Int64 = 0
            let begin = clock.now
            for frame in frames {
                now += 1_000
                let outcome = monitor.receiveFrame(frame, from: .primary, at: now, receiveTimeNanos: now)
                for tick in outcome.forwarded {
                    if strategies[tick.symbol]!.onTick(sequence: tick.sequence, price: tick.price, receivedNanos: now)
                        != nil
                    {
                        signals += 1
                    }
                }
            }
            withStrategy.append(Double(total) / (clock.now - begin).seconds)
            precondition(signals > 0, "the synthetic walk should cross at least once")
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        say(
            "feed ingest, decode + sequence checks: median \(format(median(decodeOnly), 0)) ticks/s, best \(format(decodeOnly.max()!, 0))")
        say(
            "feed ingest, decode + checks + MA(10)/MA(30): median \(format(median(withStrategy), 0)) ticks/s, best \(format(withStrategy.max()!, 0))")
        try writeJSON(Result(ticksPerSecondDecodeOnly: decodeOnly, ticksPerSecondDecodeAndStrategy: withStrategy), to: common.json)
    }
}

struct TradingFailover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trading-failover",
        abstract: "kill -9 (or SIGSTOP) the leader → first order the venue accepts from the new leader, over many faults.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var trading: TradingOptions
    @Option(help: "Leader faults.")
    var kills: Int = 50
    @Option(
        help: """
            kill (SIGKILL: the kernel closes the leader's broker connection at once) or stop (SIGSTOP, \
            SIGCONT after the new leader's first order: the broker holds the paused leader's \
            connection until its heartbeat check drops it).
            """)
    var fault = "kill"
    @Option(help: "Feed rate (ticks/s).")
    var rate: Int = 1000

    struct Result: Codable {
        var milliseconds: LatencySummary
        var duplicates: Int
    }

    func validate() throws {
        guard ["kill", "stop"].contains(fault) else { throw ValidationError("--fault \(fault): use kill or stop") }
    }

    func run() async throws {
        say("machine: \(machineDescription())")
        let cluster = try TradingCluster(options: trading.clusterOptions(tickRate: rate))
        killOnSignal(cluster)
        var samples: [Double] = []
        do {
            try await cluster.startAll()
            for n in 0..<kills {
                let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
                try await Task.sleep(for: .milliseconds(300))
                let before = try await cluster.venueStatistics().sessions[TradingCluster.session]
                let start = ContinuousClock.now
                if fault == "kill" { cluster.kill9(leader) } else { cluster.signal(leader, SIGSTOP) }
                let acknowledged = try await cluster.firstOrderAfterNewLogon(beyond: before, since: start)
                guard let acknowledged else { throw ValidationError("fault \(n + 1): no order from a new leader within 20 s") }
                samples.append(acknowledged.milliseconds)
                say(
                    "\(fault) \(n + 1)/\(kills): n\(leader) \(fault == "kill" ? "killed" : "stopped"); first order from the new "
                        + "leader after \(format(acknowledged.milliseconds, 1)) ms")
                if fault == "kill" { try cluster.start(leader) } else { cluster.signal(leader, SIGCONT) }
                // The next kill must find two healthy survivors: wait until the restarted replica
                // has rebuilt its state from the journal (a restart replays every applied command,
                // which takes longer as the journal grows) and applied what the leader has.
                // Without this, a later kill can land while it is still starting: a double failure.
                let replica = leader
                try await cluster.waitUntil("n\(replica) back and caught up", timeout: .seconds(60)) {
                    guard let current = await cluster.leader(), current != replica,
                        let mine = await cluster.trading(replica), let theirs = await cluster.trading(current)
                    else { return false }
                    return mine.engine.appliedIndex + 20 >= theirs.engine.appliedIndex
                }
                try await Task.sleep(for: .milliseconds(300))
            }
            let duplicates = try await cluster.venueDuplicates().count
            let summary = LatencySummary(samples)
            say(
                "trading failover over \(summary.count) \(fault == "kill" ? "kills" : "stops"): p50=\(format(summary.p50, 1)) ms p90=\(format(summary.p90, 1)) ms "
                    + "p99=\(format(summary.p99, 1)) ms max=\(format(summary.max, 1)) ms; venue duplicate attempts \(duplicates)")
            try writeJSON(Result(milliseconds: summary, duplicates: duplicates), to: common.json)
        } catch {
            cluster.shutdown()
            throw error
        }
        cluster.shutdown()
        try? FileManager.default.removeItem(atPath: cluster.directory)
    }
}

/// Planned hand-overs while orders flow: what the drain costs. Each transfer reports how long
/// the old leader waited for its in-flight orders (`drain.waited_ms`); the order-flow gap is
/// from the transfer request to the first order the venue accepts from the new leader.
struct TradingTransfer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trading-transfer",
        abstract: "Planned leadership transfers while trading: drain wait and order-flow gap, over many transfers.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var trading: TradingOptions
    @Option(help: "Transfers.")
    var transfers: Int = 50
    @Option(help: "Feed rate (ticks/s).")
    var rate: Int = 1000
    @Option(help: "The venue's order gateway latency (ms): orders in flight for this long.")
    var orderLatencyMs: Int = 0

    struct Result: Codable {
        var gapMilliseconds: LatencySummary
        var drainMilliseconds: LatencySummary
        var transfersWithOrdersInFlight: Int
        var refused: Int
        var duplicates: Int
    }

    struct Answer: Decodable {
        struct Drain: Decodable {
            var inFlight: Int
            var waitedMs: Double
        }
        var newLeader: UInt64?
        var drain: Drain
    }

    func run() async throws {
        say("machine: \(machineDescription())")
        var options = trading.clusterOptions(tickRate: rate)
        options.venueOrderLatencyMs = orderLatencyMs
        let cluster = try TradingCluster(options: options)
        killOnSignal(cluster)
        var gaps: [Double] = []
        var drains: [Double] = []
        var withOrders = 0
        var refused = 0
        do {
            try await cluster.startAll()
            for n in 0..<transfers {
                let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
                try await Task.sleep(for: .milliseconds(300))
                let before = try await cluster.venueStatistics().sessions[TradingCluster.session]
                let start = ContinuousClock.now
                let (status, body) = try await cluster.post(
                    "\(cluster.replicas[leader]!.adminURL)/admin/transfer-leadership", timeout: 10)
                guard status == 200 else {
                    refused += 1
                    say("transfer \(n + 1): refused (HTTP \(status)): \(String(decoding: body, as: UTF8.self))")
                    continue
                }
                let answer = try TradingClusterJSON.decoder.decode(Answer.self, from: body)
                drains.append(answer.drain.waitedMs)
                if answer.drain.inFlight > 0 { withOrders += 1 }
                let first = try await cluster.firstOrderAfterNewLogon(beyond: before, since: start)
                guard let first else { throw ValidationError("transfer \(n + 1): no order from the new leader within 20 s") }
                gaps.append(first.milliseconds)
                say(
                    "transfer \(n + 1)/\(transfers): n\(leader) → n\(answer.newLeader ?? 0); drained \(answer.drain.inFlight) "
                        + "order(s) in \(format(answer.drain.waitedMs, 1)) ms; first order from the new leader after "
                        + "\(format(first.milliseconds, 1)) ms")
            }
            let duplicates = try await cluster.venueDuplicates().count
            let gap = LatencySummary(gaps)
            let drain = LatencySummary(drains)
            say(
                "trading transfer over \(gap.count) transfers (gateway \(orderLatencyMs) ms): order-flow gap p50=\(format(gap.p50, 1)) "
                    + "p90=\(format(gap.p90, 1)) p99=\(format(gap.p99, 1)) max=\(format(gap.max, 1)) ms; drain p50=\(format(drain.p50, 1)) "
                    + "p99=\(format(drain.p99, 1)) max=\(format(drain.max, 1)) ms, \(withOrders) with orders in flight; "
                    + "refused \(refused); venue duplicate attempts \(duplicates)")
            try writeJSON(
                Result(
                    gapMilliseconds: gap, drainMilliseconds: drain, transfersWithOrdersInFlight: withOrders, refused: refused,
                    duplicates: duplicates), to: common.json)
        } catch {
            cluster.shutdown()
            throw error
        }
        cluster.shutdown()
        cluster.removeDirectory()
    }
}

enum TradingClusterJSON {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()
}

struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Leader faults while orders flow, then an audit against the venue; prints a summary line.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var trading: TradingOptions
    @Option(help: "Leader faults (kill -9, SIGSTOP/SIGCONT, transfer, feed outage, in rotation).")
    var faults: Int = 100
    @Option(help: "Feed rate (ticks/s).")
    var rate: Int = 600

    func run() async throws {
        var options = trading.clusterOptions(tickRate: rate)
        options.logLevel = "info"
        let cluster = try TradingCluster(options: options)
        killOnSignal(cluster)
        say("chaos: \(faults) faults; cluster in \(cluster.directory)")
        let summary: ChaosSummary
        do {
            try await cluster.startAll()
            summary = try await ChaosRun(faults: faults, log: { say($0) }).run(on: cluster)
        } catch {
            cluster.shutdown()
            say("chaos: run failed (\(error)); logs kept in \(cluster.directory)")
            throw error
        }
        cluster.shutdown()
        say(summary.description)
        guard summary.passed else { throw ExitCode.failure }
        cluster.removeDirectory()
    }
}

/// The trading cluster as hosts in network namespaces (three replicas and the venue, each on its
/// own address, peers over mutual TLS), and the nemesis's partitions while orders flow; then the
/// chaos audit. Needs root. `--scenarios none --hold S` keeps the cluster up for S seconds to
/// look at it (cluster/netns/run.sh).
struct Nemesis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Network partitions (network namespaces, root only) while orders flow, then an audit; prints each scenario and a summary.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var trading: TradingOptions
    @Option(help: "Comma-separated scenarios, 'all' or 'none': \(NemesisRun.Scenario.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scenarios: String = "all"
    @Option(help: "How long each partition is held, seconds (the broker hand-over needs ~4 s: see doc/trading.md).")
    var cut: Double = 6
    @Option(help: "Rounds of all the scenarios.")
    var rounds: Int = 1
    @Option(help: "Feed rate (ticks/s).")
    var rate: Int = 400
    @Option(help: "venue.hand_over_after_ms of the replicas: a leader cut off from the broker hands over after this long.")
    var handOverAfter: Int = 1500
    @Option(help: "Keep the cluster up this many seconds after the scenarios (0: stop at once), to look at it.")
    var hold: Int = 0

    func run() async throws {
        if let why = NetworkNamespaces.unavailable() { throw ValidationError("nemesis: \(why)") }
        let chosen: [NemesisRun.Scenario]
        switch scenarios {
        case "all": chosen = NemesisRun.Scenario.allCases
        case "none": chosen = []
        default:
            chosen = try scenarios.split(separator: ",").map { name in
                guard let scenario = NemesisRun.Scenario(rawValue: String(name)) else {
                    throw ValidationError("--scenarios: '\(name)' is not one of \(NemesisRun.Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return scenario
            }
        }
        guard (1...20).contains(rounds), cut > 0, cut <= 60, (0...86_400).contains(hold) else {
            throw ValidationError("--rounds 1…20, --cut up to 60 s, --hold up to 86400 s")
        }
        let network = try NetworkNamespaces(hosts: ["n1", "n2", "n3", "venue"])
        var options = trading.clusterOptions(tickRate: rate)
        options.logLevel = "info"
        options.network = network
        options.brokerHandOverAfterMs = handOverAfter
        let cluster = try TradingCluster(options: options)
        ChildProcesses.shared.onSignal {
            cluster.shutdown()
            network.destroy()
        }
        ChildProcesses.shared.installSignalHandlers()
        say("nemesis: hosts \(network.hosts.map { "\($0)=\(network.address($0))" }.joined(separator: " ")); cluster in \(cluster.directory)")
        let summary: NemesisSummary?
        do {
            try await cluster.startAll()
            let leader = try await cluster.waitForTradingLeader(timeout: .seconds(60))
            say("nemesis: n\(leader) trades; admin \(cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ","))")
            summary = chosen.isEmpty ? nil : try await NemesisRun(
                scenarios: Array(repeating: chosen, count: rounds).flatMap { $0 }, cutTime: .milliseconds(Int64(cut * 1000)),
                log: { say($0) }
            ).run(on: cluster)
            if hold > 0 {
                say("nemesis: holding the cluster for \(hold) s (Ctrl-C stops it); BATON_ADMIN_URLS=\(cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")) BATON_ADMIN_TOKEN=\(TradingCluster.token)")
                try await Task.sleep(for: .seconds(hold))
            }
        } catch {
            cluster.shutdown()
            network.destroy()
            say("nemesis: run failed (\(error)); logs kept in \(cluster.directory)")
            throw error
        }
        cluster.shutdown()
        network.destroy()
        guard let summary else {
            cluster.removeDirectory()
            return
        }
        say(summary.description)
        guard summary.passed else { throw ExitCode.failure }
        cluster.removeDirectory()
    }
}

extension Duration {
    var seconds: Double { milliseconds / 1000 }
}

/// Ctrl-C (or SIGTERM) during a trading benchmark kills the cluster's replicas and venues too.
func killOnSignal(_ cluster: TradingCluster) {
    ChildProcesses.shared.onSignal { cluster.shutdown() }
    ChildProcesses.shared.installSignalHandlers()
}
