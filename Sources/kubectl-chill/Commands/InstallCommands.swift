import ArgumentParser
import Shared

/// The commands that set chill up in a cluster (install, uninstall, manifests).
enum InstallCommands {
    static let all: [any ParsableCommand.Type] = [
        KubectlChill.Install.self, KubectlChill.Uninstall.self, KubectlChill.Manifests.self,
    ]
}

/// The flags that shape the installed objects; `install` and `manifests` share them.
struct InstallFlags: ParsableArguments {
    @Option(help: "The chill-server image.")
    var image: String = ChillVersion.defaultImage

    @Option(help: "Scale a model to zero after this long without requests (Go duration, e.g. 5m).")
    var idleTimeout: String = InstallOptions.defaultIdleTimeout

    @Option(help: "How long a request is held while its model wakes (Go duration, e.g. 10m).")
    var wakeTimeout: String = InstallOptions.defaultWakeTimeout

    @Option(help: ArgumentHelp(
        "A Secret in the namespace whose key `\(InstallManifests.adminTokenKey)` is the bearer token of chill-server's admin endpoints.",
        valueName: "name"))
    var adminTokenSecret: String?

    @Option(help: ArgumentHelp(
        "A Secret in the namespace whose key `\(InstallManifests.apiKeyKey)` is the API key vLLM requires: chill-server sends it (VLLM_API_KEY) and gives the Secret to the vLLM pods.",
        valueName: "name"))
    var apiKeySecret: String?

    @Option(help: "chill-server replicas: only 1 until leader election exists.")
    var replicas: Int = 1

    func options(namespace: String) -> InstallOptions {
        InstallOptions(
            namespace: namespace, image: image, idleTimeout: idleTimeout, wakeTimeout: wakeTimeout,
            adminTokenSecret: adminTokenSecret, apiKeySecret: apiKeySecret, replicas: replicas)
    }

    /// Throws the first problem as a usage error (exit 2, one line).
    func validate(namespace: String) throws {
        if let problem = options(namespace: namespace).problems().first { throw ValidationError(problem) }
    }
}
