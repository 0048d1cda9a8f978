import RaftCore

/// How long a dialler waits before its next attempt: the ceiling doubles after every failed
/// attempt, from `minimum` up to `maximum`, and each wait is drawn uniformly from the upper half
/// of the ceiling ("equal jitter"). The jitter keeps replicas that lost a peer at the same moment
/// from redialling it in lockstep; the lower bound keeps a wait from shrinking to nothing.
public struct ReconnectBackoff: Hashable, Sendable {
    public var minimum: Duration
    public var maximum: Duration
    /// Failed attempts since the last success.
    public private(set) var failures = 0

    public init(minimum: Duration = .milliseconds(50), maximum: Duration = .seconds(2)) {
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
    }

    /// The current ceiling: `minimum · 2^failures`, capped at `maximum`.
    public var ceiling: Duration {
        let minimumNanoseconds = max(1, minimum.nanosecondsClamped)
        let maximumNanoseconds = max(minimumNanoseconds, maximum.nanosecondsClamped)
        let shift = min(failures, 62)
        let (scaled, overflow) = minimumNanoseconds.multipliedReportingOverflow(by: Int64(1) << Int64(shift))
        return .nanoseconds(overflow ? maximumNanoseconds : min(scaled, maximumNanoseconds))
    }

    /// The wait before the next attempt; counts one more failure.
    public mutating func nextDelay(using random: inout some RandomNumberGenerator) -> Duration {
        let ceiling = self.ceiling.nanosecondsClamped
        failures += 1
        let low = ceiling / 2
        return .nanoseconds(Int64.random(in: low...ceiling, using: &random))
    }

    /// A connection succeeded: the next failure starts again from `minimum`.
    public mutating func reset() { failures = 0 }
}
