/// Where the market feed comes from and how the client judges it.
public struct FeedConfiguration: Sendable, Hashable {
    /// The source the strategy listens to whenever it is healthy, e.g. `ws://127.0.0.1:9880/feed`.
    public var primaryURL: String
    /// The hot standby: subscribed all the time so that switching to it costs nothing.
    public var backupURL: String?
    /// Symbols to hand downstream; empty means every symbol the sources send.
    public var symbols: Set<String>
    /// A source not heard from (no tick, no heartbeat) for this long is stale.
    public var staleAfter: Duration
    /// How long the primary must be healthy again before the feed goes back to it.
    public var recoverAfter: Duration
    /// How often staleness is checked; a stale source is noticed within `staleAfter + checkInterval`.
    public var checkInterval: Duration
    /// Reconnect delays: the first retry waits about `reconnectBackoff.lowerBound`, each failure
    /// doubles it up to `upperBound`, with jitter so that replicas do not reconnect in lockstep.
    public var reconnectBackoff: ClosedRange<Duration>
    /// A connection that stays silent this long is dropped and made again: a half-open TCP
    /// connection would otherwise never come back by itself.
    public var reconnectWhenSilentFor: Duration
    /// Events (one per frame) buffered for a consumer that is behind; past this the newest are
    /// dropped and the consumer is told how many ticks it lost.
    public var eventBufferCapacity: Int
    /// Largest WebSocket frame accepted from a source.
    public var maxFrameSize: Int

    /// Checks every field and says which one is wrong.
    public init(
        primaryURL: String,
        backupURL: String? = nil,
        symbols: Set<String> = [],
        staleAfter: Duration = .milliseconds(500),
        recoverAfter: Duration = .seconds(2),
        checkInterval: Duration = .milliseconds(50),
        reconnectBackoff: ClosedRange<Duration> = .milliseconds(50) ... .seconds(2),
        reconnectWhenSilentFor: Duration = .seconds(5),
        eventBufferCapacity: Int = 4096,
        maxFrameSize: Int = 1 << 22
    ) throws(FeedConfigurationError) {
        self.primaryURL = primaryURL
        self.backupURL = backupURL
        self.symbols = symbols
        self.staleAfter = staleAfter
        self.recoverAfter = recoverAfter
        self.checkInterval = checkInterval
        self.reconnectBackoff = reconnectBackoff
        self.reconnectWhenSilentFor = reconnectWhenSilentFor
        self.eventBufferCapacity = eventBufferCapacity
        self.maxFrameSize = maxFrameSize
        try validate()
    }

    public func validate() throws(FeedConfigurationError) {
        try FeedEndpoint.validate(primaryURL, setting: "primary feed URL")
        if let backupURL {
            try FeedEndpoint.validate(backupURL, setting: "backup feed URL")
            if backupURL == primaryURL {
                throw FeedConfigurationError(
                    setting: "backup feed URL", value: backupURL,
                    reason: "is the same as the primary URL; a backup must be a different source, or left out")
            }
        }
        for symbol in symbols where symbol.isEmpty || symbol.utf8.contains(UInt8(ascii: ",")) {
            throw FeedConfigurationError(
                setting: "feed symbols", value: symbol, reason: "is not a symbol (empty or contains a comma)")
        }
        guard staleAfter > .zero else {
            throw FeedConfigurationError(setting: "staleAfter", value: "\(staleAfter)", reason: "must be positive")
        }
        guard recoverAfter >= .zero else {
            throw FeedConfigurationError(
                setting: "recoverAfter", value: "\(recoverAfter)", reason: "must not be negative")
        }
        guard checkInterval > .zero, checkInterval <= staleAfter else {
            throw FeedConfigurationError(
                setting: "checkInterval", value: "\(checkInterval)",
                reason: "must be positive and no longer than staleAfter (\(staleAfter))")
        }
        guard reconnectBackoff.lowerBound > .zero else {
            throw FeedConfigurationError(
                setting: "reconnectBackoff", value: "\(reconnectBackoff)", reason: "the lower bound must be positive")
        }
        guard reconnectWhenSilentFor > staleAfter else {
            throw FeedConfigurationError(
                setting: "reconnectWhenSilentFor", value: "\(reconnectWhenSilentFor)",
                reason: "must be longer than staleAfter (\(staleAfter)), or every stale source would be cut off at once"
            )
        }
        guard eventBufferCapacity > 0 else {
            throw FeedConfigurationError(
                setting: "eventBufferCapacity", value: "\(eventBufferCapacity)", reason: "must be positive")
        }
        guard maxFrameSize >= 1024 else {
            throw FeedConfigurationError(
                setting: "maxFrameSize", value: "\(maxFrameSize)", reason: "must be at least 1024 bytes")
        }
    }

    var monitorSettings: FeedMonitorSettings {
        FeedMonitorSettings(
            staleAfterNanos: staleAfter.nanoseconds, recoverAfterNanos: recoverAfter.nanoseconds,
            hasBackup: backupURL != nil, symbols: symbols)
    }

    func url(of source: FeedSource) -> String? {
        source == .primary ? primaryURL : backupURL
    }
}

/// A configuration value that cannot work, with the setting, the value and what to do.
public struct FeedConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var setting: String
    public var value: String
    public var reason: String

    public var description: String { "\(setting) \"\(value)\" \(reason)" }
}

/// The parts of a `ws://` or `wss://` URL the client needs, checked before any connection is tried.
struct FeedEndpoint: Sendable, Hashable {
    var secure: Bool
    var host: String
    var port: Int
    var path: String

    static func validate(_ url: String, setting: String) throws(FeedConfigurationError) {
        _ = try parse(url, setting: setting)
    }

    static func parse(_ url: String, setting: String) throws(FeedConfigurationError) -> FeedEndpoint {
        func failure(_ reason: String) -> FeedConfigurationError {
            FeedConfigurationError(setting: setting, value: url, reason: reason)
        }
        let secure: Bool
        let rest: Substring
        if url.hasPrefix("ws://") {
            secure = false
            rest = url.dropFirst(5)
        } else if url.hasPrefix("wss://") {
            secure = true
            rest = url.dropFirst(6)
        } else {
            throw failure("must start with ws:// or wss://")
        }
        guard !url.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) else {
            throw failure("contains whitespace")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let path = rest.dropFirst(authority.count)
        guard !authority.isEmpty else { throw failure("has no host") }
        guard !authority.contains("@") else { throw failure("must not carry credentials (user@host)") }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw failure("has an unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw failure("has junk after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            if parts.count == 2 { portText = parts[1] }
        }
        guard !host.isEmpty else { throw failure("has no host") }
        var port = secure ? 443 : 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw failure("has port \"\(portText)\"; a port is a number from 1 to 65535")
            }
            port = value
        }
        return FeedEndpoint(
            secure: secure, host: String(host), port: port, path: path.isEmpty ? "/" : String(path))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating; what the pure monitor works in.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return scaled + attoseconds / 1_000_000_000
    }
}
