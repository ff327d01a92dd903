import Foundation
import KubeTestServer
import Synchronization
import Testing
import TestSupport
@testable import Shared

@Suite struct WatcherTests {
    /// Reads events until `until` is satisfied, with a bound so a broken watch fails instead of hanging.
    static func collect<O>(
        _ iterator: inout AsyncThrowingStream<WatcherEvent<O>, any Error>.AsyncIterator, count: Int
    ) async throws -> [WatcherEvent<O>] {
        var events: [WatcherEvent<O>] = []
        while events.count < count {
            guard let event = try await iterator.next() else { break }
            events.append(event)
        }
        return events
    }

    static func names(_ events: [WatcherEvent<ConfigMap>]) -> [String] {
        events.map {
            switch $0 {
            case .listed(let items): "listed:" + items.compactMap(\.metadata.name).joined(separator: ",")
            case .added(let o): "added:" + (o.metadata.name ?? "")
            case .modified(let o): "modified:" + (o.metadata.name ?? "")
            case .deleted(let o): "deleted:" + (o.metadata.name ?? "")
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func watchResumesAfterADropAndRelistsAfter410() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let api = KubeClientTests.adminClient(server).api(ConfigMap.self)
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "before")))
        var events = api.watcher(backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(100))).makeAsyncIterator()
        #expect(Self.names(try await Self.collect(&events, count: 1)) == ["listed:before"])

        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "one")))
        _ = try await api.patch("one", ["data": ["x": "1"]])
        #expect(Self.names(try await Self.collect(&events, count: 2)) == ["added:one", "modified:one"])

        // The connection drops; changes made meanwhile arrive after the resume, with no relist.
        await server.dropWatches()
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "while-down")))
        try await api.delete("one")
        #expect(Self.names(try await Self.collect(&events, count: 2)) == ["added:while-down", "deleted:one"])

        // History compacted past our resourceVersion: the resume gets 410 and the watcher relists.
        await server.dropWatches()
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "after-compaction")))
        await server.store.compact()
        #expect(Self.names(try await Self.collect(&events, count: 1)) == ["listed:after-compaction,before,while-down"])
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "live")))
        #expect(Self.names(try await Self.collect(&events, count: 1)) == ["added:live"])
    }

    @Test(.timeLimit(.minutes(1)))
    func singleWatchReportsTooOldResourceVersionAsGone() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let api = KubeClientTests.adminClient(server).api(ConfigMap.self)
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "a")))
        await server.store.compact()
        let stream = try await api.watch(ListOptions(resourceVersion: "1"))
        await #expect {
            for try await _ in stream {}
        } throws: { error in
            let e = error as? KubeError
            return e?.isGone == true && e?.reason == .expired && e?.message.hasPrefix("too old resource version: 1") == true
        }
    }

    @Test func lineSplitterHandlesChunkBoundaries() {
        var splitter = LineSplitter()
        #expect(splitter.feed(Array(#"{"a":"#.utf8)).isEmpty)
        let lines = splitter.feed(Array("1}\n{\"b\":2}\n{".utf8))
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == [#"{"a":1}"#, #"{"b":2}"#])
        #expect(splitter.feed(Array("}\n".utf8)).map { String(decoding: $0, as: UTF8.self) } == ["{}"])
    }

    /// A stand-in API server for the watcher: each call is recorded, and the test scripts what it returns.
    final class ScriptedSource: Sendable {
        typealias WatchScript = @Sendable (Int, ListOptions) -> AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>
        private let calls = Mutex<[String]>([])
        private let lists: [KubeList<ConfigMap>]
        private let watchScript: WatchScript

        init(lists: [KubeList<ConfigMap>], watch: @escaping WatchScript) {
            self.lists = lists
            self.watchScript = watch
        }

        var log: [String] { calls.withLock { $0 } }

        func source() -> WatchSource<ConfigMap> {
            WatchSource(
                list: { _ in
                    let n = self.calls.withLock { c in c.append("list"); return c.filter { $0 == "list" }.count }
                    return self.lists[min(n, self.lists.count) - 1]
                },
                watch: { options, _ in
                    let n = self.calls.withLock { c in c.append("watch@\(options.resourceVersion ?? "-")"); return c.filter { $0.hasPrefix("watch") }.count }
                    return self.watchScript(n, options)
                })
        }
    }

    static func configMap(_ name: String, rv: String) -> ConfigMap {
        ConfigMap(metadata: ObjectMeta(name: name, resourceVersion: rv))
    }

    static func list(_ names: [String], rv: String) -> KubeList<ConfigMap> {
        KubeList(metadata: ListMeta(resourceVersion: rv), items: names.map { configMap($0, rv: rv) })
    }

    /// A stream that stays open until the test ends.
    static func hang() -> AsyncThrowingStream<WatchEvent<ConfigMap>, any Error> { AsyncThrowingStream { _ in } }

    @Test func undecodableEventsAreWatchDecodingErrors() {
        #expect(throws: WatchDecodingError.self) { try ResourceAPI<ConfigMap>.decode(Array("not json".utf8)) }
        #expect(throws: WatchDecodingError.self) {
            try ResourceAPI<ConfigMap>.decode(Array(#"{"type":"ADDED","object":{"metadata":"not an object"}}"#.utf8))
        }
        #expect(throws: KubeError.self) {
            try ResourceAPI<ConfigMap>.decode(Array(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}"#.utf8))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anEventThatFailsToDecodeRelistsInsteadOfReplaying() async throws {
        let scripted = ScriptedSource(lists: [Self.list(["a"], rv: "10"), Self.list(["a", "b", "poison"], rv: "20")]) { n, _ in
            guard n == 1 else { return Self.hang() }
            return AsyncThrowingStream { c in
                c.yield(.added(Self.configMap("b", rv: "11")))
                c.finish(throwing: WatchDecodingError(detail: "ADDED event of poison does not decode"))
            }
        }
        let clock = ManualClock()
        let watcher = Watcher(source: scripted.source(), options: ListOptions(), backoff: Backoff(), timeoutSeconds: 60,
                              clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        #expect(Self.names(try await Self.collect(&events, count: 3)) == ["listed:a", "added:b", "listed:a,b,poison"])
        // The second watch starts from the new list, not from "11" (which would replay the bad event).
        while scripted.log.count < 4 { await Task.yield() }
        #expect(scripted.log == ["list", "watch@10", "list", "watch@20"])
    }

    @Test(.timeLimit(.minutes(1)))
    func aWatchThatEndsAtOnceBacksOffExponentially() async throws {
        let scripted = ScriptedSource(lists: [Self.list([], rv: "5")]) { _, _ in AsyncThrowingStream { $0.finish() } }
        let clock = ManualClock()
        let watcher = Watcher(source: scripted.source(), options: ListOptions(),
                              backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0),
                              timeoutSeconds: 60, clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        #expect(Self.names(try await Self.collect(&events, count: 1)) == ["listed:"])
        var sleeps = clock.sleeps.makeAsyncIterator()
        var asked: [Duration] = []
        var watchesBeforeEachSleep: [Int] = []
        for _ in 0..<6 {
            guard let sleep = await sleeps.next() else { break }
            asked.append(sleep)
            watchesBeforeEachSleep.append(scripted.log.filter { $0.hasPrefix("watch") }.count)
            clock.advance(by: sleep)
        }
        #expect(asked == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        // Exactly one watch per sleep: it never spins.
        #expect(watchesBeforeEachSleep == [1, 2, 3, 4, 5, 6])
        #expect(scripted.log.allSatisfy { $0 == "list" || $0 == "watch@5" })
    }

    @Test(.timeLimit(.minutes(1)))
    func aWatchThatRanItsCourseResumesAtOnce() async throws {
        let clock = ManualClock()
        let scripted = ScriptedSource(lists: [Self.list([], rv: "5")]) { n, _ in
            if n >= 3 { return Self.hang() }
            // The server's timeout: a normal, long watch.
            clock.advance(by: .seconds(290))
            return AsyncThrowingStream { $0.finish() }
        }
        let watcher = Watcher(source: scripted.source(), options: ListOptions(), backoff: Backoff(), timeoutSeconds: 290,
                              clock: clock, minimumWatchDuration: .seconds(1))
        var events = watcher.makeAsyncIterator()
        #expect(Self.names(try await Self.collect(&events, count: 1)) == ["listed:"])
        while scripted.log.count < 4 { await Task.yield() }
        #expect(scripted.log == ["list", "watch@5", "watch@5", "watch@5"])
        // No sleep was asked for.
        #expect(clock.sleepsStarted == 0)
    }

    /// A ConfigMap view whose first decode of an object named "poison" fails (as a field the client cannot
    /// parse would), and later ones succeed: a relist gets past it, a resume would replay the bad event.
    struct PoisonOnceConfigMap: KubeResource {
        static let group = "", version = "v1", kind = "ConfigMap", plural = "configmaps"
        static let isNamespaced = true
        static let failuresLeft = Mutex(1)
        var metadata: ObjectMeta
        enum CodingKeys: String, CodingKey { case metadata }

        init(from decoder: any Decoder) throws {
            metadata = try decoder.container(keyedBy: CodingKeys.self).decode(ObjectMeta.self, forKey: .metadata)
            let fail = metadata.name == "poison" && Self.failuresLeft.withLock { left in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fail { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "poisoned")) }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRealWatchEventThatFailsToDecodeRelists() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let client = KubeClientTests.adminClient(server)
        _ = try await client.api(ConfigMap.self).create(ConfigMap(metadata: ObjectMeta(name: "a")))
        var events = client.api(PoisonOnceConfigMap.self).watcher(backoff: Backoff(initial: .milliseconds(20))).makeAsyncIterator()
        func name(_ e: WatcherEvent<PoisonOnceConfigMap>?) -> String {
            switch e {
            case .listed(let items)?: "listed:" + items.compactMap(\.metadata.name).joined(separator: ",")
            case .added(let o)?: "added:" + (o.metadata.name ?? "")
            case .modified(let o)?: "modified:" + (o.metadata.name ?? "")
            case .deleted(let o)?: "deleted:" + (o.metadata.name ?? "")
            case nil: "end"
            }
        }
        #expect(name(try await events.next()) == "listed:a")
        _ = try await client.api(ConfigMap.self).create(ConfigMap(metadata: ObjectMeta(name: "poison")))
        // Not "added:poison" from a resumed watch replaying the event: a fresh list that includes it.
        #expect(name(try await events.next()) == "listed:a,poison")
        _ = try await client.api(ConfigMap.self).create(ConfigMap(metadata: ObjectMeta(name: "after")))
        #expect(name(try await events.next()) == "added:after")
    }
}
