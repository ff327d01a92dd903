import Foundation
import KubeTestServer
import Shared
import Testing
@testable import ChillServer

/// The controller end to end: VLLMModels on the test API server, one vllm-sim per model playing its
/// pod (the simulator gives pods 127.0.0.1, the spec's port points at the sim), chill-server in-process.
@Suite(.serialized) struct ControllerEndToEndTests {
    static func chat(_ model: String, content: String = "Say hi") -> String {
        #"{"messages":[{"role":"user","content":"\#(content)"}],"model":"\#(model)","max_tokens":4}"#
    }

    /// Two models, alpha and beta, each with its own vllm-sim; chill-server with a short residency.
    static func withCluster(_ names: [String] = ["alpha", "beta"], kube: E2EKube? = nil, extra: [String] = [],
                            _ body: (E2ECluster) async throws -> Void) async throws {
        try await E2ECluster.with(
            kube: kube, names.map { E2ECluster.Model($0, spec: ["wakeTimeout": "30s", "idleTimeout": "10m"]) },
            flags: ["--min-residency", "1s", "--drain-timeout", "10s"] + extra, body)
    }

    @Test(.timeLimit(.minutes(1)))
    func requestsAreRoutedByModelAndAnUnknownModelIs404() async throws {
        try await Self.withCluster { c in
            // Every served model is listed, and listing wakes nothing.
            let list = try await c.chill.request("GET", "/v1/models")
            let ids = (try list.json()["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == ["alpha", "beta"])
            #expect(await c.kube.replicas(model: "alpha") == 0)
            #expect(await c.kube.replicas(model: "beta") == 0)

            let unknown = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("gamma"))
            #expect(unknown.status == 404)
            let error = try unknown.openAIError()
            #expect(error.code == "model_not_found")
            #expect(error.message.contains("alpha, beta"), "\(error.message)")

            // "model" after "messages" (as the openai client sends it): found, and the body relayed whole.
            let alpha = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("alpha"), timeout: 30)
            #expect(alpha.status == 200, "\(alpha)")
            #expect(try alpha.json()["model"] as? String == "alpha")
            #expect(await c.kube.replicas(model: "alpha") == 1)
            #expect(await c.kube.replicas(model: "beta") == 0)
            try await c.waitForPhase("alpha", "Ready")
            let status = await c.model("alpha")?["status"]
            #expect(status?["readyReplicas"]?.intValue == 1)
            #expect(status?["lastWake"]?["seconds"] != nil)
            #expect(status?["observedGeneration"]?.intValue == 1)
            let ready = status?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Ready" }
            #expect(ready?["status"]?.stringValue == "True")
            #expect(await c.activeModel() == "alpha")

            // The workload is chill-server's: owned by the VLLMModel, labelled for the plugin's `wait`.
            let deployment = await c.kube.server.handle(method: "GET", path: "/apis/apps/v1/namespaces/\(E2EKube.namespace)/deployments/vllm-alpha").json
            #expect(deployment?["metadata"]?["ownerReferences"]?.arrayValue?.first?["kind"]?.stringValue == "VLLMModel")
            #expect(deployment?["spec"]?["template"]?["metadata"]?["labels"]?["chill.dev/model"]?.stringValue == "alpha")
            let service = await c.kube.server.handle(method: "GET", path: "/api/v1/namespaces/\(E2EKube.namespace)/services/vllm-alpha")
            #expect(service.status == 200)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aSwitchUnderLoadToBothModelsLosesNothing() async throws {
        try await Self.withCluster { c in
            let warm = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("alpha"), timeout: 30)
            #expect(warm.status == 200)
            // 40 requests alternating between the models, 8 at a time: every one answered 200.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                var statuses: [Int] = []
                for i in 0..<40 {
                    if i >= 8, let status = try await group.next() { statuses.append(status) }
                    let model = i.isMultiple(of: 2) ? "alpha" : "beta"
                    group.addTask { try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat(model), timeout: 60).status }
                }
                for try await status in group { statuses.append(status) }
                return statuses
            }
            #expect(statuses.count == 40)
            #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            // Exclusive: never both at once in the end state.
            let replicas = [await c.kube.replicas(model: "alpha") ?? 0, await c.kube.replicas(model: "beta") ?? 0]
            #expect(replicas.reduce(0, +) <= 1, "\(replicas)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubectlChillSwitchStartAndStopIntentsAreActedOn() async throws {
        try await Self.withCluster { c in
            // `kubectl chill start alpha`: the annotations it writes.
            try await c.annotate("alpha", [ChillContract.requestedStateAnnotation: "awake", ChillContract.requestedAtAnnotation: .string(RFC3339.format(Date()))])
            try await c.kube.waitForReplicas(1, model: "alpha")
            try await c.waitForPhase("alpha", "Ready")
            #expect(await c.model("alpha")?["status"]?["handledRequestAt"]?.stringValue != nil)

            // `kubectl chill switch beta`: chill-state, as the plugin applies it.
            let state: JSONValue = [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": ["name": "chill-state", "namespace": .string(E2EKube.namespace)],
                "data": ["activeModel": "beta", "switchedAt": .string(RFC3339.format(Date()))],
            ]
            let applied = await c.kube.server.handle(
                "PATCH", "/api/v1/namespaces/\(E2EKube.namespace)/configmaps/chill-state?fieldManager=kubectl-chill&force=true", json: state,
                contentType: "application/apply-patch+yaml")
            #expect(applied.status == 200 || applied.status == 201, "\(applied.text)")
            try await c.kube.waitForReplicas(0, model: "alpha", timeout: .seconds(15))
            try await c.kube.waitForReplicas(1, model: "beta", timeout: .seconds(15))
            try await c.waitForPhase("beta", "Ready")
            try await c.waitForPhase("alpha", "ScaledDown")

            // `kubectl chill stop beta --force`.
            try await Task.sleep(for: .milliseconds(20))  // a requested-at newer than the start's
            try await c.annotate("beta", [
                ChillContract.requestedStateAnnotation: "asleep", ChillContract.requestedAtAnnotation: .string(RFC3339.format(Date().addingTimeInterval(1))),
                ChillContract.stopModeAnnotation: "force",
            ])
            try await c.kube.waitForReplicas(0, model: "beta")
            try await c.waitForPhase("beta", "ScaledDown")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aNewVLLMModelIsServedWithoutARestartAndADeletedOneStopsBeingServed() async throws {
        try await Self.withCluster(["alpha"]) { c in
            let sim = try await VLLMSim.launch(args: ["--served-model-name", "late", "--quiet"])
            defer { sim.kill() }
            try await c.kube.createModel("late", port: sim.port)
            try await E2EWait.until("late listed") {
                let ids = (try await c.chill.request("GET", "/v1/models").json()["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                return (ids.contains("late"), "\(ids)")
            }
            let response = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("late"), timeout: 30)
            #expect(response.status == 200, "\(response)")

            let deleted = await c.kube.server.handle(method: "DELETE", path: "/apis/chill.dev/v1alpha1/vllmmodels/late")
            #expect(deleted.status == 200)
            try await E2EWait.until("late no longer routed") {
                let r = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("late"))
                return (r.status == 404, "\(r.status)")
            }
            // Its workload goes with it: owner references, collected by the garbage collector.
            try await E2EWait.until("vllm-late collected") {
                let d = await c.kube.server.handle(method: "GET", path: "/apis/apps/v1/namespaces/\(E2EKube.namespace)/deployments/vllm-late")
                let s = await c.kube.server.handle(method: "GET", path: "/api/v1/namespaces/\(E2EKube.namespace)/services/vllm-late")
                return (d.status == 404 && s.status == 404, "deployment \(d.status), service \(s.status)")
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSpecEditRollsOutWhenRunningAndWaitsForTheNextWakeWhenScaledDown() async throws {
        try await Self.withCluster { c in
            func applied(_ name: String) async -> (generation: String?, args: [String]) {
                let d = await c.kube.server.handle(method: "GET", path: "/apis/apps/v1/namespaces/\(E2EKube.namespace)/deployments/vllm-\(name)").json
                let args = d?["spec"]?["template"]?["spec"]?["containers"]?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
                return (d?["metadata"]?["annotations"]?["chill.dev/spec-generation"]?.stringValue, args)
            }
            func edit(_ name: String) async throws {
                let r = await c.kube.server.handle(
                    "PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/\(name)", json: ["spec": ["maxModelLen": 1024]], contentType: "application/merge-patch+json")
                guard r.status == 200 else { throw E2EHTTP.Failure.malformed("edit: \(r.status) \(r.text)") }
            }
            #expect(try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("alpha"), timeout: 30).status == 200)
            try await edit("alpha")
            try await E2EWait.until("alpha's edit rolled out") {
                let a = await applied("alpha")
                return (a.generation == "2" && a.args.contains("--max-model-len"), "\(a)")
            }
            // beta is scaled down: its edit waits for the next wake.
            try await edit("beta")
            try await Task.sleep(for: .milliseconds(300))
            #expect(await applied("beta").generation == "1")
            #expect(try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("beta"), timeout: 30).status == 200)
            let b = await applied("beta")
            #expect(b.generation == "2" && b.args.contains("--max-model-len"), "\(b)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRestartRestoresTheActiveModelAndTheStatus() async throws {
        try await E2ECluster.with([.init("alpha", spec: ["idleTimeout": "10m"])]) { c in
            let first = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("alpha"), timeout: 30)
            #expect(first.status == 200)
            try await c.waitForPhase("alpha", "Ready")
            let wakesBefore = await c.kube.scalePatches(model: "alpha").filter { $0.replicas == 1 }.count
            await c.chill.stop()

            try await c.startChillAgain()
            try await E2EWait.until("the running model adopted") {
                let stats = try? await c.chill.request("GET", "/proxy/stats?model=alpha").json()
                return (stats?["state"] as? String == "Ready" && stats?["active"] as? Bool == true, "\(stats ?? [:])")
            }
            let again = try await c.chill.request("POST", "/v1/chat/completions", body: Self.chat("alpha"), timeout: 30)
            #expect(again.status == 200)
            // No new wake: the restarted server found the model serving and kept it.
            #expect(await c.kube.scalePatches(model: "alpha").filter { $0.replicas == 1 }.count == wakesBefore)
            #expect(await c.kube.replicas(model: "alpha") == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func heldBodiesShareOneByteBudget() async throws {
        // A backend that never becomes ready: every request is held.
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", "sleep 60", "--target-port", String(try VLLMSim.freePort()), "--wake-timeout", "30s",
             "--served-model-name", "m", "--max-held-bytes", "4096"])
        let small = Task { try await chill.request("POST", "/v1/chat/completions", body: Self.chat("m", content: String(repeating: "a", count: 3000)), timeout: 30) }
        try await chill.waitForStats("one request held") { E2EChill.int($0["held"]) == 1 }
        let big = try await chill.request("POST", "/v1/chat/completions", body: Self.chat("m", content: String(repeating: "b", count: 3000)), timeout: 10)
        #expect(big.status == 429, "\(big)")
        #expect((try? big.openAIError().code) == "held_bytes_exhausted")
        #expect(big.header("retry-after") != nil)
        small.cancel()
        await chill.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func anAPIKeyIsRequiredOnV1BeforeAnyWake() async throws {
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", "sleep 60", "--target-port", String(try VLLMSim.freePort()), "--served-model-name", "m"],
            environment: ["VLLM_API_KEY": "k3y"])
        let denied = try await chill.request("POST", "/v1/chat/completions", body: Self.chat("m"))
        #expect(denied.status == 401)
        #expect((try? denied.openAIError().code) == "invalid_api_key")
        let models = try await chill.request("GET", "/v1/models")
        #expect(models.status == 401)
        let allowed = try await chill.request("GET", "/v1/models", headers: ["authorization": "Bearer k3y"])
        #expect(allowed.status == 200)
        #expect(try await chill.request("GET", "/health").status == 200)
        let stats = try await chill.stats()
        #expect(stats["state"] as? String == "ScaledDown", "a refused request must not wake the model")
        #expect(!(try await chill.request("GET", "/proxy/stats").text.contains("k3y")))
        await chill.stop()
    }
}
