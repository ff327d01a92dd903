import Foundation
import KubeTestServer
import Shared
import Synchronization
import Testing
@testable import ChillServer

/// chill-server authenticated as its ServiceAccount and authorized by exactly `ChillRBAC` (the Role
/// in the install namespace, the ClusterRole everywhere, as the install manifests grant them) runs
/// models through their life without one 403, and uses every right it is granted: the RBAC is both
/// enough and no more than the code needs (`kubectl auth can-i --list` on a cluster shows the same).
@Suite(.serialized) struct RBACExactnessTests {
    static let serviceAccount = "system:serviceaccount:\(E2EKube.namespace):chill-server"

    /// What the install's Role and ClusterRole allow.
    static func granted(_ a: AuthorizationAttributes) -> Bool {
        let resource = a.subresource.map { "\(a.resource)/\($0)" } ?? a.resource
        func allows(_ rules: [ChillRBAC.Rule]) -> Bool {
            rules.contains { rule in
                rule.apiGroup == a.group && rule.resource == resource && rule.verbNames.contains(a.verb)
                    && (rule.resourceNames.isEmpty || a.name.map(rule.resourceNames.contains) == true)
            }
        }
        return allows(ChillRBAC.cluster) || (a.namespace == E2EKube.namespace && allows(ChillRBAC.namespaced))
    }

    static func key(group: String, resource: String, verb: String) -> String { "\(group)/\(resource) \(verb)" }

    final class Recorder: Sendable {
        private let state = Mutex<(used: Set<String>, denied: [String])>((used: [], denied: []))
        func record(_ a: AuthorizationAttributes, allowed: Bool) {
            let resource = a.subresource.map { "\(a.resource)/\($0)" } ?? a.resource
            state.withLock { state in
                if allowed {
                    state.used.insert(RBACExactnessTests.key(group: a.group, resource: resource, verb: a.verb))
                } else {
                    state.denied.append("\(a.verb) \(a.group)/\(resource) \(a.name ?? "") in \(a.namespace ?? "the cluster")")
                }
            }
        }
        var used: Set<String> { state.withLock { $0.used } }
        var denied: [String] { state.withLock { $0.denied } }
    }

    @Test(.timeLimit(.minutes(2)))
    func chillServerNeedsExactlyTheRightsTheInstallGrants() async throws {
        let token = "chill-server-sa-token"
        let server = try await KubeTestServer.start(
            tokens: [KubeTestServer.defaultToken: KubeTestServer.defaultTokenUser, token: Self.serviceAccount],
            namespaces: ["default", "kube-system", E2EKube.namespace])
        let recorder = Recorder()
        await server.setAuthorizer { user, attributes in
            guard user.name == Self.serviceAccount else { return true }
            let allowed = Self.granted(attributes)
            recorder.record(attributes, allowed: allowed)
            return allowed
        }
        let crd = await server.handle("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json: VLLMModelCRD.definition())
        #expect(crd.status == 201)
        let kubeconfig = FileManager.default.temporaryDirectory.appendingPathComponent("chill-rbac-kubeconfig-\(UUID().uuidString)").path
        try server.kubeconfig(token: token).write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let kube = E2EKube(server: server, kubeconfigPath: kubeconfig)
        try await ControllerEndToEndTests.withCluster(kube: kube) { c in
            // Wake alpha, then switch to beta (chill-state written by chill-server), then delete alpha.
            for model in ["alpha", "beta"] {
                let r = try await c.chill.request("POST", "/v1/chat/completions", body: ControllerEndToEndTests.chat(model))
                #expect(r.status == 200, "\(model): \(r)")
            }
            try await kube.waitForReplicas(0, model: "alpha", timeout: .seconds(15))
            let deleted = await server.handle(method: "DELETE", path: "/apis/chill.dev/v1alpha1/vllmmodels/alpha")
            #expect(deleted.status == 200, "\(deleted.text)")
            try await E2EWait.until("alpha no longer served") {
                let r = try await c.chill.request("POST", "/v1/chat/completions", body: ControllerEndToEndTests.chat("alpha"))
                return (r.status == 404, "\(r.status)")
            }
        }

        #expect(recorder.denied.isEmpty, "chill-server needed rights the install does not grant: \(recorder.denied)")
        var grantedKeys = Set<String>()
        for rule in ChillRBAC.namespaced + ChillRBAC.cluster {
            for verb in rule.verbNames { grantedKeys.insert(Self.key(group: rule.apiGroup, resource: rule.resource, verb: verb)) }
        }
        let unused = grantedKeys.subtracting(recorder.used)
        #expect(unused.isEmpty, "granted but never used (drop them, or say why they stay): \(unused.sorted())")
        #expect(recorder.used.subtracting(grantedKeys).isEmpty)
    }
}
