import Shared

/// The steps of a wake, in order. `BackendStatus.progress` carries the label.
enum WakeStep: Int, Sendable, Comparable, CaseIterable {
    case pending, scheduled, pullingImage, starting, loadingModel, ready

    var label: String {
        switch self {
        case .pending: "Pending"
        case .scheduled: "Scheduled"
        case .pullingImage: "Pulling image"
        case .starting: "Starting"
        case .loadingModel: "Loading model"
        case .ready: "Ready"
        }
    }

    static func < (a: WakeStep, b: WakeStep) -> Bool { a.rawValue < b.rawValue }
}

/// Turns what the API server says about a Deployment (its status, its Pods, their Events) plus the
/// result of our own `/health` probe into a `BackendStatus`. Pure: no I/O, no clock.
///
/// - ready = the Deployment's readyReplicas, but only while `/health` answers 200.
/// - pending = Pods that exist but don't serve: Pending (unscheduled too), pulling, starting,
///   loading, and terminating ones (they still hold their GPUs: zero replicas means gone).
/// - failure (fatal): a container waiting with CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
///   InvalidImageName or CreateContainerConfigError; a Deployment ReplicaFailure; ProgressDeadlineExceeded.
///   Only while nothing is ready — a broken new Pod next to a serving one is a notice.
/// - notice (not fatal): Unschedulable (nodes may be provisioning), volume and sandbox warnings,
///   restarts.
enum PodDiagnosis {
    /// Container waiting reasons that waiting will not fix.
    static let fatalWaitingReasons: Set<String> = [
        "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
    ]

    /// Warning Events worth a notice while a Pod is not ready.
    static let noticeEventReasons: Set<String> = [
        "FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox", "FailedScheduling", "NetworkNotReady",
        "FailedPostStartHook", "Evicted", "Preempting",
    ]

    /// The status of a Deployment-backed model.
    /// - Parameters:
    ///   - deployment: nil when the Deployment doesn't exist.
    ///   - pods: the Deployment's Pods (any order).
    ///   - events: Events about those Pods, oldest first (later entries win).
    ///   - healthy: the latest `/health` verdict on the target.
    static func status(deploymentName: String = "", deployment: Deployment?, pods: [Pod], events: [Event], healthy: Bool) -> BackendStatus {
        guard let deployment else {
            return BackendStatus(failure: BackendFailure(reason: "DeploymentNotFound", message: "deployment \(deploymentName) not found"))
        }
        let desired = deployment.spec?.replicas ?? 1
        let sortedPods = pods.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        let live = sortedPods.filter { isLive($0) }
        let terminating = sortedPods.filter { $0.metadata.deletionTimestamp != nil && !isFinished($0) }
        let deploymentReady = deployment.status?.readyReplicas ?? 0
        let ready = healthy ? deploymentReady : 0
        var status = BackendStatus()
        status.desiredReplicas = desired
        status.readyReplicas = ready
        status.pendingReplicas = max(0, live.count + terminating.count - ready)

        // Something Kubernetes calls ready (serving or about to): failures of other Pods aren't fatal.
        let anythingReady = deploymentReady > 0 || live.contains { $0.isReady }
        let podFailure = live.lazy.compactMap { failure(of: $0, events: events) }.first
        if desired > 0 {
            if !anythingReady {
                status.failure = podFailure ?? deploymentFailure(deployment)
            }
            status.notice = notice(live: live, events: events, failingButServing: anythingReady ? podFailure : nil)
            if ready > 0 {
                status.progress = WakeStep.ready.label
            } else if live.isEmpty {
                status.progress = WakeStep.pending.label
            } else {
                status.progress = live.map { step(of: $0, events: events, healthy: healthy) }.max()?.label
            }
        } else if !live.isEmpty || !terminating.isEmpty {
            status.progress = "Stopping"
        }
        return status
    }

    /// A Pod that counts: not being deleted, not finished (Evicted and completed Pods linger in
    /// Failed/Succeeded while the ReplicaSet replaces them).
    static func isLive(_ pod: Pod) -> Bool {
        pod.metadata.deletionTimestamp == nil && !isFinished(pod)
    }

    static func isFinished(_ pod: Pod) -> Bool {
        pod.status?.phase == "Failed" || pod.status?.phase == "Succeeded"
    }

    static func isScheduled(_ pod: Pod) -> Bool {
        if let condition = pod.status?.conditions?.first(where: { $0.type == "PodScheduled" }) {
            return condition.status == "True"
        }
        return pod.spec?["nodeName"]?.stringValue != nil
    }

    /// Events about this Pod, oldest first.
    static func events(of pod: Pod, in events: [Event]) -> [Event] {
        guard let name = pod.metadata.name else { return [] }
        return events.filter { event in
            guard event.involvedObject.kind == "Pod" || event.involvedObject.kind == nil, event.involvedObject.name == name else { return false }
            if let uid = event.involvedObject.uid, let podUID = pod.metadata.uid, uid != podUID { return false }
            return true
        }
    }

    /// How far one Pod has come.
    static func step(of pod: Pod, events allEvents: [Event], healthy: Bool) -> WakeStep {
        guard isScheduled(pod) else { return .pending }
        let containers = pod.status?.containerStatuses ?? []
        if !containers.isEmpty, containers.allSatisfy({ $0.state?.running != nil }) {
            return healthy && pod.isReady ? .ready : .loadingModel
        }
        if containers.contains(where: { $0.state?.running != nil }) { return .loadingModel }
        if (pod.status?.initContainerStatuses ?? []).contains(where: { $0.state?.running != nil }) { return .starting }
        if containers.contains(where: { $0.state?.terminated != nil || $0.lastState?.terminated != nil }) { return .starting }
        // The kubelet's pull events tell "pulling" from "creating" (the status says ContainerCreating for both).
        let podEvents = events(of: pod, in: allEvents)
        if let last = podEvents.last(where: { ["Pulling", "Pulled", "Created", "Started"].contains($0.reason ?? "") }) {
            return last.reason == "Pulling" ? .pullingImage : .starting
        }
        return .scheduled
    }

    /// A fatal container state of this Pod (init containers first), named the way Kubernetes names it.
    static func failure(of pod: Pod, events allEvents: [Event]) -> BackendFailure? {
        let statuses = (pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])
        for container in statuses {
            guard let waiting = container.state?.waiting, let reason = waiting.reason, fatalWaitingReasons.contains(reason) else { continue }
            var message = "pod \(pod.metadata.name ?? "?") container \(container.name)"
            if let detail = waiting.message, !detail.isEmpty { message += ": \(detail)" }
            if let last = container.lastState?.terminated {
                var parts: [String] = []
                if let code = last.exitCode { parts.append("exit code \(code)") }
                if let why = last.reason, !why.isEmpty { parts.append(why) }
                if let why = last.message, !why.isEmpty { parts.append(why) }
                if !parts.isEmpty { message += " (last termination: \(parts.joined(separator: ", ")))" }
            }
            // The kubelet's latest Warning often says more (the image name, the missing key).
            if let event = events(of: pod, in: allEvents).last(where: { $0.type == "Warning" && ["Failed", "BackOff", "InspectFailed"].contains($0.reason ?? "") }),
               let text = event.message, !text.isEmpty, !message.contains(text) {
                message += "; event \(event.reason ?? ""): \(text)"
            }
            return BackendFailure(reason: reason, message: message)
        }
        return nil
    }

    /// Deployment-level failures: the ReplicaSet can't create Pods (quota, admission), or the rollout
    /// ran past its progress deadline.
    static func deploymentFailure(_ deployment: Deployment) -> BackendFailure? {
        let conditions = deployment.status?.conditions ?? []
        if let c = conditions.first(where: { $0.type == "ReplicaFailure" && $0.status == "True" }) {
            return BackendFailure(reason: c.reason ?? "ReplicaFailure", message: c.message ?? "")
        }
        if let c = conditions.first(where: { $0.type == "Progressing" && $0.status == "False" && $0.reason == "ProgressDeadlineExceeded" }) {
            return BackendFailure(reason: "ProgressDeadlineExceeded", message: c.message ?? "")
        }
        return nil
    }

    /// The first non-fatal explanation of a slow wake.
    static func notice(live: [Pod], events allEvents: [Event], failingButServing: BackendFailure?) -> String? {
        for pod in live where !isScheduled(pod) {
            let condition = pod.status?.conditions?.first { $0.type == "PodScheduled" }
            let event = events(of: pod, in: allEvents).last { $0.reason == "FailedScheduling" }
            let reason = condition?.reason ?? "Unschedulable"
            if let message = condition?.message ?? event?.message, !message.isEmpty {
                return "\(reason): \(message)"
            }
            if condition?.reason != nil { return reason }
        }
        if let failingButServing { return failingButServing.description }
        for pod in live where !pod.isReady {
            if let event = events(of: pod, in: allEvents).last(where: { $0.type == "Warning" && noticeEventReasons.contains($0.reason ?? "") }),
               let reason = event.reason {
                return event.message.map { "\(reason): \($0)" } ?? reason
            }
        }
        for pod in live where !pod.isReady {
            for container in pod.status?.containerStatuses ?? [] where container.restartCount > 0 && container.state?.running != nil {
                var text = "pod \(pod.metadata.name ?? "?") container \(container.name) restarted \(container.restartCount) time\(container.restartCount == 1 ? "" : "s")"
                if let last = container.lastState?.terminated {
                    let parts = [last.exitCode.map { "exit code \($0)" }, last.reason].compactMap { $0 }
                    if !parts.isEmpty { text += " (last: \(parts.joined(separator: ", ")))" }
                }
                return text
            }
        }
        return nil
    }
}
