import ArgumentParser
import Shared

extension KubectlChill {
    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask chill-server to scale a model down now, without waiting for the idle timeout.",
            discussion: """
                Sets the annotations chill.dev/requested-state=asleep, chill.dev/requested-at and chill.dev/stop-mode on the VLLMModel. The default, graceful, lets in-flight requests finish before the GPUs are freed; --force cuts them.

                Examples:
                  kubectl chill stop qwen
                  kubectl chill stop qwen --force
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The model (VLLMModel name).", completion: .shellCommand(KubectlChill.Completion.modelNamesCommand))
        var model: String

        @Flag(help: "Do not wait for in-flight requests: they are cut.")
        var force = false

        func run() async throws {
            let now = CLIClock.now
            let mode: ModelIntent.StopMode = force ? .force : .graceful
            _ = try await global.withClient { client in
                try await ModelIntent.request(ChillContract.requestedStateAsleep, stopMode: mode, model: model, at: now, client)
            }
            let what = force ? "forced stop" : "graceful stop"
            let how = force ? "in-flight requests are cut" : "in-flight requests finish first"
            Console.current.out("Requested \(what) of \"\(model)\" (\(ChillContract.requestedStateAnnotation)=\(ChillContract.requestedStateAsleep), \(ChillContract.stopModeAnnotation)=\(mode.annotationValue) at \(RFC3339.format(now))): \(how).")
        }
    }
}
