public import BatonAlerting
import Prometheus
import Synchronization

/// The SLOs a replica measures, around BatonAlerting's evaluator: it turns the trading core's
/// reports and once-a-second samples into good and bad SLI events, evaluates the burn-rate
/// rules every 10 s, and keeps the gauges `/metrics` shows. Owned by the TradingEngine actor.
///
/// - order-ack-latency (leader): the broker's first answer within the threshold of the commit.
/// - order-path (leader): a committed intent written to the broker within the bound.
/// - leader-availability (every replica): seconds in which this replica knows a leader. The
///   seconds without one are counted by the replicas that lived through them, so the next
///   leader's windows hold the gap.
/// - feed-freshness (every replica): seconds in which the active market-data source is healthy.
/// - admin-availability (every replica): this replica's answers on the token-guarded admin
///   routes that are not a 5xx (or a handler that failed); probes are not counted.
///
/// The windows are this process's: a new leader's order windows start with its own orders.
/// Raised and resolved rules are logged, exported and shown in `/slo`; on the leader they
/// become `slo-burn/…` incidents (IncidentRules).
struct ServiceLevels {
    static let orderAckName = "order-ack-latency"
    static let orderPathName = "order-path"
    static let leaderName = "leader-availability"
    static let feedName = "feed-freshness"
    static let adminName = "admin-availability"
    static let evaluationIntervalNanos: Int64 = 10_000_000_000

    struct Objectives {
        var orderAck = 0.999
        var ackThreshold: Duration = .milliseconds(250)
        var orderPath = 0.999
        var orderPathBound: Duration = .milliseconds(1000)
        var leader = 0.999
        var feed = 0.99
        var admin = 0.999
        var periodDays = 30
    }

    /// By name, in the order `/slo` shows them.
    private(set) var evaluators: [(name: String, evaluator: SLOEvaluator)]
    var orderAck: SLOEvaluator { evaluator(Self.orderAckName)! }
    let ackThresholdNanos: Int64
    let orderPathBoundNanos: Int64
    /// Intents committed while leading, until written (or counted late): ClOrdID → commit time.
    private var awaitingWrite: [String: Int64] = [:]
    private var lastEvaluation: Int64?
    private var sawLeader = false

    init(_ objectives: Objectives) throws(SLOEvaluator.InvalidObjective) {
        let period = Duration.seconds(objectives.periodDays * 86_400)
        evaluators = []
        for (name, objective) in [
            (Self.orderAckName, objectives.orderAck), (Self.orderPathName, objectives.orderPath),
            (Self.leaderName, objectives.leader), (Self.feedName, objectives.feed), (Self.adminName, objectives.admin),
        ] {
            evaluators.append((name, try SLOEvaluator(ServiceLevelObjective(name: name, objective: objective, period: period))))
        }
        ackThresholdNanos = Int64(objectives.ackThreshold.nanosecondsClamped)
        orderPathBoundNanos = Int64(objectives.orderPathBound.nanosecondsClamped)
    }

    /// The order-ack SLO alone, as before (tests and hand-built configurations).
    init(objective: Double, threshold: Duration, periodDays: Int) throws(SLOEvaluator.InvalidObjective) {
        try self.init(Objectives(orderAck: objective, ackThreshold: threshold, periodDays: periodDays))
    }

    func evaluator(_ name: String) -> SLOEvaluator? { evaluators.first { $0.name == name }?.evaluator }

    private mutating func record(_ name: String, good: UInt64 = 0, bad: UInt64 = 0, at now: Int64) {
        guard let i = evaluators.firstIndex(where: { $0.name == name }) else { return }
        evaluators[i].evaluator.record(good: good, bad: bad, at: now)
    }

    /// The broker's first answer came `latencyNanos` after the intent committed.
    mutating func orderAcknowledged(latencyNanos: Int64, now: Int64) {
        let inTime = latencyNanos <= ackThresholdNanos
        record(Self.orderAckName, good: inTime ? 1 : 0, bad: inTime ? 0 : 1, at: now)
    }

    /// No answer within the ack timeout: the order's fate is unknown, which is always bad.
    mutating func orderUnknown(now: Int64) {
        record(Self.orderAckName, bad: 1, at: now)
    }

    /// An intent committed while this replica leads: the order path's clock starts.
    mutating func intentCommitted(clOrdID: String, now: Int64) {
        if awaitingWrite.count >= 100_000 { sweepUnwritten(now: .max) }
        awaitingWrite[clOrdID] = now
    }

    /// Its NewOrderSingle was written.
    mutating func orderWritten(clOrdID: String, now: Int64) {
        guard let committed = awaitingWrite.removeValue(forKey: clOrdID) else { return }
        let inTime = now - committed <= orderPathBoundNanos
        record(Self.orderPathName, good: inTime ? 1 : 0, bad: inTime ? 0 : 1, at: now)
    }

    /// Orders not written within the bound are bad now (a later write does not make them good);
    /// an ex-leader's are dropped without a verdict (the next leader sends them).
    mutating func sweepUnwritten(now: Int64, leading: Bool = true) {
        guard leading else {
            awaitingWrite = [:]
            return
        }
        let late = awaitingWrite.filter { now == .max || now - $0.value > orderPathBoundNanos }
        for id in late.keys { awaitingWrite[id] = nil }
        if !late.isEmpty { record(Self.orderPathName, bad: UInt64(late.count), at: now == .max ? (late.values.max() ?? 0) : now) }
    }

    /// Once a second: whether this replica knows a leader, and whether the feed is fresh
    /// (nil: no feed configured or not connected yet; not counted).
    mutating func sample(leaderKnown: Bool, feedFresh: Bool?, now: Int64) {
        // Counted from the first leader this process sees: the election at start is no outage
        // (a cluster that never elects one is what the `BatonNoLeader` Prometheus rule pages).
        sawLeader = sawLeader || leaderKnown
        if sawLeader { record(Self.leaderName, good: leaderKnown ? 1 : 0, bad: leaderKnown ? 0 : 1, at: now) }
        if let feedFresh { record(Self.feedName, good: feedFresh ? 1 : 0, bad: feedFresh ? 0 : 1, at: now) }
    }

    /// The admin plane's answers since the last sample.
    mutating func adminAnswered(good: UInt64, bad: UInt64, now: Int64) {
        guard good + bad > 0 else { return }
        record(Self.adminName, good: good, bad: bad, at: now)
    }

    /// What changed since the last evaluation, at most every 10 s (nil: not yet time).
    mutating func evaluateIfDue(now: Int64) -> [SLOEvaluator.Directive]? {
        if let last = lastEvaluation, now - last < Self.evaluationIntervalNanos { return nil }
        lastEvaluation = now
        var changes: [SLOEvaluator.Directive] = []
        for i in evaluators.indices { changes += evaluators[i].evaluator.evaluate(at: now) }
        return changes
    }

    func status(now: Int64) -> [SLOEvaluator.Status] { evaluators.map { $0.evaluator.status(at: now) } }
}

/// The gauges of one SLO: burn rate per window, budget left, and whether each rule fires.
final class ServiceLevelMetrics: Sendable {
    let burnRates: [String: Gauge]
    let budgetRemaining: Gauge
    let firing: [BurnRateRule: Gauge]
    /// The SLI's events since start, good and bad (what the Prometheus recording rules read).
    let good: Counter
    let bad: Counter
    private let published = Mutex(SLICounts())

    init(objective: ServiceLevelObjective, node: String, registry: PrometheusCollectorRegistry) {
        let base = [("node", node), ("slo", objective.name)]
        var windows = Set([objective.periodNanos])
        for rule in objective.rules {
            windows.insert(rule.longWindowNanos)
            windows.insert(rule.shortWindowNanos)
        }
        var burnRates: [String: Gauge] = [:]
        for window in windows {
            let name = windowName(window)
            burnRates[name] = registry.makeGauge(
                name: "baton_slo_burn_rate", labels: base + [("window", name)],
                help: "Error ratio over the window divided by the error budget (1 = spending exactly the budget)")
        }
        self.burnRates = burnRates
        budgetRemaining = registry.makeGauge(
            name: "baton_slo_error_budget_remaining_ratio", labels: base,
            help: "Share of the SLO period's error budget left (below 0: overspent)")
        var firing: [BurnRateRule: Gauge] = [:]
        for rule in objective.rules {
            firing[rule] = registry.makeGauge(
                name: "baton_slo_alert_firing",
                labels: base + [
                    ("severity", rule.severity.rawValue), ("long_window", windowName(rule.longWindowNanos)),
                    ("short_window", windowName(rule.shortWindowNanos)),
                ],
                help: "1 while both windows of the burn-rate rule burn faster than its rate")
        }
        self.firing = firing
        good = registry.makeCounter(
            name: "baton_slo_events_total", labels: base + [("outcome", "good")],
            help: "SLI events counted by this replica, by outcome (good or bad)")
        bad = registry.makeCounter(
            name: "baton_slo_events_total", labels: base + [("outcome", "bad")],
            help: "SLI events counted by this replica, by outcome (good or bad)")
    }

    func publish(_ status: SLOEvaluator.Status, firingRules: Set<BurnRateRule>, totals: SLICounts) {
        let (newGood, newBad) = published.withLock { last in
            defer { last = totals }
            return (totals.good &- min(last.good, totals.good), totals.bad &- min(last.bad, totals.bad))
        }
        if newGood > 0 { good.increment(by: Int64(clamping: newGood)) }
        if newBad > 0 { bad.increment(by: Int64(clamping: newBad)) }
        for window in status.windows { burnRates[window.window]?.set(window.burnRate) }
        budgetRemaining.set(status.budgetRemaining)
        for (rule, gauge) in firing { gauge.set(firingRules.contains(rule) ? 1.0 : 0.0) }
    }
}
