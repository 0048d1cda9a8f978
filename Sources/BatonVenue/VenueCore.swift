public import BatonFIX
public import BatonMarketData

/// Identifies one TCP connection of the FIX acceptor.
public typealias FIXConnectionID = Int

/// The FIX side of the venue as a value: one `FIXSession` per counterparty (keyed by the
/// SenderCompID of its Logon, kept across reconnects so sequence numbers continue and resends
/// are answered), connections attached to them, and the matching engine behind them.
///
/// The shell reports connection events, bytes, timer ticks and market ticks; this returns what
/// to write, what to close and what to log.
public struct VenueCore: Sendable {
    public struct Settings: Hashable, Sendable {
        /// The venue's CompID: SenderCompID of everything it sends.
        public var compID: String
        /// Counterparties allowed to log on; nil accepts any SenderCompID.
        public var allowedSessions: Set<String>?
        /// The order gateway's latency: a NewOrderSingle reaches matching this long after its
        /// session received it (its SendingTime is checked on receipt), while status requests are
        /// answered at once. Brokers route orders and answer status from different services, so
        /// "unknown" right after a write is no proof the order will not arrive.
        public var orderLatencyMilliseconds: Int64
        /// Answer OrderStatusRequest(H) with a BusinessMessageReject(j) "unsupported message
        /// type", as QuickFIX's executor and brokers without status lookups do.
        public var rejectsStatusRequests: Bool
        /// Password(554) each counterparty must send on Logon; nil asks for none. A Logon without
        /// the right one is refused (the connection is closed) and the venue says so in its log,
        /// never with the password.
        public var passwords: [String: String]?
        /// SendingTime tolerance in seconds (FIXSessionSettings.maxLatencySeconds); a message
        /// outside it gets a session Reject and a Logout, as at QuickFIX-based brokers. nil: none.
        public var sendingTimeToleranceSeconds: Int?
        /// Answer a ResendRequest with the application messages again (PossDupFlag=Y); false
        /// gap-fills everything, as brokers that do not replay execution reports do.
        public var resendsApplicationMessages = true

        public init(
            compID: String, allowedSessions: Set<String>? = nil, orderLatencyMilliseconds: Int64 = 0,
            rejectsStatusRequests: Bool = false, passwords: [String: String]? = nil,
            sendingTimeToleranceSeconds: Int? = 120
        ) {
            self.sendingTimeToleranceSeconds = sendingTimeToleranceSeconds
            self.passwords = passwords
            self.compID = compID
            self.allowedSessions = allowedSessions
            self.orderLatencyMilliseconds = orderLatencyMilliseconds
            self.rejectsStatusRequests = rejectsStatusRequests
        }
    }

    public enum Directive: Hashable, Sendable {
        case write(FIXConnectionID, [UInt8])
        case close(FIXConnectionID, reason: String)
        case log(LogLevel, String)
    }

    public enum LogLevel: Hashable, Sendable {
        case debug, info, notice, warning
    }

    /// What the inspection API shows per counterparty.
    public struct SessionCounters: Hashable, Sendable, Codable {
        public var logons = 0
        /// Inbound messages handled in sequence (a gap fill counts once).
        public var messagesIn = 0
        public var messagesOut = 0
        public var orders = 0
        /// NewOrderSingles since the session's latest Logon: with one connection per session,
        /// the orders of whoever logged on last (a new leader's, after a failover).
        public var ordersSinceLogon = 0
        public var statusRequests = 0
        /// Of those, OrderMassStatusRequests(AF).
        public var massStatusRequests = 0
        public var cancelRequests = 0
        /// Session-level Reject(3) and BusinessMessageReject(j) sent to the counterparty.
        public var rejects = 0
    }

    struct Counterparty: Sendable {
        var session: FIXSession
        var connection: FIXConnectionID?
        var counters = SessionCounters()
        /// Reports produced while the session was not logged on, sent at its next Logon.
        var undelivered: [FIXMessage] = []
    }

    struct Connection: Sendable {
        /// Bytes held until the first message names the counterparty.
        var pending: [UInt8] = []
        var compID: String?
    }

    public let settings: Settings
    /// Test hook (`POST /admin/status-requests`): status requests are received and never
    /// answered, as when a broker's status service is down while its session stays up.
    public var ignoresStatusRequests = false
    public private(set) var engine: MatchingEngine
    private var counterparties: [String: Counterparty] = [:]
    private var connections: [FIXConnectionID: Connection] = [:]
    private var out: [Directive] = []
    /// NewOrderSingles on their way through the order gateway, in arrival order.
    private var gateway: [(session: String, order: FIXNewOrderSingle, sendingTime: FIXTimestamp?, receivedAt: FIXTimestamp)] = []
    /// Session store changes since `takeChanges()`.
    private var sessionChanges: [(String, FIXSessionPersist)] = []
    /// The shell caps a connection that never sends a full first message.
    public static let maxPendingBytes = 64 * 1024

    public init(settings: Settings, engine: MatchingEngine) {
        self.settings = settings
        self.engine = engine
    }

    /// Everything that changed since the last call, as state-file records.
    mutating func takeStateChanges() -> [VenueStateRecord] {
        var records: [VenueStateRecord] = []
        var touched: Set<String> = []
        for (compID, change) in sessionChanges {
            touched.insert(compID)
            switch change {
            case .sent(let seq, let message?):
                records.append(.sent(compID: compID, seq: seq, fix: String(decoding: message.encoded(), as: UTF8.self)))
            case .reset:
                records.append(.storeReset(compID: compID))
            case .sent, .received:
                break
            }
        }
        sessionChanges = []
        for compID in touched.sorted() {
            guard let counterparty = counterparties[compID] else { continue }
            let store = counterparty.session.store
            records.append(.session(compID: compID, nextSender: store.nextSenderSeqNum, nextTarget: store.nextTargetSeqNum))
            records.append(.counters(compID: compID, counterparty.counters))
        }
        if let engineChanges = engine.takeChanges() {
            records += engineChanges.orders.map { .order(index: $0.0, $0.1) }
            records += engineChanges.duplicates.map { .duplicate($0) }
            records += engineChanges.refusals.map { .refusal($0) }
            records.append(.engine(engineChanges.counters))
        }
        return records
    }

    /// Rebuilds sessions (their stores; every session starts disconnected) and the book from a
    /// state file, at start.
    mutating func restoreState(_ state: VenueRestoredState) {
        for (compID, store) in state.stores {
            var counterparty = Counterparty(session: FIXSession(settings: acceptorSettings(for: compID), store: store))
            counterparty.counters = state.counters[compID] ?? SessionCounters()
            counterparties[compID] = counterparty
        }
        engine.restore(state)
    }

    public var sessionCounters: [String: SessionCounters] {
        counterparties.mapValues(\.counters)
    }

    public func sessionStatus(_ compID: String) -> FIXSessionStatus? {
        counterparties[compID]?.session.status
    }

    public func sessionStore(_ compID: String) -> FIXSessionStore? {
        counterparties[compID]?.session.store
    }

    // MARK: - Events

    public mutating func connectionOpened(_ id: FIXConnectionID) {
        connections[id] = Connection()
    }

    public mutating func bytesReceived(_ id: FIXConnectionID, _ bytes: [UInt8], now: FIXTimestamp) -> [Directive] {
        guard var connection = connections[id] else {
            out.append(.log(.debug, "bytes on closed FIX connection \(id); ignored"))
            return finish()
        }
        if let compID = connection.compID {
            run(compID, now: now) { session in session.onReceived(bytes: bytes, now: now) }
            return finish()
        }
        // The first message says which counterparty this is; the session takes it from there.
        connection.pending.append(contentsOf: bytes)
        var peek = FIXMessageDecoder()
        peek.append(connection.pending)
        let first: FIXMessage
        do {
            guard let message = try peek.next() else {
                if connection.pending.count > VenueCore.maxPendingBytes {
                    close(id, "no complete FIX message in the first \(VenueCore.maxPendingBytes) bytes")
                } else {
                    connections[id] = connection
                }
                return finish()
            }
            first = message
        } catch {
            close(id, "first message is not FIX: \(error)")
            return finish()
        }
        guard first.msgType == "A", let compID = first[FIXTag.senderCompID], !compID.isEmpty else {
            close(id, "first message must be a Logon(A) with a SenderCompID(49), got \(first)")
            return finish()
        }
        if let allowed = settings.allowedSessions, !allowed.contains(compID) {
            close(id, "SenderCompID \(compID) is not one of the configured sessions \(allowed.sorted())")
            return finish()
        }
        if let passwords = settings.passwords {
            guard let expected = passwords[compID] else {
                close(id, "Logon refused: no password is configured for session \(compID)")
                return finish()
            }
            guard first[FIXTag.password] == expected else {
                close(
                    id,
                    "Logon refused for \(compID): " + (first[FIXTag.password] == nil ? "no Password(554)" : "wrong Password(554)")
                        + " (Username \(first[FIXTag.username] ?? "none"))")
                return finish()
            }
        }
        if let existing = counterparties[compID], let other = existing.connection, other != id {
            close(id, "session \(compID) is already connected on FIX connection \(other); second Logon refused")
            return finish()
        }
        var counterparty =
            counterparties[compID]
            ?? Counterparty(
                session: FIXSession(
                    settings: acceptorSettings(for: compID)))
        counterparty.connection = id
        counterparties[compID] = counterparty
        connection.compID = compID
        let pending = connection.pending
        connection.pending = []
        connections[id] = connection
        out.append(.log(.info, "FIX connection \(id) is session \(compID)"))
        run(compID, now: now) { session in session.onConnected(now: now) }
        run(compID, now: now) { session in session.onReceived(bytes: pending, now: now) }
        return finish()
    }

    public mutating func connectionClosed(_ id: FIXConnectionID, now: FIXTimestamp) -> [Directive] {
        guard let connection = connections.removeValue(forKey: id) else { return finish() }
        if let compID = connection.compID, counterparties[compID]?.connection == id {
            counterparties[compID]?.connection = nil
            run(compID, now: now) { session in session.onDisconnected(now: now) }
            out.append(.log(.info, "session \(compID) disconnected (FIX connection \(id))"))
        }
        return finish()
    }

    /// Drives heartbeats, TestRequests and timeouts; call a few times a second.
    public mutating func timerTick(now: FIXTimestamp) -> [Directive] {
        for compID in counterparties.keys.sorted() where counterparties[compID]?.connection != nil {
            run(compID, now: now) { session in session.onTick(now: now) }
        }
        return finish()
    }

    /// Starts a clean logout of every connected session (the venue is shutting down).
    public mutating func logoutAll(text: String, now: FIXTimestamp) -> [Directive] {
        for compID in counterparties.keys.sorted() where counterparties[compID]?.connection != nil {
            run(compID, now: now) { session in session.logout(text: text, now: now) }
        }
        return finish()
    }

    public mutating func marketTick(_ tick: MarketTick, now: FIXTimestamp) -> [Directive] {
        let reports = engine.onMarketTick(tick, now: now)
        if !reports.isEmpty { deliver(reports, now: now) }
        return finish()
    }

    /// Hands the orders whose gateway latency has passed to matching; call every millisecond or so.
    public mutating func releaseOrders(now: FIXTimestamp) -> [Directive] {
        let latency = settings.orderLatencyMilliseconds
        while let first = gateway.first, now.milliseconds(since: first.receivedAt) >= latency {
            gateway.removeFirst()
            deliver(
                engine.newOrder(
                    first.order, session: first.session, now: now, sendingTime: first.sendingTime,
                    receivedAt: first.receivedAt), now: now)
        }
        return finish()
    }

    public var ordersInGateway: Int { gateway.count }

    /// Sends an application message as it is to a counterparty (test hook for hostile reports).
    private func acceptorSettings(for compID: String) -> FIXSessionSettings {
        var session = FIXSessionSettings(role: .acceptor, senderCompID: settings.compID, targetCompID: compID)
        session.maxLatencySeconds = settings.sendingTimeToleranceSeconds
        session.resendsApplicationMessages = settings.resendsApplicationMessages
        return session
    }

    public mutating func inject(_ message: FIXMessage, to session: String, now: FIXTimestamp) -> [Directive] {
        deliver([VenueReport(session: session, message: message)], now: now)
        return finish()
    }

    public mutating func endOfDay(now: FIXTimestamp) -> [Directive] {
        deliver(engine.endOfDay(now: now), now: now)
        return finish()
    }

    // MARK: - Session plumbing

    private mutating func run(_ compID: String, now: FIXTimestamp, _ event: (inout FIXSession) -> [FIXSessionDirective])
    {
        guard var counterparty = counterparties[compID] else { return }
        let directives = event(&counterparty.session)
        counterparties[compID] = counterparty
        carryOut(directives, compID: compID, now: now)
    }

    private mutating func carryOut(_ directives: [FIXSessionDirective], compID: String, now: FIXTimestamp) {
        for directive in directives {
            switch directive {
            case .persist(let change):
                // The store lives in the session value; with a state file the shell writes each
                // change before anything is sent (`takeChanges`).
                if case .received = change { counterparties[compID]?.counters.messagesIn += 1 }
                sessionChanges.append((compID, change))
            case .send(let message, let bytes):
                counterparties[compID]?.counters.messagesOut += 1
                if message.msgType == "3" || message.msgType == "j" { counterparties[compID]?.counters.rejects += 1 }
                if let connection = counterparties[compID]?.connection { out.append(.write(connection, bytes)) }
            case .deliver(let message):
                handleApplication(message, from: compID, now: now)
            case .disconnect(let reason):
                out.append(.log(.notice, "session \(compID): disconnecting: \(reason)"))
                if let connection = counterparties[compID]?.connection {
                    counterparties[compID]?.connection = nil
                    connections[connection] = nil
                    out.append(.close(connection, reason: reason))
                }
            case .statusChanged(let status):
                out.append(.log(.info, "session \(compID) is \(status.rawValue)"))
                if status == .active {
                    counterparties[compID]?.counters.logons += 1
                    counterparties[compID]?.counters.ordersSinceLogon = 0
                    let waiting = counterparties[compID]?.undelivered ?? []
                    counterparties[compID]?.undelivered = []
                    if !waiting.isEmpty {
                        out.append(
                            .log(.info, "session \(compID): sending \(waiting.count) reports held while it was away"))
                        deliver(waiting.map { VenueReport(session: compID, message: $0) }, now: now)
                    }
                }
            case .log(let text):
                out.append(.log(.info, "session \(compID): \(text)"))
            }
        }
    }

    private mutating func handleApplication(_ message: FIXMessage, from compID: String, now: FIXTimestamp) {
        let msgType = message.msgType ?? ""
        do {
            switch msgType {
            case "D":
                counterparties[compID]?.counters.orders += 1
                counterparties[compID]?.counters.ordersSinceLogon += 1
                let order = try FIXNewOrderSingle(message)
                let sendingTime = message[FIXTag.sendingTime].flatMap { FIXTimestamp(fixString: $0) }
                if settings.orderLatencyMilliseconds > 0 {
                    gateway.append((compID, order, sendingTime, now))
                } else {
                    deliver(engine.newOrder(order, session: compID, now: now, sendingTime: sendingTime), now: now)
                }
            case "H" where ignoresStatusRequests:
                counterparties[compID]?.counters.statusRequests += 1
                out.append(.log(.notice, "session \(compID): OrderStatusRequest ignored (status service down)"))
            case "H" where settings.rejectsStatusRequests:
                counterparties[compID]?.counters.statusRequests += 1
                businessReject(
                    message, to: compID, reason: 3, text: "Unsupported Message Type: OrderStatusRequest", now: now)
            case "H":
                counterparties[compID]?.counters.statusRequests += 1
                deliver(engine.statusRequest(try FIXOrderStatusRequest(message), session: compID, now: now), now: now)
            case "AF":
                counterparties[compID]?.counters.statusRequests += 1
                counterparties[compID]?.counters.massStatusRequests += 1
                deliver(
                    engine.massStatusRequest(try FIXOrderMassStatusRequest(message), session: compID, now: now),
                    now: now)
            case "F":
                counterparties[compID]?.counters.cancelRequests += 1
                deliver(engine.cancelRequest(try FIXOrderCancelRequest(message), session: compID, now: now), now: now)
            case "3":
                out.append(.log(.warning, "session \(compID) rejected one of our messages: \(message)"))
            default:
                businessReject(
                    message, to: compID, reason: 3,
                    text: "MsgType \(msgType) is not supported by this venue (D, F, H, AF are)", now: now)
            }
        } catch {
            businessReject(message, to: compID, reason: 5, text: String(error.description.prefix(200)), now: now)
        }
    }

    /// BusinessMessageReject(j): a well-formed message the venue cannot act on. (A session
    /// Reject(3) is the session's own answer to malformed messages.)
    private mutating func businessReject(
        _ message: FIXMessage, to compID: String, reason: Int, text: String, now: FIXTimestamp
    ) {
        out.append(.log(.warning, "session \(compID): refused MsgSeqNum \(message.msgSeqNum ?? 0): \(text)"))
        var fields = [
            FIXField(FIXTag.refSeqNum, String(message.msgSeqNum ?? 0)),
            FIXField(FIXTag.refMsgType, message.msgType ?? ""),
            FIXField(380, String(reason)),
            FIXField(FIXTag.text, text),
        ]
        if let clOrdID = message[11] { fields.insert(FIXField(379, clOrdID), at: 2) }
        deliver([VenueReport(session: compID, message: FIXMessage(msgType: "j", fields: fields))], now: now)
    }

    private mutating func deliver(_ reports: [VenueReport], now: FIXTimestamp) {
        for report in reports {
            guard var counterparty = counterparties[report.session], counterparty.session.status == .active else {
                out.append(
                    .log(
                        .notice,
                        "session \(report.session) is not logged on: holding \(report.message.msgType ?? "?") "
                            + "for ClOrdID \(report.message[11] ?? "-") until it is"))
                let fresh = Counterparty(session: FIXSession(settings: acceptorSettings(for: report.session)))
                counterparties[report.session, default: fresh].undelivered.append(report.message)
                continue
            }
            do {
                let directives = try counterparty.session.send(report.message, now: now)
                counterparties[report.session] = counterparty
                carryOut(directives, compID: report.session, now: now)
            } catch {
                out.append(.log(.warning, "session \(report.session): report not sent: \(error)"))
            }
        }
    }

    private mutating func close(_ id: FIXConnectionID, _ reason: String) {
        connections[id] = nil
        out.append(.log(.warning, "FIX connection \(id): \(reason)"))
        out.append(.close(id, reason: reason))
    }

    private mutating func finish() -> [Directive] {
        defer { out = [] }
        return out
    }
}
