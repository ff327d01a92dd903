/// One HTTP exchange with the API server, independent of libcurl.
public struct HTTPRequest: Sendable {
    public var method: String
    /// Path and query, e.g. `/api/v1/namespaces/default/pods?limit=10`.
    public var path: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?

    public init(method: String, path: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.name.lowercased() == lower })?.value
    }
}

/// A failure before any HTTP answer: the cluster could not be reached or the TLS handshake failed.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var curlCode: Int
    public var detail: String

    public var isConnectionRefused: Bool { curlCode == 7 }
    public var isTimeout: Bool { curlCode == 28 }
    public var isCancelled: Bool { curlCode == 42 }
    public var description: String { "cannot reach \(url): \(detail)" }
}

/// TLS and connection settings for one API server, as a kubeconfig cluster + user describe them.
public struct TransportSettings: Sendable {
    public var server: String
    public var caData: [UInt8]?
    public var caFile: String?
    public var clientCertificateData: [UInt8]?
    public var clientCertificateFile: String?
    public var clientKeyData: [UInt8]?
    public var clientKeyFile: String?
    public var insecureSkipTLSVerify = false
    /// Verify the server certificate (and send SNI) for this name instead of the URL's host.
    public var tlsServerName: String?
    public var proxyURL: String?
    public var connectTimeout: Duration = .seconds(10)
    /// Overall limit for one non-watch request (kubectl's `--request-timeout`); nil means none.
    public var requestTimeout: Duration? = .seconds(60)

    public init(server: String) { self.server = server }
}
