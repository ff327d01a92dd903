import ArgumentParser
import Shared

extension KubectlChill {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask chill-server to wake a model now, before the first request.",
            discussion: """
                Sets the annotations chill.dev/requested-state=awake and chill.dev/requested-at on the VLLMModel; chill-server scales the model up. The command returns at once — follow the wake with `kubectl chill wait MODEL`.

                Examples:
                  kubectl chill start qwen
                  kubectl chill start qwen && kubectl chill wait qwen
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The model (VLLMModel name).", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var model: String

        func run() async throws {
            let now = CLIClock.now
            _ = try await global.withClient { client in
                try await ModelIntent.request(ChillContract.requestedStateAwake, model: model, at: now, client)
            }
            Console.current.out("Requested start of \"\(model)\" (\(ChillContract.requestedStateAnnotation)=\(ChillContract.requestedStateAwake) at \(RFC3339.format(now))).")
            Console.current.out("Follow the wake with: kubectl chill wait \(model)")
        }
    }
}
