public import BatonFIX
public import BatonMarketData

/// Quantities and prices inside the venue: fixed point in units of 1/`TickCodec.priceScale`, the
/// market data's own scale, so fills at tick prices are exact.
public enum VenueDecimal {
    public static let scale = TickCodec.priceScale

    /// Nil when the value has more fractional digits than the venue keeps, or is too large.
    public static func units(_ decimal: FIXDecimal) -> Int64? {
        guard decimal.scale <= 4 else { return nil }
        var factor: Int64 = 1
        for _ in decimal.scale..<4 { factor *= 10 }
        let (value, overflow) = decimal.units.multipliedReportingOverflow(by: factor)
        return overflow ? nil : value
    }

    public static func decimal(_ units: Int64) -> FIXDecimal {
        FIXDecimal(TickCodec.formatPrice(units)) ?? FIXDecimal(units: units, scale: 4)
    }

    public static func string(_ units: Int64) -> String { TickCodec.formatPrice(units) }
}

/// One order as the venue knows it: what was asked, what happened, who owns it now.
public struct VenueOrder: Hashable, Sendable, Codable {
    public var orderID: String
    public var clOrdID: String
    /// The session that sent the NewOrderSingle.
    public var session: String
    /// The session that last sent a message about this order: unsolicited reports go there.
    public var ownerSession: String
    public var symbol: String
    public var side: FIXSide
    public var ordType: FIXOrdType
    public var timeInForce: FIXTimeInForce
    public var orderQty: Int64
    /// Limit price; nil for market orders.
    public var price: Int64?
    public var possResend: Bool
    public var status: FIXOrdStatus
    public var cumQty: Int64 = 0
    /// Sum of lastQty × lastPx in units of 1/scale², for an exact average price.
    public var notional: Int128 = 0
    public var receivedAt: FIXTimestamp
    /// Why the order was rejected, when it was.
    public var rejectText: String?
    /// Slices still to fill when partial fills are simulated (1 = fill the rest at once).
    var slicesLeft: Int = 1

    public var leavesQty: Int64 { isTerminal ? 0 : orderQty - cumQty }

    public var avgPx: Int64 {
        guard cumQty > 0 else { return 0 }
        let q = Int128(cumQty)
        return Int64((notional + q / 2) / q)
    }

    public var isTerminal: Bool {
        [FIXOrdStatus.filled, .canceled, .rejected, .expired, .doneForDay].contains(status)
    }

    var isBuy: Bool { side == .buy }
}

/// A NewOrderSingle whose ClOrdID the account had already used.
public struct DuplicateOrderAttempt: Hashable, Sendable, Codable {
    public var clOrdID: String
    public var session: String
    public var possResend: Bool
    public var receivedAt: FIXTimestamp
    /// The session and time of the order that first used the ClOrdID.
    public var originalSession: String
    public var originalReceivedAt: FIXTimestamp
}

/// A NewOrderSingle the venue refused before it became an order (so it is not in `orders` and its
/// ClOrdID stays free), with the reason it sent back.
public struct RefusedOrder: Hashable, Sendable, Codable {
    public var clOrdID: String
    public var session: String
    public var possResend: Bool
    public var receivedAt: FIXTimestamp
    public var sendingTime: FIXTimestamp
    public var ordRejReason: Int
    public var text: String
}

/// An application message for one counterparty session.
public struct VenueReport: Hashable, Sendable {
    public var session: String
    public var message: FIXMessage

    public init(session: String, message: FIXMessage) {
        self.session = session
        self.message = message
    }
}
