import Synchronization

/// The one writer of a model's replica count. The latest request wins; calls to the backend never
/// overlap, so they cannot land out of order (a slow `scale(1)` finishing after `scale(0)` used to
/// leave the model stuck in Waking). A failed call is retried with backoff until it succeeds or a
/// newer request replaces it.
final class ReplicaActuator: Sendable {
    private struct State {
        var desired: Int?
        /// Bumped by every request and re-assertion; the loop applies until it has caught up.
        var generation = 0
        var appliedGeneration = 0
    }

    private let state = Mutex(State())
    private let signal = LoopSignal()

    init() {}

    /// The replica count last asked for (nil before the first request).
    var desired: Int? { state.withLock { $0.desired } }

    func request(_ replicas: Int) {
        state.withLock { s in
            s.desired = replicas
            s.generation += 1
        }
        signal.signal()
    }

    /// Applies requests one at a time until cancelled. `retryDelay(attempt)` sleeps between failed attempts.
    func run(apply: @Sendable (Int) async throws -> Void, failed: @Sendable (Int, any Error) async -> Void,
             retryDelay: @Sendable (Int) async throws -> Void) async {
        var attempt = 0
        while !Task.isCancelled {
            let next: (replicas: Int, generation: Int)? = state.withLock { s in
                guard let desired = s.desired, s.generation != s.appliedGeneration else { return nil }
                return (desired, s.generation)
            }
            guard let next else {
                await signal.wait(timeout: nil)
                continue
            }
            do {
                try await apply(next.replicas)
                attempt = 0
                state.withLock { s in s.appliedGeneration = max(s.appliedGeneration, next.generation) }
            } catch {
                if Task.isCancelled { return }
                attempt += 1
                await failed(next.replicas, error)
                do { try await retryDelay(attempt) } catch { return }
            }
        }
    }
}
