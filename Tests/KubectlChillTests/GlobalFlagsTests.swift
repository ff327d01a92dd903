import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// kubectl's global flags work before the subcommand as well as after it (`kubectl chill --context dev list`).
@Suite struct GlobalFlagsTests {
    static let names = KubectlChill.subcommandNames

    @Test func leadingGlobalFlagsMoveBehindTheSubcommand() {
        let cases: [([String], [String])] = [
            (["--context", "dev", "list"], ["list", "--context", "dev"]),
            (["--context=dev", "list", "-o", "wide"], ["list", "--context=dev", "-o", "wide"]),
            (["--kubeconfig", "/k", "status"], ["status", "--kubeconfig", "/k"]),
            (["--kubeconfig=/k", "status"], ["status", "--kubeconfig=/k"]),
            (["-n", "ml", "ls"], ["ls", "-n", "ml"]),
            (["-nml", "ls"], ["ls", "-nml"]),
            (["--namespace", "ml", "--request-timeout", "5s", "stop", "qwen"], ["stop", "--namespace", "ml", "--request-timeout", "5s", "qwen"]),
            (["--namespace=ml", "--request-timeout=5s", "start", "qwen"], ["start", "--namespace=ml", "--request-timeout=5s", "qwen"]),
            // Already after the subcommand, or no subcommand: unchanged.
            (["list", "--context", "dev"], ["list", "--context", "dev"]),
            (["--context", "dev", "--help"], ["--context", "dev", "--help"]),
            (["--context", "dev"], ["--context", "dev"]),
            (["--version"], ["--version"]),
            ([], []),
            // Only the flags in front of the first subcommand move; a model named like a command stays put.
            (["-n", "ml", "switch", "list"], ["switch", "-n", "ml", "list"]),
        ]
        for (input, expected) in cases {
            #expect(GlobalFlags.hoisted(input, subcommands: Self.names) == expected, "\(input)")
        }
    }

    /// Every spelling, through `Entry.run` as the binary runs it, against the test API server.
    @Test func everySpellingWorksBeforeAndAfterTheSubcommand() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        _ = await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B"])
        let k = h.kubeconfigPath
        let spellings: [[String]] = [
            ["--kubeconfig", k], ["--kubeconfig=\(k)"],
            ["--kubeconfig", k, "--context", "kube-test"], ["--kubeconfig", k, "--context=kube-test"],
            ["--kubeconfig", k, "-n", "chill-system"], ["--kubeconfig", k, "-nchill-system"],
            ["--kubeconfig", k, "--namespace", "chill-system"], ["--kubeconfig", k, "--namespace=chill-system"],
            ["--kubeconfig", k, "--request-timeout", "10s"], ["--kubeconfig", k, "--request-timeout=10s"],
        ]
        for flags in spellings {
            for arguments in [flags + ["list", "-o", "json"], ["list"] + flags + ["-o", "json"]] {
                let run = await InstallRun.run(arguments)
                #expect(run.code == 0, "\(arguments): \(run.err)")
                #expect(run.out.contains("\"qwen\""), "\(arguments)")
            }
        }
        // A global flag still reaches the command: an unknown context is an error naming it.
        let wrong = await InstallRun.run(["--kubeconfig", k, "--context", "nope", "list"])
        #expect(wrong.code == 1)
        #expect(wrong.err.contains("nope"), "\(wrong.err)")
        // And the namespace, before the subcommand, is the one used.
        let status = await InstallRun.run(["-nml", "--kubeconfig", k, "status", "-o", "json"])
        #expect(status.code == 0, "\(status.err)")
        #expect(try JSONValue.parse(status.out)["namespace"] == "ml")
    }
}
