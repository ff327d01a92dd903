import Foundation
import KubeTestServer
import Logging
import ServiceLifecycle
import Shared
@testable import ChillServer

/// chill-server assembled in-process exactly as `main` does (ServerOptions → ServerConfig → ChillApp →
/// ServiceGroup), listening on an ephemeral port of 127.0.0.1. Talk to it over real sockets with
/// `E2EHTTP`; `stop()` shuts it down gracefully (the process backend stops its child) and waits.
final class E2EChill: @unchecked Sendable {
    let port: Int
    /// The process backend's log file (the child's stdout/stderr plus chill's start/exit lines).
    let logFile: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(port: Int, logFile: String, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.logFile = logFile
        self.group = group
        self.task = task
    }

    /// `arguments` are chill-server flags; `--host 127.0.0.1 --port 0 --log-file <tmp>` and short
    /// shutdown/stop grace periods are added.
    static func start(_ arguments: [String], environment: [String: String] = [:]) async throws -> E2EChill {
        let logFile = FileManager.default.temporaryDirectory.appendingPathComponent("chill-e2e-\(UUID().uuidString).log").path
        let all = ["--host", "127.0.0.1", "--port", "0", "--log-file", logFile, "--shutdown-grace", "3s", "--stop-grace", "3s"] + arguments
        let options = try ServerOptions.parse(all)
        let config = try ServerConfig(options, environment: environment)
        var logger = Logger(label: "chill.e2e")
        logger.logLevel = ProcessInfo.processInfo.environment["CHILL_TEST_LOG"] != nil ? .debug : .critical
        let app = try ChillApp(config: config, logger: logger)
        let group = ServiceGroup(configuration: .init(services: app.services, logger: logger))
        let task = Task { try await group.run() }
        let port: Int
        do { port = try await app.proxy.boundPort } catch {
            task.cancel()
            throw error
        }
        return E2EChill(port: port, logFile: logFile, group: group, task: task)
    }

    /// Graceful shutdown, bounded: cancels the run task if it hasn't returned within `timeout`.
    func stop(timeout: Duration = .seconds(15)) async {
        await group.triggerGracefulShutdown()
        let task = self.task
        let finished = await E2EChill.race(timeout) { _ = try? await task.value }
        if !finished {
            task.cancel()
            _ = await E2EChill.race(.seconds(5)) { _ = try? await task.value }
        }
        try? FileManager.default.removeItem(atPath: logFile)
    }

    /// Runs `body`; true when it finished within `timeout`. Returns at the deadline even if `body`
    /// ignores cancellation (it is cancelled and left behind), so a stuck shutdown can't hang a test.
    static func race(_ timeout: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
        let (results, continuation) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let worker = Task {
            await body()
            continuation.yield(true)
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            continuation.yield(false)
        }
        var finished = false
        for await result in results {
            finished = result
            break
        }
        timer.cancel()
        if !finished { worker.cancel() }
        continuation.finish()
        return finished
    }

    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    // MARK: - Requests

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
                 timeout: Double = 20, stopAfterChunks: Int? = nil) async throws -> E2EHTTP.Response {
        try await E2EHTTP.request(port: port, method, path, body: body, headers: headers, timeout: timeout, stopAfterChunks: stopAfterChunks)
    }

    func stats() async throws -> [String: Any] {
        let response = try await request("GET", "/proxy/stats", timeout: 5)
        guard response.status == 200 else { throw E2EHTTP.Failure.malformed("/proxy/stats: \(response)") }
        return try response.json()
    }

    func state() async throws -> String { try await stats()["state"] as? String ?? "?" }

    /// Polls /proxy/stats every 20 ms until `predicate` holds.
    @discardableResult
    func waitForStats(_ what: String, timeout: Duration = .seconds(15), _ predicate: @escaping ([String: Any]) -> Bool) async throws -> [String: Any] {
        var matched: [String: Any] = [:]
        try await E2EWait.until(what, timeout: timeout) {
            let stats = try await self.stats()
            if predicate(stats) { matched = stats; return (true, "") }
            return (false, E2EChill.summary(stats))
        }
        return matched
    }

    func waitForState(_ state: String, timeout: Duration = .seconds(15)) async throws {
        try await waitForStats("state \(state)", timeout: timeout) { $0["state"] as? String == state }
    }

    /// In-flight and held counts back at 0 (they drop right after the response's last byte is flushed,
    /// so a client can see its answer a moment before the proxy counted the request out).
    func waitForNothingInFlight(timeout: Duration = .seconds(3)) async throws {
        try await waitForStats("nothing in flight or held", timeout: timeout) {
            E2EChill.int($0["inFlight"]) == 0 && E2EChill.int($0["held"]) == 0
        }
    }

    static func summary(_ stats: [String: Any]) -> String {
        let keys = ["state", "inFlight", "held", "wakes", "backend", "lastFailure"]
        return keys.compactMap { key in stats[key].map { "\(key)=\($0)" } }.joined(separator: " ")
    }

    static func int(_ value: Any?) -> Int { (value as? Int) ?? (value as? NSNumber)?.intValue ?? -1 }
    static func wakes(_ stats: [String: Any]) -> Int { int((stats["wakes"] as? [String: Any])?["count"]) }
}

/// Request bodies and the model name the end-to-end tests use.
enum E2E {
    static let model = "e2e-model"

    static func chat(stream: Bool = false, maxTokens: Int = 4, content: String = "Say hi") -> String {
        #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(content)"}],"max_tokens":\#(maxTokens),"stream":\#(stream)}"#
    }

    static func completion(maxTokens: Int = 4) -> String {
        #"{"model":"\#(model)","prompt":"Once upon a time","max_tokens":\#(maxTokens)}"#
    }

    /// The vllm-sim command line for the process backend (no `--exit-on-stdin-close`: its stdin is /dev/null).
    static func simCommand(port: Int, extra: [String] = []) throws -> String {
        let binary = try VLLMSim.binaryPath()
        return ([binary, "--port", String(port), "--served-model-name", model] + extra).joined(separator: " ")
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    static func listening(_ port: Int) -> Bool {
        guard let connection = try? E2EHTTP.Connection.open(port: port, timeout: 2) else { return false }
        connection.close()
        return true
    }

    /// A Prometheus sample's value: the first line starting with `name` (labels included in `name`).
    static func metric(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return nil
    }

    /// SSE chunk text with the per-response fields (`id`, `created`) blanked, to compare two responses.
    static func normalized(_ chunk: String) -> String {
        var text = chunk
        for pattern in [#""id":"[^"]*""#, #""created":[0-9]+"#] {
            text = text.replacingOccurrences(of: pattern, with: "<\(pattern.prefix(6))>", options: .regularExpression)
        }
        return text
    }
}

/// The KubeTestServer side: a `vllm` Deployment at 0 replicas in `default`, and a kubeconfig file with
/// admin credentials for `--kubeconfig`.
struct E2EKube {
    let server: KubeTestServer
    let kubeconfigPath: String
    static let namespace = "chill-system"
    static let deployment = "vllm-\(E2E.model)"

    /// A test API server with the VLLMModel CRD, the install namespace, and (when `modelPort` is set)
    /// VLLMModel `E2E.model` whose pods listen on 127.0.0.1:modelPort.
    static func start(autoReady: Bool = true, modelPort: Int? = nil) async throws -> E2EKube {
        let server = try await KubeTestServer.start(namespaces: ["default", "kube-system", namespace])
        server.simulator.autoReady = autoReady
        let crd = await server.handle("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json: VLLMModelCRD.definition())
        guard crd.status == 201 else {
            try? await server.shutdown()
            throw E2EHTTP.Failure.malformed("registering the CRD: \(crd.status) \(crd.text)")
        }
        let kube = E2EKube(server: server, kubeconfigPath: FileManager.default.temporaryDirectory.appendingPathComponent("chill-e2e-kubeconfig-\(UUID().uuidString)").path)
        try server.kubeconfig().write(toFile: kube.kubeconfigPath, atomically: true, encoding: .utf8)
        if let modelPort { try await kube.createModel(E2E.model, port: modelPort) }
        return kube
    }

    /// Creates a VLLMModel served on 127.0.0.1:port (the simulator's pods get that IP), without GPUs.
    func createModel(_ name: String, port: Int, servedName: String? = nil, extra: [String: JSONValue] = [:]) async throws {
        var spec: JSONValue = ["modelName": "Qwen/Qwen3-0.6B", "port": .int(port), "gpus": 0, "image": "vllm/vllm-openai:v0.12.0"]
        if let servedName { spec["servedModelName"] = .string(servedName) }
        for (key, value) in extra { spec[key] = value }
        let model: JSONValue = ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": ["name": .string(name)], "spec": spec]
        let created = await server.handle("POST", "/apis/chill.dev/v1alpha1/vllmmodels", json: model)
        guard created.status == 201 else { throw E2EHTTP.Failure.malformed("creating VLLMModel \(name): \(created.status) \(created.text)") }
    }

    /// chill-server flags for this cluster.
    func chillArguments(targetPort: Int = 0) -> [String] {
        ["--backend", "kubernetes", "--kubeconfig", kubeconfigPath, "--namespace", Self.namespace]
    }

    /// Server-side applies of a model's Deployment that changed its replicas, with the replicas asked for.
    func scalePatches(model: String = E2E.model) async -> [(replicas: Int?, status: Int)] {
        var last: Int?
        var result: [(replicas: Int?, status: Int)] = []
        for request in await server.requests where request.method == "PATCH" && request.path.hasPrefix("/apis/apps/v1/namespaces/\(Self.namespace)/deployments/vllm-\(model)?") {
            let replicas = (try? JSONValue.parse(request.body))?["spec"]?["replicas"]?.intValue ?? 0
            if replicas != (last ?? 0) { result.append((replicas, request.status)) }
            last = replicas
        }
        return result
    }

    func replicas(model: String = E2E.model) async -> Int? {
        let response = await server.handle(method: "GET", path: "/apis/apps/v1/namespaces/\(Self.namespace)/deployments/vllm-\(model)")
        return response.json?["spec"]?["replicas"]?.intValue
    }

    /// Waits until the Deployment asks for `n` replicas (its Pods exist as soon as it does: the simulator
    /// reconciles before the write returns).
    func waitForReplicas(_ n: Int, model: String = E2E.model, timeout: Duration = .seconds(10)) async throws {
        try await E2EWait.until("the Deployment of \(model) at \(n) replicas", timeout: timeout) {
            let replicas = await replicas(model: model)
            return (replicas == n, "replicas \(replicas.map(String.init) ?? "-")")
        }
    }

    func markReady(model: String = E2E.model) async { await server.markPodsReady(namespace: Self.namespace, deployment: "vllm-\(model)") }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(atPath: kubeconfigPath)
    }
}
