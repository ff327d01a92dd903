import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// What chill prints is what the cluster says (issue 9, item 5).
@Suite struct TruthfulStateTests {
    @Test func aModelWithoutStatusIsUnknownNotScaledDown() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("fresh", spec: ["modelName": "Qwen/Qwen3-0.6B"])
        let list = await h.run(["list"])
        #expect(list.out == """
            NAME    MODEL             PHASE     READY   ACTIVE   IDLE   LAST WAKE
            fresh   Qwen/Qwen3-0.6B   Unknown   0/0              -      -

            """)
        let status = await h.run(["status", "fresh"])
        #expect(status.out.contains("fresh   Unknown   0/0     1      -      0.0"), "\(status.out)")
        let json = try JSONValue.parse(await h.run(["status", "-o", "json"]).out)
        #expect(json["models"]?.arrayValue?.first?["phase"] == .null)
        #expect(json["models"]?.arrayValue?.first?["idleSeconds"] == .null)
    }

    @Test func listWorksWithoutTheRightToReadConfigMaps() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B"], status: ["phase": "ScaledDown", "replicas": 0, "readyReplicas": 0])
        await h.setActive("qwen")
        await h.server.setAuthorizer { _, request in request.resource != "configmaps" }

        let run = await h.run(["list"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.err == "notice: ACTIVE shows ? — you may not read ConfigMap chill-state in namespace chill-system (ask for get on configmaps there)\n")
        #expect(run.out == """
            NAME   MODEL             PHASE        READY   ACTIVE   IDLE   LAST WAKE
            qwen   Qwen/Qwen3-0.6B   ScaledDown   0/0     ?        -      -

            """)
    }

    @Test func waitCountsFromItsOwnRequestNotAnEarlierWake() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        // Waking, but the record is of a wake that finished hours ago.
        await h.seedModel("qwen", spec: ["modelName": "m"], status: [
            "phase": "Waking", "replicas": 1,
            "lastWake": ["started": "2030-01-01T07:00:00Z", "ready": "2030-01-01T07:02:35Z", "seconds": 155],
        ])
        let console = Console(capturing: ())
        let command = Task { await h.run(["wait", "qwen", "--timeout", "10m"], console: console) }
        let line = "2030-01-01T12:00:00Z  qwen: Pending — waiting for a pod (0s, ~2m35s left, last wake took 2m35s)"
        #expect(await eventually(60) { console.output.contains(line) }, "\(console.output)")
        await h.setStatus("qwen", ["phase": "Ready", "readyReplicas": 1])
        #expect(await command.value.code == 0)
    }

    @Test func waitReportsAFailedPhaseOnceChillServerActedOnItsRequest() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "Failed", "message": "wake timed out after 10m"])
        let console = Console(capturing: ())
        let command = Task { await h.run(["wait", "qwen", "--timeout", "60s"], now: nil, console: console) }
        #expect(await eventually(60) { console.output.contains("qwen: Pending") })
        #expect(console.output.hasPrefix("\"qwen\" is Failed (wake timed out after 10m); asked chill-server to try again.\n"))
        // chill-server handles the request and the model stays Failed.
        let requestedAt = await h.get("\(ModelHarness.modelsPath)/qwen")?[path: "metadata", "annotations", "chill.dev/requested-at"]
        #expect(requestedAt != nil)
        await h.setStatus("qwen", ["phase": "Failed", "message": "wake timed out after 10m", "handledRequestAt": requestedAt ?? .null])
        let run = await command.value
        #expect(run.code == 1)
        #expect(run.err == "error: wake of \"qwen\" failed: wake timed out after 10m — see: kubectl describe vllmmodel qwen\n")
    }

    @Test func waitAndSwitchSayWhenChillServerIsNotThere() async throws {
        let h = try await ModelHarness.start(proxy: false)
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "ScaledDown"])
        await h.server.clearRequests()

        let wait = await h.run(["wait", "qwen"])
        #expect(wait.code == 1)
        #expect(wait.err == "error: chill is not installed in namespace chill-system (no Deployment chill-server) — install chill with: kubectl chill install, or pass -n with chill's namespace\n")
        let other = await h.run(["switch", "qwen", "-n", "ml"])
        #expect(other.code == 1)
        #expect(other.err == "error: chill is not installed in namespace ml (no Deployment chill-server) — install chill with: kubectl chill install, or pass -n with chill's namespace\n")
        #expect(await h.writes.isEmpty)
    }

    @Test func waitSaysWhenChillServerHasNoReadyReplica() async throws {
        let h = try await ModelHarness.start(proxy: false)
        defer { Task { await h.stop() } }
        h.server.simulator.autoReady = false
        await h.seedProxy()
        await h.seedModel("qwen", spec: ["modelName": "m"], status: ["phase": "ScaledDown"])
        let run = await h.run(["wait", "qwen"])
        #expect(run.code == 1)
        #expect(run.err == "error: chill-server in namespace chill-system has 0 ready replicas, so nothing will scale \"qwen\" up — see why: kubectl -n chill-system describe deployment chill-server\n")
        #expect(await h.get("\(ModelHarness.modelsPath)/qwen")?[path: "metadata", "annotations", "chill.dev/requested-state"] == nil)
    }

    @Test func switchNamesTheNamespaceChillIsInstalledIn() async throws {
        let h = try await InstallHarness.start()
        defer { Task { await h.stop() } }
        #expect(await h.run(["install", "--wait=false"]).code == 0)
        let run = await h.run(["switch", "qwen", "-n", "chill-sytem"])
        #expect(run.code == 1)
        #expect(run.err == "error: chill is not installed in namespace chill-sytem (no Deployment chill-server) — chill is installed in chill-system: kubectl chill switch qwen -n chill-system\n")
    }
}
