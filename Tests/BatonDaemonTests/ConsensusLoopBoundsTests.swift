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
}
