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

/// kubectl plugin exit codes: 0 success, 1 failure, 2 usage error. Errors are one line on stderr.
@main
enum Entry {
    static func main() async {
        let code = await run(Array(CommandLine.arguments.dropFirst()))
        exit(code)
    }

    static func run(_ arguments: [String]) async -> Int32 {
        let console = Console.current
        do {
            var command = try KubectlChill.parseAsRoot(GlobalFlags.hoisted(arguments, subcommands: KubectlChill.subcommandNames))
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
                console.out(KubectlChill.fullMessage(for: error))
                return 0
            }
            if code == .validationFailure {
                console.err("error: \(KubectlChill.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments") — see `kubectl chill --help`")
                return 2
            }
            let message = KubectlChill.message(for: error)
            console.err("error: \(message.isEmpty ? "\(error)" : message)")
            return code.rawValue == 0 ? 1 : (code == .failure ? 1 : code.rawValue)
        }
    }
}
