public import BatonAlerting
import Prometheus

/// The SLOs the trading leader measures, around BatonAlerting's evaluator: it turns the trading
/// core's reports into good and bad SLI events, evaluates the burn-rate rules every 10 s, and
/// keeps the gauges `/metrics` shows. Owned by the TradingEngine actor.
///
/// The windows are this process's: only the leader sees the broker's answers, and a new leader
/// starts with empty windows (its burn rates build up from its own orders). Raised and resolved
/// rules are logged, counted and shown in `/slo`; paging through the alert plane comes with it.
struct ServiceLevels {
    static let orderAckName = "order-ack-latency"
    static let evaluationIntervalNanos: Int64 = 10_000_000_000

    private(set) var orderAck: SLOEvaluator
    let ackThresholdNanos: Int64
    private var lastEvaluation: Int64?

    init(objective: Double, threshold: Duration, periodDays: Int) throws(SLOEvaluator.InvalidObjective) {
        orderAck = try SLOEvaluator(
            ServiceLevelObjective(name: Self.orderAckName, objective: objective, period: .seconds(periodDays * 86_400)))
        ackThresholdNanos = Int64(threshold.nanosecondsClamped)
    }

    /// The broker's first answer came `latencyNanos` after the intent committed.
    mutating func orderAcknowledged(latencyNanos: Int64, now: Int64) {
        let inTime = latencyNanos <= ackThresholdNanos
        orderAck.record(good: inTime ? 1 : 0, bad: inTime ? 0 : 1, at: now)
    }

    /// No answer within the ack timeout: the order's fate is unknown, which is always bad.
    mutating func orderUnknown(now: Int64) {
        orderAck.record(bad: 1, at: now)
    }

    /// What changed since the last evaluation, at most every 10 s (nil: not yet time).
    mutating func evaluateIfDue(now: Int64) -> [SLOEvaluator.Directive]? {
        if let last = lastEvaluation, now - last < Self.evaluationIntervalNanos { return nil }
        lastEvaluation = now
        return orderAck.evaluate(at: now)
    }

    func status(now: Int64) -> [SLOEvaluator.Status] { [orderAck.status(at: now)] }
}

/// The gauges of one SLO: burn rate per window, budget left, and whether each rule fires.
final class ServiceLevelMetrics: Sendable {
    let burnRates: [String: Gauge]
    let budgetRemaining: Gauge
    let firing: [BurnRateRule: Gauge]

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
    }

    func publish(_ status: SLOEvaluator.Status, firingRules: Set<BurnRateRule>) {
        for window in status.windows { burnRates[window.window]?.set(window.burnRate) }
        budgetRemaining.set(status.budgetRemaining)
        for (rule, gauge) in firing { gauge.set(firingRules.contains(rule) ? 1.0 : 0.0) }
    }
}
