import ArgumentParser
import Shared
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KubectlChill {
    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install chill in the cluster, or update it to this plugin's version.",
            discussion: """
                Applies the VLLMModel CRD, the namespace, chill-server's ServiceAccount and least-privilege RBAC, its Deployment and its Service with server-side apply (field manager kubectl-chill), then waits until the CRD is established and chill-server has rolled out as `kubectl rollout status` would say (every replica updated and available, the old ones gone), so an upgrade whose new pod cannot start is reported, not called ready. Running it again changes nothing and says so: each object is reported created, configured or unchanged. Needs cluster-admin rights (it creates a CRD and a ClusterRole).

                A cluster has one install: chill-server controls every VLLMModel. When chill is installed in another namespace, install refuses and names it; --force moves it here (the cluster-scoped objects are re-pointed and the old namespace's chill-server is deleted; remove the rest with `kubectl chill uninstall -n OLD`). --image must be pinned: a tag other than latest, or a digest.

                Examples:
                  kubectl chill install
                  kubectl chill install --idle-timeout 15m --admin-token-secret chill-admin
                  kubectl chill install --dry-run > chill.yaml
                  kubectl chill install --wait=false
                  kubectl chill install -n ml --force
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var flags: InstallFlags

        @Flag(help: "Print the YAML that would be applied and change nothing.")
        var dryRun = false

        @Flag(inversion: .prefixedNo, help: "Wait for the CRD to be established and chill-server to roll out (--no-wait or --wait=false: return after applying).")
        var wait = true

        @Option(help: "How long to wait for readiness, e.g. 5m.")
        var timeout: String = "5m"

        @Flag(help: "Move the cluster's chill install to this namespace (its chill-server in the old namespace is deleted).")
        var force = false

        func validate() throws {
            try flags.validate(namespace: global.namespace)
            guard let t = try? GoDuration.parse(timeout), t > .zero else {
                throw ValidationError("--timeout \"\(timeout)\" is not a positive duration — use e.g. 90s or 5m")
            }
        }

        func run() async throws {
            let options = flags.options(namespace: global.namespace)
            let console = Console.current
            if dryRun {
                console.out(InstallManifests.yaml(options), terminator: "")
                return
            }
            let timeout = try GoDuration.parse(timeout)
            try await global.withClient { client in
                let previous = try await InstallLocator.installedNamespace(client)
                let moving = previous.flatMap { $0 == options.namespace ? nil : $0 }
                if let moving, !force {
                    throw CLIError(
                        "chill is already installed in namespace \(moving), and a cluster has one install (chill-server controls every VLLMModel)",
                        hint: "upgrade it with: kubectl chill install -n \(moving), or move it to \(options.namespace) with --force")
                }
                let outcomes = try await Installer(client: client, options: options).apply()
                if let moving { try await Installer(client: client, options: options).retireProxy(in: moving) }
                let summary = Installer.summary(outcomes)
                if wait {
                    try await Installer(client: client, options: options).waitUntilReady(timeout: timeout)
                    console.out("chill \(ChillVersion.current) is installed in \(options.namespace) (\(summary))")
                } else {
                    console.out("chill \(ChillVersion.current) is applied in \(options.namespace) (\(summary); not waiting for readiness)")
                }
            }
        }
    }
}

/// Applies the install manifests and waits for them; also used by tests.
struct Installer {
    let client: KubeClient
    let options: InstallOptions
    var console: Console { Console.current }

    enum Outcome: String, Sendable {
        case created, configured, unchanged
        /// An existing namespace chill did not create: left alone (and never deleted by uninstall).
        case skipped
    }

    /// Server-side applies every object in order; prints one kubectl-style line per object.
    func apply() async throws -> [Outcome] {
        var outcomes: [Outcome] = []
        for object in InstallManifests.generate(options) {
            guard let type = InstallManifests.resourceType(of: object), let name = object.objectName else { continue }
            let display = InstallManifests.displayName(of: object)
            let api = client.untyped(type, namespace: options.namespace)
            do {
                let before = try await api.getIfExists(name)
                if type.kind == "Namespace", before?[path: "metadata", "deletionTimestamp"] != nil {
                    throw CLIError(
                        "namespace \(name) is being deleted (a recent uninstall?)",
                        hint: "wait until `kubectl get namespace \(name)` finds nothing, then run install again")
                }
                if type.kind == "Namespace", let before, !Self.isManaged(before) {
                    console.out("\(display) exists (not created by chill, left as is)")
                    outcomes.append(.skipped)
                    continue
                }
                let after = try await api.apply(object, fieldManager: InstallManifests.fieldManager, force: true)
                let outcome: Outcome =
                    before == nil ? .created : before?.resourceVersion == after.resourceVersion ? .unchanged : .configured
                console.out("\(display) \(outcome.rawValue)")
                outcomes.append(outcome)
            } catch let error as KubeError where error.transport == nil && ![401, 403].contains(error.code) {
                throw CLIError("cannot apply \(display): \(error.message)")
            }
        }
        return outcomes
    }

    /// After a move (`install --force`): the old namespace's chill-server, which lost its cluster RBAC
    /// to the new install, is deleted so two controllers never act on the models.
    func retireProxy(in old: String) async throws {
        let api = client.untyped(InstallManifests.resourceType(of: InstallManifests.deployment(options))!, namespace: old)
        guard let existing = try await api.getIfExists(InstallManifests.deploymentName), Self.isManaged(existing) else { return }
        _ = try await api.delete(InstallManifests.deploymentName)
        console.out("deployment.apps \"\(InstallManifests.deploymentName)\" deleted from \(old) (chill moved to \(options.namespace); remove the rest with: kubectl chill uninstall -n \(old))")
    }

    static func isManaged(_ object: JSONValue) -> Bool {
        object[path: "metadata", "labels", "app.kubernetes.io/managed-by"]?.stringValue == InstallManifests.fieldManager
    }

    /// "nothing changed", or "9 created", "1 configured, 8 unchanged".
    static func summary(_ outcomes: [Outcome]) -> String {
        let changed = outcomes.contains { $0 == .created || $0 == .configured }
        if !changed { return "nothing changed" }
        return [Outcome.created, .configured, .unchanged].compactMap { kind in
            let n = outcomes.filter { $0 == kind }.count
            return n == 0 ? nil : "\(n) \(kind.rawValue)"
        }.joined(separator: ", ")
    }

    // MARK: Waiting

    /// Waits (polling with a short backoff) until the CRD is Established and the chill-server
    /// Deployment has rolled out with at least one ready replica; throws after `timeout`.
    func waitUntilReady(timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let progress = WaitProgress(console: console)
        let crdName = VLLMModelCRD.name
        let crdDisplay = "customresourcedefinition.apiextensions.k8s.io/\(crdName)"
        let crds = client.api(CustomResourceDefinition.self)
        try await poll(until: deadline, progress: progress) {
            let crd = try await crds.getIfExists(crdName)
            if crd?.isEstablished == true { return (true, "\(crdDisplay) established") }
            return (false, "waiting for \(crdDisplay) to be established")
        } onTimeout: {
            "timed out after \(GoDuration.formatCompact(timeout)) waiting for \(crdDisplay) to be established"
        }

        let deployments = client.api(Deployment.self, namespace: options.namespace)
        let name = InstallManifests.deploymentName
        let display = "deployment.apps/\(name)"
        var last = "0/\(options.replicas) ready"
        try await poll(until: deadline, progress: progress) {
            guard let deployment = try await deployments.getIfExists(name) else {
                return (false, "waiting for \(display) to be created")
            }
            let (ready, state) = Self.rollout(deployment)
            last = state
            return ready ? (true, "\(display) ready (\(state))") : (false, "waiting for \(display) in \(options.namespace): \(state)")
        } onTimeout: {
            let why = await diagnosis()
            return "timed out after \(GoDuration.formatCompact(timeout)) waiting for \(display) in \(options.namespace) (\(last)\(why.map { ": " + $0 } ?? ""))"
        }
    }

    /// Rolled out as `kubectl rollout status` decides: the controller has seen the current spec, every
    /// desired replica runs the new template, the old replicas are gone and the updated ones are available.
    /// (An upgrade whose new pod cannot start is not ready while the old pod still serves.)
    static func rollout(_ deployment: Deployment) -> (ready: Bool, state: String) {
        let desired = deployment.spec?.replicas ?? 1
        let status = deployment.status
        let state = "\(status?.readyReplicas ?? 0)/\(desired) ready"
        guard let observed = status?.observedGeneration, observed >= (deployment.metadata.generation ?? 0) else {
            return (false, state + ", waiting for the controller")
        }
        if let stuck = status?.conditions?.first(where: { $0.type == "Progressing" && $0.reason == "ProgressDeadlineExceeded" }) {
            return (false, state + ", " + (stuck.message ?? "progress deadline exceeded"))
        }
        let updated = status?.updatedReplicas ?? 0
        let total = status?.replicas ?? 0
        let available = status?.availableReplicas ?? 0
        if updated < desired { return (false, state + ", \(updated)/\(desired) updated") }
        if total > updated { return (false, state + ", \(total - updated) old replica\(total - updated == 1 ? "" : "s") pending termination") }
        if available < updated { return (false, state + ", \(available)/\(updated) updated available") }
        return (true, state)
    }

    /// Why chill-server's pods are not ready, from their status (image pull, crash loop, scheduling).
    func diagnosis() async -> String? {
        let selector = InstallManifests.selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.stringValue ?? "")" }.joined(separator: ",")
        guard let pods = try? await client.api(Pod.self, namespace: options.namespace).list(ListOptions(labelSelector: selector)) else { return nil }
        if pods.items.isEmpty { return "no chill-server pods (check the Deployment's events and the namespace's quotas)" }
        for pod in pods.items where !pod.isReady {
            let podName = pod.metadata.name ?? "?"
            for c in pod.status?.containerStatuses ?? [] {
                if let waiting = c.state?.waiting, let reason = waiting.reason {
                    return "pod \(podName): \(reason)\(waiting.message.map { " (\($0))" } ?? "")"
                }
            }
            if let unscheduled = pod.status?.conditions?.first(where: { $0.type == "PodScheduled" && $0.status == "False" }) {
                return "pod \(podName) not scheduled: \(unscheduled.message ?? unscheduled.reason ?? "unknown")"
            }
            return "pod \(podName) is \(pod.status?.phase ?? "Pending") and not ready (see its readiness probe /readyz)"
        }
        return nil
    }

    /// Calls `check` with a short backoff (100 ms doubling to 1 s) until it says done or the deadline passes.
    private func poll(
        until deadline: ContinuousClock.Instant, progress: WaitProgress,
        _ check: () async throws -> (done: Bool, text: String),
        onTimeout: () async -> String
    ) async throws {
        var interval = Duration.milliseconds(100)
        let clock = ContinuousClock()
        while true {
            let (done, text) = try await check()
            if done {
                progress.finish(text)
                return
            }
            progress.update(text)
            if clock.now >= deadline {
                progress.abandon()
                throw CLIError(
                    await onTimeout(),
                    hint: "the objects are applied; see `kubectl -n \(options.namespace) describe deployment \(InstallManifests.deploymentName)`, then rerun `kubectl chill install` to wait again")
            }
            try await Task.sleep(for: min(interval, deadline - clock.now + .milliseconds(1)))
            interval = min(interval * 2, .seconds(1))
        }
    }
}

/// Progress of a wait: one line that rewrites itself on a TTY, timestamped lines (printed when the
/// text changes) otherwise.
final class WaitProgress {
    let console: Console
    private var lastText: String?
    private var live = false

    init(console: Console) { self.console = console }

    func update(_ text: String) {
        if console.isTerminal {
            console.progress(text)
            live = true
        } else if text != lastText {
            console.out("\(Self.timestamp()) \(text)")
        }
        lastText = text
    }

    func finish(_ text: String) {
        if console.isTerminal {
            console.progress(text)
            console.out("")
            live = false
        } else {
            console.out("\(Self.timestamp()) \(text)")
        }
        lastText = nil
    }

    /// Ends a live line so an error does not land on it.
    func abandon() {
        if live { console.out("") }
        live = false
    }

    static func timestamp() -> String { RFC3339.format(Date()) }
}
