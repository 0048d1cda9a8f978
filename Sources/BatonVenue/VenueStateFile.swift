public import BatonFIX
import Foundation

/// One change to the venue's state, as a line of its state file (JSON lines, append-only). The
/// venue writes the changes of every event before it sends anything about them, so a restarted
/// venue (`--state-file`) has every order it acknowledged and every session's sequence numbers
/// and sent messages, as a broker's restart keeps its book and its FIX store. Orders still in the
/// order gateway when it dies are lost, as at a broker: they were never acknowledged.
enum VenueStateRecord: Codable, Sendable {
    case session(compID: String, nextSender: Int, nextTarget: Int)
    case sent(compID: String, seq: Int, fix: String)
    /// ResetSeqNumFlag: the stored messages are gone.
    case storeReset(compID: String)
    case counters(compID: String, VenueCore.SessionCounters)
    case order(index: Int, VenueOrder)
    case duplicate(DuplicateOrderAttempt)
    case refusal(RefusedOrder)
    case engine(MatchingEngine.Counters)
}

/// What a state file rebuilds.
public struct VenueRestoredState: Sendable {
    public var stores: [String: FIXSessionStore] = [:]
    public var counters: [String: VenueCore.SessionCounters] = [:]
    public var orders: [VenueOrder] = []
    public var duplicates: [DuplicateOrderAttempt] = []
    public var refusals: [RefusedOrder] = []
    public var engine: MatchingEngine.Counters?
    public var records = 0
}

public enum VenueStateFileError: Error, CustomStringConvertible {
    case unreadable(path: String, line: Int, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let line, let reason): return "venue state file \(path), line \(line): \(reason)"
        case .unwritable(let path, let reason): return "venue state file \(path) cannot be written: \(reason)"
        }
    }
}

/// The append side of the state file, and its reader.
final class VenueStateFile {
    let path: String
    private let handle: FileHandle
    private let encoder = JSONEncoder()

    init(path: String) throws(VenueStateFileError) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw .unwritable(path: path, reason: "cannot create it")
            }
        }
        do {
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            // A torn last line (the venue died mid-write) is cut off, or the next record would
            // be glued to it and the file would no longer read.
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let end = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            if end < data.count { try handle.truncate(atOffset: UInt64(end)) }
            try handle.seekToEnd()
        } catch {
            throw .unwritable(path: path, reason: "\(error)")
        }
    }

    deinit { try? handle.close() }

    func append(_ records: [VenueStateRecord]) throws(VenueStateFileError) {
        guard !records.isEmpty else { return }
        var bytes = Data()
        for record in records {
            // Encoding these plain values cannot fail.
            guard let line = try? encoder.encode(record) else { continue }
            bytes.append(line)
            bytes.append(0x0A)
        }
        do { try handle.write(contentsOf: bytes) } catch { throw .unwritable(path: path, reason: "\(error)") }
    }

    /// Folds the file into the state it describes; a missing file is an empty venue. A torn last
    /// line (the venue died mid-write) is ignored; any other bad line is an error naming it.
    static func read(path: String) throws(VenueStateFileError) -> VenueRestoredState {
        var state = VenueRestoredState()
        guard FileManager.default.fileExists(atPath: path) else { return state }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, line: 0, reason: "\(error)")
        }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (number, line) in lines.enumerated() where !line.isEmpty {
            let record: VenueStateRecord
            do {
                record = try decoder.decode(VenueStateRecord.self, from: Data(line))
            } catch {
                if number == lines.count - 1 || (number == lines.count - 2 && lines.last?.isEmpty == true) {
                    continue  // torn tail
                }
                throw .unreadable(path: path, line: number + 1, reason: "not a venue state record (\(error))")
            }
            state.records += 1
            switch record {
            case .session(let compID, let sender, let target):
                var store = state.stores[compID] ?? FIXSessionStore()
                store.nextSenderSeqNum = sender
                store.nextTargetSeqNum = target
                state.stores[compID] = store
            case .sent(let compID, let seq, let fix):
                var decoder = FIXMessageDecoder()
                decoder.append(Array(fix.utf8))
                guard let message = try? decoder.next() else {
                    throw .unreadable(path: path, line: number + 1, reason: "stored message \(seq) of \(compID) does not decode")
                }
                state.stores[compID, default: FIXSessionStore()].sentApplicationMessages[seq] = message
            case .storeReset(let compID):
                state.stores[compID, default: FIXSessionStore()].sentApplicationMessages = [:]
            case .counters(let compID, let counters):
                state.counters[compID] = counters
            case .order(let index, let order):
                guard index <= state.orders.count, index >= 0 else {
                    throw .unreadable(path: path, line: number + 1, reason: "order index \(index) after \(state.orders.count) orders")
                }
                if index == state.orders.count { state.orders.append(order) } else { state.orders[index] = order }
            case .duplicate(let attempt):
                state.duplicates.append(attempt)
            case .refusal(let refusal):
                state.refusals.append(refusal)
            case .engine(let counters):
                state.engine = counters
            }
        }
        return state
    }
}

extension FIXSide: Codable {}
extension FIXOrdType: Codable {}
extension FIXTimeInForce: Codable {}
extension FIXOrdStatus: Codable {}
extension FIXTimestamp: Codable {
    public init(from decoder: any Decoder) throws {
        self.init(millisecondsSinceEpoch: try decoder.singleValueContainer().decode(Int64.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(millisecondsSinceEpoch)
    }
}
