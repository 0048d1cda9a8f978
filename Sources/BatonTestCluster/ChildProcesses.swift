import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public struct ClusterFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Named child processes with their logs in files: started, signalled, killed and waited for
/// the way an operator would, so tests and the chaos run exercise the real binaries.
public final class ChildProcesses: Sendable {
    private let running = Mutex<[String: Process]>([:])

    public init() {
        Self.sweepOrphans
    }

    /// Children are written down per owning process in this directory, so that the children of
    /// a test run that crashed (a trap skips every `defer`) are killed by the next run instead of
    /// loading the machine under it.
    public static let registry = NSTemporaryDirectory() + "baton-children"

    /// Once per process: kill the recorded children of owners that no longer exist.
    static let sweepOrphans: Void = { _ = sweep() }()

    /// Kills the recorded children of owners that no longer exist; returns the pids killed.
    @discardableResult
    public static func sweep() -> [Int32] {
        var killed: [Int32] = []
        try? FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        let owners = (try? FileManager.default.contentsOfDirectory(atPath: registry)) ?? []
        for owner in owners {
            guard let ownerPID = Int32(owner), ownerPID != getpid() else { continue }
            if kill(ownerPID, 0) == 0 || errno != ESRCH { continue }
            let path = "\(registry)/\(owner)"
            let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
            for line in lines {
                // "<pid> <executable>": kill it only if that pid still runs that executable.
                let parts = line.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, let pid = Int32(parts[0]),
                    let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"),
                    exe == String(parts[1])
                else { continue }
                kill(pid, SIGCONT)
                kill(pid, SIGKILL)
                killed.append(pid)
                FileHandle.standardError.write(
                    Data("ChildProcesses: killed \(parts[1]) (pid \(pid)) left by crashed process \(ownerPID)\n".utf8))
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        return killed
    }

    private static func record(_ pid: Int32, executable: String) {
        let line = "\(pid) \(URL(fileURLWithPath: executable).resolvingSymlinksInPath().path)\n"
        let path = "\(registry)/\(getpid())"
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        try? handle.close()
    }

    /// Starts `executable` as `name`, appending its stdout and stderr to `logPath`; in a network
    /// namespace through `ip netns exec`, which execs the program in place, so the pid (and every
    /// signal) is the program's own.
    public func start(
        _ name: String, executable: String, arguments: [String], logPath: String, environment: [String: String] = [:],
        namespace: String? = nil
    ) throws {
        let process = Process()
        if let namespace {
            process.executableURL = URL(fileURLWithPath: NetworkNamespaces.ipPath)
            process.arguments = ["netns", "exec", namespace, executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("BATON_") && $0.key != "NOTIFY_SOCKET"
        }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if !FileManager.default.fileExists(atPath: logPath) {
            FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        Self.record(process.processIdentifier, executable: executable)
        running.withLock { $0[name] = process }
    }

    public func pid(_ name: String) -> Int32? {
        running.withLock { $0[name]?.isRunning == true ? $0[name]!.processIdentifier : nil }
    }

    public func isRunning(_ name: String) -> Bool { pid(name) != nil }

    public func signal(_ name: String, _ signal: Int32) {
        running.withLock { processes in
            guard let process = processes[name], process.isRunning else { return }
            kill(process.processIdentifier, signal)
        }
    }

    /// SIGKILL and reap.
    public func kill9(_ name: String) {
        running.withLock { processes in
            guard let process = processes.removeValue(forKey: name) else { return }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// SIGTERM, then wait for the exit (SIGKILL after `timeout`). Returns the exit status.
    @discardableResult
    public func stop(_ name: String, timeout: Duration = .seconds(10)) async -> Int32? {
        guard let process = running.withLock({ $0[name] }) else { return nil }
        signal(name, SIGCONT)
        signal(name, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill9(name)
            return nil
        }
        running.withLock { _ = $0.removeValue(forKey: name) }
        return process.terminationStatus
    }

    public func killAll() {
        for name in running.withLock({ Array($0.keys) }) {
            signal(name, SIGCONT)
            kill9(name)
        }
    }

    // MARK: - Helpers

    /// Runs the built executable `name` (or the program at an absolute path) to its end, a
    /// command-line tool rather than a service: its exit status and its stdout and stderr together.
    public static func run(_ name: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: name.hasPrefix("/") ? name : try executable(name))
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The built executable `name`: next to the running binary or test bundle, or in .build.
    public static func executable(_ name: String) throws -> String {
        var candidates: [URL] = []
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        candidates.append(
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name))
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name))
        }
        candidates.append(
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                ".build/debug/\(name)"))
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        throw ClusterFailure(
            "cannot find the \(name) executable (looked in \(candidates.map(\.path))); build it with `swift build`")
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago, chosen below the kernel's ephemeral
    /// range (`net.ipv4.ip_local_port_range`, 32768–60999 by default). A port the kernel picked
    /// for us (bind to 0) comes from that range, so an outgoing connection of any process — a
    /// replica dialling a peer, the feed, the broker — could take it before the replica meant to
    /// listen on it binds: a replica then dies at start with "Address already in use".
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 20_000..<32_000)
            // Never the same port twice from this process: a cluster asks for several at once.
            guard handedOut.withLock({ $0.insert(candidate).inserted }) else { continue }
            if canBind(candidate) { return candidate }
        }
        throw ClusterFailure("no free TCP port on 127.0.0.1 in 20000…31999 after 200 tries")
    }

    private static let handedOut = Mutex<Set<Int>>([])

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return bound == 0
    }

    /// Resident memory of a process in bytes (VmRSS), nil if it is gone.
    public static func residentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
