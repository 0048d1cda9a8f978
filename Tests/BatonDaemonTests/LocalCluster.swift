import AsyncHTTPClient
import BatonJournal
import BatonTestCluster
import Foundation
import NIOCore
import NIOHTTP1
import RaftCore
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real `batond` processes on loopback, in a temporary directory, for process-level tests.
/// Every replica is a separate process started from the built `batond` executable; the test
/// talks to them only through their admin HTTP API and signals, as an operator would.
final class LocalCluster: Sendable {
    struct Replica: Sendable {
        var id: UInt64
        var peerPort: Int
        var adminPort: Int
        var dataDirectory: String
        var configPath: String
        var logPath: String
        var adminURL: String { "http://127.0.0.1:\(adminPort)" }
    }

    static let token = "process-test-token-0123456789"
    let directory: String
    /// The layout never changes after init; only the running processes do.
    let replicas: [UInt64: Replica]
    /// Running processes by node id. A load task reads this while the test kills and restarts.
    private let processes = Mutex<[UInt64: Process]>([:])
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    /// - Parameter spares: replicas that are not in the cluster when it is created: the others'
    ///   configurations do not list them at all (their address reaches the members through
    ///   `member add`), and a spare's own lists the founders as voters (so it starts as nobody's
    ///   voter and waits to be added).
    init(size: Int, spares: Set<UInt64> = [], extraConfig: String = "", environment: [String: String] = [:]) throws {
        Self.killOrphans()
        directory = NSTemporaryDirectory() + "baton-cluster-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ids = (1...UInt64(size)).map { $0 }
        var ports: [UInt64: (Int, Int)] = [:]
        for id in ids { ports[id] = (try Self.freePort(), try Self.freePort()) }
        var replicas: [UInt64: Replica] = [:]
        let founders = ids.filter { !spares.contains($0) }
        for id in ids {
            let listed = spares.contains(id) ? founders + [id] : founders
            let members = listed.map { "    \($0): 127.0.0.1:\(ports[$0]!.0)" }.joined(separator: "\n")
            let data = "\(directory)/n\(id)"
            let config = """
                cluster:
                  id: 4242
                  node_id: \(id)
                  members:
                \(members)
                  voters: [\(founders.map(String.init).joined(separator: ", "))]
                listen:
                  peer: 127.0.0.1:\(ports[id]!.0)
                  admin: 127.0.0.1:\(ports[id]!.1)
                data_dir: \(data)
                admin:
                  token: \(Self.token)
                log:
                  level: info
                  format: json
                \(extraConfig)
                """
            let path = "\(directory)/n\(id).yaml"
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            replicas[id] = Replica(
                id: id, peerPort: ports[id]!.0, adminPort: ports[id]!.1, dataDirectory: data, configPath: path,
                logPath: "\(directory)/n\(id).log"
            )
        }
        self.replicas = replicas
        self.environment = environment
    }

    let environment: [String: String]

    /// Stops every process and the HTTP client. Call at the end of every test.
    func shutdown() async {
        for id in replicas.keys { kill9(id) }
        try? await client.shutdown()
    }

    // MARK: - Processes

    static func executable(_ name: String) throws -> String { try ChildProcesses.executable(name) }

    func start(_ id: UInt64, extraEnvironment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executable("batond"))
        process.arguments = ["--config", replicas[id]!.configPath]
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("BATON_") && $0.key != "NOTIFY_SOCKET"
        }
        for (k, v) in environment { env[k] = v }
        for (k, v) in extraEnvironment { env[k] = v }
        process.environment = env
        FileManager.default.createFile(atPath: replicas[id]!.logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: replicas[id]!.logPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        processes.withLock { $0[id] = process }
    }

    func startAll() throws { for id in replicas.keys.sorted() { try start(id) } }

    func signal(_ id: UInt64, _ signal: Int32) {
        processes.withLock { processes in
            guard let process = processes[id], process.isRunning else { return }
            kill(process.processIdentifier, signal)
        }
    }

    func kill9(_ id: UInt64) {
        processes.withLock { processes in
            guard let process = processes.removeValue(forKey: id) else { return }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    private func pid(_ id: UInt64) -> Int32? {
        processes.withLock { $0[id]?.isRunning == true ? $0[id]!.processIdentifier : nil }
    }

    private func exitStatus(_ id: UInt64) -> Int32? {
        processes.withLock { processes in
            guard let process = processes[id], !process.isRunning else { return nil }
            processes[id] = nil
            return process.terminationStatus
        }
    }

    /// SIGTERM, then wait for a clean exit (the exit status is returned).
    func stop(_ id: UInt64, timeout: Duration = .seconds(10)) async throws -> Int32 {
        guard processes.withLock({ $0[id] != nil }) else { return 0 }
        signal(id, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus(id) { return status }
            if ContinuousClock.now > deadline {
                kill9(id)
                throw ClusterError("n\(id) did not exit within \(timeout) of SIGTERM\n\(tail(id))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func isRunning(_ id: UInt64) -> Bool { pid(id) != nil }

    /// Waits for the process to exit on its own and returns its exit status (nil: still running).
    func waitForExit(_ id: UInt64, timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus(id) { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func tail(_ id: UInt64, lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: replicas[id]!.logPath, encoding: .utf8)) ?? ""
        return "--- n\(id) log (last \(lines) lines) ---\n"
            + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func logs() -> String { replicas.keys.sorted().map { tail($0) }.joined(separator: "\n") }

    // MARK: - Admin API

    struct View: Decodable {
        var node: UInt64
        var role: String
        var term: UInt64
        var leader: UInt64?
        var commitIndex: UInt64
        var appliedIndex: UInt64
        var lastIndex: UInt64
        var leaseRemainingMs: Double?
    }

    struct ProposeReply: Decodable {
        var first: String
        var last: String
        var count: Int
        var tookMs: Double
    }

    func request(_ id: UInt64, _ path: String, method: HTTPMethod = .GET, body: String? = nil, timeout: Int64 = 2)
        async throws -> (status: UInt, body: Data)
    {
        var request = HTTPClientRequest(url: replicas[id]!.adminURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(Self.token)")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(timeout))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    func view(_ id: UInt64) async -> View? {
        guard let (status, body) = try? await request(id, "/cluster", timeout: 1), status == 200 else { return nil }
        return try? Self.decoder.decode(View.self, from: body)
    }

    /// Waits until one running replica leads and a majority of the running ones agree on it.
    func waitForLeader(
        excluding excluded: Set<UInt64> = [], agreeing: Int? = nil, timeout: Duration = .seconds(10)
    ) async throws -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var views: [View] = []
            for id in replicas.keys.sorted() where isRunning(id) {
                if let v = await view(id) { views.append(v) }
            }
            let leaders = views.filter { $0.role == "leader" && !excluded.contains($0.node) }
            if let leader = leaders.max(by: { $0.term < $1.term }),
                views.filter({ $0.leader == leader.node && $0.term == leader.term }).count >= (agreeing ?? replicas.count / 2 + 1)
            {
                return leader.node
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterError("no leader within \(timeout)\n\(logs())")
    }

    /// Proposes through whichever replica leads; nil when there is no leader right now.
    func propose(count: Int, size: Int = 64) async -> ProposeReply? {
        for id in replicas.keys.sorted() where isRunning(id) {
            guard
                let (status, body) = try? await request(
                    id, "/admin/propose", method: .POST, body: "{\"count\":\(count),\"size\":\(size)}", timeout: 3)
            else { continue }
            if status == 200 { return try? Self.decoder.decode(ProposeReply.self, from: body) }
        }
        return nil
    }

    /// Waits until every running replica has applied the same index, and it is at least `index`.
    func waitForConvergence(atLeast index: UInt64 = 0, timeout: Duration = .seconds(15)) async throws -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        var last: [UInt64: UInt64] = [:]
        while ContinuousClock.now < deadline {
            last = [:]
            for id in replicas.keys.sorted() where isRunning(id) {
                if let v = await view(id) { last[id] = v.appliedIndex }
            }
            let running = replicas.keys.filter { isRunning($0) }.count
            if last.count == running, let first = last.values.first, first >= index,
                last.values.allSatisfy({ $0 == first })
            {
                return first
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterError("replicas did not converge within \(timeout): applied \(last)\n\(logs())")
    }

    // MARK: - Journals (read after the processes stop)

    func verifyJournal(_ id: UInt64) throws -> JournalVerification {
        try RaftJournal.verify(directory: replicas[id]!.dataDirectory)
    }

    func committedLog(_ id: UInt64) throws -> [LogIndex: LogEntry] {
        let journal = try RaftJournal(directory: replicas[id]!.dataDirectory)
        let recovered = try journal.load()
        var entries: [LogIndex: LogEntry] = [:]
        for entry in recovered.state.entries where entry.index <= recovered.state.hardState.commit {
            entries[entry.index] = entry
        }
        return entries
    }

    /// Replicas left behind by an earlier test process that died before its cleanup (their parent
    /// is gone, so init adopted them): kill them so they cannot hold ports or CPU.
    static func killOrphans() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(),
                let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            else { continue }
            let arguments = String(decoding: cmdline, as: UTF8.self)
            guard arguments.contains("batond"), arguments.contains("/baton-cluster-") else { continue }
            // Field 4 of /proc/<pid>/stat is the parent pid (after the parenthesised name).
            let afterName = stat.split(separator: ")").last ?? ""
            let fields = afterName.split(separator: " ")
            if fields.count > 1, fields[1] == "1" { kill(pid, SIGKILL) }
        }
    }

    // MARK: - Ports

    static func freePort() throws -> Int { try ChildProcesses.freePort() }
}

struct ClusterError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Parses "term/index".
func position(_ text: String) -> LogPosition? {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let term = UInt64(parts[0]), let index = UInt64(parts[1]) else { return nil }
    return LogPosition(term: term, index: index)
}
