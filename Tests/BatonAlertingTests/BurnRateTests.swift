@testable import BatonAlerting
import Testing

/// The burn-rate evaluator on synthetic SLI streams with a fake clock: each rule pages when the
/// workbook says it should, not before, and resolves soon after the errors stop.
@Suite struct BurnRateTests {
    static let second: Int64 = 1_000_000_000
    static let minute = 60 * second
    static let hour = 60 * minute

    /// 99.9 % over 30 days with the workbook's rules.
    static func evaluator() throws -> SLOEvaluator {
        try SLOEvaluator(ServiceLevelObjective(name: "order-ack-latency", objective: 0.999))
    }

    /// Ten events a second from `start` for `duration`, `badPerTen` of each ten bad; evaluated
    /// every 10 s. Returns each directive with the time it came.
    static func run(
        _ slo: inout SLOEvaluator, from start: Int64, for duration: Int64, badPerTen: UInt64
    ) -> [(at: Int64, directive: SLOEvaluator.Directive)] {
        var seen: [(Int64, SLOEvaluator.Directive)] = []
        var t = start
        while t < start + duration {
            slo.record(good: 10 - badPerTen, bad: badPerTen, at: t)
            t += second
            if (t - start) % (10 * second) == 0 {
                for directive in slo.evaluate(at: t) { seen.append((t, directive)) }
            }
        }
        return seen
    }

    /// A slow, steady burn within budget (0.05 % errors: 0.5× burn) for four days pages nothing.
    @Test func aBurnWithinBudgetNeverAlerts() throws {
        var slo = try Self.evaluator()
        var t: Int64 = 0
        var raised: [SLOEvaluator.Directive] = []
        // One bad event in 2000: 0.05 %.
        while t < 96 * Self.hour {
            slo.record(good: 1999, bad: 1, at: t)
            t += 200 * Self.second
            raised += slo.evaluate(at: t)
        }
        #expect(raised.isEmpty, "\(raised)")
        let status = slo.status(at: t)
        #expect(abs(status.budgetRemaining - 0.5) < 0.01, "half the budget spent: \(status)")
    }

    /// A hard outage (every event bad) after an hour of clean traffic: the 1h/5m page fires once
    /// 1.44 % of the hour is bad (52 s of outage at a steady rate), not before, and resolves
    /// about 5 minutes after the outage ends, when the short window has forgotten it.
    @Test func anOutagePagesWithinAMinuteAndResolvesFiveMinutesAfterItEnds() throws {
        var slo = try Self.evaluator()
        _ = Self.run(&slo, from: 0, for: Self.hour, badPerTen: 0)
        let outage = Self.hour
        let during = Self.run(&slo, from: outage, for: 2 * Self.minute, badPerTen: 10)
        let fastPage = BurnRateRule.workbook[0]
        let raises = during.filter {
            if case .raise(_, let rule, _, _) = $0.directive { rule == fastPage } else { false }
        }
        #expect(raises.count == 1, "\(during)")
        let raisedAfter = (raises.first?.at ?? 0) - outage
        // 1.44 % of an hour at 10 events/s is 518 bad events: 52 s, within the windows' buckets.
        #expect(raisedAfter >= 40 * Self.second && raisedAfter <= 70 * Self.second, "raised \(raisedAfter / Self.second) s in")
        // The 6h/30m page fires too (it needs 6×: 0.6 % of 6 h is 130 s of outage at most, but
        // the 6h window holds only the hour of history so far), and the ticket.
        #expect(during.contains { if case .raise(_, let rule, _, _) = $0.directive { rule == BurnRateRule.workbook[2] } else { false } })

        let after = Self.run(&slo, from: outage + 2 * Self.minute, for: 30 * Self.minute, badPerTen: 0)
        let resolved = after.first {
            if case .resolve(_, let rule) = $0.directive { rule == fastPage } else { false }
        }
        let resolvedAfter = (resolved?.at ?? .max) - (outage + 2 * Self.minute)
        #expect(
            resolvedAfter >= 4 * Self.minute + 30 * Self.second && resolvedAfter <= 5 * Self.minute + 30 * Self.second,
            "resolved \(resolvedAfter / Self.second) s after the outage ended")
        // Raised once, resolved once: no flapping while the windows drain.
        #expect(after.filter { if case .raise(_, let rule, _, _) = $0.directive { rule == fastPage } else { false } }.isEmpty)
    }

    /// A slow burn at 8× (0.8 % errors) after six clean hours: never the fast page (8 < 14.4);
    /// the 6h/30m page once 6× holds over six hours (4.5 h in); the 3d/6h ticket much earlier,
    /// once the budget burns at 1× over the history there is (about 52 minutes in).
    @Test func aSlowBurnTicketsFirstThenPagesOnTheSixHourRuleAndNeverOnTheFastOne() throws {
        var slo = try Self.evaluator()
        _ = Self.run(&slo, from: 0, for: 6 * Self.hour, badPerTen: 0)
        var directives: [(at: Int64, directive: SLOEvaluator.Directive)] = []
        var t = 6 * Self.hour
        let start = t
        while t < start + 6 * Self.hour {
            // 8 bad in 1000.
            slo.record(good: 992, bad: 8, at: t)
            t += 100 * Self.second
            for directive in slo.evaluate(at: t) { directives.append((t, directive)) }
        }
        func raisedAt(_ rule: BurnRateRule) -> Int64? {
            directives.first { if case .raise(_, let r, _, _) = $0.directive { r == rule } else { false } }.map { $0.at - start }
        }
        #expect(raisedAt(BurnRateRule.workbook[0]) == nil, "the fast page must not fire at 8×")
        let page = try #require(raisedAt(BurnRateRule.workbook[1]))
        #expect(page >= 4 * Self.hour + 15 * Self.minute && page <= 4 * Self.hour + 45 * Self.minute, "6h page at \(page / Self.minute) min")
        let ticket = try #require(raisedAt(BurnRateRule.workbook[2]))
        #expect(ticket >= 40 * Self.minute && ticket <= 65 * Self.minute, "ticket at \(ticket / Self.minute) min")
        #expect(ticket < page)
        let status = slo.status(at: t)
        #expect(status.firing == [BurnRateRule.workbook[1].description, BurnRateRule.workbook[2].description])
        #expect(status.windows.map(\.window) == ["5m", "30m", "1h", "6h", "3d", "30d"])
    }

    /// No traffic burns no budget, and an evaluator with nothing recorded raises nothing.
    @Test func noTrafficIsNoBurn() throws {
        var slo = try Self.evaluator()
        #expect(slo.evaluate(at: 10 * Self.hour).isEmpty)
        #expect(slo.status(at: 10 * Self.hour).budgetRemaining == 1)
    }

    /// Hostile or broken inputs: a clock that goes back past the windows, negative times,
    /// counts at UInt64.max. Nothing traps; what cannot be placed is counted as dropped.
    @Test func inputsOutsideTheWindowsAreDroppedAndCountsSaturate() throws {
        var slo = try Self.evaluator()
        slo.record(good: 5, at: 40 * 86_400 * Self.second)
        slo.record(good: 7, at: 0)  // older than the 30-day ring holds
        slo.record(good: 3, at: -1)
        #expect(slo.droppedEvents == 10)
        slo.record(good: .max, bad: .max, at: 40 * 86_400 * Self.second)
        slo.record(good: .max, bad: .max, at: 40 * 86_400 * Self.second)
        let status = slo.status(at: 40 * 86_400 * Self.second)
        #expect(status.windows.allSatisfy { $0.good == .max && $0.bad == .max })
        _ = slo.evaluate(at: 40 * 86_400 * Self.second)
        _ = slo.evaluate(at: .max)
    }

    /// An objective that cannot be evaluated is refused, naming each field.
    @Test func invalidObjectivesAreRefusedNamingTheField() {
        let bad = ServiceLevelObjective(
            name: "Order Ack", objective: 1,
            rules: [
                BurnRateRule(severity: .page, longWindow: .seconds(300), shortWindow: .seconds(3600), burnRate: 14.4),
                BurnRateRule(severity: .page, longWindow: .seconds(3600), shortWindow: .seconds(10), burnRate: .nan),
                BurnRateRule(severity: .ticket, longWindow: .seconds(90 * 86_400), shortWindow: .seconds(3600), burnRate: 1),
            ])
        #expect(throws: SLOEvaluator.InvalidObjective.self) { try SLOEvaluator(bad) }
        let problems = bad.problems
        for expected in [
            "name 'Order Ack'", "objective 1.0", "rules[0].short_window must be shorter", "rules[1].burn_rate nan",
            "rules[1].short_window must be at least 1m", "rules[2].long_window 90d is longer than the period",
        ] {
            #expect(problems.contains { $0.hasPrefix(expected) }, "no problem starting \(expected): \(problems)")
        }
        #expect(ServiceLevelObjective(name: "feed-freshness", objective: 0.99).problems.isEmpty)
        #expect(ServiceLevelObjective(name: "x", objective: .nan).problems.contains { $0.hasPrefix("objective nan") })
    }
}
