import Logging
import Shared
import Synchronization

/// A local cache of one kind, kept current by ONE watch and read by everyone (client-go's shared
/// informer, kube-rs's reflector). Handlers see every change as (old, new); a relist after a dropped
/// watch is diffed against the cache, so handlers never miss a deletion.
final class Informer<Object: KubeResource>: Sendable {
    typealias Handler = @Sendable (_ old: Object?, _ new: Object?) -> Void

    private struct State {
        var items: [String: Object] = [:]
        var synced = false
        var handlers: [Handler] = []
        var syncWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let what: String
    private let watcher: Watcher<Object>
    private let logger: Logger
    private let state = Mutex(State())

    init(_ what: String, watcher: Watcher<Object>, logger: Logger) {
        self.what = what
        self.watcher = watcher
        self.logger = logger
    }

    static func key(_ object: Object) -> String {
        let name = object.metadata.name ?? ""
        guard let namespace = object.metadata.namespace, !namespace.isEmpty else { return name }
        return "\(namespace)/\(name)"
    }

    /// Registers a change handler; call before `run`.
    func onChange(_ handler: @escaping Handler) {
        state.withLock { $0.handlers.append(handler) }
    }

    var hasSynced: Bool { state.withLock { $0.synced } }
    var items: [Object] { state.withLock { Array($0.items.values) } }
    func get(_ key: String) -> Object? { state.withLock { $0.items[key] } }
    func filter(_ include: (Object) -> Bool) -> [Object] { state.withLock { $0.items.values.filter(include) } }

    /// Returns once the first list has been loaded.
    func waitForSync() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if s.synced { return true }
                s.syncWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Follows the watch until cancelled. The Watcher resumes dropped watches and relists after 410; it
    /// ends with an error only when rights are gone (401/403): then this retries every few seconds.
    func run() async {
        while !Task.isCancelled {
            do {
                for try await event in watcher {
                    apply(event)
                }
                if Task.isCancelled { return }
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                logger.error("watch of \(what) failed: \(error)")
                do { try await Task.sleep(for: .seconds(5)) } catch { return }
            }
        }
    }

    private func apply(_ event: WatcherEvent<Object>) {
        var changes: [(Object?, Object?)] = []
        let (handlers, waiters) = state.withLock { s -> ([Handler], [CheckedContinuation<Void, Never>]) in
            switch event {
            case .listed(let objects):
                var fresh: [String: Object] = [:]
                for object in objects { fresh[Self.key(object)] = object }
                for (key, old) in s.items where fresh[key] == nil { changes.append((old, nil)) }
                for (key, new) in fresh { changes.append((s.items[key], new)) }
                s.items = fresh
            case .added(let object), .modified(let object):
                let key = Self.key(object)
                changes.append((s.items[key], object))
                s.items[key] = object
            case .deleted(let object):
                let key = Self.key(object)
                changes.append((s.items.removeValue(forKey: key) ?? object, nil))
            }
            var waiters: [CheckedContinuation<Void, Never>] = []
            if !s.synced {
                s.synced = true
                waiters = s.syncWaiters
                s.syncWaiters = []
            }
            return (s.handlers, waiters)
        }
        for (old, new) in changes {
            for handler in handlers { handler(old, new) }
        }
        for waiter in waiters { waiter.resume() }
    }
}
