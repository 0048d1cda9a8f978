@_spi(Testing) import RaftCore
import Testing

@Suite("Snapshots and log compaction")
struct SnapshotTests {
    @Test("a follower behind the compacted log gets the snapshot, restores it, and catches up")
    func laggingFollowerInstallsSnapshot() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        network.isolate(3)
        for i in 0..<20 { try network.propose([UInt8(i)], on: 1) }
        network.stabilize()

        let through = network[1].appliedIndex
        try #require(through == network[1].lastIndex)
        let data: [UInt8] = [0xAB, 0xCD, 0xEF]
        try network.compact(1, through: through, data: data)
        #expect(network[1].snapshotIndex == through)
        #expect(network[1].firstIndex == through + 1)
        #expect(network.storage[1]!.snapshot?.metadata.last.index == through)
        #expect(network.storage[1]!.entries.isEmpty)

        network.heal()
        let caughtUp = network.tick(until: { network[3].lastIndex == network[1].lastIndex }, maxTicks: 50)
        #expect(caughtUp != nil)
        #expect(network.sent.contains { $0.to == 3 && $0.installSnapshot != nil })
        let restored = try #require(network.restoredSnapshots[3]?.only)
        #expect(restored.data == data)
        #expect(restored.metadata.last == LogPosition(term: network[1].term, index: through))
        #expect(network[3].snapshotIndex == through)
        #expect(network.storage[3]!.snapshot == restored)
        // The snapshot stands in for entries 2…through; none of them was applied one by one.
        #expect(network.applied[3]!.allSatisfy { $0.index == 1 || $0.index > through })

        // From there it follows the log as usual.
        let position = try network.propose([0x77], on: 1)
        network.stabilize()
        #expect(network[3].commitIndex >= position.index)
        #expect(network.appliedCommands(3) == [[0x77]])
        #expect(network.log(3) == network.log(1))

        // A restart from storage keeps the snapshot, the entries after it and the term.
        let before = network[3]
        let log = network.log(3)
        network.restart(3)
        #expect(network[3].snapshotIndex == through)
        #expect(network[3].term == before.term)
        #expect(network.log(3) == log)
        #expect(network[3].appliedIndex >= through)
    }

    @Test("compaction is refused beyond what is applied or within what is already compacted")
    func compactionErrors() throws {
        let network = Network(ids: [1, 2, 3])
        try #require(network.elect(1))
        for i in 0..<3 { try network.propose([UInt8(i)], on: 1) }
        network.stabilize()
        let applied = network[1].appliedIndex
        try #require(applied >= 3)

        #expect(throws: CompactionError.notApplied(requested: applied + 1, applied: applied)) {
            try network.compact(1, through: applied + 1, data: [])
        }
        try network.compact(1, through: applied - 1, data: [1])
        #expect(throws: CompactionError.alreadyCompacted(requested: applied - 1, snapshot: applied - 1)) {
            try network.compact(1, through: applied - 1, data: [2])
        }
        // The entry after the snapshot is still there, and so is everything the leader needs.
        #expect(network[1].entry(at: applied)?.payload == .command([2]))
        #expect(network[1].term(at: applied - 1) == network[1].term)
    }
}
