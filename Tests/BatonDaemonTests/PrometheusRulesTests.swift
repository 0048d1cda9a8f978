import BatonTestCluster
import Foundation
import Testing

/// The Prometheus rules shipped in deploy/prometheus/: valid for promtool, passing their unit
/// tests, naming only metrics batond exports and runbook sections that exist.
@Suite("Prometheus rules")
struct PrometheusRulesTests {
    static let rules = "deploy/prometheus/baton-rules.yml"

    static func promtool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ChildProcesses.run("/usr/bin/promtool", arguments)
    }

    @Test func promtoolChecksTheRulesAndTheirUnitTestsPass() throws {
        let check = try Self.promtool(["check", "rules", Self.rules])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("SUCCESS"), "\(check.output)")
        let tests = try FileManager.default.contentsOfDirectory(atPath: "deploy/prometheus/tests").filter { $0.hasSuffix(".yml") }
        #expect(!tests.isEmpty)
        for file in tests {
            let run = try Self.promtool(["test", "rules", "deploy/prometheus/tests/\(file)"])
            #expect(run.status == 0, "\(file): \(run.output)")
        }
    }

    /// Every `baton_…` series a rule reads is one batond registers (histograms by their base
    /// name): a renamed metric must not leave a rule that silently matches nothing.
    @Test func everyMetricTheRulesReadIsOneBatondExports() throws {
        let text = try String(contentsOfFile: Self.rules, encoding: .utf8)
        let exported = try ExportedMetricNames.batond()
        #expect(exported.contains("baton_order_ack_seconds"))
        var read: Set<String> = []
        for match in text.matches(of: /\b(baton_[a-z0-9_]+)/) {
            var name = String(match.1)
            for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && !exported.contains(name) {
                name = String(name.dropLast(suffix.count))
            }
            read.insert(name)
        }
        #expect(!read.isEmpty)
        for name in read.sorted() {
            #expect(exported.contains(name), "\(Self.rules) reads \(name), which batond does not export")
        }
    }

    /// Each alert's `runbook` names a file and a section heading that exist.
    @Test func everyRunbookLinkLeadsToASection() throws {
        let text = try String(contentsOfFile: Self.rules, encoding: .utf8)
        let links = text.matches(of: /runbook: "([^"#]+)#([^"]+)"/).map { (String($0.1), String($0.2)) }
        #expect(links.count >= 8)
        for (file, anchor) in links {
            let document = try String(contentsOfFile: file, encoding: .utf8)
            let anchors = document.split(separator: "\n").filter { $0.hasPrefix("#") }.map { Self.slug(String($0)) }
            #expect(anchors.contains(anchor), "\(file) has no section #\(anchor)")
        }
    }

    /// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens.
    static func slug(_ heading: String) -> String {
        let title = heading.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
        return String(
            title.compactMap { c -> Character? in
                if c == " " { return "-" }
                return c.isLetter || c.isNumber || c == "-" || c == "_" ? c : nil
            })
    }
}
