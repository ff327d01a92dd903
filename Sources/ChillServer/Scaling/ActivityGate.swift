import Synchronization

/// The hot path's only contact with scaling: one short lock, no actor hop, no Kubernetes call.
/// It counts requests in flight and stamps when the last one ENDED, so the idle timer runs only
/// while nothing is in flight (a stream longer than the idle timeout is never cut).
final class ActivityGate<C: Clock>: Sendable where C.Duration == Duration {
    private struct State {
        var isReady = false
        var inFlight = 0
        var lastActivity: C.Instant
        /// `stop` without `--force` waiting for the last request to end.
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let clock: C
    /// Wakes the idle loop (its only consumer) when the last in-flight request ends.
    private let idleSignal: AsyncStream<Void>.Continuation
    let idleSignals: AsyncStream<Void>

    init(clock: C) {
        self.clock = clock
        self.state = Mutex(State(lastActivity: clock.now))
        (idleSignals, idleSignal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Counts a request in if the model is ready; false means the caller must wait for a wake.
    func enterIfReady() -> Bool {
        state.withLock { s in
            guard s.isReady else { return false }
            s.inFlight += 1
            return true
        }
    }

    /// Counts a request in regardless of readiness (a held request released by a wake).
    func enter() {
        state.withLock { $0.inFlight += 1 }
    }

    /// The request ended (completed, failed or cancelled): the idle timer restarts from now.
    func exit() {
        let now = clock.now
        let (idle, waiters) = state.withLock { s in
            s.inFlight -= 1
            s.lastActivity = now
            guard s.inFlight == 0 else { return (false, [CheckedContinuation<Void, Never>]()) }
            defer { s.idleWaiters.removeAll() }
            return (true, s.idleWaiters)
        }
        if idle {
            idleSignal.yield()
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Returns once nothing is in flight. Unlike `idleSignals` (the idle loop's own stream), any
    /// number of callers may wait.
    func waitUntilNothingInFlight() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s in
                if s.inFlight == 0 { return true }
                s.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Closes the gate if nothing is in flight and the last activity is at least `timeout` old, in
    /// one step under the lock: a request admitted a moment earlier keeps it open, one arriving a
    /// moment later is held for a new wake instead of being scaled away under it.
    func closeIfIdle(for timeout: Duration) -> Bool {
        let now = clock.now
        return state.withLock { s in
            guard s.isReady, s.inFlight == 0, s.lastActivity.advanced(by: timeout) <= now else { return false }
            s.isReady = false
            return true
        }
    }

    /// Activity that isn't a request in flight (a held request arriving, a manual start).
    func touch() {
        let now = clock.now
        state.withLock { $0.lastActivity = now }
    }

    /// Something else the idle decision depends on changed (pending replicas, held requests).
    func nudge() { idleSignal.yield() }

    func setReady(_ ready: Bool) {
        state.withLock { $0.isReady = ready }
        idleSignal.yield()
    }

    var snapshot: (inFlight: Int, lastActivity: C.Instant, isReady: Bool) {
        state.withLock { ($0.inFlight, $0.lastActivity, $0.isReady) }
    }
}
