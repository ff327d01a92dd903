import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// One install per cluster (install refuses a second, `--force` moves it), upgrades that wait like
/// `kubectl rollout status`, and pinned images.
@Suite struct OneInstallPerClusterTests {
    @Test func aSecondInstallIsRefusedAndNamesTheFirst() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        await h.server.clearRequests()

        let run = await h.run(["install", "-n", "other"])
        #expect(run.code == 1)
        #expect(run.out == "")
        #expect(run.err == "error: chill is already installed in namespace chill-system, and a cluster has one install (chill-server controls every VLLMModel) — upgrade it with: kubectl chill install -n chill-system, or move it to other with --force\n")
        #expect(await h.writes.isEmpty)
        #expect(await h.get(InstallPaths.clusterRoleBinding)?["subjects"] == [["kind": "ServiceAccount", "name": "chill-server", "namespace": "chill-system"]])
    }

    @Test func forceMovesTheInstallAndUninstallingTheOldOneKeepsTheNewOnesObjects() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)

        let move = await h.run(["install", "-n", "other", "--force"])
        #expect(move.code == 0, "\(move.err)")
        #expect(move.applyLines.contains("deployment.apps \"chill-server\" deleted from chill-system (chill moved to other; remove the rest with: kubectl chill uninstall -n chill-system)"))
        #expect(move.applyLines.last == "chill 0.1.0 is installed in other (6 created, 3 configured)")
        #expect(await h.get(InstallPaths.clusterRoleBinding)?["subjects"] == [["kind": "ServiceAccount", "name": "chill-server", "namespace": "other"]])
        #expect(await h.get(InstallPaths.deployment()) == nil)

        let old = await h.run(["uninstall", "-n", "chill-system"])
        #expect(old.code == 0, "\(old.err)")
        #expect(old.applyLines == [
            "service \"chill\" deleted",
            "clusterrolebinding.rbac.authorization.k8s.io \"chill-server\" kept (belongs to the install in other)",
            "clusterrole.rbac.authorization.k8s.io \"chill-server\" kept (belongs to the install in other)",
            "rolebinding.rbac.authorization.k8s.io \"chill-server\" deleted",
            "role.rbac.authorization.k8s.io \"chill-server\" deleted",
            "serviceaccount \"chill-server\" deleted",
            "namespace \"chill-system\" deleted",
            "customresourcedefinition.apiextensions.k8s.io \"vllmmodels.chill.dev\" kept (belongs to the install in other)",
            "chill is uninstalled from chill-system (5 objects deleted)",
        ])
        for path in [InstallPaths.crd, InstallPaths.clusterRole, InstallPaths.clusterRoleBinding, InstallPaths.deployment("other")] {
            #expect(await h.get(path) != nil, "\(path)")
        }
    }

    @Test func anUpgradeWaitsForTheRolloutNotForTheOldPod() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install"]).code == 0)
        // The new image cannot be pulled. The Deployment is Recreate (no leader election: never two
        // controllers), so the old pod is gone and the new one is stuck.
        h.server.simulator.setFailure(.imagePullBackOff(), namespace: "chill-system", deployment: "chill-server")

        let run = await h.run(["install", "--image", "ghcr.io/chill-dev/chill-server:0.2.0", "--timeout", "1s"])
        #expect(run.code == 1)
        #expect(run.err.split(separator: "\n").count == 1)
        #expect(run.err.hasPrefix("error: timed out after 1s waiting for deployment.apps/chill-server in chill-system (0/1 ready, 0/1 updated available: pod chill-server-"), "\(run.err)")
        #expect(run.err.contains(": ImagePullBackOff"), "\(run.err)")
        #expect(!run.outLines.contains { $0.hasSuffix("ready (1/1 ready)") })
    }

    @Test func rolloutStatusFollowsKubectl() {
        func deployment(generation: Int = 2, observed: Int = 2, replicas: Int = 1, total: Int, updated: Int, available: Int) -> Deployment {
            var d = Deployment(metadata: ObjectMeta(name: "chill-server"), spec: .init(replicas: replicas, selector: LabelSelector(matchLabels: [:]), template: PodTemplateSpec()))
            d.metadata.generation = generation
            d.status = .init(observedGeneration: observed, replicas: total, updatedReplicas: updated, readyReplicas: available, availableReplicas: available)
            return d
        }
        #expect(Installer.rollout(deployment(observed: 1, total: 1, updated: 1, available: 1)) == (false, "1/1 ready, waiting for the controller"))
        #expect(Installer.rollout(deployment(total: 1, updated: 0, available: 1)) == (false, "1/1 ready, 0/1 updated"))
        #expect(Installer.rollout(deployment(total: 2, updated: 1, available: 1)) == (false, "1/1 ready, 1 old replica pending termination"))
        #expect(Installer.rollout(deployment(total: 1, updated: 1, available: 0)) == (false, "0/1 ready, 0/1 updated available"))
        #expect(Installer.rollout(deployment(total: 1, updated: 1, available: 1)) == (true, "1/1 ready"))
    }

    @Test(arguments: ["latest", "ghcr.io/chill-dev/chill-server", "ghcr.io/chill-dev/chill-server:latest", "localhost:5000/chill-server"])
    func anUnpinnedImageIsRefused(image: String) async {
        let run = await InstallRun.run(["install", "--image", image])
        #expect(run.code == 2)
        #expect(run.err == "error: --image \"\(image)\" is not pinned — use an explicit tag other than 'latest' (e.g. ghcr.io/chill-dev/chill-server:0.1.0) or an @sha256: digest — see `kubectl chill install --help`\n")
    }
}
