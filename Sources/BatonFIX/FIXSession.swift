/// How a FIX session behaves. Times are in whole seconds, as FIX states HeartBtInt(108).
public struct FIXSessionSettings: Hashable, Sendable {
    public enum Role: Hashable, Sendable {
        /// Connects and sends the first Logon (Baton towards its broker).
        case initiator
        /// Accepts and answers Logon (the venue simulator).
        case acceptor
    }

    public var role: Role
    public var beginString: String
    public var senderCompID: String
    public var targetCompID: String
    /// HeartBtInt(108) the initiator proposes; an acceptor uses the initiator's value.
    public var heartBtInt: Int
    /// How long without any inbound traffic, beyond HeartBtInt, before sending a TestRequest,
    /// in percent of HeartBtInt (FIX suggests "some reasonable transmission time"; 20 %).
    public var testRequestGracePercent: Int
    public var logonTimeout: Int
    public var logoutTimeout: Int
    /// Send ResetSeqNumFlag(141)=Y on Logon, restarting both sequences at 1. Off by default:
    /// sequence numbers continue across reconnects so a gap is always detected and resent.
    public var resetSeqNumOnLogon: Bool
    /// Validate every inbound message against the FIX 4.4 dictionary and Reject(3) failures.
    public var validatesMessages: Bool
    /// Out-of-order messages held while a gap is being filled; beyond this the session
    /// disconnects instead of growing without bound.
    public var maxQueuedMessages: Int
    /// Answer a ResendRequest with the stored application messages (PossDupFlag=Y). When false,
    /// the whole range is gap-filled: an order written before a disconnect is never delivered
    /// later by the session layer, after its sender may have lost the right to send it (Baton's
    /// leader lease); reconciliation (OrderStatusRequest) decides whether to send it again.
    public var resendsApplicationMessages: Bool
    /// Username(553) and Password(554) an initiator sends on Logon (brokers issue both per
    /// session). The password is never logged: FIXField.description redacts it.
    public var username: String?
    public var password: String?
    /// How far (seconds) an inbound SendingTime(52) may be from our clock; beyond it the message
    /// is refused with a session Reject (SessionRejectReason 10) and the session logs out, as
    /// QuickFIX does with CheckLatency/MaxLatency (default 120 s). nil: not checked.
    public var maxLatencySeconds: Int?

    public init(
        role: Role, senderCompID: String, targetCompID: String, beginString: String = "FIX.4.4", heartBtInt: Int = 30,
        testRequestGracePercent: Int = 20, logonTimeout: Int = 10, logoutTimeout: Int = 2,
        resetSeqNumOnLogon: Bool = false, validatesMessages: Bool = true, maxQueuedMessages: Int = 10_000,
        resendsApplicationMessages: Bool = true
    ) {
        self.resendsApplicationMessages = resendsApplicationMessages
        self.role = role
        self.beginString = beginString
        self.senderCompID = senderCompID
        self.targetCompID = targetCompID
        self.heartBtInt = heartBtInt
        self.testRequestGracePercent = testRequestGracePercent
        self.logonTimeout = logonTimeout
        self.logoutTimeout = logoutTimeout
        self.resetSeqNumOnLogon = resetSeqNumOnLogon
        self.validatesMessages = validatesMessages
        self.maxQueuedMessages = maxQueuedMessages
    }
}

extension FIXSessionSettings: CustomStringConvertible {
    public var description: String {
        "FIXSessionSettings(\(role) \(senderCompID)→\(targetCompID) HeartBtInt=\(heartBtInt) "
            + "ResetSeqNumOnLogon=\(resetSeqNumOnLogon) Username=\(username ?? "-") Password=\(password == nil ? "-" : "***"))"
    }
}

/// What a session must find again after a restart: both sequence numbers and the application
/// messages it sent (for answering ResendRequest). The shell keeps one of these durable by
/// applying every `persist` directive to it.
public struct FIXSessionStore: Hashable, Sendable {
    /// MsgSeqNum(34) of the next message this side sends.
    public var nextSenderSeqNum: Int
    /// MsgSeqNum(34) expected on the next message from the counterparty.
    public var nextTargetSeqNum: Int
    /// Application messages as sent (full header), by MsgSeqNum. Session messages are not
    /// kept: a resend replaces them with SequenceReset-GapFill.
    public var sentApplicationMessages: [Int: FIXMessage]

    public init(nextSenderSeqNum: Int = 1, nextTargetSeqNum: Int = 1, sentApplicationMessages: [Int: FIXMessage] = [:])
    {
        self.nextSenderSeqNum = nextSenderSeqNum
        self.nextTargetSeqNum = nextTargetSeqNum
        self.sentApplicationMessages = sentApplicationMessages
    }

    public mutating func apply(_ change: FIXSessionPersist) {
        switch change {
        case .sent(let seqNum, let message):
            nextSenderSeqNum = seqNum + 1
            if let message { sentApplicationMessages[seqNum] = message }
        case .received(let next):
            nextTargetSeqNum = next
        case .reset(let sender, let target):
            nextSenderSeqNum = sender
            nextTargetSeqNum = target
            sentApplicationMessages = [:]
        }
    }
}

/// One durable change to the session store.
public enum FIXSessionPersist: Hashable, Sendable {
    /// A message with this MsgSeqNum is about to be sent: the next is `seqNum + 1`, and an
    /// application message is kept for resend.
    case sent(seqNum: Int, message: FIXMessage?)
    /// Inbound messages up to `nextTargetSeqNum - 1` are handled.
    case received(nextTargetSeqNum: Int)
    /// Both sequences restart (ResetSeqNumFlag); stored messages are dropped.
    case reset(nextSenderSeqNum: Int, nextTargetSeqNum: Int)
}

public enum FIXSessionStatus: String, Hashable, Sendable {
    case disconnected
    /// Connected; Logon sent (initiator) or awaited (acceptor).
    case awaitingLogon = "awaiting-logon"
    case active
    /// Logout sent; waiting for the counterparty's Logout.
    case loggingOut = "logging-out"
}

/// What the session asks its shell to do, in order.
///
/// The persistence contract: carry directives out in order, and make each `persist` durable
/// before writing the bytes of any later `send`. So a message's sequence number (and, for an
/// application message, the message itself) is stored before it can reach the counterparty,
/// and a restart can never reuse a number or fail to answer a ResendRequest. Inbound messages
/// are `deliver`ed before the `persist(.received)` that covers them, so a crash between the
/// two makes the counterparty resend (the application deduplicates, e.g. by ExecID) rather
/// than lose a message.
public enum FIXSessionDirective: Hashable, Sendable, CustomStringConvertible {
    case persist(FIXSessionPersist)
    /// Write these bytes (the encoded `message`, kept for logging).
    case send(FIXMessage, bytes: [UInt8])
    /// An application message (or a session Reject(3) of ours), in sequence, exactly once per
    /// connection; PossDup duplicates of messages already handled are not delivered.
    case deliver(FIXMessage)
    /// Close the connection. The session is already `disconnected`.
    case disconnect(reason: String)
    case statusChanged(FIXSessionStatus)
    /// Something worth a log line that needs no action: a garbled message ignored, a Reject
    /// sent, a duplicate dropped. Never silent.
    case log(String)

    public var description: String {
        switch self {
        case .persist(let p): return "persist \(p)"
        case .send(let m, _): return "send \(m)"
        case .deliver(let m): return "deliver \(m)"
        case .disconnect(let reason): return "disconnect: \(reason)"
        case .statusChanged(let s): return "status \(s.rawValue)"
        case .log(let text): return "log: \(text)"
        }
    }
}

public enum FIXSessionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Application messages are refused unless the session is active: an order must never sit
    /// in a queue and go out later, after the sender lost the right to send it.
    case notLoggedOn(FIXSessionStatus)
    /// `send` takes application messages only; the session writes its own.
    case sessionMessageType(String)

    public var description: String {
        switch self {
        case .notLoggedOn(let status): return "FIX session is \(status.rawValue), not active: message not sent"
        case .sessionMessageType(let type):
            return "MsgType \(type) is a session message; the session sends those itself"
        }
    }
}

/// The FIX 4.4 session layer as a value: events in, directives out, no I/O and no clock.
///
/// Logon handshake and timeout, heartbeats every HeartBtInt, TestRequest after
/// HeartBtInt + grace of silence and disconnect when it goes unanswered, MsgSeqNum checks
/// (too low → Logout; too high → ResendRequest, queue, deliver in order once filled),
/// answering ResendRequest (application messages again with PossDupFlag=Y and OrigSendingTime,
/// SequenceReset-GapFill over session messages), SequenceReset in both modes, and a session
/// Reject(3) for every malformed message. Sequence numbers continue across reconnects unless
/// `resetSeqNumOnLogon`.
///
/// Call one event at a time and carry out its directives (see `FIXSessionDirective` for the
/// persistence contract) before the next call.
public struct FIXSession: Sendable {
    public let settings: FIXSessionSettings
    public private(set) var store: FIXSessionStore
    public private(set) var status: FIXSessionStatus = .disconnected
    /// HeartBtInt in force on this connection (the initiator's Logon value).
    public private(set) var heartBtInt: Int

    private let dictionary: FIXDictionary?
    private var decoder: FIXMessageDecoder
    private var lastSent = FIXTimestamp(millisecondsSinceEpoch: 0)
    private var lastReceived = FIXTimestamp(millisecondsSinceEpoch: 0)
    private var deadline: FIXTimestamp?
    private var pendingTestRequest: (id: String, sentAt: FIXTimestamp)?
    private var testRequestCounter = 0
    /// Set while a ResendRequest is outstanding: the highest MsgSeqNum seen beyond the gap.
    private var resendRequestedThrough: Int?
    private var queued: [Int: Queued] = [:]
    private var now = FIXTimestamp(millisecondsSinceEpoch: 0)
    private var out: [FIXSessionDirective] = []

    private enum Queued: Sendable {
        case message(FIXMessage)
        case malformed(FIXDecodingError)
        /// A ResendRequest answered when it arrived ahead of the sequence; in sequence it only
        /// moves the expected number on.
        case answeredResendRequest
    }

    static let sessionMsgTypes: Set<String> = ["0", "1", "2", "3", "4", "5", "A"]

    /// - Parameters:
    ///   - store: what the shell's durable store holds (fresh sessions start at 1 and 1).
    ///   - dictionary: validates inbound messages when `settings.validatesMessages`.
    public init(
        settings: FIXSessionSettings, store: FIXSessionStore = FIXSessionStore(),
        dictionary: FIXDictionary? = FIXDictionary.fix44
    ) {
        self.settings = settings
        self.store = store
        self.dictionary = settings.validatesMessages ? dictionary : nil
        self.heartBtInt = settings.heartBtInt
        self.decoder = FIXMessageDecoder(
            options: FIXDecoderOptions(
                dataFieldLengthTags: dictionary?.dataFieldLengthTags ?? FIXDecoderOptions.fix44DataFields))
    }

    // MARK: - Events

    /// The transport connected. An initiator sends Logon; an acceptor waits for one.
    public mutating func onConnected(now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        guard status == .disconnected else {
            out.append(.log("connected while \(status.rawValue); ignored"))
            return finish()
        }
        decoder.reset()
        queued = [:]
        resendRequestedThrough = nil
        pendingTestRequest = nil
        lastSent = now
        lastReceived = now
        deadline = now.adding(seconds: settings.logonTimeout)
        setStatus(.awaitingLogon)
        if settings.role == .initiator {
            heartBtInt = settings.heartBtInt
            if settings.resetSeqNumOnLogon { reset() }
            sendSession(
                FIXLogon(
                    heartBtInt: heartBtInt, resetSeqNumFlag: settings.resetSeqNumOnLogon, username: settings.username,
                    password: settings.password
                ).message)
        }
        return finish()
    }

    /// Bytes arrived from the transport (any split).
    public mutating func onReceived(bytes: some Sequence<UInt8>, now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        guard status != .disconnected else {
            out.append(.log("bytes received while disconnected; ignored"))
            return finish()
        }
        decoder.append(bytes)
        while status != .disconnected {
            do {
                guard let message = try decoder.next() else { break }
                handle(message)
            } catch {
                handle(error)
            }
        }
        return finish()
    }

    /// A message already decoded (tests, or a shell that frames messages itself).
    public mutating func onReceived(message: FIXMessage, now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        guard status != .disconnected else {
            out.append(.log("message received while disconnected; ignored: \(message)"))
            return finish()
        }
        handle(message)
        return finish()
    }

    /// Time passed. Call at least once a second; drives heartbeats, TestRequest and timeouts.
    public mutating func onTick(now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        switch status {
        case .disconnected:
            break
        case .awaitingLogon:
            if let deadline, now >= deadline {
                disconnect("no Logon within \(settings.logonTimeout) s")
            }
        case .loggingOut:
            if let deadline, now >= deadline {
                disconnect("no Logout reply within \(settings.logoutTimeout) s")
            }
        case .active:
            guard heartBtInt > 0 else { break }
            let interval = Int64(heartBtInt) * 1000
            if let pending = pendingTestRequest {
                if now.milliseconds(since: pending.sentAt) >= interval {
                    disconnect("TestRequest \(pending.id) unanswered for \(heartBtInt) s")
                    break
                }
            } else if now.milliseconds(since: lastReceived) >= interval * Int64(100 + settings.testRequestGracePercent)
                / 100
            {
                testRequestCounter += 1
                let id = "TEST-\(testRequestCounter)"
                pendingTestRequest = (id, now)
                sendSession(FIXTestRequest(testReqID: id).message)
            }
            if now.milliseconds(since: lastSent) >= interval {
                sendSession(FIXHeartbeat().message)
            }
        }
        return finish()
    }

    /// Sends an application message: stamps the header, stores it for resend, encodes it.
    /// Throws instead of queueing when the session is not active.
    public mutating func send(_ message: FIXMessage, now: FIXTimestamp) throws(FIXSessionError) -> [FIXSessionDirective]
    {
        self.now = now
        let type = message.msgType ?? ""
        guard !FIXSession.sessionMsgTypes.contains(type) else { throw .sessionMessageType(type) }
        guard status == .active else { throw .notLoggedOn(status) }
        // A session that never re-sends has no use for a copy: the store keeps only the number.
        stampAndSend(message, keep: settings.resendsApplicationMessages)
        return finish()
    }

    /// Starts a clean logout: Logout now, disconnect when the counterparty answers (or after
    /// `logoutTimeout`).
    public mutating func logout(text: String? = nil, now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        switch status {
        case .active:
            sendSession(FIXLogout(text: text).message)
            deadline = now.adding(seconds: settings.logoutTimeout)
            setStatus(.loggingOut)
        case .awaitingLogon:
            disconnect("logout requested before Logon completed")
        case .disconnected, .loggingOut:
            out.append(.log("logout requested while \(status.rawValue); nothing to do"))
        }
        return finish()
    }

    /// The transport closed. Sequence numbers and stored messages stay for the next connection.
    public mutating func onDisconnected(now: FIXTimestamp) -> [FIXSessionDirective] {
        self.now = now
        if status != .disconnected {
            clearConnection()
            setStatus(.disconnected)
        }
        return finish()
    }

    // MARK: - Inbound

    private mutating func handle(_ error: FIXDecodingError) {
        lastReceived = now
        guard !error.isGarbled else {
            out.append(.log("ignored garbled message (FIX: garbled messages are dropped, not rejected): \(error)"))
            return
        }
        guard status == .active || status == .loggingOut else {
            disconnect("malformed message before Logon: \(error)")
            return
        }
        guard let seq = error.msgSeqNum else {
            out.append(.log("cannot Reject a message without a readable MsgSeqNum(34); ignored: \(error)"))
            return
        }
        let expected = store.nextTargetSeqNum
        if seq == expected {
            rejectMalformed(error, seq: seq)
            advanceTarget(to: seq + 1)
            drainQueue()
        } else if seq > expected {
            enqueue(.malformed(error), seq: seq)
        } else {
            out.append(.log("malformed message with MsgSeqNum \(seq) below expected \(expected); ignored: \(error)"))
        }
    }

    private mutating func handle(_ message: FIXMessage) {
        lastReceived = now
        pendingTestRequest = nil  // any traffic proves the counterparty alive
        let msgType = message.msgType ?? ""
        if status == .awaitingLogon && msgType != "A" {
            disconnect("first message is MsgType \(msgType), not Logon(A)")
            return
        }
        guard message.beginString == settings.beginString else {
            logoutAndDisconnect("BeginString \(message.beginString) is not \(settings.beginString)")
            return
        }
        guard message[FIXTag.senderCompID] == settings.targetCompID,
            message[FIXTag.targetCompID] == settings.senderCompID
        else {
            let text =
                "CompID problem: got SenderCompID \(message[FIXTag.senderCompID] ?? "none") TargetCompID "
                + "\(message[FIXTag.targetCompID] ?? "none"), expected \(settings.targetCompID) → \(settings.senderCompID)"
            if status == .awaitingLogon {
                disconnect(text)
            } else {
                // RefSeqNum(45) is a SEQNUM like ours: a number outside our range is not one we
                // may send back (the Reject would fail our own dictionary), so that one only logs out.
                if let seq = message.msgSeqNum, (1...FIXSession.maxSeqNum).contains(seq) {
                    sendSession(
                        FIXReject(
                            refSeqNum: seq, refTagID: FIXTag.senderCompID, refMsgType: msgType, reason: .compIDProblem,
                            text: text
                        ).message)
                }
                logoutAndDisconnect(text)
            }
            return
        }
        guard let seq = message.msgSeqNum else {
            logoutAndDisconnect("MsgSeqNum(34) missing or not a number in MsgType \(msgType)")
            return
        }
        guard (1...FIXSession.maxSeqNum).contains(seq) else {
            // Sequence arithmetic (seq + 1) must never trap on what a counterparty claims, and no
            // Reject below may quote a RefSeqNum outside the range.
            logoutAndDisconnect("MsgSeqNum(34)=\(seq) in MsgType \(msgType) is outside 1…\(FIXSession.maxSeqNum)")
            return
        }
        if let maxLatency = settings.maxLatencySeconds {
            let sendingTime = message[FIXTag.sendingTime].flatMap(FIXTimestamp.init(fixString:))
            let skew = sendingTime.map { abs(now.milliseconds(since: $0)) }
            if skew.map({ $0 > Int64(maxLatency) * 1000 }) ?? true {
                let text =
                    sendingTime == nil
                    ? "SendingTime(52) missing or malformed in MsgType \(msgType)"
                    : "SendingTime accuracy problem: SendingTime \(message[FIXTag.sendingTime] ?? "") is "
                        + "\(skew ?? 0) ms from our clock (limit \(maxLatency) s)"
                if status != .awaitingLogon {
                    sendSession(
                        FIXReject(
                            refSeqNum: seq, refTagID: FIXTag.sendingTime, refMsgType: msgType,
                            reason: .sendingTimeAccuracyProblem, text: text
                        ).message)
                    logoutAndDisconnect(text)
                } else {
                    disconnect(text)
                }
                return
            }
        }
        if msgType == "A" && status == .awaitingLogon && message[FIXTag.resetSeqNumFlag] == "Y" {
            // The counterparty restarts both sequences (an initiator that asked for it has
            // already reset when it sent its Logon; resetting again is harmless).
            if !(settings.role == .initiator && settings.resetSeqNumOnLogon) { reset() }
        }

        // SequenceReset-Reset ignores MsgSeqNum: it exists to repair a broken sequence.
        if msgType == "4" && message[FIXTag.gapFillFlag] != "Y" {
            handleSequenceReset(message, seq: seq)
            return
        }

        let expected = store.nextTargetSeqNum
        if seq < expected {
            if message.isPossDup {
                out.append(.log("dropped duplicate MsgSeqNum \(seq) (PossDupFlag=Y), expecting \(expected)"))
            } else {
                logoutAndDisconnect("MsgSeqNum too low, expecting \(expected) but received \(seq)")
            }
            return
        }
        if seq > expected {
            if msgType == "A" && status == .awaitingLogon {
                // Complete the handshake first, then ask for what we missed; the counterparty
                // gap-fills over its Logon.
                acceptLogon(message)
                guard status == .active else { return }
                requestResend(from: expected, seenThrough: seq)
                return
            }
            if msgType == "2", status == .active, let request = try? FIXResendRequest(message) {
                // Answer at once, as QuickFIX does: when both sides detect a gap at the same
                // time (both lost messages across a reconnect), each one's ResendRequest sits
                // behind the other's gap, and holding it until our own gap is filled would
                // leave both sides waiting for each other forever.
                answerResend(request)
                enqueue(.answeredResendRequest, seq: seq)
                return
            }
            enqueue(.message(message), seq: seq)
            return
        }
        process(message, seq: seq)
        drainQueue()
    }

    /// A message whose MsgSeqNum is the expected one.
    private mutating func process(_ message: FIXMessage, seq: Int) {
        let msgType = message.msgType ?? ""
        if let dictionary {
            let errors = dictionary.validate(message)
            if let first = errors.first {
                if status == .awaitingLogon {
                    disconnect("invalid Logon: \(first)")
                    return
                }
                sendSession(
                    FIXReject(
                        refSeqNum: seq, refTagID: first.tag, refMsgType: msgType, reason: first.sessionRejectReason,
                        text: String(first.description.prefix(200))
                    ).message)
                out.append(.log("rejected MsgSeqNum \(seq): \(errors.map(\.description).joined(separator: "; "))"))
                advanceTarget(to: seq + 1)
                return
            }
        }
        switch msgType {
        case "A":
            if status == .awaitingLogon {
                advanceTarget(to: seq + 1)
                acceptLogon(message)
            } else {
                out.append(.log("Logon received on an active session (MsgSeqNum \(seq)); ignored"))
                advanceTarget(to: seq + 1)
            }
        case "0":
            advanceTarget(to: seq + 1)
        case "1":
            advanceTarget(to: seq + 1)
            sendSession(FIXHeartbeat(testReqID: message[FIXTag.testReqID]).message)
        case "2":
            advanceTarget(to: seq + 1)
            if let request = try? FIXResendRequest(message) { answerResend(request) }
        case "4":
            // Gap fill (reset mode is handled before sequence checks).
            let newSeqNo = Int(message[FIXTag.newSeqNo] ?? "") ?? 0
            if newSeqNo > seq && newSeqNo <= FIXSession.maxSeqNum {
                advanceTarget(to: newSeqNo)
            } else {
                sendSession(
                    FIXReject(
                        refSeqNum: seq, refTagID: FIXTag.newSeqNo, refMsgType: "4", reason: .valueIncorrect,
                        text: "SequenceReset-GapFill NewSeqNo \(newSeqNo) does not move past MsgSeqNum \(seq) "
                            + "within 1…\(FIXSession.maxSeqNum)"
                    ).message)
                advanceTarget(to: seq + 1)
            }
        case "5":
            advanceTarget(to: seq + 1)
            if status == .loggingOut {
                disconnect("Logout confirmed" + (message[FIXTag.text].map { ": \($0)" } ?? ""))
            } else {
                sendSession(FIXLogout().message)
                disconnect("counterparty logged out" + (message[FIXTag.text].map { ": \($0)" } ?? ""))
            }
        default:
            // Reject(3) too: the application must learn that an order of its was refused.
            out.append(.deliver(message))
            advanceTarget(to: seq + 1)
        }
        if let through = resendRequestedThrough, store.nextTargetSeqNum > through {
            resendRequestedThrough = nil
        }
    }

    private mutating func acceptLogon(_ message: FIXMessage) {
        guard let logon = try? FIXLogon(message), (0...FIXSession.maxHeartBtInt).contains(logon.heartBtInt) else {
            disconnect("Logon without a valid HeartBtInt(108) in 0…\(FIXSession.maxHeartBtInt) s (\(message[FIXTag.heartBtInt] ?? "none"))")
            return
        }
        deadline = nil
        if settings.role == .acceptor {
            heartBtInt = logon.heartBtInt
            sendSession(FIXLogon(heartBtInt: heartBtInt, resetSeqNumFlag: logon.resetSeqNumFlag).message)
        }
        setStatus(.active)
    }

    private mutating func handleSequenceReset(_ message: FIXMessage, seq: Int) {
        let newSeqNo = Int(message[FIXTag.newSeqNo] ?? "") ?? 0
        let expected = store.nextTargetSeqNum
        guard newSeqNo <= FIXSession.maxSeqNum else {
            sendSession(
                FIXReject(
                    refSeqNum: seq, refTagID: FIXTag.newSeqNo, refMsgType: "4", reason: .valueIncorrect,
                    text: "SequenceReset NewSeqNo \(newSeqNo) is above \(FIXSession.maxSeqNum)"
                ).message)
            return
        }
        if newSeqNo > expected {
            out.append(.log("SequenceReset-Reset: next inbound MsgSeqNum \(expected) → \(newSeqNo)"))
            advanceTarget(to: newSeqNo)
            queued = queued.filter { $0.key >= newSeqNo }
            if let through = resendRequestedThrough, newSeqNo > through { resendRequestedThrough = nil }
            drainQueue()
        } else if newSeqNo < expected {
            sendSession(
                FIXReject(
                    refSeqNum: seq, refTagID: FIXTag.newSeqNo, refMsgType: "4", reason: .valueIncorrect,
                    text: "SequenceReset NewSeqNo \(newSeqNo) would lower the expected MsgSeqNum \(expected)"
                ).message)
        } else {
            out.append(.log("SequenceReset-Reset to the expected MsgSeqNum \(expected); nothing to do"))
        }
    }

    private mutating func enqueue(_ item: Queued, seq: Int) {
        guard queued.count < settings.maxQueuedMessages else {
            logoutAndDisconnect("more than \(settings.maxQueuedMessages) messages queued behind a sequence gap")
            return
        }
        queued[seq] = item
        requestResend(from: store.nextTargetSeqNum, seenThrough: seq)
    }

    private mutating func requestResend(from begin: Int, seenThrough seq: Int) {
        if let through = resendRequestedThrough {
            // EndSeqNo 0 already asked for everything after the gap.
            resendRequestedThrough = max(through, seq)
            return
        }
        resendRequestedThrough = seq
        out.append(.log("MsgSeqNum gap: expected \(begin), received \(seq); requesting resend"))
        sendSession(FIXResendRequest(beginSeqNo: begin, endSeqNo: 0).message)
    }

    private mutating func drainQueue() {
        while status != .disconnected, let item = queued.removeValue(forKey: store.nextTargetSeqNum) {
            let seq = store.nextTargetSeqNum
            switch item {
            case .message(let message): process(message, seq: seq)
            case .answeredResendRequest: advanceTarget(to: seq + 1)
            case .malformed(let error):
                rejectMalformed(error, seq: seq)
                advanceTarget(to: seq + 1)
            }
        }
        let next = store.nextTargetSeqNum
        queued = queued.filter { $0.key > next }
    }

    private mutating func rejectMalformed(_ error: FIXDecodingError, seq: Int) {
        sendSession(
            FIXReject(
                refSeqNum: seq, refTagID: error.tag, refMsgType: error.msgType, reason: error.sessionRejectReason,
                text: String(error.description.prefix(200))
            ).message)
        out.append(.log("rejected malformed MsgSeqNum \(seq): \(error)"))
    }

    private mutating func advanceTarget(to next: Int) {
        guard next != store.nextTargetSeqNum else { return }
        let change = FIXSessionPersist.received(nextTargetSeqNum: next)
        store.apply(change)
        out.append(.persist(change))
    }

    // MARK: - Outbound

    private mutating func answerResend(_ request: FIXResendRequest) {
        let last = store.nextSenderSeqNum - 1
        let end = request.endSeqNo == 0 || request.endSeqNo > last ? last : request.endSeqNo
        let begin = max(1, request.beginSeqNo)
        guard begin <= end else {
            out.append(
                .log("ResendRequest \(request.beginSeqNo)…\(request.endSeqNo) covers nothing sent (last \(last))"))
            return
        }
        guard settings.resendsApplicationMessages else {
            out.append(
                .log("answering ResendRequest \(begin)…\(end) with a gap fill: application messages are never re-sent"))
            sendGapFill(at: begin, newSeqNo: end + 1)
            return
        }
        out.append(.log("answering ResendRequest \(begin)…\(end)"))
        var gapStart: Int? = begin
        let stored = store.sentApplicationMessages.keys.filter { $0 >= begin && $0 <= end }.sorted()
        for seq in stored {
            guard let original = store.sentApplicationMessages[seq] else { continue }
            if let start = gapStart, start < seq { sendGapFill(at: start, newSeqNo: seq) }
            gapStart = nil
            var again = original
            again.set(FIXTag.possDupFlag, "Y")
            again.set(FIXTag.origSendingTime, original[FIXTag.sendingTime] ?? now.fixString)
            again.set(FIXTag.sendingTime, now.fixString)
            emit(again)
            gapStart = seq + 1
        }
        if let start = gapStart, start <= end { sendGapFill(at: start, newSeqNo: end + 1) }
    }

    private mutating func sendGapFill(at seq: Int, newSeqNo: Int) {
        var message = FIXSequenceReset(newSeqNo: newSeqNo, gapFill: true).message
        stampHeader(&message, seq: seq)
        message.set(FIXTag.possDupFlag, "Y")
        message.set(FIXTag.origSendingTime, now.fixString)
        emit(message)
    }

    private mutating func sendSession(_ message: FIXMessage) {
        stampAndSend(message, keep: false)
    }

    private mutating func stampAndSend(_ message: FIXMessage, keep: Bool) {
        var message = message
        let seq = store.nextSenderSeqNum
        stampHeader(&message, seq: seq)
        let change = FIXSessionPersist.sent(seqNum: seq, message: keep ? message : nil)
        store.apply(change)
        out.append(.persist(change))
        emit(message)
    }

    private func stampHeader(_ message: inout FIXMessage, seq: Int) {
        message.beginString = settings.beginString
        message.set(FIXTag.senderCompID, settings.senderCompID)
        message.set(FIXTag.targetCompID, settings.targetCompID)
        message.set(FIXTag.msgSeqNum, String(seq))
        message.set(FIXTag.sendingTime, now.fixString)
    }

    private mutating func emit(_ message: FIXMessage) {
        out.append(.send(message, bytes: message.encoded()))
        lastSent = now
    }

    // MARK: - State

    private mutating func reset() {
        let change = FIXSessionPersist.reset(nextSenderSeqNum: 1, nextTargetSeqNum: 1)
        store.apply(change)
        out.append(.persist(change))
    }

    private mutating func logoutAndDisconnect(_ reason: String) {
        if status == .active || status == .loggingOut {
            sendSession(FIXLogout(text: reason).message)
        }
        disconnect(reason)
    }

    private mutating func disconnect(_ reason: String) {
        guard status != .disconnected else { return }
        clearConnection()
        setStatus(.disconnected)
        out.append(.disconnect(reason: reason))
    }

    private mutating func clearConnection() {
        decoder.reset()
        queued = [:]
        resendRequestedThrough = nil
        pendingTestRequest = nil
        deadline = nil
    }

    private mutating func setStatus(_ new: FIXSessionStatus) {
        guard new != status else { return }
        status = new
        out.append(.statusChanged(new))
    }

    private mutating func finish() -> [FIXSessionDirective] {
        defer { out = [] }
        return out
    }
}

extension FIXSession {
    /// The largest MsgSeqNum (and NewSeqNo) accepted: QuickFIX keeps them in an int, and a
    /// session that ever got near 2^31 would be reset long before. Larger values are a
    /// counterparty's error, refused rather than trapping on `seq + 1`.
    public static let maxSeqNum = Int(Int32.max)
    /// HeartBtInt(108) above an hour is refused (its arithmetic in milliseconds must not overflow).
    public static let maxHeartBtInt = 3600
}
