/// `metav1.Status`: the body of every API error, and of an immediate DELETE.
public struct KubeStatus: Codable, Sendable, Hashable {
    public var kind: String?
    public var apiVersion: String?
    public var status: String?
    public var message: String?
    public var reason: String?
    public var details: Details?
    public var code: Int?

    public struct Details: Codable, Sendable, Hashable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var uid: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }

    public struct Cause: Codable, Sendable, Hashable {
        public var reason: String?
        public var message: String?
        public var field: String?
    }

    public init(status: String? = nil, message: String? = nil, reason: String? = nil, code: Int? = nil, details: Details? = nil) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
        self.details = details
    }
}

/// An error from the API server, typed by its `Status` reason, or a failure to reach it.
public struct KubeError: Error, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case notFound = "NotFound"
        case alreadyExists = "AlreadyExists"
        case conflict = "Conflict"
        case invalid = "Invalid"
        case forbidden = "Forbidden"
        case unauthorized = "Unauthorized"
        case badRequest = "BadRequest"
        case gone = "Gone"
        case expired = "Expired"
        case timeout = "Timeout"
        case serverTimeout = "ServerTimeout"
        case tooManyRequests = "TooManyRequests"
        case methodNotAllowed = "MethodNotAllowed"
        case unsupportedMediaType = "UnsupportedMediaType"
        case internalError = "InternalError"
        case serviceUnavailable = "ServiceUnavailable"
        case unknown = ""
    }

    /// HTTP status code, 0 when the server was not reached.
    public var code: Int
    public var reason: Reason
    public var message: String
    public var status: KubeStatus?
    /// Set when the request never got an HTTP answer (DNS, TCP, TLS, timeout).
    public var transport: TransportError?

    public init(code: Int, reason: Reason, message: String, status: KubeStatus? = nil, transport: TransportError? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status
        self.transport = transport
    }

    /// Builds the error from a non-2xx response, as client-go's `errors.FromObject` does.
    public static func fromResponse(code: Int, body: [UInt8]) -> KubeError {
        if let status = try? JSONValue.parse(Data(body)).decode(as: KubeStatus.self), status.kind == "Status" {
            return KubeError(
                code: status.code ?? code, reason: Reason(rawValue: status.reason ?? "") ?? reason(forCode: code),
                message: status.message ?? "HTTP \(code)", status: status)
        }
        let text = String(decoding: body, as: UTF8.self).trimmingWhitespace
        return KubeError(code: code, reason: reason(forCode: code), message: text.isEmpty ? "HTTP \(code)" : text)
    }

    static func reason(forCode code: Int) -> Reason {
        switch code {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 409: .conflict
        case 410: .gone
        case 415: .unsupportedMediaType
        case 422: .invalid
        case 429: .tooManyRequests
        case 500: .internalError
        case 503: .serviceUnavailable
        case 504: .timeout
        default: .unknown
        }
    }

    public var isNotFound: Bool { reason == .notFound }
    public var isConflict: Bool { reason == .conflict }
    public var isAlreadyExists: Bool { reason == .alreadyExists }
    /// 410: the resourceVersion is too old (a watch's ERROR event says `Expired`, a LIST says `Gone`).
    public var isGone: Bool { code == 410 || reason == .expired || reason == .gone }
    public var causes: [KubeStatus.Cause] { status?.details?.causes ?? [] }

    public var description: String {
        if let transport { return transport.description }
        return message
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
