// swift-tools-version:6.0
import PackageDescription

// Strict concurrency is the language mode's default in Swift 6; the flags below keep
// the upcoming features we rely on explicit so a toolchain bump cannot relax them.
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // The consensus core: a value type that does no I/O. No dependencies on purpose.
        .target(name: "RaftCore", swiftSettings: strictSettings),
        // Whole clusters of RaftNodes in one process under a seeded, faulty world.
        .target(name: "BatonSimulation", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        .executableTarget(
            name: "baton-sim",
            dependencies: [
                "BatonSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "RaftCoreTests", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonSimulationTests",
            dependencies: ["BatonSimulation", "RaftCore"],
            swiftSettings: strictSettings
        ),
    ]
)
