import BatonWire
import RaftCore
import Synchronization

/// A bounded queue of messages for one peer. `offer` never blocks: when the queue is full, the new
/// message is dropped and counted, because Raft tolerates loss (it retries from its own state) but
/// a daemon that blocks its consensus loop on a slow peer does not tolerate anything.
///
/// One consumer at a time (the peer's dialler) takes everything queued in one batch. Beside the
/// queue, one slot holds this replica's latest `ReplicaStatus` for the peer: a newer status
/// replaces an unsent one (only the latest matters), so it can never fill the queue.
final class PeerOutbox: Sendable {
    struct Batch {
        var messages: [RaftMessage]
        var status: ReplicaStatus?
    }

    private struct State {
        var status: ReplicaStatus?
        var messages: [RaftMessage] = []
        var bytes = 0
        var waiter: CheckedContinuation<Void, Never>?
        var dropped: UInt64 = 0
        var closed = false
    }

    let capacity: Int
    /// A bound on the bytes queued as well: a count alone lets a few huge appends pile up.
    let maxBytes: Int
    private let state = Mutex(State())

    init(capacity: Int, maxBytes: Int = .max) {
        self.capacity = max(1, capacity)
        self.maxBytes = max(1, maxBytes)
    }

    var queuedBytes: Int { state.withLock { $0.bytes } }

    var queuedCount: Int { state.withLock { $0.messages.count } }
    var droppedCount: UInt64 { state.withLock { $0.dropped } }

    /// Queues `message`; false when it was dropped (queue full, or the outbox is closed).
    @discardableResult
    func offer(_ message: RaftMessage) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            let size = message.approximateSize
            // One message is always let into an empty queue, however large: it was encodable.
            guard !state.closed, state.messages.count < capacity,
                state.messages.isEmpty || state.bytes + size <= maxBytes
            else {
                state.dropped += 1
                return (false, nil)
            }
            state.messages.append(message)
            state.bytes += size
            let waiter = state.waiter
            state.waiter = nil
            return (true, waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// Puts `status` in the slot (replacing one not sent yet) and wakes the sender.
    func offer(status: ReplicaStatus) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.closed else { return nil }
            state.status = status
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Records a message that was taken but could not be sent (e.g. too large to encode).
    func countDropped() {
        state.withLock { $0.dropped += 1 }
    }

    /// Waits until something is queued and takes all of it; nil when the task is cancelled or the
    /// outbox closed.
    func take() async -> Batch? {
        while true {
            if Task.isCancelled { return nil }
            let batch = state.withLock { state -> Batch?? in
                if state.closed { return .some(nil) }
                guard !state.messages.isEmpty || state.status != nil else { return nil }
                defer {
                    state.messages.removeAll(keepingCapacity: true)
                    state.bytes = 0
                    state.status = nil
                }
                return Batch(messages: state.messages, status: state.status)
            }
            if let batch { return batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    // Checked under the lock: a cancellation that ran its handler before we stored
                    // the waiter has already set the flag we read here, so no wake-up is lost.
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.messages.isEmpty || state.status != nil || state.closed || Task.isCancelled { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }

    /// Drops everything queued and refuses (and counts) whatever is offered from now on.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            state.status = nil
            state.messages.removeAll()
            state.bytes = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
