import BatonAlerting
import BatonJournal
import BatonWire
import Dispatch
import Foundation
import Logging
import RaftCore
import ServiceLifecycle
import Synchronization

/// A replica's word on its own health, for the leader's alert rules: its data directory's free
/// space, and its journal's last verification. Every replica publishes its own to its peers
/// once a second (a protocol-2 `replicaStatus` frame); the leader reads its followers' from the
/// transport and its own from here. A value the leader cannot see from Raft: a follower's disk
/// filling, or its journal failing verification while it still votes.
final class ReplicaHealth: Sendable {
    /// A follower's status older than this is no word at all (its disk and journal incidents
    /// are then left as they are; the replica family pages a silent one).
    static let freshFor: Duration = .seconds(5)
    static let publishEvery: Duration = .seconds(1)

    private let node: NodeID
    private let dataDirectory: String
    private let network: TCPPeerNetwork
    private let journal = Mutex(ReplicaStatus.Journal.unchecked)

    init(node: NodeID, dataDirectory: String, network: TCPPeerNetwork) {
        self.node = node
        self.dataDirectory = dataDirectory
        self.network = network
    }

    /// This replica's status now.
    func own() -> ReplicaStatus {
        let disk = IncidentWatch.disk(at: dataDirectory).map {
            UInt16((min(max($0.free, 0), 1) * Double(ReplicaStatus.basisPoints)).rounded(.down))
        }
        return ReplicaStatus(node: node, diskFreeBasisPoints: disk, journal: journal.withLock { $0 })
    }

    /// Why this replica's last verification failed (nil: it passed, or none ran yet).
    var ownJournalProblem: String? {
        if case .failed(let reason) = journal.withLock({ $0 }) { reason } else { nil }
    }

    /// The followers' fresh words on themselves, by node.
    func followers() -> [UInt64: IncidentRules.Health] {
        var result: [UInt64: IncidentRules.Health] = [:]
        for (id, report) in network.transport.replicaStatuses() where report.age <= Self.freshFor && id != node {
            result[id.rawValue] = Self.health(report.status, path: "data_dir of n\(id.rawValue)")
        }
        return result
    }

    static func health(_ status: ReplicaStatus, path: String) -> IncidentRules.Health {
        var problem: String?
        if case .failed(let reason) = status.journal { problem = reason }
        return IncidentRules.Health(
            disk: status.diskFreeBasisPoints.map {
                IncidentRules.Disk(free: Double($0) / Double(ReplicaStatus.basisPoints), path: path)
            }, journalProblem: problem)
    }

    func recordVerification(_ result: ReplicaStatus.Journal) { journal.withLock { $0 = result } }

    func publish() { network.transport.publish(own()) }

    /// Verifies the journal on a read-only connection of its own (one read transaction in WAL
    /// mode: the daemon's writes go on), off the cooperative pool, at background priority.
    static func verify(directory: String) async -> ReplicaStatus.Journal {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .background).async {
                let result: ReplicaStatus.Journal
                do {
                    let report = try RaftJournal.verifyWhileRunning(directory: directory)
                    if report.isIntact {
                        result = .verified(through: report.lastIndex)
                    } else {
                        let what = (report.brokenLink.map { ["\($0)"] } ?? []) + report.problems
                        result = .failed(reason: what.prefix(3).joined(separator: "; "))
                    }
                } catch {
                    result = .failed(reason: "cannot be read: \(error)")
                }
                continuation.resume(returning: result)
            }
        }
    }
}

/// Publishes this replica's health once a second, and verifies its journal every
/// `journal.verify_interval_s` (the first time soon after start).
struct ReplicaHealthService: Service {
    let health: ReplicaHealth
    let dataDirectory: String
    let verifyInterval: Duration?
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    health.publish()
                    try? await Task.sleep(for: ReplicaHealth.publishEvery)
                }
            }
            if let interval = verifyInterval {
                group.addTask {
                    var wait = min(interval, .seconds(30))
                    while !Task.isCancelled, !Task.isShuttingDownGracefully {
                        try? await Task.sleep(for: wait)
                        guard !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
                        wait = interval
                        let result = await ReplicaHealth.verify(directory: dataDirectory)
                        health.recordVerification(result)
                        switch result {
                        case .failed(let reason):
                            logger.critical(
                                "journal verification failed: the chain or the hard state does not hold",
                                metadata: ["journal.dir": "\(dataDirectory)", "journal.problem": "\(reason)"])
                        case .verified(let through):
                            logger.debug("journal verified", metadata: ["journal.verified_through": "\(through)"])
                        case .unchecked:
                            break
                        }
                    }
                }
            }
            await gracefulShutdownOrCancel()
            group.cancelAll()
        }
    }

    private func gracefulShutdownOrCancel() async {
        try? await gracefulShutdown()
    }
}
