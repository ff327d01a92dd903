import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// kubectl's own flags, shared by every command that talks to the cluster.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use.")
    var context: String?

    @Option(name: [.customShort("n", allowingJoined: true), .long], help: "Namespace chill is installed in.")
    var namespace: String = "chill-system"

    @Option(help: "How long to wait for one API request before giving up, e.g. 30s or 2m; a bare number is seconds (0 = no limit).")
    var requestTimeout: String = "30s"

    func validate() throws {
        guard Self.requestTimeout(requestTimeout) != nil else {
            throw ValidationError("--request-timeout \"\(requestTimeout)\" is not a duration — use e.g. 30s, 2m or 0 (no limit)")
        }
    }

    /// As kubectl reads it: a Go duration, or a whole number of seconds.
    static func requestTimeout(_ text: String) -> Duration? {
        if let seconds = Int(text), seconds >= 0 { return .seconds(seconds) }
        guard let duration = try? GoDuration.parse(text), duration >= .zero else { return nil }
        return duration
    }

    /// A client for the chosen cluster, or a one-line error naming what to fix.
    func makeClient() throws -> KubeClient {
        var configuration: ClientConfiguration
        do { configuration = try ClientConfiguration.load(kubeconfig: kubeconfig, context: context) } catch {
            throw CLIError.from(error, context: context, server: "?")
        }
        let timeout = Self.requestTimeout(requestTimeout) ?? .zero
        configuration.transport.requestTimeout = timeout > .zero ? timeout : nil
        return KubeClient(configuration: configuration, namespace: namespace, userAgent: "kubectl-chill/\(ChillVersion.current)")
    }

    /// Runs `body` with a client, turning every failure into one actionable line.
    func withClient<T>(_ body: (KubeClient) async throws -> T) async throws -> T {
        let client = try makeClient()
        do { return try await body(client) } catch {
            throw CLIError.from(error, context: client.configuration.contextName, server: client.server)
        }
    }
}

/// kubectl's global flags are accepted before the subcommand too (`kubectl chill --context dev list`),
/// as in cobra plugins: `hoisted` moves the ones in front of the first subcommand name to right after it,
/// where the subcommand's `GlobalOptions` parses them. `Entry.run` applies it before ArgumentParser.
enum GlobalFlags {
    /// Flags that take a value, as `--flag VALUE` or `--flag=VALUE` (`-n` also as `-nVALUE`).
    static let withValue: Set<String> = ["--kubeconfig", "--context", "--namespace", "-n", "--request-timeout"]

    /// The number of arguments the global flag at the start of `arguments` spans (1 or 2), or nil when
    /// `arguments` does not start with one.
    static func span(_ arguments: ArraySlice<String>) -> Int? {
        guard let first = arguments.first else { return nil }
        if withValue.contains(first) { return arguments.count >= 2 ? 2 : 1 }
        if let equals = first.firstIndex(of: "="), withValue.contains(String(first[..<equals])), first.hasPrefix("--") { return 1 }
        if first.hasPrefix("-n"), first.count > 2, !first.hasPrefix("--") { return 1 }
        return nil
    }

    /// kubectl's (pflag's) spellings that ArgumentParser reads differently, rewritten to ones it reads:
    /// `-ojson` and `-o=json` → `-o json`; `--gpus -1` → `--gpus=-1` (a negative number is a value, not a
    /// flag, so the validation message names it); `--wait=false`/`--wait=true` → `--no-wait`/`--wait`.
    /// Everything after `--` is left alone.
    static func normalized(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            // `--` ends the flags; completion's words are what is being typed, left as typed.
            if word == "--" || word == "__kubectl" { out += arguments[i...]; break }
            if word == "--extra-arg", i + 1 < arguments.count {  // its value is a vLLM flag, taken as is
                out += [word, arguments[i + 1]]
                i += 2
                continue
            }
            if word.hasPrefix("-o"), word.count > 2, !word.hasPrefix("--") {
                out += ["-o", String(word.dropFirst(word.hasPrefix("-o=") ? 3 : 2))]
            } else if let bool = booleanSpelling[word] {
                out.append(bool)
            } else if word.hasPrefix("--"), !word.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                out.append("\(word)=\(arguments[i + 1])")
                i += 1
            } else {
                out.append(word)
            }
            i += 1
        }
        return out
    }

    /// Boolean flags written with a value, as pflag accepts them.
    static let booleanSpelling: [String: String] = [
        "--wait=true": "--wait", "--wait=false": "--no-wait",
    ]

    static func isNegativeNumber(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count > 1 else { return false }
        return word.dropFirst().allSatisfy { $0.isNumber || $0 == "." }
    }

    /// `[--context dev, -n ml] list -o wide` → `list --context dev -n ml -o wide`. Arguments are left as
    /// they are when what follows the leading global flags is not a subcommand name (e.g. `--help`).
    static func hoisted(_ arguments: [String], subcommands: Set<String>) -> [String] {
        var i = 0
        while let n = span(arguments[i...]) { i += n }
        guard i > 0, i < arguments.count, subcommands.contains(arguments[i]) else { return arguments }
        return [arguments[i]] + arguments[..<i] + arguments[(i + 1)...]
    }
}

/// `-o json|yaml`: for commands that print objects but no table (create, import).
enum StructuredFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case json, yaml
    var format: OutputFormat { self == .json ? .json : .yaml }
}

/// `-o table|json|yaml`: status, which has no wide form.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json, yaml
    var format: OutputFormat { OutputFormat(rawValue: rawValue)! }
}

/// `-o table|wide|json|yaml` (list).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, wide, json, yaml

    /// Prints objects as kubectl would: one object, or a `List` of them.
    func printObjects(_ items: [JSONValue], single: Bool = false) {
        let value: JSONValue = single && items.count == 1 ? items[0] : ["apiVersion": "v1", "kind": "List", "items": .array(items), "metadata": ["resourceVersion": ""]]
        switch self {
        case .json: Console.current.out(KubectlJSON.format(value))
        case .yaml: Console.current.out(YAML.encode(value.wholeNumbersAsIntegers), terminator: "")
        case .table, .wide: break
        }
    }
}
