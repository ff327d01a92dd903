#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one definition of the VLLMModel schema. `definition()` renders the CustomResourceDefinition
/// that `manifests/crd.yaml` holds (regenerate with `CHILL_UPDATE_MANIFESTS=1 swift test --filter CRDTests`);
/// tests check that `VLLMModelSpec`/`VLLMModelStatus` have exactly these properties.
public enum VLLMModelCRD {
    /// `vllmmodels.chill.dev`
    public static let name = "\(VLLMModel.plural).\(VLLMModel.group)"

    /// A failed rule: the field path the API server reports it at, the CEL source and its message.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        public var field: String
        public var rule: String
        public var message: String
        /// The schema type of the node carrying the rule (`object`, `string`, …), which the API server
        /// prints as the "value".
        public var type: String
        public init(field: String, rule: String, message: String, type: String = "object") {
            self.field = field
            self.rule = rule
            self.message = message
            self.type = type
        }
        /// The API server's wording: `spec: Invalid value: "object": minReplicas must be <= maxReplicas`.
        public var description: String { "\(field): Invalid value: \"\(type)\": \(message)" }
    }

    // MARK: CEL rules

    public enum Messages {
        public static let replicas = "minReplicas must be <= maxReplicas"
        public static let gpus = "gpus must be a multiple of tensorParallelSize"
        public static let idleTimeout = "idleTimeout must be a positive Go duration such as 30s, 5m or 1h30m (units: ns, us, ms, s, m, h)"
        public static let wakeTimeout = "wakeTimeout must be a positive Go duration such as 30s, 5m or 1h30m (units: ns, us, ms, s, m, h)"
        public static let image = "image must be pinned: use an explicit tag other than 'latest' (e.g. vllm/vllm-openai:v0.12.0) or an @sha256: digest"
    }

    /// `^([^/]+/)*[^/:]+:TAG$`: a tag on the last path component (a registry port does not count).
    static let taggedImagePattern = "^([^/]+/)*[^/:]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
    static let digestImagePattern = "^[^@]+@sha256:[0-9a-f]{64}$"

    static func matches(_ pattern: String, _ text: String) -> Bool {
        (try? Regex(pattern).wholeMatch(in: text)) != nil
    }

    static func durationRule(_ field: String, message: String) -> CRDSchema.Rule {
        CRDSchema.Rule(
            "self.matches('\(GoDuration.pattern)') && duration(self) > duration('0s')", message: message
        ) { value in
            guard let s = value.stringValue else { return true }
            guard matches(GoDuration.pattern, s), let ns = try? GoDuration.parseNanoseconds(s) else { return false }
            return ns > 0
        }
    }

    static let imageRule = CRDSchema.Rule(
        "self.matches('\(digestImagePattern)') || (self.matches('\(taggedImagePattern)') && !self.endsWith(':latest'))",
        message: Messages.image
    ) { value in
        guard let s = value.stringValue else { return true }
        return isPinned(image: s)
    }

    /// A tag other than `latest`, or a digest: the rule for vLLM images, and (in `kubectl chill install`)
    /// for chill-server's.
    public static func isPinned(image s: String) -> Bool {
        matches(digestImagePattern, s) || (matches(taggedImagePattern, s) && !s.hasSuffix(":latest"))
    }

    static let replicasRule = CRDSchema.Rule(
        "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
        message: Messages.replicas
    ) { spec in
        guard let lo = spec["minReplicas"]?.intValue, let hi = spec["maxReplicas"]?.intValue else { return true }
        return lo <= hi
    }

    static let gpusRule = CRDSchema.Rule(
        "!has(self.gpus) || !has(self.tensorParallelSize) || self.gpus % self.tensorParallelSize == 0",
        message: Messages.gpus
    ) { spec in
        guard let g = spec["gpus"]?.intValue, let t = spec["tensorParallelSize"]?.intValue, t > 0 else { return true }
        return g % t == 0
    }

    // MARK: The schema

    typealias F = CRDSchema.Field
    typealias S = CRDSchema

    public static let spec: CRDSchema = .object(
        "What to serve and how chill scales it.",
        [
            // vLLM engine (field names kept from the predecessor, vllm-chill).
            F("modelName", .string("Hugging Face repo id (or path) of the model, passed to vllm as --model, e.g. Qwen/Qwen2.5-7B-Instruct.", minLength: 1, maxLength: 512), required: true),
            F("servedModelName", .string("Name clients send in the OpenAI `model` field (--served-model-name). Defaults to metadata.name.", maxLength: 253)),
            F("maxModelLen", .integer("Maximum context length in tokens (--max-model-len).", minimum: 1)),
            F("maxNumBatchedTokens", .integer("Maximum tokens per batch (--max-num-batched-tokens).", minimum: 1)),
            F("maxNumSeqs", .integer("Maximum concurrent sequences (--max-num-seqs).", minimum: 1)),
            F("toolCallParser", .string("Tool-call parser, e.g. hermes or qwen3_coder (--tool-call-parser). Empty means none.", maxLength: 128)),
            F("reasoningParser", .string("Reasoning parser, e.g. deepseek_r1 (--reasoning-parser). Empty means none.", maxLength: 128)),
            F("enableAutoToolChoice", .boolean("Pass --enable-auto-tool-choice.")),
            F("dtype", .string("Weight and activation data type (--dtype).", enum: ["auto", "half", "float16", "bfloat16", "float", "float32"])),
            F("tensorParallelSize", .integer("GPUs one model is split across (--tensor-parallel-size).", minimum: 1, maximum: 64)),
            F("gpuMemoryUtilization", .number("Fraction of GPU memory vLLM may use (--gpu-memory-utilization).", minimum: 0, exclusiveMinimum: true, maximum: 1)),
            F("cpuOffloadGB", .number("GiB of weights to offload to CPU memory per GPU (--cpu-offload-gb).", minimum: 0)),
            F("enablePrefixCaching", .boolean("Pass --enable-prefix-caching (true) or --no-enable-prefix-caching (false); unset keeps vLLM's default.")),
            F("enableChunkedPrefill", .boolean("Pass --enable-chunked-prefill (true) or --no-enable-chunked-prefill (false); unset keeps vLLM's default.")),
            F("extraArgs", .array("More vllm serve arguments, appended last.", of: .string("One argument.", maxLength: 4096), maxItems: 64, listType: "atomic")),

            // Pod.
            F("image", .string("vLLM container image. Must be pinned (a tag other than latest, or a digest).", default: VLLMModelSpec.Defaults.image, minLength: 1, maxLength: 512, rules: [imageRule])),
            F("gpus", .integer("nvidia.com/gpu per replica. Defaults to tensorParallelSize, else 1.", minimum: 0, maximum: 64)),
            F("cpu", .quantity("CPU request per replica, e.g. \"8\" or \"6500m\".")),
            F("memory", .quantity("Memory request per replica, e.g. 32Gi.")),
            F("memoryLimit", .quantity("Memory limit per replica. Unset means memory (the request) is the limit.")),
            F("cache", .object("The PersistentVolumeClaim vllm-<name>-cache holding the Hugging Face cache, so wakes do not download weights again. Always created; these fields tune it.", [
                F("size", .quantity("Requested size. Defaults to \(VLLMModelSpec.Defaults.cacheSize).")),
                F("storageClass", .string("StorageClass of the claim. Unset means the cluster default.", maxLength: 253)),
            ])),
            F("hfTokenSecret", .object("Secret with a Hugging Face token, for gated models; given to vLLM as HF_TOKEN.", [
                F("name", .string("Secret name (in chill's namespace).", minLength: 1, maxLength: 253), required: true),
                F("key", .string("Key in the Secret.", default: VLLMModelSpec.Defaults.hfTokenSecretKey, minLength: 1, maxLength: 253)),
            ])),
            F("env", .array("Extra environment variables for the vLLM container.", of: .object("A container environment variable.", [
                F("name", .string("Variable name.", minLength: 1, maxLength: 256), required: true),
                F("value", .string("Literal value.")),
                F("valueFrom", .preservedObject("A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, …), passed through unchanged.")),
            ]), maxItems: 128, listType: "map", listMapKeys: ["name"])),
            F("nodeSelector", .map("Node labels the vLLM pod must match.", of: .string("Label value.", maxLength: 63), maxProperties: 64)),
            F("tolerations", .array("Tolerations for the vLLM pod (e.g. for GPU node taints).", of: .object("A Kubernetes toleration.", [
                F("key", .string("Taint key; empty with operator Exists matches all taints.", maxLength: 316)),
                F("operator", .string("How key and value are compared.", enum: ["Exists", "Equal"])),
                F("value", .string("Taint value for operator Equal.", maxLength: 63)),
                F("effect", .string("Taint effect to match; empty matches all.", enum: ["NoSchedule", "PreferNoSchedule", "NoExecute"])),
                F("tolerationSeconds", .integer("For NoExecute: seconds the pod stays bound after the taint appears.", format: "int64")),
            ]), maxItems: 64, listType: "atomic")),
            F("port", .integer("Port vLLM listens on.", default: VLLMModelSpec.Defaults.port, minimum: 1, maximum: 65535)),

            // Scaling.
            F("idleTimeout", .string("Scale down after this long without requests (Go duration). Unset: the install's idle timeout (chill-server's IDLE_TIMEOUT, 5m by default).", maxLength: 64, rules: [durationRule("idleTimeout", message: Messages.idleTimeout)])),
            F("wakeTimeout", .string("How long a wake may take before it is failed and held requests get an error (Go duration). Unset: the install's wake timeout (chill-server's WAKE_TIMEOUT, 10m by default).", maxLength: 64, rules: [durationRule("wakeTimeout", message: Messages.wakeTimeout)])),
            F("minReplicas", .integer("Replicas kept while idle. Not yet acted on: chill-server scales between 0 and 1 today.", default: VLLMModelSpec.Defaults.minReplicas, minimum: 0, maximum: 1000)),
            F("maxReplicas", .integer("Replicas at most. Not yet acted on: one replica today.", default: VLLMModelSpec.Defaults.maxReplicas, minimum: 1, maximum: 1000)),
        ],
        rules: [replicasRule, gpusRule])

    public static let status: CRDSchema = .object(
        "Observed state, written by chill.",
        [
            F("phase", .string("Lifecycle phase.", enum: VLLMModel.Phase.allCases.map(\.rawValue))),
            F("replicas", .integer("Replicas of the vLLM Deployment.", minimum: 0)),
            F("readyReplicas", .integer("Replicas ready to serve.", minimum: 0)),
            F("lastActivityTime", .string("When a request last started or ended (RFC 3339).", format: "date-time")),
            F("lastWake", .object("The most recent wake.", [
                F("started", .string("When the wake began (RFC 3339).", format: "date-time")),
                F("ready", .string("When the first replica became ready (RFC 3339).", format: "date-time")),
                F("seconds", .number("Duration of the wake in seconds.", minimum: 0)),
            ])),
            F("scaledDownSeconds", .number("Total seconds spent scaled down.", minimum: 0)),
            F("scaledDownSecondsLast24h", .number("Seconds spent scaled down in the 24 hours before this status was written.", minimum: 0)),
            F("conditions", .array("Standard conditions (metav1.Condition).", of: .object("A condition.", [
                F("type", .string("Condition type, e.g. Ready.", minLength: 1, maxLength: 316), required: true),
                F("status", .string("True, False or Unknown.", enum: ["True", "False", "Unknown"]), required: true),
                F("observedGeneration", .integer("metadata.generation the condition was set for.", minimum: 0, format: "int64")),
                F("lastTransitionTime", .string("When status last changed (RFC 3339).", format: "date-time")),
                F("reason", .string("CamelCase reason.", maxLength: 1024)),
                F("message", .string("Human-readable detail.", maxLength: 32768)),
            ]), maxItems: 32, listType: "map", listMapKeys: ["type"])),
            F("observedGeneration", .integer("metadata.generation chill last acted on.", minimum: 0, format: "int64")),
            F("message", .string("Human-readable detail about the phase (e.g. why a wake failed).")),
            F("handledRequestAt", .string("The chill.dev/requested-at of the last start/stop intent chill acted on (RFC 3339), so a restart does not act on it twice.", maxLength: 64, format: "date-time")),
        ])

    /// The whole `openAPIV3Schema`.
    public static let root: CRDSchema = .object(
        "A model chill serves with scale-to-zero. Cluster-scoped; chill-server creates its Deployment, Service and cache claim.",
        [
            F("apiVersion", .string("")),
            F("kind", .string("")),
            F("metadata", .object("", [])),
            F("spec", spec, required: true),
            F("status", status),
        ])

    // MARK: Printer columns

    public struct PrinterColumn: Sendable, Hashable {
        public var name: String
        public var type: String
        public var jsonPath: String
        public var description: String
        public var json: JSONValue {
            ["name": .string(name), "type": .string(type), "jsonPath": .string(jsonPath), "description": .string(description)]
        }
    }

    /// `kubectl get vllm` shows these (kubectl upper-cases the names: MODEL, PHASE, READY, LAST ACTIVE, AGE).
    /// The API server adds no Age column of its own once a CRD lists columns, so AGE is listed here.
    public static let printerColumns: [PrinterColumn] = [
        .init(name: "Model", type: "string", jsonPath: ".spec.modelName", description: "Hugging Face model id"),
        .init(name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase"),
        .init(name: "Ready", type: "integer", jsonPath: ".status.readyReplicas", description: "Ready replicas"),
        .init(name: "Last Active", type: "date", jsonPath: ".status.lastActivityTime", description: "Last request activity"),
        .init(name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation"),
    ]

    // MARK: Output

    /// The CustomResourceDefinition, as sent to `POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions`.
    public static func definition() -> JSONValue {
        [
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": [
                "name": .string(name),
                "labels": ["app.kubernetes.io/name": "chill", "app.kubernetes.io/part-of": "chill"],
            ],
            "spec": [
                "group": .string(VLLMModel.group),
                "scope": "Cluster",
                "names": [
                    "plural": .string(VLLMModel.plural),
                    "singular": .string(VLLMModel.singular),
                    "kind": .string(VLLMModel.kind),
                    "listKind": .string(VLLMModel.listKind),
                    "shortNames": .array(VLLMModel.shortNames.map(JSONValue.string)),
                    "categories": .array(VLLMModel.categories.map(JSONValue.string)),
                ],
                "versions": [
                    [
                        "name": .string(VLLMModel.version),
                        "served": true,
                        "storage": true,
                        "subresources": ["status": [:]],
                        "additionalPrinterColumns": .array(printerColumns.map(\.json)),
                        "schema": ["openAPIV3Schema": root.json],
                    ]
                ],
            ],
        ]
    }

    /// The header of `manifests/crd.yaml`.
    public static let manifestHeader = """
        # GENERATED FILE - do not edit by hand.
        # Source: Sources/Shared/Model/VLLMModelCRD.swift (VLLMModelCRD.definition()).
        # Regenerate: CHILL_UPDATE_MANIFESTS=1 swift test --filter CRDTests
        # (without the variable, CRDTests fails when this file differs from the generator).

        """

    /// The full text of `manifests/crd.yaml`: the header, then the CRD as YAML (keys sorted).
    public static func manifestYAML() -> String {
        manifestHeader + YAML.encode(definition())
    }

    /// Runs the Swift mirrors of the CEL rules on a `spec` (apply defaults first for the API server's behaviour).
    public static func violations(ofSpec spec: JSONValue) -> [Violation] {
        Self.spec.violations(of: spec, path: "spec")
    }

    /// The Markdown field reference used in docs/VLLMMODEL.md.
    public static func markdownReference() -> String {
        var out = ""
        for (title, prefix, schema) in [("spec", "spec", spec), ("status", "status", status)] {
            out += "### `\(title)`\n\n| Field | Type | Default | Description |\n|---|---|---|---|\n"
            for row in schema.referenceRows(prefix: prefix) {
                let def = row.default.isEmpty ? "" : "`\(row.default)`"
                let desc = (row.required ? "**Required.** " : "") + row.description.escapingPipes
                out += "| `\(row.path)` | \(row.type) | \(def) | \(desc) |\n"
            }
            out += "\n"
        }
        out += "### CEL rules\n\n| Where | Rule | Message |\n|---|---|---|\n"
        for (path, rule) in allRules() {
            out += "| `\(path)` | `\(rule.rule.escapingPipes)` | \(rule.message) |\n"
        }
        return out
    }

    /// Every CEL rule with the path of the node that carries it.
    public static func allRules() -> [(path: String, rule: CRDSchema.Rule)] {
        func walk(_ s: CRDSchema, _ path: String) -> [(path: String, rule: CRDSchema.Rule)] {
            var out = s.rules.map { (path: path, rule: $0) }
            switch s.kind {
            case .object(let fields): for f in fields { out += walk(f.schema, path + "." + f.name) }
            case .array(let items): out += walk(items, path + "[]")
            case .map(let values): out += walk(values, path + "[*]")
            default: break
            }
            return out
        }
        return walk(spec, "spec") + walk(status, "status")
    }
}

extension String {
    /// `|` escaped for a Markdown table cell.
    fileprivate var escapingPipes: String {
        var out = ""
        for c in self { if c == "|" { out += "\\|" } else { out.append(c) } }
        return out
    }
}
