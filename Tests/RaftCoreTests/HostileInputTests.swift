import Testing

@testable import RaftCore

/// A peer's message that no correct peer sends is refused and counted; it never traps the node
/// or reaches its log.
@Suite("Hostile peer input")
struct HostileInputTests {
    static func follower(clock: ManualClock = ManualClock()) -> RaftNode {
        RaftNode(
            id: 1, settings: .testing(), bootstrap: ClusterConfiguration(voters: [1, 2, 3]),
            clock: clock.raftClock, random: SplitMix64(seed: 1)
        )
    }

    static func append(_ entries: [LogEntry], previous: LogPosition = LogPosition(term: 0, index: 0)) -> RaftMessage {
        RaftMessage(
            from: 2, to: 1, term: 1,
            body: .appendEntries(AppendEntries(previous: previous, entries: entries, leaderCommit: 0, round: 1))
        )
    }

    @Test(arguments: [MembershipChange.promoteLearner(9), .remove(7), .addLearner(2)])
    func membershipChangeThatDoesNotFitIsRefused(change: MembershipChange) {
        var node = Self.follower()
        let directives = node.receive(
            Self.append([
                LogEntry(term: 1, index: 1, payload: .leaderNoop),
                LogEntry(term: 1, index: 2, payload: .membership(change)),
            ])
        )
        #expect(node.refusedMessages == 1)
        #expect(node.lastRefusal?.contains("\(change)") == true, "\(node.lastRefusal ?? "")")
        #expect(node.lastIndex == 1, "the valid prefix may stay; the bad entry must not")
        #expect(node.configuration == ClusterConfiguration(voters: [1, 2, 3]))
        #expect(node.integrityFailures.isEmpty)
        #expect(!directives.contains { if case .send = $0 { return true } else { return false } }, "no acknowledgement")
    }

    @Test func entriesThatSkipAnIndexAreRefused() {
        var node = Self.follower()
        _ = node.receive(
            Self.append([
                LogEntry(term: 1, index: 1, payload: .leaderNoop), LogEntry(term: 1, index: 3, payload: .leaderNoop),
            ])
        )
        #expect(node.refusedMessages == 1)
        #expect(node.lastIndex == 0)
    }

    // MARK: - Frames that used to trap or halt a replica

    /// A three-voter network where node 1 leads term 2 (after one failed round it is not term 1
    /// necessarily; read the term from the node) and nodes 2 and 3 follow.
    static func ledNetwork() -> Network {
        let network = Network(ids: [1, 2, 3])
        #expect(network.elect(1))
        network.stabilize()
        return network
    }

    static func refusals(_ directives: [RaftDirective]) -> [(NodeID, String)] {
        directives.compactMap { if case .refused(let peer, let reason) = $0 { (peer, reason) } else { nil } }
    }

    @Test func sameTermLeaderClaimToTheLeaderIsRefusedNotFatal() {
        let network = Self.ledNetwork()
        var leader = network[1]
        let term = leader.term
        for body in [
            RaftMessage.Body.heartbeat(Heartbeat(leaderCommit: 0, round: 1)), .timeoutNow,
            .appendEntries(AppendEntries(previous: LogPosition(term: 0, index: 0), entries: [], leaderCommit: 0, round: 1)),
            .installSnapshot(InstallSnapshot(snapshot: Snapshot(metadata: SnapshotMetadata(last: LogPosition(term: term, index: 1), configuration: ClusterConfiguration(voters: [1, 2, 3])), data: []), round: 1)),
        ] {
            let directives = leader.receive(RaftMessage(from: 2, to: 1, term: term, body: body))
            #expect(Self.refusals(directives).map(\.0) == [2], "\(body)")
        }
        #expect(leader.integrityFailures.isEmpty)
        #expect(leader.role == .leader)
        #expect(leader.refusedMessages == 4)
    }

    @Test func secondLeaderOfTheSameTermIsRefusedByAFollower() {
        let network = Self.ledNetwork()
        var follower = network[2]
        let before = follower.commitIndex
        let directives = follower.receive(
            RaftMessage(from: 3, to: 2, term: follower.term, body: .heartbeat(Heartbeat(leaderCommit: 99, round: 1))))
        #expect(Self.refusals(directives).map(\.0) == [3])
        #expect(follower.leader == 1)
        #expect(follower.commitIndex == before)
    }

    @Test(arguments: [Term.max, Term.max - 1, Term(Int64.max), Term(Int64.max) + 1, RaftLimits.maxTerm + 1])
    func termBeyondTheLimitIsRefused(term: Term) {
        for body in [RaftMessage.Body.timeoutNow, .heartbeat(Heartbeat(leaderCommit: 0, round: 1)),
            .requestVote(RequestVote(isPreVote: false, lastLog: LogPosition(term: 0, index: 0)))]
        {
            let clock = ManualClock()
            var node = Self.follower(clock: clock)
            let directives = node.receive(RaftMessage(from: 2, to: 1, term: term, body: body))
            #expect(Self.refusals(directives).count == 1)
            #expect(node.term == 0, "the term must not be adopted")
            // It can still campaign afterwards, and follow a real leader: nothing moved to the edge.
            for _ in 0..<50 {
                clock.advance(by: .milliseconds(10))
                _ = node.tick()
            }
            #expect(node.role == .preCandidate)
            _ = node.receive(RaftMessage(from: 3, to: 1, term: 1, body: .heartbeat(Heartbeat(leaderCommit: 0, round: 1))))
            #expect(node.term == 1)
            #expect(node.leader == 3)
        }
    }

    @Test func termThatJumpsTooFarIsRefused() {
        var node = Self.follower()
        let directives = node.receive(
            RaftMessage(from: 2, to: 1, term: RaftLimits.maxTermJump + 1, body: .heartbeat(Heartbeat(leaderCommit: 0, round: 1))))
        #expect(Self.refusals(directives).count == 1)
        #expect(node.term == 0)
        _ = node.receive(
            RaftMessage(from: 2, to: 1, term: RaftLimits.maxTermJump, body: .heartbeat(Heartbeat(leaderCommit: 0, round: 1))))
        #expect(node.term == RaftLimits.maxTermJump, "a jump within the limit is ordinary Raft")
    }

    @Test(arguments: [
        LogPosition(term: 1, index: LogIndex.max), LogPosition(term: 1, index: RaftLimits.maxIndex + 1),
        LogPosition(term: 0, index: 5), LogPosition(term: 3, index: 5), LogPosition(term: 1, index: 0),
    ])
    func impossibleInstallSnapshotIsRefused(last: LogPosition) {
        var node = Self.follower()
        let install = InstallSnapshot(
            snapshot: Snapshot(metadata: SnapshotMetadata(last: last, configuration: ClusterConfiguration(voters: [1, 2, 3])), data: [1]),
            round: 1)
        let directives = node.receive(RaftMessage(from: 2, to: 1, term: 2, body: .installSnapshot(install)))
        #expect(Self.refusals(directives).count == 1, "\(last)")
        #expect(!directives.contains { if case .restoreSnapshot = $0 { true } else { false } })
        #expect(node.commitIndex == 0)
    }

    @Test func installSnapshotWithoutVotersIsRefused() {
        var node = Self.follower()
        let install = InstallSnapshot(
            snapshot: Snapshot(metadata: SnapshotMetadata(last: LogPosition(term: 1, index: 4), configuration: ClusterConfiguration(voters: [])), data: []),
            round: 1)
        let directives = node.receive(RaftMessage(from: 2, to: 1, term: 1, body: .installSnapshot(install)))
        #expect(Self.refusals(directives).count == 1)
        #expect(node.configuration == ClusterConfiguration(voters: [1, 2, 3]))
    }

    @Test(arguments: [
        // (previous, entry terms): terms above the sender's, term 0, terms going down, below previous.
        (LogPosition(term: 0, index: 0), [Term(5)]),
        (LogPosition(term: 0, index: 0), [Term(0)]),
        (LogPosition(term: 0, index: 0), [Term(2), Term(1)]),
        (LogPosition(term: 3, index: 0), [Term(1)]),
        (LogPosition(term: 1, index: LogIndex.max), [Term(1)]),
        (LogPosition(term: 1, index: LogIndex.max - 1), [Term(1), Term(1)]),
    ])
    func appendWithImpossibleTermsOrIndexesIsRefused(previous: LogPosition, terms: [Term]) {
        var node = Self.follower()
        let entries = terms.enumerated().map {
            LogEntry(term: $1, index: previous.index &+ 1 &+ LogIndex($0), payload: .leaderNoop)
        }
        let directives = node.receive(
            RaftMessage(
                from: 2, to: 1, term: 2,
                body: .appendEntries(AppendEntries(previous: previous, entries: entries, leaderCommit: 0, round: 1))))
        #expect(Self.refusals(directives).count == 1)
        #expect(node.lastIndex == 0)
    }

    @Test func overwritingACommittedEntryIsNeverFatal() {
        let network = Self.ledNetwork()
        _ = try? network.propose([1], on: 1)
        network.stabilize()
        var follower = network[2]
        let committed = follower.commitIndex
        #expect(committed >= 2)
        let forged = LogEntry(term: follower.term + 1, index: committed, payload: .command([9]))
        let directives = follower.receive(
            RaftMessage(
                from: 3, to: 2, term: follower.term + 1,
                body: .appendEntries(
                    AppendEntries(previous: LogPosition(term: follower.term(at: committed - 1)!, index: committed - 1),
                        entries: [forged], leaderCommit: committed, round: 1))))
        #expect(follower.integrityFailures.isEmpty)
        #expect(follower.entry(at: committed)?.payload != .command([9]))
        #expect(Self.refusals(directives).isEmpty, "a stale append is answered with the commit index, as Raft says")
    }

    @Test func heartbeatCommitsOnlyWhatTheLeaderShowedToMatch() {
        // An entry from an old term that the new leader never confirmed must not be committed by
        // a heartbeat, whatever commit index it carries.
        var node = Self.follower()
        _ = node.receive(
            Self.append([LogEntry(term: 1, index: 1, payload: .leaderNoop), LogEntry(term: 1, index: 2, payload: .command([1]))]))
        #expect(node.lastIndex == 2)
        _ = node.receive(RaftMessage(from: 3, to: 1, term: 2, body: .heartbeat(Heartbeat(leaderCommit: 2, round: 1))))
        #expect(node.leader == 3)
        #expect(node.commitIndex == 0, "nothing of term 2's leader was shown to match yet")
        _ = node.receive(
            RaftMessage(
                from: 3, to: 1, term: 2,
                body: .appendEntries(AppendEntries(previous: LogPosition(term: 1, index: 1), entries: [], leaderCommit: 1, round: 2))))
        _ = node.receive(RaftMessage(from: 3, to: 1, term: 2, body: .heartbeat(Heartbeat(leaderCommit: 2, round: 3))))
        #expect(node.commitIndex == 1, "matched through 1, so at most 1")
    }

    @Test func acknowledgementsBeyondTheLeadersLogOrRoundAreRefused() {
        let network = Self.ledNetwork()
        var leader = network[1]
        let term = leader.term
        let lease = leader.leaseExpiry
        for body in [
            RaftMessage.Body.appendEntriesResponse(AppendEntriesResponse(index: LogIndex.max, rejected: false, round: 1)),
            .appendEntriesResponse(AppendEntriesResponse(index: leader.lastIndex + 1, rejected: false, round: 1)),
            .appendEntriesResponse(AppendEntriesResponse(index: 1, rejected: false, round: UInt64.max)),
            .heartbeatResponse(HeartbeatResponse(round: UInt64.max)),
        ] {
            let directives = leader.receive(RaftMessage(from: 2, to: 1, term: term, body: body))
            #expect(Self.refusals(directives).count == 1, "\(body)")
        }
        #expect(leader.leaseExpiry == lease)
        #expect(leader.memberProgress.first { $0.id == 2 }!.match <= leader.lastIndex)
    }

    @Test func timeoutNowOrTransferVoteFromANonMemberIsRefused() {
        let network = Self.ledNetwork()
        var follower = network[2]
        let term = follower.term
        let directives = follower.receive(RaftMessage(from: 9, to: 2, term: term + 1, body: .timeoutNow))
        #expect(Self.refusals(directives).count == 1)
        #expect(follower.term == term)
        #expect(follower.role == .follower)
        // A transfer campaign from a non-voter does not get around the lease.
        let vote = follower.receive(
            RaftMessage(from: 9, to: 2, term: term + 1,
                body: .requestVote(RequestVote(isPreVote: false, lastLog: LogPosition(term: term + 5, index: 100), isLeadershipTransfer: true))))
        #expect(follower.term == term)
        #expect(!vote.contains { if case .send(let m) = $0, case .requestVoteResponse(let r) = m.body { r.granted } else { false } })
    }
}

