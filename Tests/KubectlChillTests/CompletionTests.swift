import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// Completion that completes (issue 9, item 7).
@Suite struct CompletionTests {
    @Test(arguments: [
        (["list", "-o", ""], "table\nwide\njson\nyaml\n:4\n"),
        (["status", "--output", "j"], "json\n:4\n"),
        (["create", "q", "-o", ""], "json\nyaml\n:4\n"),
        (["version", "-o", ""], "text\njson\nyaml\n:4\n"),
        (["uninstall", "--d"], "--delete-models\n--dry-run\n:4\n"),
        (["list", "--no"], "--no-headers\n:4\n"),
    ])
    func kubectlHelperCompletesFlagsAndOutputValues(words: [String], expected: String) async {
        let run = await ModelRunNoCluster.run(["completion", "__kubectl"] + words)
        #expect(run.code == 0)
        #expect(run.out == expected, "\(words)")
    }

    @Test func modelNamesAfterEveryCommandThatTakesThem() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        for words in [["status", "l"], ["list", "qwen", "l"], ["delete", "coder", "l"]] {
            let run = await ModelRunNoCluster.run(["completion", "__kubectl", "--kubeconfig", h.kubeconfigPath, "--request-timeout", "60s"] + words)
            #expect(run.out == "llama\n:4\n", "\(words)")
        }
    }

    @Test func generatedScriptsCompleteModelNamesThroughThePlugin() async {
        for shell in ["bash", "zsh", "fish"] {
            let run = await ModelRunNoCluster.run(["completion", shell])
            #expect(run.out.contains(KubectlChill.Completion.modelNamesCommand), "\(shell)")
        }
        // Without a reachable cluster, __models prints nothing (and does not fail the shell).
        let models = await ModelRunNoCluster.run(["completion", "__models", "--kubeconfig", "/nonexistent"])
        #expect(models.code == 0)
    }

    @Test func theKrewArchiveShipsTheKubectlHelper() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let helper = root.appendingPathComponent("plugins/kubectl_complete-chill").path
        #expect(FileManager.default.isExecutableFile(atPath: helper))
        #expect(try String(contentsOfFile: helper, encoding: .utf8).contains("exec kubectl-chill completion __kubectl \"$@\""))
        let manifest = try YAML.decode(String(contentsOfFile: root.appendingPathComponent("plugins/chill.yaml").path, encoding: .utf8))
        let platforms = manifest[path: "spec", "platforms"]?.arrayValue ?? []
        #expect(platforms.count == 4)
        for platform in platforms {
            let files = platform["files"]?.arrayValue?.compactMap { $0["from"]?.stringValue } ?? []
            #expect(files.contains("kubectl_complete-chill"), "\(platform["uri"] ?? .null)")
        }
    }
}
