public import BatonTrading
@_spi(Testing) public import RaftCore

/// The kinds of trouble a trading seed's world throws at the cluster and its broker.
public enum TradingFaultMix: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Feed, orders and the odd planned transfer.
    case calm
    /// kill -9 and restart of replicas (the leader most often).
    case crashes
    /// SIGSTOP / SIGCONT, a share of them between the lease check and the write.
    case pauses
    /// Peer partitions that come and go; peer messages lost, duplicated and reordered.
    case partitions
    /// Broker restarts, FIX connection drops, and slow stretches on the broker's link.
    case broker
    /// Planned transfers (drained hand-overs) while orders are in flight.
    case transfers
    case everything

    public var description: String { rawValue }
    public static func forSeed(_ seed: UInt64) -> TradingFaultMix { allCases[Int(seed % UInt64(allCases.count))] }

    var crashes: Bool { self == .crashes || self == .everything }
    var pauses: Bool { self == .pauses || self == .everything }
    var partitions: Bool { self == .partitions || self == .everything }
    var peerLossRate: Double { self == .partitions ? 0.05 : self == .everything ? 0.03 : 0 }
    var brokerFaults: Bool { self == .broker || self == .everything }
    var transferWeight: Int { self == .transfers ? 6 : self == .calm ? 1 : 1 }
}

public struct TradingSimulationOptions: Sendable {
    public var voters = 3
    /// How long faults are injected; then the world heals, the feed runs on a while and stops,
    /// and the cluster must settle every order within `quiescenceBound`.
    public var chaosDuration: Duration = .seconds(3)
    public var feedAfterHeal: Duration = .milliseconds(500)
    public var quiescenceBound: Duration = .seconds(8)
    public var mix: TradingFaultMix?
    public var settings = RaftSettings()
    public var defect: TradingDefect?
    /// What the cores are told, and what the broker honours: an order leaves its gateway within
    /// `gatewayLatencyMax` ≤ `maxOrderAge`.
    public var maxOrderAge: Duration = .milliseconds(100)
    public var gatewayLatencyMax: Duration = .milliseconds(80)
    public var ackTimeout: Duration = .milliseconds(250)
    /// HeartBtInt: the broker drops a connection silent for 2.5 × this.
    public var heartbeat: Duration = .milliseconds(400)
    public var traceLength = 60
    /// The strategy every simulated core runs (a name of `StrategySpec.registry`).
    public var strategy = MovingAverageCrossover.name

    public init() {}

    public func problems() -> [String] {
        var problems = settings.problems().map(\.description)
        if !(3...7).contains(voters) { problems.append("voters = \(voters) is invalid: must be 3 to 7") }
        if !StrategySpec.registry.contains(where: { $0.name == strategy }) {
            problems.append("strategy \(strategy) is unknown: use \(StrategySpec.registry.map(\.name).joined(separator: " or "))")
        }
        if gatewayLatencyMax > maxOrderAge {
            problems.append("gateway latency \(gatewayLatencyMax) above max order age \(maxOrderAge): no core can be safe")
        }
        if maxOrderAge + .milliseconds(20) >= settings.leaseDuration {
            problems.append("max order age \(maxOrderAge) leaves no room in the lease \(settings.leaseDuration)")
        }
        return problems
    }
}

public struct TradingSeedResult: Sendable {
    public var seed: UInt64
    public var mix: TradingFaultMix
    public var steps: Int
    public var violation: Violation?
    public var trace: [String]
    public var intents: Int
    public var executions: Int
    public var possResends: Int
    public var takeovers: Int
    public var faults: Int
    public var halts: Int
}

/// Runs one trading seed: RaftNodes plus trading cores plus a strict broker in a seeded, faulty
/// world, checking after every step that no ClOrdID executes twice, that every execution has a
/// committed intent, and that at most one replica holds the broker session with a valid lease;
/// after healing, that every committed intent executed exactly once and every replica's positions
/// equal the broker's. Deterministic: the same seed and options give the same run.
public struct TradingSimulation {
    public let seed: UInt64
    public let options: TradingSimulationOptions
    public let mix: TradingFaultMix

    private enum ClientMessage {
        case logon(seq: Int, nextTarget: Int)
        case order(seq: Int, OrderToSend, sendingTime: UInt64)
        case status(seq: Int, clOrdID: String)
        case heartbeat
    }

    private enum BrokerMessage {
        case logonAccepted(seq: Int)
        case logout(String)
        case report(BrokerModel.Report, possDup: Bool)
    }

    private enum Event {
        case raftTick(Int, incarnation: Int)
        case duty(Int, incarnation: Int)
        case deliver(RaftMessage)
        case persisted(Int, incarnation: Int, StorageWriteID)
        case marketTick
        case toBroker(connection: Int, ClientMessage)
        case brokerEOF(connection: Int)
        case toClient(Int, connection: Int, BrokerMessage)
        case clientClosed(Int, connection: Int, why: String)
        case clientHeartbeat(Int, incarnation: Int)
        case dial(Int, incarnation: Int)
        case logonTimeout(Int, connection: Int)
        case reset(connection: Int, why: String)
        case gatewayDone(String, OrderToSend)
        case fill(String)
        case brokerCheck
        case brokerRestart
        case brokerUp
        case fault
        case crash(Int)
        case restart(Int)
        case pause(Int)
        case resume(Int)
        case heal(String)
        case transfer
        case handOverStep(Int, term: Term, deadline: UInt64, markIndex: LogIndex?)
        case healWorld
        case stopFeed
        case quiescenceCheck
    }

    private enum Buffered {
        case message(RaftMessage)
        case persisted(StorageWriteID)
        case fromBroker(connection: Int, BrokerMessage)
        case closed(connection: Int, why: String)
        case tick(symbol: String, sequence: UInt64, price: Int64)
    }

    private enum SessionState { case disconnected, loggingOn, active }

    /// What the replica's FIX initiator holds; the store part survives a crash.
    private struct ClientSession {
        var permit: SessionGrant?
        var connection: Int?
        var state: SessionState = .disconnected
        var storeNextSender = 1
        var storeNextTarget = 1
        var ceiling = 0
        /// The next write stops the process between its lease check and its write (SIGSTOP).
        var stopBeforeNextWrite = false
    }

    private struct Replica {
        var id: NodeID
        var raft: RaftNode?
        var core: TradingCore?
        var durable = DurableState()
        var incarnation = 0
        var paused = false
        var inbox: [Buffered] = []
        var clockRate: Double = 1
        var clockOffset: UInt64 = 0
        var wallSkew: Int64 = 0
        var diskBusyUntil: UInt64 = 0
        var pendingWrites: [StorageWrite] = []
        var seed: UInt64 = 0
        var termStartIndex: LogIndex?
        var fix = ClientSession()
        /// A write stopped between its lease check and its write: it goes out on SIGCONT.
        var deferred: (OrderToSend, sendingTime: UInt64)?
    }

    private struct Pair: Hashable {
        var from: NodeID
        var to: NodeID
    }

    private var replicas: [Replica] = []
    private var queue = EventQueue<Event>()
    private let time = SimulatedTime()
    private var now: UInt64 = 0
    private var rng: SplitMix64
    private var raftChecker = InvariantChecker()
    private var broker = BrokerModel()
    private var blocked: [String: Set<Pair>] = [:]
    private var nextConnection = 0
    /// Per connection and direction (true: to the broker), when the last byte is delivered: TCP
    /// keeps order.
    private var linkBusyUntil: [Int: (toBroker: UInt64, toClient: UInt64)] = [:]
    private var brokenConnections: Set<Int> = []
    private var slowBrokerLinkUntil: UInt64 = 0
    private var committedIntents: Set<String> = []
    private var prices: [String: Int64] = ["AAPL": 1_500_000, "MSFT": 3_000_000]
    private var tickSequence: UInt64 = 0
    private var feedRunning = true
    private var healed = false
    private var healTime: UInt64 = 0
    private var finished = false
    private var violation: Violation?
    private var steps = 0
    private var faults = 0
    private var takeovers = 0
    private var halts = 0
    private var trace: [String] = []
    private var traceHead = 0
    private let settings: RaftSettings
    private let bootstrap: ClusterConfiguration

    public init(seed: UInt64, options: TradingSimulationOptions) {
        self.seed = seed
        self.options = options
        mix = options.mix ?? TradingFaultMix.forSeed(seed)
        rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ 0x7A3D)
        var settings = options.settings
        settings.defect = nil
        self.settings = settings
        let ids = (1...options.voters).map { NodeID(UInt64($0)) }
        bootstrap = ClusterConfiguration(voters: Set(ids), learners: [])
        for id in ids {
            var replica = Replica(id: id)
            replica.seed = rng.next()
            if mix.pauses || mix == .everything {
                replica.clockRate = 1 + Double.random(in: -0.01...0.01, using: &rng)
            }
            replica.clockOffset = UInt64.random(in: 0...1_000_000_000_000, using: &rng)
            replica.wallSkew = Int64.random(in: -2_000_000...2_000_000, using: &rng)
            replicas.append(replica)
        }
    }

    // MARK: - Running

    public mutating func run() -> TradingSeedResult {
        for i in replicas.indices { start(i) }
        schedule(after: .milliseconds(5), .marketTick)
        schedule(after: .milliseconds(Int64.random(in: 300...600, using: &rng)), .fault)
        schedule(after: .milliseconds(Int64(options.heartbeat.milliseconds / 2)), .brokerCheck)
        schedule(after: options.chaosDuration, .healWorld)
        let end = UInt64((options.chaosDuration + options.feedAfterHeal + options.quiescenceBound).nanosecondsClamped)
        while violation == nil, !finished, let next = queue.pop() {
            now = next.time
            time.now = now
            steps += 1
            handle(next.event)
            if violation == nil { checkSessionExclusivity() }
            if now > end, violation == nil, !finished {
                fail(.liveness, "the cluster did not settle every order within \(options.quiescenceBound) of the feed stopping: \(settledness())")
            }
        }
        return TradingSeedResult(
            seed: seed, mix: mix, steps: steps, violation: violation,
            trace: violation == nil ? [] : orderedTrace(), intents: committedIntents.count,
            executions: broker.executions.values.reduce(0, +), possResends: broker.possResends, takeovers: takeovers,
            faults: faults, halts: halts)
    }

    private mutating func fail(_ property: Violation.Property, _ detail: String) {
        guard violation == nil else { return }
        violation = Violation(property: property, detail: detail, step: steps, time: .nanoseconds(Int64(now)))
    }

    private mutating func schedule(after delay: Duration, _ event: Event) {
        queue.schedule(at: now + UInt64(max(0, delay.nanosecondsClamped)), event)
    }

    private mutating func schedule(at time: UInt64, _ event: Event) { queue.schedule(at: time, event) }

    private mutating func note(_ text: String) {
        guard options.traceLength > 0 else { return }
        let line = "[\(steps) t=\(Double(now) / 1e6)ms] \(text)"
        if trace.count < options.traceLength {
            trace.append(line)
        } else {
            trace[traceHead] = line
            traceHead = (traceHead + 1) % options.traceLength
        }
    }

    private func orderedTrace() -> [String] { Array(trace[traceHead...] + trace[..<traceHead]) }

    private func wallNanos(_ i: Int) -> Int64 { Int64(now) + replicas[i].wallSkew }

    private mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    private mutating func nanos(_ range: ClosedRange<Int64>) -> Duration {
        .nanoseconds(Int64.random(in: range, using: &rng))
    }

    // MARK: - Replicas

    private mutating func start(_ i: Int) {
        replicas[i].incarnation += 1
        let rate = replicas[i].clockRate
        let offset = replicas[i].clockOffset
        let time = self.time
        let clock: RaftClock = { MonotonicInstant(nanoseconds: offset &+ UInt64(Double(time.now) * rate)) }
        replicas[i].seed = replicas[i].seed &+ 0x9E37_79B9
        let raft = RaftNode(
            id: replicas[i].id, settings: settings, bootstrap: bootstrap, durable: replicas[i].durable,
            appliedIndex: nil, clock: clock, random: SplitMix64(seed: replicas[i].seed))
        replicas[i].raft = raft
        replicas[i].core = TradingCore(settings: coreSettings(node: replicas[i].id.rawValue))
        replicas[i].paused = false
        replicas[i].inbox = []
        replicas[i].pendingWrites = []
        replicas[i].diskBusyUntil = now
        replicas[i].termStartIndex = nil
        replicas[i].deferred = nil
        replicas[i].fix.permit = nil
        replicas[i].fix.connection = nil
        replicas[i].fix.state = .disconnected
        replicas[i].fix.stopBeforeNextWrite = false
        raftChecker.restarted(raft)
        let incarnation = replicas[i].incarnation
        schedule(after: settings.tickInterval, .raftTick(i, incarnation: incarnation))
        schedule(after: .milliseconds(10), .duty(i, incarnation: incarnation))
        schedule(after: options.heartbeat, .clientHeartbeat(i, incarnation: incarnation))
    }

    private func coreSettings(node: UInt64) -> TradingCore.Settings {
        var settings = TradingCore.Settings(
            node: node, senderCompID: "BATON", targetCompID: "BROKER", account: "SIM", clOrdIDPrefix: "BTN",
            strategies: prices.keys.sorted().map { symbol in
                options.strategy == ChannelBreakout.name
                    ? .channelBreakout(BreakoutParameters(symbol: symbol, lookback: 6, quantity: 10, allowShort: true))
                    : .maCrossover(
                        CrossoverParameters(symbol: symbol, fastWindow: 3, slowWindow: 8, threshold: 0, quantity: 10, allowShort: true))
            },
            strategyVersion: "sim",
            limits: RiskLimits(maxOrdersPerMinute: 100_000, maxOrdersPerHour: 1_000_000, maxPosition: 10, maxOrderQuantity: 20),
            reconciler: .init(answerTimeoutNanos: 200_000_000, attemptsBeforeHalt: 1_000),
            maxOrderAgeNanos: Int64(options.maxOrderAge.nanosecondsClamped),
            ackTimeoutNanos: Int64(options.ackTimeout.nanosecondsClamped), sequenceBlock: 20)
        settings.defect = options.defect
        settings.reservationRetryNanos = 300_000_000
        return settings
    }

    private func running(_ i: Int) -> Bool { replicas[i].raft != nil && !replicas[i].paused }

    /// Runs one Raft step on a replica and carries out what it returns.
    private mutating func raftStep(_ i: Int, _ what: String, _ body: (inout RaftNode) -> [RaftDirective]) {
        guard var raft = replicas[i].raft else { return }
        replicas[i].raft = nil
        let before = (raft.role, raft.term, raft.lastIndex)
        let directives = body(&raft)
        replicas[i].raft = raft
        if let (property, detail) = raftChecker.observe(node: raft, before: before, directives: directives) {
            fail(property, detail)
        }
        raftDepth += 1
        carryOut(i, directives, what)
        raftDepth -= 1
        while raftDepth == 0, !heldTrading.isEmpty {
            let (node, held) = heldTrading.removeFirst()
            trading(node, held)
        }
    }

    private mutating func carryOut(_ i: Int, _ directives: [RaftDirective], _ what: String) {
        for directive in directives {
            switch directive {
            case .send(let message):
                transmit(message)
            case .persist(let write):
                let latency = chance(0.1) ? nanos(2_000_000...20_000_000) : nanos(50_000...1_000_000)
                let done = max(replicas[i].diskBusyUntil, now) + UInt64(latency.nanosecondsClamped)
                replicas[i].diskBusyUntil = done
                replicas[i].pendingWrites.append(write)
                schedule(at: done, .persisted(i, incarnation: replicas[i].incarnation, write.id))
            case .apply(let entries):
                for entry in entries { apply(i, entry) }
            case .roleChanged(let role, let term):
                if role == .leader {
                    replicas[i].termStartIndex = replicas[i].raft?.lastIndex
                    takeovers += 1
                    note("\(replicas[i].id) leads t\(term) from \(replicas[i].termStartIndex ?? 0)")
                } else {
                    replicas[i].termStartIndex = nil
                }
            case .leaderChanged, .restoreSnapshot, .refused:
                break
            }
        }
    }

    private mutating func apply(_ i: Int, _ entry: LogEntry) {
        guard var core = replicas[i].core else { return }
        guard case .command(let payload) = entry.payload, let command = try? TradingCommand.decode(payload) else {
            core.applied(through: entry.index)
            replicas[i].core = core
            return
        }
        if case .orderIntent(let intent) = command {
            committedIntents.insert(makeClOrdID(prefix: intent.clOrdIDPrefix, term: entry.term, index: entry.index))
        }
        let directives = core.apply(command, term: entry.term, index: entry.index, now: wallNanos(i))
        replicas[i].core = core
        trading(i, directives)
    }

    // MARK: - The trading shell

    /// Trading directives wait while a Raft step's directives are carried out: a proposal in
    /// the middle would queue its write before the step's own (writes complete in order).
    private var raftDepth = 0
    private var heldTrading: [(Int, [TradingDirective])] = []

    /// Runs one event on a replica's trading core and carries out what it returns.
    private mutating func drive(_ i: Int, _ body: (inout TradingCore, Int64) -> [TradingDirective]) {
        guard var core = replicas[i].core else { return }
        let directives = body(&core, wallNanos(i))
        replicas[i].core = core
        trading(i, directives)
    }

    private mutating func trading(_ i: Int, _ directives: [TradingDirective]) {
        guard raftDepth == 0 else {
            if !directives.isEmpty { heldTrading.append((i, directives)) }
            return
        }
        for directive in directives {
            guard replicas[i].raft != nil else { return }
            switch directive {
            case .propose(let command):
                propose(i, command)
            case .send(let send):
                write(i, send)
            case .requestStatus(let clOrdID, _, _):
                guard replicas[i].fix.state == .active, let connection = replicas[i].fix.connection else { continue }
                let seq = replicas[i].fix.storeNextSender
                replicas[i].fix.storeNextSender += 1
                toBroker(connection, .status(seq: seq, clOrdID: clOrdID))
                replicas[i].core?.onStatusRequestWritten(clOrdID: clOrdID, msgSeqNum: seq)
            case .requestMassStatus:
                break  // the simulated cores reconcile order by order
            case .deliverAlerts:
                break  // the simulated cores have no alert sinks configured
            case .grantSession(let grant):
                replicas[i].fix.permit = grant
                replicas[i].fix.ceiling = grant.senderSeqCeiling
                if replicas[i].fix.state == .disconnected { dial(i) }
            case .extendSession(let ceiling):
                replicas[i].fix.ceiling = max(replicas[i].fix.ceiling, ceiling)
            case .revokeSession(let reason):
                replicas[i].fix.permit = nil
                closeClient(i, why: "revoked: \(reason)")
            case .handOverLeadership(let reason):
                // Not configured in the simulated cores (brokerHandOverAfterNanos is nil): their
                // broker is reachable from every replica alike. Noted if it ever appears.
                note("\(replicas[i].id) asks to hand over: \(reason)")
            case .report(let report):
                switch report {
                case .halted(let reason):
                    halts += 1
                    note("\(replicas[i].id) HALTED: \(reason)")
                case .sessionTaken(let grant):
                    note("\(replicas[i].id) takes the session from \(grant.firstSenderSeqNum)")
                case .reconciledFinding(let r):
                    note("\(replicas[i].id) reconciled \(r.clOrdID) t\(r.term): \(r.finding.short)")
                case .orderUnknown(let id, let reason):
                    note("\(replicas[i].id) \(id) unknown: \(reason)")
                case .trading(let term):
                    note("\(replicas[i].id) trading t\(term)")
                default:
                    break
                }
            }
        }
    }

    /// Proposes on the replica's node; nil when the node refused it.
    @discardableResult
    private mutating func propose(_ i: Int, _ command: TradingCommand) -> LogIndex? {
        guard replicas[i].raft != nil else { return nil }
        let payload = command.encoded()
        var index: LogIndex?
        raftStep(i, "propose") { raft in
            guard let proposal = try? raft.propose(payload) else { return [] }
            index = proposal.positions.last?.index
            return proposal.directives
        }
        if index == nil {
            let now = wallNanos(i)
            replicas[i].core?.onProposalFailed(command, now: now)
        }
        return index
    }

    /// The initiator's write: the lease is checked once more, right before the message is
    /// stamped; a SIGSTOP can land between that check and the write.
    private mutating func write(_ i: Int, _ send: OrderToSend) {
        guard let raft = replicas[i].raft else { return }
        let id = send.order.clOrdID
        guard replicas[i].fix.state == .active, replicas[i].fix.connection != nil else {
            drive(i) { core, now in core.onOrderNotWritten(clOrdID: id, reason: "not logged on", now: now) }
            return
        }
        if send.minimumLeaseNanos > 0 {
            guard raft.role == .leader, raft.term == send.term, let lease = raft.leaseRemaining,
                lease >= .nanoseconds(send.minimumLeaseNanos)
            else {
                drive(i) { core, now in core.onOrderNotWritten(clOrdID: id, reason: "lease check", now: now) }
                return
            }
        }
        let sendingTime = UInt64(wallNanos(i))
        if replicas[i].fix.stopBeforeNextWrite {
            replicas[i].fix.stopBeforeNextWrite = false
            replicas[i].deferred = (send, sendingTime)
            replicas[i].paused = true
            note("SIGSTOP \(replicas[i].id) between the lease check and the write of \(id)")
            schedule(after: nanos(50_000_000...700_000_000), .resume(i))
            return
        }
        finishWrite(i, send, sendingTime: sendingTime)
    }

    private mutating func finishWrite(_ i: Int, _ send: OrderToSend, sendingTime: UInt64) {
        let id = send.order.clOrdID
        guard let connection = replicas[i].fix.connection, replicas[i].fix.state == .active else {
            drive(i) { core, now in core.onOrderNotWritten(clOrdID: id, reason: "connection closed", now: now) }
            return
        }
        let seq = replicas[i].fix.storeNextSender
        guard seq <= replicas[i].fix.ceiling else {
            closeClient(i, why: "MsgSeqNum \(seq) above the permit's ceiling")
            drive(i) { core, now in core.onOrderNotWritten(clOrdID: id, reason: "ceiling", now: now) }
            return
        }
        replicas[i].fix.storeNextSender += 1
        if mix.brokerFaults, !healed, chance(0.03) {
            // The connection breaks in the middle of the write: the bytes may or may not arrive.
            if chance(0.5) {
                toBroker(connection, .order(seq: seq, send, sendingTime: sendingTime))
                let arrives = linkBusyUntil[connection]?.toBroker ?? now
                schedule(at: arrives + 1_000, .reset(connection: connection, why: "connection reset after writing \(id)"))
            } else {
                breakConnection(connection, why: "connection reset while writing \(id)")
            }
            drive(i) { core, now in core.onOrderLostInFlight(clOrdID: id, reason: "reset while writing", now: now) }
            return
        }
        toBroker(connection, .order(seq: seq, send, sendingTime: sendingTime))
        note("\(replicas[i].id) writes \(id)\(send.possResend ? " PossResend" : "") seq \(seq)")
        let lease = replicas[i].raft?.leaseRemaining.map { Int64($0.nanosecondsClamped) } ?? 0
        drive(i) { core, now in core.onOrderWritten(send, msgSeqNum: seq, leaseRemainingNanos: lease, now: now) }
    }

    private mutating func duty(_ i: Int) {
        guard let raft = replicas[i].raft, var core = replicas[i].core else { return }
        let view = LeadershipInput(
            isLeader: raft.role == .leader, term: raft.term,
            leaseRemainingNanos: raft.leaseRemaining.map { Int64($0.nanosecondsClamped) },
            termStartIndex: raft.role == .leader ? replicas[i].termStartIndex : nil)
        let session = SessionInput(
            active: replicas[i].fix.state == .active, nextSenderSeqNum: replicas[i].fix.storeNextSender)
        let directives = core.onDuty(now: wallNanos(i), leadership: view, session: session)
        replicas[i].core = core
        trading(i, directives)
    }

    // MARK: - The FIX link

    private mutating func dial(_ i: Int) {
        guard running(i), let permit = replicas[i].fix.permit, replicas[i].fix.state == .disconnected else { return }
        nextConnection += 1
        let connection = nextConnection
        replicas[i].fix.connection = connection
        replicas[i].fix.state = .loggingOn
        connectionOwner[connection] = i
        guard broker.up else {
            schedule(after: .milliseconds(1), .clientClosed(i, connection: connection, why: "connection refused"))
            return
        }
        let seq = max(permit.firstSenderSeqNum, replicas[i].fix.storeNextSender)
        replicas[i].fix.storeNextSender = seq + 1
        toBroker(connection, .logon(seq: seq, nextTarget: permit.nextTargetSeqNum ?? replicas[i].fix.storeNextTarget))
        schedule(after: .seconds(1), .logonTimeout(i, connection: connection))
    }

    private var connectionOwner: [Int: Int] = [:]

    private mutating func linkDelay(toBroker: Bool) -> UInt64 {
        var delay = UInt64(nanos(100_000...1_500_000).nanosecondsClamped)
        if !toBroker, now < slowBrokerLinkUntil { delay += UInt64(nanos(100_000_000...400_000_000).nanosecondsClamped) }
        return delay
    }

    private mutating func toBroker(_ connection: Int, _ message: ClientMessage) {
        var busy = linkBusyUntil[connection] ?? (0, 0)
        let at = max(now + linkDelay(toBroker: true), busy.toBroker)
        busy.toBroker = at
        linkBusyUntil[connection] = busy
        schedule(at: at, .toBroker(connection: connection, message))
    }

    private mutating func toClient(_ connection: Int, _ message: BrokerMessage) {
        guard let owner = connectionOwner[connection] else { return }
        var busy = linkBusyUntil[connection] ?? (0, 0)
        let at = max(now + linkDelay(toBroker: false), busy.toClient)
        busy.toClient = at
        linkBusyUntil[connection] = busy
        schedule(at: at, .toClient(owner, connection: connection, message))
    }

    /// The client closes its end: what it wrote still arrives, then the broker sees EOF.
    private mutating func closeClient(_ i: Int, why: String) {
        guard let connection = replicas[i].fix.connection else { return }
        replicas[i].fix.connection = nil
        replicas[i].fix.state = .disconnected
        var busy = linkBusyUntil[connection] ?? (0, 0)
        let at = max(now + linkDelay(toBroker: true), busy.toBroker)
        busy.toBroker = at
        linkBusyUntil[connection] = busy
        schedule(at: at, .brokerEOF(connection: connection))
        note("\(replicas[i].id) closes connection \(connection): \(why)")
    }

    /// A reset: everything in flight on it, both ways, is lost; both ends learn.
    private mutating func breakConnection(_ connection: Int, why: String) {
        brokenConnections.insert(connection)
        if broker.live == connection { broker.live = nil }
        if let owner = connectionOwner[connection] {
            schedule(after: .microseconds(200), .clientClosed(owner, connection: connection, why: why))
        }
        note("connection \(connection) broken: \(why)")
    }

    /// The broker closes a connection (Logout, refusal, silence): the client learns after the link.
    private mutating func brokerCloses(_ connection: Int, why: String) {
        if broker.live == connection { broker.live = nil }
        toClient(connection, .logout(why))
        brokenConnections.insert(connection)
        note("broker closes connection \(connection): \(why)")
    }

    private mutating func brokerReceives(_ connection: Int, _ message: ClientMessage) {
        guard !brokenConnections.contains(connection) else { return }
        guard broker.up else {
            // The process is gone: the kernel resets the connection.
            breakConnection(connection, why: "connection reset (broker down)")
            return
        }
        if case .logon(let seq, let nextTarget) = message {
            if let live = broker.live, live != connection {
                broker.refusedLogons += 1
                brokerCloses(connection, why: "session BATON is already logged on")
                return
            }
            if seq < broker.expectedInbound {
                brokerCloses(connection, why: "MsgSeqNum too low, expecting \(broker.expectedInbound) but received \(seq)")
                return
            }
            broker.live = connection
            broker.lastHeard = now
            broker.expectedInbound = seq + 1
            let ack = broker.nextOutbound
            broker.nextOutbound += 1
            toClient(connection, .logonAccepted(seq: ack))
            // The client's ResendRequest for what it lacks: reports again, PossDupFlag=Y.
            for report in broker.replay(from: nextTarget) { toClient(connection, .report(report, possDup: true)) }
            return
        }
        guard broker.live == connection else { return }
        broker.lastHeard = now
        switch message {
        case .logon, .heartbeat:
            return
        case .order(let seq, let send, _):
            guard seq >= broker.expectedInbound else {
                brokerCloses(connection, why: "MsgSeqNum too low, expecting \(broker.expectedInbound) but received \(seq)")
                return
            }
            broker.expectedInbound = seq + 1
            broker.received += 1
            if send.possResend { broker.possResends += 1 }
            let id = send.order.clOrdID
            broker.gateway[id, default: 0] += 1
            let latency = nanos(0...Int64(options.gatewayLatencyMax.nanosecondsClamped))
            schedule(after: latency, .gatewayDone(id, send))
        case .status(let seq, let clOrdID):
            guard seq >= broker.expectedInbound else {
                brokerCloses(connection, why: "MsgSeqNum too low, expecting \(broker.expectedInbound) but received \(seq)")
                return
            }
            broker.expectedInbound = seq + 1
            let answer = broker.record(broker.status(of: clOrdID))
            toClient(connection, .report(answer, possDup: false))
        }
    }

    private mutating func brokerSends(_ report: BrokerModel.Report) {
        let numbered = broker.record(report)
        if let live = broker.live { toClient(live, .report(numbered, possDup: false)) }
    }

    private mutating func gatewayDone(_ id: String, _ send: OrderToSend) {
        guard let copies = broker.gateway[id], copies > 0 else { return }  // lost in a restart
        broker.gateway[id] = copies == 1 ? nil : copies - 1
        let times = broker.executions[id, default: 0] + 1
        broker.executions[id] = times
        note("broker executes \(id) (\(times))")
        guard times == 1 else {
            fail(.duplicateExecution, "ClOrdID \(id) reached the broker's book \(times) times")
            return
        }
        guard committedIntents.contains(id) else {
            fail(.executionWithoutIntent, "the broker executes \(id), which no replica has applied as a committed intent")
            return
        }
        let order = BrokerModel.Order(
            clOrdID: id, symbol: send.order.symbol, side: send.order.intent.side, quantity: send.order.intent.quantity,
            orderID: broker.nextID("O"), fillsLeft: Int.random(in: 1...3, using: &rng))
        broker.book[id] = order
        brokerSends(
            BrokerModel.Report(
                seq: 0, clOrdID: id, execID: broker.nextID("E"), orderID: order.orderID, execType: "0", ordStatus: "0",
                leaves: order.quantity))
        schedule(after: nanos(1_000_000...30_000_000), .fill(id))
    }

    private mutating func fill(_ id: String) {
        guard broker.up else {
            schedule(after: .milliseconds(20), .fill(id))
            return
        }
        guard var order = broker.book[id], order.leaves > 0 else { return }
        let quantity = order.fillsLeft <= 1 ? order.leaves : Int64.random(in: 1...order.leaves, using: &rng)
        order.fillsLeft -= 1
        let price = prices[order.symbol] ?? 1
        order.cumulative += quantity
        order.notional += Int128(quantity) * Int128(price)
        broker.book[id] = order
        broker.positions[order.symbol, default: 0] += quantity * order.side.sign
        brokerSends(
            BrokerModel.Report(
                seq: 0, clOrdID: id, execID: broker.nextID("E"), orderID: order.orderID, execType: "F",
                ordStatus: order.ordStatus, lastQuantity: quantity, lastPrice: price, cumulative: order.cumulative,
                averagePrice: order.averagePrice, leaves: order.leaves))
        if order.leaves > 0 { schedule(after: nanos(1_000_000...40_000_000), .fill(id)) }
    }

    private mutating func clientReceives(_ i: Int, connection: Int, _ message: BrokerMessage) {
        guard replicas[i].fix.connection == connection else { return }
        switch message {
        case .logonAccepted(let seq):
            replicas[i].fix.state = .active
            replicas[i].fix.storeNextTarget = max(replicas[i].fix.storeNextTarget, seq + 1)
            note("\(replicas[i].id) logged on (connection \(connection))")
        case .logout(let why):
            replicas[i].fix.connection = nil
            replicas[i].fix.state = .disconnected
            note("\(replicas[i].id) logged out: \(why)")
            schedule(after: .milliseconds(50), .dial(i, incarnation: replicas[i].incarnation))
        case .report(let report, let possDup):
            replicas[i].fix.storeNextTarget = max(replicas[i].fix.storeNextTarget, report.seq + 1)
            var record = ExecutionRecord(
                clOrdID: report.clOrdID, execID: report.execID, venueOrderID: report.orderID, execType: report.execType,
                ordStatus: report.ordStatus, lastQuantity: report.lastQuantity, lastPrice: report.lastPrice,
                cumulativeQuantity: report.cumulative, averagePrice: report.averagePrice, leavesQuantity: report.leaves,
                ordRejReason: report.ordRejReason, text: report.text, session: "BATON", receivedAtNanos: wallNanos(i))
            record.msgSeqNum = report.seq
            guard var core = replicas[i].core else { return }
            let directives = core.onExecutionReport(record, possDup: possDup, now: wallNanos(i))
            replicas[i].core = core
            trading(i, directives)
        }
    }

    private mutating func clientClosed(_ i: Int, connection: Int, why: String) {
        guard replicas[i].fix.connection == connection else { return }
        replicas[i].fix.connection = nil
        replicas[i].fix.state = .disconnected
        note("\(replicas[i].id) lost connection \(connection): \(why)")
        schedule(after: .milliseconds(50), .dial(i, incarnation: replicas[i].incarnation))
    }

    // MARK: - Events

    private mutating func handle(_ event: Event) {
        switch event {
        case .raftTick(let i, let incarnation):
            guard replicas[i].incarnation == incarnation, replicas[i].raft != nil, !replicas[i].paused else { return }
            raftStep(i, "tick") { $0.tick() }
            let interval = Double(settings.tickInterval.nanosecondsClamped) / replicas[i].clockRate
            schedule(at: now + UInt64(interval), .raftTick(i, incarnation: incarnation))

        case .duty(let i, let incarnation):
            guard replicas[i].incarnation == incarnation, running(i) else { return }
            duty(i)
            schedule(after: .milliseconds(10), .duty(i, incarnation: incarnation))

        case .deliver(let message):
            let i = Int(message.to.rawValue) - 1
            guard replicas[i].raft != nil, !isBlocked(message.from, message.to) else { return }
            if replicas[i].paused {
                replicas[i].inbox.append(.message(message))
                return
            }
            raftStep(i, "receive") { $0.receive(message) }

        case .persisted(let i, let incarnation, let writeID):
            guard replicas[i].incarnation == incarnation, replicas[i].raft != nil else { return }
            guard let position = replicas[i].pendingWrites.firstIndex(where: { $0.id == writeID }) else { return }
            for write in replicas[i].pendingWrites[...position] { replicas[i].durable.apply(write) }
            replicas[i].pendingWrites.removeFirst(position + 1)
            if replicas[i].paused {
                replicas[i].inbox.append(.persisted(writeID))
                return
            }
            raftStep(i, "persisted") { $0.persisted(writeID) }

        case .marketTick:
            guard feedRunning else { return }
            tickSequence += 1
            for symbol in prices.keys.sorted() {
                let step = Int64.random(in: -3...3, using: &rng) * 500
                prices[symbol] = max(10_000, prices[symbol]! + step)
                for i in replicas.indices where replicas[i].raft != nil {
                    let tick = Buffered.tick(symbol: symbol, sequence: tickSequence, price: prices[symbol]!)
                    if replicas[i].paused { replicas[i].inbox.append(tick) } else { consume(i, tick) }
                }
            }
            schedule(after: nanos(5_000_000...15_000_000), .marketTick)

        case .toBroker(let connection, let message):
            brokerReceives(connection, message)

        case .brokerEOF(let connection):
            if broker.live == connection {
                broker.live = nil
                note("broker: connection \(connection) ended")
            }

        case .toClient(let i, let connection, let message):
            guard replicas[i].raft != nil, !brokenConnections.contains(connection) || isLogout(message) else { return }
            if replicas[i].paused {
                replicas[i].inbox.append(.fromBroker(connection: connection, message))
                return
            }
            clientReceives(i, connection: connection, message)

        case .clientClosed(let i, let connection, let why):
            guard replicas[i].raft != nil else { return }
            if replicas[i].paused {
                replicas[i].inbox.append(.closed(connection: connection, why: why))
                return
            }
            clientClosed(i, connection: connection, why: why)

        case .clientHeartbeat(let i, let incarnation):
            guard replicas[i].incarnation == incarnation, replicas[i].raft != nil else { return }
            if !replicas[i].paused, replicas[i].fix.state == .active, let connection = replicas[i].fix.connection {
                toBroker(connection, .heartbeat)
            }
            schedule(after: options.heartbeat, .clientHeartbeat(i, incarnation: incarnation))

        case .dial(let i, let incarnation):
            guard replicas[i].incarnation == incarnation else { return }
            dial(i)

        case .reset(let connection, let why):
            breakConnection(connection, why: why)

        case .logonTimeout(let i, let connection):
            guard running(i), replicas[i].fix.connection == connection, replicas[i].fix.state == .loggingOn else { return }
            closeClient(i, why: "no Logon answer within 1 s")
            schedule(after: .milliseconds(50), .dial(i, incarnation: replicas[i].incarnation))

        case .gatewayDone(let id, let send):
            gatewayDone(id, send)

        case .fill(let id):
            fill(id)

        case .brokerCheck:
            if broker.up, let live = broker.live,
                now - broker.lastHeard > UInt64(options.heartbeat.nanosecondsClamped) * 5 / 2
            {
                brokerCloses(live, why: "no heartbeat: connection dropped")
            }
            schedule(after: .nanoseconds(options.heartbeat.nanosecondsClamped / 2), .brokerCheck)

        case .brokerRestart:
            guard broker.up else { return }
            note("BROKER RESTART (book and store kept; \(broker.gateway.count) orders in the gateway lost)")
            if let live = broker.live { breakConnection(live, why: "broker restarted") }
            broker.up = false
            broker.gateway = [:]
            schedule(after: nanos(50_000_000...400_000_000), .brokerUp)

        case .brokerUp:
            broker.up = true
            note("broker up")

        case .fault:
            guard !healed else { return }
            injectFault()
            schedule(after: nanos(80_000_000...400_000_000), .fault)

        case .crash(let i):
            guard replicas[i].raft != nil else { return }
            note("CRASH \(replicas[i].id)")
            if let connection = replicas[i].fix.connection {
                // The kernel closes the socket: what was written still arrives, then EOF.
                closeClient(i, why: "process killed")
                _ = connection
            }
            replicas[i].raft = nil
            replicas[i].core = nil
            replicas[i].pendingWrites = []
            replicas[i].inbox = []
            replicas[i].paused = false
            replicas[i].deferred = nil

        case .restart(let i):
            guard replicas[i].raft == nil else { return }
            note("RESTART \(replicas[i].id)")
            start(i)

        case .pause(let i):
            guard replicas[i].raft != nil, !replicas[i].paused else { return }
            note("SIGSTOP \(replicas[i].id)")
            replicas[i].paused = true

        case .resume(let i):
            resume(i)

        case .heal(let label):
            if blocked.removeValue(forKey: label) != nil { note("HEAL \(label)") }

        case .transfer:
            beginTransfer()

        case .handOverStep(let i, let term, let deadline, let markIndex):
            handOverStep(i, term: term, deadline: deadline, markIndex: markIndex)

        case .healWorld:
            note("HEAL WORLD")
            healed = true
            healTime = now
            blocked = [:]
            slowBrokerLinkUntil = 0
            if !broker.up { broker.up = true }
            for i in replicas.indices {
                if replicas[i].raft == nil { start(i) } else if replicas[i].paused { resume(i) }
            }
            schedule(after: options.feedAfterHeal, .stopFeed)

        case .stopFeed:
            feedRunning = false
            note("feed stops")
            schedule(after: .milliseconds(50), .quiescenceCheck)

        case .quiescenceCheck:
            if checkSettled() {
                finished = true
            } else {
                schedule(after: .milliseconds(50), .quiescenceCheck)
            }
        }
    }

    private func isLogout(_ message: BrokerMessage) -> Bool {
        if case .logout = message { return true }
        return false
    }

    private mutating func consume(_ i: Int, _ buffered: Buffered) {
        switch buffered {
        case .message(let message):
            raftStep(i, "receive") { $0.receive(message) }
        case .persisted(let write):
            raftStep(i, "persisted") { $0.persisted(write) }
        case .fromBroker(let connection, let message):
            clientReceives(i, connection: connection, message)
        case .closed(let connection, let why):
            clientClosed(i, connection: connection, why: why)
        case .tick(let symbol, let sequence, let price):
            guard var core = replicas[i].core else { return }
            let directives = core.onTick(
                symbol: symbol, sequence: sequence, price: price, receivedNanos: wallNanos(i), now: wallNanos(i))
            replicas[i].core = core
            trading(i, directives)
        }
    }

    private mutating func resume(_ i: Int) {
        guard replicas[i].raft != nil, replicas[i].paused else { return }
        note("SIGCONT \(replicas[i].id) with \(replicas[i].inbox.count) buffered events")
        replicas[i].paused = false
        // The stopped write finishes first: the process was stopped inside it.
        if let (send, sendingTime) = replicas[i].deferred {
            replicas[i].deferred = nil
            finishWrite(i, send, sendingTime: sendingTime)
        }
        let buffered = replicas[i].inbox
        replicas[i].inbox = []
        for event in buffered {
            consume(i, event)
            if replicas[i].raft == nil || replicas[i].paused { return }
        }
        let incarnation = replicas[i].incarnation
        schedule(after: settings.tickInterval, .raftTick(i, incarnation: incarnation))
        schedule(after: .milliseconds(1), .duty(i, incarnation: incarnation))
        if replicas[i].fix.state == .disconnected { dial(i) }
    }

    // MARK: - Peers

    private func isBlocked(_ from: NodeID, _ to: NodeID) -> Bool {
        let pair = Pair(from: from, to: to)
        return blocked.values.contains { $0.contains(pair) }
    }

    private mutating func transmit(_ message: RaftMessage) {
        guard healed || !chance(mix.peerLossRate) else { return }
        var delay = nanos(100_000...2_000_000)
        if !healed, mix.peerLossRate > 0, chance(0.2) { delay += nanos(0...30_000_000) }
        schedule(after: delay, .deliver(message))
        if !healed, mix.peerLossRate > 0, chance(0.02) { schedule(after: delay + nanos(0...20_000_000), .deliver(message)) }
    }

    // MARK: - Faults

    private func leaderIndex() -> Int? {
        var best: Int?
        for i in replicas.indices {
            guard let raft = replicas[i].raft, !replicas[i].paused, raft.role == .leader else { continue }
            if best == nil || raft.term > replicas[best!].raft!.term { best = i }
        }
        return best
    }

    private mutating func victim(preferLeader: Double) -> Int {
        if chance(preferLeader), let leader = leaderIndex() { return leader }
        return Int.random(in: 0..<replicas.count, using: &rng)
    }

    private mutating func injectFault() {
        var menu: [String] = Array(repeating: "transfer", count: mix.transferWeight)
        if mix.crashes { menu += ["crash", "crash", "crash"] }
        if mix.pauses { menu += ["pause", "pause", "pause-in-write", "pause-in-write"] }
        if mix.partitions { menu += ["isolate", "isolate", "split"] }
        if mix.brokerFaults { menu += ["broker-restart", "fix-drop", "fix-drop", "slow-link"] }
        faults += 1
        let ids = replicas.map(\.id)
        switch menu.randomElement(using: &rng)! {
        case "crash":
            let v = victim(preferLeader: 0.7)
            schedule(after: .zero, .crash(v))
            schedule(after: nanos(30_000_000...900_000_000), .restart(v))
        case "pause":
            let v = victim(preferLeader: 0.7)
            schedule(after: .zero, .pause(v))
            schedule(after: nanos(50_000_000...900_000_000), .resume(v))
        case "pause-in-write":
            if let leader = leaderIndex() { replicas[leader].fix.stopBeforeNextWrite = true }
        case "isolate":
            let v = replicas[victim(preferLeader: 0.6)].id
            let label = "isolate-\(v)-\(faults)"
            blocked[label] = Set(ids.filter { $0 != v }.flatMap { [Pair(from: $0, to: v), Pair(from: v, to: $0)] })
            note("PARTITION \(label)")
            schedule(after: nanos(200_000_000...1_200_000_000), .heal(label))
        case "split":
            let shuffled = ids.shuffled(using: &rng)
            let cut = Int.random(in: 1..<shuffled.count, using: &rng)
            let left = shuffled[..<cut]
            let right = shuffled[cut...]
            let label = "split-\(faults)"
            blocked[label] = Set(left.flatMap { l in right.flatMap { r in [Pair(from: l, to: r), Pair(from: r, to: l)] } })
            note("PARTITION \(label) \(left.map(\.description)) | \(right.map(\.description))")
            schedule(after: nanos(200_000_000...1_200_000_000), .heal(label))
        case "broker-restart":
            schedule(after: .zero, .brokerRestart)
        case "fix-drop":
            if let live = broker.live { breakConnection(live, why: "FIX connection dropped") }
        case "slow-link":
            slowBrokerLinkUntil = now + UInt64(nanos(100_000_000...500_000_000).nanosecondsClamped)
            note("broker link slow")
        default:
            schedule(after: .zero, .transfer)
        }
    }

    /// A planned transfer as `ConsensusLoop` does it: stop and drain, journal the mark and wait
    /// for it to apply, then TimeoutNow.
    private mutating func beginTransfer() {
        guard let i = leaderIndex(), let raft = replicas[i].raft, replicas[i].core?.isHandingOver == false else { return }
        note("TRANSFER from \(replicas[i].id) t\(raft.term)")
        replicas[i].core?.beginHandOver()
        schedule(after: .zero, .handOverStep(i, term: raft.term, deadline: now + 400_000_000, markIndex: nil))
    }

    private mutating func handOverStep(_ i: Int, term: Term, deadline: UInt64, markIndex: LogIndex?) {
        guard replicas[i].raft != nil else { return }
        guard running(i) else {
            schedule(after: .milliseconds(2), .handOverStep(i, term: term, deadline: deadline, markIndex: markIndex))
            return
        }
        guard let raft = replicas[i].raft, raft.role == .leader, raft.term == term, var core = replicas[i].core else {
            if var core = replicas[i].core {
                let directives = core.abandonHandOver(now: wallNanos(i))
                replicas[i].core = core
                trading(i, directives)
            }
            return
        }
        if now > deadline {
            note("TRANSFER abandoned by \(replicas[i].id): \(core.unansweredWrites)")
            let directives = core.abandonHandOver(now: wallNanos(i))
            replicas[i].core = core
            trading(i, directives)
            return
        }
        if let markIndex {
            guard core.appliedThrough >= markIndex else {
                schedule(after: .milliseconds(1), .handOverStep(i, term: term, deadline: deadline, markIndex: markIndex))
                return
            }
            raftStep(i, "transfer") { raft in (try? raft.transferLeadership(to: nil)) ?? [] }
            return
        }
        guard core.unansweredWrites.isEmpty, let mark = core.handOverMark(now: wallNanos(i)) else {
            schedule(after: .milliseconds(2), .handOverStep(i, term: term, deadline: deadline, markIndex: nil))
            return
        }
        replicas[i].core = core
        _ = raft
        guard let index = propose(i, mark) else {
            drive(i) { core, now in core.abandonHandOver(now: now) }
            return
        }
        schedule(after: .milliseconds(1), .handOverStep(i, term: term, deadline: deadline, markIndex: index))
    }

    // MARK: - Checks

    private mutating func checkSessionExclusivity() {
        var holders: [String] = []
        for replica in replicas {
            guard let raft = replica.raft, let core = replica.core, core.holdsSessionPermit else { continue }
            if raft.holdsLease { holders.append("\(replica.id) t\(raft.term)") }
        }
        if holders.count > 1 {
            fail(.sessionExclusivity, "\(holders.joined(separator: " and ")) hold the broker session with valid leases")
        }
    }

    private func settledness() -> String {
        guard let i = leaderIndex(), let core = replicas[i].core else { return "no leader" }
        return "leader \(replicas[i].id) \(core.phase.rawValue)\(core.haltReason.map { " (\($0))" } ?? ""), "
            + "open orders \(core.state.openOrders.map { "\($0.clOrdID):\($0.status.rawValue)" }), "
            + "broker gateway \(broker.gateway.count), session live \(broker.live != nil)"
    }

    /// After the feed stopped: every order settled and every replica caught up. Then the final
    /// properties: each committed intent executed exactly once, positions equal the broker's.
    private mutating func checkSettled() -> Bool {
        guard let i = leaderIndex(), let leader = replicas[i].raft, let core = replicas[i].core, core.phase == .trading,
            core.state.openOrderCount == 0, broker.gateway.isEmpty,
            broker.book.values.allSatisfy({ $0.leaves == 0 })
        else { return false }
        for replica in replicas {
            guard let raft = replica.raft, let other = replica.core, !replica.paused,
                raft.commitIndex == leader.commitIndex, other.appliedThrough >= leader.commitIndex
            else { return false }
        }
        // The journal may still be short of a report the broker sent: let it arrive.
        let journaled = Set(core.state.orders.values.filter { $0.status == .filled }.map(\.clOrdID))
        guard broker.book.keys.allSatisfy({ journaled.contains($0) }) else { return false }
        for id in committedIntents.sorted() {
            let times = broker.executions[id, default: 0]
            let status = core.state.orders[id]?.status
            if times == 1 { continue }
            if times == 0, status == .notSent || status == .rejected { continue }
            fail(.intentLost, "committed intent \(id) executed \(times) times at the broker (journal: \(status?.rawValue ?? "missing"))")
            return true
        }
        for replica in replicas {
            guard let other = replica.core else { continue }
            for symbol in prices.keys.sorted() {
                let mine = other.state.position(symbol)
                let theirs = broker.positions[symbol, default: 0]
                if mine != theirs {
                    fail(.positionsDiverge, "\(replica.id) holds \(mine) \(symbol); the broker's fills add up to \(theirs)")
                    return true
                }
            }
        }
        note("settled: \(committedIntents.count) intents, all executed once")
        return true
    }
}

extension Reconciliation.Finding {
    var short: String {
        switch self {
        case .venueKnows(let report): return "known (\(report.ordStatus), cum \(report.cumulativeQuantity))"
        case .neverReceived: return "never received"
        }
    }
}
