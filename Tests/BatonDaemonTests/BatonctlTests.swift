import BatonTestCluster
import Foundation
import Testing

/// `batonctl` against real replicas, as the on-call engineer runs it.
@Suite("batonctl", .serialized)
struct BatonctlTests {
    /// Runs batonctl with BATON_ADMIN_TOKEN set to the local cluster's token, or to what
    /// `environment` says (an empty dictionary: no token in the environment at all).
    static func run(_ arguments: [String], environment extra: [String: String]? = nil) throws -> (
        status: Int32, output: String
    ) {
        var environment = ProcessInfo.processInfo.environment
        environment["BATON_ADMIN_TOKEN"] = LocalCluster.token
        if let extra {
            environment["BATON_ADMIN_TOKEN"] = nil
            environment.merge(extra) { _, new in new }
        }
        return try ChildProcesses.run("batonctl", arguments, environment: environment)
    }

    @Test func statusProposeTransferAndVerify() async throws {
        let cluster = try LocalCluster(size: 3)
        try cluster.startAll()
        do {
            let leader = try await cluster.waitForLeader()
            let admin = cluster.replicas.keys.sorted().map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")

            let status = try Self.run(["status", "--admin", admin])
            #expect(status.status == 0, "\(status.output)")
            #expect(status.output.contains("ROLE"))
            #expect(
                status.output.split(separator: "\n").filter { $0.contains(" leader ") }.count == 1, "\(status.output)")
            #expect(status.output.contains("n\(leader)"))

            let propose = try Self.run(["propose", "--admin", admin, "--count", "25", "--size", "100"])
            #expect(propose.status == 0, "\(propose.output)")
            #expect(propose.output.contains("\"count\":25"))

            let target = cluster.replicas.keys.sorted().first { $0 != leader }!
            let transfer = try Self.run(["transfer-leadership", "--admin", admin, "--to", "\(target)"])
            #expect(transfer.status == 0, "\(transfer.output)")
            #expect(try await cluster.waitForLeader() == target)

            // Without the token, actions are refused with a message that says why.
            let refused = try Self.run(
                ["propose", "--admin", admin], environment: ["BATON_ADMIN_TOKEN": "wrong-token-xxxxxxxx"])
            #expect(refused.status != 0)
            #expect(refused.output.contains("bearer token"), "\(refused.output)")

            // The probes and metrics an SRE scrapes answer on every replica.
            let (metricsStatus, metricsBody) = try await cluster.request(target, "/metrics")
            let metrics = String(decoding: metricsBody, as: UTF8.self)
            #expect(metricsStatus == 200)
            for name in [
                "baton_raft_term", "baton_raft_role{", "baton_raft_commit_index", "baton_raft_elections_total",
                "baton_raft_leader_changes_total", "baton_journal_append_seconds_bucket", "baton_peer_connected{",
            ] {
                #expect(metrics.contains(name), "/metrics lacks \(name)")
            }
            #expect(
                metrics.contains("baton_raft_role{node=\"\(target)\",role=\"leader\"} 1"), "\(metrics.prefix(2000))")
            let (healthStatus, _) = try await cluster.request(target, "/healthz")
            #expect(healthStatus == 200)
            let (readyStatus, _) = try await cluster.request(leader, "/readyz")
            #expect(readyStatus == 200)
            let (leaderStatus, _) = try await cluster.request(leader, "/leader")
            #expect(leaderStatus == 503, "the old leader no longer answers /leader with 200")

            for id in cluster.replicas.keys.sorted() { _ = try await cluster.stop(id) }
            for id in cluster.replicas.keys.sorted() {
                let verify = try Self.run(["journal", "verify", "--data-dir", cluster.replicas[id]!.dataDirectory])
                #expect(verify.status == 0, "\(verify.output)")
                #expect(verify.output.hasPrefix("OK"), "\(verify.output)")
            }
            let missing = try Self.run(["journal", "verify", "--data-dir", cluster.directory + "/nowhere"])
            #expect(missing.status != 0)
        } catch {
            Issue.record("\(error)\n\(cluster.logs())")
        }
        await cluster.shutdown()
    }

    @Test func statusShowsUnreachableReplicas() throws {
        let result = try Self.run(["status", "--admin", "http://127.0.0.1:1", "--timeout", "1"])
        #expect(result.output.contains("unreachable"))
        #expect(result.output.contains("no leader right now"))
    }

    /// Bad arguments are refused with what and why, never a trap (issue 10).
    @Test(arguments: [
        (["status", "--admin", ""], "names no replica"),
        (["status", "--admin", ","], "names no replica"),
        (["status", "--timeout", "9223372036854775807"], "between 1 and 3600"),
        (["orders", "--admin", "127.0.0.1:7201"], "not an http(s) URL"),
    ])
    func badArgumentsAreRefusedSayingWhy(arguments: [String], expected: String) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.output.contains(expected), "\(result.output)")
        #expect(!result.output.contains("Fatal error"), "\(result.output)")
    }
}

/// The test scaffolding cleans up after a crashed run (a trap skips every `defer`).
@Suite struct OrphanSweepTests {
    @Test func childrenOfADeadOwnerAreKilledAndOthersAreLeftAlone() throws {
        func spawn(_ path: String, _ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            try process.run()
            return process
        }
        let dead = try spawn("/bin/true", [])
        dead.waitUntilExit()
        let orphan = try spawn("/bin/sleep", ["30"])
        let bystander = try spawn("/bin/sleep", ["30"])
        defer { bystander.terminate(); orphan.terminate() }
        let sleep = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(orphan.processIdentifier)/exe")
        try FileManager.default.createDirectory(atPath: ChildProcesses.registry, withIntermediateDirectories: true)
        // The dead owner recorded the orphan, and a pid that now runs something else.
        try "\(orphan.processIdentifier) \(sleep)\n\(bystander.processIdentifier) /not/what/it/runs\n".write(
            toFile: "\(ChildProcesses.registry)/\(dead.processIdentifier)", atomically: true, encoding: .utf8)
        let killed = ChildProcesses.sweep()
        #expect(killed.contains(orphan.processIdentifier))
        #expect(!killed.contains(bystander.processIdentifier))
        orphan.waitUntilExit()
        #expect(orphan.terminationReason == .uncaughtSignal)
        #expect(bystander.isRunning)
        #expect(!FileManager.default.fileExists(atPath: "\(ChildProcesses.registry)/\(dead.processIdentifier)"))
    }
}
