#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A model chill can serve: `apiVersion: chill.dev/v1alpha1`, `kind: VLLMModel`, cluster-scoped.
/// The schema lives in `VLLMModelCRD` (one definition, from which `manifests/crd.yaml` is generated);
/// a test keeps these Codable keys and the schema's properties identical.
public struct VLLMModel: KubeResource, Hashable {
    public static let group = "chill.dev"
    public static let version = "v1alpha1"
    public static let apiVersion = "\(group)/\(version)"
    public static let kind = "VLLMModel"
    public static let listKind = "VLLMModelList"
    public static let plural = "vllmmodels"
    public static let singular = "vllmmodel"
    public static let shortNames = ["vllm"]
    public static let categories = ["chill"]
    public static let isNamespaced = false

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: VLLMModelSpec
    public var status: VLLMModelStatus?

    public init(metadata: ObjectMeta, spec: VLLMModelSpec, status: VLLMModelStatus? = nil) {
        self.apiVersion = Self.apiVersion
        self.kind = Self.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? Self.apiVersion
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? Self.kind
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        spec = try c.decode(VLLMModelSpec.self, forKey: .spec)
        status = try c.decodeIfPresent(VLLMModelStatus.self, forKey: .status)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(apiVersion, forKey: .apiVersion)
        try c.encode(kind, forKey: .kind)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(spec, forKey: .spec)
        try c.encodeIfPresent(status, forKey: .status)
    }

    /// The name clients put in the OpenAI `model` field: `spec.servedModelName` if set and
    /// non-empty, else `metadata.name`, else `spec.modelName`.
    public var servedName: String {
        if let s = spec.servedModelName, !s.isEmpty { return s }
        if let n = metadata.name, !n.isEmpty { return n }
        return spec.modelName
    }

    /// The phase, `.scaledDown` when no status has been written yet.
    public var phase: Phase { status?.phase ?? .scaledDown }

    /// The lifecycle phase reported in `status.phase`.
    public enum Phase: String, Codable, Sendable, Hashable, CaseIterable {
        /// No replicas; the next request wakes the model.
        case scaledDown = "ScaledDown"
        /// Scaling up; requests are held until a replica is ready.
        case waking = "Waking"
        /// At least one replica serves requests.
        case ready = "Ready"
        /// Finishing in-flight requests before scaling down or switching models.
        case draining = "Draining"
        /// The last wake failed (see `status.message` and conditions).
        case failed = "Failed"
    }

    /// A Kubernetes resource quantity (`"8"`, `"500m"`, `"32Gi"`). Decodes from a JSON number or
    /// string (the schema is int-or-string) and encodes as a string, the canonical form.
    public struct Quantity: Codable, Sendable, Hashable, CustomStringConvertible,
        ExpressibleByStringLiteral, ExpressibleByIntegerLiteral
    {
        public var value: String
        public init(_ value: String) { self.value = value }
        public init(stringLiteral value: String) { self.value = value }
        public init(integerLiteral value: Int) { self.value = String(value) }
        public var description: String { value }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { value = String(i) }
            else if let s = try? c.decode(String.self) { value = s }
            else {
                let d = try c.decode(Double.self)
                value = d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(value)
        }

        /// Matches Kubernetes' quantity syntax (the same regex Kubernetes publishes for `resource.Quantity`).
        public static let pattern =
            #"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"#

        public var isValid: Bool { (try? Regex(Self.pattern).wholeMatch(in: value)) != nil }
    }
}

/// The list type the API server returns for `GET /apis/chill.dev/v1alpha1/vllmmodels`.
public struct VLLMModelList: Codable, Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var metadata: ListMeta
    public var items: [VLLMModel]

    public init(items: [VLLMModel], metadata: ListMeta = ListMeta()) {
        self.apiVersion = VLLMModel.apiVersion
        self.kind = VLLMModel.listKind
        self.metadata = metadata
        self.items = items
    }

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, items }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? VLLMModel.apiVersion
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? VLLMModel.listKind
        metadata = try c.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        // The API server sends `"items": null` for an empty list in some versions.
        items = try c.decodeIfPresent([VLLMModel].self, forKey: .items) ?? []
    }
}

/// `spec` of a VLLMModel. Every field but `modelName` is optional; the `effective…` accessors
/// apply the defaults (which are the same constants the CRD schema publishes as `default`).
public struct VLLMModelSpec: Codable, Sendable, Hashable {
    // MARK: vLLM engine (names kept from the predecessor's CRD)
    public var modelName: String
    public var servedModelName: String?
    public var maxModelLen: Int?
    public var maxNumBatchedTokens: Int?
    public var maxNumSeqs: Int?
    public var toolCallParser: String?
    public var reasoningParser: String?
    public var enableAutoToolChoice: Bool?
    public var dtype: String?
    public var tensorParallelSize: Int?
    public var gpuMemoryUtilization: Double?
    public var cpuOffloadGB: Double?
    public var enablePrefixCaching: Bool?
    public var enableChunkedPrefill: Bool?
    public var extraArgs: [String]?

    // MARK: Pod
    public var image: String?
    public var gpus: Int?
    public var cpu: VLLMModel.Quantity?
    public var memory: VLLMModel.Quantity?
    public var memoryLimit: VLLMModel.Quantity?
    public var cache: Cache?
    public var hfTokenSecret: HFTokenSecret?
    public var env: [EnvVar]?
    public var nodeSelector: [String: String]?
    public var tolerations: [Toleration]?
    public var port: Int?

    // MARK: Scaling
    public var idleTimeout: String?
    public var wakeTimeout: String?
    public var minReplicas: Int?
    public var maxReplicas: Int?

    public init(
        modelName: String, servedModelName: String? = nil, maxModelLen: Int? = nil,
        maxNumBatchedTokens: Int? = nil, maxNumSeqs: Int? = nil, toolCallParser: String? = nil,
        reasoningParser: String? = nil, enableAutoToolChoice: Bool? = nil, dtype: String? = nil,
        tensorParallelSize: Int? = nil, gpuMemoryUtilization: Double? = nil, cpuOffloadGB: Double? = nil,
        enablePrefixCaching: Bool? = nil, enableChunkedPrefill: Bool? = nil, extraArgs: [String]? = nil,
        image: String? = nil, gpus: Int? = nil, cpu: VLLMModel.Quantity? = nil,
        memory: VLLMModel.Quantity? = nil, memoryLimit: VLLMModel.Quantity? = nil, cache: Cache? = nil,
        hfTokenSecret: HFTokenSecret? = nil, env: [EnvVar]? = nil, nodeSelector: [String: String]? = nil,
        tolerations: [Toleration]? = nil, port: Int? = nil, idleTimeout: String? = nil,
        wakeTimeout: String? = nil, minReplicas: Int? = nil, maxReplicas: Int? = nil
    ) {
        self.modelName = modelName
        self.servedModelName = servedModelName
        self.maxModelLen = maxModelLen
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.maxNumSeqs = maxNumSeqs
        self.toolCallParser = toolCallParser
        self.reasoningParser = reasoningParser
        self.enableAutoToolChoice = enableAutoToolChoice
        self.dtype = dtype
        self.tensorParallelSize = tensorParallelSize
        self.gpuMemoryUtilization = gpuMemoryUtilization
        self.cpuOffloadGB = cpuOffloadGB
        self.enablePrefixCaching = enablePrefixCaching
        self.enableChunkedPrefill = enableChunkedPrefill
        self.extraArgs = extraArgs
        self.image = image
        self.gpus = gpus
        self.cpu = cpu
        self.memory = memory
        self.memoryLimit = memoryLimit
        self.cache = cache
        self.hfTokenSecret = hfTokenSecret
        self.env = env
        self.nodeSelector = nodeSelector
        self.tolerations = tolerations
        self.port = port
        self.idleTimeout = idleTimeout
        self.wakeTimeout = wakeTimeout
        self.minReplicas = minReplicas
        self.maxReplicas = maxReplicas
    }

    /// Defaults, shared by the CRD schema (`default:`) and the `effective…` accessors.
    public enum Defaults {
        /// A pinned vLLM release; never `latest`.
        public static let image = "vllm/vllm-openai:v0.12.0"
        public static let port = 8000
        public static let idleTimeout = "5m"
        public static let wakeTimeout = "10m"
        public static let minReplicas = 0
        public static let maxReplicas = 1
        public static let tensorParallelSize = 1
        public static let hfTokenSecretKey = "HF_TOKEN"
        public static let cacheSize = "50Gi"
    }

    /// A PersistentVolumeClaim for the Hugging Face cache, so a wake does not download the weights again.
    public struct Cache: Codable, Sendable, Hashable {
        public var size: VLLMModel.Quantity?
        public var storageClass: String?
        public init(size: VLLMModel.Quantity? = nil, storageClass: String? = nil) {
            self.size = size
            self.storageClass = storageClass
        }
        public var effectiveSize: VLLMModel.Quantity { size ?? VLLMModel.Quantity(Defaults.cacheSize) }
    }

    /// The Secret holding a Hugging Face token (for gated models), exposed to vLLM as `HF_TOKEN`.
    public struct HFTokenSecret: Codable, Sendable, Hashable {
        public var name: String
        public var key: String?
        public init(name: String, key: String? = nil) {
            self.name = name
            self.key = key
        }
        public var effectiveKey: String { key.flatMap { $0.isEmpty ? nil : $0 } ?? Defaults.hfTokenSecretKey }
    }

    /// A container environment variable. `valueFrom` is kept verbatim (a Kubernetes `EnvVarSource`).
    public struct EnvVar: Codable, Sendable, Hashable {
        public var name: String
        public var value: String?
        public var valueFrom: JSONValue?
        public init(name: String, value: String? = nil, valueFrom: JSONValue? = nil) {
            self.name = name
            self.value = value
            self.valueFrom = valueFrom
        }
    }

    /// A Kubernetes pod toleration.
    public struct Toleration: Codable, Sendable, Hashable {
        public var key: String?
        public var `operator`: String?
        public var value: String?
        public var effect: String?
        public var tolerationSeconds: Int?
        public init(
            key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil,
            tolerationSeconds: Int? = nil
        ) {
            self.key = key
            self.operator = `operator`
            self.value = value
            self.effect = effect
            self.tolerationSeconds = tolerationSeconds
        }
    }

    // MARK: Effective values

    public var effectiveImage: String { nonEmpty(image) ?? Defaults.image }
    public var effectivePort: Int { port ?? Defaults.port }
    public var effectiveMinReplicas: Int { minReplicas ?? Defaults.minReplicas }
    public var effectiveMaxReplicas: Int { max(maxReplicas ?? Defaults.maxReplicas, effectiveMinReplicas) }
    public var effectiveTensorParallelSize: Int { tensorParallelSize ?? Defaults.tensorParallelSize }
    /// GPUs per replica: `gpus`, else `tensorParallelSize`, else 1.
    public var effectiveGPUs: Int { gpus ?? tensorParallelSize ?? 1 }
    /// True when the model may have zero replicas (`minReplicas` 0, the default).
    public var scalesToZero: Bool { effectiveMinReplicas == 0 }

    /// `idleTimeout` as a Duration; the default (5m) when unset or not a valid positive Go duration
    /// (the API server rejects those, so that only happens for objects that bypassed validation).
    public var effectiveIdleTimeout: Duration { Self.positiveDuration(idleTimeout) ?? .seconds(300) }
    /// `wakeTimeout` as a Duration; the default (10m) when unset or invalid.
    public var effectiveWakeTimeout: Duration { Self.positiveDuration(wakeTimeout) ?? .seconds(600) }

    static func positiveDuration(_ text: String?) -> Duration? {
        guard let text, let ns = try? GoDuration.parseNanoseconds(text), ns > 0 else { return nil }
        return .nanoseconds(ns)
    }

    /// The same checks as the CRD's CEL rules (see `VLLMModelCRD.rules`), with the same messages,
    /// for clients and test servers that have no CEL. Empty when valid.
    public func validationErrors() -> [VLLMModelCRD.Violation] {
        VLLMModelCRD.violations(ofSpec: (try? JSONValue(encoding: self)) ?? .null)
    }

    /// The `vllm serve` command-line flags this spec asks for (after the image's entrypoint).
    /// `servedName` is the model's `servedName`. `extraArgs` come last, so they can override.
    public func vllmArguments(servedName: String) -> [String] {
        var args = ["--model", modelName, "--served-model-name", servedName, "--port", String(effectivePort)]
        func add(_ flag: String, _ value: CustomStringConvertible?) {
            if let value { args += [flag, value.description] }
        }
        func flag(_ name: String, _ on: Bool?) { if on == true { args.append(name) } }
        add("--max-model-len", maxModelLen)
        add("--max-num-batched-tokens", maxNumBatchedTokens)
        add("--max-num-seqs", maxNumSeqs)
        add("--tool-call-parser", nonEmpty(toolCallParser))
        add("--reasoning-parser", nonEmpty(reasoningParser))
        flag("--enable-auto-tool-choice", enableAutoToolChoice)
        add("--dtype", nonEmpty(dtype))
        add("--tensor-parallel-size", tensorParallelSize)
        add("--gpu-memory-utilization", gpuMemoryUtilization)
        add("--cpu-offload-gb", cpuOffloadGB)
        if let p = enablePrefixCaching { args.append(p ? "--enable-prefix-caching" : "--no-enable-prefix-caching") }
        if let c = enableChunkedPrefill { args.append(c ? "--enable-chunked-prefill" : "--no-enable-chunked-prefill") }
        args += extraArgs ?? []
        return args
    }
}

private func nonEmpty(_ s: String?) -> String? {
    guard let s, !s.isEmpty else { return nil }
    return s
}

/// `status` of a VLLMModel, written by chill through the status subresource.
public struct VLLMModelStatus: Codable, Sendable, Hashable {
    public var phase: VLLMModel.Phase?
    public var replicas: Int?
    public var readyReplicas: Int?
    /// RFC 3339 time of the last request start or end.
    public var lastActivityTime: String?
    public var lastWake: WakeRecord?
    /// Total seconds this model has spent scaled down (summed over all scale-downs).
    public var scaledDownSeconds: Double?
    /// Seconds this model spent scaled down in the 24 hours before the status was written.
    public var scaledDownSecondsLast24h: Double?
    public var conditions: [Condition]?
    public var observedGeneration: Int?
    public var message: String?
    /// RFC 3339: the `chill.dev/requested-at` of the last start/stop intent chill-server acted on,
    /// so that after a restart it does not act on the same intent twice.
    public var handledRequestAt: String?

    public init(
        phase: VLLMModel.Phase? = nil, replicas: Int? = nil, readyReplicas: Int? = nil,
        lastActivityTime: String? = nil, lastWake: WakeRecord? = nil, scaledDownSeconds: Double? = nil,
        scaledDownSecondsLast24h: Double? = nil, conditions: [Condition]? = nil, observedGeneration: Int? = nil,
        message: String? = nil, handledRequestAt: String? = nil
    ) {
        self.phase = phase
        self.replicas = replicas
        self.readyReplicas = readyReplicas
        self.lastActivityTime = lastActivityTime
        self.lastWake = lastWake
        self.scaledDownSeconds = scaledDownSeconds
        self.scaledDownSecondsLast24h = scaledDownSecondsLast24h
        self.conditions = conditions
        self.observedGeneration = observedGeneration
        self.message = message
        self.handledRequestAt = handledRequestAt
    }

    /// The most recent wake: when it started, when the first replica became ready, and how long it took.
    public struct WakeRecord: Codable, Sendable, Hashable {
        /// RFC 3339.
        public var started: String?
        /// RFC 3339; absent while the wake is in progress or when it failed.
        public var ready: String?
        public var seconds: Double?
        public init(started: String? = nil, ready: String? = nil, seconds: Double? = nil) {
            self.started = started
            self.ready = ready
            self.seconds = seconds
        }
    }

    /// The condition of the given type, if present.
    public func condition(_ type: String) -> Condition? {
        conditions?.first { $0.type == type }
    }
}
