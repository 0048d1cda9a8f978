@_spi(Testing) import BatonJournal
import BatonTestCluster
import Foundation
import Synchronization
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The trading path with real processes: three `batond` replicas, a `baton-venue` (FIX acceptor
/// and market feed) and a second venue process as the backup feed, all on loopback.
@Suite(.serialized) struct TradingProcessTests {
    /// Short windows so crossings (and so orders) come every few hundred milliseconds.
    static func options(_ change: (inout TradingCluster.Options) -> Void = { _ in }) -> TradingCluster.Options {
        var options = TradingCluster.Options()
        options.fastWindow = 3
        options.slowWindow = 8
        options.tickRate = 600
        change(&options)
        return options
    }

    /// Pauses trading (on whichever replica leads now: `leader` is who led when the caller last
    /// looked, and a loaded machine may have moved it) and waits until every replica has every
    /// order settled at the same applied index.
    static func settle(_ cluster: TradingCluster, leader: UInt64) async throws {
        let current = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        let (status, _) = try await cluster.post(
            "\(cluster.replicas[current]!.adminURL)/admin/trading/pause", body: "{\"reason\":\"test settles\"}")
        #expect(status == 200)
        let seen = Mutex<[String]>([])
        do {
            try await cluster.waitUntil("every order settled on every replica", timeout: .seconds(20), every: .milliseconds(100)) {
            var applied: Set<UInt64> = []
            var views: [String] = []
            defer { seen.withLock { $0 = views } }
            for id in cluster.ids {
                guard let view = await cluster.trading(id) else {
                    views.append("n\(id) unreachable")
                    return false
                }
                let raft = (try? await cluster.get("\(cluster.replicas[id]!.adminURL)/cluster")).map {
                    String(String(decoding: $0.body, as: UTF8.self).prefix(1500))
                } ?? "?"
                views.append(
                    "n\(id) open=\(view.engine.openOrders) applied=\(view.engine.appliedIndex) phase=\(view.engine.phase) raft=\(raft)")
                guard view.engine.openOrders == 0 else { return false }
                applied.insert(view.engine.appliedIndex)
            }
            return applied.count == 1
            }
        } catch {
            throw ClusterFailure("every order settled on every replica: not within 20 s; last seen \(seen.withLock { $0 })")
        }
    }

    @Test func tickToSignalToOrderToFillToPositionMatchesTheVenue() async throws {
        let cluster = try TradingCluster(options: Self.options())
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("three fills at the venue", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 3
        }
        try await Self.settle(cluster, leader: leader)

        let venueOrders = try await cluster.venueOrders()
        let intents = try await cluster.orders(leader)
        #expect(venueOrders.count >= 3)
        // Every order the venue received is a committed, approved intent of the leader's journal,
        // sent once, with the ClOrdID its log position gives it.
        let byID = Dictionary(uniqueKeysWithValues: intents.map { ($0.clOrdId, $0) })
        for order in venueOrders {
            let intent = try #require(byID[order.clOrdID], "venue order \(order.clOrdID) has no intent in the journal")
            #expect(intent.riskDecision.hasPrefix("approved"))
            #expect(intent.status == "filled")
            #expect(order.status == "filled" || order.ordStatus == "2")
            #expect(order.clOrdID.hasPrefix("BTN-"))
            #expect(order.session == TradingCluster.session, "orders come on the cluster's one session")
        }
        // One broker session for the cluster: only the leader is connected to it.
        for id in cluster.ids where id != leader {
            let view = try #require(await cluster.trading(id))
            #expect(view.session.status == "disconnected", "follower n\(id) is \(view.session.status) with the broker")
        }
        #expect(try await cluster.venueDuplicates().isEmpty)
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
        // Followers shadowed the feed: their strategies saw ticks and compared decisions.
        for id in cluster.ids where id != leader {
            let view = try #require(await cluster.trading(id))
            #expect(view.engine.phase == "follower")
            #expect(view.feed.sources.contains { $0.ticks > 0 })
            #expect(view.engine.shadowAgreements + view.engine.shadowDivergences > 0)
        }
        // The leader measured tick-to-order for what it sent.
        let (_, metrics) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/metrics")
        let text = String(decoding: metrics, as: UTF8.self)
        #expect(text.contains("baton_tick_to_order_seconds_count"))
        #expect(!text.contains("baton_tick_to_order_seconds_count{node=\"\(leader)\"} 0"))
        // And the broker's first answer to each order: the order-ack SLI, which /slo evaluates.
        #expect(text.contains("baton_order_ack_seconds_count{node=\"\(leader)\"}"))
        #expect(!text.contains("baton_order_ack_seconds_count{node=\"\(leader)\"} 0"))
        let (sloStatus, sloBody) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/slo")
        #expect(sloStatus == 200)
        let slo = try #require(try JSONSerialization.jsonObject(with: sloBody) as? [String: Any], "\(String(decoding: sloBody, as: UTF8.self))")
        #expect(slo["leader"] as? Bool == true)
        let objectives = try #require(slo["slos"] as? [[String: Any]])
        let orderAck = try #require(objectives.first { $0["slo"] as? String == "order-ack-latency" }, "\(objectives)")
        #expect(orderAck["objective"] as? Double == 0.999)
        let windows = try #require(orderAck["windows"] as? [[String: Any]])
        let fiveMinutes = try #require(windows.first { $0["window"] as? String == "5m" })
        // Every order the venue took was answered; on loopback well within 250 ms.
        #expect((fiveMinutes["good"] as? Int ?? 0) >= venueOrders.count, "\(fiveMinutes)")
        #expect(fiveMinutes["bad"] as? Int == 0, "\(fiveMinutes)")
        #expect((orderAck["firing"] as? [String])?.isEmpty == true)
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        let table = try BatonctlTests.run(["slo", "--admin", admin], environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.output.contains("order-ack-latency") && table.output.contains("BURN 1h") && table.output.contains("99.9%"), "\(table.output)")
    }

    /// The second strategy of the registry, end to end: channel-breakout signals become orders
    /// and fills on real replicas, and every order says which strategy and version it came from.
    @Test func aChannelBreakoutClusterTradesAndAttributesEachOrderToItsStrategy() async throws {
        let cluster = try TradingCluster(
            options: Self.options {
                $0.strategyName = "channel-breakout"
                $0.lookback = 6
                $0.volatilityBps = 6
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("two fills at the venue", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 2
        }
        try await Self.settle(cluster, leader: leader)
        let orders = try await cluster.orders(leader)
        #expect(orders.count >= 2)
        #expect(orders.allSatisfy { $0.strategy == "channel-breakout" && $0.strategyVersion == "1" }, "\(orders.map { ($0.strategy, $0.strategyVersion) })")
        #expect(try await cluster.venueDuplicates().isEmpty)
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        let table = try BatonctlTests.run(["orders", "--admin", admin], environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(table.status == 0 && table.output.contains("STRATEGY") && table.output.contains("channel-breakout v1"), "\(table.output)")
    }

    /// An operator deploys the breakout mid-session with batonctl: every replica switches at the
    /// same entry, the orders after it are the new version's, and after the leader is killed the
    /// next one runs the same version (from the journal, not from its YAML).
    @Test func aStrategyDeployedThroughTheAdminPlaneRunsOnEveryReplicaAndSurvivesAFailover() async throws {
        let cluster = try TradingCluster(options: Self.options { $0.symbols = ["AAPL"]; $0.volatilityBps = 6 })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        let token = ["BATON_ADMIN_TOKEN": TradingCluster.token]
        let wrong = try BatonctlTests.run(
            ["strategy", "deploy", "channel-breakout", "--version", "2", "--param", "fast_window=3", "--reason", "test", "--admin", admin],
            environment: token)
        #expect(wrong.status != 0 && wrong.output.contains("parameters.fast_window is not a parameter of channel-breakout"), "\(wrong.output)")
        let deployed = try BatonctlTests.run(
            ["strategy", "deploy", "channel-breakout", "--version", "2", "--param", "lookback=6", "--reason", "breakout v2 for the test",
             "--admin", admin], environment: token)
        #expect(deployed.status == 0 && deployed.output.contains("AAPL: channel-breakout v2 from log index"), "\(deployed.output)")
        // Every replica runs it, from the same entry.
        try await cluster.waitUntil("every replica runs the deployed version", timeout: .seconds(10)) {
            for id in cluster.ids {
                guard let (status, body) = try? await cluster.get("\(cluster.replicas[id]!.adminURL)/strategies"), status == 200,
                    let list = (try? JSONSerialization.jsonObject(with: body)) as? [[String: Any]],
                    list.first?["strategy"] as? String == "channel-breakout", list.first?["version"] as? String == "2",
                    list.first?["source"] as? String == "deployment"
                else { return false }
            }
            return true
        }
        @Sendable func breakoutOrders(_ id: UInt64) async -> Int {
            ((try? await cluster.orders(id)) ?? []).filter { $0.strategy == "channel-breakout" && $0.strategyVersion == "2" }.count
        }
        try await cluster.waitUntil("an order of the deployed version", timeout: .seconds(30)) { await breakoutOrders(first) >= 1 }
        cluster.kill9(first)
        let second = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        #expect(second != first)
        let atKill = await breakoutOrders(second)
        try await cluster.waitUntil("the next leader trades the deployed version", timeout: .seconds(30)) {
            await breakoutOrders(second) > atKill
        }
        let orders = try await cluster.orders(second)
        let lastMA = orders.lastIndex { $0.strategy == "ma-crossover" } ?? -1
        let firstBreakout = orders.firstIndex { $0.strategy == "channel-breakout" } ?? 0
        #expect(lastMA < firstBreakout, "no crossover order after the deployment: \(orders.map(\.strategy))")
        #expect(try await cluster.venueDuplicates().isEmpty)
        let listed = try BatonctlTests.run(["strategy", "--admin", admin], environment: token)
        #expect(listed.status == 0 && listed.output.contains("deployed by") && listed.output.contains("lookback=6"), "\(listed.output)")
        let (_, audit) = try await cluster.get("\(cluster.replicas[second]!.adminURL)/audit")
        let actions = ((try? JSONSerialization.jsonObject(with: audit)) as? [[String: Any]]) ?? []
        #expect(
            actions.contains { $0["action"] as? String == "POST /admin/strategies" && $0["status"] as? Int == 200 },
            "the deployment is in the journaled audit trail, with who did it")
    }

    @Test func theRiskGateRejectsAndJournalsWhy() async throws {
        let cluster = try TradingCluster(options: Self.options { $0.maxOrdersPerMinute = 2; $0.maxOrdersPerHour = 2 })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("a rate-limit rejection", timeout: .seconds(30)) {
            (await cluster.trading(leader))?.engine.lastRejection?.hasPrefix("rate limit") == true
        }
        try await Self.settle(cluster, leader: leader)
        #expect(try await cluster.venueStatistics().orders == 2, "the gate let exactly the allowed two through")
        for id in cluster.ids {
            let view = try #require(await cluster.trading(id))
            #expect(view.engine.riskRejections > 0, "n\(id) has the rejections in its journal")
            #expect(view.engine.orders == 2)
        }
    }

    /// The leader dies after writing the order and before anything about it is journaled. The
    /// next leader asks the venue, learns the order exists (and its fill), and does not send it.
    @Test func anOrderIsNotSentTwiceWhenTheLeaderDiesRightAfterSending() async throws {
        try await killAroundAnOrder(when: "after-send", expectResend: false)
    }

    /// The leader dies after the intent commits and before it writes the order. The next leader
    /// learns the venue never received it and sends it, once, with PossResend=Y.
    @Test func anOrderIsNotLostWhenTheLeaderDiesBeforeSending() async throws {
        try await killAroundAnOrder(when: "before-send", expectResend: true)
    }

    /// FIX over TLS to the broker: the replicas trust the venue's CA (`venue.tls.ca_file`), the
    /// leader logs on and trades over TLS, and a plain-TCP Logon to the same port gets nowhere.
    @Test func theClusterTradesWithTheBrokerOverTLS() async throws {
        let cluster = try TradingCluster(options: Self.options { $0.venueTLS = true })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("an order filled over TLS", timeout: .seconds(30)) {
            (try? await cluster.venueOrders().contains { $0.status == "filled" }) == true
        }
        let session = try #require(try await cluster.venueStatistics().sessions[TradingCluster.session])
        #expect(session.logons >= 1)
        #expect((try await cluster.trading(leader))?.session.status == "active")

        // Plain TCP to the TLS port: the venue's TLS layer refuses the bytes, no Logon happens.
        let logonsBefore = session.logons
        let socket = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: cluster.fixPort).get()
        var buffer = socket.allocator.buffer(capacity: 128)
        buffer.writeString("8=FIX.4.4\u{1}9=5\u{1}35=A\u{1}10=000\u{1}")
        try? await socket.writeAndFlush(buffer).get()
        try await cluster.waitUntil("the venue closes the plain connection", timeout: .seconds(5)) { !socket.isActive }
        #expect(try await cluster.venueStatistics().sessions[TradingCluster.session]?.logons == logonsBefore)
    }

    /// The same with `venue.mass_status: true`: one OrderMassStatusRequest; the order it does
    /// not list is asked about alone, and only that answer proves it never arrived.
    @Test func anOrderIsNotLostWhenTheLeaderDiesBeforeSendingWithMassStatus() async throws {
        try await killAroundAnOrder(when: "before-send", expectResend: true, massStatus: true)
    }

    func killAroundAnOrder(when: String, expectResend: Bool, massStatus: Bool = false) async throws {
        // One symbol: at most one order is open at a time, so the killed one is unambiguous.
        let cluster = try TradingCluster(options: Self.options { $0.symbols = ["AAPL"]; $0.massStatus = massStatus })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        try await cluster.armKill(first, when: when)
        try await cluster.waitUntil("the armed leader killed itself", timeout: .seconds(30)) { !cluster.isRunning(first) }
        try cluster.start(first)
        let second = try await cluster.waitForTradingLeader()
        // The open order at the kill is the one the new leader had to settle: by reconciling it,
        // or — when the dead leader's order reached the venue — by journaling the reports the
        // venue re-sends on the shared session (PossDup) while the new leader waits out
        // max_order_age before asking; such an order has reports but no OrderSent.
        let settledByTheNewLeader: @Sendable (TradingCluster.ReplicaOrder) -> Bool = { order in
            order.reconciledInTerm != nil || (order.sends == 0 && order.status == "filled")
        }
        try await cluster.waitUntil("the killed order settled and filled", timeout: .seconds(20)) {
            let order = try? await cluster.orders(second).first(where: settledByTheNewLeader)
            return order?.status == "filled"
        }
        let killed = try #require(try await cluster.orders(second).first(where: settledByTheNewLeader))
        try await Self.settle(cluster, leader: second)

        let atVenue = try await cluster.venueOrders().filter { $0.clOrdID == killed.clOrdId }
        #expect(atVenue.count == 1, "the venue received \(killed.clOrdId) exactly once")
        let asked = try await cluster.venueStatistics().sessions[TradingCluster.session]
        if massStatus {
            #expect((asked?.massStatusRequests ?? 0) >= 1, "the new leader asked with OrderMassStatusRequest")
        } else {
            #expect(asked?.massStatusRequests == 0)
        }
        if expectResend {
            #expect(atVenue.first?.possResend == true)
        } else if atVenue.first?.possResend == true {
            // Written, but it reached the venue only after the next leader had asked (a loaded
            // machine): the venue refused that late copy as stale, and the re-send is the one
            // execution. Safe, and only so: the refusal must be on the venue's record.
            let refused = try await cluster.venueRefusals().filter { $0.clOrdID == killed.clOrdId }
            #expect(!refused.isEmpty, "re-sent although the venue has no record of refusing the original")
        }
        #expect(try await cluster.venueDuplicates().isEmpty, "no second NewOrderSingle for any ClOrdID")
        for id in cluster.ids {
            let order = try #require(try await cluster.orders(id).first { $0.clOrdId == killed.clOrdId })
            #expect(order.status == "filled")
            if expectResend {
                #expect(order.reconciledInTerm != nil, "n\(id): the new leader reconciled \(killed.clOrdId)")
            } else {
                #expect(settledByTheNewLeader(order), "n\(id): \(killed.clOrdId) settled by the new leader")
            }
        }
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
    }

    /// A planned transfer while an order is on its way through a slow order gateway (status is
    /// answered at once, the order reaches matching 250 ms later). The target reconciles without
    /// waiting out a lease, so unless the old leader first stops sending and waits for the
    /// answer, the target hears "unknown" and sends the order a second time.
    @Test func aPlannedTransferDrainsTheOrderInFlight() async throws {
        let cluster = try TradingCluster(options: Self.options { $0.symbols = ["AAPL"]; $0.venueOrderLatencyMs = 250 })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        // Catch an order written and not yet answered.
        var inFlight: String?
        let deadline = ContinuousClock.now + .seconds(30)
        while inFlight == nil, ContinuousClock.now < deadline {
            inFlight = try await cluster.orders(first).last { $0.status == "pending-new" }?.clOrdId
            if inFlight == nil { try await Task.sleep(for: .milliseconds(5)) }
        }
        let order = try #require(inFlight, "no order seen in flight\n\(cluster.logs())")
        let (status, body) = try await cluster.post("\(cluster.replicas[first]!.adminURL)/admin/transfer-leadership")
        let answer = String(decoding: body, as: UTF8.self)
        #expect(status == 200, "\(answer)")
        #expect(answer.contains("\"in_flight\":1"), "the hand-over waited for \(order): \(answer)")
        let second = try await cluster.waitForTradingLeader()
        #expect(second != first)
        try await Self.settle(cluster, leader: second)

        #expect(try await cluster.venueDuplicates().isEmpty, "no second NewOrderSingle for \(order)")
        // Its one fate: executed once from the old leader's write, or (on a loaded machine, when
        // the venue read it over 100 ms after its SendingTime) refused as stale and journaled so.
        // Either way the target never sent it again.
        let atVenue = try await cluster.venueOrders().filter { $0.clOrdID == order }
        let refused = try await cluster.venueRefusals().filter { $0.clOrdID == order }
        let executed = atVenue.count == 1 && atVenue.first?.possResend == false
        #expect(executed || (atVenue.isEmpty && refused.count == 1), "sent once, by the old leader: \(atVenue) \(refused)")
        for id in cluster.ids {
            let journaled = try #require(try await cluster.orders(id).first { $0.clOrdId == order })
            #expect(journaled.sends == 1, "n\(id): never re-sent by the target: \(journaled)")
            #expect(journaled.status == (executed ? "filled" : "rejected"), "n\(id): \(journaled)")
        }
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
    }

    /// A CI-sized chaos run; `baton-bench chaos --faults 100` is the full one (doc/benchmarks.md).
    /// Every committed intent must have exactly one fate at the venue (ChaosAudit.Fate). A failed
    /// run keeps its replica and venue logs and prints where they are.
    @Test func chaosScaledDown() async throws {
        let cluster = try TradingCluster(options: Self.options())
        var passed = false
        defer {
            cluster.shutdown()
            if passed && ProcessInfo.processInfo.environment["BATON_KEEP_LOGS"] == nil {
                cluster.removeDirectory()
            } else {
                print("chaos: logs kept in \(cluster.directory)")
            }
        }
        try await cluster.startAll()
        let summary = try await ChaosRun(faults: 14, log: { _ in }).run(on: cluster)
        print(summary)
        #expect(summary.faults.values.reduce(0, +) == 14)
        #expect(summary.venueOrders > 0)
        #expect(summary.duplicateAttempts == 0)
        #expect(summary.withoutFate == 0, "\(summary.fatelessDetail)")
        #expect(summary.orphanVenueOrders == 0)
        #expect(summary.executed + summary.rejectedAtVenue == summary.committedIntents)
        #expect(summary.journalDisagreements.isEmpty, "\(summary.journalDisagreements)")
        #expect(summary.positionsMatch, "\(summary.positionDetail)")
        #expect(summary.journalsVerified == 3)
        passed = summary.passed
    }
}

extension TradingProcessTests {
    /// A new leader whose status requests go unanswered does not guess: it reports HALTED with
    /// the reason (in /trading and beside /readyz), keeps asking, and trades once answered.
    @Test func reconciliationThatCannotFinishHaltsAndResumes() async throws {
        // Reports are not replayed on resend, so only a status answer can settle the open order.
        let cluster = try TradingCluster(
            options: Self.options { $0.symbols = ["AAPL"]; $0.heartbeatSeconds = 5; $0.venueGapFillsResends = true })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        try await cluster.armKill(first, when: "after-send")
        try await cluster.waitUntil("the armed leader killed itself", timeout: .seconds(30)) { !cluster.isRunning(first) }
        // The broker's status service goes down (its session stays up) before the next leader
        // can ask about the order that is open.
        let (stopped, _) = try await cluster.post("\(cluster.venueURL)/admin/status-requests", body: "{\"answer\": false}")
        #expect(stopped == 200)
        let (leader, reason) = try await cluster.waitForHaltedLeader()
        #expect(reason.contains("reconciliation incomplete"), "\(reason)")
        let (_, ready) = try await cluster.get("\(cluster.replicas[leader]!.adminURL)/readyz")
        #expect(String(decoding: ready, as: UTF8.self).contains("\"trading_halt_reason\":\"reconciliation incomplete"))
        let (answering, _) = try await cluster.post("\(cluster.venueURL)/admin/status-requests", body: "{\"answer\": true}")
        #expect(answering == 200)
        try await cluster.waitUntil("trading resumes once the venue answers", timeout: .seconds(30)) {
            (await cluster.trading(leader))?.engine.phase == "trading"
        }
        try cluster.start(first)
        try await Self.settle(cluster, leader: leader)
        #expect(try await cluster.venueDuplicates().isEmpty)
    }
}

extension TradingProcessTests {
    /// A broker that answers OrderStatusRequest with a BusinessMessageReject (QuickFIX's executor,
    /// brokers without status lookups). The new leader cannot learn the fate of the order the old
    /// one wrote: it stays HALTED naming the broker's answer and never re-sends. The on-call
    /// engineer checks the broker's record and resolves the order with batonctl; trading resumes.
    ///
    /// The halt pages: PagerDuty (a fake one that answers as the Events API does) gets the
    /// trigger from the journaled outbox, an Alertmanager receiver gets the same incident, and
    /// both get its resolve, under the same key, once trading resumes.
    /// A private directory holding `routing-key` (mode 0600), the PagerDuty key the fake
    /// receiver accepts; the caller removes it.
    /// The `alerts:` section that pages `receiver` with the routing key in `secrets`.
    static func pagerDutySection(_ secrets: String, _ receiver: AlertReceiver) -> String {
        """
        alerts:
          pagerduty:
            routing_key_file: \(secrets)/routing-key
            url: \(receiver.url)/v2/enqueue
        """
    }

    static func routingKeyDirectory() throws -> String {
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("baton-alert-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        try (AlertDeliveryTests.routingKey + "\n").write(toFile: "\(secrets)/routing-key", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(secrets)/routing-key")
        return secrets
    }

    @Test func aRefusedStatusRequestHaltsUntilAnOperatorResolvesTheOrder() async throws {
        let pagerDuty = AlertReceiver(.pagerDuty(eventsPerMinute: 120))
        let webhook = AlertReceiver(.alertmanager)
        try await pagerDuty.start()
        try await webhook.start()
        let secrets = try Self.routingKeyDirectory()
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        // A broker that neither answers status requests nor replays reports: nothing but the
        // operator can settle the order the dead leader wrote.
        let cluster = try TradingCluster(
            options: Self.options {
                $0.symbols = ["AAPL"]
                $0.venueRejectsStatusRequests = true
                $0.venueGapFillsResends = true
                $0.extraConfig = """
                    alerts:
                      pagerduty:
                        routing_key_file: \(secrets)/routing-key
                        url: \(pagerDuty.url)/v2/enqueue
                      webhook:
                        url: \(webhook.url)/alerts
                        trades: true
                    """
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        try await cluster.armKill(first, when: "after-send")
        try await cluster.waitUntil("the armed leader killed itself", timeout: .seconds(30)) { !cluster.isRunning(first) }
        let (leader, reason) = try await cluster.waitForHaltedLeader()
        #expect(reason.contains("BusinessMessageReject(j)"), "the halt names the broker's answer: \(reason)")
        #expect(reason.contains("Unsupported Message Type"), "\(reason)")
        let open = try #require(try await cluster.orders(leader).first { !["filled", "canceled", "rejected", "expired", "not-sent"].contains($0.status) })
        #expect(reason.contains(open.clOrdId))
        // Held, not guessed: still halted a while later (by whichever replica leads then: on a
        // loaded machine leadership may move, and the next leader halts on the same order), and
        // the order went to the venue once.
        try await Task.sleep(for: .seconds(1))
        let (_, stillHalted) = try await cluster.waitForHaltedLeader(timeout: .seconds(10))
        #expect(stillHalted.contains(open.clOrdId), "\(stillHalted)")
        let atVenue = try await cluster.venueOrders().filter { $0.clOrdID == open.clOrdId }
        #expect(atVenue.count == 1 && atVenue.first?.possResend == false, "never re-sent")

        // The operator checks the broker's record and resolves the order as it says.
        let truth = try #require(atVenue.first)
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        let quantity = truth.cumQty.split(separator: ".").first.map(String.init) ?? truth.cumQty
        let resolve = try BatonctlTests.run(
            ["orders", "resolve", open.clOrdId, "--filled", "\(quantity)@\(truth.avgPx)", "--reason",
             "venue blotter shows \(truth.orderID) filled", "--admin", admin],
            environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(resolve.status == 0, "\(resolve.output)")
        #expect(resolve.output.contains("\(open.clOrdId): filled"), "\(resolve.output)")
        try await cluster.waitUntil("trading resumes after the resolution", timeout: .seconds(20)) {
            await cluster.tradingLeader() != nil
        }
        // No new orders while the pages are checked: with this broker refusing status requests,
        // a leader change with an order open would halt again.
        let trading = try await cluster.waitForTradingLeader()
        let (paused, _) = try await cluster.post(
            "\(cluster.replicas[trading]!.adminURL)/admin/trading/pause", body: "{\"reason\":\"test checks the pages\"}")
        #expect(paused == 200)
        // A second resolution of a terminal order is refused, saying why.
        let again = try BatonctlTests.run(
            ["orders", "resolve", open.clOrdId, "--not-received", "--reason", "typo", "--admin", admin],
            environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
        #expect(again.status != 0 && again.output.contains("already filled"), "\(again.output)")

        // The halt was paged and, with trading back, resolved: one incident, one key, both sinks.
        // (The other rules page too: the killed replica is unreachable, paged as replica/n<id>.)
        try await cluster.waitUntil("the page is resolved at PagerDuty", timeout: .seconds(15)) {
            pagerDuty.incidents.contains { $0.key.contains("/trading-halted#") && !$0.value }
        }
        let incidents = pagerDuty.incidents.filter { $0.key.contains("/trading-halted#") }
        #expect(incidents.count == 1, "\(pagerDuty.incidents)")
        let key = try #require(incidents.keys.first)
        #expect(key.hasPrefix("baton-") && key.contains("/trading-halted#"), "the incident key is cluster/identity#log index: \(key)")
        try await cluster.waitUntil("the dead replica is paged as unreachable", timeout: .seconds(30)) {
            pagerDuty.incidents.keys.contains { $0.contains("/replica/n\(first)#") }
        }
        let paged = pagerDuty.received.filter { $0.status == 202 }.compactMap { $0.json }
            .filter { ($0["dedup_key"] as? String) == key }
        #expect(paged.map { $0["event_action"] as? String } == ["trigger", "resolve"], "\(paged)")
        let summary = (paged.first?["payload"] as? [String: Any])?["summary"] as? String ?? ""
        #expect(summary.contains("trading HALTED") && summary.contains("BusinessMessageReject"), "\(summary)")
        @Sendable func halts() -> [[String: any Sendable]] {
            webhook.received.filter { $0.status == 200 }.compactMap { $0.json }.filter { hook in
                ((hook["alerts"] as? [[String: Any]])?.first?["labels"] as? [String: Any])?["alertname"] as? String == "trading-halted"
            }
        }
        try await cluster.waitUntil("the webhook has the resolve", timeout: .seconds(15)) { halts().count >= 2 }
        let hooks = halts()
        // The webhook takes every severity: the leader change (info) reached it as well.
        let classes = Set(webhook.received.compactMap { $0.json }.compactMap { hook in
            ((hook["alerts"] as? [[String: Any]])?.first?["labels"] as? [String: Any])?["alertname"] as? String
        })
        #expect(classes.contains("leader-changed"), "\(classes)")
        // And, with `trades: true`, the trade notifications: approvals and the operator's fill.
        #expect(classes.contains("trade-approved") && classes.contains("trade-filled"), "\(classes)")
        #expect(hooks.map { $0["status"] as? String } == ["firing", "resolved"], "\(hooks)")
        let fingerprints = Set(hooks.compactMap { (($0["alerts"] as? [[String: Any]])?.first?["fingerprint"] as? String) })
        #expect(fingerprints.count == 1, "the trigger and its resolve are one incident")
        await pagerDuty.stop()
        await webhook.stop()
        try cluster.start(first)
        try await Self.settle(cluster, leader: leader)
        #expect(try await cluster.venueDuplicates().isEmpty)
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            let order = try #require(try await cluster.orders(id).first { $0.clOrdId == open.clOrdId })
            #expect(order.status == "filled" && order.text?.contains("resolved by admin (admin)") == true, "n\(id): \(order)")
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
    }
}

extension TradingProcessTests {
    /// A follower's journal breaks on disk while it runs. Its own background verification finds
    /// it, it says so to its peers, and the leader pages it under the follower's name; after the
    /// runbook's cure (stop it, move its data directory aside, start it empty) the next check
    /// passes and the leader resolves the page under the same key.
    @Test func aFollowersBrokenJournalIsPagedByTheLeaderFromTheFollowersOwnWordAndResolvedOnceItIsRebuilt() async throws {
        let pagerDuty = AlertReceiver(.pagerDuty(eventsPerMinute: 120))
        try await pagerDuty.start()
        let secrets = try Self.routingKeyDirectory()
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        let cluster = try TradingCluster(
            options: Self.options {
                $0.symbols = ["AAPL"]
                $0.journalVerifyIntervalSeconds = 1
                $0.extraConfig = Self.pagerDutySection(secrets, pagerDuty)
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        let follower = try #require(cluster.ids.first { $0 != leader })
        /// (dedup_key, event_action, summary) of every journal event PagerDuty took, in order.
        @Sendable func journalEvents() -> [(key: String, action: String, summary: String)] {
            pagerDuty.received.compactMap { $0.json }.compactMap { json in
                guard let key = json["dedup_key"] as? String, key.contains("/journal-verify-failed/") else { return nil }
                let summary = (json["payload"] as? [String: Any])?["summary"] as? String ?? ""
                return (key, json["event_action"] as? String ?? "", summary)
            }
        }
        // Healthy journals verify clean: a few rounds of checks page nothing.
        try await Task.sleep(for: .seconds(4))
        #expect(journalEvents().isEmpty, "\(journalEvents())")
        try RaftJournal(directory: cluster.replicas[follower]!.dataDirectory).corruptEntryForTesting(at: 2)
        try await cluster.waitUntil("the leader pages the follower's broken journal", timeout: .seconds(30)) {
            journalEvents().contains { $0.action == "trigger" }
        }
        let trigger = try #require(journalEvents().first)
        #expect(trigger.key.contains("/journal-verify-failed/n\(follower)#"), "\(trigger)")
        #expect(trigger.summary.contains("journal verification failed on n\(follower): chain broken at entry 2"), "\(trigger)")
        #expect(journalEvents().allSatisfy { $0.key == trigger.key }, "only the broken replica: \(journalEvents())")

        // The runbook's cure: stop it, move its data directory aside, start it empty.
        cluster.kill9(follower)
        let data = cluster.replicas[follower]!.dataDirectory
        try FileManager.default.moveItem(atPath: data, toPath: data + ".broken")
        try cluster.start(follower)
        try await cluster.waitUntil("the page is resolved under its key", timeout: .seconds(60)) {
            journalEvents().contains { $0.action == "resolve" && $0.key == trigger.key }
        }
        // One incident: a trigger may repeat only under its own key (a leader that died before
        // journaling the receiver's answer leaves it to the next).
        #expect(Set(journalEvents().filter { $0.action == "trigger" }.map(\.key)) == [trigger.key], "\(journalEvents())")
        await pagerDuty.stop()
    }

    /// A failover's incidents land seconds apart (the leader change at once, the dead leader
    /// unreachable 10 s later); a webhook sink with a 25 s group window gets them as one
    /// Alertmanager group, and the grouped delivery is journaled for each.
    @Test func aFailoversBurstReachesAGroupingWebhookAsOneAlertmanagerGroup() async throws {
        let webhook = AlertReceiver(.alertmanager)
        try await webhook.start()
        let cluster = try TradingCluster(
            options: Self.options {
                $0.symbols = ["AAPL"]
                $0.extraConfig = """
                    alerts:
                      webhook:
                        url: \(webhook.url)/alerts
                        group_window_ms: 25000
                    """
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        cluster.kill9(first)
        /// The alerts (alertname, key) of each body the webhook took, in order.
        @Sendable func bodies() -> [[(name: String, key: String)]] {
            webhook.received.compactMap { $0.json }.map { hook in
                ((hook["alerts"] as? [[String: Any]]) ?? []).compactMap { alert in
                    guard let labels = alert["labels"] as? [String: Any], let name = labels["alertname"] as? String,
                        let key = labels["key"] as? String
                    else { return nil }
                    return (name, key)
                }
            }
        }
        // The change is news at once; the dead leader is unreachable 10 s later: one group. (On
        // a loaded machine more may join it, a second election's change among them.)
        try await cluster.waitUntil("the webhook takes the failover's burst as one group", timeout: .seconds(90)) {
            bodies().contains { body in body.contains { $0.name == "leader-changed" } && body.contains { $0.name == "replica" } }
        }
        let burst = try #require(bodies().first { body in body.contains { $0.name == "replica" } })
        #expect(burst.contains { $0.name == "leader-changed" }, "\(bodies())")
        // `GET /alerts` on the leader: each event of the group journaled as delivered.
        try await cluster.waitUntil("each event of the group is journaled as delivered", timeout: .seconds(20)) {
            guard let leader = await cluster.leader(),
                let (status, body) = try? await cluster.get("\(cluster.replicas[leader]!.adminURL)/alerts"), status == 200,
                let view = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            else { return false }
            let delivered = ((view["recent"] as? [[String: Any]]) ?? []).filter { entry in
                ((entry["deliveries"] as? [[String: Any]]) ?? []).contains {
                    $0["sink"] as? String == "webhook" && $0["status"] as? String == "delivered"
                }
            }
            return Set(delivered.compactMap { $0["key"] as? String }).isSuperset(of: burst.map(\.key))
        }
        await webhook.stop()
    }

    /// Against a venue that asks every session for its Password(554): the replicas log on with
    /// the one from `venue.password_file` and trade, and no log line of any process holds it.
    @Test func sessionsLogOnWithThePasswordFileAndNoLogShowsIt() async throws {
        let secret = "pw-\(UInt64.random(in: 1...UInt64.max))"
        let cluster = try TradingCluster(options: Self.options { $0.symbols = ["AAPL"]; $0.logonPassword = secret; $0.logLevel = "debug" })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("a fill at the venue", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 1
        }
        try await Self.settle(cluster, leader: leader)
        let sessions = try await cluster.venueStatistics().sessions
        #expect((sessions[TradingCluster.session]?.logons ?? 0) >= 1, "\(sessions)")
        await cluster.stopReplicas()
        var logonsLogged = 0
        for name in cluster.ids.map({ "n\($0).log" }) + ["venue.log"] {
            let text = try String(contentsOfFile: "\(cluster.directory)/\(name)", encoding: .utf8)
            #expect(!text.contains(secret), "\(name) shows the logon password")
            // At debug level every session-level message sent is logged: the Logons are there, redacted.
            if text.contains("554=***") && text.contains("553=baton-n") { logonsLogged += 1 }
        }
        // Only the leader logs on to the cluster's one session (a later leader would too).
        #expect(logonsLogged >= 1, "the leader logged its Logon, with the password redacted")
    }
}

extension TradingProcessTests {
    /// All replicas read the same feed and the same broker: a poison value there must not stop
    /// any of them (issue 10). A feed line whose price overflows, then an ExecutionReport whose
    /// AvgPx cannot be represented, hit a running cluster; it keeps its leader and trades on.
    @Test func aHostileFeedLineAndExecutionReportDoNotStopTheCluster() async throws {
        let cluster = try TradingCluster(options: Self.options { $0.symbols = ["AAPL"] })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        try await cluster.waitUntil("a first fill", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= 1
        }
        let (feedStatus, _) = try await cluster.post(
            "\(cluster.venueURL)/admin/feed/inject", body: "{\"line\": \"T,1,AAPL,999999999999999,1,1,1,0\"}")
        #expect(feedStatus == 200)
        let order = try #require(try await cluster.orders(leader).last)
        let fields = [
            ["37", "O-HOSTILE"], ["11", order.clOrdId], ["17", "E-HOSTILE"], ["150", "F"], ["39", "2"], ["55", "AAPL"],
            ["54", "1"], ["151", "0"], ["14", "100"], ["6", "99999999999999999"], ["32", "100"],
            ["31", "99999999999999999"],
        ]
        let body = try JSONSerialization.data(withJSONObject: ["session": TradingCluster.session, "msgType": "8", "fields": fields])
        let (reportStatus, _) = try await cluster.post(
            "\(cluster.venueURL)/admin/fix/inject", body: String(decoding: body, as: UTF8.self))
        #expect(reportStatus == 200)
        let fillsBefore = try await cluster.venueStatistics().fills
        try await cluster.waitUntil("trading goes on after the poison", timeout: .seconds(30)) {
            ((try? await cluster.venueStatistics())?.fills ?? 0) >= fillsBefore + 3
        }
        #expect(cluster.ids.allSatisfy { cluster.isRunning($0) }, "every replica still runs\n\(cluster.logs())")
        #expect(await cluster.tradingLeader() == leader, "the leader kept its lease and its phase")
        for id in cluster.ids {
            let view = try #require(await cluster.trading(id))
            #expect(view.feed.sources.contains { $0.decodeErrors >= 1 }, "n\(id) counted the poison line")
        }
        let log = try String(contentsOfFile: cluster.replicas[leader]!.logPath, encoding: .utf8)
        #expect(log.contains("ExecutionReport refused at the boundary") && log.contains("LastPx(31)=99999999999999999 is not a price"))
        #expect(!(try await cluster.orders(leader).contains { $0.cumQty > $0.quantity }), "nothing of it was journaled")
        try await Self.settle(cluster, leader: leader)
        let venuePositions = try await cluster.venuePositions()
        for id in cluster.ids {
            #expect(try await cluster.positions(id).filter { $0.value != 0 } == venuePositions, "n\(id) positions")
        }
    }
}

extension TradingProcessTests {
    /// One session for the cluster: the reports of an order the dead leader wrote went to the
    /// session, and the next leader, resuming the inbound sequence from the journal, gets them
    /// re-sent (PossDupFlag=Y). Even with status requests refused, the order is settled once,
    /// the halt lifts on its own, and nothing is sent twice.
    @Test func theNextLeaderGetsTheDeadLeadersReportsResentOnTheSharedSession() async throws {
        let cluster = try TradingCluster(
            options: Self.options { $0.symbols = ["AAPL"]; $0.venueRejectsStatusRequests = true })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        try await cluster.armKill(first, when: "after-send")
        try await cluster.waitUntil("the armed leader killed itself", timeout: .seconds(30)) { !cluster.isRunning(first) }
        let leader = try await cluster.waitForTradingLeader(timeout: .seconds(30))
        #expect(leader != first)
        let written = try #require(try await cluster.venueOrders().last)
        try await cluster.waitUntil("the dead leader's order is settled in the journal", timeout: .seconds(20)) {
            (try? await cluster.orders(leader))?.first { $0.clOrdId == written.clOrdID }?.status == "filled"
        }
        #expect(try await cluster.venueOrders().filter { $0.clOrdID == written.clOrdID }.count == 1, "sent once")
        #expect(try await cluster.venueDuplicates().isEmpty)
        let log = try String(contentsOfFile: cluster.replicas[leader]!.logPath, encoding: .utf8)
        #expect(log.contains("taking over the broker session"))
        try cluster.start(first)
        try await Self.settle(cluster, leader: leader)
    }
}

extension TradingProcessTests {
    /// The page survives its leader: HALTED on the leader raises it; PagerDuty takes the event
    /// and holds its 202 while the leader is SIGKILLed; the next leader finds the delivery
    /// pending in the journal and sends it again under the same key; the resolve follows once
    /// an operator settles the order. PagerDuty sees one incident, never a second key.
    @Test func aPageInFlightWhenItsLeaderDiesIsDeliveredByTheNextUnderTheSameKey() async throws {
        let pagerDuty = AlertReceiver(.pagerDuty(eventsPerMinute: 120))
        try await pagerDuty.start()
        let secrets = try Self.routingKeyDirectory()
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        let cluster = try TradingCluster(
            options: Self.options {
                $0.symbols = ["AAPL"]
                $0.venueRejectsStatusRequests = true
                $0.venueGapFillsResends = true
                $0.extraConfig = Self.pagerDutySection(secrets, pagerDuty)
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let first = try await cluster.waitForTradingLeader()
        try await cluster.armKill(first, when: "after-send")
        try await cluster.waitUntil("the armed leader killed itself", timeout: .seconds(30)) { !cluster.isRunning(first) }
        // From here PagerDuty takes each event and answers 8 s later (the sender waits up to 10 s).
        pagerDuty.holdAnswers(.seconds(8))
        let (halted, _) = try await cluster.waitForHaltedLeader()
        try cluster.start(first)
        /// (dedup_key, event_action) of every halt event PagerDuty took, in order.
        @Sendable func haltedEvents() -> [(key: String, action: String)] {
            pagerDuty.received.compactMap { $0.json }.compactMap { json in
                guard let key = json["dedup_key"] as? String, key.contains("/trading-halted#") else { return nil }
                return (key, json["event_action"] as? String ?? "")
            }
        }
        try await cluster.waitUntil("PagerDuty has taken the halt's trigger", timeout: .seconds(20)) { !haltedEvents().isEmpty }
        // Its answer is still held: the leader has journaled no outcome. Kill it now.
        let key = try #require(haltedEvents().first).key
        cluster.kill9(halted)
        pagerDuty.holdAnswers(nil)
        try await cluster.waitUntil("the replica that restarted is back", timeout: .seconds(20)) {
            await cluster.trading(first) != nil
        }
        // The next leader halts on the same order and carries on from the outbox: the pending
        // trigger again, same key; no second incident.
        try await cluster.waitUntil("the next leader re-delivers the pending trigger", timeout: .seconds(40)) {
            haltedEvents().filter { $0.action == "trigger" }.count >= 2
        }
        let (successor, _) = try await cluster.waitForHaltedLeader()
        #expect(successor != halted)
        let triggers = haltedEvents().filter { $0.action == "trigger" }
        #expect(Set(triggers.map(\.key)) == [key], "one key for the incident: \(triggers)")
        // `batonctl alerts` on the successor: the incident is open and its delivery done.
        let admin = cluster.ids.map { cluster.replicas[$0]!.adminURL }.joined(separator: ",")
        /// batonctl against the leader; asked again while an election leaves none (a loaded
        /// machine can cost the fresh leader its term), never after an answer.
        func batonctl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            var last: (status: Int32, output: String) = (0, "")
            for _ in 0..<20 {
                last = try BatonctlTests.run(arguments + ["--admin", admin], environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
                guard last.status != 0, last.output.contains("no leader right now") else { return last }
                try await Task.sleep(for: .milliseconds(500))
            }
            return last
        }
        try await cluster.waitUntil("the successor journaled the delivery", timeout: .seconds(15)) {
            let listed = try? BatonctlTests.run(["alerts", "--admin", admin], environment: ["BATON_ADMIN_TOKEN": TradingCluster.token])
            return listed?.output.contains(key) == true && listed?.output.contains("delivered") == true
                && listed?.output.contains("PENDING DELIVERIES (0 events)") == true
        }
        let listed = try await batonctl(["alerts"])
        #expect(listed.output.contains("OPEN INCIDENTS") && listed.output.contains("trading HALTED"), "\(listed.output)")
        #expect(listed.output.contains("pagerduty (error and above)"), "\(listed.output)")

        // The operator settles the order: trading resumes and the resolve goes out, same key.
        let open = try #require(try await cluster.orders(successor).first { !["filled", "canceled", "rejected", "expired", "not-sent"].contains($0.status) })
        let truth = try #require(try await cluster.venueOrders().first { $0.clOrdID == open.clOrdId })
        let quantity = truth.cumQty.split(separator: ".").first.map(String.init) ?? truth.cumQty
        let resolve = try await batonctl(
            ["orders", "resolve", open.clOrdId, "--filled", "\(quantity)@\(truth.avgPx)", "--reason", "venue blotter"])
        #expect(resolve.status == 0, "\(resolve.output)")
        try await cluster.waitUntil("the page is resolved at PagerDuty", timeout: .seconds(20)) {
            pagerDuty.incidents[key] == false
        }
        let halts = Set(pagerDuty.incidents.keys.filter { $0.contains("/trading-halted#") })
        #expect(halts == [key], "the receiver saw one halt incident: \(pagerDuty.incidents)")
        let resolves = haltedEvents().filter { $0.action == "resolve" }
        #expect(!resolves.isEmpty && resolves.allSatisfy { $0.key == key }, "\(resolves)")
        // The replica killed while it led was paged as unreachable by its successor.
        try await cluster.waitUntil("the dead leader is paged as unreachable", timeout: .seconds(30)) {
            pagerDuty.incidents.keys.contains { $0.contains("/replica/n\(halted)#") }
        }
        // `batonctl alerts test`: straight to the receiver and back, leaving no incident open;
        // a sink that is not configured is named; a receiver's refusal fails the command.
        let test = try await batonctl(["alerts", "test", "pagerduty"])
        #expect(test.status == 0 && test.output.contains("pagerduty: delivered (trigger and resolve"), "\(test.output)")
        let testKeys = pagerDuty.incidents.filter { $0.key.contains("/test/n") }
        #expect(testKeys.count == 1 && testKeys.values.allSatisfy { !$0 }, "\(pagerDuty.incidents)")
        let missing = try await batonctl(["alerts", "test", "slack"])
        #expect(missing.status != 0 && missing.output.contains("no slack sink is configured"), "\(missing.output)")
        // Only the test events are refused: the leader's own deliveries go on beside them.
        pagerDuty.refuseBodies(containing: "/test/n")
        let refused = try await batonctl(["alerts", "test", "pagerduty"])
        #expect(refused.status != 0 && refused.output.contains("refused"), "\(refused.output)")
        // The admin API availability SLI counted those answers: the 502 of the refused test is
        // a bad one, the rest good.
        let metrics = try await cluster.get("\(cluster.replicas[successor]!.adminURL)/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        func count(_ outcome: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix("baton_admin_requests_total{") && $0.contains("outcome=\"\(outcome)\"") }
                .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0
        }
        #expect(count("good") >= 1 && count("bad") >= 1, "\(text.split(separator: "\n").filter { $0.contains("admin_requests") })")
        await pagerDuty.stop()
    }
}
