import Foundation
import KubeTestServer
import Testing
@testable import Shared

/// The one-thread libcurl multi driver: many transfers without a thread each, immediate cancellation,
/// HTTP/2 multiplexing, back-pressure on streams.
@Suite struct CurlMultiTests {
    static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    /// Thread names (`comm`), e.g. NIO's event loops, the curl driver, unnamed threads under the process name.
    static func threadNames() -> [String: Int] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var names: [String: Int] = [:]
        for task in tasks {
            let name = ((try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
            names[name, default: 0] += 1
        }
        return names
    }

    @Test(.timeLimit(.minutes(2)))
    func fiftyWatchesAndFiftyRequestsNeedNoThreadEach() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let api = KubeClientTests.adminClient(server).api(ConfigMap.self)
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "seed")))
        let before = Self.threadCount()

        var watches: [AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>] = []
        try await withThrowingTaskGroup(of: AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>.self) { group in
            for _ in 0..<50 { group.addTask { try await api.watch(ListOptions(resourceVersion: "0")) } }
            for try await watch in group { watches.append(watch) }
        }
        let listed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 { group.addTask { try await api.list().items.count } }
            return try await group.reduce(0, +)
        }
        let during = Self.threadCount()
        let names = Self.threadNames()
        print("threads: \(before) before, \(during) with 50 open watches after 50 concurrent lists; by name: \(names.sorted { $0.key < $1.key })")
        #expect(listed == 50)
        #expect(watches.count == 50)
        #expect(await server.store.openWatchCount == 50)
        // One driver thread for every transfer. A thread per transfer would add 50 or more; other
        // suites running in parallel come and go with a few threads each.
        #expect(names[CurlMulti.threadName] == 1)
        #expect(during - before < 35)

        // Every watch is live: one change reaches all fifty.
        _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "fan-out")))
        for watch in watches {
            var iterator = watch.makeAsyncIterator()
            while let event = try await iterator.next() {
                if case .added(let cm) = event, cm.metadata.name == "fan-out" { break }
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingAHungRequestEndsItAndDropsTheConnection() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        var settings = TransportSettings(server: "http://127.0.0.1:\(listener.port)")
        settings.requestTimeout = .seconds(3600)
        let transport = CurlTransport(settings: settings)
        let request = Task { try await transport.send(HTTPRequest(method: "GET", path: "/hangs")) }

        // The request reached the server, which never answers.
        let connection = await listener.acceptAndReadRequestHead()
        #expect(connection.head.hasPrefix("GET /hangs HTTP/1.1"))
        let clock = ContinuousClock()
        let cancelledAt = clock.now
        request.cancel()
        let result = await request.result
        print("cancelled request returned after \(cancelledAt.duration(to: clock.now))")
        #expect(throws: CancellationError.self) { try result.get() }
        // And curl let go of it: the server sees the connection close.
        #expect(await listener.readUntilClosed(connection.fd) == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingAWatchConsumerAbortsTheStream() async throws {
        // HTTP/1.1: the server sees the connection close. (Over HTTP/2 the test API server does not
        // observe the stream reset of a removed transfer with Debian's libcurl 7.88: not verified.)
        let server = try await KubeTestServer.start(http2: false)
        defer { Task { try? await server.shutdown() } }
        let client = KubeClientTests.adminClient(server)
        let body = try await client.stream(HTTPRequest(method: "GET", path: "/api/v1/namespaces/default/configmaps?watch=1"), timeout: nil)
        #expect(await server.store.openWatchCount == 1)
        let consumer = Task {
            for try await _ in body {}
        }
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        // The server hears the client go away (it removes the watch when its stream closes).
        while await server.store.openWatchCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test(.timeLimit(.minutes(1)))
    func http2MultiplexesWatchesAndRequestsOverOneConnection() async throws {
        let server = try await KubeTestServer.start(http2: true)
        defer { Task { try? await server.shutdown() } }
        let api = KubeClientTests.adminClient(server).api(ConfigMap.self)
        var watches: [AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>] = []
        try await withThrowingTaskGroup(of: AsyncThrowingStream<WatchEvent<ConfigMap>, any Error>?.self) { group in
            for i in 0..<40 {
                group.addTask {
                    if i % 2 == 0 { return try await api.watch() }
                    _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "cm-\(i)")))
                    return nil
                }
            }
            for try await watch in group { if let watch { watches.append(watch) } }
        }
        #expect(watches.count == 20)
        #expect(try await api.list().items.count == 20)
        #expect(server.acceptedConnections == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func http1StillWorksWithAConnectionPerConcurrentTransfer() async throws {
        let server = try await KubeTestServer.start(http2: false)
        defer { Task { try? await server.shutdown() } }
        let api = KubeClientTests.adminClient(server).api(ConfigMap.self)
        let watch = try await api.watch()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<10 { group.addTask { _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "h1-\(i)"))) } }
            try await group.waitForAll()
        }
        var added = Set<String>()
        for try await event in watch {
            if case .added(let cm) = event { added.insert(cm.metadata.name ?? "") }
            if added.count == 10 { break }
        }
        #expect(added.count == 10)
        #expect(server.acceptedConnections > 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func aLaggingConsumerPausesTheStreamInsteadOfBuffering() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let client = KubeClientTests.adminClient(server)
        let api = client.api(ConfigMap.self)
        let filler = String(repeating: "x", count: 8_000)
        for i in 0..<100 { _ = try await api.create(ConfigMap(metadata: ObjectMeta(name: "big-\(i)"), data: ["f": filler])) }

        let limit = 32 * 1024
        let transport = CurlTransport(settings: KubeClientTests.adminSettings(server), streamBufferLimit: limit)
        let body = try await transport.stream(
            HTTPRequest(method: "GET", path: "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=60"), timeout: nil)
        // Nobody reads: the buffer fills to the limit and curl is paused (about 800 kB are waiting).
        while !body.reader.transfer.bufferState.paused { try await Task.sleep(for: .milliseconds(5)) }
        let held = body.reader.transfer.bufferState.bytes
        #expect(held >= limit)
        #expect(held < limit + 64 * 1024)
        // The paused stream holds up only itself: other requests still go over the same h2 connection.
        #expect(try await api.list(ListOptions(limit: 1)).items.count == 1)
        #expect(server.acceptedConnections == 1)

        // Reading resumes it, and nothing is lost.
        var lines = LineSplitter()
        var events = 0
        for try await chunk in body {
            events += lines.feed(chunk).count
            if events == 100 { break }
        }
        #expect(events == 100)
    }
}

/// A TCP listener that accepts and reads but never answers.
final class SilentListener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }

    /// Blocks (on its own thread) until a client connects and has sent a request head.
    func acceptAndReadRequestHead() async -> (fd: Int32, head: String) {
        let listening = fd
        return await BlockingThread.run {
            let connection = accept(listening, nil, nil)
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: received, as: UTF8.self).contains("\r\n\r\n") {
                let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            return (connection, String(decoding: received, as: UTF8.self))
        }
    }

    /// Reads until the peer closes; returns the last read's result (0 at a clean close).
    func readUntilClosed(_ connection: Int32) async -> Int {
        await BlockingThread.run {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                if n <= 0 {
                    _ = Glibc.close(connection)
                    return n
                }
            }
        }
    }
}
