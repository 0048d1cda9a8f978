import Foundation

/// Percentiles of a set of raw samples (sorted-array nearest rank; every sample is kept).
struct LatencySummary: Codable, Sendable {
    var count: Int
    var mean: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
        func rank(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let index = Int((q * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
        }
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        p999 = rank(0.999)
        max = sorted.last ?? .nan
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e3 + Double(attoseconds) / 1e15
    }
    var microseconds: Double { milliseconds * 1e3 }
}

func format(_ value: Double, _ decimals: Int = 2) -> String {
    value.isNaN ? "-" : String(format: "%.\(decimals)f", value)
}

/// Writes `value` as pretty JSON to `path` (used by cluster/bench/run.sh to build the report).
func writeJSON(_ value: some Encodable, to path: String?) throws {
    guard let path else { return }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try encoder.encode(value).write(to: URL(fileURLWithPath: path))
}
