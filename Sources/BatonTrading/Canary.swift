/// Which of a symbol's two strategies an intent belongs to while a canary runs on it: the
/// account holds one position per symbol, and the candidate's part of it is kept apart (its
/// own quantity and cash flow) so that each sleeve's fills, PnL and drawdown can be judged.
public enum Sleeve: String, Codable, Sendable, Hashable {
    case baseline, candidate
}

/// What the candidate's fills did to a sleeve: its quantity and the cash its fills moved
/// (price units × quantity, negative for buying). Mark-to-market PnL is `cash + quantity × mark`,
/// which adds up across sleeves to the account's, whatever nets against what.
public struct SleeveBook: Codable, Sendable, Hashable {
    public var quantity: Int64 = 0
    public var cash: Int64 = 0

    public init(quantity: Int64 = 0, cash: Int64 = 0) {
        self.quantity = quantity
        self.cash = cash
    }

    public func markToMarket(at mark: Int64) -> Int64 {
        Int64(clamping: Int128(cash) + Int128(quantity) * Int128(mark))
    }
}

/// How the candidate's position goes when a canary aborts (`trading.canary.rollback`).
public enum CanaryRollback: String, Codable, Sendable, Hashable, CaseIterable {
    /// The leader sends orders that take the candidate's sleeve back to flat.
    case flatten
    /// The baseline takes the position over as its own (no order), then trades it to its target.
    case handToBaseline = "hand-to-baseline"
}

/// Each analysis check's limits (`trading.canary.*`). Whole numbers on purpose: a check's
/// verdict is recomputed from its journaled measurements by every replica.
public struct CanaryThresholds: Codable, Sendable, Hashable {
    /// Broker rejects per thousand of the candidate's orders in the window.
    public var maxRejectPermille: Int = 200
    /// Quantity-weighted adverse slippage of its fills against the arrival (signal) price, bps.
    public var maxSlippageBps: Int = 50
    /// Filled per thousand ordered (orders that reached an end in the window).
    public var minFillPermille: Int = 800
    /// The candidate's window PnL per unit of allocated quantity may trail the baseline's by at
    /// most this many price units (0.50 a share by default).
    public var maxPnLShortfallPerUnit: Int64 = 5_000
    /// Its orders in the window: at most this percentage of the baseline's, and never counted
    /// against it below `orderCountFloor`.
    public var maxOrderRatePercent: Int = 300
    public var orderCountFloor: Int = 4
    /// Risk-gate refusals of its signals in the window.
    public var maxRiskRefusals: Int = 5

    public init() {}

    public var problems: [String] {
        var out: [String] = []
        if !(0...1000).contains(maxRejectPermille) { out.append("max_reject_rate must be from 0 to 1 (as permille 0…1000)") }
        if !(0...10_000).contains(maxSlippageBps) { out.append("max_slippage_bps must be from 0 to 10000") }
        if !(0...1000).contains(minFillPermille) { out.append("min_fill_ratio must be from 0 to 1") }
        if maxPnLShortfallPerUnit < 0 { out.append("max_pnl_shortfall must not be negative") }
        if !(1...100_000).contains(maxOrderRatePercent) { out.append("max_order_rate_percent must be from 1 to 100000") }
        if !(0...1_000_000).contains(orderCountFloor) { out.append("order_count_floor must be from 0 to 1000000") }
        if !(0...1_000_000).contains(maxRiskRefusals) { out.append("max_risk_refusals must be from 0 to 1000000") }
        return out
    }
}

/// A canary an operator started (`batonctl canary start`): the candidate strategy version, the
/// steps of capital it gets, how often it is judged and what ends it.
public struct CanaryPlan: Codable, Sendable, Hashable {
    /// The candidate, one spec per symbol it runs on (beside those symbols' baselines).
    public var candidate: [StrategySpec]
    public var version: String
    /// Percentages of each symbol's quantity the candidate gets, rising, the last 100.
    public var steps: [Int]
    public var intervalNanos: Int64
    public var maxFailedChecks: Int
    public var thresholds: CanaryThresholds
    /// A candidate drawdown (from its mark-to-market peak, price units × quantity) beyond this
    /// aborts at once.
    public var killDrawdown: Int64
    public var rollback: CanaryRollback
    /// The last trade price per symbol where the operator's replica started it: the baseline's
    /// mark-to-market at the start, for the first window's PnL.
    public var startMarks: [String: Int64]
    public var by: String
    public var reason: String
    public var atNanos: Int64

    public init(
        candidate: [StrategySpec], version: String, steps: [Int], intervalNanos: Int64, maxFailedChecks: Int,
        thresholds: CanaryThresholds, killDrawdown: Int64, rollback: CanaryRollback, startMarks: [String: Int64] = [:],
        by: String, reason: String, atNanos: Int64
    ) {
        self.startMarks = startMarks
        self.candidate = candidate
        self.version = version
        self.steps = steps
        self.intervalNanos = intervalNanos
        self.maxFailedChecks = maxFailedChecks
        self.thresholds = thresholds
        self.killDrawdown = killDrawdown
        self.rollback = rollback
        self.by = by
        self.reason = reason
        self.atNanos = atNanos
    }

    public var strategyName: String { candidate.first?.name ?? "?" }
    public var symbols: [String] { candidate.map(\.symbol) }

    /// Why a replica would not start it (nil: sound); checked on apply, like a deployment.
    public var problem: String? {
        if candidate.isEmpty { return "it covers no symbol" }
        if Set(candidate.map(\.symbol)).count != candidate.count { return "it names a symbol twice" }
        if Set(candidate.map(\.name)).count != 1 { return "the candidate is one strategy on every symbol" }
        if version.isEmpty || version.utf8.count > 32 { return "version must be 1 to 32 bytes" }
        if let bad = candidate.first(where: { !$0.problems.isEmpty }) { return "\(bad.symbol): \(bad.problems.joined(separator: "; "))" }
        if steps.isEmpty || steps.count > 20 { return "steps must list 1 to 20 percentages" }
        if steps.last != 100 { return "the last step must be 100" }
        if steps.first.map({ $0 < 1 }) ?? true || zip(steps, steps.dropFirst()).contains(where: { $0 >= $1 }) {
            return "steps must rise from at least 1 to 100"
        }
        if !(1_000_000_000...86_400_000_000_000).contains(intervalNanos) { return "interval must be from 1 s to 24 h" }
        if !(1...100).contains(maxFailedChecks) { return "max failed checks must be from 1 to 100" }
        if killDrawdown <= 0 { return "kill drawdown must be positive" }
        if let bad = thresholds.problems.first { return bad }
        return nil
    }
}

/// What one sleeve did over a check's window, as the leader measured it (journaled: a new
/// leader judges from these, never from what it would measure itself).
public struct SleeveMeasurement: Codable, Sendable, Hashable {
    public var orders = 0
    public var brokerRejects = 0
    public var riskRefusals = 0
    /// Of orders in the window that reached an end.
    public var orderedQuantity: Int64 = 0
    public var filledQuantity: Int64 = 0
    /// Quantity-weighted adverse slippage against the arrival price, bps (negative: better).
    public var slippageBps = 0
    /// Mark-to-market PnL change over the window, and since the canary started (price units ×
    /// quantity; a fill's cash and the position at the leader's last trade price).
    public var windowPnL: Int64 = 0
    public var markToMarket: Int64 = 0
    /// The quantity its share of the step allocates, summed over the symbols.
    public var allocation: Int64 = 0

    public init() {}
}

public struct CanaryCheck: Codable, Sendable, Hashable {
    /// The step (index into `steps`) this check judges; a check of another step is stale.
    public var step: Int
    public var fromNanos: Int64
    public var atNanos: Int64
    public var candidate: SleeveMeasurement
    public var baseline: SleeveMeasurement
    /// The candidate's highest mark-to-market seen so far, for the drawdown.
    public var peakMarkToMarket: Int64
    /// Proposed because the drawdown passed the kill limit (between interval checks).
    public var kill: Bool

    public init(
        step: Int, fromNanos: Int64, atNanos: Int64, candidate: SleeveMeasurement, baseline: SleeveMeasurement,
        peakMarkToMarket: Int64, kill: Bool
    ) {
        self.step = step
        self.fromNanos = fromNanos
        self.atNanos = atNanos
        self.candidate = candidate
        self.baseline = baseline
        self.peakMarkToMarket = peakMarkToMarket
        self.kill = kill
    }

    public var drawdown: Int64 { max(0, peakMarkToMarket - candidate.markToMarket) }
}

public enum CanaryAction: String, Codable, Sendable, Hashable, CaseIterable {
    case promote, promoteFull = "promote-full", abort, pause, resume
}

public enum CanaryCommand: Codable, Sendable, Hashable {
    case start(CanaryPlan)
    case check(CanaryCheck)
    /// An operator's decision, audited with who.
    case manual(action: CanaryAction, by: String, reason: String, atNanos: Int64)
}

/// A journaled check and what came of it.
public struct CanaryCheckRecord: Codable, Sendable, Hashable {
    public var check: CanaryCheck
    /// "passed", "failed", "killed".
    public var outcome: String
    /// Each failed limit, in words.
    public var failures: [String]
    public var index: UInt64
}

/// A step change, a pause, a promotion, an abort: who or what decided it, and when.
public struct CanaryDecision: Codable, Sendable, Hashable {
    public var atNanos: Int64
    public var action: String
    public var by: String
    public var detail: String
    /// The step percentage in force after it.
    public var percent: Int
    public var index: UInt64
}

/// The canary controller: a pure state machine in the replicated trading state. Every replica
/// applies the same journaled commands (start, the leader's checks with their measurements,
/// operators' decisions) and so holds the same step, counts and verdicts; a new leader goes on
/// judging the step where the journal left it.
public struct CanaryState: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        case running, paused, promoted, aborted
    }

    public var plan: CanaryPlan
    public var status: Status = .running
    public var stepIndex = 0
    /// Where the current analysis window began (the start, the last check or the resume).
    public var windowStartNanos: Int64
    public var passedChecks = 0
    public var failedChecks = 0
    public var peakMarkToMarket: Int64 = 0
    public var checks: [CanaryCheckRecord] = []
    public var decisions: [CanaryDecision] = []
    public var startIndex: UInt64
    public var endReason: String?
    /// Each sleeve's mark-to-market where the PnL window began: at the start (from the plan's
    /// marks) and then at each journaled check. PnL windows run from check to check.
    public var baseCandidateMarkToMarket: Int64 = 0
    public var baseBaselineMarkToMarket: Int64 = 0
    public static let maxChecksKept = 1_000

    init(plan: CanaryPlan, index: UInt64, baselineMarkToMarket: Int64) {
        self.plan = plan
        baseBaselineMarkToMarket = baselineMarkToMarket
        windowStartNanos = plan.atNanos
        startIndex = index
        decisions = [
            CanaryDecision(
                atNanos: plan.atNanos, action: "start", by: plan.by,
                detail: "\(plan.strategyName) v\(plan.version) on \(plan.symbols.joined(separator: ",")), steps \(plan.steps.map(String.init).joined(separator: ",")): \(plan.reason)",
                percent: plan.steps[0], index: index)
        ]
    }

    public var isActive: Bool { status == .running || status == .paused }

    /// The candidate's share of each symbol's quantity now (0 once it ended: an aborted
    /// candidate has none, a promoted one became the baseline).
    public var candidatePercent: Int { isActive ? plan.steps[stepIndex] : 0 }

    public enum Effect: Sendable, Hashable {
        case started(CanaryState)
        /// The shares moved (a step, a pause does not): both sleeves aim at new targets.
        case stepChanged(percent: Int)
        case checked(CanaryCheckRecord)
        case paused(Bool)
        case promoted(CanaryState)
        case aborted(CanaryState)
        case ignored(String)
    }

    /// The verdict on a check's measurements: each limit it broke, in words (empty: passed).
    /// Limits with nothing to measure pass (no orders: no reject rate), and the comparisons with
    /// the baseline only apply while the baseline holds a share.
    public static func failures(of check: CanaryCheck, thresholds t: CanaryThresholds) -> [String] {
        var out: [String] = []
        let c = check.candidate
        let b = check.baseline
        if c.orders > 0, c.brokerRejects * 1000 > t.maxRejectPermille * c.orders {
            out.append("reject rate \(c.brokerRejects)/\(c.orders) above \(t.maxRejectPermille)‰")
        }
        if c.filledQuantity > 0, c.slippageBps > t.maxSlippageBps {
            out.append("slippage \(c.slippageBps) bps above \(t.maxSlippageBps) bps")
        }
        if c.orderedQuantity > 0, Int128(c.filledQuantity) * 1000 < Int128(t.minFillPermille) * Int128(c.orderedQuantity) {
            out.append("fill ratio \(c.filledQuantity)/\(c.orderedQuantity) below \(t.minFillPermille)‰")
        }
        if c.riskRefusals > t.maxRiskRefusals {
            out.append("\(c.riskRefusals) risk-gate refusals above \(t.maxRiskRefusals)")
        }
        if b.allocation > 0 {
            let allowed = max(t.orderCountFloor, b.orders * t.maxOrderRatePercent / 100)
            if c.orders > allowed {
                out.append("\(c.orders) orders against the baseline's \(b.orders) (at most \(allowed))")
            }
            if c.allocation > 0 {
                // Per unit of allocated quantity, so a 5% sleeve is compared fairly with a 95% one.
                let mine = Int128(c.windowPnL) / Int128(c.allocation)
                let theirs = Int128(b.windowPnL) / Int128(b.allocation)
                if theirs - mine > Int128(t.maxPnLShortfallPerUnit) {
                    out.append("PnL per unit \(mine) against the baseline's \(theirs) (at most \(t.maxPnLShortfallPerUnit) behind)")
                }
            }
        }
        return out
    }

    mutating func apply(_ command: CanaryCommand, index: UInt64) -> [Effect] {
        switch command {
        case .start:
            return [.ignored("a canary is already \(status.rawValue)")]
        case .check(let check):
            guard isActive else { return [.ignored("check of an ended canary")] }
            guard check.step == stepIndex, check.fromNanos == windowStartNanos || check.kill else {
                return [.ignored("stale check of step \(check.step + 1)")]
            }
            peakMarkToMarket = max(peakMarkToMarket, check.peakMarkToMarket, check.candidate.markToMarket)
            let drawdown = peakMarkToMarket - check.candidate.markToMarket
            if drawdown > plan.killDrawdown {
                let reason = "drawdown \(drawdown) beyond the kill limit \(plan.killDrawdown)"
                let record = CanaryCheckRecord(check: check, outcome: "killed", failures: [reason], index: index)
                keep(record)
                return [.checked(record)] + end(.aborted, action: "abort", by: "canary analysis", detail: reason, at: check.atNanos, index: index)
            }
            guard !check.kill else { return [.ignored("kill check without a drawdown beyond the limit")] }
            guard status == .running else { return [.ignored("check while paused")] }
            let failures = Self.failures(of: check, thresholds: plan.thresholds)
            let record = CanaryCheckRecord(check: check, outcome: failures.isEmpty ? "passed" : "failed", failures: failures, index: index)
            keep(record)
            windowStartNanos = check.atNanos
            baseCandidateMarkToMarket = check.candidate.markToMarket
            baseBaselineMarkToMarket = check.baseline.markToMarket
            if failures.isEmpty {
                passedChecks += 1
                return [.checked(record)] + advance(by: "canary analysis", detail: "check passed", at: check.atNanos, index: index)
            }
            failedChecks += 1
            guard failedChecks >= plan.maxFailedChecks else { return [.checked(record)] }
            let reason = "\(failedChecks) failed checks (max \(plan.maxFailedChecks)): \(failures.joined(separator: "; "))"
            return [.checked(record)] + end(.aborted, action: "abort", by: "canary analysis", detail: reason, at: check.atNanos, index: index)
        case .manual(let action, let by, let reason, let at):
            guard isActive else { return [.ignored("\(action.rawValue) of an ended canary")] }
            switch action {
            case .promote:
                windowStartNanos = at
                return advance(by: by, detail: "promoted by hand: \(reason)", at: at, index: index)
            case .promoteFull:
                return end(.promoted, action: "promote-full", by: by, detail: reason, at: at, index: index)
            case .abort:
                return end(.aborted, action: "abort", by: by, detail: "aborted by \(by): \(reason)", at: at, index: index)
            case .pause, .resume:
                let pausing = action == .pause
                guard (status == .paused) != pausing else { return [.ignored("already \(status.rawValue)")] }
                status = pausing ? .paused : .running
                // A resumed canary is judged on a fresh window: a paused stretch is no evidence.
                if !pausing { windowStartNanos = at }
                note(action.rawValue, by: by, detail: reason, at: at, index: index)
                return [.paused(pausing)]
            }
        }
    }

    private mutating func advance(by: String, detail: String, at: Int64, index: UInt64) -> [Effect] {
        guard stepIndex + 1 < plan.steps.count else {
            return end(.promoted, action: "promote", by: by, detail: "\(detail); every step passed", at: at, index: index)
        }
        stepIndex += 1
        note("step", by: by, detail: detail, at: at, index: index)
        return [.stepChanged(percent: candidatePercent)]
    }

    private mutating func end(_ outcome: Status, action: String, by: String, detail: String, at: Int64, index: UInt64) -> [Effect] {
        status = outcome
        endReason = detail
        note(action, by: by, detail: detail, at: at, index: index)
        return [outcome == .promoted ? .promoted(self) : .aborted(self)]
    }

    private mutating func note(_ action: String, by: String, detail: String, at: Int64, index: UInt64) {
        decisions.append(CanaryDecision(atNanos: at, action: action, by: by, detail: String(detail.prefix(500)), percent: candidatePercent, index: index))
        if decisions.count > Self.maxChecksKept { decisions.removeFirst() }
    }

    private mutating func keep(_ record: CanaryCheckRecord) {
        checks.append(record)
        if checks.count > Self.maxChecksKept { checks.removeFirst() }
    }
}

/// The leader's measurement of a canary's window, a pure function of the replicated state and
/// the marks (the leader's last trade price per symbol).
public enum CanaryMeter {
    /// `part` of `quantity` in whole units, toward zero.
    public static func share(_ quantity: Int64, percent: Int) -> Int64 {
        Int64(Int128(quantity) * Int128(percent) / 100)
    }

    public static func measure(
        _ state: TradingState, canary: CanaryState, baselineQuantities: [String: Int64], to: Int64,
        marks: [String: Int64], kill: Bool
    ) -> CanaryCheck {
        let from = canary.windowStartNanos
        var candidate = SleeveMeasurement()
        var baseline = SleeveMeasurement()
        let symbols = Set(canary.plan.symbols)
        let percent = canary.candidatePercent
        for spec in canary.plan.candidate {
            candidate.allocation += share(spec.quantity, percent: percent)
            if let base = baselineQuantities[spec.symbol] { baseline.allocation += share(base, percent: 100 - percent) }
        }
        // Newest first, until the window's start: only the window is walked.
        for order in state.orderList.reversed() {
            guard order.intent.decidedAtNanos > from else { break }
            guard order.intent.decidedAtNanos <= to, symbols.contains(order.symbol) else { continue }
            let isCandidate = order.intent.signal.sleeve == .candidate
            var m = isCandidate ? candidate : baseline
            m.orders += 1
            if order.status == .rejected { m.brokerRejects += 1 }
            if order.status.isTerminal {
                m.orderedQuantity += order.intent.quantity
                m.filledQuantity += order.cumulativeQuantity
            }
            if isCandidate { candidate = m } else { baseline = m }
        }
        candidate.slippageBps = slippage(state, symbols: symbols, sleeve: .candidate, from: from, to: to)
        baseline.slippageBps = slippage(state, symbols: symbols, sleeve: .baseline, from: from, to: to)
        for rejection in state.rejections.reversed() {
            guard rejection.decidedAtNanos > from else { break }
            guard symbols.contains(rejection.signal.symbol), RiskGate.limit(of: rejection.reason) != nil else { continue }
            if rejection.signal.sleeve == .candidate { candidate.riskRefusals += 1 } else { baseline.riskRefusals += 1 }
        }
        var candidateMTM: Int64 = 0
        var baselineMTM: Int64 = 0
        for symbol in symbols {
            guard let mark = marks[symbol] else { continue }
            let book = state.candidateBooks[symbol] ?? SleeveBook()
            candidateMTM = candidateMTM &+ book.markToMarket(at: mark)
            let account = SleeveBook(quantity: state.position(symbol), cash: state.cashFlows[symbol] ?? 0)
            baselineMTM = baselineMTM &+ SleeveBook(quantity: account.quantity - book.quantity, cash: account.cash - book.cash).markToMarket(at: mark)
        }
        // The window's PnL is the change since the last journaled check (or the start).
        candidate.markToMarket = candidateMTM
        baseline.markToMarket = baselineMTM
        candidate.windowPnL = candidateMTM &- canary.baseCandidateMarkToMarket
        baseline.windowPnL = baselineMTM &- canary.baseBaselineMarkToMarket
        return CanaryCheck(
            step: canary.stepIndex, fromNanos: canary.windowStartNanos, atNanos: to, candidate: candidate, baseline: baseline,
            peakMarkToMarket: max(canary.peakMarkToMarket, candidateMTM), kill: kill)
    }

    /// Quantity-weighted adverse slippage of the sleeve's filled orders decided in the window,
    /// against each order's arrival price (the trade that triggered its signal), bps.
    static func slippage(_ state: TradingState, symbols: Set<String>, sleeve: Sleeve, from: Int64, to: Int64) -> Int {
        var weighted: Int128 = 0
        var quantity: Int128 = 0
        for order in state.orderList.reversed() {
            guard order.intent.decidedAtNanos > from else { break }
            guard symbols.contains(order.symbol), (order.intent.signal.sleeve ?? .baseline) == sleeve,
                order.cumulativeQuantity > 0, order.intent.signal.tickPrice > 0
            else { continue }
            let arrival = Int128(order.intent.signal.tickPrice)
            let adverse = (Int128(order.averagePrice) - arrival) * Int128(order.intent.side.sign)
            weighted += adverse * 10_000 * Int128(order.cumulativeQuantity) / arrival
            quantity += Int128(order.cumulativeQuantity)
        }
        guard quantity > 0 else { return 0 }
        return Int(clamping: Int64(clamping: weighted / quantity))
    }
}
