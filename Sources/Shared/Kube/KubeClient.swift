import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one Kubernetes client of chill: sends requests with the current credential, turns error
/// answers into `KubeError`, and hands out typed `KubeAPI<R>` views.
public final class KubeClient: Sendable {
    public let configuration: ClientConfiguration
    /// The default namespace: the context's, or `-n`.
    public let namespace: String
    private let credentials: CredentialProvider
    /// Replaced when an exec plugin hands out a client certificate.
    private let transport: Mutex<(CurlTransport, PresentedCredential?)>
    public let userAgent: String
    /// Whether the API server has been answering; its recoveries end outages early for whoever waits.
    public let reachability = Reachability()

    public init(configuration: ClientConfiguration, namespace: String? = nil, userAgent: String = "chill/\(ChillVersion.current)") {
        self.configuration = configuration
        self.namespace = namespace ?? configuration.namespace
        self.credentials = CredentialProvider(credential: configuration.credential, clusterInfo: configuration.clusterInfo)
        self.transport = Mutex((CurlTransport(settings: configuration.transport), nil))
        self.userAgent = userAgent
    }

    public var server: String { configuration.transport.server }

    public func api<R: KubeResource>(_ type: R.Type, namespace: String? = nil) -> KubeAPI<R> {
        KubeAPI(client: self, namespace: R.isNamespaced ? (namespace ?? self.namespace) : nil)
    }

    public func untyped(_ type: ResourceType, namespace: String? = nil) -> UntypedAPI {
        UntypedAPI(client: self, type: type, namespace: type.isNamespaced ? (namespace ?? self.namespace) : nil)
    }

    // MARK: - Requests

    /// Sends one request; retries once with a fresh credential after a 401 when the credential can change.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var response = try await sendOnce(request)
        if response.status == 401, await credentials.invalidate() {
            response = try await sendOnce(request)
        }
        guard (200..<300).contains(response.status) else {
            throw KubeError.fromResponse(code: response.status, body: response.body)
        }
        return response
    }

    /// Opens a streaming response (watch). Non-2xx answers throw `KubeError`.
    public func stream(_ request: HTTPRequest, timeout: Duration?) async throws -> ResponseBody {
        do {
            return try await streamOnce(request, timeout: timeout)
        } catch let error as KubeError where error.code == 401 {
            guard await credentials.invalidate() else { throw error }
            return try await streamOnce(request, timeout: timeout)
        }
    }

    private func sendOnce(_ request: HTTPRequest) async throws -> HTTPResponse {
        let (authorized, transport) = try await prepare(request)
        do {
            let response = try await transport.send(authorized)
            reachability.recordAnswer()
            return response
        } catch let error as TransportError {
            reachability.recordFailure(error)
            throw KubeError(code: 0, reason: .unknown, message: error.description, transport: error)
        }
    }

    private func streamOnce(_ request: HTTPRequest, timeout: Duration?) async throws -> ResponseBody {
        let (authorized, transport) = try await prepare(request)
        do {
            let body = try await transport.stream(authorized, timeout: timeout)
            reachability.recordAnswer()
            return body
        } catch let error as TransportError {
            reachability.recordFailure(error)
            throw KubeError(code: 0, reason: .unknown, message: error.description, transport: error)
        } catch let error as KubeError {
            reachability.recordAnswer()  // a non-2xx head: the server answered
            throw error
        }
    }

    private func prepare(_ request: HTTPRequest) async throws -> (HTTPRequest, CurlTransport) {
        let credential = try await credentials.current()
        var request = request
        if let authorization = credential.authorization { request.headers.append(("Authorization", authorization)) }
        request.headers.append(("User-Agent", userAgent))
        if !request.headers.contains(where: { $0.name == "Accept" }) { request.headers.append(("Accept", "application/json")) }
        return (request, transport(for: credential))
    }

    private func transport(for credential: PresentedCredential) -> CurlTransport {
        transport.withLock { current in
            guard let cert = credential.clientCertificate, current.1 != credential else { return current.0 }
            var settings = configuration.transport
            settings.clientCertificateData = cert
            settings.clientKeyData = credential.clientKey
            settings.clientCertificateFile = nil
            settings.clientKeyFile = nil
            current = (CurlTransport(settings: settings), credential)
            return current.0
        }
    }

    // MARK: - JSON helpers

    func sendJSON<T: Decodable>(
        _ method: String, _ path: String, body: JSONValue? = nil, contentType: String = "application/json", as: T.Type
    ) async throws -> T {
        var headers: [(name: String, value: String)] = []
        var bytes: [UInt8]? = nil
        if let body {
            headers.append(("Content-Type", contentType))
            bytes = Array(try body.jsonData())
        }
        let response = try await send(HTTPRequest(method: method, path: path, headers: headers, body: bytes))
        do { return try JSONDecoder().decode(T.self, from: Data(response.body)) } catch {
            throw KubeError(code: response.status, reason: .unknown, message: "cannot decode the answer to \(method) \(path): \(error)")
        }
    }

    /// `GET /version`: the cheapest way to check the cluster is reachable.
    public func serverVersion() async throws -> JSONValue {
        try await sendJSON("GET", "/version", as: JSONValue.self)
    }
}
