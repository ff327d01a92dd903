/// core/v1 Pod: spec untyped, status typed for what chill reads to explain a wake.
public struct Pod: KubeResource, Hashable {
    public static let group = "", version = "v1", kind = "Pod", plural = "pods"
    public static let isNamespaced = true
    public var apiVersion: String? = Pod.apiVersion
    public var kind: String? = Pod.kind
    public var metadata: ObjectMeta
    public var spec: JSONValue?
    public var status: Status?

    public init(metadata: ObjectMeta, spec: JSONValue? = nil, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public struct Status: Codable, Sendable, Hashable {
        public var phase: String?
        public var reason: String?
        public var message: String?
        public var conditions: [PodCondition]?
        public var containerStatuses: [ContainerStatus]?
        public var initContainerStatuses: [ContainerStatus]?
        public var startTime: String?
        public var podIP: String?

        public init(phase: String? = nil, conditions: [PodCondition]? = nil, containerStatuses: [ContainerStatus]? = nil) {
            self.phase = phase
            self.conditions = conditions
            self.containerStatuses = containerStatuses
        }
    }

    public struct PodCondition: Codable, Sendable, Hashable {
        public var type: String
        public var status: String
        public var reason: String?
        public var message: String?
        public var lastTransitionTime: String?

        public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
            self.type = type
            self.status = status
            self.reason = reason
            self.message = message
        }
    }

    public struct ContainerStatus: Codable, Sendable, Hashable {
        public var name: String
        public var ready: Bool
        public var started: Bool?
        public var restartCount: Int
        public var image: String?
        public var state: ContainerState?
        public var lastState: ContainerState?
    }

    public struct ContainerState: Codable, Sendable, Hashable {
        public var waiting: Detail?
        public var running: JSONValue?
        public var terminated: Detail?

        public struct Detail: Codable, Sendable, Hashable {
            public var reason: String?
            public var message: String?
            public var exitCode: Int?
        }
    }

    /// True when the pod's Ready condition is True.
    public var isReady: Bool { status?.conditions?.contains { $0.type == "Ready" && $0.status == "True" } ?? false }
}
