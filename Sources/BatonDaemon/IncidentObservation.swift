import BatonAlerting
import BatonFeed
import Foundation
import RaftCore

/// The shell's bookkeeping for the alert rules: what it has seen of leadership, the feed, the
/// replicas and the SLO burn rules, turned into `IncidentRules.External` for the core. A value,
/// driven with explicit times so that a test can step it.
struct IncidentWatch {
    /// The last leader this replica followed, and when it last heard of one (ns).
    private var lastLeader: UInt64?
    private var lastLeaderSeenAt: Int64?
    private var wasLeader = false
    private var previousLeader: UInt64?
    private var leaderlessNanos: Int64?
    private var feedSince: (condition: IncidentRules.Feed.Condition, atMillis: Int64)?
    private var silentSince: [UInt64: Int64] = [:]
    private var burns: [String: IncidentRules.Burn] = [:]
    private(set) var lastRefresh: Int64 = .min / 2
    static let refreshNanos: Int64 = 1_000_000_000

    /// Every duty round (cheap): who leads.
    mutating func sawLeadership(role: RaftRole, leader: NodeID?, selfID: NodeID, now: Int64) {
        let leads = role == .leader
        if leads && !wasLeader {
            previousLeader = lastLeader
            leaderlessNanos = lastLeaderSeenAt.map { max(0, now - $0) }
        }
        if !leads {
            if let leader, leader != selfID {
                lastLeader = leader.rawValue
                lastLeaderSeenAt = now
            }
            previousLeader = nil
            leaderlessNanos = nil
        }
        wasLeader = leads
    }

    mutating func burnRaised(slo: String, rule: BurnRateRule, long: Double, short: Double, now: Int64) {
        let name = Self.ruleName(rule)
        burns["\(slo)/\(name)"] = IncidentRules.Burn(
            slo: slo, rule: name, page: rule.severity == .page, longBurnRate: long, shortBurnRate: short,
            sinceMillis: now / 1_000_000)
    }

    mutating func burnResolved(slo: String, rule: BurnRateRule) {
        burns["\(slo)/\(Self.ruleName(rule))"] = nil
    }

    /// "page-1h": the rule's severity and long window, a path element of the incident identity.
    static func ruleName(_ rule: BurnRateRule) -> String {
        "\(rule.severity.rawValue)-\(windowName(rule.longWindowNanos))"
    }

    /// The feed as the rules read it; nil while no source has connected yet.
    mutating func feedCondition(_ status: FeedStatus, nowMillis: Int64) -> IncidentRules.Feed? {
        let health = Dictionary(status.sources.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        guard let active = health[status.active] else { return nil }
        if status.sources.allSatisfy({ $0.health == .pending }) { return nil }
        let condition: IncidentRules.Feed.Condition
        if !status.sources.contains(where: { $0.health == .healthy || $0.health == .pending }) {
            condition = .down
        } else if active.health == .stale || active.health == .disconnected {
            condition = .stale(source: status.active.rawValue, silentMillis: active.stalenessMillis)
        } else if status.active == .backup {
            let primary = health[.primary]?.health
            condition = .onBackup(
                why: primary == .healthy
                    ? "the primary is healthy again; switching back once it has stayed so"
                    : "the primary is \(primary?.rawValue ?? "not configured")")
        } else {
            condition = .healthy
        }
        if feedSince.map({ Self.kind($0.condition) != Self.kind(condition) }) ?? true {
            feedSince = (condition, nowMillis)
        }
        return IncidentRules.Feed(condition: condition, sinceMillis: feedSince?.atMillis ?? nowMillis)
    }

    private static func kind(_ condition: IncidentRules.Feed.Condition) -> Int {
        switch condition {
        case .healthy: 0
        case .stale: 1
        case .onBackup: 2
        case .down: 3
        }
    }

    /// Followers as the leader's Raft node sees them, with what each last said of its own health.
    mutating func replicas(
        _ view: ConsensusLoop.ClusterView, nowMillis: Int64, health: [UInt64: IncidentRules.Health] = [:]
    ) -> [IncidentRules.Replica] {
        view.members.filter { $0.id != view.node }.map { member in
            if member.recentlyActive == false {
                if silentSince[member.id] == nil { silentSince[member.id] = nowMillis }
            } else {
                silentSince[member.id] = nil
            }
            return IncidentRules.Replica(
                node: member.id, lag: member.lag ?? 0, silentSinceMillis: silentSince[member.id], health: health[member.id])
        }
    }

    /// The rest of `External` (leadership, burns) for the core.
    func external(
        replicas: [IncidentRules.Replica]?, feed: IncidentRules.Feed?, disk: IncidentRules.Disk?, journalProblem: String? = nil
    ) -> IncidentRules.External {
        var external = IncidentRules.External()
        external.replicas = replicas
        external.feed = feed
        external.disk = disk
        external.journalProblem = journalProblem
        external.burns = burns.keys.sorted().compactMap { burns[$0] }
        external.previousLeader = previousLeader
        external.leaderlessMillis = leaderlessNanos.map { $0 / 1_000_000 }
        return external
    }

    mutating func refreshed(at now: Int64) { lastRefresh = now }

    /// The free fraction of the file system holding `path` (nil if it cannot be read).
    static func disk(at path: String) -> IncidentRules.Disk? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0, stats.f_blocks > 0 else { return nil }
        return IncidentRules.Disk(free: Double(stats.f_bavail) / Double(stats.f_blocks), path: path)
    }
}

extension TradingEngine {
    /// Every duty round: leadership; about once a second on the leader: the replicas, the feed,
    /// the disk and the SLO burns, handed to the core for the alert rules.
    func observeForIncidents(_ view: LeadershipView, consensus: ConsensusLoop, now: Int64) async {
        incidentWatch.sawLeadership(role: view.role, leader: view.leader, selfID: nodeID, now: now)
        guard view.role == .leader, !configuration.alertSinks.isEmpty,
            now - incidentWatch.lastRefresh >= IncidentWatch.refreshNanos
        else { return }
        incidentWatch.refreshed(at: now)
        let nowMillis = now / 1_000_000
        let cluster = await consensus.clusterView()
        let replicas = incidentWatch.replicas(cluster, nowMillis: nowMillis, health: replicaHealth?.followers() ?? [:])
        let feed = self.feed.flatMap { incidentWatch.feedCondition($0.status(), nowMillis: nowMillis) }
        let disk = dataDirectory.flatMap(IncidentWatch.disk(at:))
        observe(
            incidentWatch.external(replicas: replicas, feed: feed, disk: disk, journalProblem: replicaHealth?.ownJournalProblem))
    }
}

// MARK: - GET /alerts

/// What `GET /alerts` shows: the replicated outbox as this replica has applied it (the same on
/// every replica up to its applied index), and the sinks this replica would deliver to.
struct AlertsView: Encodable {
    struct Incident: Encodable {
        var identity: String
        var key: String
        var level: String
        var summary: String
        var since: String
        var runbook: String?
    }
    struct Delivery: Encodable {
        var sink: String
        /// "pending", "delivered", "gave-up".
        var status: String
        var attempts: Int
        var at: String?
        var lastError: String?
        var notBefore: String?
    }
    struct Entry: Encodable {
        var id: UInt64
        var identity: String
        var key: String
        var action: String
        var level: String
        var summary: String
        var deliveries: [Delivery]
    }
    struct Sink: Encodable {
        var name: String
        var minSeverity: String
    }
    var node: UInt64
    var leader: Bool
    var sinks: [Sink]
    var open: [Incident]
    /// Pending deliveries first (oldest first), then the newest finished ones, newest last.
    var pending: [Entry]
    var recent: [Entry]

    static func time(_ millis: Int64) -> String {
        Date(timeIntervalSince1970: Double(millis) / 1000).ISO8601Format(.iso8601.time(includingFractionalSeconds: true).year().month().day())
    }

    init(outbox: AlertOutbox, node: UInt64, leader: Bool, sinks: [Sink], recentLimit: Int) {
        self.node = node
        self.leader = leader
        self.sinks = sinks
        open = outbox.open.keys.sorted().compactMap { identity in
            guard let event = outbox.openEvents[identity] else { return nil }
            return Incident(
                identity: identity, key: event.key, level: event.level.rawValue, summary: event.summary,
                since: Self.time(event.startedAtMillis), runbook: event.runbook)
        }
        func entry(_ e: AlertOutbox.Entry) -> Entry {
            Entry(
                id: e.id, identity: e.identity, key: e.event.key, action: e.event.action.rawValue, level: e.event.level.rawValue,
                summary: e.event.summary,
                deliveries: e.deliveries.keys.sorted().compactMap { sink in
                    guard let d = e.deliveries[sink] else { return nil }
                    switch d.status {
                    case .pending:
                        return Delivery(
                            sink: sink, status: "pending", attempts: d.attempts, lastError: d.lastError,
                            notBefore: d.notBeforeMillis > 0 ? Self.time(d.notBeforeMillis) : nil)
                    case .delivered(let at):
                        return Delivery(sink: sink, status: "delivered", attempts: d.attempts, at: Self.time(at))
                    case .gaveUp(let reason, let at):
                        return Delivery(sink: sink, status: "gave-up", attempts: d.attempts, at: Self.time(at), lastError: reason)
                    }
                })
        }
        pending = outbox.pending.map(entry)
        recent = outbox.recent.suffix(recentLimit).compactMap { outbox.entries[$0] }.map(entry)
    }
}

extension TradingEngine {
    func alertsView(leader: Bool, recentLimit: Int) -> AlertsView {
        AlertsView(
            outbox: alertOutbox, node: nodeID.rawValue, leader: leader,
            sinks: configuration.alertSinks.keys.sorted().map { name in
                AlertsView.Sink(name: name, minSeverity: configuration.alertMinimumSeverity[name] ?? "info")
            }, recentLimit: recentLimit)
    }

    /// `batonctl alerts test SINK`: one info event straight to the sink from this replica, not
    /// journaled (it tests this replica's configuration and secrets, not the outbox), answered
    /// with the receiver's verdict. PagerDuty and Alertmanager receivers get its resolve too, so
    /// the test leaves no incident open. nil: no such sink is configured here.
    func testAlert(sink name: String, by principal: String) async -> (delivered: Bool, outcome: String)? {
        guard let settings = configuration.alertSinks[name] else { return nil }
        let now = Self.wallNanos() / 1_000_000
        var event = AlertEvent(
            key: "\(configuration.clusterName)/test/n\(nodeID.rawValue)/\(now)", action: .trigger, level: .info,
            summary: "test alert from \(configuration.clusterName) n\(nodeID.rawValue), sent by \(principal) with batonctl alerts test",
            source: "\(configuration.clusterName) node n\(nodeID.rawValue)", component: "alerting", group: configuration.clusterName,
            eventClass: "test", details: ["node": "n\(nodeID.rawValue)", "by": principal], startedAtMillis: now)
        let sink = AlertSink(settings)
        let outcome = await alertDeliverer.deliver(event, to: sink)
        guard case .delivered = outcome else { return (false, Self.describe(outcome)) }
        switch settings {
        case .pagerDuty, .webhook:
            event.action = .resolve
            event.endedAtMillis = Self.wallNanos() / 1_000_000
            let resolved = await alertDeliverer.deliver(event, to: sink)
            guard case .delivered = resolved else { return (true, "trigger delivered; its resolve: \(Self.describe(resolved))") }
            return (true, "delivered (trigger and resolve, key \(event.key))")
        case .slack, .telegram:
            return (true, "delivered (key \(event.key))")
        }
    }

    static func describe(_ outcome: DeliveryOutcome) -> String {
        switch outcome {
        case .delivered: "delivered"
        case .retry(let after, let reason): "not delivered, worth a retry\(after.map { " after \($0)" } ?? ""): \(reason)"
        case .refused(let reason): "refused: \(reason)"
        }
    }
}

// MARK: - Trade notifications

extension TradingEngine {
    /// Queues a trade notification while this replica leads (every replica applies the same
    /// fills; only the leader tells the chat).
    func tradeNote(_ kind: TradeNotifier.Kind, _ subject: String, _ summary: String, _ details: [String: String]) {
        guard tradeNotifier.isEnabled, leadsForNotifications else { return }
        tradeNotifier.notify(
            kind, subject: subject, summary: summary, cluster: configuration.clusterName, node: nodeID.rawValue,
            details: details, atMillis: Self.wallNanos() / 1_000_000)
    }

    /// Every duty round: sends what is due, one at a time per sink; drops the queue on losing
    /// the lead.
    func notifyTrades(leading: Bool, now: Int64) {
        guard tradeNotifier.isEnabled else { return }
        leadsForNotifications = leading
        guard leading else {
            tradeNotifier.reset()
            return
        }
        let deliverer = alertDeliverer
        for (name, event) in tradeNotifier.due(nowMillis: now / 1_000_000) {
            guard let settings = configuration.alertSinks[name] else { continue }
            let sink = AlertSink(settings)
            Task {
                let outcome = await deliverer.deliver(event, to: sink)
                await self.tradeNotified(sink: name, outcome: outcome)
            }
        }
    }

    func tradeNotified(sink: String, outcome: DeliveryOutcome) {
        var wait: Int64?
        if case .retry(let after?, _) = outcome {
            let (seconds, attoseconds) = after.components
            wait = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        }
        if case .delivered = outcome {} else {
            logger.notice("trade notification not delivered", metadata: ["alert.sink": "\(sink)", "error": "\(Self.describe(outcome))"])
        }
        tradeNotifier.finished(sink: sink, retryAfterMillis: wait, nowMillis: Self.coreNanos() / 1_000_000)
    }
}
