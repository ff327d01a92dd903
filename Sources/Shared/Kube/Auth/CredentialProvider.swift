#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// What the client presents on each request: a bearer token and/or a client certificate.
public struct PresentedCredential: Sendable, Equatable {
    public var authorization: String?
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
}

/// Produces the current credential, caching it the way client-go does: a token file is re-read every
/// minute (bound service-account tokens rotate), an exec plugin's output is kept until its
/// `expirationTimestamp` and fetched again after a 401. Concurrent callers share one fetch, so a
/// burst of requests runs an exec plugin once, not once each.
public actor CredentialProvider {
    typealias Fetched = (value: PresentedCredential, validUntil: Date?)
    private let credential: ClientConfiguration.Credential
    private let clusterInfo: JSONValue?
    private let environment: [String: String]
    private let now: @Sendable () -> Date
    /// How long one exec plugin run may take before it is killed and the callers get an error.
    private let execTimeout: Duration
    private var cached: Fetched?
    /// The fetch every caller awaits while it runs.
    private var inFlight: Task<Fetched, any Error>?

    static let tokenFileRefresh: TimeInterval = 60

    public init(
        credential: ClientConfiguration.Credential, clusterInfo: JSONValue? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        now: @escaping @Sendable () -> Date = { Date() },
        execTimeout: Duration = .seconds(120)
    ) {
        self.credential = credential
        self.clusterInfo = clusterInfo
        self.environment = environment
        self.now = now
        self.execTimeout = execTimeout
    }

    public func current() async throws -> PresentedCredential {
        if let cached, cached.validUntil.map({ now() < $0 }) ?? true { return cached.value }
        let fetch = inFlight ?? startFetch()
        return try await fetch.value.value
    }

    private func startFetch() -> Task<Fetched, any Error> {
        // Not a child of any one caller, whose cancellation must not fail the others. It runs on this
        // actor, so it caches its result and clears itself in one step; a failure is not cached.
        let fetch = Task {
            defer { inFlight = nil }
            let fresh = try await self.fetch()
            cached = fresh
            return fresh
        }
        inFlight = fetch
        return fetch
    }

    /// After a 401: forget the cached credential so the next request fetches a new one.
    /// Returns whether a retry can present something different.
    public func invalidate() -> Bool {
        // A fetch in flight started after this credential was handed out, so it is kept.
        cached = nil
        switch credential {
        case .exec, .tokenFile: return true
        default: return false
        }
    }

    private func fetch() async throws -> Fetched {
        switch credential {
        case .none:
            return (PresentedCredential(), nil)
        case .token(let token):
            return (PresentedCredential(authorization: "Bearer \(token)"), nil)
        case .basic(let user, let password):
            let encoded = Data("\(user):\(password)".utf8).base64EncodedString()
            return (PresentedCredential(authorization: "Basic \(encoded)"), nil)
        case .tokenFile(let path):
            guard let token = FileIO.readText(path)?.trimmingWhitespace, !token.isEmpty else {
                throw KubeConfigError("cannot read the token file \(path)")
            }
            return (PresentedCredential(authorization: "Bearer \(token)"), now().addingTimeInterval(Self.tokenFileRefresh))
        case .exec(let exec):
            return try await runExec(exec)
        }
    }

    private func runExec(_ exec: KubeConfig.ExecConfig) async throws -> (value: PresentedCredential, validUntil: Date?) {
        let apiVersion = exec.apiVersion ?? "client.authentication.k8s.io/v1"
        guard apiVersion == "client.authentication.k8s.io/v1" || apiVersion == "client.authentication.k8s.io/v1beta1" else {
            throw KubeConfigError("exec plugin \(exec.command): apiVersion \(apiVersion) is not supported (use client.authentication.k8s.io/v1)")
        }
        let interactive = exec.interactiveMode != "Never" && isatty(0) != 0
        var spec: JSONValue = ["interactive": .bool(interactive)]
        if exec.provideClusterInfo == true, let clusterInfo { spec["cluster"] = clusterInfo }
        let info: JSONValue = ["apiVersion": .string(apiVersion), "kind": "ExecCredential", "spec": spec]
        var env = environment
        for variable in exec.env ?? [] { env[variable.name] = variable.value }
        env["KUBERNETES_EXEC_INFO"] = info.jsonString()

        let result: ProcessRunner.Result
        do {
            result = try await ProcessRunner.run(exec.command, arguments: exec.args ?? [], environment: env,
                                                 inheritStdin: interactive, timeout: execTimeout)
        } catch ProcessRunner.Failure.timedOut {
            throw KubeConfigError("exec plugin \(exec.command) did not finish within \(execTimeout)")
        } catch ProcessRunner.Failure.notFound {
            var message = "exec plugin: executable \(exec.command) not found"
            if let hint = exec.installHint?.trimmingWhitespace, !hint.isEmpty { message += " — \(hint)" }
            throw KubeConfigError(message)
        }
        guard result.status == 0 else {
            throw KubeConfigError("exec plugin \(exec.command) failed with exit code \(result.status)")
        }
        let output: ExecCredential
        do { output = try JSONValue.parse(Data(result.stdout)).decode() } catch {
            throw KubeConfigError("exec plugin \(exec.command) printed something that is not an ExecCredential")
        }
        guard let status = output.status else { throw KubeConfigError("exec plugin \(exec.command) returned no status") }
        var presented = PresentedCredential()
        if let token = status.token, !token.isEmpty { presented.authorization = "Bearer \(token)" }
        if let cert = status.clientCertificateData, let key = status.clientKeyData {
            presented.clientCertificate = Array(cert.utf8)
            presented.clientKey = Array(key.utf8)
        }
        guard presented.authorization != nil || presented.clientCertificate != nil else {
            throw KubeConfigError("exec plugin \(exec.command) returned neither a token nor a client certificate")
        }
        let expiry = status.expirationTimestamp.flatMap(RFC3339.parse)
        return (presented, expiry)
    }

    struct ExecCredential: Codable {
        var apiVersion: String?
        var kind: String?
        var status: Status?
        struct Status: Codable {
            var token: String?
            var clientCertificateData: String?
            var clientKeyData: String?
            var expirationTimestamp: String?
        }
    }
}
