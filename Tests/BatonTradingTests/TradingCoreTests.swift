import BatonAlerting
import BatonMarketData
@testable import BatonTrading
import Testing

/// The leader's duty as a pure value: driven here by hand, event by event, with the time given.
@Suite struct TradingCoreTests {
    static let ms: Int64 = 1_000_000

    static func settings(node: UInt64 = 1) -> TradingCore.Settings {
        TradingCore.Settings(
            node: node, senderCompID: "BATON", targetCompID: "VENUE", account: "ACC", clOrdIDPrefix: "BTN",
            strategies: [.maCrossover(CrossoverParameters(symbol: "AAPL", fastWindow: 2, slowWindow: 3, threshold: 0, quantity: 10, allowShort: false))],
            strategyVersion: "1", limits: RiskLimits(), reconciler: .init(answerTimeoutNanos: 200 * ms, attemptsBeforeHalt: 3),
            maxOrderAgeNanos: 100 * ms, ackTimeoutNanos: 250 * ms, sequenceBlock: 100)
    }

    static let leading = LeadershipInput(isLeader: true, term: 2, leaseRemainingNanos: 250 * ms, termStartIndex: 1)
    static let loggedOn = SessionInput(active: true, nextSenderSeqNum: 1)
    static let loggedOff = SessionInput(active: false, nextSenderSeqNum: 1)

    static func proposals(_ directives: [TradingDirective]) -> [TradingCommand] {
        directives.compactMap { if case .propose(let c) = $0 { c } else { nil } }
    }

    static func statusRequests(_ directives: [TradingDirective]) -> [String] {
        directives.compactMap { if case .requestStatus(let id, _, _) = $0 { id } else { nil } }
    }

    /// A leader of term 2 with its term start applied, its sequence block granted and logged on
    /// at `loggedOnAt`; `open` holds an intent of term 1 committed at index 1 (ClOrdID BTN-1-1).
    static func leader(
        withOpenIntent open: Bool, loggedOnAt: Int64 = 0, settings: TradingCore.Settings = settings()
    ) -> TradingCore {
        var core = TradingCore(settings: settings)
        if open { _ = core.apply(.orderIntent(intent()), term: 1, index: 1, now: 0) } else { core.applied(through: 1) }
        let first = core.onDuty(now: loggedOnAt - 10 * ms, leadership: leading, session: loggedOff)
        guard case .sequenceReserved(let reservation)? = proposals(first).first else {
            Issue.record("no sequence block proposed: \(first)")
            return core
        }
        let granted = core.apply(.sequenceReserved(reservation), term: 2, index: 2, now: loggedOnAt - 5 * ms)
        #expect(granted.contains(.grantSession(SessionGrant(firstSenderSeqNum: 1, senderSeqCeiling: 100, nextTargetSeqNum: nil))))
        _ = core.onDuty(now: loggedOnAt, leadership: leading, session: loggedOn)
        return core
    }

    @Test("a leader that cannot reach the broker asks to hand over after the wait, then at twice the wait, until it logs on")
    func brokerUnreachableHandOver() {
        func handOvers(_ directives: [TradingDirective]) -> [String] {
            directives.compactMap { if case .handOverLeadership(let reason) = $0 { reason } else { nil } }
        }
        var settings = Self.settings()
        settings.brokerHandOverAfterNanos = 1_000 * Self.ms
        var core = TradingCore(settings: settings)
        core.applied(through: 1)
        _ = core.onDuty(now: 0, leadership: Self.leading, session: Self.loggedOff)
        // Logged on, then the broker goes away at 1 s.
        _ = core.onDuty(now: 500 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        var asked: [Int64] = []
        for t in stride(from: Int64(1_000), through: 8_000, by: 50) {
            if !handOvers(core.onDuty(now: t * Self.ms, leadership: Self.leading, session: Self.loggedOff)).isEmpty {
                asked.append(t)
            }
        }
        // 1 s after it went down, then 2 s after that, then 4 s: not a request every duty.
        #expect(asked == [2_000, 4_000, 8_000], "\(asked)")
        // A follower never asks; a session that comes back resets the backoff.
        #expect(handOvers(core.onDuty(now: 9_000 * Self.ms, leadership: LeadershipInput(isLeader: false, term: 2, leaseRemainingNanos: nil, termStartIndex: nil), session: Self.loggedOff)).isEmpty)
        _ = core.onDuty(now: 9_100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        var again: [Int64] = []
        for t in stride(from: Int64(9_200), through: 11_000, by: 50) {
            if !handOvers(core.onDuty(now: t * Self.ms, leadership: Self.leading, session: Self.loggedOff)).isEmpty { again.append(t) }
        }
        #expect(again == [10_200], "the wait starts again at 1 s: \(again)")
        // Without the setting, never.
        var plain = TradingCore(settings: Self.settings())
        plain.applied(through: 1)
        var none: [String] = []
        for t in stride(from: Int64(0), through: 20_000, by: 100) {
            none += handOvers(plain.onDuty(now: t * Self.ms, leadership: Self.leading, session: Self.loggedOff))
        }
        #expect(none.isEmpty)
    }

    @Test("a journaled deployment switches the symbol's strategy at its entry; a broken one changes nothing")
    func strategyDeployment() {
        var core = Self.leader(withOpenIntent: false)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(core.phase == .trading)
        let breakout = StrategyDeployment(
            specs: [.channelBreakout(BreakoutParameters(symbol: "AAPL", lookback: 3, quantity: 10))], version: "2",
            by: "token ops (operator)", reason: "breakout v2", atNanos: 5)
        // Bad entries (a proposer's bug, or a hostile one) are anomalies on every replica.
        let empty = core.apply(.strategyDeployed(StrategyDeployment(specs: [], version: "3", by: "x", reason: "", atNanos: 0)), term: 2, index: 3, now: 0)
        #expect(empty.contains(.report(.anomaly("strategy deployment ignored: it covers no symbol"))))
        let bad = StrategyDeployment(specs: [.channelBreakout(BreakoutParameters(symbol: "AAPL", lookback: 1))], version: "3", by: "x", reason: "", atNanos: 0)
        #expect(core.apply(.strategyDeployed(bad), term: 2, index: 4, now: 0).contains { if case .report(.anomaly(let text)) = $0 { text.contains("lookback must be from 2") } else { false } })
        let other = StrategyDeployment(specs: [.channelBreakout(BreakoutParameters(symbol: "TSLA", lookback: 3))], version: "9", by: "x", reason: "", atNanos: 0)
        #expect(core.apply(.strategyDeployed(other), term: 2, index: 5, now: 0).contains {
            if case .report(.strategiesDeployed(_, let ignored)) = $0 { ignored == ["TSLA"] } else { false }
        })
        _ = core.apply(.strategyDeployed(breakout), term: 2, index: 6, now: 0)
        #expect(core.state.strategies["AAPL"]?.version == "2" && core.state.strategies["AAPL"]?.index == 6)
        #expect(core.state.strategies["TSLA"]?.version == "9", "journaled as it was; only this replica's trading ignores it")
        // Three trades make the channel; the fourth breaks above it.
        var intents: [OrderIntent] = []
        for (i, price) in [100, 101, 102, 110].enumerated() {
            let out = core.onTick(symbol: "AAPL", sequence: UInt64(i + 1), price: Int64(price) * 10_000, receivedNanos: 0, now: 200 * Self.ms)
            intents += Self.proposals(out).compactMap { if case .orderIntent(let intent) = $0 { intent } else { nil } }
        }
        #expect(intents.count == 1)
        #expect(intents.first?.signal.strategy == "channel-breakout" && intents.first?.signal.strategyVersion == "2")
        #expect(intents.first?.signal.tickSequence == 4 && intents.first?.quantity == 10)
    }

    @Test("a follower holds no session and sends nothing")
    func followerIsQuiet() {
        var core = TradingCore(settings: Self.settings())
        _ = core.apply(.orderIntent(intent()), term: 1, index: 1, now: 0)
        let out = core.onDuty(now: 0, leadership: .follower, session: Self.loggedOn)
        #expect(Self.proposals(out).isEmpty)
        #expect(core.phase == .follower)
        #expect(!core.holdsSessionPermit)
    }

    @Test("a new leader asks the broker only once max_order_age has passed since it logged on")
    func settlesBeforeAsking() {
        var core = Self.leader(withOpenIntent: true)
        #expect(Self.statusRequests(core.onDuty(now: 50 * Self.ms, leadership: Self.leading, session: Self.loggedOn)).isEmpty)
        #expect(core.phase == .waiting)
        let asked = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(Self.statusRequests(asked) == ["BTN-1-1"])
        #expect(core.phase == .reconciling)
    }

    @Test("a replayed status answer (PossDup) is not an answer; a fresh unknown is, and the order goes again")
    func possDupStatusIgnored() {
        var core = Self.leader(withOpenIntent: true)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        let unknown = report("BTN-1-1", exec: "S1", type: "I", status: "8", cum: 0, avg: 0, rej: 5)
        #expect(Self.proposals(core.onExecutionReport(unknown, possDup: true, now: 110 * Self.ms)).isEmpty)
        let fresh = Self.proposals(core.onExecutionReport(unknown, possDup: false, now: 111 * Self.ms))
        guard case .reconciled(let finding)? = fresh.first, case .neverReceived = finding.finding else {
            Issue.record("expected a never-received finding, got \(fresh)")
            return
        }
        let applied = core.apply(.reconciled(finding), term: 2, index: 3, now: 112 * Self.ms)
        #expect(core.phase == .trading)
        let sends = applied.compactMap { if case .send(let s) = $0 { s } else { nil } }
        #expect(sends.map(\.order.clOrdID) == ["BTN-1-1"])
        #expect(sends.first?.possResend == true)
    }

    @Test("a BusinessMessageReject of the status request halts, naming it, and nothing is re-sent")
    func refusedStatusHalts() {
        var core = Self.leader(withOpenIntent: true)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        core.onStatusRequestWritten(clOrdID: "BTN-1-1", msgSeqNum: 7)
        let out = core.onRejected(
            refSeqNum: 7, refMsgType: "H", businessRejectRefID: nil, answer: "BusinessMessageReject(j) reason 3",
            now: 120 * Self.ms)
        #expect(core.phase == .halted)
        #expect(core.haltReason?.contains("BusinessMessageReject(j) reason 3") == true)
        #expect(!out.contains { if case .send = $0 { true } else { false } })
    }

    @Test("a silent order becomes unknown, and reconciliation waits until the unknown is in the log")
    func ackTimeoutOrdersUnknownFirst() {
        var core = Self.leader(withOpenIntent: false)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(core.phase == .trading)
        let committed = core.apply(.orderIntent(intent()), term: 2, index: 3, now: 101 * Self.ms)
        guard case .send(let send)? = committed.first(where: { if case .send = $0 { true } else { false } }) else {
            Issue.record("the committed intent was not sent: \(committed)")
            return
        }
        _ = core.onOrderWritten(send, msgSeqNum: 2, leaseRemainingNanos: 200 * Self.ms, now: 102 * Self.ms)
        let silent = core.onDuty(now: 400 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(Self.proposals(silent).contains { if case .orderUnknown(let u) = $0 { u.clOrdID == "BTN-2-3" } else { false } })
        #expect(core.phase == .waiting)
        // Not until the OrderUnknown is applied does anyone ask.
        #expect(Self.statusRequests(core.onDuty(now: 600 * Self.ms, leadership: Self.leading, session: Self.loggedOn)).isEmpty)
        _ = core.apply(
            .orderUnknown(OrderUnknown(clOrdID: "BTN-2-3", reason: "silent", atNanos: 0)), term: 2, index: 4, now: 601 * Self.ms)
        #expect(Self.statusRequests(core.onDuty(now: 602 * Self.ms, leadership: Self.leading, session: Self.loggedOn)) == ["BTN-2-3"])
    }

    @Test("no send without max_order_age + 20 ms of lease")
    func leaseMargin() {
        var core = Self.leader(withOpenIntent: false)
        let short = LeadershipInput(isLeader: true, term: 2, leaseRemainingNanos: 110 * Self.ms, termStartIndex: 1)
        _ = core.onDuty(now: 100 * Self.ms, leadership: short, session: Self.loggedOn)
        let out = core.apply(.orderIntent(intent()), term: 2, index: 3, now: 101 * Self.ms)
        #expect(!out.contains { if case .send = $0 { true } else { false } })
        let later = core.onDuty(now: 110 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(later.contains { if case .send = $0 { true } else { false } })
    }

    @Test("the lease lapsing lets go of the session at once")
    func leaseLapseRevokes() {
        var core = Self.leader(withOpenIntent: false)
        #expect(core.holdsSessionPermit)
        let lapsed = LeadershipInput(isLeader: true, term: 2, leaseRemainingNanos: nil, termStartIndex: 1)
        let out = core.onDuty(now: 10 * Self.ms, leadership: lapsed, session: Self.loggedOn)
        #expect(out.contains { if case .revokeSession = $0 { true } else { false } })
        #expect(!core.holdsSessionPermit)
    }

    @Test("a hand-over vouches for the successor only when the leader was trading and drained")
    func handOverMark() {
        var waiting = Self.leader(withOpenIntent: true)
        waiting.beginHandOver()
        guard case .handOver(let early)? = waiting.handOverMark(now: 1) else {
            Issue.record("no mark")
            return
        }
        #expect(!early.drained, "a leader that never reconciled cannot vouch for an ex-leader's late write")

        var trading = Self.leader(withOpenIntent: false)
        _ = trading.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(trading.phase == .trading)
        trading.beginHandOver()
        #expect(trading.unansweredWrites.isEmpty)
        guard case .handOver(let mark)? = trading.handOverMark(now: 2) else {
            Issue.record("no mark")
            return
        }
        #expect(mark.drained)

        // The successor (term 3) applies the mark and reconciles without the settle wait.
        var successor = TradingCore(settings: Self.settings(node: 2))
        _ = successor.apply(.orderIntent(intent()), term: 1, index: 1, now: 0)
        _ = successor.apply(.handOver(mark), term: 2, index: 3, now: 0)
        let next = LeadershipInput(isLeader: true, term: 3, leaseRemainingNanos: 250 * Self.ms, termStartIndex: 4)
        successor.applied(through: 4)
        guard case .sequenceReserved(let r)? = Self.proposals(successor.onDuty(now: 0, leadership: next, session: Self.loggedOff)).first
        else {
            Issue.record("no reservation")
            return
        }
        _ = successor.apply(.sequenceReserved(r), term: 3, index: 5, now: 1)
        let asked = successor.onDuty(now: 2 * Self.ms, leadership: next, session: Self.loggedOn)
        #expect(Self.statusRequests(asked) == ["BTN-1-1"])

        // The mark vouches once: after the successor's own connection drops, its next logon
        // waits out max_order_age again (its own writes may be in the gateway).
        _ = successor.onDuty(now: 3 * Self.ms, leadership: next, session: Self.loggedOff)
        #expect(successor.phase == .waiting)
        _ = successor.onDuty(now: 10 * Self.ms, leadership: next, session: Self.loggedOn)
        #expect(Self.statusRequests(successor.onDuty(now: 20 * Self.ms, leadership: next, session: Self.loggedOn)).isEmpty)
        #expect(successor.phase == .waiting)
        #expect(Self.statusRequests(successor.onDuty(now: 111 * Self.ms, leadership: next, session: Self.loggedOn)) == ["BTN-1-1"])
    }

    @Test("trace ids come from the node, the term and a counter, not a random source")
    func deterministicTraceIDs() {
        var a = Self.leader(withOpenIntent: false)
        var b = Self.leader(withOpenIntent: false)
        _ = a.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        _ = b.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        var outA: [TradingDirective] = []
        var outB: [TradingDirective] = []
        for (n, price) in [1_000_000, 1_000_000, 1_000_000, 1_100_000, 1_200_000].enumerated() {
            outA += a.onTick(symbol: "AAPL", sequence: UInt64(n + 1), price: Int64(price), receivedNanos: 5, now: 200 * Self.ms)
            outB += b.onTick(symbol: "AAPL", sequence: UInt64(n + 1), price: Int64(price), receivedNanos: 5, now: 200 * Self.ms)
        }
        let intents = Self.proposals(outA).compactMap { if case .orderIntent(let i) = $0 { i } else { nil } }
        #expect(!intents.isEmpty)
        #expect(intents.first?.traceID == "n1-t2-1")
        #expect(Self.proposals(outA) == Self.proposals(outB))
    }

    @Test("intents for two symbols committing at once count together against the rate limit")
    func theRateLimitCountsIntentsStillCommitting() {
        var settings = Self.settings()
        settings.strategies.append(
            .maCrossover(CrossoverParameters(symbol: "MSFT", fastWindow: 2, slowWindow: 3, threshold: 0, quantity: 10, allowShort: false)))
        settings.limits = RiskLimits(maxOrdersPerMinute: 1, maxOrdersPerHour: 1)
        var core = Self.leader(withOpenIntent: false, settings: settings)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        var out: [TradingDirective] = []
        // Both symbols cross up on the same ticks; nothing the leader proposes is applied yet.
        for (n, price) in [1_000_000, 1_000_000, 1_000_000, 1_100_000, 1_200_000].enumerated() {
            for symbol in ["AAPL", "MSFT"] {
                out += core.onTick(symbol: symbol, sequence: UInt64(n + 1), price: Int64(price), receivedNanos: 5, now: 200 * Self.ms)
            }
        }
        let proposed = Self.proposals(out)
        let intents = proposed.compactMap { if case .orderIntent(let i) = $0 { i.signal.symbol } else { nil } }
        let rejections = proposed.compactMap { if case .riskRejection(let r) = $0 { r } else { nil } }
        #expect(intents == ["AAPL"], "one intent fits the limit of one a minute")
        #expect(rejections.map(\.signal.symbol) == ["MSFT"])
        #expect(rejections.first?.reason == "rate limit: 1 orders in the last minute (max 1)")
    }

    @Test("a write lost with its connection stops trading, and no hand-over vouches while it is unknown")
    func lostWriteIsUnknownAndBlocksTheMark() {
        var core = Self.leader(withOpenIntent: false)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        let committed = core.apply(.orderIntent(intent()), term: 2, index: 3, now: 101 * Self.ms)
        #expect(committed.contains { if case .send = $0 { true } else { false } })
        let lost = core.onOrderLostInFlight(clOrdID: "BTN-2-3", reason: "reset", now: 102 * Self.ms)
        #expect(Self.proposals(lost).contains { if case .orderUnknown = $0 { true } else { false } })
        #expect(core.phase == .waiting)
        #expect(core.unansweredWrites == ["BTN-2-3"])
        // Not written again while its OrderUnknown is on its way, even with the session back.
        let again = core.onDuty(now: 500 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(!again.contains { if case .send = $0 { true } else { false } })
        core.beginHandOver()
        guard case .handOver(let mark)? = core.handOverMark(now: 501 * Self.ms) else {
            Issue.record("no mark")
            return
        }
        #expect(!mark.drained)
    }

    static func acknowledgements(_ directives: [TradingDirective]) -> [(String, Int64)] {
        directives.compactMap {
            if case .report(.orderAcknowledged(let id, let latency)) = $0 { (id, latency) } else { nil }
        }
    }

    @Test("the broker's first answer to a committed order is its acknowledgement, measured from the commit, once")
    func firstAnswerIsTheAcknowledgement() {
        var core = Self.leader(withOpenIntent: false)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        let committed = core.apply(.orderIntent(intent()), term: 2, index: 3, now: 101 * Self.ms)
        guard case .send(let send)? = committed.first(where: { if case .send = $0 { true } else { false } }) else {
            Issue.record("the committed intent was not sent: \(committed)")
            return
        }
        _ = core.onOrderWritten(send, msgSeqNum: 2, leaseRemainingNanos: 200 * Self.ms, now: 103 * Self.ms)
        // A replayed report (PossDup) is not an answer to this write.
        let replayed = core.onExecutionReport(
            report("BTN-2-3", exec: "E0", type: "0", status: "0", cum: 0, avg: 0, leaves: 100), possDup: true, now: 104 * Self.ms)
        #expect(Self.acknowledgements(replayed).isEmpty)
        let first = core.onExecutionReport(
            report("BTN-2-3", exec: "E1", type: "0", status: "0", cum: 0, avg: 0, leaves: 100), now: 112 * Self.ms)
        #expect(Self.acknowledgements(first).map(\.0) == ["BTN-2-3"])
        #expect(Self.acknowledgements(first).map(\.1) == [11 * Self.ms], "from the intent's commit at 101 ms")
        #expect(Self.proposals(first).count == 1, "the report is journaled as before")
        let fill = core.onExecutionReport(
            report("BTN-2-3", exec: "E2", status: "2", last: 100, lastPx: 1_000_000, cum: 100, avg: 1_000_000), now: 130 * Self.ms)
        #expect(Self.acknowledgements(fill).isEmpty, "only the first answer counts")
    }

    @Test("an order with no answer is no acknowledgement: its unknown is the SLI's bad event, and a late answer does not count")
    func silentOrderIsNotAcknowledged() {
        var core = Self.leader(withOpenIntent: false)
        _ = core.onDuty(now: 100 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        let committed = core.apply(.orderIntent(intent()), term: 2, index: 3, now: 101 * Self.ms)
        guard case .send(let send)? = committed.first(where: { if case .send = $0 { true } else { false } }) else {
            Issue.record("the committed intent was not sent: \(committed)")
            return
        }
        _ = core.onOrderWritten(send, msgSeqNum: 2, leaseRemainingNanos: 200 * Self.ms, now: 102 * Self.ms)
        let silent = core.onDuty(now: 400 * Self.ms, leadership: Self.leading, session: Self.loggedOn)
        #expect(silent.contains { if case .report(.orderUnknown("BTN-2-3", _)) = $0 { true } else { false } })
        let late = core.onExecutionReport(
            report("BTN-2-3", exec: "E1", type: "0", status: "0", cum: 0, avg: 0, leaves: 100), now: 450 * Self.ms)
        #expect(Self.acknowledgements(late).isEmpty)
    }
}


/// The core's side of the alert rules: the leader raises from its own view and the journal's,
/// and routes each event by severity.
@Suite struct TradingCoreAlertTests {
    static let ms = TradingCoreTests.ms

    static func leader(withSinks: Bool = true) -> TradingCore {
        var settings = TradingCoreTests.settings()
        if withSinks {
            settings.alertSinks = ["pagerduty", "slack"]
            settings.alertMinimumLevel = ["pagerduty": .error]
        }
        settings.clusterName = "baton-9"
        var core = TradingCore(settings: settings)
        core.applied(through: 1)
        let first = core.onDuty(now: -10 * ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
        guard case .sequenceReserved(let reservation)? = TradingCoreTests.proposals(first).first else {
            Issue.record("no sequence block proposed: \(first)")
            return core
        }
        _ = core.apply(.sequenceReserved(reservation), term: 2, index: 2, now: -5 * ms)
        _ = core.onDuty(now: 0, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOn)
        return core
    }

    static func raises(_ directives: [TradingDirective]) -> [(String, AlertEvent, [String])] {
        directives.compactMap {
            if case .propose(.alert(.raise(let identity, let event, let sinks))) = $0 { (identity, event, sinks) } else { nil }
        }
    }

    @Test("a leader whose broker session stays down 10 s raises it, routed by severity, and delivers once applied")
    func sessionDownIsRaised() {
        var core = Self.leader()
        _ = core.onDuty(now: 200 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
        let early = core.onDuty(now: 10_199 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
        #expect(Self.raises(early).isEmpty)
        let due = core.onDuty(now: 10_200 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
        let raised = Self.raises(due)
        #expect(raised.map(\.0) == ["baton-9/broker-session-down"])
        #expect(raised.first?.2 == ["pagerduty", "slack"])
        // Proposed once, while its proposal is in flight.
        #expect(Self.raises(core.onDuty(now: 10_300 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)).isEmpty)
        guard let (identity, event, sinks) = raised.first else { return }
        _ = core.apply(.alert(.raise(identity: identity, event: event, sinks: sinks)), term: 2, index: 3, now: 10_400 * Self.ms)
        let deliveries = core.onDuty(now: 10_500 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
            .compactMap { if case .deliverAlerts(let ids, let sink, let events) = $0 { "\(ids) \(sink) \(events.map(\.key))" } else { nil } }
        #expect(deliveries.sorted() == ["[3] pagerduty [\"baton-9/broker-session-down#3\"]", "[3] slack [\"baton-9/broker-session-down#3\"]"])
    }

    @Test("a risk rejection journaled before this replica led is raised by it as a warning the pager does not get")
    func riskLimitFromTheJournal() {
        var core = Self.leader()
        let rejection = RiskRejection(
            signal: intent().signal, reason: "target position 2000 AAPL exceeds the cap of 1000", decidedAtNanos: 500 * Self.ms)
        _ = core.apply(.riskRejection(rejection), term: 2, index: 3, now: 510 * Self.ms)
        let raised = Self.raises(core.onDuty(now: 600 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOn))
        #expect(raised.map(\.0) == ["baton-9/risk-limit/position"])
        #expect(raised.first?.1.level == .warning)
        #expect(raised.first?.2 == ["slack"])
        // A rejection that is no limit raises nothing.
        #expect(RiskGate.limit(of: "already long 10 AAPL") == nil)
        #expect(RiskGate.limit(of: "rate limit: 10 orders in the last minute (max 10)") == "rate")
    }

    @Test("without sinks no incident is raised")
    func noSinksNoIncidents() {
        var core = Self.leader(withSinks: false)
        _ = core.onDuty(now: 200 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)
        #expect(Self.raises(core.onDuty(now: 20_000 * Self.ms, leadership: TradingCoreTests.leading, session: TradingCoreTests.loggedOff)).isEmpty)
    }
}
