import CoreMetrics
import Synchronization

/// Keeps the last value of every metric by "label{key=value}", so a test can read what the
/// feed client would have exported to Prometheus.
final class RecordingMetrics: MetricsFactory {
    private let values = Mutex<[String: Double]>([:])

    func value(_ label: String, source: String? = nil) -> Double? {
        values.withLock { $0[Self.key(label, source.map { [("source", $0)] } ?? [])] }
    }

    fileprivate func set(_ key: String, _ update: (Double) -> Double) {
        values.withLock { $0[key] = update($0[key] ?? 0) }
    }

    static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.isEmpty ? label : "\(label){\(dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ","))}"
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        Handler(self, Self.key(label, dimensions))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        Handler(self, Self.key(label, dimensions))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Handler(self, Self.key(label, dimensions))
    }

    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    private final class Handler: CounterHandler, RecorderHandler, TimerHandler {
        let metrics: RecordingMetrics
        let key: String

        init(_ metrics: RecordingMetrics, _ key: String) {
            self.metrics = metrics
            self.key = key
            metrics.set(key) { $0 }
        }

        func increment(by amount: Int64) { metrics.set(key) { $0 + Double(amount) } }
        func reset() { metrics.set(key) { _ in 0 } }
        func record(_ value: Int64) { metrics.set(key) { _ in Double(value) } }
        func record(_ value: Double) { metrics.set(key) { _ in value } }
        func recordNanoseconds(_ duration: Int64) { metrics.set(key) { _ in Double(duration) } }
    }
}
