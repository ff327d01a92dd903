import ArgumentParser
import Shared

extension KubectlChill {
    struct Completion: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a shell completion script for kubectl-chill (bash, zsh or fish).",
            discussion: """
                The script completes `kubectl-chill …` typed as one word. For `kubectl chill …` (kubectl 1.26+), put the kubectl_complete-chill helper (shipped next to kubectl-chill in the krew archive) on your PATH; it calls `kubectl-chill completion __kubectl WORDS…` and completes commands and model names.

                Examples:
                  kubectl chill completion bash > /etc/bash_completion.d/kubectl-chill
                  kubectl chill completion zsh > "${fpath[1]}/_kubectl-chill"
                  kubectl chill completion fish > ~/.config/fish/completions/kubectl-chill.fish
                """)

        /// The commands that take a model name as their argument.
        static let modelArgumentCommands: Set<String> = ["switch", "wait", "start", "stop", "delete"]

        @OptionGroup var global: GlobalOptions

        @Argument(help: "bash, zsh or fish.")
        var shell: String

        @Argument(parsing: .captureForPassthrough, help: .hidden)
        var words: [String] = []

        func validate() throws {
            if shell != "__kubectl" && Self.shells[shell] == nil {
                throw ValidationError("unknown shell \"\(shell)\" — use bash, zsh or fish")
            }
        }

        static let shells: [String: CompletionShell] = ["bash": .bash, "zsh": .zsh, "fish": .fish]

        func run() async throws {
            if let kind = Self.shells[shell] {
                Console.current.out(KubectlChill.completionScript(for: kind), terminator: "")
                return
            }
            for candidate in await Self.candidates(words) { Console.current.out(candidate) }
            // Cobra's ShellCompDirectiveNoFileComp: kubectl must not fall back to file names.
            Console.current.out(":4")
        }

        /// Completions for `kubectl chill WORDS…` where the last word is the one being typed.
        static func candidates(_ words: [String]) async -> [String] {
            let partial = words.last ?? ""
            let before = Array(words.dropLast())
            let positional = before.enumerated().filter { index, word in
                !word.hasPrefix("-") && !(index > 0 && ["-n", "--namespace", "--context", "--kubeconfig", "--request-timeout", "-o", "--output", "--timeout"].contains(before[index - 1]))
            }.map(\.element)
            guard let command = positional.first else {
                return KubectlChill.subcommandNames.filter { $0.hasPrefix(partial) && !$0.hasPrefix("_") }.sorted()
            }
            if partial.hasPrefix("-") { return [] }
            if command == "completion" && positional.count == 1 { return ["bash", "fish", "zsh"].filter { $0.hasPrefix(partial) } }
            guard modelArgumentCommands.contains(command), positional.count == 1 else { return [] }
            // The cluster flags given so far pick the cluster; a short timeout keeps the shell responsive.
            var flags: [String] = ["--request-timeout", "3s"]
            for (index, word) in before.enumerated() where ["--kubeconfig", "--context"].contains(word) && index + 1 < before.count {
                flags += [word, before[index + 1]]
            }
            guard let global = try? GlobalOptions.parse(flags), let client = try? global.makeClient(),
                let models = try? await ModelLookup.all(client)
            else { return [] }
            return models.map(\.name).filter { $0.hasPrefix(partial) }
        }
    }
}
