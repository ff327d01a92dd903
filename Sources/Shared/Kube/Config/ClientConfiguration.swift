#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything needed to talk to one cluster as one user: the resolved kubeconfig context, or the
/// in-cluster service account.
public struct ClientConfiguration: Sendable {
    public var transport: TransportSettings
    public var credential: Credential
    /// The namespace of the context (or of the pod, in-cluster), before any `-n` override.
    public var namespace: String
    public var contextName: String?
    /// For exec plugins with `provideClusterInfo`.
    public var clusterInfo: JSONValue?

    public enum Credential: Sendable, Equatable {
        case none
        case token(String)
        /// Re-read periodically: projected service-account tokens rotate.
        case tokenFile(String)
        case basic(username: String, password: String)
        case exec(KubeConfig.ExecConfig)
    }

    public init(transport: TransportSettings, credential: Credential = .none, namespace: String = "default", contextName: String? = nil) {
        self.transport = transport
        self.credential = credential
        self.namespace = namespace
        self.contextName = contextName
    }
}

extension ClientConfiguration {
    /// Resolves `context` (or the current context) of a merged kubeconfig, as kubectl does.
    public init(kubeConfig config: KubeConfig, context requested: String? = nil) throws {
        guard let contextName = requested ?? config.currentContext else {
            throw KubeConfigError("no current context in the kubeconfig — pass --context or run `kubectl config use-context NAME`")
        }
        guard let context = config.contexts.first(where: { $0.name == contextName })?.value else {
            let known = config.contexts.map(\.name).joined(separator: ", ")
            throw KubeConfigError("context \"\(contextName)\" not found in the kubeconfig (known: \(known.isEmpty ? "none" : known))")
        }
        guard let clusterName = context.cluster, let cluster = config.clusters.first(where: { $0.name == clusterName })?.value else {
            throw KubeConfigError("context \"\(contextName)\" names cluster \"\(context.cluster ?? "")\", which is not in the kubeconfig")
        }
        guard let server = cluster.server, !server.isEmpty else {
            throw KubeConfigError("cluster \"\(clusterName)\" has no server address in the kubeconfig")
        }
        let user = context.user.flatMap { name in config.users.first(where: { $0.name == name })?.value } ?? KubeConfig.User()

        var transport = TransportSettings(server: server)
        transport.caData = try Self.base64(cluster.certificateAuthorityData, field: "certificate-authority-data")
        transport.caFile = cluster.certificateAuthority
        transport.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        transport.tlsServerName = cluster.tlsServerName
        transport.proxyURL = cluster.proxyURL
        transport.clientCertificateData = try Self.base64(user.clientCertificateData, field: "client-certificate-data")
        transport.clientCertificateFile = user.clientCertificate
        transport.clientKeyData = try Self.base64(user.clientKeyData, field: "client-key-data")
        transport.clientKeyFile = user.clientKey

        let credential: Credential
        if let exec = user.exec { credential = .exec(exec) }
        else if let token = user.token, !token.isEmpty { credential = .token(token) }
        else if let file = user.tokenFile, !file.isEmpty { credential = .tokenFile(file) }
        else if let name = user.username, let password = user.password { credential = .basic(username: name, password: password) }
        else if user.authProvider != nil {
            throw KubeConfigError("user of context \"\(contextName)\" uses an auth-provider, which kubectl itself no longer supports — switch to an exec plugin (e.g. kubelogin)")
        } else { credential = .none }

        self.init(transport: transport, credential: credential, namespace: context.namespace ?? "default", contextName: contextName)
        var info: JSONValue = ["server": .string(server)]
        if let ca = cluster.certificateAuthorityData { info["certificate-authority-data"] = .string(ca) }
        if let skip = cluster.insecureSkipTLSVerify { info["insecure-skip-tls-verify"] = .bool(skip) }
        if let name = cluster.tlsServerName { info["tls-server-name"] = .string(name) }
        if let proxy = cluster.proxyURL { info["proxy-url"] = .string(proxy) }
        if let ext = cluster.extensions?.first(where: { $0.name == "client.authentication.k8s.io/exec" })?.extension { info["config"] = ext }
        clusterInfo = info
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST/PORT` and the mounted token, CA and namespace.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> ClientConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else { throw KubeConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set") }
        let tokenFile = serviceAccountDirectory + "/token"
        guard FileIO.exists(tokenFile) else {
            throw KubeConfigError("no service-account token at \(tokenFile) — is automountServiceAccountToken disabled?")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        var transport = TransportSettings(server: "https://\(hostPart):\(port)")
        transport.caFile = serviceAccountDirectory + "/ca.crt"
        let namespace = FileIO.readText(serviceAccountDirectory + "/namespace")?.trimmingWhitespace
        return ClientConfiguration(transport: transport, credential: .tokenFile(tokenFile), namespace: namespace ?? "default")
    }

    /// kubectl's order: an explicit kubeconfig or context wins; else in-cluster when there; else the kubeconfig.
    public static func load(
        kubeconfig: String? = nil, context: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ClientConfiguration {
        let explicit = kubeconfig != nil || context != nil || environment["KUBECONFIG"].map { !$0.isEmpty } == true
        if !explicit, environment["KUBERNETES_SERVICE_HOST"] != nil, let config = try? inCluster(environment: environment) {
            return config
        }
        let merged = try KubeConfig.load(explicit: kubeconfig, environment: environment)
        if merged.contexts.isEmpty {
            let where_ = KubeConfig.paths(explicit: kubeconfig, environment: environment).joined(separator: ":")
            throw KubeConfigError("no kubeconfig found at \(where_) — set --kubeconfig or KUBECONFIG, or run inside a cluster")
        }
        return try ClientConfiguration(kubeConfig: merged, context: context)
    }

    private static func base64(_ text: String?, field: String) throws -> [UInt8]? {
        guard let text, !text.isEmpty else { return nil }
        let cleaned = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: cleaned) else {
            throw KubeConfigError("\(field) in the kubeconfig is not valid base64")
        }
        return Array(data)
    }
}
