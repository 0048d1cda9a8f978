import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Real HTTP servers on 127.0.0.1 that answer as each alert receiver's API documents: the
/// status codes, bodies and headers of PagerDuty's Events API v2, a Slack incoming webhook,
/// the Telegram Bot API's sendMessage and an Alertmanager webhook receiver. They are as strict
/// as the real services where it matters to a sender (what they refuse, how they rate limit),
/// so that a client that passes here is one the real receiver accepts.
final class AlertReceiver: Sendable {
    enum API: Sendable {
        /// `POST /v2/enqueue`; events per routing key per minute before 429 (PagerDuty says
        /// about 120).
        case pagerDuty(eventsPerMinute: Int)
        /// `POST <path>`; one message a second before 429 with Retry-After.
        case slack(path: String)
        /// `POST /bot<token>/sendMessage` to the chats listed; one message a second per chat.
        case telegram(token: String, chats: Set<String>)
        /// Alertmanager's webhook body, version 4.
        case alertmanager
    }

    struct Received: Sendable {
        var path: String
        var body: [UInt8]
        var status: Int
        var json: [String: any Sendable]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: any Sendable]
        }
    }

    private struct State {
        var received: [Received] = []
        /// Statuses to answer next, before the API's own rules (a 500, a 503 …).
        var faults: [Int] = []
        /// PagerDuty: dedup_key → open (true) or resolved (false).
        var incidents: [String: Bool] = [:]
        var sentAt: [String: [ContinuousClock.Instant]] = [:]
        var nextMessageID = 1
        /// Answers are held this long after the request was taken (and counted): a receiver
        /// that accepted the event and whose 202 has not reached the sender yet.
        var answerDelay: Duration?
        /// Bodies holding this text are answered with a 400 (one kind of event refused).
        var refusedMarker: String?
        var server: Task<Void, any Error>?
        var group: ServiceGroup?
        var port = 0
    }

    let api: API
    private let state = Mutex(State())
    var port: Int { state.withLock { $0.port } }

    init(_ api: API) { self.api = api }

    var received: [Received] { state.withLock { $0.received } }
    var incidents: [String: Bool] { state.withLock { $0.incidents } }
    func fail(next statuses: [Int]) { state.withLock { $0.faults += statuses } }
    func holdAnswers(_ delay: Duration?) { state.withLock { $0.answerDelay = delay } }
    func refuseBodies(containing marker: String?) { state.withLock { $0.refusedMarker = marker } }
    var url: String { "http://127.0.0.1:\(port)" }

    func start() async throws {
        let router = Router()
        router.post("**") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let (status, headers, reply) = self.answer(path: request.uri.path, body: Array(body.readableBytesView))
            if let delay = self.state.withLock({ $0.answerDelay }) { try? await Task.sleep(for: delay) }
            var fields = HTTPFields()
            // Header names here are the constants above (Retry-After, Content-Type): valid.
            for (name, value) in headers { fields[.init(name)!] = value }
            return Response(
                status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: Array(reply.utf8))))
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? -1)
                portContinuation.finish()
            }, logger: Logger(label: "test.alert-receiver"))
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test.alert-receiver")))
        let server = Task { try await group.run() }
        state.withLock {
            $0.server = server
            $0.group = group
        }
        for await bound in ports {
            state.withLock { $0.port = bound }
            return
        }
    }

    func stop() async {
        let (server, group) = state.withLock { ($0.server, $0.group) }
        await group?.triggerGracefulShutdown()
        _ = await server?.result
    }

    private func answer(path: String, body: [UInt8]) -> (Int, [String: String], String) {
        state.withLock { state in
            let reply: (Int, [String: String], String)
            if let marker = state.refusedMarker, body.firstRange(of: Array(marker.utf8)) != nil {
                reply = (400, [:], "{\"status\":\"invalid event\",\"message\":\"Event object is invalid\",\"errors\":[\"scripted refusal\"]}")
            } else if !state.faults.isEmpty {
                let status = state.faults.removeFirst()
                reply = (status, [:], "{\"error\":\"scripted \(status)\"}")
            } else {
                switch api {
                case .pagerDuty(let limit): reply = Self.pagerDuty(path, body, limit, &state)
                case .slack(let hook): reply = Self.slack(path, body, hook, &state)
                case .telegram(let token, let chats): reply = Self.telegram(path, body, token, chats, &state)
                case .alertmanager: reply = Self.alertmanager(body)
                }
            }
            state.received.append(Received(path: path, body: body, status: reply.0))
            return reply
        }
    }

    /// Whether `key` may send again now under `perWindow` per `window`, and the wait if not.
    private static func admit(_ key: String, perWindow: Int, window: Duration, _ state: inout State) -> Duration? {
        let now = ContinuousClock.now
        var recent = (state.sentAt[key] ?? []).filter { now - $0 < window }
        defer { state.sentAt[key] = recent }
        guard recent.count < perWindow else { return window - (now - recent[0]) }
        recent.append(now)
        return nil
    }

    // MARK: PagerDuty Events API v2

    private static func pagerDuty(_ path: String, _ body: [UInt8], _ limit: Int, _ state: inout State)
        -> (Int, [String: String], String)
    {
        func invalid(_ error: String) -> (Int, [String: String], String) {
            (400, ["Content-Type": "application/json"], #"{"status":"invalid event","message":"Event object is invalid","errors":["\#(error)"]}"#)
        }
        guard path == "/v2/enqueue" else { return (404, [:], "Not Found") }
        guard let event = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return invalid("Invalid JSON") }
        guard let key = event["routing_key"] as? String, key.count == 32 else { return invalid("Invalid routing key") }
        guard let action = event["event_action"] as? String, ["trigger", "acknowledge", "resolve"].contains(action) else {
            return invalid("'event_action' is missing or blank")
        }
        let dedup = event["dedup_key"] as? String ?? UUID().uuidString
        guard dedup.count <= 255 else { return invalid("'dedup_key' is too long") }
        if action == "trigger" {
            guard let payload = event["payload"] as? [String: Any] else { return invalid("'payload' is missing") }
            guard let summary = payload["summary"] as? String, !summary.isEmpty, summary.count <= 1024 else {
                return invalid("'payload.summary' is missing, blank or longer than 1024")
            }
            guard let source = payload["source"] as? String, !source.isEmpty else { return invalid("'payload.source' is missing or blank") }
            guard let severity = payload["severity"] as? String, ["critical", "error", "warning", "info"].contains(severity) else {
                return invalid("'payload.severity' is invalid")
            }
            if let stamp = payload["timestamp"] as? String, (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(stamp)) == nil {
                return invalid("'payload.timestamp' is invalid")
            }
        }
        if admit(key, perWindow: limit, window: .seconds(60), &state) != nil {
            return (429, ["Content-Type": "application/json"], #"{"status":"throttle event","message":"Requests for this service are arriving too quickly.  Please retry later."}"#)
        }
        switch action {
        case "trigger": state.incidents[dedup] = true
        case "resolve": if state.incidents[dedup] == true { state.incidents[dedup] = false }
        default: break
        }
        return (202, ["Content-Type": "application/json"], #"{"status":"success","message":"Event processed","dedup_key":"\#(dedup)"}"#)
    }

    // MARK: Slack incoming webhook

    private static func slack(_ path: String, _ body: [UInt8], _ hook: String, _ state: inout State) -> (Int, [String: String], String) {
        guard path == hook else { return (404, [:], "no_service") }
        guard let message = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return (400, [:], "invalid_payload") }
        let blocks = message["blocks"] as? [[String: Any]] ?? []
        guard (message["text"] as? String).map({ !$0.isEmpty }) == true || !blocks.isEmpty else { return (400, [:], "no_text") }
        // A message takes at most 50 blocks.
        guard blocks.count <= 50 else { return (400, [:], "invalid_blocks") }
        for block in blocks {
            let text = (block["text"] as? [String: Any])?["text"] as? String ?? ""
            switch block["type"] as? String {
            case "header": if text.count > 150 { return (400, [:], "invalid_blocks") }
            case "section": if text.count > 3000 { return (400, [:], "invalid_blocks") }
            case "context": if (block["elements"] as? [Any])?.count ?? 0 > 10 { return (400, [:], "invalid_blocks") }
            default: return (400, [:], "invalid_blocks")
            }
        }
        if admit(hook, perWindow: 1, window: .seconds(1), &state) != nil {
            return (429, ["Retry-After": "1"], "rate_limited")
        }
        return (200, ["Content-Type": "text/html"], "ok")
    }

    // MARK: Telegram Bot API

    private static func telegram(_ path: String, _ body: [UInt8], _ token: String, _ chats: Set<String>, _ state: inout State)
        -> (Int, [String: String], String)
    {
        func error(_ code: Int, _ description: String, retryAfter: Int? = nil) -> (Int, [String: String], String) {
            let parameters = retryAfter.map { #","parameters":{"retry_after":\#($0)}"# } ?? ""
            return (code, ["Content-Type": "application/json"], #"{"ok":false,"error_code":\#(code),"description":"\#(description)"\#(parameters)}"#)
        }
        guard path.hasPrefix("/bot"), let slash = path.dropFirst(4).firstIndex(of: "/") else { return error(404, "Not Found") }
        guard path[path.index(path.startIndex, offsetBy: 4)..<slash] == token else { return error(401, "Unauthorized") }
        guard path[slash...] == "/sendMessage" else { return error(404, "Not Found: method not found") }
        guard let message = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return error(400, "Bad Request: invalid JSON")
        }
        let chat = (message["chat_id"] as? String) ?? (message["chat_id"] as? Int).map(String.init) ?? ""
        guard chats.contains(chat) else { return error(400, "Bad Request: chat not found") }
        guard let text = message["text"] as? String, !text.isEmpty else { return error(400, "Bad Request: message text is empty") }
        var visible = text
        if message["parse_mode"] as? String == "HTML" {
            guard let parsed = visibleText(ofHTML: text) else { return error(400, "Bad Request: can't parse entities") }
            visible = parsed
        }
        guard visible.count <= 4096 else { return error(400, "Bad Request: message is too long") }
        if let wait = admit(chat, perWindow: 1, window: .seconds(1), &state) {
            let seconds = max(1, Int(wait.components.seconds) + 1)
            return error(429, "Too Many Requests: retry after \(seconds)", retryAfter: seconds)
        }
        let id = state.nextMessageID
        state.nextMessageID += 1
        return (200, ["Content-Type": "application/json"], #"{"ok":true,"result":{"message_id":\#(id),"chat":{"id":\#(chat)}}}"#)
    }

    /// Telegram's HTML mode: the tags it supports, balanced; the entities &lt; &gt; &amp; &quot;
    /// and numeric ones; nothing else may start with < or &. nil: it "can't parse entities".
    static func visibleText(ofHTML html: String) -> String? {
        let allowed: Set<String> = ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "blockquote"]
        var open: [String] = []
        var out = ""
        var rest = Substring(html)
        while let c = rest.first {
            if c == "<" {
                guard let end = rest.firstIndex(of: ">") else { return nil }
                var tag = rest[rest.index(after: rest.startIndex)..<end]
                rest = rest[rest.index(after: end)...]
                let closing = tag.first == "/"
                if closing { tag = tag.dropFirst() }
                let name = String(tag.prefix { $0 != " " }).lowercased()
                guard allowed.contains(name) else { return nil }
                if closing {
                    guard open.last == name else { return nil }
                    open.removeLast()
                } else {
                    if name == "a", !tag.contains("href=\"") { return nil }
                    open.append(name)
                }
            } else if c == "&" {
                guard let end = rest.firstIndex(of: ";") else { return nil }
                let entity = rest[rest.index(after: rest.startIndex)..<end]
                switch entity {
                case "lt": out.append("<")
                case "gt": out.append(">")
                case "amp": out.append("&")
                case "quot": out.append("\"")
                default:
                    guard entity.first == "#", let code = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(code) else { return nil }
                    out.unicodeScalars.append(scalar)
                }
                rest = rest[rest.index(after: end)...]
            } else if c == ">" {
                return nil
            } else {
                out.append(c)
                rest = rest.dropFirst()
            }
        }
        return open.isEmpty ? out : nil
    }

    // MARK: Alertmanager webhook receiver

    private static func alertmanager(_ body: [UInt8]) -> (Int, [String: String], String) {
        guard let message = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            message["version"] as? String == "4", ["firing", "resolved"].contains(message["status"] as? String ?? ""),
            message["groupKey"] is String, message["receiver"] is String,
            let alerts = message["alerts"] as? [[String: Any]], !alerts.isEmpty
        else { return (400, [:], "not an Alertmanager webhook body") }
        for alert in alerts {
            guard (alert["labels"] as? [String: String])?["alertname"] != nil,
                let starts = alert["startsAt"] as? String,
                (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(starts)) != nil,
                alert["fingerprint"] is String
            else { return (400, [:], "alert without alertname, startsAt or fingerprint") }
        }
        return (200, [:], "")
    }
}
