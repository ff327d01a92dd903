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
                  kubectl chill version -o yaml
                """)

        @Option(name: .shortAndLong, help: "Output format: text, json or yaml.")
        var output: Format = .text

        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, yaml }

        func run() async throws {
            let value: JSONValue = ["clientVersion": .string(ChillVersion.current)]
            switch output {
            case .text: Console.current.out("kubectl-chill \(ChillVersion.current)")
            case .json: printStructured(value, as: .json)
            case .yaml: printStructured(value, as: .yaml)
            }
        }
    }
}
