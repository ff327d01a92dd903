import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared
import UnixSignals
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@main
struct ChillServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chill-server",
        abstract: "The chill proxy: scale-to-zero and wake-on-request in front of vLLM.",
        discussion: """
            Proxies every OpenAI-compatible request to vLLM, wakes the model when a request arrives
            while it is scaled down (holding the request), and frees the GPUs after --idle-timeout
            with nothing in flight.

            Examples:
              # In a cluster, in front of Deployment vllm in namespace llm:
              chill-server --namespace llm --deployment vllm --target-host vllm --target-port 8000
              # On a workstation, in front of a local process:
              chill-server --backend process --command "vllm serve Qwen/Qwen3-0.6B --port 8000" --idle-timeout 10m
            """,
        version: ChillVersion.current
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let config: ServerConfig
        do { config = try ServerConfig(options, environment: ProcessInfo.processInfo.environment) } catch {
            throw ValidationError("\(error)")
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chill.server")
        let group = config.threads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) } ?? MultiThreadedEventLoopGroup.singleton
        let app = try ChillApp(config: config, logger: logger, group: group)
        if config.adminToken == nil {
            logger.warning("no --admin-token/CHILL_ADMIN_TOKEN: anyone who reaches the proxy can start and stop the model")
        }
        let services = ServiceGroup(configuration: .init(
            services: app.services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        try await services.run()
    }
}

/// The assembled server: backend, scaler, routes and proxy. `buildServices` is the seam tests use.
struct ChillApp {
    let proxy: ProxyServer
    let services: [ServiceGroupConfiguration.ServiceConfiguration]

    init(config: ServerConfig, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let backend: any Backend
        switch config.backend {
        case .process:
            backend = ProcessBackend(
                command: config.command ?? "", target: config.target, logFile: config.logFile, stopGrace: config.stopGrace,
                logger: Logger(label: "chill.backend.process"))
        case .kubernetes:
            let clientConfig: ClientConfiguration
            do { clientConfig = try ClientConfiguration.load(kubeconfig: config.kubeconfig, context: config.context) } catch {
                throw ServerConfig.Invalid(description: "\(error)")
            }
            let client = KubeClient(configuration: clientConfig, namespace: config.namespace, userAgent: "chill-server/\(ChillVersion.current)")
            backend = KubernetesBackend(
                client: client, namespace: config.namespace ?? client.namespace, deployment: config.deployment,
                target: config.target, logger: Logger(label: "chill.backend.kubernetes"))
        }
        let policy = ScalingPolicy(model: config.servedModelName, idleTimeout: config.idleTimeout, wakeTimeout: config.wakeTimeout, maxHeld: config.maxHeld, gpus: config.gpus)
        let metrics = ChillMetrics(model: config.servedModelName)
        let scaler = Scaler(policy: policy, backend: backend, clock: ContinuousClock(), logger: logger, metrics: metrics)
        metrics.setState(.scaledDown)
        let shutdown = ShutdownFlag()
        let routes = LocalRoutes(
            servedModelNames: [config.servedModelName], control: scaler, isModelReady: { scaler.gate.snapshot.isReady },
            metrics: metrics, adminToken: config.adminToken, shutdown: shutdown, gpus: config.gpus)
        let environment = ProxyEnvironment(
            model: scaler, pool: UpstreamPool(group: group), routes: routes, metrics: metrics, maxBodySize: config.maxBodySize,
            idleConnectionTimeout: .nanoseconds(Int64(config.idleConnectionTimeout.seconds * 1e9)), logger: logger, shutdown: shutdown)
        proxy = ProxyServer(host: config.host, port: config.port, environment: environment, group: group, shutdownGrace: config.shutdownGrace)
        // Graceful shutdown runs in reverse order: the proxy drains first, then the scaler and the
        // backend stop (the process backend stops its child; a Deployment is left as it is).
        services = [
            .init(service: TaskService("backend") { try await backend.run() }),
            .init(service: TaskService("scaler") { await scaler.run() }),
            .init(service: proxy),
        ]
    }
}

/// A long-running task as a Service that is cancelled on graceful shutdown.
struct TaskService: ServiceLifecycle.Service, CustomStringConvertible {
    let description: String
    let body: @Sendable () async throws -> Void

    init(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
        self.description = name
        self.body = body
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await body() }
    }
}
