/// What a leader knows about one follower's log and how it is replicating to it (etcd's
/// `tracker.Progress`, simplified).
struct FollowerProgress: Sendable {
    enum State: Sendable, Equatable {
        /// Unknown how far the follower's log matches: one append at a time until one is accepted.
        case probe
        /// The follower is known to match; appends are pipelined, bounded by `inflight`.
        case replicate
        /// A snapshot through `index` was sent; nothing else is sent until it is acknowledged
        /// or `ticksLeft` runs out (the message may have been lost).
        case snapshot(index: LogIndex, ticksLeft: Int)
    }

    var state: State = .probe
    /// The highest index known to be durable in the follower's log and to match the leader's.
    var match: LogIndex = 0
    /// The next index to send.
    var next: LogIndex
    /// In probe state, whether a probe is outstanding (paused until a response or a heartbeat reply).
    var probeSent = false
    /// Whether the follower answered since the last CheckQuorum round.
    var recentlyActive = false
    /// Whether it had answered in the round before (`recentlyActive` is cleared at each round,
    /// so right after a round it alone would call every follower silent).
    var activeLastRound = false
    /// The newest heartbeat round the follower acknowledged, for the leader lease.
    var ackedRound: UInt64 = 0
    /// `match` as of the previous heartbeat reply, to notice a replication stream that stalled
    /// because an append was lost.
    var matchAtLastHeartbeatReply: LogIndex = 0
    var inflight: InflightWindow

    init(next: LogIndex, window: InflightWindow) {
        self.next = next
        self.inflight = window
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflight.isFull
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if case .snapshot(let index, _) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflight.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflight.reset()
    }

    mutating func becomeSnapshot(index: LogIndex, ticks: Int) {
        state = .snapshot(index: index, ticksLeft: ticks)
        probeSent = false
        inflight.reset()
    }

    /// Records an acknowledgement up to `index`; returns whether `match` moved.
    mutating func acknowledge(_ index: LogIndex) -> Bool {
        var moved = false
        if index > match {
            match = index
            moved = true
            probeSent = false
        }
        next = max(next, index + 1)
        inflight.free(through: index)
        return moved
    }

    /// Handles a rejection of an append whose previous index was `rejected`; returns false when
    /// the rejection is stale (answers an append that an acknowledgement already overtook).
    mutating func rejected(_ rejected: LogIndex, nextProbe: LogIndex) -> Bool {
        switch state {
        case .replicate:
            guard rejected > match else { return false }
            becomeProbe()
            next = max(match + 1, min(rejected, nextProbe + 1))
            return true
        case .probe:
            guard next - 1 == rejected else { return false }
            next = max(match + 1, min(rejected, nextProbe + 1))
            probeSent = false
            return true
        case .snapshot:
            return false
        }
    }
}

/// The appends in flight to one follower, bounded in count and bytes (flow control).
struct InflightWindow: Sendable {
    private var lastIndexes: [LogIndex] = []
    private var sizes: [Int] = []
    private var head = 0
    private(set) var bytes = 0
    let maxMessages: Int
    let maxBytes: Int

    init(maxMessages: Int, maxBytes: Int) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    var count: Int { lastIndexes.count - head }
    var isFull: Bool { count >= maxMessages || bytes >= maxBytes }

    mutating func add(lastIndex: LogIndex, bytes size: Int) {
        lastIndexes.append(lastIndex)
        sizes.append(size)
        bytes += size
    }

    mutating func free(through index: LogIndex) {
        while head < lastIndexes.count, lastIndexes[head] <= index {
            bytes -= sizes[head]
            head += 1
        }
        if head > 32 && head * 2 > lastIndexes.count {
            lastIndexes.removeFirst(head)
            sizes.removeFirst(head)
            head = 0
        }
    }

    mutating func freeFirst() {
        guard head < lastIndexes.count else { return }
        free(through: lastIndexes[head])
    }

    mutating func reset() {
        lastIndexes.removeAll(keepingCapacity: true)
        sizes.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }
}
