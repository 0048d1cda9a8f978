import BatonJournal
import Foundation
public import RaftCore
import Synchronization

/// A fresh directory under the system temp directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("baton-journal-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url.path)
}

func withTemporaryDirectory<T>(_ body: (String) throws -> T) rethrows -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("baton-journal-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

extension StorageWriteID: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: UInt64) { self.init(value) }
}

func command(_ term: Term, _ index: LogIndex, _ text: String = "") -> LogEntry {
    LogEntry(term: term, index: index, payload: .command(Array((text.isEmpty ? "cmd-\(term)-\(index)" : text).utf8)))
}

func noop(_ term: Term, _ index: LogIndex) -> LogEntry {
    LogEntry(term: term, index: index, payload: .leaderNoop)
}

func commands(term: Term, _ indexes: ClosedRange<LogIndex>) -> [LogEntry] {
    indexes.map { command(term, $0) }
}

func snapshot(
    term: Term, index: LogIndex, data: String = "state", learners: Set<NodeID> = [], addresses: [NodeID: String] = [:]
) -> Snapshot {
    Snapshot(
        metadata: SnapshotMetadata(
            last: LogPosition(term: term, index: index),
            configuration: ClusterConfiguration(voters: [1, 2, 3], learners: learners, addresses: addresses)
        ),
        data: Array(data.utf8)
    )
}

/// Durable state after `writes`, by the reference implementation.
func reference(_ writes: [StorageWrite], from start: DurableState = DurableState()) -> DurableState {
    var state = start
    for write in writes { state.apply(write) }
    return state
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Shared mutable test state behind a lock, as a class so that escaping closures can share it.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        try mutex.withLock(body)
    }
}

/// A short account of how two durable states differ, or nil if they are equal. Expectations use it
/// instead of `==`, whose failure message would print both states in full (snapshot data included).
func differences(_ found: DurableState, _ expected: DurableState) -> String? {
    guard found != expected else { return nil }
    var lines: [String] = []
    if found.hardState != expected.hardState {
        lines.append("hard state \(found.hardState), expected \(expected.hardState)")
    }
    if found.snapshot != expected.snapshot {
        let describe = { (snapshot: Snapshot?) in
            snapshot.map { "\($0.metadata.last) \($0.metadata.configuration) \($0.data.count) B" } ?? "none"
        }
        lines.append("snapshot \(describe(found.snapshot)), expected \(describe(expected.snapshot))")
    }
    if found.entries != expected.entries {
        let range = { (entries: [LogEntry]) in "\(entries.first?.index ?? 0)…\(entries.last?.index ?? 0)" }
        let firstDifference = zip(found.entries, expected.entries).first { $0 != $1 }
        lines.append(
            "entries \(range(found.entries)), expected \(range(expected.entries))"
                + (firstDifference.map { "; first difference: \($0.0), expected \($0.1)" } ?? "")
        )
    }
    return lines.joined(separator: "; ")
}
