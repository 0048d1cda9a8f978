public import BatonFIX

/// How the initiator shell dials, ticks and bounds its store. The session's own behaviour
/// (HeartBtInt, timeouts, validation) lives in `FIXSessionSettings`.
public struct FIXInitiatorOptions: Hashable, Sendable {
    /// How often the session is ticked. FIXSession needs at least one tick a second; a finer
    /// tick keeps heartbeats close to HeartBtInt.
    public var tickInterval: Duration
    public var connectTimeout: Duration
    public var reconnectBackoff: FIXReconnectBackoff
    /// Application messages kept for ResendRequest; older ones are gap-filled.
    public var maxStoredMessages: Int
    /// fsync the session store on every change (see `FIXSessionDatabase.init`).
    public var syncsStore: Bool
    /// Dial only while holding a `FIXSessionPermit` (`FIXInitiator.grant`), and never send a
    /// MsgSeqNum above its ceiling. Baton's replicas share one broker session: only the leader
    /// holds a permit, and the ceiling is what the cluster reserved through its log.
    public var requiresPermit = false
    /// TLS to the broker; nil: plain TCP.
    public var tls: FIXTLSSettings?
    /// Received bytes the session has not processed yet. Past this the shell stops reading the
    /// socket (TCP pushes back on the broker) until the session has caught up to half of it.
    public var maxUnprocessedBytes = 4 << 20
    /// Application messages delivered on `applicationMessages` and not yet reported consumed
    /// (`consumedApplicationMessage()`). Past this the session waits before delivering more,
    /// which (with the byte bound) stops the socket: nothing is dropped, it backs up to the broker.
    public var maxUndeliveredMessages = 10_000

    public init(
        tickInterval: Duration = .milliseconds(100), connectTimeout: Duration = .seconds(5),
        reconnectBackoff: FIXReconnectBackoff = FIXReconnectBackoff(), maxStoredMessages: Int = 50_000,
        syncsStore: Bool = true
    ) {
        self.syncsStore = syncsStore
        self.tickInterval = tickInterval
        self.connectTimeout = connectTimeout
        self.reconnectBackoff = reconnectBackoff
        self.maxStoredMessages = maxStoredMessages
    }
}

/// TLS to the broker: the broker's certificate must chain to `caCertificatePath` (and name
/// `serverName`, when given); a client certificate is presented when both paths are set.
public struct FIXTLSSettings: Hashable, Sendable {
    public var caCertificatePath: String
    public var certificatePath: String?
    public var privateKeyPath: String?
    /// The name the broker's certificate must carry (SNI too); nil checks the chain only.
    public var serverName: String?

    public init(caCertificatePath: String, certificatePath: String? = nil, privateKeyPath: String? = nil, serverName: String? = nil) {
        self.caCertificatePath = caCertificatePath
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.serverName = serverName
    }
}

/// How long the initiator waits before dialling again: the ceiling doubles after every failed
/// attempt, from `minimum` up to `maximum`, and each wait is drawn from the upper half of the
/// ceiling ("equal jitter"), so replicas that lost the broker at the same moment do not all
/// redial it in lockstep. A session that reached Logon resets it.
public struct FIXReconnectBackoff: Hashable, Sendable {
    public var minimum: Duration
    public var maximum: Duration
    /// Failed attempts since the last logon.
    public private(set) var failures = 0

    public init(minimum: Duration = .milliseconds(250), maximum: Duration = .seconds(30)) {
        self.minimum = max(.nanoseconds(1), minimum)
        self.maximum = max(self.minimum, maximum)
    }

    /// `minimum · 2^failures`, capped at `maximum`.
    public var ceiling: Duration {
        let low = Self.nanoseconds(minimum)
        let high = Self.nanoseconds(maximum)
        let (scaled, overflow) = low.multipliedReportingOverflow(by: Int64(1) << Int64(min(failures, 62)))
        return .nanoseconds(overflow ? high : min(scaled, high))
    }

    /// The wait before the next attempt; counts one more failure.
    public mutating func nextDelay(using random: inout some RandomNumberGenerator) -> Duration {
        let ceiling = Self.nanoseconds(self.ceiling)
        failures += 1
        return .nanoseconds(Int64.random(in: (ceiling / 2)...ceiling, using: &random))
    }

    public mutating func reset() { failures = 0 }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : scaled &+ attoseconds / 1_000_000_000
    }
}

/// A snapshot of the initiator for the admin plane.
/// Permission to own the broker session, granted by whoever decides which replica that is
/// (Baton: the leader, from sequence numbers reserved through the replicated log).
public struct FIXSessionPermit: Hashable, Sendable {
    /// Outbound MsgSeqNum to start at, at least (the store's is kept if higher).
    public var firstSenderSeqNum: Int
    /// Highest outbound MsgSeqNum that may be written; a message above it is not, and the
    /// connection is closed.
    public var senderSeqCeiling: Int
    /// Inbound MsgSeqNum to expect at the next Logon; nil keeps the store's. Lower than the
    /// broker's makes it resend (PossDupFlag=Y) what is missing.
    public var nextTargetSeqNum: Int?

    public init(firstSenderSeqNum: Int, senderSeqCeiling: Int, nextTargetSeqNum: Int? = nil) {
        self.firstSenderSeqNum = firstSenderSeqNum
        self.senderSeqCeiling = senderSeqCeiling
        self.nextTargetSeqNum = nextTargetSeqNum
    }
}

public struct FIXInitiatorStatus: Hashable, Sendable {
    public var senderCompID: String
    public var targetCompID: String
    public var session: FIXSessionStatus
    /// MsgSeqNum(34) of the next message we send.
    public var nextSenderSeqNum: Int
    /// MsgSeqNum(34) we expect next from the broker.
    public var nextTargetSeqNum: Int
    /// When the current TCP connection was established, nil while disconnected.
    public var connectedSince: FIXTimestamp?
    /// When the session on the current connection became active.
    public var activeSince: FIXTimestamp?
    /// Connections established since start.
    public var connections: Int
    /// Connections established after the first (each one a reconnect).
    public var reconnects: Int { max(0, connections - 1) }
    /// Dial attempts that failed since start.
    public var failedConnectAttempts: Int
    /// Application messages delivered since start.
    public var deliveredMessages: Int
    /// Times the session waited because `maxUndeliveredMessages` were not consumed yet.
    public var deliveryWaits = 0
    /// Times the shell stopped reading the socket because `maxUnprocessedBytes` were unprocessed.
    public var readsHeld: Int = 0
    /// Why the latest connection ended, clean or not ("Logout confirmed" after a clean logout).
    public var lastDisconnect: String?
    /// The latest reason a connection ended badly or could not be made, and when.
    public var lastError: String?
    public var lastErrorAt: FIXTimestamp?
}

/// Why `FIXInitiator.send(_:)` did not send.
public enum FIXInitiatorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The session is not logged on; the message was not sent and is not queued.
    case notLoggedOn(FIXSessionStatus)
    /// Session-level messages are written by the session itself.
    case sessionMessageType(String)
    /// The caller's condition refused the message at the last moment; it was not sent.
    case refused(String)
    /// The connection ended before the message's bytes were written. With `seqNum` nil the
    /// message was never stored or sent. With `seqNum` set it was stored, so its fate is
    /// unknown: part of it may have reached the broker, and the session will offer it again
    /// (PossDupFlag=Y) if the broker asks for a resend after reconnecting.
    case disconnected(reason: String, seqNum: Int?)
    /// The store could not make the message durable, so it was not sent.
    case storeFailed(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case .notLoggedOn(let status): return "FIX session is \(status.rawValue), not active: message not sent"
        case .sessionMessageType(let type):
            return "MsgType \(type) is a session message; the session sends those itself"
        case .disconnected(let reason, let seqNum):
            if let seqNum {
                return "connection lost while writing MsgSeqNum \(seqNum) (\(reason)): the broker may or may not "
                    + "have it; treat the message as unknown"
            }
            return "connection lost before the message was sent (\(reason)): message not sent"
        case .storeFailed(let reason): return "message not sent: the session store failed: \(reason)"
        case .timedOut(let what): return "timed out: \(what)"
        case .refused(let why): return "message not sent: \(why)"
        }
    }
}
