import Foundation

/// The metric names batond exports, read from the `"baton_…"` string literals in the sources of the
/// modules it is built from. Prometheus rules and the Grafana dashboard may name only these (or
/// their recording rules): a renamed metric must not leave a query that silently matches nothing.
enum ExportedMetricNames {
    /// batond's own modules (Package.swift: `batond`, `BatonDaemon` and what it links). The feed's
    /// metrics live in BatonFeed and are registered into the daemon's registry.
    static let batondModules = [
        "Sources/batond", "Sources/BatonDaemon", "Sources/BatonFeed", "Sources/BatonTrading", "Sources/BatonAlerting",
        "Sources/RaftCore", "Sources/BatonJournal", "Sources/BatonTransport", "Sources/BatonWire",
        "Sources/BatonMarketData", "Sources/BatonFIX", "Sources/BatonFIXNIO",
    ]

    /// Every `"baton_…"` literal in batond's modules: counters, gauges and histograms by the name
    /// they are registered under (a histogram by its base name, without `_bucket`, `_count`, `_sum`).
    static func batond() throws -> Set<String> {
        var names: Set<String> = []
        for source in try sources() {
            for match in source.matches(of: /"(baton_[a-z0-9_]+)"/) { names.insert(String(match.1)) }
        }
        return names
    }

    /// The names registered as histograms, the only ones with `_bucket`, `_count` and `_sum` series:
    /// swift-prometheus's `make…Histogram(name:)` and swift-metrics' `Timer(label:)`.
    static func histograms() throws -> Set<String> {
        var names: Set<String> = []
        for source in try sources() {
            for match in source.matches(of: /make(?:Duration|Value)Histogram\(\s*name:\s*"(baton_[a-z0-9_]+)"/) {
                names.insert(String(match.1))
            }
            for match in source.matches(of: /Timer\(\s*label:\s*"(baton_[a-z0-9_]+)"/) { names.insert(String(match.1)) }
        }
        return names
    }

    /// The text of every Swift file under batond's modules.
    private static func sources() throws -> [String] {
        var texts: [String] = []
        for module in batondModules {
            guard FileManager.default.fileExists(atPath: module),
                let files = FileManager.default.enumerator(atPath: module)
            else { throw MissingModule(path: module) }
            for case let file as String in files where file.hasSuffix(".swift") {
                texts.append(try String(contentsOfFile: "\(module)/\(file)", encoding: .utf8))
            }
        }
        return texts
    }

    struct MissingModule: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "\(path) is not there: run the tests from the package root, or update ExportedMetricNames.batondModules"
        }
    }
}
