import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// chill-server's flags. Each has an environment fallback, keeping vllm-chill's names
/// (`VLLM_NAMESPACE`, `VLLM_DEPLOYMENT`, `VLLM_TARGET`, `VLLM_PORT`, `IDLE_TIMEOUT`, `PORT`) so its
/// users' manifests carry over. Invalid values stop the server at startup with one clear line.
struct ServerOptions: ParsableArguments {
    enum BackendKind: String, ExpressibleByArgument, CaseIterable {
        case kubernetes, process
    }

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        /// One model on the GPUs at a time (the seeds' default).
        case exclusive
    }

    @Option(help: "What runs the models: kubernetes (a Deployment per VLLMModel) or process (one local command). Default: kubernetes inside a cluster or with --kubeconfig, else process (env CHILL_BACKEND).")
    var backend: BackendKind?

    @Option(help: "How models share the GPUs: exclusive = one at a time, switching on demand (env CHILL_MODE).")
    var mode: Mode?

    @Option(help: "Serve only the VLLMModels matching this label selector, e.g. tier=gpu (env MODEL_SELECTOR).")
    var modelSelector: String?

    @Option(help: "On a switch, how long in-flight requests on the old model may run before it is stopped anyway (env DRAIN_TIMEOUT).")
    var drainTimeout: String?

    @Option(help: "A model that just became active keeps the GPUs at least this long, so alternating requests cannot thrash (env MIN_RESIDENCY).")
    var minResidency: String?

    @Option(help: "Bytes of held request bodies, all models together, before answering 429 (env MAX_HELD_BYTES).")
    var maxHeldBytes: Int?

    @Option(help: "Secret (in --namespace) whose key api-key is the API key; wired into the vLLM pods as VLLM_API_KEY (env VLLM_API_KEY_SECRET). The key itself comes from env VLLM_API_KEY.")
    var apiKeySecret: String?

    @Option(help: "Address to listen on.")
    var host: String = "0.0.0.0"

    @Option(help: "Port to listen on (env PORT).")
    var port: Int?

    @Option(help: "The model name clients send and /v1/models lists (env MODEL_ID).")
    var servedModelName: String?

    @Option(name: [.long, .customShort("n")], help: "The install namespace: models' Deployments, Services and the chill-state ConfigMap live here (env VLLM_NAMESPACE; default: the kubeconfig's namespace, in a pod its own).")
    var namespace: String?

    @Option(help: "Host of the local process (--backend process; env VLLM_TARGET).")
    var targetHost: String?

    @Option(help: "Port of the local process (--backend process; env VLLM_PORT).")
    var targetPort: Int?

    @Option(help: "Scale to zero after this long with no request in flight, e.g. 5m (env IDLE_TIMEOUT).")
    var idleTimeout: String?

    @Option(help: "How long a request is held while the model wakes, e.g. 10m (env WAKE_TIMEOUT).")
    var wakeTimeout: String?

    @Option(help: "Requests held during a wake before answering 429 (env MAX_HELD).")
    var maxHeld: Int?

    @Option(help: "Largest request body buffered while a request is held, in bytes (env MAX_BODY_SIZE).")
    var maxBodySize: Int?

    @Option(help: "Command that starts vLLM for --backend process, e.g. \"vllm serve Qwen/Qwen3-0.6B --port 8000\".")
    var command: String?

    @Option(help: "Where the process backend writes the command's output.")
    var logFile: String = "chill-backend.log"

    @Option(help: "Time a stopping process gets between SIGTERM and SIGKILL.")
    var stopGrace: String = "30s"

    @Option(help: "Bearer token required by POST /proxy/operations/* (env CHILL_ADMIN_TOKEN). Set one.")
    var adminToken: String?

    @Option(help: "Time in-flight requests get to finish on SIGTERM.")
    var shutdownGrace: String = "30s"

    @Option(help: "Close client connections idle this long (also bounds slow request headers).")
    var idleConnectionTimeout: String = "75s"

    @Option(help: "Time a client may pause while sending a request body (between two reads, as nginx's client_body_timeout); then 408.")
    var bodyReadTimeout: String = "60s"

    @Option(help: "Time the backend has to start answering a request it was sent (a non-streaming completion's head comes only when it is done); then 504.")
    var upstreamResponseTimeout: String = "10m"

    @Option(help: "Pooled backend connections idle this long are closed, never reused (keep it below vLLM's 5 s keep-alive).")
    var upstreamIdleTimeout: String = "4s"

    @Option(help: "GPUs the model uses, for the GPU-seconds-freed figure.")
    var gpus: Int = 1

    @Option(help: "kubeconfig to use outside a cluster (default: in-cluster, then KUBECONFIG, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context to use.")
    var context: String?

    @Option(help: "Event-loop threads serving connections (default: one per core).")
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"
}

/// The validated configuration the server runs with.
struct ServerConfig: Sendable {
    var backend: ServerOptions.BackendKind
    var host: String
    var port: Int
    var servedModelName: String
    /// `MODEL_ID`: the model active at first start (before `chill-state` exists).
    var initialModel: String?
    var namespace: String?
    var target: UpstreamTarget
    var mode: ServerOptions.Mode
    var modelSelector: String?
    var drainTimeout: Duration
    var minResidency: Duration
    var maxHeldBytes: Int
    var apiKey: String?
    var apiKeySecret: String?
    var idleTimeout: Duration
    var wakeTimeout: Duration
    var maxHeld: Int
    var maxBodySize: Int
    var command: String?
    var logFile: String
    var stopGrace: Duration
    var adminToken: String?
    var shutdownGrace: Duration
    var idleConnectionTimeout: Duration
    var upstreamResponseTimeout: Duration
    var bodyReadTimeout: Duration
    var upstreamIdleTimeout: Duration
    var gpus: Int
    var kubeconfig: String?
    var context: String?
    var logLevel: String
    var threads: Int?

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    init(_ o: ServerOptions, environment env: [String: String]) throws {
        func duration(_ flag: String, _ value: String) throws -> Duration {
            do {
                let d = try GoDuration.parse(value)
                guard d > .zero else { throw Invalid(description: "") }
                return d
            } catch {
                throw Invalid(description: "--\(flag) \"\(value)\" is not a positive duration — use e.g. 30s, 5m or 1h30m")
            }
        }
        func integer(_ flag: String, _ value: Int?, _ envName: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            var result = fallback
            if let value { result = value } else if let text = env[envName], !text.isEmpty {
                guard let parsed = Int(text) else { throw Invalid(description: "\(envName)=\"\(text)\" is not a number — set --\(flag)") }
                result = parsed
            }
            guard range.contains(result) else { throw Invalid(description: "--\(flag) \(result) is out of range \(range.lowerBound)...\(range.upperBound)") }
            return result
        }

        let inCluster = env["KUBERNETES_SERVICE_HOST"].map { !$0.isEmpty } ?? false
        if let text = env["CHILL_BACKEND"], !text.isEmpty, o.backend == nil, ServerOptions.BackendKind(rawValue: text) == nil {
            throw Invalid(description: "CHILL_BACKEND=\"\(text)\" is not kubernetes or process")
        }
        backend = o.backend ?? env["CHILL_BACKEND"].flatMap(ServerOptions.BackendKind.init(rawValue:))
            ?? (inCluster || o.kubeconfig != nil ? .kubernetes : .process)
        if let text = env["CHILL_MODE"], !text.isEmpty, o.mode == nil, ServerOptions.Mode(rawValue: text) == nil {
            throw Invalid(description: "CHILL_MODE=\"\(text)\" is not a mode — use exclusive")
        }
        mode = o.mode ?? env["CHILL_MODE"].flatMap(ServerOptions.Mode.init(rawValue:)) ?? .exclusive
        host = o.host
        port = try integer("port", o.port, "PORT", default: 8080, range: 0...65535)
        namespace = o.namespace ?? env["VLLM_NAMESPACE"].flatMap { $0.isEmpty ? nil : $0 }
        initialModel = o.servedModelName ?? env["MODEL_ID"].flatMap { $0.isEmpty ? nil : $0 }
        servedModelName = initialModel ?? "vllm"
        modelSelector = o.modelSelector ?? env["MODEL_SELECTOR"].flatMap { $0.isEmpty ? nil : $0 }
        drainTimeout = try duration("drain-timeout", o.drainTimeout ?? env["DRAIN_TIMEOUT"] ?? "2m")
        minResidency = try duration("min-residency", o.minResidency ?? env["MIN_RESIDENCY"] ?? "30s")
        maxHeldBytes = try integer("max-held-bytes", o.maxHeldBytes, "MAX_HELD_BYTES", default: 96 << 20, range: 1024...(8 << 30))
        let key = env["VLLM_API_KEY"]
        // It goes into an Authorization header as is: a trailing newline (a Secret made from a file)
        // would never match what a client can send.
        if let key, key.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) {
            throw Invalid(description: "VLLM_API_KEY contains whitespace or control characters (a trailing newline from the Secret's file?) — recreate the Secret with `kubectl create secret generic NAME --from-literal=key=…`")
        }
        apiKey = key?.isEmpty == false ? key : nil
        apiKeySecret = o.apiKeySecret ?? env["VLLM_API_KEY_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        let targetHost = o.targetHost ?? env["VLLM_TARGET"] ?? "127.0.0.1"
        let targetPort = try integer("target-port", o.targetPort, "VLLM_PORT", default: 8000, range: 1...65535)
        target = UpstreamTarget(host: targetHost, port: targetPort)
        idleTimeout = try duration("idle-timeout", o.idleTimeout ?? env["IDLE_TIMEOUT"] ?? "5m")
        wakeTimeout = try duration("wake-timeout", o.wakeTimeout ?? env["WAKE_TIMEOUT"] ?? "10m")
        maxHeld = try integer("max-held", o.maxHeld, "MAX_HELD", default: 1000, range: 1...1_000_000)
        maxBodySize = try integer("max-body-size", o.maxBodySize, "MAX_BODY_SIZE", default: 32 << 20, range: 1024...(1 << 30))
        command = o.command
        logFile = o.logFile
        stopGrace = try duration("stop-grace", o.stopGrace)
        let token = o.adminToken ?? env["CHILL_ADMIN_TOKEN"]
        adminToken = token?.isEmpty == false ? token : nil
        shutdownGrace = try duration("shutdown-grace", o.shutdownGrace)
        idleConnectionTimeout = try duration("idle-connection-timeout", o.idleConnectionTimeout)
        upstreamResponseTimeout = try duration("upstream-response-timeout", o.upstreamResponseTimeout)
        bodyReadTimeout = try duration("body-read-timeout", o.bodyReadTimeout)
        upstreamIdleTimeout = try duration("upstream-idle-timeout", o.upstreamIdleTimeout)
        guard o.gpus >= 0 else { throw Invalid(description: "--gpus must be 0 or more") }
        gpus = o.gpus
        kubeconfig = o.kubeconfig
        context = o.context
        logLevel = o.logLevel
        if let threads = o.threads, !(1...256).contains(threads) { throw Invalid(description: "--threads \(threads) must be between 1 and 256") }
        threads = o.threads
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw Invalid(description: "--log-level \"\(logLevel)\" is not one of trace, debug, info, notice, warning, error")
        }
        if backend == .process, command?.isEmpty ?? true {
            throw Invalid(description: "--backend process needs --command, e.g. --command \"vllm serve Qwen/Qwen3-0.6B --port 8000\"")
        }
    }
}
