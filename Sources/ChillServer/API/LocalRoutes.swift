import NIOCore
import NIOHTTP1
import Shared
import Synchronization

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
    /// Relay to the backend; `countsAsActivity` is false for `/metrics` scrapes.
    case proxy(countsAsActivity: Bool)
    case unavailable(OpenAIError)
}

/// chill's own endpoints. Health checks, metrics scrapes and `/v1/models` never wake the model
/// and never count as activity (chat UIs poll `/v1/models` and would keep GPUs awake forever).
final class LocalRoutes: Sendable {
    let servedModelNames: [String]
    let control: any ModelControl
    let isModelReady: @Sendable () -> Bool
    let metrics: ChillMetrics?
    let adminToken: String?
    let shutdown: ShutdownFlag
    let gpus: Int
    private let created = Int(ProcessMetrics.unixTime())

    init(servedModelNames: [String], control: any ModelControl, isModelReady: @escaping @Sendable () -> Bool, metrics: ChillMetrics?, adminToken: String?, shutdown: ShutdownFlag, gpus: Int) {
        self.servedModelNames = servedModelNames
        self.control = control
        self.isModelReady = isModelReady
        self.metrics = metrics
        self.adminToken = adminToken
        self.shutdown = shutdown
        self.gpus = gpus
    }

    /// Decided on the event loop, synchronously.
    func route(for head: HTTPRequestHead) -> Route {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch path {
        case "/health", "/readyz", "/proxy/version", "/proxy/metrics", "/proxy/stats", "/proxy/operations/start", "/proxy/operations/stop":
            return .local
        case "/v1/models" where head.method == .GET:
            return .local
        case "/metrics":
            if isModelReady() { return .proxy(countsAsActivity: false) }
            return .unavailable(OpenAIError(status: .serviceUnavailable, message: "the model is not running; its metrics are unavailable while scaled down", type: "service_unavailable", code: "model_not_running", retryAfterSeconds: 30))
        default:
            return .proxy(countsAsActivity: true)
        }
    }

    func handle(_ head: HTTPRequestHead, body: ByteBuffer) async -> LocalResponse {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch (head.method, path) {
        case (.GET, "/health"), (.HEAD, "/health"):
            return .json(["status": "ok"])
        case (.GET, "/readyz"):
            let ready = await control.hasObservedBackend() && !shutdown.isSet
            return .json(["ready": .bool(ready)], status: ready ? .ok : .serviceUnavailable)
        case (.GET, "/proxy/version"):
            return .json(["version": .string(ChillVersion.current), "component": "chill-server"])
        case (.GET, "/proxy/metrics"):
            let snapshot = await control.snapshot()
            let text = metrics?.render(inFlight: snapshot.inFlight, idle: snapshot.idleSeconds, scaledDown: snapshot.stats.scaledDownSeconds) ?? []
            return LocalResponse(status: .ok, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: text)
        case (.GET, "/proxy/stats"):
            return .json(Self.stats(await control.snapshot(), model: servedModelNames.first ?? "", gpus: gpus))
        case (.GET, "/v1/models"):
            return .json(["object": "list", "data": .array(servedModelNames.map { ["id": .string($0), "object": "model", "created": .int(created), "owned_by": "chill"] })])
        case (.POST, "/proxy/operations/start"):
            guard authorized(head) else { return Self.error(.unauthorized) }
            await control.start()
            return .json(["status": "starting"], status: .accepted)
        case (.POST, "/proxy/operations/stop"):
            guard authorized(head) else { return Self.error(.unauthorized) }
            let force = head.uri.contains("force=true")
            await control.stop(force: force)
            return .json(["status": force ? "stopping" : "stopping after in-flight requests"], status: .accepted)
        default:
            return Self.error(.methodNotAllowed(head.method, path))
        }
    }

    /// Constant-time comparison of the bearer token.
    private func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let adminToken else { return true }
        guard let header = head.headers.first(name: "authorization"), header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.dropFirst(7).utf8)
        let expected = Array(adminToken.utf8)
        var difference = given.count ^ expected.count
        for i in 0..<expected.count { difference |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
        return difference == 0
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
