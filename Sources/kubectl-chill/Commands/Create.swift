import ArgumentParser
import Shared

extension KubectlChill {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a model (a VLLMModel) from flags.",
            discussion: """
                Checks the values locally with the same rules (and messages) as the CRD before sending anything. Unset fields take the CRD's defaults (image vllm/vllm-openai:v0.12.0, idle timeout 5m, wake timeout 10m, 0..1 replicas). The model scales to zero until its first request, `kubectl chill start` or `kubectl chill switch`.

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

        @Option(name: .customLong("extra-arg"), parsing: .unconditionalSingleValue, help: "One more `vllm serve` argument (repeatable), e.g. --extra-arg=--enforce-eager.")
        var extraArgs: [String] = []

        @Flag(help: "Print the VLLMModel (YAML, or -o json) and send nothing.")
        var dryRun = false

        @Option(name: .shortAndLong, help: "Print the object as json or yaml (with --dry-run the default is yaml).")
        var output: StructuredFormat?

        /// The object to send, or a one-line error naming every invalid value.
        func makeModel() throws -> VLLMModel {
            if let problem = ModelLookup.nameProblem(name) { throw CLIError(problem, hint: "pick another NAME") }
            let spec = VLLMModelSpec(
                modelName: modelName, servedModelName: servedModelName, maxModelLen: maxModelLen,
                tensorParallelSize: tensorParallelSize, extraArgs: extraArgs.isEmpty ? nil : extraArgs, image: image, gpus: gpus,
                cpu: cpu.map { VLLMModel.Quantity($0) }, memory: memory.map { VLLMModel.Quantity($0) },
                hfTokenSecret: hfTokenSecret.map { VLLMModelSpec.HFTokenSecret(name: $0) },
                idleTimeout: idleTimeout, wakeTimeout: wakeTimeout, minReplicas: minReplicas, maxReplicas: maxReplicas)
            let problems = ModelValidation.problems(spec)
            if !problems.isEmpty {
                throw CLIError("invalid model \"\(name)\": \(problems.joined(separator: "; "))", hint: "fix the flag and retry; nothing was sent")
            }
            return VLLMModel(metadata: ObjectMeta(name: name, labels: ["app.kubernetes.io/managed-by": "kubectl-chill"]), spec: spec)
        }

        func run() async throws {
            let model = try makeModel()
            if dryRun {
                printStructured(model.printable, as: output?.format ?? .yaml)
                return
            }
            let created = try await global.withClient { client in
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
        problems += defaultedSpec.validationErrors().map(\.description)
        for (field, quantity) in [("cpu", spec.cpu), ("memory", spec.memory)] {
            if let quantity, !quantity.isValid { problems.append("spec.\(field): Invalid value: \"\(quantity)\": not a Kubernetes quantity (e.g. 8, 6500m, 32Gi)") }
        }
        var seen = Set<String>()
        return problems.filter { seen.insert($0).inserted }
    }
}
