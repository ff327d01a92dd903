import KubeTestServer
import Synchronization
import Testing
import TestSupport
@testable import Shared

/// What the client learns from its requests about the API server being there, and how a watcher's
/// pause after an outage ends when the server answers again.
@Suite(.timeLimit(.minutes(1))) struct ReachabilityTests {
    @Test func anAnswerAfterTransportFailuresIsOneRecovery() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let client = KubeClientTests.adminClient(server)
        let api = client.api(ConfigMap.self)
        _ = try await api.getIfExists("x")
        #expect(client.reachability.recoveries == 0)
        #expect(!client.reachability.isFailing)

        await server.setReachable(false)
        await #expect(throws: KubeError.self) { _ = try await api.getIfExists("x") }
        await #expect(throws: KubeError.self) { _ = try await api.watch() }
        #expect(client.reachability.isFailing)
        let waiting = Task { await client.reachability.waitForRecovery(after: 0) }

        await server.setReachable(true)
        _ = try await api.getIfExists("x")  // a 404: an answer all the same
        #expect(await waiting.value)
        #expect(client.reachability.recoveries == 1)
        #expect(!client.reachability.isFailing)
        _ = try await api.getIfExists("x")
        #expect(client.reachability.recoveries == 1, "answers without failures in between are no recovery")
        #expect(await client.reachability.waitForRecovery(after: 0), "an earlier recovery ends the wait at once")
    }

    @Test func aWatchOpenedAfterTheOutageIsARecovery() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let client = KubeClientTests.adminClient(server)
        await server.setReachable(false)
        await #expect(throws: KubeError.self) { _ = try await client.api(ConfigMap.self).watch() }
        await server.setReachable(true)
        _ = try await client.api(ConfigMap.self).watch()
        #expect(client.reachability.recoveries == 1)
    }

    @Test func aCancelledTransferSaysNothing() {
        let reachability = Reachability()
        reachability.recordFailure(TransportError(url: "https://api", curlCode: 42, detail: "aborted by callback"))
        #expect(!reachability.isFailing)
        reachability.recordAnswer()
        #expect(reachability.recoveries == 0)
    }

    @Test func aWaitEndsFalseWhenCancelled() async {
        let reachability = Reachability()
        let waiting = Task { await reachability.waitForRecovery(after: 0) }
        waiting.cancel()
        #expect(await waiting.value == false)
    }

    // MARK: - The watcher

    static let refused = TransportError(url: "https://api", curlCode: 7, detail: "Connection refused")

    final class Count: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func next() -> Int {
            count.withLock { n in
                n += 1
                return n
            }
        }
    }

    /// A source whose first `failures` lists fail as an unreachable server does (recorded as the client
    /// records them); `meanwhile` runs after each failure is recorded, before it is thrown.
    static func source(failures: Int, reachability: Reachability, lists: Count,
                       meanwhile: @escaping @Sendable () -> Void = {}) -> WatchSource<ConfigMap> {
        WatchSource(
            list: { _ in
                if lists.next() <= failures {
                    reachability.recordFailure(refused)
                    meanwhile()
                    throw KubeError(code: 0, reason: .unknown, message: refused.description, transport: refused)
                }
                return WatcherTests.list(["a"], rv: "5")
            },
            watch: { _, _ in WatcherTests.hang() },
            reachability: reachability)
    }

    /// Backing off 1 s, 2 s, 4 s while the server is away; the client hears from it during the 4 s
    /// pause: the watcher lists again at once (the clock not moved), and its backoff starts over.
    @Test func aWatchersPauseEndsWhenTheServerAnswersAgain() async throws {
        let reachability = Reachability()
        let lists = Count()
        let clock = ManualClock()
        let watcher = Watcher(source: Self.source(failures: 4, reachability: reachability, lists: lists), options: ListOptions(),
                              backoff: Backoff(initial: .seconds(1), maximum: .seconds(30), jitter: 0),
                              timeoutSeconds: 60, clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(await sleeps.next() == .seconds(2))
        clock.advance(by: .seconds(2))
        #expect(await sleeps.next() == .seconds(4))
        let before = clock.now
        reachability.recordAnswer()  // another request was answered: the outage is over
        // The fourth list fails too (this one was unlucky): the backoff started over.
        #expect(await sleeps.next() == .seconds(1))
        #expect(clock.now == before)
        clock.advance(by: .seconds(1))
        #expect(WatcherTests.names(try await WatcherTests.collect(&events, count: 1)) == ["listed:a"])
        #expect(lists.value == 5)
    }

    /// The answer came between the failed list and the pause: no pause at all.
    @Test func anAnswerJustAfterTheFailureSkipsThePause() async throws {
        let reachability = Reachability()
        let lists = Count()
        let clock = ManualClock()
        let source = Self.source(failures: 1, reachability: reachability, lists: lists) { reachability.recordAnswer() }
        let watcher = Watcher(source: source, options: ListOptions(), backoff: Backoff(initial: .seconds(30), jitter: 0),
                              timeoutSeconds: 60, clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        #expect(WatcherTests.names(try await WatcherTests.collect(&events, count: 1)) == ["listed:a"])
        #expect(clock.now == ManualClock.Instant(offset: .zero))
        #expect(lists.value == 2)
    }

    /// A pause that is not about reachability (the server ended the watch at once) is not cut short.
    @Test func aPauseForAWatchEndedAtOnceIsNotCutShort() async throws {
        let reachability = Reachability()
        let clock = ManualClock()
        let watches = Count()
        let source = WatchSource<ConfigMap>(
            list: { _ in WatcherTests.list([], rv: "5") },
            watch: { _, _ in
                _ = watches.next()
                return AsyncThrowingStream { $0.finish() }
            },
            reachability: reachability)
        let watcher = Watcher(source: source, options: ListOptions(), backoff: Backoff(initial: .seconds(5), jitter: 0),
                              timeoutSeconds: 60, clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        _ = try await WatcherTests.collect(&events, count: 1)
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(5))
        reachability.recordFailure(Self.refused)
        reachability.recordAnswer()
        // The pause runs its course, and the backoff goes on doubling (a cut would have started it over).
        clock.advance(by: .seconds(5))
        #expect(await sleeps.next() == .seconds(10))
        #expect(watches.value == 2)
    }
}
