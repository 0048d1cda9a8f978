import Foundation
import Synchronization
public import Logging
public import RaftCore
public import ServiceLifecycle

/// Durable storage as the consensus loop needs it. `JournalStorage` is the SQLite implementation.
public protocol RaftStorage: Sendable {
    /// Hands a write to storage; its id comes back on `durableWrites` once it is durable.
    func submit(_ write: StorageWrite)
    /// Ids of durable writes, in order. Finishes (with an error) if storage fails.
    var durableWrites: AsyncThrowingStream<StorageWriteID, any Error> { get }
    /// Applies committed entries to the state machine tables (off the caller's thread: it fsyncs).
    func applyCommitted(_ entries: [LogEntry]) async throws
    func restoreSnapshot(_ snapshot: Snapshot) throws
}

/// The peer network as the consensus loop needs it. `TCPPeerNetwork` is the SwiftNIO implementation.
public protocol RaftNetwork: Sendable {
    func send(_ message: RaftMessage)
    var inbound: AsyncStream<RaftMessage> { get }
    func linkStatus() async -> [PeerLinkStatus]
    /// The node refused a message from `peer` that no correct peer sends: close the connections
    /// it arrives on (the peer redials; a broken or hostile one keeps being cut off).
    func dropConnections(from peer: NodeID)
    /// The loop has taken `message` off `inbound`: its bytes leave the inbound budget.
    func consumed(_ message: RaftMessage)
    /// The configuration in the log changed (a membership change appended, or truncated away):
    /// dial its members, and only them.
    func membersChanged(_ configuration: ClusterConfiguration)
}

extension RaftNetwork {
    public func dropConnections(from peer: NodeID) {}
    public func consumed(_ message: RaftMessage) {}
    public func membersChanged(_ configuration: ClusterConfiguration) {}
}

/// The loop's role, term and lease end as of its last event, for callers that must check the
/// lease right before acting (the trading engine, before writing an order) without waiting for a
/// hop onto the loop. The loop updates it after every event, in the same turn as a step-down.
public final class LeaseCell: Sendable {
    private struct Value {
        var role: RaftRole = .follower
        var term: Term = 0
        var leader: NodeID?
        var leaseUntil: ContinuousClock.Instant?
        var termStartIndex: LogIndex?
        var appliedIndex: LogIndex = 0
        /// A leader handing over gives up its lease for the rest of `fencedTerm` before it sends
        /// TimeoutNow (whose campaign voters grant without waiting out the lease).
        var fencedTerm: Term?
    }
    private let value = Mutex(Value())

    func publish(
        role: RaftRole, term: Term, leader: NodeID?, leaseUntil: ContinuousClock.Instant?, termStartIndex: LogIndex?,
        appliedIndex: LogIndex
    ) {
        value.withLock {
            let fenced = $0.fencedTerm == term
            $0 = Value(
                role: role, term: term, leader: leader, leaseUntil: fenced ? nil : leaseUntil,
                termStartIndex: termStartIndex, appliedIndex: appliedIndex, fencedTerm: fenced ? term : nil)
        }
    }

    /// Withdraws the lease of `term` at once, before any TimeoutNow can leave: an order checked
    /// against the lease after this is not written.
    func fence(term: Term) {
        value.withLock {
            $0.fencedTerm = term
            if $0.term == term { $0.leaseUntil = nil }
        }
    }

    /// Lifts a fence after a hand-over that never sent TimeoutNow (the node's own lease is then
    /// the truth again; the next publish restores it).
    func liftFence(term: Term) {
        value.withLock { if $0.fencedTerm == term { $0.fencedTerm = nil } }
    }

    /// The same view `ConsensusLoop.leadership()` gives, as of the loop's last event.
    public var leadership: LeadershipView {
        let v = value.withLock { $0 }
        let now = ContinuousClock.now
        return LeadershipView(
            role: v.role, term: v.term, leader: v.leader,
            leaseRemaining: v.leaseUntil.flatMap { $0 > now ? $0 - now : nil },
            termStartIndex: v.role == .leader ? v.termStartIndex : nil, appliedIndex: v.appliedIndex)
    }

    /// Time left on the lease if this node leads `term` and holds one now.
    public func leaseRemaining(inTerm term: Term) -> Duration? {
        let v = value.withLock { $0 }
        guard v.role == .leader, v.term == term, let until = v.leaseUntil else { return nil }
        let now = ContinuousClock.now
        return until > now ? until - now : nil
    }
}

/// A state machine kept beside the journal's tables (the trading engine): it sees every committed
/// entry once, in order, after the journal has recorded it as applied.
public protocol CommittedEntryConsumer: Sendable {
    func applied(_ entries: [LogEntry]) async

    /// A planned leadership transfer is about to start: stop acting on the outside world and
    /// return once nothing this leader did can still be in flight (bounded by `timeout`). The
    /// loop then withdraws the lease and sends TimeoutNow, whose campaign skips the lease wait.
    func prepareHandOver(timeout: Duration) async -> HandOverReport

    /// The transfer ended without this node losing leadership (refused or timed out).
    func handOverAbandoned() async
}

/// What a leader's state machine had in flight when it prepared to hand over.
public struct HandOverReport: Sendable, Codable {
    /// Orders written and not yet answered when the hand-over began.
    public var inFlight: Int
    /// Of those, the ones still unanswered when the wait timed out: the hand-over is then refused.
    public var unanswered: [String]
    public var waitedMs: Double

    public init(inFlight: Int = 0, unanswered: [String] = [], waitedMs: Double = 0) {
        self.inFlight = inFlight
        self.unanswered = unanswered
        self.waitedMs = waitedMs
    }
}

extension CommittedEntryConsumer {
    public func prepareHandOver(timeout: Duration) async -> HandOverReport { HandOverReport() }
    public func handOverAbandoned() async {}
}

/// What the trading engine needs to know about this node's leadership, read in one actor hop.
public struct LeadershipView: Sendable {
    public var role: RaftRole
    public var term: Term
    public var leader: NodeID?
    /// Time left on the leader lease; nil unless this node is the leader and holds one.
    public var leaseRemaining: Duration?
    /// Index of the first entry of this leader's term (its no-op): once the state machine has
    /// applied it, every earlier leader's entries are applied too.
    public var termStartIndex: LogIndex?
    public var appliedIndex: LogIndex
}

public struct PeerLinkStatus: Sendable, Codable {
    public var id: UInt64
    public var address: String
    public var connected: Bool
    public var queued: Int
    public var dropped: UInt64
    public var reconnects: UInt64
    public var lastError: String?

    public init(
        id: UInt64, address: String, connected: Bool, queued: Int, dropped: UInt64, reconnects: UInt64,
        lastError: String?
    ) {
        self.id = id
        self.address = address
        self.connected = connected
        self.queued = queued
        self.dropped = dropped
        self.reconnects = reconnects
        self.lastError = lastError
    }
}

public enum ConsensusError: Error, Sendable, CustomStringConvertible {
    case rejected(ProposalRejection)
    case transferRejected(TransferRejection)
    /// The entry was appended but replaced by another leader's entry: it will never commit.
    case superseded(LogPosition)
    case timedOut(String)
    /// Shed at the door: too much is already waiting (proposals not yet appended, or committed
    /// entries not yet applied). Nothing of the request was appended; try again shortly.
    case overloaded(String)
    case stopped
    case storageFailed(String)
    /// A planned hand-over refused because orders this leader wrote are still unanswered.
    case handOverRefused(HandOverReport)

    public var description: String {
        switch self {
        case .rejected(let r): return "proposal rejected: \(r)"
        case .transferRejected(let r): return "transfer rejected: \(r)"
        case .superseded(let p): return "entry \(p) was replaced by a newer leader's entry and will not commit"
        case .timedOut(let what): return "timed out: \(what)"
        case .overloaded(let what): return "overloaded, nothing appended: \(what)"
        case .stopped: return "the consensus loop has stopped"
        case .storageFailed(let why): return "storage failed: \(why)"
        case .handOverRefused(let report):
            return "hand-over refused: \(report.unanswered.count) order(s) written by this leader still unanswered after "
                + "\(Int(report.waitedMs)) ms (\(report.unanswered.prefix(5).joined(separator: ", "))); the target would "
                + "reconcile at once and could hear \"unknown\" before the broker has processed them. Still leading; "
                + "try again once the broker has answered (batonctl orders)"
        }
    }
}

/// The shell around `RaftNode`: it owns the node, feeds it ticks, peer messages and storage
/// acknowledgements one at a time, and carries out every directive before taking the next event.
public actor ConsensusLoop {
    private var node: RaftNode
    private let storage: any RaftStorage
    private let network: any RaftNetwork
    private let logger: Logger
    private let metrics: DaemonMetrics
    private let dynamicMetadata: JSONLogHandler.DynamicMetadata?
    private let readinessMaxLag: UInt64

    private var lastTick = ContinuousClock.now
    private var started = false
    private var startWaiters: [CheckedContinuation<Void, Never>] = []
    private var commitWaiters:
        [LogIndex: [(id: UInt64, term: Term, continuation: CheckedContinuation<Void, any Error>)]] = [:]
    private var nextWaiterID: UInt64 = 0
    /// Bounds on what may wait: commands queued for the next flush (count and bytes), and
    /// committed entries handed to the apply streams and not yet applied. Past them a proposal
    /// is shed (`ConsensusError.overloaded`, `baton_proposals_shed_total`) rather than queued.
    public static let maxPendingCommands = 65_536
    public static let maxPendingBytes = 64 << 20
    public static let maxApplyBacklog = 262_144
    private var pendingCommandCount = 0
    private var pendingBytes = 0
    /// Entries yielded to the journal's apply stream and not yet applied there.
    private var applyBacklog = 0
    /// Entries yielded to the state machine's stream (the trading engine) and not yet taken.
    private var stateMachineBacklog = 0
    /// Past this many entries behind in either apply stream, a leader sheds proposals and any
    /// other role stops taking peer messages until the streams catch up (`applyBacklogLimit`).
    private let applyBacklogLimit: Int
    /// Peer messages held back, once per hold, because the apply streams were full.
    private var holdingInbound = false
    private var applyQueue: AsyncStream<[LogEntry]>.Continuation?
    private var stateMachineQueue: AsyncStream<[LogEntry]>.Continuation?
    /// Lease and role as of the loop's last event, readable without a hop onto the loop.
    public nonisolated let leaseCell = LeaseCell()
    private var flushSignal: AsyncStream<Void>.Continuation?
    private var pendingProposals: [(commands: [[UInt8]], continuation: CheckedContinuation<[LogPosition], any Error>)] =
        []
    private var stopped = false
    /// Refused peer messages are logged at most once per `refusalLogInterval` per peer; the rest
    /// are counted (`baton_raft_refused_messages_total`) and summed into the next line.
    private var refusalLog: [NodeID: (last: ContinuousClock.Instant, suppressed: Int)] = [:]
    private let refusalLogInterval: Duration = .seconds(10)
    private var lastPublished = ContinuousClock.now - .seconds(1)
    private var publishedTerm: Term?
    private var publishedRole: RaftRole?
    private var termStartIndex: LogIndex?
    /// The configuration the network was last told to dial (nil: not yet told).
    private var dialledConfiguration: ClusterConfiguration?
    private let stateMachine: (any CommittedEntryConsumer)?

    public init(
        node: RaftNode,
        storage: any RaftStorage,
        network: any RaftNetwork,
        logger: Logger,
        metrics: DaemonMetrics,
        dynamicMetadata: JSONLogHandler.DynamicMetadata? = nil,
        readinessMaxLag: UInt64 = 1000,
        stateMachine: (any CommittedEntryConsumer)? = nil,
        applyBacklogLimit: Int = ConsensusLoop.maxApplyBacklog
    ) {
        self.stateMachine = stateMachine
        self.applyBacklogLimit = applyBacklogLimit
        self.node = node
        self.storage = storage
        self.network = network
        self.logger = logger
        self.metrics = metrics
        self.dynamicMetadata = dynamicMetadata
        self.readinessMaxLag = readinessMaxLag
    }

    // MARK: - Running

    /// Runs until cancelled or until storage fails: ticks on the node's interval, takes peer
    /// messages and storage acknowledgements, and applies committed entries off the hot path.
    public func run() async throws {
        let (applyStream, applyContinuation) = AsyncStream.makeStream(of: [LogEntry].self)
        applyQueue = applyContinuation
        let (stateMachineStream, stateMachineContinuation) = AsyncStream.makeStream(of: [LogEntry].self)
        stateMachineQueue = stateMachineContinuation
        let (flushStream, flushContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        flushSignal = flushContinuation
        lastTick = .now
        started = true
        for waiter in startWaiters { waiter.resume() }
        startWaiters = []
        publishState()
        let tickInterval = node.settings.tickInterval
        do {
            try await runLoops(
                tickInterval: tickInterval, applyStream: applyStream, stateMachineStream: stateMachineStream,
                flushStream: flushStream)
        } catch {
            stop()
            throw error
        }
        stop()
    }

    private func runLoops(
        tickInterval: Duration, applyStream: AsyncStream<[LogEntry]>, stateMachineStream: AsyncStream<[LogEntry]>,
        flushStream: AsyncStream<Void>
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in flushStream { await self.flushProposals() }
            }
            group.addTask {
                // Committed entries are durable in the log, so the in-memory state machine (the
                // trading engine) takes them at once rather than after the journal's own apply
                // transaction: that is on the tick-to-order path. After a restart it rebuilds from
                // the journal's applied commands and gets the rest again from the node.
                for await entries in stateMachineStream {
                    await self.stateMachine?.applied(entries)
                    await self.stateMachineApplied(entries.count)
                }
            }
            group.addTask {
                // Ticks keep a steady cadence; a late tick is not made up for (the node only
                // needs to know time passes, the lease reads the clock itself).
                let clock = ContinuousClock()
                var next = clock.now
                while !Task.isCancelled {
                    next = next.advanced(by: tickInterval)
                    if next < clock.now { next = clock.now }
                    try await clock.sleep(until: next)
                    await self.tick()
                }
            }
            group.addTask {
                for await message in self.network.inbound {
                    try await self.waitForApplyRoom()
                    self.network.consumed(message)
                    await self.receive(message)
                }
            }
            group.addTask {
                for try await write in self.storage.durableWrites { await self.persisted(write) }
                throw ConsensusError.storageFailed("the journal writer stopped")
            }
            group.addTask {
                for await entries in applyStream {
                    do {
                        try await self.storage.applyCommitted(entries)
                        await self.applied(entries.count)
                    } catch {
                        throw ConsensusError.storageFailed("applying \(entries.first?.index ?? 0)…: \(error)")
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func applied(_ count: Int) {
        applyBacklog -= count
        metrics.applyBacklog.set(Double(applyBacklog))
    }

    private func stateMachineApplied(_ count: Int) {
        stateMachineBacklog -= count
        metrics.stateMachineBacklog.set(Double(stateMachineBacklog))
    }

    private var applyStreamsFull: Bool { max(applyBacklog, stateMachineBacklog) > applyBacklogLimit }

    /// A follower's apply streams grow only with what its leader commits, which the follower
    /// cannot shed: everything committed must be applied. So while they are full it stops taking
    /// peer messages, and the bytes stay where the transport's bounds hold them (its inbound
    /// budget, then TCP). To the cluster that is a paused replica, which Raft tolerates: the
    /// leader keeps the entries, and a pre-vote from the paused node cannot unseat it. A leader
    /// keeps reading (its quorum needs the acks) and sheds proposals instead (`overload`).
    /// Polled rather than signalled: cancellation ends the wait without bookkeeping, and 5 ms is
    /// nothing to a replica this far behind.
    private func waitForApplyRoom() async throws {
        guard applyStreamsFull, node.role != .leader else { return }
        holdingInbound = true
        metrics.inboundHeldForApply.increment()
        logger.warning(
            "apply streams full; holding peer messages until they catch up",
            metadata: [
                "raft.apply_backlog": "\(applyBacklog)", "raft.state_machine_backlog": "\(stateMachineBacklog)",
                "raft.apply_backlog_limit": "\(applyBacklogLimit)",
            ])
        defer { holdingInbound = false }
        while applyStreamsFull, node.role != .leader, !stopped {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Whether peer messages are held back because the apply streams are full (for tests).
    var isHoldingInbound: Bool { holdingInbound }

    private func stop() {
        stopped = true
        applyQueue?.finish()
        stateMachineQueue?.finish()
        flushSignal?.finish()
        flushSignal = nil
        for item in pendingProposals { item.continuation.resume(throwing: ConsensusError.stopped) }
        pendingProposals = []
        for (_, waiters) in commitWaiters {
            for w in waiters { w.continuation.resume(throwing: ConsensusError.stopped) }
        }
        commitWaiters = [:]
    }

    public func waitUntilStarted() async {
        if started { return }
        await withCheckedContinuation { startWaiters.append($0) }
    }

    // MARK: - Events

    func tick() {
        lastTick = .now
        execute(node.tick())
    }

    func receive(_ message: RaftMessage) {
        execute(node.receive(message))
    }

    func persisted(_ write: StorageWriteID) {
        execute(node.persisted(write))
    }

    /// Proposes commands; with `waitForCommit`, returns once all of them are committed.
    ///
    /// Proposals that arrive while the loop is busy are batched: they wait (one actor hop) for the
    /// flusher, which appends all of them at once, so a burst of clients costs one append message
    /// per follower and one storage write rather than one per client.
    public func propose(_ commands: [[UInt8]], waitForCommit: Bool) async throws -> [LogPosition] {
        guard !stopped else { throw ConsensusError.stopped }
        guard !commands.isEmpty else { throw ConsensusError.rejected(.emptyProposal) }
        let positions: [LogPosition]
        if let flushSignal {
            let bytes = commands.reduce(0) { $0 + $1.count }
            if let why = overload(adding: commands.count, bytes: bytes) {
                metrics.proposalsShed.increment(by: Int64(commands.count))
                throw ConsensusError.overloaded(why)
            }
            pendingCommandCount += commands.count
            pendingBytes += bytes
            positions = try await withCheckedThrowingContinuation { continuation in
                pendingProposals.append((commands, continuation))
                if pendingProposals.count == 1 { flushSignal.yield() }
            }
        } else {
            // Not running yet: nothing to batch with.
            positions = try appendProposals(commands)
        }
        if waitForCommit, let last = positions.last {
            try await awaitCommit(last)
        }
        return positions
    }

    /// Why a proposal of `count` commands and `bytes` bytes must be shed now, or nil.
    private func overload(adding count: Int, bytes: Int) -> String? {
        if pendingCommandCount + count > Self.maxPendingCommands {
            return "\(pendingCommandCount) commands already wait to be appended (at most \(Self.maxPendingCommands))"
        }
        if pendingBytes > 0, pendingBytes + bytes > Self.maxPendingBytes {
            return "\(pendingBytes) bytes of commands already wait to be appended (at most \(Self.maxPendingBytes))"
        }
        if applyStreamsFull {
            return "\(max(applyBacklog, stateMachineBacklog)) committed entries wait to be applied (at most \(applyBacklogLimit))"
        }
        return nil
    }

    private func appendProposals(_ commands: [[UInt8]]) throws(ConsensusError) -> [LogPosition] {
        let proposal: Proposal
        do {
            proposal = try node.propose(commands)
        } catch {
            throw ConsensusError.rejected(error)
        }
        execute(proposal.directives)
        return proposal.positions
    }

    /// Appends every proposal queued since the last flush as one batch.
    func flushProposals() {
        let batch = pendingProposals
        pendingProposals = []
        pendingCommandCount = 0
        pendingBytes = 0
        guard !batch.isEmpty else { return }
        do {
            let positions = try appendProposals(batch.flatMap(\.commands))
            var offset = 0
            for item in batch {
                item.continuation.resume(returning: Array(positions[offset..<(offset + item.commands.count)]))
                offset += item.commands.count
            }
        } catch {
            for item in batch { item.continuation.resume(throwing: error) }
        }
    }

    public func proposeMembershipChange(_ change: MembershipChange) async throws -> LogPosition {
        let proposal: Proposal
        do {
            proposal = try node.proposeMembershipChange(change)
        } catch {
            throw ConsensusError.rejected(error)
        }
        execute(proposal.directives)
        let position = proposal.positions[0]
        try await awaitCommit(position)
        return position
    }

    private func awaitCommit(_ position: LogPosition) async throws {
        if node.appliedIndex >= position.index {
            guard node.term(at: position.index) == position.term || position.index <= node.snapshotIndex else {
                throw ConsensusError.superseded(position)
            }
            return
        }
        let id = nextWaiterID
        nextWaiterID += 1
        // A caller that stops waiting (withDeadline cancels on its timeout) takes its waiter out,
        // so abandoned waits do not pile up while the cluster cannot commit.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard !Task.isCancelled else {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                commitWaiters[position.index, default: []].append((id, position.term, continuation))
            }
        } onCancel: {
            Task { await self.abandonWaiter(id, at: position.index) }
        }
    }

    private func abandonWaiter(_ id: UInt64, at index: LogIndex) {
        guard var waiters = commitWaiters[index], let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: i)
        commitWaiters[index] = waiters.isEmpty ? nil : waiters
        waiter.continuation.resume(throwing: CancellationError())
    }

    /// Commit waits outstanding (for tests and `/cluster`).
    public var commitWaiterCount: Int { commitWaiters.values.reduce(0) { $0 + $1.count } }

    /// A planned hand-over: the state machine first stops acting and lets what it has in flight
    /// be answered (`prepareHandOver`), then the lease is withdrawn, and only then does the node
    /// catch the target up and send TimeoutNow. Without the drain, an order written just before
    /// could reach the broker after the target (elected without waiting out any lease) asked
    /// about it and heard "unknown". Waits until this node is no longer leader, or `timeout`.
    public func transferLeadership(to target: NodeID?, timeout: Duration) async throws -> NodeID? {
        let (leader, _) = try await transferLeadershipDrained(to: target, timeout: timeout)
        return leader
    }

    /// A hand-over that goes ahead with orders unanswered, for a leader that cannot reach the
    /// broker (so its orders can be answered by nobody but the next leader). No drained mark
    /// is journaled, so the target takes over as after an unplanned failover: it waits
    /// `max_order_age` after logging on before it asks the broker about anything, and this
    /// leader's lease is fenced before TimeoutNow leaves, so it writes nothing more. The orders
    /// written before the cut are then in the position of a killed leader's last writes.
    public func transferLeadershipUndrained(timeout: Duration) async throws -> NodeID? {
        let (leader, _) = try await transferLeadershipDrained(to: nil, timeout: timeout, allowUnanswered: true)
        return leader
    }

    /// `transferLeadership`, also returning what the state machine drained first.
    public func transferLeadershipDrained(to target: NodeID?, timeout: Duration, allowUnanswered: Bool = false) async throws
        -> (newLeader: NodeID?, drain: HandOverReport)
    {
        guard node.role == .leader else { throw ConsensusError.transferRejected(.notLeader(knownLeader: node.leader)) }
        let term = node.term
        // Without the broker nothing in flight can be answered: a short wait only lets what is
        // being written right now finish.
        let drain = await stateMachine?.prepareHandOver(timeout: allowUnanswered ? .milliseconds(200) : timeout / 2) ?? HandOverReport()
        guard node.role == .leader, node.term == term else {
            await stateMachine?.handOverAbandoned()
            throw ConsensusError.transferRejected(.notLeader(knownLeader: node.leader))
        }
        if !drain.unanswered.isEmpty && allowUnanswered {
            logger.warning(
                "handing over with orders unanswered: the next leader reconciles them after max_order_age, as after a failover",
                metadata: ["order.clordids": "\(drain.unanswered.joined(separator: ","))"])
        } else if !drain.unanswered.isEmpty {
            // "Unknown" from the broker is a proof only once it has processed what was written:
            // without an answer, the target's reconciliation could re-send a live order.
            logger.warning(
                "hand-over refused: orders still unanswered", metadata: ["order.clordids": "\(drain.unanswered.joined(separator: ","))"])
            await stateMachine?.handOverAbandoned()
            throw ConsensusError.handOverRefused(drain)
        }
        leaseCell.fence(term: term)
        do {
            execute(try node.transferLeadership(to: target))
        } catch {
            leaseCell.liftFence(term: term)
            publishState()
            await stateMachine?.handOverAbandoned()
            throw ConsensusError.transferRejected(error)
        }
        let deadline = ContinuousClock.now + timeout
        while node.role == .leader && node.term == term && ContinuousClock.now < deadline {
            try await Task.sleep(for: node.settings.tickInterval)
        }
        if node.role == .leader && node.term == term {
            // The node abandons the transfer itself after an election timeout; if it had sent
            // TimeoutNow it has already stepped down, so its own lease is the truth again.
            leaseCell.liftFence(term: term)
            publishState()
            await stateMachine?.handOverAbandoned()
            throw ConsensusError.timedOut("leadership transfer did not finish within \(timeout)")
        }
        // Wait briefly for the new leader to announce itself.
        while node.leader == nil && ContinuousClock.now < deadline + .seconds(1) {
            try await Task.sleep(for: node.settings.tickInterval)
        }
        return (node.leader, drain)
    }

    /// Blocks the loop's thread for `duration` (debug only): the watchdog must notice.
    public func debugStall(for duration: Duration, entered: @Sendable () -> Void = {}) {
        logger.warning("consensus loop deliberately stalled", metadata: ["stall.ms": "\(duration.milliseconds)"])
        entered()
        Thread.sleep(forTimeInterval: Double(duration.nanosecondsClamped) / 1e9)
    }

    // MARK: - Directives

    private func execute(_ directives: [RaftDirective]) {
        // The node's state has already moved: publish it before any message leaves, so that the
        // lease the trading engine reads is never younger than what a peer can have been told
        // (a TimeoutNow clears the lease in the node; the cell must be clear when it is sent).
        publishState()
        // A membership change takes effect when appended: a new member is dialled before the
        // first message for it leaves, a removed one is cut off.
        if node.configuration != dialledConfiguration {
            dialledConfiguration = node.configuration
            network.membersChanged(node.configuration)
        }
        for directive in directives {
            switch directive {
            case .persist(let write):
                storage.submit(write)
            case .send(let message):
                network.send(message)
            case .restoreSnapshot(let snapshot):
                do {
                    try storage.restoreSnapshot(snapshot)
                } catch {
                    // Continuing would apply entries on top of the wrong state: stop instead.
                    logger.critical("cannot restore snapshot; stopping", metadata: ["error": "\(error)"])
                    fatalError("batond: cannot restore snapshot \(snapshot.metadata.last): \(error)")
                }
            case .apply(let entries):
                applyBacklog += entries.count
                metrics.applyBacklog.set(Double(applyBacklog))
                applyQueue?.yield(entries)
                if stateMachine != nil {
                    stateMachineBacklog += entries.count
                    metrics.stateMachineBacklog.set(Double(stateMachineBacklog))
                    stateMachineQueue?.yield(entries)
                }
                resolveWaiters(through: entries.last!.index)
            case .roleChanged(let role, let term):
                if role == .candidate { metrics.elections.increment() }
                // The node has appended its no-op by the time it reports leadership.
                termStartIndex = role == .leader ? node.lastIndex : nil
                logger.info(
                    "role changed",
                    metadata: ["raft.role": "\(role.rawValue)", "raft.term": "\(term)"]
                )
            case .refused(let peer, let reason):
                metrics.refusedPeerMessages.increment()
                network.dropConnections(from: peer)
                logRefusal(from: peer, reason)
            case .leaderChanged(let leader, let term):
                metrics.leaderChanges.increment()
                logger.notice(
                    leader == nil ? "leader lost" : "leader elected",
                    metadata: ["raft.leader": "\(leader.map(\.description) ?? "none")", "raft.term": "\(term)"]
                )
            }
        }
        if !node.integrityFailures.isEmpty {
            // Only this node's own bookkeeping can get here (storage acknowledging a write it was
            // never given, entries to apply missing): peers' messages are screened and refused.
            logger.critical("consensus integrity failure; stopping", metadata: ["error": "\(node.integrityFailures)"])
            fatalError("batond: integrity failure: \(node.integrityFailures)")
        }
        publishState()
    }

    private func logRefusal(from peer: NodeID, _ reason: String) {
        let now = ContinuousClock.now
        if let seen = refusalLog[peer], now - seen.last < refusalLogInterval {
            refusalLog[peer]!.suppressed += 1
            return
        }
        let suppressed = refusalLog[peer]?.suppressed ?? 0
        refusalLog[peer] = (now, 0)
        logger.error(
            "refused a peer message that no correct peer sends; dropped its connection",
            metadata: [
                "peer.id": "\(peer)", "raft.refusal": "\(reason)", "raft.refused_total": "\(node.refusedMessages)",
                "raft.refusals_not_logged": "\(suppressed)",
            ]
        )
    }

    private func resolveWaiters(through index: LogIndex) {
        guard !commitWaiters.isEmpty else { return }
        for waitIndex in commitWaiters.keys where waitIndex <= index {
            let committedTerm = node.term(at: waitIndex)
            for waiter in commitWaiters.removeValue(forKey: waitIndex) ?? [] {
                if committedTerm == nil || committedTerm == waiter.term {
                    waiter.continuation.resume()
                } else {
                    waiter.continuation.resume(
                        throwing: ConsensusError.superseded(LogPosition(term: waiter.term, index: waitIndex)))
                }
            }
        }
    }

    /// Gauges are cheap but not free, and this runs after every event: refresh them at most once
    /// per tick, and the log metadata only when term or role change.
    private func publishState() {
        let now = ContinuousClock.now
        leaseCell.publish(
            role: node.role, term: node.term, leader: node.leader, leaseUntil: node.leaseRemaining.map { now + $0 },
            termStartIndex: termStartIndex, appliedIndex: node.appliedIndex)
        if now - lastPublished >= node.settings.tickInterval {
            lastPublished = now
            metrics.update(
                term: node.term, role: node.role, commitIndex: node.commitIndex, appliedIndex: node.appliedIndex,
                lastIndex: node.lastIndex, leaseRemaining: node.leaseRemaining
            )
        }
        if let dynamicMetadata, node.term != publishedTerm || node.role != publishedRole {
            publishedTerm = node.term
            publishedRole = node.role
            dynamicMetadata.set("raft.term", "\(node.term)")
            dynamicMetadata.set("raft.role", "\(node.role.rawValue)")
        }
    }

    // MARK: - Views

    public struct Health: Sendable {
        public var loopIsTicking: Bool
        public var sinceLastTick: Duration
        public var role: RaftRole
        public var term: Term
        public var leader: NodeID?
        public var commitIndex: LogIndex
        public var appliedIndex: LogIndex
        public var lag: UInt64
        public var ready: Bool
        public var readinessReason: String

        public var statusLine: String {
            "role=\(role.rawValue) term=\(term) leader=\(leader.map(\.description) ?? "none") "
                + "commit=\(commitIndex) lag=\(lag)"
        }
    }

    public func health() -> Health {
        let since = ContinuousClock.now - lastTick
        // Ten ticks of silence (100 ms by default) means the loop is wedged, not just busy.
        let ticking = started && !stopped && since < max(node.settings.tickInterval * 10, .milliseconds(100))
        let leaderCommit = node.role == .leader ? node.commitIndex : max(node.leaderCommitSeen, node.commitIndex)
        let lag = leaderCommit > node.appliedIndex ? leaderCommit - node.appliedIndex : 0
        var ready = true
        var reason = "ready"
        if !ticking {
            ready = false
            reason = "consensus loop is not ticking"
        } else if node.leader == nil {
            ready = false
            reason = "no known leader"
        } else if lag > readinessMaxLag {
            ready = false
            reason = "\(lag) entries behind the leader (allowed \(readinessMaxLag))"
        }
        return Health(
            loopIsTicking: ticking, sinceLastTick: since, role: node.role, term: node.term, leader: node.leader,
            commitIndex: node.commitIndex, appliedIndex: node.appliedIndex, lag: lag, ready: ready,
            readinessReason: reason
        )
    }

    public struct ClusterView: Sendable, Codable {
        public struct Member: Sendable, Codable {
            public var id: UInt64
            public var voter: Bool
            public var match: UInt64?
            public var next: UInt64?
            public var state: String?
            public var lag: UInt64?
            public var recentlyActive: Bool?
        }
        public var node: UInt64
        public var role: String
        public var term: UInt64
        public var leader: UInt64?
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public var lastIndex: UInt64
        public var snapshotIndex: UInt64
        public var leaseRemainingMs: Double?
        public var transferTarget: UInt64?
        public var voters: [UInt64]
        public var learners: [UInt64]
        public var members: [Member]
        public var peers: [PeerLinkStatus]
    }

    /// Refreshes the per-peer gauges (connection state, queue depth, drops) for `/metrics`.
    public func refreshPeerMetrics() async {
        metrics.updatePeers(await network.linkStatus())
    }

    public func clusterView() async -> ClusterView {
        let config = node.configuration
        var members: [ClusterView.Member] = []
        let progress = Dictionary(uniqueKeysWithValues: node.memberProgress.map { ($0.id, $0) })
        for id in config.members.sorted() {
            let p = progress[id]
            members.append(
                .init(
                    id: id.rawValue, voter: config.voters.contains(id), match: p?.match, next: p?.next, state: p?.state,
                    lag: p.map { node.lastIndex > $0.match ? node.lastIndex - $0.match : 0 },
                    recentlyActive: p?.recentlyActive
                )
            )
        }
        let snapshot = ClusterView(
            node: node.id.rawValue, role: node.role.rawValue, term: node.term, leader: node.leader?.rawValue,
            commitIndex: node.commitIndex, appliedIndex: node.appliedIndex, lastIndex: node.lastIndex,
            snapshotIndex: node.snapshotIndex, leaseRemainingMs: node.leaseRemaining?.milliseconds,
            transferTarget: node.transferTarget?.rawValue, voters: config.voters.sorted().map(\.rawValue),
            learners: config.learners.sorted().map(\.rawValue), members: members, peers: []
        )
        var result = snapshot
        result.peers = await network.linkStatus()
        metrics.updatePeers(result.peers)
        return result
    }

    public func leadership() -> LeadershipView {
        LeadershipView(
            role: node.role, term: node.term, leader: node.leader, leaseRemaining: node.leaseRemaining,
            termStartIndex: node.role == .leader ? termStartIndex : nil, appliedIndex: node.appliedIndex)
    }

    public var role: RaftRole { node.role }
    public var leader: NodeID? { node.leader }
    public var nodeID: NodeID { node.id }
}

/// `ConsensusLoop` as a lifecycle service. On graceful shutdown a leader first hands leadership
/// to the most caught-up follower (bounded by `transferTimeout`), so a planned stop costs the
/// cluster a transfer instead of an election.
public struct ConsensusService: Service {
    public let loop: ConsensusLoop
    let transferTimeout: Duration
    let logger: Logger
    let onShutdown: @Sendable () -> Void

    public init(
        loop: ConsensusLoop, transferTimeout: Duration, logger: Logger, onShutdown: @escaping @Sendable () -> Void = {}
    ) {
        self.loop = loop
        self.transferTimeout = transferTimeout
        self.logger = logger
        self.onShutdown = onShutdown
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            group.addTask {
                // Wait for SIGTERM/SIGINT, then hand over while the loop still runs.
                do { try await gracefulShutdown() } catch { return }
                onShutdown()
                guard await loop.role == .leader, transferTimeout > .zero else { return }
                logger.notice("stopping: handing leadership over")
                do {
                    let next = try await loop.transferLeadership(to: nil, timeout: transferTimeout)
                    logger.notice(
                        "leadership handed over", metadata: ["raft.leader": "\(next.map(\.description) ?? "unknown")"])
                } catch {
                    logger.warning("leadership hand-over failed; stopping anyway", metadata: ["error": "\(error)"])
                }
            }
            // Whichever ends first ends both: a storage failure, or the hand-over being done.
            try await group.next()
            group.cancelAll()
        }
    }
}
