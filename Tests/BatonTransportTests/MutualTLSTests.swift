import BatonTestCluster
import BatonTransport
import RaftCore
import Testing

/// Mutual TLS with certificates made by the openssl CLI for each run.
@Suite("Peer transport with mutual TLS", .serialized, .timeLimit(.minutes(2)))
struct MutualTLSTests {
    @Test("TLS peers with certificates from the cluster CA exchange messages")
    func exchange() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("cluster-ca")
        let tls1 = try pki.makeNode("node-1", ca: "cluster-ca")
        let tls2 = try pki.makeNode("node-2", ca: "cluster-ca")
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]], tls: tls1)
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]], tls: tls2)
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            let inboxA = Inbox(a)
            let inboxB = Inbox(b)
            a.send(heartbeat(from: 1, to: 2))
            b.send(heartbeat(from: 2, to: 1))
            #expect(await eventually { inboxA.messages.count == 1 && inboxB.messages.count == 1 })
        }
    }

    @Test("a peer whose certificate another CA signed cannot connect")
    func foreignCA() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("cluster-ca")
        try pki.makeCA("rogue-ca")
        let tls1 = try pki.makeNode("node-1", ca: "cluster-ca")
        let rogue = try pki.makeNode("node-2", ca: "rogue-ca")
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]], tls: tls1)
        let intruder = makeTransport(2, port: ports[1], peers: [1: ports[0]], tls: rogue)
        try await withTransports([a, intruder]) {
            try await a.start()
            try await intruder.start()
            let inboxA = Inbox(a)
            intruder.send(heartbeat(from: 2, to: 1))
            #expect(
                await eventually {
                    (status(intruder, 1)?.reconnects ?? 0) >= 2 && status(intruder, 1)?.lastError != nil
                })
            #expect(status(intruder, 1)?.connected == false)
            #expect(status(intruder, 1)?.lastError?.contains("TLS handshake failed") == true)
            #expect(status(a, 2)?.connected == false, "and n1 does not accept n2's listener either")
            #expect(inboxA.messages.isEmpty)
        }
    }

    @Test("a certificate of the cluster CA cannot speak for another node id, in either direction")
    func certificateMustNameTheClaimedNode() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("cluster-ca")
        let tls1 = try pki.makeNode("node-1", ca: "cluster-ca")
        // Signed by the right CA, but issued to node 3: it must not be able to act as node 2.
        let impostor = try pki.makeNode("node-3", ca: "cluster-ca")
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]], tls: tls1)
        let b = makeTransport(2, port: ports[1], peers: [1: ports[0]], tls: impostor)
        try await withTransports([a, b]) {
            try await a.start()
            try await b.start()
            let inboxA = Inbox(a)
            let inboxB = Inbox(b)
            a.send(heartbeat(from: 1, to: 2))
            b.send(heartbeat(from: 2, to: 1))
            #expect(
                await eventually {
                    (status(b, 1)?.lastError?.contains("node-3, not node-2") ?? false)
                        && (status(a, 2)?.lastError?.contains("node-3, not node-2") ?? false)
                }, "b: \(String(describing: status(b, 1)?.lastError)); a: \(String(describing: status(a, 2)?.lastError))")
            #expect(status(b, 1)?.connected == false)
            #expect(status(a, 2)?.connected == false)
            #expect(inboxA.messages.isEmpty && inboxB.messages.isEmpty)
        }
    }

    @Test("a plain-TCP peer cannot talk to a TLS listener")
    func plainToTLS() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("cluster-ca")
        let tls1 = try pki.makeNode("node-1", ca: "cluster-ca")
        let ports = try await freePorts(2)
        let a = makeTransport(1, port: ports[0], peers: [2: ports[1]], tls: tls1)
        let plain = makeTransport(2, port: ports[1], peers: [1: ports[0]])
        try await withTransports([a, plain]) {
            try await a.start()
            try await plain.start()
            let inboxA = Inbox(a)
            plain.send(heartbeat(from: 2, to: 1))
            #expect(await eventually { (status(plain, 1)?.reconnects ?? 0) >= 2 && status(plain, 1)?.lastError != nil })
            #expect(status(plain, 1)?.connected == false)
            #expect(inboxA.messages.isEmpty)
        }
    }

    @Test("missing TLS material is refused at start, naming the option and the file")
    func missingFiles() async throws {
        let transport = makeTransport(
            1, port: 0, peers: [:],
            tls: MutualTLSOptions(
                caCertificatePath: "/nonexistent/ca.pem", certificatePath: "/nonexistent/n1.pem",
                privateKeyPath: "/nonexistent/n1.key")
        )
        await #expect {
            try await transport.start()
        } throws: { error in
            "\(error)".contains("tls.caCertificatePath") && "\(error)".contains("/nonexistent/ca.pem")
        }
        await transport.shutdown()
    }
}
