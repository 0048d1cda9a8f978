import BatonMarketData
@testable import BatonTrading
import Testing

/// One leader's trading core on generated ticks, every proposal committed at once and every
/// order filled whole at the last trade price: the canary controller's analysis, steps and
/// rollbacks judged deterministically, tick by tick (a unit test of the controller: the broker
/// here is the simplest possible one, the process tests use the venue simulator).
struct CanaryDesk {
    static let ms: Int64 = 1_000_000
    var core: TradingCore
    var term: UInt64
    var leading: LeadershipInput
    var index: UInt64
    var now: Int64
    var price: Int64 = 100 * 10_000
    var sequence: UInt64 = 0
    var random: UInt64
    var executions = 0
    /// Every committed trading command, in log order, as a follower's journal would hold it.
    var log: [(term: UInt64, index: UInt64, command: TradingCommand)] = []

    static func settings(node: UInt64 = 1) -> TradingCore.Settings {
        TradingCore.Settings(
            node: node, senderCompID: "BATON", targetCompID: "VENUE", account: "ACC", clOrdIDPrefix: "BTN",
            strategies: [.maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 5, slowWindow: 20, quantity: 100))],
            strategyVersion: "1",
            limits: RiskLimits(maxOrdersPerMinute: 10_000, maxOrdersPerHour: 1_000_000, maxPosition: 1_000, maxOrderQuantity: 1_000),
            reconciler: .init(answerTimeoutNanos: 200 * ms, attemptsBeforeHalt: 3), maxOrderAgeNanos: 100 * ms,
            ackTimeoutNanos: 250 * ms, sequenceBlock: 1_000_000)
    }

    /// A leader of `term` that has applied `journal` (empty: a fresh cluster) and is trading.
    init(node: UInt64 = 1, term: UInt64 = 2, journal: [(term: UInt64, index: UInt64, command: TradingCommand)] = [], seed: UInt64 = 7, now: Int64 = 1_000_000_000_000) {
        core = TradingCore(settings: Self.settings(node: node))
        for entry in journal { core.restore(entry.command, term: entry.term, index: entry.index) }
        log = journal
        self.term = term
        index = (journal.last?.index ?? 0) + 1
        core.applied(through: index)
        leading = LeadershipInput(isLeader: true, term: term, leaseRemainingNanos: 250 * Self.ms, termStartIndex: index)
        self.now = now
        random = seed
        run(core.onDuty(now: now, leadership: leading, session: SessionInput(active: false, nextSenderSeqNum: 1)))
        self.now += 200 * Self.ms
        run(core.onDuty(now: self.now, leadership: leading, session: SessionInput(active: true, nextSenderSeqNum: 1)))
        self.now += 200 * Self.ms
        run(core.onDuty(now: self.now, leadership: leading, session: SessionInput(active: true, nextSenderSeqNum: 1)))
    }

    mutating func commit(_ command: TradingCommand) -> [TradingDirective] {
        index += 1
        log.append((term, index, command))
        return core.apply(command, term: term, index: index, now: now)
    }

    mutating func run(_ directives: [TradingDirective]) {
        var queue = directives
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .propose(let command):
                queue += commit(command)
            case .send(let send):
                queue += core.onOrderWritten(send, msgSeqNum: executions + 1, leaseRemainingNanos: 200 * Self.ms, now: now)
                executions += 1
                let quantity = send.order.intent.quantity
                let report = ExecutionRecord(
                    clOrdID: send.order.clOrdID, execID: "E\(term)-\(executions)", venueOrderID: "O\(executions)", execType: "F",
                    ordStatus: "2", lastQuantity: quantity, lastPrice: price, cumulativeQuantity: quantity, averagePrice: price,
                    leavesQuantity: 0, ordRejReason: nil, text: nil, session: "VENUE", receivedAtNanos: now)
                queue += core.onExecutionReport(report, now: now)
            default:
                break
            }
        }
    }

    /// The next trade of a random walk (`drift` price units a tick on top), 100 ms later.
    mutating func tick(drift: Int64 = 0) {
        random = random &* 6364136223846793005 &+ 1442695040888963407
        let step = Int64((random >> 33) % 2001) - 1000
        price = max(10_000, price + step + drift)
        sequence += 1
        now += 100 * Self.ms
        run(core.onTick(symbol: "AAPL", sequence: sequence, price: price, receivedNanos: now, now: now))
        run(core.onDuty(now: now, leadership: leading, session: SessionInput(active: true, nextSenderSeqNum: 1)))
    }

    mutating func start(_ candidate: StrategySpec, steps: [Int], intervalSeconds: Int64, maxFailedChecks: Int = 2, killDrawdown: Int64 = 100_000_000, rollback: CanaryRollback = .flatten) {
        let plan = CanaryPlan(
            candidate: [candidate], version: "2", steps: steps, intervalNanos: intervalSeconds * 1_000_000_000,
            maxFailedChecks: maxFailedChecks, thresholds: CanaryThresholds(), killDrawdown: killDrawdown, rollback: rollback,
            startMarks: ["AAPL": price], by: "token ops (operator)", reason: "test", atNanos: now)
        run(commit(.canary(.start(plan))))
    }

    var canary: CanaryState? { core.state.canary }
    var intents: [OrderIntent] { core.state.orderList.map(\.intent) }
}

@Suite struct CanaryTests {
    static let sameAsBaseline = StrategySpec.maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 5, slowWindow: 20, quantity: 100))

    @Test("a candidate as good as the baseline passes every step's check and becomes the baseline")
    func goodCandidatePromotes() {
        var desk = CanaryDesk()
        #expect(desk.core.phase == .trading)
        for _ in 0..<300 { desk.tick() }
        desk.start(Self.sameAsBaseline, steps: [10, 50, 100], intervalSeconds: 60)
        #expect(desk.canary?.status == .running && desk.canary?.candidatePercent == 10)
        var percents: [Int] = []
        for _ in 0..<2_500 {
            desk.tick()
            if let p = desk.canary?.candidatePercent, desk.canary?.isActive == true, percents.last != p { percents.append(p) }
        }
        let canary = desk.canary
        #expect(canary?.status == .promoted, "\(canary?.checks.map(\.failures) ?? [])")
        #expect(percents == [10, 50, 100])
        #expect(canary?.passedChecks == 3 && canary?.failedChecks == 0)
        #expect(canary?.checks.allSatisfy { $0.outcome == "passed" } == true)
        #expect(desk.core.state.strategies["AAPL"]?.version == "2", "the candidate is the baseline now")
        #expect(desk.core.state.candidateBooks["AAPL"] == nil, "its sleeve is the whole position")
        // Both sleeves traded, at their shares, each intent saying whose it is.
        let candidate = desk.intents.filter { $0.signal.sleeve == .candidate }
        #expect(!candidate.isEmpty && candidate.allSatisfy { $0.signal.strategyVersion == "2" })
        #expect(desk.intents.contains { $0.signal.sleeve == .baseline && $0.signal.strategyVersion == "1" })
        #expect(candidate.contains { $0.quantity == 10 }, "10% of 100 at the first step")
        // After promotion the new baseline trades the whole quantity, outside any sleeve.
        for _ in 0..<600 { desk.tick() }
        let after = desk.intents.drop { $0.decidedAtNanos <= (canary?.decisions.last?.atNanos ?? 0) }
        #expect(after.allSatisfy { $0.signal.sleeve == nil && $0.signal.strategyVersion == "2" })
        #expect(abs(desk.core.state.position("AAPL")) <= 100)
    }

    @Test("a candidate that over-trades fails its checks and aborts at max_failed_checks; flatten takes its sleeve back to 0")
    func overTradingAborts() {
        var desk = CanaryDesk()
        for _ in 0..<300 { desk.tick() }
        let jumpy = StrategySpec.maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 1, slowWindow: 2, quantity: 100))
        desk.start(jumpy, steps: [25, 50, 100], intervalSeconds: 30, maxFailedChecks: 2)
        for _ in 0..<1_000 { desk.tick() }
        let canary = desk.canary
        #expect(canary?.status == .aborted)
        #expect(canary?.checks.count == 2, "aborted at the second failed check, not later")
        #expect(canary?.checks.allSatisfy { $0.outcome == "failed" && $0.failures.contains { $0.contains("orders against the baseline") } } == true)
        #expect(canary?.stepIndex == 0, "a failed check holds the step")
        #expect(canary?.endReason?.contains("2 failed checks (max 2)") == true)
        #expect(desk.core.state.candidateBooks["AAPL"]?.quantity == 0, "rolled back to flat")
        #expect(desk.core.state.strategies["AAPL"] == nil, "the baseline still runs the configured version")
        // The rollback's orders are the candidate's, after the abort; then it decides nothing more.
        let end = canary?.decisions.last?.atNanos ?? 0
        let late = desk.intents.filter { $0.signal.sleeve == .candidate && $0.decidedAtNanos > end }
        #expect(late.count <= 1 && late.allSatisfy { $0.signal.direction == .flat })
    }

    @Test("a candidate that loses against the baseline fails its PnL checks, aborts, and its position goes to the baseline")
    func losingCandidateAborts() {
        var desk = CanaryDesk()
        for _ in 0..<300 { desk.tick() }
        // A market that swings every 20 ticks: a 30-trade channel breaks out near each swing's
        // end and buys tops and sells bottoms, while MA(5)/MA(20) rides the swings.
        let lateBreakout = StrategySpec.channelBreakout(
            BreakoutParameters(symbol: "AAPL", lookback: 30, quantity: 100, allowShort: true, limitOffsetBps: nil))
        desk.start(lateBreakout, steps: [25, 50, 100], intervalSeconds: 30, maxFailedChecks: 2, rollback: .handToBaseline)
        for n in 0..<2_000 where desk.canary?.isActive == true { desk.tick(drift: n % 40 < 20 ? 500 : -500) }
        let canary = desk.canary
        #expect(canary?.status == .aborted)
        #expect(canary?.checks.count == 2 && canary?.stepIndex == 0, "two failed checks at the first step")
        for check in canary?.checks ?? [] {
            #expect(check.outcome == "failed" && check.failures.count == 1 && check.failures[0].hasPrefix("PnL per unit -"), "\(check.failures)")
            #expect(check.check.candidate.windowPnL < 0 && check.check.baseline.windowPnL > 0, "it lost while the baseline gained")
        }
        #expect(canary?.decisions.map(\.action) == ["start", "abort"] && canary?.decisions.last?.by == "canary analysis")
        #expect(desk.core.state.candidateBooks["AAPL"] == nil, "handed to the baseline")
        #expect(desk.core.state.strategies["AAPL"] == nil, "the baseline still runs the configured version")
        // From the abort on, every intent is the baseline's, at the whole quantity.
        let end = canary?.decisions.last?.atNanos ?? 0
        for _ in 0..<400 { desk.tick(drift: 0) }
        #expect(desk.intents.filter { $0.decidedAtNanos > end }.allSatisfy { $0.signal.sleeve == nil && $0.signal.strategyVersion == "1" })
        #expect(abs(desk.core.state.position("AAPL")) <= 100)
    }

    @Test("a drawdown beyond the kill limit aborts at once, without waiting for a check")
    func drawdownKills() {
        var desk = CanaryDesk()
        for _ in 0..<300 { desk.tick() }
        // A long interval: no interval check can happen in this test; only the kill can end it.
        desk.start(Self.sameAsBaseline, steps: [50, 100], intervalSeconds: 3_600, killDrawdown: 20 * 10_000)
        for n in 0..<3_000 where desk.canary?.isActive == true {
            // A rise the candidate buys into, then a fall it holds through.
            desk.tick(drift: n % 400 < 200 ? 400 : -800)
        }
        let canary = desk.canary
        #expect(canary?.status == .aborted, "\(desk.intents.filter { $0.signal.sleeve == .candidate }.count) candidate intents, \(desk.core.state.candidateBooks)")
        #expect(canary?.checks.count == 1 && canary?.checks.first?.outcome == "killed" && canary?.checks.first?.check.kill == true)
        #expect(canary?.endReason?.hasPrefix("drawdown ") == true)
        #expect((canary?.checks.first?.check.drawdown ?? 0) > 20 * 10_000)
        // Caught on the tick that crossed: within one tick's move (at most 0.18 on 50 shares).
        #expect((canary?.checks.first?.check.drawdown ?? 0) < 20 * 10_000 + 50 * 1_800)
    }

    @Test("a new leader restored from the journal holds the same step and measurements, and finishes the canary")
    func newLeaderContinues() {
        var desk = CanaryDesk()
        for _ in 0..<300 { desk.tick() }
        desk.start(Self.sameAsBaseline, steps: [10, 25, 50, 100], intervalSeconds: 60)
        while desk.canary?.stepIndex != 1 { desk.tick() }
        for _ in 0..<100 { desk.tick() }
        let before = desk.canary
        #expect(before?.stepIndex == 1 && before?.checks.count == 1)
        // The old leader dies; node 2 restores the journal and leads term 3.
        var next = CanaryDesk(node: 2, term: 3, journal: desk.log, now: desk.now + 2_000 * CanaryDesk.ms)
        next.price = desk.price
        #expect(next.canary == before, "the same step, checks and measurements, from the journal alone")
        #expect(next.core.phase == .trading)
        while next.canary?.isActive == true, next.sequence < 5_000 { next.tick() }
        #expect(next.canary?.status == .promoted, "\(next.log.suffix(3).map { "\($0.command)".prefix(300) })")
        #expect(next.canary?.checks.count == 4)
        #expect(next.canary?.checks.first == before?.checks.first, "the first step's check is the old leader's")
        #expect(next.core.state.strategies["AAPL"]?.version == "2")
    }

    @Test("manual decisions: promote steps, pause holds checks, abort hands the position to the baseline")
    func manualDecisions() {
        var desk = CanaryDesk()
        for _ in 0..<300 { desk.tick() }
        desk.start(Self.sameAsBaseline, steps: [10, 50, 100], intervalSeconds: 30, rollback: .handToBaseline)
        desk.run(desk.commit(.canary(.manual(action: .promote, by: "token ops (operator)", reason: "looks fine", atNanos: desk.now))))
        #expect(desk.canary?.candidatePercent == 50)
        desk.run(desk.commit(.canary(.manual(action: .pause, by: "token ops (operator)", reason: "lunch", atNanos: desk.now))))
        for _ in 0..<600 { desk.tick() }
        #expect(desk.canary?.status == .paused && desk.canary?.checks.isEmpty == true, "no check counts while paused")
        desk.run(desk.commit(.canary(.manual(action: .resume, by: "token ops (operator)", reason: "", atNanos: desk.now))))
        for _ in 0..<100 { desk.tick() }
        let held = desk.core.state.candidateBooks["AAPL"]?.quantity ?? 0
        desk.run(desk.commit(.canary(.manual(action: .abort, by: "token ops (operator)", reason: "changed my mind", atNanos: desk.now))))
        #expect(desk.canary?.status == .aborted && desk.canary?.endReason == "aborted by token ops (operator): changed my mind")
        #expect(desk.core.state.candidateBooks["AAPL"] == nil, "handed to the baseline: no sleeve, no order for it (held \(held))")
        #expect(desk.canary?.decisions.map(\.action) == ["start", "step", "pause", "resume", "abort"])
        #expect(desk.canary?.decisions.dropFirst().allSatisfy { $0.by == "token ops (operator)" } == true)
        // An ended canary takes no more decisions; a new one may start.
        let ignored = desk.commit(.canary(.manual(action: .promote, by: "x", reason: "", atNanos: desk.now)))
        #expect(ignored.contains(.report(.canary(.ignored("promote of an ended canary")))))
    }

    @Test("a broken or second canary start changes nothing on any replica")
    func refusedStarts() {
        var desk = CanaryDesk()
        for _ in 0..<50 { desk.tick() }
        func plan(_ steps: [Int]) -> CanaryPlan {
            CanaryPlan(
                candidate: [Self.sameAsBaseline], version: "2", steps: steps, intervalNanos: 60_000_000_000, maxFailedChecks: 2,
                thresholds: CanaryThresholds(), killDrawdown: 1, rollback: .flatten, by: "x", reason: "", atNanos: 0)
        }
        #expect(desk.commit(.canary(.start(plan([50, 25, 100])))).contains(.report(.canary(.ignored("canary not started: steps must rise from at least 1 to 100")))))
        #expect(desk.commit(.canary(.start(plan([5, 50])))).contains(.report(.canary(.ignored("canary not started: the last step must be 100")))))
        #expect(desk.canary == nil)
        _ = desk.commit(.canary(.start(plan([5, 100]))))
        #expect(desk.commit(.canary(.start(plan([5, 100])))).contains(.report(.canary(.ignored("a canary is already running")))))
    }

    @Test("the verdict names each broken limit; the baseline comparisons apply only while it holds a share")
    func verdicts() {
        var check = CanaryCheck(step: 0, fromNanos: 0, atNanos: 1, candidate: SleeveMeasurement(), baseline: SleeveMeasurement(), peakMarkToMarket: 0, kill: false)
        #expect(CanaryState.failures(of: check, thresholds: CanaryThresholds()).isEmpty, "nothing measured, nothing failed")
        check.candidate.orders = 10
        check.candidate.brokerRejects = 3
        check.candidate.orderedQuantity = 100
        check.candidate.filledQuantity = 70
        check.candidate.slippageBps = 80
        check.candidate.riskRefusals = 6
        check.candidate.allocation = 10
        check.candidate.windowPnL = -100_000
        check.baseline.allocation = 90
        check.baseline.orders = 2
        check.baseline.windowPnL = 900_000
        let failures = CanaryState.failures(of: check, thresholds: CanaryThresholds())
        #expect(failures.count == 6, "\(failures)")
        #expect(failures.contains("reject rate 3/10 above 200‰"))
        #expect(failures.contains("slippage 80 bps above 50 bps"))
        #expect(failures.contains("fill ratio 70/100 below 800‰"))
        #expect(failures.contains("6 risk-gate refusals above 5"))
        #expect(failures.contains("10 orders against the baseline's 2 (at most 6)"))
        #expect(failures.contains("PnL per unit -10000 against the baseline's 10000 (at most 5000 behind)"))
        check.baseline.allocation = 0
        #expect(CanaryState.failures(of: check, thresholds: CanaryThresholds()).count == 4, "at 100% there is no baseline to compare with")
    }
}
