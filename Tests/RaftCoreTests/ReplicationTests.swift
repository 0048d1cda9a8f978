@_spi(Testing) import RaftCore
import Testing

/// An append from `leader` to `follower`, as a hand-made message.
func appendMessage(
    from leader: NodeID = 2, to follower: NodeID = 1, term: Term, previous: LogPosition, entries: [LogEntry] = [],
    commit: LogIndex = 0, round: UInt64 = 7
) -> RaftMessage {
    RaftMessage(
        from: leader, to: follower, term: term,
        body: .appendEntries(AppendEntries(previous: previous, entries: entries, leaderCommit: commit, round: round))
    )
}

@Suite("Follower side of AppendEntries (§5.3)")
struct FollowerAppendTests {
    struct CheckCase: Sendable, CustomTestStringConvertible {
        var previous: LogPosition
        var response: AppendEntriesResponse
        var testDescription: String { "previous \(previous)" }
    }

    static func accepted(_ index: LogIndex) -> AppendEntriesResponse {
        AppendEntriesResponse(index: index, rejected: false, round: 7)
    }

    static func rejected(_ index: LogIndex, hint: LogPosition) -> AppendEntriesResponse {
        AppendEntriesResponse(index: index, rejected: true, rejectHint: hint, round: 7)
    }

    // etcd TestFollowerCheckMsgApp: the follower holds 1/1, 2/2 and has committed index 1.
    static let checkCases: [CheckCase] = [
        // Matches a committed entry: the answer is the commit index.
        CheckCase(previous: LogPosition(term: 0, index: 0), response: accepted(1)),
        CheckCase(previous: LogPosition(term: 1, index: 1), response: accepted(1)),
        // Matches an uncommitted entry.
        CheckCase(previous: LogPosition(term: 2, index: 2), response: accepted(2)),
        // Conflicts with an entry: the hint is the last entry of a term the leader may share.
        CheckCase(
            previous: LogPosition(term: 1, index: 2),
            response: rejected(2, hint: LogPosition(term: 1, index: 1))
        ),
        // Beyond the end of the log: the hint is the follower's last entry.
        CheckCase(
            previous: LogPosition(term: 3, index: 3),
            response: rejected(3, hint: LogPosition(term: 2, index: 2))
        ),
    ]

    @Test("a follower accepts an append only if it holds the previous entry", arguments: checkCases)
    func followerChecksPreviousEntry(_ c: CheckCase) throws {
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 2, commit: 1), entries: makeLog(terms: [1, 2]))]
        )
        // A leader holds no entry of a term after its own, so the sender's term is at least the
        // previous entry's (a message that says otherwise is refused, see HostileInputTests).
        let term = max(2, c.previous.term)
        network.inject(appendMessage(term: term, previous: c.previous))
        let answer = try #require(network.sent.only)
        #expect(answer.to == 2)
        #expect(answer.term == term)
        #expect(answer.appendResponse == c.response)
        // A rejected append changes nothing.
        #expect(network.terms(1) == [1, 2])
    }

    struct AppendCase: Sendable, CustomTestStringConvertible {
        var previous: LogPosition
        var entries: [LogEntry]
        var expectedTerms: [Term]
        var testDescription: String { "previous \(previous), \(entries.map(\.position))" }
    }

    // etcd TestFollowerAppendEntries: the follower holds 1/1, 2/2, nothing committed.
    static let appendCases: [AppendCase] = [
        AppendCase(
            previous: LogPosition(term: 2, index: 2), entries: makeLog(terms: [3], startingAt: 3),
            expectedTerms: [1, 2, 3]),
        AppendCase(
            previous: LogPosition(term: 1, index: 1), entries: makeLog(terms: [3, 4], startingAt: 2),
            expectedTerms: [1, 3, 4]),
        // Entries the follower already holds do not truncate what follows them.
        AppendCase(previous: LogPosition(term: 0, index: 0), entries: makeLog(terms: [1]), expectedTerms: [1, 2]),
        AppendCase(previous: LogPosition(term: 0, index: 0), entries: makeLog(terms: [3]), expectedTerms: [3]),
    ]

    @Test("a follower deletes conflicting entries, appends new ones, and makes that durable", arguments: appendCases)
    func followerAppendsEntries(_ c: AppendCase) throws {
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 2), entries: makeLog(terms: [1, 2]))]
        )
        let term = max(2, c.entries.map(\.term).max() ?? 0)
        network.inject(appendMessage(term: term, previous: c.previous, entries: c.entries))
        #expect(network.terms(1) == c.expectedTerms)
        #expect(network.storage[1]!.entries.map(\.term) == c.expectedTerms)
        let answer = try #require(network.sent.only)
        #expect(answer.appendResponse?.rejected == false)
        #expect(answer.appendResponse?.index == c.previous.index + LogIndex(c.entries.count))
    }

    @Test("a follower applies entries once it learns they are committed", arguments: [(1, 1), (2, 2), (2, 1)])
    func followerCommitsEntries(count: Int, commit: LogIndex) {
        // etcd TestFollowerCommitEntry.
        let network = Network(
            ids: [1], bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            durable: [1: DurableState(hardState: HardState(term: 1))]
        )
        let entries = makeLog(terms: Array(repeating: 1, count: count))
        let start = LogPosition(term: 0, index: 0)
        network.inject(appendMessage(term: 1, previous: start, entries: entries, commit: commit))
        #expect(network[1].commitIndex == commit)
        #expect(network.applied[1] == Array(entries.prefix(Int(commit))))
    }
}

@Suite("Log replication (§5.3)")
struct ReplicationTests {
    @Test("proposals commit and are applied in order on every node")
    func proposalsCommitInOrder() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        var expected: [[UInt8]] = []
        // Several proposals before any delivery, so appends are pipelined, then one batch.
        for i in 0..<5 {
            try network.propose([UInt8(i)], on: 1)
            expected.append([UInt8(i)])
        }
        let batch: [[UInt8]] = [[10], [11], [12]]
        let positions = try network.propose(batch, on: 1)
        let first = try #require(positions.first).index
        #expect(positions.map(\.index) == [first, first + 1, first + 2])
        #expect(positions.allSatisfy { $0.term == network[1].term })
        expected += batch
        network.stabilize()

        for id in network.ids {
            #expect(network.appliedCommands(id) == expected, "node \(id)")
            #expect(network[id].commitIndex == network[1].lastIndex)
            #expect(network.log(id) == network.log(1))
        }
        // Only the leader takes proposals, and it names itself to the client.
        #expect(throws: ProposalRejection.notLeader(knownLeader: 1)) { try network.propose([99], on: 2) }
        #expect(throws: ProposalRejection.emptyProposal) { try network.propose([] as [[UInt8]], on: 1) }
    }

    struct Figure7Follower: Sendable, CustomTestStringConvertible {
        var name: String
        var terms: [Term]
        var testDescription: String { "follower (\(name))" }
    }

    static let figure7Leader: [Term] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    static let figure7Followers: [Figure7Follower] = [
        Figure7Follower(name: "a", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6]),
        Figure7Follower(name: "b", terms: [1, 1, 1, 4]),
        Figure7Follower(name: "c", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
        Figure7Follower(name: "d", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
        Figure7Follower(name: "e", terms: [1, 1, 1, 4, 4, 4, 4]),
        Figure7Follower(name: "f", terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    ]

    @Test("figure 7: the leader brings every follower's log to its own", arguments: figure7Followers)
    func figure7(_ follower: Figure7Follower) throws {
        // etcd TestLeaderSyncFollowerLog. Node 3 holds the leader's log so that the leader can
        // win even against followers (c) and (d), whose logs are more up to date than its own.
        let leaderLog = makeLog(terms: Self.figure7Leader)
        let network = Network(
            ids: [1, 2, 3],
            durable: [
                1: DurableState(hardState: HardState(term: 8, commit: 10), entries: leaderLog),
                2: DurableState(hardState: HardState(term: 7), entries: makeLog(terms: follower.terms)),
                3: DurableState(hardState: HardState(term: 7), entries: leaderLog),
            ]
        )
        try #require(network.elect(1))
        #expect(network[1].term == 9)
        try network.propose([0x42], on: 1)
        network.stabilize()

        #expect(network.terms(1) == Self.figure7Leader + [9, 9])
        #expect(network.log(2) == network.log(1))
        #expect(network.log(3) == network.log(1))
        #expect(network.storage[2]!.entries == network.log(1))
        for id in network.ids {
            #expect(network[id].commitIndex == 12)
            #expect(network.applied[id] == network.log(1), "node \(id) applied a different log")
            #expect(network[id].integrityFailures.isEmpty)
        }
    }

    struct OnlyCurrentTermCase: Sendable, CustomTestStringConvertible {
        var acknowledged: LogIndex
        var defect: RaftDefect?
        var expectedCommit: LogIndex
        var testDescription: String { "ack \(acknowledged)\(defect.map { ", defect \($0)" } ?? "")" }
    }

    // etcd TestLeaderOnlyCommitsLogFromCurrentTerm: log 1/1, 2/2; leader of term 3 appends its
    // no-op at 3; the other voter of two acknowledges up to `acknowledged`.
    static let onlyCurrentTermCases: [OnlyCurrentTermCase] = [
        OnlyCurrentTermCase(acknowledged: 1, defect: nil, expectedCommit: 0),
        OnlyCurrentTermCase(acknowledged: 2, defect: nil, expectedCommit: 0),
        OnlyCurrentTermCase(acknowledged: 3, defect: nil, expectedCommit: 3),
        // The figure 8 mistake commits older entries by counting replicas.
        OnlyCurrentTermCase(acknowledged: 2, defect: .commitsOldTermEntriesByCounting, expectedCommit: 2),
    ]

    @Test("a leader commits by counting replicas only entries of its own term", arguments: onlyCurrentTermCases)
    func leaderOnlyCommitsCurrentTerm(_ c: OnlyCurrentTermCase) throws {
        let settings = RaftSettings.testing {
            $0.preVote = false
            $0.defect = c.defect
        }
        let network = Network(
            ids: [1], settings: settings, bootstrap: ClusterConfiguration(voters: [1, 2]),
            durable: [1: DurableState(hardState: HardState(term: 2), entries: makeLog(terms: [1, 2]))]
        )
        campaign(network, 1)
        network.inject(voteResponse(from: 2, to: 1, term: 3, granted: true))
        try #require(network[1].role == .leader)
        #expect(network.terms(1) == [1, 2, 3])
        network.inject(
            RaftMessage(
                from: 2, to: 1, term: 3,
                body: .appendEntriesResponse(AppendEntriesResponse(index: c.acknowledged, rejected: false, round: 1))
            )
        )
        #expect(network[1].commitIndex == c.expectedCommit)
    }

    @Test(
        "figure 8: an older-term entry on a majority is not committed until an own-term entry is",
        arguments: [nil, .commitsOldTermEntriesByCounting] as [RaftDefect?]
    )
    func figure8(defect: RaftDefect?) throws {
        // Figure 8 (c): S1 leads term 4 with 2/2 from its term-2 reign; S5 holds 3/2 and could
        // still win an election with S2–S4 and overwrite index 2, so 2/2 must not count as
        // committed when it reaches a majority. One entry per append, so that 2/2 and S1's
        // own no-op at 3/4 travel separately.
        let settings = RaftSettings.testing {
            $0.maxBytesPerAppend = 1
            $0.defect = defect
        }
        let hard = HardState(term: 3, commit: 1)
        let network = Network(
            ids: [1, 2, 3, 4, 5], settings: settings,
            durable: [
                1: DurableState(hardState: hard, entries: makeLog(terms: [1, 2])),
                2: DurableState(hardState: hard, entries: makeLog(terms: [1])),
                3: DurableState(hardState: hard, entries: makeLog(terms: [1])),
                4: DurableState(hardState: hard, entries: makeLog(terms: [1])),
                5: DurableState(hardState: hard, entries: makeLog(terms: [1, 3])),
            ]
        )
        network.isolate(4)
        network.isolate(5)
        // Lose every append that would hand a follower the term-4 entry at index 3.
        network.dropFilter = { [unowned network] message in
            guard let append = message.appendEntries, append.entries.contains(where: { $0.index == 3 }) else {
                return false
            }
            return network[message.to].term(at: append.previous.index) == append.previous.term
        }
        try #require(network.elect(1))
        #expect(network[1].term == 4)
        #expect(network.terms(1) == [1, 2, 4])
        for id: NodeID in [1, 2, 3] {
            #expect(network[id].term(at: 2) == 2, "node \(id) should hold 2/2")
        }
        // 2/2 is on three of five servers, yet only the defect counts it as committed.
        #expect(network[1].commitIndex == (defect == nil ? 1 : 2))
        if defect == nil {
            #expect(!network.applied[1]!.contains { $0.index == 2 })
        }

        // Let 3/4 through: once it is on a majority, it commits 2/2 with it.
        network.dropFilter = nil
        let ticks = network.tick(until: { network[1].commitIndex >= 3 }, maxTicks: network.settings.electionTicksMin)
        #expect(ticks != nil)
        #expect(network[1].commitIndex == 3)
        let expectedApplied = [
            LogPosition(term: 1, index: 1), LogPosition(term: 2, index: 2), LogPosition(term: 4, index: 3),
        ]
        #expect(network.applied[1]!.map(\.position) == expectedApplied)
        for id: NodeID in [2, 3] {
            #expect(network.log(id) == network.log(1))
        }
    }

    struct BacktrackCase: Sendable, CustomTestStringConvertible {
        var name: String
        var leader: [Term]
        var follower: [Term]
        var testDescription: String { name }
    }

    static func run(_ term: Term, _ count: Int) -> [Term] { Array(repeating: term, count: count) }

    static let backtrackCases: [BacktrackCase] = [
        BacktrackCase(name: "long tail of an older term", leader: [1] + run(3, 50), follower: [1] + run(2, 100)),
        BacktrackCase(
            name: "divergence after a shared prefix", leader: [1] + run(2, 10) + run(4, 40),
            follower: [1] + run(2, 10) + run(3, 60)),
        BacktrackCase(name: "short and stale", leader: [1] + run(3, 100), follower: [1] + run(2, 5)),
        BacktrackCase(
            name: "figure 7 (f) at scale", leader: [1, 1, 1] + run(4, 20) + run(6, 30),
            follower: [1, 1, 1] + run(2, 30) + run(3, 40)),
    ]

    @Test("fast back-tracking repairs a long conflicting log in a couple of round trips", arguments: backtrackCases)
    func fastBacktracking(_ c: BacktrackCase) throws {
        let leaderLog = makeLog(terms: c.leader)
        let network = Network(
            ids: [1, 2, 3],
            durable: [
                1: DurableState(hardState: HardState(term: c.leader.max()!), entries: leaderLog),
                2: DurableState(hardState: HardState(term: c.follower.max()!), entries: makeLog(terms: c.follower)),
                3: DurableState(hardState: HardState(term: c.leader.max()!), entries: leaderLog),
            ]
        )
        try #require(network.elect(1))
        network.stabilize()
        let rejections = network.sent.filter { $0.from == 2 && $0.appendResponse?.rejected == true }.count
        // One rejection per conflicting entry would be dozens here.
        #expect(rejections >= 1)
        #expect(rejections <= 2, "\(rejections) rejections to repair the follower")
        #expect(network.log(2) == network.log(1))
        // The commit index reaches the repaired follower at the latest with the next heartbeat.
        network.tick([1], times: network.settings.heartbeatTicks)
        #expect(network[2].commitIndex == network[1].lastIndex)
    }

    @Test("a follower that was being probed when the commit advanced learns the commit when its probe is answered")
    func probedFollowerLearnsCommitWithoutHeartbeat() throws {
        // The leader commits its no-op with node 3's acknowledgement while its probe to node 2
        // is still outstanding (so node 2 is paused and skipped by the commit broadcast). When
        // node 2 acknowledges, nothing is left to send, and without a further (empty) append it
        // learns the commit only from the next heartbeat. etcd sends that append when the
        // follower was paused ("this node may be missing the latest commit index").
        let leaderLog = makeLog(terms: [1] + Self.run(3, 50))
        let network = Network(
            ids: [1, 2, 3],
            durable: [
                1: DurableState(hardState: HardState(term: 3), entries: leaderLog),
                2: DurableState(hardState: HardState(term: 2), entries: makeLog(terms: [1] + Self.run(2, 100))),
                3: DurableState(hardState: HardState(term: 3), entries: leaderLog),
            ]
        )
        try #require(network.elect(1))
        network.stabilize()
        try #require(network.log(2) == network.log(1))
        #expect(network[1].commitIndex == network[1].lastIndex)
        #expect(network[2].commitIndex == network[1].commitIndex, "no ticks: only replication traffic may carry it")
    }

    @Test(
        "flow control: at most maxInflightMessages appends go to a follower that does not answer",
        arguments: [1, 2, 4])
    func inflightLimit(maxInflight: Int) throws {
        let settings = RaftSettings.testing {
            $0.maxInflightMessages = maxInflight
            $0.maxBytesPerAppend = 1  // one entry per append, so appends and entries are counted alike
        }
        let network = Network(ids: [1, 2, 3], settings: settings)
        try #require(network.elect(1))
        network.block(from: 3, to: 1)
        let start = network.sent.count
        var commands: [[UInt8]] = []
        for i in 0..<10 {
            commands.append([UInt8(i)])
            try network.propose([UInt8(i)], on: 1)
            network.stabilize()
        }
        let appendsTo3 = network.sent[start...].filter { $0.to == 3 && $0.appendEntries?.entries.isEmpty == false }
        #expect(appendsTo3.count == maxInflight)
        // The answering follower is not held back by the silent one.
        #expect(network.appliedCommands(2) == commands)

        // Once it answers again, heartbeats find the stalled pipeline and it catches up.
        network.heal()
        let ticks = network.tick(until: { network.appliedCommands(3) == commands }, maxTicks: 100)
        #expect(ticks != nil)
        #expect(network.log(3) == network.log(1))
    }
}
