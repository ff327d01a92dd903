import Shared

/// A queue of names to reconcile, as controller-runtime's: a name queued many times is reconciled
/// once; never two reconciles of the same name at once (a name queued while it runs runs again
/// after); failures come back with per-name exponential backoff; "look again after" is a delay.
///
/// Backoff is sized for the failure, not for the recovery: after a long outage a name may wait a
/// minute although the API server answers again. So the backoff of every name that failed for want
/// of the server is dropped when the server is back (`retryBackedOff`, driven by
/// `followRecoveries`), and a name someone is waiting for right now (a wake) can start its backoff
/// over (`add(_:resettingBackoff:)`). A name the server answered with an error keeps its backoff.
actor WorkQueue {
    private struct Delayed {
        var id: Int
        /// On the queue's clock, as a duration since the queue was made.
        var deadline: Duration
        var task: Task<Void, Never>
    }

    private var queue: [String] = []
    private var queued: Set<String> = []
    private var processing: Set<String> = []
    private var dirty: Set<String> = []
    private var failures: [String: Int] = [:]
    /// Names backing off because their last reconcile could not reach the API server.
    private var unreachable: Set<String> = []
    private var delayed: [String: Delayed] = [:]
    private var nextTimer = 0
    private var waiter: CheckedContinuation<String?, Never>?
    private var closed = false

    nonisolated let baseDelay: Duration
    nonisolated let maxDelay: Duration
    private let elapsed: @Sendable () -> Duration
    private let sleep: @Sendable (_ until: Duration) async throws -> Void

    init(baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(60)) {
        self.init(baseDelay: baseDelay, maxDelay: maxDelay, clock: ContinuousClock())
    }

    /// Delays and backoff run on `clock`.
    init<C: Clock<Duration>>(baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(60), clock: C) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        let start = clock.now
        elapsed = { start.duration(to: clock.now) }
        sleep = { deadline in try await clock.sleep(until: start.advanced(by: deadline), tolerance: nil) }
    }

    func add(_ name: String) {
        guard !closed else { return }
        if processing.contains(name) {
            dirty.insert(name)
            return
        }
        guard queued.insert(name).inserted else { return }
        if let waiter {
            self.waiter = nil
            queued.remove(name)
            processing.insert(name)
            waiter.resume(returning: name)
        } else {
            queue.append(name)
        }
    }

    /// Adds `name` now; with `resettingBackoff`, its backoff also starts over and a retry still
    /// pending is dropped (this reconcile takes its place): for a name someone waits for, such as a
    /// model woken by a held request, which must not wait out a backoff grown by earlier failures.
    func add(_ name: String, resettingBackoff: Bool) {
        if resettingBackoff, failures.removeValue(forKey: name) != nil {
            unreachable.remove(name)
            cancelDelayed(name)
        }
        add(name)
    }

    /// Adds `name` after `delay`; an earlier pending delay for the same name is replaced only by a sooner one.
    func add(_ name: String, after delay: Duration) {
        guard !closed else { return }
        if delay <= .zero { return add(name) }
        let deadline = elapsed() + delay
        if let pending = delayed[name], pending.deadline <= deadline { return }
        delayed[name]?.task.cancel()
        nextTimer += 1
        let id = nextTimer
        let sleep = self.sleep
        let task = Task { [weak self] in
            do { try await sleep(deadline) } catch { return }
            await self?.fireDelayed(name, id: id)
        }
        delayed[name] = Delayed(id: id, deadline: deadline, task: task)
    }

    private func fireDelayed(_ name: String, id: Int) {
        guard delayed[name]?.id == id else { return }  // replaced or dropped meanwhile
        delayed[name] = nil
        add(name)
    }

    private func cancelDelayed(_ name: String) {
        delayed.removeValue(forKey: name)?.task.cancel()
    }

    /// After a failed reconcile: again after 100 ms, 200 ms, 400 ms… up to a minute. `unreachable`: it
    /// failed because the API server could not be reached (`retryBackedOff` is for those).
    func addRateLimited(_ name: String, unreachable serverUnreachable: Bool = false) {
        let count = failures[name, default: 0]
        failures[name] = count + 1
        if serverUnreachable { unreachable.insert(name) } else { unreachable.remove(name) }
        let delay = min(maxDelay, baseDelay * (1 << min(count, 20)))
        add(name, after: delay)
    }

    /// A reconcile succeeded: its backoff starts over.
    func forget(_ name: String) {
        failures[name] = nil
        unreachable.remove(name)
    }

    /// The API server is reachable again: every name backing off because it could not reach it is
    /// queued now, with its backoff started over (queued once, as any add; one that is running runs
    /// again after). Returns those names.
    @discardableResult
    func retryBackedOff() -> [String] {
        let names = unreachable.sorted()
        unreachable = []
        for name in names {
            failures[name] = nil
            cancelDelayed(name)
            add(name)
        }
        return names
    }

    /// Until cancelled: at each recovery of `reachability` (an answer after transport failures),
    /// `retryBackedOff`, then `retried` with the names.
    nonisolated func followRecoveries(of reachability: Reachability, _ retried: @Sendable ([String]) -> Void = { _ in }) async {
        var seen = reachability.recoveries
        while await reachability.waitForRecovery(after: seen) {
            seen = reachability.recoveries
            retried(await retryBackedOff())
        }
    }

    /// Until closed: takes each name and reconciles it; a success forgets its failures (and looks again
    /// when asked to), a failure is reported to `failed` and retried with backoff (noting whether the
    /// API server could not be reached).
    nonisolated func process(_ reconcile: (String) async throws -> Duration?, failed: (String, any Error) -> Void) async {
        while let name = await next() {
            do {
                let after = try await reconcile(name)
                await forget(name)
                if let after { await add(name, after: after) }
            } catch {
                failed(name, error)
                await addRateLimited(name, unreachable: Reachability.isTransportFailure(error))
            }
            await done(name)
        }
    }

    /// The next name to reconcile; nil once closed.
    func next() async -> String? {
        if closed { return nil }
        if !queue.isEmpty {
            let name = queue.removeFirst()
            queued.remove(name)
            processing.insert(name)
            return name
        }
        return await withCheckedContinuation { continuation in
            waiter = continuation
        }
    }

    func done(_ name: String) {
        processing.remove(name)
        if dirty.remove(name) != nil { add(name) }
    }

    func close() {
        closed = true
        for pending in delayed.values { pending.task.cancel() }
        delayed = [:]
        waiter?.resume(returning: nil)
        waiter = nil
    }

    // MARK: - For tests

    /// Names queued and not yet taken, in order.
    var pending: [String] { queue }
    /// Whether a delayed add of `name` is pending.
    func isDelayed(_ name: String) -> Bool { delayed[name] != nil }
    /// Failures counted against `name` since its last success.
    func failureCount(_ name: String) -> Int { failures[name, default: 0] }
}
