import Foundation
import Shared
import Testing
@testable import ChillServer

/// Builders for Pods, Events and Deployments as the API server returns them.
enum DiagnosisFixture {
    static let podName = "vllm-67678f4f6-jc4md"

    static func decode<T: Decodable>(_ value: JSONValue) -> T {
        do { return try value.decode(as: T.self) } catch { fatalError("fixture does not decode: \(error)") }
    }

    static func deployment(replicas: Int = 1, ready: Int? = nil, conditions: [JSONValue] = []) -> Deployment {
        var status: [String: JSONValue] = ["conditions": .array(conditions)]
        if let ready { status["readyReplicas"] = .int(ready) }
        return decode([
            "metadata": ["name": "vllm", "namespace": "models"],
            "spec": ["replicas": .int(replicas), "selector": ["matchLabels": ["app": "vllm"]],
                     "template": ["metadata": ["labels": ["app": "vllm"]], "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.6.3"]]]]],
            "status": .object(status),
        ])
    }

    enum ContainerState {
        case waiting(String, String? = nil)
        case running
        case terminated(exitCode: Int, reason: String)
    }

    static func container(_ state: ContainerState, name: String = "vllm", ready: Bool = false, restarts: Int = 0,
                          lastExit: (Int, String)? = nil) -> JSONValue {
        var c: [String: JSONValue] = ["name": .string(name), "ready": .bool(ready), "restartCount": .int(restarts),
                                      "image": "vllm/vllm-openai:v0.6.3"]
        switch state {
        case .waiting(let reason, let message):
            var w: [String: JSONValue] = ["reason": .string(reason)]
            if let message { w["message"] = .string(message) }
            c["state"] = ["waiting": .object(w)]
        case .running:
            c["state"] = ["running": ["startedAt": "2026-11-22T23:16:17Z"]]
        case .terminated(let code, let reason):
            c["state"] = ["terminated": ["exitCode": .int(code), "reason": .string(reason)]]
        }
        if let (code, reason) = lastExit {
            c["lastState"] = ["terminated": ["exitCode": .int(code), "reason": .string(reason)]]
        }
        return .object(c)
    }

    /// scheduled: nil = no PodScheduled condition yet; false = Unschedulable with `unschedulable` as the message.
    static func pod(_ name: String = podName, phase: String = "Running", scheduled: Bool? = true,
                    unschedulable: String = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    ready: Bool = false, containers: [JSONValue] = [], initContainers: [JSONValue]? = nil,
                    deleting: Bool = false, owner: String = "vllm-67678f4f6") -> Pod {
        var conditions: [JSONValue] = []
        if let scheduled {
            conditions.append(scheduled
                ? ["type": "PodScheduled", "status": "True"]
                : ["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": .string(unschedulable)])
        }
        if scheduled == true {
            conditions.append(["type": "Ready", "status": ready ? "True" : "False"])
        }
        var metadata: [String: JSONValue] = [
            "name": .string(name), "namespace": "models", "uid": .string("uid-" + name), "labels": ["app": "vllm"],
            "ownerReferences": [["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(owner), "uid": "rs"]],
        ]
        if deleting { metadata["deletionTimestamp"] = "2026-11-22T23:20:00Z" }
        var status: [String: JSONValue] = ["phase": .string(phase), "conditions": .array(conditions),
                                           "containerStatuses": .array(containers)]
        if let initContainers { status["initContainerStatuses"] = .array(initContainers) }
        var spec: [String: JSONValue] = ["containers": [["name": "vllm"]]]
        if scheduled == true { spec["nodeName"] = "gpu-node-1" }
        return decode(["metadata": .object(metadata), "spec": .object(spec), "status": .object(status)])
    }

    static func event(_ reason: String, _ message: String, pod: String = podName, type: String = "Normal") -> Event {
        decode([
            "metadata": ["name": .string("\(pod).\(reason).\(message.count)"), "namespace": "models"],
            "involvedObject": ["kind": "Pod", "name": .string(pod), "namespace": "models"],
            "reason": .string(reason), "message": .string(message), "type": .string(type),
        ])
    }
}

@Suite struct PodDiagnosisTests {
    typealias F = DiagnosisFixture

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var deployment: Deployment?
        var pods: [Pod] = []
        var events: [Event] = []
        var healthy = false
        // Expectations
        var desired: Int
        var ready = 0
        var pending = 0
        var failure: String? = nil
        var failureMentions: [String] = []
        var notice: String? = nil
        var noticeMentions: [String] = []
        var progress: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "idle: 0 replicas, no pods", deployment: F.deployment(replicas: 0), desired: 0, progress: nil),
        Case(name: "scaled up, no pod created yet", deployment: F.deployment(), desired: 1, progress: "Pending"),
        Case(name: "Unschedulable for lack of GPUs is a notice, not a failure",
             deployment: F.deployment(), pods: [F.pod(phase: "Pending", scheduled: false)],
             events: [F.event("FailedScheduling", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", type: "Warning")],
             desired: 1, pending: 1, notice: "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", progress: "Pending"),
        Case(name: "Unschedulable known only from the FailedScheduling event",
             deployment: F.deployment(), pods: [F.pod(phase: "Pending", scheduled: nil)],
             events: [F.event("FailedScheduling", "0/1 nodes are available: 1 node(s) had untolerated taint.", type: "Warning")],
             desired: 1, pending: 1, noticeMentions: ["untolerated taint"], progress: "Pending"),
        Case(name: "pod not yet scheduled, no condition", deployment: F.deployment(), pods: [F.pod(phase: "Pending", scheduled: nil)],
             desired: 1, pending: 1, progress: "Pending"),
        Case(name: "scheduled, container creating", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])],
             events: [F.event("Scheduled", "Successfully assigned models/vllm to gpu-node-1")],
             desired: 1, pending: 1, progress: "Scheduled"),
        Case(name: "pulling the image", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])],
             events: [F.event("Scheduled", "assigned"), F.event("Pulling", "Pulling image \"vllm/vllm-openai:v0.6.3\"")],
             desired: 1, pending: 1, progress: "Pulling image"),
        Case(name: "image pulled, container starting", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])],
             events: [F.event("Pulling", "Pulling image"), F.event("Pulled", "Successfully pulled image"), F.event("Created", "Created container vllm")],
             desired: 1, pending: 1, progress: "Starting"),
        Case(name: "init container running", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("PodInitializing"))],
                          initContainers: [F.container(.running, name: "download-weights")])],
             desired: 1, pending: 1, progress: "Starting"),
        Case(name: "container running, /health not 200: loading the model", deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.running)])],
             desired: 1, pending: 1, progress: "Loading model"),
        Case(name: "Deployment ready but /health not 200: not ready", deployment: F.deployment(ready: 1),
             pods: [F.pod(ready: true, containers: [F.container(.running, ready: true)])],
             healthy: false, desired: 1, ready: 0, pending: 1, progress: "Loading model"),
        Case(name: "healthy but the Deployment not ready yet: not ready", deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.running)])],
             healthy: true, desired: 1, ready: 0, pending: 1, progress: "Loading model"),
        Case(name: "Deployment ready and /health 200: ready", deployment: F.deployment(ready: 1),
             pods: [F.pod(ready: true, containers: [F.container(.running, ready: true)])],
             healthy: true, desired: 1, ready: 1, pending: 0, progress: "Ready"),
        Case(name: "CrashLoopBackOff fails with the exit code and the kubelet's event",
             deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.waiting("CrashLoopBackOff", "back-off 40s restarting failed container=vllm"),
                                                   restarts: 3, lastExit: (1, "Error"))])],
             events: [F.event("BackOff", "Back-off restarting failed container vllm in pod vllm-67678f4f6-jc4md_models", type: "Warning")],
             desired: 1, pending: 1, failure: "CrashLoopBackOff",
             failureMentions: ["vllm-67678f4f6-jc4md", "container vllm", "back-off 40s", "exit code 1", "Error", "event BackOff"],
             progress: "Starting"),
        Case(name: "OOMKilled crash loop names OOMKilled", deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.waiting("CrashLoopBackOff"), restarts: 2, lastExit: (137, "OOMKilled"))])],
             desired: 1, pending: 1, failure: "CrashLoopBackOff", failureMentions: ["exit code 137", "OOMKilled"], progress: "Starting"),
        Case(name: "ImagePullBackOff fails, naming the image from the Failed event",
             deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ImagePullBackOff", "Back-off pulling image \"vllm/vllm-openai:v9\""))])],
             events: [F.event("Pulling", "Pulling image \"vllm/vllm-openai:v9\""),
                      F.event("Failed", "Failed to pull image \"vllm/vllm-openai:v9\": not found", type: "Warning"),
                      F.event("BackOff", "Back-off pulling image \"vllm/vllm-openai:v9\"", type: "Warning")],
             desired: 1, pending: 1, failure: "ImagePullBackOff", failureMentions: ["vllm/vllm-openai:v9"], progress: "Pulling image"),
        Case(name: "ErrImagePull", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ErrImagePull", "manifest unknown"))])],
             desired: 1, pending: 1, failure: "ErrImagePull", failureMentions: ["manifest unknown"], progress: "Scheduled"),
        Case(name: "InvalidImageName", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("InvalidImageName", "couldn't parse image name \"VLLM:\""))])],
             desired: 1, pending: 1, failure: "InvalidImageName", failureMentions: ["VLLM:"], progress: "Scheduled"),
        Case(name: "CreateContainerConfigError (missing secret)", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("CreateContainerConfigError", "secret \"hf-token\" not found"))])],
             desired: 1, pending: 1, failure: "CreateContainerConfigError", failureMentions: ["hf-token"], progress: "Scheduled"),
        Case(name: "a failing init container fails the wake", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("PodInitializing"))],
                          initContainers: [F.container(.waiting("ImagePullBackOff", "Back-off pulling image \"busybox:nope\""), name: "init")])],
             desired: 1, pending: 1, failure: "ImagePullBackOff", failureMentions: ["container init", "busybox:nope"], progress: "Scheduled"),
        Case(name: "a broken new pod next to a serving one is a notice (rolling update)",
             deployment: F.deployment(ready: 1),
             pods: [F.pod("vllm-67678f4f6-aaaaa", ready: true, containers: [F.container(.running, ready: true)]),
                    F.pod("vllm-5f5f5f5f5-bbbbb", phase: "Pending", containers: [F.container(.waiting("ImagePullBackOff", "Back-off"))], owner: "vllm-5f5f5f5f5")],
             healthy: true, desired: 1, ready: 1, pending: 1, noticeMentions: ["ImagePullBackOff"], progress: "Ready"),
        Case(name: "transient waiting reasons are no failure", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])],
             desired: 1, pending: 1, progress: "Scheduled"),
        Case(name: "FailedMount is a notice", deployment: F.deployment(),
             pods: [F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])],
             events: [F.event("FailedMount", "MountVolume.SetUp failed for volume \"cache\": pvc not bound", type: "Warning")],
             desired: 1, pending: 1, notice: "FailedMount: MountVolume.SetUp failed for volume \"cache\": pvc not bound", progress: "Scheduled"),
        Case(name: "a restarted, running container is a notice", deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.running, restarts: 2, lastExit: (137, "OOMKilled"))])],
             desired: 1, pending: 1, noticeMentions: ["restarted 2 times", "OOMKilled"], progress: "Loading model"),
        Case(name: "events of another (old) pod are ignored", deployment: F.deployment(),
             pods: [F.pod(containers: [F.container(.running)])],
             events: [F.event("Failed", "Failed to pull image", pod: "vllm-67678f4f6-oldpd", type: "Warning"),
                      F.event("FailedMount", "old", pod: "vllm-67678f4f6-oldpd", type: "Warning")],
             desired: 1, pending: 1, progress: "Loading model"),
        Case(name: "scaling down: a terminating pod still counts (it holds the GPU)", deployment: F.deployment(replicas: 0, ready: 1),
             pods: [F.pod(ready: true, containers: [F.container(.running, ready: true)], deleting: true)],
             healthy: true, desired: 0, ready: 1, pending: 0, progress: "Stopping"),
        Case(name: "scaling down, not ready any more", deployment: F.deployment(replicas: 0),
             pods: [F.pod(containers: [F.container(.running)], deleting: true)],
             desired: 0, pending: 1, progress: "Stopping"),
        Case(name: "a crash-looping pod at 0 replicas is no failure", deployment: F.deployment(replicas: 0),
             pods: [F.pod(containers: [F.container(.waiting("CrashLoopBackOff"))], deleting: true)],
             desired: 0, pending: 1, progress: "Stopping"),
        Case(name: "an Evicted pod doesn't count; its replacement does", deployment: F.deployment(),
             pods: [F.pod("vllm-67678f4f6-evict", phase: "Failed", containers: [F.container(.terminated(exitCode: 137, reason: "Evicted"))]),
                    F.pod(phase: "Pending", scheduled: false)],
             desired: 1, pending: 1, noticeMentions: ["Insufficient nvidia.com/gpu"], progress: "Pending"),
        Case(name: "the Deployment is missing", deployment: nil, desired: 0, failure: "DeploymentNotFound", failureMentions: ["vllm"], progress: nil),
        Case(name: "ReplicaFailure (quota) fails the wake",
             deployment: F.deployment(conditions: [["type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                                    "message": "pods \"vllm-x\" is forbidden: exceeded quota: gpu"]]),
             desired: 1, failure: "FailedCreate", failureMentions: ["exceeded quota"], progress: "Pending"),
        Case(name: "ProgressDeadlineExceeded fails the wake",
             deployment: F.deployment(conditions: [["type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                                    "message": "ReplicaSet \"vllm-x\" has timed out progressing."]]),
             pods: [F.pod(containers: [F.container(.running)])],
             desired: 1, pending: 1, failure: "ProgressDeadlineExceeded", progress: "Loading model"),
        Case(name: "two replicas, one ready and healthy", deployment: F.deployment(replicas: 2, ready: 1),
             pods: [F.pod("vllm-67678f4f6-aaaaa", ready: true, containers: [F.container(.running, ready: true)]),
                    F.pod("vllm-67678f4f6-bbbbb", containers: [F.container(.running)])],
             healthy: true, desired: 2, ready: 1, pending: 1, progress: "Ready"),
    ]

    @Test(arguments: cases)
    func diagnose(_ c: Case) {
        let status = PodDiagnosis.status(deploymentName: "vllm", deployment: c.deployment, pods: c.pods, events: c.events, healthy: c.healthy)
        #expect(status.desiredReplicas == c.desired)
        #expect(status.readyReplicas == c.ready)
        #expect(status.pendingReplicas == c.pending)
        #expect(status.failure?.reason == c.failure)
        for word in c.failureMentions {
            #expect(status.failure?.message.contains(word) == true, "failure message \(status.failure?.message ?? "nil") lacks \(word)")
        }
        if let notice = c.notice { #expect(status.notice == notice) }
        if c.notice == nil && c.noticeMentions.isEmpty { #expect(status.notice == nil) }
        for word in c.noticeMentions {
            #expect(status.notice?.contains(word) == true, "notice \(status.notice ?? "nil") lacks \(word)")
        }
        #expect(status.progress == c.progress)
    }

    @Test func latestPullEventWins() {
        let pod = F.pod(phase: "Pending", containers: [F.container(.waiting("ContainerCreating"))])
        #expect(PodDiagnosis.step(of: pod, events: [F.event("Pulled", "a"), F.event("Pulling", "b")], healthy: false) == .pullingImage)
        #expect(PodDiagnosis.step(of: pod, events: [F.event("Pulling", "b"), F.event("Pulled", "a")], healthy: false) == .starting)
    }

    @Test func healthTrackerNeedsOneSuccessToWakeAndThresholdFailuresToLose() {
        var tracker = HealthTracker()
        var changed = false
        let policy = HealthProbePolicy(wakingInterval: .milliseconds(100), readyInterval: .seconds(2), failureThreshold: 3)
        #expect(tracker.record(.unreachable("connection refused"), threshold: 3) == false)
        #expect(!tracker.healthy)
        #expect(tracker.nextInterval(policy) == .milliseconds(100))
        changed = tracker.record(.healthy, threshold: 3)
        #expect(changed)
        #expect(tracker.healthy)
        #expect(tracker.nextInterval(policy) == .seconds(2))
        // One slow answer under load doesn't take it out of service; re-probed quickly.
        changed = tracker.record(.unreachable("timed out"), threshold: 3)
        #expect(!changed)
        #expect(tracker.healthy)
        #expect(tracker.nextInterval(policy) == .milliseconds(100))
        changed = tracker.record(.healthy, threshold: 3)
        #expect(!changed)
        changed = tracker.record(.unhealthy(status: 503), threshold: 3)
        #expect(!changed)
        changed = tracker.record(.unhealthy(status: 503), threshold: 3)
        #expect(!changed)
        changed = tracker.record(.unhealthy(status: 503), threshold: 3)
        #expect(changed)
        #expect(!tracker.healthy)
    }

    @Test(.timeLimit(.minutes(1))) func loopSignalWakesAWaiterAndTimesOut() async {
        let signal = LoopSignal()
        // A signal before the wait is not lost.
        signal.signal()
        await signal.wait(timeout: nil)
        // A timeout returns.
        let start = ContinuousClock.now
        await signal.wait(timeout: .milliseconds(50))
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        // A signal wakes a parked waiter.
        async let woke: Void = signal.wait(timeout: nil)
        try? await Task.sleep(for: .milliseconds(20))
        signal.signal()
        await woke
    }

    @Test func statusBroadcasterSendsTheCurrentStatusFirstThenOnlyChanges() async {
        let broadcaster = StatusBroadcaster()
        broadcaster.publish(BackendStatus(desiredReplicas: 1))
        let stream = broadcaster.subscribe()
        broadcaster.publish(BackendStatus(desiredReplicas: 1))
        broadcaster.publish(BackendStatus(desiredReplicas: 1, pendingReplicas: 1))
        broadcaster.finish()
        var seen: [BackendStatus] = []
        for await status in stream { seen.append(status) }
        #expect(seen == [BackendStatus(desiredReplicas: 1), BackendStatus(desiredReplicas: 1, pendingReplicas: 1)])
    }
}
