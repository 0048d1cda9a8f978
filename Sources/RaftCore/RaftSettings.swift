/// Timing and flow-control settings of one node. Validate with `validate()` before use; every
/// replica of a cluster should run the same timing settings.
public struct RaftSettings: Hashable, Sendable {
    /// How often the shell calls `tick()`. Every timeout below is a whole number of ticks.
    public var tickInterval: Duration = .milliseconds(10)
    /// How often a leader sends heartbeats (and starts a new lease round).
    public var heartbeatInterval: Duration = .milliseconds(50)
    /// Election timeouts are drawn uniformly from `[electionTimeoutMin, electionTimeoutMax)`.
    public var electionTimeoutMin: Duration = .milliseconds(300)
    public var electionTimeoutMax: Duration = .milliseconds(600)
    /// The most that the clocks of a leader and a follower can disagree about the length of one
    /// `electionTimeoutMin` interval. The lease is shortened by this much.
    public var maxClockDrift: Duration = .milliseconds(30)
    /// Pipelining bound: AppendEntries messages in flight to one follower.
    public var maxInflightMessages: Int = 64
    /// Pipelining bound: entry bytes in flight to one follower.
    public var maxInflightBytes: Int = 8 << 20
    /// Batching bound: entry bytes in one AppendEntries (at least one entry is always sent).
    public var maxBytesPerAppend: Int = 256 << 10
    /// A learner is promoted only when it is at most this many entries behind the leader.
    public var maxLearnerLagForPromotion: LogIndex = 64
    /// PreVote (thesis §9.6): a node asks whether it could win before it bumps its term.
    public var preVote: Bool = true
    /// CheckQuorum: a leader steps down after one election timeout without hearing from a quorum.
    public var checkQuorum: Bool = true

    /// Deliberate protocol violations, used only to prove that the simulator's checker catches
    /// them. Never set outside tests.
    @_spi(Testing) public var defect: RaftDefect? = nil

    public init() {}

    public var heartbeatTicks: Int { ticks(heartbeatInterval) }
    public var electionTicksMin: Int { ticks(electionTimeoutMin) }
    public var electionTicksMax: Int { ticks(electionTimeoutMax) }

    private func ticks(_ d: Duration) -> Int {
        let tick = tickInterval.nanosecondsClamped
        return tick > 0 ? Int(d.nanosecondsClamped / tick) : 0
    }

    /// Every problem with these settings, each naming the setting and what is allowed.
    public func problems() -> [RaftSettingsError] {
        var problems: [RaftSettingsError] = []
        func fail(_ key: String, _ value: String, _ allowed: String) {
            problems.append(RaftSettingsError(key: key, value: value, allowed: allowed))
        }
        let tick = tickInterval.nanosecondsClamped
        if tick <= 0 || tick > 1_000_000_000 {
            fail("tick_interval", "\(tickInterval)", "more than 0 and at most 1 s")
            return problems  // every other check is in ticks
        }
        if heartbeatInterval < tickInterval {
            fail("heartbeat_interval", "\(heartbeatInterval)", "at least one tick_interval (\(tickInterval))")
        }
        if heartbeatInterval.nanosecondsClamped % tick != 0 || electionTimeoutMin.nanosecondsClamped % tick != 0
            || electionTimeoutMax.nanosecondsClamped % tick != 0
        {
            fail(
                "heartbeat_interval/election_timeout_min/election_timeout_max",
                "\(heartbeatInterval)/\(electionTimeoutMin)/\(electionTimeoutMax)",
                "whole multiples of tick_interval (\(tickInterval))"
            )
        }
        if heartbeatInterval * 5 > electionTimeoutMin {
            fail(
                "heartbeat_interval", "\(heartbeatInterval)",
                "at most election_timeout_min / 5 (\(electionTimeoutMin / 5)) so that a lost heartbeat or two cannot start an election"
            )
        }
        if electionTimeoutMax <= electionTimeoutMin {
            fail(
                "election_timeout_max", "\(electionTimeoutMax)",
                "more than election_timeout_min (\(electionTimeoutMin)); the spread is what breaks split votes"
            )
        }
        if maxClockDrift < .zero || maxClockDrift * 2 >= electionTimeoutMin {
            fail(
                "max_clock_drift", "\(maxClockDrift)",
                "at least 0 and less than election_timeout_min / 2 (\(electionTimeoutMin / 2))")
        }
        if maxInflightMessages < 1 { fail("max_inflight_messages", "\(maxInflightMessages)", "at least 1") }
        if maxBytesPerAppend < 1 { fail("max_bytes_per_append", "\(maxBytesPerAppend)", "at least 1") }
        if maxInflightBytes < maxBytesPerAppend {
            fail("max_inflight_bytes", "\(maxInflightBytes)", "at least max_bytes_per_append (\(maxBytesPerAppend))")
        }
        return problems
    }

    /// Throws the first problem; `problems()` lists all of them.
    public func validate() throws(RaftSettingsError) {
        if let first = problems().first { throw first }
    }

    /// How long a leader may act on the outside world after the start of a heartbeat round that a
    /// quorum acknowledged.
    public var leaseDuration: Duration { electionTimeoutMin - maxClockDrift }
}

public struct RaftSettingsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var allowed: String

    public var description: String { "raft setting \(key) = \(value) is invalid: must be \(allowed)" }
}

/// Protocol violations that the simulator must catch (see `BatonSimulationTests`).
@_spi(Testing) public enum RaftDefect: String, Hashable, Sendable, CaseIterable {
    /// Grants a vote even when it already voted for someone else in this term.
    case votesTwiceInTerm
    /// Commits an entry of an earlier term by counting replicas (the figure 8 mistake).
    case commitsOldTermEntriesByCounting
    /// Grants votes while it still hears from a live leader, so leases can overlap.
    case votesDuringLeaderLease
    /// Acknowledges appends before they are durable.
    case acknowledgesBeforePersisting
    /// Grants votes to candidates whose logs are behind its own.
    case ignoresLogUpToDateCheck
}
