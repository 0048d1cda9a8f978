@testable import BatonAlerting
import Testing

/// Trade notifications: paced per sink, one in flight per sink, bounded, dropped with the lead.
@Suite struct TradeNotifierTests {
    static func notifier(maximumQueued: Int = 500) -> TradeNotifier {
        TradeNotifier(settings: .init(sinks: ["telegram", "webhook"], minimumIntervalMillis: ["telegram": 1_000], maximumQueued: maximumQueued))
    }

    static func fill(_ n: Int, _ notifier: inout TradeNotifier) {
        notifier.notify(
            .filled, subject: "BTN-2-\(n)", summary: "fill: 10 AAPL @ 187.25 (BTN-2-\(n))", cluster: "baton-7", node: 2,
            details: [:], atMillis: 1_000)
    }

    @Test func eachSinkGetsItsOwnPaceAndOneAtATime() {
        var notifier = Self.notifier()
        for n in 1...3 { Self.fill(n, &notifier) }
        let first = notifier.due(nowMillis: 0)
        #expect(first.map(\.sink) == ["telegram", "webhook"])
        #expect(first.first?.event.key == "baton-7/trade/BTN-2-1/filled" && first.first?.event.level == .info)
        #expect(first.first?.event.eventClass == "trade-filled")
        // Nothing more until each answers; telegram waits out its second too.
        #expect(notifier.due(nowMillis: 10).isEmpty)
        notifier.finished(sink: "telegram", nowMillis: 20)
        notifier.finished(sink: "webhook", nowMillis: 20)
        #expect(notifier.due(nowMillis: 30).map(\.sink) == ["webhook"])
        #expect(notifier.due(nowMillis: 1_000).map(\.sink) == ["telegram"])
    }

    @Test func aRetryAfterPushesTheNextBack() {
        var notifier = Self.notifier()
        for n in 1...2 { Self.fill(n, &notifier) }
        _ = notifier.due(nowMillis: 0)
        notifier.finished(sink: "telegram", retryAfterMillis: 5_000, nowMillis: 100)
        #expect(!notifier.due(nowMillis: 5_099).contains { $0.sink == "telegram" })
        #expect(notifier.due(nowMillis: 5_100).contains { $0.sink == "telegram" })
    }

    @Test func theQueueIsBoundedAndDroppedWithTheLead() {
        var notifier = Self.notifier(maximumQueued: 2)
        for n in 1...5 { Self.fill(n, &notifier) }
        #expect(notifier.queued == 4 && notifier.dropped == 6)
        // The oldest went: the first sent is the fourth fill.
        #expect(notifier.due(nowMillis: 0).first?.event.key == "baton-7/trade/BTN-2-4/filled")
        notifier.reset()
        #expect(notifier.queued == 0 && notifier.dropped == 8)
        #expect(TradeNotifier(settings: .init(sinks: [])).isEnabled == false)
    }
}
