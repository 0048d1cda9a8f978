import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
public import RaftCore
public import ServiceLifecycle
import Synchronization
import UnixSignals

/// Builds the whole daemon as one `ServiceGroup`: journal and peer transport opened first (so
/// `READY=1` means both), then the consensus loop, the admin plane and the systemd notifier.
public enum Daemon {
    /// Reads and validates a configuration file with the process environment's overrides.
    public static func loadConfiguration(path: String, environment: [String: String]) throws -> BatondConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationErrors(errors: [
                ConfigurationError(
                    source: path, key: "(file)", line: nil, message: "cannot read: \(error.localizedDescription)")
            ])
        }
        return try BatondConfiguration.parse(yaml: text, source: path, environment: environment)
    }

    public static func makeLogger(
        _ label: String, configuration: BatondConfiguration, control: JSONLogHandler.DynamicMetadata
    )
        -> Logger
    {
        var logger = Logger(label: label) { label in
            switch configuration.logFormat {
            case .json: return JSONLogHandler(label: label, level: configuration.logLevel, dynamic: control)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = configuration.logLevel
                return handler
            }
        }
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        return logger
    }

    /// Opens storage and binds the peer port, then returns the services to run.
    public static func build(
        configuration: BatondConfiguration,
        configurationPath: String?,
        environment: [String: String],
        logControl: JSONLogHandler.DynamicMetadata = .init()
    ) async throws -> ServiceGroup {
        let logger = makeLogger("batond", configuration: configuration, control: logControl)
        logControl.set("node", "\(configuration.nodeID)")
        let metrics = DaemonMetrics(node: configuration.nodeID)

        let storage = try JournalStorage(
            directory: configuration.dataDirectory, durability: configuration.durability, metrics: metrics,
            logger: makeLogger("batond.journal", configuration: configuration, control: logControl)
        )
        let recovered = try storage.recover()
        logger.info(
            "journal opened",
            metadata: [
                "journal.dir": "\(configuration.dataDirectory)", "raft.term": "\(recovered.durable.hardState.term)",
                "journal.last_index":
                    "\(recovered.durable.entries.last?.index ?? recovered.durable.snapshot?.metadata.last.index ?? 0)",
                "journal.applied_index": "\(recovered.appliedIndex)",
            ]
        )

        let network = try await TCPPeerNetwork.start(
            configuration: configuration,
            logger: makeLogger("batond.peers", configuration: configuration, control: logControl)
        )

        let health = ReplicaHealth(node: configuration.nodeID, dataDirectory: configuration.dataDirectory, network: network)
        let healthService = ReplicaHealthService(
            health: health, dataDirectory: configuration.dataDirectory, verifyInterval: configuration.journalVerifyInterval,
            logger: makeLogger("batond.health", configuration: configuration, control: logControl))

        let clockOrigin = ContinuousClock.now
        let node = RaftNode(
            id: configuration.nodeID,
            settings: configuration.raft,
            bootstrap: configuration.bootstrap,
            durable: recovered.durable,
            appliedIndex: recovered.appliedIndex,
            clock: {
                MonotonicInstant(nanoseconds: UInt64(max(0, (ContinuousClock.now - clockOrigin).nanosecondsClamped)))
            },
            random: SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        )
        let trading = try await TradingServices.build(
            configuration: configuration, storage: storage, metrics: metrics,
            logger: { makeLogger($0, configuration: configuration, control: logControl) })
        let loop = ConsensusLoop(
            node: node, storage: storage, network: network, logger: logger, metrics: metrics,
            dynamicMetadata: logControl, readinessMaxLag: configuration.readinessMaxLag,
            stateMachine: trading?.engine
        )
        await trading?.engine.attach(
            consensus: loop, initiator: trading!.initiator, feed: trading!.feed, dataDirectory: configuration.dataDirectory,
            health: health)
        let notifier = SystemdNotifier()
        let consensus = ConsensusService(
            loop: loop, transferTimeout: configuration.shutdownTransferTimeout, logger: logger)
        let credentials = AdminCredentials(configuration.adminCredentials)
        let adminLogger = makeLogger("batond.admin", configuration: configuration, control: logControl)
        let admin = AdminAPI(
            consensus: loop, metrics: metrics, credentials: credentials, debugEndpoints: configuration.debugEndpoints,
            transferTimeout: configuration.raft.electionTimeoutMax * 2, trading: trading,
            node: configuration.nodeID, logger: adminLogger,
            limiter: AuthFailureLimiter(limit: configuration.adminAuthFailuresPerMinute)
        )
        let app = try Self.adminApplication(
            router: admin.buildRouter(), configuration: configuration, metrics: metrics, logger: adminLogger)
        let reload = ReloadService(
            path: configuration.path, environment: environment, running: configuration, credentials: credentials,
            logControl: logControl, notifier: notifier, logger: logger
        )
        // Graceful shutdown runs in reverse order: systemd hears STOPPING=1 first, the admin plane
        // closes, then a leader hands over through the still-open peer network, which goes last.
        return ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: network),
                    .init(service: healthService),
                    .init(service: consensus),
                ] + (trading?.services ?? []) + [
                    .init(service: app),
                    .init(service: SystemdService(notifier: notifier, consensus: loop, logger: logger)),
                    .init(service: reload),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
    }
}

extension BatondConfiguration {
    var path: String { source }
}

extension Daemon {
    /// The admin plane's HTTP server: idle connections closed, open connections capped, HTTPS
    /// when configured, and a warning when it is plain HTTP beyond loopback (tokens in the clear).
    static func adminApplication(
        router: Router<AdminRequestContext>, configuration: BatondConfiguration, metrics: DaemonMetrics,
        logger: Logger
    ) throws -> some ApplicationProtocol {
        let gauge = ConnectionGauge()
        let limit = configuration.adminMaxConnections
        let idle = TimeAmount.nanoseconds(configuration.adminIdleTimeout.nanosecondsClamped)
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [
                ConnectionCapHandler(gauge: gauge, limit: limit, refused: { metrics.adminConnectionsRefused.increment() })
            ],
            idleTimeout: idle)
        let server: HTTPServerBuilder
        if let tls = configuration.adminTLS {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.privateKey, format: .pem)
            var tlsConfiguration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tlsConfiguration.minimumTLSVersion = .tlsv12
            server = try .tls(.http1(configuration: http), tlsConfiguration: tlsConfiguration)
        } else {
            server = .http1(configuration: http)
            if !isLoopback(configuration.adminListen.host) {
                logger.warning(
                    "the admin plane listens beyond loopback without TLS: bearer tokens cross the network in the clear",
                    metadata: ["listen.admin": "\(configuration.adminListen)"])
            }
        }
        if configuration.adminCredentials.isEmpty {
            logger.warning("no admin tokens configured: every route but the probes answers 403")
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.adminListen.host, port: configuration.adminListen.port),
                serverName: "batond"
            ),
            logger: logger
        )
    }
}

/// Loopback by name or address: what may skip TLS without exposing anything to the network.
func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host.hasPrefix("127.") || host == "[::1]"
}

/// SIGHUP: re-read the configuration and apply what can change without a restart (log level,
/// admin token); report the rest as needing a restart. Tells systemd `RELOADING=1`, then `READY=1`.
struct ReloadService: Service {
    let path: String
    let environment: [String: String]
    let running: BatondConfiguration
    let credentials: AdminCredentials
    let logControl: JSONLogHandler.DynamicMetadata
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            notifier.reloading()
            do {
                let next = try Daemon.loadConfiguration(path: path, environment: environment)
                logControl.level = next.logLevel
                credentials.replace(next.adminCredentials)
                var needsRestart: [String] = []
                if next.members != running.members { needsRestart.append("cluster.members") }
                if next.peerListen != running.peerListen { needsRestart.append("listen.peer") }
                if next.adminListen != running.adminListen { needsRestart.append("listen.admin") }
                if next.raft != running.raft { needsRestart.append("raft.*") }
                if next.dataDirectory != running.dataDirectory { needsRestart.append("data_dir") }
                if next.tls != running.tls { needsRestart.append("tls.*") }
                logger.notice(
                    "configuration reloaded",
                    metadata: [
                        "log.level": "\(next.logLevel)",
                        "reload.needs_restart":
                            "\(needsRestart.isEmpty ? "nothing" : needsRestart.joined(separator: ","))",
                    ]
                )
            } catch {
                logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
            }
            notifier.ready()
        }
    }
}
