import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// `wait` end to end: the test plays chill-server and the kubelet, step by step, through the API.
@Suite struct ModelWaitTests {
    static let ns = ModelHarness.namespace
    static let podsPath = "/api/v1/namespaces/\(ns)/pods"
    static let pod = "vllm-qwen-7d9f8-abcde"

    func podStatus(_ h: ModelHarness, _ status: JSONValue) async {
        let r = await h.server.handle("PATCH", "\(Self.podsPath)/\(Self.pod)/status", json: ["status": status], contentType: "application/merge-patch+json")
        #expect(r.status == 200, "\(r.text)")
    }

    func event(_ h: ModelHarness, _ name: String, reason: String, message: String, at time: String, uid: String?) async {
        let r = await h.server.handle("POST", "/api/v1/namespaces/\(Self.ns)/events", json: [
            "apiVersion": "v1", "kind": "Event", "metadata": ["name": .string(name)],
            "involvedObject": ["kind": "Pod", "name": .string(Self.pod), "namespace": .string(Self.ns), "uid": uid.map(JSONValue.string) ?? .null],
            "reason": .string(reason), "message": .string(message), "type": "Normal", "lastTimestamp": .string(time),
        ])
        #expect(r.status == 201, "\(r.text)")
    }

    /// Waits until the running command has printed a line containing `text`.
    func printed(_ console: Console, _ text: String) async -> Bool {
        await eventually(60) { console.output.contains(text) }
    }

    @Test func showsEachPhaseUntilReady() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B"], status: [
            "phase": "ScaledDown", "replicas": 0, "readyReplicas": 0, "lastWake": ["seconds": 52],
        ])
        let console = Console(capturing: ())
        let command = Task { await h.run(["wait", "qwen", "--timeout", "60s"], now: nil, console: console) }

        #expect(await printed(console, "qwen: Pending — waiting for chill-server to scale up"))
        let annotations = await h.get("\(ModelHarness.modelsPath)/qwen")?[path: "metadata", "annotations"]
        #expect(annotations?["chill.dev/requested-state"] == "awake")

        // chill-server scales up: a pod appears, not yet scheduled.
        await h.setStatus("qwen", ["phase": "Waking", "replicas": 1])
        let created = await h.server.handle("POST", Self.podsPath, json: [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": .string(Self.pod), "labels": ["chill.dev/model": "qwen"]],
            "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.12.0"]]],
        ])
        #expect(created.status == 201)
        let uid = created.json?[path: "metadata", "uid"]?.stringValue
        await podStatus(h, ["phase": "Pending", "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."]]])
        #expect(await printed(console, "qwen: Pending — unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu. (waiting for capacity)"))

        await podStatus(h, ["conditions": [["type": "PodScheduled", "status": "True"]]])
        #expect(await printed(console, "qwen: Scheduled ("))

        await event(h, "pull-1", reason: "Pulling", message: "Pulling image \"vllm/vllm-openai:v0.12.0\"", at: "2030-01-01T12:00:01Z", uid: uid)
        #expect(await printed(console, "qwen: Pulling image — pulling vllm/vllm-openai:v0.12.0 ("))

        await event(h, "pull-2", reason: "Pulled", message: "Successfully pulled image \"vllm/vllm-openai:v0.12.0\" in 20s", at: "2030-01-01T12:00:21Z", uid: uid)
        await podStatus(h, ["containerStatuses": [["name": "vllm", "ready": false, "restartCount": 0, "state": ["waiting": ["reason": "ContainerCreating"]]]]])
        #expect(await printed(console, "qwen: Starting ("))

        await podStatus(h, ["phase": "Running", "containerStatuses": [["name": "vllm", "ready": false, "restartCount": 0, "state": ["running": ["startedAt": "2030-01-01T12:00:22Z"]]]]])
        #expect(await printed(console, "qwen: Loading model ("))

        await h.setStatus("qwen", ["phase": "Ready", "readyReplicas": 1, "lastWake": ["seconds": 50]])
        let run = await command.value
        #expect(run.code == 0, "\(run.err)")
        let phases = run.out.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: "qwen: ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "(" && $0 != "—" }).trimmingCharacters(in: .whitespaces)
        }
        // Consecutive lines of one phase differ only in detail (how many depends on timing).
        let distinct = phases.enumerated().filter { $0.offset == 0 || phases[$0.offset - 1] != $0.element }.map(\.element)
        #expect(distinct == ["Pending", "Scheduled", "Pulling image", "Starting", "Loading model", "Ready"])
        #expect(run.out.hasPrefix("Waking \"qwen\" (last wake took 52s)…\n"))
        // Plain lines start with the RFC 3339 time (UTC) and carry the ETA from the last wake.
        let line = run.out.split(separator: "\n")[1]
        #expect(line.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  qwen: Pending — .* \(\d+s, (~\d+s left, last wake took 52s|taking longer .*)\)/) != nil, "\(line)")
    }

    @Test func aCrashLoopingPodFailsTheWaitNamingIt() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B"], status: ["phase": "Waking", "replicas": 1])
        h.server.simulator.setFailure(.crashLoopBackOff(restartCount: 4), namespace: Self.ns, deployment: "vllm-qwen")
        let r = await h.server.handle("POST", "/apis/apps/v1/namespaces/\(Self.ns)/deployments", json: [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "vllm-qwen"],
            "spec": [
                "replicas": 1, "selector": ["matchLabels": ["chill.dev/model": "qwen"]],
                "template": ["metadata": ["labels": ["chill.dev/model": "qwen"]], "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v0.12.0"]]]],
            ],
        ])
        #expect(r.status == 201, "\(r.text)")
        let pods = await h.get(Self.podsPath)?["items"]?.arrayValue ?? []
        let podName = pods.compactMap(\.objectName).first { $0.hasPrefix("vllm-qwen-") } ?? "?"

        let run = await h.run(["wait", "qwen", "--timeout", "30s"], now: nil)
        #expect(run.code == 1)
        #expect(run.err.hasPrefix("error: wake of \"qwen\" failed: pod \(podName): CrashLoopBackOff: back-off 40s restarting failed container=vllm"))
        #expect(run.err.contains("last exit code 1 (Error)"))
        #expect(run.err.hasSuffix("— see the crash: kubectl logs -n chill-system \(podName) --previous\n"))
        #expect(run.err.split(separator: "\n").count == 1)
        #expect(run.out.contains("qwen: Failed: pod \(podName): CrashLoopBackOff"))
    }

    @Test func anImagePullFailureFailsTheWait() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "Waking"])
        h.server.simulator.setFailure(.imagePullBackOff(), namespace: Self.ns, deployment: "vllm-qwen")
        _ = await h.server.handle("POST", "/apis/apps/v1/namespaces/\(Self.ns)/deployments", json: [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "vllm-qwen"],
            "spec": [
                "replicas": 1, "selector": ["matchLabels": ["chill.dev/model": "qwen"]],
                "template": ["metadata": ["labels": ["chill.dev/model": "qwen"]], "spec": ["containers": [["name": "vllm", "image": "vllm/vllm-openai:v9"]]]],
            ],
        ])
        let run = await h.run(["wait", "qwen", "--timeout", "30s"], now: nil)
        #expect(run.code == 1)
        #expect(run.err.contains("ImagePullBackOff: Back-off pulling image \"vllm/vllm-openai:v9\""))
        #expect(run.err.contains("— check spec.image of the model"))
    }

    @Test func timeoutExits1WithTheLastPhase() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "ScaledDown"])
        let started = ContinuousClock.now
        let run = await h.run(["wait", "qwen", "--timeout", "1s"], now: nil)
        #expect(run.code == 1)
        #expect(ContinuousClock.now - started < .seconds(60))  // exits, does not hang (loose: parallel tests on 2 cores)
        #expect(run.err == "error: \"qwen\" is not ready after 1s (last phase: Pending) — it may still be waking: kubectl chill wait qwen, or see: kubectl get pods -n chill-system -l chill.dev/model=qwen\n")
    }

    @Test func defaultsToTheActiveModel() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let none = await h.run(["wait"])
        #expect(none.code == 1)
        #expect(none.err == "error: no model given and no active model — pass MODEL, or choose one with: kubectl chill switch MODEL\n")

        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "Ready", "readyReplicas": 1, "replicas": 1])
        await h.setActive("qwen")
        let ready = await h.run(["wait"])
        #expect(ready.code == 0)
        #expect(ready.out == "\"qwen\" is ready (1 replica serving).\n")
    }

    @Test func aStaleFailedPhaseDoesNotEndANewWake() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "Failed", "message": "wake timed out"])
        let console = Console(capturing: ())
        let command = Task { await h.run(["wait", "qwen", "--timeout", "30s"], now: nil, console: console) }
        #expect(await printed(console, "qwen: Pending"))
        await h.setStatus("qwen", ["phase": "Waking"])
        #expect(await printed(console, "waiting for a pod"))
        await h.setStatus("qwen", ["phase": "Failed", "message": "wake timed out after 10m"])
        let run = await command.value
        #expect(run.code == 1)
        #expect(run.err == "error: wake of \"qwen\" failed: wake timed out after 10m — see: kubectl describe vllmmodel qwen\n")
    }
}
