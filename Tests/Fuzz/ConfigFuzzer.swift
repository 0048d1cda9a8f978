// libFuzzer target for batond's configuration loader, `BatondConfiguration.parse` (YAML through
// Yams, then environment overrides, then validation), and the admin tokens file parser it uses
// (`AdminTokensFile.parse`). Built by Fuzz/run.sh with `swiftc -sanitize=fuzzer,address` against
// Configuration.swift, the credential part of AdminAccess.swift, swift-log and Yams (libyaml too)
// compiled as modules.
//
// An input is a configuration file, optionally followed by sections that start with a line of
// their own:
//
//     cluster:            ← YAML, as `batond --config` reads it
//       id: 7
//     #%env               ← environment overrides, one `NAME=value` a line; NAME is a variable
//     BATON_LOG_LEVEL=debug  (BATON_…) or a key (`raft.tick_interval_ms`), which stands for its
//     cluster.voters=1,2     variable
//     #%tokens            ← an admin.tokens_file (`name role secret` lines), parsed on its own
//
// (`#%…` lines are YAML comments, so a seed stays a valid file.) Paths in the YAML may name the
// files the harness lays out in /tmp/baton-config-fuzz at start-up (token files, tokens files,
// a password file, PEM stand-ins; `world-readable` and `open-tokens` are mode 0644), so the
// loader's file branches are reached too.
//
// Properties checked on every input (a violation traps, which libFuzzer reports as a crash):
// - the loader never traps, overflows or reads out of bounds (ASan and Swift's own checks);
// - it returns a configuration or throws ConfigurationErrors listing at least one problem, each
//   with a non-empty key and message, from the environment (and then without a line) or from
//   the file (with a line the file has); a YAML syntax error says where and what, never the
//   text (it may quote a secret);
// - a configuration it returns keeps every bound the loader promises: this node among the
//   members, voters among the members and not learners, ports that are ports, RaftSettings
//   without problems, admin limits in range, and (with trading) symbols, CompIDs, windows, risk
//   limits, timeouts and the lease margin as validated;
// - the tokens file parser gives credentials with distinct well-formed names and 32-byte
//   digests, or a problem with a line of the file that never repeats the line's token; a file
//   that parses as readable by others parses the same when private.
import BatonDaemon
import Foundation
import RaftCore

private let files = "/tmp/baton-config-fuzz"
/// FUZZ_VERBOSE=1 prints what the loader answered (for replaying an input).
private let verbose = ProcessInfo.processInfo.environment["FUZZ_VERBOSE"] != nil

@_cdecl("LLVMFuzzerInitialize")
public func configFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    // The SHA-256 stand-in for swift-crypto must be SHA-256 (FIPS 180-4 examples).
    func hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(0x100 + Int($0), radix: 16).dropFirst() }.joined()
    }
    require(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    require(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    require(
        hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")

    // Files a configuration may point at.
    let manager = FileManager.default
    try? manager.createDirectory(atPath: files, withIntermediateDirectories: true)
    let layout: [(String, String, Int)] = [
        ("token", "a-token-of-sixteen-chars\n", 0o600),
        ("short-token", "short\n", 0o600),
        ("world-readable", "a-token-of-sixteen-chars\n", 0o644),
        (
            "tokens",
            "# name role secret\noncall operator sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n"
                + "grafana viewer a-plain-token-0123456789\nroot admin another-plain-token-42\n", 0o600
        ),
        // Names `admin`, as admin.token's credential is named.
        ("tokens-named-admin", "admin admin another-plain-token-42\n", 0o600),
        ("open-tokens", "grafana viewer a-plain-token-0123456789\n", 0o644),
        ("bad-tokens", "oncall boss sha256:00\n", 0o600),
        ("password", "secret-password\r\n", 0o600),
        ("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644),
        ("cert.pem", "-----BEGIN CERTIFICATE-----\n", 0o644),
        ("key.pem", "-----BEGIN PRIVATE KEY-----\n", 0o600),
    ]
    for (name, contents, mode) in layout {
        let path = "\(files)/\(name)"
        if (try? String(contentsOfFile: path, encoding: .utf8)) != contents {
            require(manager.createFile(atPath: path, contents: Data(contents.utf8)), "cannot write \(path)")
        }
        require(chmod(path, mode_t(mode)) == 0, "cannot chmod \(path)")
    }

    let seed = Array(
        """
        cluster:
          id: 7
          node_id: 2
          members: {1: 127.0.0.1:7101, 2: "[::1]:7102"}
        data_dir: /tmp/n2
        admin:
          tokens_file: /tmp/baton-config-fuzz/tokens
        #%env
        log.level=debug
        #%tokens
        ops operator sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

        """.utf8)
    seed.withUnsafeBufferPointer { _ = configFuzzerTestOneInput($0.baseAddress!, $0.count) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func configFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Input(Array(UnsafeBufferPointer(start: data, count: size)))
    let yaml = String(decoding: input.yaml, as: UTF8.self)
    do {
        let configuration = try BatondConfiguration.parse(yaml: yaml, source: "fuzz.yaml", environment: input.environment)
        if verbose { print("accepted: \(configuration)") }
        check(configuration)
    } catch {
        if verbose { print(error) }
        check(error, yaml: yaml)
    }
    if let tokens = input.tokens { checkTokensFile(String(decoding: tokens, as: UTF8.self)) }
    return 0
}

/// precondition, but the message is printed (with -O a failed precondition shows only its line).
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", line: UInt = #line) {
    if !condition { failed(message(), line: line) }
}

private func failed(_ message: String, line: UInt = #line) -> Never {
    FileHandle.standardError.write(Data("ConfigFuzzer.swift:\(line): \(message)\n".utf8))
    fatalError(message)
}

// MARK: - Input

private struct Input {
    var yaml: ArraySlice<UInt8>
    var environment: [String: String] = [:]
    var tokens: ArraySlice<UInt8>?

    init(_ bytes: [UInt8]) {
        let env = Array("#%env".utf8)
        let tokens = Array("#%tokens".utf8)
        // Start and end of each line (end excludes the newline).
        var lines: [Range<Int>] = []
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            lines.append(start..<i)
            start = i + 1
        }
        if start < bytes.count { lines.append(start..<bytes.count) }
        enum Section { case yaml, env, tokens }
        var section = Section.yaml
        var yamlEnd = bytes.count
        var tokensStart: Int?
        for line in lines {
            let text = bytes[line]
            if text.elementsEqual(env) || text.elementsEqual(tokens) {
                if section == .yaml { yamlEnd = line.lowerBound }
                if section == .tokens {
                    // A later section ends the tokens file.
                    self.tokens = bytes[tokensStart!..<line.lowerBound]
                }
                section = text.elementsEqual(env) ? .env : .tokens
                if section == .tokens { tokensStart = line.upperBound < bytes.count ? line.upperBound + 1 : bytes.count }
                continue
            }
            if section == .env, !text.isEmpty {
                let equals = text.firstIndex(of: UInt8(ascii: "=")) ?? text.endIndex
                let name = String(decoding: text[..<equals], as: UTF8.self)
                let value = equals < text.endIndex ? String(decoding: text[(equals + 1)...], as: UTF8.self) : ""
                // A key stands for its variable; anything else is a variable's name as it is.
                let isKey = name.contains(".") || name.utf8.contains(where: { $0 >= 0x61 && $0 <= 0x7A })
                environment[isKey ? BatondConfiguration.environmentName(for: name) : name] = value
            }
        }
        if section == .tokens, let tokensStart { self.tokens = bytes[tokensStart...] }
        yaml = bytes[..<yamlEnd]
    }
}

// MARK: - A configuration it accepted

private func isPort(_ port: Int) -> Bool { (0...65535).contains(port) }

private func check(_ endpoint: BatondConfiguration.Endpoint, _ what: String) {
    require(!endpoint.host.isEmpty, "\(what) has no host")
    require(isPort(endpoint.port), "\(what) \(endpoint) has a port that is not a port")
    _ = endpoint.description
}

private func printable(_ text: String) -> Bool { !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) }

private func check(_ c: BatondConfiguration) {
    require(c.clusterID >= 1, "cluster id \(c.clusterID)")
    require((1...UInt64(UInt32.max)).contains(c.nodeID.rawValue), "node id \(c.nodeID)")
    require(c.members[c.nodeID] != nil, "\(c.nodeID) is not among the members \(c.members)")
    for (id, endpoint) in c.members {
        require(id.rawValue > 0, "member id 0")
        check(endpoint, "member \(id)")
    }
    check(c.peerListen, "listen.peer")
    check(c.adminListen, "listen.admin")
    let voters = c.bootstrap.voters
    let learners = c.bootstrap.learners
    require(!voters.isEmpty, "no voters")
    require(voters.isDisjoint(with: learners), "a voter is also a learner")
    require(voters.union(learners).allSatisfy { c.members[$0] != nil }, "a voter or learner is not a member")
    require(c.raft.problems().isEmpty, "RaftSettings problems: \(c.raft.problems())")
    require((1...65_536).contains(c.adminMaxConnections), "admin.max_connections \(c.adminMaxConnections)")
    require(c.adminIdleTimeout >= .seconds(1) && c.adminIdleTimeout <= .seconds(86_400), "admin.idle_timeout_s")
    require(c.adminAuthFailuresPerMinute >= 1, "admin.auth_failures_per_minute")
    for credential in c.adminCredentials {
        require(!credential.name.isEmpty && credential.digest.count == 32, "credential \(credential.name)")
    }
    require(Set(c.adminCredentials.map(\.name)).count == c.adminCredentials.count, "two credentials share a name")
    require(c.shutdownTransferTimeout >= .zero && c.shutdownTransferTimeout <= .seconds(60), "shutdown timeout")
    require(c.readinessMaxLag <= UInt64(Int32.max), "readiness.max_lag_entries")
    _ = String(describing: c)
    guard let t = c.trading else { return }
    require(!t.symbols.isEmpty && Set(t.symbols).count == t.symbols.count, "symbols \(t.symbols)")
    for symbol in t.symbols {
        require(
            (1...32).contains(symbol.utf8.count) && !symbol.contains(",") && !symbol.contains(" ") && printable(symbol),
            "symbol \(symbol.debugDescription)")
    }
    require((1...64).contains(t.account.utf8.count) && printable(t.account), "account \(t.account.debugDescription)")
    require((1...12).contains(t.clOrdIDPrefix.utf8.count) && !t.clOrdIDPrefix.contains("-"), "prefix")
    require(t.fastWindow >= 1 && t.slowWindow > t.fastWindow && t.slowWindow <= 10_000, "windows")
    require(t.threshold >= 0, "threshold")
    require(t.quantity >= 1 && t.quantity <= t.risk.maxPosition, "quantity \(t.quantity)")
    require(t.risk.maxOrdersPerMinute >= 1 && t.risk.maxOrdersPerHour >= t.risk.maxOrdersPerMinute, "order rates")
    require(t.risk.maxOrderQuantity >= 1, "max_order_quantity")
    require(t.ackTimeout > t.maxOrderAge, "ack timeout within the order age")
    require(t.minimumLeaseToSend < c.raft.electionTimeoutMin - c.raft.maxClockDrift, "no lease left to send")
    require(t.reconcileAttemptsBeforeHalt >= 1 && t.reconcileAnswerTimeout >= .milliseconds(10), "reconcile")
    check(t.venue, "venue.fix")
    require(t.venue.port != 0, "venue port 0")
    for compID in [t.senderCompID, t.targetCompID] {
        require(!compID.isEmpty && compID.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "CompID \(compID.debugDescription)")
    }
    require((1...3600).contains(t.heartbeatSeconds), "heartbeat")
    require((10...1_000_000).contains(t.sequenceBlock), "sequence block")
    if let username = t.username {
        require((1...128).contains(username.utf8.count) && printable(username), "username")
    }
    if let password = t.password {
        require("\(password)" == "***" && !password.value.isEmpty && printable(password.value), "password")
    }
    if let tls = t.tls {
        require((tls.certificatePath == nil) == (tls.privateKeyPath == nil), "venue.tls cert without key")
    }
    for url in [t.feedPrimary] + (t.feedBackup.map { [$0] } ?? []) {
        require(url.hasPrefix("ws://") || url.hasPrefix("wss://"), "feed URL \(url)")
    }
    require(t.feedStaleAfter >= .milliseconds(10) && t.feedRecoverAfter >= .zero, "feed timings")
}

// MARK: - A configuration it refused

private func check(_ thrown: ConfigurationErrors, yaml: String) {
    require(!thrown.errors.isEmpty, "ConfigurationErrors without an error")
    require(!thrown.description.isEmpty)
    // libyaml counts \r, \n, \r\n, NEL, LS and PS as line breaks; the end of the stream is a line
    // past the last one (with no break at the end, two).
    let lines = yaml.unicodeScalars.filter { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) }.count + 2
    for error in thrown.errors {
        require(!error.key.isEmpty && !error.message.isEmpty, "an error without key or message: \(error)")
        require(error.description.contains(error.key) && error.description.contains(error.message))
        if error.source.hasPrefix("environment BATON_") {
            require(error.line == nil, "an environment variable has no line: \(error)")
        } else {
            require(error.source == "fuzz.yaml", "unexpected source: \(error)")
        }
        if let line = error.line { require((1...lines).contains(line), "line \(line) is past the end (\(lines)): \(error)") }
        if error.key == "(file)" {
            // A file that is one value or a list has no keys (and is not quoted: it may be a token).
            if error.message.hasPrefix("expected a map of keys") {
                require(
                    error.message.hasSuffix("found a list") || error.message.hasSuffix("found a single value"),
                    "(file) error: \(error.message)")
                continue
            }
            // Where and what, never the text: "not valid YAML: <problem> at line L, column C".
            require(error.message.hasPrefix("not valid YAML: "), "(file) error: \(error.message)")
            let withheld = [
                "not valid YAML: the file could not be parsed",
                "not valid YAML: the file could not be parsed (details withheld: they may quote a secret)",
            ]
            if !withheld.contains(error.message) {
                require(!error.message.contains("\n"), "a YAML error quotes the file: \(error.message)")
                require(
                    error.message.range(of: #" at line [0-9]+, column [0-9]+$"#, options: .regularExpression) != nil,
                    "a YAML error does not say where: \(error.message)")
            }
        }
    }
}

// MARK: - The tokens file

/// A byte search. Foundation's `String.contains(String)` (swift-corelibs-foundation, Swift 6.3.1)
/// is wrong for a needle with NUL in it: `"ab\0\0".contains("\0\0\0")` is true, and
/// `"é\0".contains("\0\0")` traps with "String index is out of bounds" (found by this fuzzer,
/// in this harness; no call in Sources/ searches for a needle that comes from outside).
private func bytes(of haystack: String, contain needle: String) -> Bool {
    haystack.utf8.firstRange(of: needle.utf8) != nil
}

private func checkTokensFile(_ text: String) {
    let open = AdminTokensFile.parse(text, fileIsPrivate: false)
    let private_ = AdminTokensFile.parse(text, fileIsPrivate: true)
    // Lines as an editor numbers them (LF only; "\r\n" is one Character, so not Character "\n").
    let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map {
        String($0.last == "\r" ? $0.dropLast() : $0)
    }
    for result in [open, private_] {
        switch result {
        case .success(let credentials):
            require(Set(credentials.map(\.name)).count == credentials.count, "a name twice: \(credentials.map(\.name))")
            for credential in credentials {
                require(
                    (1...64).contains(credential.name.utf8.count)
                        && credential.name.utf8.allSatisfy { b in
                            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                                || [0x2E, 0x5F, 0x40, 0x2D].contains(b)
                        }, "name \(credential.name.debugDescription)")
                require(credential.digest.count == 32, "digest of \(credential.digest.count) bytes")
            }
        case .failure(let problem):
            require(!problem.description.isEmpty && !problem.reason.isEmpty)
            require((1...lines.count).contains(problem.line), "problem on line \(problem.line) of \(lines.count)")
            // The secret is never echoed (a misplaced token in an error ends up in a log).
            let fields = lines[problem.line - 1].trimmingCharacters(in: .whitespaces)
                .split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if fields.count == 3, fields[2].utf8.count >= 16, !bytes(of: fields[0], contain: fields[2]),
                !bytes(of: fields[1], contain: fields[2])
            {
                require(!bytes(of: problem.description, contain: fields[2]), "the problem repeats the token: \(problem)")
            }
        }
    }
    if case .success(let credentials) = open {
        guard case .success(let same) = private_, same == credentials else {
            failed("a tokens file readable by others parses, but not the same when private")
        }
    }
}
