import Foundation

// The JSON bodies of the admin plane's POST routes in AdminAPI.swift, and the checks each route
// makes on its body before it acts. Only Foundation: Tests/Fuzz/run.sh (target `admin`) compiles
// this file on its own and feeds it arbitrary bytes. (The pause/resume and resolve bodies are
// declared in TradingServices.swift.)

/// How a route reads its body: an empty body is nil (every field takes its default), anything
/// else must be JSON of the type, or DecodingError, which the route answers 400 with `describe`.
enum AdminRequestBody {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T? {
        guard !data.isEmpty else { return nil }
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// Where in the body, and what is wrong, for the 400 answer.
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
            .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }
}

/// A body that decoded but that the route refuses (400), with the message it answers.
struct AdminBodyRefusal: Error, Equatable {
    var message: String
}

/// `POST /admin/transfer-leadership`: `{"to": 2}`, or `{}` (or no body) for the most caught-up
/// follower. The consensus loop judges the target.
struct AdminTransferRequest: Decodable {
    var to: UInt64?
}

/// `POST /admin/propose`: `{"count": 100, "size": 256}` test entries.
struct AdminProposeRequest: Decodable {
    var count: Int?
    var size: Int?

    /// The most entry bytes one request may build.
    static let maxBytes = 16 << 20

    /// How many entries of how many bytes the route proposes, or why it refuses.
    static func entries(_ request: Self?) -> Result<(count: Int, size: Int), AdminBodyRefusal> {
        let count = request?.count ?? 1
        let size = request?.size ?? 256
        guard (1...100_000).contains(count) else {
            return .failure(AdminBodyRefusal(message: "count must be from 1 to 100000"))
        }
        guard (0...(1 << 20)).contains(size) else {
            return .failure(AdminBodyRefusal(message: "size must be from 0 to 1048576 bytes"))
        }
        // Both bounds at once would still let one request build 100 GiB in memory.
        guard count * size <= maxBytes else {
            return .failure(
                AdminBodyRefusal(message: "count × size is \(count * size) bytes; at most \(maxBytes) per request"))
        }
        return .success((count, size))
    }

    /// The test entries: `size` bytes of `.`, led by the entry's number (big-endian, cut to `size`).
    static func commands(count: Int, size: Int) -> [[UInt8]] {
        var commands: [[UInt8]] = []
        commands.reserveCapacity(count)
        for i in 0..<count {
            var bytes = [UInt8](repeating: 0x2E, count: size)
            withUnsafeBytes(of: UInt64(i).bigEndian) { raw in
                for (k, b) in raw.enumerated() where k < size { bytes[k] = b }
            }
            commands.append(bytes)
        }
        return commands
    }
}

/// `POST /admin/debug/stall`: `{"ms": 3000}`.
struct AdminStallRequest: Decodable {
    var ms: Int?

    /// How long the route wedges the loop, or why it refuses.
    static func milliseconds(_ request: Self?) -> Result<Int, AdminBodyRefusal> {
        let ms = request?.ms ?? 0
        guard (1...60_000).contains(ms) else { return .failure(AdminBodyRefusal(message: "ms must be from 1 to 60000")) }
        return .success(ms)
    }
}

/// `POST /admin/debug/kill-on-next-order`: `{"when": "before-send"}`; `Point` is
/// `TradingEngine.KillPoint` (generic only so that this file needs nothing but Foundation).
struct AdminArmRequest<Point: Decodable>: Decodable {
    var when: Point
}
