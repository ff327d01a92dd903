#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A kubeconfig file (`kind: Config`), with kubectl's field names.
public struct KubeConfig: Codable, Sendable, Equatable {
    public var clusters: [Named<Cluster>] = []
    public var contexts: [Named<Context>] = []
    public var users: [Named<User>] = []
    public var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, contexts, users
        case currentContext = "current-context"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        clusters = try c.decodeIfPresent([Named<Cluster>].self, forKey: .clusters) ?? []
        contexts = try c.decodeIfPresent([Named<Context>].self, forKey: .contexts) ?? []
        users = try c.decodeIfPresent([Named<User>].self, forKey: .users) ?? []
        currentContext = try c.decodeIfPresent(String.self, forKey: .currentContext)
        if currentContext == "" { currentContext = nil }
    }

    public struct Named<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var name: String
        public var value: Value

        enum CodingKeys: String, CodingKey { case name, cluster, context, user }

        public init(name: String, value: Value) {
            self.name = name
            self.value = value
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            let key: CodingKeys = Value.self == Cluster.self ? .cluster : Value.self == Context.self ? .context : .user
            value = try c.decodeIfPresent(Value.self, forKey: key) ?? (try JSONValue.object([:]).decode(as: Value.self))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            let key: CodingKeys = Value.self == Cluster.self ? .cluster : Value.self == Context.self ? .context : .user
            try c.encode(value, forKey: key)
        }
    }

    public struct Cluster: Codable, Sendable, Equatable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        public var tlsServerName: String?
        public var proxyURL: String?
        public var extensions: [NamedExtension]?

        enum CodingKeys: String, CodingKey {
            case server, extensions
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    public struct NamedExtension: Codable, Sendable, Equatable {
        public var name: String
        public var `extension`: JSONValue?
    }

    public struct Context: Codable, Sendable, Equatable {
        public var cluster: String?
        public var user: String?
        public var namespace: String?
    }

    public struct User: Codable, Sendable, Equatable {
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var token: String?
        public var tokenFile: String?
        public var username: String?
        public var password: String?
        public var exec: ExecConfig?
        public var authProvider: JSONValue?

        enum CodingKeys: String, CodingKey {
            case token, tokenFile, username, password, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    /// `users[].user.exec`: a client-go credential plugin.
    public struct ExecConfig: Codable, Sendable, Equatable {
        public var apiVersion: String?
        public var command: String
        public var args: [String]?
        public var env: [EnvVar]?
        public var installHint: String?
        public var provideClusterInfo: Bool?
        public var interactiveMode: String?

        public struct EnvVar: Codable, Sendable, Equatable {
            public var name: String
            public var value: String
        }
    }
}

// MARK: - Loading and merging

extension KubeConfig {
    /// Parses one kubeconfig file's text; relative file references are resolved against `directory`.
    public static func parse(_ text: String, directory: String?) throws -> KubeConfig {
        let value = try YAML.decode(text)
        if value == .null { return KubeConfig() }
        var config: KubeConfig = try value.decode()
        if let directory { config.resolvePaths(relativeTo: directory) }
        return config
    }

    /// kubectl's merge of a `KUBECONFIG` list: for every name and for `current-context`, the first file
    /// that sets it wins.
    public static func merge(_ configs: [KubeConfig]) -> KubeConfig {
        var merged = KubeConfig()
        for config in configs {
            if merged.currentContext == nil { merged.currentContext = config.currentContext }
            for c in config.clusters where !merged.clusters.contains(where: { $0.name == c.name }) { merged.clusters.append(c) }
            for c in config.contexts where !merged.contexts.contains(where: { $0.name == c.name }) { merged.contexts.append(c) }
            for u in config.users where !merged.users.contains(where: { $0.name == u.name }) { merged.users.append(u) }
        }
        return merged
    }

    /// The files kubectl would read: `--kubeconfig`, else `$KUBECONFIG` (colon-separated), else `~/.kube/config`.
    public static func paths(explicit: String?, environment: [String: String]) -> [String] {
        if let explicit, !explicit.isEmpty { return [explicit] }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            var seen = Set<String>()
            return list.split(separator: ":").map(String.init).filter { !$0.isEmpty && seen.insert($0).inserted }
        }
        let home = environment["HOME"] ?? "/root"
        return ["\(home)/.kube/config"]
    }

    /// Loads and merges. An explicit `--kubeconfig` must exist; files of `$KUBECONFIG` that don't are skipped.
    public static func load(explicit: String?, environment: [String: String]) throws -> KubeConfig {
        let files = paths(explicit: explicit, environment: environment)
        var configs: [KubeConfig] = []
        for file in files {
            guard let text = FileIO.readText(file) else {
                if explicit != nil { throw KubeConfigError("kubeconfig \(file) cannot be read — check the --kubeconfig path") }
                continue
            }
            do { configs.append(try parse(text, directory: FileIO.directory(of: file))) }
            catch { throw KubeConfigError("kubeconfig \(file) is not valid: \(error)") }
        }
        return merge(configs)
    }

    mutating func resolvePaths(relativeTo directory: String) {
        func resolve(_ path: inout String?) {
            guard let p = path, !p.isEmpty else { return }
            if p.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] { path = home + p.dropFirst(1) }
            else if !p.hasPrefix("/") { path = directory + "/" + p }
        }
        for i in clusters.indices { resolve(&clusters[i].value.certificateAuthority) }
        for i in users.indices {
            resolve(&users[i].value.clientCertificate)
            resolve(&users[i].value.clientKey)
            resolve(&users[i].value.tokenFile)
            // kubectl resolves a relative exec command only when it contains a path separator.
            if let command = users[i].value.exec?.command, command.contains("/"), !command.hasPrefix("/") {
                users[i].value.exec?.command = directory + "/" + command
            }
        }
    }
}

public struct KubeConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
