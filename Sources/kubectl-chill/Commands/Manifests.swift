import ArgumentParser
import Shared

extension KubectlChill {
    struct Manifests: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the YAML that `kubectl chill install` applies.",
            discussion: """
                The same objects as `kubectl chill install --dry-run`, for GitOps or `kubectl apply --server-side -f -`. Nothing is sent to the cluster. Without flags it prints the default install.

                Examples:
                  kubectl chill manifests > chill.yaml
                  kubectl chill manifests -n ml --idle-timeout 15m | kubectl apply --server-side -f -
                """)

        @Option(name: .shortAndLong, help: "Namespace to install chill in.")
        var namespace: String = InstallOptions.defaultNamespace

        @OptionGroup var flags: InstallFlags

        func validate() throws { try flags.validate(namespace: namespace) }

        func run() async throws {
            Console.current.out(InstallManifests.yaml(flags.options(namespace: namespace)), terminator: "")
        }
    }
}
