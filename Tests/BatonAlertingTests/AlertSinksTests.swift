@testable import BatonAlerting
import Foundation
import Testing

/// Each sink's request as its API documents it, and each answer read as the receiver means it.
@Suite struct AlertSinksTests {
    static let halted = AlertEvent(
        key: "baton-4242-trading-halted-t7", action: .trigger, level: .critical,
        summary: "trading HALTED on n1: the broker refused status requests <OrderStatusRequest> & more",
        source: "baton cluster 4242 node 1", component: "trading", group: "baton-4242", eventClass: "trading-halted",
        details: ["reason": "BusinessMessageReject: H not supported", "term": "7"],
        runbook: "https://runbooks.example/trading-operations#trading-is-halted", startedAtMillis: 1_733_234_709_123)

    static func object(_ request: AlertRequest) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
    }

    @Test func pagerDutyTriggerAndResolveCarryWhatEventsV2Requires() throws {
        let trigger = try Self.object(PagerDutyEvents.request(for: Self.halted, routingKey: "R0UTING"))
        #expect(trigger["routing_key"] as? String == "R0UTING")
        #expect(trigger["event_action"] as? String == "trigger")
        #expect(trigger["dedup_key"] as? String == Self.halted.key)
        let payload = try #require(trigger["payload"] as? [String: Any])
        #expect(payload["summary"] as? String == Self.halted.summary)
        #expect(payload["severity"] as? String == "critical")
        #expect(payload["source"] as? String == "baton cluster 4242 node 1")
        #expect(payload["timestamp"] as? String == "2024-12-03T14:05:09.123Z")
        #expect(payload["component"] as? String == "trading" && payload["group"] as? String == "baton-4242")
        #expect(payload["class"] as? String == "trading-halted")
        let details = try #require(payload["custom_details"] as? [String: String])
        #expect(details["reason"] == "BusinessMessageReject: H not supported" && details["runbook"] == Self.halted.runbook)
        #expect((trigger["links"] as? [[String: String]])?.first?["href"] == Self.halted.runbook)

        var resolved = Self.halted
        resolved.action = .resolve
        let resolve = try Self.object(PagerDutyEvents.request(for: resolved, routingKey: "R0UTING"))
        #expect(Set(resolve.keys) == ["routing_key", "dedup_key", "event_action"])
        #expect(resolve["event_action"] as? String == "resolve" && resolve["dedup_key"] as? String == Self.halted.key)
    }

    @Test func pagerDutyLimitsAreKept() throws {
        var long = Self.halted
        long.summary = String(repeating: "é", count: 5000)
        long.key = String(repeating: "k", count: 300)
        let trigger = try Self.object(PagerDutyEvents.request(for: long, routingKey: "R"))
        let summary = try #require((trigger["payload"] as? [String: Any])?["summary"] as? String)
        #expect(summary.count == PagerDutyEvents.maximumSummaryLength && summary.hasSuffix("…"))
        let key = try #require(trigger["dedup_key"] as? String)
        #expect(key.count <= PagerDutyEvents.maximumDedupKeyLength)
        #expect(PagerDutyEvents.dedupKey(long.key) == key, "the same key gives the same dedup_key")
        #expect(PagerDutyEvents.dedupKey(long.key + "x") != key, "keys that share a prefix stay apart")
    }

    @Test(arguments: [
        (202, DeliveryOutcome.delivered), (400, .refused(reason: "")), (403, .refused(reason: "")),
        (429, .retry(after: nil, reason: "")), (500, .retry(after: nil, reason: "")), (503, .retry(after: nil, reason: "")),
    ])
    func pagerDutyAnswers(status: Int, expected: DeliveryOutcome) {
        #expect(Self.same(PagerDutyEvents.outcome(of: AlertAnswer(status: status, body: Array(#"{"status":"x"}"#.utf8))), expected))
    }

    /// Compares outcomes by kind and wait, not by the reason's words.
    static func same(_ a: DeliveryOutcome, _ b: DeliveryOutcome) -> Bool {
        switch (a, b) {
        case (.delivered, .delivered), (.refused, .refused): true
        case (.retry(let x, _), .retry(let y, _)): x == y
        default: false
        }
    }

    @Test func slackEscapesMrkdwnAndKeepsBlockLimits() throws {
        var event = Self.halted
        event.summary = String(repeating: "<&>", count: 2000)
        let message = try Self.object(SlackWebhook.request(for: event, url: "http://127.0.0.1:1/hook"))
        let blocks = try #require(message["blocks"] as? [[String: Any]])
        let header = try #require((blocks.first?["text"] as? [String: Any])?["text"] as? String)
        #expect(header.count <= 150)
        let section = try #require((blocks[1]["text"] as? [String: Any])?["text"] as? String)
        #expect(section.count <= 3000)
        #expect(!section.contains("<") && section.contains("&lt;&amp;&gt;"), "mrkdwn control characters are escaped")
        let context = try #require(blocks[2]["elements"] as? [[String: Any]])
        #expect(context.contains { ($0["text"] as? String)?.contains("|runbook>") == true })
        #expect((message["text"] as? String)?.hasPrefix("[FIRING] CRITICAL") == true)
    }

    @Test func slackAnswers() {
        #expect(Self.same(SlackWebhook.outcome(of: AlertAnswer(status: 200, body: Array("ok".utf8))), .delivered))
        #expect(Self.same(SlackWebhook.outcome(of: AlertAnswer(status: 429, headers: ["Retry-After": "30"])), .retry(after: .seconds(30), reason: "")))
        for (status, body) in [(400, "invalid_payload"), (404, "channel_not_found"), (410, "channel_is_archived"), (403, "action_prohibited")] {
            let outcome = SlackWebhook.outcome(of: AlertAnswer(status: status, body: Array(body.utf8)))
            #expect(Self.same(outcome, .refused(reason: "")), "\(status) \(body)")
            if case .refused(let reason) = outcome { #expect(reason.contains(body)) }
        }
        #expect(Self.same(SlackWebhook.outcome(of: AlertAnswer(status: 500, body: Array("rollup_error".utf8))), .retry(after: nil, reason: "")))
    }

    @Test func telegramTextIsEscapedHTMLWithinTheLimit() throws {
        var event = Self.halted
        event.summary = String(repeating: "a<b", count: 3000)
        event.details = Dictionary(uniqueKeysWithValues: (0..<40).map { ("detail\($0)", String(repeating: "&", count: 500)) })
        let (html, visible) = TelegramBot.text(for: event)
        #expect(visible <= TelegramBot.maximumTextLength)
        #expect(html.hasPrefix("<b>[FIRING] CRITICAL</b>\n"))
        #expect(!html.replacingOccurrences(of: "<b>", with: "").replacingOccurrences(of: "</b>", with: "")
            .replacingOccurrences(of: "<a href=", with: "").replacingOccurrences(of: "</a>", with: "").contains("<"))
        let message = try Self.object(TelegramBot.request(for: event, token: "123:ABC", chatID: "-10042", baseURL: "http://127.0.0.1:1"))
        #expect(message["chat_id"] as? String == "-10042" && message["parse_mode"] as? String == "HTML")
        #expect(TelegramBot.request(for: event, token: "123:ABC", chatID: "-1").url == "https://api.telegram.org/bot123:ABC/sendMessage")
    }

    @Test func telegramAnswers() {
        func answer(_ status: Int, _ body: String) -> DeliveryOutcome {
            TelegramBot.outcome(of: AlertAnswer(status: status, body: Array(body.utf8)))
        }
        #expect(Self.same(answer(200, #"{"ok":true,"result":{"message_id":1}}"#), .delivered))
        #expect(Self.same(answer(200, #"{"ok":false}"#), .retry(after: nil, reason: "")))
        #expect(
            Self.same(
                answer(429, #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#),
                .retry(after: .seconds(7), reason: "")))
        let notFound = answer(400, #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)
        #expect(Self.same(notFound, .refused(reason: "")))
        if case .refused(let reason) = notFound { #expect(reason.contains("chat not found")) }
        #expect(Self.same(answer(403, #"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#), .refused(reason: "")))
        #expect(Self.same(answer(502, "<html>bad gateway</html>"), .retry(after: nil, reason: "")))
        // A retry_after past an hour is held to an hour.
        #expect(Self.same(answer(429, #"{"ok":false,"parameters":{"retry_after":999999}}"#), .retry(after: .seconds(3600), reason: "")))
    }

    @Test func alertmanagerWebhookHasVersion4Shape() throws {
        let firing = try Self.object(AlertmanagerWebhook.request(for: Self.halted, url: "http://127.0.0.1:1/", receiver: "baton", externalURL: "http://n1:7201"))
        #expect(firing["version"] as? String == "4" && firing["status"] as? String == "firing" && firing["receiver"] as? String == "baton")
        for key in ["groupKey", "truncatedAlerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"] {
            #expect(firing[key] != nil, "no \(key)")
        }
        let alert = try #require((firing["alerts"] as? [[String: Any]])?.first)
        #expect(alert["status"] as? String == "firing")
        #expect(alert["endsAt"] as? String == "0001-01-01T00:00:00Z")
        #expect((alert["labels"] as? [String: String])?["alertname"] == "trading-halted")
        #expect((alert["annotations"] as? [String: String])?["runbook_url"] == Self.halted.runbook)
        let fingerprint = try #require(alert["fingerprint"] as? String)
        #expect(fingerprint.count == 16)

        var resolved = Self.halted
        resolved.action = .resolve
        resolved.endedAtMillis = Self.halted.startedAtMillis + 60_000
        let done = try Self.object(AlertmanagerWebhook.request(for: resolved, url: "http://127.0.0.1:1/", receiver: "baton", externalURL: ""))
        let resolvedAlert = try #require((done["alerts"] as? [[String: Any]])?.first)
        #expect(done["status"] as? String == "resolved" && resolvedAlert["endsAt"] as? String == "2024-12-03T14:06:09.123Z")
        #expect(resolvedAlert["fingerprint"] as? String == fingerprint, "the same incident, the same fingerprint")
        #expect(Self.same(AlertmanagerWebhook.outcome(of: AlertAnswer(status: 204)), .delivered))
        #expect(Self.same(AlertmanagerWebhook.outcome(of: AlertAnswer(status: 422)), .refused(reason: "")))
        #expect(Self.same(AlertmanagerWebhook.outcome(of: AlertAnswer(status: 503, headers: ["retry-after": "5"])), .retry(after: .seconds(5), reason: "")))
    }
}
