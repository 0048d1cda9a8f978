import BatonJournal
import RaftCore
import Testing

/// Property: for random sequences of valid writes, grouped into random batches, the journal holds
/// exactly what `DurableState.apply` gives, and its chain verifies. Bad writes slipped into some
/// batches must reject the whole batch and leave the journal as it was.
@Suite("RaftJournal matches DurableState.apply on random write sequences")
struct ReferenceEquivalenceTests {
    @Test(arguments: [1, 7, 42, 2024, 0xBA70] as [UInt64])
    func randomWriteSequences(seed: UInt64) throws {
        try withTemporaryDirectory { directory in
            var workload = SyntheticRaftWorkload(seed: seed)
            var random = SplitMix64(seed: seed ^ 0x5EED)
            var expected = DurableState()
            var shapes = Set<String>()
            do {
                let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
                var written = 0
                while written < 400 {
                    let batch = (0..<(1 + Int(random.next() % 8))).map { _ in workload.next() }
                    for write in batch { shapes.formUnion(Self.shapes(of: write)) }
                    if random.next() % 10 == 0 {
                        // A write that cannot follow: the whole batch must be refused.
                        let after = reference(batch, from: expected)
                        let end = after.entries.last?.index ?? after.snapshot?.metadata.last.index ?? 0
                        let bad = StorageWrite(
                            id: StorageWriteID(999_999), entries: [command(after.hardState.term, end + 2)])
                        #expect(throws: JournalError.self) { try journal.write(batch + [bad]) }
                        #expect(
                            differences(try journal.load().state, expected) == nil,
                            "seed \(seed): a refused batch changed the journal")
                    }
                    let stats = try journal.write(batch)
                    #expect(stats.writes == batch.count)
                    #expect(stats.entries == batch.map(\.entries.count).reduce(0, +))
                    for write in batch { expected.apply(write) }
                    let loaded = try journal.load().state
                    #expect(
                        differences(loaded, expected) == nil,
                        "seed \(seed): journal differs from the reference after \(batch[batch.count - 1].id)")
                    if loaded != expected { return }
                    written += batch.count
                }
                #expect(differences(workload.state, expected) == nil)
            }
            let reopened = try RaftJournal(directory: directory)
            #expect(differences(try reopened.load().state, expected) == nil)
            let verification = try reopened.verify()
            #expect(verification.isIntact, "\(verification)")
            #expect(verification.entriesChecked == expected.entries.count)
            try expectChainRecomputes(directory: directory, state: expected)
            // The sequence must have exercised every write shape, or the property proves less than it says.
            #expect(
                shapes.isSuperset(of: ["append", "truncate", "snapshot", "hard state only", "snapshot+truncate"]),
                "\(shapes)")
        }
    }

    private static func shapes(of write: StorageWrite) -> Set<String> {
        var shapes = Set<String>()
        if !write.entries.isEmpty { shapes.insert("append") }
        if write.truncateFrom != nil { shapes.insert("truncate") }
        if write.snapshot != nil { shapes.insert(write.truncateFrom == nil ? "snapshot" : "snapshot+truncate") }
        if write.hardState != nil && write.entries.isEmpty && write.snapshot == nil && write.truncateFrom == nil {
            shapes.insert("hard state only")
        }
        return shapes
    }
}
