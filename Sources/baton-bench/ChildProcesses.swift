import BatonTestCluster
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Every process the bench starts (batond, etcd) and the scratch directory they live in.
///
/// The bench must never leave a replica running behind it: `terminateAll()` runs on a normal
/// exit, when a command throws, and from the SIGINT/SIGTERM/SIGHUP handlers installed by
/// `installSignalHandlers()`. Children are killed with SIGKILL, which is also what the failover
/// benchmark does on purpose.
final class ChildProcesses: Sendable {
    static let shared = ChildProcesses()

    /// Running children by name ("batond-n1", "etcd-e2"). `Process` is not `Sendable`; the mutex
    /// is the only way it is reached, and each handle is used by one caller at a time under it.
    private let running = Mutex<[String: Process]>([:])
    private let scratchDirectories = Mutex<[String]>([])
    private let signalSources = Mutex<[any DispatchSourceSignal]>([])
    /// Other cleanups to run on a signal: the trading benchmarks' clusters, whose processes
    /// BatonTestCluster starts and tracks itself.
    private let cleanups = Mutex<[@Sendable () -> Void]>([])

    func onSignal(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.withLock { $0.append(cleanup) }
    }

    /// Starts `executable` with `arguments`; stdout and stderr go to `logPath`.
    func launch(name: String, executable: String, arguments: [String], logPath: String) throws -> Int32 {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw BenchError("\(executable) is not an executable file (build it, or pass its path)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // The bench's own environment must not reconfigure the replicas (BATON_* overrides keys).
        process.environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("BATON_") && !$0.key.hasPrefix("ETCD") && $0.key != "NOTIFY_SOCKET"
        }
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try running.withLock { running in
            if let old = running[name], old.isRunning {
                throw BenchError("\(name) is already running (pid \(old.processIdentifier))")
            }
            try process.run()
            running[name] = process
        }
        return process.processIdentifier
    }

    /// SIGKILL and reap one child; returns when it is gone. No-op if it is not running.
    func kill9(_ name: String) {
        let process = running.withLock { $0.removeValue(forKey: name) }
        guard let process else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func pid(_ name: String) -> Int32? {
        running.withLock { running in
            guard let process = running[name], process.isRunning else { return nil }
            return process.processIdentifier
        }
    }

    func isRunning(_ name: String) -> Bool { pid(name) != nil }

    /// Throws if a child the bench started (and did not kill itself) has stopped, saying how it
    /// ended. A replica that dies mid-benchmark would otherwise just make the cluster smaller
    /// (and faster), and the numbers would describe something else.
    func requireRunning(_ names: [String]) throws {
        for name in names {
            let ended = running.withLock { running -> String? in
                guard let process = running[name] else { return "was not started or was already stopped" }
                if process.isRunning { return nil }
                let how = process.terminationReason == .uncaughtSignal ? "killed by signal" : "exited with status"
                return "\(how) \(process.terminationStatus) (pid \(process.processIdentifier))"
            }
            if let ended {
                throw BenchError(
                    "\(name) is no longer running: it \(ended); see its log. "
                        + "The results would not describe a full cluster, so the run stops here."
                )
            }
        }
    }

    /// Registers a directory to delete when the bench ends.
    func registerScratch(_ path: String) {
        scratchDirectories.withLock { $0.append(path) }
    }

    func removeScratch(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        scratchDirectories.withLock { $0.removeAll { $0 == path } }
    }

    /// Kills every child and deletes every scratch directory. Safe to call more than once and from
    /// a signal source's queue.
    func terminateAll() {
        let processes = running.withLock { running in
            let all = Array(running.values)
            running.removeAll()
            return all
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
        let directories = scratchDirectories.withLock { directories in
            let all = directories
            directories.removeAll()
            return all
        }
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// SIGINT, SIGTERM and SIGHUP kill every child, delete the scratch directories and exit.
    func installSignalHandlers() {
        signalSources.withLock { sources in
            guard sources.isEmpty else { return }
            for (number, code) in [(SIGINT, Int32(130)), (SIGTERM, 143), (SIGHUP, 129)] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    FileHandle.standardError.write(
                        Data("baton-bench: signal \(number): killing child processes\n".utf8))
                    ChildProcesses.shared.terminateAll()
                    for cleanup in ChildProcesses.shared.cleanups.withLock({ $0 }) { cleanup() }
                    exit(code)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// An error that reaches the person running the bench: what went wrong and what to do.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Makes a fresh scratch directory under `base` and registers it for deletion.
func makeScratchDirectory(base: String, prefix: String) throws -> String {
    let root = base.hasSuffix("/") ? String(base.dropLast()) : base
    let path = "\(root)/\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    ChildProcesses.shared.registerScratch(path)
    return path
}

/// A loopback TCP port that was free a moment ago: the test clusters' picker, which stays out
/// of the kernel's ephemeral range (a replica's port taken by an outgoing connection killed it).
func freeLoopbackPort() throws -> Int { try BatonTestCluster.ChildProcesses.freePort() }

/// Resident memory of a process in KiB (VmRSS in /proc/<pid>/status), nil if unreadable.
func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat.
func cpuSeconds(pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let afterName = stat.lastIndex(of: ")")
    else { return nil }
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let fields = stat[stat.index(after: afterName)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
