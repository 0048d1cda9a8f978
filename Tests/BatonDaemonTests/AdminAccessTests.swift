import BatonDaemon
import BatonTestCluster
import Crypto
import Foundation
import NIOHTTP1
import Testing

/// The admin plane's access control against a running replica: every route × no token, a wrong
/// token and each role; the audit trail names the token, not the caller's say.
@Suite(.serialized) struct AdminAccessTests {
    static let tokens: [AdminRole: String] = [
        .viewer: "viewer-token-0123456789abcdef",
        .operator: "operator-token-0123456789abcdef",
        .admin: "admin-token-0123456789abcdef",
    ]
    static let names: [AdminRole: String] = [.viewer: "grafana", .operator: "oncall", .admin: "root"]

    /// Hashed lines (mode 0644 is fine for digests): what a production tokens file holds.
    static func writeTokensFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-tokens-\(UUID().uuidString)").path
        let lines = AdminRole.allCases.map { role in
            let digest = SHA256.hash(data: Data(tokens[role]!.utf8)).map { String(format: "%02x", $0) }.joined()
            return "\(names[role]!) \(role.rawValue) sha256:\(digest)"
        }
        try ("# test tokens\n" + lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A body each route accepts without changing what the next request sees much: the point is
    /// the status class (401/403 or not), not the action.
    static func body(for path: String) -> String? {
        switch path {
        case "/admin/trading/pause", "/admin/trading/resume": "{\"reason\": \"access matrix\"}"
        case "/admin/transfer-leadership": "{\"to\": 99}"
        case "/admin/orders/resolve": "{\"clordid\": \"BTN-0-0\", \"outcome\": \"not-received\", \"reason\": \"matrix\"}"
        case "/admin/propose": "{\"count\": 1, \"size\": 8}"
        case "/admin/debug/kill-on-next-order": "{\"when\": \"none\"}"
        case "/admin/debug/stall": "{\"ms\": 1}"
        default: nil
        }
    }

    @Test func everyRouteAnswersEachKindOfCallerAsItsRoleSays() async throws {
        let tokensFile = try Self.writeTokensFile()
        defer { try? FileManager.default.removeItem(atPath: tokensFile) }
        let cluster = try TradingCluster(
            options: TradingProcessTests.options {
                $0.replicas = 1
                $0.adminTokensFile = tokensFile
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        let base = cluster.replicas[leader]!.adminURL

        enum Caller: CustomStringConvertible {
            case none, wrong, role(AdminRole)
            var token: String? {
                switch self {
                case .none: nil
                case .wrong: "not-a-token-of-this-cluster-000"
                case .role(let role): AdminAccessTests.tokens[role]
                }
            }
            var description: String {
                switch self {
                case .none: "no token"
                case .wrong: "a wrong token"
                case .role(let role): "the \(role.rawValue) token"
                }
            }
        }
        let callers: [Caller] = [.none, .wrong, .role(.viewer), .role(.operator), .role(.admin)]
        var checked = 0
        for route in AdminAPI.routes {
            for caller in callers {
                let (status, reply) = try await cluster.request(
                    base + route.path, method: route.method == "GET" ? .GET : .POST, token: caller.token,
                    body: Self.body(for: route.path), timeout: 10)
                let text = String(decoding: reply, as: UTF8.self).prefix(300)
                let context = "\(route.method) \(route.path) with \(caller): HTTP \(status) \(text)"
                guard let needed = route.role else {
                    #expect(status != 401 && status != 403, "a probe is open: \(context)")
                    checked += 1
                    continue
                }
                switch caller {
                case .none, .wrong:
                    #expect(status == 401, "\(context)")
                case .role(let role) where role < needed:
                    #expect(status == 403, "\(context)")
                    #expect(text.contains("needs \(needed.rawValue)"), "the refusal says what is needed: \(context)")
                case .role:
                    #expect(status != 401 && status != 403 && status < 500 || status == 503, "\(context)")
                }
                checked += 1
            }
        }
        #expect(checked == AdminAPI.routes.count * callers.count)

        // Who acted is the token's name, never the body's claim.
        let (claimed, claimReply) = try await cluster.request(
            base + "/admin/trading/pause", method: .POST, token: Self.tokens[.operator],
            body: "{\"reason\": \"spoof\", \"by\": \"mallory\"}")
        #expect(claimed == 400 && String(decoding: claimReply, as: UTF8.self).contains("'by' is not accepted"))

        struct Record: Decodable {
            var principal: String
            var role: String
            var source: String
            var action: String
            var status: Int
            var outcome: String
            var request: String
        }
        let (auditStatus, auditBody) = try await cluster.request(
            base + "/audit?limit=1000", method: .GET, token: Self.tokens[.viewer])
        #expect(auditStatus == 200)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let records = try decoder.decode([Record].self, from: auditBody)
        // Every POST that got past authentication, by operator or admin, is there.
        let pauses = records.filter { $0.action == "POST /admin/trading/pause" && $0.status == 200 }
        let pausers = Set(pauses.map { (r: Record) in r.principal })
        let trail = records.map { (r: Record) in "\(r.principal) \(r.action) \(r.status)" }
        #expect(pausers == ["oncall", "root"], "\(trail)")
        #expect(pauses.allSatisfy { (r: Record) in r.source == "127.0.0.1" && r.request.contains("access matrix") })
        #expect(records.contains { $0.action == "POST /admin/trading/pause" && $0.status == 400 && $0.principal == "oncall" })
        #expect(records.contains { $0.action == "POST /admin/transfer-leadership" && $0.outcome == "requested" })
        #expect(!records.contains { $0.principal == "grafana" }, "a viewer's refused POSTs are not actions")
        #expect(!records.contains { (r: Record) in r.principal == "mallory" })
        let proposes = records.filter { (r: Record) in r.action == "POST /admin/propose" }
        let proposers = proposes.map { (r: Record) in r.principal }
        #expect(proposers == ["root"] && proposes.first?.status == 200, "\(trail)")

        // batonctl audit shows the same trail, with the token from a 0600 file.
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("baton-ctl-token-\(UUID().uuidString)").path
        try Self.tokens[.viewer]!.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: tokenFile)
        let loose = try BatonctlTests.run(["audit", "--admin", base, "--token-file", tokenFile], environment: [:])
        #expect(loose.status != 0 && loose.output.contains("chmod 600"), "\(loose.output)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile)
        let audit = try BatonctlTests.run(["audit", "--admin", base, "--token-file", tokenFile], environment: [:])
        #expect(audit.status == 0, "\(audit.output)")
        #expect(audit.output.contains("oncall") && audit.output.contains("operator") && audit.output.contains("POST /admin/trading/pause"))
    }

    @Test func failedAuthenticationIsRateLimitedPerSourceAndCounted() async throws {
        let cluster = try TradingCluster(
            options: TradingProcessTests.options {
                $0.replicas = 1
                $0.authFailuresPerMinute = 3
            })
        defer { cluster.shutdown() }
        try await cluster.startAll()
        let leader = try await cluster.waitForTradingLeader()
        let base = cluster.replicas[leader]!.adminURL
        for _ in 0..<3 {
            let (status, _) = try await cluster.request(base + "/cluster", method: .GET, token: "guess-guess-guess-guess")
            #expect(status == 401)
        }
        // The source has used its tries: even the right token waits out the minute.
        let (limited, body) = try await cluster.request(base + "/cluster", method: .GET, token: TradingCluster.token)
        #expect(limited == 429 && String(decoding: body, as: UTF8.self).contains("too many failed authentications"))
        // The probes stay open for the orchestrator.
        let (probe, _) = try await cluster.request(base + "/healthz", method: .GET, token: nil)
        #expect(probe == 200)
        let log = try String(contentsOfFile: cluster.replicas[leader]!.logPath, encoding: .utf8)
        #expect(log.contains("admin authentication failed"))
        #expect(!log.contains("guess-guess"), "a presented token is never logged")
    }
}
