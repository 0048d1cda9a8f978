public import BatonFIX
public import BatonTrading
import BatonAlerting
import BatonMarketData

/// The trading core's orders and the broker's reports in FIX terms: the one boundary between
/// the journal's units and FIX 4.4, used by the live engine and by `baton-replay` alike, so a
/// replay's orders are the bytes the leader would have written.
public enum OrderMessages {
    public struct ReportRefusal: Error, Sendable {
        /// Names the field and the value, e.g. "AvgPx(6)=1e20 is above 1000000000".
        public var reason: String
    }

    /// The NewOrderSingle(D) for an order the core asks to send.
    public static func newOrderSingle(_ send: OrderToSend, transactTime: FIXTimestamp) -> FIXNewOrderSingle {
        let order = send.order
        let intent = order.intent
        return FIXNewOrderSingle(
            clOrdID: order.clOrdID, symbol: order.symbol, side: intent.side == .buy ? .buy : .sell,
            transactTime: transactTime, orderQty: FIXDecimal(units: intent.quantity),
            ordType: intent.kind == .market ? .market : .limit,
            price: intent.limitPrice.map { FIXDecimal(units: $0, scale: 4) },
            timeInForce: timeInForce(intent.timeInForce), account: send.account, possResend: send.possResend)
    }

    /// An ExecutionReport(8) as the core takes it.
    public enum Inbound: Sendable {
        case unreadable(String)
        case report(ExecutionRecord, possDup: Bool, massStatus: (requestID: String, last: Bool)?)
        /// Outside the journal's bounds: the core hears of it, nothing is journaled.
        case refused(clOrdID: String, isStatusReport: Bool, reason: String)
    }

    public static func inbound(_ message: FIXMessage, session: String, now: Int64) -> Inbound {
        let report: FIXExecutionReport
        do {
            report = try FIXExecutionReport(message)
        } catch {
            return .unreadable("\(error)")
        }
        switch record(report, session: session, now: now) {
        case .success(var record):
            record.msgSeqNum = message.msgSeqNum
            let massStatus = message[584].map { id in (requestID: id, last: message[912] == "Y" || message[911] == "0") }
            return .report(record, possDup: message[43] == "Y", massStatus: massStatus)
        case .failure(let refusal):
            return .refused(
                clOrdID: report.clOrdID ?? "", isStatusReport: report.execType == .orderStatus,
                reason: "ExecID \(report.execID): \(refusal.reason)")
        }
    }

    /// The broker's ExecutionReport in journal units, or why it cannot be: every quantity a
    /// whole number in 0…10^12, every price in 0…10^9 (TradingBounds). This is the boundary: a
    /// report that passes it can always be applied, on every replica, on every restart.
    public static func record(_ report: FIXExecutionReport, session: String, now: Int64) -> Result<ExecutionRecord, ReportRefusal> {
        func quantityField(_ name: String, _ value: FIXDecimal?) -> Result<Int64, ReportRefusal> {
            guard let value else { return .success(0) }
            guard let whole = quantity(value), TradingBounds.isQuantity(whole) else {
                return .failure(ReportRefusal(reason: "\(name)=\(value) is not a whole quantity in 0…\(TradingBounds.maxQuantity)"))
            }
            return .success(whole)
        }
        func priceField(_ name: String, _ value: FIXDecimal?) -> Result<Int64, ReportRefusal> {
            guard let value else { return .success(0) }
            guard let units = price(value), TradingBounds.isPrice(units) else {
                return .failure(
                    ReportRefusal(reason: "\(name)=\(value) is not a price in 0…\(TickCodec.formatPrice(TradingBounds.maxPriceUnits))"))
            }
            return .success(units)
        }
        return Result { () throws(ReportRefusal) -> ExecutionRecord in
            ExecutionRecord(
                clOrdID: report.clOrdID ?? "", execID: report.execID, venueOrderID: report.orderID,
                execType: report.execType.rawValue, ordStatus: report.ordStatus.rawValue,
                lastQuantity: try quantityField("LastQty(32)", report.lastQty).get(),
                lastPrice: try priceField("LastPx(31)", report.lastPx).get(),
                cumulativeQuantity: try quantityField("CumQty(14)", report.cumQty).get(),
                averagePrice: try priceField("AvgPx(6)", report.avgPx).get(),
                leavesQuantity: try quantityField("LeavesQty(151)", report.leavesQty).get(),
                ordRejReason: report.ordRejReason, text: report.text.map { String($0.prefix(500)) }, session: session,
                receivedAtNanos: now)
        }
    }

    /// FIX decimal → price units (1/10_000); nil when it cannot be represented. Finer prices
    /// are truncated: the venue quotes in ticks of at most four places.
    public static func price(_ value: FIXDecimal) -> Int64? {
        var units = value.units
        var scale = value.scale
        while scale < 4 {
            let (next, overflow) = units.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            units = next
            scale += 1
        }
        while scale > 4 {
            units /= 10
            scale -= 1
        }
        return units
    }

    /// FIX decimal → whole quantity; nil for fractional quantities (not traded here).
    public static func quantity(_ value: FIXDecimal) -> Int64? {
        var units = value.units
        var scale = value.scale
        while scale > 0 {
            guard units % 10 == 0 else { return nil }
            units /= 10
            scale -= 1
        }
        return units
    }

    public static func timeInForce(_ tif: OrderTimeInForce) -> FIXTimeInForce {
        switch tif {
        case .day: return .day
        case .goodTillCancel: return .goodTillCancel
        case .immediateOrCancel: return .immediateOrCancel
        }
    }
}

extension TradingConfiguration {
    /// The trading core's settings for replica `node`: one derivation, shared by the live
    /// engine and `baton-replay`, so a replay runs the same strategies, limits and timeouts.
    public func coreSettings(node: UInt64) -> TradingCore.Settings {
        var settings = TradingCore.Settings(
            node: node, senderCompID: senderCompID, targetCompID: targetCompID, account: account,
            clOrdIDPrefix: clOrdIDPrefix, strategies: strategySpecs, strategyVersion: strategyVersion,
            limits: RiskLimits(
                maxOrdersPerMinute: risk.maxOrdersPerMinute,
                maxOrdersPerHour: risk.maxOrdersPerHour, maxPosition: risk.maxPosition,
                maxOrderQuantity: risk.maxOrderQuantity),
            reconciler: .init(
                answerTimeoutNanos: Int64(reconcileAnswerTimeout.nanosecondsClamped),
                attemptsBeforeHalt: reconcileAttemptsBeforeHalt, massStatus: massStatus),
            maxOrderAgeNanos: Int64(maxOrderAge.nanosecondsClamped),
            ackTimeoutNanos: Int64(ackTimeout.nanosecondsClamped),
            sequenceBlock: sequenceBlock)
        settings.alertSinks = alertSinks.keys.sorted()
        settings.alertMinimumLevel = alertMinimumSeverity.compactMapValues(AlertEvent.Level.init(rawValue:))
        settings.clusterName = clusterName
        settings.brokerHandOverAfterNanos = brokerHandOverAfter.map { Int64($0.nanosecondsClamped) }
        settings.alertDispatch = AlertDispatcher.Settings(
            minimumIntervalMillis: alertMinimumIntervalMillis, quietHours: alertQuietHours,
            groupWindowMillis: alertGroupWindowMillis, groupMaximum: alertGroupMaximum)
        return settings
    }
}
