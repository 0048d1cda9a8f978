/// A field that a typed parser needed and did not find (or could not read).
public struct FIXFieldError: Error, Hashable, Sendable, CustomStringConvertible {
    public var msgType: String
    public var tag: Int
    /// Nil when the field is missing; the unreadable value otherwise.
    public var value: String?

    public var description: String {
        let name = FIXDictionary.fix44.describe(tag: tag)
        if let value { return "MsgType \(msgType): \(name) value \"\(value)\" cannot be read" }
        return "MsgType \(msgType): required \(name) is missing"
    }
}

/// Reads typed values out of a message for the typed parsers.
struct FIXReader {
    let message: FIXMessage
    let msgType: String

    init(_ message: FIXMessage, expecting msgType: String) throws(FIXFieldError) {
        guard message.msgType == msgType else {
            throw FIXFieldError(msgType: msgType, tag: FIXTag.msgType, value: message.msgType ?? "")
        }
        self.message = message
        self.msgType = msgType
    }

    func string(_ tag: Int) throws(FIXFieldError) -> String {
        guard let value = message[tag] else { throw FIXFieldError(msgType: msgType, tag: tag, value: nil) }
        return value
    }

    func int(_ tag: Int) throws(FIXFieldError) -> Int {
        let text = try string(tag)
        guard let value = Int(text) else { throw FIXFieldError(msgType: msgType, tag: tag, value: text) }
        return value
    }

    func optionalInt(_ tag: Int) throws(FIXFieldError) -> Int? {
        message[tag] == nil ? nil : try int(tag)
    }

    func decimal(_ tag: Int) throws(FIXFieldError) -> FIXDecimal {
        let text = try string(tag)
        guard let value = FIXDecimal(text) else { throw FIXFieldError(msgType: msgType, tag: tag, value: text) }
        return value
    }

    func optionalDecimal(_ tag: Int) throws(FIXFieldError) -> FIXDecimal? {
        message[tag] == nil ? nil : try decimal(tag)
    }

    func timestamp(_ tag: Int) throws(FIXFieldError) -> FIXTimestamp {
        let text = try string(tag)
        guard let value = FIXTimestamp(fixString: text) else {
            throw FIXFieldError(msgType: msgType, tag: tag, value: text)
        }
        return value
    }

    func optionalTimestamp(_ tag: Int) throws(FIXFieldError) -> FIXTimestamp? {
        message[tag] == nil ? nil : try timestamp(tag)
    }

    func flag(_ tag: Int) -> Bool { message[tag] == "Y" }
}

/// Appends optional fields without a chain of `if let`s.
struct FIXFieldList {
    var fields: [FIXField] = []

    mutating func add(_ tag: Int, _ value: String?) {
        if let value { fields.append(FIXField(tag, value)) }
    }

    mutating func add(_ tag: Int, _ value: (some CustomStringConvertible)?) {
        if let value { fields.append(FIXField(tag, value.description)) }
    }

    mutating func add(_ tag: Int, flag: Bool) {
        if flag { fields.append(FIXField(tag, "Y")) }
    }
}

// MARK: - Code sets

/// Side(54). Open sets: a value the venue sends that is not listed here still parses.
public struct FIXSide: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let buy = FIXSide(rawValue: "1")
    public static let sell = FIXSide(rawValue: "2")
    public static let sellShort = FIXSide(rawValue: "5")
    public var description: String { rawValue }
}

/// OrdType(40).
public struct FIXOrdType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let market = FIXOrdType(rawValue: "1")
    public static let limit = FIXOrdType(rawValue: "2")
    public var description: String { rawValue }
}

/// TimeInForce(59).
public struct FIXTimeInForce: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let day = FIXTimeInForce(rawValue: "0")
    public static let goodTillCancel = FIXTimeInForce(rawValue: "1")
    public static let immediateOrCancel = FIXTimeInForce(rawValue: "3")
    public static let fillOrKill = FIXTimeInForce(rawValue: "4")
    public var description: String { rawValue }
}

/// ExecType(150).
public struct FIXExecType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let new = FIXExecType(rawValue: "0")
    public static let doneForDay = FIXExecType(rawValue: "3")
    public static let canceled = FIXExecType(rawValue: "4")
    public static let replaced = FIXExecType(rawValue: "5")
    public static let pendingCancel = FIXExecType(rawValue: "6")
    public static let rejected = FIXExecType(rawValue: "8")
    public static let pendingNew = FIXExecType(rawValue: "A")
    public static let expired = FIXExecType(rawValue: "C")
    public static let trade = FIXExecType(rawValue: "F")
    public static let orderStatus = FIXExecType(rawValue: "I")
    public var description: String { rawValue }
}

/// OrdStatus(39).
public struct FIXOrdStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let new = FIXOrdStatus(rawValue: "0")
    public static let partiallyFilled = FIXOrdStatus(rawValue: "1")
    public static let filled = FIXOrdStatus(rawValue: "2")
    public static let doneForDay = FIXOrdStatus(rawValue: "3")
    public static let canceled = FIXOrdStatus(rawValue: "4")
    public static let pendingCancel = FIXOrdStatus(rawValue: "6")
    public static let rejected = FIXOrdStatus(rawValue: "8")
    public static let pendingNew = FIXOrdStatus(rawValue: "A")
    public static let expired = FIXOrdStatus(rawValue: "C")
    public var description: String { rawValue }
}

// MARK: - Session messages

/// Logon(A). EncryptMethod(98) is always 0 (none): transport security is TLS's job.
public struct FIXLogon: Hashable, Sendable, CustomStringConvertible {
    public var heartBtInt: Int
    public var resetSeqNumFlag: Bool
    /// Username(553) and Password(554), as brokers ask for them on Logon.
    public var username: String?
    public var password: String?

    public init(heartBtInt: Int, resetSeqNumFlag: Bool = false, username: String? = nil, password: String? = nil) {
        self.heartBtInt = heartBtInt
        self.resetSeqNumFlag = resetSeqNumFlag
        self.username = username
        self.password = password
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "A")
        heartBtInt = try r.int(FIXTag.heartBtInt)
        resetSeqNumFlag = r.flag(FIXTag.resetSeqNumFlag)
        username = message[FIXTag.username]
        password = message[FIXTag.password]
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.encryptMethod, "0")
        f.add(FIXTag.heartBtInt, String(heartBtInt))
        f.add(FIXTag.resetSeqNumFlag, flag: resetSeqNumFlag)
        if let username { f.add(FIXTag.username, username) }
        if let password { f.add(FIXTag.password, password) }
        return FIXMessage(msgType: "A", fields: f.fields)
    }

    public var description: String {
        "Logon(HeartBtInt=\(heartBtInt) ResetSeqNumFlag=\(resetSeqNumFlag ? "Y" : "N") Username=\(username ?? "-") "
            + "Password=\(password == nil ? "-" : "***"))"
    }
}

/// Heartbeat(0), answering a TestRequest when `testReqID` is set.
public struct FIXHeartbeat: Hashable, Sendable {
    public var testReqID: String?
    public init(testReqID: String? = nil) { self.testReqID = testReqID }
    public init(_ message: FIXMessage) throws(FIXFieldError) {
        testReqID = try FIXReader(message, expecting: "0").message[FIXTag.testReqID]
    }
    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.testReqID, testReqID)
        return FIXMessage(msgType: "0", fields: f.fields)
    }
}

/// TestRequest(1).
public struct FIXTestRequest: Hashable, Sendable {
    public var testReqID: String
    public init(testReqID: String) { self.testReqID = testReqID }
    public init(_ message: FIXMessage) throws(FIXFieldError) {
        testReqID = try FIXReader(message, expecting: "1").string(FIXTag.testReqID)
    }
    public var message: FIXMessage { FIXMessage(msgType: "1", fields: [FIXField(FIXTag.testReqID, testReqID)]) }
}

/// ResendRequest(2). `endSeqNo` 0 means "everything after beginSeqNo".
public struct FIXResendRequest: Hashable, Sendable {
    public var beginSeqNo: Int
    public var endSeqNo: Int
    public init(beginSeqNo: Int, endSeqNo: Int) {
        self.beginSeqNo = beginSeqNo
        self.endSeqNo = endSeqNo
    }
    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "2")
        beginSeqNo = try r.int(FIXTag.beginSeqNo)
        endSeqNo = try r.int(FIXTag.endSeqNo)
    }
    public var message: FIXMessage {
        FIXMessage(
            msgType: "2",
            fields: [FIXField(FIXTag.beginSeqNo, String(beginSeqNo)), FIXField(FIXTag.endSeqNo, String(endSeqNo))])
    }
}

/// Reject(3), the session-level refusal of one message.
public struct FIXReject: Hashable, Sendable {
    public var refSeqNum: Int
    public var refTagID: Int?
    public var refMsgType: String?
    public var reason: FIXSessionRejectReason?
    public var text: String?

    public init(
        refSeqNum: Int, refTagID: Int? = nil, refMsgType: String? = nil, reason: FIXSessionRejectReason? = nil,
        text: String? = nil
    ) {
        self.refSeqNum = refSeqNum
        self.refTagID = refTagID
        self.refMsgType = refMsgType
        self.reason = reason
        self.text = text
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "3")
        refSeqNum = try r.int(FIXTag.refSeqNum)
        refTagID = try r.optionalInt(FIXTag.refTagID)
        refMsgType = message[FIXTag.refMsgType]
        reason = try r.optionalInt(FIXTag.sessionRejectReason).map {
            FIXSessionRejectReason(rawValue: $0) ?? .other
        }
        text = message[FIXTag.text]
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.refSeqNum, String(refSeqNum))
        f.add(FIXTag.refTagID, refTagID)
        f.add(FIXTag.refMsgType, refMsgType)
        f.add(FIXTag.sessionRejectReason, reason?.rawValue)
        f.add(FIXTag.text, text)
        return FIXMessage(msgType: "3", fields: f.fields)
    }
}

/// SequenceReset(4): GapFill (skip session messages on resend) or Reset (force the number).
public struct FIXSequenceReset: Hashable, Sendable {
    public var newSeqNo: Int
    public var gapFill: Bool
    public init(newSeqNo: Int, gapFill: Bool) {
        self.newSeqNo = newSeqNo
        self.gapFill = gapFill
    }
    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "4")
        newSeqNo = try r.int(FIXTag.newSeqNo)
        gapFill = r.flag(FIXTag.gapFillFlag)
    }
    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.gapFillFlag, flag: gapFill)
        f.add(FIXTag.newSeqNo, String(newSeqNo))
        return FIXMessage(msgType: "4", fields: f.fields)
    }
}

/// Logout(5).
public struct FIXLogout: Hashable, Sendable {
    public var text: String?
    public init(text: String? = nil) { self.text = text }
    public init(_ message: FIXMessage) throws(FIXFieldError) {
        text = try FIXReader(message, expecting: "5").message[FIXTag.text]
    }
    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.text, text)
        return FIXMessage(msgType: "5", fields: f.fields)
    }
}

// MARK: - Application messages

/// NewOrderSingle(D).
public struct FIXNewOrderSingle: Hashable, Sendable {
    public var clOrdID: String
    public var symbol: String
    public var side: FIXSide
    public var transactTime: FIXTimestamp
    public var orderQty: FIXDecimal
    public var ordType: FIXOrdType
    /// Required for limit orders, absent for market orders.
    public var price: FIXDecimal?
    public var timeInForce: FIXTimeInForce?
    public var account: String?
    /// PossResend(97)=Y: "you may have seen this order already" — set when re-sending an order
    /// the broker might have received, so its ClOrdID check can refuse a duplicate.
    public var possResend: Bool

    public init(
        clOrdID: String, symbol: String, side: FIXSide, transactTime: FIXTimestamp, orderQty: FIXDecimal,
        ordType: FIXOrdType, price: FIXDecimal? = nil, timeInForce: FIXTimeInForce? = nil, account: String? = nil,
        possResend: Bool = false
    ) {
        self.clOrdID = clOrdID
        self.symbol = symbol
        self.side = side
        self.transactTime = transactTime
        self.orderQty = orderQty
        self.ordType = ordType
        self.price = price
        self.timeInForce = timeInForce
        self.account = account
        self.possResend = possResend
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "D")
        clOrdID = try r.string(11)
        symbol = try r.string(55)
        side = FIXSide(rawValue: try r.string(54))
        transactTime = try r.timestamp(60)
        orderQty = try r.decimal(38)
        ordType = FIXOrdType(rawValue: try r.string(40))
        price = try r.optionalDecimal(44)
        timeInForce = message[59].map(FIXTimeInForce.init(rawValue:))
        account = message[1]
        possResend = r.flag(FIXTag.possResend)
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(FIXTag.possResend, flag: possResend)
        f.add(11, clOrdID)
        f.add(1, account)
        f.add(55, symbol)
        f.add(54, side.rawValue)
        f.add(60, transactTime.fixString)
        f.add(38, orderQty)
        f.add(40, ordType.rawValue)
        f.add(44, price)
        f.add(59, timeInForce?.rawValue)
        return FIXMessage(msgType: "D", fields: f.fields)
    }
}

/// OrderCancelRequest(F).
public struct FIXOrderCancelRequest: Hashable, Sendable {
    public var origClOrdID: String
    public var clOrdID: String
    public var orderID: String?
    public var symbol: String
    public var side: FIXSide
    public var transactTime: FIXTimestamp
    public var orderQty: FIXDecimal?

    public init(
        origClOrdID: String, clOrdID: String, orderID: String? = nil, symbol: String, side: FIXSide,
        transactTime: FIXTimestamp, orderQty: FIXDecimal? = nil
    ) {
        self.origClOrdID = origClOrdID
        self.clOrdID = clOrdID
        self.orderID = orderID
        self.symbol = symbol
        self.side = side
        self.transactTime = transactTime
        self.orderQty = orderQty
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "F")
        origClOrdID = try r.string(41)
        clOrdID = try r.string(11)
        orderID = message[37]
        symbol = try r.string(55)
        side = FIXSide(rawValue: try r.string(54))
        transactTime = try r.timestamp(60)
        orderQty = try r.optionalDecimal(38)
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(41, origClOrdID)
        f.add(37, orderID)
        f.add(11, clOrdID)
        f.add(55, symbol)
        f.add(54, side.rawValue)
        f.add(60, transactTime.fixString)
        f.add(38, orderQty)
        return FIXMessage(msgType: "F", fields: f.fields)
    }
}

/// OrderStatusRequest(H): "what do you know about this ClOrdID?" — the reconciliation question.
public struct FIXOrderStatusRequest: Hashable, Sendable {
    public var clOrdID: String
    public var orderID: String?
    public var symbol: String
    public var side: FIXSide

    public init(clOrdID: String, orderID: String? = nil, symbol: String, side: FIXSide) {
        self.clOrdID = clOrdID
        self.orderID = orderID
        self.symbol = symbol
        self.side = side
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "H")
        clOrdID = try r.string(11)
        orderID = message[37]
        symbol = try r.string(55)
        side = FIXSide(rawValue: try r.string(54))
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(37, orderID)
        f.add(11, clOrdID)
        f.add(55, symbol)
        f.add(54, side.rawValue)
        return FIXMessage(msgType: "H", fields: f.fields)
    }
}

/// OrderMassStatusRequest(AF). MassStatusReqType(585) 7 = all orders, 1 = for a security.
public struct FIXOrderMassStatusRequest: Hashable, Sendable {
    public var massStatusReqID: String
    public var massStatusReqType: Int
    public var symbol: String?

    public init(massStatusReqID: String, massStatusReqType: Int = 7, symbol: String? = nil) {
        self.massStatusReqID = massStatusReqID
        self.massStatusReqType = massStatusReqType
        self.symbol = symbol
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "AF")
        massStatusReqID = try r.string(584)
        massStatusReqType = try r.int(585)
        symbol = message[55]
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(584, massStatusReqID)
        f.add(585, String(massStatusReqType))
        f.add(55, symbol)
        return FIXMessage(msgType: "AF", fields: f.fields)
    }
}

/// ExecutionReport(8).
public struct FIXExecutionReport: Hashable, Sendable {
    public var orderID: String
    public var clOrdID: String?
    public var origClOrdID: String?
    public var execID: String
    public var execType: FIXExecType
    public var ordStatus: FIXOrdStatus
    public var symbol: String
    public var side: FIXSide
    public var orderQty: FIXDecimal?
    public var price: FIXDecimal?
    public var leavesQty: FIXDecimal
    public var cumQty: FIXDecimal
    public var avgPx: FIXDecimal
    public var lastQty: FIXDecimal?
    public var lastPx: FIXDecimal?
    public var ordRejReason: Int?
    /// MassStatusReqID(584), when this report answers an OrderMassStatusRequest.
    public var massStatusReqID: String?
    public var transactTime: FIXTimestamp?
    public var text: String?

    public init(
        orderID: String, clOrdID: String?, origClOrdID: String? = nil, execID: String, execType: FIXExecType,
        ordStatus: FIXOrdStatus, symbol: String, side: FIXSide, orderQty: FIXDecimal? = nil, price: FIXDecimal? = nil,
        leavesQty: FIXDecimal, cumQty: FIXDecimal, avgPx: FIXDecimal, lastQty: FIXDecimal? = nil,
        lastPx: FIXDecimal? = nil, ordRejReason: Int? = nil, massStatusReqID: String? = nil,
        transactTime: FIXTimestamp? = nil, text: String? = nil
    ) {
        self.orderID = orderID
        self.clOrdID = clOrdID
        self.origClOrdID = origClOrdID
        self.execID = execID
        self.execType = execType
        self.ordStatus = ordStatus
        self.symbol = symbol
        self.side = side
        self.orderQty = orderQty
        self.price = price
        self.leavesQty = leavesQty
        self.cumQty = cumQty
        self.avgPx = avgPx
        self.lastQty = lastQty
        self.lastPx = lastPx
        self.ordRejReason = ordRejReason
        self.massStatusReqID = massStatusReqID
        self.transactTime = transactTime
        self.text = text
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "8")
        orderID = try r.string(37)
        clOrdID = message[11]
        origClOrdID = message[41]
        execID = try r.string(17)
        execType = FIXExecType(rawValue: try r.string(150))
        ordStatus = FIXOrdStatus(rawValue: try r.string(39))
        symbol = try r.string(55)
        side = FIXSide(rawValue: try r.string(54))
        orderQty = try r.optionalDecimal(38)
        price = try r.optionalDecimal(44)
        leavesQty = try r.decimal(151)
        cumQty = try r.decimal(14)
        avgPx = try r.decimal(6)
        lastQty = try r.optionalDecimal(32)
        lastPx = try r.optionalDecimal(31)
        ordRejReason = try r.optionalInt(103)
        massStatusReqID = message[584]
        transactTime = try r.optionalTimestamp(60)
        text = message[58]
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(37, orderID)
        f.add(11, clOrdID)
        f.add(41, origClOrdID)
        f.add(584, massStatusReqID)
        f.add(17, execID)
        f.add(150, execType.rawValue)
        f.add(39, ordStatus.rawValue)
        f.add(103, ordRejReason)
        f.add(55, symbol)
        f.add(54, side.rawValue)
        f.add(38, orderQty)
        f.add(44, price)
        f.add(32, lastQty)
        f.add(31, lastPx)
        f.add(151, leavesQty)
        f.add(14, cumQty)
        f.add(6, avgPx)
        f.add(60, transactTime?.fixString)
        f.add(58, text)
        return FIXMessage(msgType: "8", fields: f.fields)
    }
}

/// OrderCancelReject(9). CxlRejResponseTo(434): 1 = cancel request, 2 = cancel/replace.
public struct FIXOrderCancelReject: Hashable, Sendable {
    public var orderID: String
    public var clOrdID: String
    public var origClOrdID: String
    public var ordStatus: FIXOrdStatus
    public var cxlRejResponseTo: String
    public var cxlRejReason: Int?
    public var text: String?

    public init(
        orderID: String, clOrdID: String, origClOrdID: String, ordStatus: FIXOrdStatus, cxlRejResponseTo: String = "1",
        cxlRejReason: Int? = nil, text: String? = nil
    ) {
        self.orderID = orderID
        self.clOrdID = clOrdID
        self.origClOrdID = origClOrdID
        self.ordStatus = ordStatus
        self.cxlRejResponseTo = cxlRejResponseTo
        self.cxlRejReason = cxlRejReason
        self.text = text
    }

    public init(_ message: FIXMessage) throws(FIXFieldError) {
        let r = try FIXReader(message, expecting: "9")
        orderID = try r.string(37)
        clOrdID = try r.string(11)
        origClOrdID = try r.string(41)
        ordStatus = FIXOrdStatus(rawValue: try r.string(39))
        cxlRejResponseTo = try r.string(434)
        cxlRejReason = try r.optionalInt(102)
        text = message[58]
    }

    public var message: FIXMessage {
        var f = FIXFieldList()
        f.add(37, orderID)
        f.add(11, clOrdID)
        f.add(41, origClOrdID)
        f.add(39, ordStatus.rawValue)
        f.add(434, cxlRejResponseTo)
        f.add(102, cxlRejReason)
        f.add(58, text)
        return FIXMessage(msgType: "9", fields: f.fields)
    }
}
