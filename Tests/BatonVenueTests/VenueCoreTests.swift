import Foundation
import BatonFIX
import Testing

@testable import BatonVenue

/// A FIX initiator wired to the venue core without sockets: what one writes, the other reads.
struct Wire {
    var core: VenueCore
    var clients: [FIXConnectionID: FIXSession] = [:]
    var inbox: [FIXConnectionID: [FIXMessage]] = [:]
    var closed: [FIXConnectionID: String] = [:]
    var now = t0

    init(allowed: Set<String>? = nil, orderLatencyMilliseconds: Int64 = 0, passwords: [String: String]? = nil) {
        core = VenueCore(
            settings: VenueCore.Settings(
                compID: "VENUE", allowedSessions: allowed, orderLatencyMilliseconds: orderLatencyMilliseconds,
                passwords: passwords),
            engine: MatchingEngine(settings: MatchingEngine.Settings(seed: 1), prices: ["AAPL": 1_872_500]))
    }

    mutating func connect(
        _ id: FIXConnectionID, as compID: String, store: FIXSessionStore? = nil, password: String? = nil
    ) {
        var settings = FIXSessionSettings(role: .initiator, senderCompID: compID, targetCompID: "VENUE", heartBtInt: 1)
        settings.password = password
        var session = clients[id] ?? FIXSession(settings: settings, store: store ?? FIXSessionStore())
        core.connectionOpened(id)
        let directives = session.onConnected(now: now)
        clients[id] = session
        clientCarryOut(id, directives)
    }

    mutating func send(_ id: FIXConnectionID, _ message: FIXMessage) throws {
        guard var session = clients[id] else { return }
        let directives = try session.send(message, now: now)
        clients[id] = session
        clientCarryOut(id, directives)
    }

    mutating func disconnect(_ id: FIXConnectionID) {
        if var session = clients[id] {
            _ = session.onDisconnected(now: now)
            clients[id] = session
        }
        venueCarryOut(core.connectionClosed(id, now: now))
    }

    mutating func clientCarryOut(_ id: FIXConnectionID, _ directives: [FIXSessionDirective]) {
        for directive in directives {
            switch directive {
            case .send(_, let bytes): venueCarryOut(core.bytesReceived(id, bytes, now: now))
            case .deliver(let message): inbox[id, default: []].append(message)
            case .disconnect(let reason):
                closed[id] = reason
                venueCarryOut(core.connectionClosed(id, now: now))
            default: break
            }
        }
    }

    mutating func venueCarryOut(_ directives: [VenueCore.Directive]) {
        for directive in directives {
            switch directive {
            case .write(let id, let bytes):
                guard var session = clients[id] else { continue }
                let out = session.onReceived(bytes: bytes, now: now)
                clients[id] = session
                clientCarryOut(id, out)
            case .close(let id, let reason):
                closed[id] = reason
                if var session = clients[id] {
                    _ = session.onDisconnected(now: now)
                    clients[id] = session
                }
            case .log:
                break
            }
        }
    }
}

@Suite struct VenueCoreTests {
    @Test func aCounterpartyLogsOnTradesAndKeepsItsSequenceNumbersAcrossReconnects() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        #expect(wire.clients[1]?.status == .active)
        #expect(wire.core.sessionStatus("BATON1") == .active)

        try wire.send(1, order("A-1").message)
        let reports = try (wire.inbox[1] ?? []).map { try FIXExecutionReport($0) }
        #expect(reports.map(\.execType) == [.new, .trade])
        let venueNext = wire.core.sessionStore("BATON1")?.nextSenderSeqNum ?? 0
        #expect(venueNext == 4)  // Logon, two reports

        wire.disconnect(1)
        #expect(wire.core.sessionStatus("BATON1") == .disconnected)
        // Same counterparty on a new connection: both sides continue their sequences.
        let store = wire.clients[1]?.store
        wire.clients[1] = nil
        wire.connect(2, as: "BATON1", store: store)
        #expect(wire.clients[2]?.status == .active)
        #expect(wire.core.sessionStore("BATON1")?.nextSenderSeqNum == 5)
        #expect(wire.core.sessionCounters["BATON1"]?.logons == 2)
        #expect(wire.core.sessionCounters["BATON1"]?.orders == 1)
    }

    @Test func theVenueAnswersAResendRequestWithTheReportsItSent() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        try wire.send(1, order("A-1").message)
        wire.disconnect(1)
        // A counterparty that lost what it received comes back expecting MsgSeqNum 2 again.
        var store = wire.clients[1]?.store ?? FIXSessionStore()
        store.nextTargetSeqNum = 2
        wire.clients[1] = nil
        wire.inbox = [:]
        wire.connect(2, as: "BATON1", store: store)
        let replayed = try (wire.inbox[2] ?? []).map { try FIXExecutionReport($0) }
        #expect(replayed.map(\.clOrdID) == ["A-1", "A-1"])
        #expect((wire.inbox[2] ?? []).allSatisfy { $0.isPossDup })
    }

    @Test func ordersOfADisconnectedOwnerAreReportedWhenItLogsOnAgain() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        try wire.send(1, order("R-1", limit: FIXDecimal("187")!, tif: .goodTillCancel).message)
        wire.disconnect(1)
        wire.venueCarryOut(wire.core.marketTick(tick("AAPL", 1_860_000), now: t0))
        #expect(wire.core.engine.order(clOrdID: "R-1")?.status == .filled)
        let store = wire.clients[1]?.store
        wire.clients[1] = nil
        wire.connect(2, as: "BATON1", store: store)
        let reports = try (wire.inbox[2] ?? []).map { try FIXExecutionReport($0) }
        #expect(reports.map(\.execType) == [.trade])
    }

    /// What a broker that scopes orders to the session does to a cluster with one session per
    /// replica: the new leader's own session cannot see the old leader's order, and its fills go
    /// to the old session. Baton therefore shares one session across the cluster.
    @Test func anotherSessionNeitherSeesNorReceivesTheReportsOfAnOrder() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        wire.connect(2, as: "BATON2")
        try wire.send(1, order("C-3-10", limit: FIXDecimal("187")!, tif: .goodTillCancel).message)
        try wire.send(2, FIXOrderStatusRequest(clOrdID: "C-3-10", symbol: "AAPL", side: .buy).message)
        let answer = try #require(try (wire.inbox[2] ?? []).map { try FIXExecutionReport($0) }.last)
        #expect(answer.ordStatus == .rejected && answer.ordRejReason == 5, "unknown to the other session")
        wire.inbox = [:]
        wire.venueCarryOut(wire.core.marketTick(tick("AAPL", 1_865_000), now: t0))
        let toOwner = try (wire.inbox[1] ?? []).map { try FIXExecutionReport($0) }
        #expect(toOwner.map(\.clOrdID) == ["C-3-10"])
        #expect(toOwner.map(\.execType) == [.trade])
        #expect(wire.inbox[2] == nil, "the fill goes to the session that sent the order")
    }

    /// With an order gateway latency, a status request right after a write hears "unknown" and
    /// the order still arrives: the reason a leader drains before it hands over.
    @Test func anOrderInTheGatewayIsUnknownToStatusRequestsUntilItReachesMatching() throws {
        var wire = Wire(orderLatencyMilliseconds: 250)
        wire.connect(1, as: "BATON1")
        try wire.send(1, order("G-1").message)
        #expect(wire.core.engine.order(clOrdID: "G-1") == nil)
        try wire.send(1, FIXOrderStatusRequest(clOrdID: "G-1", symbol: "AAPL", side: .buy).message)
        let answer = try #require(try (wire.inbox[1] ?? []).map { try FIXExecutionReport($0) }.last)
        #expect(answer.ordStatus == .rejected && answer.ordRejReason == 5)
        wire.inbox = [:]
        wire.venueCarryOut(wire.core.releaseOrders(now: t0.adding(milliseconds: 249)))
        #expect(wire.core.ordersInGateway == 1)
        wire.venueCarryOut(wire.core.releaseOrders(now: t0.adding(milliseconds: 250)))
        #expect(wire.core.ordersInGateway == 0)
        #expect(wire.core.engine.order(clOrdID: "G-1")?.status == .filled)
        let reports = try (wire.inbox[1] ?? []).map { try FIXExecutionReport($0) }
        #expect(reports.map(\.execType) == [.new, .trade])
    }

    @Test func aLogonWithoutTheSessionsPasswordIsRefusedWithoutNamingIt() {
        var wire = Wire(passwords: ["BATON1": "s3cret-Pa55"])
        wire.connect(1, as: "BATON1", password: "guess")
        #expect(wire.closed[1]?.contains("wrong Password(554)") == true, "\(wire.closed)")
        #expect(wire.closed[1]?.contains("guess") == false && wire.closed[1]?.contains("s3cret") == false)
        #expect(wire.core.sessionStatus("BATON1") == nil)
        wire.connect(2, as: "BATON1")
        #expect(wire.closed[2]?.contains("no Password(554)") == true)
        wire.connect(3, as: "BATON1", password: "s3cret-Pa55")
        #expect(wire.clients[3]?.status == .active)
    }

    @Test func unknownOrSecondConnectionsOfASessionAreRefused() throws {
        var wire = Wire(allowed: ["BATON1", "BATON2"])
        wire.connect(1, as: "INTRUDER")
        #expect(wire.closed[1]?.contains("INTRUDER") == true)
        #expect(wire.core.sessionStatus("INTRUDER") == nil)

        wire.connect(2, as: "BATON1")
        wire.connect(3, as: "BATON1")
        #expect(wire.closed[3]?.contains("already connected") == true)
        #expect(wire.core.sessionStatus("BATON1") == .active)
        #expect(wire.closed[2] == nil)
    }

    @Test func garbageBeforeLogonClosesTheConnectionWithAReason() {
        var wire = Wire()
        wire.core.connectionOpened(9)
        wire.venueCarryOut(wire.core.bytesReceived(9, Array("GET / HTTP/1.1\r\n\r\n".utf8), now: t0))
        #expect(wire.closed[9]?.contains("first message is not FIX") == true)
        #expect(wire.core.sessionCounters.isEmpty)

        // A Heartbeat first is FIX, but not a Logon.
        wire.core.connectionOpened(10)
        let heartbeat = FIXMessage(
            msgType: "0",
            fields: [FIXField(49, "BATON1"), FIXField(56, "VENUE"), FIXField(34, "1"), FIXField(52, t0.fixString)])
        wire.venueCarryOut(wire.core.bytesReceived(10, heartbeat.encoded(), now: t0))
        #expect(wire.closed[10]?.contains("must be a Logon") == true)
        #expect(wire.core.sessionCounters.isEmpty)
    }

    @Test func aMalformedOrderGetsASessionRejectSayingWhatIsWrongAndCreatesNothing() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        // A NewOrderSingle without Symbol(55).
        try wire.send(
            1,
            FIXMessage(
                msgType: "D",
                fields: [
                    FIXField(11, "M-1"), FIXField(54, "1"), FIXField(60, t0.fixString), FIXField(38, "100"),
                    FIXField(40, "1"),
                ]))
        // The dictionary check answers with a session Reject(3); what it lets through (it does
        // not check required components) fails the typed parse: BusinessMessageReject(j),
        // BusinessRejectReason 5. Either way the counterparty learns which field is missing.
        let reject = try #require(wire.inbox[1]?.last)
        #expect(reject[FIXTag.refSeqNum] == "2")
        #expect(reject[FIXTag.text]?.contains("Symbol") == true)
        if reject.msgType == "3" {
            #expect(reject[FIXTag.refTagID] == "55")
        } else {
            #expect(reject.msgType == "j")
            #expect(reject[380] == "5")
            #expect(reject[379] == "M-1")
        }
        #expect(wire.core.engine.orders.isEmpty)
        #expect(wire.clients[1]?.status == .active)
        #expect(wire.core.sessionCounters["BATON1"]?.rejects == 1)

        // The session goes on: the next order is accepted.
        try wire.send(1, order("M-2").message)
        #expect(wire.core.engine.order(clOrdID: "M-2")?.status == .filled)
    }

    @Test func unsupportedMessagesGetABusinessRejectAndTheSessionStaysUp() throws {
        var wire = Wire()
        wire.connect(1, as: "BATON1")
        try wire.send(
            1,
            FIXMessage(
                msgType: "G",
                fields: [
                    FIXField(11, "X"), FIXField(41, "Y"), FIXField(55, "AAPL"), FIXField(54, "1"),
                    FIXField(60, t0.fixString), FIXField(38, "1"), FIXField(40, "1"),
                ]))
        let reject = try #require(wire.inbox[1]?.last)
        #expect(reject.msgType == "j")
        #expect(reject[380] == "3")
        #expect(reject[58]?.contains("MsgType G") == true)
        #expect(wire.clients[1]?.status == .active)
        #expect(wire.core.sessionCounters["BATON1"]?.rejects == 1)
    }
}

/// The venue's state file: what a broker keeps across its own restart.
@Suite struct VenueStateFileTests {
    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("venue-state-\(UInt64.random(in: 0...UInt64.max)).jsonl").path
    }

    @Test func aRestartedVenueHasItsBookSequenceNumbersAndSentReports() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try VenueStateFile(path: path)
        var wire = Wire()
        wire.connect(1, as: "BATON")
        try wire.send(1, order("A-1").message)
        try wire.send(1, order("A-2").message)
        try file.append(wire.core.takeStateChanges())
        #expect(wire.core.takeStateChanges().isEmpty, "changes are taken once")
        let before = try #require(wire.core.sessionStore("BATON"))
        let orders = wire.core.engine.orders

        // The venue dies; a new one reads the file.
        let restored = try VenueStateFile.read(path: path)
        var again = Wire()
        again.core.restoreState(restored)
        #expect(again.core.engine.orders == orders)
        #expect(again.core.engine.totals == wire.core.engine.totals)
        #expect(again.core.engine.positions == wire.core.engine.positions)
        let store = try #require(again.core.sessionStore("BATON"))
        #expect(store.nextSenderSeqNum == before.nextSenderSeqNum)
        #expect(store.nextTargetSeqNum == before.nextTargetSeqNum)
        #expect(store.sentApplicationMessages.keys.sorted() == before.sentApplicationMessages.keys.sorted())
        #expect(again.core.sessionStatus("BATON") == .disconnected)

        // The client comes back having journaled only the first report: the venue re-sends the
        // rest from its restored store, and its ClOrdIDs are still taken.
        var clientStore = try #require(wire.clients[1]?.store)
        clientStore.nextTargetSeqNum = 3
        again.connect(2, as: "BATON", store: clientStore)
        #expect(again.clients[2]?.status == .active)
        let replayed = try (again.inbox[2] ?? []).filter { $0.isPossDup }.map { try FIXExecutionReport($0) }
        #expect(replayed.map(\.clOrdID) == ["A-1", "A-2", "A-2"])
        try again.send(2, order("A-1").message)
        let refused = try (again.inbox[2] ?? []).filter { !$0.isPossDup }.map { try FIXExecutionReport($0) }
        #expect(refused.last?.ordRejReason == 6, "a restarted venue still knows A-1")
        #expect(again.core.engine.orders.count == 2)
    }

    @Test func aTornLastLineIsIgnoredAndAnyOtherBadLineNamed() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try VenueStateFile(path: path)
        var wire = Wire()
        wire.connect(1, as: "BATON")
        try wire.send(1, order("A-1").message)
        try file.append(wire.core.takeStateChanges())
        let good = try String(contentsOfFile: path, encoding: .utf8)
        try (good + "{\"order\":{\"ind").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try VenueStateFile.read(path: path).orders.count == 1)
        // The venue comes back and goes on writing: the torn tail is cut, the file still reads.
        let reopened = try VenueStateFile(path: path)
        try wire.send(1, order("A-2").message)
        try reopened.append(wire.core.takeStateChanges())
        #expect(try VenueStateFile.read(path: path).orders.count == 2)
        try ("garbage\n" + good).write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            _ = try VenueStateFile.read(path: path)
        } throws: { error in
            "\(error)".contains("line 1") && "\(error)".contains(path)
        }
    }
}
