import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`: what batond tells systemd, and when.
final class NotifySocket {
    let path: String
    private let fd: Int32
    private(set) var messages: [(at: ContinuousClock.Instant, text: String)] = []

    init() throws {
        path = NSTemporaryDirectory() + "baton-notify-\(UUID().uuidString.prefix(8)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError("socket(AF_UNIX) failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw ClusterError("bind(\(path)) failed: \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Reads datagrams for `duration`, returning the ones received in that window.
    @discardableResult
    func collect(for duration: Duration) -> [(at: ContinuousClock.Instant, text: String)] {
        let deadline = ContinuousClock.now + duration
        var window: [(at: ContinuousClock.Instant, text: String)] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                let message = (ContinuousClock.now, String(decoding: buffer[0..<n], as: UTF8.self))
                window.append(message)
                messages.append(message)
            }
        }
        return window
    }

    func count(_ prefix: String, in window: [(at: ContinuousClock.Instant, text: String)]) -> Int {
        window.filter { $0.text.hasPrefix(prefix) }.count
    }
}

@Suite("systemd integration", .serialized)
struct SystemdNotifyTests {
    @Test func notifyReadyStatusWatchdogReloadStopping() async throws {
        let notify = try NotifySocket()
        let cluster = try LocalCluster(size: 1, extraConfig: "debug:\n  endpoints: true")
        // 400 ms watchdog: a ping is due every 200 ms while the loop ticks.
        try cluster.start(1, extraEnvironment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        do {
            let startup = notify.collect(for: .seconds(2))
            #expect(notify.count("READY=1", in: startup) == 1, "\(startup.map(\.text))")
            #expect(startup.contains { $0.text.hasPrefix("STATUS=role=") && $0.text.contains("term=") })
            let pings = startup.filter { $0.text == "WATCHDOG=1" }
            #expect(pings.count >= 5, "expected a ping every ~200 ms, got \(pings.count) in 2 s")
            // The cadence: no gap between pings longer than the watchdog interval itself.
            let gaps = zip(pings.dropFirst(), pings).map { $0.at - $1.at }
            #expect(gaps.allSatisfy { $0 < .milliseconds(400) }, "gaps: \(gaps)")

            // Wedge the consensus loop: the pings must stop, so systemd's watchdog would fire.
            let (status, _) = try await cluster.request(1, "/admin/debug/stall", method: .POST, body: "{\"ms\": 1500}")
            #expect(status == 202)
            notify.collect(for: .milliseconds(250))  // a ping already on its way may still land
            let stalled = notify.collect(for: .milliseconds(1000))
            #expect(notify.count("WATCHDOG=1", in: stalled) == 0, "pings continued while the loop was wedged")
            notify.collect(for: .milliseconds(500))
            let recovered = notify.collect(for: .seconds(1))
            #expect(notify.count("WATCHDOG=1", in: recovered) >= 2, "pings did not resume after the stall")

            // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
            cluster.signal(1, SIGHUP)
            let reload = notify.collect(for: .seconds(1))
            let reloading = reload.firstIndex { $0.text.hasPrefix("RELOADING=1") }
            #expect(reloading != nil, "\(reload.map(\.text))")
            if let reloading {
                #expect(reload[reloading].text.contains("MONOTONIC_USEC="))
                #expect(reload[(reloading + 1)...].contains { $0.text == "READY=1" })
            }

            // SIGTERM: STOPPING=1, and a clean exit.
            cluster.signal(1, SIGTERM)
            let stopping = notify.collect(for: .seconds(2))
            #expect(notify.count("STOPPING=1", in: stopping) >= 1, "\(stopping.map(\.text))")
            #expect(!cluster.isRunning(1))
        } catch {
            Issue.record("\(error)\n\(cluster.logs())")
        }
        await cluster.shutdown()
    }

    @Test func unitFileVerifies() throws {
        let unit = try String(contentsOfFile: "deploy/systemd/batond@.service", encoding: .utf8)
        #expect(unit.contains("Type=notify"))
        #expect(unit.contains("WatchdogSec="))
        #expect(unit.contains("Restart=on-failure"))
        // systemd-analyze checks that ExecStart exists: point it at the binary we built.
        let copy = NSTemporaryDirectory() + "batond@.service"
        try unit.replacingOccurrences(of: "/usr/local/bin/batond", with: try LocalCluster.executable("batond"))
            .write(toFile: copy, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = ["verify", copy]
        let output = Pipe()
        process.standardError = output
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(!text.contains("Unknown key") && !text.contains("Failed to parse"), "\(text)")
    }
}
