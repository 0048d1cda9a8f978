import BatonFIX
import BatonMarketData
import Testing

@testable import BatonVenue

let t0 = FIXTimestamp(millisecondsSinceEpoch: 1_764_000_000_000)

func engine(
    slippageBps: Int64 = 1, partialFillProbability: Double = 0, slices: Int = 3, seed: UInt64 = 7,
    scope: MatchingEngine.ClOrdIDScope = .session
) -> MatchingEngine {
    MatchingEngine(
        settings: MatchingEngine.Settings(
            seed: seed, slippageBps: slippageBps, partialFillProbability: partialFillProbability,
            partialFillSlices: slices, clOrdIDScope: scope),
        prices: ["AAPL": 1_872_500, "MSFT": 4_111_000])
}

func order(
    _ clOrdID: String, _ side: FIXSide = .buy, qty: FIXDecimal = 100, limit: FIXDecimal? = nil,
    tif: FIXTimeInForce? = nil, symbol: String = "AAPL", possResend: Bool = false
) -> FIXNewOrderSingle {
    FIXNewOrderSingle(
        clOrdID: clOrdID, symbol: symbol, side: side, transactTime: t0, orderQty: qty,
        ordType: limit == nil ? .market : .limit, price: limit, timeInForce: tif, possResend: possResend)
}

func reports(_ list: [VenueReport]) throws -> [FIXExecutionReport] {
    try list.map { try FIXExecutionReport($0.message) }
}

func tick(_ symbol: String, _ price: Int64, seq: UInt64 = 1) -> MarketTick {
    MarketTick(
        sequence: seq, symbol: symbol, price: price, size: 100, bid: price - 1, ask: price + 1, exchangeTimeNanos: 0)
}

@Suite struct MatchingEngineTests {
    @Test func marketOrdersFillAtTheCurrentPriceWithSlippageAgainstTheTaker() throws {
        var venue = engine(slippageBps: 1)
        let buy = try reports(venue.newOrder(order("B1", .buy), session: "BATON1", now: t0))
        #expect(buy.map(\.execType) == [.new, .trade])
        #expect(buy[1].ordStatus == .filled)
        // 187.25 + 1 bp (0.018725, truncated to 0.0187) = 187.2687
        #expect(buy[1].lastPx?.description == "187.2687")
        #expect(buy[1].avgPx.description == "187.2687")
        #expect(buy[1].cumQty.description == "100")
        #expect(buy[1].leavesQty.description == "0")

        let sell = try reports(venue.newOrder(order("S1", .sell, qty: 40), session: "BATON1", now: t0))
        #expect(sell[1].lastPx?.description == "187.2313")
        #expect(venue.positions["AAPL"] == 60 * VenueDecimal.scale)
        #expect(venue.totals.fills == 2)
        #expect(venue.totals.filledQuantity == 140 * VenueDecimal.scale)
    }

    @Test func limitOrdersRestUntilTheWalkCrossesThemAndFillAtTheLimit() throws {
        var venue = engine()
        let placed = try reports(
            venue.newOrder(
                order("L1", .buy, limit: FIXDecimal("187.00")!, tif: .goodTillCancel), session: "BATON1", now: t0))
        #expect(placed.map(\.execType) == [.new])
        #expect(placed[0].ordStatus == .new)
        #expect(placed[0].leavesQty.description == "100")

        #expect(venue.onMarketTick(tick("AAPL", 1_871_000), now: t0).isEmpty)  // 187.10: above the limit
        #expect(venue.onMarketTick(tick("MSFT", 1_000_000), now: t0).isEmpty)  // another symbol
        let filled = try reports(venue.onMarketTick(tick("AAPL", 1_869_900), now: t0))  // 186.99 trades through
        #expect(filled.count == 1)
        #expect(filled[0].execType == .trade)
        #expect(filled[0].lastPx?.description == "187")
        #expect(filled[0].ordStatus == .filled)
        #expect(venue.onMarketTick(tick("AAPL", 1_860_000), now: t0).isEmpty)  // nothing left to fill
        #expect(venue.order(clOrdID: "L1")?.status == .filled)
    }

    @Test func marketableLimitOrderTakesAtOnceCappedByItsLimit() throws {
        var venue = engine(slippageBps: 10)
        let r = try reports(
            venue.newOrder(order("L2", .buy, limit: FIXDecimal("187.30")!), session: "BATON1", now: t0))
        #expect(r.map(\.execType) == [.new, .trade])
        #expect(r[1].lastPx?.description == "187.3")  // 187.25 + 10 bp would be 187.437
    }

    @Test func iocFillsWhatCanFillNowAndCancelsTheRest() throws {
        var venue = engine(partialFillProbability: 1, slices: 2)
        let r = try reports(venue.newOrder(order("I1", .buy, tif: .immediateOrCancel), session: "BATON1", now: t0))
        #expect(r.map(\.execType) == [.new, .trade, .canceled])
        #expect(r[1].lastQty?.description == "50")
        #expect(r[1].ordStatus == .partiallyFilled)
        #expect(r[2].ordStatus == .canceled)
        #expect(r[2].cumQty.description == "50")
        #expect(r[2].leavesQty.description == "0")

        // An IOC limit that cannot trade now is canceled whole.
        let none = try reports(
            venue.newOrder(
                order("I2", .buy, limit: FIXDecimal("100")!, tif: .immediateOrCancel), session: "BATON1", now: t0))
        #expect(none.map(\.execType) == [.new, .canceled])
        #expect(none[1].cumQty.description == "0")
    }

    @Test func partialFillsOfAWorkingOrderComeOneSlicePerTick() throws {
        var venue = engine(partialFillProbability: 1, slices: 3)
        let first = try reports(venue.newOrder(order("P1", .sell, qty: 300), session: "BATON1", now: t0))
        #expect(first.map(\.execType) == [.new, .trade])
        #expect(first[1].lastQty?.description == "100")
        let second = try reports(venue.onMarketTick(tick("AAPL", 1_872_000), now: t0))
        #expect(second.map(\.ordStatus) == [.partiallyFilled])
        let third = try reports(venue.onMarketTick(tick("AAPL", 1_873_000), now: t0))
        #expect(third.map(\.ordStatus) == [.filled])
        #expect(third[0].cumQty.description == "300")
        #expect(venue.positions["AAPL"] == -300 * VenueDecimal.scale)
    }

    /// Per session, as at most brokers: another session's ClOrdID is another order, its status
    /// lookups and its reports stay on its own session. This is why the cluster shares one.
    @Test func clOrdIDsStatusAndReportsAreScopedToTheSessionByDefault() throws {
        var venue = engine()
        #expect(venue.settings.clOrdIDScope == .session)
        _ = venue.newOrder(order("S-1-5", limit: FIXDecimal("187")!, tif: .goodTillCancel), session: "BATON1", now: t0)
        let asked = try reports(
            venue.statusRequest(
                FIXOrderStatusRequest(clOrdID: "S-1-5", symbol: "AAPL", side: .buy), session: "BATON2", now: t0))
        #expect(asked.map(\.ordRejReason) == [5], "another session's order is unknown to this one")
        let again = try reports(venue.newOrder(order("S-1-5", possResend: true), session: "BATON2", now: t0))
        #expect(again.first?.execType == .new, "the same ClOrdID on another session is a second order")
        #expect(venue.totals.orders == 2)
        #expect(venue.totals.duplicateAttempts == 0)
        let fills = venue.onMarketTick(tick("AAPL", 1_869_000), now: t0)
        #expect(fills.filter { $0.message[11] == "S-1-5" && $0.message[150] == "F" }.map(\.session) == ["BATON1"])
        let mass = venue.massStatusRequest(FIXOrderMassStatusRequest(massStatusReqID: "MS-S"), session: "BATON3", now: t0)
        #expect(mass.count == 1 && mass[0].message[911] == "0", "a session sees none of the others' orders")
    }

    @Test func aSecondNewOrderSingleWithAKnownClOrdIDIsRejectedAsDuplicateAndRecorded() throws {
        var venue = engine()
        _ = venue.newOrder(order("C-1-5"), session: "BATON1", now: t0)
        let later = t0.adding(milliseconds: 1500)
        let dup = try reports(venue.newOrder(order("C-1-5", possResend: true), session: "BATON1", now: later))
        #expect(dup.count == 1)
        #expect(dup[0].execType == .rejected)
        #expect(dup[0].ordStatus == .rejected)
        #expect(dup[0].ordRejReason == 6)
        #expect(dup[0].text?.contains("BATON1") == true)
        #expect(venue.totals.duplicateAttempts == 1)
        #expect(venue.totals.orders == 1)
        #expect(
            venue.duplicates == [
                DuplicateOrderAttempt(
                    clOrdID: "C-1-5", session: "BATON1", possResend: true, receivedAt: later,
                    originalSession: "BATON1", originalReceivedAt: t0)
            ])
        // The original order is untouched: still filled once.
        #expect(venue.order(clOrdID: "C-1-5")?.cumQty == 100 * VenueDecimal.scale)
        #expect(venue.totals.fills == 1)
    }

    @Test func rejectedOrdersStillUseUpTheirClOrdID() throws {
        var venue = engine()
        let r = try reports(venue.newOrder(order("X1", symbol: "NOPE"), session: "BATON1", now: t0))
        #expect(r[0].execType == .rejected)
        #expect(r[0].ordRejReason == 1)
        #expect(r[0].text?.contains("NOPE") == true)
        let again = try reports(venue.newOrder(order("X1"), session: "BATON1", now: t0))
        #expect(again[0].ordRejReason == 6)
    }

    @Test func statusRequestReportsTheRealStateOfAKnownOrder() throws {
        var venue = engine()
        _ = venue.newOrder(order("K1", .buy, limit: FIXDecimal("180")!), session: "BATON1", now: t0)
        _ = venue.newOrder(order("K2", .sell, qty: 10), session: "BATON1", now: t0)
        let k1 = try reports(
            venue.statusRequest(
                FIXOrderStatusRequest(clOrdID: "K1", symbol: "AAPL", side: .buy), session: "BATON1", now: t0))
        #expect(k1.count == 1)
        #expect(k1[0].execType == .orderStatus)
        #expect(k1[0].ordStatus == .new)
        #expect(k1[0].leavesQty.description == "100")
        let k2 = try reports(
            venue.statusRequest(
                FIXOrderStatusRequest(clOrdID: "K2", symbol: "AAPL", side: .sell), session: "BATON1", now: t0))
        #expect(k2[0].ordStatus == .filled)
        #expect(k2[0].cumQty.description == "10")
        #expect(k2[0].avgPx.description == "187.2313")
    }

    @Test func statusRequestForAnUnknownClOrdIDProvesItWasNeverReceivedWithoutCreatingIt() throws {
        var venue = engine()
        let unknown = try reports(
            venue.statusRequest(
                FIXOrderStatusRequest(clOrdID: "C-2-9", symbol: "AAPL", side: .buy), session: "BATON2", now: t0))
        #expect(unknown.count == 1)
        #expect(unknown[0].execType == .orderStatus)
        #expect(unknown[0].ordStatus == .rejected)
        #expect(unknown[0].ordRejReason == 5)
        #expect(unknown[0].text?.contains("unknown ClOrdID C-2-9") == true)
        #expect(venue.order(clOrdID: "C-2-9") == nil)
        #expect(venue.orders.isEmpty)

        // So the new leader's resend (PossResend=Y) is accepted as a first order.
        let resent = try reports(venue.newOrder(order("C-2-9", possResend: true), session: "BATON2", now: t0))
        #expect(resent.map(\.execType) == [.new, .trade])
        #expect(venue.order(clOrdID: "C-2-9")?.possResend == true)
        #expect(venue.totals.duplicateAttempts == 0)
    }

    @Test func massStatusReportsEveryOrderOfTheAccountAndMarksTheLast() throws {
        var venue = engine(scope: .account)
        _ = venue.newOrder(order("M1"), session: "BATON1", now: t0)
        _ = venue.newOrder(order("M2", limit: FIXDecimal("150")!), session: "BATON1", now: t0)
        _ = venue.newOrder(order("M3", symbol: "MSFT"), session: "BATON1", now: t0)
        let list = venue.massStatusRequest(
            FIXOrderMassStatusRequest(massStatusReqID: "MS-1"), session: "BATON3", now: t0)
        let r = try reports(list)
        #expect(r.map(\.clOrdID) == ["M1", "M2", "M3"])
        #expect(r.allSatisfy { $0.execType == .orderStatus && $0.massStatusReqID == "MS-1" })
        #expect(list.map { $0.message[911] } == ["3", "3", "3"])
        #expect(list.map { $0.message[912] } == [nil, nil, "Y"])
        #expect(list.allSatisfy { $0.session == "BATON3" })
        #expect(r[1].ordStatus == .new)
        #expect(FIXDictionary.fix44.validate(list[2].message.withHeader()).isEmpty)

        var empty = engine()
        let none = empty.massStatusRequest(
            FIXOrderMassStatusRequest(massStatusReqID: "MS-2"), session: "BATON1", now: t0)
        #expect(none.count == 1)
        #expect(none[0].message[911] == "0")
        #expect(none[0].message[912] == "Y")
    }

    @Test func inAccountScopeUnsolicitedFillsGoToTheSessionThatLastAskedAboutTheOrder() throws {
        var venue = engine(scope: .account)
        _ = venue.newOrder(order("W1", limit: FIXDecimal("187")!, tif: .goodTillCancel), session: "BATON1", now: t0)
        _ = venue.newOrder(order("W2", limit: FIXDecimal("187")!, tif: .goodTillCancel), session: "BATON1", now: t0)
        _ = venue.statusRequest(
            FIXOrderStatusRequest(clOrdID: "W1", symbol: "AAPL", side: .buy), session: "BATON2", now: t0)
        #expect(venue.order(clOrdID: "W1")?.ownerSession == "BATON2")
        #expect(venue.order(clOrdID: "W1")?.session == "BATON1")
        let fills = venue.onMarketTick(tick("AAPL", 1_869_000), now: t0)
        #expect(Set(fills.map { "\($0.message[11] ?? "")@\($0.session)" }) == ["W1@BATON2", "W2@BATON1"])

        // A cancel request moves ownership too.
        _ = venue.newOrder(order("W3", limit: FIXDecimal("100")!), session: "BATON1", now: t0)
        let canceled = venue.cancelRequest(
            FIXOrderCancelRequest(origClOrdID: "W3", clOrdID: "W3-X", symbol: "AAPL", side: .buy, transactTime: t0),
            session: "BATON3", now: t0)
        #expect(canceled.map(\.session) == ["BATON3"])
        #expect(venue.order(clOrdID: "W3")?.ownerSession == "BATON3")
    }

    @Test func cancelWorksOnWorkingOrdersAndIsRejectedOtherwise() throws {
        var venue = engine()
        _ = venue.newOrder(order("Q1", limit: FIXDecimal("100")!), session: "BATON1", now: t0)
        let ok = try reports(
            venue.cancelRequest(
                FIXOrderCancelRequest(origClOrdID: "Q1", clOrdID: "Q1-C", symbol: "AAPL", side: .buy, transactTime: t0),
                session: "BATON1", now: t0))
        #expect(ok[0].execType == .canceled)
        #expect(ok[0].origClOrdID == "Q1")
        #expect(ok[0].clOrdID == "Q1-C")
        #expect(venue.onMarketTick(tick("AAPL", 900_000), now: t0).isEmpty)  // canceled: never fills

        let late = venue.cancelRequest(
            FIXOrderCancelRequest(origClOrdID: "Q1", clOrdID: "Q1-D", symbol: "AAPL", side: .buy, transactTime: t0),
            session: "BATON1", now: t0)
        let lateReject = try FIXOrderCancelReject(late[0].message)
        #expect(lateReject.cxlRejReason == 0)
        #expect(lateReject.ordStatus == .canceled)

        let unknown = venue.cancelRequest(
            FIXOrderCancelRequest(origClOrdID: "ZZ", clOrdID: "ZZ-C", symbol: "AAPL", side: .buy, transactTime: t0),
            session: "BATON1", now: t0)
        let unknownReject = try FIXOrderCancelReject(unknown[0].message)
        #expect(unknownReject.cxlRejReason == 1)
        #expect(unknownReject.text?.contains("ZZ") == true)
    }

    @Test func dayOrdersExpireAtTheEndOfTheDayAndGTCOrdersStay() throws {
        var venue = engine()
        _ = venue.newOrder(order("D1", limit: FIXDecimal("100")!), session: "BATON1", now: t0)
        _ = venue.newOrder(order("G1", limit: FIXDecimal("100")!, tif: .goodTillCancel), session: "BATON1", now: t0)
        let expired = try reports(venue.endOfDay(now: t0))
        #expect(expired.map(\.clOrdID) == ["D1"])
        #expect(expired[0].execType == .expired)
        #expect(venue.order(clOrdID: "G1")?.status == .new)
    }

    @Test func execIDsAreUniqueAcrossEverythingTheVenueReports() throws {
        var venue = engine(partialFillProbability: 0.5, slices: 4)
        var all: [VenueReport] = []
        for i in 0..<50 {
            all += venue.newOrder(
                order("U\(i)", i % 2 == 0 ? .buy : .sell, limit: i % 3 == 0 ? FIXDecimal("187.2")! : nil),
                session: "BATON1", now: t0)
            all += venue.newOrder(order("U\(i)"), session: "BATON2", now: t0)
            all += venue.onMarketTick(tick("AAPL", 1_870_000 + Int64(i % 7) * 1_000), now: t0)
        }
        all += venue.massStatusRequest(FIXOrderMassStatusRequest(massStatusReqID: "A"), session: "BATON1", now: t0)
        let execIDs = try reports(all).map(\.execID)
        #expect(execIDs.count > 150)
        #expect(Set(execIDs).count == execIDs.count)
    }

    @Test func theSameSeedAndRequestsGiveTheSameReports() throws {
        func run(seed: UInt64) -> [FIXMessage] {
            var venue = engine(partialFillProbability: 0.5, slices: 3, seed: seed)
            var out: [VenueReport] = []
            for i in 0..<40 {
                out += venue.newOrder(order("R\(i)", qty: 90), session: "BATON1", now: t0)
                out += venue.onMarketTick(tick("AAPL", 1_872_500 + Int64(i)), now: t0)
            }
            return out.map(\.message)
        }
        #expect(run(seed: 11) == run(seed: 11))
        #expect(run(seed: 11) != run(seed: 12))
    }

    @Test func everyReportConformsToTheFIX44Dictionary() throws {
        var venue = engine(partialFillProbability: 1, slices: 2)
        var all = venue.newOrder(order("V1", tif: .immediateOrCancel), session: "B", now: t0)
        all += venue.newOrder(order("V1"), session: "B", now: t0)
        all += venue.statusRequest(
            FIXOrderStatusRequest(clOrdID: "none", symbol: "AAPL", side: .buy), session: "B", now: t0)
        all += venue.cancelRequest(
            FIXOrderCancelRequest(origClOrdID: "none", clOrdID: "c", symbol: "AAPL", side: .buy, transactTime: t0),
            session: "B", now: t0)
        for report in all {
            let errors = FIXDictionary.fix44.validate(report.message.withHeader())
            #expect(errors.isEmpty, "\(report.message): \(errors)")
        }
    }
}

extension FIXMessage {
    /// The header fields a session would stamp, so the dictionary can check the whole message.
    func withHeader() -> FIXMessage {
        var message = self
        message.set(FIXTag.senderCompID, "VENUE")
        message.set(FIXTag.targetCompID, "BATON1")
        message.set(FIXTag.msgSeqNum, "1")
        message.set(FIXTag.sendingTime, t0.fixString)
        return message
    }
}

@Suite struct StaleOrderTests {
    /// An order that arrives after its sender could have lost the right to send it is refused
    /// before its ClOrdID counts: a later re-send with PossResend=Y is a first, not a duplicate.
    @Test func anOrderOlderThanTheLimitIsRefusedAndNotRemembered() throws {
        var venue = MatchingEngine(
            settings: MatchingEngine.Settings(seed: 1, maxOrderAgeMilliseconds: 100), prices: ["AAPL": 1_872_500])
        let stale = try reports(
            venue.newOrder(order("B1"), session: "BATON1", now: t0.adding(milliseconds: 101), sendingTime: t0))
        #expect(stale.count == 1)
        #expect(stale[0].ordStatus == .rejected && stale[0].ordRejReason == 99)
        #expect(stale[0].text?.contains("stale order") == true)
        #expect(venue.totals.staleOrders == 1 && venue.totals.orders == 0)
        // Not an order, but on the record: an audit can tell "refused with a reason" from "never arrived".
        #expect(venue.refusals.map(\.clOrdID) == ["B1"])
        #expect(venue.refusals.first?.session == "BATON1" && venue.refusals.first?.ordRejReason == 99)
        #expect(venue.order(clOrdID: "B1") == nil)
        let fresh = try reports(
            venue.newOrder(
                order("B1", possResend: true), session: "BATON2", now: t0.adding(milliseconds: 500),
                sendingTime: t0.adding(milliseconds: 499)))
        #expect(fresh.map(\.execType) == [.new, .trade])
        #expect(venue.totals.duplicateAttempts == 0)
        // Within the limit is accepted as usual.
        let onTime = try reports(
            venue.newOrder(order("B2"), session: "BATON2", now: t0.adding(milliseconds: 100), sendingTime: t0))
        #expect(onTime.first?.execType == .new)
    }
}
