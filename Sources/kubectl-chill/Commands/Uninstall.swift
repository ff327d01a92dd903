import ArgumentParser
import Shared

extension KubectlChill {
    struct Uninstall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove chill from the cluster.",
            discussion: """
                Deletes what `kubectl chill install` created: chill-server's Service and Deployment, the chill-state ConfigMap (the active model), its RBAC and ServiceAccount, the namespace (only if chill created it; everything in it goes too, the models' vLLM Deployments included) and the VLLMModel CRD, which deletes every VLLMModel. With --keep-crds the CRD and the models stay, for a later install. Objects already gone are skipped, so it can be run again. No confirmation is asked.

                Examples:
                  kubectl chill uninstall
                  kubectl chill uninstall --keep-crds
                  kubectl chill uninstall --wait
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Keep the VLLMModel CRD and every VLLMModel.")
        var keepCrds = false

        @Flag(help: "Wait until the namespace is gone.")
        var wait = false

        @Option(help: "How long --wait waits, e.g. 5m.")
        var timeout: String = "5m"

        func validate() throws {
            guard InstallOptions.isDNSLabel(global.namespace) else {
                throw ValidationError("--namespace \"\(global.namespace)\" is not a valid namespace name")
            }
            guard let t = try? GoDuration.parse(timeout), t > .zero else {
                throw ValidationError("--timeout \"\(timeout)\" is not a positive duration — use e.g. 90s or 5m")
            }
        }

        func run() async throws {
            let console = Console.current
            let namespace = global.namespace
            let timeout = try GoDuration.parse(timeout)
            try await global.withClient { client in
                var deleted = 0
                var namespaceDeleted = false
                for object in Self.objects(namespace: namespace) {
                    guard let type = InstallManifests.resourceType(of: object), let name = object.objectName else { continue }
                    let api = client.untyped(type, namespace: namespace)
                    let kubectlName = Self.kubectlName(type, name)
                    guard let existing = try await api.getIfExists(name) else { continue }
                    var note = ""
                    switch type.kind {
                    case "CustomResourceDefinition":
                        let models = (try? await client.api(VLLMModel.self).listAll().items.count) ?? 0
                        if keepCrds {
                            console.out("\(kubectlName) kept with its \(Self.plural(models, "VLLMModel")) (--keep-crds)")
                            continue
                        }
                        if models > 0 { note = " (with its \(Self.plural(models, "VLLMModel")))" }
                    case "Namespace":
                        guard Installer.isManaged(existing) else {
                            console.out("\(kubectlName) kept (not created by chill)")
                            continue
                        }
                    default: break
                    }
                    do { try await api.delete(name) } catch let error as KubeError where error.isNotFound { continue }
                    console.out("\(kubectlName) deleted\(note)")
                    deleted += 1
                    if type.kind == "Namespace" { namespaceDeleted = true }
                }
                if wait && namespaceDeleted {
                    try await waitForNamespace(client, namespace: namespace, timeout: timeout)
                }
                if deleted == 0 {
                    console.out("chill is not installed in \(namespace) (nothing to delete)")
                } else {
                    console.out("chill is uninstalled from \(namespace) (\(Self.plural(deleted, "object")) deleted)")
                }
            }
        }

        /// What to delete, in order: the install's objects in reverse apply order, with the `chill-state`
        /// ConfigMap (written by `switch` and chill-server, not by install) right after the proxy is gone:
        /// a namespace chill did not create survives the uninstall, and a stale active model must not.
        static func objects(namespace: String) -> [JSONValue] {
            var objects = Array(InstallManifests.generate(InstallOptions(namespace: namespace)).reversed())
            let state: JSONValue = [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": ["name": .string(ChillContract.stateConfigMap), "namespace": .string(namespace)],
            ]
            let proxy = objects.firstIndex { $0["kind"] == "Deployment" } ?? 0
            objects.insert(state, at: proxy + 1)
            return objects
        }

        /// Polls until the namespace (Terminating while its contents go) no longer exists.
        func waitForNamespace(_ client: KubeClient, namespace: String, timeout: Duration) async throws {
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            let progress = WaitProgress(console: Console.current)
            let namespaces = client.api(Namespace.self)
            var interval = Duration.milliseconds(100)
            while true {
                guard try await namespaces.getIfExists(namespace) != nil else {
                    progress.finish("namespace/\(namespace) is gone")
                    return
                }
                progress.update("waiting for namespace/\(namespace) to be deleted")
                if clock.now >= deadline {
                    progress.abandon()
                    throw CLIError(
                        "timed out after \(GoDuration.formatCompact(timeout)) waiting for namespace \(namespace) to be deleted",
                        hint: "see `kubectl get namespace \(namespace) -o yaml` for the finalizers holding it")
                }
                try await Task.sleep(for: min(interval, deadline - clock.now + .milliseconds(1)))
                interval = min(interval * 2, .seconds(1))
            }
        }

        /// `deployment.apps "chill-server"`, as kubectl delete prints it.
        static func kubectlName(_ type: ResourceType, _ name: String) -> String {
            let kind = type.kind.lowercased()
            return (type.group.isEmpty ? kind : "\(kind).\(type.group)") + " \"\(name)\""
        }

        static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
    }
}
