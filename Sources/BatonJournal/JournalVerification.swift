import Foundation
internal import GRDB
public import RaftCore

/// The result of `RaftJournal.verify`: the chain checked end to end, and what is wrong, if anything.
public struct JournalVerification: Hashable, Sendable, CustomStringConvertible {
    /// The first entry whose stored chain is not the one its contents and predecessor give.
    public struct BrokenLink: Hashable, Sendable, CustomStringConvertible {
        public var index: LogIndex
        public var expected: [UInt8]
        public var found: [UInt8]

        public var description: String {
            "chain broken at entry \(index): expected \(hex(expected)), found \(hex(found))"
        }
    }

    /// The database file checked.
    public var path: String
    /// Where the chain was checked from: the snapshot's position, or nil for genesis.
    public var snapshot: LogPosition?
    /// Entries whose link was recomputed.
    public var entriesChecked: Int
    /// The last index of the log (the snapshot's if no entry follows it).
    public var lastIndex: LogIndex
    /// The chain of the last entry (or of the snapshot): a fingerprint of the whole log.
    public var headChain: [UInt8]
    public var hardState: HardState
    public var appliedIndex: LogIndex
    public var brokenLink: BrokenLink?
    /// Everything else found wrong: gaps, terms going down, a commit index past the log, rows
    /// that cannot be decoded. Each says where.
    public var problems: [String]

    /// True when the chain holds and nothing else is wrong.
    public var isIntact: Bool { brokenLink == nil && problems.isEmpty }

    public var description: String {
        let from = snapshot.map { "snapshot \($0)" } ?? "genesis"
        var lines = [
            "\(isIntact ? "OK" : "FAILED"): \(path): \(entriesChecked) entries checked from \(from) to index "
                + "\(lastIndex), head \(hex(headChain)); hard state \(hardState), applied \(appliedIndex)"
        ]
        if let brokenLink { lines.append("  \(brokenLink)") }
        lines.append(contentsOf: problems.map { "  \($0)" })
        return lines.joined(separator: "\n")
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined()
}

/// Walks the log once inside a read transaction.
struct JournalVerifier {
    let db: Database
    let path: String

    func run() throws -> JournalVerification {
        let reader = JournalReader(db: db, path: path)
        var problems: [String] = []
        var snapshotPosition: LogPosition?
        var start = ChainPoint.genesis
        do {
            if let (snapshot, chain) = try reader.snapshot() {
                snapshotPosition = snapshot.metadata.last
                start = ChainPoint(index: snapshot.metadata.last.index, term: snapshot.metadata.last.term, chain: chain)
                if snapshot.metadata.configuration.voters.isEmpty {
                    problems.append("snapshot \(snapshot.metadata.last) has no voters")
                }
            }
        } catch let error as JournalError {
            problems.append("snapshot: \(error.kind)")
            if let header = try reader.snapshotHeader() { start = header }
        }
        if start.chain.count != 32 {
            problems.append("snapshot chain is \(start.chain.count) bytes, not 32")
        }

        var previous = start.chain
        var lastTerm = start.term
        var expectedIndex = start.index + 1
        var checked = 0
        var brokenLink: JournalVerification.BrokenLink?
        let rows = try Row.fetchCursor(
            db, sql: "SELECT log_index, term, kind, payload, membership, chain FROM raft_log ORDER BY log_index"
        )
        while let row = try rows.next() {
            let stored = try StoredRow(row, path: path)
            let found = [UInt8](row["chain"] as Data)
            if stored.index != expectedIndex {
                problems.append(
                    stored.index < expectedIndex
                        ? "entry \(stored.index) is stored although the snapshot covers it"
                        : "entries \(expectedIndex)…\(stored.index - 1) are missing before entry \(stored.index)"
                )
            }
            if stored.term < lastTerm {
                problems.append("entry \(stored.index) has term \(stored.term), below its predecessor's \(lastTerm)")
            }
            if case .unreadable(let reason) = stored.payload.decoded() {
                problems.append("entry \(stored.index): \(reason)")
            }
            let expected = LogChain.link(
                previous: previous, term: stored.term, index: stored.index, kind: stored.payload.kind,
                body: stored.payload.body
            )
            if expected != found && brokenLink == nil {
                brokenLink = .init(index: stored.index, expected: expected, found: found)
            }
            // Continue from what is stored, so one damaged row is reported once, not once per successor.
            previous = found
            lastTerm = stored.term
            expectedIndex = stored.index + 1
            checked += 1
        }
        let lastIndex = expectedIndex - 1

        let hardState = try reader.hardState()
        if hardState.commit > lastIndex {
            problems.append("hard state commit index \(hardState.commit) is beyond the log's last index \(lastIndex)")
        }
        if hardState.term < lastTerm {
            problems.append("hard state term \(hardState.term) is below the last entry's term \(lastTerm)")
        }
        let applied = try reader.appliedIndex()
        if applied > lastIndex {
            problems.append("state machine applied index \(applied) is beyond the log's last index \(lastIndex)")
        }
        return JournalVerification(
            path: path, snapshot: snapshotPosition, entriesChecked: checked, lastIndex: lastIndex, headChain: previous,
            hardState: hardState, appliedIndex: applied, brokenLink: brokenLink, problems: problems
        )
    }
}
