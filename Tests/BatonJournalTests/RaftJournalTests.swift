@_spi(Testing) import BatonJournal
import Foundation
import GRDB
import RaftCore
import Testing

@Suite("RaftJournal: every write shape round-trips and matches DurableState.apply")
struct RaftJournalRoundTripTests {
    /// Writes each of `writes` in its own transaction and checks, after each, that the journal
    /// loads what the reference holds; then reopens and verifies.
    private func expectRoundTrip(_ writes: [StorageWrite], durability: JournalOptions.Durability = .normal) throws {
        try withTemporaryDirectory { directory in
            var expected = DurableState()
            do {
                let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: durability))
                for write in writes {
                    try journal.write([write])
                    expected.apply(write)
                    #expect(try journal.load().state == expected, "after \(write)")
                }
            }
            let reopened = try RaftJournal(directory: directory)
            #expect(try reopened.load().state == expected)
            let verification = try RaftJournal.verify(directory: directory)
            #expect(verification.isIntact, "\(verification)")
            #expect(verification.entriesChecked == expected.entries.count)
            try expectChainRecomputes(directory: directory, state: expected)
        }
    }

    @Test func aCorruptedPageStopsTheJournalAtOpenSayingSo() throws {
        try withTemporaryDirectory { directory in
            do {
                let journal = try RaftJournal(directory: directory)
                let payload = String(repeating: "x", count: 300)
                try journal.write([
                    StorageWrite(
                        id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 0),
                        entries: (1...400).map { command(1, LogIndex($0), payload) })
                ])
            }
            // Garbage over a page in the middle of the file (the WAL was checkpointed on close).
            let path = directory + "/" + RaftJournal.fileName
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            let size = try handle.seekToEnd()
            #expect(size > 16 * 4096, "the journal spans many pages: \(size)")
            try handle.seek(toOffset: 8 * 4096)
            handle.write(Data(repeating: 0xA5, count: 4096))
            try handle.close()
            #expect {
                _ = try RaftJournal(directory: directory)
            } throws: { error in
                let text = "\(error)"
                return text.contains("quick_check") || text.contains("malformed")
            }
        }
    }

    @Test func appendWithHardState() throws {
        try expectRoundTrip([
            StorageWrite(id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 0), entries: [noop(1, 1)]),
            StorageWrite(
                id: 2, hardState: HardState(term: 1, votedFor: 1, commit: 2),
                entries: [
                    command(1, 2), LogEntry(term: 1, index: 3, payload: .membership(.addLearner(4))),
                    LogEntry(term: 1, index: 4, payload: .membership(.promoteLearner(4))),
                    LogEntry(term: 1, index: 5, payload: .membership(.remove(2))),
                    LogEntry(term: 1, index: 6, payload: .command([])),
                    // Addresses with ':' in them (IPv6) survive the text column.
                    LogEntry(term: 1, index: 7, payload: .membership(.addLearner(5, address: "[fd00::5]:7105"))),
                ]
            ),
        ])
    }

    @Test func aSnapshotKeepsTheAddressesOfMembersAddedAtRunTime() throws {
        try expectRoundTrip([
            StorageWrite(
                id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 1), entries: commands(term: 1, 1...3)),
            StorageWrite(
                id: 2, hardState: HardState(term: 2, votedFor: nil, commit: 10),
                snapshot: snapshot(term: 2, index: 10, learners: [4, 5], addresses: [4: "10.0.0.4:7100", 5: "[fd00::5]:7105"]),
                truncateFrom: 11
            ),
        ])
    }

    @Test func truncateAndRewrite() throws {
        try expectRoundTrip([
            StorageWrite(
                id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 2), entries: commands(term: 1, 1...6)),
            StorageWrite(
                id: 2, hardState: HardState(term: 2, votedFor: 2, commit: 2), truncateFrom: 3,
                entries: [noop(2, 3), command(2, 4, "rewritten")]
            ),
            // Truncation alone, then an append that continues the shorter log.
            StorageWrite(id: 3, hardState: HardState(term: 3, votedFor: nil, commit: 2), truncateFrom: 4),
            StorageWrite(id: 4, entries: [noop(3, 4)]),
        ])
    }

    @Test func leaderSnapshotInstall() throws {
        // As RaftNode persists an InstallSnapshot: snapshot past our log, then delete after it.
        try expectRoundTrip([
            StorageWrite(
                id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 1), entries: commands(term: 1, 1...3)),
            StorageWrite(
                id: 2, hardState: HardState(term: 2, votedFor: nil, commit: 10),
                snapshot: snapshot(term: 2, index: 10, learners: [4]), truncateFrom: 11
            ),
            StorageWrite(id: 3, entries: commands(term: 2, 11...12)),
        ])
    }

    @Test func compactionKeepsTheChain() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([
                StorageWrite(id: 1, hardState: HardState(term: 1, commit: 8), entries: commands(term: 1, 1...10))
            ])
            let chainAt6 = try storedChains(directory: directory)[6]
            try journal.write([StorageWrite(id: 2, snapshot: snapshot(term: 1, index: 6))])
            let state = try journal.load().state
            #expect(state.snapshot?.metadata.last == LogPosition(term: 1, index: 6))
            #expect(state.entries.map(\.index) == Array(7...10))
            // The snapshot takes over the chain of the entry it ends at, so the rest verifies unchanged.
            let snapshotChain = try DatabaseQueue(path: journal.path).read { db in
                try Data.fetchOne(db, sql: "SELECT chain FROM snapshot")
            }
            #expect(snapshotChain.map(Array.init) == chainAt6)
            #expect(try journal.verify().isIntact)
        }
    }

    @Test func snapshotThatConflictsWithKeptEntriesRelinksThem() throws {
        // The contract keeps entries after a snapshot unless the write truncates them; if the
        // snapshot's term differs from ours at its index it starts a new chain segment, and the
        // kept entries must link to it.
        try expectRoundTrip([
            StorageWrite(
                id: 1, hardState: HardState(term: 3, commit: 3),
                entries: commands(term: 1, 1...4) + commands(term: 3, 5...8)
            ),
            StorageWrite(id: 2, hardState: HardState(term: 3, commit: 5), snapshot: snapshot(term: 2, index: 5)),
            StorageWrite(id: 3, entries: [command(3, 9)]),
        ])
    }

    @Test func hardStateOnly() throws {
        try expectRoundTrip([
            StorageWrite(id: 1, hardState: HardState(term: 5, votedFor: 3, commit: 0)),
            StorageWrite(id: 2, hardState: HardState(term: 6, votedFor: nil, commit: 0)),
            // Node ids are stored by bit pattern: the largest one round-trips.
            StorageWrite(id: 3, hardState: HardState(term: 7, votedFor: NodeID(.max), commit: 0)),
        ])
    }

    @Test func everythingInOneWrite() throws {
        try expectRoundTrip([
            StorageWrite(id: 1, hardState: HardState(term: 1, commit: 4), entries: commands(term: 1, 1...6)),
            StorageWrite(
                id: 2, hardState: HardState(term: 3, votedFor: 2, commit: 20), snapshot: snapshot(term: 2, index: 20),
                truncateFrom: 21, entries: [noop(3, 21), command(3, 22)]
            ),
        ])
    }

    @Test(arguments: JournalOptions.Durability.allCases)
    func durabilityIsWhatWasAskedFor(_ durability: JournalOptions.Durability) throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: durability))
            #expect(try journal.effectiveDurability() == durability)
            let mode = try DatabaseQueue(path: journal.path).read { db in
                try String.fetchOne(db, sql: "PRAGMA journal_mode")
            }
            #expect(mode == "wal")
        }
    }
}

/// The chain column, by index, read straight from the database.
func storedChains(directory: String) throws -> [LogIndex: [UInt8]] {
    let path = URL(fileURLWithPath: directory).appendingPathComponent(RaftJournal.fileName).path
    return try DatabaseQueue(path: path).read { db in
        var chains: [LogIndex: [UInt8]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT log_index, chain FROM raft_log") {
            chains[LogIndex(row["log_index"] as Int64)] = Array(row["chain"] as Data)
        }
        return chains
    }
}

/// Recomputes the chain with the documented formula (`LogChain.link`) from the snapshot's stored
/// chain (or genesis) and compares it with every stored row.
func expectChainRecomputes(directory: String, state: DurableState) throws {
    let path = URL(fileURLWithPath: directory).appendingPathComponent(RaftJournal.fileName).path
    var previous =
        try DatabaseQueue(path: path).read { db in try Data.fetchOne(db, sql: "SELECT chain FROM snapshot") }
        .map(Array.init) ?? LogChain.genesis
    if state.snapshot == nil { #expect(previous == LogChain.genesis) }
    let stored = try storedChains(directory: directory)
    for entry in state.entries {
        previous = LogChain.link(previous: previous, entry: entry)
        #expect(stored[entry.index] == previous, "chain of entry \(entry.index)")
    }
}

@Suite("RaftJournal: bad writes are refused with an error that says what and where")
struct RaftJournalErrorTests {
    @Test func entriesThatDoNotContinueTheLog() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([StorageWrite(id: 1, entries: commands(term: 1, 1...3))])
            let error = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 2, entries: commands(term: 1, 5...6))])
            }
            #expect(error.kind == .entriesDoNotContinueLog(write: 2, firstIndex: 5, expectedIndex: 4))
            #expect(error.description.contains("write w2"))
            #expect(error.description.contains("starting at index 5"))
            #expect(error.description.contains(journal.path))
        }
    }

    @Test func aFailedBatchStoresNothing() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([StorageWrite(id: 1, hardState: HardState(term: 1), entries: commands(term: 1, 1...3))])
            let before = try journal.load()
            let error = try #require(throws: JournalError.self) {
                try journal.write([
                    StorageWrite(id: 2, hardState: HardState(term: 2, commit: 3), entries: commands(term: 2, 4...5)),
                    StorageWrite(id: 3, truncateFrom: 2),
                    StorageWrite(id: 4, entries: [command(2, 9)]),
                ])
            }
            #expect(error.kind == .entriesDoNotContinueLog(write: 4, firstIndex: 9, expectedIndex: 2))
            #expect(try journal.load() == before)
            #expect(try journal.verify().isIntact)
        }
    }

    @Test func firstEntryMustFollowTheSnapshot() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let fresh = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 1, entries: [command(1, 2)])])
            }
            #expect(fresh.kind == .entriesDoNotContinueLog(write: 1, firstIndex: 2, expectedIndex: 1))
            try journal.write([StorageWrite(id: 2, snapshot: snapshot(term: 1, index: 10))])
            let afterSnapshot = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 3, entries: [command(1, 12)])])
            }
            #expect(afterSnapshot.kind == .entriesDoNotContinueLog(write: 3, firstIndex: 12, expectedIndex: 11))
        }
    }

    @Test func entriesOfOneWriteMustBeConsecutive() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let error = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 7, entries: [command(1, 1), command(1, 2), command(1, 4)])])
            }
            #expect(error.kind == .entriesNotContiguous(write: 7, previous: 2, index: 4))
            #expect(error.description.contains("entry 4 right after entry 2"))
            #expect(try journal.load().state == DurableState())
        }
    }

    @Test func snapshotsOnlyMoveForward() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([StorageWrite(id: 1, snapshot: snapshot(term: 2, index: 50))])
            let error = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 2, snapshot: snapshot(term: 1, index: 40))])
            }
            #expect(error.kind == .snapshotRegresses(write: 2, snapshotIndex: 40, currentSnapshotIndex: 50))
            #expect(error.description.contains("older than the stored snapshot at 50"))
        }
    }

    @Test func indexesBeyondSQLiteIntegersAreRefused() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let error = try #require(throws: JournalError.self) {
                try journal.write([StorageWrite(id: 1, hardState: HardState(term: .max))])
            }
            #expect(error.kind == .valueOutOfRange(what: "term", value: .max))
        }
    }

    @Test func aFileWhereTheDirectoryShouldBe() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let file = directory + "/not-a-directory"
            _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
            let error = try #require(throws: JournalError.self) { try RaftJournal(directory: file) }
            #expect(error.description.contains("\(file) exists and is not a directory"))
        }
    }

    @Test func verifyingAMissingJournal() throws {
        try withTemporaryDirectory { directory in
            let error = try #require(throws: JournalError.self) { try RaftJournal.verify(directory: directory) }
            #expect(error.kind == .noJournal)
            #expect(!FileManager.default.fileExists(atPath: directory), "verify must not create a journal")
        }
    }
}

@Suite("RaftJournal.verify")
struct RaftJournalVerifyTests {
    private func journalWithEntries(_ directory: String) throws -> RaftJournal {
        let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
        try journal.write([
            StorageWrite(
                id: 1, hardState: HardState(term: 1, votedFor: 1, commit: 5), entries: commands(term: 1, 1...10)),
            StorageWrite(id: 2, snapshot: snapshot(term: 1, index: 4)),
            StorageWrite(id: 3, entries: [noop(1, 11)] + commands(term: 1, 12...20)),
        ])
        return journal
    }

    @Test func anIntactJournalVerifies() throws {
        try withTemporaryDirectory { directory in
            _ = try journalWithEntries(directory)
            let verification = try RaftJournal.verify(directory: directory)
            #expect(verification.isIntact, "\(verification)")
            #expect(verification.snapshot == LogPosition(term: 1, index: 4))
            #expect(verification.entriesChecked == 16)
            #expect(verification.lastIndex == 20)
            #expect(verification.description.hasPrefix("OK"))
        }
    }

    @Test(arguments: [5, 13, 20] as [LogIndex])
    func aChangedPayloadIsFoundAtItsIndex(_ index: LogIndex) throws {
        try withTemporaryDirectory { directory in
            let journal = try journalWithEntries(directory)
            try journal.corruptEntryForTesting(at: index)
            let verification = try RaftJournal.verify(directory: directory)
            #expect(!verification.isIntact)
            #expect(verification.brokenLink?.index == index)
            #expect(verification.brokenLink?.expected != verification.brokenLink?.found)
            #expect(verification.description.contains("chain broken at entry \(index)"))
        }
    }

    @Test func aChangedNoopIsFound() throws {
        try withTemporaryDirectory { directory in
            let journal = try journalWithEntries(directory)
            try journal.corruptEntryForTesting(at: 11)
            #expect(try journal.verify().brokenLink?.index == 11)
        }
    }

    @Test func aChangedChainIsFoundAtItsIndex() throws {
        try withTemporaryDirectory { directory in
            let journal = try journalWithEntries(directory)
            try DatabaseQueue(path: journal.path).write { db in
                try db.execute(sql: "UPDATE raft_log SET chain = zeroblob(32) WHERE log_index = 8")
            }
            let verification = try journal.verify()
            #expect(verification.brokenLink?.index == 8)
            #expect(verification.brokenLink?.found == LogChain.genesis)
        }
    }

    @Test func aMissingEntryIsFound() throws {
        try withTemporaryDirectory { directory in
            let journal = try journalWithEntries(directory)
            try DatabaseQueue(path: journal.path).write { db in
                try db.execute(sql: "DELETE FROM raft_log WHERE log_index = 15")
            }
            let verification = try journal.verify()
            #expect(verification.brokenLink?.index == 16)
            #expect(verification.problems.contains { $0.contains("entries 15…15 are missing") })
            #expect(throws: JournalError.self) { try journal.load() }
        }
    }

    @Test func hardStateMustAgreeWithTheLog() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([
                StorageWrite(id: 1, hardState: HardState(term: 1, commit: 50), entries: commands(term: 2, 1...3))
            ])
            let verification = try journal.verify()
            #expect(verification.brokenLink == nil)
            #expect(verification.problems.contains { $0.contains("commit index 50 is beyond the log's last index 3") })
            #expect(verification.problems.contains { $0.contains("term 1 is below the last entry's term 2") })
        }
    }
}

@Suite("RaftJournal: the state machine side")
struct RaftJournalStateMachineTests {
    @Test func committedEntriesAreAppliedOnceAndInOrder() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            let log = [noop(1, 1)] + commands(term: 1, 2...6)
            try journal.write([StorageWrite(id: 1, hardState: HardState(term: 1, commit: 6), entries: log)])
            try journal.applyCommitted(Array(log[0...2]))
            #expect(try journal.load().appliedIndex == 3)
            // After a restart the node may hand over applied entries again; they are skipped.
            try journal.applyCommitted(Array(log[1...4]))
            #expect(try journal.load().appliedIndex == 5)
            let applied = try DatabaseQueue(path: journal.path).read { db in
                try Int64.fetchAll(db, sql: "SELECT log_index FROM applied_commands ORDER BY log_index")
            }
            #expect(applied == [2, 3, 4, 5])
            let gap = try #require(throws: JournalError.self) { try journal.applyCommitted([command(1, 7)]) }
            #expect(gap.kind == .applyGap(firstIndex: 7, appliedIndex: 5))
            let unordered = try #require(throws: JournalError.self) {
                try journal.applyCommitted([log[5], command(1, 8)])
            }
            #expect(unordered.kind == .applyNotContiguous(previous: 6, index: 8))
            #expect(try journal.verify().isIntact)
        }
    }

    @Test func restoringASnapshotReplacesTheStateMachine() throws {
        try withTemporaryDirectory { directory in
            let journal = try RaftJournal(directory: directory, options: JournalOptions(durability: .normal))
            try journal.write([
                StorageWrite(id: 1, hardState: HardState(term: 1, commit: 3), entries: commands(term: 1, 1...3))
            ])
            try journal.applyCommitted(commands(term: 1, 1...3))
            let leaderSnapshot = snapshot(term: 2, index: 30)
            try journal.write([
                StorageWrite(
                    id: 2, hardState: HardState(term: 2, commit: 30), snapshot: leaderSnapshot, truncateFrom: 31)
            ])
            // Persisted but not yet restored, as after a crash between the two.
            #expect(try journal.load().stateMachineNeedsSnapshot)
            try journal.restoreSnapshot(leaderSnapshot)
            let recovered = try journal.load()
            #expect(recovered.appliedIndex == 30)
            #expect(!recovered.stateMachineNeedsSnapshot)
            try journal.write([StorageWrite(id: 3, entries: [command(2, 31)])])
            try journal.applyCommitted([command(2, 31)])
            #expect(try journal.load().appliedIndex == 31)
            #expect(try journal.verify().isIntact)
        }
    }
}
