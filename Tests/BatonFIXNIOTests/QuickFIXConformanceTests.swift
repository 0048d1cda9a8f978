import BatonFIX
import BatonFIXNIO
import Foundation
import Testing

/// FIXInitiator against a real FIX engine: QuickFIX's `executor` as a separate process on
/// loopback. Required, never skipped: without the executor these tests fail and say how to
/// install it.
@Suite(.serialized)
struct QuickFIXConformanceTests {
    /// Logon, heartbeats both ways at HeartBtInt=1, a LIMIT order filled, a MARKET order refused
    /// by the executor with a session Reject(3), and a clean logout.
    @Test func logonHeartbeatsOrderAndLogout() async throws {
        let directory = try TemporaryDirectory("conformance")
        defer { directory.remove() }
        let executor = try QuickFIXExecutor(directory: directory, port: try await freeLoopbackPort())
        defer { executor.kill() }
        try await executor.start()
        try await executor.diagnosingFailures {

            let initiator = try FIXInitiator(
                settings: initiatorSettings(), host: "127.0.0.1", port: executor.port,
                storePath: directory.file("fix-BATON1.sqlite"), logger: testLogger("conformance"))
            let inbox = MessageInbox()
            let collecting = inbox.collect(initiator.applicationMessages)
            let running = Task { try await initiator.run() }
            defer { running.cancel() }

            try await initiator.waitUntilActive(timeout: .seconds(10))
            let atLogon = await initiator.status()
            #expect(atLogon.nextSenderSeqNum == 2)  // our Logon was 1
            #expect(atLogon.nextTargetSeqNum == 2)  // theirs was 1
            let logons = executor.loggedMessages(msgType: "A", from: "BATON1")
            #expect(logons.count == 1)
            #expect(logons.first?["108"] == "1")
            #expect(logons.first?["141"] == nil)

            // Idle for a while: both sides must heartbeat every second and the session stays up.
            try await Task.sleep(for: .milliseconds(3_500))
            let idle = await initiator.status()
            #expect(idle.session == .active)
            #expect(idle.connections == 1)
            #expect(idle.nextSenderSeqNum - atLogon.nextSenderSeqNum >= 3)
            #expect(idle.nextTargetSeqNum - atLogon.nextTargetSeqNum >= 3)
            #expect(executor.loggedMessages(msgType: "0", from: "BATON1").count >= 3)
            #expect(executor.loggedMessages(msgType: "0", from: "EXECUTOR").count >= 3)
            #expect(executor.loggedMessages(msgType: "3", from: "EXECUTOR").isEmpty)  // nothing of ours rejected

            // A limit order is filled in full at its price.
            let orderSeq = try await initiator.send(limitOrder("BATON-1-1", price: "187.25", quantity: 100))
            #expect(orderSeq >= idle.nextSenderSeqNum)
            let fill = try FIXExecutionReport(
                try await inbox.first("fill of BATON-1-1") { $0.msgType == "8" && $0[11] == "BATON-1-1" })
            #expect(fill.ordStatus == .filled)
            #expect(fill.execType == .trade)
            #expect(fill.cumQty == FIXDecimal(units: 100))
            #expect(fill.leavesQty == FIXDecimal(units: 0))
            #expect(fill.avgPx.doubleValue == 187.25)
            #expect(fill.lastPx?.doubleValue == 187.25)
            #expect(fill.lastQty == FIXDecimal(units: 100))
            #expect(fill.symbol == "AAPL")
            #expect(fill.side == .buy)

            // The executor refuses anything but LIMIT, at the session level: Reject(3) with
            // SessionRejectReason 5 (value incorrect) on OrdType(40), delivered to the application.
            let market = FIXNewOrderSingle(
                clOrdID: "BATON-1-2", symbol: "AAPL", side: .sell, transactTime: FIXInitiator.systemTime(),
                orderQty: FIXDecimal(units: 10), ordType: .market)
            let marketSeq = try await initiator.send(market.message)
            let reject = try await inbox.first("Reject(3) of the market order") {
                $0.msgType == "3" && $0[45] == String(marketSeq)
            }
            #expect(reject[373] == "5")
            #expect(reject[371] == "40")
            #expect(reject[372] == "D")
            #expect(await initiator.status().session == .active)

            // An OrderStatusRequest is not something the executor handles: QuickFIX answers it
            // with a BusinessMessageReject(j), BusinessRejectReason 3 (unsupported message type),
            // referring to our request by RefSeqNum(45): what the trading engine matches to the
            // question and halts on, naming the answer, instead of re-sending (issue 9).
            let status = FIXOrderStatusRequest(clOrdID: "BATON-1-1", symbol: "AAPL", side: .buy)
            let statusSeq = try await initiator.send(status.message)
            let refused = try await inbox.first("BusinessMessageReject(j) of the OrderStatusRequest") {
                $0.msgType == "j" && $0[45] == String(statusSeq)
            }
            #expect(refused[372] == "H")
            #expect(refused[380] == "3")
            #expect(await initiator.status().session == .active)

            // Clean logout: our Logout is answered, and run() returns without an error.
            let beforeLogout = await initiator.status()
            initiator.requestShutdown()
            try await running.value
            let after = await initiator.status()
            #expect(after.session == .disconnected)
            #expect(after.lastDisconnect?.hasPrefix("Logout confirmed") == true)
            #expect(after.lastError == beforeLogout.lastError)
            #expect(executor.loggedMessages(msgType: "5", from: "BATON1").count == 1)
            #expect(executor.loggedMessages(msgType: "5", from: "EXECUTOR").count == 1)
            await collecting.value  // the message stream finished with run()
            #expect(executor.isRunning)
        }
    }

    /// The broker dies (SIGKILL) and comes back on the same store: we redial with backoff and log
    /// on again with our sequence numbers continued, no ResetSeqNumFlag, and it fills a second
    /// order. Then our side restarts (a new FIXInitiator on the same store file) and continues
    /// the sequence again, and a third order fills.
    @Test func reconnectAndRestartContinueSequenceNumbers() async throws {
        let directory = try TemporaryDirectory("conformance-reconnect")
        defer { directory.remove() }
        let executor = try QuickFIXExecutor(directory: directory, port: try await freeLoopbackPort())
        defer { executor.kill() }
        try await executor.start()
        try await executor.diagnosingFailures {
            let storePath = directory.file("fix-BATON1.sqlite")
            let options = FIXInitiatorOptions(
                reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(100), maximum: .milliseconds(800)))

            let first = try FIXInitiator(
                settings: initiatorSettings(), host: "127.0.0.1", port: executor.port, storePath: storePath,
                logger: testLogger("conformance-first"), options: options)
            let firstInbox = MessageInbox()
            _ = firstInbox.collect(first.applicationMessages)
            let firstRun = Task { try await first.run() }
            defer { firstRun.cancel() }
            try await first.waitUntilActive(timeout: .seconds(10))
            _ = try await first.send(limitOrder("BATON-2-1"))
            _ = try await firstInbox.first("fill of BATON-2-1") { $0.msgType == "8" && $0[11] == "BATON-2-1" }

            // The broker vanishes; we notice and keep redialling a closed port.
            executor.kill()
            try await first.waitUntil("the session to drop", timeout: .seconds(10)) { $0.session == .disconnected }
            let beforeReconnect = await first.status()
            try await first.waitUntil("failed redials", timeout: .seconds(10)) { $0.failedConnectAttempts >= 2 }
            #expect(await first.status().lastError?.contains("cannot connect") == true)

            try await executor.start()
            try await first.waitUntil("a second connection", timeout: .seconds(10)) {
                $0.connections == 2 && $0.session == .active
            }
            let reconnected = await first.status()
            #expect(reconnected.reconnects == 1)
            let logons = executor.loggedMessages(msgType: "A", from: "BATON1")
            #expect(logons.count == 2)
            #expect(logons.allSatisfy { $0["141"] == nil })
            let secondLogonSeq = Int(logons.last?["34"] ?? "") ?? 0
            #expect(secondLogonSeq == beforeReconnect.nextSenderSeqNum)
            #expect(reconnected.nextTargetSeqNum > beforeReconnect.nextTargetSeqNum)
            let secondSeq = try await first.send(limitOrder("BATON-2-2"))
            #expect(secondSeq > secondLogonSeq)
            let secondFill = try await firstInbox.first("fill of BATON-2-2") {
                $0.msgType == "8" && $0[11] == "BATON-2-2"
            }
            #expect(secondFill[39] == "2")
            // The executor took our numbers as they came: no resend asked, nothing too low.
            #expect(executor.loggedMessages(msgType: "2", from: "EXECUTOR").isEmpty)
            #expect(!executor.output.contains("MsgSeqNum too low"))

            first.requestShutdown()
            try await firstRun.value
            let stopped = await first.status()
            #expect(stopped.lastDisconnect?.hasPrefix("Logout confirmed") == true)

            // Our process restarts: a new initiator on the same store file continues both sequences.
            let second = try FIXInitiator(
                settings: initiatorSettings(), host: "127.0.0.1", port: executor.port, storePath: storePath,
                logger: testLogger("conformance-second"), options: options)
            let loaded = await second.status()
            #expect(loaded.nextSenderSeqNum == stopped.nextSenderSeqNum)
            #expect(loaded.nextTargetSeqNum == stopped.nextTargetSeqNum)
            let secondInbox = MessageInbox()
            _ = secondInbox.collect(second.applicationMessages)
            let secondRun = Task { try await second.run() }
            defer { secondRun.cancel() }
            try await second.waitUntilActive(timeout: .seconds(10))
            let thirdLogon = executor.loggedMessages(msgType: "A", from: "BATON1").last
            #expect(thirdLogon?["34"] == String(stopped.nextSenderSeqNum))
            #expect(thirdLogon?["141"] == nil)
            let thirdSeq = try await second.send(limitOrder("BATON-2-3"))
            #expect(thirdSeq > stopped.nextSenderSeqNum)
            let thirdFill = try await secondInbox.first("fill of BATON-2-3") {
                $0.msgType == "8" && $0[11] == "BATON-2-3"
            }
            #expect(thirdFill[39] == "2")
            #expect(executor.loggedMessages(msgType: "2", from: "EXECUTOR").isEmpty)

            second.requestShutdown()
            try await secondRun.value
            #expect(await second.status().lastDisconnect?.hasPrefix("Logout confirmed") == true)
            #expect(await second.status().lastError == nil)
        }
    }

    /// Orders sent from many tasks at once: each gets its own MsgSeqNum, in one contiguous run,
    /// and every one is filled once.
    @Test func concurrentOrdersGetDistinctSequenceNumbersAndFill() async throws {
        let directory = try TemporaryDirectory("conformance-burst")
        defer { directory.remove() }
        let executor = try QuickFIXExecutor(directory: directory, port: try await freeLoopbackPort())
        defer { executor.kill() }
        try await executor.start()
        try await executor.diagnosingFailures {
            let initiator = try FIXInitiator(
                settings: initiatorSettings(heartBtInt: 30), host: "127.0.0.1", port: executor.port,
                storePath: directory.file("fix-BATON1.sqlite"), logger: testLogger("conformance-burst"))
            let inbox = MessageInbox()
            _ = inbox.collect(initiator.applicationMessages)
            let running = Task { try await initiator.run() }
            defer { running.cancel() }
            try await initiator.waitUntilActive(timeout: .seconds(10))

            let count = 100
            let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 1...count {
                    group.addTask {
                        try await initiator.send(limitOrder("BURST-\(n)", price: "10.5", quantity: Int64(n)))
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(Set(seqs).count == count)
            #expect((seqs.max() ?? 0) - (seqs.min() ?? 0) == count - 1)
            try await eventually("\(count) fills") { await inbox.messages.filter { $0.msgType == "8" }.count >= count }
            let fills = await inbox.messages.filter { $0.msgType == "8" }
            #expect(fills.count == count)
            #expect(Set(fills.compactMap { $0[11] }) == Set((1...count).map { "BURST-\($0)" }))
            #expect(fills.allSatisfy { $0[39] == "2" && $0[14] == $0[38] })
            #expect(executor.loggedMessages(msgType: "3", from: "EXECUTOR").isEmpty)

            initiator.requestShutdown()
            try await running.value
        }
    }

    /// The cluster's one session against QuickFIX: replica A holds a permit, trades, and is
    /// killed (its connection closes without a Logout). Replica B — its own store, the same
    /// CompIDs — logs on with the next reserved block and the journal's inbound position: no
    /// ResetSeqNumFlag, MsgSeqNum continued upward. QuickFIX asks for the gap and accepts B's
    /// gap fill; it re-sends (PossDupFlag=Y) the fill A received but "the journal" lacked; B's
    /// order fills. A third replica that logged on with a number already used would end the
    /// session: QuickFIX logs it out for MsgSeqNum too low.
    @Test func aSecondReplicaTakesTheSharedSessionOverWithContinuedSequenceNumbers() async throws {
        let directory = try TemporaryDirectory("conformance-takeover")
        defer { directory.remove() }
        let executor = try QuickFIXExecutor(directory: directory, port: try await freeLoopbackPort(), targetCompID: "BATON")
        defer { executor.kill() }
        try await executor.start()
        try await executor.diagnosingFailures {
            func replica(_ name: String) throws -> FIXInitiator {
                var settings = initiatorSettings(sender: "BATON")
                settings.resendsApplicationMessages = false  // as batond: reconciliation decides
                var options = FIXInitiatorOptions(
                    reconnectBackoff: FIXReconnectBackoff(minimum: .milliseconds(50), maximum: .milliseconds(200)))
                options.requiresPermit = true
                return try FIXInitiator(
                    settings: settings, host: "127.0.0.1", port: executor.port,
                    storePath: directory.file("fix-\(name).sqlite"), logger: testLogger("takeover-\(name)"),
                    options: options)
            }

            let a = try replica("a")
            let aInbox = MessageInbox()
            _ = aInbox.collect(a.applicationMessages)
            a.grant(FIXSessionPermit(firstSenderSeqNum: 1, senderSeqCeiling: 1000, nextTargetSeqNum: nil))
            let aRun = Task { try await a.run() }
            defer { aRun.cancel() }
            try await a.waitUntilActive(timeout: .seconds(10))
            _ = try await a.send(limitOrder("BTN-1-2"))
            let journaled = try await aInbox.first("fill of BTN-1-2") { $0.msgType == "8" && $0[11] == "BTN-1-2" }
            _ = try await a.send(limitOrder("BTN-1-3"))
            // A receives this fill and dies before journaling it.
            let lost = try await aInbox.first("fill of BTN-1-3") { $0.msgType == "8" && $0[11] == "BTN-1-3" }
            let aLast = await a.status()
            a.revoke(reason: "killed")
            aRun.cancel()
            // B may dial before QuickFIX has noticed; it refuses a second Logon, and B redials.

            let b = try replica("b")
            let bInbox = MessageInbox()
            _ = bInbox.collect(b.applicationMessages)
            let journaledSeq = try #require(journaled.msgSeqNum)
            b.grant(FIXSessionPermit(firstSenderSeqNum: 1001, senderSeqCeiling: 2000, nextTargetSeqNum: journaledSeq + 1))
            let bRun = Task { try await b.run() }
            defer { bRun.cancel() }
            try await b.waitUntilActive(timeout: .seconds(10))
            let bLogon = try #require(executor.loggedMessages(msgType: "A", from: "BATON").last)
            #expect(bLogon["34"] == "1001")
            #expect(bLogon["141"] == nil, "no ResetSeqNumFlag on a takeover")
            // The fill A saw and the journal did not comes again, as a possible duplicate.
            let resent = try await bInbox.first("the lost fill re-sent") {
                $0.msgType == "8" && $0[11] == "BTN-1-3" && $0[43] == "Y"
            }
            #expect(resent[17] == lost[17], "the same ExecID: the journal's dedup absorbs it")
            let bSeq = try await b.send(limitOrder("BTN-2-9"))
            #expect(bSeq > 1001)
            let bFill = try await bInbox.first("fill of BTN-2-9") { $0.msgType == "8" && $0[11] == "BTN-2-9" }
            #expect(bFill[39] == "2")
            // QuickFIX saw the jump, asked for it, and took our gap fill; nothing was too low.
            #expect(!executor.loggedMessages(msgType: "2", from: "EXECUTOR").isEmpty)
            #expect(executor.loggedMessages(msgType: "4", from: "BATON").contains { $0["123"] == "Y" })
            #expect(!executor.output.contains("MsgSeqNum too low"))
            #expect(aLast.nextSenderSeqNum < 1001)

            // A zombie with A's old numbers: the broker itself fences it.
            b.revoke(reason: "hand the session to the zombie")
            bRun.cancel()
            try await Task.sleep(for: .milliseconds(300))
            let zombie = try replica("a")  // A's store: its old numbers
            zombie.grant(FIXSessionPermit(firstSenderSeqNum: 1, senderSeqCeiling: 1000, nextTargetSeqNum: nil))
            let zRun = Task { try? await zombie.run() }
            defer { zRun.cancel() }
            let log = executor.logPathForPolling
            try await eventually("QuickFIX refuses the zombie's numbers") {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("MsgSeqNum too low")
            }
            #expect(executor.isRunning)
        }
    }
}
