import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// kubectl's flag habits and help conventions (issue 9, item 3).
@Suite struct CLIConventionsTests {
    @Test func pflagSpellingsAreRewritten() {
        let cases: [([String], [String])] = [
            (["list", "-ojson"], ["list", "-o", "json"]),
            (["list", "-o=yaml"], ["list", "-o", "yaml"]),
            (["create", "q", "--gpus", "-1"], ["create", "q", "--gpus=-1"]),
            (["create", "q", "--gpu-memory-utilization", "-0.5"], ["create", "q", "--gpu-memory-utilization=-0.5"]),
            (["install", "--wait=false"], ["install", "--no-wait"]),
            (["uninstall", "--wait=true"], ["uninstall", "--wait"]),
            // A vLLM flag given to --extra-arg is its value, whatever it looks like.
            (["create", "q", "--extra-arg", "-ofoo"], ["create", "q", "--extra-arg", "-ofoo"]),
            (["list", "--", "-ojson"], ["list", "--", "-ojson"]),
            (["completion", "__kubectl", "list", "-oj"], ["completion", "__kubectl", "list", "-oj"]),
        ]
        for (input, expected) in cases { #expect(GlobalFlags.normalized(input) == expected, "\(input)") }
    }

    @Test func everyOutputSpellingPrintsTheSame() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B"])
        let reference = await h.run(["list", "-o", "json"])
        #expect(reference.code == 0, "\(reference.err)")
        for spelling in [["-ojson"], ["-o=json"], ["--output=json"], ["--output", "json"]] {
            let run = await h.run(["list"] + spelling)
            #expect(run.code == 0, "\(spelling): \(run.err)")
            #expect(run.out == reference.out, "\(spelling)")
        }
        let joined = await h.run(["list", "-nchill-system", "-ojson"])
        #expect(joined.out == reference.out)
    }

    @Test func aNegativeNumberGetsTheValidationMessage() async {
        let run = await ModelRunNoCluster.run(["create", "q", "--model", "m", "--gpus", "-1", "--dry-run"])
        #expect(run.code == 1)
        #expect(run.err == "error: invalid model \"q\": spec.gpus: Invalid value: -1: spec.gpus in body should be greater than or equal to 0 — fix the flag and retry; nothing was sent\n")
    }

    @Test func aBareRequestTimeoutIsSeconds() {
        #expect(GlobalOptions.requestTimeout("5") == .seconds(5))
        #expect(GlobalOptions.requestTimeout("0") == .zero)
        #expect(GlobalOptions.requestTimeout("1m30s") == .seconds(90))
        #expect(GlobalOptions.requestTimeout("-5") == nil)
        #expect(GlobalOptions.requestTimeout("soon") == nil)
    }

    @Test(arguments: [
        (["help", "nosuch"], "error: unknown command \"nosuch\" for \"kubectl chill\" — see `kubectl chill --help` for the commands\n"),
        (["nosuch"], "error: unknown command \"nosuch\" for \"kubectl chill\" — see `kubectl chill --help` for the commands\n"),
        (["lst"], "error: unknown command \"lst\" for \"kubectl chill\" — did you mean \"list\"? See `kubectl chill --help`\n"),
        (["stauts"], "error: unknown command \"stauts\" for \"kubectl chill\" — did you mean \"start\" or \"status\"? See `kubectl chill --help`\n"),
        (["-n", "ml", "--context", "dev", "nosuch"], "error: unknown command \"nosuch\" for \"kubectl chill\" — see `kubectl chill --help` for the commands\n"),
        (["help", "swich"], "error: unknown command \"swich\" for \"kubectl chill\" — did you mean \"switch\"? See `kubectl chill --help`\n"),
    ])
    func unknownCommandsAreUsageErrors(arguments: [String], message: String) async {
        let run = await ModelRunNoCluster.run(arguments)
        #expect(run.code == 2)
        #expect(run.out == "")
        #expect(run.err == message)
    }

    @Test func helpSaysKubectlChillAndPointsAtTheSubcommandsHelp() async {
        let root = await ModelRunNoCluster.run(["--help"])
        #expect(root.out.contains("USAGE: kubectl chill <subcommand>"))
        #expect(root.out.contains("See 'kubectl chill <subcommand> --help' for detailed help."))
        let list = await ModelRunNoCluster.run(["list", "--help"])
        #expect(list.out.contains("USAGE: kubectl chill list "))
        let usage = await ModelRunNoCluster.run(["wait", "--timeout", "soon"])
        #expect(usage.code == 2)
        #expect(usage.err.hasSuffix(" — see `kubectl chill wait --help`\n"), "\(usage.err)")
    }

    @Test func helpTextsNameNoRepositoryFiles() async {
        for command in KubectlChill.subcommandNames.sorted() + [""] where !command.hasPrefix("_") {
            let run = await ModelRunNoCluster.run((command.isEmpty ? [] : [command]) + ["--help"])
            for file in ["docs/", ".md", "manifests/", "Sources/"] {
                #expect(!run.out.contains(file), "\(command) --help mentions \(file)")
            }
        }
    }

    /// Each command accepts exactly the -o values its help lists (ArgumentParser lists the enum's cases).
    @Test(arguments: [
        ("list", ["table", "wide", "json", "yaml"], [String]()),
        ("status", ["table", "json", "yaml"], ["wide"]),
        ("create", ["json", "yaml"], ["table", "wide"]),
        ("version", ["text", "json", "yaml"], ["wide"]),
    ])
    func outputValuesMatchTheHelp(command: String, accepted: [String], refused: [String]) async {
        let help = await ModelRunNoCluster.run([command, "--help"])
        let text = help.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let values = "(values: \(accepted.joined(separator: ", "))"
        #expect(text.contains(values + ";") || text.contains(values + ")"), "\(command) --help: \(help.out)")
        for value in refused {
            let arguments = command == "create" ? ["create", "x", "--model", "m", "--dry-run", "-o", value] : [command, "-o", value]
            let run = await ModelRunNoCluster.run(arguments)
            #expect(run.code == 2, "\(command) -o \(value)")
        }
        let version = await ModelRunNoCluster.run(["version", "-o", "yaml"])
        #expect(version.out == "clientVersion: 0.1.0\n")
    }

    @Test func importOutputNeedsDryRun() async {
        let run = await ModelRunNoCluster.run(["import", "-f", "x.yaml", "-o", "yaml"])
        #expect(run.code == 2)
        #expect(run.err == "error: -o yaml needs --dry-run (import prints the models only when it creates nothing) — see `kubectl chill import --help`\n")
    }

    @Test func installAndUninstallWaitAreTheSameKindOfFlag() throws {
        for command in ["install", "uninstall"] {
            for (spelling, expected) in [("--wait", true), ("--no-wait", false)] {
                let parsed = try KubectlChill.parseAsRoot(GlobalFlags.normalized([command, spelling == "--no-wait" ? "--wait=false" : spelling]))
                var wait: Bool?
                if let install = parsed as? KubectlChill.Install { wait = install.wait }
                if let uninstall = parsed as? KubectlChill.Uninstall { wait = uninstall.wait }
                #expect(wait == expected, "\(command) \(spelling)")
            }
        }
    }
}
