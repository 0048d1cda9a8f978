/// Which incidents should be open now, from what the leader sees: a pure function of the
/// observations, so that the trading core (and the simulator) decide them and a test drives them
/// with a fake clock.
///
/// Level-triggered: `evaluate` says, per family of incidents, which ones the conditions call
/// for. A family the leader cannot judge yet (it has not heard from the replicas since it took
/// over, the feed has not been looked at) is left out, and its open incidents are left alone:
/// a new leader never resolves what it has not seen clear.
public struct IncidentRules: Sendable {
    public struct Settings: Hashable, Sendable {
        /// The session is down this long (since this replica leads, or since it was last up).
        public var brokerDownAfterMillis: Int64 = 10_000
        /// Reconciliation after a takeover or a silent order taking longer than this.
        public var reconcilingTooLongMillis: Int64 = 60_000
        /// An order whose fate is unknown for longer than this.
        public var orderUnknownAfterMillis: Int64 = 30_000
        /// A risk limit's incident stays open this long after its last rejection.
        public var riskLimitHoldMillis: Int64 = 300_000
        /// An aborted canary's incident stays open this long after the abort.
        public var canaryAbortHoldMillis: Int64 = 3_600_000
        /// A leader change is announced (info) and resolved this long after.
        public var leaderChangedHoldMillis: Int64 = 300_000
        /// A gap without a leader longer than this is paged by the next leader.
        public var noLeaderAfterMillis: Int64 = 5_000
        /// A follower this many entries behind the leader's log is lagging.
        public var replicaLagEntries: UInt64 = 10_000
        /// A follower silent this long is unreachable.
        public var replicaUnreachableAfterMillis: Int64 = 10_000
        /// Replicas are judged only once this replica has led for this long (heartbeats to
        /// every follower, their acknowledgements).
        public var replicaGraceMillis: Int64 = 5_000
        /// A feed that is not healthy is an incident once it has been so this long (a stale
        /// primary switches to the backup in half a second, and back once it recovers).
        public var feedAfterMillis: Int64 = 5_000
        /// The data directory's free space under this fraction is a warning; under
        /// `diskCriticalRatio`, critical.
        public var diskWarningRatio = 0.10
        public var diskCriticalRatio = 0.03

        public init() {}
    }

    /// One follower as the leader sees it.
    public struct Replica: Hashable, Sendable {
        public var node: UInt64
        /// Entries behind the leader's last index.
        public var lag: UInt64
        /// Since when it has not answered (nil: it answers).
        public var silentSinceMillis: Int64?
        /// What it last said of its own disk and journal (nil: no fresh word, its disk and
        /// journal incidents are left as they are).
        public var health: Health?

        public init(node: UInt64, lag: UInt64, silentSinceMillis: Int64?, health: Health? = nil) {
            self.node = node
            self.lag = lag
            self.silentSinceMillis = silentSinceMillis
            self.health = health
        }
    }

    /// A replica's word on itself: its data directory's disk, and its journal's last check.
    public struct Health: Hashable, Sendable {
        /// nil: it could not read it.
        public var disk: Disk?
        /// Why its last verification of the journal failed (nil: it passed, or none ran yet).
        public var journalProblem: String?

        public init(disk: Disk?, journalProblem: String?) {
            self.disk = disk
            self.journalProblem = journalProblem
        }
    }

    /// The market feed as this replica's client sees it.
    public struct Feed: Hashable, Sendable {
        public enum Condition: Hashable, Sendable {
            case healthy
            /// The active source went silent past its bound.
            case stale(source: String, silentMillis: Int64)
            /// Trading on the backup source: the primary is stale or gone.
            case onBackup(why: String)
            /// Neither source is healthy.
            case down
        }
        public var condition: Condition
        public var sinceMillis: Int64

        public init(condition: Condition, sinceMillis: Int64) {
            self.condition = condition
            self.sinceMillis = sinceMillis
        }
    }

    /// A multi-window burn-rate rule that is firing (BurnRate.swift decides that).
    public struct Burn: Hashable, Sendable {
        public var slo: String
        /// "page-1h", "page-6h", "ticket-3d".
        public var rule: String
        public var page: Bool
        public var longBurnRate: Double
        public var shortBurnRate: Double
        public var sinceMillis: Int64

        public init(slo: String, rule: String, page: Bool, longBurnRate: Double, shortBurnRate: Double, sinceMillis: Int64) {
            self.slo = slo
            self.rule = rule
            self.page = page
            self.longBurnRate = longBurnRate
            self.shortBurnRate = shortBurnRate
            self.sinceMillis = sinceMillis
        }
    }

    /// The data directory's file system.
    public struct Disk: Hashable, Sendable {
        /// Free fraction, 0…1.
        public var free: Double
        public var path: String

        public init(free: Double, path: String) {
            self.free = free
            self.path = path
        }
    }

    /// What the leader's shell sees beyond the trading core: refreshed about once a second.
    /// A nil field has not been observed yet; its family is not judged.
    public struct External: Hashable, Sendable {
        public var replicas: [Replica]?
        public var feed: Feed?
        public var disk: Disk?
        /// Why this replica's own last journal verification failed (nil: it passed or none ran).
        public var journalProblem: String?
        public var burns: [Burn]?
        /// The leader this replica last followed before it led, and how long the cluster was
        /// without one (from this replica's view: the last word from a leader to its own win).
        public var previousLeader: UInt64?
        public var leaderlessMillis: Int64?

        public init() {}
    }

    /// Everything `evaluate` reads.
    public struct Observations: Sendable {
        public var nowMillis: Int64
        public var node: UInt64
        public var term: UInt64
        public var leadingSinceMillis: Int64
        public var haltReason: String?
        /// Trading (taking signals and sending): a no-leader incident lasts until then.
        public var trading: Bool
        public var reconcilingSinceMillis: Int64?
        public var sessionDownSinceMillis: Int64?
        public var unknownOrders: [(clOrdID: String, sinceMillis: Int64, reason: String)]
        /// Per risk limit ("rate", "position", "order-size"): its last rejection.
        public var riskLimitHits: [String: (atMillis: Int64, reason: String)]
        /// The last canary, when it was aborted: what it was, when, and why.
        public var canaryAborted: (name: String, atMillis: Int64, reason: String)?
        public var external: External

        public init(
            nowMillis: Int64, node: UInt64, term: UInt64, leadingSinceMillis: Int64, haltReason: String? = nil,
            trading: Bool = false, reconcilingSinceMillis: Int64? = nil, sessionDownSinceMillis: Int64? = nil,
            unknownOrders: [(clOrdID: String, sinceMillis: Int64, reason: String)] = [],
            riskLimitHits: [String: (atMillis: Int64, reason: String)] = [:],
            canaryAborted: (name: String, atMillis: Int64, reason: String)? = nil, external: External = External()
        ) {
            self.canaryAborted = canaryAborted
            self.nowMillis = nowMillis
            self.node = node
            self.term = term
            self.leadingSinceMillis = leadingSinceMillis
            self.haltReason = haltReason
            self.trading = trading
            self.reconcilingSinceMillis = reconcilingSinceMillis
            self.sessionDownSinceMillis = sessionDownSinceMillis
            self.unknownOrders = unknownOrders
            self.riskLimitHits = riskLimitHits
            self.external = external
        }
    }

    /// The families, each the second path element of its identities ("baton-1/feed/down").
    public enum Family: String, Sendable, Hashable, CaseIterable {
        case tradingHalted = "trading-halted"
        case brokerSessionDown = "broker-session-down"
        case reconciliationStuck = "reconciliation-stuck"
        case ordersUnknown = "orders-unknown"
        case riskLimit = "risk-limit"
        case leaderChanged = "leader-changed"
        case noLeader = "no-leader"
        case feed
        case replica
        case disk = "disk-nearly-full"
        case journal = "journal-verify-failed"
        case sloBurn = "slo-burn"
        case canaryAborted = "canary-aborted"

        /// The runbook section that handles it (repository path and heading anchor).
        public var runbook: String {
            switch self {
            case .tradingHalted: "runbooks/trading-operations.md#trading-is-halted"
            case .brokerSessionDown: "runbooks/trading-operations.md#broker-session-down"
            case .reconciliationStuck: "runbooks/trading-operations.md#reconciliation-taking-too-long"
            case .ordersUnknown: "runbooks/trading-operations.md#orders-unknown"
            case .riskLimit: "runbooks/trading-operations.md#a-risk-limit-was-hit"
            case .leaderChanged: "runbooks/replica-operations.md#the-leader-changed"
            case .noLeader: "runbooks/replica-operations.md#the-cluster-had-no-leader"
            case .feed: "runbooks/trading-operations.md#market-feed-stale-or-switched"
            case .replica: "runbooks/replica-operations.md#a-replica-lagging-or-unreachable"
            case .disk: "runbooks/replica-operations.md#disk-nearly-full"
            case .journal: "runbooks/replica-operations.md#journal-verification-failed"
            case .sloBurn: "runbooks/trading-operations.md#slo-burning-its-error-budget-too-fast"
            case .canaryAborted: "runbooks/trading-operations.md#a-canary-was-aborted"
            }
        }

        var component: String {
            switch self {
            case .tradingHalted, .reconciliationStuck, .ordersUnknown, .riskLimit: "trading"
            case .brokerSessionDown: "broker"
            case .leaderChanged, .noLeader, .replica: "raft"
            case .feed: "feed"
            case .disk, .journal: "journal"
            case .sloBurn: "slo"
            case .canaryAborted: "strategy"
            }
        }
    }

    public let settings: Settings
    public let clusterName: String

    public init(settings: Settings = Settings(), clusterName: String) {
        self.settings = settings
        self.clusterName = clusterName
    }

    /// The family an identity of this cluster belongs to (nil: not one these rules manage).
    public func family(of identity: String) -> Family? {
        guard identity.hasPrefix(clusterName + "/") else { return nil }
        let rest = identity.dropFirst(clusterName.utf8.count + 1)
        return Family(rawValue: String(rest.prefix { $0 != "/" }))
    }

    /// Per family judged now, the incidents that should be open, by identity.
    public func evaluate(_ o: Observations) -> [Family: [String: AlertEvent]] {
        var result: [Family: [String: AlertEvent]] = [:]
        func event(
            _ family: Family, _ level: AlertEvent.Level, _ summary: String, since: Int64, details: [String: String] = [:]
        ) -> AlertEvent {
            var all = details
            all["node"] = "n\(o.node)"
            all["term"] = "\(o.term)"
            return AlertEvent(
                key: "", action: .trigger, level: level, summary: summary,
                source: "\(clusterName) node n\(o.node)", component: family.component, group: clusterName,
                eventClass: family.rawValue, details: all, runbook: family.runbook, startedAtMillis: since)
        }
        func id(_ family: Family, _ subject: String? = nil) -> String {
            "\(clusterName)/\(family.rawValue)" + (subject.map { "/\($0)" } ?? "")
        }
        let now = o.nowMillis

        var halted: [String: AlertEvent] = [:]
        if let reason = o.haltReason {
            halted[id(.tradingHalted)] = event(
                .tradingHalted, .critical, "trading HALTED on n\(o.node): \(reason)", since: now, details: ["reason": reason])
        }
        // Cleared once trading again, not while a new leader is still reconciling.
        if o.haltReason != nil || o.trading { result[.tradingHalted] = halted }

        // Between "down" and "down long enough" a family is not judged: a new leader logging on
        // neither resolves the old leader's incident nor raises its own yet.
        if let down = o.sessionDownSinceMillis {
            let since = max(down, o.leadingSinceMillis)
            if now - since >= settings.brokerDownAfterMillis {
                result[.brokerSessionDown] = [
                    id(.brokerSessionDown): event(
                        .brokerSessionDown, .critical,
                        "broker session down for \(seconds(now - since)) on leader n\(o.node): no order can be sent",
                        since: since)
                ]
            }
        } else {
            result[.brokerSessionDown] = [:]
        }

        if let since = o.reconcilingSinceMillis {
            if now - since >= settings.reconcilingTooLongMillis {
                result[.reconciliationStuck] = [
                    id(.reconciliationStuck): event(
                        .reconciliationStuck, .error,
                        "reconciliation on n\(o.node) running for \(seconds(now - since)): trading waits for the broker's answers",
                        since: since)
                ]
            }
        } else {
            result[.reconciliationStuck] = [:]
        }

        var unknown: [String: AlertEvent] = [:]
        let overdue = o.unknownOrders.filter { now - $0.sinceMillis >= settings.orderUnknownAfterMillis }
            .sorted { ($0.sinceMillis, $0.clOrdID) < ($1.sinceMillis, $1.clOrdID) }
        if let oldest = overdue.first {
            let named = overdue.prefix(10).map(\.clOrdID).joined(separator: ", ")
            unknown[id(.ordersUnknown)] = event(
                .ordersUnknown, .critical,
                "\(overdue.count) order(s) of unknown fate for over \(seconds(settings.orderUnknownAfterMillis)) on n\(o.node): \(named)",
                since: oldest.sinceMillis,
                details: ["orders": named, "count": "\(overdue.count)", "oldest_reason": oldest.reason])
        }
        result[.ordersUnknown] = unknown

        var risk: [String: AlertEvent] = [:]
        for (limit, hit) in o.riskLimitHits where now - hit.atMillis < settings.riskLimitHoldMillis {
            risk[id(.riskLimit, limit)] = event(
                .riskLimit, .warning, "risk limit hit (\(limit)) on n\(o.node): \(hit.reason)", since: hit.atMillis,
                details: ["limit": limit, "reason": hit.reason])
        }
        result[.riskLimit] = risk

        var canary: [String: AlertEvent] = [:]
        if let aborted = o.canaryAborted, now - aborted.atMillis < settings.canaryAbortHoldMillis {
            canary[id(.canaryAborted, aborted.name)] = event(
                .canaryAborted, .error, "canary \(aborted.name) aborted and rolled back: \(aborted.reason)",
                since: aborted.atMillis, details: ["canary": aborted.name, "reason": aborted.reason])
        }
        result[.canaryAborted] = canary

        // A change, and a gap, are news only from the replica that ended them: no replica can
        // journal anything while there is no leader (the shipped Prometheus rules page on
        // `BatonNoLeader` while it lasts).
        var changed: [String: AlertEvent] = [:]
        if let previous = o.external.previousLeader, previous != o.node,
            now - o.leadingSinceMillis < settings.leaderChangedHoldMillis
        {
            changed[id(.leaderChanged, "term-\(o.term)")] = event(
                .leaderChanged, .info, "leader changed: n\(previous) → n\(o.node) in term \(o.term)",
                since: o.leadingSinceMillis, details: ["previous_leader": "n\(previous)"])
        }
        result[.leaderChanged] = changed

        var gap: [String: AlertEvent] = [:]
        if let leaderless = o.external.leaderlessMillis, leaderless >= settings.noLeaderAfterMillis, !o.trading {
            gap[id(.noLeader, "term-\(o.term)")] = event(
                .noLeader, .critical,
                "the cluster had no leader for \(seconds(leaderless)); n\(o.node) leads term \(o.term) and is not trading yet",
                since: o.leadingSinceMillis - leaderless, details: ["leaderless_ms": "\(leaderless)"])
        }
        result[.noLeader] = gap

        if let replicas = o.external.replicas, now - o.leadingSinceMillis >= settings.replicaGraceMillis {
            var found: [String: AlertEvent] = [:]
            for replica in replicas where replica.node != o.node {
                if let silent = replica.silentSinceMillis, now - silent >= settings.replicaUnreachableAfterMillis {
                    found[id(.replica, "n\(replica.node)")] = event(
                        .replica, .error,
                        "replica n\(replica.node) unreachable from leader n\(o.node) for \(seconds(now - silent))",
                        since: silent, details: ["replica": "n\(replica.node)", "lag_entries": "\(replica.lag)"])
                } else if replica.lag >= settings.replicaLagEntries {
                    found[id(.replica, "n\(replica.node)")] = event(
                        .replica, .warning,
                        "replica n\(replica.node) is \(replica.lag) entries behind leader n\(o.node)", since: now,
                        details: ["replica": "n\(replica.node)", "lag_entries": "\(replica.lag)"])
                }
            }
            result[.replica] = found
        }

        if let feed = o.external.feed, feed.condition == .healthy || now - feed.sinceMillis >= settings.feedAfterMillis {
            var found: [String: AlertEvent] = [:]
            switch feed.condition {
            case .healthy: break
            case .stale(let source, let silent):
                found[id(.feed, "stale")] = event(
                    .feed, .error, "market feed stale on n\(o.node): \(source) silent for \(seconds(silent))",
                    since: feed.sinceMillis, details: ["source": source])
            case .onBackup(let why):
                found[id(.feed, "backup")] = event(
                    .feed, .warning, "market feed on the backup source on n\(o.node): \(why)", since: feed.sinceMillis)
            case .down:
                found[id(.feed, "down")] = event(
                    .feed, .critical, "market feed down on n\(o.node): neither source is healthy; no signal can come",
                    since: feed.sinceMillis)
            }
            result[.feed] = found
        }

        // The leader's own disk and journal, and each follower's as it reported them (a
        // follower with no fresh word is left alone: `judgedHealth`).
        var disks: [(node: UInt64, disk: Disk)] = o.external.disk.map { [(o.node, $0)] } ?? []
        var journals: [(node: UInt64, problem: String)] = o.external.journalProblem.map { [(o.node, $0)] } ?? []
        for replica in followerHealth(o) {
            if let disk = replica.health.disk { disks.append((replica.node, disk)) }
            if let problem = replica.health.journalProblem { journals.append((replica.node, problem)) }
        }
        var full: [String: AlertEvent] = [:]
        for (node, disk) in disks where disk.free < settings.diskWarningRatio {
            let percent = (disk.free * 1000).rounded() / 10
            full[id(.disk, "n\(node)")] = event(
                .disk, disk.free < settings.diskCriticalRatio ? .critical : .warning,
                "disk nearly full on n\(node): \(percent)% free at \(disk.path)", since: now,
                details: ["replica": "n\(node)", "path": disk.path, "free_percent": "\(percent)"])
        }
        result[.disk] = full
        var broken: [String: AlertEvent] = [:]
        for (node, problem) in journals {
            broken[id(.journal, "n\(node)")] = event(
                .journal, .critical,
                "journal verification failed on n\(node): \(problem)", since: now,
                details: ["replica": "n\(node)", "problem": problem])
        }
        result[.journal] = broken

        if let burns = o.external.burns {
            var found: [String: AlertEvent] = [:]
            for burn in burns {
                found[id(.sloBurn, "\(burn.slo)/\(burn.rule)")] = event(
                    .sloBurn, burn.page ? .critical : .warning,
                    "SLO \(burn.slo) burning its error budget at \(rounded(burn.longBurnRate))× (rule \(burn.rule))",
                    since: burn.sinceMillis,
                    details: [
                        "slo": burn.slo, "rule": burn.rule, "burn_rate_long": "\(rounded(burn.longBurnRate))",
                        "burn_rate_short": "\(rounded(burn.shortBurnRate))",
                    ])
            }
            result[.sloBurn] = found
        }
        return result
    }

    /// The followers whose word on their own health counts now (after the grace, fresh).
    private func followerHealth(_ o: Observations) -> [(node: UInt64, health: Health)] {
        guard let replicas = o.external.replicas, o.nowMillis - o.leadingSinceMillis >= settings.replicaGraceMillis else {
            return []
        }
        return replicas.compactMap { r in r.node == o.node ? nil : r.health.map { (r.node, $0) } }
    }

    /// The disk and journal identities judged now. Not among them: those of a replica this
    /// leader has no fresh word from (it is silent, which the replica family pages, or it runs a
    /// version that does not report), and the leader's own disk while it cannot read it. An open
    /// incident of those is neither resolved nor raised again.
    public func judgedHealth(_ o: Observations) -> Set<String> {
        var known: Set<String> = ["\(clusterName)/\(Family.journal.rawValue)/n\(o.node)"]
        if o.external.disk != nil { known.insert("\(clusterName)/\(Family.disk.rawValue)/n\(o.node)") }
        for replica in followerHealth(o) {
            known.insert("\(clusterName)/\(Family.journal.rawValue)/n\(replica.node)")
            if replica.health.disk != nil { known.insert("\(clusterName)/\(Family.disk.rawValue)/n\(replica.node)") }
        }
        return known
    }

    /// What to propose so that the open incidents match `wanted`: raises for the wanted ones not
    /// open, resolves for open ones of a judged family no longer wanted. `routes` picks each
    /// event's sinks by severity; `busy` holds identities already proposed and not applied.
    /// `judgedHealth` (from `judgedHealth(_:)`) names the disk and journal identities judged now:
    /// open ones of those families it does not name stay open.
    public func decisions(
        wanted: [Family: [String: AlertEvent]], outbox: AlertOutbox, routes: AlertRoutes, busy: Set<String>, nowMillis: Int64,
        judgedHealth: Set<String>? = nil
    ) -> [AlertCommand] {
        var commands: [AlertCommand] = []
        for (_, incidents) in wanted.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for (identity, event) in incidents.sorted(by: { $0.key < $1.key })
            where outbox.open[identity] == nil && !busy.contains(identity) {
                commands.append(.raise(identity: identity, event: event, sinks: routes.sinks(for: event.level)))
            }
        }
        for identity in outbox.open.keys.sorted() where !busy.contains(identity) {
            guard let family = family(of: identity), let judged = wanted[family], judged[identity] == nil else { continue }
            if family == .disk || family == .journal, let judgedHealth, !judgedHealth.contains(identity) { continue }
            let level = outbox.openEvents[identity]?.level ?? .critical
            commands.append(.resolve(identity: identity, atMillis: nowMillis, sinks: routes.sinks(for: level)))
        }
        return commands
    }

    private func seconds(_ millis: Int64) -> String {
        millis >= 10_000 ? "\(millis / 1000) s" : "\(Double(millis / 100) / 10) s"
    }

    private func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}

/// Which sinks get which severities: each sink takes events at or above its minimum.
public struct AlertRoutes: Hashable, Sendable {
    public var minimum: [String: AlertEvent.Level]

    public init(minimum: [String: AlertEvent.Level]) { self.minimum = minimum }

    public func sinks(for level: AlertEvent.Level) -> [String] {
        minimum.filter { level.rank >= $0.value.rank }.keys.sorted()
    }
}

extension AlertEvent.Level {
    /// info 0 … critical 3.
    public var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .error: 2
        case .critical: 3
        }
    }
}
