import Logging
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension ModelController {
    /// Converges one model: its runtime, its intents, its share of the GPUs, its workload, its status.
    /// Idempotent; reads only the caches (and writes what differs). Returns when to look again.
    func reconcile(_ name: String) async throws -> Duration? {
        guard let model = models.get(name), model.metadata.deletionTimestamp == nil else {
            removeRuntime(name, reason: "VLLMModel deleted or no longer selected")
            return nil
        }
        let runtime = await ensureRuntime(model)
        let ns = settings.namespace
        let deployment = deployments.get("\(ns)/\(ChillContract.deploymentName(model: name))")
        let modelPods = pods.filter { $0.metadata.labels?[ChillContract.modelLabel] == name }
        let podNames = Set(modelPods.compactMap(\.metadata.name))
        let modelEvents = events.filter { podNames.contains($0.involvedObject.name ?? "") }
            .sorted { Self.timestamp($0) < Self.timestamp($1) }
        runtime.backend.observe(deployment: deployment, pods: modelPods, events: modelEvents, port: model.spec.effectivePort)

        await actOnIntent(model, runtime)

        // The GPUs: does this model get to run now?
        let wants = runtime.backend.requestedReplicas > 0
        var replicas = runtime.backend.requestedReplicas
        var waitingFor: String?
        var lookAgain: Duration?
        let (decision, changes) = gpu.withLock { gpu in
            gpu.decide(name, observation(name), others: { self.observation($0) }, now: clock.now)
        }
        switch decision {
        case .run:
            break
        case .wait(let retry):
            replicas = 0
            lookAgain = retry
            if wants { waitingFor = "waiting for the GPUs: \(gpu.withLock { $0.active } ?? "another model") is active" }
        case .drain(let force):
            await drain(runtime, force: force)
            if !force { lookAgain = gpu.withLock { $0.drainDeadline }.map { clock.now.duration(to: $0) } }
        }
        await carryOut(changes)

        try await applyWorkload(model, runtime: runtime, deployment: deployment, replicas: replicas)
        try await writeStatus(model, runtime: runtime, deployment: deployment, waitingFor: waitingFor)
        // Running models are looked at again so lastActivityTime stays fresh (a write at most every ~10 s).
        let phase = await runtime.scaler.phase
        if phase != .scaledDown { lookAgain = min(lookAgain ?? settings.activityWriteInterval, settings.activityWriteInterval) }
        return lookAgain
    }

    /// What exclusive mode needs to know about a model.
    func observation(_ name: String) -> ExclusiveGPU<ContinuousClock.Instant>.Observation {
        let runtime = runtime(name)
        let wants = runtime?.backend.requestedReplicas ?? 0 > 0
        let live = pods.filter { $0.metadata.labels?[ChillContract.modelLabel] == name && !PodDiagnosis.isFinished($0) }
        return .init(wants: wants, isGone: live.isEmpty, isWaking: wants && !(runtime?.scaler.isServing ?? false))
    }

    private func drain(_ runtime: ModelRuntime, force: Bool) async {
        let (ask, forceNow) = runtime.memory.withLock { m -> (Bool, Bool) in
            let ask = !m.drainAsked
            m.drainAsked = true
            let forceNow = force && !m.drainForced
            if forceNow { m.drainForced = true }
            return (ask, forceNow)
        }
        if ask || forceNow {
            logger.info("draining for a switch", metadata: ["model": "\(runtime.name)", "force": "\(forceNow)"])
            await runtime.scaler.stop(force: forceNow)
        }
    }

    private func carryOut(_ changes: [ExclusiveGPU<ContinuousClock.Instant>.Change]) async {
        for change in changes {
            switch change {
            case .activated(let model, let previous):
                logger.info("active model \(previous ?? "-") → \(model)", metadata: ["model": "\(model)"])
                registry.setActive(model)
                if let previous { runtime(previous)?.memory.withLock { $0.drainAsked = false; $0.drainForced = false } }
                enqueue(model)
                await recordActive(model)
            case .switchStarted(let from, let to):
                logger.info("switching \(from) → \(to): draining \(from)", metadata: ["model": "\(to)"])
                enqueue(from)
            }
        }
    }

    // MARK: - Runtimes

    private func policy(for model: VLLMModel) -> ScalingPolicy {
        ScalingPolicy(
            model: model.servedName,
            idleTimeout: model.spec.idleTimeout == nil ? settings.idleTimeout : model.spec.effectiveIdleTimeout,
            wakeTimeout: model.spec.wakeTimeout == nil ? settings.wakeTimeout : model.spec.effectiveWakeTimeout,
            maxHeld: settings.maxHeld, gpus: model.spec.effectiveGPUs)
    }

    private func ensureRuntime(_ model: VLLMModel) async -> ModelRuntime {
        let name = model.metadata.name ?? ""
        let policy = policy(for: model)
        if let existing = runtime(name), existing.policy.model == policy.model, existing.policy.idleTimeout == policy.idleTimeout,
           existing.policy.wakeTimeout == policy.wakeTimeout, existing.policy.gpus == policy.gpus {
            return existing
        }
        let previous = runtime(name)
        // A new runtime starts from what the cluster says: the Deployment's replicas (a running model
        // keeps running across restarts) and the totals in the status.
        let deployment = deployments.get("\(settings.namespace)/\(ChillContract.deploymentName(model: name))")
        let requested = previous?.backend.requestedReplicas ?? deployment?.spec?.replicas ?? 0
        let logger = self.logger
        let backend = ClusterModelBackend(
            model: name, namespace: settings.namespace, port: model.spec.effectivePort, requested: requested, probePolicy: settings.probePolicy,
            logger: logger, onScaleRequest: { [weak self] in self?.enqueue(name, resettingBackoff: true) })
        let runtime = ModelRuntime(
            name: name, servedName: model.servedName, policy: policy, backend: backend, metrics: metrics.metrics(for: model.servedName),
            logger: logger, onChange: { [weak self] in self?.enqueue(name) })
        runtime.memory.withLock { m in
            m.handledRequestAt = previous?.memory.withLock { $0.handledRequestAt } ?? model.status?.handledRequestAt
            if let last24h = model.status?.scaledDownSecondsLast24h { m.scaledDown.restore(last24h, now: Date().timeIntervalSince1970) }
        }
        // The totals continue from the status before the Scaler starts counting.
        await runtime.scaler.restore(scaledDownSeconds: model.status?.scaledDownSeconds, lastWakeSeconds: model.status?.lastWake?.seconds)
        runtimes.withLock { $0[name] = runtime }
        if !registry.put(runtime.handle) {
            logger.error("servedModelName \(model.servedName) is already served by another VLLMModel; \(name) is not routable", metadata: ["model": "\(name)"])
        }
        previous?.stop()
        starts.yield(runtime)
        logger.info(previous == nil ? "serving model" : "model settings changed: runtime replaced",
                    metadata: ["model": "\(name)", "servedName": "\(model.servedName)", "replicas": "\(requested)"])
        return runtime
    }

    private func removeRuntime(_ name: String, reason: String) {
        guard let runtime = runtimes.withLock({ $0.removeValue(forKey: name) }) else { return }
        registry.remove(id: name)
        gpu.withLock { $0.forget(name) }
        if registry.activeID == name { registry.setActive(gpu.withLock { $0.active }) }
        runtime.stop()
        logger.info("stopped serving model: \(reason)", metadata: ["model": "\(name)"])
    }

    static func timestamp(_ event: Event) -> String {
        event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? ""
    }

    // MARK: - Intents (the plugin's start/stop)

    /// Acts on `chill.dev/requested-state` once per `chill.dev/requested-at`.
    private func actOnIntent(_ model: VLLMModel, _ runtime: ModelRuntime) async {
        let annotations = model.metadata.annotations ?? [:]
        guard let state = annotations[ChillContract.requestedStateAnnotation], let given = annotations[ChillContract.requestedAtAnnotation] else { return }
        // Recorded in status.handledRequestAt, a date-time: an unparsable value is refused, not written.
        guard let date = RFC3339.parse(given) else {
            if runtime.memory.withLock({ m in defer { m.ignoredRequestAt = given }; return m.ignoredRequestAt != given }) {
                logger.warning("\(ChillContract.requestedAtAnnotation)=\"\(given)\" is not an RFC 3339 time; the intent is ignored", metadata: ["model": "\(runtime.name)"])
            }
            return
        }
        let at = RFC3339.format(date)
        // Newer than the last one handled; or as new but asking for the other state (a start and a
        // stop within one second carry the same time).
        let fresh = runtime.memory.withLock { m -> Bool in
            if let handled = m.handledRequestAt, !Self.isNewer(at, than: handled), !(at == handled && m.handledState != nil && m.handledState != state) {
                return false
            }
            m.handledRequestAt = at
            m.handledState = state
            return true
        }
        guard fresh else { return }
        let name = runtime.name
        switch state {
        case ChillContract.requestedStateAwake:
            logger.info("start requested", metadata: ["model": "\(name)", "requestedAt": "\(at)"])
            await runtime.scaler.start()
            try? await requestSwitch(to: name, reason: "kubectl chill start")
        case ChillContract.requestedStateAsleep:
            let force = annotations[ChillContract.stopModeAnnotation] == ChillContract.stopModeForce
            logger.info("stop requested", metadata: ["model": "\(name)", "requestedAt": "\(at)", "force": "\(force)"])
            await runtime.scaler.stop(force: force)
        default:
            logger.warning("unknown \(ChillContract.requestedStateAnnotation): \(state)", metadata: ["model": "\(name)"])
        }
    }

    static func isNewer(_ a: String, than b: String) -> Bool {
        if let da = RFC3339.parse(a), let db = RFC3339.parse(b) { return da > db }
        return a != b
    }

    // MARK: - Switching

    func requestSwitch(to name: String, reason: String) async throws {
        guard runtime(name) != nil else { throw SwitchError.unknownModel(name) }
        let holder = gpu.withLock { $0.active }
        let holderGone = holder.map { observation($0).isGone && !observation($0).wants } ?? true
        let changes = gpu.withLock { $0.requestSwitch(to: name, holderIsGone: holderGone, now: clock.now) }
        logger.info("switch to \(name) requested (\(reason))", metadata: ["model": "\(name)"])
        await runtime(name)?.scaler.start()
        await carryOut(changes)
        enqueue(name)
        if let holder { enqueue(holder) }
    }

    enum SwitchError: Error, CustomStringConvertible {
        case unknownModel(String)
        var description: String {
            switch self {
            case .unknownModel(let name): "no served model named \(name)"
            }
        }
    }

    /// chill-state changed: a newer activeModel than ours was written by someone else (`kubectl chill switch`).
    func chillStateChanged(_ map: ConfigMap?) {
        guard hasSynced, let map, let wanted = map.data?[ChillContract.activeModelKey], !wanted.isEmpty else { return }
        let rv = map.metadata.resourceVersion.flatMap { Int($0) }
        let ours = stateWrite.withLock { w -> Bool in
            if let written = w.resourceVersion, let rv, rv <= written { return true }
            return w.model == wanted
        }
        guard !ours, let name = modelName(forServedName: wanted) ?? (runtime(wanted) != nil ? wanted : nil) else { return }
        stateWrite.withLock { $0.model = wanted }
        Task { try? await self.requestSwitch(to: name, reason: "chill-state set to \(wanted)") }
    }

    /// Writes the active model to chill-state (server-side apply; the same fields the plugin's
    /// `switch` writes, so both force).
    private func recordActive(_ model: String) async {
        let now = RFC3339.format(Date())
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": .string(ChillContract.stateConfigMap), "namespace": .string(settings.namespace)],
            "data": [ChillContract.activeModelKey: .string(model), ChillContract.switchedAtKey: .string(now)],
        ]
        stateWrite.withLock { $0.model = model }
        do {
            let written = try await client.api(ConfigMap.self, namespace: settings.namespace)
                .apply(object, fieldManager: ChillContract.serverFieldManager, force: true)
            stateWrite.withLock { $0.resourceVersion = written.metadata.resourceVersion.flatMap { Int($0) } }
        } catch {
            logger.error("cannot record the active model in \(ChillContract.stateConfigMap): \(error)", metadata: ["model": "\(model)"])
        }
    }
}
