import ArgumentParser
import Shared

@main
struct KubectlChill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubectl-chill",
        abstract: "Run vLLM on Kubernetes without paying for idle GPUs.",
        discussion: """
            chill scales idle vLLM models to zero and wakes them on the next request.

            Examples:
              kubectl chill version
            """,
        version: ChillVersion.current,
        subcommands: [Version.self]
    )
}
