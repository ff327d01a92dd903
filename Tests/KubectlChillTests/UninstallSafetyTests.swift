import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// `uninstall` deletes only its own install's objects, and never the models without being told to.
@Suite struct UninstallSafetyTests {
    static let modelsPath = "/apis/chill.dev/v1alpha1/vllmmodels"

    static func createModel(_ name: String, _ h: InstallHarness) async {
        let model: JSONValue = [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel",
            "metadata": ["name": .string(name)], "spec": ["modelName": "Qwen/Qwen3-0.6B"],
        ]
        #expect(await h.server.handle("POST", modelsPath, json: model).status == 201)
    }

    static func deletes(_ h: InstallHarness) async -> [String] {
        await h.server.requests.filter { $0.method == "DELETE" }.map(\.path)
    }

    @Test func aTypoInTheNamespaceDeletesNothingAndNamesTheRealOne() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        await Self.createModel("qwen", h)

        let run = await h.run(["uninstall", "-n", "chill-sytem"])
        #expect(run.code == 1)
        #expect(run.out == "")
        #expect(run.err == "error: chill is not installed in namespace chill-sytem (nothing deleted) — chill is installed in chill-system: kubectl chill uninstall -n chill-system\n")
        #expect(await Self.deletes(h).isEmpty)
        for path in InstallPaths.all() { #expect(await h.get(path) != nil, "\(path)") }
        #expect(await h.get(Self.modelsPath + "/qwen") != nil)
    }

    @Test func withNoInstallAnywhereItSaysSoAndExits1() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        let run = await h.run(["uninstall"])
        #expect(run.code == 1)
        #expect(run.err == "error: chill is not installed in namespace chill-system (nothing deleted) — chill is not installed in this cluster (install it with: kubectl chill install)\n")
    }

    @Test func deletingTheModelsNeedsDeleteModelsAndNothingGoesBefore() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        await Self.createModel("qwen", h)
        await Self.createModel("llama", h)

        let run = await h.run(["uninstall"])
        #expect(run.code == 1)
        #expect(run.out == "")
        #expect(run.err == "error: uninstall would delete the VLLMModel CRD and with it 2 VLLMModels (llama, qwen); nothing was deleted — pass --delete-models to delete them, or --keep-crds to keep the CRD and the models\n")
        #expect(await Self.deletes(h).isEmpty)

        let forced = await h.run(["uninstall", "--delete-models"])
        #expect(forced.code == 0, "\(forced.err)")
        #expect(forced.outLines.contains("customresourcedefinition.apiextensions.k8s.io \"vllmmodels.chill.dev\" deleted (with its 2 VLLMModels)"))
        #expect(await h.get(InstallPaths.crd) == nil)
    }

    @Test func onATerminalOnlyATypedYesDeletesTheModels() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        await Self.createModel("qwen", h)
        let prompt = "This deletes the VLLMModel CRD and with it 1 VLLMModel (qwen). Type yes to go on: "

        let no = await Self.runOnTerminal(["uninstall", "--kubeconfig", h.kubeconfigPath], answers: ["y"])
        #expect(no.code == 1)
        #expect(no.err == prompt + "y\nerror: uninstall would delete the VLLMModel CRD and with it 1 VLLMModel (qwen); nothing was deleted — pass --delete-models to delete them, or --keep-crds to keep the CRD and the models\n")
        #expect(await Self.deletes(h).isEmpty)

        let yes = await Self.runOnTerminal(["uninstall", "--kubeconfig", h.kubeconfigPath], answers: ["yes"])
        #expect(yes.code == 0, "\(yes.err)")
        #expect(yes.err == prompt + "yes\n")
        #expect(yes.outLines.last == "chill is uninstalled from chill-system (9 objects deleted)")
        #expect(await h.get(Self.modelsPath + "/qwen") == nil)
    }

    static func runOnTerminal(_ arguments: [String], answers: [String]) async -> InstallRun {
        let console = Console(capturing: (), isTerminal: true, answers: answers)
        let code = await Console.$current.withValue(console) { await Entry.run(arguments) }
        return InstallRun(code: code, out: console.output, err: console.errorOutput)
    }

    @Test func dryRunListsWhatWouldGoAndDeletesNothing() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        await Self.createModel("qwen", h)

        let run = await h.run(["uninstall", "--dry-run"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.outLines == [
            "service \"chill\" deleted (dry run)",
            "deployment.apps \"chill-server\" deleted (dry run)",
            "clusterrolebinding.rbac.authorization.k8s.io \"chill-server\" deleted (dry run)",
            "clusterrole.rbac.authorization.k8s.io \"chill-server\" deleted (dry run)",
            "rolebinding.rbac.authorization.k8s.io \"chill-server\" deleted (dry run)",
            "role.rbac.authorization.k8s.io \"chill-server\" deleted (dry run)",
            "serviceaccount \"chill-server\" deleted (dry run)",
            "namespace \"chill-system\" deleted (dry run)",
            "customresourcedefinition.apiextensions.k8s.io \"vllmmodels.chill.dev\" deleted (with its 1 VLLMModel) (dry run)",
            "chill would be uninstalled from chill-system (9 objects to delete; dry run, nothing changed)",
        ])
        #expect(await Self.deletes(h).isEmpty)
    }

    @Test func objectsNotLabelledForThisInstallAreKept() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.server.handle("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ml"]]).status == 201)
        // A Service of the user's that happens to be called "chill".
        let service: JSONValue = [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": "chill", "namespace": "ml"],
            "spec": ["ports": [["port": 80]]],
        ]
        #expect(await h.server.handle("POST", "/api/v1/namespaces/ml/services", json: service).status == 201)
        #expect(await h.run(["install", "-n", "ml", "--wait=false"]).code == 0)
        // install applied its Service over the user's (server-side apply, forced): the label says it is chill's now.
        #expect(await h.get(InstallPaths.service("ml"))?[path: "metadata", "labels", "chill.dev/install-namespace"] == "ml")

        // The label is what uninstall goes by: strip it from the Service, and it stays.
        var stored = try #require(await h.server.store.get(.services, namespace: "ml", name: "chill"))
        stored["metadata"]?["labels"] = nil
        #expect(await h.server.store.update(.services, stored) != nil)
        let run = await h.run(["uninstall", "-n", "ml"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.outLines.first == "service \"chill\" kept (not created by chill)")
        #expect(await h.get(InstallPaths.service("ml")) != nil)
    }
}
