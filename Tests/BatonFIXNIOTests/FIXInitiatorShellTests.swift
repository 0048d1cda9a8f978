import BatonFIX
import BatonFIXNIO
import Foundation
import Testing

/// The initiator shell against `ScriptedBroker`, an in-test acceptor on 127.0.0.1, for what a
/// real engine will not do on request: stay away, drop the line, send garbage.
struct FIXInitiatorShellTests {
    private static func executionReport(_ clOrdID: String, execID: String) -> FIXMessage {
        FIXExecutionReport(
            orderID: "O-1", clOrdID: clOrdID, execID: execID, execType: .new, ordStatus: .new, symbol: "AAPL",
            side: .buy, orderQty: FIXDecimal(units: 100), price: FIXDecimal("187.25"),
            leavesQty: FIXDecimal(units: 100),
            cumQty: FIXDecimal(units: 0), avgPx: FIXDecimal(units: 0)
        ).message
    }

    private func makeInitiator(port: Int, directory: TemporaryDirectory, label: String) throws -> FIXInitiator {
        try FIXInitiator(
            settings: initiatorSettings(target: ScriptedBroker.compID), host: "127.0.0.1", port: port,
            storePath: directory.file("fix-BATON1.sqlite"), logger: testLogger(label),
            options: FIXInitiatorOptions(
                reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .milliseconds(400))))
    }

    /// Baton's replicas share one broker session: an initiator that requires a permit does not
    /// dial without one, starts at the permit's MsgSeqNum, never writes above its ceiling, and
    /// closes at once when the permit is revoked.
    @Test func aPermitGatesTheConnectionAndBoundsItsSequenceNumbers() async throws {
        let directory = try TemporaryDirectory("shell-permit")
        defer { directory.remove() }
        let broker = try await ScriptedBroker.start()
        defer { Task { await broker.stop() } }
        var options = FIXInitiatorOptions(
            reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .milliseconds(200)))
        options.requiresPermit = true
        let initiator = try FIXInitiator(
            settings: initiatorSettings(target: ScriptedBroker.compID, heartBtInt: 30), host: "127.0.0.1",
            port: broker.port, storePath: directory.file("fix-BATON1.sqlite"), logger: testLogger("shell-permit"),
            options: options)
        let running = Task { try await initiator.run() }
        defer { running.cancel() }

        try await Task.sleep(for: .milliseconds(300))
        #expect(broker.accepted == 0, "no permit, no connection")

        initiator.grant(FIXSessionPermit(firstSenderSeqNum: 500, senderSeqCeiling: 503))
        try await initiator.waitUntilActive(timeout: .seconds(5))
        #expect(broker.received("A").first?.msgSeqNum == 500, "starts above what an earlier owner could have sent")
        var written: [Int] = []
        var refusal: (any Error)?
        for n in 1...5 {
            do {
                written.append(try await initiator.send(limitOrder("P-\(n)")))
            } catch {
                refusal = error
                break
            }
        }
        #expect(written == [501, 502, 503])
        #expect(refusal != nil, "the fourth order would use MsgSeqNum 504, above the ceiling")
        try await Task.sleep(for: .milliseconds(100))
        #expect(broker.received.allSatisfy { ($0.msgSeqNum ?? 0) <= 503 }, "nothing above the ceiling reached the broker")
        #expect(await initiator.status().lastError?.contains("above the reserved ceiling 503") == true)

        // A wider permit lets it back in; a revoked one closes it and keeps it away.
        initiator.grant(FIXSessionPermit(firstSenderSeqNum: 1000, senderSeqCeiling: 2000))
        try await initiator.waitUntilActive(timeout: .seconds(5))
        #expect(broker.received("A").last?.msgSeqNum == 1000)
        let connections = broker.accepted
        initiator.revoke(reason: "lease lapsed")
        try await initiator.waitUntil("disconnected", timeout: .seconds(2)) { $0.session == .disconnected }
        try await Task.sleep(for: .milliseconds(400))
        #expect(broker.accepted == connections, "a revoked initiator does not dial again")
        #expect(broker.received("5").isEmpty, "revoked means closed at once, without a Logout")
    }

    @Test func redialsWithBackoffAndContinuesSequenceNumbersAfterADrop() async throws {
        let directory = try TemporaryDirectory("shell-reconnect")
        defer { directory.remove() }
        let port = try await freeLoopbackPort()
        let initiator = try makeInitiator(port: port, directory: directory, label: "shell-reconnect")
        let inbox = MessageInbox()
        _ = inbox.collect(initiator.applicationMessages)
        let running = Task { try await initiator.run() }
        defer { running.cancel() }

        // Nobody listens yet: attempts are spaced out (50 ms doubling to 400 ms), not a hot loop.
        try await Task.sleep(for: .milliseconds(1_500))
        let refused = await initiator.status()
        #expect(refused.failedConnectAttempts >= 3)
        #expect(refused.failedConnectAttempts <= 12)
        #expect(refused.lastError?.contains("cannot connect to 127.0.0.1:\(port)") == true)
        #expect(refused.connections == 0)
        await #expect(throws: FIXInitiatorError.notLoggedOn(.disconnected)) {
            try await initiator.send(limitOrder("NEVER-1"))
        }

        let broker = try await ScriptedBroker.start(port: port)
        defer { Task { await broker.stop() } }
        try await initiator.waitUntilActive(timeout: .seconds(5))
        #expect(broker.received("A").first?.msgSeqNum == 1)
        try await broker.send(Self.executionReport("BATON-1-1", execID: "E-1"))
        let report = try await inbox.first("ExecutionReport E-1") { $0[17] == "E-1" }
        #expect(report[11] == "BATON-1-1")
        let firstSeq = try await initiator.send(limitOrder("BATON-1-2"))
        // send() returned, so the order is in the store file already (read through a second
        // connection, as a restarted process would).
        let onDisk = try FIXSessionDatabase(
            path: directory.file("fix-BATON1.sqlite"), settings: initiatorSettings(target: ScriptedBroker.compID)
        ).load()
        #expect(onDisk.nextSenderSeqNum > firstSeq)
        #expect(onDisk.sentApplicationMessages[firstSeq]?[11] == "BATON-1-2")

        // The line drops without a Logout: redial, Logon continues the sequence, no reset.
        let beforeDrop = await initiator.status()
        #expect(beforeDrop.nextSenderSeqNum == firstSeq + 1)
        await broker.dropConnections()
        try await initiator.waitUntil("a second logon", timeout: .seconds(5)) {
            $0.connections == 2 && $0.session == .active
        }
        let logons = broker.received("A")
        #expect(logons.count == 2)
        #expect(logons.last?.msgSeqNum == beforeDrop.nextSenderSeqNum)
        #expect(logons.allSatisfy { $0[FIXTag.resetSeqNumFlag] == nil })
        #expect(await initiator.status().reconnects == 1)
        #expect(await initiator.status().lastError == "connection closed")

        let secondSeq = try await initiator.send(limitOrder("BATON-1-3"))
        #expect(secondSeq == beforeDrop.nextSenderSeqNum + 1)
        try await eventually("the broker to receive BATON-1-3") { broker.received("D").count == 2 }
        #expect(broker.received("D").map { $0[11] } == ["BATON-1-2", "BATON-1-3"])
        #expect(broker.received("D").last?.msgSeqNum == secondSeq)
        // The order refused while disconnected was never sent later.
        #expect(!broker.received.contains { $0[11] == "NEVER-1" })

        initiator.requestShutdown()
        try await running.value
        #expect(await initiator.status().lastDisconnect?.hasPrefix("Logout confirmed") == true)
    }

    /// A message with a bad field gets a session Reject(3) and a log line; a message that fails
    /// the dictionary too; a garbled frame (bad CheckSum) and plain garbage are dropped. The
    /// session stays up, and the next good message is delivered.
    @Test func malformedInboundMessagesAreRejectedWithoutDroppingTheSession() async throws {
        let directory = try TemporaryDirectory("shell-garbled")
        defer { directory.remove() }
        let broker = try await ScriptedBroker.start()
        defer { Task { await broker.stop() } }
        let initiator = try makeInitiator(port: broker.port, directory: directory, label: "shell-garbled")
        let inbox = MessageInbox()
        _ = inbox.collect(initiator.applicationMessages)
        let running = Task { try await initiator.run() }
        defer { running.cancel() }
        try await initiator.waitUntilActive(timeout: .seconds(5))
        let now = FIXInitiator.systemTime().fixString

        // A tag that is not a number, in an otherwise sound frame.
        let badFieldSeq = broker.takeSeqNum()
        try await broker.sendRaw(
            ScriptedBroker.frame(
                body: "35=8\u{01}49=BROKER\u{01}56=BATON1\u{01}34=\(badFieldSeq)\u{01}52=\(now)\u{01}x7=1\u{01}"))
        try await eventually("a Reject of MsgSeqNum \(badFieldSeq)") {
            broker.received("3").contains { $0[45] == String(badFieldSeq) }
        }

        // A garbled frame and some noise: FIX says ignore, not reject.
        let garbledSeq = broker.state.withLock { $0.nextSeqNum }
        try await broker.sendRaw(
            ScriptedBroker.frame(
                body: "35=0\u{01}49=BROKER\u{01}56=BATON1\u{01}34=\(garbledSeq)\u{01}52=\(now)\u{01}",
                corruptCheckSum: true))
        try await broker.sendRaw(Array("this is not FIX at all\u{01}".utf8))

        // An ExecutionReport without ExecID(17): sound framing, fails the dictionary.
        var incomplete = Self.executionReport("BATON-9-1", execID: "E-9")
        incomplete.remove(17)
        let incompleteBytes = broker.stamp(incomplete)
        let incompleteSeq = broker.state.withLock { $0.nextSeqNum } - 1
        try await broker.sendRaw(incompleteBytes)
        let reject = try await eventuallyValue("a Reject of MsgSeqNum \(incompleteSeq)") {
            broker.received("3").first { $0[45] == String(incompleteSeq) }
        }
        #expect(reject[373] == String(FIXSessionRejectReason.requiredTagMissing.rawValue))
        #expect(reject[371] == "17")

        try await broker.send(Self.executionReport("BATON-9-2", execID: "E-10"))
        let delivered = try await inbox.first("ExecutionReport E-10") { $0[17] == "E-10" }
        #expect(delivered[11] == "BATON-9-2")
        let status = await initiator.status()
        #expect(status.session == .active)
        #expect(status.connections == 1)
        #expect(status.nextTargetSeqNum == broker.state.withLock { $0.nextSeqNum })
        // Neither malformed message reached the application.
        #expect(await inbox.messages.allSatisfy { $0[17] == "E-10" })
        #expect(broker.received("2").isEmpty)  // the garbled frame left no gap to resend

        initiator.requestShutdown()
        try await running.value
    }

    /// Resend handling survives a process restart: a new initiator on the same store answers
    /// the broker's ResendRequest with the order the old one sent (PossDupFlag=Y, same MsgSeqNum,
    /// OrigSendingTime) and gap-fills over session messages.
    @Test func answersResendRequestAfterARestartFromTheStore() async throws {
        let directory = try TemporaryDirectory("shell-resend")
        defer { directory.remove() }
        let broker = try await ScriptedBroker.start()
        defer { Task { await broker.stop() } }

        let first = try makeInitiator(port: broker.port, directory: directory, label: "shell-resend-1")
        let firstRun = Task { try await first.run() }
        defer { firstRun.cancel() }
        try await first.waitUntilActive(timeout: .seconds(5))
        let orderSeq = try await first.send(limitOrder("BATON-3-1"))
        first.requestShutdown()
        try await firstRun.value
        let original = try #require(broker.received("D").first)

        let second = try makeInitiator(port: broker.port, directory: directory, label: "shell-resend-2")
        let secondRun = Task { try await second.run() }
        defer { secondRun.cancel() }
        try await second.waitUntilActive(timeout: .seconds(5))
        let logonSeq = try #require(broker.received("A").last?.msgSeqNum)
        #expect(logonSeq > orderSeq)

        try await broker.send(FIXResendRequest(beginSeqNo: orderSeq, endSeqNo: 0).message)
        let resent = try await eventuallyValue("the order resent") {
            broker.received("D").first { $0.isPossDup }
        }
        #expect(resent.msgSeqNum == orderSeq)
        #expect(resent[11] == "BATON-3-1")
        #expect(resent[FIXTag.origSendingTime] == original[FIXTag.sendingTime])
        // Everything after the order (our Logout, the new Logon) is covered by one gap fill.
        let gapFill = try await eventuallyValue("a gap fill") {
            broker.received("4").first { $0[FIXTag.gapFillFlag] == "Y" }
        }
        #expect(gapFill.msgSeqNum == orderSeq + 1)
        #expect(gapFill[FIXTag.newSeqNo] == String(logonSeq + 1))
        #expect(await second.status().session == .active)

        second.requestShutdown()
        try await secondRun.value
    }

    @Test func redialsWhenLogonGoesUnanswered() async throws {
        let directory = try TemporaryDirectory("shell-logon-timeout")
        defer { directory.remove() }
        let broker = try await ScriptedBroker.start()
        defer { Task { await broker.stop() } }
        broker.state.withLock { $0.answersLogon = false }
        var settings = initiatorSettings(target: ScriptedBroker.compID)
        settings.logonTimeout = 1
        let initiator = try FIXInitiator(
            settings: settings, host: "127.0.0.1", port: broker.port, storePath: directory.file("s.sqlite"),
            logger: testLogger("shell-logon-timeout"),
            options: FIXInitiatorOptions(
                reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .milliseconds(100))))
        let running = Task { try await initiator.run() }
        defer { running.cancel() }

        try await initiator.waitUntil("a second attempt", timeout: .seconds(5)) { $0.connections >= 2 }
        let status = await initiator.status()
        #expect(status.lastError?.contains("no Logon within 1 s") == true)
        try await eventually("the second Logon to arrive") { broker.received("A").count >= 2 }
        // Unanswered Logons still consumed sequence numbers; they are never reused.
        let seqs = broker.received("A").compactMap(\.msgSeqNum)
        #expect(seqs == Array(1...seqs.count))

        broker.state.withLock { $0.answersLogon = true }
        try await initiator.waitUntilActive(timeout: .seconds(5))
        initiator.requestShutdown()
        try await running.value
    }

    @Test func refusesSessionMessagesAndReportsConfigurationErrors() async throws {
        let directory = try TemporaryDirectory("shell-refuse")
        defer { directory.remove() }
        let initiator = try makeInitiator(port: 9, directory: directory, label: "shell-refuse")
        await #expect(throws: FIXInitiatorError.sessionMessageType("A")) {
            try await initiator.send(FIXLogon(heartBtInt: 30).message)
        }
        await #expect(throws: FIXInitiatorError.notLoggedOn(.disconnected)) {
            try await initiator.send(limitOrder("X-1"))
        }
        #expect(throws: FIXInitiatorConfigurationError.self) {
            try FIXInitiator(
                settings: FIXSessionSettings(role: .acceptor, senderCompID: "A", targetCompID: "B"), host: "127.0.0.1",
                port: 9, storePath: directory.file("other.sqlite"), logger: testLogger("x"))
        }
        #expect(throws: FIXInitiatorConfigurationError.self) {
            try FIXInitiator(
                settings: initiatorSettings(), host: "127.0.0.1", port: 70_000,
                storePath: directory.file("other.sqlite"), logger: testLogger("x"))
        }
    }
}

func eventuallyValue<T: Sendable>(
    _ what: String, timeout: Duration = .seconds(10), _ value: @Sendable () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if let found = try await value() { return found }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out after \(timeout) waiting for \(what)")
}

extension FIXInitiatorShellTests {
    /// A broker flood while nobody consumes: the session delivers up to its bound and then waits
    /// (nothing dropped: the broker's sequence numbers are spent), and once the consumer catches
    /// up every report arrives, in order, exactly once.
    @Test func aFloodTheConsumerCannotKeepUpWithWaitsInsteadOfGrowingOrDropping() async throws {
        let directory = try TemporaryDirectory("shell-flood")
        defer { directory.remove() }
        let broker = try await ScriptedBroker.start()
        defer { Task { await broker.stop() } }
        var options = FIXInitiatorOptions(
            reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .milliseconds(400)))
        options.maxUndeliveredMessages = 5
        let initiator = try FIXInitiator(
            settings: initiatorSettings(target: ScriptedBroker.compID, heartBtInt: 30), host: "127.0.0.1",
            port: broker.port, storePath: directory.file("fix-BATON1.sqlite"), logger: testLogger("shell-flood"),
            options: options)
        let running = Task { try await initiator.run() }
        defer { running.cancel() }
        try await initiator.waitUntilActive(timeout: .seconds(5))
        for n in 1...20 { try await broker.send(Self.executionReport("F-\(n)", execID: "E-\(n)")) }
        try await initiator.waitUntil("the bound reached", timeout: .seconds(5)) { $0.deliveryWaits >= 1 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await initiator.status().deliveredMessages == 5, "no more than the bound waits unconsumed")

        var received: [String] = []
        for await message in initiator.applicationMessages {
            initiator.consumedApplicationMessage()
            received.append(message[11] ?? "?")
            if received.count == 20 { break }
        }
        #expect(received == (1...20).map { "F-\($0)" })
        #expect(await initiator.status().session == .active, "the session stayed up")
    }
}
