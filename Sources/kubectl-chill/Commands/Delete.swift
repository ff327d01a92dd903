import ArgumentParser
import Shared

extension KubectlChill {
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a model.",
            discussion: """
                Deletes the VLLMModel; chill-server removes its Deployment and Service. The Hugging Face cache claim, if any, follows the model's owner references. If the model was the active one, switch to another afterwards.

                Examples:
                  kubectl chill delete qwen
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The model (VLLMModel name).")
        var model: String

        func run() async throws {
            let wasActive = try await global.withClient { client in
                async let state = ChillState.read(client)
                do {
                    try await client.api(VLLMModel.self).delete(model)
                } catch let error as KubeError where error.isNotFound {
                    throw try await ModelLookup.unknown(model, client)
                }
                return (try? await state)?.activeModel == model
            }
            Console.current.out("vllmmodel.chill.dev \"\(model)\" deleted")
            if wasActive {
                Console.current.err("warning: \"\(model)\" was the active model — choose another with: kubectl chill switch MODEL")
            }
        }
    }
}
