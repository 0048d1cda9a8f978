import RaftCore
import Synchronization

/// A bounded queue of messages for one peer. `offer` never blocks: when the queue is full, the new
/// message is dropped and counted, because Raft tolerates loss (it retries from its own state) but
/// a daemon that blocks its consensus loop on a slow peer does not tolerate anything.
///
/// One consumer at a time (the peer's dialler) takes everything queued in one batch.
final class PeerOutbox: Sendable {
    private struct State {
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

    /// Records a message that was taken but could not be sent (e.g. too large to encode).
    func countDropped() {
        state.withLock { $0.dropped += 1 }
    }

    /// Waits until something is queued and takes all of it; nil when the task is cancelled or the
    /// outbox closed.
    func take() async -> [RaftMessage]? {
        while true {
            if Task.isCancelled { return nil }
            let batch = state.withLock { state -> [RaftMessage]? in
                if state.closed { return [] }
                guard !state.messages.isEmpty else { return nil }
                defer {
                    state.messages.removeAll(keepingCapacity: true)
                    state.bytes = 0
                }
                return state.messages
            }
            if let batch { return batch.isEmpty ? nil : batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    // Checked under the lock: a cancellation that ran its handler before we stored
                    // the waiter has already set the flag we read here, so no wake-up is lost.
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.messages.isEmpty || state.closed || Task.isCancelled { return true }
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
            state.messages.removeAll()
            state.bytes = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
