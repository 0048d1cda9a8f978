import RaftCore

// The payload of each frame type. Tags are part of the format: never renumber one, only add.

enum RaftBodyTag: UInt8 {
    case appendEntries = 1
    case appendEntriesResponse = 2
    case heartbeat = 3
    case heartbeatResponse = 4
    case requestVote = 5
    case requestVoteResponse = 6
    case installSnapshot = 7
    case timeoutNow = 8
    /// An installSnapshot whose configuration carries member addresses (protocol 3). Sent only
    /// when there are addresses, which only `member add … ADDR` creates: a cluster that never
    /// uses it keeps speaking what protocol 2 peers read.
    case installSnapshotWithAddresses = 9
}

enum ReplicaJournalTag: UInt8 {
    case unchecked = 0
    case verified = 1
    case failed = 2
}

/// `ReplicaStatus.diskFreeBasisPoints` when the disk could not be read.
let unknownDiskFree: UInt16 = 0xFFFF

enum EntryPayloadTag: UInt8 {
    case leaderNoop = 0
    case command = 1
    case membership = 2
}

enum MembershipChangeTag: UInt8 {
    case addLearner = 1
    case promoteLearner = 2
    case remove = 3
    /// A learner with its peer address (protocol 3).
    case addLearnerAt = 4
}

/// The longest member address on the wire (`host:port`), in UTF-8 bytes: a DNS name is at most 253.
let maximumAddressLength = 300

/// The smallest encoded log entry (term, index, tag of a noop), used to bound entry counts.
let minimumEncodedEntrySize = 17

// MARK: - Encoding

extension WireWriter {
    mutating func writePosition(_ position: LogPosition) {
        writeUInt64(position.term)
        writeUInt64(position.index)
    }

    mutating func writeHello(_ hello: Hello) throws(WireError) {
        writeUInt64(hello.nodeID.rawValue)
        writeUInt64(hello.clusterID.rawValue)
        writeUInt16(hello.protocolVersion)
        try writeString(hello.advertisedName, "hello.advertisedName", maximumLength: WireFormat.maximumNameLength)
    }

    mutating func writeRejection(_ reason: String) throws(WireError) {
        try writeString(
            shortened(reason, toUTF8Length: WireFormat.maximumReasonLength),
            "helloRejected.reason",
            maximumLength: WireFormat.maximumReasonLength
        )
    }

    mutating func writeReplicaStatus(_ status: ReplicaStatus) throws(WireError) {
        writeUInt64(status.node.rawValue)
        writeUInt16(status.diskFreeBasisPoints.map { min($0, ReplicaStatus.basisPoints) } ?? unknownDiskFree)
        switch status.journal {
        case .unchecked:
            writeUInt8(ReplicaJournalTag.unchecked.rawValue)
        case .verified(let through):
            writeUInt8(ReplicaJournalTag.verified.rawValue)
            writeUInt64(through)
        case .failed(let reason):
            writeUInt8(ReplicaJournalTag.failed.rawValue)
            try writeString(
                shortened(reason, toUTF8Length: WireFormat.maximumReasonLength), "replicaStatus.journal.reason",
                maximumLength: WireFormat.maximumReasonLength)
        }
    }

    mutating func writeRaftMessage(_ message: RaftMessage) throws(WireError) {
        writeUInt64(message.from.rawValue)
        writeUInt64(message.to.rawValue)
        writeUInt64(message.term)
        switch message.body {
        case .appendEntries(let m):
            writeUInt8(RaftBodyTag.appendEntries.rawValue)
            writePosition(m.previous)
            writeUInt64(m.leaderCommit)
            writeUInt64(m.round)
            try writeCount(m.entries.count, "raft.appendEntries.entries.count")
            for entry in m.entries { try writeEntry(entry) }
        case .appendEntriesResponse(let m):
            writeUInt8(RaftBodyTag.appendEntriesResponse.rawValue)
            writeUInt64(m.index)
            writeBool(m.rejected)
            writePosition(m.rejectHint)
            writeUInt64(m.round)
        case .heartbeat(let m):
            writeUInt8(RaftBodyTag.heartbeat.rawValue)
            writeUInt64(m.leaderCommit)
            writeUInt64(m.round)
        case .heartbeatResponse(let m):
            writeUInt8(RaftBodyTag.heartbeatResponse.rawValue)
            writeUInt64(m.round)
        case .requestVote(let m):
            writeUInt8(RaftBodyTag.requestVote.rawValue)
            writeBool(m.isPreVote)
            writePosition(m.lastLog)
            writeBool(m.isLeadershipTransfer)
        case .requestVoteResponse(let m):
            writeUInt8(RaftBodyTag.requestVoteResponse.rawValue)
            writeBool(m.isPreVote)
            writeBool(m.granted)
        case .installSnapshot(let m):
            let addresses = m.snapshot.metadata.configuration.addresses.sorted { $0.key < $1.key }
            writeUInt8((addresses.isEmpty ? RaftBodyTag.installSnapshot : .installSnapshotWithAddresses).rawValue)
            writePosition(m.snapshot.metadata.last)
            // Sorted, so that one message has exactly one encoding (the decoder insists on it).
            let voters = m.snapshot.metadata.configuration.voters.sorted()
            let learners = m.snapshot.metadata.configuration.learners.sorted()
            try writeCount(voters.count, "raft.installSnapshot.voters.count")
            for id in voters { writeUInt64(id.rawValue) }
            try writeCount(learners.count, "raft.installSnapshot.learners.count")
            for id in learners { writeUInt64(id.rawValue) }
            if !addresses.isEmpty {
                try writeCount(addresses.count, "raft.installSnapshot.addresses.count")
                for (id, address) in addresses {
                    writeUInt64(id.rawValue)
                    try writeString(address, "raft.installSnapshot.addresses", maximumLength: maximumAddressLength)
                }
            }
            try writeLengthPrefixedBytes(m.snapshot.data, "raft.installSnapshot.data")
            writeUInt64(m.round)
        case .timeoutNow:
            writeUInt8(RaftBodyTag.timeoutNow.rawValue)
        }
    }

    mutating func writeEntry(_ entry: LogEntry) throws(WireError) {
        writeUInt64(entry.term)
        writeUInt64(entry.index)
        switch entry.payload {
        case .leaderNoop:
            writeUInt8(EntryPayloadTag.leaderNoop.rawValue)
        case .command(let bytes):
            writeUInt8(EntryPayloadTag.command.rawValue)
            try writeLengthPrefixedBytes(bytes, "raft.appendEntries.entries.command")
        case .membership(let change):
            writeUInt8(EntryPayloadTag.membership.rawValue)
            switch change {
            case .addLearner(let id, nil):
                writeUInt8(MembershipChangeTag.addLearner.rawValue)
                writeUInt64(id.rawValue)
            case .addLearner(let id, let address?):
                writeUInt8(MembershipChangeTag.addLearnerAt.rawValue)
                writeUInt64(id.rawValue)
                try writeString(address, "raft.appendEntries.entries.membership.address", maximumLength: maximumAddressLength)
            case .promoteLearner(let id):
                writeUInt8(MembershipChangeTag.promoteLearner.rawValue)
                writeUInt64(id.rawValue)
            case .remove(let id):
                writeUInt8(MembershipChangeTag.remove.rawValue)
                writeUInt64(id.rawValue)
            }
        }
    }
}

/// `text` cut at a character boundary so that its UTF-8 fits in `limit` bytes. A rejection reason
/// is for a person: better delivered shortened than not at all.
func shortened(_ text: String, toUTF8Length limit: Int) -> String {
    if text.utf8.count <= limit { return text }
    var result = ""
    var length = 0
    for character in text {
        let size = character.utf8.count
        if length + size > limit { break }
        result.append(character)
        length += size
    }
    return result
}

// MARK: - Decoding

extension WireReader {
    mutating func readPosition(_ field: String) throws(WireError) -> LogPosition {
        let term = try readUInt64(field + ".term")
        let index = try readUInt64(field + ".index")
        return LogPosition(term: term, index: index)
    }

    mutating func readHello(_ field: String) throws(WireError) -> Hello {
        let nodeID = NodeID(try readUInt64(field + ".nodeID"))
        let clusterID = ClusterID(try readUInt64(field + ".clusterID"))
        let protocolVersion = try readUInt16(field + ".protocolVersion")
        let name = try readString(field + ".advertisedName", maximumLength: WireFormat.maximumNameLength)
        return Hello(nodeID: nodeID, clusterID: clusterID, protocolVersion: protocolVersion, advertisedName: name)
    }

    mutating func readReplicaStatus() throws(WireError) -> ReplicaStatus {
        let node = NodeID(try readUInt64("replicaStatus.node"))
        let diskReader = self
        let disk = try readUInt16("replicaStatus.diskFreeBasisPoints")
        guard disk <= ReplicaStatus.basisPoints || disk == unknownDiskFree else {
            throw diskReader.error(
                .invalidValue(reason: "a free share above 10000 basis points"), "replicaStatus.diskFreeBasisPoints",
                value: UInt64(disk))
        }
        let tagReader = self
        let tagByte = try readUInt8("replicaStatus.journal")
        guard let tag = ReplicaJournalTag(rawValue: tagByte) else {
            throw tagReader.error(.unknownTag, "replicaStatus.journal", value: UInt64(tagByte))
        }
        let journal: ReplicaStatus.Journal
        switch tag {
        case .unchecked: journal = .unchecked
        case .verified: journal = .verified(through: try readUInt64("replicaStatus.journal.through"))
        case .failed:
            journal = .failed(
                reason: try readString("replicaStatus.journal.reason", maximumLength: WireFormat.maximumReasonLength))
        }
        return ReplicaStatus(node: node, diskFreeBasisPoints: disk == unknownDiskFree ? nil : disk, journal: journal)
    }

    mutating func readRaftMessage() throws(WireError) -> RaftMessage {
        let from = NodeID(try readUInt64("raft.from"))
        let to = NodeID(try readUInt64("raft.to"))
        let term = try readUInt64("raft.term")
        let tagReader = self
        let tagByte = try readUInt8("raft.body")
        guard let tag = RaftBodyTag(rawValue: tagByte) else {
            throw tagReader.error(.unknownTag, "raft.body", value: UInt64(tagByte))
        }
        let body: RaftMessage.Body
        switch tag {
        case .appendEntries:
            body = .appendEntries(try readAppendEntries())
        case .appendEntriesResponse:
            let index = try readUInt64("raft.appendEntriesResponse.index")
            let rejected = try readBool("raft.appendEntriesResponse.rejected")
            let hint = try readPosition("raft.appendEntriesResponse.rejectHint")
            let round = try readUInt64("raft.appendEntriesResponse.round")
            body = .appendEntriesResponse(
                AppendEntriesResponse(index: index, rejected: rejected, rejectHint: hint, round: round)
            )
        case .heartbeat:
            let commit = try readUInt64("raft.heartbeat.leaderCommit")
            let round = try readUInt64("raft.heartbeat.round")
            body = .heartbeat(Heartbeat(leaderCommit: commit, round: round))
        case .heartbeatResponse:
            body = .heartbeatResponse(HeartbeatResponse(round: try readUInt64("raft.heartbeatResponse.round")))
        case .requestVote:
            let isPreVote = try readBool("raft.requestVote.isPreVote")
            let lastLog = try readPosition("raft.requestVote.lastLog")
            let transfer = try readBool("raft.requestVote.isLeadershipTransfer")
            body = .requestVote(RequestVote(isPreVote: isPreVote, lastLog: lastLog, isLeadershipTransfer: transfer))
        case .requestVoteResponse:
            let isPreVote = try readBool("raft.requestVoteResponse.isPreVote")
            let granted = try readBool("raft.requestVoteResponse.granted")
            body = .requestVoteResponse(RequestVoteResponse(isPreVote: isPreVote, granted: granted))
        case .installSnapshot:
            body = .installSnapshot(try readInstallSnapshot(withAddresses: false))
        case .installSnapshotWithAddresses:
            body = .installSnapshot(try readInstallSnapshot(withAddresses: true))
        case .timeoutNow:
            body = .timeoutNow
        }
        return RaftMessage(from: from, to: to, term: term, body: body)
    }

    mutating func readAppendEntries() throws(WireError) -> AppendEntries {
        let previous = try readPosition("raft.appendEntries.previous")
        let commit = try readUInt64("raft.appendEntries.leaderCommit")
        let round = try readUInt64("raft.appendEntries.round")
        let count = try readCount("raft.appendEntries.entries.count", minimumElementSize: minimumEncodedEntrySize)
        var entries: [LogEntry] = []
        // `count` is bounded by the bytes left, so this reservation is bounded by the frame size.
        entries.reserveCapacity(count)
        var expectedIndex = previous.index
        for i in 0..<count {
            let entryReader = self
            let entry = try readEntry(at: i)
            // RaftCore appends entries in order and traps on a gap, so a gap is refused here,
            // at the edge, where it is a peer's error and not ours.
            let (next, overflow) = expectedIndex.addingReportingOverflow(1)
            guard !overflow, entry.index == next else {
                throw entryReader.error(
                    .invalidValue(
                        reason: "entries must be contiguous after previous index \(previous.index); expected index "
                            + (overflow ? "beyond UInt64.max" : "\(next)")
                    ),
                    "raft.appendEntries.entries[\(i)].index",
                    value: entry.index
                )
            }
            expectedIndex = next
            entries.append(entry)
        }
        return AppendEntries(previous: previous, entries: entries, leaderCommit: commit, round: round)
    }

    /// Entry `i` of an AppendEntries. Field names are built only when an error needs one.
    mutating func readEntry(at i: Int) throws(WireError) -> LogEntry {
        func field(_ suffix: String) -> String { "raft.appendEntries.entries[\(i)]\(suffix)" }
        let term = try readUInt64(field(".term"))
        let index = try readUInt64(field(".index"))
        let tagReader = self
        let tagByte = try readUInt8(field(".payload"))
        guard let tag = EntryPayloadTag(rawValue: tagByte) else {
            throw tagReader.error(.unknownTag, field(".payload"), value: UInt64(tagByte))
        }
        let payload: LogEntry.Payload
        switch tag {
        case .leaderNoop:
            payload = .leaderNoop
        case .command:
            payload = .command(try readLengthPrefixedBytes(field(".command")))
        case .membership:
            let kindReader = self
            let kindByte = try readUInt8(field(".membership"))
            let node = NodeID(try readUInt64(field(".membership.node")))
            switch MembershipChangeTag(rawValue: kindByte) {
            case .addLearner: payload = .membership(.addLearner(node))
            case .addLearnerAt:
                let address = try readString(field(".membership.address"), maximumLength: maximumAddressLength)
                payload = .membership(.addLearner(node, address: address))
            case .promoteLearner: payload = .membership(.promoteLearner(node))
            case .remove: payload = .membership(.remove(node))
            case nil: throw kindReader.error(.unknownTag, field(".membership"), value: UInt64(kindByte))
            }
        }
        return LogEntry(term: term, index: index, payload: payload)
    }

    mutating func readInstallSnapshot(withAddresses: Bool) throws(WireError) -> InstallSnapshot {
        let last = try readPosition("raft.installSnapshot.last")
        let voters = try readNodeSet("raft.installSnapshot.voters")
        let learners = try readNodeSet("raft.installSnapshot.learners")
        if let both = Self.firstCommon(voters, learners) {
            // ClusterConfiguration would silently drop it; a correct sender never sends it.
            throw error(
                .invalidValue(reason: "node \(both) is both a voter and a learner"),
                "raft.installSnapshot.learners",
                value: both.rawValue
            )
        }
        var addresses: [NodeID: String] = [:]
        if withAddresses {
            let ids = try readNodeSet("raft.installSnapshot.addresses", withAddresses: &addresses)
            // One encoding per message: without addresses it is a plain installSnapshot.
            if ids.isEmpty {
                throw error(
                    .invalidValue(reason: "lists no addresses (a snapshot without them is an installSnapshot)"),
                    "raft.installSnapshot.addresses.count", value: 0)
            }
            let members = Set(voters).union(learners)
            if let stranger = ids.first(where: { !members.contains($0) }) {
                throw error(
                    .invalidValue(reason: "an address for \(stranger), which is not a member"),
                    "raft.installSnapshot.addresses", value: stranger.rawValue)
            }
        }
        let data = try readLengthPrefixedBytes("raft.installSnapshot.data")
        let round = try readUInt64("raft.installSnapshot.round")
        let metadata = SnapshotMetadata(
            last: last,
            configuration: ClusterConfiguration(voters: Set(voters), learners: Set(learners), addresses: addresses)
        )
        return InstallSnapshot(snapshot: Snapshot(metadata: metadata, data: data), round: round)
    }

    /// The first id in both strictly ascending lists: one merge walk, linear in their lengths
    /// (a frame arrives from a peer, and an event loop must not spend V × L on it).
    static func firstCommon(_ a: [NodeID], _ b: [NodeID]) -> NodeID? {
        var i = 0
        var j = 0
        while i < a.count, j < b.count {
            if a[i] == b[j] { return a[i] }
            if a[i] < b[j] { i += 1 } else { j += 1 }
        }
        return nil
    }

    /// A set of node ids in strictly ascending order, so that every set has one encoding.
    mutating func readNodeSet(_ field: String) throws(WireError) -> [NodeID] {
        var none: [NodeID: String]? = nil
        return try readNodeSet(field, addresses: &none)
    }

    /// Node ids in strictly ascending order, each followed by its address.
    mutating func readNodeSet(_ field: String, withAddresses addresses: inout [NodeID: String]) throws(WireError) -> [NodeID] {
        var read: [NodeID: String]? = [:]
        let ids = try readNodeSet(field, addresses: &read)
        addresses = read ?? [:]
        return ids
    }

    private mutating func readNodeSet(_ field: String, addresses: inout [NodeID: String]?) throws(WireError) -> [NodeID] {
        let countReader = self
        let count = try readCount(field + ".count", minimumElementSize: addresses == nil ? 8 : 10)
        guard count <= WireFormat.maximumMembers else {
            throw countReader.error(
                .invalidValue(reason: "more than \(WireFormat.maximumMembers) members"), field + ".count",
                value: UInt64(count))
        }
        var ids: [NodeID] = []
        ids.reserveCapacity(count)
        for i in 0..<count {
            let idReader = self
            let id = try readUInt64("\(field)[\(i)]")
            if let previous = ids.last, id <= previous.rawValue {
                throw idReader.error(
                    .invalidValue(reason: "node ids must be strictly ascending (previous \(previous.rawValue))"),
                    "\(field)[\(i)]",
                    value: id
                )
            }
            ids.append(NodeID(id))
            if addresses != nil {
                addresses?[NodeID(id)] = try readString("\(field)[\(i)].address", maximumLength: maximumAddressLength)
            }
        }
        return ids
    }
}
