import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns what chill-server knows of a model into its `status` (pure, so it is tested by table).
/// Conditions keep their `lastTransitionTime` while their status stays the same.
enum ModelStatusBuilder {
    struct Input: Sendable {
        var snapshot: ScalerSnapshot
        var generation: Int?
        var deploymentReplicas: Int
        var previous: VLLMModelStatus?
        /// Unix seconds now.
        var now: Double
        var scaledDownLast24h: Double
        var handledRequestAt: String?
        /// Why the model waits instead of waking (exclusive mode), if it does.
        var waitingFor: String?
        /// A workload apply problem (an SSA conflict, a rejected object).
        var applyProblem: BackendFailure?
    }

    static func status(_ input: Input) -> VLLMModelStatus {
        let s = input.snapshot
        var status = VLLMModelStatus()
        let ready = s.backend.readyReplicas
        var phase = VLLMModel.Phase(rawValue: s.phase.rawValue) ?? .scaledDown
        if phase == .ready && ready < 1 { phase = .waking }  // Ready only with a ready replica
        status.phase = phase
        status.replicas = input.deploymentReplicas
        status.readyReplicas = ready
        status.observedGeneration = input.generation
        status.lastActivityTime = RFC3339.format(Date(timeIntervalSince1970: input.now - s.lastActivitySecondsAgo))
        status.scaledDownSeconds = (s.stats.scaledDownSeconds * 10).rounded() / 10
        status.scaledDownSecondsLast24h = (input.scaledDownLast24h * 10).rounded() / 10
        status.handledRequestAt = input.handledRequestAt ?? input.previous?.handledRequestAt
        if let seconds = s.stats.lastWakeSeconds, let ago = s.lastWakeReadySecondsAgo {
            let readyAt = input.now - ago
            status.lastWake = .init(
                started: RFC3339.format(Date(timeIntervalSince1970: readyAt - seconds)), ready: RFC3339.format(Date(timeIntervalSince1970: readyAt)),
                seconds: (seconds * 10).rounded() / 10)
        } else {
            status.lastWake = input.previous?.lastWake
        }

        let failure = s.backend.failure ?? input.applyProblem
        let failureReason = failure.map(reason(of:)) ?? (s.lastFailure?.contains("wake timeout") == true ? ChillContract.reasonWakeTimeout : "WakeFailed")
        var message: String
        switch phase {
        case .ready: message = "serving on \(ready) replica\(ready == 1 ? "" : "s")"
        case .waking: message = input.waitingFor ?? s.backend.notice ?? s.backend.progress.map { "waking: \($0)" } ?? "waking"
        case .draining: message = "finishing in-flight requests before scaling down"
        case .scaledDown: message = input.waitingFor ?? "scaled to zero; the next request wakes it"
        case .failed: message = failure?.description ?? s.lastFailure ?? "the last wake failed"
        }
        if let problem = input.applyProblem, phase != .failed { message += "; \(problem.description)" }
        status.message = message

        let previous = input.previous?.conditions ?? []
        let time = RFC3339.format(Date(timeIntervalSince1970: input.now))
        func condition(_ type: String, _ on: Bool, reason: String, message: String) -> Condition {
            let value = on ? "True" : "False"
            let since = previous.first { $0.type == type && $0.status == value }?.lastTransitionTime ?? time
            return Condition(type: type, status: value, observedGeneration: input.generation, lastTransitionTime: since, reason: reason, message: message)
        }
        let failed = phase == .failed || input.applyProblem != nil
        status.conditions = [
            condition(ChillContract.conditionReady, phase == .ready, reason: phase == .ready ? "Serving" : phase.rawValue, message: message),
            condition(ChillContract.conditionWaking, phase == .waking, reason: phase == .waking ? (s.backend.notice != nil ? ChillContract.reasonUnschedulable : "Waking") : "NotWaking",
                      message: phase == .waking ? message : ""),
            condition(ChillContract.conditionFailed, failed, reason: failed ? (input.applyProblem.map(reason(of:)) ?? failureReason) : "NoFailure",
                      message: failed ? (input.applyProblem?.description ?? message) : ""),
        ]
        return status
    }

    /// The condition reason for a backend failure: Kubernetes' own names where there is one.
    static func reason(of failure: BackendFailure) -> String {
        switch failure.reason {
        case "ErrImagePull", "ImagePullBackOff": ChillContract.reasonImagePullBackOff
        case "CrashLoopBackOff": ChillContract.reasonCrashLoopBackOff
        case "Unschedulable": ChillContract.reasonUnschedulable
        case ChillContract.reasonSpecConflict: ChillContract.reasonSpecConflict
        default: failure.reason
        }
    }

    /// The status without `lastActivityTime`, to tell a real change from the clock moving.
    static func comparable(_ status: VLLMModelStatus) -> VLLMModelStatus {
        var s = status
        s.lastActivityTime = nil
        s.scaledDownSeconds = nil
        s.scaledDownSecondsLast24h = nil
        return s
    }
}
