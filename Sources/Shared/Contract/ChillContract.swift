/// The names kubectl-chill and chill-server agree on (docs/CLI.md, "The contract with chill-server").
/// Both binaries use these constants, so a name cannot differ between the writer and the reader.
public enum ChillContract {
    // MARK: The active model

    /// ConfigMap in the install namespace holding the active model.
    public static let stateConfigMap = "chill-state"
    public static let activeModelKey = "activeModel"
    public static let switchedAtKey = "switchedAt"

    // MARK: Field managers

    /// The server-side apply field manager of every write the plugin makes.
    public static let fieldManager = "kubectl-chill"
    /// The server-side apply field manager of every write chill-server makes (a model's Deployment,
    /// Service and cache claim, and its status).
    public static let serverFieldManager = "chill-server"

    // MARK: Start/stop intents, written on the VLLMModel with a merge patch

    public static let requestedStateAnnotation = "chill.dev/requested-state"
    public static let requestedAtAnnotation = "chill.dev/requested-at"
    public static let stopModeAnnotation = "chill.dev/stop-mode"
    /// Values of `chill.dev/requested-state`.
    public static let requestedStateAwake = "awake"
    public static let requestedStateAsleep = "asleep"
    /// Values of `chill.dev/stop-mode`: let in-flight requests finish, or not.
    public static let stopModeGraceful = "graceful"
    public static let stopModeForce = "force"

    // MARK: A model's workload

    /// Label of a model's Deployment, Service, cache claim and pods: the VLLMModel's name.
    public static let modelLabel = "chill.dev/model"
    /// Annotation on a model's Deployment: the VLLMModel `metadata.generation` it was rendered from.
    public static let specGenerationAnnotation = "chill.dev/spec-generation"
    /// The proxy's Deployment in the install namespace.
    public static let proxyDeployment = "chill-server"

    /// The Deployment chill-server creates for a model, in the install namespace.
    public static func deploymentName(model: String) -> String { "vllm-\(model)" }
    /// The Service in front of a model's pods, in the install namespace.
    public static func serviceName(model: String) -> String { "vllm-\(model)" }
    /// The PersistentVolumeClaim holding a model's Hugging Face cache, in the install namespace.
    public static func cacheClaimName(model: String) -> String { "vllm-\(model)-cache" }

    // MARK: Status conditions

    /// Condition types chill-server sets on a VLLMModel.
    public static let conditionReady = "Ready"
    public static let conditionWaking = "Waking"
    public static let conditionFailed = "Failed"

    /// Condition reasons.
    public static let reasonCrashLoopBackOff = "CrashLoopBackOff"
    public static let reasonImagePullBackOff = "ImagePullBackOff"
    public static let reasonUnschedulable = "Unschedulable"
    public static let reasonWakeTimeout = "WakeTimeout"
    public static let reasonSpecConflict = "SpecConflict"
}
