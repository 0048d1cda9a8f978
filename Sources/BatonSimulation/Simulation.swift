@_spi(Testing) public import RaftCore
import Synchronization

/// The outcome of one seed.
public struct SeedResult: Sendable {
    public var seed: UInt64
    public var mix: FaultMix
    public var steps: Int
    public var violation: Violation?
    /// The last events before the violation, oldest first (empty when all held).
    public var trace: [String]
    /// Simulated time from healing the world to the first new entry committing.
    public var recovery: Duration?
    public var faultsInjected: Int
    public var elections: Int
    public var committedEntries: LogIndex
}

/// Simulated time shared by the clocks of all nodes of one world. Reads happen on the one thread
/// that runs the world; the mutex only makes the clock closures honestly `Sendable`.
final class SimulatedTime: Sendable {
    private let nanoseconds = Mutex<UInt64>(0)
    var now: UInt64 {
        get { nanoseconds.withLock { $0 } }
        set { nanoseconds.withLock { $0 = newValue } }
    }
}

/// Runs one seed: a cluster of `RaftNode`s in a seeded, faulty world, checking every property
/// after every step. Deterministic: the same seed and options give the same run.
public struct Simulation {
    public let seed: UInt64
    public let options: SimulationOptions
    public let mix: FaultMix

    private enum Event {
        case tick(NodeID, incarnation: Int)
        case deliver(RaftMessage)
        case persisted(NodeID, incarnation: Int, StorageWriteID)
        case clientPropose
        case fault
        case crash(NodeID)
        case restart(NodeID)
        case pause(NodeID)
        case resume(NodeID)
        case partition([(NodeID, NodeID)], label: String)
        case healPartition(label: String)
        case transfer(NodeID?)
        case membershipChange
        case healWorld
        case livenessDeadline
    }

    private struct SimNode {
        var id: NodeID
        var raft: RaftNode?
        var durable = DurableState()
        var incarnation = 0
        var paused = false
        /// What reached a stopped process: messages in its socket buffers, disk completions.
        var inbox: [Buffered] = []
        var clockRate: Double = 1
        var clockOffset: UInt64 = 0
        /// When this node's disk finishes its last queued write.
        var diskBusyUntil: UInt64 = 0
        var pendingWrites: [StorageWrite] = []
        var seed: UInt64 = 0
    }

    private var nodes: [SimNode] = []
    private var queue = EventQueue<Event>()
    private let time = SimulatedTime()
    private var now: UInt64 = 0
    private var rng: SplitMix64
    private var checker = InvariantChecker()
    private var blocked: [String: Set<Pair>] = [:]
    private var interceptors: [String: @Sendable (RaftMessage) -> RaftMessage?] = [:]
    /// What a node was asked to do in one step; formatted only when a report needs it, since
    /// formatting every step would cost more than the simulation itself.
    private enum Action {
        case tick
        case receive(RaftMessage)
        case persisted(StorageWriteID)
        case propose(Int)
        case transfer(NodeID?)
        case membership(MembershipChange)
        case compact(LogIndex)

        var description: String {
            switch self {
            case .tick: return "tick"
            case .receive(let m): return "receive \(m)"
            case .persisted(let w): return "persisted(\(w))"
            case .propose(let n): return "propose(\(n) commands)"
            case .transfer(let t): return "transferLeadership(to: \(t.map(\.description) ?? "best"))"
            case .membership(let c): return "proposeMembershipChange(\(c))"
            case .compact(let i): return "compact(through: \(i))"
            }
        }
    }

    private struct TraceEntry {
        var step: Int
        var time: UInt64
        var node: NodeID?
        var action: Action?
        var note: String?
        var directives: [RaftDirective]

        var description: String {
            let head = "[\(step) t=\(Double(time) / 1e6)ms]"
            if let note { return "\(head) \(note)" }
            let out = directives.isEmpty ? "-" : directives.map(\.description).joined(separator: "; ")
            return "\(head) \(node!) \(action!.description) → \(out)"
        }
    }

    private var trace: [TraceEntry] = []
    private var traceHead = 0
    private var steps = 0
    private var violation: Violation?
    private var healed = false
    private var healTime: UInt64 = 0
    private var commitAtHeal: LogIndex = 0
    private var recovery: Duration?
    private var proposalCounter: UInt64 = 0
    private var faultsInjected = 0
    private var elections = 0
    private let bootstrap: ClusterConfiguration

    private enum Buffered {
        case message(RaftMessage)
        case persisted(StorageWriteID)
    }

    private struct Pair: Hashable {
        var from: NodeID
        var to: NodeID
    }

    public init(seed: UInt64, options: SimulationOptions) {
        self.init(seed: seed, options: options, defect: nil)
    }

    /// A world whose nodes all carry `defect`, to show that the checker catches it.
    @_spi(Testing) public init(seed: UInt64, options: SimulationOptions, defect: RaftDefect?) {
        self.seed = seed
        self.options = options
        self.mix = options.mix ?? FaultMix.forSeed(seed)
        self.rng = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D ^ 0x9E37)
        let voterIDs = (1...options.voters).map { NodeID(UInt64($0)) }
        let learnerIDs = (0..<options.learners).map { NodeID(UInt64(options.voters + 1 + $0)) }
        self.bootstrap = ClusterConfiguration(voters: Set(voterIDs), learners: Set(learnerIDs))
        var settings = options.settings
        settings.defect = defect
        if mix.tinyBatches {
            // Tiny batches make a leader send old-term entries on their own, which is where
            // commit-rule mistakes show (figure 8).
            settings.maxBytesPerAppend = 1
            settings.maxInflightMessages = 4
        }
        self.nodeSettings = settings
        for id in voterIDs + learnerIDs {
            var node = SimNode(id: id)
            node.seed = rng.next()
            if mix.clockDrift {
                let error = options.maxClockRateError
                node.clockRate = 1 + Double.random(in: -error...error, using: &rng)
            }
            node.clockOffset = UInt64.random(in: 0...1_000_000_000_000, using: &rng)
            nodes.append(node)
        }
    }

    private let nodeSettings: RaftSettings

    // MARK: - Running

    public mutating func run() -> SeedResult {
        for i in nodes.indices { start(i) }
        schedule(after: .milliseconds(5), .clientPropose)
        schedule(after: .milliseconds(Int64.random(in: 100...400, using: &rng)), .fault)
        schedule(after: options.chaosDuration, .healWorld)
        let end = UInt64(options.chaosDuration.nanosecondsClamped + options.livenessBound.nanosecondsClamped)
        schedule(at: end, .livenessDeadline)

        while violation == nil, let next = popEvent() {
            now = next.time
            time.now = now
            steps += 1
            handle(next.event)
            if violation == nil { checkLeases() }
            if recovery != nil && now > healTime + UInt64(options.livenessBound.nanosecondsClamped / 4) {
                break  // recovered, and ran on a while after it
            }
            if now > end { break }
        }
        return SeedResult(
            seed: seed, mix: mix, steps: steps, violation: violation,
            trace: violation == nil ? [] : orderedTrace(),
            recovery: recovery, faultsInjected: faultsInjected, elections: elections,
            committedEntries: checker.highestCommitted
        )
    }

    private var nowDuration: Duration { .nanoseconds(Int64(now)) }

    /// Runs a scripted scenario instead of seeded faults (see `ScenarioStep`).
    public mutating func run(_ script: [ScenarioStep]) -> ScenarioOutcome {
        for i in nodes.indices { start(i) }
        var stuckAt: String?
        script: for (number, step) in script.enumerated() {
            switch step {
            case .run(let duration):
                let until = now + UInt64(duration.nanosecondsClamped)
                runEvents { $0.now >= until }
            case .runUntil(let what, let timeout, let condition):
                let deadline = now + UInt64(timeout.nanosecondsClamped)
                var met = condition(views())
                if !met {
                    runEvents { world in
                        met = condition(world.views())
                        return met || world.now >= deadline
                    }
                }
                if !met && violation == nil {
                    stuckAt = "step \(number + 1): \(what) did not happen within \(timeout)"
                    break script
                }
            case .block(let label, let links):
                record("BLOCK \(label)")
                blocked[label] = Set(links.map { Pair(from: $0.from, to: $0.to) })
            case .intercept(let label, let rewrite):
                record("INTERCEPT \(label)")
                interceptors[label] = rewrite
            case .heal(let label):
                record("HEAL \(label)")
                blocked[label] = nil
                interceptors[label] = nil
            case .crash(let id):
                handle(.crash(id))
            case .restart(let id):
                handle(.restart(id))
            case .propose(let count):
                for _ in 0..<count { proposeFromClient() }
            }
            if violation != nil { break }
        }
        return ScenarioOutcome(
            violation: violation, stuckAt: stuckAt, steps: steps,
            trace: violation == nil && stuckAt == nil ? [] : orderedTrace()
        )
    }

    private func views() -> [NodeView] {
        nodes.map { node in
            NodeView(
                id: node.id, isRunning: node.raft != nil, role: node.raft?.role, term: node.raft?.term ?? 0,
                lastLog: node.raft?.lastLogPosition ?? LogPosition(term: 0, index: 0),
                commitIndex: node.raft?.commitIndex ?? 0, holdsLease: node.raft?.holdsLease ?? false
            )
        }
    }

    /// Processes events until `done` says so (checked after each) or nothing is left to do.
    private mutating func runEvents(until done: (Self) -> Bool) {
        while violation == nil, let next = popEvent() {
            now = next.time
            time.now = now
            steps += 1
            handle(next.event)
            if violation == nil { checkLeases() }
            if done(self) { return }
        }
    }

    private mutating func fail(_ property: Violation.Property, _ detail: String) {
        guard violation == nil else { return }
        violation = Violation(property: property, detail: detail, step: steps, time: nowDuration)
    }

    // MARK: - Event queue (a binary heap ordered by time, then by scheduling order)

    private mutating func schedule(after delay: Duration, _ event: Event) {
        schedule(at: now + UInt64(max(0, delay.nanosecondsClamped)), event)
    }

    private mutating func schedule(at: UInt64, _ event: Event) {
        queue.schedule(at: at, event)
    }

    private mutating func popEvent() -> (time: UInt64, event: Event)? { queue.pop() }

    // MARK: - Tracing

    private mutating func record(_ note: String) {
        record(TraceEntry(step: steps, time: now, node: nil, action: nil, note: note, directives: []))
    }

    private mutating func record(_ entry: TraceEntry) {
        guard options.traceLength > 0 else { return }
        if trace.count < options.traceLength {
            trace.append(entry)
        } else {
            trace[traceHead] = entry
            traceHead = (traceHead + 1) % options.traceLength
        }
    }

    private func orderedTrace() -> [String] {
        (trace[traceHead...] + trace[..<traceHead]).map(\.description)
    }

    // MARK: - Nodes

    private func index(of id: NodeID) -> Int { Int(id.rawValue) - 1 }

    private mutating func start(_ i: Int) {
        nodes[i].incarnation += 1
        let rate = nodes[i].clockRate
        let offset = nodes[i].clockOffset
        let time = self.time
        let clock: RaftClock = {
            MonotonicInstant(nanoseconds: offset &+ UInt64(Double(time.now) * rate))
        }
        nodes[i].seed = nodes[i].seed &+ 0x9E37_79B9
        let raft = RaftNode(
            id: nodes[i].id,
            settings: nodeSettings,
            bootstrap: bootstrap,
            durable: nodes[i].durable,
            appliedIndex: nodes[i].durable.snapshot?.metadata.last.index,
            clock: clock,
            random: SplitMix64(seed: nodes[i].seed)
        )
        nodes[i].raft = raft
        nodes[i].paused = false
        nodes[i].inbox = []
        nodes[i].pendingWrites = []
        nodes[i].diskBusyUntil = now
        checker.restarted(raft)
        scheduleTick(i)
    }

    private mutating func scheduleTick(_ i: Int) {
        // A node's ticks run on its own clock: a fast clock ticks more often in real time.
        let interval = Double(nodeSettings.tickInterval.nanosecondsClamped) / nodes[i].clockRate
        schedule(at: now + UInt64(interval), .tick(nodes[i].id, incarnation: nodes[i].incarnation))
    }

    /// Runs one event on a node and carries out what it returns.
    private mutating func step(_ i: Int, _ action: Action, _ body: (inout RaftNode) -> [RaftDirective]) {
        guard var raft = nodes[i].raft else { return }
        nodes[i].raft = nil  // keep the node uniquely referenced while it runs
        let before = (raft.role, raft.term, raft.lastIndex)
        let directives = body(&raft)
        nodes[i].raft = raft
        record(TraceEntry(step: steps, time: now, node: nodes[i].id, action: action, note: nil, directives: directives))
        if let (property, detail) = checker.observe(node: raft, before: before, directives: directives) {
            fail(property, detail)
        }
        carryOut(i, directives)
    }

    private mutating func carryOut(_ i: Int, _ directives: [RaftDirective]) {
        for directive in directives {
            switch directive {
            case .send(let message):
                transmit(message)
            case .persist(let write):
                let latency =
                    mix.slowDisks && Double.random(in: 0..<1, using: &rng) < 0.3
                    ? Int64.random(in: 5_000_000...60_000_000, using: &rng)
                    : Int64.random(in: 50_000...1_500_000, using: &rng)
                let done = max(nodes[i].diskBusyUntil, now) + UInt64(latency)
                nodes[i].diskBusyUntil = done
                nodes[i].pendingWrites.append(write)
                schedule(at: done, .persisted(nodes[i].id, incarnation: nodes[i].incarnation, write.id))
            case .apply(let entries):
                maybeCompact(i, appliedThrough: entries.last!.index)
            case .roleChanged(.leader, _):
                elections += 1
                if !healed, Double.random(in: 0..<1, using: &rng) < mix.newLeaderCrashRate {
                    let id = nodes[i].id
                    schedule(after: .microseconds(Int64.random(in: 200...15_000, using: &rng)), .crash(id))
                    schedule(after: .milliseconds(Int64.random(in: 30...400, using: &rng)), .restart(id))
                }
            case .roleChanged, .leaderChanged, .restoreSnapshot, .refused:
                break
            }
        }
    }

    private mutating func maybeCompact(_ i: Int, appliedThrough: LogIndex) {
        guard let raft = nodes[i].raft, appliedThrough >= raft.snapshotIndex + options.compactionInterval else {
            return
        }
        // The snapshot's bytes stand for the state machine; the checker does not read them.
        let data = Array("state@\(appliedThrough)".utf8)
        step(i, .compact(appliedThrough)) { raft in
            (try? raft.compact(through: appliedThrough, snapshotData: data)) ?? []
        }
    }

    // MARK: - Network

    private func isBlocked(_ from: NodeID, _ to: NodeID) -> Bool {
        let pair = Pair(from: from, to: to)
        return blocked.values.contains { $0.contains(pair) }
    }

    private mutating func transmit(_ message: RaftMessage) {
        guard healed || Double.random(in: 0..<1, using: &rng) >= mix.lossRate else { return }
        var delay = Int64.random(in: 100_000...2_000_000, using: &rng)
        if !healed, mix.jitter > .zero, Double.random(in: 0..<1, using: &rng) < 0.2 {
            delay += Int64.random(in: 0...mix.jitter.nanosecondsClamped, using: &rng)
        }
        schedule(after: .nanoseconds(delay), .deliver(message))
        if !healed, Double.random(in: 0..<1, using: &rng) < mix.duplicationRate {
            schedule(after: .nanoseconds(delay + Int64.random(in: 0...20_000_000, using: &rng)), .deliver(message))
        }
    }

    // MARK: - Events

    private mutating func handle(_ event: Event) {
        switch event {
        case .tick(let id, let incarnation):
            let i = index(of: id)
            guard nodes[i].incarnation == incarnation, nodes[i].raft != nil else { return }
            guard !nodes[i].paused else { return }  // resumes with a new tick chain
            step(i, .tick) { $0.tick() }
            scheduleTick(i)

        case .deliver(var message):
            let i = index(of: message.to)
            guard nodes[i].raft != nil, !isBlocked(message.from, message.to) else { return }
            for label in interceptors.keys.sorted() {
                guard let rewritten = interceptors[label]!(message) else { return }
                message = rewritten
            }
            if nodes[i].paused {
                nodes[i].inbox.append(.message(message))  // the kernel buffers it until SIGCONT
                return
            }
            step(i, .receive(message)) { $0.receive(message) }

        case .persisted(let id, let incarnation, let writeID):
            let i = index(of: id)
            guard nodes[i].incarnation == incarnation, nodes[i].raft != nil else { return }
            guard let position = nodes[i].pendingWrites.firstIndex(where: { $0.id == writeID }) else { return }
            for write in nodes[i].pendingWrites[...position] { nodes[i].durable.apply(write) }
            nodes[i].pendingWrites.removeFirst(position + 1)
            if nodes[i].paused {
                nodes[i].inbox.append(.persisted(writeID))  // it learns so when it runs again
                return
            }
            step(i, .persisted(writeID)) { $0.persisted(writeID) }

        case .clientPropose:
            proposeFromClient()
            schedule(after: .milliseconds(Int64.random(in: 3...25, using: &rng)), .clientPropose)

        case .fault:
            guard !healed else { return }
            injectFault()
            schedule(after: .milliseconds(Int64.random(in: 60...350, using: &rng)), .fault)

        case .crash(let id):
            let i = index(of: id)
            guard nodes[i].raft != nil else { return }
            let lost = nodes[i].pendingWrites.count
            record("CRASH \(id) (loses \(lost) unacknowledged writes)")
            nodes[i].raft = nil
            nodes[i].pendingWrites = []
            nodes[i].inbox = []
            nodes[i].paused = false

        case .restart(let id):
            let i = index(of: id)
            guard nodes[i].raft == nil else { return }
            let durable = nodes[i].durable
            record("RESTART \(id) from \(durable.hardState), \(durable.entries.count) entries")
            start(i)

        case .pause(let id):
            let i = index(of: id)
            guard nodes[i].raft != nil, !nodes[i].paused else { return }
            record("SIGSTOP \(id)")
            nodes[i].paused = true

        case .resume(let id):
            resume(index(of: id))

        case .partition(let pairs, let label):
            record("PARTITION \(label)")
            blocked[label] = Set(pairs.map { Pair(from: $0.0, to: $0.1) })

        case .healPartition(let label):
            if blocked.removeValue(forKey: label) != nil { record("HEAL \(label)") }

        case .transfer(let target):
            guard let i = leaderIndex() else { return }
            step(i, .transfer(target)) { raft in
                (try? raft.transferLeadership(to: target)) ?? []
            }

        case .membershipChange:
            changeMembership()

        case .healWorld:
            healWorld()

        case .livenessDeadline:
            if recovery == nil {
                fail(
                    .liveness,
                    "no new entry committed within \(options.livenessBound) of healing "
                        + "(leaders: \(nodes.compactMap { $0.raft?.role == .leader ? $0.id.description : nil }))"
                )
            }
        }
    }

    private mutating func resume(_ i: Int) {
        guard nodes[i].raft != nil, nodes[i].paused else { return }
        let id = nodes[i].id
        let buffered = nodes[i].inbox
        record("SIGCONT \(id) with \(buffered.count) buffered events")
        nodes[i].paused = false
        nodes[i].inbox = []
        for event in buffered {
            switch event {
            case .persisted(let write):
                step(i, .persisted(write)) { $0.persisted(write) }
            case .message(let message):
                step(i, .receive(message)) { $0.receive(message) }
            }
            if nodes[i].raft == nil || nodes[i].paused { return }
        }
        scheduleTick(i)
    }

    // MARK: - Client load

    private func leaderIndex() -> Int? {
        // The newest-term node that believes it leads and is running.
        var best: Int?
        for i in nodes.indices {
            guard let raft = nodes[i].raft, !nodes[i].paused, raft.role == .leader else { continue }
            if best == nil || raft.term > nodes[best!].raft!.term { best = i }
        }
        return best
    }

    private mutating func proposeFromClient() {
        guard let i = leaderIndex() else { return }
        proposalCounter += 1
        let count = Int.random(in: 1...3, using: &rng)
        var commands: [[UInt8]] = []
        for k in 0..<count {
            var bytes = withUnsafeBytes(of: (proposalCounter << 8 | UInt64(k)).littleEndian, Array.init)
            bytes.append(
                contentsOf: repeatElement(UInt8(truncatingIfNeeded: seed), count: Int.random(in: 0...24, using: &rng)))
            commands.append(bytes)
        }
        step(i, .propose(count)) { raft in
            (try? raft.propose(commands))?.directives ?? []
        }
    }

    private mutating func checkLeases() {
        var holders: [NodeID] = []
        for node in nodes {
            if let raft = node.raft, raft.holdsLease { holders.append(raft.id) }
        }
        if holders.count > 1 {
            let terms = holders.map { "\($0) t\(nodes[index(of: $0)].raft!.term)" }
            fail(.leaseExclusivity, "\(terms.joined(separator: " and ")) hold valid leases at the same instant")
        }
        if healed, recovery == nil, checker.highestCommitted > commitAtHeal, let i = leaderIndex(),
            let raft = nodes[i].raft, raft.commitIndex > commitAtHeal,
            raft.term(at: raft.commitIndex) == raft.term
        {
            recovery = .nanoseconds(Int64(now - healTime))
        }
    }

    // MARK: - Faults

    private mutating func randomNode(preferLeader: Double) -> Int {
        if Double.random(in: 0..<1, using: &rng) < preferLeader, let leader = leaderIndex() { return leader }
        return Int.random(in: 0..<nodes.count, using: &rng)
    }

    private mutating func injectFault() {
        var menu: [String] = []
        if mix.partitions { menu += ["isolate", "split", "asymmetric", "asymmetric", "cut-link", "cut-link"] }
        if mix.crashes { menu += ["crash", "crash"] }
        if mix.pauses { menu += ["pause", "pause"] }
        if mix.transfers { menu += ["transfer"] }
        if mix.membershipChanges { menu += ["membership", "membership"] }
        guard !menu.isEmpty else { return }
        faultsInjected += 1
        let ids = nodes.map(\.id)
        switch menu.randomElement(using: &rng)! {
        case "isolate":
            let victim = nodes[randomNode(preferLeader: 0.5)].id
            let pairs = ids.filter { $0 != victim }.flatMap { [($0, victim), (victim, $0)] }
            let label = "isolate-\(victim)-\(faultsInjected)"
            schedule(after: .zero, .partition(pairs, label: label))
            schedule(after: .milliseconds(Int64.random(in: 200...1500, using: &rng)), .healPartition(label: label))
        case "split":
            let shuffled = ids.shuffled(using: &rng)
            let cut = Int.random(in: 1..<shuffled.count, using: &rng)
            let left = shuffled[..<cut]
            let right = shuffled[cut...]
            let pairs = left.flatMap { l in right.flatMap { r in [(l, r), (r, l)] } }
            let label =
                "split-\(left.map(\.description).joined(separator: ","))|\(right.map(\.description).joined(separator: ","))-\(faultsInjected)"
            schedule(after: .zero, .partition(pairs, label: label))
            schedule(after: .milliseconds(Int64.random(in: 200...1500, using: &rng)), .healPartition(label: label))
        case "asymmetric":
            // One node hears everyone but nobody hears it (or the reverse): the classic case
            // where a leader keeps sending but never learns it lost its quorum.
            let victim = nodes[randomNode(preferLeader: 0.6)].id
            let outbound = Bool.random(using: &rng)
            let pairs = ids.filter { $0 != victim }.map { outbound ? (victim, $0) : ($0, victim) }
            let label = "\(outbound ? "mute" : "deaf")-\(victim)-\(faultsInjected)"
            schedule(after: .zero, .partition(pairs, label: label))
            schedule(after: .milliseconds(Int64.random(in: 200...1200, using: &rng)), .healPartition(label: label))
        case "cut-link":
            // Two nodes that cannot reach each other while both reach everyone else: the
            // follower cut off from the leader campaigns while the others still hear the leader.
            let a = nodes[randomNode(preferLeader: 0.6)].id
            guard let b = ids.filter({ $0 != a }).randomElement(using: &rng) else { return }
            let oneWay = Double.random(in: 0..<1, using: &rng) < 0.3
            let pairs = oneWay ? [(a, b)] : [(a, b), (b, a)]
            let label = "cut-\(a)\(oneWay ? "->" : "<->")\(b)-\(faultsInjected)"
            schedule(after: .zero, .partition(pairs, label: label))
            schedule(after: .milliseconds(Int64.random(in: 200...1500, using: &rng)), .healPartition(label: label))
        case "crash":
            let victim = nodes[randomNode(preferLeader: 0.5)].id
            schedule(after: .zero, .crash(victim))
            schedule(after: .milliseconds(Int64.random(in: 20...1200, using: &rng)), .restart(victim))
        case "pause":
            let victim = nodes[randomNode(preferLeader: 0.7)].id
            schedule(after: .zero, .pause(victim))
            schedule(after: .milliseconds(Int64.random(in: 100...1500, using: &rng)), .resume(victim))
        case "transfer":
            let target: NodeID? = Bool.random(using: &rng) ? nil : ids.randomElement(using: &rng)
            schedule(after: .zero, .transfer(target))
        default:
            schedule(after: .zero, .membershipChange)
        }
    }

    private mutating func changeMembership() {
        guard let i = leaderIndex(), let raft = nodes[i].raft else { return }
        let config = raft.configuration
        let outsiders = nodes.map(\.id).filter { !config.contains($0) }
        var change: MembershipChange?
        if let learner = config.learners.sorted().first,
            Bool.random(using: &rng) || config.voters.count < options.voters
        {
            change = .promoteLearner(learner)
        } else if config.voters.count > 3 || (config.voters.count == 3 && !config.learners.isEmpty) {
            let removable = config.voters.filter { $0 != raft.id }.sorted()
            if let victim = removable.randomElement(using: &rng) { change = .remove(victim) }
        } else if let newcomer = outsiders.first {
            change = .addLearner(newcomer)
        } else if let learner = config.learners.sorted().first {
            change = .remove(learner)
        }
        guard let change else { return }
        step(i, .membership(change)) { raft in
            (try? raft.proposeMembershipChange(change))?.directives ?? []
        }
    }

    private mutating func healWorld() {
        record("HEAL WORLD")
        healed = true
        healTime = now
        commitAtHeal = checker.highestCommitted
        blocked = [:]
        for i in nodes.indices {
            if nodes[i].raft == nil {
                start(i)
            } else if nodes[i].paused {
                resume(i)
            }
        }
    }
}
