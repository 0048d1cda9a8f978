import BatonJournal
public import BatonVenue
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
        /// The broker's side of the FIX connection goes away without a Logout.
        case fixDrop = "fix-drop"
        /// The leader stops itself after its lease check passed and before the write (the debug
        /// hook `stop-before-write`), and is continued after `stopTime`.
        case stopInWrite = "sigstop-in-write"
        /// kill -9 of the venue, back after `venueDown` with its book and sessions.
        case brokerRestart = "broker-restart"
    }

    public var faults: Int
    /// Orders flow this long between faults.
    public var tradingTime: Duration
    /// SIGSTOP lasts this long (beyond the election timeout's upper bound, 600 ms).
    public var stopTime: Duration
    /// A killed replica is restarted after this long.
    public var restartAfter: Duration
    public var feedOutage: Duration
    public var venueDown: Duration = .milliseconds(300)
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
        // Every fault is injected: a moment without a leader (an election under load) waits
        // for the next one and tries that fault again, at most `faults` times in all.
        var n = 0
        var skipped = 0
        while n < faults {
            let fault = Fault.allCases[n % Fault.allCases.count]
            try await Task.sleep(for: tradingTime)
            guard let leader = await cluster.leader() else {
                skipped += 1
                guard skipped <= faults else { throw ClusterFailure("chaos: no leader at \(skipped) fault times; gave up") }
                log("fault \(n + 1): no leader right now; waiting, then this fault again")
                _ = try await cluster.waitForTradingLeader(timeout: .seconds(30))
                continue
            }
            defer { n += 1 }
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
            case .fixDrop:
                try await cluster.dropFIXConnections()
            case .brokerRestart:
                try await cluster.restartVenue(down: venueDown)
            case .stopInWrite:
                try await cluster.armKill(leader, when: "stop-before-write")
                let deadline = ContinuousClock.now + .seconds(5)
                while !cluster.isStopped(leader), ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                if cluster.isStopped(leader) {
                    try await Task.sleep(for: stopTime)
                    cluster.signal(leader, SIGCONT)
                } else {
                    log("fault \(n + 1): n\(leader) wrote no order within 5 s; disarmed")
                    try? await cluster.armKill(leader, when: "none")
                }
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
    /// Committed intents by fate (ChaosAudit.Fate); every intent has exactly one.
    public var executed: Int
    public var rejectedAtVenue: Int
    /// Intents with no fate: not executed once, not rejected with the venue's reason journaled.
    /// Each is listed in `fatelessDetail` and in the run directory's `chaos-audit.txt`.
    public var withoutFate: Int
    public var fatelessDetail: [String]
    /// Venue orders that no committed intent accounts for.
    public var orphanVenueOrders: Int
    /// Replicas whose journal disagrees with the leader's about some order's status or fills.
    public var journalDisagreements: [String]
    public var resentWithPossResend: Int
    public var reconciledOrders: Int
    public var positionsMatch: Bool
    public var positionDetail: String
    public var journalsVerified: Int
    public var replicas: Int
    public var fills: Int
    /// Where the run's replica and venue logs, journals and the per-intent audit are.
    public var directory: String

    public var passed: Bool {
        duplicateAttempts == 0 && withoutFate == 0 && orphanVenueOrders == 0 && executed + rejectedAtVenue == committedIntents
            && journalDisagreements.isEmpty && positionsMatch && journalsVerified == replicas
    }

    public var description: String {
        let faultText = ChaosRun.Fault.allCases.map { "\($0.rawValue)=\(faults[$0, default: 0])" }.joined(separator: " ")
        let total = faults.values.reduce(0, +)
        var text = "chaos summary: faults=\(total) (\(faultText)) intents=\(committedIntents) venue_orders=\(venueOrders) "
            + "fills=\(fills) duplicates=\(duplicateAttempts) stale_refused=\(staleOrders) executed=\(executed) "
            + "rejected_at_venue=\(rejectedAtVenue) without_fate=\(withoutFate) orphans=\(orphanVenueOrders) "
            + "reconciled=\(reconciledOrders) resent_possresend=\(resentWithPossResend) "
            + "positions=\(positionsMatch ? "match" : "MISMATCH") journals_agree=\(journalDisagreements.isEmpty ? "yes" : "NO") "
            + "journals_verified=\(journalsVerified)/\(replicas) result=\(passed ? "PASS" : "FAIL")"
        if !passed {
            let details = fatelessDetail + journalDisagreements + (positionDetail.isEmpty ? [] : [positionDetail])
            text += "\n" + details.prefix(20).map { "  \($0)" }.joined(separator: "\n")
            text += "\n  replica and venue logs kept in \(directory) (per-intent fates in chaos-audit.txt)"
        }
        return text
    }
}

public enum ChaosAudit {
    /// What became of one committed intent, from the leader's journal and the venue's record.
    /// Every intent must have one; `.none` fails the audit.
    public enum Fate: Sendable, Hashable, CustomStringConvertible {
        /// The venue holds exactly one order with the ClOrdID, accepted, and the journal agrees
        /// with it on status and filled quantity.
        case executed(status: String)
        /// The venue refused it (a rejected order on its record, or a refusal before it became
        /// one, like a stale SendingTime), and the journal has it rejected with the venue's text.
        case rejectedAtVenue(reason: String)
        /// No fate: the reason says what is missing.
        case none(String)

        public var description: String {
            switch self {
            case .executed(let status): return "executed once (\(status))"
            case .rejectedAtVenue(let reason): return "rejected at the venue: \(reason)"
            case .none(let why): return "NO FATE: \(why)"
            }
        }
    }

    /// Gives every committed intent its fate. A journal without a fate for an intent is exactly
    /// what a lost order looks like (committed, never executed, never refused), so this is as
    /// strict as the venue's record allows: no "reconciled" or "terminal" shortcut counts.
    public static func fates(
        intents: [TradingCluster.ReplicaOrder], venueOrders: [OrderView], refusals: [RefusalView]
    ) -> [(clOrdID: String, fate: Fate)] {
        let atVenue = Dictionary(grouping: venueOrders, by: \.clOrdID)
        let refused = Dictionary(grouping: refusals, by: \.clOrdID)
        let venueTerminal: Set<String> = ["filled", "canceled", "expired"]
        return intents.map { intent in
            let orders = atVenue[intent.clOrdId] ?? []
            let fate: Fate
            if orders.count > 1 {
                fate = .none("the venue holds \(orders.count) orders with this ClOrdID")
            } else if let order = orders.first, order.status != "rejected" {
                let venueQuantity = Int64(order.cumQty.split(separator: ".").first ?? "") ?? -1
                if !venueTerminal.contains(order.status) {
                    fate = .none("open at the venue (\(order.status)) after settling")
                } else if intent.status != order.status || intent.cumQty != venueQuantity {
                    fate = .none(
                        "journal has \(intent.status) cum \(intent.cumQty), venue has \(order.status) cum \(order.cumQty)")
                } else {
                    fate = .executed(status: order.status)
                }
            } else if let order = orders.first {
                // Rejected by the venue's rules: on its record as a rejected order.
                if intent.status == "rejected", let text = intent.text, !text.isEmpty {
                    fate = .rejectedAtVenue(reason: text)
                } else {
                    fate = .none(
                        "the venue rejected it (\(order.text ?? "no text")) but the journal has \(intent.status) "
                            + "without the venue's reason")
                }
            } else if let refusal = refused[intent.clOrdId]?.last {
                if intent.status == "rejected", let text = intent.text, !text.isEmpty {
                    fate = .rejectedAtVenue(reason: text)
                } else {
                    // Refused (the session that wrote it never journaled the answer), and then
                    // neither re-sent nor journaled as refused: lost.
                    fate = .none(
                        "refused at the venue from \(refusal.session) (\(refusal.text)), journal has \(intent.status)"
                            + " sends=\(intent.sends) reconciled=\(intent.reconciledInTerm.map(String.init) ?? "no")")
                }
            } else {
                fate = .none(
                    "never reached the venue; journal has \(intent.status) sends=\(intent.sends) "
                        + "reconciled=\(intent.reconciledInTerm.map(String.init) ?? "no")"
                        + (intent.unknownReason.map { " unknown: \($0)" } ?? ""))
            }
            return (intent.clOrdId, fate)
        }
    }

    /// Lets the cluster finish what is in flight, then gives every committed intent its fate
    /// against the venue's record, compares every replica's journal and positions with the
    /// leader's and the venue's, stops the replicas and verifies their journals.
    public static func settleAndAudit(_ cluster: TradingCluster, faults: [ChaosRun.Fault: Int]) async throws
        -> ChaosSummary
    {
        // Every replica running, one trading leader, and no open order left on it.
        for id in cluster.ids where !cluster.isRunning(id) { try cluster.start(id) }
        var duplicateDetail: [String] = []
        let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        // Stop new orders so the books can settle; the pause is itself journaled.
        _ = try? await cluster.post("\(cluster.replicas[leader]!.adminURL)/admin/trading/pause", body: "{\"reason\":\"chaos audit\"}")
        // An intent that never settles is a finding, not an error: the audit below names it.
        try? await cluster.waitUntil("every order settled on every replica", timeout: .seconds(30), every: .milliseconds(200)) {
            var applied: Set<UInt64> = []
            for id in cluster.ids {
                guard let view = await cluster.trading(id), view.engine.openOrders == 0 else { return false }
                applied.insert(view.engine.appliedIndex)
            }
            return applied.count == 1
        }
        let intents = try await cluster.orders(leader)
        let venueOrders = try await cluster.venueOrders()
        let refusals = try await cluster.venueRefusals()
        let duplicates = try await cluster.venueDuplicates()
        for d in duplicates {
            duplicateDetail.append(
                "duplicate \(d.clOrdID): first from \(d.originalSession) at \(d.originalReceivedAt), again from \(d.session) at \(d.receivedAt) (PossResend=\(d.possResend))")
        }
        let statistics = try await cluster.venueStatistics()
        let venuePositions = try await cluster.venuePositions()
        var positionsMatch = true
        var detail: [String] = []
        var disagreements: [String] = []
        let leaderView = Dictionary(uniqueKeysWithValues: intents.map { ($0.clOrdId, "\($0.status)/\($0.cumQty)") })
        for id in cluster.ids {
            let replica = try await cluster.positions(id).filter { $0.value != 0 }
            if replica != venuePositions {
                positionsMatch = false
                detail.append("n\(id) positions \(replica) venue \(venuePositions)")
            }
            guard id != leader else { continue }
            let orders = try await cluster.orders(id)
            let view = Dictionary(uniqueKeysWithValues: orders.map { ($0.clOrdId, "\($0.status)/\($0.cumQty)") })
            for (clOrdID, leaderState) in leaderView where view[clOrdID] != leaderState {
                disagreements.append("n\(id) has \(clOrdID) as \(view[clOrdID] ?? "absent"), leader n\(leader) as \(leaderState)")
            }
            if view.count != leaderView.count {
                disagreements.append("n\(id) has \(view.count) orders, leader n\(leader) \(leaderView.count)")
            }
        }
        let fates = fates(intents: intents, venueOrders: venueOrders, refusals: refusals)
        let known = Set(intents.map(\.clOrdId))
        let orphans = venueOrders.filter { !known.contains($0.clOrdID) }
        var report = fates.map { "\($0.clOrdID) \($0.fate)" }
        report += orphans.map { "venue order \($0.clOrdID) from \($0.session): no committed intent" }
        report += refusals.map { "venue refused \($0.clOrdID) from \($0.session) at \($0.receivedAt): \($0.text)" }
        try? (report.joined(separator: "\n") + "\n").write(
            toFile: "\(cluster.directory)/chaos-audit.txt", atomically: true, encoding: .utf8)
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
        var fateless: [String] = []
        var executed = 0
        var rejected = 0
        for (clOrdID, fate) in fates {
            switch fate {
            case .executed: executed += 1
            case .rejectedAtVenue: rejected += 1
            case .none: fateless.append("\(clOrdID): \(fate)")
            }
        }
        fateless += orphans.map { "venue order \($0.clOrdID) from \($0.session) has no committed intent" }
        return ChaosSummary(
            faults: faults, committedIntents: intents.count, venueOrders: venueOrders.count,
            duplicateAttempts: duplicates.count, staleOrders: statistics.staleOrders, executed: executed,
            rejectedAtVenue: rejected, withoutFate: fates.count - executed - rejected, fatelessDetail: fateless,
            orphanVenueOrders: orphans.count, journalDisagreements: disagreements,
            resentWithPossResend: intents.filter(\.possResend).count,
            reconciledOrders: intents.filter { $0.reconciledInTerm != nil }.count, positionsMatch: positionsMatch,
            positionDetail: (detail + duplicateDetail).joined(separator: "; "), journalsVerified: verified,
            replicas: cluster.ids.count, fills: statistics.fills, directory: cluster.directory)
    }
}
