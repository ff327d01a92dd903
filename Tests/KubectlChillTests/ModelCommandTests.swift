import ArgumentParser
import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

@Suite struct ModelListTests {
    @Test func tableAndWideAreGolden() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        await h.setActive("qwen")

        let table = await h.run(["list"])
        #expect(table.code == 0, "\(table.err)")
        try expectGolden(table.out, "list.txt")
        let alias = await h.run(["ls"])
        #expect(alias.out == table.out)

        let wide = await h.run(["list", "-o", "wide"])
        #expect(wide.code == 0)
        try expectGolden(wide.out, "list-wide.txt")
    }

    @Test func jsonIsAV1ListOfTheObjects() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()

        let json = await h.run(["list", "-o", "json"])
        #expect(json.code == 0, "\(json.err)")
        try expectGolden(try normalizedObjects(json.out), "list.json")
        let parsed = try JSONValue.parse(json.out)
        #expect(parsed["kind"] == "List")
        #expect(parsed["items"]?.arrayValue?.compactMap(\.objectName) == ["coder", "llama", "qwen"])

        let yaml = await h.run(["list", "-o", "yaml"])
        #expect(try YAML.decode(yaml.out) == parsed)
    }

    @Test func emptySaysHowToCreateOne() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let run = await h.run(["list"])
        #expect(run.code == 0)
        #expect(run.out.isEmpty)
        #expect(run.err == "No models found. Create one with: kubectl chill create NAME --model HF_ID\n")
    }

    @Test func withoutTheCRDSaysToInstall() async throws {
        let server = try await KubeTestServer.start()
        defer { Task { try? await server.shutdown() } }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chill-nocrd-\(UUID().uuidString)").path
        try server.kubeconfig().write(toFile: path, atomically: true, encoding: .utf8)
        let console = Console(capturing: ())
        let code = await Console.$current.withValue(console) { await Entry.run(["list", "--kubeconfig", path]) }
        #expect(code == 1)
        #expect(console.errorOutput == "error: the VLLMModel resource (vllmmodels.chill.dev) is not installed in this cluster — install chill with: kubectl chill install\n")
    }
}

@Suite struct ModelStatusTests {
    @Test func textAndJSONAreGolden() async throws {
        let h = try await ModelHarness.start(proxy: false)
        defer { Task { await h.stop() } }
        await h.seedProxy()
        await h.seedGoldenModels()
        await h.setActive("qwen")

        let text = await h.run(["status"])
        #expect(text.code == 0, "\(text.err)")
        try expectGolden(text.out, "status.txt")

        let json = await h.run(["status", "-o", "json"])
        #expect(json.code == 0)
        try expectGolden(json.out, "status.json")
        let parsed = try JSONValue.parse(json.out)
        // (10 h × 1 GPU) + (2 h × 2 GPUs) + (25 h × 1 GPU) = 39 GPU-hours.
        #expect(parsed[path: "savings", "gpuHoursFreedSinceInstall"]?.numberValue == 39)
        #expect(parsed[path: "savings", "gpuHoursFreedLast24h"] == .null)
    }

    @Test func readsOnlyAndConcurrently() async throws {
        let h = try await ModelHarness.start(proxy: false)
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        await h.server.clearRequests()
        let run = await h.run(["status"])
        #expect(run.code == 0)
        let requests = await h.server.requests
        #expect(requests.allSatisfy { $0.method == "GET" && !$0.path.contains("watch") })
        #expect(requests.count == 3)
        #expect(run.out.hasPrefix("Proxy:     not installed (no Deployment chill-server in namespace chill-system)"))
    }

    @Test func readsScaledDownSecondsLast24hFromTheStatus() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        _ = await h.seedModel("a", spec: ["modelName": "m", "gpus": 2], status: ["phase": "ScaledDown", "scaledDownSeconds": 7200, "scaledDownSecondsLast24h": 3600])
        _ = await h.seedModel("b", spec: ["modelName": "m"], status: ["phase": "ScaledDown", "scaledDownSeconds": 3600, "scaledDownSecondsLast24h": 1800])
        let json = await h.run(["status", "-o", "json"])
        #expect(json.code == 0, "\(json.err)")
        let parsed = try JSONValue.parse(json.out)
        // (1 h × 2 GPUs) + (0.5 h × 1 GPU) in the last 24 h.
        #expect(parsed[path: "savings", "gpuHoursFreedLast24h"]?.numberValue == 2.5)
        #expect(parsed[path: "savings", "last24hNote"] == nil)
    }

    @Test func last24hIsShownOnlyWhenEveryModelReportsIt() {
        let model = VLLMModel(metadata: ObjectMeta(name: "a"), spec: VLLMModelSpec(modelName: "m", gpus: 2), status: VLLMModelStatus(scaledDownSeconds: 7200))
        let reported = StatusReport(namespace: "ns", proxy: nil, state: ChillState(), models: [(model, 3600)], now: ModelHarness.now)
        #expect(reported.gpuHoursFreed == 4)
        #expect(reported.gpuHoursFreedLast24h == 2)
        let partial = StatusReport(namespace: "ns", proxy: nil, state: ChillState(), models: [(model, 3600), (model, nil)], now: ModelHarness.now)
        #expect(partial.gpuHoursFreedLast24h == nil)
        #expect(partial.text.contains("last 24h: not reported"))
    }

    @Test func proxyVersionFallsBackToTheImageTag() async throws {
        let h = try await ModelHarness.start(proxy: false)
        defer { Task { await h.stop() } }
        await h.seedProxy(version: nil, image: "ghcr.io/chill/chill-server:1.2.3")
        let run = await h.run(["status"])
        #expect(run.out.hasPrefix("Proxy:     chill-server 1/1 ready, version 1.2.3 (namespace chill-system)"))
    }
}

@Suite struct ModelSwitchTests {
    @Test func persistsTheActiveModelInChillState() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()

        let first = await h.run(["switch", "llama"])
        #expect(first.code == 0, "\(first.err)")
        #expect(first.out == "Switched to \"llama\".\n")
        let state = await h.get("/api/v1/namespaces/chill-system/configmaps/chill-state")
        #expect(state?[path: "data", "activeModel"] == "llama")
        #expect(state?[path: "data", "switchedAt"] == "2030-01-01T12:00:00Z")
        let apply = await h.writes.last
        #expect(apply?.method == "PATCH")
        #expect(apply?.path.contains("fieldManager=kubectl-chill") == true)
        #expect(apply?.headers.contains { $0.0.lowercased() == "content-type" && $0.1 == "application/apply-patch+yaml" } == true)

        let second = await h.run(["switch", "qwen"])
        #expect(second.out == "Switched to \"qwen\" (was \"llama\").\n")
        let list = await h.run(["list"])
        #expect(list.out.split(separator: "\n").contains { $0.hasPrefix("qwen") && $0.contains("   *   ") })

        let again = await h.run(["switch", "qwen"])
        #expect(again.code == 0)
        #expect(again.out == "\"qwen\" is already the active model.\n")
    }

    @Test func unknownModelListsTheKnownOnes() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        await h.server.clearRequests()
        let run = await h.run(["switch", "mistral"])
        #expect(run.code == 1)
        #expect(run.err == "error: model \"mistral\" not found — known models: coder, llama, qwen\n")
        #expect(await h.writes.isEmpty)
    }

    @Test func withoutAnyModelSaysHowToCreateOne() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let run = await h.run(["switch", "qwen"])
        #expect(run.code == 1)
        #expect(run.err == "error: model \"qwen\" not found: there are no models — create one with: kubectl chill create qwen --model HF_ID\n")
    }

    @Test func waitOnAReadyModelReturnsAtOnce() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let run = await h.run(["switch", "qwen", "--wait", "--timeout", "5s"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.out == "Switched to \"qwen\".\n\"qwen\" is ready (1 replica serving).\n")
    }
}

@Suite struct ModelStartStopTests {
    @Test func writeTheIntentAnnotations() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let path = "\(ModelHarness.modelsPath)/llama"

        let stop = await h.run(["stop", "llama", "--force"])
        #expect(stop.code == 0, "\(stop.err)")
        #expect(stop.out == "Requested forced stop of \"llama\" (chill.dev/requested-state=asleep, chill.dev/stop-mode=force at 2030-01-01T12:00:00Z): in-flight requests are cut.\n")
        var annotations = await h.get(path)?[path: "metadata", "annotations"]
        #expect(annotations == ["chill.dev/requested-state": "asleep", "chill.dev/requested-at": "2030-01-01T12:00:00Z", "chill.dev/stop-mode": "force"])
        #expect(await h.writes.last?.headers.contains { $0.1 == "application/merge-patch+json" } == true)

        let graceful = await h.run(["stop", "llama"])
        #expect(graceful.out.contains("graceful stop"))
        annotations = await h.get(path)?[path: "metadata", "annotations"]
        #expect(annotations?["chill.dev/stop-mode"] == "graceful")

        let start = await h.run(["start", "llama"])
        #expect(start.code == 0)
        #expect(start.out == "Requested start of \"llama\" (chill.dev/requested-state=awake at 2030-01-01T12:00:00Z).\nFollow the wake with: kubectl chill wait llama\n")
        annotations = await h.get(path)?[path: "metadata", "annotations"]
        #expect(annotations == ["chill.dev/requested-state": "awake", "chill.dev/requested-at": "2030-01-01T12:00:00Z"])
    }

    @Test func unknownModelListsTheKnownOnes() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        for command in ["start", "stop", "delete"] {
            let run = await h.run([command, "gemma"])
            #expect(run.code == 1)
            #expect(run.err == "error: model \"gemma\" not found — known models: coder, llama, qwen\n")
        }
    }
}

@Suite struct ModelCreateDeleteTests {
    @Test func dryRunPrintsTheObjectAndSendsNothing() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.server.clearRequests()
        let yaml = await h.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B", "--gpus", "2", "--tensor-parallel-size", "2",
                                "--idle-timeout", "20m", "--cpu", "8", "--memory", "32Gi", "--hf-token-secret", "hf",
                                "--extra-arg=--enforce-eager", "--extra-arg", "--seed=1", "--dry-run"])
        #expect(yaml.code == 0, "\(yaml.err)")
        #expect(yaml.out == """
            apiVersion: chill.dev/v1alpha1
            kind: VLLMModel
            metadata:
              labels:
                app.kubernetes.io/managed-by: kubectl-chill
              name: qwen
            spec:
              cpu: "8"
              extraArgs:
              - --enforce-eager
              - --seed=1
              gpus: 2
              hfTokenSecret:
                name: hf
              idleTimeout: 20m
              memory: 32Gi
              modelName: Qwen/Qwen3-0.6B
              tensorParallelSize: 2

            """)
        let json = await h.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B", "--dry-run", "-o", "json"])
        #expect(try JSONValue.parse(json.out)[path: "spec", "modelName"] == "Qwen/Qwen3-0.6B")
        #expect(await h.server.requests.isEmpty)
    }

    @Test func invalidValuesAreOneLineErrorsAndNothingIsSent() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.server.clearRequests()
        let replicas = await h.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B", "--min-replicas", "3", "--max-replicas", "2"])
        #expect(replicas.code == 1)
        #expect(replicas.err == "error: invalid model \"qwen\": spec: Invalid value: \"object\": minReplicas must be <= maxReplicas — fix the flag and retry; nothing was sent\n")
        // maxReplicas defaults to 1, as on the API server.
        let defaulted = await h.run(["create", "qwen", "--model", "m", "--min-replicas", "2"])
        #expect(defaulted.err.contains("minReplicas must be <= maxReplicas"))
        let several = await h.run(["create", "qwen", "--model", "m", "--image", "vllm/vllm-openai:latest", "--idle-timeout", "5 minutes", "--gpus", "3", "--tensor-parallel-size", "2"])
        #expect(several.code == 1)
        #expect(several.err.split(separator: "\n").count == 1)
        #expect(several.err.contains(VLLMModelCRD.Messages.image) && several.err.contains(VLLMModelCRD.Messages.idleTimeout) && several.err.contains(VLLMModelCRD.Messages.gpus))
        let name = await h.run(["create", "Qwen_3", "--model", "m"])
        #expect(name.code == 1)
        #expect(name.err.hasPrefix("error: model name \"Qwen_3\" must consist of lower-case letters"))
        #expect(await h.server.requests.isEmpty)
    }

    @Test func usageErrorsExit2() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["create", "qwen"]).code == 2)
        #expect(await h.run(["wait", "qwen", "--timeout", "soon"]).code == 2)
        #expect(await h.run(["list", "-o", "xml"]).code == 2)
        #expect(await h.run(["import"]).code == 2)
        #expect(await h.run(["completion", "tcsh"]).code == 2)
    }

    @Test func createsThenRefusesADuplicateThenDeletes() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let create = await h.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B", "--max-model-len", "8192"])
        #expect(create.code == 0, "\(create.err)")
        #expect(create.out.hasPrefix("vllmmodel.chill.dev/qwen created"))
        let stored = await h.get("\(ModelHarness.modelsPath)/qwen")
        #expect(stored?[path: "spec", "maxModelLen"] == 8192)
        #expect(await h.writes.last?.path.contains("fieldManager=kubectl-chill") == true)

        let duplicate = await h.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B"])
        #expect(duplicate.code == 1)
        #expect(duplicate.err == "error: model \"qwen\" already exists — pick another name, or delete it first: kubectl chill delete qwen\n")

        await h.setActive("qwen")
        let delete = await h.run(["delete", "qwen"])
        #expect(delete.code == 0)
        #expect(delete.out == "vllmmodel.chill.dev \"qwen\" deleted\n")
        #expect(delete.err.contains("was the active model"))
        #expect(await h.get("\(ModelHarness.modelsPath)/qwen") == nil)

        let missing = await h.run(["delete", "qwen"])
        #expect(missing.code == 1)
        #expect(missing.err.hasPrefix("error: model \"qwen\" not found: there are no models"))
    }
}

@Suite struct ModelImportTests {
    /// vllm-chill's objects, as its CRD guide writes them (seed 002), plus a field chill does not have.
    static let seedYAML = """
        apiVersion: vllm.sir-alfred.io/v1alpha1
        kind: VLLMModel
        metadata:
          name: qwen3-coder-30b-fp8
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: "{}"
        spec:
          modelName: "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8"
          servedModelName: "qwen3-coder-30b-fp8"
          maxModelLen: 112640
          maxNumBatchedTokens: 8192
          maxNumSeqs: 16
          toolCallParser: "qwen3_coder"
          reasoningParser: ""
          enableAutoToolChoice: true
          gpuCount: 2
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: unrelated
        ---
        apiVersion: vllm.sir-alfred.io/v1alpha1
        kind: VLLMModel
        metadata:
          name: deepseek-r1-fp8
        spec:
          modelName: deepseek-ai/DeepSeek-R1-Distill-Qwen-32B
          reasoningParser: deepseek_r1
          tensorParallelSize: 2
          gpuMemoryUtilization: 0.92
        """

    @Test func dryRunConvertsSameNamedFields() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let file = h.directory + "/old.yaml"
        try Self.seedYAML.write(toFile: file, atomically: true, encoding: .utf8)
        await h.server.clearRequests()

        let run = await h.run(["import", "-f", file, "--dry-run"])
        #expect(run.code == 0, "\(run.err)")
        #expect(await h.server.requests.isEmpty)
        let docs = try YAML.decodeDocuments(run.out)
        #expect(docs.count == 2)
        #expect(docs[0] == [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel",
            "metadata": ["name": "qwen3-coder-30b-fp8", "annotations": ["chill.dev/imported-from": "vllm.sir-alfred.io/v1alpha1"]],
            "spec": [
                "modelName": "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "servedModelName": "qwen3-coder-30b-fp8", "maxModelLen": 112640,
                "maxNumBatchedTokens": 8192, "maxNumSeqs": 16, "toolCallParser": "qwen3_coder", "reasoningParser": "",
                "enableAutoToolChoice": true,
            ],
        ])
        #expect(docs[1][path: "spec", "gpuMemoryUtilization"] == 0.92)
        #expect(run.err.contains("note: qwen3-coder-30b-fp8: dropped field chill does not have: spec.gpuCount"))
        #expect(run.err.contains("note: skipped ConfigMap \"unrelated\""))
    }

    @Test func createsAndSkipsExistingOnes() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("deepseek-r1-fp8", spec: ["modelName": "already/here"])
        let file = h.directory + "/old.yaml"
        try Self.seedYAML.write(toFile: file, atomically: true, encoding: .utf8)
        let run = await h.run(["import", "-f", file])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.out == "vllmmodel.chill.dev/qwen3-coder-30b-fp8 created\nvllmmodel.chill.dev/deepseek-r1-fp8 already exists, skipped\n")
        #expect(await h.get("\(ModelHarness.modelsPath)/qwen3-coder-30b-fp8")?[path: "spec", "maxNumSeqs"] == 16)
        #expect(await h.get("\(ModelHarness.modelsPath)/deepseek-r1-fp8")?[path: "spec", "modelName"] == "already/here")
    }

    @Test func fromClusterListsTheOldCRD() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let missing = await h.run(["import", "--from-cluster"])
        #expect(missing.code == 1)
        #expect(missing.err.hasPrefix("error: vllm-chill's CRD (vllmmodels.vllm.sir-alfred.io) is not installed"))

        await h.server.register(.init(group: "vllm.sir-alfred.io", version: "v1alpha1", kind: "VLLMModel", plural: "vllmmodels", namespaced: false))
        for doc in try YAML.decodeDocuments(Self.seedYAML) where doc["kind"] == "VLLMModel" {
            let r = await h.server.handle("POST", "/apis/vllm.sir-alfred.io/v1alpha1/vllmmodels", json: doc)
            #expect(r.status == 201, "\(r.text)")
        }
        let run = await h.run(["import", "--from-cluster"])
        #expect(run.code == 0, "\(run.err)")
        #expect(await h.get("\(ModelHarness.modelsPath)/deepseek-r1-fp8")?[path: "spec", "tensorParallelSize"] == 2)
    }

    @Test func invalidOnesAreReportedAndExit1() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let file = h.directory + "/bad.yaml"
        try """
            apiVersion: vllm.sir-alfred.io/v1alpha1
            kind: VLLMModel
            metadata: {name: bad}
            spec: {modelName: m, maxModelLen: "long"}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = await h.run(["import", "-f", file, "--dry-run"])
        #expect(run.code == 1)
        #expect(run.err.contains("error: bad: spec does not fit chill's VLLMModel: spec.maxModelLen has the wrong type"))
    }
}

@Suite struct ModelCompletionAndHelpTests {
    @Test func scriptsForEachShell() async {
        for shell in ["bash", "zsh", "fish"] {
            let run = await ModelRunNoCluster.run(["completion", shell])
            #expect(run.code == 0)
            #expect(run.out.contains("kubectl-chill"))
        }
    }

    @Test func kubectlPluginCompletion() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let commands = await ModelRunNoCluster.run(["completion", "__kubectl", "s"])
        #expect(commands.out == "start\nstatus\nstop\nswitch\n:4\n")
        let models = await ModelRunNoCluster.run(["completion", "__kubectl", "--kubeconfig", h.kubeconfigPath, "--request-timeout", "60s", "switch", "l"])
        #expect(models.out == "llama\n:4\n")
        let shells = await ModelRunNoCluster.run(["completion", "__kubectl", "completion", ""])
        #expect(shells.out == "bash\nfish\nzsh\n:4\n")
    }

    @Test func everyCommandHasAnAbstractAndAnExample() {
        for command in ModelCommands.all {
            let configuration = command.configuration
            #expect(!configuration.abstract.isEmpty, "\(command)")
            #expect(configuration.discussion.contains("Examples:\n  kubectl chill "), "\(command)")
            let help = KubectlChill.helpMessage(for: command)
            #expect(help.contains("--kubeconfig") && help.contains("--namespace"), "\(command) lacks the global options")
        }
        #expect(ModelCommands.all.map { $0._commandName } == ["list", "status", "switch", "wait", "start", "stop", "create", "delete", "import", "completion"])
    }
}

enum ModelRunNoCluster {
    static func run(_ arguments: [String]) async -> ModelRun {
        let console = Console(capturing: ())
        let code = await Console.$current.withValue(console) { await Entry.run(arguments) }
        return ModelRun(code: code, out: console.output, err: console.errorOutput)
    }
}
