import ArgumentParser
import Shared

extension KubectlChill {
    struct Uninstall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove chill from the cluster.",
            discussion: """
                Deletes what `kubectl chill install` created in the namespace: chill-server's Service and Deployment, the chill-state ConfigMap (the active model), its RBAC and ServiceAccount, the namespace (only if chill created it; everything in it goes too, the models' vLLM Deployments included) and the VLLMModel CRD, which deletes every VLLMModel.

                Only objects labelled chill.dev/install-namespace=NAMESPACE are deleted. When chill is not installed in the namespace (a typo in -n), nothing is deleted: it exits 1 and names the namespace chill is installed in.

                Deleting the CRD deletes every model, so when models exist it needs --delete-models, or a typed "yes" on a terminal; --keep-crds keeps the CRD and the models for a later install. --dry-run lists what would be deleted. Objects already gone are skipped, so a partial uninstall can be run again.

                Examples:
                  kubectl chill uninstall --dry-run
                  kubectl chill uninstall --keep-crds
                  kubectl chill uninstall --delete-models --wait
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Keep the VLLMModel CRD and every VLLMModel.")
        var keepCrds = false

        @Flag(help: "Delete the VLLMModel CRD even though models exist (they are deleted with it).")
        var deleteModels = false

        @Flag(help: "List what would be deleted and change nothing.")
        var dryRun = false

        @Flag(inversion: .prefixedNo, help: "Wait until the namespace is gone.")
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
            if keepCrds && deleteModels { throw ValidationError("--keep-crds and --delete-models contradict each other — pass one of them") }
        }

        func run() async throws {
            let console = Console.current
            let namespace = global.namespace
            let timeout = try GoDuration.parse(timeout)
            try await global.withClient { client in
                let plan = try await UninstallPlan.make(namespace: namespace, client)
                guard plan.isInstalled else {
                    throw CLIError(
                        "chill is not installed in namespace \(namespace) (nothing deleted)",
                        hint: InstallLocator.elsewhereHint(plan.installedIn, command: "uninstall"))
                }
                if let models = plan.models, !models.isEmpty, !keepCrds, !deleteModels, !dryRun {
                    try confirmDeletingModels(models)
                }
                let suffix = dryRun ? " (dry run)" : ""
                var deleted = 0
                var namespaceDeleted = false
                for step in plan.steps {
                    switch step.action {
                    case .keep(let why):
                        console.out("\(step.display) kept (\(why))")
                        continue
                    case .delete where step.isCRD && keepCrds:
                        console.out("\(step.display) kept with its \(Self.plural(plan.models?.count ?? 0, "VLLMModel")) (--keep-crds)")
                        continue
                    case .delete:
                        if !dryRun {
                            do { try await step.api.delete(step.name) } catch let error as KubeError where error.isNotFound { continue }
                        }
                    }
                    let note = step.isCRD && (plan.models?.count ?? 0) > 0 ? " (with its \(Self.plural(plan.models!.count, "VLLMModel")))" : ""
                    console.out("\(step.display) deleted\(note)\(suffix)")
                    deleted += 1
                    if step.kind == "Namespace" { namespaceDeleted = true }
                }
                if dryRun {
                    console.out("chill would be uninstalled from \(namespace) (\(Self.plural(deleted, "object")) to delete; dry run, nothing changed)")
                    return
                }
                if wait && namespaceDeleted {
                    try await waitForNamespace(client, namespace: namespace, timeout: timeout)
                }
                console.out("chill is uninstalled from \(namespace) (\(Self.plural(deleted, "object")) deleted)")
            }
        }

        /// Deleting the CRD deletes every model: only after a typed "yes" on a terminal; else an error.
        func confirmDeletingModels(_ models: [String]) throws {
            let what = "the VLLMModel CRD and with it \(Self.plural(models.count, "VLLMModel")) (\(Self.names(models)))"
            let answer = Console.current.ask("This deletes \(what). Type yes to go on: ")
            if answer?.trimmingSpaces == "yes" { return }
            throw CLIError(
                "uninstall would delete \(what); nothing was deleted",
                hint: "pass --delete-models to delete them, or --keep-crds to keep the CRD and the models")
        }

        static func names(_ models: [String]) -> String {
            models.count <= 5 ? models.joined(separator: ", ") : models.prefix(5).joined(separator: ", ") + ", …"
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

        static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
