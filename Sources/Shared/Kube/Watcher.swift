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
/// (bookmarks included) after a jittered backoff; on 410 Gone it lists again.
public struct Watcher<Object: KubeObject>: AsyncSequence, Sendable {
    public typealias Element = WatcherEvent<Object>
    let api: ResourceAPI<Object>
    let options: ListOptions
    let backoff: Backoff
    let timeoutSeconds: Int

    public func makeAsyncIterator() -> AsyncThrowingStream<Element, any Error>.AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<Element, any Error>.makeStream()
        let task = Task { await run(continuation) }
        continuation.onTermination = { _ in task.cancel() }
        return stream.makeAsyncIterator()
    }

    private func run(_ continuation: AsyncThrowingStream<Element, any Error>.Continuation) async {
        var resourceVersion: String? = nil
        var backoff = self.backoff
        while !Task.isCancelled {
            do {
                if resourceVersion == nil {
                    var listOptions = options
                    listOptions.resourceVersion = nil
                    let list = try await api.listAll(listOptions)
                    resourceVersion = list.metadata.resourceVersion
                    continuation.yield(.listed(list.items))
                }
                var watchOptions = options
                watchOptions.resourceVersion = resourceVersion
                let events = try await api.watch(watchOptions, timeoutSeconds: timeoutSeconds)
                for try await event in events {
                    backoff.reset()
                    switch event {
                    case .bookmark(let rv): resourceVersion = rv
                    case .added(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.added(o))
                    case .modified(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.modified(o))
                    case .deleted(let o): resourceVersion = Self.rv(o) ?? resourceVersion; continuation.yield(.deleted(o))
                    }
                }
                // The server ended the watch (its timeout): resume at once.
            } catch let error as KubeError where error.isGone {
                resourceVersion = nil
                continue
            } catch is CancellationError {
                break
            } catch let error as KubeError where error.code == 401 || error.code == 403 {
                // Lost our rights: retrying won't help; end the sequence with the error and let
                // the caller report it.
                continuation.finish(throwing: error)
                return
            } catch {
                if Task.isCancelled { break }
                do { try await Task.sleep(for: backoff.next()) } catch { break }
            }
        }
        continuation.finish()
    }

    private static func rv(_ object: Object) -> String? {
        (try? JSONValue(encoding: object))?.resourceVersion
    }
}

extension ResourceAPI {
    public func watcher(_ options: ListOptions = ListOptions(), backoff: Backoff = Backoff(), timeoutSeconds: Int = 290) -> Watcher<Object> {
        Watcher(api: self, options: options, backoff: backoff, timeoutSeconds: timeoutSeconds)
    }
}

/// Exponential backoff with jitter (kube-rs's default: 0.8 s doubling to 30 s).
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private var current: Duration

    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    public mutating func next() -> Duration {
        let value = current
        current = min(current * 2, maximum)
        return value * Double.random(in: 0.8...1.2)
    }

    public mutating func reset() { current = initial }
}
