import ArgumentParser
import Shared

extension KubectlChill {
    struct Completion: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a shell completion script for kubectl-chill (bash, zsh or fish).",
            discussion: """
                The script completes `kubectl-chill …` typed as one word: commands, flags, -o values and model names (these from the current kubeconfig context). For `kubectl chill …` (kubectl 1.26+), the kubectl_complete-chill helper shipped next to kubectl-chill in the krew archive must be on your PATH (krew links only kubectl-chill; its install notes show the one ln -s to run); it calls `kubectl-chill completion __kubectl WORDS…`, which completes commands, flags, -o values and model names (from the cluster of any --kubeconfig/--context typed).

                Examples:
                  kubectl chill completion bash > /etc/bash_completion.d/kubectl-chill
                  kubectl chill completion zsh > "${fpath[1]}/_kubectl-chill"
                  kubectl chill completion fish > ~/.config/fish/completions/kubectl-chill.fish
                """)

        /// The commands that take a model name as their argument; of them, those that take several.
        static let modelArgumentCommands: Set<String> = ["switch", "wait", "start", "stop", "delete", "status", "list", "ls"]
        static let severalModelCommands: Set<String> = ["delete", "list", "ls"]

        /// What the generated bash/zsh/fish scripts run to complete a model name.
        static let modelNamesCommand = "kubectl-chill completion __models"

        @OptionGroup var global: GlobalOptions

        @Argument(help: "bash, zsh or fish.")
        var shell: String

        @Argument(parsing: .captureForPassthrough, help: .hidden)
        var words: [String] = []

        func validate() throws {
            if shell != "__kubectl" && shell != "__models" && Self.shells[shell] == nil {
                throw ValidationError("unknown shell \"\(shell)\" — use bash, zsh or fish")
            }
        }

        static let shells: [String: CompletionShell] = ["bash": .bash, "zsh": .zsh, "fish": .fish]

        func run() async throws {
            if let kind = Self.shells[shell] {
                Console.current.out(KubectlChill.completionScript(for: kind), terminator: "")
                return
            }
            if shell == "__models" {
                // For the generated scripts: the model names, one a line, no cobra directive.
                for name in await Self.candidates(["switch", ""]) { Console.current.out(name) }
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
            if let last = before.last, last.hasPrefix("-"), !last.contains("=") {
                let values = FlagCatalog.values(of: last, command)
                if !values.isEmpty { return values.filter { $0.hasPrefix(partial) } }
            }
            if partial.hasPrefix("-") { return FlagCatalog.flags(command).filter { $0.hasPrefix(partial) } }
            if command == "completion" && positional.count == 1 { return ["bash", "fish", "zsh"].filter { $0.hasPrefix(partial) } }
            guard modelArgumentCommands.contains(command), positional.count == 1 || severalModelCommands.contains(command) else { return [] }
            // The cluster flags given so far pick the cluster; a short timeout (unless one was typed) keeps
            // the shell responsive.
            var flags: [String] = ["--request-timeout", "3s"]
            for (index, word) in before.enumerated() where ["--kubeconfig", "--context", "--request-timeout"].contains(word) && index + 1 < before.count {
                flags += [word, before[index + 1]]
            }
            guard let global = try? GlobalOptions.parse(flags), let client = try? global.makeClient(),
                let models = try? await ModelLookup.all(client)
            else { return [] }
            return models.map(\.name).filter { $0.hasPrefix(partial) }
        }
    }
}
