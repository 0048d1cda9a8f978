public import BatonTrading

/// A strict FIX broker, as the trading simulator's counterparty: one session (the cluster's
/// CompIDs), one live connection at a time, MsgSeqNum checks both ways, a store it replays from,
/// an order gateway between the session and the book, partial fills, and restarts that keep the
/// book and the store. It is the worst case Baton must be safe against, so it is stricter than
/// most brokers where strictness can only hurt Baton:
///
/// - it executes every NewOrderSingle that reaches its book, even a ClOrdID it has seen (many
///   brokers check uniqueness among open orders only, some not at all); the checker, not the
///   broker, catches a second execution;
/// - its status service answers from the book at once, while an order can still be in the
///   gateway for up to `gatewayLatencyMaxNanos` (and is answered "unknown" meanwhile);
/// - a restart loses the orders in its gateway (never executed, answered "unknown" after).
///
/// What Baton must assume about a broker, and this one honours: an order leaves the gateway
/// within `max_order_age` of arriving, and one connection per session.
struct BrokerModel {
    struct Order {
        var clOrdID: String
        var symbol: String
        var side: OrderSide
        var quantity: Int64
        var cumulative: Int64 = 0
        var notional: Int128 = 0
        var orderID: String
        var fillsLeft: Int

        var leaves: Int64 { quantity - cumulative }
        var averagePrice: Int64 { cumulative == 0 ? 0 : Int64(notional / Int128(cumulative)) }
        var ordStatus: String { cumulative == 0 ? "0" : cumulative < quantity ? "1" : "2" }
    }

    /// A report as the broker sends it (and keeps in its store for resends).
    struct Report {
        var seq: Int
        var clOrdID: String
        var execID: String
        var orderID: String
        var execType: String
        var ordStatus: String
        var lastQuantity: Int64 = 0
        var lastPrice: Int64 = 0
        var cumulative: Int64 = 0
        var averagePrice: Int64 = 0
        var leaves: Int64 = 0
        var ordRejReason: Int?
        var text: String?
    }

    var up = true
    /// The connection logged on to the session, if any.
    var live: Int?
    var lastHeard: UInt64 = 0
    var expectedInbound = 1
    var nextOutbound = 1
    var store: [Report] = []
    var book: [String: Order] = [:]
    /// Orders received and not yet in the book, by ClOrdID → how many copies.
    var gateway: [String: Int] = [:]
    /// How many times each ClOrdID reached the book.
    var executions: [String: Int] = [:]
    /// Signed filled quantity per symbol: what the account holds at the broker.
    var positions: [String: Int64] = [:]
    var received = 0
    var possResends = 0
    var refusedLogons = 0
    private var counter = 0

    mutating func nextID(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)\(counter)"
    }

    /// Appends an application message to the store, numbered.
    mutating func record(_ report: Report) -> Report {
        var numbered = report
        numbered.seq = nextOutbound
        nextOutbound += 1
        store.append(numbered)
        return numbered
    }

    /// Reports numbered `from` and later, for a logon that expects `from` next.
    func replay(from: Int) -> [Report] {
        guard let first = store.firstIndex(where: { $0.seq >= from }) else { return [] }
        return Array(store[first...])
    }

    func status(of clOrdID: String) -> Report {
        guard let order = book[clOrdID] else {
            return Report(
                seq: 0, clOrdID: clOrdID, execID: "S-\(clOrdID)-\(nextOutbound)", orderID: "NONE", execType: "I",
                ordStatus: "8", ordRejReason: 5, text: "unknown order")
        }
        return Report(
            seq: 0, clOrdID: clOrdID, execID: "S-\(clOrdID)-\(nextOutbound)", orderID: order.orderID, execType: "I",
            ordStatus: order.ordStatus, cumulative: order.cumulative, averagePrice: order.averagePrice,
            leaves: order.leaves)
    }
}
