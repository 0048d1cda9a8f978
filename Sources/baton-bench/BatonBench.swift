import ArgumentParser
import AsyncHTTPClient
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// On-demand benchmarks of a replicated Baton journal (doc/benchmarks.md). Everything runs on
/// 127.0.0.1; every process the bench starts is killed when it ends, also on error or SIGINT.
/// cluster/bench/run.sh runs all of them the way the document reports them.
@main
struct BatonBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-bench",
        abstract: "Benchmarks: fsync floor, commit (vs etcd), failover, transfer, tick-to-order, feed ingest, trading failover, chaos.",
        subcommands: [
            FsyncFloor.self, Commit.self, Failover.self, Transfer.self, TickToOrder.self, FeedIngest.self, FeedCapture.self,
            TradingFailover.self, TradingTransfer.self, Chaos.self, Nemesis.self,
        ]
    )
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Directory for scratch data (data dirs, configs, logs); a fresh subdirectory is made and deleted.")
    var workDir: String = "/tmp"

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?
}

/// Prints at once, so progress shows when the output is piped through tee.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func list<T: LosslessStringConvertible>(_ text: String) throws -> [T] {
    try text.split(separator: ",").map {
        guard let value = T(String($0).trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("'\($0)' in '\(text)' is not a valid number")
        }
        return value
    }
}

/// Runs `body`, then kills every child and deletes the scratch directories whatever happened.
func withChildCleanup<T>(_ body: () async throws -> T) async throws -> T {
    ChildProcesses.shared.installSignalHandlers()
    do {
        let result = try await body()
        ChildProcesses.shared.terminateAll()
        return result
    } catch {
        ChildProcesses.shared.terminateAll()
        throw error
    }
}

func withHTTPClient<T>(failFast: Bool = false, _ body: (HTTPClient) async throws -> T) async throws -> T {
    let client = makeHTTPClient(failFast: failFast)
    do {
        let result = try await body(client)
        try? await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

func machineDescription() -> [String: String] {
    var info: [String: String] = [:]
    info["cores"] = String(ProcessInfo.processInfo.activeProcessorCount)
    info["memory_gib"] = format(Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824, 1)
    info["os"] = ProcessInfo.processInfo.operatingSystemVersionString
    if let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let model = cpu.split(separator: "\n").first(where: { $0.hasPrefix("model name") })
    {
        info["cpu"] = model.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
    }
    return info
}

// MARK: - fsync floor

struct FsyncFloor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsync",
        abstract: "The disk's floor: write 256 B then fdatasync/fsync, in a loop, in --dir."
    )

    @Option(help: "Directory on the filesystem the data dirs use.")
    var dir: String = "/tmp"

    @Option(help: "Writes per mode.")
    var count: Int = 2000

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    enum Mode: String, CaseIterable, Codable {
        /// Append to a growing file, then fdatasync: the size changes, so the inode is flushed too.
        case appendFdatasync = "append+fdatasync"
        /// Overwrite a file that was written and synced beforehand: only data blocks are flushed.
        case overwriteFdatasync = "overwrite+fdatasync"
        case appendFsync = "append+fsync"
    }

    struct Result: Codable {
        var mode: Mode
        var count: Int
        var latencyMicroseconds: LatencySummary
    }

    func run() async throws {
        guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be from 1 to 1000000") }
        let scratch = try makeScratchDirectory(base: dir, prefix: "baton-bench-fsync")
        defer { ChildProcesses.shared.removeScratch(scratch) }
        say("fsync floor in \(dir): \(count) writes of 256 B per mode")
        say("| mode | writes | p50 µs | p99 µs | p99.9 µs | max µs |")
        say("|---|---|---|---|---|---|")
        var results: [Result] = []
        for mode in Mode.allCases {
            let samples = try measure(mode, path: "\(scratch)/floor.dat")
            let s = LatencySummary(samples)
            results.append(Result(mode: mode, count: samples.count, latencyMicroseconds: s))
            say(
                "| \(mode.rawValue) | \(s.count) | \(format(s.p50, 0)) | \(format(s.p99, 0)) | "
                    + "\(format(s.p999, 0)) | \(format(s.max, 0)) |"
            )
        }
        try writeJSON(results, to: json)
    }

    private func measure(_ mode: Mode, path: String) throws -> [Double] {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path): errno \(errno)") }
        defer {
            close(fd)
            unlink(path)
        }
        var block = [UInt8](repeating: 0x2E, count: 256)
        if mode == .overwriteFdatasync {
            let zeros = [UInt8](repeating: 0, count: 256 * count)
            guard write(fd, zeros, zeros.count) == zeros.count, fsync(fd) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
                throw BenchError("cannot preallocate \(path): errno \(errno)")
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for i in 0..<count where clock.now < deadline {
            block[0] = UInt8(truncatingIfNeeded: i)
            let began = clock.now
            guard write(fd, block, block.count) == block.count else {
                throw BenchError("write to \(path) failed: errno \(errno)")
            }
            let synced = mode == .appendFsync ? fsync(fd) : fdatasync(fd)
            guard synced == 0 else { throw BenchError("sync of \(path) failed: errno \(errno)") }
            samples.append((clock.now - began).microseconds)
        }
        return samples
    }
}
