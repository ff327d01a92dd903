import Synchronization

/// A clock that moves only when a test says so; sleepers wake when `advance` passes their deadline.
/// Each sleep started is also reported on `sleeps` (how long it asked for), so a test can wait for
/// the code under test to go to sleep, check the delay, then `advance`.
public final class ManualClock: Clock, Sendable {
    public struct Instant: InstantProtocol {
        public var offset: Duration
        public init(offset: Duration) { self.offset = offset }
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
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
    public let sleeps: AsyncStream<Duration>
    private let sleepsContinuation: AsyncStream<Duration>.Continuation

    public init() {
        (sleeps, sleepsContinuation) = AsyncStream<Duration>.makeStream()
    }

    public var minimumResolution: Duration { .zero }
    public var now: Instant { state.withLock { $0.now } }
    /// Tasks sleeping on this clock now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }
    /// Sleeps started so far (those already due included).
    public var sleepsStarted: Int { state.withLock { $0.started } }

    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Start { case cancelled, due(Duration), parked(Duration) }
                let start: Start = state.withLock { s in
                    if Task.isCancelled { return .cancelled }
                    s.started += 1
                    let due = s.now.duration(to: deadline)
                    if deadline <= s.now { return .due(due) }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return .parked(due)
                }
                switch start {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .due(let due): sleepsContinuation.yield(due); continuation.resume()
                case .parked(let due): sleepsContinuation.yield(due)
                }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward, waking every sleeper now due.
    public func advance(by duration: Duration) {
        let due: [Sleeper] = state.withLock { s in
            s.now = s.now.advanced(by: duration)
            let now = s.now
            let due = s.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { s.sleepers.removeValue(forKey: id) }
            return Array(due.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (bounded, in real time) until at least `count` tasks sleep on this clock, so an
    /// `advance` can't slip in before a timer was armed.
    public func waitForSleepers(_ count: Int) async throws {
        try await eventually("\(count) sleepers on the manual clock") { self.sleeperCount >= count }
    }
}

public struct Timeout: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Waits for a condition that other tasks make true, yielding in between; fails after `limit`
/// instead of hanging. Not a sleep-and-hope: the condition is the thing asserted. The limit only
/// catches a hang: a passing wait returns as soon as the condition holds, and 5 s was seen to starve
/// on a 2-core machine running the whole suite beside other builds.
public func eventually(_ what: String, limit: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: limit)
    while try await !condition() {
        guard clock.now < deadline else { throw Timeout(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(2))
    }
}
