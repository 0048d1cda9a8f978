import BatonFIX
import Testing

/// Adds the standard header a session would stamp, so a built message can be validated.
func stamped(_ message: FIXMessage, seq: Int = 1) -> FIXMessage {
    var m = message
    m.set(49, "BATON1")
    m.set(56, "VENUE")
    m.set(34, String(seq))
    m.set(52, sampleTime.fixString)
    return m
}

@Suite("FIX dictionary")
struct FIXDictionaryTests {
    let dictionary = FIXDictionary.fix44

    @Test("the bundled FIX 4.4 dictionary loads with plausible contents")
    func loads() throws {
        #expect(dictionary.beginString == "FIX.4.4")
        #expect(dictionary.fields.count >= 900)
        #expect(dictionary.messages.count >= 90)
        #expect(dictionary.field(55)?.name == "Symbol")
        #expect(dictionary.field(54)?.enumValues["1"] == "BUY")
        #expect(dictionary.message("D")?.name == "NewOrderSingle")
        #expect(dictionary.message("0")?.isAdmin == true)
        #expect(dictionary.header.contains(.field(tag: 34, required: true)))
        // NoPartyIDs(453) in NewOrderSingle, delimited by PartyID(448).
        let parties = dictionary.message("D")?.members.compactMap { member -> FIXDictionary.Group? in
            if case .group(let g) = member, g.counterTag == 453 { return g }
            return nil
        }.first
        #expect(parties?.delimiterTag == 448)
        #expect(dictionary.dataFieldLengthTags == FIXDecoderOptions.fix44DataFields)
    }

    @Test("broken dictionary XML is an error that says where, not a crash")
    func brokenXML() {
        #expect(throws: FIXDictionaryError.self) { try FIXDictionary(xml: Array("<fix><fields>".utf8)) }
        #expect(throws: FIXDictionaryError.self) {
            try FIXDictionary(
                xml: Array(
                    "<fix><messages><message name='X' msgtype='X'><field name='Nope' required='Y'/></message></messages><fields/></fix>"
                        .utf8))
        }
    }

    static let builtMessages: [(String, FIXMessage)] = [
        ("Logon", FIXLogon(heartBtInt: 30, resetSeqNumFlag: true).message),
        ("Heartbeat", FIXHeartbeat(testReqID: "T1").message),
        ("TestRequest", FIXTestRequest(testReqID: "T1").message),
        ("ResendRequest", FIXResendRequest(beginSeqNo: 3, endSeqNo: 0).message),
        (
            "Reject",
            FIXReject(refSeqNum: 4, refTagID: 55, refMsgType: "D", reason: .requiredTagMissing, text: "x").message
        ),
        ("SequenceReset", FIXSequenceReset(newSeqNo: 9, gapFill: true).message),
        ("Logout", FIXLogout(text: "bye").message),
        (
            "NewOrderSingle",
            FIXNewOrderSingle(
                clOrdID: "b-1-2", symbol: "AAPL", side: .sell, transactTime: sampleTime, orderQty: 10, ordType: .limit,
                price: FIXDecimal("99.5"), timeInForce: .goodTillCancel, account: "ACC", possResend: true
            ).message
        ),
        (
            "OrderCancelRequest",
            FIXOrderCancelRequest(
                origClOrdID: "b-1-2", clOrdID: "b-1-3", orderID: "O1", symbol: "AAPL", side: .sell,
                transactTime: sampleTime,
                orderQty: 10
            ).message
        ),
        ("OrderStatusRequest", FIXOrderStatusRequest(clOrdID: "b-1-2", symbol: "AAPL", side: .buy).message),
        ("OrderMassStatusRequest", FIXOrderMassStatusRequest(massStatusReqID: "M1", massStatusReqType: 7).message),
        (
            "ExecutionReport",
            FIXExecutionReport(
                orderID: "O1", clOrdID: "b-1-2", execID: "E1", execType: .trade, ordStatus: .partiallyFilled,
                symbol: "AAPL", side: .buy, orderQty: 10, price: FIXDecimal("99.5"), leavesQty: 4, cumQty: 6,
                avgPx: FIXDecimal(units: 995, scale: 1), lastQty: 6, lastPx: FIXDecimal("99.5"), ordRejReason: nil,
                transactTime: sampleTime
            ).message
        ),
        (
            "OrderCancelReject",
            FIXOrderCancelReject(
                orderID: "O1", clOrdID: "b-1-3", origClOrdID: "b-1-2", ordStatus: .filled, cxlRejReason: 0
            )
            .message
        ),
    ]

    @Test("every typed builder produces a message the dictionary accepts, and parses back", arguments: builtMessages)
    func builtMessagesValidate(name: String, message: FIXMessage) throws {
        let full = stamped(message)
        #expect(dictionary.validate(full) == [], "\(name)")
        // Through the wire and back.
        let decoded = try #require(decodeAll(full.encoded()).messages.first)
        #expect(dictionary.validate(decoded) == [], "\(name)")
        switch name {
        case "NewOrderSingle":
            let order = try FIXNewOrderSingle(decoded)
            #expect(order.possResend && order.price == FIXDecimal("99.5") && order.transactTime == sampleTime)
        case "ExecutionReport":
            let report = try FIXExecutionReport(decoded)
            #expect(report.execID == "E1" && report.cumQty == 6 && report.lastPx == FIXDecimal("99.5"))
        case "Logon":
            #expect(try FIXLogon(decoded) == FIXLogon(heartBtInt: 30, resetSeqNumFlag: true))
        case "Reject":
            #expect(try FIXReject(decoded).reason == .requiredTagMissing)
        default:
            break
        }
    }

    struct ValidationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var message: FIXMessage
        var kind: FIXValidationError.Kind
        var tag: Int?
        var reason: FIXSessionRejectReason
        var testDescription: String { name }
    }

    static let order = stamped(
        FIXNewOrderSingle(
            clOrdID: "C1", symbol: "AAPL", side: .buy, transactTime: sampleTime, orderQty: 5, ordType: .market
        ).message)

    static func order(_ change: (inout FIXMessage) -> Void) -> FIXMessage {
        var m = order
        change(&m)
        return m
    }

    static let validationCases: [ValidationCase] = [
        ValidationCase(
            name: "unknown MsgType", message: stamped(FIXMessage(msgType: "ZZ")), kind: .unknownMsgType, tag: 35,
            reason: .invalidMsgType),
        ValidationCase(
            name: "required field missing (Side 54)", message: order { $0.remove(54) }, kind: .requiredFieldMissing,
            tag: 54, reason: .requiredTagMissing),
        ValidationCase(
            name: "required header field missing (SendingTime 52)", message: order { $0.remove(52) },
            kind: .requiredFieldMissing, tag: 52, reason: .requiredTagMissing),
        ValidationCase(
            name: "field not defined for the message (BeginSeqNo 7 in D)",
            message: order { $0.fields.append(FIXField(7, "1")) }, kind: .fieldNotDefinedForMessage, tag: 7,
            reason: .tagNotDefinedForMessageType),
        ValidationCase(
            name: "tag not in the dictionary", message: order { $0.fields.append(FIXField(9999, "1")) },
            kind: .undefinedTag, tag: 9999, reason: .invalidTagNumber),
        ValidationCase(
            name: "INT wrong type (MsgSeqNum)", message: order { $0.set(34, "1a") },
            kind: .wrongValueType(expected: "SEQNUM"), tag: 34, reason: .incorrectDataFormat),
        ValidationCase(
            name: "QTY wrong type", message: order { $0.set(38, "ten") }, kind: .wrongValueType(expected: "QTY"),
            tag: 38, reason: .incorrectDataFormat),
        ValidationCase(
            name: "PRICE wrong type", message: order { $0.set(44, "1,5") }, kind: .wrongValueType(expected: "PRICE"),
            tag: 44, reason: .incorrectDataFormat),
        ValidationCase(
            name: "UTCTIMESTAMP wrong type", message: order { $0.set(60, "2024-01-02 03:04:05") },
            kind: .wrongValueType(expected: "UTCTIMESTAMP"), tag: 60, reason: .incorrectDataFormat),
        ValidationCase(
            name: "CHAR wrong type", message: order { $0.set(54, "12") }, kind: .wrongValueType(expected: "CHAR"),
            tag: 54, reason: .incorrectDataFormat),
        ValidationCase(
            name: "BOOLEAN wrong type", message: order { $0.set(97, "yes") },
            kind: .wrongValueType(expected: "BOOLEAN"),
            tag: 97, reason: .incorrectDataFormat),
        ValidationCase(
            name: "value not in enum (Side 54=Z)", message: order { $0.set(54, "Z") }, kind: .valueNotInEnum, tag: 54,
            reason: .valueIncorrect),
        ValidationCase(
            name: "group count mismatch (NoPartyIDs says 2, one follows)",
            message: order {
                $0.fields += [FIXField(453, "2"), FIXField(448, "P1"), FIXField(447, "D"), FIXField(452, "1")]
            },
            kind: .groupCountMismatch(declared: 2, actual: 1), tag: 453, reason: .incorrectNumInGroupCount),
        ValidationCase(
            name: "duplicate tag outside a group", message: order { $0.fields.append(FIXField(55, "MSFT")) },
            kind: .duplicateTag, tag: 55, reason: .tagAppearsMoreThanOnce),
    ]

    @Test("validation catches each kind of error, naming tag and reason", arguments: validationCases)
    func validation(_ c: ValidationCase) {
        let errors = dictionary.validate(c.message)
        #expect(errors.first?.kind == c.kind, "\(errors)")
        #expect(errors.first?.tag == c.tag, "\(errors)")
        #expect(errors.first?.sessionRejectReason == c.reason)
        #expect(errors.first.map { !$0.description.isEmpty } == true)
    }

    @Test("a correct repeating group with two instances passes; tags repeat inside groups")
    func groups() {
        let m = Self.order {
            $0.fields += [
                FIXField(453, "2"), FIXField(448, "P1"), FIXField(447, "D"), FIXField(452, "1"), FIXField(448, "P2"),
                FIXField(447, "D"), FIXField(452, "3"),
            ]
        }
        #expect(dictionary.validate(m) == [])
        #expect(dictionary.validate(Self.order) == [])
    }

    @Test("required-field error names the field")
    func requiredNamesField() {
        let errors = dictionary.validate(Self.order { $0.remove(11) })
        #expect(errors.map(\.description) == ["required ClOrdID(11) missing in MsgType D"])
    }
}
