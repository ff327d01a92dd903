import Foundation
import KubeTestServer
import Synchronization
import Testing
@testable import Shared

/// Exec credential plugins: one run shared by concurrent callers, cached until it expires, killed
/// when it hangs.
@Suite struct ExecCredentialTests {
    /// A plugin that counts its runs (one line each in `runs`) and, with `gate`, waits for that file.
    static func countingPlugin(_ dir: TempDir, gate: Bool, hang: Bool = false) throws -> KubeConfig.ExecConfig {
        let wait = gate ? "while [ ! -f \(dir.path)/go ]; do sleep 0.01; done" : ""
        let script = try dir.write("plugin.sh", """
            #!/bin/sh
            echo run >> \(dir.path)/runs
            \(wait)
            \(hang ? "sleep 30" : "")
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token","expirationTimestamp":"2030-01-01T00:00:00Z"}}'
            """, executable: true)
        return KubeConfig.ExecConfig(apiVersion: nil, command: script, args: nil, env: nil, installHint: nil,
                                     provideClusterInfo: nil, interactiveMode: "Never")
    }

    static func runs(_ dir: TempDir) -> Int {
        ((try? String(contentsOfFile: dir.path + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    @Test(.timeLimit(.minutes(1)))
    func concurrentCallersShareOneExecRunAndItsExpiryIsHonoured() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let clock = Locked(RFC3339.parse("2029-12-31T23:00:00Z")!)
        let provider = CredentialProvider(credential: .exec(try Self.countingPlugin(dir, gate: true)),
                                          environment: ProcessInfo.processInfo.environment,
                                          now: { clock.value })
        let callers = Task {
            try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<20 { group.addTask { try await provider.current().authorization } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
        }
        // The plugin is running and blocked; every caller is waiting on it.
        while Self.runs(dir) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try dir.write("go", "")
        let tokens = try await callers.value
        #expect(tokens == Array(repeating: "Bearer exec-token", count: 20))
        #expect(Self.runs(dir) == 1)

        // Cached until its expirationTimestamp…
        _ = try await provider.current()
        #expect(Self.runs(dir) == 1)
        // …and fetched again after it.
        clock.value = RFC3339.parse("2030-01-01T00:00:01Z")!
        _ = try await provider.current()
        #expect(Self.runs(dir) == 2)
    }

    @Test(.timeLimit(.minutes(1)))
    func aBurstOfRequestsRunsTheExecPluginOnce() async throws {
        let server = try await KubeTestServer.start(tokens: ["exec-token": "carol"])
        defer { Task { try? await server.shutdown() } }
        let dir = try TempDir()
        defer { dir.cleanup() }
        let client = KubeClientTests.tokenClient(server, credential: .exec(try Self.countingPlugin(dir, gate: false)))
        let api = client.api(ConfigMap.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<30 { group.addTask { _ = try await api.list() } }
            try await group.waitForAll()
        }
        #expect(Self.runs(dir) == 1)
        let users = Set(await server.store.requestLog.map(\.user))
        #expect(users == ["carol"])
    }

    @Test(.timeLimit(.minutes(1)))
    func aHangingExecPluginTimesOutForEveryWaiterAndIsRetriedNextTime() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let provider = CredentialProvider(credential: .exec(try Self.countingPlugin(dir, gate: false, hang: true)),
                                          environment: ProcessInfo.processInfo.environment, execTimeout: .milliseconds(300))
        let failures = await withTaskGroup(of: String.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do { _ = try await provider.current(); return "succeeded" } catch { return "\(error)" }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(failures.count == 5)
        #expect(failures.allSatisfy { $0.hasSuffix("did not finish within 0.3 seconds") })
        #expect(Self.runs(dir) == 1)
        await #expect(throws: KubeConfigError.self) { _ = try await provider.current() }
        #expect(Self.runs(dir) == 2)
    }
}

/// A value several tasks read and a test changes.
final class Locked<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
