import Testing
@testable import Shared

@Suite struct VLLMModelTests {
    // MARK: GoDuration

    static let validDurations: [(String, Int64)] = [
        ("0", 0), ("+0", 0), ("-0", 0), ("0s", 0), ("5s", 5_000_000_000), ("30s", 30_000_000_000),
        ("5m", 300_000_000_000), ("10m", 600_000_000_000), ("1h30m", 5_400_000_000_000),
        ("1.5h", 5_400_000_000_000), ("-1.5h", -5_400_000_000_000), ("+5s", 5_000_000_000),
        ("300ms", 300_000_000), (".5s", 500_000_000), ("5.s", 5_000_000_000), ("1.000000001s", 1_000_000_001),
        ("1h1m1s1ms1us1ns", 3_661_001_001_001), ("2us", 2_000), ("2\u{00B5}s", 2_000), ("2\u{03BC}s", 2_000),
        ("3ns", 3), ("1m30.5s", 90_500_000_000), ("0.1ns", 0), ("100h", 360_000_000_000_000),
        ("9223372036854775807ns", .max), ("-9223372036854775808ns", .min),
        ("2562047h47m16.854775807s", .max),
    ]

    static let invalidDurations: [String] = [
        "", "5", "-", "+", "s", ".s", "-.s", "1hh", "1 h", " 1s", "1s ", "1d", "1w", "1h 30m", "1e3s",
        "1,5s", "--1s", "0.0", "00", "1H", "9223372036854775808ns", "3000000h", "1.5", "h1", "5m-3s",
    ]

    @Test func goDurationParsesValidInputs() throws {
        for (text, ns) in Self.validDurations {
            #expect((try? GoDuration.parseNanoseconds(text)) == ns, "\(text)")
            #expect(try GoDuration.parse(text) == .nanoseconds(ns), "\(text)")
        }
    }

    @Test func goDurationRejectsInvalidInputsWithClearErrors() {
        for text in Self.invalidDurations {
            #expect(throws: GoDuration.ParseError.self, "\(text)") { try GoDuration.parse(text) }
        }
        #expect(throws: GoDuration.ParseError(input: "1d", reason: "unknown unit \"d\" (use ns, us, ms, s, m or h)")) {
            try GoDuration.parse("1d")
        }
        do {
            _ = try GoDuration.parse("5")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid duration \"5\": missing unit (use ns, us, ms, s, m or h)")
        }
    }

    @Test func goDurationPatternAgreesWithParserExceptForOverflow() throws {
        let regex = try Regex(GoDuration.pattern)
        for (text, _) in Self.validDurations {
            #expect(text.wholeMatch(of: regex) != nil, "\(text)")
        }
        for text in Self.invalidDurations where !["9223372036854775808ns", "3000000h"].contains(text) {
            #expect(text.wholeMatch(of: regex) == nil, "\(text)")
        }
    }

    @Test func goDurationFormatsLikeGo() {
        // Cases from Go's time package tests.
        let cases: [(Int64, String)] = [
            (0, "0s"), (1, "1ns"), (1100, "1.1\u{00B5}s"), (2_200_000, "2.2ms"), (3_300_000_000, "3.3s"),
            (245_000_000_000, "4m5s"), (245_001_000_000, "4m5.001s"), (18_367_001_000_000, "5h6m7.001s"),
            (480_000_000_001, "8m0.000000001s"), (.max, "2562047h47m16.854775807s"),
            (.min, "-2562047h47m16.854775808s"), (-1100, "-1.1\u{00B5}s"), (300_000_000_000, "5m0s"),
        ]
        for (ns, text) in cases {
            #expect(GoDuration.formatNanoseconds(ns) == text)
        }
        #expect(GoDuration.format(.seconds(5400)) == "1h30m0s")
        #expect(GoDuration.formatCompact(.seconds(5400)) == "1h30m")
        #expect(GoDuration.formatCompact(.seconds(300)) == "5m")
        #expect(GoDuration.formatCompact(.milliseconds(90_500)) == "1m30.5s")
        #expect(GoDuration.formatCompact(.milliseconds(300)) == "300ms")
        #expect(GoDuration.formatCompact(.zero) == "0s")
        #expect(GoDuration.formatCompact(.seconds(-3600)) == "-1h")
        // Formatting round-trips through the parser.
        for (_, ns) in Self.validDurations {
            #expect((try? GoDuration.parseNanoseconds(GoDuration.formatNanoseconds(ns))) == ns)
            #expect((try? GoDuration.parse(GoDuration.formatCompact(.nanoseconds(ns)))) == .nanoseconds(ns))
        }
    }

    // MARK: Decoding

    /// The predecessor's example (seed 002) with chill's additions (seed 003), as a user would write it.
    static let seedYAML = """
        apiVersion: chill.dev/v1alpha1
        kind: VLLMModel
        metadata:
          name: qwen3-coder-30b-fp8
        spec:
          modelName: "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8"
          servedModelName: "qwen3-coder-30b-fp8"
          maxModelLen: 112640
          maxNumBatchedTokens: 8192
          maxNumSeqs: 16
          toolCallParser: "qwen3_coder"
          reasoningParser: ""
          enableAutoToolChoice: true
          tensorParallelSize: 2
          gpus: 2
          cpuOffloadGB: 0
          gpuMemoryUtilization: 0.92
          dtype: bfloat16
          cpu: 8
          memory: 32Gi
          memoryLimit: 48Gi
          cache:
            size: 200Gi
            storageClass: local-path
          hfTokenSecret:
            name: hf-token
          env:
            - name: VLLM_LOGGING_LEVEL
              value: INFO
            - name: API_KEY
              valueFrom:
                secretKeyRef: {name: vllm, key: api-key}
          nodeSelector:
            nvidia.com/gpu.product: NVIDIA-GeForce-RTX-3090
          tolerations:
            - key: nvidia.com/gpu
              operator: Exists
              effect: NoSchedule
          idleTimeout: 20m
          minReplicas: 0
          maxReplicas: 1
        """

    @Test func decodesASeedStyleObjectFromYAML() throws {
        let json = try YAML.decode(Self.seedYAML)
        let model = try json.decode(as: VLLMModel.self)
        #expect(model.apiVersion == "chill.dev/v1alpha1")
        #expect(model.kind == "VLLMModel")
        #expect(model.metadata.name == "qwen3-coder-30b-fp8")
        let spec = model.spec
        #expect(spec.modelName == "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8")
        #expect(spec.maxModelLen == 112640)
        #expect(spec.toolCallParser == "qwen3_coder")
        #expect(spec.reasoningParser == "")
        #expect(spec.gpuMemoryUtilization == 0.92)
        #expect(spec.cpuOffloadGB == 0)
        #expect(spec.cpu == "8")
        #expect(spec.memory == "32Gi")
        #expect(spec.cache == .init(size: "200Gi", storageClass: "local-path"))
        #expect(spec.hfTokenSecret?.effectiveKey == "HF_TOKEN")
        #expect(spec.env?.count == 2)
        #expect(spec.env?[1].valueFrom?[path: "secretKeyRef", "key"] == "api-key")
        #expect(spec.nodeSelector?["nvidia.com/gpu.product"] == "NVIDIA-GeForce-RTX-3090")
        #expect(spec.tolerations?.first?.operator == "Exists")
        #expect(spec.effectiveIdleTimeout == .seconds(1200))
        #expect(model.servedName == "qwen3-coder-30b-fp8")
        #expect(model.status == nil)
        #expect(spec.validationErrors().isEmpty)
        // The object is valid against the generated schema, too.
        let schema = VLLMModelCRD.root.json
        #expect(OpenAPISchemaCheck.validate(json, schema: schema, path: "").isEmpty)
        // Round trip: Swift -> JSON -> Swift.
        let again = try JSONValue(encoding: model).decode(as: VLLMModel.self)
        #expect(again == model)
    }

    @Test func minimalObjectGetsDefaults() throws {
        let model = try JSONValue.parse(#"{"metadata":{"name":"tiny"},"spec":{"modelName":"Qwen/Qwen2.5-0.5B-Instruct"}}"#)
            .decode(as: VLLMModel.self)
        let spec = model.spec
        #expect(model.apiVersion == VLLMModel.apiVersion)
        #expect(model.kind == "VLLMModel")
        #expect(spec.effectivePort == 8000)
        #expect(spec.effectiveImage == "vllm/vllm-openai:v0.12.0")
        #expect(!spec.effectiveImage.hasSuffix(":latest"))
        #expect(spec.effectiveIdleTimeout == .seconds(300))
        #expect(spec.effectiveWakeTimeout == .seconds(600))
        #expect(spec.effectiveMinReplicas == 0)
        #expect(spec.effectiveMaxReplicas == 1)
        #expect(spec.scalesToZero)
        #expect(spec.effectiveGPUs == 1)
        #expect(spec.effectiveTensorParallelSize == 1)
        #expect(model.servedName == "tiny")
        #expect(model.phase == .scaledDown)
        // servedModelName wins; an empty one does not count.
        var named = model
        named.spec.servedModelName = "qwen-small"
        #expect(named.servedName == "qwen-small")
        named.spec.servedModelName = ""
        #expect(named.servedName == "tiny")
        // gpus defaults to tensorParallelSize.
        named.spec.tensorParallelSize = 4
        #expect(named.spec.effectiveGPUs == 4)
        // Invalid or non-positive durations fall back to the defaults.
        named.spec.idleTimeout = "forever"
        named.spec.wakeTimeout = "0s"
        #expect(named.spec.effectiveIdleTimeout == .seconds(300))
        #expect(named.spec.effectiveWakeTimeout == .seconds(600))
        named.spec.idleTimeout = "1h30m"
        #expect(named.spec.effectiveIdleTimeout == .seconds(5400))
    }

    @Test func schemaDefaultsAreTheSwiftDefaults() throws {
        let defaulted = OpenAPISchemaCheck.applyingDefaults(
            to: ["modelName": "m", "hfTokenSecret": ["name": "hf"]], schema: VLLMModelCRD.spec.json)
        let spec = try defaulted.decode(as: VLLMModelSpec.self)
        #expect(spec.port == VLLMModelSpec.Defaults.port)
        #expect(spec.image == VLLMModelSpec.Defaults.image)
        #expect(spec.idleTimeout == nil, "unset: chill-server's --idle-timeout applies")
        #expect(spec.wakeTimeout == nil)
        #expect(spec.minReplicas == VLLMModelSpec.Defaults.minReplicas)
        #expect(spec.maxReplicas == VLLMModelSpec.Defaults.maxReplicas)
        #expect(spec.hfTokenSecret?.key == VLLMModelSpec.Defaults.hfTokenSecretKey)
        // Effective values of the undefaulted spec equal the defaulted spec's values.
        let bare = VLLMModelSpec(modelName: "m")
        #expect(bare.effectivePort == spec.port)
        #expect(bare.effectiveImage == spec.image)
    }

    @Test func optionalFieldsAreOmittedWhenNil() throws {
        let model = VLLMModel(metadata: ObjectMeta(name: "m"), spec: VLLMModelSpec(modelName: "org/m"))
        let json = try JSONValue(encoding: model)
        #expect(json == [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel",
            "metadata": ["name": "m"], "spec": ["modelName": "org/m"],
        ])
    }

    @Test func quantityDecodesIntegersAndStrings() throws {
        let q = try JSONValue.parse(#"[8, "500m", "32Gi", 1.0]"#).decode(as: [VLLMModel.Quantity].self)
        #expect(q == ["8", "500m", "32Gi", "1"])
        #expect(try JSONValue(encoding: q) == ["8", "500m", "32Gi", "1"])
        #expect(VLLMModel.Quantity("32Gi").isValid)
        #expect(VLLMModel.Quantity("6500m").isValid)
        #expect(!VLLMModel.Quantity("32 GB").isValid)
    }

    // MARK: Status

    @Test func statusEncodesWithRFC3339TimesAndConditions() throws {
        let status = VLLMModelStatus(
            phase: .ready, replicas: 1, readyReplicas: 1, lastActivityTime: "2026-11-22T23:17:43Z",
            lastWake: .init(started: "2026-11-22T23:16:00Z", ready: "2026-11-22T23:17:02Z", seconds: 62.5),
            scaledDownSeconds: 3600,
            conditions: [Condition(type: "Ready", status: "True", observedGeneration: 2,
                lastTransitionTime: "2026-11-22T23:17:02Z", reason: "ReplicaReady", message: "1/1 ready")],
            observedGeneration: 2, message: "serving")
        let json = try JSONValue(encoding: status)
        #expect(json["phase"] == "Ready")
        #expect(json["lastWake"] == ["started": "2026-11-22T23:16:00Z", "ready": "2026-11-22T23:17:02Z", "seconds": 62.5])
        #expect(json["scaledDownSeconds"]?.intValue == 3600)
        #expect(json["conditions"]?.arrayValue?.first?["reason"] == "ReplicaReady")
        #expect(try json.decode(as: VLLMModelStatus.self) == status)
        #expect(status.condition("Ready")?.status == "True")
        #expect(OpenAPISchemaCheck.validate(json, schema: VLLMModelCRD.status.json, path: "status").isEmpty)

        for phase in VLLMModel.Phase.allCases {
            #expect(try JSONValue(encoding: phase) == .string(phase.rawValue))
        }
        #expect(VLLMModel.Phase.allCases.map(\.rawValue) == ["ScaledDown", "Waking", "Ready", "Draining", "Failed"])
        #expect(throws: (any Error).self) { try JSONValue.string("Sleeping").decode(as: VLLMModel.Phase.self) }
    }

    @Test func listDecodesNullItems() throws {
        let list = try JSONValue.parse(#"{"apiVersion":"chill.dev/v1alpha1","kind":"VLLMModelList","metadata":{"resourceVersion":"7"},"items":null}"#)
            .decode(as: VLLMModelList.self)
        #expect(list.items.isEmpty)
        #expect(list.metadata.resourceVersion == "7")
        #expect(VLLMModelList(items: []).kind == "VLLMModelList")
    }

    @Test func kubeResourceConformance() {
        #expect(VLLMModel.group == "chill.dev")
        #expect(VLLMModel.version == "v1alpha1")
        #expect(VLLMModel.plural == "vllmmodels")
        #expect(!VLLMModel.isNamespaced)
        #expect(VLLMModel.resourceType.path(namespace: "ignored", name: "qwen") == "/apis/chill.dev/v1alpha1/vllmmodels/qwen")
    }

    // MARK: Rules (Swift mirrors of the CEL rules)

    @Test func validationErrorsMirrorTheCELRules() {
        var spec = VLLMModelSpec(modelName: "m", minReplicas: 3, maxReplicas: 1)
        #expect(spec.validationErrors().map(\.message) == ["minReplicas must be <= maxReplicas"])
        #expect(spec.validationErrors().first?.field == "spec")
        #expect(spec.validationErrors().first?.description == #"spec: Invalid value: "object": minReplicas must be <= maxReplicas"#)
        spec = VLLMModelSpec(modelName: "m", tensorParallelSize: 2, gpus: 3)
        #expect(spec.validationErrors().map(\.message) == ["gpus must be a multiple of tensorParallelSize"])
        spec = VLLMModelSpec(modelName: "m", tensorParallelSize: 2, gpus: 4)
        #expect(spec.validationErrors().isEmpty)
        spec = VLLMModelSpec(modelName: "m", idleTimeout: "5 minutes", wakeTimeout: "0s")
        #expect(spec.validationErrors().map(\.field) == ["spec.idleTimeout", "spec.wakeTimeout"])
        #expect(spec.validationErrors().allSatisfy { $0.message.hasPrefix($0.field.replacingPrefix("spec.")) })
        #expect(spec.validationErrors().first?.description == "spec.idleTimeout: Invalid value: \"string\": " + VLLMModelCRD.Messages.idleTimeout)
        for image in ["vllm/vllm-openai", "vllm/vllm-openai:latest", "localhost:5000/vllm", "registry:5000/a/b:latest"] {
            #expect(VLLMModelSpec(modelName: "m", image: image).validationErrors().map(\.field) == ["spec.image"], "\(image)")
        }
        let digest = "vllm/vllm-openai@sha256:" + String(repeating: "ab", count: 32)
        for image in ["vllm/vllm-openai:v0.12.0", "localhost:5000/vllm:v1", "ghcr.io/a/b/c:2025-01-01_x", digest] {
            #expect(VLLMModelSpec(modelName: "m", image: image).validationErrors().isEmpty, "\(image)")
        }
    }

    @Test func vllmArgumentsFollowTheSpec() throws {
        let model = try YAML.decode(Self.seedYAML).decode(as: VLLMModel.self)
        var spec = model.spec
        spec.enablePrefixCaching = false
        spec.extraArgs = ["--kv-cache-dtype", "fp8"]
        let args = spec.vllmArguments(servedName: model.servedName)
        #expect(Array(args.prefix(6)) == ["--model", "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "--served-model-name", "qwen3-coder-30b-fp8", "--port", "8000"])
        #expect(args.contains("--enable-auto-tool-choice"))
        #expect(args.contains("--no-enable-prefix-caching"))
        #expect(!args.contains("--reasoning-parser"))  // empty string means none
        #expect(args.split(separator: "--max-model-len").count == 2)
        #expect(Array(args.suffix(2)) == ["--kv-cache-dtype", "fp8"])
        let i = try #require(args.firstIndex(of: "--tensor-parallel-size"))
        #expect(args[i + 1] == "2")
    }
}

extension String {
    fileprivate func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
