import ArgumentParser
import BatonDaemon
import Foundation
import Logging
import ServiceLifecycle

/// The Baton replica daemon. One process per replica; see `doc/configuration.md`.
@main
struct Batond: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batond",
        abstract: "Baton replica: Raft over TCP, a durable SQLite journal, an admin HTTP plane."
    )

    @Option(name: .shortAndLong, help: "Configuration file (YAML). Environment variables BATON_<KEY> override it.")
    var config: String

    @Flag(help: "Validate the configuration, print the result and exit.")
    var checkConfig = false

    mutating func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration: BatondConfiguration
        do {
            configuration = try Daemon.loadConfiguration(path: config, environment: environment)
        } catch {
            FileHandle.standardError.write(Data("batond: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if checkConfig {
            print(
                "\(config): valid (node \(configuration.nodeID) of cluster \(configuration.clusterID), "
                    + "\(configuration.members.count) members, peer \(configuration.peerListen), admin \(configuration.adminListen))"
            )
            return
        }
        let control = JSONLogHandler.DynamicMetadata()
        let format = configuration.logFormat
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: return JSONLogHandler(label: label, level: level, dynamic: control)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let group: ServiceGroup
        do {
            group = try await Daemon.build(
                configuration: configuration, configurationPath: config, environment: environment, logControl: control
            )
        } catch {
            FileHandle.standardError.write(Data("batond: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        try await group.run()
    }
}
