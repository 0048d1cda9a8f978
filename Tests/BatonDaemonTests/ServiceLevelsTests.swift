import BatonAlerting
@testable import BatonDaemon
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
            "order-ack-latency", "order-path", "leader-availability", "feed-freshness",
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

    @Test func aBurnRuleIsNamedBySeverityAndLongWindowInIncidentIdentities() {
        #expect(BurnRateRule.workbook.map(IncidentWatch.ruleName) == ["page-1h", "page-6h", "ticket-3d"])
    }
}
