public import BatonVenue
import Foundation

/// Jepsen's nemesis, on a cluster whose replicas and venue are hosts in network namespaces
/// (`TradingCluster.Options.network`): partitions cut with routes while orders flow, then healed,
/// then the chaos audit (every intent's fate against the venue, duplicates, positions, journals).
/// What each scenario measures: how long until some replica trades again (an order reaches the
/// venue) counted from the cut, and from the heal.
///
/// Not here: packet loss and delay (`tc netem`): the kernels of this machine kind have no
/// `sch_netem`, so they cannot be emulated in the kernel; see doc/deployment.md.
public struct NemesisRun: Sendable {
    public enum Scenario: String, Sendable, CaseIterable {
        /// The leader cannot reach either peer, nor they it; it still reaches the broker.
        case leaderFromPeers = "leader-from-peers"
        /// The leader cannot reach the broker (FIX and feed); the peers can.
        case leaderFromBroker = "leader-from-broker"
        /// {leader} | {the others}: the leader in the minority. With three replicas this is the
        /// leader alone, the same cut as leaderFromPeers but held past several elections.
        case splitLeaderAlone = "split-1|2"
        /// {leader, one follower} | {the other}: the majority keeps the leader; the cut-off
        /// follower must not disturb it when it comes back (PreVote).
        case splitFollowerAlone = "split-2|1"
        /// The leader's packets to its peers are dropped, theirs to it are delivered (a one-way
        /// cut; TCP turns it into a cut both ways for connections, as on a real network).
        case leaderMute = "asymmetric"
        /// The leader is cut off from its peers and healed, again and again, faster than a
        /// failover completes.
        case flapping
    }

    public struct Outcome: Sendable {
        public var scenario: Scenario
        public var leaderBefore: UInt64
        public var leaderAfter: UInt64?
        /// Orders that reached the venue while the cut was in force.
        public var ordersDuringCut: Int
        /// From the cut to the first order a replica other than the cut-off leader sent, if one did
        /// during the cut.
        public var tradedAgainAfterCut: Duration?
        /// From the heal to the first order after it.
        public var tradedAgainAfterHeal: Duration?
        public var cut: Duration
    }

    public var scenarios: [Scenario]
    /// How long each cut is held (flapping: its whole series).
    public var cutTime: Duration
    /// Orders flow this long between scenarios.
    public var tradingTime: Duration
    public var log: @Sendable (String) -> Void

    public init(
        scenarios: [Scenario] = Scenario.allCases, cutTime: Duration = .seconds(3), tradingTime: Duration = .seconds(2),
        log: @escaping @Sendable (String) -> Void = { print($0) }
    ) {
        self.scenarios = scenarios
        self.cutTime = cutTime
        self.tradingTime = tradingTime
        self.log = log
    }

    public func run(on cluster: TradingCluster) async throws -> NemesisSummary {
        guard let network = cluster.options.network else {
            throw ClusterFailure("the nemesis needs a cluster in network namespaces (Options.network)")
        }
        var outcomes: [Outcome] = []
        _ = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        for scenario in scenarios {
            try await Task.sleep(for: tradingTime)
            let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
            let peers = cluster.ids.filter { $0 != leader }.map { "n\($0)" }
            let me = "n\(leader)"
            let before = try await cluster.venueOrders().count
            let cutAt = ContinuousClock.now
            switch scenario {
            case .leaderFromPeers, .splitLeaderAlone:
                try network.isolate(me, from: peers)
            case .leaderFromBroker:
                try network.isolate(me, from: ["venue"])
            case .splitFollowerAlone:
                try network.isolate(peers[0], from: [me] + peers.dropFirst())
            case .leaderMute:
                for peer in peers { try network.cut(me, peer) }
            case .flapping:
                break
            }
            log("nemesis \(scenario.rawValue): n\(leader) led; cut \(network.activeCuts.joined(separator: " "))")
            // During the cut: when does a replica trade again (an order at the venue that the
            // cut-off leader cannot have sent, because its FIX connection or its lease is gone)?
            var tradedAgain: Duration?
            let cutEnd = cutAt + cutTime
            var flapsOn = false
            var nextFlap = cutAt
            while ContinuousClock.now < cutEnd {
                if scenario == .flapping, ContinuousClock.now >= nextFlap {
                    if flapsOn { try network.heal() } else { try network.isolate(me, from: peers) }
                    flapsOn.toggle()
                    nextFlap = ContinuousClock.now + .milliseconds(400)
                }
                if tradedAgain == nil, scenario != .splitFollowerAlone, scenario != .flapping,
                    let orders = try? await cluster.venueOrders(), orders.count > before,
                    let trader = await cluster.tradingLeader(), trader != leader
                {
                    tradedAgain = ContinuousClock.now - cutAt
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let duringCut = (try await cluster.venueOrders().count) - before
            try network.heal()
            let healedAt = ContinuousClock.now
            let afterHeal = try await cluster.venueOrders().count
            var tradedAfterHeal: Duration?
            let deadline = healedAt + .seconds(30)
            while ContinuousClock.now < deadline {
                if let orders = try? await cluster.venueOrders(), orders.count > afterHeal {
                    tradedAfterHeal = ContinuousClock.now - healedAt
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let after = await cluster.tradingLeader()
            let outcome = Outcome(
                scenario: scenario, leaderBefore: leader, leaderAfter: after, ordersDuringCut: duringCut,
                tradedAgainAfterCut: tradedAgain, tradedAgainAfterHeal: tradedAfterHeal, cut: healedAt - cutAt)
            log("nemesis \(scenario.rawValue): \(outcome.line)")
            outcomes.append(outcome)
        }
        // At most one replica traded at any moment: in the venue's arrival order, no order of an
        // older term arrives after one of a newer term, except a new leader's PossResend of an
        // order it inherited (ClOrdID BTN-<term>-<index> names the term that wrote it).
        let orders = try await cluster.venueOrders()
        let overlaps = Self.olderTermsAfterNewer(orders)
        let chaos = try await ChaosAudit.settleAndAudit(cluster, faults: [:])
        return NemesisSummary(outcomes: outcomes, overlaps: overlaps, audit: chaos)
    }

    /// Fresh (not PossResend) venue orders, in arrival order, whose term is below one that
    /// arrived before them: a sign that two leaders' orders interleaved.
    public static func olderTermsAfterNewer(_ orders: [OrderView]) -> [String] {
        func term(_ clOrdID: String) -> UInt64? {
            let parts = clOrdID.split(separator: "-")
            return parts.count >= 3 ? UInt64(parts[parts.count - 2]) : nil
        }
        func sequence(_ orderID: String) -> Int { Int(orderID.filter(\.isNumber)) ?? 0 }
        let arrival = orders.filter { !$0.possResend }.sorted {
            ($0.receivedAt, sequence($0.orderID)) < ($1.receivedAt, sequence($1.orderID))
        }
        var newest: (term: UInt64, clOrdID: String)?
        var found: [String] = []
        for order in arrival {
            guard let t = term(order.clOrdID) else { continue }
            if let newest, t < newest.term {
                found.append("\(order.clOrdID) (term \(t)) arrived at \(order.receivedAt) after \(newest.clOrdID)")
            }
            if t >= (newest?.term ?? 0) { newest = (t, order.clOrdID) }
        }
        return found
    }
}

extension NemesisRun.Outcome {
    public var line: String {
        func ms(_ d: Duration?) -> String { d.map { String(format: "%.0f ms", Double($0.nanosecondsClamped) / 1e6) } ?? "-" }
        return "leader n\(leaderBefore) → \(leaderAfter.map { "n\($0)" } ?? "none"), cut \(ms(cut)), "
            + "orders during cut \(ordersDuringCut), trading again \(ms(tradedAgainAfterCut)) after the cut, "
            + "\(ms(tradedAgainAfterHeal)) after the heal"
    }
}

public struct NemesisSummary: Sendable, CustomStringConvertible {
    public var outcomes: [NemesisRun.Outcome]
    public var overlaps: [String]
    public var audit: ChaosSummary

    /// The audit passes, no two leaders' orders interleaved, and after every heal the cluster
    /// traded again.
    public var passed: Bool {
        audit.passed && overlaps.isEmpty && outcomes.allSatisfy { $0.tradedAgainAfterHeal != nil }
    }

    public var description: String {
        var lines = ["nemesis: \(outcomes.count) scenarios"]
        for outcome in outcomes { lines.append("  \(outcome.scenario.rawValue): \(outcome.line)") }
        lines.append("  orders of an older term after a newer one: \(overlaps.count)")
        for overlap in overlaps.prefix(10) { lines.append("    \(overlap)") }
        lines.append("  " + audit.description)
        lines.append("nemesis result=\(passed ? "PASS" : "FAIL")")
        return lines.joined(separator: "\n")
    }
}
