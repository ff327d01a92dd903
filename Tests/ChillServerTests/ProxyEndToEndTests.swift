import Shared
import Foundation
import Testing
@testable import ChillServer

/// chill-server end to end: the real app (ServerOptions → ChillApp → ServiceGroup) in-process on an
/// ephemeral port, real sockets, a real `vllm-sim` process (started by the process backend, or playing
/// the pod of a Deployment on the KubeTestServer). Every wait is a bounded poll; nothing sleeps and hopes.
@Suite(.serialized) struct ProxyEndToEndTests {
    // MARK: - Fixtures

    /// chill-server on the process backend in front of vllm-sim (`--startup-seconds 0.5` unless `sim` says
    /// otherwise). Always stopped at the end; then nothing may listen on the simulator's port any more.
    static func withProcessChill(
        idle: String, sim: [String] = [], extra: [String] = [],
        _ body: (E2EChill, _ simPort: Int) async throws -> Void
    ) async throws {
        let simPort = try VLLMSim.freePort()
        let command = try E2E.simCommand(port: simPort, extra: ["--startup-seconds", "0.5"] + sim)
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", command, "--target-port", String(simPort), "--idle-timeout", idle,
             "--wake-timeout", "30s", "--served-model-name", E2E.model] + extra)
        do {
            try await body(chill, simPort)
        } catch {
            print("chill-server backend log:\n\(chill.log)")
            await chill.stop()
            throw error
        }
        await chill.stop()
        // Bounded: see processStopWaitsForTheWholeProcessGroupWithItsGrace for the exact-moment check.
        do {
            try await E2EWait.until("vllm-sim gone after chill-server stopped", timeout: .seconds(3)) { (!E2E.listening(simPort), "still listening") }
        } catch {
            Issue.record("vllm-sim outlived chill-server: \(error)")
        }
    }

    /// chill-server on the Kubernetes backend against a KubeTestServer with Deployment `vllm` at 0.
    static func withKubeChill(
        autoReady: Bool, targetPort: Int, extra: [String] = [],
        _ body: (E2EChill, E2EKube) async throws -> Void
    ) async throws {
        // Per-model timeouts live in the VLLMModel's spec.
        var spec: [String: JSONValue] = [:]
        if let i = extra.firstIndex(of: "--wake-timeout"), i + 1 < extra.count { spec["wakeTimeout"] = .string(extra[i + 1]) }
        try await E2ECluster.with(autoReady: autoReady, [.init(E2E.model, spec: spec, pod: .port(targetPort))], flags: extra) { c in
            try await c.chill.waitForStats("the first backend observation", timeout: .seconds(10)) { stats in
                (stats["backend"] as? [String: Any]) != nil && stats["state"] as? String == "ScaledDown"
            }
            try await body(c.chill, c.kube)
        }
    }

    // MARK: - Process backend + vllm-sim

    // The idle timeout is long here so that no scale-down can fall between two steps on a busy machine;
    // processIdleScaleDownAndTheNextWake covers the idle timer.
    @Test(.timeLimit(.minutes(1)))
    func processColdWakeWarmRequestsAndLocalRoutes() async throws {
        try await Self.withProcessChill(idle: "5m") { chill, simPort in
            // chill's own routes answer at once, whatever the model's state.
            try await E2EWait.until("/readyz 200") {
                let r = try await chill.request("GET", "/readyz")
                return (r.status == 200, "\(r)")
            }
            let health = try await chill.request("GET", "/health")
            #expect(health.status == 200)
            #expect(try health.json()["status"] as? String == "ok")
            let version = try await chill.request("GET", "/proxy/version")
            #expect(version.status == 200)
            #expect(try version.json()["component"] as? String == "chill-server")
            #expect((try version.json()["version"] as? String)?.isEmpty == false)

            // /v1/models is answered while scaled down, without waking anything.
            let models = try await chill.request("GET", "/v1/models")
            #expect(models.status == 200)
            let data = try models.json()["data"] as? [[String: Any]]
            #expect(data?.first?["id"] as? String == E2E.model)
            let before = try await chill.stats()
            #expect(before["state"] as? String == "ScaledDown")
            #expect(E2EChill.int((before["backend"] as? [String: Any])?["desiredReplicas"]) == 0)
            #expect(E2EChill.wakes(before) == 0)
            #expect(!chill.log.contains("starting:"), "a process was started by /v1/models")
            #expect(!E2E.listening(simPort))

            // A cold request wakes the model (0.5 s of "loading") and succeeds.
            let cold = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(cold.status == 200, "\(cold)")
            let completion = try cold.json()
            #expect(completion["object"] as? String == "chat.completion")
            let message = ((completion["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            #expect(message == "Hello ha ha!")
            #expect(cold.elapsed >= 0.45, "a cold request cannot be faster than the 0.5 s startup: \(cold.elapsed)")
            #expect(chill.log.contains("starting:"))
            var stats = try await chill.stats()
            #expect(stats["state"] as? String == "Ready")
            #expect(E2EChill.wakes(stats) == 1)

            // Warm requests: no new wake.
            let warm = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(warm.status == 200, "\(warm)")
            let legacy = try await chill.request("POST", "/v1/completions", body: E2E.completion())
            #expect(legacy.status == 200, "\(legacy)")
            #expect(try legacy.json()["object"] as? String == "text_completion")
            stats = try await chill.stats()
            #expect(E2EChill.wakes(stats) == 1, "\(E2EChill.summary(stats))")
            try await chill.waitForNothingInFlight()
            #expect(stats["model"] as? String == E2E.model)

            // Metrics.
            let metrics = try await chill.request("GET", "/proxy/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.header("content-type")?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains("chill_requests_total{"))
            #expect((E2E.metric(metrics.text, #"chill_requests_total{model="e2e-model",code="200"}"#) ?? 0) >= 3, "\(metrics.text)")
            #expect(E2E.metric(metrics.text, #"chill_wakes_total{model="e2e-model",result="success"}"#) == 1, "\(metrics.text)")
            #expect(E2E.metric(metrics.text, #"chill_model_state{model="e2e-model"}"#) == 2, "Ready is 2")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func processIdleScaleDownAndTheNextWake() async throws {
        try await Self.withProcessChill(idle: "1s") { chill, simPort in
            let cold = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(cold.status == 200, "\(cold)")
            #expect(E2EChill.wakes(try await chill.stats()) == 1)

            // Idle for 1 s with nothing in flight: scaled down, the process gone.
            try await chill.waitForState("ScaledDown", timeout: .seconds(10))
            try await E2EWait.until("the simulator's port closed") { (!E2E.listening(simPort), "still listening") }
            #expect(chill.log.contains("[chill-server] process"))
            let down = try await chill.stats()
            #expect(E2EChill.int((down["backend"] as? [String: Any])?["desiredReplicas"]) == 0)

            // After the scale-down, the next request wakes it again.
            let again = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(again.status == 200, "\(again)")
            #expect(E2EChill.wakes(try await chill.stats()) == 2)

            // Catch the next idle scale-down in Draining if we can, and send a request right then.
            var sawDraining = false
            try await E2EWait.until("the next idle scale-down", timeout: .seconds(10), interval: .milliseconds(2)) {
                let state = try await chill.state()
                if state == "Draining" { sawDraining = true }
                return (state == "Draining" || state == "ScaledDown", state)
            }
            let during = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(during.status == 200, "request during/after the scale-down (Draining seen: \(sawDraining)): \(during)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func streamingIsRelayedEventByEventByteIdentical() async throws {
        try await Self.withProcessChill(idle: "30s", sim: ["--tokens-per-second", "5"]) { chill, simPort in
            let body = E2E.chat(stream: true, maxTokens: 8)
            // Cold: the held streaming request is replayed once the model serves.
            let cold = try await chill.request("POST", "/v1/chat/completions", body: body)
            let direct = try await E2EHTTP.request(port: simPort, "POST", "/v1/chat/completions", body: body)
            let warm = try await chill.request("POST", "/v1/chat/completions", body: body)

            // Compared as SSE events, not HTTP chunks: events that reach a proxy together (on a starved
            // machine) are relayed as that read's chunks, split anywhere.
            func events(_ r: E2EHTTP.Response) -> [String] {
                r.text.components(separatedBy: "\n\n").dropLast().map { E2E.normalized($0 + "\n\n") }
            }
            #expect(direct.status == 200 && direct.complete)
            // role event + 8 tokens + finish event + [DONE]
            #expect(events(direct).count == 11, "\(direct.chunkTexts)")
            for (name, response) in [("cold", cold), ("warm", warm)] {
                #expect(response.status == 200, "\(name): \(response)")
                #expect(response.header("content-type")?.hasPrefix("text/event-stream") == true, "\(name)")
                #expect(response.isChunked, "\(name): not chunked")
                #expect(response.complete, "\(name): stream not terminated")
                #expect(response.chunkTexts.last == "data: [DONE]\n\n", "\(name)")
                // The same events, byte for byte (only id and created differ per request).
                #expect(events(response) == events(direct), "\(name): \(response.chunkTexts)")
                // Tokens 2 and 3 (" ha", " ha") are byte-identical events: a proxy must not drop either.
                let relayed = events(response)
                if relayed.count > 3 {
                    #expect(relayed[2] == relayed[3], "\(name)")
                    #expect(relayed[2].contains(#""content":" ha""#), "\(name)")
                }
                let content = response.chunkTexts.compactMap { text -> String? in
                    guard let range = text.range(of: #""content":""#) else { return nil }
                    return String(text[range.upperBound...].prefix { $0 != "\"" })
                }.joined()
                #expect(content == "Hello ha ha! I am a simulated", "\(name)")
                #expect(response.text.contains(#""finish_reason":"length""#), "\(name)")
                // Streamed as produced (8 tokens at 5/s: 1.6 s), not buffered and sent at the end.
                if let first = response.chunkTimes.first, let last = response.chunkTimes.last {
                    #expect(last - first >= 0.8, "\(name): all chunks arrived within \(last - first)s")
                }
            }
            let stats = try await chill.stats()
            #expect(E2EChill.wakes(stats) == 1)
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aStreamLongerThanThreeIdleTimeoutsIsNotCutNorScaledDown() async throws {
        try await Self.withProcessChill(idle: "700ms", sim: ["--tokens-per-second", "25"]) { chill, _ in
            let states = StateLog()
            let streaming = Task { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(stream: true, maxTokens: 60), timeout: 30) }
            // Poll the state while the stream runs.
            let watcher = Task {
                while !Task.isCancelled {
                    if let stats = try? await chill.stats() { states.append(stats["state"] as? String ?? "?", inFlight: E2EChill.int(stats["inFlight"])) }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            let stream = try await streaming.value
            watcher.cancel()
            _ = await watcher.value

            #expect(stream.status == 200)
            #expect(stream.complete)
            #expect(stream.chunkTexts.last == "data: [DONE]\n\n")
            #expect(stream.chunks.count == 63, "role + 60 tokens + finish + [DONE]; got \(stream.chunks.count)")
            let streamed = (stream.chunkTimes.last ?? 0) - (stream.chunkTimes.first ?? 0)
            #expect(streamed >= 2.1, "the stream lasted \(streamed)s, less than 3 × the 700 ms idle timeout")
            // Once Ready, never anything else until the stream ended.
            let seen = states.entries
            let afterReady = seen.drop { $0.state != "Ready" }
            #expect(!afterReady.isEmpty, "never saw Ready: \(seen)")
            #expect(afterReady.allSatisfy { $0.state == "Ready" }, "scaled down during the stream: \(seen.map(\.state))")
            #expect(afterReady.contains { $0.inFlight == 1 })

            // Afterwards the idle timer runs again.
            try await chill.waitForState("ScaledDown", timeout: .seconds(10))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aClientThatDisconnectsMidStreamCancelsTheUpstreamRequest() async throws {
        try await Self.withProcessChill(idle: "30s", sim: ["--tokens-per-second", "20"]) { chill, simPort in
            let wake = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(wake.status == 200)
            func simMetrics() async throws -> String { try await E2EHTTP.request(port: simPort, "GET", "/metrics").text }
            let cancelledBefore = E2E.metric(try await simMetrics(), "vllm_sim:cancelled_requests_total") ?? -1
            #expect(cancelledBefore == 0)

            // 200 tokens at 20/s would take 10 s: read three events and hang up.
            let partial = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(stream: true, maxTokens: 200), stopAfterChunks: 3)
            #expect(partial.status == 200)
            #expect(partial.chunks.count == 3)

            var lastMetrics = ""
            try await E2EWait.until("vllm-sim counting the request as cancelled", timeout: .seconds(5)) {
                lastMetrics = try await simMetrics()
                let cancelled = E2E.metric(lastMetrics, "vllm_sim:cancelled_requests_total") ?? -1
                return (cancelled == cancelledBefore + 1, "cancelled=\(cancelled)")
            }
            #expect(E2E.metric(lastMetrics, "vllm:num_requests_running") == 0)
            try await chill.waitForStats("in-flight back to 0", timeout: .seconds(5)) { E2EChill.int($0["inFlight"]) == 0 }
            // The proxy still serves.
            let after = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(after.status == 200)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func adminOperationsNeedTheTokenAndStartAndStopTheModel() async throws {
        let token = "e2e-admin-secret"
        try await Self.withProcessChill(idle: "30s", extra: ["--admin-token", token]) { chill, simPort in
            for headers in [[:], ["Authorization": "Bearer wrong"], ["Authorization": token]] {
                let denied = try await chill.request("POST", "/proxy/operations/start", headers: headers)
                #expect(denied.status == 401, "\(headers): \(denied)")
                #expect(denied.header("content-type") == "application/json")
                let error = try denied.openAIError()
                #expect(error.type == "authentication_error")
                #expect(error.code == "invalid_admin_token")
                #expect(!error.message.isEmpty)
            }
            let denied = try await chill.request("POST", "/proxy/operations/stop")
            #expect(denied.status == 401)
            #expect(try await chill.state() == "ScaledDown")
            #expect(!chill.log.contains("starting:"))

            let auth = ["Authorization": "Bearer \(token)"]
            let start = try await chill.request("POST", "/proxy/operations/start", headers: auth)
            #expect(start.status == 202, "\(start)")
            try await chill.waitForState("Ready", timeout: .seconds(10))
            #expect(E2E.listening(simPort))

            let stop = try await chill.request("POST", "/proxy/operations/stop", headers: auth)
            #expect(stop.status == 202, "\(stop)")
            try await chill.waitForState("ScaledDown", timeout: .seconds(10))
            try await E2EWait.until("the simulator's port closed") { (!E2E.listening(simPort), "still listening") }

            // Start, then stop, then a request while the process is still being stopped: it wakes the model again.
            _ = try await chill.request("POST", "/proxy/operations/start", headers: auth)
            try await chill.waitForState("Ready", timeout: .seconds(10))
            let stopAgain = try await chill.request("POST", "/proxy/operations/stop", headers: auth)
            #expect(stopAgain.status == 202)
            let during = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(during.status == 200, "a request during the scale-down: \(during)")
            #expect(try await chill.state() == "Ready")
        }
    }

    /// BUG PIN (ProcessBackend): `--command` runs as `/bin/sh -c <command>` and dash does not exec, so the
    /// process group's leader is the shell and the server is its child. On stop, SIGTERM reaches both; the
    /// shell dies at once, and `reaped` then SIGKILLs the whole group right away (no --stop-grace for the
    /// server's graceful shutdown) and reports the backend at zero while the server may still be running.
    @Test(.timeLimit(.minutes(1)))
    func processStopWaitsForTheWholeProcessGroupWithItsGrace() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chill-e2e-group-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("marker").path
        // A "server" that needs 0.5 s to shut down cleanly on SIGTERM (as vLLM does), under the shell.
        let server = "trap 'sleep 0.5; echo graceful >> \(marker); exit 0' TERM; echo started >> \(marker); while :; do sleep 0.05; done"
        let chill = try await E2EChill.start(
            ["--backend", "process", "--command", "sh -c \"\(server)\"", "--target-port", String(try VLLMSim.freePort()),
             "--idle-timeout", "30s", "--served-model-name", E2E.model])
        @Sendable func markerText() -> String { (try? String(contentsOfFile: marker, encoding: .utf8)) ?? "" }
        do {
            let start = try await chill.request("POST", "/proxy/operations/start")
            #expect(start.status == 202)
            try await E2EWait.until("the server process running") { (markerText().contains("started"), markerText()) }
            let stop = try await chill.request("POST", "/proxy/operations/stop")
            #expect(stop.status == 202)
            try await chill.waitForState("ScaledDown", timeout: .seconds(10))
            let atScaledDown = markerText()
            #expect(atScaledDown.contains("graceful"),
                    "ScaledDown was reported while the server process was still shutting down (or it was SIGKILLed): marker=\(atScaledDown.debugDescription)")
            // Within the 3 s stop grace the server must get to finish its shutdown at all.
            let finished = await E2EChill.race(.seconds(3)) {
                while !Task.isCancelled, !markerText().contains("graceful") { try? await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(finished, "the server was killed before its graceful shutdown (0.5 s, grace 3 s): marker=\(markerText().debugDescription)\nlog:\n\(chill.log)")
        } catch {
            await chill.stop()
            throw error
        }
        await chill.stop()
    }

    // MARK: - Kubernetes backend against KubeTestServer

    @Test(.timeLimit(.minutes(1)))
    func kubernetesColdRequestScalesUpAndWaitsForReadyPodsAndHealth() async throws {
        let simPort = try VLLMSim.freePort()  // nothing listens there yet: the engine is "loading"
        try await Self.withKubeChill(autoReady: false, targetPort: simPort, extra: ["--wake-timeout", "30s"]) { chill, kube in
            // /v1/models while scaled down: answered, no scale-up.
            let models = try await chill.request("GET", "/v1/models")
            #expect(models.status == 200)
            #expect(await kube.scalePatches().isEmpty)

            let cold = Task { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30) }
            try await chill.waitForStats("the request held while waking") { E2EChill.int($0["held"]) == 1 && $0["state"] as? String == "Waking" }
            try await kube.waitForReplicas(1)
            let patches = await kube.scalePatches()
            #expect(patches.map(\.replicas) == [1])
            #expect(patches.allSatisfy { $0.status == 200 })

            // Pods Ready, but /health doesn't answer yet: still held.
            await kube.markReady()
            try await Task.sleep(for: .milliseconds(600))  // three probe intervals: asserting that nothing happens
            var stats = try await chill.stats()
            #expect(E2EChill.int(stats["held"]) == 1, "\(E2EChill.summary(stats))")
            #expect(stats["state"] as? String == "Waking")

            // The engine comes up on the target: the held request goes through.
            let sim = try await VLLMSim.launch(args: ["--port", String(simPort), "--served-model-name", E2E.model])
            defer { sim.kill() }
            let response = try await cold.value
            #expect(response.status == 200, "\(response)")
            #expect(try response.json()["object"] as? String == "chat.completion")
            stats = try await chill.stats()
            #expect(stats["state"] as? String == "Ready")
            #expect(E2EChill.wakes(stats) == 1)
            try await chill.waitForNothingInFlight()
            #expect(await kube.scalePatches().count == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubernetesHundredConcurrentColdRequestsMakeExactlyOneScaleUp() async throws {
        let simPort = try VLLMSim.freePort()  // the engine is not up yet
        try await Self.withKubeChill(autoReady: false, targetPort: simPort, extra: ["--wake-timeout", "30s"]) { chill, kube in
            let count = 100
            let responses = Task {
                try await withThrowingTaskGroup(of: E2EHTTP.Response.self) { group in
                    for _ in 0..<count {
                        group.addTask { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30) }
                    }
                    var all: [E2EHTTP.Response] = []
                    for try await response in group { all.append(response) }
                    return all
                }
            }
            // All 100 held at once while the pod exists but its engine does not answer /health yet.
            try await chill.waitForStats("\(count) requests held", timeout: .seconds(20)) { E2EChill.int($0["held"]) == count }
            try await kube.waitForReplicas(1)
            #expect(try await chill.state() == "Waking")

            // The engine answers /health on the pod's IP and port: chill routes to it at once (its own
            // probe, not the kubelet's slower readiness).
            let sim = try await VLLMSim.launch(args: ["--port", String(simPort), "--served-model-name", E2E.model, "--quiet"])
            defer { sim.kill() }
            let all = try await responses.value
            #expect(all.count == count)
            #expect(all.allSatisfy { $0.status == 200 }, "\(Dictionary(grouping: all, by: \.status).mapValues(\.count))")
            let patches = await kube.scalePatches()
            #expect(patches.count == 1, "scale PATCHes: \(patches)")
            #expect(patches.first?.replicas == 1)
            let stats = try await chill.stats()
            #expect(E2EChill.wakes(stats) == 1)
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubernetesCrashLoopBackOffIsAFast503NamingTheCause() async throws {
        let simPort = try VLLMSim.freePort()  // a crash-looping engine answers nothing
        try await Self.withKubeChill(autoReady: true, targetPort: simPort, extra: ["--wake-timeout", "60s"]) { chill, kube in
            await kube.server.setDeploymentFailure(.crashLoopBackOff(restartCount: 4), namespace: E2EKube.namespace, deployment: E2EKube.deployment)
            let response = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30)
            #expect(response.status == 503, "\(response)")
            #expect(response.elapsed < 5, "not fast: \(response.elapsed)s (wake timeout 60s)")
            #expect(Int(response.header("retry-after") ?? "") ?? 0 > 0, "no Retry-After")
            let error = try response.openAIError()
            #expect(error.message.contains("CrashLoopBackOff"), "\(error.message)")
            #expect(error.code == "model_crash_loop_back_off")
            #expect(error.type == "service_unavailable")

            // Right after, another request fails the same way at once instead of restarting a crash loop.
            let again = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30)
            #expect(again.status == 503)
            #expect(again.elapsed < 2)
            #expect((try? again.openAIError().message.contains("CrashLoopBackOff")) == true)
            let stats = try await chill.stats()
            #expect(stats["state"] as? String == "Failed")
            #expect((stats["lastFailure"] as? String)?.contains("CrashLoopBackOff") == true)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubernetesWakeTimeoutIs503WithRetryAfterNever502() async throws {
        let simPort = try VLLMSim.freePort()  // nothing ever answers /health there
        try await Self.withKubeChill(autoReady: false, targetPort: simPort, extra: ["--wake-timeout", "1s"]) { chill, kube in
            let responses = try await withThrowingTaskGroup(of: E2EHTTP.Response.self) { group in
                for _ in 0..<3 { group.addTask { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30) } }
                var all: [E2EHTTP.Response] = []
                for try await response in group { all.append(response) }
                return all
            }
            for response in responses {
                #expect(response.status == 503, "\(response)")
                #expect(response.elapsed >= 0.8 && response.elapsed < 6, "\(response.elapsed)s for a 1 s wake timeout")
                #expect(response.header("retry-after") != nil)
                #expect((try? response.openAIError().code) == "model_wake_timeout", "\(response)")
            }
            let stats = try await chill.stats()
            #expect(stats["state"] as? String == "Failed")
            try await chill.waitForNothingInFlight()
            // The failed wake is undone: the Deployment goes back to 0.
            try await kube.waitForReplicas(0)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubernetesMaxHeldAnswers429WithRetryAfter() async throws {
        let sim = try await VLLMSim.launch(args: ["--served-model-name", E2E.model, "--quiet"])
        defer { sim.kill() }
        try await Self.withKubeChill(autoReady: false, targetPort: sim.port, extra: ["--max-held", "2", "--wake-timeout", "30s"]) { chill, kube in
            let first = Task { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30) }
            let second = Task { try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30) }
            try await chill.waitForStats("2 held") { E2EChill.int($0["held"]) == 2 }

            let third = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat(), timeout: 30)
            #expect(third.status == 429, "\(third)")
            #expect(third.elapsed < 2)
            #expect(Int(third.header("retry-after") ?? "") ?? 0 > 0)
            #expect((try? third.openAIError().type) == "rate_limit_error")

            try await kube.waitForReplicas(1)
            await kube.markReady()
            #expect(try await first.value.status == 200)
            #expect(try await second.value.status == 200)
            try await chill.waitForNothingInFlight()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func kubernetesAHeldClientThatDisconnectsIsDropped() async throws {
        let sim = try await VLLMSim.launch(args: ["--served-model-name", E2E.model, "--quiet"])
        defer { sim.kill() }
        try await Self.withKubeChill(autoReady: false, targetPort: sim.port, extra: ["--wake-timeout", "30s"]) { chill, kube in
            let connection = try E2EHTTP.Connection.open(port: chill.port)
            try connection.send("POST", "/v1/chat/completions", body: E2E.chat())
            try await chill.waitForStats("the request held") { E2EChill.int($0["held"]) == 1 }
            connection.close()
            try await chill.waitForStats("the held slot released", timeout: .seconds(5)) { E2EChill.int($0["held"]) == 0 }

            // The wake goes on; once ready, nothing is counted in flight for the client that left.
            try await kube.waitForReplicas(1)
            await kube.markReady()
            try await chill.waitForState("Ready", timeout: .seconds(10))
            try await chill.waitForNothingInFlight()
            let completions = E2E.metric(try await E2EHTTP.request(port: sim.port, "GET", "/metrics").text, "vllm_sim:completion_requests_total")
            #expect(completions == 0, "the abandoned request reached the engine")

            // And the proxy serves normally afterwards.
            let response = try await chill.request("POST", "/v1/chat/completions", body: E2E.chat())
            #expect(response.status == 200)
            try await chill.waitForNothingInFlight()
        }
    }

    // MARK: - The official OpenAI Python client (tests/e2e)

    @Test(.timeLimit(.minutes(2)))
    func openAIPythonClientAgainstChillServer() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let chillServer = try E2EBinaries.locate("chill-server", environment: "CHILL_SERVER_BINARY")
        let vllmSim = try VLLMSim.binaryPath()

        let probe = try await E2EProcess.run(["python3", "-c", "import openai, pytest; print(openai.__version__)"], cwd: root, timeout: 60)
        guard probe.status == 0 else {
            Issue.record("""
                the OpenAI end-to-end test needs python3 with the `openai` and `pytest` packages \
                (pip install openai pytest); importing them failed:
                \(probe.output)
                """)
            return
        }
        var environment = ProcessInfo.processInfo.environment
        environment["CHILL_SERVER_BINARY"] = chillServer
        environment["VLLM_SIM_BINARY"] = vllmSim
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        let run = try await E2EProcess.run(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e"], cwd: root, environment: environment, timeout: 100)
        #expect(run.status == 0, "pytest tests/e2e failed (status \(run.status)):\n\(run.output)")
    }
}

/// States seen while polling, from a watcher task.
final class StateLog: @unchecked Sendable {
    struct Entry { var state: String; var inFlight: Int }
    private let lock = NSLock()
    private var _entries: [Entry] = []
    func append(_ state: String, inFlight: Int) { lock.withLock { _entries.append(Entry(state: state, inFlight: inFlight)) } }
    var entries: [Entry] { lock.withLock { _entries } }
}
