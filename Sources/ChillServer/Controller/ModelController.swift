import Logging
import Shared
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// chill-server's controller: turns each served VLLMModel into a running `ModelRuntime` and its
/// workload, level-based in controller-runtime's manner. ONE watch per kind feeds a local cache
/// (VLLMModels cluster-wide; Deployments, Pods, Events and the chill-state ConfigMap in the install
/// namespace); every change maps to a model name on one work queue; `reconcile(name)` reads the
/// caches and converges, idempotently, returning when to look again.
final class ModelController: Sendable, ModelSwitching {
    let settings: ControllerSettings
    let client: KubeClient
    let registry: ModelRegistry
    let metrics: MetricsHub
    let logger: Logger

    let models: Informer<VLLMModel>
    let deployments: Informer<Deployment>
    let pods: Informer<Pod>
    let events: Informer<Event>
    let chillState: Informer<ConfigMap>
    let queue = WorkQueue()

    let runtimes = Mutex<[String: ModelRuntime]>([:])
    let gpu: Mutex<ExclusiveGPU<ContinuousClock.Instant>>
    /// The resourceVersion of our last chill-state write: older cache contents are our own past.
    let stateWrite = Mutex<(model: String?, resourceVersion: Int?)>((nil, nil))
    let starts: AsyncStream<ModelRuntime>.Continuation
    private let startStream: AsyncStream<ModelRuntime>
    private let synced = Atomic<Bool>(false)
    let clock = ContinuousClock()

    init(client: KubeClient, settings: ControllerSettings, registry: ModelRegistry, metrics: MetricsHub, logger: Logger) {
        self.client = client
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.logger = logger
        let ns = settings.namespace
        let byModel = ListOptions(labelSelector: ChillContract.modelLabel)
        models = Informer("vllmmodels", watcher: client.api(VLLMModel.self).watcher(ListOptions(labelSelector: settings.modelSelector)), logger: logger)
        deployments = Informer("deployments in \(ns)", watcher: client.api(Deployment.self, namespace: ns).watcher(byModel), logger: logger)
        pods = Informer("pods in \(ns)", watcher: client.api(Pod.self, namespace: ns).watcher(byModel), logger: logger)
        events = Informer("events in \(ns)", watcher: client.api(Event.self, namespace: ns).watcher(ListOptions(fieldSelector: "involvedObject.kind=Pod")), logger: logger)
        chillState = Informer(
            "configmap \(ns)/\(ChillContract.stateConfigMap)",
            watcher: client.api(ConfigMap.self, namespace: ns).watcher(ListOptions(fieldSelector: "metadata.name=\(ChillContract.stateConfigMap)")), logger: logger)
        gpu = Mutex(ExclusiveGPU(active: nil, since: nil, minResidency: settings.minResidency, drainTimeout: settings.drainTimeout))
        (startStream, starts) = AsyncStream.makeStream()
    }

    /// True once every cache holds its first list and the runtimes exist (`/readyz`).
    var hasSynced: Bool { synced.load(ordering: .relaxed) }

    // MARK: - Running

    func run() async {
        wireHandlers()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.models.run() }
            group.addTask { await self.deployments.run() }
            group.addTask { await self.pods.run() }
            group.addTask { await self.events.run() }
            group.addTask { await self.chillState.run() }
            // After an outage, what backed off while the API server was away goes again as soon as it answers.
            group.addTask {
                await self.queue.followRecoveries(of: self.client.reachability) { [logger = self.logger] names in
                    logger.info("API server reachable again", metadata: ["retrying": "\(names.isEmpty ? "-" : names.joined(separator: ","))"])
                }
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await self.startAfterSync()
                    await self.work()
                } onCancel: {
                    Task { await self.queue.close() }
                }
                self.starts.finish()
                for runtime in self.runtimes.withLock({ Array($0.values) }) { runtime.stop() }
            }
            // Each model's runtime is a child of this group: it ends with the controller.
            for await runtime in self.startStream {
                group.addTask { await runtime.run() }
            }
            group.cancelAll()
        }
    }

    private func startAfterSync() async {
        await models.waitForSync()
        await deployments.waitForSync()
        await pods.waitForSync()
        await events.waitForSync()
        await chillState.waitForSync()
        // The active model survives restarts in chill-state; MODEL_ID only seeds a fresh install.
        let recorded = chillState.get("\(settings.namespace)/\(ChillContract.stateConfigMap)")?.data?[ChillContract.activeModelKey]
        let active = recorded.flatMap { $0.isEmpty ? nil : $0 } ?? settings.initialModel.flatMap(modelName(forServedName:))
        gpu.withLock { $0 = ExclusiveGPU(active: active, since: active.map { _ in clock.now }, minResidency: settings.minResidency, drainTimeout: settings.drainTimeout) }
        registry.setActive(active)
        stateWrite.withLock { $0.model = active }
        logger.info("caches synced", metadata: ["models": "\(models.items.count)", "active": "\(active ?? "-")"])
        // Every model is routable before /readyz says so: one reconcile each (failures are retried by the queue).
        for model in models.items {
            let name = model.metadata.name ?? ""
            do {
                if let after = try await reconcile(name) { await queue.add(name, after: after) }
            } catch {
                await queue.addRateLimited(name)
            }
        }
        synced.store(true, ordering: .relaxed)
    }

    private func work() async {
        await queue.process { name in try await reconcile(name) } failed: { name, error in
            logger.warning("reconcile failed, retrying", metadata: ["model": "\(name)", "error": "\(error)"])
        }
    }

    /// Queues a reconcile of `name`. `resettingBackoff` for one someone is waiting for (a wake or stop
    /// the Scaler asked for): it runs now and its retries start again from the shortest delay.
    func enqueue(_ name: String?, resettingBackoff: Bool = false) {
        guard let name, !name.isEmpty else { return }
        let queue = self.queue
        Task { await queue.add(name, resettingBackoff: resettingBackoff) }  // coalesced by name: order does not matter
    }

    private func wireHandlers() {
        models.onChange { [weak self] old, new in self?.enqueue(new?.metadata.name ?? old?.metadata.name) }
        deployments.onChange { [weak self] old, new in self?.enqueue((new ?? old)?.metadata.labels?[ChillContract.modelLabel]) }
        pods.onChange { [weak self] old, new in self?.enqueue((new ?? old)?.metadata.labels?[ChillContract.modelLabel]) }
        events.onChange { [weak self] old, new in
            guard let self, let event = new ?? old, let pod = event.involvedObject.name else { return }
            self.enqueue(self.pods.get("\(self.settings.namespace)/\(pod)")?.metadata.labels?[ChillContract.modelLabel])
        }
        chillState.onChange { [weak self] _, new in self?.chillStateChanged(new) }
    }

    func modelName(forServedName served: String) -> String? {
        models.items.first { $0.servedName == served || $0.metadata.name == served }?.metadata.name
    }

    func runtime(_ name: String) -> ModelRuntime? { runtimes.withLock { $0[name] } }
}
