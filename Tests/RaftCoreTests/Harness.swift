@_spi(Testing) import RaftCore
import Synchronization
import Testing

// A small deterministic harness for RaftCore unit tests: a few nodes, a hand-driven clock per
// node, durable storage per node and a message queue the test can cut. It is deliberately not
// the simulator (Sources/BatonSimulation): no randomised faults, no background time, every step
// explicit so that a test reads as the scenario it checks.

/// A monotonic clock that only moves when the test says so.
final class ManualClock: Sendable {
    private let nanoseconds: Mutex<UInt64>

    /// Starts away from zero so that readings before "the start" are representable.
    init(startingAt start: UInt64 = 1_000_000_000) {
        nanoseconds = Mutex(start)
    }

    var now: MonotonicInstant { MonotonicInstant(nanoseconds: nanoseconds.withLock { $0 }) }

    /// The closure a `RaftNode` reads the time through.
    var raftClock: RaftClock { { self.now } }

    func advance(by duration: Duration) {
        let delta = UInt64(max(0, duration.nanosecondsClamped))
        nanoseconds.withLock { $0 += delta }
    }
}

extension RaftSettings {
    /// Short timeouts so that tests need few ticks: heartbeat 2 ticks, election 10–20 ticks,
    /// lease 90 ms. They pass `problems()` (checked by a test in SettingsTests).
    static func testing(_ configure: (inout RaftSettings) -> Void = { _ in }) -> RaftSettings {
        var settings = RaftSettings()
        settings.tickInterval = .milliseconds(10)
        settings.heartbeatInterval = .milliseconds(20)
        settings.electionTimeoutMin = .milliseconds(100)
        settings.electionTimeoutMax = .milliseconds(200)
        settings.maxClockDrift = .milliseconds(10)
        configure(&settings)
        return settings
    }
}

/// A directed link between two nodes; blocking it drops every message sent along it.
struct Link: Hashable {
    var from: NodeID
    var to: NodeID
}

/// Several `RaftNode`s wired together. Directives are carried out at once: writes are applied to
/// the node's `DurableState` and acknowledged with `persisted` (unless the node is in
/// `manualPersistence`), messages go into one FIFO queue, applied entries are recorded.
final class Network {
    let settings: RaftSettings
    let bootstrap: ClusterConfiguration
    private let seed: UInt64

    private(set) var nodes: [NodeID: RaftNode] = [:]
    private(set) var clocks: [NodeID: ManualClock] = [:]
    private(set) var storage: [NodeID: DurableState] = [:]
    /// Entries each node handed to its state machine, in order.
    private(set) var applied: [NodeID: [LogEntry]] = [:]
    private(set) var restoredSnapshots: [NodeID: [Snapshot]] = [:]
    /// Every message any node emitted as `.send`, in emission order, whether delivered or not.
    private(set) var sent: [RaftMessage] = []
    private(set) var dropped: [RaftMessage] = []
    /// Messages emitted but not yet delivered.
    var queue: [RaftMessage] = []

    private var blocked: Set<Link> = []
    /// Drops the messages it returns true for (in addition to blocked links).
    var dropFilter: ((RaftMessage) -> Bool)?
    /// Called just before a message is handed to its receiver.
    var onDeliver: ((RaftMessage) -> Void)?

    /// Nodes whose writes wait in `pendingWrites` until `flushWrites` (to test the persistence
    /// contract and crashes before a write completes).
    var manualPersistence: Set<NodeID> = []
    private(set) var pendingWrites: [NodeID: [StorageWrite]] = [:]

    /// - Parameters:
    ///   - ids: the nodes that run in this network.
    ///   - bootstrap: the initial configuration; defaults to every id a voter. Ids named here but
    ///     not in `ids` simply never answer (handy to test one node with hand-made messages).
    init(
        ids: [NodeID],
        settings: RaftSettings = .testing(),
        bootstrap: ClusterConfiguration? = nil,
        durable: [NodeID: DurableState] = [:],
        seed: UInt64 = 1
    ) {
        self.settings = settings
        self.bootstrap = bootstrap ?? ClusterConfiguration(voters: Set(ids))
        self.seed = seed
        for id in ids {
            clocks[id] = ManualClock()
            storage[id] = durable[id] ?? DurableState()
            applied[id] = []
            nodes[id] = makeNode(id)
        }
    }

    private func makeNode(_ id: NodeID) -> RaftNode {
        RaftNode(
            id: id,
            settings: settings,
            bootstrap: bootstrap,
            durable: storage[id]!,
            clock: clocks[id]!.raftClock,
            random: SplitMix64(seed: seed &* 1_000_003 &+ id.rawValue)
        )
    }

    var ids: [NodeID] { nodes.keys.sorted() }

    subscript(id: NodeID) -> RaftNode { nodes[id]! }

    var leaders: [NodeID] { ids.filter { nodes[$0]!.role == .leader } }

    // MARK: Carrying out directives

    func process(_ directives: [RaftDirective], at id: NodeID) {
        // Directives are carried out in the order given; a write finishes "later", i.e. after
        // the whole batch, so its acknowledgement is reported only once the batch is done.
        var completed: StorageWriteID?
        defer {
            if let completed { process(nodes[id]!.persisted(completed), at: id) }
        }
        for directive in directives {
            switch directive {
            case .persist(let write):
                if manualPersistence.contains(id) {
                    pendingWrites[id, default: []].append(write)
                } else {
                    storage[id]!.apply(write)
                    completed = write.id
                }
            case .send(let message):
                sent.append(message)
                queue.append(message)
            case .apply(let entries):
                applied[id, default: []].append(contentsOf: entries)
            case .restoreSnapshot(let snapshot):
                restoredSnapshots[id, default: []].append(snapshot)
            case .roleChanged, .leaderChanged, .refused:
                break
            }
        }
    }

    /// Makes every pending write of `id` durable and acknowledges the last one (which, by the
    /// storage contract, acknowledges all before it).
    func flushWrites(_ id: NodeID) {
        let writes = pendingWrites[id] ?? []
        pendingWrites[id] = []
        for write in writes { storage[id]!.apply(write) }
        if let last = writes.last { process(nodes[id]!.persisted(last.id), at: id) }
    }

    // MARK: Messages

    func isBlocked(_ message: RaftMessage) -> Bool {
        blocked.contains(Link(from: message.from, to: message.to)) || dropFilter?(message) == true
    }

    /// Delivers the oldest queued message (or drops it). Returns false when the queue is empty.
    @discardableResult
    func deliverNext() -> Bool {
        guard !queue.isEmpty else { return false }
        let message = queue.removeFirst()
        guard nodes[message.to] != nil, !isBlocked(message) else {
            dropped.append(message)
            return true
        }
        onDeliver?(message)
        process(nodes[message.to]!.receive(message), at: message.to)
        return true
    }

    /// Delivers until the queue is empty. Raft traffic without ticks always dies out; the bound
    /// only turns a livelock bug into a test failure instead of a hang.
    func stabilize(maxMessages: Int = 100_000) {
        var count = 0
        while deliverNext() {
            count += 1
            if count >= maxMessages {
                Issue.record("network did not quiesce within \(maxMessages) messages")
                queue.removeAll()
                return
            }
        }
    }

    /// Hands `message` straight to its receiver, ignoring partitions (a hand-made message).
    func inject(_ message: RaftMessage) {
        process(nodes[message.to]!.receive(message), at: message.to)
    }

    // MARK: Time

    /// Moves every node's clock; nodes keep one clock each but time passes for all of them.
    func advanceTime(by duration: Duration) {
        for clock in clocks.values { clock.advance(by: duration) }
    }

    /// One tick interval passes: every clock moves, the chosen nodes (default all) tick, and the
    /// resulting traffic is delivered (unless `deliver` is false).
    func tick(_ only: [NodeID]? = nil, times: Int = 1, deliver: Bool = true) {
        for _ in 0..<times {
            advanceTime(by: settings.tickInterval)
            for id in only ?? ids {
                process(nodes[id]!.tick(), at: id)
            }
            if deliver { stabilize() }
        }
    }

    /// Ticks only `id` (time passes for everyone) until it is leader. Other nodes do not tick,
    /// so they never compete; they answer votes once their own clocks say no leader is alive.
    @discardableResult
    func elect(_ id: NodeID) -> Bool {
        for _ in 0..<(settings.electionTicksMax * 4) {
            if nodes[id]!.role == .leader { return true }
            tick([id])
        }
        return nodes[id]!.role == .leader
    }

    /// Ticks everyone until `condition` holds; returns the number of ticks, or nil if it never did.
    @discardableResult
    func tick(until condition: () -> Bool, maxTicks: Int = 1_000) -> Int? {
        for n in 0...maxTicks {
            if condition() { return n }
            if n < maxTicks { tick() }
        }
        return nil
    }

    // MARK: Partitions

    func block(from: NodeID, to: NodeID) { blocked.insert(Link(from: from, to: to)) }

    /// Cuts `id` off from every other node in both directions.
    func isolate(_ id: NodeID) {
        for other in bootstrap.members.union(ids) where other != id {
            blocked.insert(Link(from: id, to: other))
            blocked.insert(Link(from: other, to: id))
        }
    }

    func heal() {
        blocked.removeAll()
        dropFilter = nil
    }

    // MARK: Client operations

    @discardableResult
    func propose(_ command: [UInt8], on id: NodeID) throws(ProposalRejection) -> LogPosition {
        try propose([command], on: id)[0]
    }

    @discardableResult
    func propose(_ commands: [[UInt8]], on id: NodeID) throws(ProposalRejection) -> [LogPosition] {
        let proposal = try nodes[id]!.propose(commands)
        process(proposal.directives, at: id)
        return proposal.positions
    }

    @discardableResult
    func proposeChange(_ change: MembershipChange, on id: NodeID) throws(ProposalRejection) -> LogPosition {
        let proposal = try nodes[id]!.proposeMembershipChange(change)
        process(proposal.directives, at: id)
        return proposal.positions[0]
    }

    func transferLeadership(to target: NodeID?, on id: NodeID) throws(TransferRejection) {
        let directives = try nodes[id]!.transferLeadership(to: target)
        process(directives, at: id)
    }

    func compact(_ id: NodeID, through index: LogIndex, data: [UInt8]) throws(CompactionError) {
        let directives = try nodes[id]!.compact(through: index, snapshotData: data)
        process(directives, at: id)
    }

    /// A crash and restart: writes not yet acknowledged are lost, the node is rebuilt from its
    /// `DurableState`, and its state machine starts again from the snapshot.
    func restart(_ id: NodeID) {
        pendingWrites[id] = []
        applied[id] = []
        nodes[id] = makeNode(id)
    }

    // MARK: Inspection

    /// The node's log after its snapshot, in index order.
    func log(_ id: NodeID) -> [LogEntry] {
        let node = nodes[id]!
        guard node.lastIndex >= node.firstIndex else { return [] }
        return (node.firstIndex...node.lastIndex).map { node.entry(at: $0)! }
    }

    /// The terms of the node's log from index 1 (the test logs are never compacted).
    func terms(_ id: NodeID) -> [Term] { log(id).map(\.term) }

    /// The application commands a node applied, in order (no-ops and membership left out).
    func appliedCommands(_ id: NodeID) -> [[UInt8]] {
        applied[id, default: []].compactMap {
            if case .command(let bytes) = $0.payload { return bytes }
            return nil
        }
    }
}

// MARK: - Building logs and messages

/// A log whose entry at index `start + i` has term `terms[i]`. The payload is derived from
/// (term, index) so that two entries with the same position are equal, as log matching demands.
func makeLog(terms: [Term], startingAt start: LogIndex = 1) -> [LogEntry] {
    terms.enumerated().map { offset, term in
        let index = start + LogIndex(offset)
        return LogEntry(
            term: term,
            index: index,
            payload: .command([
                UInt8(truncatingIfNeeded: term), UInt8(truncatingIfNeeded: index >> 8),
                UInt8(truncatingIfNeeded: index),
            ])
        )
    }
}

extension RaftMessage {
    var appendEntries: AppendEntries? {
        if case .appendEntries(let m) = body { return m }
        return nil
    }

    var appendResponse: AppendEntriesResponse? {
        if case .appendEntriesResponse(let m) = body { return m }
        return nil
    }

    var voteRequest: RequestVote? {
        if case .requestVote(let m) = body { return m }
        return nil
    }

    var voteResponse: RequestVoteResponse? {
        if case .requestVoteResponse(let m) = body { return m }
        return nil
    }

    var isTimeoutNow: Bool {
        if case .timeoutNow = body { return true }
        return false
    }

    var isHeartbeat: Bool {
        if case .heartbeat = body { return true }
        return false
    }

    var isHeartbeatResponse: Bool {
        if case .heartbeatResponse = body { return true }
        return false
    }

    var installSnapshot: InstallSnapshot? {
        if case .installSnapshot(let m) = body { return m }
        return nil
    }
}

extension [RaftDirective] {
    var messages: [RaftMessage] {
        compactMap {
            if case .send(let m) = $0 { return m }
            return nil
        }
    }

    var writes: [StorageWrite] {
        compactMap {
            if case .persist(let w) = $0 { return w }
            return nil
        }
    }
}
