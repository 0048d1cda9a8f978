import BatonFIX
import BatonFIXNIO
import Foundation
import Testing

struct FIXSessionDatabaseTests {
    let settings = initiatorSettings()

    private func stamped(_ clOrdID: String, seq: Int) -> FIXMessage {
        var message = limitOrder(clOrdID)
        message.set(FIXTag.senderCompID, "BATON1")
        message.set(FIXTag.targetCompID, "EXECUTOR")
        message.set(FIXTag.msgSeqNum, String(seq))
        message.set(FIXTag.sendingTime, "20261125-12:00:00.000")
        return message
    }

    @Test func persistsAndReloadsSequenceNumbersAndMessages() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let path = directory.file("fix-BATON1.sqlite")
        let order = stamped("BATON-1-7", seq: 2)
        do {
            let database = try FIXSessionDatabase(path: path, settings: settings)
            #expect(try database.load() == FIXSessionStore())
            #expect(try database.synchronousLevel() == 2)  // FULL
            try await database.apply([.sent(seqNum: 1, message: nil), .received(nextTargetSeqNum: 2)])
            try await database.apply([.sent(seqNum: 2, message: order), .received(nextTargetSeqNum: 5)])
        }
        // A new process: only the file is left.
        let reopened = try FIXSessionDatabase(path: path, settings: settings)
        let store = try reopened.load()
        #expect(store.nextSenderSeqNum == 3)
        #expect(store.nextTargetSeqNum == 5)
        #expect(store.sentApplicationMessages.keys.sorted() == [2])
        #expect(store.sentApplicationMessages[2]?.encoded() == order.encoded())
        #expect(try reopened.storedMessageCount() == 1)
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))  // journal_mode=WAL
    }

    @Test func resetDropsStoredMessages() async throws {
        let directory = try TemporaryDirectory("store-reset")
        defer { directory.remove() }
        let database = try FIXSessionDatabase(path: directory.file("s.sqlite"), settings: settings)
        try await database.apply([.sent(seqNum: 1, message: stamped("A", seq: 1)), .received(nextTargetSeqNum: 9)])
        try await database.apply([.reset(nextSenderSeqNum: 1, nextTargetSeqNum: 1)])
        #expect(try database.load() == FIXSessionStore())
    }

    /// Only the newest `maxStoredMessages` are kept; a session built from the store answers a
    /// ResendRequest over the older ones with SequenceReset-GapFill and resends the rest.
    @Test func boundsStoredMessagesAndGapFillsOlderOnes() async throws {
        let directory = try TemporaryDirectory("store-bound")
        defer { directory.remove() }
        let database = try FIXSessionDatabase(
            path: directory.file("s.sqlite"), settings: settings, maxStoredMessages: 3)
        for seq in 1...10 {
            try await database.apply([.sent(seqNum: seq, message: stamped("BATON-1-\(seq)", seq: seq))])
        }
        #expect(try database.storedMessageCount() == 3)
        let store = try database.load()
        #expect(store.sentApplicationMessages.keys.sorted() == [8, 9, 10])
        #expect(store.nextSenderSeqNum == 11)

        var session = FIXSession(settings: settings, store: store)
        let now = FIXTimestamp(millisecondsSinceEpoch: 1_780_000_000_000)
        _ = session.onConnected(now: now)
        var logon = FIXLogon(heartBtInt: 1).message
        logon.set(FIXTag.senderCompID, "EXECUTOR")
        logon.set(FIXTag.targetCompID, "BATON1")
        logon.set(FIXTag.msgSeqNum, "1")
        logon.set(FIXTag.sendingTime, now.fixString)
        _ = session.onReceived(message: logon, now: now)
        #expect(session.status == .active)
        var resend = FIXResendRequest(beginSeqNo: 1, endSeqNo: 0).message
        resend.set(FIXTag.senderCompID, "EXECUTOR")
        resend.set(FIXTag.targetCompID, "BATON1")
        resend.set(FIXTag.msgSeqNum, "2")
        resend.set(FIXTag.sendingTime, now.fixString)
        let sent = session.onReceived(message: resend, now: now).compactMap { directive -> FIXMessage? in
            if case .send(let message, _) = directive { return message }
            return nil
        }
        // 1…10 were sent before, the Logon of this connection was 11.
        #expect(sent.first?.msgType == "4")
        #expect(sent.first?[FIXTag.newSeqNo] == "8")
        #expect(sent.dropFirst().prefix(3).map { $0[11] } == ["BATON-1-8", "BATON-1-9", "BATON-1-10"])
        #expect(sent.dropFirst().prefix(3).allSatisfy { $0.isPossDup })
    }

    @Test func refusesAStoreOfAnotherSession() async throws {
        let directory = try TemporaryDirectory("store-identity")
        defer { directory.remove() }
        let path = directory.file("s.sqlite")
        _ = try FIXSessionDatabase(path: path, settings: settings)
        let other = initiatorSettings(sender: "BATON2")
        do {
            _ = try FIXSessionDatabase(path: path, settings: other)
            Issue.record("opened another session's store")
        } catch {
            #expect(error.description.contains("FIX.4.4 BATON1 EXECUTOR"))
            #expect(error.description.contains("BATON2"))
            #expect(error.description.contains(path))
        }
    }

    @Test func reportsAFileThatIsNotADatabase() throws {
        let directory = try TemporaryDirectory("store-garbage")
        defer { directory.remove() }
        let path = directory.file("s.sqlite")
        try Data("not a database, just text that is long enough to be a header".utf8).write(
            to: URL(fileURLWithPath: path))
        #expect(throws: FIXSessionDatabaseError.self) { try FIXSessionDatabase(path: path, settings: settings) }
    }
}

struct FIXReconnectBackoffTests {
    @Test func doublesWithJitterUpToTheCapAndResets() {
        var backoff = FIXReconnectBackoff(minimum: .milliseconds(100), maximum: .seconds(1))
        var random = SystemRandomNumberGenerator()
        let ceilings: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)]
        for ceiling in ceilings + [.seconds(1), .seconds(1)] {
            #expect(backoff.ceiling == ceiling)
            let delay = backoff.nextDelay(using: &random)
            #expect(delay >= ceiling / 2 && delay <= ceiling)
        }
        #expect(backoff.failures == 6)
        backoff.reset()
        #expect(backoff.ceiling == .milliseconds(100))
    }

    @Test func jitterSpreadsReplicas() {
        var random = SystemRandomNumberGenerator()
        let delays = Set(
            (0..<20).map { _ in
                var backoff = FIXReconnectBackoff(minimum: .seconds(1), maximum: .seconds(1))
                return backoff.nextDelay(using: &random)
            })
        #expect(delays.count > 10)
    }

    @Test func survivesManyFailures() {
        var backoff = FIXReconnectBackoff(minimum: .milliseconds(250), maximum: .seconds(30))
        var random = SystemRandomNumberGenerator()
        for _ in 0..<200 { _ = backoff.nextDelay(using: &random) }
        #expect(backoff.ceiling == .seconds(30))
    }
}
