/// One Raft replica as a value: events in, directives out, no I/O.
///
/// Every mutating entry point (`tick`, `receive`, `propose`, `proposeMembershipChange`,
/// `transferLeadership`, `persisted`, `compact`) returns the directives the shell must carry out,
/// in order. The node reads the time only through the injected clock and draws randomness only
/// from the injected generator, so a simulator can replay any run from a seed.
///
/// Feed events one at a time: carry out every directive of one call (hand writes to storage,
/// messages to the transport, entries to the state machine) before making the next call, including
/// `persisted`; otherwise `apply` batches can reach the state machine out of order.
///
/// The persistent-state contract: the node emits `persist` writes and holds back every message
/// whose meaning depends on a write (a vote, an acknowledgement of entries) until the shell
/// reports that write durable with `persisted(_:)`. See `doc/consensus.md`.
public struct RaftNode: Sendable {
    public let id: NodeID
    public let settings: RaftSettings
    private let clock: RaftClock
    private var random: any RandomNumberGenerator & Sendable

    public private(set) var role: RaftRole = .follower
    public private(set) var term: Term
    public private(set) var votedFor: NodeID?
    /// The leader of the current term, if known.
    public private(set) var leader: NodeID?
    public private(set) var commitIndex: LogIndex
    /// Entries up to here have been handed to the state machine with `apply`.
    public private(set) var appliedIndex: LogIndex
    /// Entries up to here are durable in this node's storage (and match its in-memory log).
    public private(set) var persistedIndex: LogIndex
    /// Consistency failures this node noticed in its inputs (for example a leader asking it to
    /// overwrite a committed entry). Empty in a correct cluster; a shell halts when it is not.
    public private(set) var integrityFailures: [String] = []
    /// Messages refused because they could not have come from a correct peer (for example an
    /// append whose membership change does not fit this log). Counted, never applied.
    public private(set) var refusedMessages: UInt64 = 0
    public private(set) var lastRefusal: String?
    /// The highest commit index the leader of the current term has announced (for readiness: how
    /// far behind this node is). Taken only from messages the node accepted.
    public private(set) var leaderCommitSeen: LogIndex = 0

    private var log: RaftLog
    private var snapshotData: [UInt8]

    // Timers, in ticks.
    private var electionElapsed = 0
    private var randomizedElectionTicks = 0
    private var heartbeatElapsed = 0
    /// When this node last heard from the leader of its term, or started. It grants no vote and
    /// starts no election before `electionTimeoutMin` has passed since, which is what makes the
    /// leader's lease sound.
    private var lastLeaderContact: MonotonicInstant

    /// Follower state: the last index known to match the current leader's log, because that
    /// leader's append (or snapshot) said so. A heartbeat commits no further than this, or than
    /// an entry of the leader's own term, which only that leader can have written.
    private var leaderMatchedThrough: LogIndex = 0

    // Candidate state.
    private var votes: [NodeID: Bool] = [:]

    // Leader state.
    private var progress: [NodeID: FollowerProgress] = [:]
    private var round: UInt64 = 0
    private var roundStarts: [UInt64: MonotonicInstant] = [:]
    private var leaseEnd: MonotonicInstant?
    private var transfer: LeadershipTransfer?

    // Persistence bookkeeping.
    private var nextWriteID: UInt64 = 1
    private var lastIssuedWrite = StorageWriteID(0)
    private var lastAckedWrite = StorageWriteID(0)
    private var pendingWrites: [(id: StorageWriteID, lastIndex: LogIndex, hardState: HardState)] = []
    /// The lowest log index changed in memory since the last write was issued.
    private var dirtyFrom: LogIndex?
    private var dirtySnapshot: Snapshot?
    /// The write that made the current term and vote durable; a leader's traffic waits for it.
    private var termWrite = StorageWriteID(0)
    private var writtenHardState: HardState
    private var heldMessages: [(requires: StorageWriteID, message: RaftMessage)] = []

    // Output of the current step.
    private var outbox: [RaftDirective] = []
    private var unsentMessages: [(message: RaftMessage, needsDurability: Bool)] = []

    private struct LeadershipTransfer: Sendable {
        var target: NodeID
        var elapsedTicks = 0
        var timeoutNowSent = false
    }

    /// Starts a node from what its storage holds.
    ///
    /// - Parameters:
    ///   - bootstrap: the cluster's initial configuration, used when storage holds no snapshot.
    ///     Every replica, including ones added later, is started with the same bootstrap.
    ///   - appliedIndex: how far the state machine had applied before the restart, if it keeps
    ///     its own durable state; defaults to the snapshot's index.
    public init(
        id: NodeID,
        settings: RaftSettings,
        bootstrap: ClusterConfiguration,
        durable: DurableState = DurableState(),
        appliedIndex: LogIndex? = nil,
        clock: @escaping RaftClock,
        random: some RandomNumberGenerator & Sendable
    ) {
        self.id = id
        self.settings = settings
        self.clock = clock
        self.random = random
        let snapshotMetadata =
            durable.snapshot?.metadata
            ?? SnapshotMetadata(last: LogPosition(term: 0, index: 0), configuration: bootstrap)
        self.log = RaftLog(snapshot: snapshotMetadata, entries: durable.entries)
        self.snapshotData = durable.snapshot?.data ?? []
        self.term = durable.hardState.term
        self.votedFor = durable.hardState.votedFor
        self.persistedIndex = log.lastIndex
        self.commitIndex = max(log.snapshotIndex, min(durable.hardState.commit, log.lastIndex))
        self.appliedIndex = max(log.snapshotIndex, min(appliedIndex ?? 0, commitIndex))
        self.writtenHardState = HardState(term: term, votedFor: votedFor, commit: commitIndex)
        // A restarted node may have acknowledged a leader's heartbeat just before it crashed;
        // it must keep that promise (no vote for electionTimeoutMin) as if it had just heard it.
        self.lastLeaderContact = clock()
        resetElectionTimer()
    }

    // MARK: - Read-only state

    public var lastIndex: LogIndex { log.lastIndex }
    public var lastLogPosition: LogPosition { log.lastPosition }
    public var firstIndex: LogIndex { log.firstIndex }
    public var snapshotIndex: LogIndex { log.snapshotIndex }
    public var configuration: ClusterConfiguration { log.configuration }
    public var hardState: HardState { HardState(term: term, votedFor: votedFor, commit: commitIndex) }
    public var transferTarget: NodeID? { transfer?.target }

    public func entry(at index: LogIndex) -> LogEntry? { log.entry(at: index) }
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }

    /// When the leader lease ends, if this node is the leader and holds one.
    public var leaseExpiry: MonotonicInstant? {
        guard role == .leader, transfer?.timeoutNowSent != true else { return nil }
        return leaseEnd
    }

    /// Whether this node may act on the outside world now: it is the leader of its current term
    /// and a quorum acknowledged a heartbeat round recently enough that no other node can have
    /// been elected since (see `doc/consensus.md`, "the lease rule").
    public var holdsLease: Bool {
        guard let end = leaseExpiry else { return false }
        return clock() < end
    }

    /// Time left on the lease, or nil without one.
    public var leaseRemaining: Duration? {
        guard let end = leaseExpiry else { return nil }
        let now = clock()
        return now < end ? end.duration(since: now) : nil
    }

    /// The leader's view of every member (empty on other roles).
    public var memberProgress: [MemberProgress] {
        guard role == .leader else { return [] }
        let config = log.configuration
        return progress.keys.sorted().map { member in
            let p = progress[member]!
            let state: String
            switch p.state {
            case .probe: state = "probe"
            case .replicate: state = "replicate"
            case .snapshot(let i, _): state = "snapshot(\(i))"
            }
            return MemberProgress(
                id: member,
                isVoter: config.voters.contains(member),
                match: member == id ? persistedIndex : p.match,
                next: p.next,
                state: state,
                recentlyActive: member == id || p.recentlyActive
            )
        }
    }

    // MARK: - Events

    /// Advances the logical clock by one tick. Call every `settings.tickInterval`.
    public mutating func tick() -> [RaftDirective] {
        if role == .leader { tickLeader() } else { tickElection() }
        return finishStep()
    }

    /// Handles one message from a peer.
    public mutating func receive(_ message: RaftMessage) -> [RaftDirective] {
        step(message)
        return finishStep()
    }

    /// Appends application commands to the log (leader only). The commands commit, or are lost
    /// with this leader's term; the shell learns which through `apply`.
    public mutating func propose(_ commands: [[UInt8]]) throws(ProposalRejection) -> Proposal {
        guard !commands.isEmpty else { throw .emptyProposal }
        try checkCanPropose()
        var positions: [LogPosition] = []
        positions.reserveCapacity(commands.count)
        for command in commands {
            positions.append(appendAsLeader(.command(command)))
        }
        broadcastAppend(sendIfEmpty: false)
        return Proposal(positions: positions, directives: finishStep())
    }

    public mutating func propose(_ command: [UInt8]) throws(ProposalRejection) -> Proposal {
        try propose([command])
    }

    /// Proposes a one-server membership change (leader only, one uncommitted change at a time).
    public mutating func proposeMembershipChange(_ change: MembershipChange) throws(ProposalRejection) -> Proposal {
        try checkCanPropose()
        if let pending = log.lastMembershipIndex, pending > commitIndex {
            throw .membershipChangePending(index: pending)
        }
        // Thesis errata: a leader must commit an entry of its own term before changing membership,
        // or a change appended by an earlier leader could be lost while this one is counted.
        guard log.term(at: commitIndex) == term else { throw .leaderNotYetCommittedInTerm }
        if case .failure(let error) = log.configuration.applying(change) { throw .invalidMembershipChange(error) }
        switch change {
        case .remove(let member) where member == id:
            throw .cannotRemoveLeader
        case .promoteLearner(let learner):
            let match = progress[learner]?.match ?? 0
            let lag = log.lastIndex > match ? log.lastIndex - match : 0
            if lag > settings.maxLearnerLagForPromotion { throw .learnerNotCaughtUp(learner, lag: lag) }
        default:
            break
        }
        // etcd's strict reconfiguration check: the configuration after the change must have a
        // quorum of voters that answer now, or the change itself could leave the cluster unable
        // to commit (removing a healthy voter while another is down; adding a voter that is not there).
        if case .success(let next) = log.configuration.applying(change), next.voters != log.configuration.voters {
            let active = next.voters.filter { isRecentlyActive($0) }.count
            if active < next.quorum { throw .wouldLoseQuorum(active: active, needed: next.quorum, voters: next.voters.count) }
        }
        let position = appendAsLeader(.membership(change))
        reconcileProgressWithConfiguration()
        _ = maybeCommit()  // removing a laggard can complete a quorum
        if let target = transfer?.target, !log.configuration.voters.contains(target) { abortTransfer() }
        broadcastAppend(sendIfEmpty: false)
        return Proposal(positions: [position], directives: finishStep())
    }

    /// Hands leadership to `target` (or the most caught-up voter): catch it up, then TimeoutNow.
    /// Proposals are refused while the transfer runs; it is abandoned after one election timeout.
    public mutating func transferLeadership(to target: NodeID?) throws(TransferRejection) -> [RaftDirective] {
        guard role == .leader else { throw .notLeader(knownLeader: leader) }
        let chosen: NodeID
        if let target {
            guard target != id else { throw .targetIsSelf }
            guard log.configuration.voters.contains(target) else { throw .targetNotAVoter(target) }
            chosen = target
        } else {
            let candidates = log.configuration.voters.filter { $0 != id }
            func match(_ member: NodeID) -> LogIndex { progress[member]?.match ?? 0 }
            guard let best = candidates.max(by: { (match($0), $0.rawValue) < (match($1), $1.rawValue) })
            else { throw .noCandidate }
            chosen = best
        }
        if let current = transfer {
            if current.target == chosen { return finishStep() }
            if current.timeoutNowSent { return finishStep() }  // too late to change course
        }
        transfer = LeadershipTransfer(target: chosen)
        if progress[chosen]?.match == log.lastIndex {
            sendTimeoutNow(to: chosen)
        } else {
            sendAppend(to: chosen, sendIfEmpty: true)
        }
        return finishStep()
    }

    /// Storage reports that every write up to `write` is durable.
    public mutating func persisted(_ write: StorageWriteID) -> [RaftDirective] {
        guard write > lastAckedWrite else { return finishStep() }
        guard write <= lastIssuedWrite else {
            integrityFailure("storage acknowledged \(write) but only \(lastIssuedWrite) was issued")
            return finishStep()
        }
        lastAckedWrite = write
        while let first = pendingWrites.first, first.id <= write {
            persistedIndex = first.lastIndex
            pendingWrites.removeFirst()
        }
        releaseHeldMessages()
        if role == .leader {
            if maybeCommit() { broadcastAppend(sendIfEmpty: true) }
        }
        return finishStep()
    }

    /// The state machine has a snapshot of its state through `index` (at most `appliedIndex`):
    /// the log before it can go. `data` is what followers that fall behind will be sent.
    public mutating func compact(through index: LogIndex, snapshotData data: [UInt8]) throws(CompactionError)
        -> [RaftDirective]
    {
        guard index <= appliedIndex else { throw .notApplied(requested: index, applied: appliedIndex) }
        guard index > log.snapshotIndex else {
            throw .alreadyCompacted(requested: index, snapshot: log.snapshotIndex)
        }
        guard let snapshotTerm = log.term(at: index) else {
            throw .alreadyCompacted(requested: index, snapshot: log.snapshotIndex)
        }
        let metadata = SnapshotMetadata(
            last: LogPosition(term: snapshotTerm, index: index),
            configuration: log.configuration(at: index)
        )
        log.install(metadata)
        snapshotData = data
        dirtySnapshot = Snapshot(metadata: metadata, data: data)
        if let from = dirtyFrom, from <= index { dirtyFrom = index + 1 }
        return finishStep()
    }

    // MARK: - Ticks

    private mutating func tickElection() {
        electionElapsed += 1
        guard electionElapsed >= randomizedElectionTicks else { return }
        guard isPromotable else {
            electionElapsed = 0
            return
        }
        // The tick count says the leader is gone, but the clock has the last word: no campaign
        // while a lease granted to the last leader could still be running.
        guard !heardFromLeaderRecently() else { return }
        electionElapsed = 0
        campaign(preVote: settings.preVote, transfer: false)
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1

        if var t = transfer {
            t.elapsedTicks += 1
            transfer = t
            if t.elapsedTicks >= settings.electionTicksMin {
                abortTransfer()
                if role != .leader { return }
            }
        }

        if electionElapsed >= settings.electionTicksMin {
            electionElapsed = 0
            if settings.checkQuorum {
                guard quorumRecentlyActive() else {
                    becomeFollower(term: term, leader: nil)
                    return
                }
                for member in progress.keys where member != id {
                    let wasActive = progress[member]?.recentlyActive ?? false
                    progress[member]?.activeLastRound = wasActive
                    progress[member]?.recentlyActive = false
                }
            }
        }

        for member in progress.keys {
            guard case .snapshot(let index, let ticksLeft) = progress[member]!.state else { continue }
            if ticksLeft <= 1 {
                progress[member]!.becomeProbe()  // the snapshot or its answer was lost; try again
            } else {
                progress[member]!.state = .snapshot(index: index, ticksLeft: ticksLeft - 1)
            }
        }

        if heartbeatElapsed >= settings.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// A member that answered in this CheckQuorum round or the one before (the leader itself always).
    private func isRecentlyActive(_ member: NodeID) -> Bool {
        member == id || progress[member]?.recentlyActive == true || progress[member]?.activeLastRound == true
    }

    private func quorumRecentlyActive() -> Bool {
        let config = log.configuration
        let active = config.voters.filter { $0 == id || progress[$0]?.recentlyActive == true }.count
        return active >= config.quorum
    }

    // MARK: - Elections

    private var isPromotable: Bool { log.configuration.voters.contains(id) }

    private func heardFromLeaderRecently() -> Bool {
        clock().duration(since: lastLeaderContact) < settings.electionTimeoutMin
    }

    private mutating func campaign(preVote: Bool, transfer: Bool) {
        let voteTerm: Term
        if preVote {
            becomePreCandidate()
            voteTerm = term + 1
        } else {
            becomeCandidate()
            voteTerm = term
        }
        if tallyVotes().granted >= log.configuration.quorum {
            // A single-voter cluster wins at once.
            if preVote { campaign(preVote: false, transfer: transfer) } else { becomeLeader() }
            return
        }
        let request = RequestVote(isPreVote: preVote, lastLog: log.lastPosition, isLeadershipTransfer: transfer)
        for voter in log.configuration.voters.sorted() where voter != id {
            send(RaftMessage(from: id, to: voter, term: voteTerm, body: .requestVote(request)))
        }
    }

    private func tallyVotes() -> (granted: Int, rejected: Int) {
        var granted = 0
        var rejected = 0
        for voter in log.configuration.voters {
            switch votes[voter] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        return (granted, rejected)
    }

    private mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID?) {
        let previousRole = role
        let previousTerm = term
        if newTerm != term {
            term = newTerm
            votedFor = nil
        }
        role = .follower
        resetRoleState()
        setLeader(newLeader)
        if previousRole != .follower || newTerm != previousTerm {
            emit(.roleChanged(.follower, term: term))
        }
    }

    private mutating func becomePreCandidate() {
        role = .preCandidate
        resetRoleState()
        setLeader(nil)
        votes = [id: true]
        emit(.roleChanged(.preCandidate, term: term))
    }

    private mutating func becomeCandidate() {
        term += 1
        votedFor = id
        role = .candidate
        resetRoleState()
        setLeader(nil)
        votes = [id: true]
        emit(.roleChanged(.candidate, term: term))
    }

    private mutating func becomeLeader() {
        role = .leader
        resetRoleState()
        setLeader(id)
        emit(.roleChanged(.leader, term: term))
        reconcileProgressWithConfiguration()
        for member in progress.keys where member != id { progress[member]?.recentlyActive = true }
        startRound()
        // Commit something of our own term so earlier entries commit with it (§5.4.2).
        _ = appendAsLeader(.leaderNoop)
        broadcastAppend(sendIfEmpty: true)
    }

    private mutating func resetRoleState() {
        electionElapsed = 0
        heartbeatElapsed = 0
        resetElectionTimer()
        votes = [:]
        progress = [:]
        roundStarts = [:]
        leaseEnd = nil
        transfer = nil
    }

    private mutating func resetElectionTimer() {
        let low = settings.electionTicksMin
        let high = max(low + 1, settings.electionTicksMax)
        randomizedElectionTicks = Int.random(in: low..<high, using: &random)
    }

    private mutating func setLeader(_ newLeader: NodeID?) {
        guard newLeader != leader else { return }
        leader = newLeader
        leaderMatchedThrough = 0
        emit(.leaderChanged(newLeader, term: term))
    }

    // MARK: - Inbound messages

    private mutating func step(_ m: RaftMessage) {
        guard m.to == id, m.from != id else { return }
        if let reason = screen(m) {
            refuse(m, reason)
            return
        }

        if m.term > term {
            if case .requestVote(let request) = m.body {
                // Followers that hear from a live leader ignore (pre-)votes (CheckQuorum); a
                // transfer's campaign is the exception, since the leader itself asked for it.
                let inLease =
                    settings.checkQuorum && settings.defect != .votesDuringLeaderLease
                    && (role == .leader || heardFromLeaderRecently())
                // Only a voter's campaign can be a transfer: the leader sends TimeoutNow to voters.
                let transfer = request.isLeadershipTransfer && log.configuration.voters.contains(m.from)
                if inLease && !transfer { return }
            }
            switch m.body {
            case .requestVote(let request) where request.isPreVote:
                break  // a pre-vote does not move our term
            case .requestVoteResponse(let response) where response.isPreVote && response.granted:
                break  // a granted pre-vote carries the term we would campaign in
            default:
                becomeFollower(term: m.term, leader: m.isFromLeader ? m.from : nil)
            }
        } else if m.term < term {
            switch m.body {
            case .appendEntries, .heartbeat:
                // A stale leader (perhaps back from a partition, perhaps never told because
                // pre-vote kept our term from moving) learns of the newer term from this answer.
                send(
                    RaftMessage(from: id, to: m.from, term: term, body: .heartbeatResponse(HeartbeatResponse(round: 0)))
                )
            case .requestVote(let request) where request.isPreVote:
                send(
                    RaftMessage(
                        from: id, to: m.from, term: term,
                        body: .requestVoteResponse(RequestVoteResponse(isPreVote: true, granted: false))
                    )
                )
            default:
                break
            }
            return
        }

        switch m.body {
        case .requestVote(let request):
            handleVoteRequest(m, request)
        case .requestVoteResponse(let response):
            handleVoteResponse(m, response)
        case .appendEntries(let append):
            acceptLeader(m)
            leaderCommitSeen = max(leaderCommitSeen, append.leaderCommit)
            handleAppendEntries(m, append)
        case .heartbeat(let heartbeat):
            acceptLeader(m)
            leaderCommitSeen = max(leaderCommitSeen, heartbeat.leaderCommit)
            handleHeartbeat(m, heartbeat)
        case .installSnapshot(let install):
            acceptLeader(m)
            handleInstallSnapshot(m, install)
        case .timeoutNow:
            acceptLeader(m)
            // Campaign at once, skipping pre-vote: the leader has stopped acting on its lease.
            if role == .follower && isPromotable { campaign(preVote: false, transfer: true) }
        case .appendEntriesResponse(let response):
            if role == .leader { handleAppendResponse(m, response) }
        case .heartbeatResponse(let response):
            if role == .leader { handleHeartbeatResponse(m, response) }
        }
    }

    /// Why `m` cannot have come from a correct peer, or nil. Checked before the message touches
    /// any state, so that a refused message is no different from a lost one: refusing is always
    /// safe in Raft, and the bounds here are far beyond anything a correct cluster reaches.
    private func screen(_ m: RaftMessage) -> String? {
        if m.term > RaftLimits.maxTerm { return "term \(m.term) is above the limit \(RaftLimits.maxTerm)" }
        if m.term > term, m.term - term > RaftLimits.maxTermJump {
            return "term \(m.term) is more than \(RaftLimits.maxTermJump) past this node's term \(term)"
        }
        switch m.body {
        case .appendEntries(let append):
            let previous = append.previous
            if previous.index > RaftLimits.maxIndex { return "previous index \(previous.index) is above the limit" }
            if previous.term > m.term { return "previous entry \(previous) is of a term after the sender's" }
            if LogIndex(append.entries.count) > RaftLimits.maxIndex - previous.index {
                return "\(append.entries.count) entries after \(previous.index) run past the index limit"
            }
            var termBefore = previous.term
            for (offset, entry) in append.entries.enumerated() {
                guard entry.index == previous.index + 1 + LogIndex(offset) else {
                    return "entries do not follow \(previous.index) one by one"
                }
                // A log's terms never go down, and no leader holds an entry of a later term.
                guard entry.term >= max(termBefore, 1), entry.term <= m.term else {
                    return "entry \(entry.position) has a term out of order (after \(termBefore), sent in \(m.term))"
                }
                termBefore = entry.term
            }
        case .installSnapshot(let install):
            let last = install.snapshot.metadata.last
            if last.index == 0 || last.index > RaftLimits.maxIndex {
                return "snapshot through index \(last.index) is out of range"
            }
            if last.term == 0 || last.term > m.term { return "snapshot through \(last) is of an impossible term" }
            if install.snapshot.metadata.configuration.voters.isEmpty { return "snapshot configuration has no voter" }
        case .requestVote(let request):
            if request.lastLog.index > RaftLimits.maxIndex || request.lastLog.term > m.term {
                return "candidate's last entry \(request.lastLog) is impossible in term \(m.term)"
            }
        case .timeoutNow:
            if !log.configuration.voters.contains(m.from) {
                return "TimeoutNow from \(m.from), which is not a voter of \(log.configuration)"
            }
        case .appendEntriesResponse(let response) where role == .leader && m.term == term:
            // Everything a follower acknowledges in this term came from this leader's log.
            if response.index > log.lastIndex || response.rejectHint.index > response.index {
                return "acknowledges index \(response.index) (hint \(response.rejectHint)) beyond this log's \(log.lastIndex)"
            }
            if response.round > round { return "echoes round \(response.round), which was never sent (now \(round))" }
        case .heartbeatResponse(let response) where role == .leader && m.term == term:
            if response.round > round { return "echoes round \(response.round), which was never sent (now \(round))" }
        default:
            break
        }
        if m.isFromLeader, m.term == term {
            // A term has at most one leader; a second claim is a forgery or a broken peer.
            if role == .leader { return "claims leadership of term \(term), which this node leads" }
            if let leader, leader != m.from { return "claims leadership of term \(term), which \(leader) leads" }
        }
        return nil
    }

    /// A message from the leader of our term: follow it and restart the lease-respecting timer.
    /// `screen` has made sure that it is the only leader of this term we have heard of.
    private mutating func acceptLeader(_ m: RaftMessage) {
        if role != .follower { becomeFollower(term: term, leader: m.from) }
        setLeader(m.from)
        electionElapsed = 0
        lastLeaderContact = clock()
    }

    private mutating func handleVoteRequest(_ m: RaftMessage, _ request: RequestVote) {
        let canVote: Bool
        if !log.configuration.voters.contains(m.from) {
            // Not a voter as far as this log knows (a removed member, or a stranger). If it was
            // promoted in entries we have not received, the voters that have them elect it.
            canVote = false
        } else if request.isPreVote {
            canVote = m.term > term
        } else if settings.defect == .votesTwiceInTerm {
            canVote = true
        } else {
            canVote = votedFor == m.from || (votedFor == nil && leader == nil)
        }
        let upToDate = settings.defect == .ignoresLogUpToDateCheck || log.isUpToDate(request.lastLog)
        let granted = canVote && upToDate
        if granted && !request.isPreVote {
            electionElapsed = 0
            votedFor = m.from
        }
        send(
            RaftMessage(
                from: id, to: m.from, term: granted ? m.term : term,
                body: .requestVoteResponse(RequestVoteResponse(isPreVote: request.isPreVote, granted: granted))
            )
        )
    }

    private mutating func handleVoteResponse(_ m: RaftMessage, _ response: RequestVoteResponse) {
        let expected: RaftRole = response.isPreVote ? .preCandidate : .candidate
        guard role == expected, log.configuration.voters.contains(m.from) else { return }
        votes[m.from] = response.granted
        let tally = tallyVotes()
        let quorum = log.configuration.quorum
        if tally.granted >= quorum {
            if response.isPreVote { campaign(preVote: false, transfer: false) } else { becomeLeader() }
        } else if tally.rejected >= quorum {
            becomeFollower(term: term, leader: nil)
        }
    }

    private mutating func handleAppendEntries(_ m: RaftMessage, _ append: AppendEntries) {
        func respond(_ response: AppendEntriesResponse) {
            send(RaftMessage(from: id, to: m.from, term: term, body: .appendEntriesResponse(response)))
        }
        if append.previous.index < commitIndex {
            // Everything up to our commit index is committed and so matches the leader's log.
            leaderMatchedThrough = max(leaderMatchedThrough, commitIndex)
            respond(AppendEntriesResponse(index: commitIndex, rejected: false, round: append.round))
            return
        }
        guard log.matches(append.previous) else {
            let hintIndex = log.lastIndex(
                atOrBelow: min(append.previous.index, log.lastIndex),
                withTermAtMost: append.previous.term
            )
            let hint = LogPosition(term: log.term(at: hintIndex) ?? 0, index: hintIndex)
            respond(
                AppendEntriesResponse(
                    index: append.previous.index, rejected: true, rejectHint: hint, round: append.round)
            )
            return
        }
        for entry in append.entries {
            if let existing = log.term(at: entry.index) {
                if existing == entry.term { continue }
                guard entry.index > commitIndex else {
                    refuse(m, "asks to overwrite committed entry \(entry.index)")
                    return
                }
                truncateLog(from: entry.index)
            }
            if case .membership(let change) = entry.payload,
                case .failure(let error) = log.configuration.applying(change)
            {
                // A correct leader never sends this; appending it would corrupt our configuration.
                refuse(
                    m,
                    "entry \(entry.position) holds membership change \(change) that does not fit \(log.configuration): \(error)"
                )
                return
            }
            log.append(entry)
            markDirty(from: entry.index)
        }
        let lastNew = append.previous.index + LogIndex(append.entries.count)
        leaderMatchedThrough = max(leaderMatchedThrough, lastNew)
        commit(to: min(append.leaderCommit, lastNew))
        respond(AppendEntriesResponse(index: lastNew, rejected: false, round: append.round))
    }

    private mutating func handleHeartbeat(_ m: RaftMessage, _ heartbeat: Heartbeat) {
        // A correct leader caps the commit index at what it knows we hold. We also take no more
        // than what this leader has shown to match: an entry of its own term (only it can have
        // written one), or what its last append confirmed. An old term's unconfirmed tail waits.
        let target = min(heartbeat.leaderCommit, log.lastIndex)
        if target <= leaderMatchedThrough || log.term(at: target) == term {
            commit(to: target)
        } else {
            commit(to: leaderMatchedThrough)
        }
        send(
            RaftMessage(
                from: id, to: m.from, term: term, body: .heartbeatResponse(HeartbeatResponse(round: heartbeat.round))))
    }

    private mutating func handleInstallSnapshot(_ m: RaftMessage, _ install: InstallSnapshot) {
        let metadata = install.snapshot.metadata
        let index: LogIndex
        if metadata.last.index <= commitIndex {
            index = commitIndex
        } else if log.matches(metadata.last) {
            // We hold the entries the snapshot covers; they are committed, nothing to restore.
            commit(to: metadata.last.index)
            index = metadata.last.index
        } else {
            log.install(metadata)
            snapshotData = install.snapshot.data
            commitIndex = metadata.last.index
            appliedIndex = metadata.last.index
            persistedIndex = min(persistedIndex, metadata.last.index)
            for i in pendingWrites.indices {
                pendingWrites[i].lastIndex = min(pendingWrites[i].lastIndex, metadata.last.index)
            }
            dirtySnapshot = install.snapshot
            dirtyFrom = metadata.last.index + 1  // storage deletes everything after the snapshot
            emit(.restoreSnapshot(install.snapshot))
            index = metadata.last.index
        }
        leaderMatchedThrough = max(leaderMatchedThrough, index)
        send(
            RaftMessage(
                from: id, to: m.from, term: term,
                body: .appendEntriesResponse(AppendEntriesResponse(index: index, rejected: false, round: install.round))
            )
        )
    }

    // MARK: - Leader: replication

    private mutating func checkCanPropose() throws(ProposalRejection) {
        guard role == .leader else { throw .notLeader(knownLeader: leader) }
        if let target = transfer?.target { throw .leadershipTransferInProgress(to: target) }
    }

    private mutating func appendAsLeader(_ payload: LogEntry.Payload) -> LogPosition {
        let entry = LogEntry(term: term, index: log.lastIndex + 1, payload: payload)
        log.append(entry)
        markDirty(from: entry.index)
        return entry.position
    }

    private mutating func reconcileProgressWithConfiguration() {
        let members = log.configuration.members.union([id])
        for member in members where progress[member] == nil {
            progress[member] = FollowerProgress(
                next: log.lastIndex + 1,
                window: InflightWindow(maxMessages: settings.maxInflightMessages, maxBytes: settings.maxInflightBytes)
            )
        }
        for member in progress.keys where !members.contains(member) { progress[member] = nil }
    }

    private mutating func startRound() {
        round += 1
        roundStarts[round] = clock()
        extendLease()  // a single-voter cluster is its own quorum
    }

    private mutating func broadcastHeartbeat() {
        startRound()
        for member in progress.keys.sorted() where member != id {
            let commit = min(progress[member]!.match, commitIndex)
            send(
                RaftMessage(
                    from: id, to: member, term: term, body: .heartbeat(Heartbeat(leaderCommit: commit, round: round))),
                needsDurability: false
            )
        }
    }

    private mutating func broadcastAppend(sendIfEmpty: Bool) {
        for member in progress.keys.sorted() where member != id {
            sendAppend(to: member, sendIfEmpty: sendIfEmpty)
        }
    }

    /// Sends the next append (or the snapshot) to `member` if its flow control allows.
    @discardableResult
    private mutating func sendAppend(to member: NodeID, sendIfEmpty: Bool) -> Bool {
        guard var p = progress[member], !p.isPaused else { return false }
        let previousIndex = p.next - 1
        guard let previousTerm = log.term(at: previousIndex) else {
            // The entries this follower needs are compacted away: send the snapshot instead.
            let snapshot = Snapshot(metadata: log.snapshot, data: snapshotData)
            p.becomeSnapshot(index: log.snapshotIndex, ticks: settings.electionTicksMin)
            progress[member] = p
            send(
                RaftMessage(
                    from: id, to: member, term: term,
                    body: .installSnapshot(InstallSnapshot(snapshot: snapshot, round: round))),
                needsDurability: false
            )
            return true
        }
        let entries = log.entries(from: p.next, through: log.lastIndex, maxBytes: settings.maxBytesPerAppend)
        guard !entries.isEmpty || sendIfEmpty else { return false }
        switch p.state {
        case .replicate:
            if let last = entries.last {
                p.next = last.index + 1
                p.inflight.add(lastIndex: last.index, bytes: entries.reduce(0) { $0 + $1.approximateSize })
            }
        case .probe:
            p.probeSent = true
        case .snapshot:
            break
        }
        progress[member] = p
        let append = AppendEntries(
            previous: LogPosition(term: previousTerm, index: previousIndex),
            entries: entries,
            leaderCommit: commitIndex,
            round: round
        )
        send(RaftMessage(from: id, to: member, term: term, body: .appendEntries(append)), needsDurability: false)
        return true
    }

    private mutating func noteContact(from member: NodeID, round ackedRound: UInt64) {
        progress[member]?.recentlyActive = true
        if let p = progress[member], ackedRound > p.ackedRound {
            progress[member]!.ackedRound = ackedRound
            extendLease()
        }
    }

    /// The lease runs from the start of the newest round a quorum of voters acknowledged (the
    /// leader's own acknowledgement is its current round).
    private mutating func extendLease() {
        let config = log.configuration
        let rounds = config.voters.map { $0 == id ? round : (progress[$0]?.ackedRound ?? 0) }.sorted(by: >)
        guard rounds.count >= config.quorum else { return }
        let quorumRound = rounds[config.quorum - 1]
        guard quorumRound > 0, let start = roundStarts[quorumRound] else { return }
        let end = start.advanced(by: settings.leaseDuration)
        if leaseEnd.map({ end > $0 }) ?? true { leaseEnd = end }
        // Rounds older than the one the quorum acknowledged cannot extend the lease any more; prune
        // them now and then rather than on every acknowledgement (this runs on the commit path).
        if roundStarts.count > 32 { roundStarts = roundStarts.filter { $0.key >= quorumRound } }
    }

    private mutating func handleAppendResponse(_ m: RaftMessage, _ response: AppendEntriesResponse) {
        guard progress[m.from] != nil else { return }
        noteContact(from: m.from, round: response.round)
        if response.rejected {
            let nextProbe = log.lastIndex(
                atOrBelow: response.rejectHint.index, withTermAtMost: response.rejectHint.term)
            if progress[m.from]!.rejected(response.index, nextProbe: nextProbe) {
                sendAppend(to: m.from, sendIfEmpty: true)
            }
            return
        }
        let wasPaused = progress[m.from]!.isPaused
        let moved = progress[m.from]!.acknowledge(response.index)
        let confirmsProbe = progress[m.from]!.state == .probe && response.index >= progress[m.from]!.match
        guard moved || confirmsProbe else {
            if wasPaused, !progress[m.from]!.isPaused { sendAppend(to: m.from, sendIfEmpty: false) }
            return
        }
        switch progress[m.from]!.state {
        case .probe:
            progress[m.from]!.becomeReplicate()
        case .snapshot(let index, _):
            if progress[m.from]!.match >= index {
                progress[m.from]!.becomeProbe()
                progress[m.from]!.becomeReplicate()
            }
        case .replicate:
            break
        }
        if maybeCommit() {
            broadcastAppend(sendIfEmpty: true)
        } else if wasPaused {
            // A commit broadcast may have skipped this follower while it was paused.
            sendAppend(to: m.from, sendIfEmpty: true)
        }
        // Fill the pipeline as far as flow control allows.
        while sendAppend(to: m.from, sendIfEmpty: false) {}
        if let t = transfer, t.target == m.from, !t.timeoutNowSent, progress[m.from]!.match == log.lastIndex {
            sendTimeoutNow(to: m.from)
        }
    }

    private mutating func handleHeartbeatResponse(_ m: RaftMessage, _ response: HeartbeatResponse) {
        guard var p = progress[m.from] else { return }
        p.probeSent = false
        if p.state == .replicate {
            if p.inflight.isFull { p.inflight.freeFirst() }
            // An append in a pipeline was lost if the follower made no progress over a whole
            // heartbeat interval while entries were outstanding: probe again from its match.
            if p.match < log.lastIndex, p.match == p.matchAtLastHeartbeatReply, p.inflight.count > 0 {
                p.becomeProbe()
            }
        }
        p.matchAtLastHeartbeatReply = p.match
        progress[m.from] = p
        noteContact(from: m.from, round: response.round)
        if p.state == .probe || p.next <= log.lastIndex {
            sendAppend(to: m.from, sendIfEmpty: true)
        }
        if let t = transfer, t.target == m.from, !t.timeoutNowSent, p.match == log.lastIndex {
            sendTimeoutNow(to: m.from)
        }
    }

    /// Moves the commit index to the newest entry of this term that a quorum holds durably.
    private mutating func maybeCommit() -> Bool {
        let config = log.configuration
        let matches = config.voters.map { $0 == id ? persistedIndex : (progress[$0]?.match ?? 0) }.sorted(by: >)
        guard matches.count >= config.quorum else { return false }
        let candidate = matches[config.quorum - 1]
        guard candidate > commitIndex else { return false }
        // Only entries of the current term commit by counting replicas (Raft §5.4.2, figure 8).
        guard log.term(at: candidate) == term || settings.defect == .commitsOldTermEntriesByCounting else {
            return false
        }
        commitIndex = candidate
        return true
    }

    private mutating func sendTimeoutNow(to target: NodeID) {
        // From here on this leader never claims its lease again in this term: the target may
        // campaign at any moment (the message may be delayed), and its voters ignore the lease.
        transfer?.timeoutNowSent = true
        leaseEnd = nil
        send(RaftMessage(from: id, to: target, term: term, body: .timeoutNow), needsDurability: false)
    }

    private mutating func abortTransfer() {
        guard let t = transfer else { return }
        transfer = nil
        if t.timeoutNowSent {
            // The target may still campaign on the TimeoutNow we sent; a leader without a lease
            // helps nobody, so step down and let an ordinary election decide.
            becomeFollower(term: term, leader: nil)
        }
    }

    // MARK: - Log and persistence helpers

    private mutating func commit(to index: LogIndex) {
        if index > commitIndex { commitIndex = index }
    }

    private mutating func truncateLog(from index: LogIndex) {
        log.truncate(from: index)
        markDirty(from: index)
        let kept = index - 1
        persistedIndex = min(persistedIndex, kept)
        for i in pendingWrites.indices { pendingWrites[i].lastIndex = min(pendingWrites[i].lastIndex, kept) }
    }

    private mutating func markDirty(from index: LogIndex) {
        dirtyFrom = min(dirtyFrom ?? index, index)
    }

    private mutating func refuse(_ message: RaftMessage, _ reason: String) {
        refusedMessages += 1
        lastRefusal = "from \(message.from) in term \(message.term): \(reason)"
        emit(.refused(message.from, reason: lastRefusal!))
    }

    private mutating func integrityFailure(_ message: String) {
        integrityFailures.append(message)
    }

    private mutating func emit(_ directive: RaftDirective) { outbox.append(directive) }

    /// Queues a message. `needsDurability: false` only for a leader's replication traffic, which
    /// promises nothing beyond the leader's term (durable since it voted for itself).
    private mutating func send(_ message: RaftMessage, needsDurability: Bool = true) {
        unsentMessages.append((message, needsDurability))
    }

    private mutating func releaseHeldMessages() {
        guard !heldMessages.isEmpty else { return }
        var still: [(requires: StorageWriteID, message: RaftMessage)] = []
        for held in heldMessages {
            if held.requires <= lastAckedWrite { outbox.append(.send(held.message)) } else { still.append(held) }
        }
        heldMessages = still
    }

    /// Turns what this step changed into directives: one storage write for everything that must
    /// become durable, then the messages that may go now, then committed entries to apply.
    private mutating func finishStep() -> [RaftDirective] {
        var directives: [RaftDirective] = []
        let hard = hardState
        if hard != writtenHardState || dirtyFrom != nil || dirtySnapshot != nil {
            var write = StorageWrite(id: StorageWriteID(nextWriteID))
            nextWriteID += 1
            if hard != writtenHardState { write.hardState = hard }
            write.snapshot = dirtySnapshot
            if let from = dirtyFrom {
                let start = max(from, log.firstIndex)
                write.truncateFrom = start
                write.entries = Array(log.entries(after: start - 1, through: log.lastIndex))
            }
            if hard.term != writtenHardState.term || hard.votedFor != writtenHardState.votedFor { termWrite = write.id }
            writtenHardState = hard
            dirtyFrom = nil
            dirtySnapshot = nil
            lastIssuedWrite = write.id
            pendingWrites.append((write.id, log.lastIndex, hard))
            directives.append(.persist(write))
        }
        let skipDurability = settings.defect == .acknowledgesBeforePersisting
        for (message, needsDurability) in unsentMessages {
            let requires = needsDurability ? lastIssuedWrite : termWrite
            if skipDurability || requires <= lastAckedWrite {
                directives.append(.send(message))
            } else {
                heldMessages.append((requires, message))
            }
        }
        unsentMessages.removeAll(keepingCapacity: true)
        directives.append(contentsOf: outbox)
        outbox.removeAll(keepingCapacity: true)

        let applyThrough = min(commitIndex, skipDurability ? log.lastIndex : persistedIndex)
        if applyThrough > appliedIndex {
            let entries = log.entries(after: appliedIndex, through: applyThrough)
            if entries.isEmpty {
                integrityFailure("entries \(appliedIndex + 1)…\(applyThrough) to apply are not in the log")
            } else {
                directives.append(.apply(Array(entries)))
                appliedIndex = applyThrough
            }
        }
        return directives
    }
}
