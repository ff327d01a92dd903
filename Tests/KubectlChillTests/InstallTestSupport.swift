import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// One KubeTestServer plus a kubeconfig file pointing at it, for running install/uninstall end to end.
struct InstallHarness {
    let server: KubeTestServer
    let directory: String
    let kubeconfigPath: String

    static func start() async throws -> InstallHarness {
        let server = try await KubeTestServer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chill-install-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/kubeconfig"
        try server.kubeconfig().write(toFile: path, atomically: true, encoding: .utf8)
        return InstallHarness(server: server, directory: directory, kubeconfigPath: path)
    }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `kubectl chill <arguments> --kubeconfig <file>` with captured output.
    func run(_ arguments: [String]) async -> InstallRun {
        await InstallRun.run(arguments + ["--kubeconfig", kubeconfigPath])
    }

    /// The stored object, or nil.
    func get(_ path: String) async -> JSONValue? {
        let response = await server.handle(method: "GET", path: path)
        guard response.status == 200 else { return nil }
        return try? JSONValue.parse(response.body)
    }

    /// The write requests (anything but GET) the server received.
    var writes: [RecordedRequest] {
        get async { await server.requests.filter { $0.method != "GET" } }
    }
}

/// The result of one `Entry.run`.
struct InstallRun {
    var code: Int32
    var out: String
    var err: String

    static func run(_ arguments: [String], terminal: Bool = false) async -> InstallRun {
        let console = Console(capturing: (), isTerminal: terminal)
        let code = await Console.$current.withValue(console) { await Entry.run(arguments) }
        return InstallRun(code: code, out: console.output, err: console.errorOutput)
    }

    var outLines: [String] { out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }
    /// Output lines without the progress lines (timestamped, they vary).
    var applyLines: [String] { outLines.filter { !($0.first?.isNumber ?? false) } }
}

/// Paths of the installed objects on the test server.
enum InstallPaths {
    static let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/vllmmodels.chill.dev"
    static func namespace(_ ns: String = "chill-system") -> String { "/api/v1/namespaces/\(ns)" }
    static func serviceAccount(_ ns: String = "chill-system") -> String { "/api/v1/namespaces/\(ns)/serviceaccounts/chill-server" }
    static func role(_ ns: String = "chill-system") -> String { "/apis/rbac.authorization.k8s.io/v1/namespaces/\(ns)/roles/chill-server" }
    static func roleBinding(_ ns: String = "chill-system") -> String { "/apis/rbac.authorization.k8s.io/v1/namespaces/\(ns)/rolebindings/chill-server" }
    static let clusterRole = "/apis/rbac.authorization.k8s.io/v1/clusterroles/chill-server"
    static let clusterRoleBinding = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/chill-server"
    static func deployment(_ ns: String = "chill-system") -> String { "/apis/apps/v1/namespaces/\(ns)/deployments/chill-server" }
    static func service(_ ns: String = "chill-system") -> String { "/api/v1/namespaces/\(ns)/services/chill" }

    static func all(_ ns: String = "chill-system") -> [String] {
        [crd, namespace(ns), serviceAccount(ns), role(ns), roleBinding(ns), clusterRole, clusterRoleBinding, deployment(ns), service(ns)]
    }
}

/// The per-object lines of a fresh install, in apply order.
func installLines(_ verb: String, namespace: String = "chill-system") -> [String] {
    [
        "customresourcedefinition.apiextensions.k8s.io/vllmmodels.chill.dev \(verb)",
        "namespace/\(namespace) \(verb)",
        "serviceaccount/chill-server \(verb)",
        "role.rbac.authorization.k8s.io/chill-server \(verb)",
        "rolebinding.rbac.authorization.k8s.io/chill-server \(verb)",
        "clusterrole.rbac.authorization.k8s.io/chill-server \(verb)",
        "clusterrolebinding.rbac.authorization.k8s.io/chill-server \(verb)",
        "deployment.apps/chill-server \(verb)",
        "service/chill \(verb)",
    ]
}
