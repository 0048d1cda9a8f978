import BatonTestCluster
import Foundation
import Testing

/// A canary on real replicas: its state is in the replicated journal, so a leader SIGKILLed in
/// the middle of a rollout hands the next leader the same step and the same measured checks,
/// and that leader finishes the rollout.
@Suite(.serialized) struct CanaryProcessTests {
    /// GET /canary of a replica, as JSON.
    static func canary(_ cluster: TradingCluster, _ id: UInt64) async throws -> [String: Any] {
        let (status, body) = try await cluster.get("\(cluster.replicas[id]!.adminURL)/canary", timeout: 3)
        guard status == 200, let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw ClusterFailure("n\(id) /canary: HTTP \(status) \(String(decoding: body, as: UTF8.self).prefix(400))")
        }
        return object
    }

    /// Each check as canonical JSON text, so that two replicas' checks compare field by field.
    static func checks(_ canary: [String: Any]) throws -> [String] {
        try (canary["checks"] as? [Any] ?? []).map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    @Test func aCanaryContinuesAtItsStepWhenTheLeaderIsKilledAndTheNextLeaderFinishesIt() async throws {
        // Limits no loopback venue breaks: the test is about where the rollout continues, not
        // about the verdicts (CanaryTests judges those).
        let limits = """
            trading.canary.max_slippage_bps: 10000
            trading.canary.min_fill_permille: 0
            trading.canary.max_reject_permille: 1000
            trading.canary.max_order_rate_percent: 100000
            trading.canary.max_risk_refusals: 1000000
            trading.canary.max_pnl_shortfall: 100000
            trading.canary.kill_drawdown: 1000000
            """
        let cluster = try TradingCluster(options: TradingProcessTests.options { $0.extraConfig = limits })
        var passed = false
        defer {
            cluster.shutdown()
            if passed { cluster.removeDirectory() } else { print("canary failover: logs kept in \(cluster.directory)") }
        }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        let start = try BatonctlTests.run(
            [
                "canary", "start", "--admin", admin, "--strategy", "ma-crossover", "--version", "2",
                "--param", "fast_window=4", "--param", "slow_window=10", "--steps", "25,50,75,100", "--interval", "6s",
                "--max-failed-checks", "2", "--reason", "process test: v2 beside v1",
            ],
            environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(start.status == 0, "\(start.output)")
        #expect(start.output.contains("running, step 1/4 at 25%"), "\(start.output)")

        // Step 2 begins with the first passed check; the leader dies right after it.
        try await cluster.waitUntil("the canary at step 2", timeout: .seconds(30), every: .milliseconds(20)) {
            (try? await Self.canary(cluster, leader))?["step"] as? Int == 2
        }
        let before = try await Self.canary(cluster, leader)
        cluster.kill9(leader)
        let beforeChecks = try Self.checks(before)
        #expect(beforeChecks.count == 1 && before["status"] as? String == "running", "\(before)")

        let next = try await cluster.waitForTradingLeader(timeout: .seconds(20))
        #expect(next != leader)
        let after = try await Self.canary(cluster, next)
        // The interval (6 s) has not run out since step 2 began: the next leader is at step 2
        // with the dead leader's check, measurements and all.
        #expect(after["step"] as? Int == 2 && after["percent"] as? Int == 50, "\(after)")
        #expect(after["status"] as? String == "running")
        #expect(try Self.checks(after) == beforeChecks, "the same checks from the journal")

        try await cluster.waitUntil("the canary promoted", timeout: .seconds(60), every: .milliseconds(200)) {
            (try? await Self.canary(cluster, next))?["status"] as? String == "promoted"
        }
        let done = try await Self.canary(cluster, next)
        let doneChecks = try Self.checks(done)
        #expect(doneChecks.count == 4, "one passed check per step: \(doneChecks)")
        #expect(doneChecks.first == beforeChecks.first, "the first step's check is the dead leader's")
        let decisions = (done["decisions"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
        #expect(decisions.first == "start" && decisions.last == "promote", "\(decisions)")
        // Both versions traded, every order attributed, none sent twice.
        let orders = try await cluster.orders(next)
        #expect(orders.contains { $0.strategyVersion == "2" } && orders.contains { $0.strategyVersion != "2" })
        #expect(try await cluster.venueDuplicates().isEmpty)
        let status = try BatonctlTests.run(["canary", "status", "--admin", admin], environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(status.status == 0 && status.output.contains("promoted, step 4/4 at 100%"), "\(status.output)")
        passed = true
    }
}
