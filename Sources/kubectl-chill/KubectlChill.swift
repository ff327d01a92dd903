import ArgumentParser
import Shared
#if canImport(Glibc)
import Glibc
#endif

struct KubectlChill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubectl-chill",
        abstract: "Run vLLM on Kubernetes without paying for idle GPUs.",
        discussion: """
            chill scales idle vLLM models to zero and wakes them on the next request.
            Used as a kubectl plugin: `kubectl chill COMMAND`.

            Examples:
              kubectl chill install
              kubectl chill create qwen --model Qwen/Qwen3-0.6B --gpus 1
              kubectl chill list
              kubectl chill switch qwen --wait
            """,
        version: ChillVersion.current,
        subcommands: InstallCommands.all + ModelCommands.all + [Version.self]
    )
}

extension KubectlChill {
    /// The names and aliases of the top-level commands.
    static let subcommandNames: Set<String> = Set(configuration.subcommands.flatMap { command in
        [command._commandName] + command.configuration.aliases
    })
}

extension KubectlChill {
    /// Help as a kubectl user types it: `kubectl chill list`, not the binary's name `kubectl-chill list`.
    static func asPlugin(_ help: String) -> String {
        help.replacing("USAGE: kubectl-chill", with: "USAGE: kubectl chill")
            .replacing("See 'kubectl-chill help <subcommand>' for detailed help.", with: "See 'kubectl chill <subcommand> --help' for detailed help.")
    }
}

extension KubectlChill {
    /// The top-level commands' own names (no aliases): what "did you mean" suggests.
    static let commandNames: Set<String> = Set(configuration.subcommands.map { $0._commandName })
}

/// kubectl plugin exit codes: 0 success, 1 failure, 2 usage error. Errors are one line on stderr.
@main
enum Entry {
    static func main() async {
        let code = await run(Array(CommandLine.arguments.dropFirst()))
        exit(code)
    }

    static func run(_ arguments: [String]) async -> Int32 {
        let console = Console.current
        let arguments = GlobalFlags.hoisted(GlobalFlags.normalized(arguments), subcommands: KubectlChill.subcommandNames)
        if let problem = UnknownCommand.problem(arguments, commands: KubectlChill.subcommandNames.union(["help"]), suggest: KubectlChill.commandNames) {
            console.err("error: \(problem)")
            return 2
        }
        // Usage errors point at the help of the command they are about.
        let helpCommand = arguments.first.flatMap { KubectlChill.subcommandNames.contains($0) ? "kubectl chill \($0) --help" : nil } ?? "kubectl chill --help"
        do {
            var command = try KubectlChill.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as CLIError {
            console.err("error: \(error)")
            return 1
        } catch {
            let code = KubectlChill.exitCode(for: error)
            if code == .success {
                console.out(KubectlChill.asPlugin(KubectlChill.fullMessage(for: error)))
                return 0
            }
            if code == .validationFailure {
                console.err("error: \(KubectlChill.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments") — see `\(helpCommand)`")
                return 2
            }
            let message = KubectlChill.message(for: error)
            console.err("error: \(message.isEmpty ? "\(error)" : message)")
            return code.rawValue == 0 ? 1 : (code == .failure ? 1 : code.rawValue)
        }
    }
}
