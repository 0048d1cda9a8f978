// libFuzzer target for the FIX 4.4 layer: the streaming decoder, the session state machine,
// dictionary validation and the typed messages. Built by Fuzz/run.sh with
// `swiftc -sanitize=fuzzer,address`, against BatonFIX compiled as a module (with a generated
// Bundle.module accessor for its dictionary, see run.sh).
//
// The input is what a counterparty sends us (BROKER → BATON). It is used twice:
// - as is: the raw byte stream, which mostly exercises framing (a mutation almost always
//   breaks BodyLength or CheckSum);
// - repaired: split at each `8=` that starts a message, with BodyLength(9) and CheckSum(10)
//   recomputed by the harness, so that mutated fields reach the session and the validator
//   instead of being dropped as garbled. In that pass the three digits the input gives as
//   CheckSum are not a checksum but how many seconds pass after the message (`onTick`), so the
//   fuzzer also controls time: heartbeats, TestRequest, logon and logout timeouts.
// The repaired stream goes to three sessions: an acceptor awaiting Logon (the venue simulator's
// side, which takes HeartBtInt from the counterparty), an initiator with sent messages to answer
// ResendRequest with, and an initiator that resets sequence numbers on Logon, checks
// SendingTime latency, does not validate and never re-sends application messages.
//
// Properties checked on every input (a violation traps, which libFuzzer reports as a crash):
// - nothing traps, overflows or reads out of bounds (ASan and Swift's own checks);
// - the decoder gives the same messages and errors whether the bytes come in one piece, in two
//   pieces split at a point taken from the input, or one byte at a time;
// - a decoded message re-encodes to a frame that decodes again, and re-encoding is stable;
//   a typed message (ExecutionReport, Reject, Logon …) that parses survives message → typed →
//   message → typed unchanged;
// - what a session asks its shell to do is consistent: every message it sends decodes as one
//   whole frame with our CompIDs and conforms to the FIX 4.4 dictionary; every new MsgSeqNum
//   it sends was persisted before (the persistence contract); applying its persist directives
//   to a copy of the store gives its store; after `disconnect` it is disconnected.
import BatonFIX
import Glibc

private let us = "BATON"
private let counterparty = "BROKER"
/// 2025-01-02 14:30:00 UTC, the SendingTime of the seeds.
private let start = FIXTimestamp(millisecondsSinceEpoch: 1_735_828_200_000)
private let dictionary = FIXDictionary.fix44

/// Loads the dictionary (and the other lazily built tables) before the first input: memory they
/// keep for the life of the process would otherwise be reported as that input's leak.
@_cdecl("LLVMFuzzerInitialize")
public func fixSessionFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let logon = FIXMessage(
        msgType: "A",
        fields: [
            FIXField(FIXTag.senderCompID, counterparty), FIXField(FIXTag.targetCompID, us),
            FIXField(FIXTag.msgSeqNum, "1"), FIXField(FIXTag.sendingTime, start.fixString),
            FIXField(FIXTag.encryptMethod, "0"), FIXField(FIXTag.heartBtInt, "30"),
        ]
    ).encoded()
    logon.withUnsafeBufferPointer { _ = fixSessionFuzzerTestOneInput($0.baseAddress!, $0.count) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fixSessionFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // Raw pass: decoder invariants, and a session that gets the bytes in two pieces.
    let whole = decode([bytes[...]])
    let split = size > 1 ? Int(bytes[size - 1]) % size : 0
    let pieces = decode([bytes[..<split], bytes[split...]])
    require(whole == pieces, "split at \(split) changed what decodes")
    if size <= 1024 {
        require(whole == decode(bytes.map { [$0][...] }), "byte-wise feeding changed what decodes")
    }
    for case .message(let message) in whole { check(message) }
    var raw = Harness(acceptor())
    raw.connect()
    raw.receive(bytes[..<split], advancing: 1)
    raw.receive(bytes[split...], advancing: 1)

    // Repaired pass.
    let messages = repaired(bytes)
    var sessions = [Harness(acceptor()), Harness(initiator()), Harness(resettingInitiator())]
    for i in sessions.indices { sessions[i].connect() }
    for (frame, seconds) in messages {
        for message in decode([frame[...]]) {
            if case .message(let message) = message { check(message) }
        }
        for i in sessions.indices { sessions[i].receive(frame[...], advancing: seconds) }
    }
    for i in sessions.indices { sessions[i].finish() }
    return 0
}

// MARK: - Decoding

private enum Decoded: Equatable {
    case message(FIXMessage)
    case error(FIXDecodingError)
}

private func decode(_ chunks: [ArraySlice<UInt8>]) -> [Decoded] {
    var decoder = FIXMessageDecoder()
    var result: [Decoded] = []
    for chunk in chunks {
        decoder.append(chunk)
        while true {
            do {
                guard let message = try decoder.next() else { break }
                result.append(.message(message))
            } catch {
                result.append(.error(error))
                _ = error.description
                _ = error.sessionRejectReason
            }
        }
    }
    return result
}

/// A message that decoded: it must re-encode to a frame that decodes, stably; it must not trap
/// the validator; and the typed view of it must survive a round trip.
private func check(_ message: FIXMessage) {
    // BeginString is kept as a String: bytes that are not UTF-8 come back as U+FFFD (3 bytes
    // each), so a BeginString the decoder took (at most 16 bytes) may re-encode longer than it
    // accepts. Such a message is refused by the session anyway (BeginString mismatch).
    if message.beginString.utf8.count <= 16 {
        let encoded = message.encoded()
        let again = decode([encoded[...]])
        guard again.count == 1, case .message(let reparsed) = again[0] else {
            failed("\(message) re-encodes to a frame that does not decode: \(again)")
        }
        require(reparsed.encoded() == encoded, "re-encoding \(message) is not stable")
    }
    for error in dictionary.validate(message) {
        _ = error.description
        _ = error.sessionRejectReason
    }
    _ = message.description
    roundTrip(message, FIXLogon.init, \.message)
    roundTrip(message, FIXHeartbeat.init, \.message)
    roundTrip(message, FIXTestRequest.init, \.message)
    roundTrip(message, FIXResendRequest.init, \.message)
    roundTrip(message, FIXReject.init, \.message)
    roundTrip(message, FIXSequenceReset.init, \.message)
    roundTrip(message, FIXLogout.init, \.message)
    roundTrip(message, FIXNewOrderSingle.init, \.message)
    roundTrip(message, FIXOrderCancelRequest.init, \.message)
    roundTrip(message, FIXOrderStatusRequest.init, \.message)
    roundTrip(message, FIXOrderMassStatusRequest.init, \.message)
    roundTrip(message, FIXExecutionReport.init, \.message)
    roundTrip(message, FIXOrderCancelReject.init, \.message)
}

private func roundTrip<T: Equatable>(
    _ message: FIXMessage, _ parse: (FIXMessage) throws(FIXFieldError) -> T, _ render: (T) -> FIXMessage
) {
    let typed: T
    do {
        typed = try parse(message)
    } catch {
        _ = error.description  // names the tag through the dictionary
        return
    }
    let rendered = render(typed)
    do {
        let again = try parse(rendered)
        require(again == typed, "\(T.self) round trip changed \(typed) into \(again)")
    } catch {
        failed("\(T.self) \(typed) renders as \(rendered), which does not parse: \(error)")
    }
}

/// The input cut into messages, each re-framed with a correct BodyLength and CheckSum, and the
/// seconds to let pass after it (the digits the input declared as CheckSum). Bytes before the
/// first `8=` are passed through as they are, as line noise before a message.
private func repaired(_ bytes: [UInt8]) -> [(frame: [UInt8], seconds: Int)] {
    var starts: [Int] = []
    var i = 0
    while i + 1 < bytes.count {
        if bytes[i] == UInt8(ascii: "8") && bytes[i + 1] == UInt8(ascii: "=") && (i == 0 || bytes[i - 1] == fixSOH) {
            starts.append(i)
        }
        i += 1
    }
    var result: [(frame: [UInt8], seconds: Int)] = []
    if starts.first != 0 { result.append((Array(bytes[..<(starts.first ?? bytes.count)]), 0)) }
    for (n, begin) in starts.enumerated() {
        let piece = bytes[begin..<(n + 1 < starts.count ? starts[n + 1] : bytes.count)]
        // 8=<BeginString><SOH>, kept as sent so that a wrong one still reaches the session.
        guard let soh = piece.firstIndex(of: fixSOH) else {
            result.append((Array(piece), 0))
            continue
        }
        let beginString = piece[(begin + 2)..<soh]
        var body = piece[(soh + 1)...]
        if body.starts(with: "9=".utf8), let end = body.firstIndex(of: fixSOH) { body = body[(end + 1)...] }
        var seconds = 0
        if let trailer = lastCheckSumField(body) {
            for byte in body[(trailer + 3)...].prefix(3) where byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                seconds = seconds * 10 + Int(byte - UInt8(ascii: "0"))
            }
            body = body[..<trailer]
        }
        var frame = Array("8=".utf8) + beginString + [fixSOH] + Array("9=\(body.count)".utf8) + [fixSOH] + body
        let sum = frame.reduce(UInt8(0)) { $0 &+ $1 }
        frame += Array("10=".utf8) + Array(String(1000 + Int(sum)).utf8.dropFirst()) + [fixSOH]
        result.append((frame, seconds))
    }
    return result
}

/// Index of the `1` of the last `10=` that starts a field (after a SOH), if any.
private func lastCheckSumField(_ body: ArraySlice<UInt8>) -> Int? {
    var i = body.endIndex - 3
    while i > body.startIndex {
        if body[i] == UInt8(ascii: "1") && body[i + 1] == UInt8(ascii: "0") && body[i + 2] == UInt8(ascii: "=")
            && body[i - 1] == fixSOH
        {
            return i
        }
        i -= 1
    }
    return nil
}

// MARK: - Sessions

private func acceptor() -> FIXSession {
    FIXSession(settings: FIXSessionSettings(role: .acceptor, senderCompID: us, targetCompID: counterparty))
}

/// Has sent application messages 2 and 3 (a NewOrderSingle, an OrderCancelRequest) and session
/// messages 1 and 4, so a ResendRequest mixes re-sends and gap fills.
private func initiator() -> FIXSession {
    func sent(_ seq: Int, _ type: String, _ body: [FIXField]) -> FIXMessage {
        FIXMessage(
            msgType: type,
            fields: [
                FIXField(FIXTag.senderCompID, us), FIXField(FIXTag.targetCompID, counterparty),
                FIXField(FIXTag.msgSeqNum, String(seq)), FIXField(FIXTag.sendingTime, start.fixString),
            ] + body)
    }
    let order = sent(
        2, "D",
        [
            FIXField(11, "ORD-1"), FIXField(55, "AAPL"), FIXField(54, "1"), FIXField(60, start.fixString),
            FIXField(38, "100"), FIXField(40, "2"), FIXField(44, "187.25"), FIXField(59, "0"),
        ])
    let cancel = sent(
        3, "F",
        [
            FIXField(41, "ORD-1"), FIXField(11, "ORD-2"), FIXField(55, "AAPL"), FIXField(54, "1"),
            FIXField(60, start.fixString),
        ])
    return FIXSession(
        settings: FIXSessionSettings(role: .initiator, senderCompID: us, targetCompID: counterparty),
        store: FIXSessionStore(nextSenderSeqNum: 5, nextTargetSeqNum: 1, sentApplicationMessages: [2: order, 3: cancel]))
}

private func resettingInitiator() -> FIXSession {
    var settings = FIXSessionSettings(
        role: .initiator, senderCompID: us, targetCompID: counterparty, heartBtInt: 5, resetSeqNumOnLogon: true,
        validatesMessages: false, maxQueuedMessages: 8, resendsApplicationMessages: false)
    settings.username = "baton"
    settings.password = "secret"
    settings.maxLatencySeconds = 120
    return FIXSession(settings: settings, store: FIXSessionStore(nextSenderSeqNum: 7, nextTargetSeqNum: 3))
}

/// A session and what its shell would know: the store as rebuilt from `persist` directives.
private struct Harness {
    var session: FIXSession
    var store: FIXSessionStore
    var now = start

    init(_ session: FIXSession) {
        self.session = session
        self.store = session.store
    }

    mutating func connect() {
        carryOut(session.onConnected(now: now), "onConnected")
    }

    mutating func receive(_ bytes: ArraySlice<UInt8>, advancing seconds: Int) {
        carryOut(session.onReceived(bytes: bytes, now: now), "onReceived")
        now = now.adding(seconds: seconds)
        carryOut(session.onTick(now: now), "onTick")
        if session.status == .disconnected {
            // The shell reconnects; sequence numbers carry over.
            carryOut(session.onConnected(now: now), "onConnected again")
        }
    }

    mutating func finish() {
        // What the application does once logged on, and the end of the connection.
        if session.status == .active {
            let order = FIXMessage(
                msgType: "D",
                fields: [
                    FIXField(11, "ORD-9"), FIXField(55, "MSFT"), FIXField(54, "2"), FIXField(60, now.fixString),
                    FIXField(38, "5"), FIXField(40, "1"),
                ])
            do {
                carryOut(try session.send(order, now: now), "send")
            } catch {
                failed("active session refused an order: \(error)")
            }
        }
        carryOut(session.logout(text: "done", now: now), "logout")
        now = now.adding(seconds: 60)
        carryOut(session.onTick(now: now), "onTick after logout")
        require(session.status == .disconnected, "still \(session.status) a minute after logout")
        carryOut(session.onDisconnected(now: now), "onDisconnected")
    }

    private mutating func carryOut(_ directives: [FIXSessionDirective], _ event: String) {
        var persisted: Set<Int> = []
        var status: FIXSessionStatus?
        for directive in directives {
            _ = directive.description
            switch directive {
            case .persist(let change):
                if case .sent(let seq, _) = change {
                    require(seq == store.nextSenderSeqNum, "\(event): persisted sent \(seq), next was \(store.nextSenderSeqNum)")
                    persisted.insert(seq)
                }
                store.apply(change)
            case .send(let message, let bytes):
                checkOutbound(message, bytes, persisted: persisted, event)
            case .statusChanged(let new):
                status = new
            case .disconnect:
                status = .disconnected
            case .deliver(let message):
                require(message.msgType.map { $0 != "A" && $0 != "0" && $0 != "1" } ?? true, "delivered \(message)")
            case .log:
                break
            }
        }
        require(store == session.store, "\(event): the persisted store differs from the session's")
        if let status { require(status == session.status, "\(event): last status \(status), session \(session.status)") }
        // An acceptor takes HeartBtInt from the counterparty's Logon: it must have been bounded.
        require(
            session.settings.role == .initiator || (0...FIXSession.maxHeartBtInt).contains(session.heartBtInt),
            "\(event): acceptor took HeartBtInt \(session.heartBtInt)")
    }

    private func checkOutbound(_ message: FIXMessage, _ bytes: [UInt8], persisted: Set<Int>, _ event: String) {
        let decoded = decode([bytes[...]])
        guard decoded.count == 1, case .message(let sent) = decoded[0] else {
            failed("\(event): sent bytes do not decode as one message: \(decoded)")
        }
        require(sent.encoded() == bytes, "\(event): sent bytes are not the canonical encoding")
        require(
            sent[FIXTag.senderCompID] == us && sent[FIXTag.targetCompID] == counterparty, "\(event): sent \(sent)")
        guard let seq = sent.msgSeqNum, seq >= 1 else { failed("\(event): sent without MsgSeqNum: \(sent)") }
        // A new message (not a re-send or gap fill) goes out only under a number already persisted.
        if !sent.isPossDup {
            require(persisted.contains(seq), "\(event): sent MsgSeqNum \(seq) before persisting it")
        }
        let errors = dictionary.validate(sent)
        require(errors.isEmpty, "\(event): sent an invalid message \(sent): \(errors)")
    }
}

/// precondition, but the message is printed (with -O a failed precondition shows only its line).
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", line: UInt = #line) {
    if !condition { failed(message(), line: line) }
}

private func failed(_ message: String, line: UInt = #line) -> Never {
    let text = Array("FIXSessionFuzzer.swift:\(line): \(message)\n".utf8)
    _ = text.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
    fatalError(message)
}
