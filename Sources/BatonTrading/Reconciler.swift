/// What a new leader does before it trades (ARCHITECTURE §4): ask the venue about every order the
/// journal has not seen finish, journal each answer, and only then allow new orders. Pure: the
/// shell feeds it time, status reports and commits, and carries out its directives.
///
/// It never guesses. An order the venue does not answer about keeps trading HALTED; the reconciler
/// keeps asking (every `retryInterval`) and resumes by itself once every answer is journaled.
public struct Reconciler: Sendable {
    public struct Settings: Sendable, Hashable {
        /// How long to wait for one status report before asking again.
        public var answerTimeoutNanos: Int64
        /// Attempts per order before trading is reported HALTED (asking goes on).
        public var attemptsBeforeHalt: Int

        public init(answerTimeoutNanos: Int64 = 1_000_000_000, attemptsBeforeHalt: Int = 3) {
            self.answerTimeoutNanos = answerTimeoutNanos
            self.attemptsBeforeHalt = attemptsBeforeHalt
        }
    }

    public enum Phase: Sendable, Hashable {
        /// Not leader, or leader waiting for its lease, its session and its log to catch up.
        case idle
        case reconciling(outstanding: Int)
        case trading
        case halted(reason: String)
    }

    public enum Directive: Sendable, Hashable {
        /// Send OrderStatusRequest(H) for this order.
        case requestStatus(clOrdID: String, symbol: String, side: OrderSide)
        /// Propose this finding to the log.
        case journal(Reconciliation)
        case phaseChanged(Phase)
    }

    private struct Question: Sendable {
        var symbol: String
        var side: OrderSide
        var askedAt: Int64
        var attempts: Int
        var answered = false
    }

    public let settings: Settings
    public private(set) var phase: Phase = .idle
    public private(set) var term: UInt64 = 0
    private var questions: [String: Question] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The shell calls this once the node is leader of `term`, holds its lease (so any earlier
    /// leader's lease is over), its session is logged on, and every entry of earlier terms is
    /// applied to `state`.
    public mutating func begin(term: UInt64, state: TradingState, now: Int64) -> [Directive] {
        self.term = term
        questions = [:]
        var out: [Directive] = []
        for order in state.openOrders {
            questions[order.clOrdID] = Question(
                symbol: order.symbol, side: order.intent.side, askedAt: now, attempts: 1)
            out.append(.requestStatus(clOrdID: order.clOrdID, symbol: order.symbol, side: order.intent.side))
        }
        out.append(contentsOf: updatePhase())
        return out
    }

    /// Leadership lost: whatever was outstanding is the next leader's to ask.
    public mutating func stop() -> [Directive] {
        questions = [:]
        guard phase != .idle else { return [] }
        phase = .idle
        return [.phaseChanged(.idle)]
    }

    public func isAsking(about clOrdID: String) -> Bool { questions[clOrdID].map { !$0.answered } ?? false }

    /// A status report (ExecType=I) arrived for `report.clOrdID`.
    public mutating func onStatusReport(_ report: ExecutionRecord, now: Int64) -> [Directive] {
        guard var question = questions[report.clOrdID], !question.answered else { return [] }
        question.answered = true
        questions[report.clOrdID] = question
        // OrdStatus=8 with OrdRejReason=5 (unknown order) is the venue's proof it never received
        // the order; anything else is the order's real state.
        let finding: Reconciliation.Finding =
            (report.ordStatus == "8" && report.ordRejReason == 5)
            ? .neverReceived(text: report.text ?? "unknown order")
            : .venueKnows(report)
        return [.journal(Reconciliation(clOrdID: report.clOrdID, finding: finding, term: term, atNanos: now))]
    }

    /// A reconciliation of this term was committed and applied.
    public mutating func onCommitted(_ reconciliation: Reconciliation) -> [Directive] {
        guard reconciliation.term == term, questions.removeValue(forKey: reconciliation.clOrdID) != nil else {
            return []
        }
        return updatePhase()
    }

    /// A proposal of a finding failed (e.g. the log refused it): ask again.
    public mutating func onJournalFailed(clOrdID: String, now: Int64) {
        guard var question = questions[clOrdID] else { return }
        question.answered = false
        question.askedAt = now - settings.answerTimeoutNanos
        questions[clOrdID] = question
    }

    /// Re-asks unanswered questions and halts when one has gone unanswered too often.
    public mutating func onTick(now: Int64) -> [Directive] {
        guard case .reconciling = phase.normalised else { return [] }
        var out: [Directive] = []
        var stuck: [String] = []
        for (id, var question) in questions where !question.answered {
            guard now - question.askedAt >= settings.answerTimeoutNanos else { continue }
            if question.attempts >= settings.attemptsBeforeHalt { stuck.append(id) }
            question.attempts += 1
            question.askedAt = now
            questions[id] = question
            out.append(.requestStatus(clOrdID: id, symbol: question.symbol, side: question.side))
        }
        if !stuck.isEmpty {
            let shown = stuck.sorted().prefix(5).joined(separator: ", ")
            let reason =
                "reconciliation incomplete: no status from the venue for \(stuck.count) order(s) (\(shown)) after "
                + "\(settings.attemptsBeforeHalt) attempts; still asking"
            if phase != .halted(reason: reason) {
                phase = .halted(reason: reason)
                out.append(.phaseChanged(phase))
            }
        }
        return out
    }

    private mutating func updatePhase() -> [Directive] {
        let next: Phase = questions.isEmpty ? .trading : (phase.isHalted ? phase : .reconciling(outstanding: questions.count))
        guard next != phase else { return [] }
        phase = next
        return [.phaseChanged(next)]
    }
}

extension Reconciler.Phase {
    var isHalted: Bool {
        if case .halted = self { return true }
        return false
    }

    /// Halted is still reconciling (it keeps asking).
    var normalised: Reconciler.Phase { isHalted ? .reconciling(outstanding: 0) : self }

    public var name: String {
        switch self {
        case .idle: return "idle"
        case .reconciling: return "reconciling"
        case .trading: return "trading"
        case .halted: return "halted"
        }
    }
}
