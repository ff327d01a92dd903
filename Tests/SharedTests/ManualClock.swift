import Synchronization

/// A clock that moves only when a test says so. Each `sleep` is reported on `sleeps`, so a test can
/// wait for the code under test to go to sleep, check how long it asked for, then `advance`.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
        var started = 0
    }

    private let state = Mutex(State())
    /// The duration of every sleep started, in order.
    let sleeps: AsyncStream<Duration>
    private let sleepsContinuation: AsyncStream<Duration>.Continuation

    init() {
        (sleeps, sleepsContinuation) = AsyncStream<Duration>.makeStream()
    }

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }
    var sleepsStarted: Int { state.withLock { $0.started } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let due: Duration? = state.withLock { s in
                    if Task.isCancelled { return nil }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    s.started += 1
                    return s.now.duration(to: deadline)
                }
                if let due { sleepsContinuation.yield(due) } else { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward, waking every sleeper now due.
    func advance(by duration: Duration) {
        let due: [Sleeper] = state.withLock { s in
            s.now = s.now.advanced(by: duration)
            let now = s.now
            let due = s.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { s.sleepers.removeValue(forKey: id) }
            return Array(due.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
