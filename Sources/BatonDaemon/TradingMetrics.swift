public import Prometheus

/// The trading engine's Prometheus metrics (same registry as the daemon's).
public final class TradingMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let nodeLabel: String
    let ticks: Counter
    let signals: Counter
    let intents: Counter
    let riskRejections: Counter
    let ordersSent: Counter
    let fills: Counter
    /// Orders whose fate became unknown: the order-ack SLI's bad events beside slow answers.
    let ordersUnknown: Counter
    let duplicateReports: Counter
    let reportsOnFollower: Counter
    let anomalies: Counter
    let canaryAborts: Counter
    let halts: Counter
    /// Hand-overs this replica asked for because it could not reach the broker while leading.
    let brokerHandOvers: Counter
    let shadowAgreements: Counter
    let shadowDivergences: Counter
    /// Tick received → NewOrderSingle written, on the replica that decided and sent.
    let tickToOrder: DurationHistogram
    /// How long a planned hand-over waited for this leader's in-flight orders to be answered.
    let handOverDrainSeconds: DurationHistogram
    /// Intent committed → the broker's first answer, on the leader (the order-ack SLI).
    let orderAckSeconds: DurationHistogram
    let phaseGauges: [TradingEngine.Phase: Gauge]

    public init(node: UInt64, registry: PrometheusCollectorRegistry) {
        self.registry = registry
        nodeLabel = "\(node)"
        let labels = [("node", nodeLabel)]
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(name: name, labels: labels, help: help)
        }
        ticks = counter("baton_strategy_ticks_total", "Market ticks fed to the strategies")
        signals = counter("baton_strategy_signals_total", "Direction changes the strategies produced (leader and shadow)")
        intents = counter("baton_trading_intents_total", "Order intents committed")
        riskRejections = counter("baton_trading_risk_rejections_total", "Signals the risk gate rejected (committed)")
        ordersSent = counter("baton_trading_orders_sent_total", "NewOrderSingle messages this replica wrote")
        fills = counter("baton_trading_fills_total", "Fills journaled")
        ordersUnknown = counter(
            "baton_trading_orders_unknown_total",
            "Orders this leader wrote with no answer within trading.ack_timeout_ms, or lost with the connection mid-write")
        duplicateReports = counter("baton_trading_duplicate_reports_total", "ExecutionReports dropped as already journaled (by ExecID)")
        reportsOnFollower = counter("baton_trading_reports_on_follower_total", "ExecutionReports that arrived while not leader")
        anomalies = counter("baton_trading_anomalies_total", "Journal or broker messages that made no sense (see logs)")
        canaryAborts = counter("baton_canary_aborts_total", "Canaries aborted and rolled back (by analysis, the kill limit or an operator)")
        halts = counter("baton_trading_halts_total", "Times trading went HALTED because reconciliation could not finish")
        brokerHandOvers = counter(
            "baton_trading_broker_handovers_total",
            "Leadership hand-overs this replica asked for because its broker session stayed down while it led (venue.hand_over_after_ms)")
        shadowAgreements = counter("baton_strategy_shadow_agreement_total", "Committed leader decisions this follower's own strategy agreed with")
        shadowDivergences = counter("baton_strategy_shadow_divergence_total", "Committed leader decisions this follower's own strategy disagreed with")
        tickToOrder = registry.makeDurationHistogram(
            name: "baton_tick_to_order_seconds", labels: labels,
            buckets: [
                .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(3),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1),
            ],
            help: "Tick received to NewOrderSingle written, including the quorum commit of the intent")
        handOverDrainSeconds = registry.makeDurationHistogram(
            name: "baton_trading_handover_drain_seconds", labels: labels,
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .seconds(1),
            ],
            help: "Planned hand-over: time from stopping sends to every in-flight order answered (or past max_order_age)")
        orderAckSeconds = registry.makeDurationHistogram(
            name: "baton_order_ack_seconds", labels: labels,
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
            ],
            help: "Order intent committed to the broker's first answer to it (the order acknowledgement SLI)")
        var phases: [TradingEngine.Phase: Gauge] = [:]
        for phase in [TradingEngine.Phase.follower, .waiting, .reconciling, .trading, .halted] {
            phases[phase] = registry.makeGauge(
                name: "baton_trading_phase", labels: labels + [("phase", phase.rawValue)],
                help: "1 for the trading phase this replica is in")
        }
        phaseGauges = phases
        phaseGauges[.follower]?.set(1.0)
    }

    func setPhase(_ phase: TradingEngine.Phase) {
        for (p, gauge) in phaseGauges { gauge.set(p == phase ? 1.0 : 0.0) }
    }

    func setPosition(_ symbol: String, _ quantity: Int64) {
        registry.makeGauge(
            name: "baton_trading_position", labels: [("node", nodeLabel), ("symbol", symbol)],
            help: "Net position per symbol, derived from journaled fills"
        ).set(Double(quantity))
    }
}

extension DurationHistogram {
    func recordNanoseconds(_ nanos: Int64) { record(.nanoseconds(nanos)) }
}
