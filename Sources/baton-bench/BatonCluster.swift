import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Three `batond` processes on loopback in a scratch directory, with the settings the issue asks
/// for: durability full, default Raft timeouts written out explicitly, JSON logs at warning.
final class BatonCluster: Sendable {
    struct Replica: Sendable {
        var id: UInt64
        var peerPort: Int
        var adminPort: Int
        var configPath: String
        var logPath: String
        var adminURL: String { "http://127.0.0.1:\(adminPort)" }
        var processName: String { "batond-n\(id)" }
    }

    /// Raft settings every replica gets (the defaults of doc/configuration.md, written out so the
    /// report states what ran).
    static let raftSettings = (tickMs: 2, heartbeatMs: 50, electionMinMs: 300, electionMaxMs: 600)
    static let token = "baton-bench-admin-token-0123456789"

    let batond: String
    let directory: String
    let replicas: [Replica]
    let client: HTTPClient

    init(batond: String, directory: String, size: Int = 3, client: HTTPClient) throws {
        self.batond = batond
        self.directory = directory
        self.client = client
        let ids = (1...UInt64(size)).map { $0 }
        var ports: [UInt64: (peer: Int, admin: Int)] = [:]
        for id in ids { ports[id] = (try freeLoopbackPort(), try freeLoopbackPort()) }
        let members = ids.map { "    \($0): 127.0.0.1:\(ports[$0]!.peer)" }.joined(separator: "\n")
        let voters = ids.map(String.init).joined(separator: ", ")
        var replicas: [Replica] = []
        for id in ids {
            let config = """
                # Written by baton-bench; deleted with its scratch directory.
                cluster:
                  id: 31337
                  node_id: \(id)
                  members:
                \(members)
                  voters: [\(voters)]
                data_dir: \(directory)/n\(id)
                listen:
                  peer: 127.0.0.1:\(ports[id]!.peer)
                  admin: 127.0.0.1:\(ports[id]!.admin)
                raft:
                  tick_interval_ms: \(Self.raftSettings.tickMs)
                  heartbeat_interval_ms: \(Self.raftSettings.heartbeatMs)
                  election_timeout_min_ms: \(Self.raftSettings.electionMinMs)
                  election_timeout_max_ms: \(Self.raftSettings.electionMaxMs)
                journal:
                  durability: full
                admin:
                  token: \(Self.token)
                log:
                  level: warning
                  format: json

                """
            let path = "\(directory)/n\(id).yaml"
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            replicas.append(
                Replica(
                    id: id, peerPort: ports[id]!.peer, adminPort: ports[id]!.admin, configPath: path,
                    logPath: "\(directory)/n\(id).log"
                )
            )
        }
        self.replicas = replicas
    }

    var ids: [UInt64] { replicas.map(\.id) }

    func replica(_ id: UInt64) -> Replica { replicas.first { $0.id == id }! }

    func start(_ id: UInt64) throws {
        let r = replica(id)
        _ = try ChildProcesses.shared.launch(
            name: r.processName, executable: batond, arguments: ["--config", r.configPath], logPath: r.logPath
        )
    }

    func startAll() throws { for id in ids { try start(id) } }

    func kill9(_ id: UInt64) { ChildProcesses.shared.kill9(replica(id).processName) }

    func stopAll() { for id in ids { kill9(id) } }

    func isRunning(_ id: UInt64) -> Bool { ChildProcesses.shared.isRunning(replica(id).processName) }

    func pid(_ id: UInt64) -> Int32? { ChildProcesses.shared.pid(replica(id).processName) }

    func logTail(_ id: UInt64, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: replica(id).logPath, encoding: .utf8)) ?? ""
        return "--- n\(id) log (last \(lines) lines) ---\n"
            + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func logTails() -> String { ids.map { logTail($0) }.joined(separator: "\n") }

    // MARK: - Admin API

    /// The propose request the commit benchmark sends: one 256-byte entry, answered when committed.
    func proposeRequest(to id: UInt64, size: Int = 256) -> WriteRequest {
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(Self.token)")
        headers.add(name: "Content-Type", value: "application/json")
        return WriteRequest(
            url: replica(id).adminURL + "/admin/propose", headers: headers,
            body: ByteBuffer(string: "{\"count\":1,\"size\":\(size)}")
        )
    }

    func request(
        _ id: UInt64, _ path: String, method: HTTPMethod = .GET, body: String? = nil, timeout: TimeAmount = .seconds(2)
    ) async throws -> (status: UInt, body: Data) {
        var request = HTTPClientRequest(url: replica(id).adminURL + path)
        request.method = method
        // Every route but the probes needs a token now, GETs included.
        request.headers.add(name: "Authorization", value: "Bearer \(Self.token)")
        if method == .POST {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body ?? "{}"))
        }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }

    struct View: Decodable {
        var node: UInt64
        var role: String
        var term: UInt64
        var leader: UInt64?
        var commitIndex: UInt64
        var appliedIndex: UInt64
        var lastIndex: UInt64
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    func view(_ id: UInt64) async -> View? {
        guard let (status, body) = try? await request(id, "/cluster", timeout: .seconds(1)), status == 200 else {
            return nil
        }
        return try? Self.decoder.decode(View.self, from: body)
    }

    /// The running replica whose `GET /leader` answers 200, polled until `timeout`.
    func waitForLeader(excluding excluded: Set<UInt64> = [], timeout: Duration = .seconds(15)) async throws -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for id in ids where isRunning(id) && !excluded.contains(id) {
                if let (status, _) = try? await request(id, "/leader", timeout: .seconds(1)), status == 200 {
                    return id
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("no batond replica answered 200 on GET /leader within \(timeout)\n\(logTails())")
    }

    /// Waits for a leader that commits: a propose to it returns 200.
    func waitForCommittingLeader(timeout: Duration = .seconds(20)) async throws -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let leader = try await waitForLeader(timeout: deadline - ContinuousClock.now)
            if let (status, _) = try? await request(
                leader, "/admin/propose", method: .POST, body: "{\"count\":1,\"size\":256}", timeout: .seconds(3)
            ), status == 200 {
                return leader
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("no batond leader committed a proposal within \(timeout)\n\(logTails())")
    }

    /// Waits until every running replica reports the same applied index.
    func waitForConvergence(timeout: Duration = .seconds(30)) async throws -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        var last: [UInt64: UInt64] = [:]
        while ContinuousClock.now < deadline {
            last = [:]
            for id in ids where isRunning(id) {
                if let v = await view(id) { last[id] = v.appliedIndex }
            }
            let running = ids.filter { isRunning($0) }.count
            if last.count == running, let first = last.values.first, last.values.allSatisfy({ $0 == first }) {
                return first
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("batond replicas did not converge within \(timeout): applied \(last)\n\(logTails())")
    }
}
