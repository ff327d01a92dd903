import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The listening side: HTTP/1.1 keep-alive, one `ProxyHandler` per connection. On graceful shutdown
/// it stops accepting, lets in-flight requests finish within the grace period, then returns.
final class ProxyServer: ServiceLifecycle.Service {
    let host: String
    let port: Int
    let environment: ProxyEnvironment
    let group: any EventLoopGroup
    let shutdownGrace: Duration
    private let bound: EventLoopPromise<Int>

    init(host: String, port: Int, environment: ProxyEnvironment, group: any EventLoopGroup, shutdownGrace: Duration) {
        self.host = host
        self.port = port
        self.environment = environment
        self.group = group
        self.shutdownGrace = shutdownGrace
        self.bound = group.any().makePromise()
    }

    /// The port actually bound (useful with port 0).
    var boundPort: Int {
        get async throws { try await bound.futureResult.get() }
    }

    func run() async throws {
        let environment = self.environment
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 1024)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        let head = IncompleteHeadState()
                        try sync.addHandler(IncompleteHeadGuard(state: head))
                        try sync.configureHTTPServerPipeline(withErrorHandling: false)
                        try sync.addHandler(ProtocolErrorResponder())
                        try sync.addHandler(RequestBoundaryObserver(state: head))
                        try sync.addHandler(ProxyHandler(environment: environment))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            bound.fail(error)
            throw ProxyServerError.cannotListen(host: host, port: port, error: "\(error)")
        }
        bound.succeed(channel.localAddress?.port ?? port)
        environment.logger.info("chill-server listening", metadata: ["address": "\(host):\(channel.localAddress?.port ?? port)"])

        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            environment.shutdown.set()
            channel.close(promise: nil)
        }
        await drain()
        environment.pool.closeAll()
    }

    /// Waits for in-flight requests to end, up to the grace period.
    private func drain() async {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: shutdownGrace)
        while clock.now < deadline {
            var busy = 0
            for model in environment.models.all {
                let snapshot = await model.control.snapshot()
                busy += snapshot.inFlight + snapshot.held
            }
            if busy == 0 { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

enum ProxyServerError: Error, CustomStringConvertible {
    case cannotListen(host: String, port: Int, error: String)

    var description: String {
        switch self {
        case .cannotListen(let host, let port, let error): "cannot listen on \(host):\(port): \(error) — is the port in use? set --port"
        }
    }
}
