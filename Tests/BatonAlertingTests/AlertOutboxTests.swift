@testable import BatonAlerting
import Foundation
import Testing

/// The replicated outbox and the leader's dispatcher, driven by hand with the time given.
@Suite struct AlertOutboxTests {
    static func event(at millis: Int64 = 1_000) -> AlertEvent {
        AlertEvent(
            key: "", action: .trigger, level: .critical, summary: "trading HALTED on n1", source: "baton 4242 n1",
            eventClass: "trading-halted", startedAtMillis: millis)
    }

    /// A log: each command gets the next index, applied to every outbox given.
    struct Log {
        var next: UInt64 = 10
        mutating func append(_ command: AlertCommand, to outboxes: inout [AlertOutbox]) -> [AlertOutbox.Effect] {
            defer { next += 1 }
            var effects: [AlertOutbox.Effect] = []
            for i in outboxes.indices { effects = outboxes[i].apply(command, index: next) }
            return effects
        }
    }

    @Test func anIncidentOpensOnceAndResolvesUnderTheKeyItsLogPositionGave() {
        var replicas = [AlertOutbox(), AlertOutbox(), AlertOutbox()]
        var log = Log()
        let raised = log.append(.raise(identity: "trading-halted", event: Self.event(), sinks: ["pagerduty", "slack"]), to: &replicas)
        guard case .raised(let entry)? = raised.first else {
            Issue.record("\(raised)")
            return
        }
        #expect(entry.event.key == "trading-halted#10")
        #expect(Set(entry.deliveries.keys) == ["pagerduty", "slack"])
        // The same decision again (two proposals, or a new leader deciding anew) is a no-op.
        #expect(log.append(.raise(identity: "trading-halted", event: Self.event(at: 2_000), sinks: ["pagerduty"]), to: &replicas)
            == [.ignored(identity: "trading-halted", why: "already open")])
        let resolved = log.append(.resolve(identity: "trading-halted", atMillis: 9_000, sinks: ["pagerduty", "slack"]), to: &replicas)
        guard case .resolvedIncident(let resolve)? = resolved.first else {
            Issue.record("\(resolved)")
            return
        }
        #expect(resolve.event.key == "trading-halted#10" && resolve.event.action == .resolve && resolve.event.endedAtMillis == 9_000)
        #expect(resolve.event.startedAtMillis == 1_000)
        #expect(log.append(.resolve(identity: "trading-halted", atMillis: 9_500, sinks: ["slack"]), to: &replicas)
            == [.ignored(identity: "trading-halted", why: "not open")])
        #expect(replicas[0] == replicas[1] && replicas[1] == replicas[2], "every replica holds the same outbox")
        #expect(replicas[0].open.isEmpty && replicas[0].pending.map(\.id) == [10, 12])
    }

    @Test func perSinkDeliveryIsInLogOrderSoAResolveNeverOvertakesItsTrigger() {
        var replicas = [AlertOutbox()]
        var log = Log()
        _ = log.append(.raise(identity: "feed-stale", event: Self.event(), sinks: ["slack"]), to: &replicas)
        _ = log.append(.resolve(identity: "feed-stale", atMillis: 2_000, sinks: ["slack"]), to: &replicas)
        var dispatcher = AlertDispatcher()
        let first = dispatcher.due(replicas[0], nowMillis: 3_000)
        #expect(first.count == 1)
        guard case .deliver([10], "slack", let triggers)? = first.first, let trigger = triggers.first else {
            Issue.record("\(first)")
            return
        }
        #expect(trigger.action == .trigger)
        #expect(dispatcher.due(replicas[0], nowMillis: 3_001).isEmpty, "one delivery per sink at a time")
        let proposals = dispatcher.onOutcome(id: 10, sink: "slack", outcome: .delivered, attempts: 0, nowMillis: 3_010)
        #expect(proposals == [.propose(.attempted(id: 10, sink: "slack", attempt: .delivered(atMillis: 3_010)))])
        // Still nothing until the outcome is in the log.
        #expect(dispatcher.due(replicas[0], nowMillis: 3_020).isEmpty)
        for case .propose(let command) in proposals { _ = log.append(command, to: &replicas) }
        dispatcher.settled(id: 10, sink: "slack")
        let second = dispatcher.due(replicas[0], nowMillis: 3_030)
        guard case .deliver([11], "slack", let resolves)? = second.first, let resolve = resolves.first else {
            Issue.record("\(second)")
            return
        }
        #expect(resolve.action == .resolve && resolve.key == trigger.key)
    }

    @Test func retriesWaitForTheReceiverThenBackOffAndGiveUp() {
        var replicas = [AlertOutbox()]
        var log = Log()
        _ = log.append(.raise(identity: "x", event: Self.event(), sinks: ["telegram"]), to: &replicas)
        var dispatcher = AlertDispatcher(settings: .init(maxAttempts: 3, backoffBaseMillis: 1_000, backoffMaxMillis: 60_000))
        func attempt(at now: Int64, _ outcome: DeliveryOutcome) -> AlertCommand? {
            guard case .deliver(let ids, let sink, _)? = dispatcher.due(replicas[0], nowMillis: now).first, let id = ids.first else { return nil }
            let attempts = replicas[0].entries[id]!.deliveries[sink]!.attempts
            guard case .propose(let command)? = dispatcher.onOutcome(id: id, sink: sink, outcome: outcome, attempts: attempts, nowMillis: now).first
            else { return nil }
            _ = log.append(command, to: &replicas)
            dispatcher.settled(id: id, sink: sink)
            return command
        }
        // Telegram asked for 30 s: more than the first backoff (1 s), so 30 s it is.
        #expect(attempt(at: 5_000, .retry(after: .seconds(30), reason: "429")) == .attempted(id: 10, sink: "telegram", attempt: .failed(reason: "429", notBeforeMillis: 35_000)))
        #expect(dispatcher.due(replicas[0], nowMillis: 34_999).isEmpty)
        // No wait named: the backoff, doubled for the second failure.
        #expect(attempt(at: 35_000, .retry(after: nil, reason: "503")) == .attempted(id: 10, sink: "telegram", attempt: .failed(reason: "503", notBeforeMillis: 37_000)))
        // The third failure is the last allowed attempt: given up, with the count and the cause.
        let last = attempt(at: 37_000, .retry(after: nil, reason: "503"))
        guard case .attempted(_, _, .gaveUp(let why, _))? = last else {
            Issue.record("\(String(describing: last))")
            return
        }
        #expect(why.contains("3 attempts") && why.contains("503"))
        #expect(replicas[0].pending.isEmpty)
    }

    @Test func aRefusalIsGivenUpAtOnce() {
        var replicas = [AlertOutbox()]
        var log = Log()
        _ = log.append(.raise(identity: "x", event: Self.event(), sinks: ["pagerduty"]), to: &replicas)
        var dispatcher = AlertDispatcher()
        _ = dispatcher.due(replicas[0], nowMillis: 1)
        let out = dispatcher.onOutcome(id: 10, sink: "pagerduty", outcome: .refused(reason: "400 Invalid routing key"), attempts: 0, nowMillis: 2)
        #expect(out == [.propose(.attempted(id: 10, sink: "pagerduty", attempt: .gaveUp(reason: "400 Invalid routing key", atMillis: 2)))])
    }

    /// The old leader sent the trigger and died before its outcome reached the log: the new
    /// leader, from the journal alone, sends the same event under the same key. Had the
    /// outcome been journaled, the new leader would send nothing.
    @Test func aNewLeaderDeliversWhatTheJournalSaysIsUndeliveredUnderTheSameKey() {
        var replicas = [AlertOutbox(), AlertOutbox()]
        var log = Log()
        _ = log.append(.raise(identity: "leader-lost", event: Self.event(), sinks: ["pagerduty"]), to: &replicas)
        var old = AlertDispatcher()
        guard case .deliver(_, _, let oldEvents)? = old.due(replicas[0], nowMillis: 100).first, let sentByOld = oldEvents.first else {
            Issue.record("the old leader sent nothing")
            return
        }
        // The old leader dies here. The new leader's dispatcher starts empty.
        var new = AlertDispatcher()
        guard case .deliver(let ids, let sink, let newEvents)? = new.due(replicas[1], nowMillis: 5_000).first, let id = ids.first,
            let sentByNew = newEvents.first
        else {
            Issue.record("the new leader did not carry on")
            return
        }
        #expect(sentByNew.key == sentByOld.key && sentByNew == sentByOld)
        for case .propose(let command) in new.onOutcome(id: id, sink: sink, outcome: .delivered, attempts: 0, nowMillis: 5_010) {
            _ = log.append(command, to: &replicas)
        }
        new.settled(id: id, sink: sink)
        var third = AlertDispatcher()
        #expect(third.due(replicas[0], nowMillis: 9_000).isEmpty, "delivered in the journal: not again")
        // A late outcome from the old leader changes nothing.
        #expect(log.append(.attempted(id: id, sink: sink, attempt: .gaveUp(reason: "late", atMillis: 9_001)), to: &replicas).isEmpty)
        #expect(replicas[0].entries[id]?.deliveries[sink]?.status == .delivered(atMillis: 5_010))
    }

    @Test func eachSinkIsPacedToItsRate() {
        var replicas = [AlertOutbox()]
        var log = Log()
        for n in 0..<3 { _ = log.append(.raise(identity: "i\(n)", event: Self.event(), sinks: ["telegram", "webhook"]), to: &replicas) }
        var dispatcher = AlertDispatcher(settings: .init(minimumIntervalMillis: ["telegram": 1_000]))
        var sentAt: [String: [Int64]] = [:]
        for now in stride(from: Int64(0), through: 3_000, by: 50) {
            for case .deliver(let ids, let sink, _) in dispatcher.due(replicas[0], nowMillis: now) {
                let id = ids[0]
                sentAt[sink, default: []].append(now)
                for case .propose(let c) in dispatcher.onOutcome(id: id, sink: sink, outcome: .delivered, attempts: 0, nowMillis: now) {
                    _ = log.append(c, to: &replicas)
                }
                dispatcher.settled(id: id, sink: sink)
            }
        }
        #expect(sentAt["telegram"] == [0, 1_000, 2_000])
        #expect(sentAt["webhook"] == [0, 50, 100], "an unpaced sink goes as fast as its answers")
    }

    @Test func aBurstWaitsOutTheGroupWindowAndGoesAsOneMessageWhoseOneAnswerIsJournaledForEach() {
        var replicas = [AlertOutbox()]
        var log = Log()
        for n in 0..<5 { _ = log.append(.raise(identity: "i\(n)", event: Self.event(), sinks: ["slack", "pagerduty"]), to: &replicas) }
        var dispatcher = AlertDispatcher(settings: .init(groupWindowMillis: ["slack": 2_000], groupMaximum: ["slack": 3]))
        func slack(_ now: Int64) -> [[UInt64]] {
            dispatcher.due(replicas[0], nowMillis: now).compactMap { if case .deliver(let ids, "slack", _) = $0 { ids } else { nil } }
        }
        func answer(_ ids: [UInt64], _ outcome: DeliveryOutcome, at now: Int64) {
            for id in ids {
                let attempts = replicas[0].entries[id]?.deliveries["slack"]?.attempts ?? 0
                for case .propose(let c) in dispatcher.onOutcome(id: id, sink: "slack", outcome: outcome, attempts: attempts, nowMillis: now) {
                    _ = log.append(c, to: &replicas)
                }
            }
        }
        // PagerDuty does not group: its first page goes at once, while Slack's window is open.
        let first = dispatcher.due(replicas[0], nowMillis: 0)
        #expect(first.count == 1)
        guard case .deliver([10], "pagerduty", _)? = first.first else {
            Issue.record("\(first)")
            return
        }
        #expect(slack(1_999).isEmpty)
        #expect(slack(2_000) == [[10, 11, 12]], "the oldest three, in log order")
        // The receiver answered 503: each of the three is journaled as failed, with one backoff.
        answer([10, 11, 12], .retry(after: nil, reason: "503"), at: 2_010)
        #expect(replicas[0].pending.filter { $0.deliveries["slack"]?.attempts == 1 }.map(\.id) == [10, 11, 12])
        dispatcher.settled(id: 10, sink: "slack")
        #expect(slack(9_000).isEmpty, "the sink is busy until every event of its message is settled")
        dispatcher.settled(id: 11, sink: "slack")
        dispatcher.settled(id: 12, sink: "slack")
        // Due again at 3 010 (1 s backoff): a new window opens then.
        #expect(slack(3_009).isEmpty && slack(3_010).isEmpty && slack(5_009).isEmpty)
        #expect(slack(5_010) == [[10, 11, 12]])
        answer([10, 11, 12], .delivered, at: 5_020)
        for id: UInt64 in [10, 11, 12] { dispatcher.settled(id: id, sink: "slack") }
        #expect(slack(5_030).isEmpty && slack(7_029).isEmpty)
        #expect(slack(7_030) == [[13, 14]], "the rest of the burst")
        for id: UInt64 in [10, 11, 12] {
            #expect(replicas[0].entries[id]?.deliveries["slack"]?.status == .delivered(atMillis: 5_020))
        }
        // A resolve queued behind an event still in its own backoff does not overtake it.
        answer([13, 14], .delivered, at: 7_040)
        for id: UInt64 in [13, 14] { dispatcher.settled(id: id, sink: "slack") }
        let j = log.next
        _ = log.append(.raise(identity: "j", event: Self.event(), sinks: ["slack"]), to: &replicas)
        _ = log.append(.attempted(id: j, sink: "slack", attempt: .failed(reason: "429", notBeforeMillis: 60_000)), to: &replicas)
        let k = log.next
        _ = log.append(.raise(identity: "k", event: Self.event(), sinks: ["slack"]), to: &replicas)
        #expect(slack(8_000).isEmpty && slack(59_999).isEmpty, "k waits behind j's backoff")
        #expect(slack(60_000).isEmpty && slack(61_999).isEmpty)
        #expect(slack(62_000) == [[j, k]], "the window counts from when the oldest was first due")
    }

    @Test func quietHoursHoldAllButCriticalUntilTheirEndInOrder() throws {
        let night = try #require(QuietHours("22:00-07:00"))
        #expect(QuietHours("7:00-22:00") == nil && QuietHours("22:00-22:00") == nil && QuietHours("24:00-01:00") == nil)
        let hour: Int64 = 3_600_000
        #expect(night.contains(millis: 23 * hour) && night.contains(millis: 30 * hour) && !night.contains(millis: 31 * hour))
        #expect(!night.contains(millis: 12 * hour))
        var replicas = [AlertOutbox()]
        var log = Log()
        var warning = Self.event()
        warning.level = .warning
        _ = log.append(.raise(identity: "risk", event: warning, sinks: ["telegram", "pagerduty"]), to: &replicas)
        _ = log.append(.raise(identity: "halted", event: Self.event(), sinks: ["telegram"]), to: &replicas)
        var dispatcher = AlertDispatcher(settings: .init(quietHours: ["telegram": night]))
        // 23:00 UTC: the warning waits on telegram, the critical page of another incident goes
        // ahead of it; PagerDuty has no quiet hours.
        let late = dispatcher.due(replicas[0], nowMillis: 23 * hour).compactMap { if case .deliver(let ids, let sink, _) = $0 { "\(ids[0]) \(sink)" } else { nil } }
        #expect(late == ["10 pagerduty", "11 telegram"])
        dispatcher.settled(id: 10, sink: "pagerduty")
        dispatcher.settled(id: 11, sink: "telegram")
        _ = log.append(.attempted(id: 11, sink: "telegram", attempt: .delivered(atMillis: 23 * hour)), to: &replicas)
        _ = log.append(.attempted(id: 10, sink: "pagerduty", attempt: .delivered(atMillis: 23 * hour)), to: &replicas)
        // Its resolve waits behind it, still quiet at 06:59.
        _ = log.append(.resolve(identity: "risk", atMillis: 24 * hour, sinks: ["telegram"]), to: &replicas)
        #expect(dispatcher.due(replicas[0], nowMillis: 30 * hour + 59 * 60_000).isEmpty)
        // 07:00 the next day: the warning goes, then (once settled) its resolve.
        let morning = dispatcher.due(replicas[0], nowMillis: 31 * hour).compactMap { if case .deliver(let ids, let sink, _) = $0 { "\(ids[0]) \(sink)" } else { nil } }
        #expect(morning == ["10 telegram"])
    }

    @Test func finishedEntriesAreKeptOnlyForTheRecentList() {
        var replicas = [AlertOutbox()]
        var log = Log()
        for n in 0..<300 {
            let effects = log.append(.raise(identity: "i\(n)", event: Self.event(), sinks: ["s"]), to: &replicas)
            guard case .raised(let entry)? = effects.first else { continue }
            _ = log.append(.attempted(id: entry.id, sink: "s", attempt: .delivered(atMillis: 1)), to: &replicas)
        }
        #expect(replicas[0].entries.count == AlertOutbox.keptDone)
        #expect(replicas[0].recent.count == AlertOutbox.keptDone)
        #expect(replicas[0].open.count == 300, "the incidents themselves stay open until resolved")
    }

    @Test func theOutboxRoundTripsThroughTheJournalEncoding() throws {
        var replicas = [AlertOutbox()]
        var log = Log()
        let commands: [AlertCommand] = [
            .raise(identity: "a", event: Self.event(), sinks: ["s", "t"]),
            .attempted(id: 10, sink: "s", attempt: .failed(reason: "503", notBeforeMillis: 9)),
            .attempted(id: 10, sink: "t", attempt: .gaveUp(reason: "400", atMillis: 7)),
            .resolve(identity: "a", atMillis: 99, sinks: ["s"]),
        ]
        for command in commands {
            let data = try JSONEncoder().encode(command)
            #expect(try JSONDecoder().decode(AlertCommand.self, from: data) == command)
            _ = log.append(command, to: &replicas)
        }
        let state = try JSONEncoder().encode(replicas[0])
        #expect(try JSONDecoder().decode(AlertOutbox.self, from: state) == replicas[0])
    }
}
