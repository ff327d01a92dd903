/// A queue of names to reconcile, as controller-runtime's: a name queued many times is reconciled
/// once; never two reconciles of the same name at once (a name queued while it runs runs again
/// after); failures come back with per-name exponential backoff; "look again after" is a delay.
actor WorkQueue {
    private var queue: [String] = []
    private var queued: Set<String> = []
    private var processing: Set<String> = []
    private var dirty: Set<String> = []
    private var failures: [String: Int] = [:]
    private var delayed: [String: Task<Void, Never>] = [:]
    private var waiter: CheckedContinuation<String?, Never>?
    private var closed = false

    let baseDelay: Duration
    let maxDelay: Duration

    init(baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(60)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
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

    /// Adds `name` after `delay`; an earlier pending delay for the same name is replaced only by a sooner one.
    func add(_ name: String, after delay: Duration) {
        guard !closed else { return }
        if delay <= .zero { return add(name) }
        delayed[name]?.cancel()
        delayed[name] = Task { [weak self] in
            do { try await Task.sleep(for: delay) } catch { return }
            await self?.fireDelayed(name)
        }
    }

    private func fireDelayed(_ name: String) {
        delayed[name] = nil
        add(name)
    }

    /// After a failed reconcile: again after 100 ms, 200 ms, 400 ms… up to a minute.
    func addRateLimited(_ name: String) {
        let count = failures[name, default: 0]
        failures[name] = count + 1
        let delay = min(maxDelay, baseDelay * (1 << min(count, 20)))
        add(name, after: delay)
    }

    /// A reconcile succeeded: its backoff starts over.
    func forget(_ name: String) { failures[name] = nil }

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
        for task in delayed.values { task.cancel() }
        delayed = [:]
        waiter?.resume(returning: nil)
        waiter = nil
    }
}
