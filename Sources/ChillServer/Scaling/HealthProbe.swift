import NIOCore
import NIOPosix
import Shared
import Synchronization

/// What one `GET /health` said.
enum HealthProbeResult: Sendable, Equatable, CustomStringConvertible {
    /// 200: the engine is loaded and serving.
    case healthy
    /// An HTTP answer other than 200 (vLLM answers 503 when its engine died).
    case unhealthy(status: Int)
    /// No HTTP answer: connection refused (vLLM doesn't listen until the model is loaded), timeout, DNS.
    case unreachable(String)

    var isHealthy: Bool { self == .healthy }

    var description: String {
        switch self {
        case .healthy: "healthy"
        case .unhealthy(let status): "HTTP \(status)"
        case .unreachable(let detail): detail
        }
    }
}

/// `GET http://host:port/health` with a short timeout, over NIO on an event loop (a probe costs a
/// socket, not a thread). 200 means healthy.
struct HealthProbe: Sendable {
    let target: UpstreamTarget
    let path: String
    let timeout: Duration
    private let group: any EventLoopGroup

    init(target: UpstreamTarget, path: String = "/health", timeout: Duration = .seconds(1),
         group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.target = target
        self.path = path
        self.timeout = timeout
        self.group = group
    }

    func check() async -> HealthProbeResult {
        do {
            let status = try await HTTPStatusProbe.status(host: target.host, port: target.port, path: path, timeout: timeout, group: group)
            return status == 200 ? .healthy : .unhealthy(status: status)
        } catch {
            return .unreachable("cannot reach http://\(target): \(error)")
        }
    }
}

/// How often a backend probes `/health`, and how many failures in a row make a ready backend unready.
struct HealthProbePolicy: Sendable, Equatable {
    /// While waking (something exists but `/health` hasn't answered 200 yet): the wake is noticed
    /// within this (a refused connection or a 503 costs the probe next to nothing).
    var wakingInterval: Duration = .milliseconds(50)
    /// Once healthy: often enough to notice a dead engine.
    var readyInterval: Duration = .seconds(3)
    /// Failed probes in a row before a healthy backend counts as unhealthy (one slow `/health` under
    /// load must not take the model out of service). Re-probes happen at `wakingInterval`.
    var failureThreshold = 3

    init(wakingInterval: Duration = .milliseconds(50), readyInterval: Duration = .seconds(3), failureThreshold: Int = 3) {
        self.wakingInterval = wakingInterval
        self.readyInterval = readyInterval
        self.failureThreshold = max(1, failureThreshold)
    }
}

/// Health as the probe loop tracks it: one success makes a waking backend healthy; `failureThreshold`
/// failures in a row make a healthy one unhealthy.
struct HealthTracker: Sendable, Equatable {
    private(set) var healthy = false
    private(set) var consecutiveFailures = 0
    private(set) var last: HealthProbeResult?

    /// Records a probe result; returns true when `healthy` changed.
    @discardableResult
    mutating func record(_ result: HealthProbeResult, threshold: Int) -> Bool {
        last = result
        let before = healthy
        if result.isHealthy {
            healthy = true
            consecutiveFailures = 0
        } else {
            consecutiveFailures += 1
            if !healthy || consecutiveFailures >= threshold { healthy = false }
        }
        return before != healthy
    }

    /// Nothing to probe any more (no pods, no process).
    mutating func reset() { self = HealthTracker() }

    /// The delay before the next probe.
    func nextInterval(_ policy: HealthProbePolicy) -> Duration {
        healthy && consecutiveFailures == 0 ? policy.readyInterval : policy.wakingInterval
    }
}

/// A level-triggered wake-up for a loop that otherwise sleeps: `signal()` makes the current (or next)
/// `wait` return at once. Used so a probe loop reacts to a state change without polling.
final class LoopSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                return w.continuation
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns on `signal()`, after `timeout` (nil: no timeout), or when the task is cancelled.
    func wait(timeout: Duration?) async {
        if state.withLock({ s in
            let was = s.pending
            s.pending = false
            return was
        }) { return }
        if Task.isCancelled { return }
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        let timer: Task<Void, Never>? = timeout.map { timeout in
            Task { [weak self] in
                do { try await Task.sleep(for: timeout) } catch { return }
                self?.resume(id)
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow: Bool = state.withLock { s in
                    if s.pending || Task.isCancelled {
                        s.pending = false
                        return true
                    }
                    s.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.resume(id)
        }
        timer?.cancel()
    }

    private func resume(_ id: UInt64) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard let w = s.waiter, w.id == id else {
                // The wait for `id` hasn't parked yet: make it return as soon as it tries.
                if s.waiter == nil && s.nextID == id { s.pending = true }
                return nil
            }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume()
    }
}

/// Fans `BackendStatus` changes out to subscribers; each new subscriber gets the current status first.
final class StatusBroadcaster: Sendable {
    private struct State {
        var current: BackendStatus
        var subscribers: [Int: AsyncStream<BackendStatus>.Continuation] = [:]
        var nextID = 0
    }

    private let state: Mutex<State>

    init(_ initial: BackendStatus = BackendStatus()) {
        state = Mutex(State(current: initial))
    }

    var current: BackendStatus { state.withLock { $0.current } }

    func subscribe() -> AsyncStream<BackendStatus> {
        let (stream, continuation) = AsyncStream<BackendStatus>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id: Int = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.subscribers[id] = continuation
            continuation.yield(s.current)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Publishes `status` if it differs from the current one; returns the previous status when it did.
    @discardableResult
    func publish(_ status: BackendStatus) -> BackendStatus? {
        state.withLock { s in
            guard s.current != status else { return nil }
            let previous = s.current
            s.current = status
            // Yielded under the lock so every subscriber sees the changes in order.
            for continuation in s.subscribers.values { continuation.yield(status) }
            return previous
        }
    }

    /// Updates the status with `body` atomically and publishes it if it changed.
    @discardableResult
    func update(_ body: (inout BackendStatus) -> Void) -> BackendStatus? {
        state.withLock { s in
            var status = s.current
            body(&status)
            guard s.current != status else { return nil }
            let previous = s.current
            s.current = status
            for continuation in s.subscribers.values { continuation.yield(status) }
            return previous
        }
    }

    func finish() {
        let all = state.withLock { s in
            let all = Array(s.subscribers.values)
            s.subscribers.removeAll()
            return all
        }
        for continuation in all { continuation.finish() }
    }
}
