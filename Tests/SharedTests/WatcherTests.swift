import Foundation
import KubeTestServer
import Testing
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
}
