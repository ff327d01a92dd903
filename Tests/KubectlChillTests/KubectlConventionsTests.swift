import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// The conventions of kubectl's own commands (issue 9, item 4).
@Suite struct KubectlConventionsTests {
    @Test func deleteTakesSeveralModelsAndIgnoreNotFound() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        for name in ["qwen", "llama", "coder"] { await h.seedModel(name, spec: ["modelName": "m"]) }

        let two = await h.run(["delete", "qwen", "llama"])
        #expect(two.code == 0, "\(two.err)")
        #expect(two.out == "vllmmodel.chill.dev \"qwen\" deleted\nvllmmodel.chill.dev \"llama\" deleted\n")

        // As kubectl delete: the ones that exist go, then the missing one is an error.
        let partly = await h.run(["delete", "nosuch", "coder"])
        #expect(partly.code == 1)
        #expect(partly.out == "vllmmodel.chill.dev \"coder\" deleted\n")
        #expect(partly.err == "error: model \"nosuch\" not found: there are no models — create one with: kubectl chill create nosuch --model HF_ID\n")

        let ignored = await h.run(["delete", "nosuch", "--ignore-not-found"])
        #expect(ignored.code == 0)
        #expect(ignored.out == "" && ignored.err == "")
    }

    @Test func listTakesNamesASelectorAndNoHeaders() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let labelled = await h.server.handle(
            "PATCH", "\(ModelHarness.modelsPath)/coder", json: ["metadata": ["labels": ["team": "ml"]]], contentType: "application/merge-patch+json")
        #expect(labelled.status == 200)

        let names = await h.run(["list", "qwen", "llama", "--no-headers"])
        #expect(names.code == 0, "\(names.err)")
        #expect(names.out == """
            llama   meta-llama/Llama-3.1-8B-Instruct   ScaledDown   0/0      -    2m35s
            qwen    Qwen/Qwen3-0.6B                    Ready        1/1      3m   42s

            """)
        let selected = await h.run(["list", "-l", "team=ml", "--no-headers"])
        #expect(selected.out.hasPrefix("coder "), "\(selected.out)")
        #expect(selected.out.split(separator: "\n").count == 1)
        let none = await h.run(["list", "-l", "team=nobody"])
        #expect(none.code == 0)
        #expect(none.err == "No models match the selector team=nobody.\n")

        // One name with -o json is the object, not a List, as kubectl get prints it.
        let one = try JSONValue.parse(await h.run(["list", "qwen", "-o", "json"]).out)
        #expect(one["kind"] == "VLLMModel")
        let onlyMissing = await h.run(["list", "nosuch", "-o", "json"])
        #expect(onlyMissing.code == 1)
        #expect(onlyMissing.out == "")
        let missing = await h.run(["list", "qwen", "nosuch"])
        #expect(missing.code == 1)
        #expect(missing.out.hasPrefix("NAME "))
        #expect(missing.err == "error: model \"nosuch\" not found — known models: coder, llama, qwen\n")
    }

    @Test func statusTakesAModel() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let run = await h.run(["status", "llama"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.out.contains("llama   ScaledDown   0/0     1      -      25.0"))
        #expect(!run.out.contains("qwen    Ready"))
        #expect(run.out.contains("Saved:     25.0 GPU-hours freed since install"))
        let unknown = await h.run(["status", "nosuch"])
        #expect(unknown.code == 1)
        #expect(unknown.err == "error: model \"nosuch\" not found — known models: coder, llama, qwen\n")
    }

    @Test func jsonIsPrintedAsKubectlPrintsIt() {
        let value: JSONValue = ["b": [1, 2.5, 36000.0], "a": ["x": .null, "empty": [:], "none": []], "s": "a<b & c>\n"]
        #expect(KubectlJSON.format(value) == """
            {
                "a": {
                    "empty": {},
                    "none": [],
                    "x": null
                },
                "b": [
                    1,
                    2.5,
                    36000
                ],
                "s": "a\\u003cb \\u0026 c\\u003e\\n"
            }
            """)
    }

    @Test func jsonAndYAMLPrintTheSameNumbers() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedGoldenModels()
        let yaml = await h.run(["status", "-o", "yaml"]).out
        let json = await h.run(["status", "-o", "json"]).out
        #expect(yaml.contains("scaledDownSeconds: 36000\n"), "\(yaml)")
        #expect(json.contains("\"scaledDownSeconds\": 36000\n"))
        #expect(yaml.firstMatch(of: /: \d+\.0\n/) == nil, "\(yaml)")
    }

    @Test func agesAreKubectlsHumanDurations() {
        let cases: [(Double, String)] = [
            (59, "59s"), (119, "119s"), (192, "3m12s"), (600, "10m"), (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"),
            (20 * 3600, "20h"), (49 * 3600, "2d1h"), (8 * 86400, "8d"), (800 * 86400, "2y70d"),
        ]
        for (seconds, text) in cases { #expect(humanDuration(seconds: seconds) == text, "\(seconds)") }
    }

    @Test func listAndStatusNameTheirColumnsAlike() {
        let list = KubectlChill.List.table([], active: .known(nil), wide: true, now: ModelHarness.now).headers
        #expect(list == ["NAME", "MODEL", "PHASE", "READY", "ACTIVE", "IDLE", "LAST WAKE", "GPUS", "IMAGE"])
        let status = StatusReport(namespace: "ns", proxy: nil, state: ChillState(), models: [], now: ModelHarness.now).text
        #expect(!status.contains("IDLE FOR"))
    }
}
