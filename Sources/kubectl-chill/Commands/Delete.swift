import ArgumentParser
import Shared

extension KubectlChill {
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete models.",
            discussion: """
                Deletes each VLLMModel; chill-server removes its Deployment and Service. The Hugging Face cache claim, if any, follows the model's owner references. As with kubectl delete, a model that does not exist is an error (exit 1, after the others are deleted) unless --ignore-not-found. If the active model was deleted, switch to another afterwards.

                Examples:
                  kubectl chill delete qwen
                  kubectl chill delete qwen llama
                  kubectl chill delete qwen --ignore-not-found
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The models (VLLMModel names).", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var models: [String]

        @Flag(help: "Treat a model that does not exist as deleted.")
        var ignoreNotFound = false

        func run() async throws {
            let console = Console.current
            try await global.withClient { client in
                async let state = ChillState.readIfAllowed(client)
                var missing: [String] = []
                for model in models {
                    do {
                        _ = try await client.api(VLLMModel.self).delete(model)
                        console.out("vllmmodel.chill.dev \"\(model)\" deleted")
                    } catch let error as KubeError where error.isNotFound {
                        if !ignoreNotFound { missing.append(model) }
                    }
                }
                let active = (try? await state)?.activeModel
                if let active, models.contains(active), !missing.contains(active) {
                    console.err("warning: \"\(active)\" was the active model — choose another with: kubectl chill switch MODEL")
                }
                if let first = missing.first {
                    let known = try await ModelLookup.all(client).map(\.name)
                    if missing.count == 1 { throw ModelLookup.unknown(first, known: known) }
                    let names = missing.map { "\"\($0)\"" }.joined(separator: ", ")
                    throw CLIError("models \(names) not found", hint: known.isEmpty ? "there are no models" : "known models: \(known.joined(separator: ", "))")
                }
            }
        }
    }
}
