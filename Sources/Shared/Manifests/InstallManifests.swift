/// The objects `kubectl chill install` applies, generated in one place: the plugin applies them,
/// `kubectl chill manifests` prints them, and `manifests/install.yaml` is their default rendering
/// (regenerate with `CHILL_UPDATE_MANIFESTS=1 swift test --filter ManifestTests`).
public enum InstallManifests {
    public static let serviceAccountName = "chill-server"
    public static let deploymentName = "chill-server"
    public static let containerName = "chill-server"
    public static let serviceName = "chill"
    /// Role, RoleBinding, ClusterRole and ClusterRoleBinding are all named after the ServiceAccount.
    public static let rbacName = "chill-server"
    /// The field manager of every object the plugin applies.
    public static let fieldManager = ChillContract.fieldManager
    /// chill-server's HTTP port (proxy, /health, /readyz, /proxy/metrics).
    public static let port = 8080
    /// chill-server drains in-flight requests for `--shutdown-grace` (30 s) on SIGTERM; the kubelet
    /// must wait longer than that before SIGKILL.
    public static let terminationGracePeriodSeconds = 45
    /// The Secret keys read by `--admin-token-secret` and `--api-key-secret`.
    public static let adminTokenKey = "token"
    public static let apiKeyKey = "api-key"

    /// Names the install an object belongs to (its namespace), on every object, cluster-scoped ones
    /// included: uninstall deletes only objects carrying its namespace here, and install finds an
    /// existing install (one per cluster) through the ClusterRoleBinding's.
    public static let installNamespaceLabel = "chill.dev/install-namespace"

    /// The labels every object of the install in `namespace` carries.
    public static func labels(namespace: String, component: String? = "proxy") -> [String: JSONValue] {
        var labels: [String: JSONValue] = [
            "app.kubernetes.io/name": "chill",
            "app.kubernetes.io/part-of": "chill",
            "app.kubernetes.io/version": .string(ChillVersion.current),
            "app.kubernetes.io/managed-by": .string(fieldManager),
            installNamespaceLabel: .string(namespace),
        ]
        if let component { labels["app.kubernetes.io/component"] = .string(component) }
        return labels
    }

    /// The Deployment's selector (immutable: no version in it) and the Service's.
    public static let selector: [String: JSONValue] = [
        "app.kubernetes.io/name": "chill",
        "app.kubernetes.io/component": "proxy",
    ]

    /// Every object, in the order to apply them: CRD, Namespace, ServiceAccount, Role, RoleBinding,
    /// ClusterRole, ClusterRoleBinding, Deployment, Service. Delete in the reverse order.
    public static func generate(_ options: InstallOptions = InstallOptions()) -> [JSONValue] {
        [
            customResourceDefinition(options),
            namespace(options),
            serviceAccount(options),
            role(options),
            roleBinding(options),
            clusterRole(options),
            clusterRoleBinding(options),
            deployment(options),
            service(options),
        ]
    }

    /// Multi-document YAML of `generate(options)` with the generated-file header.
    public static func yaml(_ options: InstallOptions = InstallOptions()) -> String {
        header + YAML.encode(documents: generate(options))
    }

    public static let header = """
        # GENERATED FILE - do not edit by hand.
        # chill \(ChillVersion.current): the CRD, chill-server with least-privilege RBAC, and its Service.
        # Source: Sources/Shared/Manifests/InstallManifests.swift (InstallManifests.generate()).
        # Print with other options: kubectl chill manifests --help
        # Regenerate: CHILL_UPDATE_MANIFESTS=1 swift test --filter ManifestTests

        """

    // MARK: Objects

    public static func customResourceDefinition(_ o: InstallOptions = InstallOptions()) -> JSONValue {
        var crd = VLLMModelCRD.definition()
        var labels = crd[path: "metadata", "labels"]?.objectValue ?? [:]
        labels.merge(self.labels(namespace: o.namespace, component: nil)) { _, new in new }
        crd["metadata"]?["labels"] = .object(labels)
        return crd
    }

    /// Metadata of an object of the install `o`; `namespaced: false` for cluster-scoped objects.
    static func meta(_ name: String, _ o: InstallOptions, namespaced: Bool = true, component: String? = "proxy") -> JSONValue {
        var meta: JSONValue = ["name": .string(name), "labels": .object(labels(namespace: o.namespace, component: component))]
        if namespaced { meta["namespace"] = .string(o.namespace) }
        return meta
    }

    public static func namespace(_ o: InstallOptions) -> JSONValue {
        ["apiVersion": "v1", "kind": "Namespace", "metadata": meta(o.namespace, o, namespaced: false, component: nil)]
    }

    public static func serviceAccount(_ o: InstallOptions) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": meta(serviceAccountName, o),
            "automountServiceAccountToken": true,
        ]
    }

    public static func role(_ o: InstallOptions) -> JSONValue {
        [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta(rbacName, o),
            "rules": .array(ChillRBAC.namespaced.map(\.json)),
        ]
    }

    static func subjects(_ o: InstallOptions) -> JSONValue {
        [["kind": "ServiceAccount", "name": .string(serviceAccountName), "namespace": .string(o.namespace)]]
    }

    public static func roleBinding(_ o: InstallOptions) -> JSONValue {
        [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta(rbacName, o),
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": .string(rbacName)],
            "subjects": subjects(o),
        ]
    }

    public static func clusterRole(_ o: InstallOptions = InstallOptions()) -> JSONValue {
        [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": meta(rbacName, o, namespaced: false),
            "rules": .array(ChillRBAC.cluster.map(\.json)),
        ]
    }

    public static func clusterRoleBinding(_ o: InstallOptions) -> JSONValue {
        [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": meta(rbacName, o, namespaced: false),
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": .string(rbacName)],
            "subjects": subjects(o),
        ]
    }

    static func environment(_ o: InstallOptions) -> JSONValue {
        var env: [JSONValue] = [
            ["name": "PORT", "value": .string(String(port))],
            // The models live in chill's own namespace: the pod's, from the downward API.
            ["name": "VLLM_NAMESPACE", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]],
            ["name": "IDLE_TIMEOUT", "value": .string(o.idleTimeout)],
            ["name": "WAKE_TIMEOUT", "value": .string(o.wakeTimeout)],
            // A controller of every VLLMModel, running one model at a time.
            ["name": "CHILL_BACKEND", "value": "kubernetes"],
            ["name": "CHILL_MODE", "value": "exclusive"],
        ]
        if let secret = o.adminTokenSecret {
            env.append(["name": "CHILL_ADMIN_TOKEN", "valueFrom": ["secretKeyRef": ["name": .string(secret), "key": .string(adminTokenKey)]]])
        }
        if let secret = o.apiKeySecret {
            env.append(["name": "VLLM_API_KEY", "valueFrom": ["secretKeyRef": ["name": .string(secret), "key": .string(apiKeyKey)]]])
            // chill-server wires the same Secret (key `api-key`) into the vLLM pods.
            env.append(["name": "VLLM_API_KEY_SECRET", "value": .string(secret)])
        }
        return .array(env)
    }

    public static func deployment(_ o: InstallOptions) -> JSONValue {
        let probe: (String, Int) -> JSONValue = { path, period in
            ["httpGet": ["path": .string(path), "port": "http"], "periodSeconds": .int(period), "timeoutSeconds": 2, "failureThreshold": 3]
        }
        var liveness = probe("/health", 10)
        liveness["initialDelaySeconds"] = 5
        let container: JSONValue = [
            "name": .string(containerName),
            "image": .string(o.image),
            "imagePullPolicy": "IfNotPresent",
            "args": ["--backend", "kubernetes"],
            "ports": [["name": "http", "containerPort": .int(port), "protocol": "TCP"]],
            "env": environment(o),
            "livenessProbe": liveness,
            "readinessProbe": probe("/readyz", 5),
            // No CPU limit: CFS throttling would stall streamed tokens of every model at once; the
            // request guarantees the proxy's share. The memory limit bounds held request bodies.
            "resources": [
                "requests": ["cpu": "50m", "memory": "64Mi"],
                "limits": ["memory": "256Mi"],
            ],
            "securityContext": [
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "capabilities": ["drop": ["ALL"]],
                "seccompProfile": ["type": "RuntimeDefault"],
            ],
            // The root filesystem is read-only; Foundation and libcurl may want a scratch directory.
            "volumeMounts": [["name": "tmp", "mountPath": "/tmp"]],
        ]
        var podLabels = labels(namespace: o.namespace)
        podLabels.merge(selector) { _, new in new }
        return [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(deploymentName, o),
            "spec": [
                "replicas": .int(o.replicas),
                // No leader election yet: an upgrade stops the old controller before the new one starts,
                // never two at once (the cost: the proxy is down for the new pod's start-up).
                "strategy": ["type": "Recreate"],
                "revisionHistoryLimit": 3,
                "selector": ["matchLabels": .object(selector)],
                "template": [
                    "metadata": [
                        "labels": .object(podLabels),
                        "annotations": ["kubectl.kubernetes.io/default-container": .string(containerName)],
                    ],
                    "spec": [
                        "serviceAccountName": .string(serviceAccountName),
                        "automountServiceAccountToken": true,
                        "enableServiceLinks": false,
                        "terminationGracePeriodSeconds": .int(terminationGracePeriodSeconds),
                        "securityContext": [
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "fsGroup": 65532,
                            "seccompProfile": ["type": "RuntimeDefault"],
                        ],
                        "containers": [container],
                        "volumes": [["name": "tmp", "emptyDir": ["sizeLimit": "64Mi"]]],
                    ],
                ],
            ],
        ]
    }

    public static func service(_ o: InstallOptions) -> JSONValue {
        var metadata = meta(serviceName, o)
        metadata["annotations"] = [
            "prometheus.io/scrape": "true",
            "prometheus.io/port": .string(String(port)),
            "prometheus.io/path": "/proxy/metrics",
        ]
        return [
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata,
            "spec": [
                "type": "ClusterIP",
                "selector": .object(selector),
                "ports": [["name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"]],
            ],
        ]
    }

    // MARK: Addressing

    /// The resource type of one generated object, for the client.
    public static func resourceType(of object: JSONValue) -> ResourceType? {
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let kind = object["kind"]?.stringValue ?? ""
        let parts = apiVersion.split(separator: "/").map(String.init)
        let (group, version) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts.first ?? "")
        let table: [String: (plural: String, namespaced: Bool)] = [
            "CustomResourceDefinition": ("customresourcedefinitions", false),
            "Namespace": ("namespaces", false),
            "ServiceAccount": ("serviceaccounts", true),
            "Role": ("roles", true),
            "RoleBinding": ("rolebindings", true),
            "ClusterRole": ("clusterroles", false),
            "ClusterRoleBinding": ("clusterrolebindings", false),
            "Deployment": ("deployments", true),
            "Service": ("services", true),
            "ConfigMap": ("configmaps", true),
        ]
        guard let entry = table[kind] else { return nil }
        return ResourceType(group: group, version: version, kind: kind, plural: entry.plural, isNamespaced: entry.namespaced)
    }

    /// `deployment.apps/chill-server`, `service/chill`: how kubectl apply names an object.
    public static func displayName(of object: JSONValue) -> String {
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        let kind = (object["kind"]?.stringValue ?? "").lowercased()
        return (group.isEmpty ? kind : "\(kind).\(group)") + "/" + (object.objectName ?? "")
    }
}
