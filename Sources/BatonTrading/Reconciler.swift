/// What a new leader does before it trades (ARCHITECTURE §4): ask the venue about every order the
/// journal has not seen finish, journal each answer, and only then allow new orders. Pure: the
/// shell feeds it time, status reports and commits, and carries out its directives.
///
/// It never guesses. An order the venue does not answer about keeps trading HALTED; the reconciler
/// keeps asking (every `answerTimeoutNanos`) and resumes by itself once every answer is journaled.
/// Only the standard "unknown order" answer (ExecType=I, OrdStatus=8, OrdRejReason=5) proves the
/// venue never received an order, and only for an order the journal has no fill and no broker
/// OrderID for. Anything else that is not the order's status (a BusinessMessageReject or session
/// Reject of the request, a rejected status without OrderID or reason 5, a denial that
/// contradicts the journal) keeps the order unknown and trading HALTED with a reason that names
/// the broker's answer, until an answer proves something or an operator resolves the order.
public struct Reconciler: Sendable {
    public struct Settings: Sendable, Hashable {
        /// How long to wait for one status report before asking again.
        public var answerTimeoutNanos: Int64
        /// Attempts per order before trading is reported HALTED (asking goes on).
        public var attemptsBeforeHalt: Int

        /// Ask about every open order with one OrderMassStatusRequest(AF); what its answer leaves
        /// out is then asked about one by one (absence proves nothing).
        public var massStatus: Bool

        public init(answerTimeoutNanos: Int64 = 1_000_000_000, attemptsBeforeHalt: Int = 3, massStatus: Bool = false) {
            self.answerTimeoutNanos = answerTimeoutNanos
            self.attemptsBeforeHalt = attemptsBeforeHalt
            self.massStatus = massStatus
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
        /// Send OrderMassStatusRequest(AF) for every order of the session (MassStatusReqType 7).
        case requestMassStatus(requestID: String)
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
        /// What the journal knew when the question was asked: a denial cannot undo it.
        var journaledCumulativeQuantity: Int64 = 0
        var journaledVenueOrderID: String?
        /// The broker's last answer that proved nothing, in words; it names the halt.
        var unusableAnswer: String?
        /// The broker denies an order the journal has proof of: asking again cannot settle it.
        var contradiction: String?
    }

    public let settings: Settings
    public private(set) var phase: Phase = .idle
    public private(set) var term: UInt64 = 0
    private var questions: [String: Question] = [:]
    /// The OrderMassStatusRequest this reconciliation is waiting on, if any.
    public private(set) var pendingMassStatus: String?
    private var massStatusCount = 0

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The shell calls this once the node is leader of `term`, holds its lease (so any earlier
    /// leader's lease is over), its session is logged on, and every entry of earlier terms is
    /// applied to `state`.
    public mutating func begin(term: UInt64, state: TradingState, now: Int64) -> [Directive] {
        self.term = term
        questions = [:]
        pendingMassStatus = nil
        var out: [Directive] = []
        for order in state.openOrders {
            questions[order.clOrdID] = Question(
                symbol: order.symbol, side: order.intent.side, askedAt: now, attempts: 1,
                journaledCumulativeQuantity: order.cumulativeQuantity,
                journaledVenueOrderID: order.venueOrderID.flatMap { Self.isOrderID($0) ? $0 : nil })
            if !settings.massStatus {
                out.append(.requestStatus(clOrdID: order.clOrdID, symbol: order.symbol, side: order.intent.side))
            }
        }
        if settings.massStatus, !questions.isEmpty {
            massStatusCount += 1
            let id = "MS-\(term)-\(massStatusCount)"
            pendingMassStatus = id
            out.append(.requestMassStatus(requestID: id))
        }
        out.append(contentsOf: updatePhase())
        return out
    }

    /// The last report of an OrderMassStatusRequest (LastRptRequested=Y, or the "no orders"
    /// answer) arrived. An order it did not mention is not proven lost: it is asked about alone,
    /// and only the standard unknown answer to that proves it.
    public mutating func onMassStatusComplete(requestID: String, now: Int64) -> [Directive] {
        guard requestID == pendingMassStatus else { return [] }
        pendingMassStatus = nil
        var out: [Directive] = []
        for id in questions.keys.sorted() {
            guard var question = questions[id], !question.answered, question.contradiction == nil else { continue }
            question.askedAt = now
            questions[id] = question
            out.append(.requestStatus(clOrdID: id, symbol: question.symbol, side: question.side))
        }
        return out
    }

    /// Leadership lost: whatever was outstanding is the next leader's to ask.
    public mutating func stop() -> [Directive] {
        pendingMassStatus = nil
        questions = [:]
        guard phase != .idle else { return [] }
        phase = .idle
        return [.phaseChanged(.idle)]
    }

    public func isAsking(about clOrdID: String) -> Bool { questions[clOrdID].map { !$0.answered } ?? false }

    /// A status report (ExecType=I) arrived for `report.clOrdID`.
    public mutating func onStatusReport(_ report: ExecutionRecord, now: Int64) -> [Directive] {
        guard var question = questions[report.clOrdID], !question.answered, question.contradiction == nil else {
            return []
        }
        let text = report.text.map { " \"\($0.prefix(120))\"" } ?? ""
        if report.ordStatus == "8" && report.ordRejReason == 5 {
            // The standard "unknown order" answer: proof of never received, unless the journal
            // already holds proof of the opposite.
            if question.journaledCumulativeQuantity > 0 || question.journaledVenueOrderID != nil {
                let proof =
                    question.journaledCumulativeQuantity > 0
                    ? "journaled fills (CumQty \(question.journaledCumulativeQuantity))"
                    : "the broker's OrderID \(question.journaledVenueOrderID ?? "")"
                question.contradiction =
                    "the broker answered \(report.clOrdID) unknown (OrdRejReason=5\(text)) but the journal has \(proof); "
                    + "not re-sent: check with the broker and resolve it (batonctl orders resolve)"
                questions[report.clOrdID] = question
                return haltNamingAnswers()
            }
            question.answered = true
            question.unusableAnswer = nil
            questions[report.clOrdID] = question
            return [
                .journal(
                    Reconciliation(
                        clOrdID: report.clOrdID, finding: .neverReceived(text: report.text ?? "unknown order"), term: term,
                        atNanos: now))
            ]
        }
        if report.ordStatus == "8" && !Self.isOrderID(report.venueOrderID) {
            // "Rejected" with no OrderID and not the unknown-order reason: some brokers say
            // "unknown" this way, others mean an order they refused. It proves neither.
            question.unusableAnswer =
                "status of \(report.clOrdID) answered OrdStatus=8 OrdRejReason=\(report.ordRejReason.map(String.init) ?? "none") "
                + "without an OrderID\(text): neither a status nor proof it never arrived"
            question.askedAt = now
            questions[report.clOrdID] = question
            return haltNamingAnswers()
        }
        question.answered = true
        question.unusableAnswer = nil
        questions[report.clOrdID] = question
        return [.journal(Reconciliation(clOrdID: report.clOrdID, finding: .venueKnows(report), term: term, atNanos: now))]
    }

    /// The broker refused the OrderStatusRequest itself (BusinessMessageReject(j), session
    /// Reject(3), or anything else that is not a status report): the order stays unknown and
    /// trading HALTED with the broker's answer as the reason. Asking goes on at the usual pace.
    public mutating func onStatusRequestRefused(clOrdID: String, answer: String, now: Int64) -> [Directive] {
        guard var question = questions[clOrdID], !question.answered, question.contradiction == nil else { return [] }
        question.unusableAnswer = "OrderStatusRequest for \(clOrdID) answered with \(answer)"
        question.askedAt = now
        questions[clOrdID] = question
        return haltNamingAnswers()
    }

    /// The journal settled an order: an operator's resolution was committed, or a report made it
    /// terminal (after a takeover the broker re-sends what the journal lacks). It is no longer a
    /// question.
    public mutating func onResolved(clOrdID: String) -> [Directive] {
        guard questions.removeValue(forKey: clOrdID) != nil else { return [] }
        if questions.values.allSatisfy({ $0.unusableAnswer == nil && $0.contradiction == nil }), phase.isHalted {
            phase = .reconciling(outstanding: questions.count)
        }
        return updatePhase()
    }

    /// "NONE" and the empty string are what brokers put in OrderID(37) when they have none.
    static func isOrderID(_ id: String) -> Bool { !id.isEmpty && id != "NONE" }

    private mutating func haltNamingAnswers() -> [Directive] {
        let named = questions.keys.sorted().compactMap { id in questions[id].flatMap { $0.contradiction ?? $0.unusableAnswer } }
        guard let first = named.first else { return [] }
        let reason = "reconciliation cannot finish: \(first)" + (named.count > 1 ? " (and \(named.count - 1) more)" : "")
        guard phase != .halted(reason: reason) else { return [] }
        phase = .halted(reason: reason)
        return [.phaseChanged(phase)]
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
        for (id, var question) in questions where !question.answered && question.contradiction == nil {
            guard now - question.askedAt >= settings.answerTimeoutNanos else { continue }
            if question.attempts >= settings.attemptsBeforeHalt { stuck.append(id) }
            question.attempts += 1
            question.askedAt = now
            questions[id] = question
            out.append(.requestStatus(clOrdID: id, symbol: question.symbol, side: question.side))
        }
        if questions.values.contains(where: { $0.unusableAnswer != nil || $0.contradiction != nil }) {
            // The broker's own words name the halt better than a count of attempts.
            out.append(contentsOf: haltNamingAnswers())
        } else if !stuck.isEmpty {
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
