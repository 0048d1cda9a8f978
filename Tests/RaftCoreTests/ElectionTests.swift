@_spi(Testing) import RaftCore
import Testing

/// Ticks only `id` until it leaves the follower role (a candidate, or leader in a one-voter
/// cluster). Without pre-vote this is the plain Raft campaign of §5.2.
@discardableResult
func campaign(_ network: Network, _ id: NodeID) -> RaftRole {
    for _ in 0..<(network.settings.electionTicksMax * 2) {
        if network[id].role != .follower { break }
        network.tick([id], deliver: false)
    }
    return network[id].role
}

/// A vote response from `voter` to `candidate` for the candidate's current term.
func voteResponse(from voter: NodeID, to candidate: NodeID, term: Term, granted: Bool, preVote: Bool = false)
    -> RaftMessage
{
    RaftMessage(
        from: voter, to: candidate, term: term,
        body: .requestVoteResponse(RequestVoteResponse(isPreVote: preVote, granted: granted))
    )
}

@Suite("Leader election (§5.2)")
struct ElectionTests {
    struct ClusterCase: Sendable, CustomTestStringConvertible {
        var size: UInt64
        var seed: UInt64
        var testDescription: String { "\(size) nodes, seed \(seed)" }
    }

    static let clusters: [ClusterCase] = [1, 3, 5].flatMap { size in
        [1, 7, 4242].map { ClusterCase(size: size, seed: $0) }
    }

    @Test("a cluster elects exactly one leader that everyone follows", arguments: clusters)
    func electsExactlyOneLeader(_ c: ClusterCase) throws {
        let network = Network(ids: (1...c.size).map { NodeID($0) }, seed: c.seed)
        var leadersByTerm: [Term: Set<NodeID>] = [:]
        // Every node ticks; randomised timeouts must break ties without help.
        for _ in 0..<(network.settings.electionTicksMax * 10) {
            network.tick()
            for id in network.leaders { leadersByTerm[network[id].term, default: []].insert(id) }
        }
        // Election safety: never two leaders in one term, at any point of the run.
        for (term, leaders) in leadersByTerm {
            #expect(leaders.count == 1, "term \(term) had leaders \(leaders)")
        }
        let leader = try #require(network.leaders.only)
        for id in network.ids {
            #expect(network[id].term == network[leader].term)
            #expect(network[id].leader == leader)
        }
    }

    @Test("a candidate without pre-vote asks every other voter with its last log position")
    func voteRequestCarriesLastLogPosition() {
        // etcd TestVoteRequest: a node that learned entries of term 1 and 2 campaigns in term 3.
        let settings = RaftSettings.testing { $0.preVote = false }
        let network = Network(
            ids: [1], settings: settings, bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 2), entries: makeLog(terms: [1, 2]))]
        )
        #expect(campaign(network, 1) == .candidate)
        let requests = network.sent.filter { $0.voteRequest != nil }
        #expect(requests.map(\.to) == [2, 3])
        for request in requests {
            #expect(request.term == 3)
            #expect(request.voteRequest?.lastLog == LogPosition(term: 2, index: 2))
            #expect(request.voteRequest?.isPreVote == false)
        }
    }

    struct RoundCase: Sendable, CustomTestStringConvertible {
        var size: UInt64
        var votes: [UInt64: Bool]
        var expected: RaftRole
        var testDescription: String { "\(size) voters, votes \(votes.sorted { $0.key < $1.key }) → \(expected)" }
    }

    // etcd TestLeaderElectionInOneRoundRPC.
    static let roundCases: [RoundCase] = [
        // A majority of grants wins.
        RoundCase(size: 1, votes: [:], expected: .leader),
        RoundCase(size: 3, votes: [2: true, 3: true], expected: .leader),
        RoundCase(size: 3, votes: [2: true], expected: .leader),
        RoundCase(size: 5, votes: [2: true, 3: true, 4: true, 5: true], expected: .leader),
        RoundCase(size: 5, votes: [2: true, 3: true, 4: true], expected: .leader),
        RoundCase(size: 5, votes: [2: true, 3: true], expected: .leader),
        // A majority of denials sends the candidate back to follower.
        RoundCase(size: 3, votes: [2: false, 3: false], expected: .follower),
        RoundCase(size: 5, votes: [2: false, 3: false, 4: false, 5: false], expected: .follower),
        RoundCase(size: 5, votes: [2: false, 3: false, 4: false], expected: .follower),
        // Neither: it stays a candidate.
        RoundCase(size: 3, votes: [:], expected: .candidate),
        RoundCase(size: 5, votes: [2: true], expected: .candidate),
        RoundCase(size: 5, votes: [2: false, 3: false], expected: .candidate),
        RoundCase(size: 5, votes: [:], expected: .candidate),
    ]

    @Test("one round of vote responses decides the candidate's fate", arguments: roundCases)
    func electionInOneRound(_ c: RoundCase) {
        let settings = RaftSettings.testing { $0.preVote = false }
        let voters = Set((1...c.size).map { NodeID($0) })
        let network = Network(ids: [1], settings: settings, bootstrap: ClusterConfiguration(voters: voters))
        campaign(network, 1)
        let term = network[1].term
        for (voter, granted) in c.votes.sorted(by: { $0.key < $1.key }) {
            network.inject(voteResponse(from: NodeID(voter), to: 1, term: term, granted: granted))
        }
        #expect(network[1].role == c.expected)
        #expect(network[1].term == 1)
    }

    struct FollowerVoteCase: Sendable, CustomTestStringConvertible {
        var votedFor: UInt64?
        var candidate: UInt64
        var granted: Bool
        var testDescription: String { "voted for \(votedFor.map(String.init) ?? "nobody"), asked by \(candidate)" }
    }

    // etcd TestFollowerVote: at most one vote per term, first come first served, idempotent.
    static let followerVoteCases: [FollowerVoteCase] = [
        FollowerVoteCase(votedFor: nil, candidate: 2, granted: true),
        FollowerVoteCase(votedFor: nil, candidate: 3, granted: true),
        FollowerVoteCase(votedFor: 2, candidate: 2, granted: true),
        FollowerVoteCase(votedFor: 3, candidate: 3, granted: true),
        FollowerVoteCase(votedFor: 2, candidate: 3, granted: false),
        FollowerVoteCase(votedFor: 3, candidate: 2, granted: false),
    ]

    @Test("a follower votes for at most one candidate per term", arguments: followerVoteCases)
    func followerVotesOncePerTerm(_ c: FollowerVoteCase) throws {
        let hard = HardState(term: 1, votedFor: c.votedFor.map { NodeID($0) })
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: hard)]
        )
        let candidate = NodeID(c.candidate)
        network.inject(
            RaftMessage(
                from: candidate, to: 1, term: 1,
                body: .requestVote(RequestVote(isPreVote: false, lastLog: LogPosition(term: 0, index: 0)))
            )
        )
        let response = try #require(network.sent.last)
        #expect(response.to == candidate)
        #expect(response.voteResponse?.granted == c.granted)
        #expect(network[1].votedFor == (c.granted ? candidate : c.votedFor.map { NodeID($0) }))
        #expect(network.storage[1]!.hardState.votedFor == network[1].votedFor)
    }

    struct VoterCase: Sendable, CustomTestStringConvertible {
        var log: [Term]
        var candidateLast: LogPosition
        var granted: Bool
        var testDescription: String { "log \(log), candidate last \(candidateLast)" }
    }

    // etcd TestVoter (§5.4.1): deny the vote if our log is more up to date than the candidate's.
    static let voterCases: [VoterCase] = [
        // Same last term: the longer log wins.
        VoterCase(log: [1], candidateLast: LogPosition(term: 1, index: 1), granted: true),
        VoterCase(log: [1], candidateLast: LogPosition(term: 1, index: 2), granted: true),
        VoterCase(log: [1, 1], candidateLast: LogPosition(term: 1, index: 1), granted: false),
        // The candidate's last term is higher.
        VoterCase(log: [1], candidateLast: LogPosition(term: 2, index: 1), granted: true),
        VoterCase(log: [1], candidateLast: LogPosition(term: 2, index: 2), granted: true),
        VoterCase(log: [1, 1], candidateLast: LogPosition(term: 2, index: 1), granted: true),
        // The voter's last term is higher.
        VoterCase(log: [2], candidateLast: LogPosition(term: 1, index: 1), granted: false),
        VoterCase(log: [2], candidateLast: LogPosition(term: 1, index: 2), granted: false),
        VoterCase(log: [2, 2], candidateLast: LogPosition(term: 1, index: 1), granted: false),
    ]

    @Test("a voter refuses a candidate whose log is behind its own", arguments: voterCases)
    func voterChecksLogIsUpToDate(_ c: VoterCase) throws {
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2]),
            durable: [1: DurableState(hardState: HardState(term: c.log.max()!), entries: makeLog(terms: c.log))]
        )
        // Out of the "heard from a leader recently" window, which would ignore the request.
        network.advanceTime(by: network.settings.electionTimeoutMin)
        network.inject(
            RaftMessage(
                from: 2, to: 1, term: 3, body: .requestVote(RequestVote(isPreVote: false, lastLog: c.candidateLast)))
        )
        let response = try #require(network.sent.only)
        #expect(response.voteResponse?.granted == c.granted)
        #expect(network[1].term == 3)
    }

    @Test("a candidate steps down when it hears from a leader of its term or a newer one", arguments: [0, 1])
    func candidateFallsBackToFollower(termAhead: Term) {
        // etcd TestCandidateFallback.
        let settings = RaftSettings.testing { $0.preVote = false }
        let network = Network(ids: [1], settings: settings, bootstrap: ClusterConfiguration(voters: [1, 2, 3]))
        #expect(campaign(network, 1) == .candidate)
        let term = network[1].term + termAhead
        network.inject(RaftMessage(from: 2, to: 1, term: term, body: .heartbeat(Heartbeat(leaderCommit: 0, round: 1))))
        #expect(network[1].role == .follower)
        #expect(network[1].leader == 2)
        #expect(network[1].term == term)
    }
}

@Suite("Pre-vote and check-quorum")
struct PreVoteAndCheckQuorumTests {
    @Test(
        "a node partitioned away and back does not disrupt the leader unless pre-vote is off",
        arguments: [true, false])
    func rejoiningNodeDoesNotDisrupt(preVote: Bool) throws {
        let network = Network(ids: [1, 2, 3], settings: .testing { $0.preVote = preVote })
        try #require(network.elect(1))
        let term = network[1].term

        network.isolate(3)
        network.tick(times: network.settings.electionTicksMax * 5)
        // With pre-vote the isolated node never wins a pre-vote, so its term stays put.
        if preVote {
            #expect(network[3].term == term)
        } else {
            #expect(network[3].term > term)
        }

        network.heal()
        network.tick(times: network.settings.electionTicksMax * 3)
        if preVote {
            #expect(network.leaders == [1])
            for id in network.ids {
                #expect(network[id].term == term)
                #expect(network[id].leader == 1)
            }
        } else {
            // The control: without pre-vote the rejoining node's term deposes the leader.
            #expect(network[1].term > term)
            #expect(network.leaders.count == 1)
        }
    }

    @Test(
        "check-quorum: a leader cut off from the quorum steps down; the majority elects anew",
        arguments: [true, false])
    func leaderStepsDownWithoutQuorum(checkQuorum: Bool) throws {
        let network = Network(ids: [1, 2, 3], settings: .testing { $0.checkQuorum = checkQuorum })
        try #require(network.elect(1))
        let term = network[1].term
        let e = network.settings.electionTicksMin

        network.isolate(1)
        var stepDownTick: Int?
        for tick in 1...(3 * e) {
            network.tick()
            if network[1].role != .leader {
                stepDownTick = tick
                break
            }
        }
        guard checkQuorum else {
            // The control: without check-quorum the isolated leader keeps claiming leadership.
            #expect(stepDownTick == nil)
            return
        }
        // The quorum check runs every election timeout; followers that answered up to the
        // partition keep the first check happy, so the step-down comes at the second one.
        let ticks = try #require(stepDownTick)
        #expect(ticks >= e && ticks <= 2 * e, "stepped down after \(ticks) ticks; election timeout is \(e)")
        #expect(network[1].leader == nil)
        #expect(!network[1].holdsLease)

        let newLeaderTicks = network.tick(
            until: {
                network.leaders.contains { $0 != 1 && network[$0].term > term }
            }, maxTicks: network.settings.electionTicksMax * 4)
        #expect(newLeaderTicks != nil)
        let newLeader = try #require(network.leaders.first { $0 != 1 })

        network.heal()
        network.tick(times: network.settings.heartbeatTicks * 2)
        #expect(network[1].role == .follower)
        #expect(network[1].leader == newLeader)
        #expect(network[1].term == network[newLeader].term)
    }
}

@Suite("Stale leaders and terms (§5.1)")
struct StaleTermTests {
    enum StartRole: String, Sendable, CaseIterable { case follower, candidate, leader }

    @Test("any role adopts a higher term from a leader's message and follows it", arguments: StartRole.allCases)
    func higherTermMakesFollower(_ start: StartRole) throws {
        // etcd Test{Follower,Candidate,Leader}UpdateTermFromMessage.
        let settings = RaftSettings.testing { $0.preVote = false }
        let network = Network(
            ids: [1], settings: settings, bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 1))]
        )
        if start != .follower {
            #expect(campaign(network, 1) == .candidate)
        }
        if start == .leader {
            network.inject(voteResponse(from: 2, to: 1, term: network[1].term, granted: true))
            try #require(network[1].role == .leader)
        }
        let newer = network[1].term + 1
        let append = AppendEntries(
            previous: LogPosition(term: 0, index: 0), entries: [], leaderCommit: 0, round: 1)
        network.inject(RaftMessage(from: 2, to: 1, term: newer, body: .appendEntries(append)))
        #expect(network[1].term == newer)
        #expect(network[1].role == .follower)
        #expect(network[1].leader == 2)
        #expect(network.storage[1]!.hardState.term == newer)
    }

    @Test("a follower answers a stale-term append with its newer term and ignores its content")
    func followerAnswersStaleAppend() throws {
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 5), entries: makeLog(terms: [1, 5]))]
        )
        let stale = AppendEntries(
            previous: LogPosition(term: 1, index: 1), entries: makeLog(terms: [3], startingAt: 2), leaderCommit: 2,
            round: 9)
        network.inject(RaftMessage(from: 2, to: 1, term: 3, body: .appendEntries(stale)))

        let answer = try #require(network.sent.only)
        #expect(answer.to == 2)
        #expect(answer.term == 5)
        #expect(network.terms(1) == [1, 5])
        #expect(network[1].term == 5)
        #expect(network[1].commitIndex == 0)
        #expect(network[1].leader == nil)
    }

    @Test("an old leader that missed an election learns the new term from a follower's answer and steps down")
    func staleLeaderStepsDown() throws {
        // Without check-quorum the cut-off leader keeps believing it leads: the situation where
        // only the followers' answers can tell it otherwise.
        let network = Network(ids: [1, 2, 3], settings: .testing { $0.checkQuorum = false })
        try #require(network.elect(1))
        let oldTerm = network[1].term

        network.isolate(1)
        let elected = network.tick(until: { network.leaders.contains { $0 != 1 } }, maxTicks: 200)
        try #require(elected != nil)
        let newLeader = try #require(network.leaders.first { $0 != 1 })
        try #require(network[1].role == .leader && network[1].term == oldTerm)

        // One-way repair: the old leader reaches everyone and hears the followers' answers, but
        // not the new leader's own traffic, so any step-down comes from answering its append.
        network.heal()
        network.block(from: newLeader, to: 1)
        let stale = try network.propose([0xEE], on: 1)
        network.stabilize()

        #expect(network[1].role == .follower)
        #expect(network[1].term == network[newLeader].term)
        #expect(network[1].term > oldTerm)
        for id in network.ids where id != 1 {
            #expect(network[id].entry(at: stale.index)?.term != oldTerm)
        }

        network.heal()
        network.tick(times: network.settings.electionTicksMax)
        // The stale entry never committed and is replaced by the new leader's log.
        #expect(network.log(1) == network.log(newLeader))
        for id in network.ids {
            #expect(!network.appliedCommands(id).contains([0xEE]))
        }
    }
}

extension Collection {
    /// The single element, or nil when there are none or several.
    var only: Element? { count == 1 ? first : nil }
}
