@testable import BatonDaemon
import Logging
import RaftCore
import Synchronization
import Testing

/// A journal whose disk never finishes a write: nothing commits, so every commit wait can only
/// end by its deadline (a leader that lost its quorum looks the same to the caller).
private final class StalledStorage: RaftStorage {
    let (durableWrites, continuation) = AsyncThrowingStream<StorageWriteID, any Error>.makeStream()
    func submit(_ write: StorageWrite) {}
    func applyCommitted(_ entries: [LogEntry]) async throws {}
    func restoreSnapshot(_ snapshot: Snapshot) throws {}
}

private final class SilentNetwork: RaftNetwork {
    let (inbound, continuation) = AsyncStream<RaftMessage>.makeStream()
    func send(_ message: RaftMessage) {}
    func linkStatus() async -> [PeerLinkStatus] { [] }
}

/// A journal that makes every write durable at once but applies committed entries only once
/// `open` is set: a follower whose apply transaction cannot keep up.
private final class GatedApplyStorage: RaftStorage {
    let (durableWrites, acknowledgements) = AsyncThrowingStream<StorageWriteID, any Error>.makeStream()
    let open = Mutex(false)
    let applied = Mutex(0)
    func submit(_ write: StorageWrite) { acknowledgements.yield(write.id) }
    func applyCommitted(_ entries: [LogEntry]) async throws {
        while !open.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
        applied.withLock { $0 += entries.count }
    }
    func restoreSnapshot(_ snapshot: Snapshot) throws {}
}

@Suite("Consensus loop bounds") struct ConsensusLoopBoundsTests {
    static func loop() -> ConsensusLoop {
        let origin = ContinuousClock.now
        let node = RaftNode(
            id: 1, settings: RaftSettings(), bootstrap: ClusterConfiguration(voters: [1]),
            clock: { MonotonicInstant(nanoseconds: UInt64(max(0, (ContinuousClock.now - origin).nanosecondsClamped))) },
            random: SplitMix64(seed: 1))
        var logger = Logger(label: "test.loop")
        logger.logLevel = .critical
        return ConsensusLoop(
            node: node, storage: StalledStorage(), network: SilentNetwork(), logger: logger,
            metrics: DaemonMetrics(node: 1))
    }

    /// A single voter elects itself once its election timeout has passed.
    static func waitForLeadership(_ loop: ConsensusLoop) async throws {
        await loop.waitUntilStarted()
        for _ in 0..<300 where await loop.health().role != .leader {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await loop.health().role == .leader)
    }

    @Test func commitWaitsAbandonedByTheirDeadlineLeaveNothingBehind() async throws {
        let loop = Self.loop()
        let run = Task { try await loop.run() }
        defer { run.cancel() }
        try await Self.waitForLeadership(loop)
        for _ in 0..<20 {
            await #expect {
                _ = try await withDeadline(.milliseconds(20)) {
                    try await loop.propose([[1, 2, 3]], waitForCommit: true)
                }
            } throws: { error in
                if case ConsensusError.timedOut = error { return true } else { return false }
            }
        }
        var left = await loop.commitWaiterCount
        for _ in 0..<200 where left > 0 {
            try await Task.sleep(for: .milliseconds(10))
            left = await loop.commitWaiterCount
        }
        #expect(left == 0, "every abandoned wait was taken out")
    }

    @Test func aProposalOverTheQueueBoundIsShedWithNothingAppended() async throws {
        let loop = Self.loop()
        let run = Task { try await loop.run() }
        defer { run.cancel() }
        try await Self.waitForLeadership(loop)
        let before = await loop.clusterView().lastIndex
        await #expect {
            _ = try await loop.propose(
                Array(repeating: [7], count: ConsensusLoop.maxPendingCommands + 1), waitForCommit: false)
        } throws: { error in
            guard case ConsensusError.overloaded(let why) = error else { return false }
            return why.contains("\(ConsensusLoop.maxPendingCommands)")
        }
        #expect(await loop.clusterView().lastIndex == before)
        // A proposal within the bound is taken.
        _ = try await loop.propose([[7]], waitForCommit: false)
    }

    /// A follower cannot shed what its leader commits, so past the apply bound it stops taking
    /// peer messages (they wait in the transport, bounded there) until the apply catches up;
    /// nothing is lost, and what waited is taken afterwards.
    @Test func aFollowerBehindOnApplyHoldsPeerMessagesUntilItCatchesUp() async throws {
        let origin = ContinuousClock.now
        let node = RaftNode(
            id: 2, settings: RaftSettings(), bootstrap: ClusterConfiguration(voters: [1, 2]),
            clock: { MonotonicInstant(nanoseconds: UInt64(max(0, (ContinuousClock.now - origin).nanosecondsClamped))) },
            random: SplitMix64(seed: 2))
        var logger = Logger(label: "test.loop")
        logger.logLevel = .critical
        let storage = GatedApplyStorage()
        let network = SilentNetwork()
        let metrics = DaemonMetrics(node: 2)
        let limit = 100
        let loop = ConsensusLoop(
            node: node, storage: storage, network: network, logger: logger, metrics: metrics,
            applyBacklogLimit: limit)
        let run = Task { try await loop.run() }
        defer { run.cancel() }
        await loop.waitUntilStarted()

        func append(_ indexes: ClosedRange<LogIndex>, round: UInt64) -> RaftMessage {
            let entries = indexes.map { LogEntry(term: 1, index: $0, payload: .command([UInt8(truncatingIfNeeded: $0)])) }
            return RaftMessage(
                from: 1, to: 2, term: 1,
                body: .appendEntries(
                    AppendEntries(
                        previous: LogPosition(term: indexes.lowerBound == 1 ? 0 : 1, index: indexes.lowerBound - 1),
                        entries: entries, leaderCommit: indexes.upperBound, round: round)))
        }
        // 150 committed entries: more than the limit wait for the (closed) apply.
        network.continuation.yield(append(1...150, round: 1))
        var held = await loop.isHoldingInbound
        for _ in 0..<300 where await loop.clusterView().lastIndex < 150 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await loop.clusterView().lastIndex == 150)
        network.continuation.yield(append(151...160, round: 2))
        for _ in 0..<300 where !held {
            try await Task.sleep(for: .milliseconds(10))
            held = await loop.isHoldingInbound
        }
        #expect(held, "the next message is held while 150 > \(limit) entries wait")
        try await Task.sleep(for: .milliseconds(100))
        #expect(await loop.clusterView().lastIndex == 150, "nothing past the held message was taken")
        #expect(storage.applied.withLock { $0 } == 0)

        storage.open.withLock { $0 = true }
        for _ in 0..<300 where await loop.clusterView().lastIndex < 160 || storage.applied.withLock({ $0 }) < 160 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await loop.clusterView().lastIndex == 160, "the held message was taken once the apply caught up")
        #expect(storage.applied.withLock { $0 } == 160, "every committed entry was applied, none lost")
        #expect(await !loop.isHoldingInbound)
        let exposition = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(exposition.contains("baton_apply_backpressure_holds_total{node=\"2\"} 1"), "\(exposition)")
    }
}
