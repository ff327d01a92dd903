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
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        let head = IncompleteHeadState()
                        try sync.addHandler(IncompleteHeadGuard(state: head))
                        // Only a request decoder: responses go out as bytes (relayed as the backend framed
                        // them, or written by HTTPHeadWriter), so no encoder re-frames every body part.
                        // Pipelined requests and parser errors are ProxyHandler's (see PipelinedRequests).
                        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                        try sync.addHandler(ProxyHandler(environment: environment, headState: head))
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

    /// Answers held requests at once (they could not be served before the exit), then waits for
    /// in-flight ones to end, up to the grace period.
    private func drain() async {
        let logger = environment.logger
        var held = 0
        for model in environment.models.all { held += await model.control.rejectHeld() }
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: shutdownGrace)
        var inFlight = await self.inFlight()
        logger.info("shutting down", metadata: [
            "held_answered_503": "\(held)", "in_flight": "\(inFlight)", "grace": "\(shutdownGrace.formattedSeconds)"])
        while inFlight > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            inFlight = await self.inFlight()
        }
        if inFlight > 0 {
            logger.warning("shutdown grace over with requests still in flight; their connections are closed", metadata: ["in_flight": "\(inFlight)"])
        } else {
            logger.info("drained", metadata: ["after": "\((clock.now - start).formattedSeconds)"])
        }
    }

    private func inFlight() async -> Int {
        var busy = 0
        for model in environment.models.all { busy += await model.control.snapshot().inFlight }
        return busy
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
