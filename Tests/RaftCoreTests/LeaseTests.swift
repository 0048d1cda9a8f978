@_spi(Testing) import RaftCore
import Testing

@Suite("Leader lease")
struct LeaseTests {
    @Test("a leader holds the lease only once a quorum acknowledged a heartbeat round")
    func leaseNeedsQuorumAcknowledgement() throws {
        let network = Network(ids: [1, 2, 3])
        // Lose every acknowledgement to node 1, so that no round is ever acknowledged.
        network.dropFilter = { $0.to == 1 && ($0.appendResponse != nil || $0.isHeartbeatResponse) }
        try #require(network.elect(1))
        #expect(!network[1].holdsLease)
        #expect(network[1].leaseExpiry == nil)
        network.tick(times: network.settings.heartbeatTicks * 2)
        #expect(!network[1].holdsLease)

        network.dropFilter = nil
        var roundStart: MonotonicInstant?
        for _ in 0..<network.settings.heartbeatTicks {
            network.tick()
            if network[1].holdsLease {
                roundStart = network.clocks[1]!.now
                break
            }
        }
        let start = try #require(roundStart)
        #expect(network[1].leaseExpiry == start.advanced(by: network.settings.leaseDuration))
    }

    @Test("the lease ends electionTimeoutMin - maxClockDrift after the last acknowledged round started")
    func leaseExpiresFromRoundStart() throws {
        let settings = RaftSettings.testing()
        let network = Network(ids: [1, 2, 3], settings: settings)
        try #require(network.elect(1))
        var roundStart: MonotonicInstant?
        for _ in 0..<(settings.heartbeatTicks * 2) {
            network.tick(deliver: false)
            if network.queue.contains(where: { $0.from == 1 && $0.isHeartbeat }) {
                roundStart = network.clocks[1]!.now
                break
            }
        }
        let start = try #require(roundStart)
        // The acknowledgements arrive late; the lease still counts from when the round began,
        // since a follower's promise not to vote runs from when it heard the heartbeat.
        network.advanceTime(by: .milliseconds(30))
        network.stabilize()
        let expiry = try #require(network[1].leaseExpiry)
        #expect(expiry == start.advanced(by: settings.electionTimeoutMin - settings.maxClockDrift))

        // Hearing nothing more, the leader holds the lease until exactly that instant.
        network.isolate(1)
        let clock = network.clocks[1]!
        clock.advance(by: expiry.duration(since: clock.now) - .nanoseconds(1))
        #expect(network[1].holdsLease)
        #expect(network[1].leaseRemaining == .nanoseconds(1))
        clock.advance(by: .nanoseconds(1))
        #expect(!network[1].holdsLease)
        #expect(network[1].leaseRemaining == nil)
        #expect(network[1].role == .leader, "still leader by its own account; only the lease is gone")
    }

    @Test("followers never hold a lease")
    func followersNeverHoldLease() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.tick(times: network.settings.electionTicksMax)
        #expect(network[1].holdsLease)
        for id: NodeID in [2, 3] {
            #expect(!network[id].holdsLease)
            #expect(network[id].leaseExpiry == nil)
            #expect(network[id].leaseRemaining == nil)
        }
    }

    @Test(
        "a follower that heard from the leader recently ignores a (pre-)vote of a higher term",
        arguments: [false, true]
    )
    func followerInLeaseIgnoresVotes(preVote: Bool) throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let term = network[2].term
        let request = RaftMessage(
            from: 3, to: 2, term: term + 1,
            body: .requestVote(RequestVote(isPreVote: preVote, lastLog: network[2].lastLogPosition))
        )
        let mark = network.sent.count
        network.inject(request)
        #expect(network.sent.count == mark, "answered a vote request while the leader's lease may run")
        #expect(network[2].term == term)
        #expect(network[2].leader == 1)

        // After electionTimeoutMin without word from the leader the same request is granted.
        network.clocks[2]!.advance(by: network.settings.electionTimeoutMin)
        network.inject(request)
        let answer = try #require(network.sent.last)
        #expect(answer.from == 2)
        #expect(answer.voteResponse == RequestVoteResponse(isPreVote: preVote, granted: true))
        #expect(network[2].term == (preVote ? term : term + 1))
    }
}
