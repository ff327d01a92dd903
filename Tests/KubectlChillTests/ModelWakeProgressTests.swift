import Foundation
import Testing
@testable import kubectl_chill
@testable import Shared

/// The phase derivation behind `wait`, table-tested without a cluster.
@Suite struct ModelWakeProgressTests {
    static func model(_ phase: VLLMModel.Phase?, ready: Int = 0, message: String? = nil) -> VLLMModel {
        VLLMModel(metadata: ObjectMeta(name: "qwen"), spec: VLLMModelSpec(modelName: "m"),
                  status: phase.map { VLLMModelStatus(phase: $0, readyReplicas: ready, message: message) })
    }

    static func pod(_ name: String = "vllm-qwen-1-a", scheduled: String? = nil, unschedulable: String? = nil, containers: [Pod.ContainerStatus]? = nil,
                    initContainers: [Pod.ContainerStatus]? = nil, ready: Bool = false, phase: String? = nil, deleting: Bool = false) -> Pod {
        var conditions: [Pod.PodCondition] = []
        if let scheduled { conditions.append(.init(type: "PodScheduled", status: scheduled)) }
        if let unschedulable { conditions.append(.init(type: "PodScheduled", status: "False", reason: "Unschedulable", message: unschedulable)) }
        if ready { conditions.append(.init(type: "Ready", status: "True")) }
        var status = Pod.Status(phase: phase, conditions: conditions, containerStatuses: containers)
        status.initContainerStatuses = initContainers
        var meta = ObjectMeta(name: name)
        if deleting { meta.deletionTimestamp = "2030-01-01T00:00:00Z" }
        return Pod(metadata: meta, status: status)
    }

    static func container(waiting: String? = nil, message: String? = nil, running: Bool = false, ready: Bool = false, exitCode: Int? = nil) -> Pod.ContainerStatus {
        var json: JSONValue = ["name": "vllm", "ready": .bool(ready), "restartCount": 0, "state": [:]]
        if let waiting { json["state"] = ["waiting": ["reason": .string(waiting), "message": message.map(JSONValue.string) ?? .null]] }
        if running { json["state"] = ["running": ["startedAt": "2030-01-01T00:00:00Z"]] }
        if let exitCode { json["lastState"] = ["terminated": ["exitCode": .int(exitCode), "reason": "Error"]] }
        return try! json.decode()
    }

    static func event(_ reason: String, _ message: String = "", at time: String, pod: String = "vllm-qwen-1-a", type: String = "Normal", kind: String = "Pod") -> Event {
        var e = Event(metadata: ObjectMeta(name: "\(pod).\(reason)"), involvedObject: ObjectReference(kind: kind, name: pod), reason: reason, message: message, type: type)
        e.lastTimestamp = time
        return e
    }

    static let pulling = event("Pulling", "Pulling image \"vllm/vllm-openai:v0.12.0\"", at: "2030-01-01T00:00:01Z")
    static let pulled = event("Pulled", "Successfully pulled image", at: "2030-01-01T00:00:30Z")

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var model: VLLMModel?
        var pods: [Pod] = []
        var events: [Event] = []
        var expected: WakeState
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "ready model", model: model(.ready, ready: 1), pods: [pod(scheduled: "True", ready: true)], expected: .ready),
        Case(name: "Ready phase without ready replicas is not ready", model: model(.ready, ready: 0), expected: .progress(.pending, detail: "waiting for chill-server to scale up")),
        Case(name: "deleted model", model: nil, expected: .failed(cause: "model \"qwen\" was deleted", pod: nil)),
        Case(name: "no pods, waking", model: model(.waking), expected: .progress(.pending, detail: "waiting for a pod")),
        Case(name: "no pods, scaled down", model: model(.scaledDown), expected: .progress(.pending, detail: "waiting for chill-server to scale up")),
        Case(name: "no pods, replica set cannot create", model: model(.waking),
             events: [event("FailedCreate", "pods \"vllm-qwen-1-\" is forbidden: exceeded quota", at: "2030-01-01T00:00:01Z", pod: "vllm-qwen-7d9f8", type: "Warning", kind: "ReplicaSet")],
             expected: .progress(.pending, detail: "FailedCreate: pods \"vllm-qwen-1-\" is forbidden: exceeded quota")),
        Case(name: "pod not scheduled yet", model: model(.waking), pods: [pod()], expected: .progress(.pending, detail: nil)),
        Case(name: "unschedulable waits for capacity", model: model(.waking), pods: [pod(unschedulable: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")],
             expected: .progress(.pending, detail: "unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu. (waiting for capacity)")),
        Case(name: "scheduled", model: model(.waking), pods: [pod(scheduled: "True")], expected: .progress(.scheduled, detail: nil)),
        Case(name: "pulling", model: model(.waking), pods: [pod(scheduled: "True", containers: [container(waiting: "ContainerCreating")])], events: [pulling],
             expected: .progress(.pullingImage, detail: "pulling vllm/vllm-openai:v0.12.0")),
        Case(name: "pulled, creating the container", model: model(.waking), pods: [pod(scheduled: "True", containers: [container(waiting: "ContainerCreating")])], events: [pulling, pulled],
             expected: .progress(.starting, detail: nil)),
        Case(name: "image already present", model: model(.waking), pods: [pod(scheduled: "True", containers: [container(waiting: "PodInitializing")])],
             expected: .progress(.starting, detail: nil)),
        Case(name: "init container running", model: model(.waking), pods: [pod(scheduled: "True", initContainers: [Self.initRunning])],
             expected: .progress(.starting, detail: "init container fetch")),
        Case(name: "pulling events of another pod are ignored", model: model(.waking), pods: [pod(scheduled: "True")],
             events: [event("Pulling", "x", at: "2030-01-01T00:00:01Z", pod: "vllm-qwen-old")], expected: .progress(.scheduled, detail: nil)),
        Case(name: "running, not ready: loading the model", model: model(.waking), pods: [pod(scheduled: "True", containers: [container(running: true)], phase: "Running")],
             events: [pulling, pulled], expected: .progress(.loadingModel, detail: nil)),
        Case(name: "pod ready, model not yet", model: model(.waking), pods: [pod(scheduled: "True", containers: [container(running: true, ready: true)], ready: true)],
             expected: .progress(.loadingModel, detail: "pod ready, waiting for chill-server")),
        Case(name: "the furthest pod wins", model: model(.waking),
             pods: [pod("vllm-qwen-1-a", scheduled: "True"), pod("vllm-qwen-1-b", scheduled: "True", containers: [container(running: true)])],
             expected: .progress(.loadingModel, detail: nil)),
        Case(name: "terminating pods are ignored", model: model(.waking),
             pods: [pod("vllm-qwen-1-a", scheduled: "True", containers: [container(waiting: "CrashLoopBackOff", message: "back-off")], deleting: true)],
             expected: .progress(.pending, detail: "waiting for a pod")),
        Case(name: "crash loop", model: model(.waking),
             pods: [pod(scheduled: "True", containers: [container(waiting: "CrashLoopBackOff", message: "back-off 40s restarting failed container=vllm", exitCode: 1)])],
             expected: .failed(cause: "pod vllm-qwen-1-a: CrashLoopBackOff: back-off 40s restarting failed container=vllm; last exit code 1 (Error)", pod: "vllm-qwen-1-a")),
        Case(name: "image pull error takes the event's message when the status has none", model: model(.waking),
             pods: [pod(scheduled: "True", containers: [container(waiting: "ErrImagePull")])],
             events: [event("Failed", "Failed to pull image \"x:v9\": not found", at: "2030-01-01T00:00:02Z", type: "Warning")],
             expected: .failed(cause: "pod vllm-qwen-1-a: ErrImagePull: Failed to pull image \"x:v9\": not found", pod: "vllm-qwen-1-a")),
        Case(name: "image pull back-off", model: model(.waking),
             pods: [pod(scheduled: "True", containers: [container(waiting: "ImagePullBackOff", message: "Back-off pulling image \"x:v9\"")])],
             expected: .failed(cause: "pod vllm-qwen-1-a: ImagePullBackOff: Back-off pulling image \"x:v9\"", pod: "vllm-qwen-1-a")),
        Case(name: "evicted pod", model: model(.waking), pods: [pod(scheduled: "True", phase: "Failed")],
             expected: .failed(cause: "pod vllm-qwen-1-a failed: see kubectl describe pod", pod: "vllm-qwen-1-a")),
        Case(name: "model marked failed", model: model(.failed, message: "wake timed out after 10m"), expected: .failed(cause: "wake timed out after 10m", pod: nil)),
    ]

    static let initRunning: Pod.ContainerStatus = {
        let json: JSONValue = ["name": "fetch", "ready": false, "restartCount": 0, "state": ["running": [:]]]
        return try! json.decode()
    }()

    @Test(arguments: cases) func derive(_ c: Case) {
        #expect(WakeProgress.derive(modelName: "qwen", model: c.model, pods: c.pods, events: c.events) == c.expected)
    }

    @Test func aFailedPhaseLeftFromAnEarlierWakeIsIgnoredWhenAsked() {
        let state = WakeProgress.derive(modelName: "qwen", model: Self.model(.failed, message: "old"), pods: [], events: [], modelFailureCounts: false)
        #expect(state == .progress(.pending, detail: "waiting for chill-server to scale up"))
    }

    @Test func phasesAreOrdered() {
        #expect(WakePhase.allCases.map(\.label) == ["Pending", "Scheduled", "Pulling image", "Starting", "Loading model", "Ready"])
        #expect(WakePhase.allCases == WakePhase.allCases.sorted())
    }

    @Test func etaComesFromTheLastWake() {
        #expect(WakeProgress.eta(elapsed: 17, lastWake: 52) == "~35s left, last wake took 52s")
        #expect(WakeProgress.eta(elapsed: 60, lastWake: 52) == "taking longer than the last wake (52s)")
        #expect(WakeProgress.eta(elapsed: 10, lastWake: nil) == nil)
        #expect(WakeProgress.eta(elapsed: 10, lastWake: 155) == "~2m25s left, last wake took 2m35s")
        #expect(WakeProgress.line(.progress(.pullingImage, detail: nil), elapsed: 17, lastWake: 52) == "Pulling image (17s, ~35s left, last wake took 52s)")
        #expect(WakeProgress.line(.progress(.scheduled, detail: nil), elapsed: 3, lastWake: nil) == "Scheduled (3s)")
        #expect(WakeProgress.line(.ready, elapsed: 47, lastWake: 52) == "Ready (after 47s)")
    }

    @Test func durations() {
        #expect(wakeDuration(seconds: 42.4) == "42s")
        #expect(wakeDuration(seconds: 155) == "2m35s")
        #expect(wakeDuration(seconds: 180) == "3m")
        // kubectl's HumanDuration: minutes up to 3h, then hours and minutes up to 8h, then days.
        #expect(wakeDuration(seconds: 3900) == "65m")
        #expect(wakeDuration(seconds: 5 * 3600 + 30 * 60) == "5h30m")
        #expect(humanDuration(seconds: 52 * 3600) == "2d4h")
        #expect(humanDuration(seconds: 30 * 86400) == "30d")
        // Instants are RFC 3339, as in every other line chill prints.
        #expect(WakeWaiter.clockTime(ModelHarness.now) == "2030-01-01T12:00:00Z")
    }
}
