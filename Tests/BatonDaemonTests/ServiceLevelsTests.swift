import BatonAlerting
@testable import BatonDaemon
import RaftCore
import Testing

/// The SLIs a replica counts, driven with a fake clock (ns).
@Suite struct ServiceLevelsTests {
    static let second: Int64 = 1_000_000_000

    @Test func theOrderPathCountsWritesWithinTheBoundAndThoseLateOrNeverAsBad() throws {
        var levels = try ServiceLevels(.init(orderPathBound: .milliseconds(1000)))
        levels.intentCommitted(clOrdID: "BTN-2-1", now: 0)
        levels.intentCommitted(clOrdID: "BTN-2-2", now: 0)
        levels.intentCommitted(clOrdID: "BTN-2-3", now: 0)
        levels.orderWritten(clOrdID: "BTN-2-1", now: 999_000_000)
        levels.orderWritten(clOrdID: "BTN-2-2", now: 1_500_000_000)
        // BTN-2-3 is never written: the sweep past the bound counts it bad, once.
        levels.sweepUnwritten(now: 2 * Self.second)
        levels.sweepUnwritten(now: 3 * Self.second)
        levels.orderWritten(clOrdID: "BTN-2-3", now: 4 * Self.second)
        let path = try #require(levels.evaluator(ServiceLevels.orderPathName))
        #expect(path.totals == SLICounts(good: 1, bad: 2))
        // An ex-leader's unwritten orders get no verdict: the next leader sends them.
        levels.intentCommitted(clOrdID: "BTN-2-4", now: 5 * Self.second)
        levels.sweepUnwritten(now: 9 * Self.second, leading: false)
        #expect(levels.evaluator(ServiceLevels.orderPathName)?.totals == SLICounts(good: 1, bad: 2))
    }

    @Test func leaderAndFeedAreSampledOncePerCallAndAnUnknownFeedIsNotCounted() throws {
        var levels = try ServiceLevels(.init())
        // The election at start is not counted: only from the first leader seen.
        levels.sample(leaderKnown: false, feedFresh: nil, now: 0)
        levels.sample(leaderKnown: true, feedFresh: nil, now: Self.second)
        levels.sample(leaderKnown: false, feedFresh: false, now: 2 * Self.second)
        levels.sample(leaderKnown: true, feedFresh: true, now: 3 * Self.second)
        #expect(levels.evaluator(ServiceLevels.leaderName)?.totals == SLICounts(good: 2, bad: 1))
        #expect(levels.evaluator(ServiceLevels.feedName)?.totals == SLICounts(good: 1, bad: 1))
        #expect(levels.status(now: 3 * Self.second).map(\.slo) == [
            "order-ack-latency", "order-path", "leader-availability", "feed-freshness", "admin-availability",
        ])
    }

    @Test func aLeaderlessStretchPagesThroughTheBurnRateRules() throws {
        var levels = try ServiceLevels(.init(leader: 0.999))
        // An hour with a leader, then five minutes without one, one sample a second.
        var now: Int64 = 0
        for _ in 0..<3600 {
            now += Self.second
            levels.sample(leaderKnown: true, feedFresh: nil, now: now)
        }
        #expect(levels.evaluateIfDue(now: now)?.isEmpty == true)
        for _ in 0..<300 {
            now += Self.second
            levels.sample(leaderKnown: false, feedFresh: nil, now: now)
        }
        let changes = levels.evaluateIfDue(now: now) ?? []
        #expect(changes.contains { if case .raise(let slo, let rule, _, _) = $0 { slo == ServiceLevels.leaderName && rule.severity == .page } else { false } }, "\(changes)")
    }

    @Test func adminAnswersTakenFromTheTallyFeedTheAdminSLOAndAFailingAdminPlanePages() throws {
        let metrics = DaemonMetrics(node: NodeID(1))
        var levels = try ServiceLevels(.init(admin: 0.999))
        // An hour of answers, a few a second, all good; then five minutes in which half fail.
        var now: Int64 = 0
        for second in 0..<3900 {
            now += Self.second
            for n in 0..<4 { metrics.countAdminAnswer(status: second >= 3600 && n.isMultiple(of: 2) ? 503 : 200) }
            let answers = metrics.adminAnswerTally.take()
            levels.adminAnswered(good: answers.good, bad: answers.bad, now: now)
            if second == 3599 {
                #expect(levels.evaluateIfDue(now: now)?.isEmpty == true)
                #expect(levels.evaluator(ServiceLevels.adminName)?.totals == SLICounts(good: 14_400, bad: 0))
            }
        }
        let rest = metrics.adminAnswerTally.take()
        #expect(rest.good == 0 && rest.bad == 0, "taken: the tally starts again")
        #expect(levels.evaluator(ServiceLevels.adminName)?.totals == SLICounts(good: 15_000, bad: 600))
        let changes = levels.evaluateIfDue(now: now) ?? []
        #expect(changes.contains { if case .raise(let slo, let rule, _, _) = $0 { slo == ServiceLevels.adminName && rule.severity == .page } else { false } }, "\(changes)")
        // A 4xx is the caller's mistake, not an outage.
        metrics.countAdminAnswer(status: 401)
        metrics.countAdminAnswer(status: 404)
        let mistakes = metrics.adminAnswerTally.take()
        #expect(mistakes.good == 2 && mistakes.bad == 0)
    }

    @Test func aBurnRuleIsNamedBySeverityAndLongWindowInIncidentIdentities() {
        #expect(BurnRateRule.workbook.map(IncidentWatch.ruleName) == ["page-1h", "page-6h", "ticket-3d"])
    }
}
