import BatonMarketData
import BatonTrading
import Foundation

/// A replay's output files: `decisions.csv`, `orders.csv`, `fills.csv`, `pnl.csv` and
/// `summary.json`. Prices are decimals as on the feed; times are ns since the epoch, as journaled.
public enum ReplayReport {
    public static func write(_ desk: ReplayDesk, summary: ReplayDesk.Summary, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func price(_ units: Int64?) -> String { units.map(TickCodec.formatPrice) ?? "" }
        func field(_ text: String) -> String {
            // RFC 4180: a field with a comma, quote or newline is quoted, its quotes doubled.
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"\(text.replacingOccurrences(of: "\"", with: "\"\""))\"" : text
        }
        var decisions = "decided_at_ns,symbol,tick_sequence,tick_price,tick_received_ns,direction,strategy,version,sleeve,outcome,clordid,side,quantity,kind,limit_price,time_in_force,risk\n"
        for d in desk.decisions {
            let columns: [String] = [
                "\(d.atNanos)", d.symbol, "\(d.tickSequence)", price(d.tickPrice), "\(d.tickReceivedNanos)", d.direction.rawValue, d.strategy, d.version,
                d.sleeve?.rawValue ?? "", d.outcome, d.clOrdID ?? "", d.side?.rawValue ?? "", d.quantity.map { "\($0)" } ?? "",
                d.kind?.rawValue ?? "", price(d.limitPrice), d.timeInForce?.rawValue ?? "", d.risk,
            ]
            decisions += columns.map(field).joined(separator: ",") + "\n"
        }
        var orders = "clordid,symbol,side,quantity,kind,limit_price,time_in_force,status,cum_qty,avg_price,strategy,version,sleeve\n"
        for o in desk.core.state.orderList {
            let columns: [String] = [
                o.clOrdID, o.symbol, o.intent.side.rawValue, "\(o.intent.quantity)", o.intent.kind.rawValue,
                price(o.intent.limitPrice), o.intent.timeInForce.rawValue, o.status.rawValue, "\(o.cumulativeQuantity)",
                price(o.averagePrice), o.intent.signal.strategy, o.intent.signal.strategyVersion, o.intent.signal.sleeve?.rawValue ?? "",
            ]
            orders += columns.map(field).joined(separator: ",") + "\n"
        }
        var fills = "at_ns,clordid,symbol,side,quantity,price\n"
        var pnl = "at_ns,symbol,position,price,cash,marked_pnl\n"
        var positions: [String: Int64] = [:]
        var cash: [String: Double] = [:]
        for f in desk.fills {
            fills += "\(f.atNanos),\(field(f.clOrdID)),\(field(f.symbol)),\(f.side.rawValue),\(f.quantity),\(price(f.price))\n"
            let signed = f.side == .buy ? f.quantity : -f.quantity
            positions[f.symbol, default: 0] += signed
            cash[f.symbol, default: 0] -= Double(signed) * Double(f.price) / Double(TickCodec.priceScale)
            let position = positions[f.symbol] ?? 0
            let marked = (cash[f.symbol] ?? 0) + Double(position) * Double(f.price) / Double(TickCodec.priceScale)
            pnl += "\(f.atNanos),\(field(f.symbol)),\(position),\(price(f.price)),\(format(cash[f.symbol] ?? 0)),\(format(marked))\n"
        }
        for (name, text) in [("decisions.csv", decisions), ("orders.csv", orders), ("fills.csv", fills), ("pnl.csv", pnl)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(summary).write(to: URL(fileURLWithPath: "\(directory)/summary.json"))
    }

    static func format(_ value: Double) -> String { String(format: "%.4f", value) }
}
