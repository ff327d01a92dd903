import Logging
import Shared
import Synchronization

/// A model served by a Kubernetes Deployment. Scales through the `scale` subresource, observes the
/// Deployment, its Pods and their Events through watches (event-driven, no polling of the API server),
/// and probes `/health` on the target itself: the model is ready when the Deployment is ready AND the
/// engine answers 200.
final class KubernetesBackend: Backend {
    let name: String
    let target: UpstreamTarget
    let namespace: String
    let deploymentName: String

    private let client: KubeClient
    private let probe: HealthProbe
    private let policy: HealthProbePolicy
    private let watchBackoff: Backoff
    private let logger: Logger
    private let broadcaster = StatusBroadcaster()
    private let probeSignal = LoopSignal()
    private let state = Mutex(State())

    /// - Parameters:
    ///   - client: the API client (its credentials need get/list/watch on deployments, pods and events,
    ///     and patch on deployments/scale in `namespace`).
    ///   - namespace: the Deployment's namespace.
    ///   - deployment: the Deployment's name.
    ///   - target: where traffic goes (usually the Service in front of the Pods); `/health` is probed there.
    ///   - probePolicy: probe intervals (≤ 250 ms while waking, a few seconds once ready) and the failure threshold.
    ///   - probeTimeout: one `/health` request's limit.
    ///   - watchBackoff: the watches' reconnect backoff.
    init(client: KubeClient, namespace: String, deployment: String, target: UpstreamTarget,
         probePolicy: HealthProbePolicy = HealthProbePolicy(), probeTimeout: Duration = .seconds(1),
         watchBackoff: Backoff = Backoff(), logger: Logger = Logger(label: "chill.backend.kubernetes")) {
        self.client = client
        self.namespace = namespace
        self.deploymentName = deployment
        self.target = target
        self.name = "deployment/\(deployment)"
        self.probe = HealthProbe(target: target, timeout: probeTimeout)
        self.policy = probePolicy
        self.watchBackoff = watchBackoff
        var logger = logger
        logger[metadataKey: "backend"] = "\(namespace)/\(deployment)"
        self.logger = logger
    }

    /// The latest status (also the first element of every `statusUpdates()` stream).
    var currentStatus: BackendStatus { broadcaster.current }

    func statusUpdates() -> AsyncStream<BackendStatus> { broadcaster.subscribe() }

    /// PATCH `deployments/<name>/scale` with `{"spec":{"replicas":n}}`: no read-modify-write of the Deployment.
    func scale(to replicas: Int) async throws {
        logger.info("scaling", metadata: ["replicas": "\(replicas)"])
        // The status says what was asked for at once, not when the Deployment watch catches up (the Pod
        // watch may show the new Pod before the Deployment watch shows the new replica count).
        setRequestedScale(RequestedScale(replicas: replicas, resourceVersion: nil))
        let scale: Scale
        do {
            scale = try await client.api(Deployment.self, namespace: namespace).scale(deploymentName, replicas: replicas)
        } catch {
            update { s in if s.requestedScale?.replicas == replicas { s.requestedScale = nil } }
            throw error
        }
        setRequestedScale(RequestedScale(replicas: scale.spec.replicas ?? replicas, resourceVersion: scale.metadata.resourceVersion.flatMap { Int($0) }))
    }

    private func setRequestedScale(_ requested: RequestedScale) {
        update { s in
            s.requestedScale = s.deploymentListed && requested.isSuperseded(by: s.deployment) ? nil : requested
        }
    }

    /// A scale we made that the Deployment watch hasn't shown yet.
    struct RequestedScale: Sendable, Equatable {
        var replicas: Int
        /// The Deployment's resourceVersion after the change (etcd revisions are integers in practice).
        var resourceVersion: Int?

        /// The watched Deployment is as new as our change (or newer: someone scaled after us).
        func isSuperseded(by deployment: Deployment?) -> Bool {
            guard let deployment else { return true }
            if let resourceVersion, let seen = deployment.metadata.resourceVersion.flatMap({ Int($0) }) {
                return seen >= resourceVersion
            }
            return deployment.spec?.replicas == replicas
        }
    }

    func run() async throws {
        let (selectors, selectorContinuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.selectorContinuation = selectorContinuation }
        defer {
            selectorContinuation.finish()
            broadcaster.finish()
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchDeployment() }
            group.addTask { await self.watchPods(selectors: selectors) }
            group.addTask { await self.watchEvents() }
            group.addTask { await self.probeLoop() }
        }
        // Cancelled: returns normally (the Deployment is left as it is).
    }

    // MARK: - State

    private struct State {
        var deploymentListed = false
        var deployment: Deployment?
        var requestedScale: RequestedScale?
        var selector: String?
        var selectorContinuation: AsyncStream<String>.Continuation?
        var pods: [String: Pod] = [:]
        /// Pod events by event name, with the order we saw them in (later = newer).
        var events: [String: (sequence: UInt64, event: Event)] = [:]
        var eventSequence: UInt64 = 0
        var health = HealthTracker()
        /// A watch that stopped for good (401/403), by watch name.
        var watchFailures: [String: BackendFailure] = [:]

        static let maxEvents = 256

        /// Pods exist (or the Deployment says some are ready): `/health` is worth asking.
        var shouldProbe: Bool {
            (deployment?.status?.readyReplicas ?? 0) > 0 || pods.values.contains(where: PodDiagnosis.isLive)
        }

        func status(deploymentName: String) -> BackendStatus {
            guard deploymentListed else { return BackendStatus(desiredReplicas: requestedScale?.replicas ?? 0) }
            let ordered = events.values.sorted { $0.sequence < $1.sequence }.map(\.event)
            var deployment = self.deployment
            if let requestedScale { deployment?.spec?.replicas = requestedScale.replicas }
            var status = PodDiagnosis.status(
                deploymentName: deploymentName, deployment: deployment, pods: Array(pods.values), events: ordered,
                healthy: health.healthy)
            if let failure = watchFailures["deployment"], status.failure == nil {
                status.failure = failure
            } else if let failure = watchFailures.values.first, status.notice == nil {
                status.notice = failure.description
            }
            return status
        }

        mutating func addEvent(_ event: Event) {
            guard let name = event.metadata.name else { return }
            eventSequence += 1
            events[name] = (eventSequence, event)
            if events.count > Self.maxEvents, let oldest = events.min(by: { $0.value.sequence < $1.value.sequence }) {
                events.removeValue(forKey: oldest.key)
            }
        }
    }

    /// Mutates the state, recomputes the status and publishes it if it changed. `wakeProbe`: a change
    /// the probe loop must react to at once (pods appeared, the Deployment became ready).
    private func update(wakeProbe: Bool = true, _ mutate: (inout State) -> Void) {
        let change: (old: BackendStatus, new: BackendStatus)? = state.withLock { s in
            mutate(&s)
            let status = s.status(deploymentName: deploymentName)
            // Published under the state lock so concurrent updates reach subscribers in order.
            return broadcaster.publish(status).map { ($0, status) }
        }
        if wakeProbe { probeSignal.signal() }
        if let change { log(change.old, change.new) }
    }

    private func log(_ old: BackendStatus, _ new: BackendStatus) {
        let metadata: Logger.Metadata = [
            "desired": "\(new.desiredReplicas)", "ready": "\(new.readyReplicas)", "pending": "\(new.pendingReplicas)",
            "progress": "\(new.progress ?? "-")",
        ]
        if let failure = new.failure, failure != old.failure {
            logger.error("backend failed: \(failure)", metadata: metadata)
        } else if let notice = new.notice, notice != old.notice {
            logger.warning("\(notice)", metadata: metadata)
        } else if new.progress != old.progress || new.readyReplicas != old.readyReplicas {
            logger.info("backend status changed", metadata: metadata)
        } else {
            logger.debug("backend status changed", metadata: metadata)
        }
    }

    // MARK: - Watches

    private func watchDeployment() async {
        let api = client.api(Deployment.self, namespace: namespace)
        let options = ListOptions(fieldSelector: "metadata.name=\(deploymentName)")
        await watchLoop("deployment", api.watcher(options, backoff: watchBackoff)) { event in
            self.update { s in
                switch event {
                case .listed(let items): s.deployment = items.first { $0.metadata.name == self.deploymentName }
                case .added(let d), .modified(let d): s.deployment = d
                case .deleted: s.deployment = nil
                }
                s.deploymentListed = true
                if let requested = s.requestedScale, requested.isSuperseded(by: s.deployment) { s.requestedScale = nil }
                if let selector = s.deployment?.spec?.selector.queryString, !selector.isEmpty, selector != s.selector {
                    s.selector = selector
                    s.selectorContinuation?.yield(selector)
                }
            }
        }
    }

    /// Watches the Pods matching the Deployment's selector; restarts the watch when the selector changes.
    private func watchPods(selectors: AsyncStream<String>) async {
        var current: Task<Void, Never>?
        for await selector in selectors {
            current?.cancel()
            await current?.value
            update { $0.pods = [:] }
            let api = client.api(Pod.self, namespace: namespace)
            let watcher = api.watcher(ListOptions(labelSelector: selector), backoff: watchBackoff)
            current = Task {
                await self.watchLoop("pods", watcher) { event in
                    self.update { s in
                        switch event {
                        case .listed(let pods):
                            s.pods = [:]
                            for pod in pods where self.owns(pod) { s.pods[pod.metadata.name ?? ""] = pod }
                        case .added(let pod), .modified(let pod):
                            if self.owns(pod) { s.pods[pod.metadata.name ?? ""] = pod }
                        case .deleted(let pod):
                            let name = pod.metadata.name ?? ""
                            s.pods.removeValue(forKey: name)
                            s.events = s.events.filter { $0.value.event.involvedObject.name != name }
                        }
                    }
                }
            }
        }
        current?.cancel()
        await current?.value
    }

    /// Pods of this Deployment: owned by one of its ReplicaSets (`<deployment>-<hash>`).
    private func owns(_ pod: Pod) -> Bool {
        (pod.metadata.ownerReferences ?? []).contains { ref in
            ref.kind == "ReplicaSet" && ref.name.hasPrefix(deploymentName + "-")
                && !ref.name.dropFirst(deploymentName.count + 1).contains("-")
        }
    }

    /// Events about Pods in the namespace (BackOff, Failed, FailedScheduling, Pulling…), kept for this
    /// Deployment's Pods only.
    private func watchEvents() async {
        let api = client.api(Event.self, namespace: namespace)
        let prefix = deploymentName + "-"
        let watcher = api.watcher(ListOptions(fieldSelector: "involvedObject.kind=Pod"), backoff: watchBackoff)
        await watchLoop("events", watcher) { event in
            func relevant(_ e: Event) -> Bool { e.involvedObject.name?.hasPrefix(prefix) ?? false }
            switch event {
            case .listed(let events):
                let mine = events.filter(relevant).sorted { Self.timestamp($0) < Self.timestamp($1) }
                self.update { s in
                    s.events = [:]
                    for e in mine { s.addEvent(e) }
                }
            case .added(let e), .modified(let e):
                guard relevant(e) else { return }
                self.update { $0.addEvent(e) }
            case .deleted(let e):
                guard relevant(e), let name = e.metadata.name else { return }
                self.update { $0.events.removeValue(forKey: name) }
            }
        }
    }

    private static func timestamp(_ event: Event) -> String {
        event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? ""
    }

    /// Runs a `Watcher` until cancelled. The Watcher itself resumes dropped watches and relists after
    /// 410; it only ends with an error when our rights are gone (401/403): report it and retry slowly.
    private func watchLoop<O: KubeObject>(_ what: String, _ watcher: Watcher<O>, _ handle: @escaping @Sendable (WatcherEvent<O>) -> Void) async {
        var failed = false
        while !Task.isCancelled {
            do {
                for try await event in watcher {
                    if failed {
                        failed = false
                        update { $0.watchFailures[what] = nil }
                    }
                    handle(event)
                }
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                failed = true
                let reason = (error as? KubeError).map { $0.reason == .unknown ? "WatchFailed" : $0.reason.rawValue } ?? "WatchFailed"
                logger.error("watch of \(what) failed: \(error)")
                update { $0.watchFailures[what] = BackendFailure(reason: reason, message: "watch of \(what) in \(namespace): \(error)") }
                do { try await Task.sleep(for: .seconds(5)) } catch { return }
            }
        }
    }

    // MARK: - Health

    private func probeLoop() async {
        while !Task.isCancelled {
            let active = state.withLock { $0.shouldProbe }
            guard active else {
                if state.withLock({ $0.health != HealthTracker() }) {
                    update(wakeProbe: false) { $0.health.reset() }
                }
                await probeSignal.wait(timeout: nil)
                continue
            }
            let result = await probe.check()
            if Task.isCancelled { return }
            var interval = policy.wakingInterval
            var changed: Bool?
            update(wakeProbe: false) { s in
                guard s.shouldProbe else { return }
                if s.health.record(result, threshold: policy.failureThreshold) { changed = s.health.healthy }
                interval = s.health.nextInterval(policy)
            }
            if let changed { logger.info("health \(changed ? "confirmed" : "lost") on \(target): \(result)") }
            await probeSignal.wait(timeout: interval)
        }
    }
}
