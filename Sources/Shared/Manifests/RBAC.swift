/// chill-server's permissions, least privilege: one entry per (resource, verb) with the reason it is
/// needed, for exactly the API calls the controller makes. The Role and ClusterRole in the install
/// manifests, the table in docs/QUICKSTART.md and the tests all come from this list, so a verb cannot
/// be added without a reason. (`kubectl chill install` itself runs with the user's credentials, not
/// these.)
///
/// Deliberately NOT granted (and why):
/// - `update` (PUT) on deployments/services/PVCs/configmaps: chill-server writes them with
///   server-side apply (PATCH) only.
/// - `delete` on deployments/services/PVCs: a model's objects carry an ownerReference to their
///   (cluster-scoped) VLLMModel, so the garbage collector removes them when the model is deleted.
/// - deployments/scale: chill-server sets `spec.replicas` in its apply of the Deployment.
/// - list/watch on services and PVCs: chill-server applies them when it reconciles a model and reads
///   one by name; it does not follow them.
/// - `get` on pods and events: both come from watches (pods labelled `chill.dev/model`).
/// - `create` on events: chill-server reports through VLLMModel status and its own logs and metrics;
///   it emits no Events.
/// - secrets: chill-server reads none. Secrets it needs (admin token, API key) reach it as environment
///   variables that the kubelet resolves (`secretKeyRef`); the vLLM pods get theirs the same way.
/// - create/update/delete on vllmmodels: users (and `kubectl chill`) own the spec; chill-server
///   only writes `/status`.
/// - leases: the controller does not elect a leader; run one replica.
public enum ChillRBAC {
    public struct Verb: Sendable, Hashable {
        public var name: String
        public var reason: String
        public init(_ name: String, _ reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    public struct Rule: Sendable, Hashable {
        /// "" for the core group.
        public var apiGroup: String
        /// `deployments` or `deployments/scale`.
        public var resource: String
        public var resourceNames: [String]
        public var verbs: [Verb]

        public init(_ apiGroup: String, _ resource: String, resourceNames: [String] = [], _ verbs: [Verb]) {
            self.apiGroup = apiGroup
            self.resource = resource
            self.resourceNames = resourceNames
            self.verbs = verbs
        }

        public var verbNames: [String] { verbs.map(\.name) }

        /// The PolicyRule object.
        public var json: JSONValue {
            var rule: JSONValue = [
                "apiGroups": [.string(apiGroup)],
                "resources": [.string(resource)],
                "verbs": .array(verbNames.map(JSONValue.string)),
            ]
            if !resourceNames.isEmpty { rule["resourceNames"] = .array(resourceNames.map(JSONValue.string)) }
            return rule
        }
    }

    /// The namespaced Role: everything chill-server touches in the install namespace.
    public static let namespaced: [Rule] = [
        Rule("apps", "deployments", [
            Verb("list", "initial list of the Deployment informer (and relist after 410 Gone)"),
            Verb("watch", "follow the model Deployments' readiness, event-driven (no polling)"),
            Verb("create", "server-side apply of an absent Deployment is authorized as create"),
            Verb("patch", "server-side apply of vllm-<model>: its pod template and replicas (wake, scale to zero)"),
        ]),
        Rule("", "services", [
            Verb("create", "server-side apply of an absent Service is authorized as create"),
            Verb("patch", "server-side apply of a model's Service"),
        ]),
        Rule("", "persistentvolumeclaims", [
            Verb("create", "server-side apply of an absent cache claim is authorized as create"),
            Verb("patch", "server-side apply of the cache claim (e.g. a larger spec.cache.size)"),
        ]),
        Rule("", "pods", [
            Verb("list", "initial list of the Pod informer (label chill.dev/model)"),
            Verb("watch", "wake progress: scheduling, image pull, CrashLoopBackOff, readiness"),
        ]),
        Rule("", "events", [
            Verb("list", "initial list of the Event informer"),
            Verb("watch", "explain a stuck wake (FailedScheduling, BackOff, failed image pulls)"),
        ]),
        Rule("", "configmaps", [
            Verb("list", "initial list of the chill-state informer (field selector metadata.name=chill-state)"),
            Verb("watch", "notice `kubectl chill switch` changing the active model"),
            Verb("create", "server-side apply of an absent chill-state is authorized as create"),
            Verb("patch", "server-side apply of chill-state"),
        ]),
    ]

    /// The ClusterRole: VLLMModels are cluster-scoped.
    public static let cluster: [Rule] = [
        Rule(VLLMModel.group, VLLMModel.plural, [
            Verb("list", "initial list of the VLLMModel informer"),
            Verb("watch", "learn about created, changed and deleted models"),
        ]),
        Rule(VLLMModel.group, "\(VLLMModel.plural)/status", [
            Verb("patch", "write a model's phase, replicas, conditions and timings"),
        ]),
        Rule(VLLMModel.group, "\(VLLMModel.plural)/finalizers", [
            Verb("update", "set blockOwnerDeletion owner references to a model (OwnerReferencesPermissionEnforcement)"),
        ]),
    ]

    /// The Markdown table of docs/QUICKSTART.md: one row per resource, each verb with its reason.
    public static func markdownTable(namespace: String = InstallOptions.defaultNamespace) -> String {
        var lines = [
            "| Scope | API group | Resource | Verb | Why |",
            "|---|---|---|---|---|",
        ]
        func add(_ scope: String, _ rules: [Rule]) {
            for rule in rules {
                let resource = rule.resourceNames.isEmpty ? rule.resource : "\(rule.resource) (`\(rule.resourceNames.joined(separator: "`, `"))` only)"
                for verb in rule.verbs {
                    lines.append("| \(scope) | \(rule.apiGroup.isEmpty ? "core" : rule.apiGroup) | \(resource) | \(verb.name) | \(verb.reason) |")
                }
            }
        }
        add("Role (`\(namespace)`)", namespaced)
        add("ClusterRole", cluster)
        return lines.joined(separator: "\n") + "\n"
    }
}
