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
        abstract: "The chill proxy and controller: scale-to-zero and wake-on-request for vLLM.",
        discussion: """
            With --backend kubernetes, runs every VLLMModel in the cluster: a Deployment and Service
            vllm-<model> per model in --namespace, requests routed by their "model" field to the
            model's ready pods, a model woken by the request that needs it (holding the request),
            scaled to zero after its idle timeout, and one model on the GPUs at a time (--mode
            exclusive). With --backend process, fronts one local command.

            Examples:
              # In a cluster (what kubectl chill install runs):
              chill-server --namespace chill-system
              # From a workstation, against any cluster:
              chill-server --kubeconfig ~/.kube/config --namespace chill-system --port 8080
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

/// The assembled server: models, routes and proxy. `ChillApp(config:)` is the seam tests use.
struct ChillApp {
    let proxy: ProxyServer
    let services: [ServiceGroupConfiguration.ServiceConfiguration]
    let models: ModelRegistry

    init(config: ServerConfig, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let hub = MetricsHub()
        let registry = ModelRegistry()
        let shutdown = ShutdownFlag()
        let apiKey = APIKey(config.apiKey)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let routes: LocalRoutes
        switch config.backend {
        case .process:
            // One model: the local command.
            let backend = ProcessBackend(
                command: config.command ?? "", target: config.target, logFile: config.logFile, stopGrace: config.stopGrace,
                logger: Logger(label: "chill.backend.process"))
            let policy = ScalingPolicy(model: config.servedModelName, idleTimeout: config.idleTimeout, wakeTimeout: config.wakeTimeout, maxHeld: config.maxHeld, gpus: config.gpus)
            let metrics = hub.metrics(for: config.servedModelName)
            let scaler = Scaler(policy: policy, backend: backend, clock: ContinuousClock(), logger: logger, metrics: metrics)
            metrics.setState(.scaledDown)
            registry.put(ServedModelHandle(id: config.servedModelName, servedName: config.servedModelName, proxy: scaler, control: scaler))
            registry.setActive(config.servedModelName)
            routes = LocalRoutes(
                models: registry, isReady: { await scaler.hasObservedBackend() }, metrics: hub, adminToken: config.adminToken,
                apiKey: apiKey, shutdown: shutdown)
            services = [
                .init(service: TaskService("backend") { try await backend.run() }),
                .init(service: TaskService("scaler") { await scaler.run() }),
            ]
        case .kubernetes:
            let clientConfig: ClientConfiguration
            do { clientConfig = try ClientConfiguration.load(kubeconfig: config.kubeconfig, context: config.context) } catch {
                throw ServerConfig.Invalid(description: "\(error)")
            }
            let client = KubeClient(configuration: clientConfig, namespace: config.namespace, userAgent: "chill-server/\(ChillVersion.current)")
            let controller = ModelController(
                client: client, settings: ControllerSettings(config, namespace: config.namespace ?? client.namespace),
                registry: registry, metrics: hub, logger: Logger(label: "chill.controller"))
            routes = LocalRoutes(
                models: registry, switcher: controller, isReady: { controller.hasSynced }, metrics: hub, adminToken: config.adminToken,
                apiKey: apiKey, shutdown: shutdown)
            services = [.init(service: TaskService("controller") { await controller.run() })]
        }
        let environment = ProxyEnvironment(
            models: registry, pool: UpstreamPool(group: group, idleTimeout: config.upstreamIdleTimeout.timeAmount), routes: routes, metrics: hub,
            maxBodySize: config.maxBodySize, idleConnectionTimeout: config.idleConnectionTimeout.timeAmount,
            upstreamResponseTimeout: config.upstreamResponseTimeout.timeAmount, bodyReadTimeout: config.bodyReadTimeout.timeAmount, logger: logger, shutdown: shutdown,
            heldBytes: ByteBudget(limit: config.maxHeldBytes), apiKey: apiKey)
        proxy = ProxyServer(host: config.host, port: config.port, environment: environment, group: group, shutdownGrace: config.shutdownGrace)
        models = registry
        // Graceful shutdown runs in reverse order: the proxy drains first, then the models stop (the
        // process backend stops its child; Deployments are left as they are).
        self.services = services + [.init(service: proxy)]
    }
}

extension Duration {
    var timeAmount: TimeAmount { .nanoseconds(Int64(seconds * 1e9)) }
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
