import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// A KubeTestServer with the VLLMModel CRD and the `chill-system` namespace, plus a kubeconfig file.
struct ModelHarness {
    static let namespace = "chill-system"
    /// The "now" the golden tests pin (`CLIClock.fixedNow`).
    static let now = RFC3339.parse("2030-01-01T12:00:00Z")!

    let server: KubeTestServer
    let directory: String
    let kubeconfigPath: String

    /// `proxy`: seed a ready chill-server Deployment (`switch` and `wait` refuse without one).
    static func start(proxy: Bool = true) async throws -> ModelHarness {
        let server = try await KubeTestServer.start(namespaces: ["default", "kube-system", namespace])
        let crd = await server.handle("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json: VLLMModelCRD.definition())
        #expect(crd.status == 201, "creating the CRD: \(crd.text)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chill-models-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/kubeconfig"
        try server.kubeconfig().write(toFile: path, atomically: true, encoding: .utf8)
        let harness = ModelHarness(server: server, directory: directory, kubeconfigPath: path)
        if proxy { await harness.seedProxy() }
        return harness
    }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `kubectl chill <arguments> --kubeconfig <file>` with captured output, "now" pinned unless `now` is nil.
    func run(_ arguments: [String], now: Date? = ModelHarness.now, console: Console = Console(capturing: ())) async -> ModelRun {
        let code = await CLIClock.$fixedNow.withValue(now) {
            await Console.$current.withValue(console) { await Entry.run(arguments + ["--kubeconfig", kubeconfigPath]) }
        }
        return ModelRun(code: code, out: console.output, err: console.errorOutput)
    }

    // MARK: Seeding through the API

    static let modelsPath = "/apis/chill.dev/v1alpha1/vllmmodels"

    @discardableResult
    func seedModel(_ name: String, spec: JSONValue, status: JSONValue? = nil, annotations: JSONValue? = nil) async -> JSONValue? {
        var metadata: JSONValue = ["name": .string(name)]
        if let annotations { metadata["annotations"] = annotations }
        let created = await server.handle("POST", Self.modelsPath, json: ["apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel", "metadata": metadata, "spec": spec])
        #expect(created.status == 201, "creating \(name): \(created.text)")
        if let status { await setStatus(name, status) }
        return await get("\(Self.modelsPath)/\(name)")
    }

    func setStatus(_ name: String, _ status: JSONValue) async {
        let r = await server.handle("PATCH", "\(Self.modelsPath)/\(name)/status", json: ["status": status], contentType: "application/merge-patch+json")
        #expect(r.status == 200, "status of \(name): \(r.text)")
    }

    func setActive(_ name: String, at: String = "2030-01-01T09:00:00Z") async {
        let r = await server.handle("POST", "/api/v1/namespaces/\(Self.namespace)/configmaps", json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "chill-state"],
            "data": ["activeModel": .string(name), "switchedAt": .string(at)],
        ])
        #expect(r.status == 201, "chill-state: \(r.text)")
    }

    /// The proxy Deployment, made ready by the simulator.
    func seedProxy(version: String? = "0.3.0", image: String = "ghcr.io/chill/chill-server:0.3.0") async {
        var labels: JSONValue = ["app.kubernetes.io/name": "chill-server"]
        if let version { labels["app.kubernetes.io/version"] = .string(version) }
        let r = await server.handle("POST", "/apis/apps/v1/namespaces/\(Self.namespace)/deployments", json: [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": "chill-server", "labels": labels],
            "spec": [
                "replicas": 1, "selector": ["matchLabels": ["app": "chill-server"]],
                "template": ["metadata": ["labels": ["app": "chill-server"]], "spec": ["containers": [["name": "chill-server", "image": .string(image)]]]],
            ],
        ])
        #expect(r.status == 201, "proxy: \(r.text)")
    }

    func get(_ path: String) async -> JSONValue? {
        let response = await server.handle(method: "GET", path: path)
        guard response.status == 200 else { return nil }
        return try? JSONValue.parse(response.body)
    }

    var writes: [RecordedRequest] {
        get async { await server.requests.filter { $0.method != "GET" } }
    }

    /// The three models the golden tests show.
    func seedGoldenModels() async {
        await seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B", "idleTimeout": "5m"], status: [
            "phase": "Ready", "replicas": 1, "readyReplicas": 1, "lastActivityTime": "2030-01-01T11:57:00Z",
            "lastWake": ["started": "2030-01-01T11:40:00Z", "ready": "2030-01-01T11:40:42Z", "seconds": 42.4],
            "scaledDownSeconds": 36000,
        ])
        await seedModel("coder", spec: [
            "modelName": "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "gpus": 2, "tensorParallelSize": 2,
            "image": "vllm/vllm-openai:v0.11.2", "idleTimeout": "20m",
        ], status: ["phase": "Waking", "replicas": 1, "readyReplicas": 0, "lastWake": ["started": "2030-01-01T11:59:30Z"], "scaledDownSeconds": 7200])
        await seedModel("llama", spec: ["modelName": "meta-llama/Llama-3.1-8B-Instruct"], status: [
            "phase": "ScaledDown", "replicas": 0, "readyReplicas": 0, "lastActivityTime": "2030-01-01T08:00:00Z",
            "lastWake": ["started": "2030-01-01T07:00:00Z", "ready": "2030-01-01T07:02:35Z", "seconds": 155], "scaledDownSeconds": 90000,
        ])
    }
}

/// The result of one `Entry.run`.
struct ModelRun {
    var code: Int32
    var out: String
    var err: String
}

/// Compares with `Tests/KubectlChillTests/Golden/<name>`; `CHILL_UPDATE_GOLDEN=1` rewrites the file.
func expectGolden(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)").path
    if ProcessInfo.processInfo.environment["CHILL_UPDATE_GOLDEN"] == "1" {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        return
    }
    let expected = try String(contentsOfFile: path, encoding: .utf8)
    #expect(actual == expected, "golden \(name) differs (CHILL_UPDATE_GOLDEN=1 to rewrite)", sourceLocation: sourceLocation)
}

/// Waits (up to `seconds`) until `condition` holds.
func eventually(_ seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// Replaces server-assigned metadata (uid, creationTimestamp, resourceVersion, generation) with fixed values.
func normalizedObjects(_ json: String) throws -> String {
    var value = try JSONValue.parse(json)
    func fix(_ item: JSONValue) -> JSONValue {
        var item = item
        for (key, placeholder) in [("uid", "UID"), ("creationTimestamp", "CREATED"), ("resourceVersion", "RV")] where item[path: "metadata", key] != nil {
            item["metadata"]?[key] = .string(placeholder)
        }
        return item
    }
    if let items = value["items"]?.arrayValue { value["items"] = .array(items.map(fix)) } else { value = fix(value) }
    return value.jsonString(pretty: true) + "\n"
}
