@_spi(Testing) import RaftCore
import Testing

@Suite("Leadership transfer (thesis §3.10)")
struct TransferTests {
    @Test("to an up-to-date follower: TimeoutNow at once, and it leads the next term")
    func transferToUpToDateFollower() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let term = network[1].term
        #expect(network[1].holdsLease)

        try network.transferLeadership(to: 2, on: 1)
        #expect(network[1].transferTarget == 2)
        #expect(network.queue.contains { $0.to == 2 && $0.isTimeoutNow })
        // The target may campaign any moment now, so the old leader must stop trusting its lease.
        #expect(!network[1].holdsLease)
        #expect(throws: ProposalRejection.leadershipTransferInProgress(to: 2)) { try network.propose([1], on: 1) }

        network.stabilize()
        #expect(network.leaders == [2])
        for id in network.ids {
            #expect(network[id].term == term + 1)
            #expect(network[id].leader == 2)
        }
        #expect(network[1].transferTarget == nil)
    }

    @Test("to a lagging follower: the leader catches it up first, then sends TimeoutNow")
    func transferToLaggingFollower() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let term = network[1].term
        network.isolate(3)
        let commands: [[UInt8]] = (0..<5).map { [UInt8($0)] }
        for command in commands { try network.propose(command, on: 1) }
        network.stabilize()
        network.heal()

        var targetLastIndexAtTimeoutNow: LogIndex?
        network.onDeliver = { [unowned network] message in
            if message.isTimeoutNow { targetLastIndexAtTimeoutNow = network[message.to].lastIndex }
        }
        let leaderLastIndex = network[1].lastIndex
        try #require(network[3].lastIndex < leaderLastIndex)
        try network.transferLeadership(to: 3, on: 1)
        #expect(!network.queue.contains { $0.isTimeoutNow }, "TimeoutNow before the target caught up")
        #expect(throws: ProposalRejection.leadershipTransferInProgress(to: 3)) { try network.propose([9], on: 1) }

        network.stabilize()
        #expect(targetLastIndexAtTimeoutNow == leaderLastIndex)
        #expect(network.leaders == [3])
        #expect(network[3].term == term + 1)
        for id in network.ids {
            #expect(network.appliedCommands(id) == commands, "node \(id)")
        }
    }

    @Test("without a named target the most caught-up voter is chosen")
    func transferPicksMostCaughtUp() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.isolate(3)
        try network.propose([1], on: 1)
        network.stabilize()
        try network.transferLeadership(to: nil, on: 1)
        #expect(network[1].transferTarget == 2)
    }

    @Test("to an unreachable node: the transfer is abandoned after one election timeout")
    func transferToUnreachableNodeAborts() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.isolate(3)
        try network.propose([1], on: 1)  // node 3 now lags, so no TimeoutNow is sent yet
        network.stabilize()
        try network.transferLeadership(to: 3, on: 1)

        let e = network.settings.electionTicksMin
        network.tick(times: e - 1)
        #expect(network[1].transferTarget == 3)
        #expect(throws: ProposalRejection.leadershipTransferInProgress(to: 3)) { try network.propose([2], on: 1) }
        network.tick()
        #expect(network[1].transferTarget == nil)
        #expect(network[1].role == .leader)
        #expect(!network.sent.contains { $0.isTimeoutNow })
        let position = try network.propose([2], on: 1)
        network.stabilize()
        #expect(network[1].commitIndex >= position.index)
    }

    @Test("a leader whose TimeoutNow was lost steps down when the transfer times out")
    func lostTimeoutNowStepsDown() throws {
        // Documented in RaftNode.abortTransfer: without its lease the old leader helps nobody.
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let term = network[1].term
        network.dropFilter = { $0.isTimeoutNow }
        try network.transferLeadership(to: 2, on: 1)
        #expect(network.sent.contains { $0.to == 2 && $0.isTimeoutNow })

        let e = network.settings.electionTicksMin
        network.tick(times: e - 1)
        #expect(network[1].role == .leader)
        #expect(!network[1].holdsLease)
        network.tick()
        #expect(network[1].role == .follower)
        #expect(network[1].term == term)

        network.heal()
        let elected = network.tick(until: { network.leaders.count == 1 }, maxTicks: 200)
        #expect(elected != nil)
    }

    @Test("invalid transfers are refused")
    func invalidTransfers() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        #expect(throws: TransferRejection.targetIsSelf) { try network.transferLeadership(to: 1, on: 1) }
        #expect(throws: TransferRejection.targetNotAVoter(9)) { try network.transferLeadership(to: 9, on: 1) }
        #expect(throws: TransferRejection.notLeader(knownLeader: 1)) { try network.transferLeadership(to: 3, on: 2) }
        #expect(network[1].transferTarget == nil)
    }
}
