import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// The plugin against bad kubeconfigs, bad clusters and bad values: every case exits non-zero with
/// exactly one line on stderr that says what is wrong (and nothing on stdout).
@Suite struct BadInputCLITests {
    /// Runs `kubectl chill <arguments>` with `kubeconfig` (the harness's server, text rewritten by `edit`).
    static func run(_ arguments: [String], editKubeconfig edit: ((String) -> String)? = nil,
                    _ check: (ModelRun, ModelHarness) async throws -> Void) async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        if let edit {
            let text = try String(contentsOfFile: h.kubeconfigPath, encoding: .utf8)
            try edit(text).write(toFile: h.kubeconfigPath, atomically: true, encoding: .utf8)
        }
        await h.server.clearRequests()
        let run = await h.run(arguments)
        try await check(run, h)
    }

    static func expectOneLineError(_ run: ModelRun, code: Int32 = 1, startsWith prefix: String, contains parts: [String] = [],
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.code == code, "exit \(run.code): \(run.err)", sourceLocation: sourceLocation)
        #expect(run.out == "", sourceLocation: sourceLocation)
        #expect(run.err.hasSuffix("\n") && run.err.dropLast().split(separator: "\n").count == 1, "not one line: \(run.err)", sourceLocation: sourceLocation)
        #expect(run.err.hasPrefix(prefix), "\(run.err)", sourceLocation: sourceLocation)
        for part in parts { #expect(run.err.contains(part), "\(run.err) lacks \(part)", sourceLocation: sourceLocation) }
    }

    @Test func aKubeconfigThatIsNotYAMLNamesTheFileAndThePosition() async throws {
        try await Self.run(["list"], editKubeconfig: { _ in "apiVersion: v1\nclusters:\n  - name: [unclosed\n  users: {" }) { run, h in
            Self.expectOneLineError(run, startsWith: "error: kubeconfig \(h.kubeconfigPath) is not valid: ", contains: ["line "])
        }
    }

    @Test func aKubeconfigOfTheWrongShapeNamesTheField() async throws {
        try await Self.run(["list"], editKubeconfig: { _ in "apiVersion: v1\nkind: Config\nclusters: 42\n" }) { run, h in
            Self.expectOneLineError(run, startsWith: "error: kubeconfig \(h.kubeconfigPath) is not valid: ", contains: ["clusters"])
        }
    }

    @Test func aMissingKubeconfigSaysSo() async throws {
        let run = await InstallRun.run(["list", "--kubeconfig", "/nonexistent/chill-kubeconfig"])
        Self.expectOneLineError(ModelRun(code: run.code, out: run.out, err: run.err),
                                startsWith: "error: kubeconfig /nonexistent/chill-kubeconfig cannot be read — check the --kubeconfig path")
    }

    @Test func anUnknownContextNamesTheKnownOnes() async throws {
        try await Self.run(["list", "--context", "prod"]) { run, _ in
            Self.expectOneLineError(run, startsWith: "error: ", contains: ["prod", "kube-test"])
        }
    }

    @Test func anExpiredExecCredentialThatTheClusterRejectsIs401OneLine() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let plugin = h.directory + "/expired-credential.sh"
        try """
            #!/bin/sh
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"expired-token","expirationTimestamp":"2001-01-01T00:00:00Z"}}'
            """.write(toFile: plugin, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin)
        let text = try String(contentsOfFile: h.kubeconfigPath, encoding: .utf8)
        let users = text.range(of: "users:")!
        let execUser = """
            users:
            - name: kube-test-user
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: \(plugin)
                  interactiveMode: Never
            contexts:
            """
        let contexts = text.range(of: "contexts:")!
        let rewritten = text.replacingCharacters(in: users.lowerBound..<contexts.upperBound, with: execUser)
        try rewritten.write(toFile: h.kubeconfigPath, atomically: true, encoding: .utf8)
        await h.server.clearRequests()
        let run = await h.run(["list"])
        Self.expectOneLineError(run, startsWith: "error: the cluster rejected the credentials (401 Unauthorized) — log in again or refresh your kubeconfig")
        // Fetched again after the 401 (it said it had expired anyway), then given up.
        let statuses = await h.server.requests.map(\.status)
        #expect(statuses.allSatisfy { $0 == 401 } && !statuses.isEmpty, "\(statuses)")
    }

    @Test func anUnreachableServerIsConnectionRefused() async throws {
        try await Self.run(["list"], editKubeconfig: { $0.replacingOccurrences(of: #"server: https://127.0.0.1:[0-9]+"#, with: "server: https://127.0.0.1:1", options: .regularExpression) }) { run, _ in
            Self.expectOneLineError(run, startsWith: "error: no cluster reachable at https://127.0.0.1:1: connection refused — check your kubeconfig context (current: kube-test)")
        }
    }

    @Test func aServerCertificateTheCADidNotSignIsATLSError() async throws {
        // Another certificate as the trust root: the test server's certificate does not chain to it.
        let wrongCA = Data(TestPKI.untrustedClientCertificate.utf8).base64EncodedString()
        try await Self.run(["list"], editKubeconfig: {
            $0.replacingOccurrences(of: #"certificate-authority-data: [A-Za-z0-9+/=]+"#, with: "certificate-authority-data: \(wrongCA)", options: .regularExpression)
        }) { run, h in
            Self.expectOneLineError(run, startsWith: "error: no cluster reachable at \(h.server.url): ", contains: ["certificate"])
            #expect(await h.server.requests.isEmpty, "a request was sent over an unverified connection")
        }
    }

    @Test func rbacForbiddenNamesTheVerbAndTheResource() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.server.setAuthorizer { _, attributes in !(attributes.resource == "vllmmodels" && attributes.verb == "list") }
        let run = await h.run(["list"])
        Self.expectOneLineError(run, startsWith: "error: ", contains: [
            #"cannot list resource "vllmmodels" in API group "chill.dev""#, "ask a cluster admin for the rights",
        ])
    }

    @Test func createWithBadValuesNamesEveryOneAndSendsNothing() async throws {
        try await Self.run(["create", "qwen", "--model", "Qwen/Qwen3-0.6B", "--idle-timeout", "banana", "--gpus=-1", "--memory", "lots",
                            "--min-replicas", "3", "--max-replicas", "1"]) { run, h in
            Self.expectOneLineError(run, startsWith: "error: invalid model \"qwen\": ", contains: [
                "spec.idleTimeout", "spec.gpus", "spec.memory", "lots", "minReplicas", "nothing was sent",
            ])
            #expect(await h.server.requests.filter { $0.method != "GET" }.isEmpty)
        }
    }

    @Test func createWithANameThatIsNotADNSLabelSendsNothing() async throws {
        try await Self.run(["create", "Qwen_3", "--model", "Qwen/Qwen3-0.6B"]) { run, h in
            Self.expectOneLineError(run, startsWith: "error: ", contains: ["Qwen_3", "pick another NAME"])
            #expect(await h.server.requests.isEmpty)
        }
    }
}
