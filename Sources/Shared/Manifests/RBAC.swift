/// chill-server's permissions, least privilege: one entry per (resource, verb) with the reason it is
/// needed. The Role and ClusterRole in the install manifests, the table in docs/QUICKSTART.md and the
/// tests all come from this list, so a verb cannot be added without a reason.
///
/// Deliberately NOT granted (and why):
/// - `update` (PUT) on deployments/services/PVCs: chill writes them with server-side apply (PATCH) only.
/// - `delete` on deployments/services/PVCs: a model's objects carry an ownerReference to their
///   (cluster-scoped) VLLMModel, so the garbage collector removes them when the model is deleted.
/// - `update` on deployments/scale: scaling is a merge PATCH of `/scale` (no read-modify-write).
/// - `create` on events: chill-server reports through VLLMModel status and its own logs and metrics;
///   it emits no Events.
/// - configmaps and secrets: chill-server reads neither. Secrets it needs (admin token, API key)
///   reach it as environment variables that the kubelet resolves (`secretKeyRef`), and a model's
///   `env[].valueFrom` is resolved by the kubelet too.
/// - create/update/delete on vllmmodels: users (and `kubectl chill`) own the spec; chill-server
///   only writes `/status`.
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

    /// The Lease chill-server replicas elect a leader with (only the leader scales and writes status).
    public static let leaderElectionLease = "chill-server"

    /// The namespaced Role: everything chill-server touches in the install namespace.
    public static let namespaced: [Rule] = [
        Rule("apps", "deployments", [
            Verb("get", "read a model's vLLM Deployment when reconciling it"),
            Verb("list", "initial list of the watch below (and relist after 410 Gone)"),
            Verb("watch", "follow the model Deployments' readiness, event-driven (no polling)"),
            Verb("create", "create a model's Deployment (server-side apply of a missing object is authorized as create)"),
            Verb("patch", "server-side apply of a model's Deployment when its VLLMModel spec changes"),
        ]),
        Rule("apps", "deployments/scale", [
            Verb("get", "read the current replica count (reveals nothing `get deployments` does not)"),
            Verb("patch", "wake (0 → N) and scale to zero (N → 0): a merge patch of /scale"),
        ]),
        Rule("", "services", [
            Verb("get", "read a model's Service when reconciling it"),
            Verb("list", "initial list of the watch below"),
            Verb("watch", "notice a model's Service being changed or deleted by someone else"),
            Verb("create", "create a model's Service (server-side apply of a missing object)"),
            Verb("patch", "server-side apply of a model's Service"),
        ]),
        Rule("", "persistentvolumeclaims", [
            Verb("get", "read a model's Hugging Face cache claim (spec.cache)"),
            Verb("list", "initial list of the watch below"),
            Verb("watch", "report a cache claim stuck Pending while a model wakes"),
            Verb("create", "create the cache claim of a model with spec.cache"),
            Verb("patch", "server-side apply of the cache claim (e.g. a larger spec.cache.size)"),
        ]),
        Rule("", "pods", [
            Verb("get", "read one vLLM Pod while diagnosing a slow wake"),
            Verb("list", "initial list of the Pod watch"),
            Verb("watch", "wake progress: scheduling, image pull, CrashLoopBackOff, readiness"),
        ]),
        Rule("", "events", [
            Verb("get", "read one Event about a vLLM Pod"),
            Verb("list", "initial list of the Event watch"),
            Verb("watch", "explain a stuck wake (FailedScheduling, BackOff, Failed image pulls)"),
        ]),
        Rule("coordination.k8s.io", "leases", [
            Verb("create", "create the leader-election Lease the first time (create cannot be limited by name)"),
        ]),
        Rule("coordination.k8s.io", "leases", resourceNames: [leaderElectionLease], [
            Verb("get", "read the leader-election Lease (only this one, by name)"),
            Verb("update", "acquire and renew the leadership (only this Lease)"),
        ]),
    ]

    /// The ClusterRole: VLLMModels are cluster-scoped.
    public static let cluster: [Rule] = [
        Rule(VLLMModel.group, VLLMModel.plural, [
            Verb("get", "read a model's spec when a request names it"),
            Verb("list", "initial list of the model watch"),
            Verb("watch", "learn about created, changed and deleted models"),
        ]),
        Rule(VLLMModel.group, "\(VLLMModel.plural)/status", [
            Verb("update", "write a model's phase, replicas and conditions"),
            Verb("patch", "update single status fields (lastActivityTime) without a read"),
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
