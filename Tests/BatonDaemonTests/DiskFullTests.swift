import Foundation
import RaftCore
import Testing

/// A replica whose journal runs out of disk: it stops acknowledging, says why, and exits non-zero
/// for its supervisor; the cluster goes on and no acknowledged entry is lost. The full disk is a
/// real one: a 6 MiB tmpfs mounted as the leader's data directory (the tests run as root, as CI
/// does on this machine kind).
@Suite(.serialized) struct DiskFullTests {
    static func mount(tmpfsOfMiB size: Int, at path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/mount")
        process.arguments = ["-t", "tmpfs", "-o", "size=\(size)m", "tmpfs", path]
        let output = Pipe()
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ClusterError("mount -t tmpfs at \(path) failed (this test needs root): \(message)")
        }
    }

    static func unmount(_ path: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/umount")
        process.arguments = ["-l", path]
        try? process.run()
        process.waitUntilExit()
    }

    @Test func aLeaderWhoseDiskFillsExitsAndNoAcknowledgedEntryIsLost() async throws {
        let cluster = try LocalCluster(size: 3)
        let full = cluster.replicas[1]!.dataDirectory
        try Self.mount(tmpfsOfMiB: 6, at: full)
        defer { Self.unmount(full) }
        try cluster.startAll()
        var leader = try await cluster.waitForLeader()
        if leader != 1 {
            let (status, body) = try await cluster.request(
                leader, "/admin/transfer-leadership", method: .POST, body: "{\"to\": 1}", timeout: 10)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            leader = try await cluster.waitForLeader()
        }
        #expect(leader == 1, "the replica on the small disk leads")

        // Load until the disk is full: 160 KiB per request, 6 MiB of disk.
        struct Reply: Decodable {
            var first: String
            var last: String
        }
        var acknowledged: [(term: UInt64, index: UInt64)] = []
        var refusals: [String] = []
        for _ in 0..<400 where cluster.isRunning(1) {
            guard
                let (status, body) = try? await cluster.request(
                    1, "/admin/propose", method: .POST, body: "{\"count\": 20, \"size\": 8192}", timeout: 15)
            else { break }
            guard status == 200 else {
                refusals.append("HTTP \(status): \(String(decoding: body, as: UTF8.self).prefix(200))")
                continue
            }
            let reply = try LocalCluster.decoder.decode(Reply.self, from: body)
            let parse = { (text: String) -> (UInt64, UInt64) in
                let parts = text.split(separator: "/").compactMap { UInt64($0) }
                return (parts[0], parts[1])
            }
            let (term, first) = parse(reply.first)
            let (_, last) = parse(reply.last)
            for index in first...last { acknowledged.append((term, index)) }
        }
        let status = try await cluster.waitForExit(1, timeout: .seconds(20))
        let log = (try? String(contentsOfFile: cluster.replicas[1]!.logPath, encoding: .utf8)) ?? ""
        #expect(status != nil && status != 0, "the full replica exits non-zero for its supervisor\n\(cluster.tail(1))")
        #expect(log.contains("disk is full") || log.contains("No space left"), "the log says why\n\(cluster.tail(1))")
        #expect(acknowledged.count >= 100, "the load got going before the disk filled: \(acknowledged.count); \(refusals.prefix(3))")

        // The others carry on, and every acknowledged entry is in their journals.
        let next = try await cluster.waitForLeader(excluding: [1], timeout: .seconds(10))
        let (after, _) = try await cluster.request(
            next, "/admin/propose", method: .POST, body: "{\"count\": 1, \"size\": 16}", timeout: 10)
        #expect(after == 200, "the survivors commit new entries")
        for id: UInt64 in [2, 3] {
            #expect(try await cluster.stop(id) == 0)
            let log = try cluster.committedLog(id)
            let missing = acknowledged.filter { log[LogIndex($0.index)]?.term != Term($0.term) }
            #expect(missing.isEmpty, "n\(id) lacks \(missing.count) acknowledged entries, first \(missing.first.map { "\($0)" } ?? "")")
        }
        await cluster.shutdown()
    }
}
