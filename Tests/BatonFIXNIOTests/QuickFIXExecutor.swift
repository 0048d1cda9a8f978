import Foundation
import Testing

/// QuickFIX's `executor` example (Debian's libquickfix-doc) run as a real FIX 4.4 acceptor: it
/// answers every LIMIT NewOrderSingle with one full fill at the order's price and refuses any
/// other OrdType with a session Reject(3) (SessionRejectReason 5 on OrdType(40)).
///
/// QuickFIX 1.15 has no SocketAcceptAddress, so it listens on every interface; the tests only
/// ever connect to it on 127.0.0.1, and it runs only for the length of one test.
final class QuickFIXExecutor {
    static let gzippedBinary = "/usr/share/doc/libquickfix-doc/examples/executor/C++/.libs/executor.gz"

    let directory: TemporaryDirectory
    let port: Int
    let senderCompID: String
    let targetCompID: String
    private let binary: String
    private let logPath: String
    private var process: Process?

    /// Unpacks the executor into `directory` and writes its settings; `start()` runs it.
    init(directory: TemporaryDirectory, port: Int, senderCompID: String = "EXECUTOR", targetCompID: String = "BATON1")
        throws
    {
        guard FileManager.default.fileExists(atPath: Self.gzippedBinary) else {
            throw TestFailure(
                "the QuickFIX executor is missing (\(Self.gzippedBinary)): run "
                    + "`BATON_TEST_DEPS=1 deploy/install-build-deps.sh` to install libquickfix-dev and libquickfix-doc")
        }
        self.directory = directory
        self.port = port
        self.senderCompID = senderCompID
        self.targetCompID = targetCompID
        binary = directory.file("executor")
        logPath = directory.file("executor.log")
        if !FileManager.default.fileExists(atPath: binary) {
            let unzip = Process()
            unzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
            unzip.arguments = ["-dc", Self.gzippedBinary]
            _ = FileManager.default.createFile(atPath: binary, contents: nil)
            unzip.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: binary))
            try unzip.run()
            unzip.waitUntilExit()
            guard unzip.terminationStatus == 0 else {
                throw TestFailure("gzip -dc \(Self.gzippedBinary) failed with status \(unzip.terminationStatus)")
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)
        }
        let settings = """
            [DEFAULT]
            ConnectionType=acceptor
            FileStorePath=\(directory.file("executor-store"))
            StartTime=00:00:00
            EndTime=00:00:00
            UseDataDictionary=Y
            DataDictionary=\(Self.dataDictionary)
            SocketReuseAddress=Y
            SocketNodelay=Y

            [SESSION]
            BeginString=FIX.4.4
            SenderCompID=\(senderCompID)
            TargetCompID=\(targetCompID)
            SocketAcceptPort=\(port)

            """
        try settings.write(toFile: directory.file("executor.cfg"), atomically: true, encoding: .utf8)
    }

    /// The system's copy when QuickFIX ships one, else the copy BatonFIX bundles.
    static var dataDictionary: String {
        let system = "/usr/share/quickfix/FIX44.xml"
        if FileManager.default.fileExists(atPath: system) { return system }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/BatonFIX/Resources/FIX44.xml").path
    }

    /// Starts the process (keeping the store of any earlier run) and waits until it listens.
    func start() async throws {
        precondition(process == nil, "executor already running")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [directory.file("executor.cfg")]
        process.currentDirectoryURL = directory.url
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let port = self.port
        do {
            try await eventually("the executor to listen on port \(port)") {
                guard process.isRunning else {
                    throw TestFailure("the executor exited with status \(process.terminationStatus)")
                }
                return Self.isListening(port: port)
            }
        } catch {
            throw TestFailure("\(error); its output:\n\(self.output)")
        }
    }

    /// Runs `body`; an error it throws comes back with the executor's recent output attached.
    func diagnosingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            throw TestFailure("\(error)\n--- QuickFIX executor output (tail) ---\n\(output.suffix(6_000))")
        }
    }

    /// SIGKILL: a broker that vanishes without a Logout or a FIN of its own choosing.
    func kill() {
        guard let process else { return }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Where the screen log is, for polling from a `@Sendable` closure.
    var logPathForPolling: String { logPath }

    /// Everything the executor printed (QuickFIX's screen log: every message in and out).
    var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Messages of the screen log, as `tag=value|…`, that `sender` sent with MsgType `msgType`.
    func loggedMessages(msgType: String, from sender: String) -> [[String: String]] {
        output.split(separator: "\n").compactMap { line -> [String: String]? in
            guard line.contains("8=FIX.4.4") else { return nil }
            var fields: [String: String] = [:]
            for pair in line.split(separator: "\u{01}") {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                let tag = String(pair[..<equals]).trimmingCharacters(in: .whitespaces)
                fields[tag] = fields[tag] ?? String(pair[pair.index(after: equals)...])
            }
            guard fields["35"] == msgType, fields["49"] == sender else { return nil }
            return fields
        }
    }

    private static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    deinit { kill() }
}
