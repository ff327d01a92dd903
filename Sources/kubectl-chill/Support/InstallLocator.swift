import Shared

/// Where chill is installed. chill-server controls every VLLMModel in the cluster, so there is one
/// install per cluster; its cluster-scoped ClusterRoleBinding says which namespace it is in.
enum InstallLocator {
    /// The namespace of the install that owns the cluster-scoped objects, or nil when there is none.
    static func installedNamespace(_ client: KubeClient) async throws -> String? {
        let binding = try await client.untyped(clusterRoleBindingType).getIfExists(InstallManifests.rbacName)
        return binding.flatMap(installNamespace(of:))
    }

    /// The install an object belongs to: its `chill.dev/install-namespace` label; for a binding without
    /// it, the namespace of its ServiceAccount subject.
    static func installNamespace(of object: JSONValue) -> String? {
        if let label = object[path: "metadata", "labels", InstallManifests.installNamespaceLabel]?.stringValue { return label }
        guard object["kind"]?.stringValue == "ClusterRoleBinding", Installer.isManaged(object) else { return nil }
        return object["subjects"]?.arrayValue?.first?["namespace"]?.stringValue
    }

    static let clusterRoleBindingType = InstallManifests.resourceType(of: InstallManifests.clusterRoleBinding(InstallOptions()))!

    /// The hint for a namespace without chill: where it is, or that it is nowhere.
    static func elsewhereHint(_ installed: String?, command: String) -> String {
        guard let installed else { return "chill is not installed in this cluster (install it with: kubectl chill install)" }
        return "chill is installed in \(installed): kubectl chill \(command) -n \(installed)"
    }
}
