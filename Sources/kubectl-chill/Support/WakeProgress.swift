import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The phases `kubectl chill wait` shows, in the order a wake goes through them.
enum WakePhase: Int, Comparable, CaseIterable, Sendable {
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

    static func < (a: WakePhase, b: WakePhase) -> Bool { a.rawValue < b.rawValue }
}

/// Where a wake stands, derived from the model, its pods and their events.
enum WakeState: Equatable, Sendable {
    case progress(WakePhase, detail: String?)
    /// status.phase Ready and readyReplicas >= 1.
    case ready
    /// The wake cannot succeed without a change: the cause, one line, and the pod it is about.
    case failed(cause: String, pod: String?)

    var phase: WakePhase? {
        switch self {
        case .progress(let phase, _): phase
        case .ready: .ready
        case .failed: nil
        }
    }
}

/// The pure part of `wait`: no I/O, table-tested in `ModelWakeProgressTests`.
enum WakeProgress {
    /// Container waiting reasons that do not fix themselves: the wake has failed.
    static let fatalWaitingReasons: Set<String> = [
        "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
        "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    ]

    /// The state of the wake of `modelName`.
    /// - Parameters:
    ///   - model: the VLLMModel (nil: deleted).
    ///   - pods: pods labelled `chill.dev/model=<name>`; terminating ones are ignored.
    ///   - events: events of the install namespace (those about other objects are ignored).
    ///   - modelFailureCounts: false while `status.phase: Failed` may be left over from an earlier wake.
    static func derive(modelName: String, model: VLLMModel?, pods: [Pod], events: [Event], modelFailureCounts: Bool = true) -> WakeState {
        guard let model else { return .failed(cause: "model \"\(modelName)\" was deleted", pod: nil) }
        if model.isServing { return .ready }
        let live = pods.filter { $0.metadata.deletionTimestamp == nil }.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        for pod in live {
            if let cause = failure(of: pod, events: events) { return .failed(cause: cause, pod: pod.metadata.name) }
        }
        if model.phase == .failed && modelFailureCounts {
            return .failed(cause: model.status?.message ?? "chill-server marked the wake as failed", pod: nil)
        }
        guard !live.isEmpty else {
            let deployment = ChillContract.deploymentName(model: modelName)
            let warning = events.filter { e in
                e.type == "Warning" && (e.involvedObject.name == deployment || (e.involvedObject.kind == "ReplicaSet" && (e.involvedObject.name ?? "").hasPrefix(deployment + "-")))
            }.max { timestamp($0) < timestamp($1) }
            if let warning { return .progress(.pending, detail: "\(warning.reason ?? "Warning"): \(oneLine(warning.message ?? ""))") }
            return .progress(.pending, detail: model.phase == .waking ? "waiting for a pod" : "waiting for chill-server to scale up")
        }
        var best: (WakePhase, String?) = (.pending, nil)
        for pod in live {
            let candidate = phase(of: pod, events: events)
            if candidate.0 > best.0 || (candidate.0 == best.0 && best.1 == nil) { best = candidate }
        }
        return .progress(best.0, detail: best.1)
    }

    /// One pod's phase (a pod that is Ready is `loadingModel` until chill-server marks the model Ready).
    static func phase(of pod: Pod, events allEvents: [Event]) -> (WakePhase, String?) {
        let events = eventsOf(pod, in: allEvents)
        let status = pod.status
        if pod.isReady { return (.loadingModel, "pod ready, waiting for chill-server") }
        let scheduled = status?.conditions?.first { $0.type == "PodScheduled" }
        if let scheduled, scheduled.status != "True" {
            if scheduled.reason == "Unschedulable" {
                return (.pending, "unschedulable: \(oneLine(scheduled.message ?? "no node fits")) (waiting for capacity)")
            }
            return (.pending, nil)
        }
        if scheduled == nil && !events.contains(where: { $0.reason == "Scheduled" }) && (pod.spec?["nodeName"]?.stringValue ?? "").isEmpty {
            return (.pending, nil)
        }
        let pulling = isPulling(events)
        if let running = status?.initContainerStatuses?.first(where: { $0.state?.running != nil }) {
            return (.starting, "init container \(running.name)")
        }
        let containers = status?.containerStatuses ?? []
        if containers.contains(where: { $0.state?.running != nil && !$0.ready }) { return (.loadingModel, nil) }
        if pulling.active { return (.pullingImage, pulling.image.map { "pulling \($0)" }) }
        if let waiting = containers.compactMap({ $0.state?.waiting }).first {
            switch waiting.reason {
            case "ContainerCreating", "PodInitializing", nil: return (.starting, nil)
            default: return (.starting, waiting.reason)
            }
        }
        if let terminated = containers.compactMap({ $0.state?.terminated }).first {
            return (.starting, "container exited\(terminated.exitCode.map { " (exit code \($0))" } ?? ""), restarting")
        }
        if containers.isEmpty && !pulling.pulled { return (.scheduled, nil) }
        return (.starting, nil)
    }

    /// A one-line cause when the pod cannot start without a change, else nil.
    static func failure(of pod: Pod, events allEvents: [Event]) -> String? {
        let name = pod.metadata.name ?? "?"
        if pod.status?.phase == "Failed" {
            let reason = pod.status?.reason.map { "\($0): " } ?? ""
            return "pod \(name) failed: \(reason)\(oneLine(pod.status?.message ?? "see kubectl describe pod"))"
        }
        let statuses = (pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])
        for container in statuses {
            guard let waiting = container.state?.waiting, let reason = waiting.reason, fatalWaitingReasons.contains(reason) else { continue }
            let events = eventsOf(pod, in: allEvents).filter { $0.type == "Warning" }
            let latestWarning = events.max { timestamp($0) < timestamp($1) }?.message
            var message = waiting.message ?? latestWarning ?? ""
            if let exit = container.lastState?.terminated, let code = exit.exitCode {
                message += (message.isEmpty ? "" : "; ") + "last exit code \(code)" + (exit.reason.map { " (\($0))" } ?? "")
                if let text = exit.message, !text.isEmpty { message += ": " + text }
            }
            return "pod \(name): \(reason)" + (message.isEmpty ? "" : ": " + oneLine(message))
        }
        return nil
    }

    /// The hint printed after a failure.
    static func hint(cause: String, pod: String?, namespace: String, model: String) -> String {
        guard let pod else { return "see: kubectl describe vllmmodel \(model)" }
        if cause.contains("CrashLoopBackOff") || cause.contains("RunContainerError") {
            return "see the crash: kubectl logs -n \(namespace) \(pod) --previous"
        }
        if cause.contains("Image") { return "check spec.image of the model: kubectl get vllmmodel \(model) -o yaml" }
        return "see: kubectl describe pod -n \(namespace) \(pod)"
    }

    /// `~35s left, last wake took 52s`, from the previous wake's duration; nil before any wake was recorded.
    static func eta(elapsed: Double, lastWake: Double?) -> String? {
        guard let last = lastWake, last > 0 else { return nil }
        let left = last - elapsed
        if left >= 1 { return "~\(wakeDuration(seconds: left)) left, last wake took \(wakeDuration(seconds: last))" }
        return "taking longer than the last wake (\(wakeDuration(seconds: last)))"
    }

    /// The line shown for a state: `Pulling image — pulling vllm/vllm-openai:v0.12.0 (12s, ~35s left, last wake took 52s)`.
    static func line(_ state: WakeState, elapsed: Double, lastWake: Double?) -> String {
        switch state {
        case .ready: return "Ready (after \(wakeDuration(seconds: elapsed)))"
        case .failed(let cause, _): return "Failed: \(cause)"
        case .progress(let phase, let detail):
            let timing = [wakeDuration(seconds: elapsed)] + (eta(elapsed: elapsed, lastWake: lastWake).map { [$0] } ?? [])
            return phase.label + (detail.map { " — \($0)" } ?? "") + " (\(timing.joined(separator: ", ")))"
        }
    }

    // MARK: Helpers

    static func eventsOf(_ pod: Pod, in events: [Event]) -> [Event] {
        events.filter { e in
            e.involvedObject.name == pod.metadata.name && (e.involvedObject.kind == nil || e.involvedObject.kind == "Pod")
                && (e.involvedObject.uid == nil || pod.metadata.uid == nil || e.involvedObject.uid == pod.metadata.uid)
        }
    }

    /// A `Pulling` event with no `Pulled` at or after it: the kubelet is downloading the image.
    static func isPulling(_ events: [Event]) -> (active: Bool, pulled: Bool, image: String?) {
        let pulling = events.filter { $0.reason == "Pulling" }.max { timestamp($0) < timestamp($1) }
        let pulled = events.filter { $0.reason == "Pulled" }.max { timestamp($0) < timestamp($1) }
        guard let pulling else { return (false, pulled != nil, nil) }
        if let pulled, timestamp(pulled) >= timestamp(pulling) { return (false, true, nil) }
        let image = pulling.message.flatMap { text -> String? in
            guard let open = text.firstIndex(of: "\""), let close = text[text.index(after: open)...].firstIndex(of: "\"") else { return nil }
            return String(text[text.index(after: open)..<close])
        }
        return (true, pulled != nil, image)
    }

    static func timestamp(_ event: Event) -> String {
        event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? ""
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { line in
            var s = Substring(line)
            while let c = s.first, c.isWhitespace { s.removeFirst() }
            while let c = s.last, c.isWhitespace { s.removeLast() }
            return String(s)
        }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}
