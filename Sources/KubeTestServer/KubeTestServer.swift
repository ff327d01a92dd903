import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import Shared
import Synchronization

/// An in-process look-alike of kube-apiserver for tests: HTTPS on 127.0.0.1 with client-certificate and
/// bearer-token authentication, generic REST for registered resource types, watches, and a simulated
/// Deployment controller + kubelet. See docs/TEST-API-SERVER.md.
public final class KubeTestServer: Sendable {
    /// The token a test client can use: `Authorization: Bearer <defaultToken>` → user `defaultTokenUser`.
    public static let defaultToken = "chill-test-token"
    public static let defaultTokenUser = "test-token-user"

    /// The cluster state; also usable directly (`await server.store.get(...)`).
    public let store: KubeStore
    /// The built-in Deployment controller/kubelet simulation (configure failures, ready delays, pod IPs).
    public let simulator: DeploymentSimulator
    /// `https://127.0.0.1:<port>`
    public let url: String
    public let port: Int

    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let connections: ConnectionRegistry

    private init(store: KubeStore, simulator: DeploymentSimulator, group: MultiThreadedEventLoopGroup,
                 channel: any Channel, connections: ConnectionRegistry, port: Int) {
        self.store = store
        self.simulator = simulator
        self.group = group
        self.serverChannel = channel
        self.connections = connections
        self.port = port
        self.url = "https://127.0.0.1:\(port)"
    }

    /// Starts a server on an ephemeral port.
    /// - Parameters:
    ///   - resources: the resource types served (CRDs created through the API add theirs).
    ///   - tokens: bearer token → user name.
    ///   - clock: `.system`, or `.manual` to move time only through `advance(by:)`.
    ///   - namespaces: namespaces that exist from the start.
    ///   - simulateDeployments: run the Deployment controller/kubelet simulation.
    ///   - garbageCollection: run the garbage collector (ownerReferences cascades, Foreground/Orphan deletes).
    ///   - http2: offer h2 by ALPN (as kube-apiserver does), HTTP/1.1 still accepted.
    public static func start(resources: [ResourceType] = ResourceType.builtins,
                             tokens: [String: String] = [defaultToken: defaultTokenUser],
                             clock: ClockMode = .system,
                             namespaces: [String] = ["default", "kube-system", "kube-public", "kube-node-lease"],
                             simulateDeployments: Bool = true,
                             garbageCollection: Bool = true,
                             http2: Bool = true) async throws -> KubeTestServer {
        let store = KubeStore(resources: resources, tokens: tokens, clock: TestClock(clock))
        let simulator = DeploymentSimulator()
        if garbageCollection { await store.addController(GarbageCollector()) }
        if simulateDeployments { await store.addController(simulator) }
        for ns in namespaces {
            await store.create(.namespaces, Defaults.apply(.namespaces, ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]]))
        }
        await store.drain()

        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(TestPKI.serverCertificate.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(TestPKI.serverKey.utf8), format: .pem)))
        tls.certificateVerification = .optionalVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(TestPKI.caCertificate.utf8)))
        tls.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        let sslContext = try NIOSSLContext(configuration: tls)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connections = ConnectionRegistry()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // An outage: the connection is closed as soon as it is accepted.
                if connections.isDown { return channel.close() }
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // Like kube-apiserver, an unverifiable client certificate does not fail the handshake: the
                    // request is then treated as bearing no usable certificate (see KubeHTTPHandler).
                    try sync.addHandler(NIOSSLServerHandler(context: sslContext) { _, promise in promise.succeed(.certificateVerified) })
                }.flatMap {
                    channel.configureHTTP2SecureUpgrade(
                        h2ChannelConfigurator: { connection in
                            // Each h2 stream gets the HTTP/1-shaped handler the HTTP/1.1 pipeline uses.
                            connection.configureHTTP2Pipeline(mode: .server, inboundStreamInitializer: { stream in
                                stream.eventLoop.makeCompletedFuture {
                                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                                    try stream.pipeline.syncOperations.addHandler(KubeHTTPHandler(store: store))
                                }
                            }).map { _ in }
                        },
                        http1ChannelConfigurator: { connection in
                            connection.eventLoop.makeCompletedFuture {
                                let sync = connection.pipeline.syncOperations
                                try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                                try sync.addHandler(KubeHTTPHandler(store: store))
                            }
                        })
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let port = channel.localAddress?.port ?? 0
        return KubeTestServer(store: store, simulator: simulator, group: group, channel: channel,
                              connections: connections, port: port)
    }

    public func shutdown() async throws {
        await store.dropWatches()
        try? await serverChannel.close()
        connections.closeAll()
        try await group.shutdownGracefully()
    }

    // MARK: - In-process access (same code path as HTTPS, minus TLS)

    /// Handles one request in-process. `user` is the identity a verified client certificate would give;
    /// pass nil to authenticate from the `Authorization` header (or be anonymous). Watch requests return
    /// 200 with whatever the stream produced before it ended — use `watch(_:)` for live streams.
    public func handle(method: String, path: String, headers: [(String, String)] = [], body: Data = Data(),
                       user: KubeUser? = .admin) async -> KubeResponse {
        let outcome = await store.handle(IncomingRequest(method: method, target: path, headers: headers, body: body,
                                                         presetUser: user))
        switch outcome {
        case .response(let r): return r
        case .watch(let session):
            let lines = Mutex<Data>(Data())
            let done = AsyncStream<Void>.makeStream()
            session.attach { out in
                switch out {
                case .line(let d): lines.withLock { $0.append(d) }
                case .end, .abort: done.continuation.finish()
                }
            }
            for await _ in done.stream {}
            return KubeResponse(status: 200, headers: [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                                body: lines.withLock { $0 })
        }
    }

    /// Convenience: a JSON body, `Content-Type` defaulting to application/json.
    public func handle(_ method: String, _ path: String, json: JSONValue, contentType: String = "application/json",
                       user: KubeUser? = .admin) async -> KubeResponse {
        await handle(method: method, path: path, headers: [("Content-Type", contentType)],
                     body: (try? json.jsonData()) ?? Data(), user: user)
    }

    /// Opens a watch in-process. Events arrive as parsed JSON (`{"type":…,"object":…}`); the stream
    /// finishes when the server ends the watch. A non-watch answer (e.g. 403) comes back as `.failed`.
    public func watch(_ path: String, user: KubeUser? = .admin) async -> KubeWatch {
        let outcome = await store.handle(IncomingRequest(method: "GET", target: path, headers: [], body: Data(), presetUser: user))
        switch outcome {
        case .response(let r): return KubeWatch(failed: r)
        case .watch(let session): return KubeWatch(session: session)
        }
    }

    // MARK: - Test controls

    public func register(_ rt: ResourceType) async { await store.register(rt) }
    /// Forgets history: older watch RVs get the 410 ERROR event, older continue tokens 410 Gone.
    public func compact() async { await store.compact() }
    /// Closes every open watch abruptly.
    public func dropWatches() async { await store.dropWatches() }
    /// TCP connections accepted so far (an HTTP/2 client multiplexes many requests over one).
    public var acceptedConnections: Int { connections.accepted }
    /// Closes every client connection (watches included) abruptly.
    public func dropConnections() async {
        await store.dropWatches()
        connections.closeAll()
    }
    /// An outage: while unreachable, every connection is dropped and new ones are closed at once
    /// (the cluster itself goes on: pods keep running, controllers keep reconciling).
    public func setReachable(_ reachable: Bool) async {
        connections.isDown = !reachable
        if !reachable { await dropConnections() }
    }
    public func sendBookmarks() async { await store.sendBookmarks() }
    /// Moves a `.manual` clock forward and runs time-based simulation (pods becoming Ready, …).
    public func advance(by d: Duration) async { await store.advance(by: d) }
    /// Runs all controllers (and the simulator's time checks) until nothing changes.
    public func settle() async { await store.tick() }
    public var requests: [RecordedRequest] { get async { await store.requestLog } }
    public func clearRequests() async { await store.clearRequestLog() }
    public func setValidator(for rt: ResourceType, _ v: @escaping @Sendable (JSONValue) -> [Cause]) async {
        await store.setValidator(for: rt, v)
    }
    /// Return false to answer 403 Forbidden (real message format) for that user and request.
    public func setAuthorizer(_ a: (@Sendable (KubeUser, AuthorizationAttributes) -> Bool)?) async { await store.setAuthorizer(a) }
    public func addController(_ c: any KubeTestController) async { await store.addController(c) }

    /// A kubeconfig for this server. `token: nil` uses the admin client certificate.
    public func kubeconfig(token: String? = nil, namespace: String = "default") -> String {
        func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
        let user = token.map { "    token: \($0)" }
            ?? "    client-certificate-data: \(b64(TestPKI.clientCertificate))\n    client-key-data: \(b64(TestPKI.clientKey))"
        return """
        apiVersion: v1
        kind: Config
        clusters:
        - name: kube-test
          cluster:
            server: \(url)
            certificate-authority-data: \(b64(TestPKI.caCertificate))
        users:
        - name: kube-test-user
          user:
        \(user)
        contexts:
        - name: kube-test
          context:
            cluster: kube-test
            user: kube-test-user
            namespace: \(namespace)
        current-context: kube-test

        """
    }
}

/// A live in-process watch.
public struct KubeWatch: Sendable {
    /// Parsed events; finishes when the server ends (or drops) the watch.
    public let events: AsyncStream<JSONValue>
    /// Set when the server answered with an error instead of a stream.
    public let failure: KubeResponse?
    private let session: WatchSession?

    init(session: WatchSession) {
        let (stream, continuation) = AsyncStream<JSONValue>.makeStream()
        session.attach { out in
            switch out {
            case .line(let d): if let v = try? JSONValue.parse(d) { continuation.yield(v) }
            case .end, .abort: continuation.finish()
            }
        }
        events = stream
        failure = nil
        self.session = session
    }

    init(failed: KubeResponse) {
        events = AsyncStream { $0.finish() }
        failure = failed
        session = nil
    }

    /// Stops watching (like a client closing the connection).
    public func cancel() {
        session?.send(.end)
        session?.clientClosed()
    }
}

/// Open client connections, so tests can drop them all.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let acceptedCount = Mutex(0)
    private let down = Mutex(false)

    var isDown: Bool {
        get { down.withLock { $0 } }
        set { down.withLock { $0 = newValue } }
    }

    var accepted: Int { acceptedCount.withLock { $0 } }

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        acceptedCount.withLock { $0 += 1 }
        channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in self?.channels.withLock { _ = $0.removeValue(forKey: id) } }
    }

    func closeAll() {
        for c in channels.withLock({ Array($0.values) }) { c.close(promise: nil) }
    }
}

extension KubeStore {
    func drain() { drainControllers() }
}
