import BatonJournal
import RaftCore
import Testing

@Suite("GroupCommitWriter")
struct GroupCommitWriterTests {
    @Test func manyConcurrentWritesShareFewTransactions() async throws {
        try await withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory)  // durability .full: a real fsync per commit
            let commits = Locked<[JournalWriteStats]>([])
            let writer = GroupCommitWriter(journal: journal) { stats in commits.withLock { $0.append(stats) } }
            let total: UInt64 = 1000
            // Eight tasks submit at once. Ids and log indexes must follow submission order, so each
            // takes the next number and submits under one lock; submit() itself never blocks.
            let next = Locked<UInt64>(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<(total / 8) {
                            try next.withLock { n in
                                n += 1
                                try writer.submit(
                                    StorageWrite(
                                        id: StorageWriteID(n),
                                        hardState: HardState(term: 1, votedFor: 1, commit: n - 1),
                                        entries: [command(1, n)]
                                    )
                                )
                            }
                        }
                    }
                }
                var acknowledged: [StorageWriteID] = []
                for try await id in writer.acknowledgements {
                    acknowledged.append(id)
                    if id == StorageWriteID(total) { writer.close() }
                }
                try await group.waitForAll()
                #expect(acknowledged.last == StorageWriteID(total))
                #expect(
                    zip(acknowledged, acknowledged.dropFirst()).allSatisfy { $0 < $1 }, "acknowledgements out of order")
            }
            let stats = commits.withLock { $0 }
            #expect(stats.map(\.writes).reduce(0, +) == Int(total))
            #expect(stats.map(\.entries).reduce(0, +) == Int(total))
            #expect(stats.allSatisfy { $0.transactionDuration > .zero })
            // Group commit: far fewer transactions (fsyncs) than writes.
            #expect(stats.count * 5 <= Int(total), "\(stats.count) transactions for \(total) writes")
            #expect(stats.contains { $0.writes > 1 })
            let state = try journal.load().state
            #expect(state.entries.count == Int(total))
            #expect(state.hardState.commit == total - 1)
            #expect(try journal.verify().isIntact)
        }
    }

    @Test func aFailedTransactionIsNeverAcknowledged() async throws {
        try await withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let writer = GroupCommitWriter(journal: journal)
            var acks = writer.acknowledgements.makeAsyncIterator()
            try writer.submit(StorageWrite(id: 1, entries: commands(term: 1, 1...2)))
            #expect(try await acks.next() == StorageWriteID(1))

            try writer.submit(StorageWrite(id: 2, entries: commands(term: 1, 3...3)))
            try writer.submit(StorageWrite(id: 3, entries: commands(term: 1, 10...11)))  // does not continue the log
            try? writer.submit(StorageWrite(id: 4, entries: commands(term: 1, 12...12)))
            let error = await #expect(throws: JournalError.self) {
                while let id = try await acks.next() {
                    // w2 may commit alone before w3 arrives; w3 and anything after it never may.
                    #expect(id < StorageWriteID(3), "acknowledged \(id) although its transaction failed")
                }
            }
            #expect(error?.kind == .entriesDoNotContinueLog(write: 3, firstIndex: 10, expectedIndex: 4))
            let stopped = try #require(throws: JournalError.self) {
                try writer.submit(StorageWrite(id: 5, entries: [command(1, 4)]))
            }
            guard case .writerStopped = stopped.kind else {
                Issue.record("expected writerStopped, got \(stopped)")
                return
            }
            let entries = try journal.load().state.entries.map(\.index)
            #expect(entries == [1, 2] || entries == [1, 2, 3])
        }
    }

    @Test func idsMustIncrease() throws {
        try withTemporaryDirectory { directory in
            let writer = GroupCommitWriter(journal: try RaftJournal(directory: directory))
            try writer.submit(StorageWrite(id: 5, hardState: HardState(term: 1)))
            let error = try #require(throws: JournalError.self) {
                try writer.submit(StorageWrite(id: 5, hardState: HardState(term: 2)))
            }
            #expect(error.kind == .writeIDOutOfOrder(write: 5, after: 5))
            writer.close()
        }
    }

    @Test func closeDrainsTheQueueFirst() async throws {
        try await withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let writer = GroupCommitWriter(journal: journal)
            for n in 1...50 as ClosedRange<UInt64> {
                try writer.submit(StorageWrite(id: StorageWriteID(n), entries: [command(1, n)]))
            }
            writer.close()
            var last: StorageWriteID?
            for try await id in writer.acknowledgements { last = id }
            #expect(last == StorageWriteID(50))
            #expect(try journal.load().state.entries.count == 50)
            #expect(throws: JournalError.self) { try writer.submit(StorageWrite(id: 51, entries: [command(1, 51)])) }
        }
    }
}
