import BatonJournal
import Dispatch
import Foundation
import RaftCore
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// kill -9 a real writer process at random moments and prove that the journal it leaves opens,
/// holds every acknowledged write (and at most the writes it had submitted since), and verifies.
@Suite("Crash recovery")
struct CrashRecoveryTests {
    @Test(.timeLimit(.minutes(2)))
    func killNineAtRandomMomentsLosesNoAcknowledgedWrite() async throws {
        let executable = try writerExecutable()
        try await withTemporaryDirectory { directory in
            var random = SplitMix64(seed: 0xC0FFEE)
            var totalAcknowledged: UInt64 = 0
            for run in 0..<5 {
                // What the writer will resume from: the journal as the previous kill left it.
                let before = run == 0 ? DurableState() : try RaftJournal(directory: directory).load().state
                let seed = 1_000 + UInt64(run)
                let durability = run % 2 == 0 ? "full" : "normal"
                let delayMilliseconds = 50 + Int(random.next() % 251)
                let outcome = try await offloaded {
                    try runAndKill(
                        executable, arguments: [directory, "\(seed)", durability], afterMilliseconds: delayMilliseconds)
                }
                let context = "run \(run) (seed \(seed), \(durability), killed \(delayMilliseconds) ms after ready)"
                #expect(outcome.killedBySignal, "\(context): the writer exited on its own: \(outcome.standardError)")

                let journal = try RaftJournal(directory: directory)
                let recovered = try journal.load()
                let verification = try journal.verify()
                #expect(verification.isIntact, "\(context): \(verification)")

                // Replay the writer's deterministic workload: the journal must equal its state after
                // n writes, for some n at or past the last acknowledged one (a write may be durable
                // but killed before its acknowledgement was printed; the writer keeps at most 64
                // unacknowledged).
                var workload = SyntheticRaftWorkload(seed: seed, resumingFrom: before)
                for _ in 0..<outcome.lastAcknowledged { _ = workload.next() }
                var durableWrites = outcome.lastAcknowledged
                while workload.state != recovered.state && durableWrites < outcome.lastAcknowledged + 256 {
                    _ = workload.next()
                    durableWrites += 1
                }
                let mismatch = differences(recovered.state, workload.state)
                #expect(
                    mismatch == nil,
                    """
                    \(context): the recovered journal is not the state after any write from the last acknowledged \
                    one (w\(outcome.lastAcknowledged)) on; against w\(durableWrites): \(mismatch ?? "")
                    """
                )
                totalAcknowledged += outcome.lastAcknowledged
            }
            // Something was written at all, or the kills proved nothing.
            #expect(totalAcknowledged > 0)
        }
    }
}

struct KilledWriter {
    var lastAcknowledged: UInt64
    var killedBySignal: Bool
    var standardError: String
}

/// Starts the writer, waits for "ready", lets it write for `delay`, SIGKILLs it and collects what it
/// printed. Blocking: run it off the cooperative thread pool.
func runAndKill(_ executable: URL, arguments: [String], afterMilliseconds delay: Int) throws -> KilledWriter {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()

    var printed = Data()
    let ready = Data("ready\n".utf8)
    while printed.range(of: ready) == nil {
        let chunk = output.fileHandleForReading.availableData
        if chunk.isEmpty {
            // EOF before "ready": the writer died on its own.
            while process.isRunning { usleep(1_000) }
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw TestFailure(
                "baton-journal-writer exited before it was ready (status \(process.terminationStatus)): \(message)")
        }
        printed.append(chunk)
    }
    usleep(useconds_t(delay * 1_000))
    kill(process.processIdentifier, SIGKILL)
    // Polling instead of waitUntilExit(), which needs a run loop on this thread.
    while process.isRunning { usleep(1_000) }
    printed.append(output.fileHandleForReading.readDataToEndOfFile())
    let standardError = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)

    var last: UInt64 = 0
    for line in String(decoding: printed, as: UTF8.self).split(separator: "\n") where line.hasPrefix("ack ") {
        guard let id = UInt64(line.dropFirst(4)) else { throw TestFailure("unreadable writer output line '\(line)'") }
        guard id > last else { throw TestFailure("acknowledgement \(id) came after \(last)") }
        last = id
    }
    return KilledWriter(
        lastAcknowledged: last,
        killedBySignal: process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
        standardError: standardError
    )
}

/// Runs blocking work on a Dispatch thread, so that it does not hold up Swift concurrency's
/// cooperative pool (two threads on a two-core machine).
func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// The `baton-journal-writer` executable that SwiftPM built next to this test bundle.
func writerExecutable() throws -> URL {
    let name = "baton-journal-writer"
    var directories: [URL] = []
    if let override = ProcessInfo.processInfo.environment["BATON_JOURNAL_WRITER"] {
        let url = URL(fileURLWithPath: override)
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        throw TestFailure("BATON_JOURNAL_WRITER=\(override) is not an executable file")
    }
    // On Linux the test bundle is an executable in the products directory; on macOS it is an
    // .xctest bundle in it. Either way the writer sits beside it.
    let bundle = Bundle.main.bundleURL
    directories += [bundle, bundle.deletingLastPathComponent()]
    if let executable = Bundle.main.executableURL?.deletingLastPathComponent() {
        directories += [executable, executable.deletingLastPathComponent()]
    }
    for loaded in Bundle.allBundles where loaded.bundlePath.hasSuffix(".xctest") {
        directories.append(loaded.bundleURL.deletingLastPathComponent())
    }
    directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
    // Last resort: the package's own products directories (Tests/BatonJournalTests/<file> → package root).
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    directories += ["debug", "release"].map { packageRoot.appendingPathComponent(".build/\($0)") }
    for directory in directories {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw TestFailure(
        "\(name) not found; looked in: \(directories.map(\.path).joined(separator: ", ")). Build it with "
            + "`swift build --product \(name)` (swift test builds it, as BatonJournalTests depends on it), or set "
            + "BATON_JOURNAL_WRITER to its path"
    )
}
