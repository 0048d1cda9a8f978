/// The alert outbox: which incidents are open and which alert events still have to reach which
/// sink, as replicated state. Every replica applies the same journaled `AlertCommand`s in log
/// order and so holds the same outbox; only the leader delivers (`AlertDispatcher`), and a new
/// leader carries on from what the journal says was not delivered yet.
///
/// Exactly once across failover, as far as a receiver lets it be: an event is delivered until
/// one attempt is journaled as delivered or given up. A leader that dies after the receiver
/// answered and before the journal took its `attempted` entry leaves the event pending, so the
/// next leader sends it again, under the same key (PagerDuty's dedup_key, Alertmanager's
/// fingerprint deduplicate it; a chat message may show twice). An event is never sent under a
/// second key: its key is fixed by the log position that raised it.
public struct AlertOutbox: Hashable, Sendable, Codable {
    public struct Delivery: Hashable, Sendable, Codable {
        public enum Status: Hashable, Sendable, Codable {
            case pending
            case delivered(atMillis: Int64)
            case gaveUp(reason: String, atMillis: Int64)
        }
        public var status: Status = .pending
        public var attempts = 0
        public var lastError: String?
        /// Not before this wall-clock time (a receiver's Retry-After, or the backoff), journaled
        /// so that a new leader honours what the receiver said to the old one.
        public var notBeforeMillis: Int64 = 0

        public var isDone: Bool { if case .pending = status { false } else { true } }
    }

    /// One alert event (a trigger or a resolve) and its delivery to each sink.
    public struct Entry: Hashable, Sendable, Codable {
        /// The log index of the command that produced it: ids grow in log order.
        public var id: UInt64
        /// What raised it: "trading-halted", "slo-burn/order-ack-latency/page-1h" …
        public var identity: String
        public var event: AlertEvent
        public var deliveries: [String: Delivery]

        public var isDone: Bool { deliveries.values.allSatisfy(\.isDone) }
    }

    /// Undelivered entries, and delivered ones until more than `keptDone` have finished.
    public private(set) var entries: [UInt64: Entry] = [:]
    /// Open incidents: identity → the id of the trigger that opened it.
    public private(set) var open: [String: UInt64] = [:]
    /// The trigger event of each open incident (kept even once its entry is pruned).
    public private(set) var openEvents: [String: AlertEvent] = [:]
    /// Finished entries kept for `GET /alerts` (the newest), oldest first.
    public private(set) var recent: [UInt64] = []
    public static let keptDone = 200
    /// A bound on what can wait: past it the oldest pending entries are given up (journaled by
    /// being applied the same way on every replica), so that a dead receiver cannot grow memory.
    public static let maximumPending = 10_000

    public init() {}

    /// What applying a command did, for the shell's logs and metrics.
    public enum Effect: Hashable, Sendable {
        case raised(Entry)
        case resolvedIncident(Entry)
        /// A raise for an identity already open, or a resolve for one not open: a repeat of the
        /// same decision (two proposals before either applied, or a new leader deciding again).
        case ignored(identity: String, why: String)
        case delivered(id: UInt64, sink: String)
        case retryLater(id: UInt64, sink: String, attempts: Int, reason: String)
        case gaveUp(id: UInt64, sink: String, reason: String)
    }

    public mutating func apply(_ command: AlertCommand, index: UInt64) -> [Effect] {
        switch command {
        case .raise(let identity, var event, let sinks):
            guard open[identity] == nil else { return [.ignored(identity: identity, why: "already open")] }
            // The key is the incident's for good: from the log position, the same on every
            // replica and after any failover.
            event.key = AlertOutbox.key(identity: identity, id: index)
            event.action = .trigger
            event.endedAtMillis = nil
            let entry = Entry(
                id: index, identity: identity, event: event,
                deliveries: Dictionary(uniqueKeysWithValues: Set(sinks).map { ($0, Delivery()) }))
            open[identity] = index
            openEvents[identity] = event
            insert(entry)
            return [.raised(entry)] + bound(atMillis: event.startedAtMillis)
        case .resolve(let identity, let atMillis, let sinks):
            guard open[identity] != nil, var event = openEvents[identity] else {
                return [.ignored(identity: identity, why: "not open")]
            }
            event.action = .resolve
            event.endedAtMillis = atMillis
            let entry = Entry(
                id: index, identity: identity, event: event,
                deliveries: Dictionary(uniqueKeysWithValues: Set(sinks).map { ($0, Delivery()) }))
            open[identity] = nil
            openEvents[identity] = nil
            insert(entry)
            return [.resolvedIncident(entry)] + bound(atMillis: atMillis)
        case .attempted(let id, let sink, let attempt):
            guard var entry = entries[id], var delivery = entry.deliveries[sink], !delivery.isDone else {
                // A second outcome for a finished delivery (an old leader's late report): the
                // first one journaled stands.
                return []
            }
            delivery.attempts += 1
            let effect: Effect
            switch attempt {
            case .delivered(let at):
                delivery.status = .delivered(atMillis: at)
                delivery.lastError = nil
                effect = .delivered(id: id, sink: sink)
            case .failed(let reason, let notBefore):
                delivery.lastError = reason
                delivery.notBeforeMillis = notBefore
                effect = .retryLater(id: id, sink: sink, attempts: delivery.attempts, reason: reason)
            case .gaveUp(let reason, let at):
                delivery.status = .gaveUp(reason: reason, atMillis: at)
                delivery.lastError = reason
                effect = .gaveUp(id: id, sink: sink, reason: reason)
            }
            entry.deliveries[sink] = delivery
            entries[id] = entry
            if entry.isDone { finished(id) }
            return [effect]
        }
    }

    /// "<identity>#<log index>": an incident's key.
    public static func key(identity: String, id: UInt64) -> String { "\(identity)#\(id)" }

    /// Entries with a delivery still pending, oldest first.
    public var pending: [Entry] {
        entries.values.filter { !$0.isDone }.sorted { $0.id < $1.id }
    }

    private mutating func insert(_ entry: Entry) {
        entries[entry.id] = entry
        if entry.isDone { finished(entry.id) }  // no sinks configured
    }

    private mutating func finished(_ id: UInt64) {
        recent.append(id)
        while recent.count > Self.keptDone {
            entries[recent.removeFirst()] = nil
        }
    }

    /// Past `maximumPending`, the oldest pending deliveries are given up, the same way on every
    /// replica (the bound is part of the state machine).
    private mutating func bound(atMillis: Int64) -> [Effect] {
        let waiting = pending
        guard waiting.count > Self.maximumPending else { return [] }
        var effects: [Effect] = []
        for entry in waiting.prefix(waiting.count - Self.maximumPending) {
            for (sink, delivery) in entry.deliveries.sorted(by: { $0.key < $1.key }) where !delivery.isDone {
                let reason = "outbox full (\(Self.maximumPending) pending)"
                effects += apply(.attempted(id: entry.id, sink: sink, attempt: .gaveUp(reason: reason, atMillis: atMillis)), index: 0)
            }
        }
        return effects
    }
}

/// The alert plane's journaled commands.
public enum AlertCommand: Hashable, Sendable, Codable {
    /// A condition began: opens an incident of `identity` unless one is open, and queues its
    /// trigger for `sinks`. The event's key is set when applied (from the log index).
    case raise(identity: String, event: AlertEvent, sinks: [String])
    /// The condition cleared: resolves the open incident of `identity`, if any, and queues the
    /// resolve (same key) for `sinks`.
    case resolve(identity: String, atMillis: Int64, sinks: [String])
    /// One delivery attempt's outcome, as the leader that made it saw it.
    case attempted(id: UInt64, sink: String, attempt: Attempt)

    public enum Attempt: Hashable, Sendable, Codable {
        case delivered(atMillis: Int64)
        /// Worth another try, not before `notBeforeMillis`.
        case failed(reason: String, notBeforeMillis: Int64)
        case gaveUp(reason: String, atMillis: Int64)
    }
}

/// The leader's side of delivery, as a pure value: which events go to which sink next, and
/// what each outcome means for the journal. The shell sends what `.deliver` says and reports
/// the answer with `onOutcome`; it proposes what `.propose` says.
///
/// Per sink, one delivery at a time and in log order, so a resolve never overtakes its trigger;
/// a sink's pace is held to its rate; a failure waits out the receiver's Retry-After or an
/// exponential backoff; after `maxAttempts`, or at once when the receiver refused the event,
/// it is given up. A sink with a group window gets a burst as one message: its oldest due event
/// waits out the window, then goes with the events queued behind it (up to the group's size),
/// and the one answer is journaled for each of them.
public struct AlertDispatcher: Sendable {
    public struct Settings: Hashable, Sendable {
        /// Least time between two sends to one sink (PagerDuty: about 120 a minute; Telegram:
        /// about one message a second per chat).
        public var minimumIntervalMillis: [String: Int64]
        public var maxAttempts: Int
        public var backoffBaseMillis: Int64
        public var backoffMaxMillis: Int64
        /// Per sink, a daily window (UTC) in which only critical events go out; the rest wait
        /// for its end, in order.
        public var quietHours: [String: QuietHours]
        /// Per sink, how long its oldest due event waits for others to share its message (chat
        /// sinks and the Alertmanager-shaped webhook; PagerDuty takes one event per request).
        /// Absent or 0: each event alone, at once.
        public var groupWindowMillis: [String: Int64]
        /// Per grouping sink, the most events one message carries.
        public var groupMaximum: [String: Int]
        public static let defaultGroupMaximum = 10
        /// The largest group the configuration allows: every format carries it whole (Slack's
        /// 50 blocks, Telegram's 4096 characters with each event's key and summary).
        public static let largestGroup = 20

        public init(
            minimumIntervalMillis: [String: Int64] = [:], maxAttempts: Int = 12, backoffBaseMillis: Int64 = 1000,
            backoffMaxMillis: Int64 = 300_000, quietHours: [String: QuietHours] = [:],
            groupWindowMillis: [String: Int64] = [:], groupMaximum: [String: Int] = [:]
        ) {
            self.minimumIntervalMillis = minimumIntervalMillis
            self.quietHours = quietHours
            self.maxAttempts = maxAttempts
            self.backoffBaseMillis = backoffBaseMillis
            self.backoffMaxMillis = backoffMaxMillis
            self.groupWindowMillis = groupWindowMillis
            self.groupMaximum = groupMaximum
        }
    }

    public enum Directive: Hashable, Sendable {
        /// Send these events, in this order, as one message to `sink` (one event unless the
        /// sink groups); report the answer for each id.
        case deliver(ids: [UInt64], sink: String, events: [AlertEvent])
        case propose(AlertCommand)
    }

    struct Slot: Hashable, Sendable {
        var id: UInt64
        var sink: String
    }

    public let settings: Settings
    /// Sent and not answered yet, or answered and its outcome proposed but not applied yet:
    /// such a delivery is not started again by this leader.
    private var busy: Set<Slot> = []
    private var busySinks: Set<String> = []
    private var lastSentAtMillis: [String: Int64] = [:]
    /// Per grouping sink, since when its oldest event has been ready to go (this leader's clock:
    /// a new leader waits the window again, which only delays a chat message).
    private var groupOpenedAtMillis: [String: Int64] = [:]

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// What to send now: for each idle sink, its oldest pending delivery that is due (with the
    /// ones behind it, for a sink that groups).
    public mutating func due(_ outbox: AlertOutbox, nowMillis: Int64) -> [Directive] {
        let pending = outbox.pending
        var sinks: Set<String> = []
        for entry in pending {
            for (sink, delivery) in entry.deliveries where !delivery.isDone { sinks.insert(sink) }
        }
        var batches: [(ids: [UInt64], sink: String, events: [AlertEvent])] = []
        for sink in sinks.sorted() where !busySinks.contains(sink) {
            let window = max(0, settings.groupWindowMillis[sink] ?? 0)
            let limit = window > 0 ? max(1, settings.groupMaximum[sink] ?? Self.Settings.defaultGroupMaximum) : 1
            let quietNow = settings.quietHours[sink]?.contains(millis: nowMillis) == true
            // Held for quiet hours: only later events of the same incident wait behind them (a
            // resolve never overtakes its trigger); a critical page of another goes ahead.
            var quiet: Set<String> = []
            var ids: [UInt64] = []
            var events: [AlertEvent] = []
            for entry in pending {
                guard let delivery = entry.deliveries[sink], !delivery.isDone else { continue }
                if quiet.contains(entry.identity) { continue }
                if quietNow, entry.event.level != .critical {
                    quiet.insert(entry.identity)
                    continue
                }
                if ids.isEmpty {
                    // The oldest: whatever happens, no later entry goes to this sink before it.
                    let interval = settings.minimumIntervalMillis[sink] ?? 0
                    let paced = (lastSentAtMillis[sink] ?? .min / 2) + interval
                    guard nowMillis >= delivery.notBeforeMillis, nowMillis >= paced else { break }
                    if window > 0 {
                        let opened = groupOpenedAtMillis[sink] ?? nowMillis
                        groupOpenedAtMillis[sink] = opened
                        guard nowMillis - opened >= window else { break }
                    }
                } else if nowMillis < delivery.notBeforeMillis {
                    // One still waiting out its own backoff ends the group: nothing behind it
                    // may overtake it.
                    break
                }
                ids.append(entry.id)
                events.append(entry.event)
                if ids.count >= limit { break }
            }
            guard !ids.isEmpty else { continue }
            groupOpenedAtMillis[sink] = nil
            for id in ids { busy.insert(Slot(id: id, sink: sink)) }
            busySinks.insert(sink)
            lastSentAtMillis[sink] = nowMillis
            batches.append((ids, sink, events))
        }
        // Oldest first, as the log has them.
        return batches.sorted { ($0.ids[0], $0.sink) < ($1.ids[0], $1.sink) }.map {
            .deliver(ids: $0.ids, sink: $0.sink, events: $0.events)
        }
    }

    /// The receiver answered (or did not) the delivery `.deliver` asked for. `attempts` is the
    /// journaled count before this one.
    public mutating func onOutcome(
        id: UInt64, sink: String, outcome: DeliveryOutcome, attempts: Int, nowMillis: Int64
    ) -> [Directive] {
        guard busy.contains(Slot(id: id, sink: sink)) else { return [] }
        let attempt: AlertCommand.Attempt
        switch outcome {
        case .delivered:
            attempt = .delivered(atMillis: nowMillis)
        case .refused(let reason):
            attempt = .gaveUp(reason: reason, atMillis: nowMillis)
        case .retry(let after, let reason):
            if attempts + 1 >= settings.maxAttempts {
                attempt = .gaveUp(reason: "\(attempts + 1) attempts; last: \(reason)", atMillis: nowMillis)
            } else {
                let backoff = backoffMillis(afterAttempt: attempts + 1)
                let asked = after.map { Self.millis($0) } ?? 0
                attempt = .failed(reason: reason, notBeforeMillis: nowMillis + max(backoff, asked))
            }
        }
        return [.propose(.attempted(id: id, sink: sink, attempt: attempt))]
    }

    /// The outcome's `attempted` command is in the log (or failed to get there): the sink may
    /// take its next delivery.
    public mutating func settled(id: UInt64, sink: String) {
        busy.remove(Slot(id: id, sink: sink))
        // A group's sink is free once every event of it is settled.
        if !busy.contains(where: { $0.sink == sink }) { busySinks.remove(sink) }
    }

    /// No longer leader: forget what was in flight (the next leader decides from the journal).
    public mutating func reset() {
        busy = []
        busySinks = []
        groupOpenedAtMillis = [:]
    }

    /// base × 2^(n-1), at most the maximum.
    func backoffMillis(afterAttempt n: Int) -> Int64 {
        var delay = settings.backoffBaseMillis
        for _ in 1..<max(1, n) {
            delay = delay > settings.backoffMaxMillis / 2 ? settings.backoffMaxMillis : delay * 2
        }
        return min(delay, settings.backoffMaxMillis)
    }

    static func millis(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// A daily window in UTC, "22:00-07:00" (it may span midnight); start included, end not.
public struct QuietHours: Hashable, Sendable {
    public var startMinute: Int
    public var endMinute: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Self.minute(parts[0]), let end = Self.minute(parts[1]), start != end else { return nil }
        startMinute = start
        endMinute = end
    }

    static func minute(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":", omittingEmptySubsequences: false)
        guard hm.count == 2, hm[0].utf8.count == 2, hm[1].utf8.count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
            (0...23).contains(h), (0...59).contains(m)
        else { return nil }
        return h * 60 + m
    }

    public func contains(millis: Int64) -> Bool {
        let minute = Int((millis / 60_000) % 1440 + 1440) % 1440
        return startMinute < endMinute
            ? minute >= startMinute && minute < endMinute : minute >= startMinute || minute < endMinute
    }
}
