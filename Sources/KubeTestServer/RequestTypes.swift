import Foundation
import Shared

/// An HTTP response from the test server (also what in-process `handle` returns).
public struct KubeResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data

    public init(status: Int, headers: [(String, String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: JSONValue? { try? JSONValue.parse(body) }
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    static func json(_ status: Int, _ value: JSONValue, sorted: Bool = false) -> KubeResponse {
        KubeResponse(status: status, headers: [("Content-Type", "application/json")], body: KubeJSON.encode(value, sorted: sorted))
    }

    static func error(_ e: APIError) -> KubeResponse {
        if e.plainNotFound {
            return KubeResponse(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
                                body: Data("404 page not found\n".utf8))
        }
        var r = json(e.code, e.body)
        r.headers += e.headers
        return r
    }
}

/// One request as the server saw it, for assertions in tests.
public struct RecordedRequest: Sendable {
    public var method: String
    /// Path plus query string, exactly as sent.
    public var path: String
    public var headers: [(String, String)]
    public var body: Data
    /// The authenticated user name (`system:anonymous` when there were no credentials; nil when authentication failed).
    public var user: String?
    public var status: Int

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// What the authorizer hook is asked about.
public struct AuthorizationAttributes: Sendable, Hashable {
    /// get, list, watch, create, update, patch, delete, deletecollection
    public var verb: String
    public var group: String
    public var resource: String
    public var subresource: String?
    public var namespace: String?
    public var name: String?
}
