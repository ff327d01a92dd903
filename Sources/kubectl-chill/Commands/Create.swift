import ArgumentParser
import Shared

extension KubectlChill {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a model (a VLLMModel) from flags.",
            discussion: """
                Checks the values locally with the same rules (and messages) as the CRD before sending anything. The common vLLM settings have their own flags; --extra-arg passes any other `vllm serve` flag (a warning says when it overrides one chill sets: --port, --model, --served-model-name). A served model name another model already serves is refused (requests could not be routed); a --hf-token-secret that does not exist in the namespace is a warning. Unset fields take the CRD's defaults (image vllm/vllm-openai:v0.12.0, idle timeout 5m, wake timeout 10m, 0..1 replicas). The model scales to zero until its first request, `kubectl chill start` or `kubectl chill switch`.

                Examples:
                  kubectl chill create qwen --model Qwen/Qwen3-0.6B
                  kubectl chill create coder --model Qwen/Qwen3-Coder-30B-A3B-Instruct \\
                    --gpus 2 --tensor-parallel-size 2 --idle-timeout 20m \\
                    --extra-arg=--enable-expert-parallel
                  kubectl chill create qwen --model Qwen/Qwen3-0.6B --dry-run -o json
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Name of the model (a DNS label: lower-case letters, digits, '-').")
        var name: String

        @Option(name: .customLong("model"), help: "Hugging Face repo id (or path) of the weights, e.g. Qwen/Qwen3-0.6B.")
        var modelName: String

        @Option(help: "nvidia.com/gpu per replica (default: --tensor-parallel-size, else 1).")
        var gpus: Int?

        @Option(help: "Name clients send in the OpenAI `model` field (default: NAME).")
        var servedModelName: String?

        @Option(help: "Maximum context length in tokens.")
        var maxModelLen: Int?

        @Option(help: "GPUs one model is split across.")
        var tensorParallelSize: Int?

        @Option(help: "vLLM image, pinned to a tag or digest (default: \(VLLMModelSpec.Defaults.image)).")
        var image: String?

        @Option(help: "Scale down after this long without requests, e.g. 20m (default: chill-server's --idle-timeout, set by kubectl chill install, 5m unless changed).")
        var idleTimeout: String?

        @Option(help: "How long a wake may take before it fails, e.g. 15m (default: chill-server's --wake-timeout, 10m unless changed).")
        var wakeTimeout: String?

        @Option(help: "Replicas kept while idle; 0 scales to zero (default: 0).")
        var minReplicas: Int?

        @Option(help: "Replicas at most (default: 1).")
        var maxReplicas: Int?

        @Option(help: "CPU request per replica, e.g. 8 or 6500m.")
        var cpu: String?

        @Option(help: "Memory request per replica, e.g. 32Gi.")
        var memory: String?

        @Option(help: "Secret (in the install namespace) with a Hugging Face token under key HF_TOKEN, for gated models.")
        var hfTokenSecret: String?

        @Option(help: "vLLM --tool-call-parser, e.g. hermes.")
        var toolCallParser: String?

        @Option(help: "vLLM --reasoning-parser, e.g. qwen3.")
        var reasoningParser: String?

        @Flag(help: "vLLM --enable-auto-tool-choice.")
        var enableAutoToolChoice = false

        @Option(help: "vLLM --max-num-seqs: sequences batched at once.")
        var maxNumSeqs: Int?

        @Option(help: "vLLM --max-num-batched-tokens: tokens per batch.")
        var maxNumBatchedTokens: Int?

        @Option(help: "vLLM --gpu-memory-utilization, a fraction in (0, 1], e.g. 0.9.")
        var gpuMemoryUtilization: Double?

        @Option(help: "vLLM --dtype, e.g. auto, bfloat16 or float16.")
        var dtype: String?

        @Flag(inversion: .prefixedEnableDisable, help: "vLLM prefix caching on or off (default: vLLM's).")
        var prefixCaching: Bool?

        @Flag(inversion: .prefixedEnableDisable, help: "vLLM chunked prefill on or off (default: vLLM's).")
        var chunkedPrefill: Bool?

        @Option(help: "vLLM --cpu-offload-gb: GiB of weights offloaded to CPU memory per GPU.")
        var cpuOffloadGb: Double?

        @Option(name: .customLong("extra-arg"), parsing: .unconditionalSingleValue, help: "One more `vllm serve` argument (repeatable), for flags without their own option above, e.g. --extra-arg=--enforce-eager.")
        var extraArgs: [String] = []

        @Flag(help: "Print the VLLMModel (YAML, or -o json) and send nothing.")
        var dryRun = false

        @Option(name: .shortAndLong, help: "Print the object as json or yaml (with --dry-run the default is yaml).")
        var output: StructuredFormat?

        /// The object to send, or a one-line error naming every invalid value.
        func makeModel() throws -> VLLMModel {
            if let problem = ModelLookup.nameProblem(name) { throw CLIError(problem, hint: "pick another NAME") }
            var spec = VLLMModelSpec(
                modelName: modelName, servedModelName: servedModelName, maxModelLen: maxModelLen,
                tensorParallelSize: tensorParallelSize, extraArgs: extraArgs.isEmpty ? nil : extraArgs, image: image, gpus: gpus,
                cpu: cpu.map { VLLMModel.Quantity($0) }, memory: memory.map { VLLMModel.Quantity($0) },
                hfTokenSecret: hfTokenSecret.map { VLLMModelSpec.HFTokenSecret(name: $0) },
                idleTimeout: idleTimeout, wakeTimeout: wakeTimeout, minReplicas: minReplicas, maxReplicas: maxReplicas)
            spec.toolCallParser = toolCallParser
            spec.reasoningParser = reasoningParser
            spec.enableAutoToolChoice = enableAutoToolChoice ? true : nil
            spec.maxNumSeqs = maxNumSeqs
            spec.maxNumBatchedTokens = maxNumBatchedTokens
            spec.gpuMemoryUtilization = gpuMemoryUtilization
            spec.dtype = dtype
            spec.enablePrefixCaching = prefixCaching
            spec.enableChunkedPrefill = chunkedPrefill
            spec.cpuOffloadGB = cpuOffloadGb
            let problems = ModelValidation.problems(spec)
            if !problems.isEmpty {
                throw CLIError("invalid model \"\(name)\": \(problems.joined(separator: "; "))", hint: "fix the flag and retry; nothing was sent")
            }
            return VLLMModel(metadata: ObjectMeta(name: name, labels: ["app.kubernetes.io/managed-by": "kubectl-chill"]), spec: spec)
        }

        func run() async throws {
            let model = try makeModel()
            for warning in CreateChecks.overriddenFlags(extraArgs) { Console.current.err("warning: \(warning)") }
            if dryRun {
                printStructured(model.printable, as: output?.format ?? .yaml)
                return
            }
            let created = try await global.withClient { client in
                try await CreateChecks.servedNameIsFree(model, client)
                if let secret = hfTokenSecret, let warning = await CreateChecks.missingSecret(secret, client) {
                    Console.current.err("warning: \(warning)")
                }
                do { return try await client.api(VLLMModel.self).create(model, fieldManager: ChillContract.fieldManager) } catch let error as KubeError where error.isAlreadyExists {
                    throw CLIError("model \"\(name)\" already exists", hint: "pick another name, or delete it first: kubectl chill delete \(name)")
                } catch let error as KubeError where error.isNotFound {
                    throw ModelLookup.notInstalled
                }
            }
            if let output {
                printStructured(created.printable, as: output.format)
            } else {
                Console.current.out("vllmmodel.chill.dev/\(name) created (scaled to zero until used)")
                Console.current.out("Wake it with: kubectl chill wait \(name)   or make it active: kubectl chill switch \(name)")
            }
        }
    }
}

/// Local validation with the CRD's own rules and bounds, after the API server's defaulting.
enum ModelValidation {
    static func problems(_ spec: VLLMModelSpec) -> [String] {
        let schema = VLLMModelCRD.spec.json
        let defaulted = OpenAPISchemaCheck.applyingDefaults(to: (try? JSONValue(encoding: spec)) ?? .null, schema: schema)
        var problems = OpenAPISchemaCheck.validate(defaulted, schema: schema, path: "spec").map(\.description)
        // The CRD's CEL rules (spec.validationErrors()), checked after defaulting as the API server does.
        let defaultedSpec = (try? defaulted.decode(as: VLLMModelSpec.self)) ?? spec
        problems += defaultedSpec.validationErrors().map { quotingTheValue($0, in: defaulted) }
        for (field, quantity) in [("cpu", spec.cpu), ("memory", spec.memory)] {
            if let quantity, !quantity.isValid { problems.append("spec.\(field): Invalid value: \"\(quantity)\": not a Kubernetes quantity (e.g. 8, 6500m, 32Gi)") }
        }
        var seen = Set<String>()
        return problems.filter { seen.insert($0).inserted }
    }

    /// `spec.idleTimeout: Invalid value: "5 minutes": …` — the value given, where the API server prints
    /// the schema type ("string"); a rule on the whole object keeps the API server's wording.
    static func quotingTheValue(_ violation: VLLMModelCRD.Violation, in spec: JSONValue) -> String {
        var value: JSONValue? = spec
        for key in violation.field.split(separator: ".").dropFirst() { value = value?[String(key)] }
        guard violation.type != "object", let value else { return violation.description }
        let shown: String
        switch value {
        case .string(let s): shown = "\"\(s)\""
        case .int, .double, .bool: shown = KubectlJSON.format(value)
        default: return violation.description
        }
        return "\(violation.field): Invalid value: \(shown): \(violation.message)"
    }
}
