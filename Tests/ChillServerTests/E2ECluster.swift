import Foundation
import KubeTestServer
import Shared
import Synchronization
@testable import ChillServer

/// The controller end to end, one fixture for every test that needs it: the test API server with the
/// VLLMModel CRD (`E2EKube`), VLLMModels on it — each with a vllm-sim of its own playing its pod
/// (the simulator gives pods 127.0.0.1), or a port the test serves itself — and chill-server
/// in-process against it (the Kubernetes backend), ready (/readyz 200) before the test body runs.
/// Torn down alike on error and at the end: chill-server stopped, the simulators killed, the API
/// server stopped in the background (its shutdown takes ~5 s).
final class E2ECluster: Sendable {
    /// A VLLMModel to create; its spec gets `spec` on top of `E2EKube.createModel`'s.
    struct Model: Sendable {
        enum Pod: Sendable {
            /// A vllm-sim of its own serving the model's name, with these flags besides.
            case sim([String])
            /// No simulator: the spec's port is this one, served by the test (or by nothing).
            case port(Int)
        }

        var name: String
        var spec: [String: JSONValue]
        var pod: Pod

        init(_ name: String, spec: [String: JSONValue] = [:], pod: Pod = .sim([])) {
            self.name = name
            self.spec = spec
            self.pod = pod
        }
    }

    let kube: E2EKube
    let sims: [String: VLLMSim]
    /// chill-server's flags after `kube.chillArguments()`; `startChillAgain` uses them too.
    let flags: [String]
    private let current: Mutex<E2EChill>

    /// The chill-server running now (the latest one after `startChillAgain`).
    var chill: E2EChill { current.withLock { $0 } }

    private init(kube: E2EKube, sims: [String: VLLMSim], flags: [String], chill: E2EChill) {
        self.kube = kube
        self.sims = sims
        self.flags = flags
        self.current = Mutex(chill)
    }

    /// `kube`: an API server the test set up itself (its own credentials, an authorizer), with the CRD
    /// and the install namespace; by default `E2EKube.start(autoReady:)`.
    static func with(autoReady: Bool = true, kube given: E2EKube? = nil, _ models: [Model], flags: [String] = [],
                     _ body: (E2ECluster) async throws -> Void) async throws {
        let kube: E2EKube
        if let given { kube = given } else { kube = try await E2EKube.start(autoReady: autoReady) }
        var sims: [String: VLLMSim] = [:]
        let cluster: E2ECluster
        do {
            for model in models {
                let port: Int
                switch model.pod {
                case .sim(let extra):
                    let sim = try await VLLMSim.launch(args: ["--served-model-name", model.name, "--quiet"] + extra)
                    sims[model.name] = sim
                    port = sim.port
                case .port(let given):
                    port = given
                }
                try await kube.createModel(model.name, port: port, extra: model.spec)
            }
            cluster = E2ECluster(kube: kube, sims: sims, flags: flags, chill: try await E2EChill.start(kube.chillArguments() + flags))
        } catch {
            for sim in sims.values { sim.kill() }
            Task { await kube.stop() }
            throw error
        }
        do {
            try await waitUntilReady(cluster.chill)
            try await body(cluster)
        } catch {
            let log = cluster.chill.log
            if !log.isEmpty { print("chill-server log:\n\(log)") }
            if ProcessInfo.processInfo.environment["CHILL_TEST_LOG"] != nil {
                for r in await kube.server.requests { print("kube:", r.method, r.path, r.status) }
            }
            await cluster.tearDown()
            throw error
        }
        await cluster.tearDown()
    }

    private func tearDown() async {
        await chill.stop()
        for sim in sims.values { sim.kill() }
        let kube = self.kube
        Task { await kube.stop() }
    }

    /// A new chill-server with the same flags, after the test stopped the last one (`chill.stop()`, as
    /// a SIGTERM would); returns once it is ready.
    func startChillAgain() async throws {
        let chill = try await E2EChill.start(kube.chillArguments() + flags)
        current.withLock { $0 = chill }
        try await Self.waitUntilReady(chill)
    }

    static func waitUntilReady(_ chill: E2EChill) async throws {
        try await E2EWait.until("/readyz 200") {
            let r = try await chill.request("GET", "/readyz", timeout: 5)
            return (r.status == 200, "\(r)")
        }
    }

    // MARK: - Reading and writing the cluster

    func model(_ name: String) async -> JSONValue? {
        await kube.server.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/vllmmodels/\(name)").json
    }

    func activeModel() async -> String? {
        await kube.server.handle(method: "GET", path: "/api/v1/namespaces/\(E2EKube.namespace)/configmaps/chill-state").json?["data"]?["activeModel"]?.stringValue
    }

    func waitForPhase(_ name: String, _ phase: String, timeout: Duration = .seconds(15)) async throws {
        try await E2EWait.until("\(name) status.phase \(phase)", timeout: timeout) {
            let status = await model(name)?["status"]
            return (status?["phase"]?.stringValue == phase, status?.jsonString() ?? "no status")
        }
    }

    func annotate(_ name: String, _ annotations: [String: JSONValue]) async throws {
        let patch: JSONValue = ["metadata": ["annotations": .object(annotations)]]
        let r = await kube.server.handle("PATCH", "/apis/chill.dev/v1alpha1/vllmmodels/\(name)", json: patch, contentType: "application/merge-patch+json")
        guard r.status == 200 else { throw E2EHTTP.Failure.malformed("annotating \(name): \(r.status) \(r.text)") }
    }
}
