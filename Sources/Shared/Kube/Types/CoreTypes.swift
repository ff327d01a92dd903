/// core/v1 ConfigMap.
public struct ConfigMap: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "ConfigMap", plural = "configmaps"
    public static let isNamespaced = true
    public var apiVersion: String? = ConfigMap.apiVersion
    public var kind: String? = ConfigMap.kind
    public var metadata: ObjectMeta
    public var data: [String: String]?

    public init(metadata: ObjectMeta, data: [String: String]? = nil) {
        self.metadata = metadata
        self.data = data
    }
}

/// core/v1 Secret. `data` values are base64, as on the wire; never log them.
public struct Secret: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "Secret", plural = "secrets"
    public static let isNamespaced = true
    public var apiVersion: String? = Secret.apiVersion
    public var kind: String? = Secret.kind
    public var metadata: ObjectMeta
    public var type: String?
    public var data: [String: String]?
    public var stringData: [String: String]?

    public init(metadata: ObjectMeta, stringData: [String: String]? = nil) {
        self.metadata = metadata
        self.stringData = stringData
    }
}

/// core/v1 Service; the spec stays untyped.
public struct Service: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "Service", plural = "services"
    public static let isNamespaced = true
    public var apiVersion: String? = Service.apiVersion
    public var kind: String? = Service.kind
    public var metadata: ObjectMeta
    public var spec: JSONValue?

    public init(metadata: ObjectMeta, spec: JSONValue? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// core/v1 Namespace.
public struct Namespace: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "Namespace", plural = "namespaces"
    public static let isNamespaced = false
    public var apiVersion: String? = Namespace.apiVersion
    public var kind: String? = Namespace.kind
    public var metadata: ObjectMeta
    public var status: JSONValue?

    public init(metadata: ObjectMeta) { self.metadata = metadata }
}

/// core/v1 Event: what the kubelet and scheduler say about a pod (BackOff, Failed, FailedScheduling…).
public struct Event: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "Event", plural = "events"
    public static let isNamespaced = true
    public var apiVersion: String? = Event.apiVersion
    public var kind: String? = Event.kind
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    public var type: String?
    public var count: Int?
    public var firstTimestamp: String?
    public var lastTimestamp: String?
    public var eventTime: String?
    public var source: JSONValue?
    public var reportingComponent: String?

    public init(metadata: ObjectMeta, involvedObject: ObjectReference, reason: String?, message: String?, type: String? = "Normal") {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
    }
}

public struct ObjectReference: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var kind: String?
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var fieldPath: String?

    public init(apiVersion: String? = nil, kind: String? = nil, name: String? = nil, namespace: String? = nil, uid: String? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.uid = uid
    }
}

/// coordination.k8s.io/v1 Lease, for leader election. Times are MicroTime (`RFC3339.formatMicro`).
public struct Lease: KubeResource, Hashable {
    public static let group = "coordination.k8s.io", version = "v1", kind = "Lease", plural = "leases"
    public static let isNamespaced = true
    public var apiVersion: String? = Lease.apiVersion
    public var kind: String? = Lease.kind
    public var metadata: ObjectMeta
    public var spec: Spec?

    public init(metadata: ObjectMeta, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }

    public struct Spec: Codable, Sendable, Hashable {
        public var holderIdentity: String?
        public var leaseDurationSeconds: Int?
        public var acquireTime: String?
        public var renewTime: String?
        public var leaseTransitions: Int?

        public init(holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: String? = nil, renewTime: String? = nil, leaseTransitions: Int? = nil) {
            self.holderIdentity = holderIdentity
            self.leaseDurationSeconds = leaseDurationSeconds
            self.acquireTime = acquireTime
            self.renewTime = renewTime
            self.leaseTransitions = leaseTransitions
        }
    }
}

/// apiextensions.k8s.io/v1 CustomResourceDefinition: the spec stays untyped (it is generated), the
/// status is read to wait for `Established`.
public struct CustomResourceDefinition: KubeResource, Hashable {
    public static let group = "apiextensions.k8s.io", version = "v1", kind = "CustomResourceDefinition"
    public static let plural = "customresourcedefinitions"
    public static let isNamespaced = false
    public var apiVersion: String? = CustomResourceDefinition.apiVersion
    public var kind: String? = CustomResourceDefinition.kind
    public var metadata: ObjectMeta
    public var spec: JSONValue
    public var status: Status?

    public struct Status: Codable, Sendable, Hashable {
        public var conditions: [Condition]?
        public var acceptedNames: JSONValue?
        public var storedVersions: [String]?
    }

    public var isEstablished: Bool {
        status?.conditions?.contains { $0.type == "Established" && $0.status == "True" } ?? false
    }
}

/// core/v1 PersistentVolumeClaim; spec and status stay untyped.
public struct PersistentVolumeClaim: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "PersistentVolumeClaim", plural = "persistentvolumeclaims"
    public static let isNamespaced = true
    public var apiVersion: String? = PersistentVolumeClaim.apiVersion
    public var kind: String? = PersistentVolumeClaim.kind
    public var metadata: ObjectMeta
    public var spec: JSONValue?
    public var status: JSONValue?

    public init(metadata: ObjectMeta, spec: JSONValue? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}
