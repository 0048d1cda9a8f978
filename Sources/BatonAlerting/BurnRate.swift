/// Service level objectives and their multi-window, multi-burn-rate alerts, as the SRE workbook
/// defines them ("Alerting on SLOs", chapter 5): a pure value that is given events and the time,
/// and answers with alert directives. The leader's shell feeds it SLI events (an order
/// acknowledged in time or not, a second with or without a fresh feed …) and carries out what
/// it raises and resolves through the alert plane.
///
/// Burn rate over a window = the window's error ratio / the error budget (1 - objective). A rule
/// fires when both its long and its short window burn faster than its rate: the long window
/// makes the alert significant (a share of the budget is gone), the short one makes it reset
/// soon after the errors stop instead of an hour later.

/// Good and bad events: the SLI's numerator is `good`, its denominator `good + bad`.
public struct SLICounts: Hashable, Sendable {
    public var good: UInt64
    public var bad: UInt64

    public init(good: UInt64 = 0, bad: UInt64 = 0) {
        self.good = good
        self.bad = bad
    }

    public var total: UInt64 { good.saturatingAdd(bad) }

    /// bad / total; 0 with no events (no traffic burns no budget).
    public var errorRatio: Double { total == 0 ? 0 : Double(bad) / Double(total) }

    mutating func add(_ other: SLICounts) {
        good = good.saturatingAdd(other.good)
        bad = bad.saturatingAdd(other.bad)
    }
}

extension UInt64 {
    /// Counts from a process that runs for months must not trap at the top: they stick there.
    fileprivate func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

public enum AlertSeverity: String, Hashable, Sendable, Codable, CaseIterable {
    /// Wakes someone up (PagerDuty `critical`).
    case page
    /// Needs a look within the working day (PagerDuty `warning`).
    case ticket
}

/// One alerting rule: both windows burning faster than `burnRate`.
public struct BurnRateRule: Hashable, Sendable, CustomStringConvertible {
    public var severity: AlertSeverity
    public var longWindowNanos: Int64
    public var shortWindowNanos: Int64
    public var burnRate: Double

    public init(severity: AlertSeverity, longWindow: Duration, shortWindow: Duration, burnRate: Double) {
        self.severity = severity
        longWindowNanos = longWindow.nanoseconds
        shortWindowNanos = shortWindow.nanoseconds
        self.burnRate = burnRate
    }

    /// The workbook's table for a 30-day objective: 2 % of the budget in 1 h, 5 % in 6 h (pages),
    /// 10 % in 3 days (a ticket).
    public static let workbook: [BurnRateRule] = [
        BurnRateRule(severity: .page, longWindow: .seconds(3600), shortWindow: .seconds(300), burnRate: 14.4),
        BurnRateRule(severity: .page, longWindow: .seconds(6 * 3600), shortWindow: .seconds(1800), burnRate: 6),
        BurnRateRule(severity: .ticket, longWindow: .seconds(72 * 3600), shortWindow: .seconds(6 * 3600), burnRate: 1),
    ]

    /// "page 1h/5m ×14.4": also the rule's part of the alert's dedup key.
    public var description: String {
        "\(severity.rawValue) \(windowName(longWindowNanos))/\(windowName(shortWindowNanos)) ×\(burnRate)"
    }
}

/// "5m", "6h", "3d", or seconds when the window is none of those.
public func windowName(_ nanos: Int64) -> String {
    let seconds = nanos / 1_000_000_000
    if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
    if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
    if seconds % 60 == 0 { return "\(seconds / 60)m" }
    return "\(seconds)s"
}

/// What an objective promises: `objective` of the SLI's events good over `period`.
public struct ServiceLevelObjective: Hashable, Sendable {
    /// A short name, used in alert keys and metrics (`order-ack-latency`).
    public var name: String
    /// The good fraction promised, e.g. 0.999.
    public var objective: Double
    public var periodNanos: Int64
    public var rules: [BurnRateRule]

    public init(name: String, objective: Double, period: Duration = .seconds(30 * 86_400), rules: [BurnRateRule] = BurnRateRule.workbook) {
        self.name = name
        self.objective = objective
        periodNanos = period.nanoseconds
        self.rules = rules
    }

    public var errorBudget: Double { 1 - objective }

    /// Every reason this objective cannot be evaluated, each naming the field (empty: valid).
    public var problems: [String] {
        var problems: [String] = []
        if name.isEmpty || name.utf8.count > 64
            || !name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F })
        {
            problems.append("name '\(name.prefix(64))' must be 1 to 64 of [a-z0-9_-]")
        }
        // 1 - objective is the budget every burn rate divides by: 0 or 1 leave none to measure.
        if !(objective > 0 && objective < 1) || !(objective.isFinite) {
            problems.append("objective \(objective) must be above 0 and below 1 (e.g. 0.999)")
        }
        if periodNanos <= 0 { problems.append("period must be positive") }
        if periodNanos > Self.maximumWindowNanos {
            problems.append("period \(windowName(periodNanos)) is longer than \(windowName(Self.maximumWindowNanos))")
        }
        if rules.isEmpty { problems.append("rules: at least one burn-rate rule") }
        for (i, rule) in rules.enumerated() {
            let field = "rules[\(i)]"
            if !(rule.burnRate > 0 && rule.burnRate.isFinite) {
                problems.append("\(field).burn_rate \(rule.burnRate) must be a positive number")
            }
            if rule.shortWindowNanos < Self.minimumWindowNanos {
                problems.append("\(field).short_window must be at least \(windowName(Self.minimumWindowNanos))")
            }
            if rule.shortWindowNanos >= rule.longWindowNanos {
                problems.append("\(field).short_window must be shorter than its long_window")
            }
            if rule.longWindowNanos > periodNanos {
                problems.append("\(field).long_window \(windowName(rule.longWindowNanos)) is longer than the period")
            }
        }
        return problems
    }

    /// Windows are bucketed in 60ths: a window under a minute would have buckets under a second.
    public static let minimumWindowNanos: Int64 = 60 * 1_000_000_000
    public static let maximumWindowNanos: Int64 = 366 * 86_400 * 1_000_000_000
}

/// Counts of one window length, in `slots` buckets of `window / 60`: a window's sum covers it
/// within one bucket (1/60 of it), as Prometheus' range vectors do within a scrape interval.
struct BucketRing: Hashable, Sendable {
    let windowNanos: Int64
    let widthNanos: Int64
    /// The bucket number (time / width) each slot holds, or -1 for an empty slot.
    private var epochs: [Int64]
    private var counts: [SLICounts]
    private var newestEpoch: Int64 = -1

    static let bucketsPerWindow: Int64 = 60

    init(windowNanos: Int64) {
        self.windowNanos = windowNanos
        widthNanos = max(1, windowNanos / Self.bucketsPerWindow)
        // A window spans at most bucketsPerWindow + 1 buckets (its oldest is partly outside).
        let slots = Int(Self.bucketsPerWindow) + 1
        epochs = Array(repeating: -1, count: slots)
        counts = Array(repeating: SLICounts(), count: slots)
    }

    /// Adds events at `time`; events older than the ring holds are dropped (returns false).
    mutating func add(_ events: SLICounts, at time: Int64) -> Bool {
        let epoch = time / widthNanos
        // Older than any window this ring sums (a clock that went back): outside it, not a
        // bucket to reopen.
        if epoch <= newestEpoch - Int64(epochs.count) { return false }
        newestEpoch = max(newestEpoch, epoch)
        let slot = Int(epoch % Int64(epochs.count))
        if epochs[slot] > epoch { return false }
        if epochs[slot] < epoch {
            epochs[slot] = epoch
            counts[slot] = SLICounts()
        }
        counts[slot].add(events)
        return true
    }

    /// Everything in the buckets that overlap (now - window, now].
    func sum(at now: Int64) -> SLICounts {
        let last = now / widthNanos
        let first = max(0, now - windowNanos) / widthNanos
        var total = SLICounts()
        for (slot, epoch) in epochs.enumerated() where epoch >= first && epoch <= last {
            total.add(counts[slot])
        }
        return total
    }
}

/// One objective's windows, the rules firing, and what changed since the last evaluation.
public struct SLOEvaluator: Sendable {
    public let objective: ServiceLevelObjective
    /// One ring per distinct window length (rules share them) and one for the period.
    private var rings: [Int64: BucketRing] = [:]
    private var firing: Set<BurnRateRule> = []
    /// Events that came with a time older than the windows still hold (a clock that went back).
    public private(set) var droppedEvents: UInt64 = 0

    public struct InvalidObjective: Error, CustomStringConvertible {
        public var name: String
        public var problems: [String]
        public var description: String { "slo '\(name.prefix(64))': " + problems.joined(separator: "; ") }
    }

    public init(_ objective: ServiceLevelObjective) throws(InvalidObjective) {
        let problems = objective.problems
        guard problems.isEmpty else { throw InvalidObjective(name: objective.name, problems: problems) }
        self.objective = objective
        var windows: Set<Int64> = [objective.periodNanos]
        for rule in objective.rules {
            windows.insert(rule.longWindowNanos)
            windows.insert(rule.shortWindowNanos)
        }
        for window in windows { rings[window] = BucketRing(windowNanos: window) }
    }

    /// SLI events observed at `time` (nanoseconds of a monotonic clock, not negative).
    public mutating func record(_ events: SLICounts, at time: Int64) {
        totals = SLICounts(good: totals.good.saturatingAdd(events.good), bad: totals.bad.saturatingAdd(events.bad))
        guard time >= 0 else {
            droppedEvents = droppedEvents.saturatingAdd(events.total)
            return
        }
        // An event a short window no longer reaches still counts in the longer ones; only one
        // older than the whole period is lost.
        for window in rings.keys where window != objective.periodNanos { _ = rings[window]!.add(events, at: time) }
        if !rings[objective.periodNanos]!.add(events, at: time) {
            droppedEvents = droppedEvents.saturatingAdd(events.total)
        }
    }

    public mutating func record(good: UInt64 = 0, bad: UInt64 = 0, at time: Int64) {
        record(SLICounts(good: good, bad: bad), at: time)
    }

    public func burnRate(overWindow window: Int64, at now: Int64) -> Double {
        (rings[window]?.sum(at: now).errorRatio ?? 0) / objective.errorBudget
    }

    public enum Directive: Hashable, Sendable {
        /// `rule` started firing: both windows burn faster than its rate.
        case raise(slo: String, rule: BurnRateRule, longBurnRate: Double, shortBurnRate: Double)
        /// `rule` stopped firing (its short window, at least, is back under the rate).
        case resolve(slo: String, rule: BurnRateRule)
    }

    /// Edge-triggered: a rule is raised once when it starts firing and resolved once when it
    /// stops, so the alert plane journals one incident per episode, not one per evaluation.
    public mutating func evaluate(at now: Int64) -> [Directive] {
        var directives: [Directive] = []
        for rule in objective.rules {
            let long = burnRate(overWindow: rule.longWindowNanos, at: now)
            let short = burnRate(overWindow: rule.shortWindowNanos, at: now)
            let fires = long > rule.burnRate && short > rule.burnRate
            if fires, !firing.contains(rule) {
                firing.insert(rule)
                directives.append(.raise(slo: objective.name, rule: rule, longBurnRate: long, shortBurnRate: short))
            } else if !fires, firing.contains(rule) {
                firing.remove(rule)
                directives.append(.resolve(slo: objective.name, rule: rule))
            }
        }
        return directives
    }

    public struct Status: Hashable, Sendable, Encodable {
        public struct Window: Hashable, Sendable, Encodable {
            public var window: String
            public var good: UInt64
            public var bad: UInt64
            public var burnRate: Double
        }
        public var slo: String
        public var objective: Double
        public var period: String
        /// 1 - (error ratio over the period / budget): 1 untouched, 0 spent, below 0 overspent.
        public var budgetRemaining: Double
        public var windows: [Window]
        public var firing: [String]
    }

    /// The rules firing as of the last evaluation.
    public var firingRules: Set<BurnRateRule> { firing }
    /// Every event recorded since start (for counters), however old.
    public private(set) var totals = SLICounts()

    /// What `GET /slo` shows: the budget left over the period and each window's burn rate.
    public func status(at now: Int64) -> Status {
        let period = rings[objective.periodNanos]!.sum(at: now)
        let windows = rings.keys.sorted().map { length in
            let counts = rings[length]!.sum(at: now)
            return Status.Window(
                window: windowName(length), good: counts.good, bad: counts.bad,
                burnRate: counts.errorRatio / objective.errorBudget)
        }
        return Status(
            slo: objective.name, objective: objective.objective, period: windowName(objective.periodNanos),
            budgetRemaining: 1 - period.errorRatio / objective.errorBudget, windows: windows,
            firing: objective.rules.filter(firing.contains).map(\.description))
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64 (windows are at most a year).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? (seconds < 0 ? .min : .max) : sum
    }
}
