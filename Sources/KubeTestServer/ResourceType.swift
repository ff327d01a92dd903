/// A resource the test server serves under `/api/v1` or `/apis/{group}/{version}`.
public struct ResourceType: Sendable, Hashable {
    /// The `/scale` subresource: JSON paths (dot-separated, no leading dot) into the object.
    public struct Scale: Sendable, Hashable {
        public var specReplicasPath: String
        public var statusReplicasPath: String
        public var labelSelectorPath: String?
        public init(specReplicasPath: String = "spec.replicas", statusReplicasPath: String = "status.replicas",
                    labelSelectorPath: String? = nil) {
            self.specReplicasPath = specReplicasPath
            self.statusReplicasPath = statusReplicasPath
            self.labelSelectorPath = labelSelectorPath
        }
    }

    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var namespaced: Bool
    public var hasStatus: Bool
    public var scale: Scale?
    /// Custom resources behave differently from built-ins: keys sorted in output, PUT needs a
    /// resourceVersion, no strategic merge patch, list items carry apiVersion/kind.
    public var isCustom: Bool
    /// Field-selector labels accepted besides `metadata.name` / `metadata.namespace` (dot paths into the object).
    public var extraFieldSelectors: [String]

    public init(group: String, version: String, kind: String, plural: String, namespaced: Bool = true,
                hasStatus: Bool = false, scale: Scale? = nil, isCustom: Bool = true,
                extraFieldSelectors: [String] = []) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.hasStatus = hasStatus
        self.scale = scale
        self.isCustom = isCustom
        self.extraFieldSelectors = extraFieldSelectors
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var listKind: String { kind + "List" }
    /// `configmaps` or `deployments.apps`: the resource as it appears in Status messages.
    public var qualifiedPlural: String { group.isEmpty ? plural : "\(plural).\(group)" }
    /// `ConfigMap` or `Deployment.apps`: the kind as it appears in 422 Invalid messages.
    public var qualifiedKind: String { group.isEmpty ? kind : "\(kind).\(group)" }
    /// Storage key: one store per group + plural, shared by all versions.
    /// (events.k8s.io/v1 Events share the core/v1 store.)
    var storageKey: String { group == "events.k8s.io" && plural == "events" ? "/events" : "\(group)/\(plural)" }

    static func builtin(_ group: String, _ version: String, _ kind: String, _ plural: String,
                        namespaced: Bool = true, status: Bool = false, scale: Scale? = nil,
                        fields: [String] = []) -> ResourceType {
        ResourceType(group: group, version: version, kind: kind, plural: plural, namespaced: namespaced,
                     hasStatus: status, scale: scale, isCustom: false, extraFieldSelectors: fields)
    }

    public static let namespaces = builtin("", "v1", "Namespace", "namespaces", namespaced: false, status: true,
                                           fields: ["status.phase"])
    public static let configMaps = builtin("", "v1", "ConfigMap", "configmaps")
    public static let secrets = builtin("", "v1", "Secret", "secrets", fields: ["type"])
    public static let services = builtin("", "v1", "Service", "services", status: true, fields: ["spec.clusterIP", "spec.type"])
    public static let pods = builtin("", "v1", "Pod", "pods", status: true,
                                     fields: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                              "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"])
    public static let events = builtin("", "v1", "Event", "events",
                                       fields: ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                                                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"])
    public static let serviceAccounts = builtin("", "v1", "ServiceAccount", "serviceaccounts")
    public static let persistentVolumeClaims = builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", status: true)
    public static let deployments = builtin("apps", "v1", "Deployment", "deployments", status: true,
                                            scale: Scale(labelSelectorPath: "status.selector"))
    public static let replicaSets = builtin("apps", "v1", "ReplicaSet", "replicasets", status: true,
                                            scale: Scale(labelSelectorPath: "status.selector"))
    public static let leases = builtin("coordination.k8s.io", "v1", "Lease", "leases")
    public static let customResourceDefinitions = builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                                                          "customresourcedefinitions", namespaced: false, status: true)
    public static let roles = builtin("rbac.authorization.k8s.io", "v1", "Role", "roles")
    public static let roleBindings = builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
    public static let clusterRoles = builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced: false)
    public static let clusterRoleBindings = builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
                                                    "clusterrolebindings", namespaced: false)
    public static let eventsV1 = builtin("events.k8s.io", "v1", "Event", "events",
                                         fields: ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                                                  "reason", "reportingController", "type"])

    public static let builtins: [ResourceType] = [
        namespaces, configMaps, secrets, services, pods, events, serviceAccounts, persistentVolumeClaims,
        deployments, replicaSets, leases, customResourceDefinitions, roles, roleBindings, clusterRoles, clusterRoleBindings, eventsV1,
    ]
}

/// An authenticated (or anonymous) caller.
public struct KubeUser: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var groups: [String]
    public init(name: String, groups: [String] = []) {
        self.name = name
        self.groups = groups
    }
    public static let anonymous = KubeUser(name: "system:anonymous", groups: ["system:unauthenticated"])
    /// The identity used by in-process callers that don't care about auth.
    public static let admin = KubeUser(name: "chill-admin", groups: ["system:masters"])
    public var description: String { name }
}

/// One entry of `details.causes` in a 422 Invalid Status.
public struct Cause: Sendable, Hashable {
    public var reason: String
    public var message: String
    public var field: String
    public init(reason: String = "FieldValueInvalid", message: String, field: String) {
        self.reason = reason
        self.message = message
        self.field = field
    }
    /// A CEL-style rejection: `Invalid value: failed rule: <rule>` (or the rule's message).
    public static func invalid(_ field: String, _ message: String) -> Cause {
        Cause(reason: "FieldValueInvalid", message: "Invalid value: \(message)", field: field)
    }
    public static func required(_ field: String, _ detail: String? = nil) -> Cause {
        Cause(reason: "FieldValueRequired", message: detail.map { "Required value: \($0)" } ?? "Required value", field: field)
    }
}
