import Foundation
import Testing
@testable import ChillServer

@Suite(.serialized) struct ProcessBackendTests {
    /// A stand-in for `vllm serve`: listens after `delay` seconds, answers 200 on /health.
    static let serverScript = """
        import http.server, sys, time
        port, delay = int(sys.argv[1]), float(sys.argv[2])
        print("loading model", flush=True)
        time.sleep(delay)
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", port), Handler)
        print("serving on", port, flush=True)
        server.serve_forever()
        """

    final class Sandbox: Sendable {
        let directory: String
        let script: String
        let log: String

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("chill-process-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            script = directory + "/server.py"
            log = directory + "/backend.log"
            try ProcessBackendTests.serverScript.write(toFile: script, atomically: true, encoding: .utf8)
        }

        func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    struct Fixture {
        let backend: ProcessBackend
        let recorder: StatusRecorder
        let runTask: Task<Void, Never>

        init(command: String, port: Int, log: String, stopGrace: Duration = .seconds(5)) {
            backend = ProcessBackend(
                command: command, target: UpstreamTarget(host: "127.0.0.1", port: port), logFile: log, stopGrace: stopGrace,
                probePolicy: BackendTestKit.fastProbes, probeTimeout: .milliseconds(500), logger: BackendTestKit.logger)
            recorder = StatusRecorder(backend.statusUpdates())
            let backend = self.backend
            runTask = Task { do { try await backend.run() } catch {} }
        }

        func stop() async {
            runTask.cancel()
            await runTask.value
        }
    }

    static func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    @Test(.timeLimit(.minutes(1)))
    func startsBecomesReadyAndStopsWithNothingLeft() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let port = try BackendTestKit.freePort()
        let f = Fixture(command: "exec python3 \(sandbox.script) \(port) 0.3", port: port, log: sandbox.log)
        defer { Task { await f.stop() } }

        try await f.recorder.next("idle") { $0 == BackendStatus() }
        try await f.backend.scale(to: 1)
        let starting = try await f.recorder.next("starting") { $0.desiredReplicas == 1 && $0.pendingReplicas == 1 }
        #expect(starting.readyReplicas == 0)
        #expect(starting.progress == "Loading model")
        let pid = try #require(f.backend.processID)
        #expect(Self.isAlive(pid))
        // Its own process group, so a signal to the group reaches its children.
        #expect(getpgid(pid) == pid)

        let ready = try await f.recorder.next("ready") { $0.readyReplicas == 1 }
        #expect(ready == BackendStatus(desiredReplicas: 1, readyReplicas: 1, pendingReplicas: 0, progress: "Ready"))
        // Idempotent: scaling to 1 again starts nothing new.
        try await f.backend.scale(to: 1)
        #expect(f.backend.processID == pid)

        try await f.backend.scale(to: 0)
        try await f.recorder.next("stopping") { $0.desiredReplicas == 0 && $0.readyReplicas == 0 && $0.pendingReplicas == 1 }
        let stopped = try await f.recorder.next("stopped") { $0.pendingReplicas == 0 }
        #expect(stopped == BackendStatus())
        #expect(f.backend.processID == nil)
        // Reaped, not a zombie: the pid is gone.
        #expect(!Self.isAlive(pid))
        #expect(sandbox.logText.contains("loading model"))
        #expect(sandbox.logText.contains("serving on \(port)"))
    }

    @Test(.timeLimit(.minutes(1)))
    func aProcessThatExitsIsAFailureNamingTheExitCodeAndTheLog() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let port = try BackendTestKit.freePort()
        let f = Fixture(command: "echo 'CUDA error: out of memory' >&2; exit 3", port: port, log: sandbox.log)
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        let failed = try await f.recorder.next("failure, the process gone") { $0.failure != nil && $0.pendingReplicas == 0 }
        #expect(failed.failure?.reason == "ProcessExited")
        #expect(failed.failure?.message.contains("exited with code 3") == true)
        #expect(failed.failure?.message.contains("CUDA error: out of memory") == true)
        #expect(failed.readyReplicas == 0)
        #expect(failed.pendingReplicas == 0)
        #expect(failed.desiredReplicas == 1)
        #expect(f.backend.processID == nil)

        // A new start clears the failure (and this command fails again).
        try await f.backend.scale(to: 1)
        try await f.recorder.next("restarted") { $0.failure == nil && $0.desiredReplicas == 1 }
        try await f.recorder.next("failed again") { $0.failure?.reason == "ProcessExited" }
    }

    @Test(.timeLimit(.minutes(1)))
    func aCommandIgnoringSIGTERMIsKilledAfterTheGrace() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let port = try BackendTestKit.freePort()
        // The shell and its child both ignore SIGTERM.
        let f = Fixture(command: "trap '' TERM; echo armed; sleep 30; sleep 30", port: port, log: sandbox.log, stopGrace: .milliseconds(300))
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        try await f.recorder.next("started") { $0.pendingReplicas == 1 }
        try await BackendTestKit.eventually("the trap set") { sandbox.logText.contains("\narmed\n") }
        let pid = try #require(f.backend.processID)
        let stopAt = ContinuousClock.now
        try await f.backend.scale(to: 0)
        try await f.recorder.next("stopped") { $0.pendingReplicas == 0 }
        let took = ContinuousClock.now - stopAt
        #expect(took >= .milliseconds(300), "SIGKILL only after the grace")
        // Killed, not waited out: the commands would sleep 60 s (no wall-clock upper bound beyond that).
        #expect(took < .seconds(30))
        #expect(!Self.isAlive(pid))
        // The whole group went, the orphaned `sleep` child too (init may reap its zombie later).
        #expect(!ChildProcess.groupExists(pid))
        #expect(f.backend.currentStatus.failure == nil)
        #expect(sandbox.logText.contains("killed by signal 9 (SIGKILL)"))
    }

    /// With `sh -c`, the group's leader may be a shell whose child is the server: the shell dies at
    /// SIGTERM at once while the server takes its time to shut down. Stopped means the whole group is
    /// gone, and the server gets its grace.
    @Test(.timeLimit(.minutes(1)))
    func stopWaitsForTheWholeProcessGroupWithinTheGrace() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let server = "trap 'sleep 0.5; echo graceful; exit 0' TERM; echo started; while :; do sleep 0.05; done"
        let f = Fixture(command: "sh -c \"\(server)\"; echo shell-done", port: try BackendTestKit.freePort(), log: sandbox.log,
                        stopGrace: .seconds(3))
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        try await BackendTestKit.eventually("the server started") { sandbox.logText.contains("\nstarted\n") }
        let pid = try #require(f.backend.processID)
        try await f.backend.scale(to: 0)
        try await f.recorder.next("stopping") { $0.desiredReplicas == 0 && $0.pendingReplicas == 1 }
        try await f.recorder.next("stopped") { $0.desiredReplicas == 0 && $0.pendingReplicas == 0 }
        #expect(sandbox.logText.contains("\ngraceful\n"), "stopped before the server finished: \(sandbox.logText)")
        #expect(!ChildProcess.groupExists(pid))
        #expect(f.backend.currentStatus == BackendStatus())
    }

    @Test(.timeLimit(.minutes(1)))
    func leftoversOfACrashedLeaderAreStoppedToo() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        // The leader exits 1 at once, leaving a background "worker" in its group.
        let f = Fixture(command: "sleep 30 & echo worker-started; exit 1", port: try BackendTestKit.freePort(), log: sandbox.log,
                        stopGrace: .seconds(3))
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        let pid = try await BackendTestKit.eventuallyValue("a pid") { f.backend.processID }
        let failed = try await f.recorder.next("failure") { $0.failure != nil }
        #expect(failed.failure?.message.contains("exited with code 1") == true)
        try await f.recorder.next("the group gone") { $0.pendingReplicas == 0 }
        #expect(!ChildProcess.groupExists(pid))
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingRunStopsTheChild() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let port = try BackendTestKit.freePort()
        let f = Fixture(command: "sleep 30", port: port, log: sandbox.log, stopGrace: .seconds(5))

        try await f.backend.scale(to: 1)
        try await f.recorder.next("started") { $0.pendingReplicas == 1 }
        let pid = try #require(f.backend.processID)
        #expect(Self.isAlive(pid))
        await f.stop()
        // run() returned only after the child was stopped and reaped.
        #expect(!Self.isAlive(pid))
        #expect(f.backend.processID == nil)
        await #expect(throws: CancellationError.self) { try await f.backend.scale(to: 1) }
    }

    @Test(.timeLimit(.minutes(1)))
    func scalingUpWhileStoppingStartsAgainOnceTheOldProcessIsGone() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.cleanup() }
        let port = try BackendTestKit.freePort()
        let f = Fixture(command: "trap '' TERM; echo armed; sleep 30; sleep 30", port: port, log: sandbox.log, stopGrace: .milliseconds(300))
        defer { Task { await f.stop() } }

        try await f.backend.scale(to: 1)
        try await f.recorder.next("started") { $0.pendingReplicas == 1 }
        try await BackendTestKit.eventually("the trap set") { sandbox.logText.contains("\narmed\n") }
        let first = try #require(f.backend.processID)
        try await f.backend.scale(to: 0)
        try await f.recorder.next("stopping") { $0.desiredReplicas == 0 && $0.pendingReplicas == 1 }
        try await f.backend.scale(to: 1)
        // Still the old process (it ignores SIGTERM): not ready, not failed, waiting for it to go.
        #expect(f.backend.processID == first)
        #expect(f.backend.currentStatus.failure == nil)
        #expect(f.backend.currentStatus.readyReplicas == 0)
        try await BackendTestKit.eventually("a new process") { f.backend.processID.map { $0 != first } ?? false }
        #expect(!Self.isAlive(first))
        #expect(f.backend.currentStatus.desiredReplicas == 1)
        #expect(f.backend.currentStatus.failure == nil)
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnwritableLogFileFailsTheStart() async throws {
        let f = Fixture(command: "true", port: try BackendTestKit.freePort(), log: "/nonexistent-dir/backend.log")
        defer { Task { await f.stop() } }
        await #expect(throws: BackendFailure.self) { try await f.backend.scale(to: 1) }
        #expect(f.backend.currentStatus.failure?.reason == "SpawnFailed")
    }
}
