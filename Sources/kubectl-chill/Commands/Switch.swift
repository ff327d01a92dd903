import ArgumentParser
import Shared

extension KubectlChill {
    struct Switch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a model the active one (and optionally wait until it serves).",
            discussion: """
                Records MODEL as the active model in the ConfigMap chill-state (server-side apply, field manager kubectl-chill), which survives proxy restarts; chill-server drains the previous model and wakes this one. Refuses when chill is not installed in the namespace (no chill-server Deployment there). With --wait, then behaves like `kubectl chill wait`.

                Examples:
                  kubectl chill switch qwen
                  kubectl chill switch llama --wait --timeout 15m
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The model to make active (VLLMModel name).", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var model: String

        @Flag(help: "Wait until the model serves, showing the wake's phases.")
        var wait = false

        @Option(help: "With --wait: how long to wait, e.g. 10m.")
        var timeout: String = "10m"

        func validate() throws {
            guard let duration = try? GoDuration.parse(timeout), duration > .zero else {
                throw ValidationError("--timeout \"\(timeout)\" is not a positive duration — use e.g. 90s or 10m")
            }
        }

        func run() async throws {
            let now = CLIClock.now
            try await global.withClient { client in
                try await ProxyCheck.requireInstalled(client, command: "switch \(model)")
                async let state = ChillState.read(client)
                _ = try await ModelLookup.get(model, client)
                let previous = try await state.activeModel
                if previous == model {
                    Console.current.out("\"\(model)\" is already the active model.")
                } else {
                    try await ChillState.apply(activeModel: model, at: now, client)
                    Console.current.out("Switched to \"\(model)\"" + (previous.map { " (was \"\($0)\")." } ?? "."))
                }
                if wait {
                    try await WakeWaiter(model: model, timeout: try GoDuration.parse(timeout), client: client).run()
                }
            }
        }
    }
}
