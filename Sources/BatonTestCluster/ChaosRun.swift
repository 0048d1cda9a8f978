import BatonJournal
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Leader faults while orders flow, then an audit against the venue's record (ARCHITECTURE §10,
/// "process" layer): kill -9, SIGSTOP beyond the election timeout then SIGCONT, forced transfer,
/// and a primary feed outage, in rotation.
public struct ChaosRun: Sendable {
    public enum Fault: String, Sendable, CaseIterable {
        case kill9 = "kill-9"
        case stop = "sigstop"
        case transfer
        case feedOutage = "feed-outage"
    }

    public var faults: Int
    /// Orders flow this long between faults.
    public var tradingTime: Duration
    /// SIGSTOP lasts this long (beyond the election timeout's upper bound, 600 ms).
    public var stopTime: Duration
    /// A killed replica is restarted after this long.
    public var restartAfter: Duration
    public var feedOutage: Duration
    public var log: @Sendable (String) -> Void

    public init(
        faults: Int, tradingTime: Duration = .milliseconds(700), stopTime: Duration = .milliseconds(1000),
        restartAfter: Duration = .milliseconds(800), feedOutage: Duration = .milliseconds(1200),
        log: @escaping @Sendable (String) -> Void = { print($0) }
    ) {
        self.faults = faults
        self.tradingTime = tradingTime
        self.stopTime = stopTime
        self.restartAfter = restartAfter
        self.feedOutage = feedOutage
        self.log = log
    }

    /// Runs the faults on a started cluster, then settles and audits it.
    public func run(on cluster: TradingCluster) async throws -> ChaosSummary {
        var counts: [Fault: Int] = [:]
        _ = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        for n in 0..<faults {
            let fault = Fault.allCases[n % Fault.allCases.count]
            try await Task.sleep(for: tradingTime)
            guard let leader = await cluster.leader() else {
                log("fault \(n + 1): no leader right now; waiting")
                _ = try await cluster.waitForTradingLeader(timeout: .seconds(30))
                continue
            }
            switch fault {
            case .kill9:
                cluster.kill9(leader)
                try await Task.sleep(for: restartAfter)
                try cluster.start(leader)
            case .stop:
                cluster.signal(leader, SIGSTOP)
                try await Task.sleep(for: stopTime)
                cluster.signal(leader, SIGCONT)
            case .transfer:
                do {
                    try await cluster.transferLeadership()
                } catch {
                    log("fault \(n + 1): transfer refused (\(error)); counted, cluster goes on")
                }
            case .feedOutage:
                try await cluster.pauseFeed(seconds: Double(feedOutage.nanosecondsClamped) / 1e9)
                try await Task.sleep(for: feedOutage)
            }
            counts[fault, default: 0] += 1
            if (n + 1) % 10 == 0 || n + 1 == faults {
                let venue = try? await cluster.venueStatistics()
                log(
                    "chaos: \(n + 1)/\(faults) faults; venue orders \(venue?.orders ?? -1), duplicate attempts \(venue?.duplicateAttempts ?? -1)"
                )
            }
            // Each fault hits a leader that has finished taking over.
            _ = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        }
        return try await ChaosAudit.settleAndAudit(cluster, faults: counts)
    }
}

public struct ChaosSummary: Sendable, CustomStringConvertible {
    public var faults: [ChaosRun.Fault: Int]
    public var committedIntents: Int
    public var venueOrders: Int
    public var duplicateAttempts: Int
    /// Orders the venue refused as stale (written by a replica after it could have lost its lease).
    public var staleOrders: Int
    /// Intents neither terminal nor reconciled after settling.
    public var unresolvedIntents: Int
    /// Intents the venue never received (after settling, should be 0: each is sent or re-sent).
    public var intentsMissingAtVenue: Int
    public var resentWithPossResend: Int
    public var reconciledOrders: Int
    public var positionsMatch: Bool
    public var positionDetail: String
    public var journalsVerified: Int
    public var replicas: Int
    public var fills: Int

    public var passed: Bool {
        duplicateAttempts == 0 && unresolvedIntents == 0 && intentsMissingAtVenue == 0 && positionsMatch
            && journalsVerified == replicas
    }

    public var description: String {
        let faultText = ChaosRun.Fault.allCases.map { "\($0.rawValue)=\(faults[$0, default: 0])" }.joined(separator: " ")
        let total = faults.values.reduce(0, +)
        return "chaos summary: faults=\(total) (\(faultText)) intents=\(committedIntents) venue_orders=\(venueOrders) "
            + "fills=\(fills) duplicates=\(duplicateAttempts) stale_refused=\(staleOrders) unresolved=\(unresolvedIntents) "
            + "missing_at_venue=\(intentsMissingAtVenue) reconciled=\(reconciledOrders) "
            + "resent_possresend=\(resentWithPossResend) positions=\(positionsMatch ? "match" : "MISMATCH \(positionDetail)") "
            + "journals_verified=\(journalsVerified)/\(replicas) result=\(passed ? "PASS" : "FAIL")"
            + (passed || positionDetail.isEmpty ? "" : " detail: \(positionDetail)")
    }
}

public enum ChaosAudit {
    /// Lets the cluster finish what is in flight, then compares every replica with the venue,
    /// stops the replicas and verifies their journals.
    public static func settleAndAudit(_ cluster: TradingCluster, faults: [ChaosRun.Fault: Int]) async throws
        -> ChaosSummary
    {
        // Every replica running, one trading leader, and no open order left on it.
        for id in cluster.ids where !cluster.isRunning(id) { try cluster.start(id) }
        var duplicateDetail: [String] = []
        let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        // Stop new orders so the books can settle; the pause is itself journaled.
        _ = try? await cluster.post("\(cluster.replicas[leader]!.adminURL)/admin/trading/pause", body: "{\"reason\":\"chaos audit\"}")
        try await cluster.waitUntil("every order settled on every replica", timeout: .seconds(30), every: .milliseconds(200)) {
            var applied: Set<UInt64> = []
            for id in cluster.ids {
                guard let view = await cluster.trading(id), view.engine.openOrders == 0 else { return false }
                applied.insert(view.engine.appliedIndex)
            }
            return applied.count == 1
        }
        let intents = try await cluster.orders(leader)
        let venueOrders = try await cluster.venueOrders()
        let duplicates = try await cluster.venueDuplicates()
        for d in duplicates {
            duplicateDetail.append(
                "duplicate \(d.clOrdID): first from \(d.originalSession) at \(d.originalReceivedAt), again from \(d.session) at \(d.receivedAt) (PossResend=\(d.possResend))")
        }
        let statistics = try await cluster.venueStatistics()
        let venuePositions = try await cluster.venuePositions()
        let atVenue = Set(venueOrders.map(\.clOrdID))
        var positionsMatch = true
        var detail: [String] = []
        for id in cluster.ids {
            let replica = try await cluster.positions(id).filter { $0.value != 0 }
            if replica != venuePositions {
                positionsMatch = false
                detail.append("n\(id)=\(replica) venue=\(venuePositions)")
            }
        }
        let terminal: Set<String> = ["filled", "canceled", "rejected", "expired"]
        let unresolved = intents.filter { !terminal.contains($0.status) && $0.reconciledInTerm == nil }.count
        await cluster.stopReplicas()
        var verified = 0
        for id in cluster.ids {
            do {
                _ = try RaftJournal.verify(directory: cluster.replicas[id]!.dataDirectory)
                verified += 1
            } catch {
                detail.append("n\(id) journal: \(error)")
            }
        }
        return ChaosSummary(
            faults: faults, committedIntents: intents.count, venueOrders: venueOrders.count,
            duplicateAttempts: duplicates.count, staleOrders: statistics.staleOrders, unresolvedIntents: unresolved,
            intentsMissingAtVenue: intents.filter { !atVenue.contains($0.clOrdId) }.count,
            resentWithPossResend: intents.filter(\.possResend).count,
            reconciledOrders: intents.filter { $0.reconciledInTerm != nil }.count, positionsMatch: positionsMatch,
            positionDetail: (detail + duplicateDetail).joined(separator: "; "), journalsVerified: verified, replicas: cluster.ids.count,
            fills: statistics.fills)
    }
}
