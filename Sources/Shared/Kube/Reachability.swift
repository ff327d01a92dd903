import Synchronization

/// Whether the API server has been answering a `KubeClient`. Every request either gets an HTTP answer
/// (any status: the server is there) or fails in transport (refused, reset, timed out, TLS). The first
/// answer after one or more transport failures is a *recovery*: the outage is over. Whatever waits
/// out a backoff that grew during the outage (a `Watcher`'s pause, chill-server's work queue) can wait
/// for the next recovery too, and go again at once instead.
public final class Reachability: Sendable {
    private struct State {
        /// A transport failure since the last answer.
        var failing = false
        var recoveries = 0
        var waiters: [Int: (after: Int, continuation: CheckedContinuation<Bool, Never>)] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// How many recoveries there have been so far.
    public var recoveries: Int { state.withLock { $0.recoveries } }

    /// True after a transport failure, until the next answer.
    public var isFailing: Bool { state.withLock { $0.failing } }

    /// A request got an HTTP answer (any status).
    public func recordAnswer() {
        let due: [CheckedContinuation<Bool, Never>] = state.withLock { s in
            guard s.failing else { return [] }
            s.failing = false
            s.recoveries += 1
            let count = s.recoveries
            let due = s.waiters.filter { $0.value.after < count }
            for id in due.keys { s.waiters[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume(returning: true) }
    }

    /// Whether `error` is a request that got no answer at all (as a `TransportError`, or a `KubeError`
    /// carrying one), rather than an answer that says no.
    public static func isTransportFailure(_ error: any Error) -> Bool {
        error is TransportError || (error as? KubeError)?.transport != nil
    }

    /// A request failed before any answer. A cancelled transfer says nothing about the server.
    public func recordFailure(_ error: TransportError) {
        guard !error.isCancelled else { return }
        state.withLock { $0.failing = true }
    }

    /// Returns true once there have been more than `count` recoveries (at once if there already have
    /// been), false if the task is cancelled first.
    public func waitForRecovery(after count: Int) async -> Bool {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    if s.recoveries > count { return true }
                    if Task.isCancelled { return false }
                    s.waiters[id] = (count, continuation)
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: false)
        }
    }
}
