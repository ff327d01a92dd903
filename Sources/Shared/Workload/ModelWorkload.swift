/// What the rendered workload depends on besides the VLLMModel itself.
public struct WorkloadOptions: Sendable, Hashable {
    /// The namespace of the Deployment, Service and cache claim (chill's install namespace).
    public var namespace: String
    /// The longest a request is held during a wake; the startup probe's budget must exceed it.
    public var wakeTimeout: Duration
    /// Secret (name, key) holding the API key vLLM must require (env VLLM_API_KEY in the vLLM container); nil = none.
    public var apiKeySecret: SecretKeyRef?

    public init(namespace: String, wakeTimeout: Duration = .seconds(600), apiKeySecret: SecretKeyRef? = nil) {
        self.namespace = namespace
        self.wakeTimeout = wakeTimeout
        self.apiKeySecret = apiKeySecret
    }
}

/// One key of a Secret in the workload's namespace.
public struct SecretKeyRef: Sendable, Hashable {
    public var name: String
    public var key: String
    public init(name: String, key: String) {
        self.name = name
        self.key = key
    }
}

/// The objects chill-server owns for one VLLMModel, rendered by pure functions: the Deployment
/// `vllm-<name>`, the Service `vllm-<name>` and the Hugging Face cache claim `vllm-<name>-cache`,
/// all in `options.namespace`, all owned by the (cluster-scoped) VLLMModel so that deleting the
/// model deletes them. Each result is a server-side apply configuration (field manager
/// `ChillContract.serverFieldManager`): it names every field chill-server owns and nothing else.
/// docs/VLLMMODEL.md ("The workload") describes the result; golden files in Tests/SharedTests/Golden pin it.
public enum ModelWorkload {
    /// Where the cache claim is mounted; `HF_HOME` is below it.
    public static let dataPath = "/data"
    public static let huggingFaceHome = "/data/huggingface"
    public static let containerName = "vllm"
    /// The Service's port (the OpenAI-compatible API); it targets the container port named `http`.
    public static let servicePort = 8000
    public static let terminationGracePeriodSeconds = 60
    /// Every probe polls vLLM's `/health` (vLLM checks the API key on `/v1` routes only).
    public static let healthPath = "/health"
    public static let startupProbePeriodSeconds = 5
    /// The startup probe's budget (period × failure threshold) exceeds the wake timeout by at least this,
    /// so the kubelet never restarts a vLLM that is still loading while a request waits for it.
    public static let startupProbeMargin: Duration = .seconds(60)

    /// The labels of every object and of the pod template.
    public static func labels(for model: VLLMModel) -> [String: JSONValue] {
        [
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/instance": .string(model.workloadName),
            "app.kubernetes.io/managed-by": .string(ChillContract.serverFieldManager),
            ChillContract.modelLabel: .string(model.workloadName),
        ]
    }

    /// The Deployment's and the Service's selector.
    public static func selector(for model: VLLMModel) -> JSONValue {
        [ChillContract.modelLabel: .string(model.workloadName)]
    }

    /// The controller owner reference to the VLLMModel (cluster-scoped owner, namespaced dependents).
    public static func ownerReference(for model: VLLMModel) -> JSONValue {
        [
            "apiVersion": .string(VLLMModel.apiVersion),
            "kind": .string(VLLMModel.kind),
            "name": .string(model.workloadName),
            "uid": .string(model.metadata.uid ?? ""),
            "controller": true,
            "blockOwnerDeletion": true,
        ]
    }

    static func metadata(_ name: String, for model: VLLMModel, options: WorkloadOptions) -> JSONValue {
        [
            "name": .string(name),
            "namespace": .string(options.namespace),
            "labels": .object(labels(for: model)),
            "ownerReferences": [ownerReference(for: model)],
        ]
    }

    // MARK: Deployment

    /// The apply configuration (JSONValue) of Deployment `vllm-<name>` in options.namespace.
    /// `replicas` is written as is: chill-server owns the replica count through this apply.
    public static func deployment(for model: VLLMModel, replicas: Int, options: WorkloadOptions) -> JSONValue {
        var metadata = metadata(ChillContract.deploymentName(model: model.workloadName), for: model, options: options)
        metadata["annotations"] = [ChillContract.specGenerationAnnotation: .string(String(model.metadata.generation ?? 0))]
        return [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": metadata,
            "spec": [
                "replicas": .int(replicas),
                "revisionHistoryLimit": 2,
                "selector": ["matchLabels": selector(for: model)],
                "strategy": ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": 1, "maxUnavailable": 0]],
                "template": [
                    "metadata": [
                        "labels": .object(labels(for: model)),
                        "annotations": ["kubectl.kubernetes.io/default-container": .string(containerName)],
                    ],
                    "spec": podSpec(for: model, options: options),
                ],
            ],
        ]
    }

    static func podSpec(for model: VLLMModel, options: WorkloadOptions) -> JSONValue {
        let spec = model.spec
        var pod: JSONValue = [
            // vLLM does not talk to the API server.
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": .int(terminationGracePeriodSeconds),
            "containers": [container(for: model, options: options)],
            "volumes": [
                ["name": "cache", "persistentVolumeClaim": ["claimName": .string(ChillContract.cacheClaimName(model: model.workloadName))]],
                // PyTorch's shared memory (NCCL between tensor-parallel workers); the runtime's 64 MB is too small.
                ["name": "dshm", "emptyDir": ["medium": "Memory"]],
            ],
        ]
        if let selector = spec.nodeSelector, !selector.isEmpty {
            pod["nodeSelector"] = .object(selector.mapValues(JSONValue.string))
        }
        if let tolerations = spec.tolerations, !tolerations.isEmpty {
            pod["tolerations"] = (try? JSONValue(encoding: tolerations)) ?? []
        }
        return pod
    }

    static func container(for model: VLLMModel, options: WorkloadOptions) -> JSONValue {
        let spec = model.spec
        let httpGet: JSONValue = ["path": .string(healthPath), "port": "http"]
        return [
            "name": .string(containerName),
            "image": .string(spec.effectiveImage),
            "imagePullPolicy": "IfNotPresent",
            "args": .array(spec.vllmArguments(servedName: model.servedName).map(JSONValue.string)),
            "ports": [["name": "http", "containerPort": .int(spec.effectivePort), "protocol": "TCP"]],
            "env": .array(environment(for: model, options: options)),
            "resources": resources(for: spec),
            "volumeMounts": [
                ["name": "cache", "mountPath": .string(dataPath)],
                ["name": "dshm", "mountPath": "/dev/shm"],
            ],
            "startupProbe": [
                "httpGet": httpGet,
                "periodSeconds": .int(startupProbePeriodSeconds),
                "failureThreshold": .int(startupFailureThreshold(wakeTimeout: options.wakeTimeout)),
            ],
            "readinessProbe": ["httpGet": httpGet, "periodSeconds": 5, "failureThreshold": 3],
            "livenessProbe": ["httpGet": httpGet, "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5],
        ]
    }

    /// The smallest failure threshold for which `startupProbePeriodSeconds × threshold` is at least
    /// `wakeTimeout + startupProbeMargin`.
    public static func startupFailureThreshold(wakeTimeout: Duration) -> Int {
        let budget = max(wakeTimeout, .zero) + startupProbeMargin
        let seconds = Int(budget.components.seconds) + (budget.components.attoseconds > 0 ? 1 : 0)
        return (seconds + startupProbePeriodSeconds - 1) / startupProbePeriodSeconds
    }

    /// HF_HOME, HF_TOKEN (spec.hfTokenSecret), VLLM_API_KEY (options.apiKeySecret), then spec.env
    /// verbatim. A spec.env entry with one of the first three names replaces chill's (an env list may
    /// not name a variable twice).
    static func environment(for model: VLLMModel, options: WorkloadOptions) -> [JSONValue] {
        func fromSecret(_ name: String, _ secret: String, _ key: String) -> JSONValue {
            ["name": .string(name), "valueFrom": ["secretKeyRef": ["name": .string(secret), "key": .string(key)]]]
        }
        var env: [JSONValue] = [["name": "HF_HOME", "value": .string(huggingFaceHome)]]
        if let token = model.spec.hfTokenSecret {
            env.append(fromSecret("HF_TOKEN", token.name, token.effectiveKey))
        }
        if let apiKey = options.apiKeySecret {
            env.append(fromSecret("VLLM_API_KEY", apiKey.name, apiKey.key))
        }
        let own = model.spec.env ?? []
        let ownNames = Set(own.map(\.name))
        env.removeAll { ownNames.contains($0["name"]?.stringValue ?? "") }
        return env + own.map { (try? JSONValue(encoding: $0)) ?? .null }
    }

    /// Requests from spec.cpu and spec.memory; the memory limit is spec.memoryLimit, else spec.memory;
    /// `nvidia.com/gpu` in both when the model uses GPUs (gpus 0: CPU images and simulators).
    static func resources(for spec: VLLMModelSpec) -> JSONValue {
        var requests: [String: JSONValue] = [:]
        var limits: [String: JSONValue] = [:]
        if let cpu = spec.cpu { requests["cpu"] = .string(cpu.value) }
        if let memory = spec.memory { requests["memory"] = .string(memory.value) }
        if let limit = spec.memoryLimit ?? spec.memory { limits["memory"] = .string(limit.value) }
        if spec.effectiveGPUs > 0 {
            requests["nvidia.com/gpu"] = .int(spec.effectiveGPUs)
            limits["nvidia.com/gpu"] = .int(spec.effectiveGPUs)
        }
        var resources: [String: JSONValue] = [:]
        if !requests.isEmpty { resources["requests"] = .object(requests) }
        if !limits.isEmpty { resources["limits"] = .object(limits) }
        return .object(resources)
    }

    // MARK: Service

    /// The ClusterIP Service `vllm-<name>`: port 8000 (`http`) to the container port `http`.
    public static func service(for model: VLLMModel, options: WorkloadOptions) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata(ChillContract.serviceName(model: model.workloadName), for: model, options: options),
            "spec": [
                "type": "ClusterIP",
                "selector": selector(for: model),
                "ports": [["name": "http", "port": .int(servicePort), "targetPort": "http", "protocol": "TCP"]],
            ],
        ]
    }

    // MARK: Cache claim

    /// The PVC for the Hugging Face cache (`vllm-<name>-cache`, spec.cache.size default 50Gi, storageClass if set).
    public static func cacheClaim(for model: VLLMModel, options: WorkloadOptions) -> JSONValue {
        let cache = model.spec.cache ?? VLLMModelSpec.Cache()
        var spec: JSONValue = [
            "accessModes": ["ReadWriteOnce"],
            "resources": ["requests": ["storage": .string(cache.effectiveSize.value)]],
        ]
        if let storageClass = cache.storageClass, !storageClass.isEmpty {
            spec["storageClassName"] = .string(storageClass)
        }
        return [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": metadata(ChillContract.cacheClaimName(model: model.workloadName), for: model, options: options),
            "spec": spec,
        ]
    }
}

extension VLLMModel {
    /// `metadata.name`, or "" for an object without one.
    fileprivate var workloadName: String { metadata.name ?? "" }
}
