import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// "Hosts" in Linux network namespaces on one machine (iproute2's `ip netns`): each host is a
/// namespace with one veth into a bridge that this type creates in the root namespace, on a /24
/// of its own, so a replica listens on 10.x.y.N as it would on its own machine and the test
/// process reaches every host through the bridge (10.x.y.254). Partitions are routes, not
/// firewall rules: a `blackhole` route in host A for host B's address drops everything A sends
/// to B (TCP from either side then fails, as in a real one-way cut), and leaves A's other links
/// and the bridge's view alone. Nothing is sent beyond the bridge: the namespaces have no default
/// route.
///
/// Needs root (CAP_NET_ADMIN) and `ip` from iproute2. Namespaces and links are named after the
/// creating process (`baton-<pid>-<host>`, `bt<pid>…`), so a run that crashed leaves names that
/// the next run removes (`sweep`).
public final class NetworkNamespaces: Sendable {
    public let hosts: [String]
    public let subnet: String
    private let tag: String
    private let cuts = Mutex<Set<Cut>>([])

    struct Cut: Hashable {
        var from: String
        var to: String
    }

    /// The address the test process has on the bridge.
    public var controlAddress: String { "\(subnet).254" }

    /// Creates the bridge and one namespace per host, up and addressed. Throws, having removed
    /// what it made, if `ip` refuses (not root, no iproute2).
    public init(hosts: [String]) throws {
        Self.sweep()
        self.hosts = hosts
        let pid = getpid()
        tag = "\(pid % 1_000_000)"
        // A /24 in 10.0.0.0/8 that no route on this machine uses.
        let used = (try? Self.ip(["-4", "route", "show"]))?.output ?? ""
        var subnet = ""
        for third in 0..<250 {
            let candidate = "10.\(200 + Int(pid) % 50).\((Int(pid) / 50 + third) % 250)"
            if !used.contains(candidate + ".") && !used.contains(candidate + ".0/") {
                subnet = candidate
                break
            }
        }
        guard !subnet.isEmpty else { throw ClusterFailure("no free 10.x.y.0/24 for the test hosts") }
        self.subnet = subnet
        do {
            try Self.ip(["link", "add", bridge, "type", "bridge"])
            try Self.ip(["addr", "add", "\(controlAddress)/24", "dev", bridge])
            try Self.ip(["link", "set", bridge, "up"])
            for (i, host) in hosts.enumerated() {
                let ns = namespace(host)
                let outside = "bt\(tag)h\(i)"
                try Self.ip(["netns", "add", ns])
                try Self.ip(["link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
                try Self.ip(["link", "set", outside, "master", bridge, "up"])
                try Self.ip(["-n", ns, "link", "set", "lo", "up"])
                try Self.ip(["-n", ns, "addr", "add", "\(address(host))/24", "dev", "eth0"])
                try Self.ip(["-n", ns, "link", "set", "eth0", "up"])
            }
        } catch {
            destroy()
            throw error
        }
    }

    private var bridge: String { "bt\(tag)br" }

    /// The namespace a host's processes run in (`ip netns exec <namespace> …`).
    public func namespace(_ host: String) -> String { "baton-\(tag)-\(host)" }

    /// The host's address on the bridge: 10.x.y.(index + 1).
    public func address(_ host: String) -> String {
        guard let i = hosts.firstIndex(of: host) else { preconditionFailure("unknown host \(host)") }
        return "\(subnet).\(i + 1)"
    }

    /// `from` can no longer send to `to` (a one-way cut: a blackhole route in `from`).
    public func cut(_ from: String, _ to: String) throws {
        guard cuts.withLock({ $0.insert(Cut(from: from, to: to)).inserted }) else { return }
        try Self.ip(["-n", namespace(from), "route", "add", "blackhole", "\(address(to))/32"])
    }

    /// Both directions between `a` and every host in `others`.
    public func isolate(_ a: String, from others: [String]) throws {
        for other in others where other != a {
            try cut(a, other)
            try cut(other, a)
        }
    }

    /// Every cut undone: the network as created.
    public func heal() throws {
        let all = cuts.withLock { cuts -> Set<Cut> in
            defer { cuts.removeAll() }
            return cuts
        }
        for cut in all {
            try Self.ip(["-n", namespace(cut.from), "route", "del", "blackhole", "\(address(cut.to))/32"])
        }
    }

    /// The cuts in force, as "a→b" (for logs).
    public var activeCuts: [String] { cuts.withLock { $0.map { "\($0.from)→\($0.to)" }.sorted() } }

    /// Removes the namespaces and the bridge (the veths go with their namespaces). Processes still
    /// running in a namespace keep it alive until they exit: stop them first.
    public func destroy() {
        for host in hosts { _ = try? Self.ip(["netns", "del", namespace(host)]) }
        _ = try? Self.ip(["link", "del", bridge])
    }

    /// Whether this machine lets us make namespaces (root and iproute2), and if not, why.
    public static func unavailable() -> String? {
        guard getuid() == 0 else { return "network namespaces need root (CAP_NET_ADMIN)" }
        guard FileManager.default.isExecutableFile(atPath: ipPath) else { return "\(ipPath) not found (Debian's iproute2)" }
        return nil
    }

    static let ipPath = "/usr/sbin/ip"

    /// Removes namespaces and links left by runs whose process is gone.
    static func sweep() {
        let namespaces = (try? ip(["netns", "list"]))?.output ?? ""
        for line in namespaces.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count >= 3, parts[0] == "baton", let owner = Int32(parts[1]), !alive(owner) else { continue }
            _ = try? ip(["netns", "del", name])
        }
        let links = (try? ip(["-o", "link", "show", "type", "bridge"]))?.output ?? ""
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count >= 2 else { continue }
            let name = fields[1].trimmingCharacters(in: .whitespaces)
            guard name.hasPrefix("bt"), name.hasSuffix("br"), let owner = Int32(name.dropFirst(2).dropLast(2)),
                !alive(owner)
            else { continue }
            _ = try? ip(["link", "del", name])
        }
    }

    /// Owners are recorded as pid mod 10^6; a pid above that is not swept (Linux's default
    /// pid_max is 4 194 304, so a wrapped tag could name a live process: then nothing is removed).
    private static func alive(_ tag: Int32) -> Bool {
        kill(tag, 0) == 0 || errno != ESRCH
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try ChildProcesses.run(ipPath, arguments)
        guard result.status == 0 else {
            throw ClusterFailure("ip \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.output)")
        }
        return result
    }
}
