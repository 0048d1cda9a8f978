public import BatonAlerting
/// Where a replica's trading stands. Only a leader leaves `follower`.
public enum TradingPhase: String, Sendable, Codable, Hashable, CaseIterable {
    case follower
    /// Leader, waiting for its lease, its session, its log, or the broker's gateway to settle.
    case waiting
    case reconciling
    case trading
    case halted
}

/// What the trading core needs to know about consensus at one instant.
public struct LeadershipInput: Sendable, Hashable {
    public var isLeader: Bool
    public var term: UInt64
    /// Time left on the leader lease; nil without one (never nil-but-leading for a follower).
    public var leaseRemainingNanos: Int64?
    /// Index of the first entry of this leader's term; once applied, every earlier entry is.
    public var termStartIndex: UInt64?

    public init(isLeader: Bool, term: UInt64, leaseRemainingNanos: Int64?, termStartIndex: UInt64?) {
        self.isLeader = isLeader
        self.term = term
        self.leaseRemainingNanos = leaseRemainingNanos
        self.termStartIndex = termStartIndex
    }

    public static let follower = LeadershipInput(isLeader: false, term: 0, leaseRemainingNanos: nil, termStartIndex: nil)
}

/// What the trading core needs to know about the broker session at one instant.
public struct SessionInput: Sendable, Hashable {
    /// Logged on.
    public var active: Bool
    /// The MsgSeqNum the next outbound message will carry.
    public var nextSenderSeqNum: Int

    public init(active: Bool, nextSenderSeqNum: Int) {
        self.active = active
        self.nextSenderSeqNum = nextSenderSeqNum
    }
}

/// An order the core wants written now. The shell checks the lease once more right before it
/// stamps and writes the message (`minimumLeaseNanos` in `term`), and reports the outcome back.
public struct OrderToSend: Sendable, Hashable {
    public var order: OrderRecord
    public var term: UInt64
    public var possResend: Bool
    public var minimumLeaseNanos: Int64
    public var account: String
}

/// Lets the session connect: start outbound at `firstSenderSeqNum`, never write above
/// `senderSeqCeiling`, and expect inbound `nextTargetSeqNum` (nil: the session store's).
public struct SessionGrant: Sendable, Hashable {
    public var firstSenderSeqNum: Int
    public var senderSeqCeiling: Int
    public var nextTargetSeqNum: Int?
}

/// What the core asks its shell to do, in order. The shell proposes commands in the order given
/// (one proposal at a time), so a directive list never reorders in the log.
public enum TradingDirective: Sendable, Hashable {
    /// Append this command to the log; answer a refusal with `onProposalFailed`.
    case propose(TradingCommand)
    /// Write this NewOrderSingle; answer with `onOrderWritten`, `onOrderNotWritten` or
    /// `onOrderLostInFlight`.
    case send(OrderToSend)
    /// Send OrderStatusRequest(H); answer with `onStatusRequestWritten`.
    case requestStatus(clOrdID: String, symbol: String, side: OrderSide)
    /// Send OrderMassStatusRequest(AF) with this MassStatusReqID (type 7: all orders).
    case requestMassStatus(requestID: String)
    case grantSession(SessionGrant)
    case extendSession(ceiling: Int)
    /// Close the broker connection at once (no Logout) and do not dial again.
    case revokeSession(reason: String)
    /// Hand leadership to a follower (drain, and TimeoutNow): this leader cannot reach the
    /// broker. Orders still unanswered do not stop it; without the drained mark the next leader
    /// reconciles them as after a failover. If the transfer fails, the core asks again later.
    case handOverLeadership(reason: String)
    /// Something worth a log line, a metric or an alert.
    case report(TradingReport)
    /// Deliver these alert events to this sink, as one message (one event unless the sink
    /// groups bursts); answer with `onAlertOutcome`.
    case deliverAlerts(ids: [UInt64], sink: String, events: [AlertEvent])
}

/// What happened, for the shell's logs, metrics and alerts. Nothing here changes state.
public enum TradingReport: Sendable, Hashable {
    case intentCommitted(OrderRecord)
    case rejectionCommitted(RiskRejection)
    case resolvedByOperator(OrderRecord, OrderResolution)
    case settledByReport(clOrdID: String)
    case filled(clOrdID: String, symbol: String, quantity: Int64, price: Int64)
    case duplicateExecution(execID: String)
    case anomaly(String)
    case pausedChanged(Bool)
    /// A journaled deployment put these strategies on their symbols (`ignored`: symbols this
    /// replica does not trade, left as they were).
    case strategiesDeployed([DeployedStrategy], ignored: [String])
    case shadow(agreed: Bool)
    case signal(symbol: String, direction: TargetDirection)
    case signalIgnored(symbol: String, direction: TargetDirection, why: String)
    case standingSignal(symbol: String, direction: TargetDirection)
    case reportOnFollower(clOrdID: String, execID: String)
    case reportForUnknownOrder(clOrdID: String)
    case reportRefused(clOrdID: String, reason: String)
    case statusRequestRefused(clOrdID: String, answer: String)
    case messageRejected(answer: String)
    case reconciledFinding(Reconciliation)
    case leading(term: UInt64)
    case leadershipLost(reason: String)
    case leaseLapsed
    case sessionDropped
    case reconciling(openOrders: Int, settledForNanos: Int64)
    case trading(term: UInt64)
    case halted(reason: String)
    case sessionTaken(SessionGrant)
    case sessionExtended(ceiling: Int)
    case sessionReleased(reason: String)
    case sessionRefused(reason: String)
    case orderHeld(clOrdID: String, why: String)
    case orderNotWritten(clOrdID: String, reason: String)
    case orderUnknown(clOrdID: String, reason: String)
    case handOverMarked(drained: Bool)
    /// The broker's first answer to an order this leader committed, `latencyNanos` after the
    /// intent committed: the order acknowledgement SLI (an `orderUnknown` is its bad event).
    case orderAcknowledged(clOrdID: String, latencyNanos: Int64)
    /// The alert outbox changed: an incident raised or resolved, a delivery's outcome journaled.
    case alert(AlertOutbox.Effect)
    /// The canary started, stepped, was checked, paused, promoted or aborted.
    case canary(CanaryState.Effect)
}

/// Deliberately broken cores, so the trading simulator shows that its checker catches each.
public enum TradingDefect: String, Sendable, Hashable, CaseIterable {
    /// Takes the broker session over without waiting: reconciles the moment it is logged on (no
    /// settle for orders still in the broker's gateway) and writes with any lease left.
    case noLeaseWait = "no-lease-wait"
    /// A new leader re-sends every open order of earlier terms (PossResend=Y) without asking.
    case resendWithoutReconciling = "resend-without-reconciling"
    /// An order whose ack is late is taken as lost and written again, instead of unknown.
    case trustsLateAck = "trusts-late-ack"
    /// A planned hand-over journals its mark without stopping sends or waiting for answers.
    case transferWithoutDraining = "transfer-without-draining"
}

/// The trading replica as a pure value (ARCHITECTURE §4): the replicated `TradingState`, the
/// strategies on the feed, and the leader's duty — phases, the send rules, the lease margin,
/// ack timeouts, reconciliation, re-send decisions and standing signals. In the shape of
/// `RaftNode`: it takes events with the time and returns directives; it never reads a clock,
/// draws a random number or starts work of its own, so the trading simulator can drive it and
/// every replica computes the same decisions from the same input.
public struct TradingCore: Sendable {
    public struct Settings: Sendable, Hashable {
        public var node: UInt64
        public var senderCompID: String
        public var targetCompID: String
        public var account: String
        public var clOrdIDPrefix: String
        /// One strategy per symbol (the registry in `StrategySpec`).
        public var strategies: [StrategySpec]
        public var strategyVersion: String
        public var limits: RiskLimits
        public var reconciler: Reconciler.Settings
        /// The longest the broker takes from receiving an order to knowing it (its order gateway)
        /// and the oldest SendingTime it accepts. A send needs this much lease plus 20 ms; a new
        /// leader waits this long after logging on before it asks about anything.
        public var maxOrderAgeNanos: Int64
        public var ackTimeoutNanos: Int64
        public var sequenceBlock: Int
        /// After a refused write, how long before trying again rather than spinning.
        public var sendRetryNanos: Int64 = 100_000_000
        /// A sequence reservation that has not applied in this long is asked for again.
        public var reservationRetryNanos: Int64 = 2_000_000_000
        public var defect: TradingDefect?
        /// Names of the alert sinks configured (`alerts.*`); none: no incident is raised.
        public var alertSinks: [String] = []
        public var alertDispatch = AlertDispatcher.Settings()
        /// Per sink, the least severity it takes (`alerts.<sink>.min_severity`); a sink not
        /// named takes everything.
        public var alertMinimumLevel: [String: AlertEvent.Level] = [:]
        public var incidentRules = IncidentRules.Settings()
        /// Names the cluster in alerts ("baton-4242").
        public var clusterName = "baton"
        /// A leader whose broker session has been down this long while it holds the lease hands
        /// leadership over (`venue.hand_over_after_ms`); each further hand-over of this replica
        /// waits twice as long (up to 16×) until it logs on again, so a broker down for the
        /// whole cluster costs a few leader changes, not a carousel. nil: never.
        public var brokerHandOverAfterNanos: Int64?

        public init(
            node: UInt64, senderCompID: String, targetCompID: String, account: String, clOrdIDPrefix: String,
            strategies: [StrategySpec], strategyVersion: String, limits: RiskLimits,
            reconciler: Reconciler.Settings, maxOrderAgeNanos: Int64, ackTimeoutNanos: Int64, sequenceBlock: Int
        ) {
            self.node = node
            self.senderCompID = senderCompID
            self.targetCompID = targetCompID
            self.account = account
            self.clOrdIDPrefix = clOrdIDPrefix
            self.strategies = strategies
            self.strategyVersion = strategyVersion
            self.limits = limits
            self.reconciler = reconciler
            self.maxOrderAgeNanos = maxOrderAgeNanos
            self.ackTimeoutNanos = ackTimeoutNanos
            self.sequenceBlock = sequenceBlock
        }

        /// "SenderCompID->TargetCompID": the cluster's one broker session.
        public var sessionName: String { "\(senderCompID)->\(targetCompID)" }
        public var minimumLeaseNanos: Int64 { defect == .noLeaseWait ? 0 : maxOrderAgeNanos + 20_000_000 }
    }

    private enum HandOverStage: Sendable, Hashable {
        case none
        /// Sends stopped; waiting for answers to what was written.
        case draining
        /// The drained mark is proposed or committed: nothing more is written in this term.
        case marked
        /// The transfer was abandoned after the mark: sends resume once the abandon applies.
        case abandoning
    }

    public let settings: Settings
    public private(set) var state = TradingState()
    private var strategies: [String: any Strategy] = [:]
    /// The canary's candidate per symbol, beside that symbol's baseline, while one runs.
    private var candidates: [String: any Strategy] = [:]
    /// A canary check this leader proposed that has not applied yet (it decides each once).
    private var canaryCheckPending = false
    /// The candidate's highest mark-to-market this leader saw (the journal keeps the checks').
    private var canaryPeakSeen: Int64 = .min
    private var reconciler: Reconciler
    /// Highest log index applied here, trading command or not.
    public private(set) var appliedThrough: UInt64 = 0
    public private(set) var phase: TradingPhase = .follower
    public private(set) var haltReason: String?
    private var isLeader = false
    private var ledTerm: UInt64?
    /// When the lease ends (in the caller's clock), from the last duty; sends check it.
    private var leaseEndsAt: Int64?
    /// Symbols with a decision proposed by this leader and not yet applied.
    private var inFlightSymbols: Set<String> = []
    /// Of those, the ones whose decision is an order intent: the rate limit counts them, as
    /// two symbols' intents can be committing at once and each alone would fit the window.
    private var inFlightIntents: Set<String> = []
    /// Orders this leader wrote (or is writing) in its term, and when: never twice.
    private var sentLocally: [String: Int64] = [:]
    /// Orders whose intent committed while this replica led, and when, until the broker's first
    /// answer (or their fate is unknown): what the acknowledgement SLI measures.
    private var awaitingFirstAnswer: [String: Int64] = [:]
    /// The leader's alert deliveries, and the incidents it proposed to raise or resolve that
    /// are not applied yet (so it decides each once).
    private var alertDispatcher: AlertDispatcher
    private var proposedAlerts: Set<String> = []
    private let incidentRules: IncidentRules
    private let alertRoutes: AlertRoutes
    /// What the shell last saw beyond the core (replicas, feed, disk, SLO burns).
    private var observed = IncidentRules.External()
    /// When this replica began leading its term (ns), reconciling, and losing its session.
    private var leadingSince: Int64 = 0
    private var reconcilingSince: Int64?
    private var sessionDownSince: Int64?
    /// When each order became unknown (ms, from its journaled OrderUnknown), every replica.
    private var unknownSinceMillis: [String: Int64] = [:]
    /// Per risk limit, its last journaled rejection (ms, reason), every replica.
    private var riskLimitHits: [String: (atMillis: Int64, reason: String)] = [:]
    /// A bound for orders that are never written (paused, lease lost …): the oldest are dropped.
    static let awaitingFirstAnswerLimit = 100_000
    private var lastSendFailure: Int64 = .min / 2
    private var proposedExecIDs: Set<String> = []
    private var proposedReconciliations: Set<String> = []
    /// OrderUnknowns proposed and not yet applied: reconciliation waits for them, so that an
    /// OrderUnknown can never land after the reconciliation that answers it.
    private var pendingUnknowns: Set<String> = []
    /// Defect variants only: open orders re-sent without a reconciliation proving them lost.
    private var resendable: Set<String> = []
    private var shadowDirection: [String: TargetDirection] = [:]
    public private(set) var shadowAgreements: UInt64 = 0
    public private(set) var shadowDivergences: UInt64 = 0
    /// The last tick sequence this replica's strategies had seen when it last began trading as
    /// leader: the ticks after it are the ones its journaled decisions come from. baton-replay
    /// leads from the same point (`--lead-after-sequence`) to replay what this leader did.
    public private(set) var tradingFromSequence: UInt64?
    private var sessionActive = false
    /// While leading with the lease: since when the broker session has been down.
    private var brokerDownSince: Int64?
    /// Hand-overs this replica asked for since its session was last up (the backoff).
    private var brokerHandOvers = 0
    private var sessionActiveSince: Int64 = 0
    /// The last tick per symbol (sequence, price), for standing signals at takeover.
    private var lastTicks: [String: (sequence: UInt64, price: Int64)] = [:]
    private var handOver: HandOverStage = .none
    /// The previous leader's drained hand-over, read once this leader has applied its term start.
    private var trustedHandOver: HandOver?
    private var handOverChecked = false
    /// MsgSeqNum of each OrderStatusRequest written → its ClOrdID, to match a Reject's RefSeqNum.
    private var statusRequestSeqNums: [Int: String] = [:]
    private var massStatusSeqNums: [Int: String] = [:]
    private var reservationPending: (term: UInt64, since: Int64)?
    /// The ceiling this core granted the session; nil while it holds no permit.
    private var grantedCeiling: Int?
    private var traceCounter: UInt64 = 0
    /// The abandon of a marked hand-over was refused by the log: propose it again.
    private var abandonRefused = false

    public init(settings: Settings) {
        self.settings = settings
        reconciler = Reconciler(settings: settings.reconciler)
        alertDispatcher = AlertDispatcher(settings: settings.alertDispatch)
        incidentRules = IncidentRules(settings: settings.incidentRules, clusterName: settings.clusterName)
        alertRoutes = AlertRoutes(
            minimum: Dictionary(
                uniqueKeysWithValues: settings.alertSinks.map { ($0, settings.alertMinimumLevel[$0] ?? .info) }))
        for spec in settings.strategies {
            strategies[spec.symbol] = spec.make(version: settings.strategyVersion)
        }
    }

    public var symbols: [String] { settings.strategies.map(\.symbol) }
    /// The last trade price this replica saw per symbol.
    public var lastTradePrices: [String: Int64] { lastTicks.mapValues(\.price) }
    /// True while a planned hand-over holds sends.
    public var isHandingOver: Bool { handOver != .none }
    public var holdsSessionPermit: Bool { grantedCeiling != nil }

    /// Orders this leader has written (or is writing) that the journal has no answer for, and
    /// every order whose fate is unknown (a write lost with its connection, a silent one): a
    /// hand-over cannot vouch for either.
    public var unansweredWrites: [String] {
        guard settings.defect != .transferWithoutDraining else { return [] }
        var ids = Set(
            sentLocally.keys.filter { id in
                guard let order = state.orders[id] else { return false }
                return order.status == .intent || order.status == .sent
            })
        ids.formUnion(pendingUnknowns)
        for order in state.openOrders where order.status == .unknown { ids.insert(order.clOrdID) }
        return ids.sorted()
    }

    // MARK: - The journal (every replica)

    /// Rebuilds the state from applied commands at start, before anything else runs.
    public mutating func restore(_ command: TradingCommand, term: UInt64, index: UInt64) {
        noteForAlerts(command)
        for effect in state.apply(command, term: term, index: index) {
            // What runs on each symbol is journaled too: a restarted replica runs what the log says.
            switch effect {
            case .strategiesDeployed(let deployed): _ = switchStrategies(deployed)
            case .canary(let change): switchCanary(change)
            default: break
            }
        }
        appliedThrough = max(appliedThrough, index)
    }

    /// A committed entry that is not a trading command.
    public mutating func applied(through index: UInt64) {
        appliedThrough = max(appliedThrough, index)
    }

    /// A committed trading command, applied in log order on every replica.
    public mutating func apply(_ command: TradingCommand, term: UInt64, index: UInt64, now: Int64)
        -> [TradingDirective]
    {
        appliedThrough = max(appliedThrough, index)
        if case .orderUnknown(let unknown) = command { pendingUnknowns.remove(unknown.clOrdID) }
        noteForAlerts(command)
        var out: [TradingDirective] = []
        var toSend = false
        for effect in state.apply(command, term: term, index: index) {
            toSend = handle(effect, command: command, now: now, out: &out) || toSend
        }
        if toSend, phase == .trading { sendCommittedIntents(now: now, out: &out) }
        return out
    }

    private mutating func handle(
        _ effect: TradingState.Effect, command: TradingCommand, now: Int64, out: inout [TradingDirective]
    )
        -> Bool
    {
        switch effect {
        case .orderCommitted(let order):
            inFlightSymbols.remove(order.symbol)
            inFlightIntents.remove(order.symbol)
            compareWithShadow(order.intent.signal, out: &out)
            if isLeader {
                if awaitingFirstAnswer.count >= Self.awaitingFirstAnswerLimit {
                    awaitingFirstAnswer = awaitingFirstAnswer.filter { now - $0.value < settings.ackTimeoutNanos }
                }
                awaitingFirstAnswer[order.clOrdID] = now
            }
            out.append(.report(.intentCommitted(order)))
            return true
        case .rejectionCommitted(let rejection):
            inFlightSymbols.remove(rejection.signal.symbol)
            compareWithShadow(rejection.signal, out: &out)
            out.append(.report(.rejectionCommitted(rejection)))
            return false
        case .orderChanged(let order):
            if case .resolved(let resolution) = command {
                out.append(.report(.resolvedByOperator(order, resolution)))
                carryOut(reconciler.onResolved(clOrdID: resolution.clOrdID), now: now, out: &out)
                return false
            }
            if case .reconciled(let reconciliation) = command {
                proposedReconciliations.remove(reconciliation.clOrdID)
                carryOut(reconciler.onCommitted(reconciliation), now: now, out: &out)
                return order.status == .intent
            }
            if order.status.isTerminal, reconciler.isAsking(about: order.clOrdID) {
                out.append(.report(.settledByReport(clOrdID: order.clOrdID)))
                carryOut(reconciler.onResolved(clOrdID: order.clOrdID), now: now, out: &out)
            }
            // Two sleeves share one order at a time on a canary's symbol: the one that waited
            // goes once this order ends (and a rolled-back candidate flattens the same way).
            if order.status.isTerminal, state.candidateBooks[order.symbol] != nil {
                actOnStandingSignals([order.symbol], now: now, out: &out)
            }
            return false
        case .filled(let clOrdID, let symbol, let quantity, let price):
            out.append(.report(.filled(clOrdID: clOrdID, symbol: symbol, quantity: quantity, price: price)))
            return false
        case .duplicateExecution(let execID):
            out.append(.report(.duplicateExecution(execID: execID)))
            return false
        case .anomaly(let text):
            out.append(.report(.anomaly(text)))
            return false
        case .pausedChanged(let paused):
            out.append(.report(.pausedChanged(paused)))
            return false
        case .strategiesDeployed(let deployed):
            // Every replica switches here, at the same log position: a fresh strategy (no
            // regime until its own rule decides), so followers keep deciding what the leader does.
            out.append(.report(.strategiesDeployed(deployed, ignored: switchStrategies(deployed))))
            return false
        case .canary(let change):
            if case .checked = change { canaryCheckPending = false }
            if case .ignored = change { canaryCheckPending = false }
            switchCanary(change)
            out.append(.report(.canary(change)))
            switch change {
            case .started(let canary), .promoted(let canary), .aborted(let canary):
                if case .started = change { canaryPeakSeen = .min }
                actOnStandingSignals(canary.plan.symbols, now: now, out: &out)
            case .stepChanged:
                actOnStandingSignals(state.canary?.plan.symbols ?? [], now: now, out: &out)
            case .checked, .paused, .ignored:
                break
            }
            return false
        case .sequenceReserved(let reservation, let first, let through):
            onSequenceReserved(reservation, first: first, through: through, out: &out)
            return false
        case .alert(let effect):
            switch effect {
            case .raised(let entry), .resolvedIncident(let entry): proposedAlerts.remove(entry.identity)
            case .ignored(let identity, _): proposedAlerts.remove(identity)
            case .delivered(let id, let sink), .retryLater(let id, let sink, _, _), .gaveUp(let id, let sink, _):
                alertDispatcher.settled(id: id, sink: sink)
            }
            out.append(.report(.alert(effect)))
            return false
        case .handOver(let mark):
            guard mark.node == settings.node, mark.term == ledTerm, isLeader else { return false }
            if !mark.drained, handOver == .abandoning {
                handOver = .none
                return true
            }
            return false
        }
    }

    private mutating func compareWithShadow(_ signal: SignalOrigin, out: inout [TradingDirective]) {
        guard !isLeader, let mine = shadowDirection[Self.shadowKey(signal)] else { return }
        if mine == signal.direction { shadowAgreements += 1 } else { shadowDivergences += 1 }
        out.append(.report(.shadow(agreed: mine == signal.direction)))
    }

    // MARK: - The market feed (every replica)

    public mutating func onTick(symbol: String, sequence: UInt64, price: Int64, receivedNanos: Int64, now: Int64)
        -> [TradingDirective]
    {
        guard var strategy = strategies[symbol] else { return [] }
        let signal = strategy.onTick(sequence: sequence, price: price, receivedNanos: receivedNanos)
        strategies[symbol] = strategy
        lastTicks[symbol] = (sequence, price)
        var candidateSignal: StrategySignal?
        if var candidate = candidates[symbol] {
            candidateSignal = candidate.onTick(sequence: sequence, price: price, receivedNanos: receivedNanos)
            candidates[symbol] = candidate
        }
        guard signal != nil || candidateSignal != nil else { return [] }
        var out: [TradingDirective] = []
        if let signal { decideShare(signal, sleeve: candidates[symbol] == nil ? nil : .baseline, now: now, out: &out) }
        if let candidateSignal { decideShare(candidateSignal, sleeve: .candidate, now: now, out: &out) }
        return out
    }

    /// A sleeve's signal at its share of the quantity: the baseline keeps what the candidate's
    /// step does not take. A sleeve whose share is nothing decides nothing (at 100% the baseline
    /// would only journal "already flat").
    private mutating func decideShare(_ signal: StrategySignal, sleeve: Sleeve?, now: Int64, out: inout [TradingDirective]) {
        guard let sleeve else { return decide(signal, now: now, out: &out) }
        let percent = state.canary?.candidatePercent ?? 0
        let share = sleeve == .candidate ? percent : 100 - percent
        guard share > 0 else {
            out.append(.report(.signalIgnored(symbol: signal.origin.symbol, direction: signal.origin.direction, why: "the \(sleeve.rawValue) sleeve has no share at this step")))
            return
        }
        var scaled = signal
        scaled.targetQuantity = CanaryMeter.share(signal.targetQuantity, percent: share)
        scaled.origin.sleeve = sleeve
        decide(scaled, now: now, out: &out)
    }

    static func shadowKey(_ origin: SignalOrigin) -> String {
        origin.sleeve == .candidate ? origin.symbol + "/candidate" : origin.symbol
    }

    /// Every replica runs what the journal says: a deployment's fresh strategies (no regime until
    /// its own rule decides), so followers keep deciding what the leader does. Returns the
    /// symbols this replica does not trade, left as they were.
    private mutating func switchStrategies(_ deployed: [DeployedStrategy]) -> [String] {
        var ignored: [String] = []
        for strategy in deployed {
            guard strategies[strategy.spec.symbol] != nil else {
                ignored.append(strategy.spec.symbol)
                continue
            }
            strategies[strategy.spec.symbol] = strategy.spec.make(version: strategy.version)
        }
        return ignored
    }

    /// A canary's candidates start beside the baselines; a promoted one becomes the baseline,
    /// warm as it is; an aborted one stops deciding (its sleeve is flattened or handed over).
    private mutating func switchCanary(_ change: CanaryState.Effect) {
        switch change {
        case .started(let canary):
            for spec in canary.plan.candidate where strategies[spec.symbol] != nil {
                candidates[spec.symbol] = spec.make(version: canary.plan.version)
            }
        case .promoted(let canary):
            for symbol in canary.plan.symbols {
                if let candidate = candidates.removeValue(forKey: symbol) { strategies[symbol] = candidate }
            }
        case .aborted(let canary):
            for symbol in canary.plan.symbols { candidates[symbol] = nil }
        case .stepChanged, .checked, .paused, .ignored:
            break
        }
    }

    private mutating func decide(_ signal: StrategySignal, now: Int64, out: inout [TradingDirective]) {
        let symbol = signal.origin.symbol
        let direction = signal.origin.direction
        shadowDirection[Self.shadowKey(signal.origin)] = direction
        out.append(.report(.signal(symbol: symbol, direction: direction)))
        guard isLeader else { return }
        let why: String? =
            handOver != .none && settings.defect != .transferWithoutDraining
            ? "handing leadership over"
            : phase != .trading ? "trading is \(phase.rawValue)"
            // The pause is journaled once, with who and why; a rejection per signal while it
            // lasts would only grow the journal.
            : state.paused ? "trading is paused" : nil
        if let why {
            out.append(.report(.signalIgnored(symbol: symbol, direction: direction, why: why)))
            return
        }
        let command: TradingCommand
        switch RiskGate.evaluate(
            signal, state: state, limits: settings.limits, now: now, inFlight: inFlightSymbols,
            intentsInFlight: inFlightIntents.count)
        {
        case .approved(let side, let quantity, let checks):
            traceCounter += 1
            command = .orderIntent(
                OrderIntent(
                    signal: signal.origin, side: side, kind: signal.style.kind, quantity: quantity,
                    limitPrice: signal.style.limitPrice(side: side, price: signal.origin.tickPrice),
                    timeInForce: signal.style.kind == .limit ? signal.style.timeInForce : .day, riskDecision: "approved: \(checks)",
                    traceID: "n\(settings.node)-t\(ledTerm ?? 0)-\(traceCounter)",
                    clOrdIDPrefix: settings.clOrdIDPrefix, decidedAtNanos: now))
        case .rejected(let reason):
            // A signal for a symbol whose decision is still committing is not news; everything
            // else is journaled with its reason.
            if inFlightSymbols.contains(symbol) { return }
            command = .riskRejection(RiskRejection(signal: signal.origin, reason: reason, decidedAtNanos: now))
        }
        inFlightSymbols.insert(symbol)
        if case .orderIntent = command { inFlightIntents.insert(symbol) }
        out.append(.propose(command))
    }

    // MARK: - The broker's messages

    /// An ExecutionReport that passed the boundary checks (its MsgSeqNum set). `possDup`: the
    /// broker re-sent it (PossDupFlag=Y) from its store. `massStatus`: its MassStatusReqID(584)
    /// and whether it is the last of that answer (LastRptRequested(912)=Y, or TotNumReports 0).
    public mutating func onExecutionReport(
        _ record: ExecutionRecord, possDup: Bool = false, massStatus: (requestID: String, last: Bool)? = nil, now: Int64
    ) -> [TradingDirective] {
        guard isLeader else {
            // The leader journals reports; one here belongs to an order this replica sent while it
            // led. The current leader learns it through the broker's resend or by reconciling.
            return [.report(.reportOnFollower(clOrdID: record.clOrdID, execID: record.execID))]
        }
        var out: [TradingDirective] = []
        if record.execType == "I" {
            // A status answer replayed from the broker's store answered someone's earlier
            // question, perhaps before the order arrived: it proves nothing about it now.
            guard !possDup else { return [] }
            if reconciler.isAsking(about: record.clOrdID) {
                carryOut(reconciler.onStatusReport(record, now: now), now: now, out: &out)
            }
            if let massStatus, massStatus.last {
                carryOut(reconciler.onMassStatusComplete(requestID: massStatus.requestID, now: now), now: now, out: &out)
            }
            return out
        }
        guard state.orders[record.clOrdID] != nil else {
            return [.report(.reportForUnknownOrder(clOrdID: record.clOrdID))]
        }
        guard !state.executionIDs.contains(record.execID), !proposedExecIDs.contains(record.execID) else { return [] }
        proposedExecIDs.insert(record.execID)
        if !possDup, let committed = awaitingFirstAnswer.removeValue(forKey: record.clOrdID) {
            out.append(.report(.orderAcknowledged(clOrdID: record.clOrdID, latencyNanos: max(0, now - committed))))
        }
        out.append(.propose(.execution(record)))
        return out
    }

    /// An ExecutionReport refused at the boundary (a value journal units cannot hold). Never
    /// journaled; a status answer refused this way halts reconciliation naming the value.
    public mutating func onReportRefused(clOrdID: String, isStatusReport: Bool, reason: String, now: Int64)
        -> [TradingDirective]
    {
        var out: [TradingDirective] = [.report(.reportRefused(clOrdID: clOrdID, reason: reason))]
        if isStatusReport, reconciler.isAsking(about: clOrdID) {
            carryOut(
                reconciler.onStatusRequestRefused(
                    clOrdID: clOrdID, answer: "a status report we cannot represent (\(reason))", now: now),
                now: now, out: &out)
        }
        return out
    }

    /// A session Reject(3) or BusinessMessageReject(j) of one of our messages. `answer` names it
    /// in the broker's words; `businessRejectRefID` is tag 379.
    public mutating func onRejected(
        refSeqNum: Int?, refMsgType: String, businessRejectRefID: String?, answer: String, now: Int64
    ) -> [TradingDirective] {
        if let seq = refSeqNum, let requestID = massStatusSeqNums.removeValue(forKey: seq) {
            var out: [TradingDirective] = [.report(.messageRejected(answer: "OrderMassStatusRequest \(requestID): \(answer)"))]
            carryOut(reconciler.onMassStatusComplete(requestID: requestID, now: now), now: now, out: &out)
            return out
        }
        let asked =
            refSeqNum.flatMap { statusRequestSeqNums[$0] }
            ?? (refMsgType == "H" ? businessRejectRefID.flatMap { reconciler.isAsking(about: $0) ? $0 : nil } : nil)
        guard let clOrdID = asked else { return [.report(.messageRejected(answer: answer))] }
        var out: [TradingDirective] = [.report(.statusRequestRefused(clOrdID: clOrdID, answer: answer))]
        carryOut(reconciler.onStatusRequestRefused(clOrdID: clOrdID, answer: answer, now: now), now: now, out: &out)
        return out
    }

    /// The OrderMassStatusRequest went out as `msgSeqNum`: a Reject of it (RefSeqNum) ends the
    /// wait for its answer at once, and every question is asked alone.
    public mutating func onMassStatusRequestWritten(requestID: String, msgSeqNum: Int) {
        massStatusSeqNums[msgSeqNum] = requestID
    }

    public mutating func onStatusRequestWritten(clOrdID: String, msgSeqNum: Int) {
        if statusRequestSeqNums.count > 10_000 { statusRequestSeqNums = [:] }
        statusRequestSeqNums[msgSeqNum] = clOrdID
    }

    // MARK: - Outcomes of the shell's writes and proposals

    public mutating func onOrderWritten(
        _ send: OrderToSend, msgSeqNum: Int, leaseRemainingNanos: Int64, now: Int64
    ) -> [TradingDirective] {
        sentLocally[send.order.clOrdID] = now
        return [
            .propose(
                .orderSent(
                    OrderSent(
                        clOrdID: send.order.clOrdID, session: settings.senderCompID, msgSeqNum: msgSeqNum,
                        sentAtNanos: now, leaseRemainingNanos: leaseRemainingNanos, possResend: send.possResend)))
        ]
    }

    /// Not written (refused before any byte left): it may be sent later, by this leader or,
    /// after reconciliation, the next.
    public mutating func onOrderNotWritten(clOrdID: String, reason: String, now: Int64) -> [TradingDirective] {
        sentLocally[clOrdID] = nil
        lastSendFailure = now
        return [.report(.orderNotWritten(clOrdID: clOrdID, reason: reason))]
    }

    /// The connection broke while writing: the bytes may have left. Only the broker can say.
    public mutating func onOrderLostInFlight(clOrdID: String, reason: String, now: Int64) -> [TradingDirective] {
        if settings.defect == .trustsLateAck {
            sentLocally[clOrdID] = nil
            resendable.insert(clOrdID)
            return []
        }
        // As for a silent order: stop trading, and reconcile once the OrderUnknown is in the log
        // (pendingUnknowns). Its local send mark goes, so that the reconciliation's "never
        // received" (the only way it goes out again) is acted on at once.
        var out: [TradingDirective] = []
        carryOut(reconciler.stop(), now: now, out: &out)
        setPhase(.waiting)
        sentLocally[clOrdID] = nil
        awaitingFirstAnswer[clOrdID] = nil
        pendingUnknowns.insert(clOrdID)
        out.append(.report(.orderUnknown(clOrdID: clOrdID, reason: reason)))
        out.append(.propose(.orderUnknown(OrderUnknown(clOrdID: clOrdID, reason: reason, atNanos: now))))
        return out
    }

    /// The log refused a proposal (typically: no longer leader).
    public mutating func onProposalFailed(_ command: TradingCommand, now: Int64) {
        switch command {
        case .orderIntent(let intent):
            inFlightSymbols.remove(intent.signal.symbol)
            inFlightIntents.remove(intent.signal.symbol)
        case .riskRejection(let rejection): inFlightSymbols.remove(rejection.signal.symbol)
        case .execution(let record): proposedExecIDs.remove(record.execID)
        case .reconciled(let reconciliation):
            proposedReconciliations.remove(reconciliation.clOrdID)
            reconciler.onJournalFailed(clOrdID: reconciliation.clOrdID, now: now)
        case .orderUnknown(let unknown): pendingUnknowns.remove(unknown.clOrdID)
        case .sequenceReserved: reservationPending = nil
        case .handOver(let mark): if !mark.drained, handOver == .abandoning { abandonRefused = true }
        case .alert(.attempted(let id, let sink, _)): alertDispatcher.settled(id: id, sink: sink)
        case .alert(.raise(let identity, _, _)), .alert(.resolve(let identity, _, _)): proposedAlerts.remove(identity)
        case .canary(.check): canaryCheckPending = false
        case .orderSent, .tradingPaused, .resolved, .audit, .strategyDeployed, .canary: break
        }
    }

    // MARK: - The leader's duty

    /// Runs every few milliseconds with fresh views of consensus and the session: notices
    /// leadership and session changes, holds the session, drives reconciliation, sends committed
    /// intents and makes silent orders unknown.
    public mutating func onDuty(now: Int64, leadership view: LeadershipInput, session: SessionInput)
        -> [TradingDirective]
    {
        var out = tradingDuty(now: now, leadership: view, session: session)
        if isLeader {
            canaryDuty(now: now, out: &out)
            alertDuty(now: now, out: &out)
        }
        return out
    }

    /// A leader that holds the lease but cannot reach the broker is the one failure its peers
    /// cannot see (they still hear it): nobody trades until it reaches the broker again. After
    /// `brokerHandOverAfterNanos` without a session it asks for a planned hand-over, and asks
    /// again at twice the wait each time (a refused or failed transfer, or a broker down for
    /// every replica), until it logs on.
    private mutating func brokerHandOverDuty(sessionActive active: Bool, now: Int64, out: inout [TradingDirective]) {
        guard let after = settings.brokerHandOverAfterNanos, after > 0 else { return }
        guard !active else {
            brokerDownSince = nil
            return
        }
        let since = brokerDownSince ?? now
        brokerDownSince = since
        let wait = after << Int64(min(brokerHandOvers, 4))
        guard now - since >= wait, handOver == .none else { return }
        brokerHandOvers += 1
        brokerDownSince = now
        out.append(
            .handOverLeadership(
                reason: "the broker session has been down for \((now - since) / 1_000_000) ms while this replica leads"))
    }

    private mutating func tradingDuty(now: Int64, leadership view: LeadershipInput, session: SessionInput)
        -> [TradingDirective]
    {
        var out: [TradingDirective] = []
        let dropped = sessionActive && !session.active
        if session.active && !sessionActive { sessionActiveSince = now }
        sessionActive = session.active
        isLeader = view.isLeader
        leaseEndsAt = view.leaseRemainingNanos.map { now &+ $0 }

        if session.active { brokerHandOvers = 0 }
        guard view.isLeader else {
            brokerDownSince = nil
            revokeSession(reason: "this replica is no longer the leader", out: &out)
            if ledTerm != nil { loseLeadership(reason: "no longer leader", now: now, out: &out) }
            phase = .follower
            haltReason = nil
            return out
        }
        if ledTerm != view.term {
            if ledTerm != nil { loseLeadership(reason: "new term", now: now, out: &out) }
            revokeSession(reason: "a new term began", out: &out)
            ledTerm = view.term
            leadingSince = now
            handOverChecked = false
            trustedHandOver = nil
            out.append(.report(.leading(term: view.term)))
        }
        guard view.leaseRemainingNanos != nil || settings.defect == .noLeaseWait else {
            // The lease is what keeps another leader from existing: without it this replica lets
            // go of the broker session at once, so a successor can log on.
            revokeSession(reason: "the leader lease lapsed", out: &out)
            if phase != .waiting && phase != .follower {
                out.append(.report(.leaseLapsed))
                carryOut(reconciler.stop(), now: now, out: &out)
            }
            setPhase(.waiting)
            return out
        }
        if handOver == .abandoning, abandonRefused, let term = ledTerm {
            abandonRefused = false
            out.append(.propose(.handOver(HandOver(term: term, node: settings.node, drained: false, atNanos: now))))
        }
        let termStartApplied = view.termStartIndex.map { appliedThrough >= $0 } ?? false
        if termStartApplied {
            if !handOverChecked {
                // Read before this leader journals anything of its own term (which clears it).
                handOverChecked = true
                trustedHandOver = state.handOver.flatMap { $0.term < view.term ? $0 : nil }
            }
            holdSession(term: view.term, nextSenderSeqNum: session.nextSenderSeqNum, now: now, out: &out)
            brokerHandOverDuty(sessionActive: session.active, now: now, out: &out)
        }
        if dropped, phase != .waiting {
            // Reports may have been lost with the connection: ask again about everything open.
            out.append(.report(.sessionDropped))
            carryOut(reconciler.stop(), now: now, out: &out)
            setPhase(.waiting)
        }
        switch phase {
        case .follower, .waiting:
            setPhase(.waiting)
            guard session.active, termStartApplied, pendingUnknowns.isEmpty else { return out }
            // Orders written on an earlier connection (this leader's or its predecessor's) may
            // still be in the broker's gateway, where its status service answers "unknown": ask
            // only once they must have reached its book. A drained hand-over needs no wait.
            let settle = trustedHandOver != nil || settings.defect == .noLeaseWait ? 0 : settings.maxOrderAgeNanos
            guard now - sessionActiveSince >= settle else { return out }
            // The mark vouches for the previous leader's writes, once: after this leader's own
            // connection drops, its own writes may be in the gateway (the simulator found it).
            trustedHandOver = nil
            if settings.defect == .resendWithoutReconciling {
                for order in state.openOrders where sentLocally[order.clOrdID] == nil && !pendingUnknowns.contains(order.clOrdID) { resendable.insert(order.clOrdID) }
                setPhase(.trading)
                out.append(.report(.trading(term: view.term)))
                sendCommittedIntents(now: now, out: &out)
                return out
            }
            setPhase(.reconciling)
            out.append(.report(.reconciling(openOrders: state.openOrderCount, settledForNanos: now - sessionActiveSince)))
            carryOut(reconciler.begin(term: view.term, state: state, now: now), now: now, out: &out)
        case .reconciling, .halted:
            carryOut(reconciler.onTick(now: now), now: now, out: &out)
        case .trading:
            sendCommittedIntents(now: now, out: &out)
            checkAcknowledgements(now: now, out: &out)
        }
        return out
    }

    /// The leader's claim on the broker session: a block of outbound MsgSeqNums reserved through
    /// the log (granted to the session when applied), extended when half used.
    private mutating func holdSession(term: UInt64, nextSenderSeqNum next: Int, now: Int64, out: inout [TradingDirective]) {
        if let pending = reservationPending {
            // A proposal lost to a leadership change never applies in this term; ask again.
            guard pending.term != term || now - pending.since > settings.reservationRetryNanos else { return }
            reservationPending = nil
        }
        if let session = state.sequenceSession, session != settings.sessionName {
            let reason =
                "this replica is configured for broker session \(settings.sessionName), but the cluster's journal "
                + "reserved sequence numbers for \(session): every replica must use the same CompIDs"
            if haltReason != reason {
                out.append(.report(.sessionRefused(reason: reason)))
                setPhase(.halted)
                haltReason = reason
            }
            return
        }
        let block = settings.sequenceBlock
        if let ceiling = grantedCeiling {
            guard ceiling - next < block / 2 else { return }
        }
        reservationPending = (term, now)
        out.append(
            .propose(
                .sequenceReserved(
                    SequenceReservation(
                        session: settings.sessionName, count: block, term: term, node: settings.node, atNanos: now))))
    }

    /// A reservation applied: this leader's own (of its term) becomes its permit.
    private mutating func onSequenceReserved(
        _ reservation: SequenceReservation, first: Int, through: Int, out: inout [TradingDirective]
    ) {
        guard reservation.node == settings.node, reservation.term == ledTerm, isLeader,
            reservation.session == settings.sessionName
        else { return }
        reservationPending = nil
        if grantedCeiling != nil {
            grantedCeiling = through
            out.append(.extendSession(ceiling: through))
            out.append(.report(.sessionExtended(ceiling: through)))
            return
        }
        let inbound = state.lastInboundSeqNum
        let grant = SessionGrant(
            firstSenderSeqNum: first, senderSeqCeiling: through, nextTargetSeqNum: inbound > 0 ? inbound + 1 : nil)
        grantedCeiling = through
        out.append(.grantSession(grant))
        out.append(.report(.sessionTaken(grant)))
    }

    private mutating func revokeSession(reason: String, out: inout [TradingDirective]) {
        reservationPending = nil
        guard grantedCeiling != nil else { return }
        grantedCeiling = nil
        out.append(.revokeSession(reason: reason))
        out.append(.report(.sessionReleased(reason: reason)))
    }

    private mutating func loseLeadership(reason: String, now: Int64, out: inout [TradingDirective]) {
        carryOut(reconciler.stop(), now: now, out: &out)
        ledTerm = nil
        handOver = .none
        abandonRefused = false
        inFlightSymbols = []
        inFlightIntents = []
        sentLocally = [:]
        awaitingFirstAnswer = [:]
        alertDispatcher.reset()
        proposedAlerts = []
        canaryCheckPending = false
        proposedExecIDs = []
        proposedReconciliations = []
        pendingUnknowns = []
        resendable = []
        statusRequestSeqNums = [:]
        massStatusSeqNums = [:]
        out.append(.report(.leadershipLost(reason: reason)))
    }

    private mutating func setPhase(_ next: TradingPhase) {
        if next == .trading && phase != .trading { tradingFromSequence = lastTicks.values.map(\.sequence).max() ?? 0 }
        phase = next
        if next != .halted { haltReason = nil }
    }

    private mutating func carryOut(_ directives: [Reconciler.Directive], now: Int64, out: inout [TradingDirective]) {
        for directive in directives {
            switch directive {
            case .requestStatus(let clOrdID, let symbol, let side):
                out.append(.requestStatus(clOrdID: clOrdID, symbol: symbol, side: side))
            case .requestMassStatus(let requestID):
                out.append(.requestMassStatus(requestID: requestID))
            case .journal(let reconciliation):
                guard !proposedReconciliations.contains(reconciliation.clOrdID) else { continue }
                proposedReconciliations.insert(reconciliation.clOrdID)
                out.append(.report(.reconciledFinding(reconciliation)))
                out.append(.propose(.reconciled(reconciliation)))
            case .phaseChanged(let next):
                switch next {
                case .idle: break
                case .reconciling: setPhase(.reconciling)
                case .trading:
                    setPhase(.trading)
                    out.append(.report(.trading(term: reconciler.term)))
                    actOnStandingSignals(now: now, out: &out)
                case .halted(let reason):
                    setPhase(.halted)
                    haltReason = reason
                    out.append(.report(.halted(reason: reason)))
                }
            }
        }
    }

    /// On becoming able to trade: the warm (shadow) strategies may already want a position the
    /// journal does not have, e.g. the old leader saw the crossing and died before its intent.
    /// Each such standing signal goes through the risk gate like any other. On a canary's
    /// symbols each sleeve is judged on its own part at its share, and a rolled-back candidate
    /// that still holds a position is taken back to flat.
    private mutating func actOnStandingSignals(now: Int64, out: inout [TradingDirective]) {
        actOnStandingSignals(symbols, now: now, out: &out)
    }

    private mutating func actOnStandingSignals(_ symbols: [String], now: Int64, out: inout [TradingDirective]) {
        guard isLeader, phase == .trading else { return }
        for symbol in symbols {
            guard let strategy = strategies[symbol], let last = lastTicks[symbol] else { continue }
            // An order in flight settles the position first.
            guard state.openOrder(for: symbol) == nil, !inFlightSymbols.contains(symbol) else { continue }
            let book = state.candidateBooks[symbol]
            let canary = state.canary.flatMap { $0.isActive && $0.plan.symbols.contains(symbol) ? $0 : nil }
            var wanted: [StrategySignal] = []
            if let canary, let candidate = candidates[symbol], let regime = candidate.regime {
                let target = CanaryMeter.share(candidate.target(regime), percent: canary.candidatePercent)
                if target != (book?.quantity ?? 0) {
                    var signal = candidate.signal(regime, sequence: last.sequence, price: last.price, receivedNanos: 0)
                    signal.targetQuantity = target
                    signal.origin.sleeve = .candidate
                    wanted.append(signal)
                }
            } else if canary == nil, let book, book.quantity != 0, let ended = state.canary,
                let spec = ended.plan.candidate.first(where: { $0.symbol == symbol })
            {
                // The rollback: the aborted candidate's sleeve goes back to flat, in its name.
                let origin = SignalOrigin(
                    strategy: spec.name, strategyVersion: ended.plan.version, symbol: symbol, direction: .flat,
                    tickSequence: last.sequence, tickPrice: last.price, tickReceivedNanos: 0, sleeve: .candidate)
                wanted.append(StrategySignal(origin: origin, targetQuantity: 0))
            }
            if let regime = strategy.regime {
                let share = 100 - (canary?.candidatePercent ?? 0)
                let target = CanaryMeter.share(strategy.target(regime), percent: share)
                let sleeve: Sleeve? = canary == nil ? nil : .baseline
                if share > 0, target != state.sleevePosition(symbol, sleeve) {
                    var signal = strategy.signal(regime, sequence: last.sequence, price: last.price, receivedNanos: 0)
                    signal.targetQuantity = target
                    signal.origin.sleeve = sleeve
                    wanted.append(signal)
                }
            }
            // One order per symbol at a time: the first goes now, the other once it ends.
            guard let first = wanted.first else { continue }
            out.append(.report(.standingSignal(symbol: symbol, direction: first.origin.direction)))
            decide(first, now: now, out: &out)
        }
    }

    /// The leader's part of a canary: a check every interval of the running step, and at once
    /// when the candidate's drawdown passes the kill limit (paused or not).
    private mutating func canaryDuty(now: Int64, out: inout [TradingDirective]) {
        guard isLeader, phase == .trading, !canaryCheckPending, let canary = state.canary, canary.isActive else { return }
        var marks: [String: Int64] = [:]
        for symbol in canary.plan.symbols { marks[symbol] = lastTicks[symbol]?.price }
        var baselineQuantities: [String: Int64] = [:]
        for symbol in canary.plan.symbols { baselineQuantities[symbol] = strategies[symbol]?.quantity }
        let due = canary.status == .running && now - canary.windowStartNanos >= canary.plan.intervalNanos
        // Every duty only marks the candidate's book (a few symbols); the window's orders are
        // walked only when a check goes out.
        var candidateMTM: Int64 = 0
        for symbol in canary.plan.symbols {
            if let mark = marks[symbol] { candidateMTM &+= (state.candidateBooks[symbol] ?? SleeveBook()).markToMarket(at: mark) }
        }
        canaryPeakSeen = max(canaryPeakSeen, candidateMTM)
        let peak = max(canary.peakMarkToMarket, canaryPeakSeen)
        let killing = peak - candidateMTM > canary.plan.killDrawdown
        guard due || killing else { return }
        var check = CanaryMeter.measure(
            state, canary: canary, baselineQuantities: baselineQuantities, to: now, marks: marks, kill: killing)
        check.peakMarkToMarket = max(check.peakMarkToMarket, peak)
        canaryCheckPending = true
        out.append(.propose(.canary(.check(check))))
    }

    /// Every committed intent this leader may send: intents of its own term, and orders its
    /// reconciliation proved the broker never received (again, with PossResend=Y).
    private mutating func sendCommittedIntents(now: Int64, out: inout [TradingDirective]) {
        guard phase == .trading, let term = ledTerm else { return }
        guard handOver == .none || settings.defect == .transferWithoutDraining else { return }
        guard now - lastSendFailure > settings.sendRetryNanos else { return }
        for order in state.openOrders where sentLocally[order.clOrdID] == nil && !pendingUnknowns.contains(order.clOrdID) {
            let mine = order.status == .intent && (order.term == term || order.reconciledInTerm == term)
            let forced = resendable.contains(order.clOrdID) && [.intent, .sent, .unknown].contains(order.status)
            guard mine || forced else { continue }
            let minimum = settings.minimumLeaseNanos
            if settings.defect != .noLeaseWait {
                guard let end = leaseEndsAt, end - now >= minimum else {
                    out.append(.report(.orderHeld(clOrdID: order.clOrdID, why: "no valid lease")))
                    return
                }
            }
            sentLocally[order.clOrdID] = now
            resendable.remove(order.clOrdID)
            let possResend = !order.sends.isEmpty || order.reconciledInTerm != nil || forced
            out.append(
                .send(
                    OrderToSend(
                        order: order, term: term, possResend: possResend, minimumLeaseNanos: minimum,
                        account: settings.account)))
        }
    }

    /// An order written by this leader that the broker has not answered within the timeout is
    /// unknown, and the whole open book is reconciled again once the unknowns are in the log.
    private mutating func checkAcknowledgements(now: Int64, out: inout [TradingDirective]) {
        var silent: [String] = []
        for (id, sentAt) in sentLocally {
            guard let order = state.orders[id], order.status == .sent || order.status == .intent else {
                sentLocally[id] = nil  // answered: the broker has spoken
                continue
            }
            if now - sentAt > settings.ackTimeoutNanos { silent.append(id) }
        }
        guard !silent.isEmpty else { return }
        if settings.defect == .trustsLateAck {
            for id in silent {
                sentLocally[id] = nil
                resendable.insert(id)
            }
            return
        }
        carryOut(reconciler.stop(), now: now, out: &out)
        setPhase(.waiting)
        for id in silent.sorted() {
            sentLocally[id] = nil
            awaitingFirstAnswer[id] = nil
            pendingUnknowns.insert(id)
            let reason = "no answer within \(settings.ackTimeoutNanos / 1_000_000) ms"
            out.append(.report(.orderUnknown(clOrdID: id, reason: reason)))
            out.append(.propose(.orderUnknown(OrderUnknown(clOrdID: id, reason: reason, atNanos: now))))
        }
    }

    // MARK: - Alerts

    /// What the shell sees beyond the core, for the incidents it judges (IncidentRules).
    public mutating func observe(_ external: IncidentRules.External) { observed = external }

    /// The journal's part of the alert conditions, kept on every replica so that a new leader
    /// knows how long an order has been unknown and when a limit was last hit.
    private mutating func noteForAlerts(_ command: TradingCommand) {
        switch command {
        case .orderUnknown(let unknown):
            if unknownSinceMillis[unknown.clOrdID] == nil { unknownSinceMillis[unknown.clOrdID] = unknown.atNanos / 1_000_000 }
        case .riskRejection(let rejection):
            if let limit = RiskGate.limit(of: rejection.reason) {
                riskLimitHits[limit] = (rejection.decidedAtNanos / 1_000_000, String(rejection.reason.prefix(200)))
            }
        default:
            break
        }
    }

    /// The last canary if it was aborted, named "<strategy>@<version>", for its incident.
    private var canaryAbortedObservation: (name: String, atMillis: Int64, reason: String)? {
        guard let canary = state.canary, canary.status == .aborted, let end = canary.decisions.last else { return nil }
        return ("\(canary.plan.strategyName)@\(canary.plan.version)", end.atNanos / 1_000_000, canary.endReason ?? "")
    }

    /// The conditions this leader raises incidents for (IncidentRules), level-triggered against
    /// the replicated outbox: an incident open in the journal is not raised again by a new
    /// leader, and one whose condition cleared is resolved by whoever leads then.
    private mutating func alertDuty(now: Int64, out: inout [TradingDirective]) {
        guard !settings.alertSinks.isEmpty, let term = ledTerm else { return }
        reconcilingSince = phase == .reconciling ? (reconcilingSince ?? now) : nil
        sessionDownSince = sessionActive ? nil : (sessionDownSince ?? now)
        if unknownSinceMillis.count > 1_000 {
            unknownSinceMillis = unknownSinceMillis.filter { state.orders[$0.key]?.status == .unknown }
        }
        let nowMillis = now / 1_000_000
        let unknown = state.openOrders.filter { $0.status == .unknown }.map { order in
            (
                clOrdID: order.clOrdID, sinceMillis: unknownSinceMillis[order.clOrdID] ?? leadingSince / 1_000_000,
                reason: order.unknownReason ?? ""
            )
        }
        let observations = IncidentRules.Observations(
            nowMillis: nowMillis, node: settings.node, term: term, leadingSinceMillis: leadingSince / 1_000_000,
            haltReason: phase == .halted ? (haltReason ?? "no reason given") : nil, trading: phase == .trading,
            reconcilingSinceMillis: reconcilingSince.map { $0 / 1_000_000 },
            sessionDownSinceMillis: sessionDownSince.map { $0 / 1_000_000 }, unknownOrders: unknown,
            riskLimitHits: riskLimitHits, canaryAborted: canaryAbortedObservation, external: observed)
        let commands = incidentRules.decisions(
            wanted: incidentRules.evaluate(observations), outbox: state.alerts, routes: alertRoutes,
            busy: proposedAlerts, nowMillis: nowMillis, judgedHealth: incidentRules.judgedHealth(observations))
        for command in commands {
            switch command {
            case .raise(let identity, _, _), .resolve(let identity, _, _): proposedAlerts.insert(identity)
            case .attempted: break
            }
            out.append(.propose(.alert(command)))
        }
        for case .deliver(let ids, let sink, let events) in alertDispatcher.due(state.alerts, nowMillis: nowMillis) {
            out.append(.deliverAlerts(ids: ids, sink: sink, events: events))
        }
    }

    /// The sink answered (or did not) the delivery `.deliverAlerts` asked for: the one answer
    /// is each of its events' outcome.
    public mutating func onAlertOutcome(ids: [UInt64], sink: String, outcome: DeliveryOutcome, now: Int64) -> [TradingDirective] {
        var out: [TradingDirective] = []
        for id in ids {
            let attempts = state.alerts.entries[id]?.deliveries[sink]?.attempts ?? 0
            for case .propose(let command) in alertDispatcher.onOutcome(
                id: id, sink: sink, outcome: outcome, attempts: attempts, nowMillis: now / 1_000_000)
            {
                out.append(.propose(.alert(command)))
            }
        }
        return out
    }

    // MARK: - Planned hand-over

    /// Stops new decisions and sends. The shell then waits until `unansweredWrites` is empty,
    /// proposes `handOverMark` and waits for it to commit, and only then lets the lease go and
    /// TimeoutNow leave.
    public mutating func beginHandOver() {
        guard isLeader else { return }
        handOver = settings.defect == .transferWithoutDraining ? .marked : .draining
    }

    /// The mark to journal (and wait for) before TimeoutNow. It tells the successor it may skip
    /// the settle only when this leader was trading: it had logged on after every earlier
    /// holder's connection was gone and waited out their gateway, and it drained its own writes.
    /// A leader that never got that far cannot vouch for an ex-leader's late write (the trading
    /// simulator found one: a zombie's order landing while the successor reconciled at once).
    public mutating func handOverMark(now: Int64) -> TradingCommand? {
        guard isLeader, let term = ledTerm, handOver != .none else { return nil }
        handOver = .marked
        let vouches = phase == .trading && unansweredWrites.isEmpty
        return .handOver(HandOver(term: term, node: settings.node, drained: vouches, atNanos: now))
    }

    /// The transfer ended and this node still leads. After a mark, sends resume only once the
    /// abandon is in the log, so the next leader never trusts a mark this leader wrote past.
    public mutating func abandonHandOver(now: Int64) -> [TradingDirective] {
        switch handOver {
        case .none, .abandoning: return []
        case .draining:
            handOver = .none
            return []
        case .marked:
            guard isLeader, let term = ledTerm else {
                handOver = .none
                return []
            }
            handOver = .abandoning
            return [
                .report(.handOverMarked(drained: false)),
                .propose(.handOver(HandOver(term: term, node: settings.node, drained: false, atNanos: now))),
            ]
        }
    }
}
