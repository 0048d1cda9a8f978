public import Prometheus
public import RaftCore
import Synchronization

/// The daemon's Prometheus metrics. Names follow Prometheus conventions (`_total` counters,
/// `_seconds` histograms); `/metrics` renders `registry`.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let term: Gauge
    let roleGauges: [RaftRole: Gauge]
    let commitIndex: Gauge
    let appliedIndex: Gauge
    let lastIndex: Gauge
    let elections: Counter
    let leaderChanges: Counter
    let leaseRemaining: Gauge
    /// One storage transaction (group commit): the write path's latency.
    public let journalAppend: DurationHistogram
    /// Entries per storage transaction: how well group commit batches.
    public let journalBatchEntries: ValueHistogram
    let peerConnected: PrometheusCollectorRegistry
    let nodeLabel: String
    /// Admin requests refused for a missing or wrong token (or a source over its tries).
    let adminAuthFailures: Counter
    /// The admin API availability SLI: answers of the token-guarded routes, 5xx (or a handler
    /// that threw) bad, everything else good. Probes are left out: /leader answers 503 on
    /// every follower by design.
    let adminAnswersGood: Counter
    let adminAnswersBad: Counter
    /// The same answers, counted for the in-process admin availability SLO (the trading
    /// engine takes them once a second).
    public let adminAnswerTally = AdminAnswerTally()
    /// Admin connections closed at once because the connection cap was reached.
    let adminConnectionsRefused: Counter
    /// Peer messages the Raft node refused because no correct peer sends them.
    let refusedPeerMessages: Counter
    /// Commands refused at propose because too much already waited (ConsensusError.overloaded).
    let proposalsShed: Counter
    /// Committed entries handed to the journal's apply and not yet applied.
    let applyBacklog: Gauge
    /// Committed entries handed to the state machine (the trading engine) and not yet taken.
    let stateMachineBacklog: Gauge
    /// Times a non-leader stopped taking peer messages because its apply streams were full.
    let inboundHeldForApply: Counter

    public init(node: NodeID, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.peerConnected = registry
        nodeLabel = "\(node.rawValue)"
        let labels = [("node", nodeLabel)]
        term = registry.makeGauge(name: "baton_raft_term", labels: labels, help: "Current Raft term")
        var roles: [RaftRole: Gauge] = [:]
        for role in [RaftRole.follower, .preCandidate, .candidate, .leader] {
            roles[role] = registry.makeGauge(
                name: "baton_raft_role", labels: labels + [("role", role.rawValue)],
                help: "1 for the role this node is in, 0 for the others"
            )
        }
        roleGauges = roles
        commitIndex = registry.makeGauge(
            name: "baton_raft_commit_index", labels: labels, help: "Highest committed log index")
        appliedIndex = registry.makeGauge(
            name: "baton_raft_applied_index", labels: labels, help: "Highest applied log index")
        lastIndex = registry.makeGauge(
            name: "baton_raft_last_index", labels: labels, help: "Last index in the local log")
        elections = registry.makeCounter(
            name: "baton_raft_elections_total", labels: labels, help: "Elections this process started (campaigns)"
        )
        leaderChanges = registry.makeCounter(
            name: "baton_raft_leader_changes_total", labels: labels, help: "Leader changes this process observed"
        )
        leaseRemaining = registry.makeGauge(
            name: "baton_raft_lease_remaining_seconds", labels: labels,
            help: "Time left on the leader lease (0 if none)"
        )
        adminAuthFailures = registry.makeCounter(
            name: "baton_admin_auth_failures_total", labels: labels,
            help: "Admin requests refused for a missing or wrong bearer token, or a source over its tries")
        adminAnswersGood = registry.makeCounter(
            name: "baton_admin_requests_total", labels: labels + [("outcome", "good")],
            help: "Admin API answers (token-guarded routes) by outcome: bad is a 5xx or a failed handler")
        adminAnswersBad = registry.makeCounter(
            name: "baton_admin_requests_total", labels: labels + [("outcome", "bad")],
            help: "Admin API answers (token-guarded routes) by outcome: bad is a 5xx or a failed handler")
        adminConnectionsRefused = registry.makeCounter(
            name: "baton_admin_connections_refused_total", labels: labels,
            help: "Admin connections closed at accept because admin.max_connections were open")
        refusedPeerMessages = registry.makeCounter(
            name: "baton_raft_refused_messages_total", labels: labels,
            help: "Peer messages refused as impossible from a correct peer (the connection is dropped)")
        proposalsShed = registry.makeCounter(
            name: "baton_proposals_shed_total", labels: labels,
            help: "Commands refused at propose (503) because the proposal queue or the apply backlog was full")
        applyBacklog = registry.makeGauge(
            name: "baton_apply_backlog_entries", labels: labels,
            help: "Committed entries waiting for the journal's apply transaction")
        stateMachineBacklog = registry.makeGauge(
            name: "baton_state_machine_backlog_entries", labels: labels,
            help: "Committed entries waiting for the trading engine to take them")
        inboundHeldForApply = registry.makeCounter(
            name: "baton_apply_backpressure_holds_total", labels: labels,
            help: "Times a non-leader stopped taking peer messages until its apply backlog fell under the limit")
        let latencyBuckets: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .seconds(1),
        ]
        journalAppend = registry.makeDurationHistogram(
            name: "baton_journal_append_seconds", labels: labels, buckets: latencyBuckets,
            help: "Duration of one journal transaction including its fsync (group commit)"
        )
        journalBatchEntries = registry.makeValueHistogram(
            name: "baton_journal_batch_entries", labels: labels, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
            help: "Log entries written per journal transaction"
        )
    }

    func update(
        term: Term, role: RaftRole, commitIndex: LogIndex, appliedIndex: LogIndex, lastIndex: LogIndex,
        leaseRemaining: Duration?
    ) {
        self.term.set(Double(term))
        for (r, gauge) in roleGauges { gauge.set(r == role ? 1.0 : 0.0) }
        self.commitIndex.set(Double(commitIndex))
        self.appliedIndex.set(Double(appliedIndex))
        self.lastIndex.set(Double(lastIndex))
        self.leaseRemaining.set(leaseRemaining.map { $0.milliseconds / 1000 } ?? 0)
    }

    func updatePeers(_ peers: [PeerLinkStatus]) {
        for peer in peers {
            let labels = [("node", nodeLabel), ("peer", "\(peer.id)")]
            registry.makeGauge(
                name: "baton_peer_connected", labels: labels, help: "1 while the connection to the peer is up"
            )
            .set(peer.connected ? 1.0 : 0.0)
            registry.makeGauge(name: "baton_peer_queue_depth", labels: labels, help: "Messages queued for the peer")
                .set(Double(peer.queued))
            registry.makeGauge(
                name: "baton_peer_dropped_messages", labels: labels,
                help: "Messages dropped because the peer's queue was full"
            )
            .set(Double(peer.dropped))
        }
    }
}

extension DaemonMetrics {
    func countAdminAnswer(status: Int) {
        if status >= 500 { adminAnswersBad.increment() } else { adminAnswersGood.increment() }
        adminAnswerTally.count(good: status < 500)
    }
}

/// Admin answers, good and bad, since they were last taken: the admin plane counts, the
/// trading engine's admin availability SLO takes.
public final class AdminAnswerTally: Sendable {
    private let counts = Mutex((good: UInt64(0), bad: UInt64(0)))

    public init() {}

    func count(good: Bool) {
        counts.withLock { if good { $0.good &+= 1 } else { $0.bad &+= 1 } }
    }

    /// What was counted since the last call, and the count starts again.
    func take() -> (good: UInt64, bad: UInt64) {
        counts.withLock { counts in
            defer { counts = (0, 0) }
            return counts
        }
    }
}
