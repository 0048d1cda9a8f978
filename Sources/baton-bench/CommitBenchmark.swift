import ArgumentParser
import AsyncHTTPClient
import Foundation

/// Commit throughput and latency of 256-byte writes, for Baton (`POST /admin/propose`) and etcd
/// (`POST /v3/kv/put` through its gateway), with the same HTTP/1.1 JSON client.
struct Commit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Commit throughput and latency: open loop at fixed rates, then closed loop with C clients."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Comma-separated systems to measure, in this order: baton, etcd.")
    var target: String = "baton,etcd"

    @Option(help: "Open-loop offered loads in writes/s.")
    var rates: String = "100,500,1000,2000"

    @Option(help: "Closed-loop concurrent clients.")
    var clients: String = "1,8,32,64"

    @Option(help: "Seconds per load level.")
    var seconds: Int = 10

    @Option(help: "Seconds of unrecorded closed-loop warm-up (8 clients) per system.")
    var warmup: Int = 2

    @Option(help: "Entry / value size in bytes.")
    var size: Int = 256

    @Option(help: "The batond executable.")
    var batond: String = ".build/release/batond"

    @Option(help: "The etcd executable.")
    var etcd: String = "/usr/bin/etcd"

    @Option(help: "Copy the replicas' logs into this directory before the scratch directory is deleted.")
    var logs: String?

    struct SystemResult: Codable {
        var system: String
        var levels: [LoadResult]
        /// VmRSS at the end of the run, per process, in KiB.
        var residentKiB: [String: Int]
        /// CPU seconds (user + system) each process used over the whole run, warm-up included.
        var cpuSeconds: [String: Double]
        /// All replicas' CPU time divided by every write they committed (warm-up included).
        var cpuMicrosecondsPerWrite: Double
    }

    struct Report: Codable {
        var machine: [String: String]
        var entryBytes: Int
        var secondsPerLevel: Int
        var systems: [SystemResult]
    }

    func validate() throws {
        for t in target.split(separator: ",") where !["baton", "etcd"].contains(t) {
            throw ValidationError("--target: '\(t)' is not baton or etcd")
        }
        guard (1...120).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 120") }
        let r: [Double] = try list(rates)
        guard r.allSatisfy({ (1...20_000).contains($0) }) else {
            throw ValidationError("--rates must be from 1 to 20000")
        }
        let c: [Int] = try list(clients)
        guard c.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--clients must be from 1 to 256") }
    }

    func run() async throws {
        let rates: [Double] = try list(rates)
        let clients: [Int] = try list(clients)
        let systems = target.split(separator: ",").map(String.init)
        let report = try await withChildCleanup {
            try await withHTTPClient { client in
                var results: [SystemResult] = []
                for system in systems {
                    let scratch = try makeScratchDirectory(base: common.workDir, prefix: "baton-bench-\(system)")
                    say("\n== \(system): \(size)-byte writes, \(seconds) s per level (scratch \(scratch))")
                    let result =
                        system == "baton"
                        ? try await runBaton(directory: scratch, client: client, rates: rates, clients: clients)
                        : try await runEtcd(directory: scratch, client: client, rates: rates, clients: clients)
                    try keepLogs(of: scratch, system: system)
                    ChildProcesses.shared.removeScratch(scratch)
                    results.append(result)
                }
                return Report(
                    machine: machineDescription(), entryBytes: size, secondsPerLevel: seconds, systems: results)
            }
        }
        printComparison(report)
        try writeJSON(report, to: common.json)
    }

    private func runBaton(directory: String, client: HTTPClient, rates: [Double], clients: [Int]) async throws
        -> SystemResult
    {
        let cluster = try BatonCluster(batond: batond, directory: directory, client: client)
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.waitForCommittingLeader()
        let processes = cluster.replicas.map(\.processName)
        let (warmupWrites, levels) = try await runLevels(
            rates: rates, clients: clients, client: client,
            checkAlive: { try ChildProcesses.shared.requireRunning(processes) }
        ) {
            cluster.proposeRequest(to: try await cluster.waitForLeader(), size: size)
        }
        var rss: [String: Int] = [:]
        var cpu: [String: Double] = [:]
        for id in cluster.ids {
            guard let pid = cluster.pid(id) else { continue }
            if let kib = residentKiB(pid: pid) { rss["batond-n\(id)"] = kib }
            if let seconds = cpuSeconds(pid: pid) { cpu["batond-n\(id)"] = seconds }
        }
        return summarize(system: "baton", levels: levels, rss: rss, cpu: cpu, warmupWrites: warmupWrites)
    }

    private func runEtcd(directory: String, client: HTTPClient, rates: [Double], clients: [Int]) async throws
        -> SystemResult
    {
        let cluster = try EtcdCluster(etcd: etcd, directory: directory, client: client)
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.waitForLeader()
        let processes = cluster.members.map(\.processName)
        let (warmupWrites, levels) = try await runLevels(
            rates: rates, clients: clients, client: client,
            checkAlive: { try ChildProcesses.shared.requireRunning(processes) }
        ) {
            cluster.putRequest(to: try await cluster.waitForLeader(), valueSize: size)
        }
        var rss: [String: Int] = [:]
        var cpu: [String: Double] = [:]
        for m in cluster.members {
            guard let pid = cluster.pid(m) else { continue }
            if let kib = residentKiB(pid: pid) { rss["etcd-\(m.name)"] = kib }
            if let seconds = cpuSeconds(pid: pid) { cpu["etcd-\(m.name)"] = seconds }
        }
        return summarize(system: "etcd", levels: levels, rss: rss, cpu: cpu, warmupWrites: warmupWrites)
    }

    /// Warm-up, then every open-loop rate, then every closed-loop client count. The write request is
    /// rebuilt before each level so that it goes to the current leader.
    private func runLevels(
        rates: [Double], clients: [Int], client: HTTPClient, checkAlive: () throws -> Void,
        leaderWrite: () async throws -> WriteRequest
    ) async throws -> (warmupWrites: Int, levels: [LoadResult]) {
        let duration = Duration.seconds(seconds)
        var warmupWrites = 0
        if warmup > 0 {
            warmupWrites = await LoadGenerator(client: client, write: try await leaderWrite())
                .closedLoop(clients: 8, duration: .seconds(warmup)).completed
        }
        say("| load | completed | errors | not sent | writes/s | p50 ms | p99 ms | p99.9 ms | max ms |")
        say("|---|---|---|---|---|---|---|---|---|")
        var levels: [LoadResult] = []
        for rate in rates {
            let generator = LoadGenerator(client: client, write: try await leaderWrite())
            let r = await generator.openLoop(rate: rate, duration: duration)
            say(row(r))
            try checkAlive()
            levels.append(r)
            try await Task.sleep(for: .seconds(1))
        }
        for c in clients {
            let generator = LoadGenerator(client: client, write: try await leaderWrite())
            let r = await generator.closedLoop(clients: c, duration: duration)
            say(row(r))
            try checkAlive()
            levels.append(r)
            try await Task.sleep(for: .seconds(1))
        }
        return (warmupWrites, levels)
    }

    private func summarize(
        system: String, levels: [LoadResult], rss: [String: Int], cpu: [String: Double], warmupWrites: Int
    )
        -> SystemResult
    {
        let writes = warmupWrites + levels.map(\.completed).reduce(0, +)
        let perWrite = cpu.values.reduce(0, +) / Double(max(writes, 1)) * 1e6
        say(
            "resident memory at the end: "
                + rss.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value / 1024) MiB" }.joined(separator: ", ")
        )
        say(
            "CPU over the run: "
                + cpu.sorted { $0.key < $1.key }.map { "\($0.key) \(format($0.value, 1)) s" }.joined(separator: ", ")
                + "; \(format(perWrite, 0)) µs of replica CPU per committed write (\(writes) writes)"
        )
        return SystemResult(
            system: system, levels: levels, residentKiB: rss, cpuSeconds: cpu, cpuMicrosecondsPerWrite: perWrite)
    }

    private func keepLogs(of scratch: String, system: String) throws {
        guard let logs else { return }
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: scratch) where name.hasSuffix(".log") {
            let destination = "\(logs)/\(system)-\(name)"
            try? FileManager.default.removeItem(atPath: destination)
            try FileManager.default.copyItem(atPath: "\(scratch)/\(name)", toPath: destination)
        }
    }

    private func row(_ r: LoadResult) -> String {
        let load = r.mode == "open" ? "open \(Int(r.offeredPerSecond ?? 0))/s" : "closed C=\(r.clients ?? 0)"
        let l = r.latencyMs
        let errors =
            r.errors == 0
            ? "0"
            : "\(r.errors) ("
                + r.errorKinds.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
        return "| \(load) | \(r.completed) | \(errors) | \(r.notSent) | \(format(r.throughputPerSecond, 0)) | "
            + "\(format(l.p50)) | \(format(l.p99)) | \(format(l.p999)) | \(format(l.max)) |"
    }

    private func printComparison(_ report: Report) {
        guard let baton = report.systems.first(where: { $0.system == "baton" }),
            let etcd = report.systems.first(where: { $0.system == "etcd" })
        else { return }
        say("\n== Baton / etcd (same run)")
        say("| load | writes/s Baton | writes/s etcd | ratio | p99 ms Baton | p99 ms etcd | p99 ratio |")
        say("|---|---|---|---|---|---|---|")
        for (b, e) in zip(baton.levels, etcd.levels) {
            let load = b.mode == "open" ? "open \(Int(b.offeredPerSecond ?? 0))/s" : "closed C=\(b.clients ?? 0)"
            say(
                "| \(load) | \(format(b.throughputPerSecond, 0)) | \(format(e.throughputPerSecond, 0)) | "
                    + "\(format(b.throughputPerSecond / e.throughputPerSecond)) | \(format(b.latencyMs.p99)) | "
                    + "\(format(e.latencyMs.p99)) | \(format(b.latencyMs.p99 / e.latencyMs.p99)) |"
            )
        }
        let bestBaton = baton.levels.map(\.throughputPerSecond).max() ?? 0
        let bestEtcd = etcd.levels.map(\.throughputPerSecond).max() ?? 0
        say(
            "replica CPU per committed write: Baton \(format(baton.cpuMicrosecondsPerWrite, 0)) µs, "
                + "etcd \(format(etcd.cpuMicrosecondsPerWrite, 0)) µs, "
                + "ratio \(format(baton.cpuMicrosecondsPerWrite / etcd.cpuMicrosecondsPerWrite))"
        )
        say(
            "peak throughput: Baton \(format(bestBaton, 0))/s, etcd \(format(bestEtcd, 0))/s, "
                + "ratio \(format(bestBaton / bestEtcd))"
        )
    }
}
