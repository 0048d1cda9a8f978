@testable import BatonAlerting
import Foundation
import Testing

/// The alert conditions, driven with a fake clock: each raises when its bound is passed and not
/// before, resolves when it clears, and leaves alone what the leader cannot judge yet.
@Suite struct IncidentRulesTests {
    static let rules = IncidentRules(clusterName: "baton-7")
    static let routes = AlertRoutes(minimum: ["pagerduty": .error, "telegram": .info])

    /// A leader of term 3 that began leading at 100 s and is trading, at `now` ms.
    static func leader(at now: Int64, _ change: (inout IncidentRules.Observations) -> Void = { _ in })
        -> IncidentRules.Observations
    {
        var o = IncidentRules.Observations(nowMillis: now, node: 2, term: 3, leadingSinceMillis: 100_000, trading: true)
        change(&o)
        return o
    }

    /// Applies what `decisions` proposes to `outbox`, each at the next index, and returns it.
    @discardableResult
    static func step(
        _ o: IncidentRules.Observations, _ outbox: inout AlertOutbox, index: inout UInt64
    ) -> [AlertCommand] {
        let commands = rules.decisions(
            wanted: rules.evaluate(o), outbox: outbox, routes: routes, busy: [], nowMillis: o.nowMillis,
            judgedHealth: rules.judgedHealth(o))
        for command in commands {
            index += 1
            _ = outbox.apply(command, index: index)
        }
        return commands
    }

    static func raised(_ commands: [AlertCommand]) -> [String] {
        commands.compactMap { if case .raise(let identity, _, _) = $0 { identity } else { nil } }
    }

    static func resolved(_ commands: [AlertCommand]) -> [String] {
        commands.compactMap { if case .resolve(let identity, _, _) = $0 { identity } else { nil } }
    }

    @Test func aBrokerSessionDownPagesAfterItsBoundAndResolvesWhenItIsUp() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        let down: (inout IncidentRules.Observations) -> Void = { $0.sessionDownSinceMillis = 200_000 }
        #expect(Self.step(Self.leader(at: 209_999, down), &outbox, index: &index).isEmpty)
        let commands = Self.step(Self.leader(at: 210_000, down), &outbox, index: &index)
        #expect(Self.raised(commands) == ["baton-7/broker-session-down"])
        guard case .raise(_, let event, let sinks)? = commands.first else { return }
        #expect(event.level == .critical && sinks == ["pagerduty", "telegram"])
        #expect(event.summary.contains("broker session down for 10 s on leader n2"))
        #expect(event.runbook == "runbooks/trading-operations.md#broker-session-down")
        #expect(Self.step(Self.leader(at: 215_000, down), &outbox, index: &index).isEmpty)
        // Down since before this replica led: measured from when it began leading.
        var fresh = AlertOutbox()
        #expect(Self.step(Self.leader(at: 105_000) { $0.sessionDownSinceMillis = 1 }, &fresh, index: &index).isEmpty)
        #expect(Self.resolved(Self.step(Self.leader(at: 216_000), &outbox, index: &index)) == ["baton-7/broker-session-down"])
    }

    @Test func aNewLeaderStillLoggingOnNeitherResolvesNorRaisesTheSessionIncident() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        Self.step(Self.leader(at: 300_000) { $0.sessionDownSinceMillis = 100_000 }, &outbox, index: &index)
        #expect(outbox.open["baton-7/broker-session-down"] != nil)
        // Term 4, its own session down for 2 s: not judged, so the incident stays open.
        let successor = IncidentRules.Observations(
            nowMillis: 302_000, node: 3, term: 4, leadingSinceMillis: 300_000, sessionDownSinceMillis: 300_000)
        #expect(Self.step(successor, &outbox, index: &index).filter { "\($0)".contains("broker") }.isEmpty)
    }

    @Test func haltedOpensOnceAndResolvesOnlyWhenTradingAgain() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        let halted = Self.step(
            Self.leader(at: 200_000) {
                $0.trading = false
                $0.haltReason = "the broker refused status requests"
            }, &outbox, index: &index)
        #expect(Self.raised(halted) == ["baton-7/trading-halted"])
        // A new leader reconciling (neither halted nor trading): left open.
        let reconciling = Self.leader(at: 201_000) { $0.trading = false }
        #expect(Self.step(reconciling, &outbox, index: &index).isEmpty)
        #expect(Self.resolved(Self.step(Self.leader(at: 202_000), &outbox, index: &index)) == ["baton-7/trading-halted"])
    }

    @Test func anOrderUnknownPastItsBoundIsPagedByName() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        let unknown: (inout IncidentRules.Observations) -> Void = {
            $0.unknownOrders = [("B-1-9", 170_000, "no answer within 2000 ms"), ("B-1-8", 195_000, "lost")]
        }
        let early = Self.step(Self.leader(at: 200_000, unknown), &outbox, index: &index)
        guard case .raise(let identity, let event, _)? = early.first else {
            Issue.record("\(early)")
            return
        }
        #expect(identity == "baton-7/orders-unknown")
        #expect(event.summary.contains("1 order(s)") && event.summary.contains("B-1-9") && !event.summary.contains("B-1-8"))
        #expect(event.startedAtMillis == 170_000)
        #expect(Self.resolved(Self.step(Self.leader(at: 230_000), &outbox, index: &index)) == ["baton-7/orders-unknown"])
    }

    @Test func aRiskLimitStaysOpenForItsHoldAfterTheLastRejection() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        let hit: (inout IncidentRules.Observations) -> Void = {
            $0.riskLimitHits = ["rate": (150_000, "rate limit: 10 orders in the last minute (max 10)")]
        }
        let raised = Self.step(Self.leader(at: 150_001, hit), &outbox, index: &index)
        #expect(Self.raised(raised) == ["baton-7/risk-limit/rate"])
        // A warning: the pager (error and above) does not get it; the chat does.
        guard case .raise(_, let event, let sinks)? = raised.first else { return }
        #expect(event.level == .warning && sinks == ["telegram"])
        #expect(Self.step(Self.leader(at: 449_999, hit), &outbox, index: &index).isEmpty)
        let cleared = Self.step(Self.leader(at: 450_000, hit), &outbox, index: &index)
        #expect(cleared == [.resolve(identity: "baton-7/risk-limit/rate", atMillis: 450_000, sinks: ["telegram"])])
    }

    @Test func aLeaderChangeIsNewsAndALongGapPagesUntilTrading() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        let takeover: (inout IncidentRules.Observations) -> Void = {
            $0.trading = false
            $0.external.previousLeader = 1
            $0.external.leaderlessMillis = 7_500
        }
        let raised = Self.step(Self.leader(at: 100_050, takeover), &outbox, index: &index)
        #expect(Set(Self.raised(raised)) == ["baton-7/leader-changed/term-3", "baton-7/no-leader/term-3"])
        let gap = outbox.openEvents["baton-7/no-leader/term-3"]
        #expect(gap?.level == .critical && gap?.summary.contains("no leader for 7.5 s") == true)
        #expect(outbox.openEvents["baton-7/leader-changed/term-3"]?.summary == "leader changed: n1 → n2 in term 3")
        let trading = Self.step(
            Self.leader(at: 101_000) {
                $0.external.previousLeader = 1
                $0.external.leaderlessMillis = 7_500
            }, &outbox, index: &index)
        #expect(Self.resolved(trading) == ["baton-7/no-leader/term-3"])
        // The change is resolved once its hold has passed.
        let later = Self.leader(at: 400_000) { $0.external.previousLeader = 1 }
        #expect(Self.resolved(Self.step(later, &outbox, index: &index)) == ["baton-7/leader-changed/term-3"])
        // A short gap is not paged; a first leader (no previous one) is no change.
        let quick = Self.rules.evaluate(Self.leader(at: 100_050) { $0.external.leaderlessMillis = 4_999 })
        #expect(quick[.noLeader]?.isEmpty == true && quick[.leaderChanged]?.isEmpty == true)
    }

    @Test func replicasAreJudgedOnlyAfterTheGraceAndBySilenceThenLag() {
        let replicas: (inout IncidentRules.Observations) -> Void = {
            $0.external.replicas = [
                .init(node: 1, lag: 0, silentSinceMillis: 100_000), .init(node: 3, lag: 25_000, silentSinceMillis: nil),
                .init(node: 4, lag: 10, silentSinceMillis: nil),
            ]
        }
        #expect(Self.rules.evaluate(Self.leader(at: 104_999, replicas))[.replica] == nil)
        let judged = Self.rules.evaluate(Self.leader(at: 110_000, replicas))[.replica] ?? [:]
        #expect(judged.keys.sorted() == ["baton-7/replica/n1", "baton-7/replica/n3"])
        #expect(judged["baton-7/replica/n1"]?.level == .error)
        #expect(judged["baton-7/replica/n1"]?.summary == "replica n1 unreachable from leader n2 for 10 s")
        #expect(judged["baton-7/replica/n3"]?.level == .warning)
    }

    @Test func theFeedIsStaleOnBackupOrDown() {
        func feed(_ condition: IncidentRules.Feed.Condition) -> [String: AlertEvent]? {
            Self.rules.evaluate(Self.leader(at: 200_000) { $0.external.feed = .init(condition: condition, sinceMillis: 190_000) })[
                .feed]
        }
        #expect(feed(.healthy)?.isEmpty == true)
        // A switch of a second or two is no incident yet: not judged before 5 s.
        let brief = Self.rules.evaluate(
            Self.leader(at: 194_999) { $0.external.feed = .init(condition: .down, sinceMillis: 190_000) })
        #expect(brief[.feed] == nil)
        #expect(feed(.stale(source: "primary", silentMillis: 3_000))?["baton-7/feed/stale"]?.level == .error)
        #expect(feed(.onBackup(why: "the primary is stale"))?["baton-7/feed/backup"]?.level == .warning)
        #expect(feed(.down)?["baton-7/feed/down"]?.level == .critical)
        // Not looked at yet: not judged, an open feed incident stays.
        #expect(Self.rules.evaluate(Self.leader(at: 200_000))[.feed] == nil)
    }

    @Test func aNearlyFullDiskWarnsThenGoesCritical() {
        func disk(_ free: Double) -> AlertEvent? {
            Self.rules.evaluate(Self.leader(at: 200_000) { $0.external.disk = .init(free: free, path: "/var/lib/baton") })[.disk]?[
                "baton-7/disk-nearly-full/n2"]
        }
        #expect(disk(0.5) == nil)
        #expect(disk(0.08)?.level == .warning)
        #expect(disk(0.08)?.summary == "disk nearly full on n2: 8.0% free at /var/lib/baton")
        #expect(disk(0.01)?.level == .critical)
    }

    @Test func aFollowersDiskAndJournalAreJudgedFromItsOwnWordAndLeftAloneWithoutIt() {
        var outbox = AlertOutbox()
        var index: UInt64 = 0
        func replicas(_ health: IncidentRules.Health?) -> (inout IncidentRules.Observations) -> Void {
            { o in
                o.external.disk = .init(free: 0.5, path: "/var/lib/baton/n2")
                o.external.replicas = [
                    .init(node: 1, lag: 0, silentSinceMillis: nil, health: health),
                    .init(node: 3, lag: 0, silentSinceMillis: nil, health: .init(disk: .init(free: 0.6, path: "n3"), journalProblem: nil)),
                ]
            }
        }
        let sick = IncidentRules.Health(disk: .init(free: 0.02, path: "data_dir of n1"), journalProblem: "chain broken at entry 12")
        // In the grace after taking over, a follower's word is not judged yet.
        #expect(Self.step(Self.leader(at: 104_999, replicas(sick)), &outbox, index: &index).isEmpty)
        let raised = Self.step(Self.leader(at: 105_000, replicas(sick)), &outbox, index: &index)
        #expect(Set(Self.raised(raised)) == ["baton-7/disk-nearly-full/n1", "baton-7/journal-verify-failed/n1"])
        let events = raised.compactMap { if case .raise(_, let event, _) = $0 { event } else { nil } }
        #expect(events.allSatisfy { $0.level == .critical })
        #expect(events.contains { $0.summary == "journal verification failed on n1: chain broken at entry 12" })
        #expect(events.contains { $0.summary == "disk nearly full on n1: 2.0% free at data_dir of n1" && $0.details["replica"] == "n1" })
        #expect(events.contains { $0.runbook == "runbooks/replica-operations.md#journal-verification-failed" })
        // No fresh word from n1 (silent, or too old a version): its incidents stay as they are.
        #expect(Self.step(Self.leader(at: 106_000, replicas(nil)), &outbox, index: &index).isEmpty)
        // Its disk unreadable: the disk incident stays, the journal is judged.
        let unreadable = IncidentRules.Health(disk: nil, journalProblem: nil)
        #expect(Self.resolved(Self.step(Self.leader(at: 107_000, replicas(unreadable)), &outbox, index: &index))
            == ["baton-7/journal-verify-failed/n1"])
        // Healthy again: resolved.
        let well = IncidentRules.Health(disk: .init(free: 0.4, path: "data_dir of n1"), journalProblem: nil)
        #expect(Self.resolved(Self.step(Self.leader(at: 108_000, replicas(well)), &outbox, index: &index))
            == ["baton-7/disk-nearly-full/n1"])
        // The leader's own journal: judged from its own check, always.
        let own = Self.step(Self.leader(at: 109_000) { replicas(well)(&$0); $0.external.journalProblem = "hard state commit 9 past the last entry 7" }, &outbox, index: &index)
        #expect(Self.raised(own) == ["baton-7/journal-verify-failed/n2"])
        #expect(Self.resolved(Self.step(Self.leader(at: 110_000, replicas(well)), &outbox, index: &index)) == ["baton-7/journal-verify-failed/n2"])
        #expect(outbox.open.isEmpty)
    }

    @Test func anSLOBurnPagesOrTicketsPerRule() {
        let burning = Self.rules.evaluate(
            Self.leader(at: 200_000) {
                $0.external.burns = [
                    .init(slo: "order-ack", rule: "page-1h", page: true, longBurnRate: 20, shortBurnRate: 31.25, sinceMillis: 199_000),
                    .init(slo: "order-ack", rule: "ticket-3d", page: false, longBurnRate: 1.2, shortBurnRate: 1.5, sinceMillis: 150_000),
                ]
            })[.sloBurn] ?? [:]
        #expect(burning["baton-7/slo-burn/order-ack/page-1h"]?.level == .critical)
        #expect(burning["baton-7/slo-burn/order-ack/ticket-3d"]?.level == .warning)
        #expect(burning["baton-7/slo-burn/order-ack/page-1h"]?.details["burn_rate_short"] == "31.3")
    }

    @Test func identitiesOfAnotherClusterOrAFamilyNotJudgedAreLeftAlone() {
        var outbox = AlertOutbox()
        _ = outbox.apply(.raise(identity: "baton-8/feed/down", event: AlertOutboxTests.event(), sinks: []), index: 1)
        _ = outbox.apply(.raise(identity: "baton-7/feed/down", event: AlertOutboxTests.event(), sinks: []), index: 2)
        _ = outbox.apply(.raise(identity: "baton-7/replica/n1", event: AlertOutboxTests.event(), sinks: []), index: 3)
        let o = Self.leader(at: 200_000) { $0.external.feed = .init(condition: .healthy, sinceMillis: 0) }
        let commands = Self.rules.decisions(
            wanted: Self.rules.evaluate(o), outbox: outbox, routes: Self.routes, busy: [], nowMillis: 200_000)
        #expect(Self.resolved(commands) == ["baton-7/feed/down"])
        #expect(Self.rules.family(of: "baton-7/slo-burn/order-ack/page-1h") == .sloBurn)
        #expect(Self.rules.family(of: "baton-70/feed/down") == nil)
    }

    @Test func severityRoutesPickSinksAtOrAboveTheirMinimum() {
        #expect(Self.routes.sinks(for: .critical) == ["pagerduty", "telegram"])
        #expect(Self.routes.sinks(for: .error) == ["pagerduty", "telegram"])
        #expect(Self.routes.sinks(for: .warning) == ["telegram"])
        #expect(Self.routes.sinks(for: .info) == ["telegram"])
    }

    /// Each family's runbook link names a file and a heading that exist.
    @Test func everyFamilyLinksARunbookSectionThatExists() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for family in IncidentRules.Family.allCases {
            let parts = family.runbook.split(separator: "#", maxSplits: 1).map(String.init)
            let text = try String(contentsOf: root.appendingPathComponent(parts[0]), encoding: .utf8)
            let anchors = text.split(separator: "\n").filter { $0.hasPrefix("#") }.map { line in
                String(line.drop { $0 == "#" || $0 == " " }).lowercased().filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" }
                    .replacingOccurrences(of: " ", with: "-")
            }
            #expect(anchors.contains(parts[1]), "\(family): \(family.runbook) has no such section")
        }
    }
}
