/// Limits the risk gate enforces.
public struct RiskLimits: Sendable, Hashable, Codable {
    public var maxOrdersPerMinute: Int
    public var maxOrdersPerHour: Int
    /// Largest absolute position per symbol.
    public var maxPosition: Int64
    /// Largest single order quantity.
    public var maxOrderQuantity: Int64

    public init(maxOrdersPerMinute: Int = 10, maxOrdersPerHour: Int = 200, maxPosition: Int64 = 1_000, maxOrderQuantity: Int64 = 1_000) {
        self.maxOrdersPerMinute = maxOrdersPerMinute
        self.maxOrdersPerHour = maxOrdersPerHour
        self.maxPosition = maxPosition
        self.maxOrderQuantity = maxOrderQuantity
    }

    public var problems: [String] {
        var out: [String] = []
        if maxOrdersPerMinute < 1 { out.append("max orders per minute must be at least 1") }
        if maxOrdersPerHour < maxOrdersPerMinute { out.append("max orders per hour must be at least the per-minute limit") }
        if maxPosition < 1 { out.append("max position must be positive") }
        if maxOrderQuantity < 1 { out.append("max order quantity must be positive") }
        return out
    }
}

/// The risk gate's answer to one signal.
public enum RiskDecision: Sendable, Hashable {
    case approved(side: OrderSide, quantity: Int64, checks: String)
    case rejected(reason: String)
}

/// A pure function of the replicated state: the leader runs it to decide, followers run it in
/// shadow on the same state and so reach the same answer for the same signal.
public enum RiskGate {
    /// - Parameters:
    ///   - inFlight: symbols with an intent proposed but not yet committed (the leader's own,
    ///     not yet in `state`); followers pass an empty set.
    ///   - intentsInFlight: how many of those are order intents. They count against the rate
    ///     limits as if committed: intents for two symbols can be committing at once, and each
    ///     alone would fit the window that both together exceed.
    public static func evaluate(
        _ signal: StrategySignal, state: TradingState, limits: RiskLimits, now: Int64, inFlight: Set<String> = [],
        intentsInFlight: Int = 0
    ) -> RiskDecision {
        let symbol = signal.origin.symbol
        if state.paused {
            return .rejected(reason: "trading paused: \(state.pauseReason ?? "by an operator")")
        }
        if inFlight.contains(symbol) {
            return .rejected(reason: "an intent for \(symbol) is being committed")
        }
        if let open = state.openOrder(for: symbol) {
            return .rejected(reason: "order \(open.clOrdID) for \(symbol) is in flight (\(open.status.rawValue))")
        }
        // While a canary runs on the symbol each sleeve trades its own part of the position;
        // the cap holds for the account's whole position after the order.
        let sleeve = signal.origin.sleeve
        let current = state.sleevePosition(symbol, sleeve)
        let target = signal.targetQuantity
        let whole = state.position(symbol) - current + target
        let part = sleeve.map { " (\($0.rawValue) sleeve)" } ?? ""
        if current == target {
            let word = target > 0 ? "long" : target < 0 ? "short" : "flat"
            return .rejected(reason: "already \(word) \(abs(current)) \(symbol)\(part)")
        }
        if abs(whole) > limits.maxPosition {
            return .rejected(reason: "target position \(whole) \(symbol) exceeds the cap of \(limits.maxPosition)")
        }
        let quantity = abs(target - current)
        if quantity > limits.maxOrderQuantity {
            return .rejected(
                reason: "order quantity \(quantity) \(symbol) exceeds the cap of \(limits.maxOrderQuantity)")
        }
        let lastMinute = state.intents(within: 60_000_000_000, before: now) + intentsInFlight
        if lastMinute >= limits.maxOrdersPerMinute {
            return .rejected(
                reason: "rate limit: \(lastMinute) orders in the last minute (max \(limits.maxOrdersPerMinute))")
        }
        let lastHour = state.intents(within: 3_600_000_000_000, before: now) + intentsInFlight
        if lastHour >= limits.maxOrdersPerHour {
            return .rejected(reason: "rate limit: \(lastHour) orders in the last hour (max \(limits.maxOrdersPerHour))")
        }
        let side: OrderSide = target > current ? .buy : .sell
        return .approved(
            side: side, quantity: quantity,
            checks: "position \(current)→\(target)\(part) within ±\(limits.maxPosition); "
                + "\(lastMinute + 1)/\(limits.maxOrdersPerMinute) per minute, "
                + "\(lastHour + 1)/\(limits.maxOrdersPerHour) per hour; no order in flight")
    }

    /// The limit a rejection's reason names ("rate", "position", "order-size"), for the risk
    /// alert; nil for a rejection that is no limit (paused, in flight, already there). Read
    /// from the journaled reason, so a replica decides it the same from any log.
    public static func limit(of reason: String) -> String? {
        if reason.hasPrefix("rate limit:") { return "rate" }
        if reason.hasPrefix("target position ") { return "position" }
        if reason.hasPrefix("order quantity ") { return "order-size" }
        return nil
    }
}
