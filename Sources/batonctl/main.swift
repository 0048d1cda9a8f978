import ArgumentParser
import AsyncHTTPClient
import BatonJournal
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The on-call command line over the admin API (and, for `journal verify`, over a data dir).
@main
struct BatonCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batonctl",
        abstract: "On-call CLI for a Baton cluster.",
        subcommands: [Status.self, TransferLeadership.self, Propose.self, Journal.self]
    )
}

struct AdminOptions: ParsableArguments {
    @Option(
        name: .customLong("admin"),
        help: "Comma-separated admin URLs of the replicas (env BATON_ADMIN_URLS; default: the local cluster)."
    )
    var adminURLs: String =
        ProcessInfo.processInfo.environment["BATON_ADMIN_URLS"]
        ?? "http://127.0.0.1:7201,http://127.0.0.1:7202,http://127.0.0.1:7203"

    @Option(help: "Bearer token for actions (env BATON_ADMIN_TOKEN).")
    var token: String? = ProcessInfo.processInfo.environment["BATON_ADMIN_TOKEN"]

    @Option(help: "Seconds to wait for each replica.")
    var timeout: Int = 5

    var urls: [String] {
        adminURLs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }
}

/// What `/cluster` returns (see BatonDaemon.ConsensusLoop.ClusterView).
struct ClusterView: Decodable {
    struct Member: Decodable {
        var id: UInt64
        var voter: Bool
        var match: UInt64?
        var lag: UInt64?
        var state: String?
    }
    struct Peer: Decodable {
        var id: UInt64
        var connected: Bool
    }
    var node: UInt64
    var role: String
    var term: UInt64
    var leader: UInt64?
    var commitIndex: UInt64
    var appliedIndex: UInt64
    var lastIndex: UInt64
    var leaseRemainingMs: Double?
    var members: [Member]
    var peers: [Peer]
}

enum Admin {
    static func get(_ url: String, timeout: Int) async throws -> (status: UInt, body: Data) {
        try await send(url, method: .GET, token: nil, body: nil, timeout: timeout)
    }

    static func send(_ url: String, method: HTTPMethod, token: String?, body: Data?, timeout: Int) async throws
        -> (status: UInt, body: Data)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (response.status.code, Data(bytes.readableBytesView))
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Asks every replica who leads and returns the leader's admin URL.
    static func findLeader(_ options: AdminOptions) async throws -> String {
        for url in options.urls {
            if let (status, _) = try? await get("\(url)/leader", timeout: options.timeout), status == 200 { return url }
        }
        throw ValidationError(
            "no replica at \(options.urls.joined(separator: ", ")) answers /leader with 200: no leader right now?")
    }

    static func message(_ body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let error = object["error"] {
            return "\(error)"
        }
        return String(decoding: body, as: UTF8.self)
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show every replica's view of the cluster as a table.")
    @OptionGroup var options: AdminOptions

    func run() async throws {
        var rows: [[String]] = [
            ["NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "LEASE", "PEERS UP", "ADMIN"]
        ]
        var leaders: Set<UInt64> = []
        for url in options.urls {
            do {
                let (_, body) = try await Admin.get("\(url)/cluster", timeout: options.timeout)
                let view = try Admin.decoder.decode(ClusterView.self, from: body)
                if view.role == "leader" { leaders.insert(view.node) }
                rows.append([
                    "n\(view.node)", view.role, "\(view.term)", view.leader.map { "n\($0)" } ?? "-",
                    "\(view.commitIndex)", "\(view.appliedIndex)", "\(view.lastIndex)",
                    view.leaseRemainingMs.map { String(format: "%.0fms", $0) } ?? "-",
                    "\(view.peers.filter(\.connected).count)/\(view.peers.count)", url,
                ])
            } catch {
                rows.append(["?", "unreachable", "-", "-", "-", "-", "-", "-", "-", url])
            }
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(
                row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                    separator: "  "))
        }
        if leaders.count > 1 { print("warning: more than one replica reports itself leader (different terms?)") }
        if leaders.isEmpty { print("no leader right now") }
    }
}

struct TransferLeadership: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer-leadership",
        abstract: "Hand leadership from the current leader to another voter (default: the most caught-up)."
    )
    @OptionGroup var options: AdminOptions
    @Option(help: "Target node id.")
    var to: UInt64?

    func run() async throws {
        let leader = try await Admin.findLeader(options)
        let body = try JSONSerialization.data(withJSONObject: to.map { ["to": $0] } ?? [:])
        let (status, reply) = try await Admin.send(
            "\(leader)/admin/transfer-leadership", method: .POST, token: options.token, body: body,
            timeout: options.timeout + 5
        )
        guard status == 200 else { throw ValidationError("transfer failed (HTTP \(status)): \(Admin.message(reply))") }
        print(String(decoding: reply, as: UTF8.self))
    }
}

struct Propose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Propose test entries through the leader and wait until they are committed."
    )
    @OptionGroup var options: AdminOptions
    @Option(help: "Entries per request.")
    var count: Int = 10
    @Option(help: "Bytes per entry.")
    var size: Int = 256
    @Option(help: "Number of requests, one after the other.")
    var repeatCount: Int = 1

    func run() async throws {
        let leader = try await Admin.findLeader(options)
        let body = try JSONSerialization.data(withJSONObject: ["count": count, "size": size])
        for _ in 0..<max(1, repeatCount) {
            let (status, reply) = try await Admin.send(
                "\(leader)/admin/propose", method: .POST, token: options.token, body: body, timeout: options.timeout + 5
            )
            guard status == 200 else {
                throw ValidationError("propose failed (HTTP \(status)): \(Admin.message(reply))")
            }
            print(String(decoding: reply, as: UTF8.self))
        }
    }
}

struct Journal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect a replica's journal.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the journal's SHA-256 chain and report the first broken link."
        )
        @Option(help: "The replica's data directory.")
        var dataDir: String

        func run() async throws {
            // The journal logs at info when it opens; a CLI's output is its report alone.
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
            let report = try RaftJournal.verify(directory: dataDir)
            print(report.description)
            if !report.isIntact { throw ExitCode(1) }
        }
    }
}
