/// Delays between reconnect attempts to one source: doubling from `minimum` up to `maximum`,
/// each drawn at random from the upper half of its step so that the replicas, which all lose a
/// source at the same moment, do not all knock on it at the same moment either.
struct ReconnectBackoff: Sendable {
    let minimumNanos: Int64
    let maximumNanos: Int64
    private(set) var failures = 0

    init(_ bounds: ClosedRange<Duration>) {
        minimumNanos = max(1, bounds.lowerBound.nanoseconds)
        maximumNanos = max(minimumNanos, bounds.upperBound.nanoseconds)
    }

    /// The delay before the next attempt; each call without a `reset()` counts one more failure.
    mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        var ceiling = minimumNanos
        var step = 0
        while step < failures && ceiling < maximumNanos {
            ceiling = ceiling > maximumNanos / 2 ? maximumNanos : ceiling * 2
            step += 1
        }
        ceiling = min(ceiling, maximumNanos)
        failures += 1
        let floor = max(minimumNanos, ceiling / 2)
        return .nanoseconds(floor >= ceiling ? ceiling : Int64.random(in: floor...ceiling, using: &generator))
    }

    /// A connection got through: the next failure starts again from `minimum`.
    mutating func reset() {
        failures = 0
    }
}
