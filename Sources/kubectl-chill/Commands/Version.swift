import ArgumentParser
import Shared

extension KubectlChill {
    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the plugin's version.",
            discussion: """
                Examples:
                  kubectl chill version
                  kubectl chill version -o json
                """)

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: OutputFormat = .text

        enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

        func run() async throws {
            switch output {
            case .text: Console.current.out("kubectl-chill \(ChillVersion.current)")
            case .json: Console.current.out(JSONValue.object(["clientVersion": .string(ChillVersion.current)]).jsonString(pretty: true))
            }
        }
    }
}
