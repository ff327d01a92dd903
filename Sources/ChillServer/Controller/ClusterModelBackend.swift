import Logging
import Shared
import Synchronization

/// One VLLMModel's workload as the Scaler sees it. It owns no watch: the controller's shared
/// informers hand it the Deployment, Pods and Events (`observe`). It probes `/health` on each live
/// pod itself (faster than kubelet readiness, so a wake is noticed within one probe interval), and
/// routes to ready pods by pod IP, least in flight first. `scale(to:)` only records the wish; the
/// controller's reconcile applies it (and, in exclusive mode, waits for the GPUs first).
final class ClusterModelBackend: Backend {
    let name: String
    let target: UpstreamTarget
    let model: String

    private let probePolicy: HealthProbePolicy
    private let probeTimeout: Duration
    private let onScaleRequest: @Sendable () -> Void
    private let logger: Logger
    private let broadcaster = StatusBroadcaster()
    private let probeSignal = LoopSignal()
    private let state: Mutex<State>

    private struct PodEndpoint: Sendable {
        var target: UpstreamTarget
        var health = HealthTracker()
        var inFlight = 0
    }

    private struct State {
        var requested: Int
        var port: Int
        var deployment: Deployment?
        var pods: [Pod] = []
        var events: [Event] = []
        /// Live pods with an IP, by pod name.
        var endpoints: [String: PodEndpoint] = [:]
        /// A problem applying the workload (an SSA conflict, a rejected spec), shown as a failure.
        var applyFailure: BackendFailure?

        var routable: [String] { endpoints.filter { $0.value.health.healthy }.map(\.key).sorted() }

        func status(deploymentName: String) -> BackendStatus {
            guard var deployment else {
                var status = BackendStatus(desiredReplicas: requested, pendingReplicas: requested)
                status.progress = requested > 0 ? "Creating workload" : nil
                status.failure = applyFailure
                return status
            }
            deployment.spec?.replicas = requested
            let healthy = endpoints.values.contains { $0.health.healthy }
            var status = PodDiagnosis.status(deploymentName: deploymentName, deployment: deployment, pods: pods, events: events, healthy: healthy)
            let ready = routable.count
            let live = pods.filter(PodDiagnosis.isLive).count
            status.readyReplicas = ready
            status.pendingReplicas = max(0, live - ready) + pods.filter { $0.metadata.deletionTimestamp != nil && !PodDiagnosis.isFinished($0) }.count
            if ready > 0 { status.progress = WakeStep.ready.label }
            if let applyFailure, status.failure == nil, requested > 0, ready == 0 { status.failure = applyFailure }
            return status
        }
    }

    init(model: String, namespace: String, port: Int, requested: Int, probePolicy: HealthProbePolicy = HealthProbePolicy(),
         probeTimeout: Duration = .seconds(1), logger: Logger, onScaleRequest: @escaping @Sendable () -> Void) {
        self.model = model
        self.name = "deployment/\(ChillContract.deploymentName(model: model))"
        self.target = UpstreamTarget(host: "\(ChillContract.serviceName(model: model)).\(namespace).svc", port: 8000)
        self.probePolicy = probePolicy
        self.probeTimeout = probeTimeout
        self.logger = logger
        self.onScaleRequest = onScaleRequest
        self.state = Mutex(State(requested: requested, port: port))
        broadcaster.publish(state.withLock { $0.status(deploymentName: self.name) })
    }

    /// The replicas the Scaler wants (0 or 1 today).
    var requestedReplicas: Int { state.withLock { $0.requested } }
    var currentStatus: BackendStatus { broadcaster.current }

    func scale(to replicas: Int) async throws {
        update { $0.requested = replicas }
        onScaleRequest()
    }

    func statusUpdates() -> AsyncStream<BackendStatus> { broadcaster.subscribe() }

    /// The informers' view of this model's workload changed.
    func observe(deployment: Deployment?, pods: [Pod], events: [Event], port: Int) {
        update { s in
            s.deployment = deployment
            s.pods = pods
            s.events = events
            s.port = port
            var endpoints: [String: PodEndpoint] = [:]
            // Only running pods are probed and routed to (a crash-looping container serves nothing).
            for pod in pods where PodDiagnosis.isLive(pod) && pod.status?.phase == "Running" {
                guard let name = pod.metadata.name, let ip = pod.status?.podIP, !ip.isEmpty else { continue }
                let target = UpstreamTarget(host: ip, port: port)
                var endpoint = s.endpoints[name] ?? PodEndpoint(target: target)
                if endpoint.target != target { endpoint = PodEndpoint(target: target) }
                endpoints[name] = endpoint
            }
            s.endpoints = endpoints
        }
    }

    var applyFailure: BackendFailure? { state.withLock { $0.applyFailure } }

    func setApplyFailure(_ failure: BackendFailure?) {
        update { $0.applyFailure = failure }
    }

    // MARK: - Routing

    func leaseTarget() -> UpstreamTarget? {
        state.withLock { s in
            var best: String?
            for (name, endpoint) in s.endpoints where endpoint.health.healthy {
                if let current = best, let bestEndpoint = s.endpoints[current], bestEndpoint.inFlight <= endpoint.inFlight { continue }
                best = name
            }
            guard let best else { return nil }
            s.endpoints[best]?.inFlight += 1
            return s.endpoints[best]?.target
        }
    }

    func returnTarget(_ target: UpstreamTarget) {
        state.withLock { s in
            if let name = s.endpoints.first(where: { $0.value.target == target })?.key { s.endpoints[name]?.inFlight -= 1 }
        }
    }

    // MARK: - Health

    func run() async throws {
        defer { broadcaster.finish() }
        while !Task.isCancelled {
            let targets = state.withLock { s in s.endpoints.map { ($0.key, $0.value.target) } }
            if targets.isEmpty {
                await probeSignal.wait(timeout: nil)
                continue
            }
            var results: [(String, UpstreamTarget, HealthProbeResult)] = []
            await withTaskGroup(of: (String, UpstreamTarget, HealthProbeResult).self) { group in
                for (pod, target) in targets {
                    let probe = HealthProbe(target: target, timeout: probeTimeout)
                    group.addTask { (pod, target, await probe.check()) }
                }
                for await result in group { results.append(result) }
            }
            if Task.isCancelled { return }
            var interval = probePolicy.readyInterval
            update(wakeProbe: false) { s in
                for (pod, target, result) in results where s.endpoints[pod]?.target == target {
                    if s.endpoints[pod]?.health.record(result, threshold: probePolicy.failureThreshold) == true {
                        logger.info("pod \(pod) \(result.isHealthy ? "serves" : "stopped serving"): \(result)", metadata: ["model": "\(model)"])
                    }
                }
                for endpoint in s.endpoints.values { interval = min(interval, endpoint.health.nextInterval(probePolicy)) }
            }
            await probeSignal.wait(timeout: interval)
        }
    }

    private func update(wakeProbe: Bool = true, _ mutate: (inout State) -> Void) {
        state.withLock { s in
            mutate(&s)
            broadcaster.publish(s.status(deploymentName: name))
        }
        if wakeProbe { probeSignal.signal() }
    }
}
