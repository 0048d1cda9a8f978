/// Trade notifications: "signal approved, order sent, fill, error" messages to a chat, as
/// trading bots send to Telegram. An optional, low-severity route beside the incidents, and
/// deliberately not journaled: a fill is already in the journal, and a notification lost with
/// its leader costs nothing a page would. Best effort, paced to each sink's rate, bounded.
///
/// A value the shell drives with the time: `notify` queues, `due` says what to send now,
/// `finished` frees the sink for the next one.
public struct TradeNotifier: Sendable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case approved
        case filled
        case error
    }

    public struct Settings: Hashable, Sendable {
        /// The sinks that take trade notifications (`alerts.<sink>.trades: true`).
        public var sinks: [String]
        public var minimumIntervalMillis: [String: Int64]
        /// Per sink, what may wait; past it the oldest are dropped (and counted).
        public var maximumQueued: Int

        public init(sinks: [String], minimumIntervalMillis: [String: Int64] = [:], maximumQueued: Int = 500) {
            self.sinks = sinks
            self.minimumIntervalMillis = minimumIntervalMillis
            self.maximumQueued = maximumQueued
        }
    }

    public let settings: Settings
    private var queues: [String: [AlertEvent]] = [:]
    private var busy: Set<String> = []
    private var lastSentAtMillis: [String: Int64] = [:]
    public private(set) var dropped: UInt64 = 0

    public init(settings: Settings) { self.settings = settings }

    public var isEnabled: Bool { !settings.sinks.isEmpty }

    /// Queues one notification for every trade sink.
    public mutating func notify(
        _ kind: Kind, subject: String, summary: String, cluster: String, node: UInt64, details: [String: String], atMillis: Int64
    ) {
        guard isEnabled else { return }
        let event = AlertEvent(
            key: "\(cluster)/trade/\(subject)/\(kind.rawValue)", action: .trigger, level: kind == .error ? .warning : .info,
            summary: summary, source: "\(cluster) node n\(node)", component: "trading", group: cluster,
            eventClass: "trade-\(kind.rawValue)", details: details, startedAtMillis: atMillis)
        for sink in settings.sinks {
            var queue = queues[sink, default: []]
            queue.append(event)
            if queue.count > settings.maximumQueued {
                queue.removeFirst(queue.count - settings.maximumQueued)
                dropped += 1
            }
            queues[sink] = queue
        }
    }

    /// What to send now: per idle sink past its pace, its oldest notification.
    public mutating func due(nowMillis: Int64) -> [(sink: String, event: AlertEvent)] {
        var out: [(sink: String, event: AlertEvent)] = []
        for sink in settings.sinks.sorted() where !busy.contains(sink) {
            guard var queue = queues[sink], !queue.isEmpty else { continue }
            let paced = (lastSentAtMillis[sink] ?? .min / 2) + (settings.minimumIntervalMillis[sink] ?? 0)
            guard nowMillis >= paced else { continue }
            out.append((sink, queue.removeFirst()))
            queues[sink] = queue
            busy.insert(sink)
            lastSentAtMillis[sink] = nowMillis
        }
        return out
    }

    /// The sink answered (whatever it said: a notification is not retried; a Retry-After
    /// pushes the next one back).
    public mutating func finished(sink: String, retryAfterMillis: Int64? = nil, nowMillis: Int64) {
        busy.remove(sink)
        if let wait = retryAfterMillis {
            lastSentAtMillis[sink] = nowMillis + wait - (settings.minimumIntervalMillis[sink] ?? 0)
        }
    }

    /// Not the leader any more: what waits is dropped (the next leader notifies what it sees).
    public mutating func reset() {
        for sink in settings.sinks { dropped += UInt64(queues[sink]?.count ?? 0) }
        queues = [:]
        busy = []
    }

    public var queued: Int { queues.values.map(\.count).reduce(0, +) }
}
