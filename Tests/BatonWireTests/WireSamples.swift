import BatonWire
import RaftCore

/// One frame of every shape the format has, for round-trip and split tests.
enum WireSamples {
    static let cluster: ClusterID = 0xBA70_0001

    static func raft(_ body: RaftMessage.Body, from: NodeID = 1, to: NodeID = 2, term: Term = 7) -> Frame {
        Frame(clusterID: cluster, body: .raft(RaftMessage(from: from, to: to, term: term, body: body)))
    }

    static let entries: [LogEntry] = [
        LogEntry(term: 3, index: 11, payload: .leaderNoop),
        LogEntry(term: 3, index: 12, payload: .command([])),
        LogEntry(term: 3, index: 13, payload: .command(Array("buy 100 ACME @ 12.5".utf8))),
        LogEntry(term: 4, index: 14, payload: .membership(.addLearner(4))),
        LogEntry(term: 4, index: 15, payload: .membership(.promoteLearner(4))),
        LogEntry(term: 4, index: 16, payload: .membership(.remove(NodeID(.max)))),
        LogEntry(term: 4, index: 17, payload: .membership(.addLearner(5, address: "[fd00::5]:7105"))),
        LogEntry(term: 4, index: 18, payload: .membership(.addLearner(6, address: "baton-5.baton-peers.baton.svc:7100"))),
    ]

    static let snapshot = Snapshot(
        metadata: SnapshotMetadata(
            last: LogPosition(term: 9, index: 1_000),
            configuration: ClusterConfiguration(voters: [1, 2, 3], learners: [5, 4])
        ),
        data: (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    )

    static let frames: [(name: String, frame: Frame)] = [
        (
            "hello",
            Frame(clusterID: cluster, body: .hello(Hello(nodeID: 1, clusterID: cluster, advertisedName: "baton-0")))
        ),
        (
            "hello, empty name, max ids",
            Frame(
                clusterID: ClusterID(.max),
                body: .hello(
                    Hello(nodeID: NodeID(.max), clusterID: ClusterID(.max), protocolVersion: .max, advertisedName: ""))
            )
        ),
        (
            "helloAccepted, unicode name",
            Frame(
                clusterID: cluster,
                body: .helloAccepted(Hello(nodeID: 2, clusterID: cluster, advertisedName: "zürich-α-🚀")))
        ),
        (
            "helloRejected",
            Frame(clusterID: cluster, body: .helloRejected(reason: "node n9 is not in this node's peer list"))
        ),
        ("helloRejected, empty reason", Frame(clusterID: 0, body: .helloRejected(reason: ""))),
        (
            "appendEntries, empty (probe)",
            raft(
                .appendEntries(
                    AppendEntries(previous: LogPosition(term: 2, index: 10), entries: [], leaderCommit: 9, round: 4)))
        ),
        (
            "appendEntries, every payload",
            raft(
                .appendEntries(
                    AppendEntries(
                        previous: LogPosition(term: 3, index: 10), entries: entries, leaderCommit: 10, round: 5)))
        ),
        (
            "appendEntries, from index 0",
            raft(
                .appendEntries(
                    AppendEntries(
                        previous: LogPosition(term: 0, index: 0),
                        entries: [LogEntry(term: 1, index: 1, payload: .leaderNoop)], leaderCommit: 0, round: 0)))
        ),
        (
            "appendEntriesResponse ok",
            raft(.appendEntriesResponse(AppendEntriesResponse(index: 16, rejected: false, round: 5)))
        ),
        (
            "appendEntriesResponse reject",
            raft(
                .appendEntriesResponse(
                    AppendEntriesResponse(
                        index: 16, rejected: true, rejectHint: LogPosition(term: 2, index: 8), round: .max)))
        ),
        ("heartbeat", raft(.heartbeat(Heartbeat(leaderCommit: 42, round: 17)))),
        ("heartbeatResponse", raft(.heartbeatResponse(HeartbeatResponse(round: 17)))),
        ("requestVote", raft(.requestVote(RequestVote(isPreVote: false, lastLog: LogPosition(term: 6, index: 99))))),
        (
            "requestVote, pre-vote",
            raft(.requestVote(RequestVote(isPreVote: true, lastLog: LogPosition(term: 6, index: 99))), term: 8)
        ),
        (
            "requestVote, transfer",
            raft(
                .requestVote(
                    RequestVote(isPreVote: false, lastLog: LogPosition(term: 6, index: 99), isLeadershipTransfer: true))
            )
        ),
        (
            "requestVoteResponse granted",
            raft(.requestVoteResponse(RequestVoteResponse(isPreVote: false, granted: true)))
        ),
        (
            "requestVoteResponse pre-vote rejected",
            raft(.requestVoteResponse(RequestVoteResponse(isPreVote: true, granted: false)))
        ),
        ("installSnapshot", raft(.installSnapshot(InstallSnapshot(snapshot: snapshot, round: 3)))),
        (
            "installSnapshot with member addresses",
            raft(
                .installSnapshot(
                    InstallSnapshot(
                        snapshot: Snapshot(
                            metadata: SnapshotMetadata(
                                last: LogPosition(term: 9, index: 1_000),
                                configuration: ClusterConfiguration(
                                    voters: [1, 2, 4], learners: [5], addresses: [4: "10.0.0.4:7100", 5: "h5:7100"])),
                            data: [1, 2, 3]
                        ),
                        round: 4
                    )
                )
            )
        ),
        (
            "installSnapshot, empty",
            raft(
                .installSnapshot(
                    InstallSnapshot(
                        snapshot: Snapshot(
                            metadata: SnapshotMetadata(
                                last: LogPosition(term: 0, index: 0), configuration: ClusterConfiguration(voters: [])),
                            data: []
                        ),
                        round: 0
                    )
                )
            )
        ),
        ("timeoutNow", raft(.timeoutNow, from: 3, to: 1, term: .max)),
        (
            "replicaStatus, unchecked, disk unknown",
            Frame(clusterID: cluster, body: .replicaStatus(ReplicaStatus(node: 2, diskFreeBasisPoints: nil, journal: .unchecked)))
        ),
        (
            "replicaStatus, verified, disk full",
            Frame(clusterID: cluster, body: .replicaStatus(ReplicaStatus(node: 3, diskFreeBasisPoints: 0, journal: .verified(through: .max))))
        ),
        (
            "replicaStatus, failed, unicode reason",
            Frame(
                clusterID: cluster,
                body: .replicaStatus(
                    ReplicaStatus(node: NodeID(.max), diskFreeBasisPoints: 10_000, journal: .failed(reason: "chain broken at 42 ✗"))))
        ),
    ]

    static var allBytes: [UInt8] {
        frames.flatMap { (try? $0.frame.encoded()) ?? [] }
    }

    /// A frame with a correct header and CRC around an arbitrary payload, to reach payload errors.
    static func frameBytes(type: UInt8, cluster: ClusterID = cluster, payload: [UInt8]) -> [UInt8] {
        var bytes = WireFormat.magic + [WireFormat.version, type, 0, 0]
        bytes += bigEndian(cluster.rawValue, width: 8)
        bytes += bigEndian(UInt64(payload.count), width: 4)
        bytes += payload
        bytes += bigEndian(UInt64(CRC32C.checksum(bytes)), width: 4)
        return bytes
    }

    static func bigEndian(_ value: UInt64, width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - $0))) }
    }

    /// The fixed part of a raft payload: from 1, to 2, term 7, then the body tag.
    static func raftPrefix(tag: UInt8) -> [UInt8] {
        bigEndian(1, width: 8) + bigEndian(2, width: 8) + bigEndian(7, width: 8) + [tag]
    }
}

/// Decodes everything in `bytes`, fed in the given chunk sizes (cycled), and returns the frames
/// and the error that stopped decoding, if any.
func decodeAll(
    _ bytes: [UInt8],
    chunks: [Int] = [],
    configuration: FrameDecoder.Configuration = .init()
) -> (frames: [Frame], error: WireError?) {
    var decoder = FrameDecoder(configuration: configuration)
    var frames: [Frame] = []
    var position = 0
    var chunkIndex = 0
    repeat {
        let size = chunks.isEmpty ? bytes.count : max(1, chunks[chunkIndex % chunks.count])
        chunkIndex += 1
        let end = min(bytes.count, position + size)
        decoder.append(bytes[position..<end])
        position = end
        do {
            while let frame = try decoder.next() { frames.append(frame) }
        } catch {
            return (frames, error)
        }
    } while position < bytes.count
    return (frames, nil)
}
