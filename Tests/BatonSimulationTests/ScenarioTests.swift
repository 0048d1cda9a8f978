@_spi(Testing) import BatonSimulation
@_spi(Testing) import RaftCore
import Testing

/// Scripted corners: the same world and checker as the seeded runs, with the faults chosen by hand.
@Suite struct ScenarioTests {
    static func leads(_ id: NodeID) -> @Sendable ([NodeView]) -> Bool {
        { views in views[Int(id.rawValue) - 1].role == .leader }
    }

    static func leadsWithCommitInTerm(_ id: NodeID) -> @Sendable ([NodeView]) -> Bool {
        { views in
            let v = views[Int(id.rawValue) - 1]
            return v.role == .leader && v.commitIndex == v.lastLog.index && v.lastLog.term == v.term
        }
    }

    /// Raft figure 8 with five servers. S1 leads and stores X on S2 only; S5 wins the next term
    /// with an entry of its own at X's index that goes nowhere; S1 wins again and copies X to S3,
    /// so X is on a majority — but X is of an old term. A correct leader does not count it as
    /// committed; a defective one does, and S5 then wins with S3's and S4's votes and overwrites X.
    static func figure8(defect: RaftDefect?) -> ScenarioOutcome {
        var options = SimulationOptions()
        options.voters = 5
        options.learners = 0
        options.compactionInterval = 100_000
        options.traceLength = 60
        options.settings.maxBytesPerAppend = 1  // one entry per append, as the figure draws it
        var world = Simulation(seed: 8, options: options, defect: defect)
        let all: [NodeID] = [1, 2, 3, 4, 5]
        let oneToTwoOnly: [(from: NodeID, to: NodeID)] = [3, 4, 5].flatMap { [(from: 1, to: $0), (from: $0, to: 1)] }
        return world.run([
            // (a) S1 leads and replicates X to S2 only.
            .star("only S1 can win", center: 1, among: all),
            .runUntil("S1 leads and committed its no-op", timeout: .seconds(10), leadsWithCommitInTerm(1)),
            .heal("only S1 can win"),
            .block("S1 reaches S2 only", oneToTwoOnly),
            .propose(count: 1),
            .runUntil("S2 holds X", timeout: .seconds(2)) { v in v[1].lastLog == v[0].lastLog },
            // (b) S1 crashes; S5 wins with S3 and S4 and appends at X's index, sending nothing.
            .crash(1),
            .heal("S1 reaches S2 only"),
            .isolate("S2 out", 2, from: all),
            .star("only S5 can win", center: 5, among: [3, 4, 5]),
            .drop("S5 sends no entries") { m in
                if case .appendEntries = m.body { return m.from == 5 }
                return false
            },
            .runUntil("S5 leads", timeout: .seconds(10), leads(5)),
            .run(.milliseconds(50)),  // its entry at X's index becomes durable
            .crash(5),
            .heal("only S5 can win"),
            .heal("S5 sends no entries"),
            // (c) S1 returns and wins with S2 and S3; X reaches S3 but S1's own entries do not.
            .restart(1),
            .heal("S2 out"),
            .isolate("S4 out", 4, from: all),
            .star("only S1 can win again", center: 1, among: [1, 2, 3]),
            .truncateAppends("S3 gets no entry of S1's new term", where: { $0.from == 1 && $0.to == 3 }) { entry in
                entry.term > 1
            },
            .runUntil("S1 leads again and S3 holds X", timeout: .seconds(10)) { v in
                v[0].role == .leader && v[2].lastLog.index == v[0].lastLog.index - 1
            },
            .run(.milliseconds(200)),
            // (d) S1 crashes; S5 returns and wins with S3 and S4, whose logs end in X's old term.
            .crash(1),
            .crash(2),
            .heal("only S1 can win again"),
            .heal("S3 gets no entry of S1's new term"),
            .heal("S4 out"),
            .star("only S5 can win again", center: 5, among: [3, 4, 5]),
            .restart(5),
            .runUntil("S5 leads again", timeout: .seconds(10), leads(5)),
            .run(.milliseconds(300)),
        ])
    }

    @Test func figure8HoldsWithTheCurrentTermCommitRule() {
        let outcome = Self.figure8(defect: nil)
        #expect(
            outcome.violation == nil,
            "\(outcome.violation.map(\.description) ?? "")\n\(outcome.trace.joined(separator: "\n"))")
        #expect(outcome.stuckAt == nil, "\(outcome.stuckAt ?? "")\n\(outcome.trace.joined(separator: "\n"))")
    }

    @Test func figure8CatchesCommittingOldTermEntriesByCounting() throws {
        let outcome = Self.figure8(defect: .commitsOldTermEntriesByCounting)
        let violation = try #require(
            outcome.violation,
            "the checker missed the figure 8 overwrite; stuck: \(outcome.stuckAt ?? "no")\n\(outcome.trace.joined(separator: "\n"))"
        )
        let property = violation.property
        #expect(property == .leaderCompleteness || property == .stateMachineSafety, "\(violation)")
    }

    /// A follower cut off from the leader (but not from the others) campaigns. Voters that still
    /// hear the leader must ignore it; if they vote anyway, two leases overlap.
    static func cutFollower(defect: RaftDefect?) -> ScenarioOutcome {
        var options = SimulationOptions()
        options.voters = 3
        options.learners = 0
        options.traceLength = 60
        var world = Simulation(seed: 3, options: options, defect: defect)
        return world.run([
            .drop("only S1 campaigns") { m in
                if case .requestVote = m.body { return m.from != 1 }
                return false
            },
            .runUntil("S1 leads with a lease", timeout: .seconds(10)) { v in v[0].holdsLease },
            .heal("only S1 campaigns"),
            .block("S1 and S3 cut", [(from: 1, to: 3), (from: 3, to: 1)]),
            .runUntil("S3 leads", timeout: .seconds(3), leads(3)),
            .run(.seconds(1)),
        ])
    }

    @Test func cutFollowerCannotDisruptALeaderThatHoldsItsQuorum() {
        let outcome = Self.cutFollower(defect: nil)
        #expect(outcome.violation == nil, "\(outcome.violation.map(\.description) ?? "")")
        // S2 still hears S1, so S3 never collects a quorum: the leader is not disrupted.
        #expect(outcome.stuckAt != nil, "S3 should not have been able to win")
    }

    @Test func cutFollowerCatchesVotesDuringLeaderLease() throws {
        let outcome = Self.cutFollower(defect: .votesDuringLeaderLease)
        let violation = try #require(
            outcome.violation, "stuck: \(outcome.stuckAt ?? "no")\n\(outcome.trace.joined(separator: "\n"))")
        #expect(violation.property == .leaseExclusivity, "\(violation)")
    }
}
