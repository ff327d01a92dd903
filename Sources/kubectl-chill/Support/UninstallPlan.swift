import Shared

/// What `kubectl chill uninstall -n NAMESPACE` deletes and keeps, decided before anything is deleted:
/// only objects of the install in NAMESPACE (its `chill.dev/install-namespace` label) go.
struct UninstallPlan {
    enum Action: Equatable {
        case delete
        case keep(String)
    }

    struct Step {
        var kind: String
        var name: String
        /// `deployment.apps "chill-server"`, as kubectl delete prints it.
        var display: String
        var api: UntypedAPI
        var action: Action
        var isCRD: Bool { kind == "CustomResourceDefinition" }
    }

    /// Existing objects, in delete order.
    var steps: [Step]
    /// Where the cluster-scoped objects say chill is installed (nil: nowhere).
    var installedIn: String?
    /// The VLLMModels deleted with the CRD, when the CRD is to be deleted.
    var models: [String]?

    /// Something of an install is in the namespace (the chill-state ConfigMap alone does not count).
    var isInstalled: Bool { steps.contains { $0.action == .delete && $0.kind != "ConfigMap" } }

    static func make(namespace: String, _ client: KubeClient) async throws -> UninstallPlan {
        let installedIn = try await InstallLocator.installedNamespace(client)
        var plan = UninstallPlan(steps: [], installedIn: installedIn)
        for object in objects(namespace: namespace) {
            guard let type = InstallManifests.resourceType(of: object), let name = object.objectName else { continue }
            let api = client.untyped(type, namespace: namespace)
            guard let existing = try await api.getIfExists(name) else { continue }
            let step = Step(
                kind: type.kind, name: name, display: kubectlName(type, name), api: api,
                action: action(for: existing, kind: type.kind, namespaced: type.isNamespaced, namespace: namespace, installedIn: installedIn))
            if step.isCRD && step.action == .delete {
                plan.models = (try? await client.api(VLLMModel.self).listAll().items.map(\.name).sorted()) ?? []
            }
            plan.steps.append(step)
        }
        return plan
    }

    /// Delete an object of this install; keep (saying why) anything else of the same name.
    static func action(for object: JSONValue, kind: String, namespaced: Bool, namespace: String, installedIn: String?) -> Action {
        if kind == "ConfigMap" { return .delete }  // chill-state: written by switch and chill-server, not install
        let owner = InstallLocator.installNamespace(of: object)
        if namespaced || kind == "Namespace" {
            // In the namespace: ours when labelled so, or applied by kubectl-chill before the label existed.
            return owner == namespace || (owner == nil && Installer.isManaged(object)) ? .delete : .keep("not created by chill")
        }
        // Cluster-scoped objects without the label (older installs) belong to the install the binding names.
        let clusterOwner = owner ?? (Installer.isManaged(object) ? installedIn : nil)
        switch clusterOwner {
        case namespace: return .delete
        case let other?: return .keep("belongs to the install in \(other)")
        case nil: return .keep("not created by chill")
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

    static func kubectlName(_ type: ResourceType, _ name: String) -> String {
        let kind = type.kind.lowercased()
        return (type.group.isEmpty ? kind : "\(kind).\(type.group)") + " \"\(name)\""
    }
}
