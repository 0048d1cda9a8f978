@_spi(Testing) import RaftCore
import Testing

/// Whether `message` acknowledges appended entries through at least `index`.
func acknowledges(_ message: RaftMessage, from follower: NodeID, through index: LogIndex) -> Bool {
    guard message.from == follower, let response = message.appendResponse else { return false }
    return !response.rejected && response.index >= index
}

@Suite("Persistent-state contract")
struct PersistenceTests {
    @Test("a vote is sent only once the vote is durable, and right after")
    func voteWaitsForDurability() throws {
        let network = Network(ids: [1, 2, 3])
        network.isolate(3)  // node 1 needs node 2's vote
        network.manualPersistence = [2]
        // Pre-vote changes no durable state, so it needs no write; the real vote does.
        for _ in 0..<(network.settings.electionTicksMax * 2) where network[1].role != .candidate {
            network.tick([1])
        }
        try #require(network[1].role == .candidate)
        let term = network[1].term

        #expect(network[2].term == term)
        #expect(network[2].votedFor == 1)
        let write = try #require(network.pendingWrites[2]?.only)
        #expect(write.hardState?.term == term)
        #expect(write.hardState?.votedFor == 1)
        #expect(network.storage[2]!.hardState.votedFor == nil)
        #expect(!network.sent.contains { $0.from == 2 && $0.voteResponse?.isPreVote == false })

        let mark = network.sent.count
        network.flushWrites(2)
        let released = network.sent[mark...].filter { $0.from == 2 }
        #expect(released.map(\.voteResponse) == [RequestVoteResponse(isPreVote: false, granted: true)])
        #expect(released.first?.term == term)
        #expect(network.storage[2]!.hardState.votedFor == 1)
        network.stabilize()
        #expect(network[1].role == .leader)
    }

    @Test(
        "an append is acknowledged only once the entries are durable, and right after",
        arguments: [nil, .acknowledgesBeforePersisting] as [RaftDefect?]
    )
    func appendAckWaitsForDurability(defect: RaftDefect?) throws {
        let network = Network(ids: [1, 2, 3], settings: .testing { $0.defect = defect })
        try #require(network.elect(1))
        network.manualPersistence = [2]
        let mark = network.sent.count
        let position = try network.propose([7], on: 1)
        network.stabilize()

        // Node 2 holds the entry in memory but has not made it durable yet.
        #expect(network[2].entry(at: position.index)?.payload == .command([7]))
        #expect(!network.storage[2]!.entries.contains { $0.index == position.index })
        let early = network.sent[mark...].filter { acknowledges($0, from: 2, through: position.index) }
        if defect == nil {
            #expect(early.isEmpty, "acknowledged before the write: \(early)")
        } else {
            // The defect is what this test is for: it must be visible here.
            #expect(!early.isEmpty)
        }

        let flushMark = network.sent.count
        network.flushWrites(2)
        #expect(network.storage[2]!.entries.last?.position == position)
        if defect == nil {
            #expect(network.sent[flushMark...].contains { acknowledges($0, from: 2, through: position.index) })
        }
    }

    @Test("a leader applies a committed entry only once it is durable in its own log")
    func leaderAppliesOnlyDurableEntries() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.manualPersistence = [1]
        let position = try network.propose([9], on: 1)
        network.stabilize()

        // The followers' acknowledgements are a quorum, so the entry is committed …
        #expect(network[1].commitIndex >= position.index)
        #expect(network.appliedCommands(2) == [[9]])
        // … but the leader's own copy is not durable, so it must not reach its state machine.
        #expect(network.appliedCommands(1).isEmpty)
        network.flushWrites(1)
        #expect(network.appliedCommands(1) == [[9]])
    }

    @Test("a crash before a write completes loses it, and the entry was never acknowledged")
    func crashBeforeWriteLosesIt() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.manualPersistence = [2]
        let position = try network.propose([5], on: 1)
        network.stabilize()
        try #require(network[2].lastIndex == position.index)

        network.restart(2)
        #expect(network[2].lastIndex == position.index - 1)
        let progress = try #require(network[1].memberProgress.first { $0.id == 2 })
        #expect(progress.match < position.index, "the leader counted an entry node 2 never made durable")

        network.manualPersistence = []
        let ticks = network.tick(until: { network.appliedCommands(2) == [[5]] }, maxTicks: 100)
        #expect(ticks != nil)
    }

    @Test("a restart from DurableState keeps term, vote, log and commit; the cluster carries on")
    func restartKeepsState() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let commands: [[UInt8]] = [[1], [2], [3]]
        for command in commands { try network.propose(command, on: 1) }
        network.stabilize()

        for id in network.ids {
            let before = network[id]
            let log = network.log(id)
            network.restart(id)
            #expect(network[id].term == before.term)
            #expect(network[id].votedFor == before.votedFor)
            #expect(network.log(id) == log)
            #expect(network[id].commitIndex == network.storage[id]!.hardState.commit)
            #expect(network[id].role == .follower)
        }
        let elected = network.tick(until: { network.leaders.count == 1 }, maxTicks: 200)
        #expect(elected != nil)
        try network.propose([4], on: try #require(network.leaders.first))
        network.stabilize()
        for id in network.ids {
            // The state machines restarted empty and replay the whole log.
            #expect(network.appliedCommands(id) == commands + [[4]], "node \(id)")
        }
    }
}
