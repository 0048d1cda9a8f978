/// Runs `operation`, but answers `ConsensusError.timedOut` once `timeout` has passed without a
/// result. On the timeout the operation's task is cancelled, which ends its commit wait (and
/// frees the waiter); a proposal already handed to the log still commits or not on its own,
/// since abandoning it cannot unwrite it. That is what an admin request needs: an answer within
/// a bound even while the cluster has no quorum, and nothing left behind for each one.
func withDeadline<T: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = ResumeOnce()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            do {
                let value = try await operation()
                if once.claim() { continuation.resume(returning: value) }
            } catch {
                if once.claim() { continuation.resume(throwing: error) }
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if once.claim() {
                continuation.resume(throwing: ConsensusError.timedOut("no commit within \(timeout)"))
                work.cancel()
            }
        }
    }
}
