// swift-tools-version:6.0
import PackageDescription

// Swift 6 language mode: strict concurrency checking is on for every target. The upcoming
// features below are opted into explicitly so a toolchain bump cannot relax them.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RaftCore", targets: ["RaftCore"]),
        .library(name: "BatonSimulation", targets: ["BatonSimulation"]),
        .executable(name: "baton-sim", targets: ["baton-sim"]),
        .executable(name: "batond", targets: ["batond"]),
        .executable(name: "batonctl", targets: ["batonctl"]),
        .executable(name: "baton-bench", targets: ["baton-bench"]),
        .executable(name: "baton-venue", targets: ["baton-venue"]),
        .executable(name: "baton-replay", targets: ["baton-replay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        // gzip for rotated tick captures; already in the graph through swift-websocket.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.3.0"),
    ],
    targets: [
        // The consensus core: a value type that does no I/O. No dependencies on purpose.
        .target(name: "RaftCore", swiftSettings: strictSettings),
        // Whole clusters of RaftNodes in one process under a seeded, faulty world.
        .target(name: "BatonSimulation", dependencies: ["RaftCore", "BatonTrading"], swiftSettings: strictSettings),
        .executableTarget(
            name: "baton-sim",
            dependencies: [
                "BatonSimulation", "BatonTrading",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // The peer wire format: frames, CRC32C, message codec. Pure Swift with no dependencies
        // beyond RaftCore, so the fuzzer can build it with plain swiftc (see Fuzz/README.md).
        .target(name: "BatonWire", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        // What every NIO listener here shares: accepted connections held until served or closed,
        // so a connection accepted during shutdown cannot trap the process.
        .target(
            name: "BatonListener",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // Peer connections over SwiftNIO: handshake, reconnect, bounded queues, optional mTLS.
        .target(
            name: "BatonTransport",
            dependencies: [
                "BatonWire", "RaftCore", "BatonListener",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The durable journal on SQLite (GRDB): Raft log, hard state, snapshots, state machine.
        .target(
            name: "BatonJournal",
            dependencies: [
                "RaftCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // libsystemd's sd_notify, for Type=notify units and the watchdog.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // The daemon as a library, so tests build the same application.
        .target(
            name: "BatonDaemon",
            dependencies: [
                "RaftCore", "BatonJournal", "BatonTransport", "BatonWire", "CSystemd",
                "BatonTrading", "BatonMarketData", "BatonFeed", "BatonFIX", "BatonFIXNIO", "BatonAlerting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "batond",
            dependencies: [
                "BatonDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Captured ticks through the live engine's decision code against the venue's matching model.
        .target(
            name: "BatonReplay",
            dependencies: ["BatonDaemon", "BatonTrading", "BatonVenue", "BatonFIX", "BatonMarketData", "BatonFeed"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "baton-replay",
            dependencies: [
                "BatonReplay", "BatonDaemon", "BatonFeed", "BatonVenue",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "batonctl",
            dependencies: [
                "BatonJournal", "RaftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // FIX 4.4: tag=value codec, data-dictionary validation and the session layer as a pure
        // state machine (logon, heartbeats, test/resend requests, sequence reset, logout).
        .target(
            name: "BatonFIX",
            resources: [.copy("Resources/FIX44.xml"), .copy("Resources/QUICKFIX-LICENSE")],
            swiftSettings: strictSettings
        ),
        // Market data as it crosses the wire: the normalised tick and its line codec. Pure, shared
        // by the venue simulator (encodes) and the feed client (decodes).
        .target(name: "BatonMarketData", swiftSettings: strictSettings),
        // The market feed client: WebSocket shell, staleness/gap detection, primary/backup switch.
        .target(
            name: "BatonFeed",
            dependencies: [
                "BatonMarketData",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The FIX initiator over SwiftNIO: runs a `FIXSession` on a TCP connection, keeps it
        // logged on, and keeps its sequence numbers and sent messages durable (SQLite).
        .target(
            name: "BatonFIXNIO",
            dependencies: [
                "BatonFIX",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The trading engine as pure values: journal commands, order state machine, positions,
        // the MA crossover strategy, the risk gate and reconciliation planning.
        .target(name: "BatonTrading", dependencies: ["BatonMarketData", "BatonAlerting"], swiftSettings: strictSettings),
        // The alert plane as pure values: SLOs and their burn-rate rules, the sinks' APIs, the
        // replicated alert outbox and the leader's dispatcher.
        .target(name: "BatonAlerting", swiftSettings: strictSettings),
        // The venue simulator: FIX 4.4 acceptor, matching model, market-data stream, inspection API.
        .target(
            name: "BatonVenue",
            dependencies: [
                "BatonFIX", "BatonMarketData", "BatonListener",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "baton-venue",
            dependencies: [
                "BatonVenue",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Real processes for tests, the chaos run and benchmarks: replicas that trade on a real
        // venue simulator, driven through admin HTTP and signals, audited against the venue.
        .target(
            name: "BatonTestCluster",
            dependencies: [
                "BatonVenue", "BatonJournal",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Benchmarks on demand (doc/benchmarks.md): commit throughput and latency, failover,
        // planned transfer, the disk's fsync floor, and the same commit load against etcd.
        .executableTarget(
            name: "baton-bench",
            dependencies: [
                "BatonTestCluster", "BatonMarketData", "BatonTrading", "BatonFeed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Test support: appends to a journal until it is killed, so tests can kill -9 a real
        // writer mid-transaction and prove that the journal recovers.
        .executableTarget(
            name: "baton-journal-writer",
            dependencies: ["BatonJournal", "RaftCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "BatonFIXTests", dependencies: ["BatonFIX"], swiftSettings: strictSettings),
        .testTarget(name: "BatonTradingTests", dependencies: ["BatonTrading", "BatonMarketData", "BatonAlerting"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonFeedTests",
            dependencies: [
                "BatonFeed", "BatonMarketData",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BatonVenueTests",
            dependencies: [
                "BatonVenue", "BatonFIX", "BatonMarketData", "baton-venue",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BatonFIXNIOTests",
            dependencies: [
                "BatonFIXNIO", "BatonFIX",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "RaftCoreTests", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonSimulationTests",
            dependencies: ["BatonSimulation", "BatonTrading", "RaftCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "BatonWireTests", dependencies: ["BatonWire", "RaftCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonTransportTests",
            dependencies: [
                "BatonTransport", "BatonWire", "RaftCore", "BatonListener", "BatonTestCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BatonJournalTests",
            dependencies: [
                "BatonJournal", "RaftCore", "baton-journal-writer",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BatonReplayTests",
            dependencies: ["BatonReplay", "BatonDaemon", "BatonFeed", "BatonTrading", "BatonVenue", "BatonMarketData"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "BatonAlertingTests", dependencies: ["BatonAlerting"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonDaemonTests",
            dependencies: [
                "BatonDaemon", "BatonJournal", "RaftCore", "BatonWire", "BatonTrading", "batond", "batonctl", "baton-venue",
                "baton-replay", "BatonTestCluster",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
