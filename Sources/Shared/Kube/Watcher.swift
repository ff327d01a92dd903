#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a long-running `Watcher` reports.
public enum WatcherEvent<Object: KubeObject>: Sendable {
    /// A full (re)list: the complete current state. Sent first, and again after a 410 forced a relist.
    case listed([Object])
    case added(Object)
    case modified(Object)
    case deleted(Object)
}

/// A watch that never gives up (kube-rs's `watcher`, client-go's reflector): lists, then watches from
/// the list's resourceVersion; on a dropped connection it resumes from the last resourceVersion seen
/// (bookmarks included) after a jittered backoff; on 410 Gone, or an event that does not decode (which
/// a resume would only replay), it lists again. A watch the server ends at once backs off too, so a
/// misbehaving server or proxy is not hammered. A pause after the API server could not be reached ends
/// early, with the backoff started over, once the client hears from it again (`Reachability`): after an
/// outage the watch resumes when the server is back, not up to one maximum backoff later.
public struct Watcher<Object: KubeObject>: AsyncSequence, Sendable {
    public typealias Element = WatcherEvent<Object>
    let source: WatchSource<Object>
    let options: ListOptions
    let backoff: Backoff
    let timeoutSeconds: Int
    let clock: any Clock<Duration>
    /// A watch that ends cleanly sooner than this "ended at once".
    let minimumWatchDuration: Duration

    public func makeAsyncIterator() -> AsyncThrowingStream<Element, any Error>.AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<Element, any Error>.makeStream()
        let task = Task { await run(continuation) }
        continuation.onTermination = { _ in task.cancel() }
        return stream.makeAsyncIterator()
    }

    private func run(_ continuation: AsyncThrowingStream<Element, any Error>.Continuation) async {
        var resourceVersion: String? = nil
        var backoff = self.backoff
        var decodeFailuresInARow = 0
        while !Task.isCancelled {
            let recoveries = source.reachability?.recoveries ?? 0
            var pause: Duration? = nil
            var unreachable = false
            do {
                if resourceVersion == nil {
                    var listOptions = options
                    listOptions.resourceVersion = nil
                    let list = try await source.list(listOptions)
                    resourceVersion = list.metadata.resourceVersion
                    continuation.yield(.listed(list.items))
                }
                var watchOptions = options
                watchOptions.resourceVersion = resourceVersion
                let elapsed = Self.stopwatch(clock)
                let events = try await source.watch(watchOptions, timeoutSeconds)
                for try await event in events {
                    backoff.reset()
                    decodeFailuresInARow = 0
                    switch event {
                    case .bookmark(let rv): resourceVersion = rv
                    case .added(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.added(o))
                    case .modified(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.modified(o))
                    case .deleted(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.deleted(o))
                    }
                }
                // The server ended the watch: resume at once after a normal one, back off if it ended at once.
                if elapsed() < minimumWatchDuration { pause = backoff.next() }
            } catch let error as KubeError where error.isGone {
                resourceVersion = nil
            } catch is WatchDecodingError {
                resourceVersion = nil
                // The relist normally gets past the bad event; if the next watch fails the same way, wait.
                if decodeFailuresInARow > 0 { pause = backoff.next() }
                decodeFailuresInARow += 1
            } catch is CancellationError {
                break
            } catch let error as KubeError where error.code == 401 || error.code == 403 {
                // Lost our rights: retrying won't help; end the sequence with the error and let
                // the caller report it.
                continuation.finish(throwing: error)
                return
            } catch {
                unreachable = Reachability.isTransportFailure(error)
                pause = backoff.next()
            }
            if Task.isCancelled { break }
            if let pause {
                do {
                    if unreachable, let reachability = source.reachability {
                        if try await Self.sleep(for: pause, on: clock, untilRecoveryAfter: recoveries, of: reachability) { backoff.reset() }
                    } else {
                        try await clock.sleep(for: pause)
                    }
                } catch { break }
            }
        }
        continuation.finish()
    }

    /// Sleeps for `pause`, or less if the server has answered since the `recoveries`-th recovery:
    /// true when it was cut short.
    static func sleep(for pause: Duration, on clock: any Clock<Duration>, untilRecoveryAfter recoveries: Int,
                      of reachability: Reachability) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await clock.sleep(for: pause)
                return false
            }
            group.addTask { await reachability.waitForRecovery(after: recoveries) }
            defer { group.cancelAll() }
            let recovered = try await group.next() ?? false
            try Task.checkCancellation()
            return recovered
        }
    }

    private static func stopwatch<C: Clock<Duration>>(_ clock: C) -> () -> Duration {
        let start = clock.now
        return { start.duration(to: clock.now) }
    }

    private static func rv(_ object: Object) -> String? {
        (try? JSONValue(encoding: object))?.resourceVersion
    }
}

/// Where a `Watcher` lists and watches: the API server, or a test's stand-in.
struct WatchSource<Object: KubeObject>: Sendable {
    var list: @Sendable (ListOptions) async throws -> KubeList<Object>
    var watch: @Sendable (ListOptions, _ timeoutSeconds: Int) async throws -> AsyncThrowingStream<WatchEvent<Object>, any Error>
    /// The client's: a pause after a transport failure ends at its next recovery.
    var reachability: Reachability? = nil
}

extension ResourceAPI {
    public func watcher(_ options: ListOptions = ListOptions(), backoff: Backoff = Backoff(), timeoutSeconds: Int = 290) -> Watcher<Object> {
        watcher(options, backoff: backoff, timeoutSeconds: timeoutSeconds, clock: ContinuousClock())
    }

    func watcher(_ options: ListOptions = ListOptions(), backoff: Backoff = Backoff(), timeoutSeconds: Int = 290,
                 clock: any Clock<Duration>, minimumWatchDuration: Duration = .seconds(1)) -> Watcher<Object> {
        let source = WatchSource<Object>(
            list: { try await self.listAll($0) },
            watch: { try await self.watch($0, timeoutSeconds: $1) },
            reachability: client.reachability)
        return Watcher(source: source, options: options, backoff: backoff, timeoutSeconds: timeoutSeconds,
                       clock: clock, minimumWatchDuration: minimumWatchDuration)
    }
}

/// Exponential backoff with jitter (kube-rs's default: 0.8 s doubling to 30 s).
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private var current: Duration

    /// ± this fraction of each delay, so many clients do not retry in step.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
        self.jitter = min(max(jitter, 0), 1)
    }

    public mutating func next() -> Duration {
        let value = current
        current = min(current * 2, maximum)
        return jitter == 0 ? value : value * Double.random(in: (1 - jitter)...(1 + jitter))
    }

    public mutating func reset() { current = initial }
}
