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

    @Option(name: .shortAndLong, help: "Namespace chill is installed in.")
    var namespace: String = "chill-system"

    @Option(help: "How long to wait for one API request before giving up, e.g. 30s (0 = no limit).")
    var requestTimeout: String = "30s"

    func validate() throws {
        guard (try? GoDuration.parse(requestTimeout)) != nil || requestTimeout == "0" else {
            throw ValidationError("--request-timeout \"\(requestTimeout)\" is not a duration — use e.g. 30s or 2m")
        }
    }

    /// A client for the chosen cluster, or a one-line error naming what to fix.
    func makeClient() throws -> KubeClient {
        var configuration: ClientConfiguration
        do { configuration = try ClientConfiguration.load(kubeconfig: kubeconfig, context: context) } catch {
            throw CLIError.from(error, context: context, server: "?")
        }
        let timeout = (try? GoDuration.parse(requestTimeout)) ?? .zero
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

/// `-o table|wide|json|yaml`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, wide, json, yaml

    /// Prints objects as kubectl would: one object, or a `List` of them.
    func printObjects(_ items: [JSONValue], single: Bool = false) {
        let value: JSONValue = single && items.count == 1 ? items[0] : ["apiVersion": "v1", "kind": "List", "items": .array(items), "metadata": ["resourceVersion": ""]]
        switch self {
        case .json: Console.current.out(value.jsonString(pretty: true))
        case .yaml: Console.current.out(YAML.encode(value), terminator: "")
        case .table, .wide: break
        }
    }
}
