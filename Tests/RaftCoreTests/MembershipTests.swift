@_spi(Testing) import RaftCore
import Testing

@Suite("Membership changes (thesis §4.1)")
struct MembershipTests {
    @Test("a learner catches up, counts for no quorum, never campaigns, and can be promoted")
    func learnerLifecycle() throws {
        // Node 4 runs from the start with the same bootstrap, as a replica added later would.
        let network = Network(ids: [1, 2, 3, 4], bootstrap: ClusterConfiguration(voters: [1, 2, 3]))
        try #require(network.elect(1))
        var commands: [[UInt8]] = (0..<5).map { [UInt8($0)] }
        for command in commands { try network.propose(command, on: 1) }
        network.stabilize()
        #expect(network[4].lastIndex == 0, "a non-member received the log")

        let add = try network.proposeChange(.addLearner(4), on: 1)
        network.stabilize()
        #expect(network[1].configuration == ClusterConfiguration(voters: [1, 2, 3], learners: [4]))
        #expect(network[4].configuration == network[1].configuration)
        #expect(network[1].commitIndex >= add.index)
        #expect(network.log(4) == network.log(1))
        #expect(network.appliedCommands(4) == commands)

        // Learners do not count: the leader and the learner alone are no quorum of {1,2,3}.
        network.isolate(2)
        network.isolate(3)
        let commitBefore = network[1].commitIndex
        let position = try network.propose([0xA0], on: 1)
        network.stabilize()
        #expect(network[4].lastIndex == position.index)
        #expect(network[1].commitIndex == commitBefore)
        network.heal()
        #expect(network.tick(until: { network[1].commitIndex >= position.index }, maxTicks: 50) != nil)
        commands.append([0xA0])

        // Learners never campaign, however long they hear nothing.
        network.isolate(4)
        let learnerTerm = network[4].term
        let mark = network.sent.count
        network.tick(times: network.settings.electionTicksMax * 5)
        #expect(network[4].role == .follower)
        #expect(network[4].term == learnerTerm)
        #expect(!network.sent[mark...].contains { $0.from == 4 && $0.voteRequest != nil })
        network.heal()
        #expect(network.tick(until: { network.appliedCommands(4) == commands }, maxTicks: 50) != nil)

        let promote = try network.proposeChange(.promoteLearner(4), on: 1)
        network.stabilize()
        #expect(network[1].commitIndex >= promote.index)
        #expect(network[1].configuration == ClusterConfiguration(voters: [1, 2, 3, 4]))
        #expect(network[4].configuration.voters.contains(4))
        // As a voter it may now lead.
        try network.transferLeadership(to: 4, on: 1)
        network.stabilize()
        #expect(network.leaders == [4])
    }

    @Test("a learner too far behind is not promoted until it catches up")
    func laggingLearnerNotPromoted() throws {
        let settings = RaftSettings.testing { $0.maxLearnerLagForPromotion = 2 }
        let network = Network(
            ids: [1, 2, 3, 4], settings: settings, bootstrap: ClusterConfiguration(voters: [1, 2, 3]))
        try #require(network.elect(1))
        try network.proposeChange(.addLearner(4), on: 1)
        network.stabilize()
        network.isolate(4)
        for i in 0..<5 { try network.propose([UInt8(i)], on: 1) }
        network.stabilize()
        #expect(throws: ProposalRejection.learnerNotCaughtUp(4, lag: 5)) {
            try network.proposeChange(.promoteLearner(4), on: 1)
        }
        network.heal()
        #expect(network.tick(until: { network[4].lastIndex == network[1].lastIndex }, maxTicks: 50) != nil)
        try network.proposeChange(.promoteLearner(4), on: 1)
        network.stabilize()
        #expect(network[1].configuration.voters == [1, 2, 3, 4])
    }

    @Test("invalid changes are refused: removing the leader, a second uncommitted change, too early")
    func refusedChanges() throws {
        let network = Network(ids: [1, 2, 3])
        // Until its no-op commits, a new leader may not change membership (thesis errata).
        network.dropFilter = { $0.to == 1 && $0.appendResponse != nil }
        try #require(network.elect(1))
        #expect(throws: ProposalRejection.leaderNotYetCommittedInTerm) {
            try network.proposeChange(.addLearner(4), on: 1)
        }
        network.dropFilter = nil
        #expect(network.tick(until: { network[1].commitIndex == network[1].lastIndex }, maxTicks: 20) != nil)

        #expect(throws: ProposalRejection.cannotRemoveLeader) { try network.proposeChange(.remove(1), on: 1) }
        #expect(throws: ProposalRejection.invalidMembershipChange(.alreadyMember(2))) {
            try network.proposeChange(.addLearner(2), on: 1)
        }
        #expect(throws: ProposalRejection.invalidMembershipChange(.notALearner(2))) {
            try network.proposeChange(.promoteLearner(2), on: 1)
        }
        #expect(throws: ProposalRejection.notLeader(knownLeader: 1)) {
            try network.proposeChange(.addLearner(4), on: 2)
        }

        // One uncommitted change at a time: cut the leader off so the first cannot commit.
        network.isolate(1)
        let first = try network.proposeChange(.addLearner(4), on: 1)
        #expect(throws: ProposalRejection.membershipChangePending(index: first.index)) {
            try network.proposeChange(.addLearner(5), on: 1)
        }
        network.heal()
        #expect(network.tick(until: { network[1].commitIndex >= first.index }, maxTicks: 50) != nil)
        try network.proposeChange(.addLearner(5), on: 1)
        #expect(network[1].configuration.learners == [4, 5])
    }

    @Test("etcd's strict reconfiguration check: no change may leave fewer answering voters than a quorum")
    func changesThatWouldLoseQuorumAreRefused() throws {
        let network = Network(ids: [1, 2, 3, 4], bootstrap: ClusterConfiguration(voters: [1, 2, 3]))
        try #require(network.elect(1))
        try network.proposeChange(.addLearner(4), on: 1)
        network.stabilize()
        // 3 and the (caught-up) learner 4 go silent; two CheckQuorum rounds see it.
        network.isolate(3)
        network.isolate(4)
        network.tick(times: network.settings.electionTicksMax * 3)
        #expect(network.leaders == [1], "1 and 2 are still a quorum of {1,2,3}")

        // Removing the live follower leaves {1,3} with only 1 answering.
        #expect(throws: ProposalRejection.wouldLoseQuorum(active: 1, needed: 2, voters: 2)) {
            try network.proposeChange(.remove(2), on: 1)
        }
        // Promoting the silent learner makes four voters, of which two answer: no quorum of 3.
        #expect(throws: ProposalRejection.wouldLoseQuorum(active: 2, needed: 3, voters: 4)) {
            try network.proposeChange(.promoteLearner(4), on: 1)
        }
        // Removing the silent voter is what the runbook does, and it is allowed.
        let removal = try network.proposeChange(.remove(3), on: 1)
        network.stabilize()
        #expect(network[1].commitIndex >= removal.index)
        #expect(network[1].configuration == ClusterConfiguration(voters: [1, 2], learners: [4]))

        // Back and answering, the learner may be promoted.
        network.heal()
        #expect(network.tick(until: { network[4].lastIndex == network[1].lastIndex }, maxTicks: 50) != nil)
        try network.proposeChange(.promoteLearner(4), on: 1)
        network.stabilize()
        #expect(network[1].configuration.voters == [1, 2, 4])
    }

    @Test("a learner's address travels with its membership change and leaves with its removal")
    func addressesFollowMembership() throws {
        var configuration = ClusterConfiguration(voters: [1, 2, 3])
        configuration = try configuration.applying(.addLearner(4, address: "10.0.0.4:7100")).get()
        #expect(configuration.addresses == [4: "10.0.0.4:7100"])
        configuration = try configuration.applying(.promoteLearner(4)).get()
        #expect(configuration.addresses == [4: "10.0.0.4:7100"])
        configuration = try configuration.applying(.remove(4)).get()
        #expect(configuration.addresses.isEmpty)
        #expect(MembershipChange.addLearner(4, address: "h:1").description == "add-learner(n4@h:1)")
        // An address for someone who is no member is not kept.
        #expect(ClusterConfiguration(voters: [1], addresses: [2: "x:1"]).addresses.isEmpty)
    }

    @Test("after removing a voter the smaller majority commits without it")
    func removeVoter() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        let removal = try network.proposeChange(.remove(3), on: 1)
        network.stabilize()
        #expect(network[1].commitIndex >= removal.index)
        #expect(network[1].configuration == ClusterConfiguration(voters: [1, 2]))
        #expect(network[2].configuration == ClusterConfiguration(voters: [1, 2]))

        network.isolate(3)
        let position = try network.propose([1], on: 1)
        network.stabilize()
        #expect(network[1].commitIndex >= position.index)
        #expect(network.appliedCommands(2) == [[1]])
    }
}
