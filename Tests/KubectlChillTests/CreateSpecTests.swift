import Foundation
import KubeTestServer
import Testing
@testable import kubectl_chill
@testable import Shared

/// `create` covers the typed spec fields and warns about what would not work (issue 9, item 6).
@Suite struct CreateSpecTests {
    @Test func typedFlagsFillTheSpec() async throws {
        let run = await ModelRunNoCluster.run([
            "create", "q", "--model", "Qwen/Qwen3-8B", "--dry-run", "-o", "json",
            "--tool-call-parser", "hermes", "--reasoning-parser", "qwen3", "--enable-auto-tool-choice",
            "--max-num-seqs", "8", "--max-num-batched-tokens", "8192", "--gpu-memory-utilization", "0.85",
            "--dtype", "bfloat16", "--enable-prefix-caching", "--disable-chunked-prefill", "--cpu-offload-gb", "4",
        ])
        #expect(run.code == 0, "\(run.err)")
        let spec = try JSONValue.parse(run.out)["spec"]
        #expect(spec == [
            "modelName": "Qwen/Qwen3-8B", "toolCallParser": "hermes", "reasoningParser": "qwen3", "enableAutoToolChoice": true,
            "maxNumSeqs": 8, "maxNumBatchedTokens": 8192, "gpuMemoryUtilization": 0.85, "dtype": "bfloat16",
            "enablePrefixCaching": true, "enableChunkedPrefill": false, "cpuOffloadGB": 4,
        ])
        // And vLLM gets the flags.
        let model = try JSONValue.parse(run.out).decode(as: VLLMModel.self)
        let args = model.spec.vllmArguments(servedName: "q")
        for flag in ["--tool-call-parser", "--reasoning-parser", "--enable-auto-tool-choice", "--max-num-seqs", "--dtype", "--enable-prefix-caching", "--no-enable-chunked-prefill", "--cpu-offload-gb"] {
            #expect(args.contains(flag), "\(flag)")
        }
    }

    @Test func anExtraArgOverridingChillsFlagsIsAWarning() async {
        let run = await ModelRunNoCluster.run(["create", "q", "--model", "m", "--dry-run", "--extra-arg=--port=9000", "--extra-arg", "--served-model-name=x", "--extra-arg=--enforce-eager"])
        #expect(run.code == 0)
        #expect(run.err == """
            warning: --extra-arg --port=9000 overrides the --port chill sets — chill-server sends requests to the port it set, so they may not reach the model
            warning: --extra-arg --served-model-name=x overrides the --served-model-name chill sets — use --served-model-name instead

            """)
    }

    @Test func validationQuotesTheValueGiven() async {
        let run = await ModelRunNoCluster.run(["create", "q", "--model", "m", "--idle-timeout", "5 minutes", "--dry-run"])
        #expect(run.code == 1)
        #expect(run.err == "error: invalid model \"q\": spec.idleTimeout: Invalid value: \"5 minutes\": idleTimeout must be a positive Go duration such as 30s, 5m or 1h30m (units: ns, us, ms, s, m, h) — fix the flag and retry; nothing was sent\n")
        let image = await ModelRunNoCluster.run(["create", "q", "--model", "m", "--image", "vllm/vllm-openai:latest", "--dry-run"])
        #expect(image.err.contains("spec.image: Invalid value: \"vllm/vllm-openai:latest\": image must be pinned"), "\(image.err)")
    }

    @Test func aServedNameAnotherModelServesIsRefused() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        await h.seedModel("qwen", spec: ["modelName": "Qwen/Qwen3-0.6B", "servedModelName": "chat"])
        await h.server.clearRequests()
        let run = await h.run(["create", "other", "--model", "m", "--served-model-name", "chat"])
        #expect(run.code == 1)
        #expect(run.err == "error: model \"qwen\" already serves the name \"chat\", so requests for it could not be routed — pick another --served-model-name; nothing was sent\n")
        #expect(await h.writes.isEmpty)
        // A model's name is its served name by default.
        let byName = await h.run(["create", "chat", "--model", "m"])
        #expect(byName.code == 1)
        #expect(byName.err.hasPrefix("error: model \"qwen\" already serves the name \"chat\""))
    }

    @Test func aMissingHFTokenSecretIsAWarning() async throws {
        let h = try await ModelHarness.start()
        defer { Task { await h.stop() } }
        let run = await h.run(["create", "gated", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hf-token-secret", "hf"])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.err == "warning: Secret \"hf\" does not exist in namespace chill-system; the model's pods will not start until it does\n")
        #expect(run.out.hasPrefix("vllmmodel.chill.dev/gated created"))

        let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "hf"], "stringData": ["HF_TOKEN": "x"]]
        #expect(await h.server.handle("POST", "/api/v1/namespaces/chill-system/secrets", json: secret).status == 201)
        let present = await h.run(["create", "gated2", "--model", "m", "--hf-token-secret", "hf"])
        #expect(present.err == "")
    }
}
