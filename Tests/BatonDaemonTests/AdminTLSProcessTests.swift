import AsyncHTTPClient
import BatonTestCluster
import Foundation
import NIOCore
import NIOSSL
import Testing

/// `admin.tls.*`: a real batond serving its admin plane over HTTPS, reached as an SRE reaches it
/// (batonctl with the CA that signed the replica's certificate) and as a scraper would (an HTTP
/// client that trusts that CA and nothing else).
@Suite("Admin plane over HTTPS", .serialized)
struct AdminTLSProcessTests {
    @Test func aReplicaServesItsAdminPlaneOverTLSAndOnlyToClientsThatTrustItsCA() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("admin-ca")
        try pki.makeCertificate("admin", ca: "admin-ca", subjectAltNames: ["IP:127.0.0.1"], extendedKeyUsage: "serverAuth")
        // A CA that signed nothing the replica presents.
        try pki.makeCA("other-ca")
        try "not a certificate\n".write(toFile: pki.path("garbage.pem"), atomically: true, encoding: .utf8)

        let cluster = try LocalCluster(
            size: 1,
            environment: ["BATON_ADMIN_TLS_CERT": pki.path("admin.pem"), "BATON_ADMIN_TLS_KEY": pki.path("admin.key")])
        try cluster.startAll()
        let port = cluster.replicas[1]!.adminPort
        let https = "https://127.0.0.1:\(port)"
        do {
            // batonctl with --ca-file: the table, with this replica as the leader once it has
            // elected itself.
            // (The row of a leader starts "n1  leader"; "no leader right now" is the footer.)
            func leads(_ output: String) -> Bool {
                output.split(separator: "\n").contains { $0.hasPrefix("n1 ") && $0.contains(" leader ") }
            }
            var status = try BatonctlTests.run(["status", "--admin", https, "--ca-file", pki.path("admin-ca.pem")])
            for _ in 0..<100 where !leads(status.output) {
                try await Task.sleep(for: .milliseconds(100))
                status = try BatonctlTests.run(["status", "--admin", https, "--ca-file", pki.path("admin-ca.pem")])
            }
            #expect(status.status == 0, "\(status.output)")
            #expect(leads(status.output) && status.output.contains(https), "\(status.output)")
            #expect(!status.output.contains("unreachable"), "\(status.output)")

            // The CA from the environment, and a mutating call: found the leader, proposed, over TLS.
            let propose = try BatonctlTests.run(
                ["propose", "--admin", https, "--count", "3"],
                environment: ["BATON_ADMIN_TOKEN": LocalCluster.token, "BATON_ADMIN_CA_FILE": pki.path("admin-ca.pem")])
            #expect(propose.status == 0, "\(propose.output)")
            #expect(propose.output.contains("\"count\":3"), "\(propose.output)")

            // Without the CA, or with another CA, the certificate does not verify: the replica is
            // unreachable and batonctl says why, not that there is no leader.
            let untrusted = try BatonctlTests.run(["status", "--admin", https])
            #expect(untrusted.output.contains("unreachable: \(https)"), "\(untrusted.output)")
            #expect(!leads(untrusted.output) && untrusted.output.contains("no leader right now"), "\(untrusted.output)")
            let otherCA = try BatonctlTests.run(["propose", "--admin", https, "--ca-file", pki.path("other-ca.pem")])
            #expect(otherCA.status != 0, "\(otherCA.output)")
            #expect(otherCA.output.contains("no replica answered: \(https)"), "\(otherCA.output)")
            // A file that is no certificate is named before anything is sent.
            let garbage = try BatonctlTests.run(["status", "--admin", https, "--ca-file", pki.path("garbage.pem")])
            #expect(garbage.status != 0, "\(garbage.output)")
            #expect(garbage.output.contains("--ca-file \(pki.path("garbage.pem"))"), "\(garbage.output)")

            // Plain HTTP to the TLS port gets no answer at all.
            let plain = try BatonctlTests.run(["status", "--admin", "http://127.0.0.1:\(port)", "--timeout", "2"])
            #expect(plain.output.contains("unreachable: http://127.0.0.1:\(port)"), "\(plain.output)")

            // A scraper that trusts the CA: probes open, everything else needs the token, as
            // over HTTP.
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(pki.path("admin-ca.pem"))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                func get(_ path: String, token: String?) async throws -> UInt {
                    var request = HTTPClientRequest(url: https + path)
                    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
                    let response = try await client.execute(request, timeout: .seconds(5))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    return response.status.code
                }
                #expect(try await get("/healthz", token: nil) == 200)
                #expect(try await get("/leader", token: nil) == 200)
                #expect(try await get("/cluster", token: nil) == 401)
                #expect(try await get("/cluster", token: "wrong-token-0123456789") == 401)
                #expect(try await get("/cluster", token: LocalCluster.token) == 200)
                #expect(try await get("/metrics", token: LocalCluster.token) == 200)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            #expect(try await cluster.stop(1) == 0, "\(cluster.tail(1))")
        } catch {
            print(cluster.logs())
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }
}
