import Foundation

// What each alert receiver's API takes and answers, as pure functions: an alert event becomes
// the HTTP request the receiver documents, and the receiver's answer becomes one of three
// outcomes (delivered, retry — perhaps after a time the receiver named —, or refused for good).
// The delivery shell (BatonDaemon) only carries the bytes. Each receiver's rules come from its
// documentation: PagerDuty Events API v2, Slack incoming webhooks, the Telegram Bot API's
// sendMessage, and Alertmanager's webhook receiver format (version 4).

/// One alert, as every sink is told about it. `key` names the incident: a trigger and its
/// resolve carry the same key, and a repeat of either is deduplicated by it where the receiver
/// can (PagerDuty's dedup_key, Alertmanager's fingerprint).
public struct AlertEvent: Hashable, Sendable, Codable {
    public enum Action: String, Hashable, Sendable, Codable {
        case trigger
        case resolve
    }

    /// PagerDuty's four, which the other sinks show as words.
    public enum Level: String, Hashable, Sendable, Codable, CaseIterable {
        case critical
        case error
        case warning
        case info
    }

    public var key: String
    public var action: Action
    public var level: Level
    /// What and where, in one line: "trading HALTED on n1: the broker refused status requests".
    public var summary: String
    /// The affected system: "baton cluster 4242 node 1".
    public var source: String
    /// "trading", "raft", "feed", "slo" …
    public var component: String?
    /// The cluster: "baton-4242".
    public var group: String?
    /// The kind of incident: "trading-halted", "slo-burn" … (Alertmanager's alertname).
    public var eventClass: String
    public var details: [String: String]
    /// The runbook section that handles it (a URL or a repository path with its anchor).
    public var runbook: String?
    /// When the condition began, milliseconds since the Unix epoch (UTC).
    public var startedAtMillis: Int64
    /// When it cleared (resolve events).
    public var endedAtMillis: Int64?

    public init(
        key: String, action: Action, level: Level, summary: String, source: String, component: String? = nil,
        group: String? = nil, eventClass: String, details: [String: String] = [:], runbook: String? = nil,
        startedAtMillis: Int64, endedAtMillis: Int64? = nil
    ) {
        self.key = key
        self.action = action
        self.level = level
        self.summary = summary
        self.source = source
        self.component = component
        self.group = group
        self.eventClass = eventClass
        self.details = details
        self.runbook = runbook
        self.startedAtMillis = startedAtMillis
        self.endedAtMillis = endedAtMillis
    }
}

/// An HTTP request a sink sends; the shell adds nothing but the connection.
public struct AlertRequest: Hashable, Sendable {
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public static func == (a: Self, b: Self) -> Bool {
        a.url == b.url && a.body == b.body && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(url)
        hasher.combine(body)
    }
}

/// What the receiver's answer means for the alert.
public enum DeliveryOutcome: Hashable, Sendable {
    case delivered
    /// Try again: after `after` when the receiver said how long to wait (Retry-After,
    /// Telegram's retry_after), otherwise after the dispatcher's backoff.
    case retry(after: Duration?, reason: String)
    /// Never retry this event: the receiver refused it as such (a bad payload, an unknown
    /// channel …). The reason is logged and journaled.
    case refused(reason: String)
}

/// The receiver's answer, as the shell read it (body cut to `maximumAnswerBytes`).
public struct AlertAnswer: Hashable, Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value }
        self.headers = lowered
        self.body = body
    }

    /// Answers are read only this far: a receiver cannot make the leader buffer without end.
    public static let maximumAnswerBytes = 64 * 1024

    var text: String { String(decoding: body.prefix(512), as: UTF8.self) }

    /// Retry-After in seconds (RFC 9110 also allows an HTTP date; seconds are what Slack and
    /// the others send), bounded to an hour.
    var retryAfter: Duration? {
        guard let raw = headers["retry-after"]?.trimmingCharacters(in: .whitespaces), let seconds = Int(raw), seconds >= 0
        else { return nil }
        return .seconds(min(seconds, 3600))
    }
}

/// The answers every HTTP receiver shares: 5xx and 429 are worth another try, other 4xx not.
func genericOutcome(_ answer: AlertAnswer, receiver: String) -> DeliveryOutcome {
    switch answer.status {
    case 200..<300: return .delivered
    case 429: return .retry(after: answer.retryAfter, reason: "\(receiver) answered 429 (rate limited)")
    case 408: return .retry(after: answer.retryAfter, reason: "\(receiver) answered 408 (request timeout)")
    case 500..<600: return .retry(after: answer.retryAfter, reason: "\(receiver) answered \(answer.status): \(answer.text)")
    default: return .refused(reason: "\(receiver) answered \(answer.status): \(answer.text)")
    }
}

/// Cuts `text` to at most `limit` Characters, ending in "…" when cut.
func truncated(_ text: String, to limit: Int) -> String {
    guard text.count > limit else { return text }
    return String(text.prefix(max(0, limit - 1))) + "…"
}

/// FNV-1a, 64 bits, as 16 hex digits: a stable short name for a long key (not a secret).
func fingerprint(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// RFC 3339 with milliseconds, UTC: "2026-12-03T14:05:09.123Z".
func timestamp(_ millis: Int64) -> String {
    // Whole seconds through the formatter, milliseconds by hand: a Double of the milliseconds
    // would print .123 as .122.
    var (seconds, rest) = millis.quotientAndRemainder(dividingBy: 1000)
    if rest < 0 {
        seconds -= 1
        rest += 1000
    }
    let whole = Date.ISO8601FormatStyle().format(Date(timeIntervalSince1970: Double(seconds)))
    let digits = String(rest + 1000).dropFirst()
    return whole.dropLast() + "." + digits + "Z"
}

func json(_ value: some Encodable) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Every value here is a String, number or nested object of them: encoding cannot fail.
    return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
}

// MARK: - PagerDuty Events API v2

/// `POST /v2/enqueue` (https://events.pagerduty.com by default). 202 is done; 400 is never
/// retried (the event is invalid); 429 and 5xx are retried with backoff.
public enum PagerDutyEvents {
    public static let defaultURL = "https://events.pagerduty.com/v2/enqueue"
    public static let maximumDedupKeyLength = 255
    public static let maximumSummaryLength = 1024

    struct Event: Encodable {
        struct Payload: Encodable {
            var summary: String
            var source: String
            var severity: String
            var timestamp: String
            var component: String?
            var group: String?
            var `class`: String?
            var custom_details: [String: String]?
        }
        struct Link: Encodable {
            var href: String
            var text: String
        }
        var routing_key: String
        var event_action: String
        var dedup_key: String
        var payload: Payload?
        var links: [Link]?
        var client: String?
    }

    /// The dedup_key PagerDuty gets for `key`: itself when it fits, else a prefix and the
    /// fingerprint of the whole (the same key always gives the same dedup_key).
    public static func dedupKey(_ key: String) -> String {
        guard key.count > maximumDedupKeyLength else { return key }
        return String(key.prefix(maximumDedupKeyLength - 17)) + "-" + fingerprint(key)
    }

    public static func request(for event: AlertEvent, routingKey: String, url: String = defaultURL) -> AlertRequest {
        let body: Event
        switch event.action {
        case .trigger:
            var details = event.details
            if let runbook = event.runbook { details["runbook"] = runbook }
            body = Event(
                routing_key: routingKey, event_action: "trigger", dedup_key: dedupKey(event.key),
                payload: .init(
                    summary: truncated(event.summary, to: maximumSummaryLength), source: truncated(event.source, to: 255),
                    severity: event.level.rawValue, timestamp: timestamp(event.startedAtMillis), component: event.component,
                    group: event.group, class: event.eventClass, custom_details: details.isEmpty ? nil : details),
                links: event.runbook.flatMap { $0.hasPrefix("http") ? [.init(href: $0, text: "Runbook")] : nil },
                client: "Baton")
        case .resolve:
            // A resolve needs only the key; PagerDuty drops one for an alert already resolved.
            body = Event(routing_key: routingKey, event_action: "resolve", dedup_key: dedupKey(event.key))
        }
        return AlertRequest(url: url, headers: [("Content-Type", "application/json")], body: json(body))
    }

    public static func outcome(of answer: AlertAnswer) -> DeliveryOutcome {
        switch answer.status {
        case 202: return .delivered
        case 400:
            // {"status":"invalid event","message":"Event object is invalid","errors":["…"]}
            return .refused(reason: "PagerDuty refused the event (400): \(answer.text)")
        default: return genericOutcome(answer, receiver: "PagerDuty")
        }
    }
}

// MARK: - Slack incoming webhooks

/// `POST` to the webhook URL with `text` (the notification's fallback) and `blocks`. 200 "ok"
/// is done; 429 honours Retry-After; other 4xx (invalid_payload, channel_not_found,
/// channel_is_archived, action_prohibited …) are final.
public enum SlackWebhook {
    /// Slack's limits: a header block's text 150 characters, a section's 3000.
    static let headerLimit = 150
    static let sectionLimit = 3000

    struct Message: Encodable {
        struct Block: Encodable {
            struct Text: Encodable {
                var type: String
                var text: String
            }
            var type: String
            var text: Text?
            var elements: [Text]?
        }
        var text: String
        var blocks: [Block]
    }

    /// Slack's mrkdwn treats &, < and > as control characters: they must be escaped.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    public static func request(for event: AlertEvent, url: String) -> AlertRequest {
        let state = event.action == .trigger ? "FIRING" : "RESOLVED"
        let headline = "[\(state)] \(event.level.rawValue.uppercased()): \(event.summary)"
        var lines = ["*\(escaped(truncated(event.summary, to: 1000)))*", "Source: \(escaped(event.source))"]
        for (name, value) in event.details.sorted(by: { $0.key < $1.key }).prefix(20) {
            lines.append("• \(escaped(truncated(name, to: 64))): \(escaped(truncated(value, to: 200)))")
        }
        var blocks = [
            Message.Block(type: "header", text: .init(type: "plain_text", text: truncated(headline, to: headerLimit))),
            Message.Block(
                type: "section", text: .init(type: "mrkdwn", text: truncated(lines.joined(separator: "\n"), to: sectionLimit))),
        ]
        var context = ["key: \(escaped(truncated(event.key, to: 200)))", "since \(timestamp(event.startedAtMillis))"]
        if let runbook = event.runbook {
            context.append(runbook.hasPrefix("http") ? "<\(runbook)|runbook>" : "runbook: \(escaped(runbook))")
        }
        blocks.append(.init(type: "context", elements: context.map { .init(type: "mrkdwn", text: $0) }))
        return AlertRequest(
            url: url, headers: [("Content-Type", "application/json")],
            body: json(Message(text: escaped(truncated(headline, to: 3000)), blocks: blocks)))
    }

    /// A burst as one message: a header that counts it, then one section per event (Slack
    /// takes at most 50 blocks; a group is at most `maximumGroup`). One event is `request(for:)`'s.
    public static func request(for events: [AlertEvent], url: String) -> AlertRequest {
        if events.count == 1 { return request(for: events[0], url: url) }
        let firing = events.filter { $0.action == .trigger }.count
        let headline = "[\(events.count) alerts] \(firing) firing, \(events.count - firing) resolved"
            + (events.first?.group.map { " in \($0)" } ?? "")
        var blocks = [Message.Block(type: "header", text: .init(type: "plain_text", text: truncated(headline, to: headerLimit)))]
        for event in events.prefix(maximumGroup) {
            let state = event.action == .trigger ? "FIRING" : "RESOLVED"
            // Cut before escaping, and short enough that escaping (up to five characters for
            // one) keeps the section under Slack's 3000: the key line is never the part cut.
            var lines = [
                "*[\(state)] \(event.level.rawValue.uppercased())* \(escaped(truncated(event.summary, to: 300)))",
                "key: \(escaped(truncated(event.key, to: 200))) · since \(timestamp(event.startedAtMillis))",
            ]
            if let runbook = event.runbook.map({ truncated($0, to: 150) }) {
                lines.append(runbook.hasPrefix("http") ? "<\(runbook)|runbook>" : "runbook: \(escaped(runbook))")
            }
            blocks.append(
                .init(type: "section", text: .init(type: "mrkdwn", text: truncated(lines.joined(separator: "\n"), to: sectionLimit))))
        }
        return AlertRequest(
            url: url, headers: [("Content-Type", "application/json")],
            body: json(Message(text: escaped(truncated(headline, to: 3000)), blocks: blocks)))
    }

    /// The most events one Slack message carries: a header and one section each, under the
    /// 50 blocks Slack takes. The configuration's `group_max` is held below it, so none is cut.
    public static let maximumGroup = 40

    public static func outcome(of answer: AlertAnswer) -> DeliveryOutcome {
        genericOutcome(answer, receiver: "Slack")
    }
}

// MARK: - Telegram Bot API sendMessage

/// `POST https://api.telegram.org/bot<token>/sendMessage` with `chat_id`, `text` (1 to 4096
/// characters after entities are parsed) and `parse_mode: HTML`. 200 with `"ok": true` is done;
/// 429 carries `parameters.retry_after` (seconds); other 4xx (chat not found, bot blocked) are
/// final; 5xx are retried.
public enum TelegramBot {
    public static let defaultBaseURL = "https://api.telegram.org"
    public static let maximumTextLength = 4096

    struct Message: Encodable {
        var chat_id: String
        var text: String
        var parse_mode: String
        var disable_web_page_preview: Bool
    }

    struct Answer: Decodable {
        struct Parameters: Decodable {
            var retry_after: Int?
        }
        var ok: Bool
        var error_code: Int?
        var description: String?
        var parameters: Parameters?
    }

    /// HTML mode: <, > and & in text must be entities; in an attribute, " too.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The message as HTML, and its visible text's length. Every piece is cut before it is
    /// escaped, so the limit counts what Telegram counts (characters after entity parsing).
    static func text(for event: AlertEvent) -> (html: String, visibleLength: Int) {
        let state = event.action == .trigger ? "FIRING" : "RESOLVED"
        var pieces: [(visible: String, bold: Bool)] = [
            ("[\(state)] \(event.level.rawValue.uppercased())", true), (truncated(event.summary, to: 1500), false),
            ("Source: \(truncated(event.source, to: 200))", false),
        ]
        for (name, value) in event.details.sorted(by: { $0.key < $1.key }).prefix(20) {
            pieces.append(("\(truncated(name, to: 64)): \(truncated(value, to: 200))", false))
        }
        pieces.append(("key: \(truncated(event.key, to: 255))", false))
        var html: [String] = []
        var visible = 0
        for piece in pieces {
            // The newline between pieces counts too.
            let length = piece.visible.count + (html.isEmpty ? 0 : 1)
            guard visible + length <= maximumTextLength - 200 else { break }
            visible += length
            html.append(piece.bold ? "<b>\(escaped(piece.visible))</b>" : escaped(piece.visible))
        }
        if let runbook = event.runbook, runbook.hasPrefix("http"), runbook.count <= 150 {
            html.append("<a href=\"\(escaped(runbook))\">runbook</a>")
            visible += 1 + "runbook".count
        }
        return (html.joined(separator: "\n"), visible)
    }

    /// A burst as one message: a bold count, then each event's state, summary and key, each
    /// event's share of the 4096 characters cut evenly so that every event of the group is in it.
    static func text(for events: [AlertEvent]) -> (html: String, visibleLength: Int) {
        if events.count == 1 { return text(for: events[0]) }
        let firing = events.filter { $0.action == .trigger }.count
        let header = "\(events.count) alerts: \(firing) firing, \(events.count - firing) resolved"
            + (events.first?.group.map { " in \(truncated($0, to: 100))" } ?? "")
        var html = ["<b>\(escaped(header))</b>"]
        var visible = header.count
        // Each event: a blank line, "[STATE] LEVEL " + summary, a newline, "key: " + key, and
        // perhaps "\nrunbook".
        let share = (maximumTextLength - 200 - visible) / max(1, events.count)
        for event in events {
            let state = "[\(event.action == .trigger ? "FIRING" : "RESOLVED")] \(event.level.rawValue.uppercased())"
            let link = event.runbook.flatMap { $0.hasPrefix("http") && $0.count <= 150 ? $0 : nil }
            let fixed = 2 + state.count + 1 + 1 + "key: ".count + (link == nil ? 0 : 1 + "runbook".count)
            let room = max(0, share - fixed)
            let key = truncated(event.key, to: min(255, room / 3))
            let summary = truncated(event.summary, to: max(0, room - key.count))
            var lines = ["<b>\(escaped(state))</b> \(escaped(summary))", "key: \(escaped(key))"]
            visible += fixed - (link == nil ? 0 : 1 + "runbook".count) + summary.count + key.count
            if let link {
                lines.append("<a href=\"\(escaped(link))\">runbook</a>")
                visible += 1 + "runbook".count
            }
            html.append("\n" + lines.joined(separator: "\n"))
        }
        return (html.joined(separator: "\n"), visible)
    }

    public static func request(for events: [AlertEvent], token: String, chatID: String, baseURL: String = defaultBaseURL)
        -> AlertRequest
    {
        AlertRequest(
            url: "\(baseURL)/bot\(token)/sendMessage", headers: [("Content-Type", "application/json")],
            body: json(Message(chat_id: chatID, text: text(for: events).html, parse_mode: "HTML", disable_web_page_preview: true)))
    }

    public static func request(for event: AlertEvent, token: String, chatID: String, baseURL: String = defaultBaseURL)
        -> AlertRequest
    {
        AlertRequest(
            url: "\(baseURL)/bot\(token)/sendMessage", headers: [("Content-Type", "application/json")],
            body: json(Message(chat_id: chatID, text: text(for: event).html, parse_mode: "HTML", disable_web_page_preview: true)))
    }

    public static func outcome(of answer: AlertAnswer) -> DeliveryOutcome {
        let parsed = try? JSONDecoder().decode(Answer.self, from: Data(answer.body.prefix(AlertAnswer.maximumAnswerBytes)))
        let description = parsed?.description.map { truncated($0, to: 300) } ?? answer.text
        if answer.status == 200 {
            // 200 without "ok": true is not an answer the Bot API gives: retry rather than lose it.
            return parsed?.ok == true ? .delivered : .retry(after: nil, reason: "Telegram answered 200 without ok: \(answer.text)")
        }
        if answer.status == 429 {
            let seconds = parsed?.parameters?.retry_after.map { min(max($0, 0), 3600) }
            return .retry(after: seconds.map { .seconds($0) } ?? answer.retryAfter, reason: "Telegram: \(description)")
        }
        if (500..<600).contains(answer.status) { return .retry(after: nil, reason: "Telegram answered \(answer.status): \(description)") }
        return .refused(reason: "Telegram answered \(answer.status): \(description)")
    }
}

// MARK: - Alertmanager-shaped webhook

/// The body Alertmanager's webhook receiver sends (version 4), so that any receiver written for
/// Alertmanager takes Baton's alerts. Any 2xx is done; 429, 408 and 5xx are retried; other 4xx
/// are final.
public enum AlertmanagerWebhook {
    struct Message: Encodable {
        struct Alert: Encodable {
            var status: String
            var labels: [String: String]
            var annotations: [String: String]
            var startsAt: String
            var endsAt: String
            var generatorURL: String
            var fingerprint: String
        }
        var version = "4"
        var groupKey: String
        var truncatedAlerts = 0
        var status: String
        var receiver: String
        var groupLabels: [String: String]
        var commonLabels: [String: String]
        var commonAnnotations: [String: String]
        var externalURL: String
        var alerts: [Alert]
    }

    /// Alertmanager's zero time, which it sends as endsAt of an alert still firing.
    static let zeroTime = "0001-01-01T00:00:00Z"

    public static func request(for event: AlertEvent, url: String, receiver: String, externalURL: String) -> AlertRequest {
        request(for: [event], url: url, receiver: receiver, externalURL: externalURL)
    }

    /// Several events as one notification, as Alertmanager sends a group: `alerts[]` in order,
    /// the group `firing` while any of its alerts is, and the labels and annotations all of
    /// them share as the common ones.
    public static func request(for events: [AlertEvent], url: String, receiver: String, externalURL: String) -> AlertRequest {
        var alerts: [Message.Alert] = []
        var common: (labels: [String: String], annotations: [String: String])?
        for event in events {
            var labels = ["alertname": event.eventClass, "severity": event.level.rawValue, "source": event.source, "key": event.key]
            if let component = event.component { labels["component"] = component }
            if let group = event.group { labels["cluster"] = group }
            var annotations = ["summary": event.summary]
            if let runbook = event.runbook { annotations["runbook_url"] = runbook }
            for (name, value) in event.details where annotations[name] == nil { annotations[name] = value }
            alerts.append(
                Message.Alert(
                    status: event.action == .trigger ? "firing" : "resolved", labels: labels, annotations: annotations,
                    startsAt: timestamp(event.startedAtMillis), endsAt: event.endedAtMillis.map(timestamp) ?? zeroTime,
                    generatorURL: externalURL, fingerprint: fingerprint(event.key)))
            common = common.map { ($0.labels.filter { labels[$0.key] == $0.value }, $0.annotations.filter { annotations[$0.key] == $0.value }) }
                ?? (labels, annotations)
        }
        let status = alerts.contains { $0.status == "firing" } ? "firing" : "resolved"
        // One event: grouped by its alertname, as before; a burst: by what its events share.
        let groupLabels =
            events.count == 1
            ? ["alertname": events[0].eventClass] : (common?.labels ?? [:]).filter { $0.key == "alertname" || $0.key == "cluster" }
        let groupKey = "{}:{" + groupLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
        let message = Message(
            groupKey: groupKey, status: status, receiver: receiver, groupLabels: groupLabels,
            commonLabels: common?.labels ?? [:], commonAnnotations: common?.annotations ?? [:], externalURL: externalURL,
            alerts: alerts)
        return AlertRequest(url: url, headers: [("Content-Type", "application/json")], body: json(message))
    }

    public static func outcome(of answer: AlertAnswer) -> DeliveryOutcome {
        genericOutcome(answer, receiver: "the webhook")
    }
}
