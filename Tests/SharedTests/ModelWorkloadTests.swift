import Foundation
import Testing
@testable import Shared

/// `ModelWorkload`: the Deployment, Service and cache claim chill-server applies for a VLLMModel.
@Suite struct ModelWorkloadTests {
    static let uid = "6f1c1a52-3c1e-4d8a-9a53-2d0c3b1f7e10"

    static func model(_ spec: VLLMModelSpec, name: String = "qwen", generation: Int = 3) -> VLLMModel {
        var metadata = ObjectMeta(name: name)
        metadata.uid = uid
        metadata.generation = generation
        return VLLMModel(metadata: metadata, spec: spec)
    }

    static let minimal = model(VLLMModelSpec(modelName: "Qwen/Qwen3-0.6B"), generation: 1)

    /// Every spec field set.
    static let full = model(VLLMModelSpec(
        modelName: "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", servedModelName: "qwen3-coder", maxModelLen: 112640,
        maxNumBatchedTokens: 8192, maxNumSeqs: 16, toolCallParser: "qwen3_coder", reasoningParser: "deepseek_r1",
        enableAutoToolChoice: true, dtype: "bfloat16", tensorParallelSize: 2, gpuMemoryUtilization: 0.92,
        cpuOffloadGB: 4, enablePrefixCaching: true, enableChunkedPrefill: false, extraArgs: ["--seed", "1"],
        image: "vllm/vllm-openai:v0.12.0", gpus: 2, cpu: "8", memory: "32Gi", memoryLimit: "48Gi",
        cache: .init(size: "200Gi", storageClass: "fast"), hfTokenSecret: .init(name: "hf", key: "token"),
        env: [
            .init(name: "VLLM_LOGGING_LEVEL", value: "DEBUG"),
            .init(name: "EXTRA", valueFrom: ["configMapKeyRef": ["name": "vllm-extra", "key": "extra"]]),
        ],
        nodeSelector: ["nvidia.com/gpu.present": "true"],
        tolerations: [.init(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")],
        port: 8001, idleTimeout: "20m", wakeTimeout: "15m", minReplicas: 0, maxReplicas: 2), name: "coder", generation: 7)

    static let options = WorkloadOptions(namespace: "chill-system")

    static func objects(_ model: VLLMModel, replicas: Int, _ options: WorkloadOptions = options) -> [JSONValue] {
        [
            ModelWorkload.deployment(for: model, replicas: replicas, options: options),
            ModelWorkload.service(for: model, options: options),
            ModelWorkload.cacheClaim(for: model, options: options),
        ]
    }

    static func container(_ deployment: JSONValue) -> JSONValue {
        deployment[path: "spec", "template", "spec", "containers"]?.arrayValue?.first ?? .null
    }

    static func env(_ deployment: JSONValue, _ name: String) -> JSONValue? {
        container(deployment)["env"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    // MARK: Golden files

    /// Compares with `Tests/SharedTests/Golden/<name>`; `CHILL_UPDATE_GOLDEN=1` rewrites the file.
    static func expectGolden(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)").path
        if ProcessInfo.processInfo.environment["CHILL_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(actual == expected, "golden \(name) differs (CHILL_UPDATE_GOLDEN=1 to rewrite)", sourceLocation: sourceLocation)
    }

    @Test func minimalSpecIsGolden() throws {
        try Self.expectGolden(YAML.encode(documents: Self.objects(Self.minimal, replicas: 0)), "workload-minimal.yaml")
    }

    @Test func fullSpecIsGolden() throws {
        let options = WorkloadOptions(namespace: "ml", wakeTimeout: .seconds(900), apiKeySecret: SecretKeyRef(name: "chill-api-key", key: "api-key"))
        try Self.expectGolden(YAML.encode(documents: Self.objects(Self.full, replicas: 1, options)), "workload-full.yaml")
    }

    // MARK: Focused

    @Test func everyObjectIsLabelledAndOwnedByTheModel() throws {
        let owner: JSONValue = [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "name": "qwen", "uid": .string(Self.uid),
            "controller": true, "blockOwnerDeletion": true,
        ]
        let labels: JSONValue = [
            "app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "qwen",
            "app.kubernetes.io/managed-by": "chill-server", "chill.dev/model": "qwen",
        ]
        let objects = Self.objects(Self.minimal, replicas: 1)
        #expect(objects.map { $0[path: "metadata", "name"]?.stringValue ?? "" } == ["vllm-qwen", "vllm-qwen", "vllm-qwen-cache"])
        #expect(objects.map { $0["kind"]?.stringValue ?? "" } == ["Deployment", "Service", "PersistentVolumeClaim"])
        for object in objects {
            #expect(object[path: "metadata", "namespace"] == "chill-system")
            #expect(object[path: "metadata", "ownerReferences"] == [owner])
            #expect(object[path: "metadata", "labels"] == labels)
        }
        let deployment = objects[0]
        #expect(deployment[path: "spec", "template", "metadata", "labels"] == labels)
        #expect(deployment[path: "spec", "selector"] == ["matchLabels": ["chill.dev/model": "qwen"]])
        #expect(objects[1][path: "spec", "selector"] == ["chill.dev/model": "qwen"])
        #expect(deployment[path: "metadata", "annotations", ChillContract.specGenerationAnnotation] == "1")
        #expect(ModelWorkload.deployment(for: Self.full, replicas: 0, options: Self.options)[path: "metadata", "annotations", "chill.dev/spec-generation"] == "7")
    }

    @Test func replicasAndRolloutComeFromTheArguments() {
        for replicas in [0, 1, 3] {
            let d = ModelWorkload.deployment(for: Self.minimal, replicas: replicas, options: Self.options)
            #expect(d[path: "spec", "replicas"] == .int(replicas))
            #expect(d[path: "spec", "strategy"] == ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": 1, "maxUnavailable": 0]])
            #expect(d[path: "spec", "revisionHistoryLimit"] == 2)
        }
    }

    @Test func startupProbeBudgetExceedsTheWakeTimeoutByAMinute() throws {
        for seconds in [0, 1, 30, 59, 60, 61, 299, 600, 601, 900, 3600] {
            let options = WorkloadOptions(namespace: "x", wakeTimeout: .seconds(seconds))
            let probe = try #require(Self.container(ModelWorkload.deployment(for: Self.minimal, replicas: 1, options: options))["startupProbe"])
            let period = try #require(probe["periodSeconds"]?.intValue)
            let threshold = try #require(probe["failureThreshold"]?.intValue)
            #expect(period == 5)
            #expect(period * threshold - seconds >= 60, "wake timeout \(seconds)s: budget \(period * threshold)s")
            #expect(period * (threshold - 1) - seconds < 60, "not more than needed for \(seconds)s")
            #expect(probe["httpGet"] == ["path": "/health", "port": "http"])
        }
        // Fractions of a second round up.
        #expect(ModelWorkload.startupFailureThreshold(wakeTimeout: .milliseconds(600_500)) == 133)
        #expect(ModelWorkload.startupFailureThreshold(wakeTimeout: .seconds(600)) == 132)
    }

    @Test func gpusZeroRequestsNoGPU() {
        var spec = Self.minimal.spec
        spec.gpus = 0
        let resources = Self.container(ModelWorkload.deployment(for: Self.model(spec), replicas: 1, options: Self.options))["resources"]
        #expect(resources == [:])
        spec.cpu = "2"
        spec.memory = "4Gi"
        let cpuOnly = Self.container(ModelWorkload.deployment(for: Self.model(spec), replicas: 1, options: Self.options))["resources"]
        #expect(cpuOnly == ["requests": ["cpu": "2", "memory": "4Gi"], "limits": ["memory": "4Gi"]])
        // The default is one GPU (tensorParallelSize, else 1), in requests and limits.
        let gpu = Self.container(ModelWorkload.deployment(for: Self.minimal, replicas: 1, options: Self.options))["resources"]
        #expect(gpu == ["requests": ["nvidia.com/gpu": 1], "limits": ["nvidia.com/gpu": 1]])
        let full = Self.container(ModelWorkload.deployment(for: Self.full, replicas: 1, options: Self.options))["resources"]
        #expect(full == ["requests": ["cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 2], "limits": ["memory": "48Gi", "nvidia.com/gpu": 2]])
    }

    @Test func apiKeyAndTokenComeFromSecrets() {
        let plain = ModelWorkload.deployment(for: Self.minimal, replicas: 1, options: Self.options)
        #expect(Self.container(plain)["env"] == [["name": "HF_HOME", "value": "/data/huggingface"]])
        let options = WorkloadOptions(namespace: "x", apiKeySecret: SecretKeyRef(name: "keys", key: "api-key"))
        let keyed = ModelWorkload.deployment(for: Self.full, replicas: 1, options: options)
        #expect(Self.env(keyed, "VLLM_API_KEY") == ["name": "VLLM_API_KEY", "valueFrom": ["secretKeyRef": ["name": "keys", "key": "api-key"]]])
        #expect(Self.env(keyed, "HF_TOKEN") == ["name": "HF_TOKEN", "valueFrom": ["secretKeyRef": ["name": "hf", "key": "token"]]])
        // The key of hfTokenSecret defaults to HF_TOKEN.
        var spec = Self.minimal.spec
        spec.hfTokenSecret = .init(name: "hf")
        #expect(Self.env(ModelWorkload.deployment(for: Self.model(spec), replicas: 1, options: Self.options), "HF_TOKEN")?[path: "valueFrom", "secretKeyRef", "key"] == "HF_TOKEN")
        // chill's variables first, then spec.env verbatim (valueFrom kept).
        let names = Self.container(keyed)["env"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(names == ["HF_HOME", "HF_TOKEN", "VLLM_API_KEY", "VLLM_LOGGING_LEVEL", "EXTRA"])
        #expect(Self.env(keyed, "EXTRA") == ["name": "EXTRA", "valueFrom": ["configMapKeyRef": ["name": "vllm-extra", "key": "extra"]]])
    }

    @Test func specEnvReplacesAVariableOfTheSameName() {
        var spec = Self.minimal.spec
        spec.env = [.init(name: "HF_HOME", value: "/models")]
        let env = Self.container(ModelWorkload.deployment(for: Self.model(spec), replicas: 1, options: Self.options))["env"]
        #expect(env == [["name": "HF_HOME", "value": "/models"]])
    }

    @Test func argumentsAreTheSpecsWithExtraArgsLast() throws {
        let container = Self.container(ModelWorkload.deployment(for: Self.full, replicas: 1, options: Self.options))
        let args = container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args == Self.full.spec.vllmArguments(servedName: "qwen3-coder"))
        #expect(Array(args.suffix(2)) == ["--seed", "1"])
        #expect(container["image"] == "vllm/vllm-openai:v0.12.0")
        #expect(container["ports"] == [["name": "http", "containerPort": 8001, "protocol": "TCP"]])
        // The served name defaults to metadata.name.
        let minimal = Self.container(ModelWorkload.deployment(for: Self.minimal, replicas: 1, options: Self.options))
        #expect(minimal["args"] == ["--model", "Qwen/Qwen3-0.6B", "--served-model-name", "qwen", "--port", "8000"])
        #expect(minimal["image"] == .string(VLLMModelSpec.Defaults.image))
    }

    @Test func podHasTheCacheSharedMemoryAndScheduling() {
        let d = ModelWorkload.deployment(for: Self.full, replicas: 1, options: Self.options)
        let pod = d[path: "spec", "template", "spec"] ?? .null
        #expect(pod["volumes"] == [
            ["name": "cache", "persistentVolumeClaim": ["claimName": "vllm-coder-cache"]],
            ["name": "dshm", "emptyDir": ["medium": "Memory"]],
        ])
        #expect(Self.container(d)["volumeMounts"] == [["name": "cache", "mountPath": "/data"], ["name": "dshm", "mountPath": "/dev/shm"]])
        #expect(pod["nodeSelector"] == ["nvidia.com/gpu.present": "true"])
        #expect(pod["tolerations"] == [["key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"]])
        #expect(pod["terminationGracePeriodSeconds"] == 60)
        #expect(pod["enableServiceLinks"] == false)
        let minimalPod = ModelWorkload.deployment(for: Self.minimal, replicas: 1, options: Self.options)[path: "spec", "template", "spec"]
        #expect(minimalPod?["nodeSelector"] == nil)
        #expect(minimalPod?["tolerations"] == nil)
        let container = Self.container(d)
        #expect(container["readinessProbe"] == ["httpGet": ["path": "/health", "port": "http"], "periodSeconds": 5, "failureThreshold": 3])
        #expect(container["livenessProbe"] == ["httpGet": ["path": "/health", "port": "http"], "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5])
    }

    @Test func serviceAndCacheClaim() {
        let service = ModelWorkload.service(for: Self.minimal, options: Self.options)
        #expect(service[path: "spec", "type"] == "ClusterIP")
        #expect(service[path: "spec", "ports"] == [["name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"]])
        let claim = ModelWorkload.cacheClaim(for: Self.minimal, options: Self.options)
        #expect(claim["spec"] == ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "50Gi"]]])
        let full = ModelWorkload.cacheClaim(for: Self.full, options: Self.options)
        #expect(full[path: "spec", "resources", "requests", "storage"] == "200Gi")
        #expect(full[path: "spec", "storageClassName"] == "fast")
    }

    @Test func everyEngineFieldBecomesAFlag() {
        let args = Self.full.spec.vllmArguments(servedName: Self.full.servedName)
        let flags: [String: String?] = [
            "--model": "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "--served-model-name": "qwen3-coder", "--port": "8001",
            "--max-model-len": "112640", "--max-num-batched-tokens": "8192", "--max-num-seqs": "16",
            "--tool-call-parser": "qwen3_coder", "--reasoning-parser": "deepseek_r1", "--dtype": "bfloat16",
            "--tensor-parallel-size": "2", "--gpu-memory-utilization": "0.92", "--cpu-offload-gb": "4.0",
            "--enable-auto-tool-choice": nil, "--enable-prefix-caching": nil, "--no-enable-chunked-prefill": nil,
        ]
        for (flag, value) in flags {
            let i = args.firstIndex(of: flag)
            #expect(i != nil, "\(flag)")
            if let i, let value { #expect(args[i + 1] == value, "\(flag)") }
        }
        // 15 flags (12 with a value) plus the two extra arguments: nothing else.
        #expect(args.count == 12 * 2 + 3 + 2)
        // Every engine field of the schema (a spec field whose description names a vllm flag) is passed.
        let engineFlags = (VLLMModelCRD.spec.json["properties"]?.objectValue ?? [:]).compactMap { _, schema -> String? in
            guard let match = (schema["description"]?.stringValue ?? "").firstMatch(of: #/--[a-z][a-z-]*/#) else { return nil }
            return String(match.output)
        }
        #expect(engineFlags.count == 14)
        for flag in engineFlags {
            #expect(args.contains(flag) || args.contains(flag.replacingOccurrences(of: "--enable-", with: "--no-enable-")), "\(flag)")
        }
    }
}
