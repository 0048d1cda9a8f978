public import AsyncHTTPClient
public import BatonAlerting
import NIOCore
import NIOHTTP1

/// One alert receiver, as configured: which API it speaks and where.
public enum AlertSink: Sendable, Hashable, CustomStringConvertible {
    /// PagerDuty Events API v2 (`url` defaults to events.pagerduty.com).
    case pagerDuty(routingKey: String, url: String = PagerDutyEvents.defaultURL)
    /// A Slack incoming webhook URL.
    case slack(webhookURL: String)
    /// The Telegram Bot API's sendMessage.
    case telegram(token: String, chatID: String, baseURL: String = TelegramBot.defaultBaseURL)
    /// Any receiver that takes Alertmanager's webhook body.
    case webhook(url: String, receiver: String, externalURL: String)

    /// Names the sink without its secrets (routing key, webhook path, bot token).
    public var description: String {
        switch self {
        case .pagerDuty: "pagerduty"
        case .slack: "slack"
        case .telegram(_, let chat, _): "telegram(chat \(chat))"
        case .webhook(_, let receiver, _): "webhook(\(receiver))"
        }
    }

    var secrets: [String] {
        switch self {
        case .pagerDuty(let key, _): [key]
        case .slack(let url): [url]
        case .telegram(let token, _, _): [token]
        case .webhook: []
        }
    }

    public func request(for event: AlertEvent) -> AlertRequest {
        switch self {
        case .pagerDuty(let key, let url): PagerDutyEvents.request(for: event, routingKey: key, url: url)
        case .slack(let url): SlackWebhook.request(for: event, url: url)
        case .telegram(let token, let chat, let base): TelegramBot.request(for: event, token: token, chatID: chat, baseURL: base)
        case .webhook(let url, let receiver, let external):
            AlertmanagerWebhook.request(for: event, url: url, receiver: receiver, externalURL: external)
        }
    }

    /// Whether one request can carry several events (a chat message, an Alertmanager group).
    /// PagerDuty takes one event per request: its dedup_key is the event's.
    public var takesGroups: Bool {
        if case .pagerDuty = self { false } else { true }
    }

    /// Several events as one request (`takesGroups`), in order.
    public func request(for events: [AlertEvent]) -> AlertRequest {
        switch self {
        case .pagerDuty(let key, let url): PagerDutyEvents.request(for: events[0], routingKey: key, url: url)
        case .slack(let url): SlackWebhook.request(for: events, url: url)
        case .telegram(let token, let chat, let base): TelegramBot.request(for: events, token: token, chatID: chat, baseURL: base)
        case .webhook(let url, let receiver, let external):
            AlertmanagerWebhook.request(for: events, url: url, receiver: receiver, externalURL: external)
        }
    }

    public func outcome(of answer: AlertAnswer) -> DeliveryOutcome {
        switch self {
        case .pagerDuty: PagerDutyEvents.outcome(of: answer)
        case .slack: SlackWebhook.outcome(of: answer)
        case .telegram: TelegramBot.outcome(of: answer)
        case .webhook: AlertmanagerWebhook.outcome(of: answer)
        }
    }
}

extension AlertSink {
    /// The sink a configuration section describes.
    init(_ settings: AlertSinkSettings) {
        switch settings {
        case .pagerDuty(let key, let url): self = .pagerDuty(routingKey: key, url: url)
        case .slack(let url): self = .slack(webhookURL: url)
        case .telegram(let token, let chat, let base): self = .telegram(token: token, chatID: chat, baseURL: base)
        case .webhook(let url, let receiver, let external): self = .webhook(url: url, receiver: receiver, externalURL: external)
        }
    }
}

/// Carries one alert to one sink: one HTTP request, its answer read (at most
/// `AlertAnswer.maximumAnswerBytes`) and judged by the sink's own rules. Retries, backoff, rate
/// limits and journaling the outcome are the dispatcher's; this only says what happened.
public struct AlertDeliverer: Sendable {
    let client: HTTPClient
    let timeout: Duration

    public init(client: HTTPClient = .shared, timeout: Duration = .seconds(10)) {
        self.client = client
        self.timeout = timeout
    }

    public func deliver(_ event: AlertEvent, to sink: AlertSink) async -> DeliveryOutcome {
        await send(sink.request(for: event), to: sink)
    }

    /// Several events: one request where the sink takes groups, else one after the other,
    /// stopping at the first that is not delivered (its outcome stands for all: the ones
    /// delivered before it go again under their own keys, which the receiver deduplicates).
    public func deliver(_ events: [AlertEvent], to sink: AlertSink) async -> DeliveryOutcome {
        guard !events.isEmpty else { return .delivered }
        if events.count == 1 || sink.takesGroups { return await send(sink.request(for: events), to: sink) }
        for event in events {
            let outcome = await deliver(event, to: sink)
            guard case .delivered = outcome else { return outcome }
        }
        return .delivered
    }

    private func send(_ alert: AlertRequest, to sink: AlertSink) async -> DeliveryOutcome {
        var request = HTTPClientRequest(url: alert.url)
        request.method = .POST
        for (name, value) in alert.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: alert.body))
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanosecondsClamped))
            var body: [UInt8] = []
            // Read no more than the limit, whatever the receiver sends: the rest is dropped with
            // the connection.
            for try await chunk in response.body {
                body += chunk.readableBytesView.prefix(AlertAnswer.maximumAnswerBytes - body.count)
                if body.count >= AlertAnswer.maximumAnswerBytes { break }
            }
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name] = header.value }
            return redacted(sink.outcome(of: AlertAnswer(status: Int(response.status.code), headers: headers, body: body)), sink)
        } catch {
            // No answer (refused, reset, timed out): every receiver's documentation says retry.
            return redacted(.retry(after: nil, reason: "\(sink): no answer: \(error)"), sink)
        }
    }

    /// Reasons are logged and journaled: a routing key, webhook URL or bot token must not be in one.
    private func redacted(_ outcome: DeliveryOutcome, _ sink: AlertSink) -> DeliveryOutcome {
        func clean(_ reason: String) -> String {
            sink.secrets.filter { !$0.isEmpty }.reduce(reason) { $0.replacingOccurrences(of: $1, with: "***") }
        }
        switch outcome {
        case .delivered: return .delivered
        case .retry(let after, let reason): return .retry(after: after, reason: clean(reason))
        case .refused(let reason): return .refused(reason: clean(reason))
        }
    }
}
