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

// MARK: - KubernetesBackend against the test API server

@Suite(.serialized) struct KubernetesBackendTests {
    static let namespace = "models"

    /// A test API server with a `vllm` Deployment at 0 replicas, a backend on it and its status recorder.
    struct Fixture {
        let server: KubeTestServer
        let client: KubeClient
        let backend: KubernetesBackend
        let recorder: StatusRecorder
        let runTask: Task<Void, Never>
        let name: String

        static func start(name: String = "vllm", targetPort: Int, createDeployment: Bool = true,
                          configure: (DeploymentSimulator) -> Void = { _ in }) async throws -> Fixture {
            let server = try await KubeTestServer.start(namespaces: ["default", KubernetesBackendTests.namespace])
            configure(server.simulator)
            let client = BackendTestKit.adminClient(server, namespace: KubernetesBackendTests.namespace)
            if createDeployment {
                let deployment = Deployment(
                    metadata: ObjectMeta(name: name, labels: ["app": name]),
                    spec: Deployment.Spec(
                        replicas: 0, selector: LabelSelector(matchLabels: ["app": name]),
                        template: PodTemplateSpec(
                            metadata: ObjectMeta(labels: ["app": name]),
                            spec: ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
                                                   "ports": [["containerPort": 8000]]]]])))
                _ = try await client.api(Deployment.self).create(deployment)
            }
            let backend = KubernetesBackend(
                client: client, namespace: KubernetesBackendTests.namespace, deployment: name,
                target: UpstreamTarget(host: "127.0.0.1", port: targetPort), probePolicy: BackendTestKit.fastProbes,
                probeTimeout: .milliseconds(500), watchBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)),
                logger: BackendTestKit.logger)
            let recorder = StatusRecorder(backend.statusUpdates())
            let runTask = Task { do { try await backend.run() } catch {} }
            return Fixture(server: server, client: client, backend: backend, recorder: recorder, runTask: runTask, name: name)
        }

        var pods: [Pod] {
            get async throws { try await client.api(Pod.self).list(ListOptions(labelSelector: "app=\(name)")).items }
        }

        func stop() async {
            runTask.cancel()
            await runTask.value
            try? await server.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func wakesThenIsReadyOnlyOnceHealthAnswers200ThenScalesToZero() async throws {
        let stub = try await HealthStub.start(status: 503)
        let f = try await Fixture.start(targetPort: stub.port) { $0.autoReady = false }
        defer { Task { await f.stop(); await stub.stop() } }

        try await f.recorder.next("idle") { $0.desiredReplicas == 0 && $0.pendingReplicas == 0 && $0.readyReplicas == 0 && $0.failure == nil && $0.progress == nil }
        // Idle: nothing to probe.
        #expect(stub.requests == 0)

        try await f.backend.scale(to: 1)
        // Desired 1 at once, from the scale answer (not only once the Deployment watch catches up).
        #expect(f.backend.currentStatus.desiredReplicas == 1)
        #expect(!f.recorder.history.contains { $0.desiredReplicas == 0 && $0.pendingReplicas > 0 })
        // The simulated kubelet starts the container at once; /health says 503: loading.
        let waking = try await f.recorder.next("a pending pod, loading") { $0.desiredReplicas == 1 && $0.pendingReplicas == 1 && $0.progress == "Loading model" }
        #expect(waking.readyReplicas == 0)
        #expect(waking.failure == nil)

        // The Deployment becomes ready, but /health still says 503: not ready.
        await f.server.markPodsReady(namespace: Self.namespace, deployment: f.name)
        let deployment = try await f.client.api(Deployment.self).get(f.name)
        #expect(deployment.status?.readyReplicas == 1)
        try await stub.awaitRequests(3)
        #expect(f.backend.currentStatus.readyReplicas == 0)
        #expect(f.backend.currentStatus.pendingReplicas == 1)
        #expect(f.backend.currentStatus.progress == "Loading model")

        // The engine has loaded: ready within a probe interval or two.
        let healthyAt = ContinuousClock.now
        stub.set(200)
        let ready = try await f.recorder.next("ready") { $0.readyReplicas == 1 }
        #expect(ContinuousClock.now - healthyAt < .seconds(1))
        #expect(ready == BackendStatus(desiredReplicas: 1, readyReplicas: 1, pendingReplicas: 0, progress: "Ready"))

        // Scale to zero: pods gone, nothing ready, nothing pending.
        try await f.backend.scale(to: 0)
        try await f.recorder.next("scaled to zero") { $0.desiredReplicas == 0 && $0.readyReplicas == 0 && $0.pendingReplicas == 0 }
        #expect(try await f.pods.isEmpty)
        #expect(f.backend.currentStatus == BackendStatus())

        // Scaling went through the scale subresource, never a PUT of the Deployment.
        let requests = await f.server.requests
        let scales = requests.filter { $0.method == "PATCH" && $0.path.hasPrefix("/apis/apps/v1/namespaces/\(Self.namespace)/deployments/\(f.name)/scale") }
        #expect(scales.count == 2)
        #expect(scales.allSatisfy { $0.header("Content-Type") == "application/merge-patch+json" })
        #expect(!requests.contains { $0.method == "PUT" })
        // Watches, not polls: the Deployment, its Pods and Events are each listed once and then watched.
        #expect(requests.filter { $0.method == "GET" && $0.path.contains("/deployments?") && !$0.path.contains("watch=") }.count == 1)
        #expect(requests.contains { $0.path.contains("/pods?") && $0.path.contains("watch=1") && $0.path.contains("labelSelector=app") })
        #expect(requests.contains { $0.path.contains("/events?") && $0.path.contains("watch=1") })

        // Idle again: the probing stops.
        let probesWhenIdle = stub.requests
        try await Task.sleep(for: .milliseconds(400))
        #expect(stub.requests <= probesWhenIdle + 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func notReadyWhileHealthIsDownAndLostWhenTheEngineDies() async throws {
        let port = try BackendTestKit.freePort()
        let f = try await Fixture.start(targetPort: port)
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        try await BackendTestKit.eventually("the Deployment ready") {
            try await f.client.api(Deployment.self).get(f.name).status?.readyReplicas == 1
        }
        try await f.recorder.next("loading") { $0.progress == "Loading model" && $0.pendingReplicas == 1 }
        // Ready per Kubernetes, but nothing answers on the target: several probe intervals later, still not ready.
        try await Task.sleep(for: .milliseconds(400))
        #expect(f.backend.currentStatus.readyReplicas == 0)
        #expect(!f.recorder.history.contains { $0.readyReplicas > 0 })

        // The engine comes up.
        let stub = try await HealthStub.start(status: 200, port: port)
        try await f.recorder.next("ready") { $0.readyReplicas == 1 && $0.pendingReplicas == 0 }

        // The engine dies (503) while the pod stays Ready: lost after the failure threshold.
        stub.set(503)
        let lost = try await f.recorder.next("health lost") { $0.readyReplicas == 0 }
        #expect(lost.desiredReplicas == 1)
        #expect(lost.pendingReplicas == 1)
        #expect(lost.failure == nil)
        await stub.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func crashLoopBackOffIsAFastFailureNamingTheCause() async throws {
        let stub = try await HealthStub.start(status: 200)
        let f = try await Fixture.start(targetPort: stub.port)
        defer { Task { await f.stop(); await stub.stop() } }
        await f.server.setDeploymentFailure(.crashLoopBackOff(restartCount: 4), namespace: Self.namespace, deployment: f.name)

        let start = ContinuousClock.now
        try await f.backend.scale(to: 1)
        let failed = try await f.recorder.next("CrashLoopBackOff") { $0.failure != nil }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(failed.failure?.reason == "CrashLoopBackOff")
        #expect(failed.failure?.message.contains("back-off 40s restarting failed container=vllm") == true)
        #expect(failed.failure?.message.contains("exit code 1") == true)
        #expect(failed.readyReplicas == 0)
        #expect(failed.pendingReplicas == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func imagePullBackOffFailsWithTheImageName() async throws {
        let stub = try await HealthStub.start(status: 200)
        let f = try await Fixture.start(targetPort: stub.port)
        defer { Task { await f.stop(); await stub.stop() } }
        await f.server.setDeploymentFailure(.imagePullBackOff(), namespace: Self.namespace, deployment: f.name)

        try await f.backend.scale(to: 1)
        let failed = try await f.recorder.next("ImagePullBackOff") { $0.failure != nil }
        #expect(failed.failure?.reason == "ImagePullBackOff")
        #expect(failed.failure?.message.contains("vllm/vllm-openai:v0.6.3") == true)
        #expect(failed.readyReplicas == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func errImagePullFails() async throws {
        let stub = try await HealthStub.start(status: 200)
        let f = try await Fixture.start(targetPort: stub.port)
        defer { Task { await f.stop(); await stub.stop() } }
        await f.server.setDeploymentFailure(.errImagePull(message: "manifest unknown"), namespace: Self.namespace, deployment: f.name)

        try await f.backend.scale(to: 1)
        let failed = try await f.recorder.next("ErrImagePull") { $0.failure != nil }
        #expect(failed.failure?.reason == "ErrImagePull")
        #expect(failed.failure?.message.contains("manifest unknown") == true)
    }

    @Test(.timeLimit(.minutes(1)))
    func unschedulableIsANoticeNotAFailureAndTheWakeGoesOnOnceNodesFit() async throws {
        let stub = try await HealthStub.start(status: 200)
        let f = try await Fixture.start(targetPort: stub.port)
        defer { Task { await f.stop(); await stub.stop() } }
        await f.server.setDeploymentFailure(.unschedulable(), namespace: Self.namespace, deployment: f.name)

        try await f.backend.scale(to: 1)
        let waiting = try await f.recorder.next("Unschedulable notice") { $0.notice != nil }
        #expect(waiting.notice == "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
        #expect(waiting.failure == nil)
        #expect(waiting.pendingReplicas == 1)
        #expect(waiting.progress == "Pending")
        #expect(!f.recorder.history.contains { $0.failure != nil })

        // A GPU node arrives: the Pod is replaced by one that schedules, and the model becomes ready.
        await f.server.setDeploymentFailure(nil, namespace: Self.namespace, deployment: f.name)
        // (The Pod watch may show the old Pod's deletion just after the Deployment watch shows ready.)
        let ready = try await f.recorder.next("ready, the notice gone") { $0.readyReplicas == 1 && $0.notice == nil }
        #expect(ready.failure == nil)
    }

    @Test(.timeLimit(.minutes(1)))
    func aMissingDeploymentIsAFailure() async throws {
        let f = try await Fixture.start(name: "nope", targetPort: try BackendTestKit.freePort(), createDeployment: false)
        defer { Task { await f.stop() } }
        let status = try await f.recorder.next("not found") { $0.failure != nil }
        #expect(status.failure?.reason == "DeploymentNotFound")
        await #expect(throws: KubeError.self) { try await f.backend.scale(to: 1) }
    }
}
