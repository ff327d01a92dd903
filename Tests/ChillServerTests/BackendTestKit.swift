import Foundation
import KubeTestServer
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Shared
import Synchronization
import Testing
@testable import ChillServer

// MARK: - Test kit shared by the backend tests

enum BackendTestKit {
    /// An admin client for the in-process API server (the pattern of `KubeClientTests.adminSettings`).
    static func adminSettings(_ server: KubeTestServer) -> TransportSettings {
        var settings = TransportSettings(server: server.url)
        settings.caData = Array(TestPKI.caCertificate.utf8)
        settings.clientCertificateData = Array(TestPKI.clientCertificate.utf8)
        settings.clientKeyData = Array(TestPKI.clientKey.utf8)
        return settings
    }

    static func adminClient(_ server: KubeTestServer, namespace: String = "default") -> KubeClient {
        KubeClient(configuration: ClientConfiguration(transport: adminSettings(server), namespace: namespace))
    }

    /// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits (bounded) until `condition` holds; for state that publishes no status of its own.
    static func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestTimeout(what: what, history: []) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits (bounded) until `value` is non-nil.
    static func eventuallyValue<T>(_ what: String, timeout: Duration = .seconds(10), _ value: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let v = try await value() { return v }
            guard ContinuousClock.now < deadline else { throw TestTimeout(what: what, history: []) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "chill.test.backend")
        logger.logLevel = ProcessInfo.processInfo.environment["CHILL_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }

    static let fastProbes = HealthProbePolicy(wakingInterval: .milliseconds(50), readyInterval: .milliseconds(300), failureThreshold: 3)
}

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var history: [BackendStatus]
    var description: String {
        "timed out waiting for \(what); statuses seen:\n" + history.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Records every status a backend publishes and lets a test await the next one that matches, with a
/// bound (no sleeping and hoping).
final class StatusRecorder: Sendable {
    private struct Waiter {
        var id: Int
        var predicate: @Sendable (BackendStatus) -> Bool
        var continuation: CheckedContinuation<BackendStatus, any Error>
    }

    private struct State {
        var history: [BackendStatus] = []
        var cursor = 0
        var waiter: Waiter?
        var nextID = 0
    }

    private let state = Mutex(State())
    private let consumer = Mutex<Task<Void, Never>?>(nil)

    init(_ stream: AsyncStream<BackendStatus>) {
        let task = Task { [weak self] in
            for await status in stream {
                guard let self else { return }
                self.append(status)
            }
        }
        consumer.withLock { $0 = task }
    }

    deinit { consumer.withLock { $0?.cancel() } }

    var history: [BackendStatus] { state.withLock { $0.history } }
    var latest: BackendStatus? { state.withLock { $0.history.last } }

    private func append(_ status: BackendStatus) {
        let resume: (CheckedContinuation<BackendStatus, any Error>)? = state.withLock { s in
            s.history.append(status)
            guard let waiter = s.waiter, waiter.predicate(status) else { return nil }
            s.cursor = s.history.count
            s.waiter = nil
            return waiter.continuation
        }
        resume?.resume(returning: status)
    }

    /// The first status after the last match (or the start) that satisfies `predicate`.
    @discardableResult
    func next(_ what: String, timeout: Duration = .seconds(10), where predicate: @escaping @Sendable (BackendStatus) -> Bool) async throws -> BackendStatus {
        let found: BackendStatus? = state.withLock { s in
            guard let index = s.history[s.cursor...].firstIndex(where: predicate) else {
                s.cursor = s.history.count
                return nil
            }
            s.cursor = index + 1
            return s.history[index]
        }
        if let found { return found }
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            guard let self else { return }
            let waiter: (Waiter, [BackendStatus])? = self.state.withLock { s in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return (w, s.history)
            }
            waiter?.0.continuation.resume(throwing: TestTimeout(what: what, history: waiter?.1 ?? []))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            // A status may have arrived between the scan and now.
            let found: BackendStatus? = state.withLock { s in
                if let index = s.history[s.cursor...].firstIndex(where: predicate) {
                    s.cursor = index + 1
                    return s.history[index]
                }
                s.waiter = Waiter(id: id, predicate: predicate, continuation: continuation)
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }
}

/// A tiny `/health` server: answers every request with the status code it is set to, counting requests.
final class HealthStub: Sendable {
    let port: Int
    private let code: Mutex<Int>
    private let count = Mutex(0)
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    private init(port: Int, code: Int, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.port = port
        self.code = Mutex(code)
        self.group = group
        self.channel = channel
    }

    static func start(status: Int = 200, port: Int = 0) async throws -> HealthStub {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = StubBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HealthStubHandler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        let stub = HealthStub(port: channel.localAddress?.port ?? 0, code: status, group: group, channel: channel)
        box.stub.withLock { $0 = stub }
        return stub
    }

    var requests: Int { count.withLock { $0 } }
    func set(_ status: Int) { code.withLock { $0 = status } }

    fileprivate func answer() -> Int {
        count.withLock { $0 += 1 }
        return code.withLock { $0 }
    }

    /// Waits (bounded) for `n` more requests than now.
    func awaitRequests(_ n: Int, timeout: Duration = .seconds(10)) async throws {
        let target = requests + n
        try await BackendTestKit.eventually("\(n) more /health requests", timeout: timeout) { self.requests >= target }
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

private final class StubBox: Sendable {
    let stub = Mutex<HealthStub?>(nil)
}

private final class HealthStubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let box: StubBox

    init(box: StubBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let code = box.stub.withLock { $0 }?.answer() ?? 503
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code), headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
