import AsyncHTTPClient
import BatonAlerting
@testable import BatonDaemon
import Foundation
import Testing

/// The alert deliverer against real HTTP servers that answer as each receiver's API does
/// (AlertReceivers.swift): what is delivered, what is retried (and after how long), what is
/// refused for good, and that no secret ends up in a reason.
@Suite("Alert delivery over HTTP", .serialized)
struct AlertDeliveryTests {
    static let routingKey = "R0123456789abcdef0123456789ABCDE"  // 32 characters, as PagerDuty issues them

    static func event(_ action: AlertEvent.Action = .trigger, key: String = "baton-4242-trading-halted-t7") -> AlertEvent {
        AlertEvent(
            key: key, action: action, level: .critical,
            summary: "trading HALTED on n1: the broker refused OrderStatusRequest <H> & gave no reason",
            source: "baton cluster 4242 node 1", component: "trading", group: "baton-4242", eventClass: "trading-halted",
            details: ["reason": "BusinessMessageReject <H>"], runbook: "runbooks/trading-operations.md#trading-is-halted",
            startedAtMillis: 1_764_770_000_000, endedAtMillis: action == .resolve ? 1_764_770_060_000 : nil)
    }

    static func with(_ api: AlertReceiver.API, _ body: (AlertReceiver) async throws -> Void) async throws {
        let receiver = AlertReceiver(api)
        try await receiver.start()
        do {
            try await body(receiver)
        } catch {
            await receiver.stop()
            throw error
        }
        await receiver.stop()
    }

    static func isRetry(_ outcome: DeliveryOutcome, after: Duration? = nil) -> Bool {
        if case .retry(let wait, _) = outcome { return after == nil || wait == after }
        return false
    }

    static func reason(_ outcome: DeliveryOutcome) -> String {
        switch outcome {
        case .delivered: ""
        case .retry(_, let reason), .refused(let reason): reason
        }
    }

    let deliverer = AlertDeliverer(timeout: .seconds(5))

    @Test func pagerDutyOpensTheIncidentAndResolvesItByTheSameKey() async throws {
        try await Self.with(.pagerDuty(eventsPerMinute: 120)) { pd in
            let sink = AlertSink.pagerDuty(routingKey: Self.routingKey, url: "\(pd.url)/v2/enqueue")
            #expect(await deliverer.deliver(Self.event(), to: sink) == .delivered)
            #expect(pd.incidents == [Self.event().key: true])
            #expect(await deliverer.deliver(Self.event(.resolve), to: sink) == .delivered)
            #expect(pd.incidents == [Self.event().key: false], "resolved under the key it was opened with")
            #expect(pd.received.map(\.status) == [202, 202])
        }
    }

    @Test func pagerDutyRefusalsAreFinalAndThrottlingAndErrorsAreRetried() async throws {
        try await Self.with(.pagerDuty(eventsPerMinute: 2)) { pd in
            // A routing key PagerDuty does not take: 400, never retried, and the key is not in
            // the reason that gets logged.
            let wrong = AlertSink.pagerDuty(routingKey: "not-a-key", url: "\(pd.url)/v2/enqueue")
            let refused = await deliverer.deliver(Self.event(), to: wrong)
            guard case .refused(let why) = refused else {
                Issue.record("\(refused)")
                return
            }
            #expect(why.contains("400") && why.contains("Invalid routing key"), "\(why)")
            #expect(!why.contains("not-a-key"))

            let sink = AlertSink.pagerDuty(routingKey: Self.routingKey, url: "\(pd.url)/v2/enqueue")
            pd.fail(next: [500, 503])
            #expect(Self.isRetry(await deliverer.deliver(Self.event(), to: sink)))
            #expect(Self.isRetry(await deliverer.deliver(Self.event(), to: sink)))
            #expect(await deliverer.deliver(Self.event(), to: sink) == .delivered)
            #expect(await deliverer.deliver(Self.event(key: "second"), to: sink) == .delivered)
            // Over the service's rate: 429, retried later.
            let throttled = await deliverer.deliver(Self.event(key: "third"), to: sink)
            #expect(Self.isRetry(throttled), "\(throttled)")
            #expect(Self.reason(throttled).contains("429"))
            #expect(!Self.reason(throttled).contains(Self.routingKey))
        }
    }

    @Test func slackTakesTheBlocksAndItsRateLimitIsHonouredByRetryAfter() async throws {
        try await Self.with(.slack(path: "/services/T0001/B0001/XXXXSECRETXXXX")) { slack in
            let sink = AlertSink.slack(webhookURL: "\(slack.url)/services/T0001/B0001/XXXXSECRETXXXX")
            #expect(await deliverer.deliver(Self.event(), to: sink) == .delivered)
            let limited = await deliverer.deliver(Self.event(.resolve), to: sink)
            #expect(Self.isRetry(limited, after: .seconds(1)), "Retry-After: 1 is carried: \(limited)")
            try await Task.sleep(for: .milliseconds(1100))
            #expect(await deliverer.deliver(Self.event(.resolve), to: sink) == .delivered)

            let gone = AlertSink.slack(webhookURL: "\(slack.url)/services/T0001/B0001/REVOKED")
            let refused = await deliverer.deliver(Self.event(), to: gone)
            #expect(refused == .refused(reason: Self.reason(refused)) && Self.reason(refused).contains("no_service"), "\(refused)")
            #expect(!Self.reason(refused).contains("REVOKED"), "the webhook URL is a secret")
        }
    }

    @Test func telegramParsesTheHTMLItIsSentAndRateLimitsPerChat() async throws {
        try await Self.with(.telegram(token: "123456:ABC-secret", chats: ["-100777"])) { telegram in
            let sink = AlertSink.telegram(token: "123456:ABC-secret", chatID: "-100777", baseURL: telegram.url)
            #expect(await deliverer.deliver(Self.event(), to: sink) == .delivered)
            let sent = try #require(telegram.received.first?.json?["text"] as? String)
            #expect(AlertReceiver.visibleText(ofHTML: sent)?.contains("<H> & gave no reason") == true, "\(sent)")

            let limited = await deliverer.deliver(Self.event(.resolve), to: sink)
            #expect(Self.isRetry(limited, after: .seconds(1)), "retry_after is carried: \(limited)")
            try await Task.sleep(for: .milliseconds(1100))
            // The longest event still fits in a message.
            var long = Self.event(.resolve)
            long.summary = String(repeating: "<&>", count: 3000)
            long.details = Dictionary(uniqueKeysWithValues: (0..<30).map { ("d\($0)", String(repeating: "x&", count: 300)) })
            #expect(await deliverer.deliver(long, to: sink) == .delivered)

            let badToken = await deliverer.deliver(Self.event(), to: .telegram(token: "999:WRONG", chatID: "-100777", baseURL: telegram.url))
            #expect(badToken == .refused(reason: Self.reason(badToken)) && Self.reason(badToken).contains("Unauthorized"), "\(badToken)")
            #expect(!Self.reason(badToken).contains("999:WRONG"))
            let noChat = await deliverer.deliver(Self.event(), to: .telegram(token: "123456:ABC-secret", chatID: "42", baseURL: telegram.url))
            #expect(Self.reason(noChat).contains("chat not found") && !Self.isRetry(noChat), "\(noChat)")
        }
    }

    @Test func anAlertmanagerReceiverTakesTheWebhookBody() async throws {
        try await Self.with(.alertmanager) { receiver in
            let sink = AlertSink.webhook(url: "\(receiver.url)/alerts", receiver: "baton", externalURL: "http://n1:7201")
            #expect(await deliverer.deliver(Self.event(), to: sink) == .delivered)
            #expect(await deliverer.deliver(Self.event(.resolve), to: sink) == .delivered)
            #expect(receiver.received.map(\.status) == [200, 200])
            receiver.fail(next: [503])
            #expect(Self.isRetry(await deliverer.deliver(Self.event(), to: sink)))
        }
    }

    /// A burst of `count` events of different incidents, with the longest summaries and the
    /// characters each format must escape.
    static func burst(_ count: Int) -> [AlertEvent] {
        (0..<count).map { n in
            var event = Self.event(n % 3 == 2 ? .resolve : .trigger, key: "baton-4242/replica/n\(n)#\(100 + n)")
            event.summary = "replica n\(n) <lagging> & \"silent\" " + String(repeating: "<&>", count: 400)
            event.eventClass = "replica"
            event.level = n.isMultiple(of: 2) ? .error : .warning
            return event
        }
    }

    @Test func aBurstGoesAsOneMessageThatCarriesEveryEventToEachChatAndWebhookReceiver() async throws {
        let events = Self.burst(AlertDispatcher.Settings.largestGroup)
        try await Self.with(.slack(path: "/services/T0/B0/secret")) { slack in
            let sink = AlertSink.slack(webhookURL: "\(slack.url)/services/T0/B0/secret")
            #expect(await deliverer.deliver(events, to: sink) == .delivered)
            #expect(slack.received.map(\.status) == [200], "one message, accepted")
            let blocks = try #require(slack.received.first?.json?["blocks"] as? [[String: Any]])
            #expect(blocks.count == events.count + 1)
            let header = (blocks.first?["text"] as? [String: Any])?["text"] as? String
            #expect(header == "[20 alerts] 14 firing, 6 resolved in baton-4242", "\(header ?? "")")
            let text = String(decoding: slack.received[0].body, as: UTF8.self)
            for event in events { #expect(text.contains(event.key), "\(event.key) is in the message") }
        }
        try await Self.with(.telegram(token: "123456:ABC-secret", chats: ["-100777"])) { telegram in
            let sink = AlertSink.telegram(token: "123456:ABC-secret", chatID: "-100777", baseURL: telegram.url)
            #expect(await deliverer.deliver(events, to: sink) == .delivered)
            #expect(telegram.received.map(\.status) == [200], "one message, parsed and within 4096 characters")
            let html = try #require(telegram.received.first?.json?["text"] as? String)
            let visible = try #require(AlertReceiver.visibleText(ofHTML: html))
            #expect(visible.hasPrefix("20 alerts: 14 firing, 6 resolved in baton-4242"))
            for event in events { #expect(visible.contains("key: \(event.key)"), "\(event.key) is in the message") }
            #expect(visible.contains("replica n19 <lagging> & \"silent\""))
        }
        try await Self.with(.alertmanager) { receiver in
            let sink = AlertSink.webhook(url: "\(receiver.url)/alerts", receiver: "baton", externalURL: "http://n1:7201")
            #expect(await deliverer.deliver(events, to: sink) == .delivered)
            let body = try #require(receiver.received.first?.json)
            let alerts = try #require(body["alerts"] as? [[String: Any]])
            #expect(receiver.received.count == 1 && alerts.count == events.count)
            #expect(alerts.map { ($0["labels"] as? [String: String])?["key"] ?? "" } == events.map(\.key), "in log order")
            #expect(body["status"] as? String == "firing", "firing while any of its alerts is")
            #expect(body["groupKey"] as? String == #"{}:{alertname="replica",cluster="baton-4242"}"#)
            let common = try #require(body["commonLabels"] as? [String: String])
            #expect(common["alertname"] == "replica" && common["severity"] == nil, "only what all of them share")
        }
        // PagerDuty takes one event per request: a group becomes one request each, in order.
        try await Self.with(.pagerDuty(eventsPerMinute: 120)) { pd in
            let sink = AlertSink.pagerDuty(routingKey: Self.routingKey, url: "\(pd.url)/v2/enqueue")
            #expect(await deliverer.deliver(Array(events.prefix(2)), to: sink) == .delivered)
            #expect(pd.received.count == 2 && pd.incidents == [events[0].key: true, events[1].key: true])
        }
    }

    @Test func aReceiverThatDoesNotAnswerIsRetried() async throws {
        let port = try LocalCluster.freePort()
        let outcome = await AlertDeliverer(timeout: .seconds(1)).deliver(
            Self.event(), to: .webhook(url: "http://127.0.0.1:\(port)/", receiver: "x", externalURL: ""))
        #expect(Self.isRetry(outcome), "\(outcome)")
        #expect(Self.reason(outcome).contains("no answer"))
    }
}
