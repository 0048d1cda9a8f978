public import BatonAlerting
import Foundation

/// Buy or sell, as the strategy and the journal speak of it (FIX's Side(54) is mapped at the edge).
public enum OrderSide: String, Codable, Sendable, Hashable {
    case buy, sell

    public var sign: Int64 { self == .buy ? 1 : -1 }
}

public enum OrderKind: String, Codable, Sendable, Hashable {
    case market, limit
}

public enum OrderTimeInForce: String, Codable, Sendable, Hashable {
    case day, goodTillCancel = "gtc", immediateOrCancel = "ioc"
}

/// Where the strategy wants a symbol's position to be.
public enum TargetDirection: String, Codable, Sendable, Hashable {
    case long, short, flat
}

/// The signal that led to a decision: which tick, and when this replica received it. Journaled
/// with the decision so followers can compare their shadow decision with the leader's, and so the
/// leader can measure tick-to-order latency.
public struct SignalOrigin: Codable, Sendable, Hashable {
    public var strategy: String
    public var strategyVersion: String
    public var symbol: String
    public var direction: TargetDirection
    /// The tick that crossed: its source sequence and price.
    public var tickSequence: UInt64
    public var tickPrice: Int64
    /// Wall clock (ns since the epoch) when the deciding replica received the tick.
    public var tickReceivedNanos: Int64
    /// The candidate's sleeve while a canary runs on the symbol; nil (absent in the journal):
    /// the baseline, which is every intent outside a canary.
    public var sleeve: Sleeve?

    public init(
        strategy: String, strategyVersion: String, symbol: String, direction: TargetDirection, tickSequence: UInt64,
        tickPrice: Int64, tickReceivedNanos: Int64, sleeve: Sleeve? = nil
    ) {
        self.sleeve = sleeve
        self.strategy = strategy
        self.strategyVersion = strategyVersion
        self.symbol = symbol
        self.direction = direction
        self.tickSequence = tickSequence
        self.tickPrice = tickPrice
        self.tickReceivedNanos = tickReceivedNanos
    }
}

/// Step 1 of an order's life (ARCHITECTURE §4): what to send, decided and approved. Its ClOrdID is
/// not in here: it comes from the log position the intent is committed at.
public struct OrderIntent: Codable, Sendable, Hashable {
    public var signal: SignalOrigin
    public var side: OrderSide
    public var kind: OrderKind
    public var quantity: Int64
    /// Price units (1/10_000); only for limit orders.
    public var limitPrice: Int64?
    public var timeInForce: OrderTimeInForce
    /// The risk gate's checks, in words, as they were when the leader approved.
    public var riskDecision: String
    public var traceID: String
    /// ClOrdID prefix in force when decided, so every replica derives the same id forever.
    public var clOrdIDPrefix: String
    /// Leader's wall clock at decision (ns); rate limits count intents by this time, so every
    /// replica's counters agree.
    public var decidedAtNanos: Int64

    public init(
        signal: SignalOrigin, side: OrderSide, kind: OrderKind, quantity: Int64, limitPrice: Int64?,
        timeInForce: OrderTimeInForce, riskDecision: String, traceID: String, clOrdIDPrefix: String,
        decidedAtNanos: Int64
    ) {
        self.signal = signal
        self.side = side
        self.kind = kind
        self.quantity = quantity
        self.limitPrice = limitPrice
        self.timeInForce = timeInForce
        self.riskDecision = riskDecision
        self.traceID = traceID
        self.clOrdIDPrefix = clOrdIDPrefix
        self.decidedAtNanos = decidedAtNanos
    }
}

/// A signal the risk gate refused, journaled with why.
public struct RiskRejection: Codable, Sendable, Hashable {
    public var signal: SignalOrigin
    public var reason: String
    public var decidedAtNanos: Int64

    public init(signal: SignalOrigin, reason: String, decidedAtNanos: Int64) {
        self.signal = signal
        self.reason = reason
        self.decidedAtNanos = decidedAtNanos
    }
}

/// Step 2: the leader wrote the NewOrderSingle to its session.
public struct OrderSent: Codable, Sendable, Hashable {
    public var clOrdID: String
    public var session: String
    public var msgSeqNum: Int
    public var sentAtNanos: Int64
    /// How long the sender's lease still had to run when it wrote the order.
    public var leaseRemainingNanos: Int64
    public var possResend: Bool

    public init(
        clOrdID: String, session: String, msgSeqNum: Int, sentAtNanos: Int64, leaseRemainingNanos: Int64,
        possResend: Bool
    ) {
        self.clOrdID = clOrdID
        self.session = session
        self.msgSeqNum = msgSeqNum
        self.sentAtNanos = sentAtNanos
        self.leaseRemainingNanos = leaseRemainingNanos
        self.possResend = possResend
    }
}

/// The order states of ARCHITECTURE §4, plus the two that exist before the venue has spoken.
public enum OrderStatus: String, Codable, Sendable, Hashable {
    /// Committed, not yet written to the venue.
    case intent
    /// Written to the venue; no answer yet (PendingNew).
    case sent = "pending-new"
    case new
    case partiallyFilled = "partially-filled"
    case filled
    case canceled
    case rejected
    case expired
    /// Sent (or maybe sent) and then the answer was lost: a timeout, a disconnect, a garbled
    /// report. Never "failed": only the venue can say what happened, and reconciliation asks.
    case unknown
    /// Closed without reaching the venue, with a journaled reason: an operator, having checked
    /// with the broker, resolved an unknown order as never received.
    case notSent = "not-sent"

    public var isTerminal: Bool {
        switch self {
        case .filled, .canceled, .rejected, .expired, .notSent: return true
        case .intent, .sent, .new, .partiallyFilled, .unknown: return false
        }
    }
}

/// Step 3: an ExecutionReport as journaled (the venue's words, in journal units).
public struct ExecutionRecord: Codable, Sendable, Hashable {
    public var clOrdID: String
    public var execID: String
    public var venueOrderID: String
    /// FIX ExecType(150) and OrdStatus(39) as received.
    public var execType: String
    public var ordStatus: String
    public var lastQuantity: Int64
    public var lastPrice: Int64
    public var cumulativeQuantity: Int64
    public var averagePrice: Int64
    public var leavesQuantity: Int64
    public var ordRejReason: Int?
    public var text: String?
    public var session: String
    public var receivedAtNanos: Int64
    /// The report's MsgSeqNum(34) on the broker session: a new leader resumes the inbound
    /// sequence after the highest one journaled, so the broker re-sends what the log lacks.
    /// nil in journals written before the shared session.
    public var msgSeqNum: Int?

    public init(
        clOrdID: String, execID: String, venueOrderID: String, execType: String, ordStatus: String,
        lastQuantity: Int64, lastPrice: Int64, cumulativeQuantity: Int64, averagePrice: Int64,
        leavesQuantity: Int64, ordRejReason: Int?, text: String?, session: String, receivedAtNanos: Int64
    ) {
        self.clOrdID = clOrdID
        self.execID = execID
        self.venueOrderID = venueOrderID
        self.execType = execType
        self.ordStatus = ordStatus
        self.lastQuantity = lastQuantity
        self.lastPrice = lastPrice
        self.cumulativeQuantity = cumulativeQuantity
        self.averagePrice = averagePrice
        self.leavesQuantity = leavesQuantity
        self.ordRejReason = ordRejReason
        self.text = text
        self.session = session
        self.receivedAtNanos = receivedAtNanos
    }
}

/// Step 4: the answer to a sent order was lost.
public struct OrderUnknown: Codable, Sendable, Hashable {
    public var clOrdID: String
    public var reason: String
    public var atNanos: Int64

    public init(clOrdID: String, reason: String, atNanos: Int64) {
        self.clOrdID = clOrdID
        self.reason = reason
        self.atNanos = atNanos
    }
}

/// What a new leader learned about one order from the venue while reconciling.
public struct Reconciliation: Codable, Sendable, Hashable {
    public enum Finding: Codable, Sendable, Hashable {
        /// The venue knows the order: its status report, as journaled.
        case venueKnows(ExecutionRecord)
        /// The venue proved it never received the order (OrderStatusRequest answered
        /// "unknown order"): the leader may send it again, with PossResend=Y and the same ClOrdID.
        case neverReceived(text: String)
    }

    public var clOrdID: String
    public var finding: Finding
    public var term: UInt64
    public var atNanos: Int64

    public init(clOrdID: String, finding: Finding, term: UInt64, atNanos: Int64) {
        self.clOrdID = clOrdID
        self.finding = finding
        self.term = term
        self.atNanos = atNanos
    }
}

/// An operator's answer for an order reconciliation could not settle (the broker refused status
/// requests, or denied an order the journal has proof of): what the broker's own records or
/// desk say happened to it. Journaled and shown in the order's history, so it is audited.
public struct OrderResolution: Codable, Sendable, Hashable {
    public enum Outcome: Codable, Sendable, Hashable {
        /// The broker never received it: the order closes as not sent; it is never re-sent
        /// (the strategy decides afresh, through the risk gate).
        case notReceived
        /// The broker filled `quantity` in all at an average `price` (price units) and nothing
        /// more will fill.
        case filled(quantity: Int64, price: Int64)
    }

    public var clOrdID: String
    public var outcome: Outcome
    /// Who resolved it (the admin token's role, and the name the operator gave).
    public var by: String
    public var reason: String
    public var atNanos: Int64

    public init(clOrdID: String, outcome: Outcome, by: String, reason: String, atNanos: Int64) {
        self.clOrdID = clOrdID
        self.outcome = outcome
        self.by = by
        self.reason = reason
        self.atNanos = atNanos
    }
}

/// The cluster has one FIX session with the broker, owned by the leader. Its outbound MsgSeqNums
/// are reserved through the log before they are used, `count` at a time after whatever was
/// reserved before (every replica computes the same block when it applies this), so a new
/// leader always starts above anything an earlier one could have sent: the broker sees a gap,
/// never a number again ("MsgSeqNum too low" would end the session).
public struct SequenceReservation: Codable, Sendable, Hashable {
    /// "SenderCompID->TargetCompID" of the reserving leader: every replica must be configured
    /// with the same one, and a leader whose session differs refuses to take it over.
    public var session: String
    public var count: Int
    public var term: UInt64
    public var node: UInt64
    public var atNanos: Int64

    public init(session: String, count: Int, term: UInt64, node: UInt64, atNanos: Int64) {
        self.session = session
        self.count = count
        self.term = term
        self.node = node
        self.atNanos = atNanos
    }
}

/// Everything that changes trading state goes through the log as one of these.
/// A leader's planned hand-over, journaled before its TimeoutNow leaves (`drained`) or when the
/// transfer is abandoned and it trades on (`drained == false`). A committed drained mark says the
/// leader of `term` has stopped writing and every order it wrote is answered in the journal, so
/// the next leader may reconcile at once instead of waiting out `max_order_age` for orders still
/// in the broker's gateway.
public struct HandOver: Codable, Sendable, Hashable {
    public var term: UInt64
    public var node: UInt64
    public var drained: Bool
    public var atNanos: Int64

    public init(term: UInt64, node: UInt64, drained: Bool, atNanos: Int64) {
        self.term = term
        self.node = node
        self.drained = drained
        self.atNanos = atNanos
    }
}

/// One action on the admin plane, journaled so that every replica (and every later leader) can
/// say who did what and what came of it. `principal` is the authenticated token's configured
/// name, never a name the caller supplied.
public struct AuditRecord: Codable, Sendable, Hashable {
    /// The replica's wall clock when the action ended (or, for a transfer, began), ns.
    public var atNanos: Int64
    /// The replica that served the request.
    public var node: UInt64
    public var principal: String
    public var role: String
    /// The caller's address as the replica saw it.
    public var source: String
    /// "POST /admin/trading/pause".
    public var action: String
    /// The request body (at most 1 KiB, secrets never come in bodies here).
    public var request: String
    /// The HTTP status answered, and what it said (at most 1 KiB).
    public var status: Int
    public var outcome: String

    public static let maxTextBytes = 1024

    public init(
        atNanos: Int64, node: UInt64, principal: String, role: String, source: String, action: String,
        request: String, status: Int, outcome: String
    ) {
        self.atNanos = atNanos
        self.node = node
        self.principal = principal
        self.role = role
        self.source = source
        self.action = action
        self.request = Self.bounded(request)
        self.status = status
        self.outcome = Self.bounded(outcome)
    }

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > maxTextBytes else { return text }
        var cut = text.utf8.prefix(maxTextBytes)
        while String(cut) == nil { cut = cut.dropLast() }
        return (String(cut) ?? "") + "…"
    }
}

public enum TradingCommand: Codable, Sendable, Hashable {
    case orderIntent(OrderIntent)
    case riskRejection(RiskRejection)
    case orderSent(OrderSent)
    case execution(ExecutionRecord)
    case orderUnknown(OrderUnknown)
    case reconciled(Reconciliation)
    /// Operator pause/resume: no new intents while paused (orders in flight still finish).
    case tradingPaused(paused: Bool, by: String, reason: String, atNanos: Int64)
    /// An operator resolved an order by hand (OrderResolution).
    case resolved(OrderResolution)
    /// A leader reserved the next block of outbound MsgSeqNums of the cluster's broker session.
    case sequenceReserved(SequenceReservation)
    case handOver(HandOver)
    /// An admin-plane action and its outcome (AuditRecord).
    case audit(AuditRecord)
    /// The alert outbox: an incident raised or resolved, a delivery attempt's outcome.
    case alert(AlertCommand)
    /// An operator put a strategy version on some symbols.
    case strategyDeployed(StrategyDeployment)
    /// The canary controller: a start, a leader's analysis check, an operator's decision.
    case canary(CanaryCommand)

    /// Log payloads that start with this byte are trading commands; anything else in the log
    /// (operator test proposals, future command families) is not the trading engine's.
    public static let marker: UInt8 = 0xB7

    public func encoded() -> [UInt8] {
        // JSON after the marker: commands are few (orders, not ticks), and a journal an on-call
        // engineer can read with sqlite3 is worth more than the bytes.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding these plain value types cannot fail; a failure here is a programming error.
        let body = (try? encoder.encode(self)) ?? Data()
        precondition(!body.isEmpty, "TradingCommand failed to encode")
        return [Self.marker] + Array(body)
    }

    /// nil for payloads that are not trading commands; throws for ones that claim to be and are
    /// not decodable (a journal written by an incompatible version: never ignore silently).
    public static func decode(_ payload: [UInt8]) throws -> TradingCommand? {
        guard payload.first == marker else { return nil }
        return try JSONDecoder().decode(TradingCommand.self, from: Data(payload.dropFirst()))
    }
}

/// "<prefix>-<term>-<index>": the same on every replica, forever (ARCHITECTURE §4).
public func makeClOrdID(prefix: String, term: UInt64, index: UInt64) -> String {
    "\(prefix)-\(term)-\(index)"
}
