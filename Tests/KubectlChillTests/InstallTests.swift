import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// `kubectl chill install` / `uninstall` end to end against the in-process API server over TLS.
@Suite struct InstallTests {
    @Test func installAppliesEveryObjectWithServerSideApplyAndWaits() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }

        let run = await h.run(["install"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.err == "")
        #expect(run.applyLines == installLines("created") + ["chill 0.1.0 is installed in chill-system (9 created)"])
        // Progress lines are timestamped (not a TTY) and end with both objects ready.
        let progress = run.outLines.filter { $0.first?.isNumber ?? false }
        #expect(progress.contains { $0.hasSuffix(" customresourcedefinition.apiextensions.k8s.io/vllmmodels.chill.dev established") })
        #expect(progress.contains { $0.hasSuffix(" deployment.apps/chill-server ready (1/1 ready)") })
        #expect(progress.allSatisfy { $0.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "#, options: .regularExpression) != nil })

        // Every write is a server-side apply by kubectl-chill, forced, in order.
        let writes = await h.writes
        #expect(writes.count == 9)
        for w in writes {
            #expect(w.method == "PATCH")
            #expect(w.header("Content-Type") == "application/apply-patch+yaml")
            #expect(w.path.hasSuffix("?fieldManager=kubectl-chill&force=true"), "\(w.path)")
            #expect(w.status == 201, "\(w.path)")
        }
        let paths = writes.map { String($0.path.prefix { $0 != "?" }) }
        #expect(paths == InstallPaths.all())

        // The objects exist; the CRD is Established (so VLLMModels can be created); the proxy is ready.
        for path in InstallPaths.all() { #expect(await h.get(path) != nil, "\(path)") }
        let crd = try #require(await h.get(InstallPaths.crd))
        let conditions = crd[path: "status", "conditions"]?.arrayValue ?? []
        #expect(conditions.contains { $0["type"] == "Established" && $0["status"] == "True" })
        let deployment = try #require(await h.get(InstallPaths.deployment()))
        #expect(deployment[path: "status", "readyReplicas"] == 1)
        #expect(deployment[path: "spec", "template", "spec", "serviceAccountName"] == "chill-server")
        let models = await h.server.handle(method: "GET", path: "/apis/chill.dev/v1alpha1/vllmmodels")
        #expect(models.status == 200)
    }

    @Test func installTwiceChangesNothingAndSaysSo() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }

        #expect(await h.run(["install"]).code == 0)
        let before = await h.get(InstallPaths.deployment())?[path: "metadata", "resourceVersion"]
        let second = await h.run(["install"])
        #expect(second.code == 0, "\(second.err)")
        #expect(second.applyLines == installLines("unchanged") + ["chill 0.1.0 is installed in chill-system (nothing changed)"])
        #expect(await h.get(InstallPaths.deployment())?[path: "metadata", "resourceVersion"] == before)

        // A changed flag reconfigures exactly the Deployment.
        let third = await h.run(["install", "--idle-timeout", "15m"])
        #expect(third.code == 0, "\(third.err)")
        var expected = installLines("unchanged")
        expected[7] = "deployment.apps/chill-server configured"
        #expect(third.applyLines == expected + ["chill 0.1.0 is installed in chill-system (1 configured, 8 unchanged)"])
        let env = await h.get(InstallPaths.deployment())?[path: "spec", "template", "spec", "containers"]?.arrayValue?.first?["env"]
        #expect(env?.arrayValue?.contains(["name": "IDLE_TIMEOUT", "value": "15m"]) == true)
    }

    @Test func dryRunPrintsTheManifestsAndSendsNothing() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        await h.server.clearRequests()

        let run = await h.run(["install", "--dry-run", "-n", "ml", "--replicas", "1"])
        #expect(run.code == 0)
        #expect(run.out == InstallManifests.yaml(InstallOptions(namespace: "ml", replicas: 1)))
        #expect(await h.server.requests.isEmpty)
        // manifests prints the same with the same flags.
        let manifests = await InstallRun.run(["manifests", "-n", "ml", "--replicas", "1"])
        #expect(manifests.code == 0)
        #expect(manifests.out == run.out)
    }

    @Test func waitFalseReturnsRightAfterApplying() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        h.server.simulator.autoReady = false

        let run = await h.run(["install", "--wait=false"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.outLines == installLines("created") + ["chill 0.1.0 is applied in chill-system (9 created; not waiting for readiness)"])
    }

    @Test func timesOutWithTheReasonWhenTheProxyNeverGetsReady() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        h.server.simulator.autoReady = false

        let run = await h.run(["install", "--timeout", "1s"])
        #expect(run.code == 1)
        let lines = run.err.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(run.err.hasPrefix("error: timed out after 1s waiting for deployment.apps/chill-server in chill-system (0/1 ready, 0/1 updated available: pod chill-server-"))
        #expect(run.err.contains(" — the objects are applied; see `kubectl -n chill-system describe deployment chill-server`"))
        #expect(run.outLines.contains { $0.hasSuffix(" waiting for deployment.apps/chill-server in chill-system: 0/1 ready, 0/1 updated available") })

        // Once the pods are ready, running install again finishes the wait.
        await h.server.markPodsReady(namespace: "chill-system", deployment: "chill-server")
        let again = await h.run(["install"])
        #expect(again.code == 0, "\(again.err)")
        #expect(again.applyLines.last == "chill 0.1.0 is installed in chill-system (nothing changed)")
    }

    @Test func progressRewritesOneLineOnATerminal() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        let run = await InstallRun.run(["install", "--kubeconfig", h.kubeconfigPath], terminal: true)
        #expect(run.code == 0, "\(run.err)")
        // A capturing console writes progress as plain lines, without timestamps, on a "terminal".
        #expect(run.outLines.contains("deployment.apps/chill-server ready (1/1 ready)"))
    }

    @Test func uninstallDeletesEverythingAndIsIdempotent() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install"]).code == 0)
        let model: JSONValue = [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel",
            "metadata": ["name": "qwen"], "spec": ["modelName": "Qwen/Qwen3-0.6B"],
        ]
        #expect(await h.server.handle("POST", "/apis/chill.dev/v1alpha1/vllmmodels", json: model).status == 201)

        let run = await h.run(["uninstall", "--wait", "--delete-models"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.applyLines == [
            "service \"chill\" deleted",
            "deployment.apps \"chill-server\" deleted",
            "clusterrolebinding.rbac.authorization.k8s.io \"chill-server\" deleted",
            "clusterrole.rbac.authorization.k8s.io \"chill-server\" deleted",
            "rolebinding.rbac.authorization.k8s.io \"chill-server\" deleted",
            "role.rbac.authorization.k8s.io \"chill-server\" deleted",
            "serviceaccount \"chill-server\" deleted",
            "namespace \"chill-system\" deleted",
            "customresourcedefinition.apiextensions.k8s.io \"vllmmodels.chill.dev\" deleted (with its 1 VLLMModel)",
            "chill is uninstalled from chill-system (9 objects deleted)",
        ])
        #expect(run.outLines.contains { $0.hasSuffix(" namespace/chill-system is gone") })
        for path in InstallPaths.all() { #expect(await h.get(path) == nil, "\(path)") }

        // Once everything is gone there is no install to remove: exit 1, nothing deleted.
        let again = await h.run(["uninstall"])
        #expect(again.code == 1)
        #expect(again.err == "error: chill is not installed in namespace chill-system (nothing deleted) — chill is not installed in this cluster (install it with: kubectl chill install)\n")
    }

    @Test func uninstallKeepCrdsKeepsTheModels() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        let model: JSONValue = [
            "apiVersion": "chill.dev/v1alpha1", "kind": "VLLMModel",
            "metadata": ["name": "qwen"], "spec": ["modelName": "Qwen/Qwen3-0.6B"],
        ]
        #expect(await h.server.handle("POST", "/apis/chill.dev/v1alpha1/vllmmodels", json: model).status == 201)

        let run = await h.run(["uninstall", "--keep-crds"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.outLines.contains("customresourcedefinition.apiextensions.k8s.io \"vllmmodels.chill.dev\" kept with its 1 VLLMModel (--keep-crds)"))
        #expect(run.outLines.last == "chill is uninstalled from chill-system (8 objects deleted)")
        #expect(await h.get(InstallPaths.crd) != nil)
        #expect(await h.get("/apis/chill.dev/v1alpha1/vllmmodels/qwen") != nil)
        #expect(await h.get(InstallPaths.deployment()) == nil)

        // A reinstall picks the CRD up again, unchanged.
        let reinstall = await h.run(["install", "--wait=false"])
        #expect(reinstall.outLines.first == "customresourcedefinition.apiextensions.k8s.io/vllmmodels.chill.dev unchanged")
    }

    @Test func aNamespaceChillDidNotCreateIsLeftAlone() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.server.handle("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ml"]]).status == 201)

        let run = await h.run(["install", "-n", "ml"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.applyLines[1] == "namespace/ml exists (not created by chill, left as is)")
        #expect(run.applyLines.last == "chill 0.1.0 is installed in ml (8 created)")
        #expect(await h.get(InstallPaths.namespace("ml"))?[path: "metadata", "labels", "app.kubernetes.io/managed-by"] == nil)
        let binding = await h.get(InstallPaths.clusterRoleBinding)
        #expect(binding?["subjects"] == [["kind": "ServiceAccount", "name": "chill-server", "namespace": "ml"]])

        let uninstall = await h.run(["uninstall", "-n", "ml"])
        #expect(uninstall.code == 0, "\(uninstall.err)")
        #expect(uninstall.outLines.contains("namespace \"ml\" kept (not created by chill)"))
        #expect(uninstall.outLines.last == "chill is uninstalled from ml (8 objects deleted)")
        #expect(await h.get(InstallPaths.namespace("ml")) != nil)
        #expect(await h.get(InstallPaths.deployment("ml")) == nil)
    }

    @Test func uninstallDeletesTheStateConfigMapFromANamespaceItKeeps() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.server.handle("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ml"]]).status == 201)
        #expect(await h.run(["install", "-n", "ml", "--wait=false"]).code == 0)
        let state: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": "chill-state", "namespace": "ml"], "data": ["activeModel": "qwen"],
        ]
        #expect(await h.server.handle("POST", "/api/v1/namespaces/ml/configmaps", json: state).status == 201)

        let uninstall = await h.run(["uninstall", "-n", "ml"])
        #expect(uninstall.code == 0, "\(uninstall.err)")
        #expect(Array(uninstall.outLines.prefix(3)) == [
            "service \"chill\" deleted", "deployment.apps \"chill-server\" deleted", "configmap \"chill-state\" deleted",
        ])
        #expect(uninstall.outLines.last == "chill is uninstalled from ml (9 objects deleted)")
        #expect(await h.get("/api/v1/namespaces/ml/configmaps/chill-state") == nil)
        #expect(await h.get(InstallPaths.namespace("ml")) != nil)

        // Without it (already gone, or never switched), uninstall does not fail.
        #expect(await h.run(["install", "-n", "ml", "--wait=false"]).code == 0)
        let again = await h.run(["uninstall", "-n", "ml", "--keep-crds"])
        #expect(again.code == 0, "\(again.err)")
        #expect(!again.outLines.contains { $0.hasPrefix("configmap") })
    }

    @Test func aTerminatingNamespaceIsOneClearLine() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        // The test server deletes namespaces at once; a real one keeps them Terminating while their contents go.
        let ns: JSONValue = ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ml"]]
        #expect(await h.server.handle("POST", "/api/v1/namespaces", json: ns).status == 201)
        var stored = try #require(await h.server.store.get(.namespaces, namespace: nil, name: "ml"))
        stored["metadata"]?["deletionTimestamp"] = "2026-11-22T23:17:21Z"
        stored["status"] = ["phase": "Terminating"]
        #expect(await h.server.store.update(.namespaces, stored) != nil)
        #expect(await h.get(InstallPaths.namespace("ml"))?[path: "metadata", "deletionTimestamp"] != nil)

        let run = await h.run(["install", "-n", "ml"])
        #expect(run.code == 1)
        #expect(run.err == "error: namespace ml is being deleted (a recent uninstall?) — wait until `kubectl get namespace ml` finds nothing, then run install again\n")
    }

    @Test(arguments: [
        (["install", "--idle-timeout", "5x"], "error: --idle-timeout \"5x\" is not a positive duration — use e.g. 30s, 5m or 1h30m"),
        (["install", "--wake-timeout=-1m"], "error: --wake-timeout \"-1m\" is not a positive duration — use e.g. 30s, 5m or 1h30m"),
        (["install", "--replicas", "0"], "error: --replicas 0: only 1 is supported until chill-server has leader election (each replica would run its own controller)"),
            (["install", "--replicas", "2"], "error: --replicas 2: only 1 is supported until chill-server has leader election (each replica would run its own controller)"),
        (["install", "--timeout", "soon"], "error: --timeout \"soon\" is not a positive duration — use e.g. 90s or 5m"),
        (["install", "--admin-token-secret", "Admin_Token"], "error: --admin-token-secret \"Admin_Token\" is not a valid Secret name — use lower-case letters, digits, '-' and '.'"),
        (["install", "-n", "Chill"], "error: --namespace \"Chill\" is not a valid namespace name — use lower-case letters, digits and '-', at most 63 characters"),
        (["manifests", "--api-key-secret", "a b"], "error: --api-key-secret \"a b\" is not a valid Secret name — use lower-case letters, digits, '-' and '.'"),
        (["uninstall", "--timeout", "0"], "error: --timeout \"0\" is not a positive duration — use e.g. 90s or 5m"),
    ])
    func badFlagValuesAreUsageErrors(arguments: [String], message: String) async {
        let run = await InstallRun.run(arguments)
        #expect(run.code == 2)
        #expect(run.out == "")
        #expect(run.err == message + " — see `kubectl chill \(arguments[0]) --help`\n")
    }

    @Test(arguments: [
        ("install", ["--dry-run", "--wait/--no-wait", "--force", "--timeout <timeout>", "--image <image>", "--idle-timeout <idle-timeout>",
                     "--wake-timeout <wake-timeout>", "--admin-token-secret <name>", "--api-key-secret <name>",
                     "--replicas <replicas>", "--kubeconfig <kubeconfig>", "-n, --namespace <namespace>", "kubectl chill install --dry-run"]),
        ("uninstall", ["--keep-crds", "--delete-models", "--dry-run", "--wait/--no-wait", "--timeout <timeout>", "kubectl chill uninstall --keep-crds"]),
        ("manifests", ["-n, --namespace <namespace>", "--idle-timeout <idle-timeout>", "kubectl chill manifests > chill.yaml"]),
    ])
    func helpShowsFlagsAndExamples(command: String, expected: [String]) async {
        let run = await InstallRun.run([command, "--help"])
        #expect(run.code == 0)
        #expect(run.out.contains("Examples:"))
        for text in expected { #expect(run.out.contains(text), "\(command) --help lacks \(text)") }
        let root = await InstallRun.run(["--help"])
        #expect(root.out.contains("  \(command) "))
    }

    @Test func badWaitValueIsAUsageError() async {
        let run = await InstallRun.run(["install", "--wait=maybe"])
        #expect(run.code == 2)
        #expect(run.err.split(separator: "\n").count == 1)
        #expect(run.err.contains("--wait"))
    }

    @Test(arguments: [["install"], ["uninstall"]])
    func unreachableClusterIsOneLine(arguments: [String]) async throws {
        let h = try await InstallHarness.start()
        // The same kubeconfig aimed at a port nothing listens on. (Reusing the stopped server's port
        // would race with other tests' servers, which may get it next.)
        try await h.server.shutdown()
        defer { try? FileManager.default.removeItem(atPath: h.directory) }
        let unreachable = "https://127.0.0.1:1"
        let text = try String(contentsOfFile: h.kubeconfigPath, encoding: .utf8).replacingOccurrences(of: h.server.url, with: unreachable)
        try text.write(toFile: h.kubeconfigPath, atomically: true, encoding: .utf8)

        let run = await InstallRun.run(arguments + ["--kubeconfig", h.kubeconfigPath])
        #expect(run.code == 1)
        #expect(run.out == "")
        #expect(run.err == "error: no cluster reachable at \(unreachable): connection refused — check your kubeconfig context (current: kube-test)\n")
    }
}
