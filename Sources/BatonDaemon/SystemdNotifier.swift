import CSystemd
import Foundation
public import Logging
public import ServiceLifecycle

/// Tells systemd how the daemon is, through libsystemd's `sd_notify`. Without `NOTIFY_SOCKET`
/// (not under systemd) every call is a no-op, as libsystemd makes it.
///
/// - `READY=1` once the journal is open and the peer port is bound (`markReady()`),
/// - `STATUS=` every second with role, term, leader and replication lag,
/// - `WATCHDOG=1` every `WATCHDOG_USEC / 2`, but only while the consensus loop is ticking: a
///   wedged loop lets the watchdog fire and systemd restart the process,
/// - `RELOADING=1` with `MONOTONIC_USEC` on SIGHUP, then `READY=1`; `STOPPING=1` on shutdown.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    @discardableResult
    public func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    public func ready() { notify("READY=1") }
    public func stopping() { notify("STOPPING=1") }
    public func status(_ text: String) { notify("STATUS=\(text)") }
    public func watchdog() { notify("WATCHDOG=1") }

    /// `RELOADING=1` must carry the monotonic time for `Type=notify-reload`.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        notify("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }
}

/// The service that keeps systemd informed while the daemon runs.
public struct SystemdService: Service {
    let notifier: SystemdNotifier
    let consensus: ConsensusLoop
    let logger: Logger

    public init(notifier: SystemdNotifier = SystemdNotifier(), consensus: ConsensusLoop, logger: Logger) {
        self.notifier = notifier
        self.consensus = consensus
        self.logger = logger
    }

    public func run() async throws {
        await consensus.waitUntilStarted()
        notifier.ready()
        let watchdog = notifier.watchdogInterval
        if let watchdog {
            logger.info("systemd watchdog enabled", metadata: ["watchdog.interval_ms": "\(watchdog.milliseconds)"])
        }
        let pingEvery = watchdog.map { $0 / 2 } ?? .seconds(1)
        var lastStatus = ContinuousClock.now - .seconds(10)
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let health = await consensus.health()
                // Only a loop that ticked recently earns a ping; the check runs here, outside the
                // loop, so a loop stuck in a blocking call cannot ping for itself.
                if watchdog != nil, health.loopIsTicking { notifier.watchdog() }
                if ContinuousClock.now - lastStatus >= .seconds(1) {
                    notifier.status(health.statusLine)
                    lastStatus = .now
                }
                try? await Task.sleep(for: min(pingEvery, .seconds(1)))
            }
        } onGracefulShutdown: {
            notifier.stopping()
        }
    }
}
