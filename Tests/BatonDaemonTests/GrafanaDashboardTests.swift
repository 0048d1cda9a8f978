import Foundation
import Testing

/// The Grafana dashboard shipped in deploy/grafana/: a dashboard model Grafana imports, whose
/// queries read only metrics batond exports or rules deploy/prometheus/baton-rules.yml records,
/// and are PromQL that promtool accepts.
@Suite struct GrafanaDashboardTests {
    static let dashboard = "deploy/grafana/baton.json"

    /// One PromQL query of the dashboard, and where it is (for the messages).
    struct Query {
        var place: String
        var expr: String
    }

    @Test func theDashboardIsAModelGrafanaImports() throws {
        let model = try Self.load()
        #expect((model["title"] as? String)?.isEmpty == false, "\(Self.dashboard) has no title")
        let uid = try #require(model["uid"] as? String, "\(Self.dashboard) has no uid")
        #expect(!uid.isEmpty && uid.count <= 40, "uid \(uid): Grafana wants 1 to 40 characters")
        #expect((model["schemaVersion"] as? Int ?? 0) >= 39)

        let variables = Self.variables(of: model)
        #expect(variables["datasource"]?["type"] as? String == "datasource")
        #expect(variables["datasource"]?["query"] as? String == "prometheus")
        #expect(variables["node"] != nil, "batond labels its metrics with node: the dashboard should let one pick it")

        let panels = Self.panels(of: model)
        #expect(panels.count >= 20)
        var ids: [Int: String] = [:]
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            guard let id = panel["id"] as? Int else {
                Issue.record("panel \"\(title)\" has no integer id")
                continue
            }
            if let other = ids[id] { Issue.record("panels \"\(other)\" and \"\(title)\" share id \(id)") }
            ids[id] = title
            let position = panel["gridPos"] as? [String: Any] ?? [:]
            let (h, w, x, y) = (
                position["h"] as? Int, position["w"] as? Int, position["x"] as? Int, position["y"] as? Int
            )
            if let h, let w, let x, let y {
                #expect(
                    h > 0 && w > 0 && x >= 0 && y >= 0 && x + w <= 24, "panel \(id) \"\(title)\": gridPos \(position)")
            } else {
                Issue.record("panel \(id) \"\(title)\" has no gridPos with integer h, w, x and y")
            }
            let type = panel["type"] as? String
            guard type != "row", type != "text" else { continue }
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "panel \(id) \"\(title)\" has no targets")
            #expect(Self.datasourceUID(panel) == "${datasource}", "panel \(id) \"\(title)\" does not use ${datasource}")
            for target in targets {
                let expr = target["expr"] as? String ?? ""
                #expect(
                    !expr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                    "panel \(id) \"\(title)\" target \(target["refId"] ?? "?") has no expr")
            }
        }
    }

    /// Every `baton_…` series a query reads is one batond registers, with `_bucket`, `_count` and
    /// `_sum` only on its histograms, and every `slo:…` name is a rule baton-rules.yml records.
    @Test func everyMetricTheDashboardReadsIsExportedOrRecorded() throws {
        let model = try Self.load()
        let exported = try ExportedMetricNames.batond()
        let histograms = try ExportedMetricNames.histograms()
        let recorded = try Self.recordedRules()
        #expect(exported.contains("baton_feed_staleness_seconds") && histograms.contains("baton_order_ack_seconds"))
        #expect(recorded.contains("slo:sli_error:ratio_rate5m") && recorded.contains("slo:error_budget:ratio"))

        var read: [String: String] = [:]
        for query in try Self.queries(of: model) + Self.variableQueries(of: model) {
            for name in Self.metricNames(in: query.expr, histograms: histograms) { read[name] = query.place }
        }
        #expect(read.keys.contains("baton_order_ack_seconds") && read.keys.contains("slo:objective:ratio"))
        for (name, place) in read.sorted(by: { $0.key < $1.key }) {
            #expect(
                exported.contains(name) || recorded.contains(name),
                "\(place) reads \(name), which batond does not export and baton-rules.yml does not record")
        }
    }

    /// Each query, as Prometheus gets it from Grafana, is a recording rule `promtool check rules`
    /// accepts; every template variable it uses is one the dashboard defines.
    @Test func everyQueryIsPromQLThatPromtoolAccepts() throws {
        let model = try Self.load()
        let queries = try Self.queries(of: model)
        #expect(queries.count >= 40)
        let defined = Set(Self.variables(of: model).keys)
        for query in queries {
            for match in query.expr.matches(of: /\$\{?([A-Za-z_][A-Za-z0-9_]*)/) {
                let name = String(match.1)
                #expect(
                    name.hasPrefix("__") || defined.contains(name),
                    "\(query.place) uses $\(name), which is not a variable of the dashboard")
            }
        }
        let check = try Self.promtoolCheck(queries)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("SUCCESS: \(queries.count) rules found"), "\(check.output)")
    }

    /// The checks above would catch a wrong dashboard: an unknown or misspelt metric, a gauge read
    /// as a histogram, a query promtool cannot parse.
    @Test func theChecksRejectWrongQueries() throws {
        let histograms = try ExportedMetricNames.histograms()
        let exported = try ExportedMetricNames.batond()
        let recorded = try Self.recordedRules()
        let wrong = #"sum(rate(baton_order_acks_seconds_bucket[5m])) / ignoring (x) baton_raft_term_bucket"#
        let names = Self.metricNames(in: wrong + " + slo:sli_error:ratio_rate7m", histograms: histograms)
        #expect(names == ["baton_order_acks_seconds_bucket", "baton_raft_term_bucket", "slo:sli_error:ratio_rate7m"])
        #expect(names.allSatisfy { !exported.contains($0) && !recorded.contains($0) })
        #expect(
            Self.metricNames(in: "baton_order_ack_seconds_count + baton_raft_term", histograms: histograms)
                == ["baton_order_ack_seconds", "baton_raft_term"])
        // A subquery's colon and a quoted label value name no rule.
        #expect(
            Self.metricNames(in: #"max_over_time(baton_raft_term{x="a:b"}[1h:$__interval])"#, histograms: histograms)
                == ["baton_raft_term"])

        let broken = [
            Query(place: "broken 1", expr: "rate(baton_raft_term{node=~\"$node\"}[$__rate_interval]"),
            Query(place: "broken 2", expr: "histogram_quantile(0.99, baton_order_ack_seconds_bucket)[5m]"),
        ]
        for query in broken {
            let check = try Self.promtoolCheck([query])
            #expect(check.status != 0, "promtool accepted \(query.expr)")
        }
    }

    // MARK: - Reading the dashboard

    static func load() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dashboard))
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DashboardError("\(dashboard) is not JSON: \(error)")
        }
        guard let model = object as? [String: Any] else { throw DashboardError("\(dashboard) is not a JSON object") }
        return model
    }

    /// Every panel, the panels of collapsed rows included.
    static func panels(of model: [String: Any]) -> [[String: Any]] {
        var all: [[String: Any]] = []
        for panel in model["panels"] as? [[String: Any]] ?? [] {
            all.append(panel)
            all += panel["panels"] as? [[String: Any]] ?? []
        }
        return all
    }

    /// The template variables by name.
    static func variables(of model: [String: Any]) -> [String: [String: Any]] {
        let list = (model["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        var variables: [String: [String: Any]] = [:]
        for variable in list {
            if let name = variable["name"] as? String { variables[name] = variable }
        }
        return variables
    }

    /// The PromQL of every panel target and annotation. Throws if an `expr` sits anywhere else,
    /// where this test would not look at it.
    static func queries(of model: [String: Any]) throws -> [Query] {
        var queries: [Query] = []
        for panel in panels(of: model) {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                guard let expr = target["expr"] as? String else { continue }
                queries.append(
                    Query(
                        place:
                            "panel \(panel["id"] ?? "?") \"\(panel["title"] ?? "?")\" target \(target["refId"] ?? "?")",
                        expr: expr))
            }
        }
        let annotations = (model["annotations"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for annotation in annotations {
            if let expr = annotation["expr"] as? String {
                queries.append(Query(place: "annotation \"\(annotation["name"] ?? "?")\"", expr: expr))
            }
        }
        let everywhere = exprs(in: model)
        guard everywhere == queries.count else {
            throw DashboardError(
                "\(dashboard) has \(everywhere) exprs, \(queries.count) of them in panel targets and annotations")
        }
        return queries
    }

    /// The queries of the template variables (`label_values(metric, label)`, not PromQL).
    static func variableQueries(of model: [String: Any]) -> [Query] {
        variables(of: model).compactMap { name, variable in
            guard variable["type"] as? String == "query" else { return nil }
            let query = (variable["query"] as? [String: Any])?["query"] as? String ?? variable["query"] as? String
            return query.map { Query(place: "variable $\(name)", expr: $0) }
        }
    }

    static func exprs(in value: Any) -> Int {
        if let object = value as? [String: Any] {
            return object.reduce(0) { count, entry in count + (entry.key == "expr" ? 1 : exprs(in: entry.value)) }
        }
        if let array = value as? [Any] { return array.reduce(0) { $0 + exprs(in: $1) } }
        return 0
    }

    static func datasourceUID(_ panel: [String: Any]) -> String? {
        (panel["datasource"] as? [String: Any])?["uid"] as? String ?? panel["datasource"] as? String
    }

    /// The `baton_…` metrics (a histogram's series by its base name) and the recording rules
    /// (`slo:…`, any name with a colon) a query reads. Quoted label values are skipped, and so are
    /// variables (`[$__rate_interval:]` is a subquery, not a rule).
    static func metricNames(in expr: String, histograms: Set<String>) -> Set<String> {
        let code = substitutingVariables(expr).replacing(/"(?:[^"\\]|\\.)*"/, with: "\"\"")
        var names: Set<String> = []
        for match in code.matches(of: /\b(baton_[a-z0-9_]+)/) {
            var name = String(match.1)
            for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if histograms.contains(base) { name = base }
            }
            names.insert(name)
        }
        for match in code.matches(of: /\b([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*)/) { names.insert(String(match.1)) }
        return names
    }

    /// The `record:` names of baton-rules.yml.
    static func recordedRules() throws -> Set<String> {
        let text = try String(contentsOfFile: PrometheusRulesTests.rules, encoding: .utf8)
        return Set(text.matches(of: /record:\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/).map { String($0.1) })
    }

    // MARK: - promtool

    /// The query as Prometheus gets it: Grafana's interval variables as durations, the dashboard's
    /// own variables (`$node`, `${node}`, `${node:regex}`) as one literal value.
    static func substitutingVariables(_ expr: String) -> String {
        expr.replacing(/\$__rate_interval\b|\$\{__rate_interval\}/, with: "5m")
            .replacing(/\$__interval\b|\$\{__interval\}/, with: "1m")
            .replacing(/\$__range\b|\$\{__range\}/, with: "1h")
            .replacing(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z0-9_]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*/, with: "1")
    }

    /// `promtool check rules` on the queries written as the recording rules of one group.
    static func promtoolCheck(_ queries: [Query]) throws -> (status: Int32, output: String) {
        var yaml = "groups:\n  - name: grafana-dashboard\n    rules:\n"
        for (i, query) in queries.enumerated() {
            yaml += "      # \(query.place.replacingOccurrences(of: "\n", with: " "))\n"
            yaml += "      - record: dashboard:query_\(i + 1)\n        expr: |\n"
            for line in substitutingVariables(query.expr).split(separator: "\n", omittingEmptySubsequences: false) {
                yaml += "          \(line)\n"
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-dashboard-\(UUID().uuidString).yml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let check = try PrometheusRulesTests.promtool(["check", "rules", file.path])
        return (check.status, "\(check.output)\nrules checked:\n\(yaml)")
    }

    struct DashboardError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
