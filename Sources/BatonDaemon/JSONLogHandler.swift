import Foundation
public import Logging
import Synchronization

/// One JSON object per line on standard error: what log shippers (journald, Loki, Vector) parse
/// without configuration. Metadata keys are namespaced by the caller (`raft.term`, `peer.id`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// The level lives in the shared `DynamicMetadata` so SIGHUP can change it for every logger.
    public var logLevel: Logger.Level {
        get { dynamicMetadata.level }
        set { dynamicMetadata.level = newValue }
    }
    private let label: String
    /// Values merged into every line at the time it is written (node id, term, role), so that a
    /// line logged by the transport still says which term it belongs to.
    private let dynamicMetadata: DynamicMetadata

    public init(label: String, level: Logger.Level, dynamic: DynamicMetadata) {
        self.label = label
        self.dynamicMetadata = dynamic
        dynamic.level = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": Date().formatted(Self.timestampStyle),
            "level": event.level.rawValue,
            "msg": event.message.description,
            "logger": label,
        ]
        for (key, value) in dynamicMetadata.current { object[key] = Self.json(value) }
        for (key, value) in metadata { object[key] = Self.json(value) }
        for (key, value) in event.metadata ?? [:] { object[key] = Self.json(value) }
        if event.level >= .error { object["source"] = "\(event.file):\(event.line)" }
        guard
            var data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }

    /// A value type, so every thread formats with its own copy (no shared formatter to guard).
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(json)
        case .dictionary(let d): return d.mapValues(json)
        }
    }

    /// Metadata that changes while the process runs, shared by every handler.
    public final class DynamicMetadata: Sendable {
        private let values = Mutex<Logger.Metadata>([:])
        private let levelValue = Mutex<Logger.Level>(.info)
        public init() {}
        public var level: Logger.Level {
            get { levelValue.withLock { $0 } }
            set { levelValue.withLock { $0 = newValue } }
        }
        public var current: Logger.Metadata { values.withLock { $0 } }
        public func set(_ key: String, _ value: Logger.Metadata.Value) { values.withLock { $0[key] = value } }
    }
}
