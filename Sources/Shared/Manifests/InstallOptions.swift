/// What `kubectl chill install` (and `kubectl chill manifests`) can change about the installed objects.
/// Every value has a default, so `InstallOptions()` renders `manifests/install.yaml`.
public struct InstallOptions: Sendable, Hashable {
    /// Namespace of chill-server, its RBAC and the models' Deployments.
    public var namespace: String
    /// The chill-server image, pinned to the plugin's version by default.
    public var image: String
    /// Go duration: scale a model to zero after this long without requests (chill-server's IDLE_TIMEOUT).
    public var idleTimeout: String
    /// Go duration: how long a request is held while its model wakes (WAKE_TIMEOUT).
    public var wakeTimeout: String
    /// Name of a Secret in `namespace` whose key `token` becomes CHILL_ADMIN_TOKEN.
    public var adminTokenSecret: String?
    /// Name of a Secret in `namespace` whose key `api-key` becomes VLLM_API_KEY, in chill-server and
    /// (wired by chill-server, told through VLLM_API_KEY_SECRET) in the vLLM pods.
    public var apiKeySecret: String?
    /// chill-server replicas.
    public var replicas: Int

    public static let defaultNamespace = "chill-system"
    public static let defaultIdleTimeout = "5m"
    public static let defaultWakeTimeout = "10m"

    public init(
        namespace: String = InstallOptions.defaultNamespace,
        image: String = ChillVersion.defaultImage,
        idleTimeout: String = InstallOptions.defaultIdleTimeout,
        wakeTimeout: String = InstallOptions.defaultWakeTimeout,
        adminTokenSecret: String? = nil,
        apiKeySecret: String? = nil,
        replicas: Int = 1
    ) {
        self.namespace = namespace
        self.image = image
        self.idleTimeout = idleTimeout
        self.wakeTimeout = wakeTimeout
        self.adminTokenSecret = adminTokenSecret
        self.apiKeySecret = apiKeySecret
        self.replicas = replicas
    }

    /// One line per problem, naming the flag to fix; empty when the options are usable.
    public func problems() -> [String] {
        var problems: [String] = []
        if !Self.isDNSLabel(namespace) {
            problems.append("--namespace \"\(namespace)\" is not a valid namespace name — use lower-case letters, digits and '-', at most 63 characters")
        }
        if image.isEmpty || image.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            problems.append("--image \"\(image)\" is not an image reference — use e.g. \(ChillVersion.defaultImage)")
        } else if !VLLMModelCRD.isPinned(image: image) {
            // As `kubectl chill create` refuses for vLLM: an unpinned image changes under a running install.
            problems.append("--image \"\(image)\" is not pinned — use an explicit tag other than 'latest' (e.g. \(ChillVersion.defaultImage)) or an @sha256: digest")
        }
        for (flag, value) in [("idle-timeout", idleTimeout), ("wake-timeout", wakeTimeout)] {
            if !Self.isPositiveDuration(value) {
                problems.append("--\(flag) \"\(value)\" is not a positive duration — use e.g. 30s, 5m or 1h30m")
            }
        }
        for (flag, value) in [("admin-token-secret", adminTokenSecret), ("api-key-secret", apiKeySecret)] {
            if let value, !Self.isDNSSubdomain(value) {
                problems.append("--\(flag) \"\(value)\" is not a valid Secret name — use lower-case letters, digits, '-' and '.'")
            }
        }
        if replicas != 1 {
            // Each replica would run the controller: without leader election they would fight.
            problems.append("--replicas \(replicas): only 1 is supported until chill-server has leader election (each replica would run its own controller)")
        }
        return problems
    }

    static func isPositiveDuration(_ text: String) -> Bool {
        guard let ns = try? GoDuration.parseNanoseconds(text) else { return false }
        return ns > 0
    }

    /// RFC 1123 label: what namespace names must be.
    public static func isDNSLabel(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// RFC 1123 subdomain: what most object names (Secrets among them) must be.
    public static func isDNSSubdomain(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }
}
