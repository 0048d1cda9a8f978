// libFuzzer target for the JSON bodies of the admin plane's POST routes and the checks a route
// makes on its body before it acts (Sources/BatonDaemon/AdminRequestBodies.swift, which imports
// only Foundation). Built by Fuzz/run.sh with `swiftc -sanitize=fuzzer,address`; that file is
// compiled into this target's module, so its internal types are used as the routes use them.
//
// An input is a request body, read as each route reads it (`AdminRequestBody.decode`, then the
// route's checks):
// - POST /admin/transfer-leadership  AdminTransferRequest  {"to": 2}
// - POST /admin/propose              AdminProposeRequest   {"count": 100, "size": 256}, bounds and
//                                    count × size ≤ 16 MiB, then the test entries it would propose
// - POST /admin/debug/stall          AdminStallRequest     {"ms": 3000}, 1…60000
// - POST /admin/debug/kill-on-next-order  AdminArmRequest<KillPoint>  {"when": "before-send"}
// - POST /admin/trading/pause, /resume    AdminPauseRequest  {"reason": "…"}, no `by`, ≤ 500 bytes
// - POST /admin/alerts/test                AdminAlertTestRequest  {"sink": "slack"}, one of four names
// - POST /admin/orders/resolve            AdminResolveRequest  {"clordid", "outcome", "reason",
//                                    "quantity", "price"}, the outcome's rules, the price's units
// - POST /admin/canary, /decide      AdminCanaryRequest, AdminCanaryDecisionRequest: steps rise to
//                                    100, interval 1…86400 s; action one of five, no `by`
// - POST /admin/members              AdminMemberRequest  {"action", "id", "address"}: one of three
//                                    actions, id 1…2^32-1, an address ≤ 300 bytes for add-learner only
// - POST /admin/strategies           AdminStrategyRequest  {"name", "version", "symbols",
//                                    "parameters", "reason"}, lengths and counts, scalars as text
// The input is also used as the value of each field (`{"count": <input>}` …, and for resolve a
// whole request around it), so that mutations of a number or string literal reach the decoder
// and the checks without having to keep the rest of the body intact.
//
// FIXDecimal, which the resolve price is parsed with, comes from BatonFIX's FIXValues.swift,
// compiled into this module too (run.sh, with BATON_FUZZ_ADMIN so the file does not import it).
//
// Properties checked on every input (a violation traps, which libFuzzer reports as a crash):
// - decoding and the checks never trap or overflow (ASan and Swift's own checks);
// - what fails to decode fails with a DecodingError (the one error `AdminAPI.action` answers 400;
//   anything else would escape the route) whose description is not empty;
// - an empty body takes the route's defaults; a body the checks accept is within the bounds the
//   route promises (count 1…100000, size 0…1 MiB, count × size ≤ 16 MiB, ms 1…60000), one they
//   refuse is outside them and says why; the test entries are `count` entries of `size` bytes,
//   each led by its number; a pause reason or resolution accepted keeps its rules (no `by`,
//   lengths, outcome and its quantity and price, the price's units round-trip through text), a
//   refusal says why in at most 200 bytes.
import Foundation

/// TradingEngine.KillPoint (TradingEngine.swift, an actor's nested type that needs all of the
/// daemon): the same raw values, decoded the same way.
private enum KillPoint: String, Decodable {
    case beforeSend = "before-send"
    case afterSend = "after-send"
    case stopBeforeWrite = "stop-before-write"
    case none
}

@_cdecl("LLVMFuzzerInitialize")
public func adminBodiesFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let seed = Array(
        #"{"count": 100, "size": 256, "to": 2, "ms": 3000, "when": "before-send", "reason": "r", "clordid": "C1", "outcome": "filled", "quantity": 5, "price": "187.25"}"#
            .utf8)
    seed.withUnsafeBufferPointer { _ = adminBodiesFuzzerTestOneInput($0.baseAddress!, $0.count) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func adminBodiesFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)
    routes(body)
    if size > 0 {
        for field in ["to", "count", "size", "ms", "when", "reason"] {
            routes(Data(#"{"\#(field)":"#.utf8) + body + Data("}".utf8))
        }
        let resolve = #"{"clordid": "BATON-1-2-3", "reason": "the broker confirmed it", "#
        let strategy = #"{"name": "channel-breakout", "version": "2", "reason": "r", "#
        for (field, rest) in [
            ("parameters", #""symbols": ["AAPL"]"#), ("symbols", #""parameters": {"lookback": 30}"#),
            ("version", #""parameters": {"allow_short": true}"#),
        ] {
            routes(Data((strategy + rest + #", "\#(field)": "#).utf8) + body + Data("}".utf8))
        }
        routes(Data((strategy + #""parameters": {"lookback": "#).utf8) + body + Data("}}".utf8))
        for (field, rest) in [
            ("price", #""outcome": "filled", "quantity": 100"#), ("quantity", #""outcome": "filled", "price": "187.25""#),
            ("outcome", #""quantity": 100, "price": "187.25""#), ("clordid", #""outcome": "not-received""#),
        ] {
            routes(Data((resolve + rest + #", "\#(field)": "#).utf8) + body + Data("}".utf8))
        }
    }
    return 0
}

private func routes(_ body: Data) {
    if case .decoded(let transfer) = decode(AdminTransferRequest.self, body) {
        _ = transfer?.to
    }
    if case .decoded(let request) = decode(AdminProposeRequest.self, body) {
        propose(request, empty: body.isEmpty)
    }
    if case .decoded(let request) = decode(AdminStallRequest.self, body) {
        let ms = request?.ms ?? 0
        switch AdminStallRequest.milliseconds(request) {
        case .success(let value):
            require(value == ms && (1...60_000).contains(value), "stall accepted \(value) ms from \(String(describing: request))")
        case .failure(let refusal):
            require(!(1...60_000).contains(ms) && !refusal.message.isEmpty, "stall refused \(ms) ms: \(refusal)")
        }
    }
    switch decode(AdminArmRequest<KillPoint>.self, body) {
    case .decoded(let arm): require(arm != nil || body.isEmpty, "a body that is not empty decoded to nothing")
    case .refused: break
    }
    if case .decoded(let request) = decode(AdminPauseRequest.self, body) {
        for paused in [true, false] { pause(request, paused: paused) }
    }
    if case .decoded(let request) = decode(AdminResolveRequest.self, body) {
        resolve(request)
    }
    if case .decoded(let request) = decode(AdminStrategyRequest.self, body) {
        deployment(request)
    }
    if case .decoded(let request) = decode(AdminCanaryRequest.self, body) {
        switch AdminCanaryRequest.start(request) {
        case .success(let start):
            require(start.steps.last == 100 && zip(start.steps, start.steps.dropFirst()).allSatisfy { $0 < $1 }, "steps \(start.steps) accepted")
            require((1...86_400).contains(start.intervalSeconds) && (1...100).contains(start.maxFailedChecks), "interval or max failed checks")
        case .failure(let refusal): require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "canary refusal: \(refusal)")
        }
    }
    if case .decoded(let request) = decode(AdminCanaryDecisionRequest.self, body) {
        switch AdminCanaryDecisionRequest.decision(request) {
        case .success(let decision):
            require(AdminCanaryDecisionRequest.actions.contains(decision.action) && request?.by == nil, "decision \(decision.action) accepted")
        case .failure(let refusal): require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "canary decision refusal: \(refusal)")
        }
    }
    if case .decoded(let request) = decode(AdminMemberRequest.self, body) {
        switch AdminMemberRequest.change(request) {
        case .success(.addLearner(let id, let address)):
            require(request?.action == "add-learner" && (1...UInt64(UInt32.max)).contains(id), "add-learner \(id) accepted")
            require(!address.isEmpty && address.utf8.count <= 300, "address of \(address.utf8.count) bytes accepted")
        case .success(.promote(let id)), .success(.remove(let id)):
            require((1...UInt64(UInt32.max)).contains(id) && request?.address == nil, "promote/remove \(id) accepted")
        case .failure(let refusal): require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "member refusal: \(refusal)")
        }
    }
    if case .decoded(let request) = decode(AdminAlertTestRequest.self, body) {
        switch AdminAlertTestRequest.sink(request) {
        case .success(let sink): require(AdminAlertTestRequest.sinks.contains(sink), "alerts test accepted sink \(sink.debugDescription)")
        case .failure(let refusal): require(refusal.message.utf8.count <= 200, "a refusal of \(refusal.message.utf8.count) bytes")
        }
    }
}

private func pause(_ request: AdminPauseRequest?, paused: Bool) {
    switch AdminPauseRequest.reason(request, paused: paused) {
    case .success(let reason):
        require(request?.by == nil, "pause accepted a body with by: \(String(describing: request))")
        require(reason.utf8.count <= AdminPauseRequest.maxReasonBytes, "pause accepted a reason of \(reason.utf8.count) bytes")
        require(request?.reason == nil ? !reason.isEmpty : reason == request?.reason, "pause changed the reason")
    case .failure(let refusal):
        require(
            request?.by != nil || (request?.reason?.utf8.count ?? 0) > AdminPauseRequest.maxReasonBytes,
            "pause refused \(String(describing: request)): \(refusal)")
        require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "pause refusal: \(refusal)")
    }
}

private func deployment(_ request: AdminStrategyRequest?) {
    switch AdminStrategyRequest.deployment(request) {
    case .success(let deployment):
        guard let request else { failed("an empty strategy body was accepted") }
        require(request.by == nil, "a deployment with by was accepted")
        require((1...64).contains(deployment.name.utf8.count) && deployment.name == request.name, "name \(deployment.name.utf8.count) bytes")
        require(
            (1...32).contains(deployment.version.utf8.count) && !deployment.version.contains(" "),
            "version \(deployment.version.debugDescription) accepted")
        require((1...500).contains(deployment.reason.utf8.count), "a reason of \(deployment.reason.utf8.count) bytes")
        if let symbols = deployment.symbols {
            require((1...1000).contains(symbols.count) && Set(symbols).count == symbols.count, "\(symbols.count) symbols accepted")
            require(symbols.allSatisfy { (1...32).contains($0.utf8.count) }, "a symbol's length")
        }
        require(deployment.parameters.count <= 32, "\(deployment.parameters.count) parameters accepted")
        require(
            deployment.parameters.allSatisfy { $0.key.utf8.count <= 40 && $0.value.utf8.count <= 40 },
            "a parameter past 40 bytes")
        require(deployment.parameters.keys.sorted() == (request.parameters ?? [:]).keys.sorted(), "parameters lost or added")
    case .failure(let refusal):
        require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "strategy refusal: \(refusal)")
    }
}

private func resolve(_ request: AdminResolveRequest?) {
    switch AdminResolveRequest.resolution(request) {
    case .success(let resolution):
        guard let request else { failed("an empty resolve body was accepted") }
        require(request.by == nil, "resolve accepted a body with by")
        require(
            resolution.clOrdID == request.clordid && (1...64).contains(resolution.clOrdID.utf8.count),
            "resolve accepted clordid \(resolution.clOrdID.utf8.count) bytes")
        require(
            resolution.reason == request.reason && (1...500).contains(resolution.reason.utf8.count),
            "resolve accepted a reason of \(resolution.reason.utf8.count) bytes")
        switch resolution.outcome {
        case .notReceived:
            require(
                request.outcome == "not-received" && request.quantity == nil && request.price == nil,
                "not-received from \(request)")
        case .filled(let quantity, let price):
            require(request.outcome == "filled" && quantity == request.quantity && quantity > 0, "filled quantity from \(request)")
            require(price > 0 && price < 1_000_000_000_000, "filled price \(price) units out of range")
            // The units say the same price as the text did: written back with four places, they
            // parse to themselves.
            let text = "\(price / 10_000).\(String(price % 10_000 + 10_000).dropFirst())"
            require(AdminResolveRequest.priceUnits(text) == price, "price \(price) units do not round-trip through \(text)")
        }
    case .failure(let refusal):
        require(!refusal.message.isEmpty && refusal.message.utf8.count <= 200, "resolve refusal: \(refusal)")
    }
}

private func propose(_ request: AdminProposeRequest?, empty: Bool) {
    require(request != nil || empty, "a body that is not empty decoded to nothing")
    let count = request?.count ?? 1
    let size = request?.size ?? 256
    let allowed =
        (1...100_000).contains(count) && (0...(1 << 20)).contains(size)
        && count.multipliedReportingOverflow(by: size).partialValue <= 16 << 20
    switch AdminProposeRequest.entries(request) {
    case .success(let entries):
        require(allowed && entries.count == count && entries.size == size, "propose accepted \(entries) from \(String(describing: request))")
        // What the route builds, when it is small enough to build on every input.
        guard entries.count * entries.size <= 1 << 20, entries.count <= 20_000 else { return }
        let commands = AdminProposeRequest.commands(count: entries.count, size: entries.size)
        require(commands.count == entries.count, "\(commands.count) entries, not \(entries.count)")
        for i in Set([0, commands.count / 2, commands.count - 1]) {
            let command = commands[i]
            require(command.count == entries.size, "entry \(i) has \(command.count) bytes, not \(entries.size)")
            let number = withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) }
            require(command.prefix(8).elementsEqual(number.prefix(entries.size)), "entry \(i) is not led by its number")
            require(command.dropFirst(8).allSatisfy { $0 == 0x2E }, "entry \(i) is not filled with '.'")
        }
    case .failure(let refusal):
        require(!allowed && !refusal.message.isEmpty, "propose refused count \(count) size \(size): \(refusal)")
    }
}

private enum Read<T> {
    case decoded(T?)
    case refused
}

/// As a route reads its body: a DecodingError is a 400 (with its description), nothing else may
/// be thrown.
private func decode<T: Decodable>(_: T.Type, _ body: Data) -> Read<T> {
    do {
        let value = try AdminRequestBody.decode(T.self, from: body)
        require(value != nil || body.isEmpty, "a body that is not empty decoded to nothing")
        return .decoded(value)
    } catch let error as DecodingError {
        require(!AdminRequestBody.describe(error).isEmpty, "a DecodingError without a description: \(error)")
        return .refused
    } catch {
        failed("\(T.self) threw \(type(of: error)), which the route does not answer: \(error)")
    }
}

/// precondition, but the message is printed (with -O a failed precondition shows only its line).
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", line: UInt = #line) {
    if !condition { failed(message(), line: line) }
}

private func failed(_ message: String, line: UInt = #line) -> Never {
    FileHandle.standardError.write(Data("AdminBodiesFuzzer.swift:\(line): \(message)\n".utf8))
    fatalError(message)
}
