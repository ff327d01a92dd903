import NIOCore
import NIOHTTP1
import Shared
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A set-once flag read on the hot path.
final class ShutdownFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

struct LocalResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: [UInt8]

    static func json(_ value: JSONValue, status: HTTPResponseStatus = .ok) -> LocalResponse {
        LocalResponse(status: status, headers: ["content-type": "application/json"], body: Array(value.jsonString().utf8) + [10])
    }

    static func text(_ text: String, status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> LocalResponse {
        LocalResponse(status: status, headers: ["content-type": contentType], body: Array(text.utf8))
    }
}

enum Route {
    case local
    case proxy(ProxyKind)
    case unavailable(OpenAIError)
}

/// How a proxied request finds its model.
enum ProxyKind {
    /// vLLM's `/metrics` of the active model while it serves: relayed, never counted as activity.
    case metrics(ServedModelHandle)
    /// An OpenAI request with a JSON body: routed by its top-level `model`.
    case byModel(needsAPIKey: Bool)
    /// Anything else: the active model.
    case activeModel(needsAPIKey: Bool)

    var needsAPIKey: Bool {
        switch self {
        case .metrics: false
        case .byModel(let needs), .activeModel(let needs): needs
        }
    }
}

/// Switches the active model (exclusive mode). Implemented by the controller.
protocol ModelSwitching: Sendable {
    /// Makes `id` the active model: the current one drains and scales down first.
    func requestSwitch(to id: String, reason: String) async throws
}

/// chill's own endpoints. Health checks, metrics scrapes and `/v1/models` never wake a model
/// and never count as activity (chat UIs poll `/v1/models` and would keep GPUs awake forever).
final class LocalRoutes: Sendable {
    let models: ModelRegistry
    let switcher: (any ModelSwitching)?
    let isReady: @Sendable () async -> Bool
    let metrics: MetricsHub?
    let adminToken: APIKey?
    let apiKey: APIKey?
    let shutdown: ShutdownFlag
    private let created = Int(ProcessMetrics.unixTime())

    /// Paths vLLM serves outside `/v1` whose JSON bodies name a model.
    private static let modelRoutedPaths: Set<String> = ["/tokenize", "/detokenize", "/pooling", "/classify", "/score", "/rerank", "/v2/rerank", "/invocations"]

    init(models: ModelRegistry, switcher: (any ModelSwitching)? = nil, isReady: @escaping @Sendable () async -> Bool, metrics: MetricsHub?,
         adminToken: String?, apiKey: APIKey? = nil, shutdown: ShutdownFlag) {
        self.models = models
        self.switcher = switcher
        self.isReady = isReady
        self.metrics = metrics
        self.adminToken = APIKey(adminToken)
        self.apiKey = apiKey
        self.shutdown = shutdown
    }

    static func path(of uri: String) -> Substring {
        guard let q = uri.firstIndex(of: "?") else { return uri[...] }
        return uri[..<q]
    }

    /// Decided on the event loop, synchronously.
    func route(for head: HTTPRequestHead) -> Route {
        // A proxy for vLLM's API, not a forward proxy: no tunnels.
        if head.method == .CONNECT {
            return .unavailable(OpenAIError(status: .methodNotAllowed, message: "CONNECT is not supported: chill-server is not a forward proxy",
                                            type: "invalid_request_error", code: "method_not_allowed"))
        }
        let path = Self.path(of: head.uri)
        if path.hasPrefix("/proxy/") || path == "/health" || path == "/readyz" { return .local }
        let isV1 = path.hasPrefix("/v1/")
        if isV1, path == "/v1/models", head.method == .GET { return .local }
        if path == "/metrics" {
            if case .model(let handle) = models.resolve(nil), handle.proxy.isServing { return .proxy(.metrics(handle)) }
            return .unavailable(OpenAIError(status: .serviceUnavailable, message: "no model is running; vLLM's metrics are unavailable while scaled down", type: "service_unavailable", code: "model_not_running", retryAfterSeconds: 30))
        }
        let hasBody = head.method == .POST || head.method == .PUT || head.method == .PATCH
        if hasBody, isV1 || Self.modelRoutedPaths.contains(String(path)) { return .proxy(.byModel(needsAPIKey: isV1)) }
        return .proxy(.activeModel(needsAPIKey: isV1))
    }

    func handle(_ head: HTTPRequestHead, body: ByteBuffer) async -> LocalResponse {
        let path = String(Self.path(of: head.uri))
        let query = Self.query(head.uri)
        switch (head.method, path) {
        case (.GET, "/health"), (.HEAD, "/health"):
            return .json(["status": "ok"])
        case (.GET, "/readyz"):
            let ready = await isReady() && !shutdown.isSet
            return .json(["ready": .bool(ready)], status: ready ? .ok : .serviceUnavailable)
        case (.GET, "/proxy/version"):
            return .json(["version": .string(ChillVersion.current), "component": "chill-server"])
        case (.GET, "/proxy/metrics"):
            for model in models.all {
                let s = await model.control.snapshot()
                model.proxy.metrics?.refresh(inFlight: s.inFlight, idle: s.idleSeconds, scaledDown: s.stats.scaledDownSeconds)
            }
            return LocalResponse(status: .ok, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: metrics?.render() ?? [])
        case (.GET, "/proxy/stats"):
            guard let model = selected(query) else { return Self.error(noSuchModel(query)) }
            var stats = Self.stats(await model.control.snapshot(), model: model.servedName, gpus: model.control.gpus)
            stats["active"] = .bool(models.activeID == model.id)
            return .json(stats)
        case (.GET, "/v1/models"):
            if let apiKey, !apiKey.matches(authorization: head.headers.first(name: "authorization")) { return Self.error(.invalidAPIKey) }
            return .json(["object": "list", "data": .array(models.all.map { ["id": .string($0.servedName), "object": "model", "created": .int(created), "owned_by": "chill"] })])
        case (.GET, "/proxy/models/available"):
            return .json(["models": .array(await models.all.asyncMap { await self.describe($0) })])
        case (.GET, "/proxy/models/running"):
            var running: [JSONValue] = []
            for model in models.all {
                let phase = await model.control.snapshot().phase
                if phase == .ready || phase == .waking || phase == .draining { running.append(await describe(model)) }
            }
            return .json(["models": .array(running)])
        case (.POST, "/proxy/models/switch"):
            guard authorized(head) else { return Self.error(.unauthorized) }
            guard let switcher else { return Self.error(OpenAIError(status: .conflict, message: "switching needs --mode exclusive", type: "invalid_request_error", code: "switch_unsupported")) }
            guard let request = try? JSONValue.parse(Data(body.readableBytesView)), let id = request["model_id"]?.stringValue ?? request["model"]?.stringValue else {
                return Self.error(OpenAIError(status: .badRequest, message: "send {\"model_id\": \"NAME\"}", type: "invalid_request_error", code: "invalid_request"))
            }
            guard let model = models.handle(named: id) else { return Self.error(.unknownModel(id, available: models.all.map(\.servedName))) }
            do { try await switcher.requestSwitch(to: model.id, reason: "POST /proxy/models/switch") } catch {
                return Self.error(OpenAIError(status: .serviceUnavailable, message: "switch to \(id) failed: \(error)", type: "service_unavailable", code: "switch_failed", retryAfterSeconds: 5))
            }
            return .json(["status": "switching", "model_id": .string(model.servedName)], status: .accepted)
        case (.POST, "/proxy/operations/start"):
            guard authorized(head) else { return Self.error(.unauthorized) }
            guard let model = selected(query) else { return Self.error(noSuchModel(query)) }
            await model.control.start()
            return .json(["status": "starting", "model": .string(model.servedName)], status: .accepted)
        case (.POST, "/proxy/operations/stop"):
            guard authorized(head) else { return Self.error(.unauthorized) }
            guard let model = selected(query) else { return Self.error(noSuchModel(query)) }
            let force = query["force"] == "true"
            await model.control.stop(force: force)
            return .json(["status": .string(force ? "stopping" : "stopping after in-flight requests"), "model": .string(model.servedName)], status: .accepted)
        default:
            return Self.error(.methodNotAllowed(head.method, path))
        }
    }

    /// `?model=NAME`, else the active (or only) model.
    private func selected(_ query: [String: String]) -> ServedModelHandle? {
        if let name = query["model"], !name.isEmpty { return models.handle(named: name) }
        if case .model(let handle) = models.resolve(nil) { return handle }
        return nil
    }

    private func noSuchModel(_ query: [String: String]) -> OpenAIError {
        if let name = query["model"], !name.isEmpty { return .unknownModel(name, available: models.all.map(\.servedName)) }
        return .noActiveModel(available: models.all.map(\.servedName))
    }

    private func describe(_ model: ServedModelHandle) async -> JSONValue {
        let s = await model.control.snapshot()
        return [
            "id": .string(model.servedName), "name": .string(model.id), "phase": .string(s.phase.rawValue),
            "active": .bool(models.activeID == model.id), "readyReplicas": .int(s.backend.readyReplicas),
            "inFlight": .int(s.inFlight), "held": .int(s.held),
        ]
    }

    static func query(_ uri: String) -> [String: String] {
        guard let q = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in uri[uri.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let key = parts.first else { continue }
            result[String(key)] = parts.count > 1 ? String(parts[1]).removingPercentEncodingLossy : ""
        }
        return result
    }

    /// Constant-time comparison of the bearer token.
    private func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let adminToken else { return true }
        return adminToken.matches(authorization: head.headers.first(name: "authorization"))
    }

    static func error(_ error: OpenAIError) -> LocalResponse {
        LocalResponse(status: error.status, headers: error.headers, body: error.body)
    }

    static func stats(_ s: ScalerSnapshot, model: String, gpus: Int) -> JSONValue {
        var backend: JSONValue = [
            "desiredReplicas": .int(s.backend.desiredReplicas), "readyReplicas": .int(s.backend.readyReplicas),
            "pendingReplicas": .int(s.backend.pendingReplicas),
        ]
        if let notice = s.backend.notice { backend["notice"] = .string(notice) }
        if let failure = s.backend.failure { backend["failure"] = .string(failure.description) }
        if let progress = s.backend.progress { backend["progress"] = .string(progress) }
        var wakes: JSONValue = ["count": .int(s.stats.wakes), "failed": .int(s.stats.failedWakes)]
        if let last = s.stats.lastWakeSeconds { wakes["lastSeconds"] = .double(last) }
        if s.stats.wakes > 0 { wakes["meanSeconds"] = .double(s.stats.totalWakeSeconds / Double(s.stats.wakes)) }
        var result: JSONValue = [
            "model": .string(model), "state": .string(s.phase.rawValue), "stateSeconds": .double(s.phaseSeconds),
            "uptimeSeconds": .double(s.uptimeSeconds), "idleSeconds": .double(s.idleSeconds),
            "inFlight": .int(s.inFlight), "held": .int(s.held), "wakes": wakes,
            "scaledDownSeconds": .double(s.stats.scaledDownSeconds),
            "gpuSecondsFreed": .double(s.stats.scaledDownSeconds * Double(gpus)), "backend": backend,
        ]
        if let failure = s.lastFailure { result["lastFailure"] = .string(failure) }
        return result
    }
}
