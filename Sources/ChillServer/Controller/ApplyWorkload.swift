import Logging
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension ModelController {
    /// Server-side applies the model's Service, cache claim and Deployment (field manager
    /// chill-server, never forced: another writer's fields are theirs, and a conflict is shown in
    /// the status). The Deployment carries the replicas the reconcile decided (chill-server is the
    /// only writer of `.spec.replicas`). A spec change waits for the next wake while the model is
    /// scaled down, and rolls out at once while it runs.
    func applyWorkload(_ model: VLLMModel, runtime: ModelRuntime, deployment: Deployment?, replicas: Int) async throws {
        let name = runtime.name
        let generation = model.metadata.generation ?? 0
        let options = WorkloadOptions(
            namespace: settings.namespace, wakeTimeout: runtime.policy.wakeTimeout,
            apiKeySecret: settings.apiKeySecret.map { SecretKeyRef(name: $0, key: InstallManifests.apiKeyKey) })
        let ns = settings.namespace
        // A spec that breaks the CRD's CEL rules (stored by an API server without them, e.g. an older
        // CRD) is not acted on: the status says why, and a request for it fails fast.
        let violations = model.spec.validationErrors()
        guard violations.isEmpty else {
            let failure = BackendFailure(reason: "InvalidSpec", message: violations.map(\.description).joined(separator: "; "))
            if runtime.backend.applyFailure != failure { logger.error("the model's spec is invalid: \(failure)", metadata: ["model": "\(name)"]) }
            runtime.backend.setApplyFailure(failure)
            return
        }
        do {
            if runtime.memory.withLock({ $0.appliedGeneration }) != generation {
                _ = try await client.api(Service.self, namespace: ns).apply(
                    ModelWorkload.service(for: model, options: options), fieldManager: ChillContract.serverFieldManager)
                _ = try await client.api(PersistentVolumeClaim.self, namespace: ns).apply(
                    ModelWorkload.cacheClaim(for: model, options: options), fieldManager: ChillContract.serverFieldManager)
            }
            let appliedGeneration = deployment?.metadata.annotations?[ChillContract.specGenerationAnnotation].flatMap { Int($0) }
            let currentReplicas = deployment?.spec?.replicas
            let specChanged = appliedGeneration != generation
            let deferred = specChanged && deployment != nil && replicas == 0 && (currentReplicas ?? 0) == 0
            if deployment == nil || currentReplicas != replicas || (specChanged && !deferred) {
                let object = ModelWorkload.deployment(for: model, replicas: replicas, options: options)
                _ = try await client.api(Deployment.self, namespace: ns).apply(object, fieldManager: ChillContract.serverFieldManager)
                if currentReplicas != replicas {
                    logger.info("deployment scaled", metadata: ["model": "\(name)", "replicas": "\(replicas)"])
                }
            }
            runtime.memory.withLock { $0.appliedGeneration = generation }
            runtime.backend.setApplyFailure(nil)
        } catch let error as KubeError {
            let conflict = error.code == 409
            let failure = BackendFailure(
                reason: conflict ? ChillContract.reasonSpecConflict : (error.code == 422 ? "InvalidWorkload" : "ApplyFailed"),
                message: conflict ? "another field manager owns fields chill-server applies (not forced): \(error.message)" : error.message)
            logger.error("applying the workload failed: \(failure)", metadata: ["model": "\(name)"])
            runtime.backend.setApplyFailure(failure)
            try? await writeStatus(model, runtime: runtime, deployment: deployment, waitingFor: nil)
            throw error
        }
    }

    /// Writes the model's status through the status subresource when it changed (lastActivityTime
    /// alone: at most once per `activityWriteInterval`).
    func writeStatus(_ model: VLLMModel, runtime: ModelRuntime, deployment: Deployment?, waitingFor: String?) async throws {
        let snapshot = await runtime.scaler.snapshot()
        let now = Date().timeIntervalSince1970
        let (last24h, handled, applyProblem) = runtime.memory.withLock { m in
            m.scaledDown.record(total: snapshot.stats.scaledDownSeconds, now: now)
            return (m.scaledDown.seconds(now: now), m.handledRequestAt, runtime.backend.applyFailure)
        }
        let status = ModelStatusBuilder.status(.init(
            snapshot: snapshot, generation: model.metadata.generation, deploymentReplicas: deployment?.status?.replicas ?? 0,
            previous: model.status, now: now, scaledDownLast24h: last24h, handledRequestAt: handled, waitingFor: waitingFor,
            applyProblem: applyProblem))
        let value = try JSONValue(encoding: status)
        let comparable = try JSONValue(encoding: ModelStatusBuilder.comparable(status))
        let due = runtime.memory.withLock { m -> Bool in
            if m.writtenStatus != comparable { return true }
            guard let last = m.writtenActivity else { return true }
            return now - last >= settings.activityWriteInterval.seconds
        }
        // After a restart the cache shows what the last chill-server wrote: no need to write it again.
        if runtime.memory.withLock({ $0.writtenStatus == nil }), let previous = model.status,
           (try? JSONValue(encoding: ModelStatusBuilder.comparable(previous))) == comparable {
            runtime.memory.withLock { $0.writtenStatus = comparable; $0.writtenActivity = now }
            return
        }
        guard due else { return }
        _ = try await client.api(VLLMModel.self).patchStatus(runtime.name, ["status": value], type: .merge)
        runtime.memory.withLock { m in
            m.writtenStatus = comparable
            m.writtenActivity = now
        }
    }
}
