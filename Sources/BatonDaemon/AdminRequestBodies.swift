import Foundation

#if !BATON_FUZZ_ADMIN
import BatonFIX
#endif

// The JSON bodies of the admin plane's POST routes (AdminAPI.swift, TradingServices.swift), and
// the checks each route makes on its body before it acts. Foundation and BatonFIX's FIXDecimal
// only: Tests/Fuzz/run.sh (target `admin`) compiles this file with BatonFIX's FIXValues.swift
// into one module (BATON_FUZZ_ADMIN) and feeds it arbitrary bytes.

/// How a route reads its body: an empty body is nil (every field takes its default), anything
/// else must be JSON of the type, or DecodingError, which the route answers 400 with `describe`.
enum AdminRequestBody {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T? {
        guard !data.isEmpty else { return nil }
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// Where in the body, and what is wrong, for the 400 answer.
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
            .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }
}

/// A body that decoded but that the route refuses (400), with the message it answers.
struct AdminBodyRefusal: Error, Equatable {
    var message: String
}

/// `POST /admin/members`: one membership change, through the log (etcd's `member add --learner`,
/// `member promote`, `member remove`): `{"action": "add-learner", "id": 4, "address": "host:7100"}`,
/// `{"action": "promote", "id": 4}` or `{"action": "remove", "id": 4}`. The consensus core
/// judges whether the change is safe now.
struct AdminMemberRequest: Decodable {
    var action: String?
    var id: UInt64?
    var address: String?

    enum Change: Equatable {
        case addLearner(id: UInt64, address: String)
        case promote(id: UInt64)
        case remove(id: UInt64)
    }

    static func change(_ request: Self?) -> Result<Change, AdminBodyRefusal> {
        guard let request, let action = request.action else {
            return .failure(AdminBodyRefusal(message: "body must say action: add-learner, promote or remove"))
        }
        guard let id = request.id, id > 0, id <= UInt64(UInt32.max) else {
            return .failure(AdminBodyRefusal(message: "id must be a node id from 1 to \(UInt32.max)"))
        }
        switch action {
        case "add-learner":
            guard let address = request.address, !address.isEmpty else {
                return .failure(AdminBodyRefusal(message: "add-learner needs the address its peers dial (host:port)"))
            }
            guard address.utf8.count <= 300 else {
                return .failure(AdminBodyRefusal(message: "address is longer than 300 bytes"))
            }
            return .success(.addLearner(id: id, address: address))
        case "promote":
            guard request.address == nil else { return .failure(AdminBodyRefusal(message: "promote takes no address")) }
            return .success(.promote(id: id))
        case "remove":
            guard request.address == nil else { return .failure(AdminBodyRefusal(message: "remove takes no address")) }
            return .success(.remove(id: id))
        default:
            return .failure(
                AdminBodyRefusal(message: "action '\(action.prefix(40))' is not one of add-learner, promote, remove"))
        }
    }
}

/// `POST /admin/transfer-leadership`: `{"to": 2}`, or `{}` (or no body) for the most caught-up
/// follower. The consensus loop judges the target.
struct AdminTransferRequest: Decodable {
    var to: UInt64?
}

/// `POST /admin/propose`: `{"count": 100, "size": 256}` test entries.
struct AdminProposeRequest: Decodable {
    var count: Int?
    var size: Int?

    /// The most entry bytes one request may build.
    static let maxBytes = 16 << 20

    /// How many entries of how many bytes the route proposes, or why it refuses.
    static func entries(_ request: Self?) -> Result<(count: Int, size: Int), AdminBodyRefusal> {
        let count = request?.count ?? 1
        let size = request?.size ?? 256
        guard (1...100_000).contains(count) else {
            return .failure(AdminBodyRefusal(message: "count must be from 1 to 100000"))
        }
        guard (0...(1 << 20)).contains(size) else {
            return .failure(AdminBodyRefusal(message: "size must be from 0 to 1048576 bytes"))
        }
        // Both bounds at once would still let one request build 100 GiB in memory.
        guard count * size <= maxBytes else {
            return .failure(
                AdminBodyRefusal(message: "count × size is \(count * size) bytes; at most \(maxBytes) per request"))
        }
        return .success((count, size))
    }

    /// The test entries: `size` bytes of `.`, led by the entry's number (big-endian, cut to `size`).
    static func commands(count: Int, size: Int) -> [[UInt8]] {
        var commands: [[UInt8]] = []
        commands.reserveCapacity(count)
        for i in 0..<count {
            var bytes = [UInt8](repeating: 0x2E, count: size)
            withUnsafeBytes(of: UInt64(i).bigEndian) { raw in
                for (k, b) in raw.enumerated() where k < size { bytes[k] = b }
            }
            commands.append(bytes)
        }
        return commands
    }
}

/// `POST /admin/debug/stall`: `{"ms": 3000}`.
struct AdminStallRequest: Decodable {
    var ms: Int?

    /// How long the route wedges the loop, or why it refuses.
    static func milliseconds(_ request: Self?) -> Result<Int, AdminBodyRefusal> {
        let ms = request?.ms ?? 0
        guard (1...60_000).contains(ms) else { return .failure(AdminBodyRefusal(message: "ms must be from 1 to 60000")) }
        return .success(ms)
    }
}

/// `POST /admin/debug/kill-on-next-order`: `{"when": "before-send"}`; `Point` is
/// `TradingEngine.KillPoint` (generic only so that this file needs nothing but Foundation).
struct AdminArmRequest<Point: Decodable>: Decodable {
    var when: Point
}

/// `POST /admin/trading/pause` and `/admin/trading/resume`: `{"reason": "…"}`, or no body.
struct AdminPauseRequest: Decodable {
    var reason: String?
    /// Refused when present: the journal names the token that authenticated the request.
    var by: String?

    static let maxReasonBytes = 500

    /// The reason the route journals, or why it refuses.
    static func reason(_ request: Self?, paused: Bool) -> Result<String, AdminBodyRefusal> {
        if request?.by != nil { return .failure(.byNotAccepted) }
        let reason = request?.reason ?? (paused ? "paused by an operator" : "resumed by an operator")
        guard reason.utf8.count <= maxReasonBytes else {
            return .failure(AdminBodyRefusal(message: "reason is longer than \(maxReasonBytes) bytes"))
        }
        return .success(reason)
    }
}

/// `POST /admin/orders/resolve`: an operator settles an order reconciliation could not.
struct AdminResolveRequest: Decodable {
    var clordid: String
    /// "not-received" or "filled".
    var outcome: String
    var quantity: Int64?
    /// Decimal, e.g. "187.25" (at most four places).
    var price: String?
    var reason: String
    var by: String?

    /// What the broker confirmed, as the route hands it to the trading engine.
    enum Outcome: Equatable {
        case notReceived
        case filled(quantity: Int64, priceUnits: Int64)
    }

    struct Resolution: Equatable {
        var clOrdID: String
        var outcome: Outcome
        var reason: String
    }

    static let usage = #"POST /admin/orders/resolve needs {"clordid", "outcome", "reason"[, "quantity", "price"]}"#

    /// The resolution the route journals, or why it refuses (an empty body is refused: every
    /// field but quantity and price is required).
    static func resolution(_ request: Self?) -> Result<Resolution, AdminBodyRefusal> {
        guard let request else { return .failure(AdminBodyRefusal(message: usage)) }
        if request.by != nil { return .failure(.byNotAccepted) }
        guard !request.clordid.isEmpty, request.clordid.utf8.count <= 64 else {
            return .failure(AdminBodyRefusal(message: "clordid must be 1 to 64 bytes"))
        }
        guard !request.reason.isEmpty, request.reason.utf8.count <= 500 else {
            return .failure(AdminBodyRefusal(message: "reason must be 1 to 500 bytes: say what the broker confirmed"))
        }
        switch request.outcome {
        case "not-received":
            guard request.quantity == nil, request.price == nil else {
                return .failure(AdminBodyRefusal(message: "outcome not-received takes no quantity or price"))
            }
            return .success(Resolution(clOrdID: request.clordid, outcome: .notReceived, reason: request.reason))
        case "filled":
            guard let quantity = request.quantity, quantity > 0 else {
                return .failure(AdminBodyRefusal(message: "outcome filled needs a quantity above 0"))
            }
            guard let text = request.price, let price = priceUnits(text) else {
                let shown = request.price.map { AdminBodyRefusal.quoted($0) } ?? "none"
                return .failure(
                    AdminBodyRefusal(
                        message: "outcome filled needs a price: a positive decimal with at most 4 places below 100000000, got \(shown)"))
            }
            return .success(
                Resolution(
                    clOrdID: request.clordid, outcome: .filled(quantity: quantity, priceUnits: price),
                    reason: request.reason))
        default:
            return .failure(
                AdminBodyRefusal(message: "outcome must be not-received or filled, got \(AdminBodyRefusal.quoted(request.outcome))"))
        }
    }

    /// "187.25" → 1_872_500 price units; nil unless positive, at most four places, under 10^8.
    static func priceUnits(_ text: String) -> Int64? {
        guard text.utf8.count <= 20, let decimal = FIXDecimal(text), decimal.scale <= 4, decimal.units > 0 else {
            return nil
        }
        var units = decimal.units
        for _ in decimal.scale..<4 {
            let (next, overflow) = units.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            units = next
        }
        return units < 1_000_000_000_000 ? units : nil
    }
}

/// `POST /admin/strategies`: put a strategy version on some symbols (every traded symbol when
/// `symbols` is absent): `{"name": "channel-breakout", "version": "2", "symbols": ["AAPL"],
/// "parameters": {"lookback": 30, "allow_short": true}, "reason": "…"}`. A parameter's value is
/// a string, a whole number or true/false (a decimal such as threshold is a string: "0.05").
/// The trading engine checks the name and the parameters against the strategy registry.
struct AdminStrategyRequest: Decodable {
    var name: String
    var version: String
    var symbols: [String]?
    var parameters: [String: Scalar]?
    var reason: String
    var by: String?

    /// A JSON scalar, kept as the text the registry parses.
    struct Scalar: Decodable, Equatable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) {
                text = flag ? "true" : "false"
            } else if let number = try? container.decode(Int64.self) {
                text = "\(number)"
            } else if let string = try? container.decode(String.self) {
                text = string
            } else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "a parameter is a string, a whole number or true/false (a decimal goes in a string)")
            }
        }
    }

    struct Deployment: Equatable {
        var name: String
        var version: String
        var symbols: [String]?
        var parameters: [String: String]
        var reason: String
    }

    static let usage = #"POST /admin/strategies needs {"name", "version", "reason"[, "symbols", "parameters"]}"#

    /// What the route hands the trading engine, or why it refuses.
    static func deployment(_ request: Self?) -> Result<Deployment, AdminBodyRefusal> {
        guard let request else { return .failure(AdminBodyRefusal(message: usage)) }
        if request.by != nil { return .failure(.byNotAccepted) }
        func printable(_ text: String) -> Bool { !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } }
        guard !request.name.isEmpty, request.name.utf8.count <= 64, printable(request.name) else {
            return .failure(AdminBodyRefusal(message: "name must be 1 to 64 printable bytes"))
        }
        guard !request.version.isEmpty, request.version.utf8.count <= 32, printable(request.version),
            !request.version.contains(" ")
        else {
            return .failure(AdminBodyRefusal(message: "version must be 1 to 32 printable bytes without spaces"))
        }
        if let symbols = request.symbols {
            guard !symbols.isEmpty, symbols.count <= 1000 else {
                return .failure(AdminBodyRefusal(message: "symbols must list 1 to 1000 symbols (leave it out for all)"))
            }
            guard symbols.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 32 && printable($0) }) else {
                return .failure(AdminBodyRefusal(message: "each symbol must be 1 to 32 printable bytes"))
            }
            guard Set(symbols).count == symbols.count else {
                return .failure(AdminBodyRefusal(message: "symbols lists a symbol twice"))
            }
        }
        let parameters = request.parameters ?? [:]
        guard parameters.count <= 32 else { return .failure(AdminBodyRefusal(message: "at most 32 parameters")) }
        for (key, value) in parameters where key.utf8.count > 40 || value.text.utf8.count > 40 {
            return .failure(
                AdminBodyRefusal(message: "parameter \(AdminBodyRefusal.quoted(key)): names and values are at most 40 bytes"))
        }
        guard !request.reason.isEmpty, request.reason.utf8.count <= 500 else {
            return .failure(AdminBodyRefusal(message: "reason must be 1 to 500 bytes: say why this version goes out"))
        }
        return .success(
            Deployment(
                name: request.name, version: request.version, symbols: request.symbols,
                parameters: parameters.mapValues(\.text), reason: request.reason))
    }
}

extension AdminBodyRefusal {
    /// The caller's own text, quoted back in an answer at most `maxBytes` long (cut by bytes:
    /// one Character can be any number of them).
    static func quoted(_ text: String, maxBytes: Int = 40) -> String {
        text.utf8.count <= maxBytes ? text : String(decoding: text.utf8.prefix(maxBytes), as: UTF8.self) + "…"
    }

    /// Who acted is the authenticated token's name; a body cannot claim to be someone else.
    static let byNotAccepted = AdminBodyRefusal(
        message: "'by' is not accepted: the journal names the token that authenticated the request")
}

/// `POST /admin/alerts/test`: `{"sink": "slack"}`, one test event to that sink.
struct AdminAlertTestRequest: Decodable {
    var sink: String

    static let sinks = ["pagerduty", "slack", "telegram", "webhook"]

    static func sink(_ request: Self?) -> Result<String, AdminBodyRefusal> {
        guard let request else {
            return .failure(AdminBodyRefusal(message: "body must be {\"sink\": \"pagerduty\" | \"slack\" | \"telegram\" | \"webhook\"}"))
        }
        guard sinks.contains(request.sink) else {
            return .failure(
                AdminBodyRefusal(
                    message: "sink '\(String(decoding: request.sink.utf8.prefix(40), as: UTF8.self))' is not one of \(sinks.joined(separator: ", "))"))
        }
        return .success(request.sink)
    }
}

/// `POST /admin/canary`: a candidate strategy version beside the baseline, in steps of capital.
struct AdminCanaryRequest: Decodable {
    var name: String
    var version: String
    var symbols: [String]?
    var parameters: [String: AdminStrategyRequest.Scalar]?
    var steps: [Int]
    var interval_s: Int
    var max_failed_checks: Int?
    var reason: String
    var by: String?

    static let usage =
        #"POST /admin/canary needs {"name", "version", "steps": [5, 25, 50, 100], "interval_s", "reason"[, "max_failed_checks", "symbols", "parameters"]}"#

    struct Start: Equatable {
        var deployment: AdminStrategyRequest.Deployment
        var steps: [Int]
        var intervalSeconds: Int
        var maxFailedChecks: Int
    }

    /// What the route hands the trading engine, or why it refuses: the strategy part is checked
    /// as a deployment's is, the steps and the interval here.
    static func start(_ request: Self?) -> Result<Start, AdminBodyRefusal> {
        guard let request else { return .failure(AdminBodyRefusal(message: usage)) }
        let strategy = AdminStrategyRequest(
            name: request.name, version: request.version, symbols: request.symbols, parameters: request.parameters,
            reason: request.reason, by: request.by)
        let deployment: AdminStrategyRequest.Deployment
        switch AdminStrategyRequest.deployment(strategy) {
        case .success(let value): deployment = value
        case .failure(let refusal): return .failure(refusal)
        }
        guard (1...20).contains(request.steps.count), request.steps.last == 100, request.steps[0] >= 1,
            zip(request.steps, request.steps.dropFirst()).allSatisfy({ $0 < $1 })
        else {
            return .failure(AdminBodyRefusal(message: "steps must be 1 to 20 rising percentages from at least 1, the last 100 (e.g. [5, 25, 50, 100])"))
        }
        guard (1...86_400).contains(request.interval_s) else {
            return .failure(AdminBodyRefusal(message: "interval_s must be from 1 to 86400 seconds"))
        }
        let maxFailed = request.max_failed_checks ?? 2
        guard (1...100).contains(maxFailed) else {
            return .failure(AdminBodyRefusal(message: "max_failed_checks must be from 1 to 100"))
        }
        return .success(Start(deployment: deployment, steps: request.steps, intervalSeconds: request.interval_s, maxFailedChecks: maxFailed))
    }
}

/// `POST /admin/canary/decide`: an operator's promote, promote-full, abort, pause or resume.
struct AdminCanaryDecisionRequest: Decodable {
    var action: String
    var reason: String?
    var by: String?

    /// BatonTrading's CanaryAction names (this file is fuzzed without BatonTrading; a test
    /// keeps the two the same).
    static let actions = ["promote", "promote-full", "abort", "pause", "resume"]

    static func decision(_ request: Self?) -> Result<(action: String, reason: String), AdminBodyRefusal> {
        let actions = Self.actions.joined(separator: ", ")
        guard let request else { return .failure(AdminBodyRefusal(message: #"POST /admin/canary/decide needs {"action", "reason"}: action is one of "# + actions)) }
        if request.by != nil { return .failure(.byNotAccepted) }
        guard let action = Self.actions.first(where: { $0 == request.action }) else {
            return .failure(AdminBodyRefusal(message: "action '\(AdminBodyRefusal.quoted(request.action))' is not one of \(actions)"))
        }
        let reason = request.reason ?? "\(action) by an operator"
        guard reason.utf8.count <= AdminPauseRequest.maxReasonBytes else {
            return .failure(AdminBodyRefusal(message: "reason is longer than \(AdminPauseRequest.maxReasonBytes) bytes"))
        }
        return .success((action, reason))
    }
}
