import Crypto
public import Hummingbird
import Foundation
import Logging
public import NIOCore
import Synchronization

/// What a bearer token may do on the admin plane. Each role includes the ones below it.
///
/// The probes (`/healthz`, `/readyz`, `/leader`) need no token at all: an orchestrator's kubelet
/// or load balancer must reach them without a secret.
public enum AdminRole: String, Sendable, Codable, Comparable, CaseIterable {
    /// Every GET except the probes: cluster state, orders, positions, metrics, the audit log.
    case viewer
    /// Day-to-day actions of on-call: pause/resume, leadership transfer, resolving an order.
    case `operator`
    /// What can damage the cluster or is for tests: test proposals, debug endpoints, membership.
    case admin

    var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: AdminRole, rhs: AdminRole) -> Bool { lhs.rank < rhs.rank }
}

/// Who a request authenticated as: the token's configured name, never anything the caller says.
public struct AdminPrincipal: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var role: AdminRole
    public var description: String { "\(name) (\(role.rawValue))" }
}

/// One configured token: only its SHA-256 is kept in memory, so a heap dump or a debugger shows
/// no usable secret, and comparing digests makes the comparison's length fixed.
public struct AdminCredential: Sendable, Hashable {
    public var name: String
    public var role: AdminRole
    public var digest: [UInt8]

    public init(name: String, role: AdminRole, digest: [UInt8]) {
        self.name = name
        self.role = role
        self.digest = digest
    }

    public init(name: String, role: AdminRole, token: String) {
        self.init(name: name, role: role, digest: Array(SHA256.hash(data: Data(token.utf8))))
    }
}

/// The tokens the admin plane accepts, replaceable on SIGHUP.
public final class AdminCredentials: Sendable {
    private let credentials: Mutex<[AdminCredential]>

    public init(_ credentials: [AdminCredential]) { self.credentials = Mutex(credentials) }

    public var isEmpty: Bool { credentials.withLock { $0.isEmpty } }

    func replace(_ next: [AdminCredential]) { credentials.withLock { $0 = next } }

    /// The principal an `Authorization: Bearer …` header names, or nil. Every configured digest is
    /// compared, each in constant time, so the answer's timing says nothing about which token
    /// came close or how many there are before the matching one.
    public func authenticate(authorization: String?) -> AdminPrincipal? {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return nil }
        let presented = Array(SHA256.hash(data: Data(authorization.utf8.dropFirst(7))))
        let all = credentials.withLock { $0 }
        var match: AdminPrincipal?
        for credential in all where Self.constantTimeEquals(credential.digest, presented) {
            match = AdminPrincipal(name: credential.name, role: credential.role)
        }
        return match
    }

    /// Equal length and bytes, without an early exit on the first difference.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | UInt8(truncatingIfNeeded: (a.count ^ b.count) >> 8)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// Parsing `admin.tokens_file`: one token per line, `name role secret`, where the secret is
/// `sha256:<64 hex digits>` (the digest of the token, what production files should hold) or the
/// token itself (then the file must not be readable by group or other).
///
///     # name     role      token
///     oncall     operator  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///     grafana    viewer    sha256:…
public enum AdminTokensFile {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
    }

    /// Lines as `sed -n Np` and an editor count them: split at LF only, less one trailing CR.
    /// (Splitting at Characters would keep "\r\n", one Character, whole; `isNewline` would also
    /// split at VT, FF, NEL and U+2028, so a problem would name a line the operator cannot find.)
    static func lines(of text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(line.last == "\r" ? line.dropLast() : line)
        }
    }

    public static func parse(_ text: String, fileIsPrivate: Bool) -> Result<[AdminCredential], Problem> {
        var credentials: [AdminCredential] = []
        var names: Set<String> = []
        for (offset, raw) in lines(of: text).enumerated() {
            let number = offset + 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            // The secret is never echoed: a misplaced token in an error message ends up in a log.
            guard fields.count == 3 else {
                return .failure(Problem(line: number, reason: "expected 'name role token', found \(fields.count) fields"))
            }
            let (name, roleText, secret) = (fields[0], fields[1], fields[2])
            guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ isNameByte($0) }) else {
                return .failure(
                    Problem(line: number, reason: "the name must be 1 to 64 of [A-Za-z0-9._@-], got '\(name.prefix(64))'"))
            }
            guard names.insert(name).inserted else {
                return .failure(Problem(line: number, reason: "the name '\(name)' is listed twice"))
            }
            guard let role = AdminRole(rawValue: roleText) else {
                return .failure(
                    Problem(line: number, reason: "role '\(roleText.prefix(32))' is not one of viewer, operator, admin"))
            }
            if secret.hasPrefix("sha256:") {
                guard let digest = hexBytes(secret.dropFirst(7)), digest.count == 32 else {
                    return .failure(Problem(line: number, reason: "sha256: must be followed by 64 hex digits"))
                }
                credentials.append(AdminCredential(name: name, role: role, digest: digest))
            } else {
                guard fileIsPrivate else {
                    return .failure(
                        Problem(
                            line: number,
                            reason: "holds a plain token but the file is readable by group or other: "
                                + "chmod 600 it, or store 'sha256:' and the token's SHA-256 instead"))
                }
                guard secret.utf8.count >= 16 else {
                    return .failure(Problem(line: number, reason: "the token is too short: use at least 16 characters"))
                }
                credentials.append(AdminCredential(name: name, role: role, token: secret))
            }
        }
        return .success(credentials)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
            || b == 0x40 || b == 0x2D
    }

    private static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var i = 0
        while i < digits.count {
            guard let high = nibble(digits[i]), let low = nibble(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        return bytes
    }
}

/// Secret files (tokens, the FIX password, TLS keys) must not be readable by group or other:
/// a world-readable secret on a shared host is a leaked secret.
public enum SecretFile {
    /// nil when the file's mode has no group/other permission bits; otherwise why not.
    public static func problem(path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot stat \(path): \(String(cString: strerror(errno)))" }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            return "\(path) has mode \(String(mode, radix: 8)): a secret must not be readable by group or other (chmod 600)"
        }
        return nil
    }

    public static func isPrivate(path: String) -> Bool { problem(path: path) == nil }
}

/// Failed authentications per source address: after `limit` failures within `window`, the source
/// is answered 429 without looking at its token, so guessing costs a minute per ten guesses. The
/// table is bounded: a flood of sources cannot grow it without limit.
public final class AuthFailureLimiter: Sendable {
    struct Entry {
        var windowStart: ContinuousClock.Instant
        var failures: Int
        var lastLogged: ContinuousClock.Instant?
        var suppressed: Int
    }

    let limit: Int
    let window: Duration
    let maxSources: Int
    private let table = Mutex<[String: Entry]>([:])

    public init(limit: Int = 10, window: Duration = .seconds(60), maxSources: Int = 4096) {
        self.limit = limit
        self.window = window
        self.maxSources = maxSources
    }

    /// Whether this source has used up its failures for now.
    public func isLimited(_ source: String, now: ContinuousClock.Instant = .now) -> Bool {
        table.withLock { table in
            guard let entry = table[source] else { return false }
            return now - entry.windowStart < window && entry.failures >= limit
        }
    }

    /// Counts a failure; returns whether to log it (at most one line per source per 10 s, with the
    /// number of failures not logged since, so a brute force cannot fill the disk with log lines).
    public func recordFailure(_ source: String, now: ContinuousClock.Instant = .now) -> (log: Bool, suppressed: Int) {
        table.withLock { table in
            if table[source] == nil, table.count >= maxSources {
                // Forget the oldest window: bounded memory beats a perfect count under a flood.
                if let oldest = table.min(by: { $0.value.windowStart < $1.value.windowStart })?.key {
                    table[oldest] = nil
                }
            }
            var entry = table[source] ?? Entry(windowStart: now, failures: 0, lastLogged: nil, suppressed: 0)
            if now - entry.windowStart >= window {
                entry.windowStart = now
                entry.failures = 0
            }
            entry.failures += 1
            var log = false
            var suppressed = 0
            if entry.lastLogged.map({ now - $0 >= .seconds(10) }) ?? true {
                log = true
                suppressed = entry.suppressed
                entry.suppressed = 0
                entry.lastLogged = now
            } else {
                entry.suppressed += 1
            }
            table[source] = entry
            return (log, suppressed)
        }
    }
}

/// The admin plane's open connections, shared by every connection's ConnectionCapHandler.
public final class ConnectionGauge: Sendable {
    let open = Atomic<Int>(0)
    public init() {}
    public var current: Int { open.load(ordering: .relaxed) }
}

/// Caps the admin plane's open connections: beyond `limit`, a new connection is closed at once,
/// so a client that opens sockets and never sends cannot use up the replica's descriptors.
final class ConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    let gauge: ConnectionGauge
    let limit: Int
    let refused: @Sendable () -> Void
    private var counted = false

    init(gauge: ConnectionGauge, limit: Int, refused: @escaping @Sendable () -> Void) {
        self.gauge = gauge
        self.limit = limit
        self.refused = refused
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        if gauge.open.add(1, ordering: .relaxed).newValue > limit {
            refused()
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted { gauge.open.subtract(1, ordering: .relaxed) }
        counted = false
    }
}

/// The admin plane's request context: Hummingbird's basic one plus the caller's address, which
/// the failed-authentication limit and the audit record need.
public struct AdminRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
