import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Three etcd members on loopback in a scratch directory, started the way the etcd docs start a
/// static cluster (`--initial-cluster`), with etcd's own defaults for fsync, heartbeat (100 ms)
/// and election timeout (1000 ms).
final class EtcdCluster: Sendable {
    struct Member: Sendable {
        var name: String
        var clientPort: Int
        var peerPort: Int
        var dataDirectory: String
        var logPath: String
        var clientURL: String { "http://127.0.0.1:\(clientPort)" }
        var peerURL: String { "http://127.0.0.1:\(peerPort)" }
        var processName: String { "etcd-\(name)" }
    }

    let etcd: String
    let members: [Member]
    let client: HTTPClient

    init(etcd: String, directory: String, size: Int = 3, client: HTTPClient) throws {
        self.etcd = etcd
        self.client = client
        var members: [Member] = []
        for i in 1...size {
            members.append(
                Member(
                    name: "e\(i)", clientPort: try freeLoopbackPort(), peerPort: try freeLoopbackPort(),
                    dataDirectory: "\(directory)/e\(i)", logPath: "\(directory)/e\(i).log"
                )
            )
        }
        self.members = members
    }

    func startAll() throws {
        let initialCluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        for m in members {
            _ = try ChildProcesses.shared.launch(
                name: m.processName, executable: etcd,
                arguments: [
                    "--name", m.name, "--data-dir", m.dataDirectory,
                    "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
                    "--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
                    "--initial-cluster", initialCluster, "--initial-cluster-token", "baton-bench",
                    "--initial-cluster-state", "new", "--logger", "zap", "--log-level", "warn",
                ],
                logPath: m.logPath
            )
        }
    }

    func stopAll() { for m in members { ChildProcesses.shared.kill9(m.processName) } }

    func pid(_ m: Member) -> Int32? { ChildProcesses.shared.pid(m.processName) }

    func logTails(lines: Int = 15) -> String {
        members.map { m in
            let text = (try? String(contentsOfFile: m.logPath, encoding: .utf8)) ?? ""
            return "--- \(m.name) log ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// One write through the gRPC gateway: `POST /v3/kv/put` with base64 key and value.
    func putRequest(to m: Member, valueSize: Int = 256) -> WriteRequest {
        let key = Data("baton-bench/key".utf8).base64EncodedString()
        let value = Data(repeating: 0x2E, count: valueSize).base64EncodedString()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        return WriteRequest(
            url: m.clientURL + "/v3/kv/put", headers: headers,
            body: ByteBuffer(string: "{\"key\":\"\(key)\",\"value\":\"\(value)\"}")
        )
    }

    private struct Status: Decodable {
        struct Header: Decodable {
            var memberId: String?
        }
        var header: Header?
        var leader: String?
    }

    /// The member that is the Raft leader (by `POST /v3/maintenance/status`) once a put through it
    /// succeeds, so the benchmark writes to the leader like it does for Baton.
    func waitForLeader(timeout: Duration = .seconds(30)) async throws -> Member {
        let deadline = ContinuousClock.now + timeout
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        while ContinuousClock.now < deadline {
            for m in members {
                var request = HTTPClientRequest(url: m.clientURL + "/v3/maintenance/status")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: "{}"))
                guard let response = try? await client.execute(request, timeout: .seconds(1)),
                    let bytes = try? await response.body.collect(upTo: 1 << 20), response.status == .ok,
                    let status = try? decoder.decode(Status.self, from: Data(bytes.readableBytesView)),
                    let leader = status.leader, leader != "0", leader == status.header?.memberId
                else { continue }
                if await putRequest(to: m).send(with: client, timeout: .seconds(3)) == nil { return m }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("the etcd cluster elected no leader within \(timeout)\n\(logTails())")
    }
}
