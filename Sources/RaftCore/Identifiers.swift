/// A replica's identity inside one cluster. Stable for the life of the replica's data directory.
public struct NodeID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "n\(rawValue)" }
}

/// A Raft term. Terms only grow; a term has at most one leader.
public typealias Term = UInt64

/// A position in the replicated log. Index 0 is the empty prefix; the first entry has index 1.
public typealias LogIndex = UInt64

/// An entry's identity: the (term, index) pair that the log-matching property speaks about.
public struct LogPosition: Hashable, Sendable, CustomStringConvertible {
    public var term: Term
    public var index: LogIndex

    public init(term: Term, index: LogIndex) {
        self.term = term
        self.index = index
    }

    public var description: String { "\(term)/\(index)" }
}

/// A reading of a monotonic clock in nanoseconds. Only differences between two readings of the same
/// node's clock mean anything; the node never compares its readings with another node's.
public struct MonotonicInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public func advanced(by duration: Duration) -> MonotonicInstant {
        let delta = duration.nanosecondsClamped
        if delta >= 0 {
            let (sum, overflow) = nanoseconds.addingReportingOverflow(UInt64(delta))
            return MonotonicInstant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = UInt64(-delta)
        return MonotonicInstant(nanoseconds: nanoseconds > magnitude ? nanoseconds - magnitude : 0)
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    public func duration(since earlier: MonotonicInstant) -> Duration {
        guard nanoseconds > earlier.nanoseconds else { return .zero }
        return .nanoseconds(Int64(clamping: nanoseconds - earlier.nanoseconds))
    }

    public var description: String { "t+\(Double(nanoseconds) / 1e6)ms" }
}

/// Where a node reads the time. Injected so that the simulator can run many nodes, each with
/// its own drifting clock, in one process; a daemon passes a reading of `ContinuousClock`.
public typealias RaftClock = @Sendable () -> MonotonicInstant

extension Duration {
    /// Whole nanoseconds, clamped to `Int64` (durations here are at most minutes).
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    /// The duration in milliseconds as a `Double`, for messages and metrics.
    public var milliseconds: Double { Double(nanosecondsClamped) / 1e6 }
}

/// Bounds on the numbers a peer's message may carry. A correct cluster never comes near them;
/// they exist so that no frame can push a term or an index to where `+ 1` traps or where the
/// journal's signed 64-bit columns overflow (which would stop every replica for good).
public enum RaftLimits {
    /// The highest term a node adopts: half of what SQLite's INTEGER holds, so that a cluster
    /// at the limit still has room for more campaigns than it could run in a lifetime.
    public static let maxTerm: Term = Term(Int64.max) / 2
    /// The most a single message may move a node's term. Pre-vote keeps real jumps small (a
    /// node's term grows by one per campaign it actually runs); 2^32 campaigns is beyond any
    /// partition, while it takes a forger 2^30 frames to walk a term to `maxTerm`.
    public static let maxTermJump: Term = 1 << 32
    /// The highest log index a message may name.
    public static let maxIndex: LogIndex = LogIndex(Int64.max) / 2
}
