/// What the controller needs from chill-server's configuration.
struct ControllerSettings: Sendable {
    /// The install namespace: workloads and the chill-state ConfigMap.
    var namespace: String
    var modelSelector: String?
    /// `MODEL_ID`: the active model before chill-state exists.
    var initialModel: String?
    /// Used when a VLLMModel leaves `idleTimeout`/`wakeTimeout` unset.
    var idleTimeout: Duration = .seconds(300)
    var wakeTimeout: Duration = .seconds(600)
    var maxHeld = 1000
    var minResidency: Duration = .seconds(30)
    var drainTimeout: Duration = .seconds(120)
    /// The Secret whose key `api-key` vLLM must require.
    var apiKeySecret: String?
    /// At most one write of a changed `lastActivityTime` per model in this interval.
    var activityWriteInterval: Duration = .seconds(10)
    var probePolicy = HealthProbePolicy()

    init(namespace: String, modelSelector: String? = nil, initialModel: String? = nil) {
        self.namespace = namespace
        self.modelSelector = modelSelector
        self.initialModel = initialModel
    }

    init(_ config: ServerConfig, namespace: String) {
        self.init(namespace: namespace, modelSelector: config.modelSelector, initialModel: config.initialModel)
        idleTimeout = config.idleTimeout
        wakeTimeout = config.wakeTimeout
        maxHeld = config.maxHeld
        minResidency = config.minResidency
        drainTimeout = config.drainTimeout
        apiKeySecret = config.apiKeySecret
    }
}
