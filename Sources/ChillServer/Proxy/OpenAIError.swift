import NIOCore
import NIOHTTP1
import Shared

/// Errors in the shape OpenAI clients parse: `{"error":{"message","type","code"}}`.
struct OpenAIError: Sendable {
    var status: HTTPResponseStatus
    var message: String
    var type: String
    var code: String
    var retryAfterSeconds: Int?

    var body: [UInt8] {
        let value: JSONValue = ["error": ["message": .string(message), "type": .string(type), "code": .string(code)]]
        return Array(value.jsonString().utf8) + [UInt8(ascii: "\n")]
    }

    var headers: HTTPHeaders {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if let retryAfterSeconds { headers.add(name: "retry-after", value: String(retryAfterSeconds)) }
        return headers
    }

    static func wakeFailed(_ failure: WakeFailure, model: String) -> OpenAIError {
        switch failure {
        case .timedOut:
            OpenAIError(status: .serviceUnavailable, message: "model \(model): \(failure)", type: "service_unavailable", code: "model_wake_timeout", retryAfterSeconds: 30)
        case .backend(let backend):
            OpenAIError(status: .serviceUnavailable, message: "model \(model): \(failure)", type: "service_unavailable", code: backendCode(backend), retryAfterSeconds: 30)
        case .stopped:
            OpenAIError(status: .serviceUnavailable, message: "model \(model): \(failure)", type: "service_unavailable", code: "model_stopped", retryAfterSeconds: 10)
        }
    }

    private static func backendCode(_ failure: BackendFailure) -> String {
        // `CrashLoopBackOff` → `model_crash_loop_back_off`: stable and greppable.
        var code = "model_"
        for (i, c) in failure.reason.enumerated() {
            if c.isUppercase, i > 0 { code += "_" }
            code += c.lowercased()
        }
        return code
    }

    static func tooManyHeld(limit: Int, model: String) -> OpenAIError {
        OpenAIError(
            status: .tooManyRequests, message: "model \(model) is waking and already holds \(limit) requests; retry shortly",
            type: "rate_limit_error", code: "too_many_held_requests", retryAfterSeconds: 5)
    }

    static func backendUnavailable(model: String, detail: String) -> OpenAIError {
        OpenAIError(status: .serviceUnavailable, message: "model \(model) is not reachable: \(detail)", type: "service_unavailable", code: "backend_unavailable", retryAfterSeconds: 5)
    }

    /// The backend closed the connection (or failed) after it was sent the request, before answering.
    static func backendClosed(model: String, detail: String) -> OpenAIError {
        OpenAIError(status: .badGateway, message: "model \(model): \(detail)", type: "api_error", code: "backend_closed_connection")
    }

    static func upstreamTimeout(model: String, after: TimeAmount) -> OpenAIError {
        OpenAIError(
            status: .gatewayTimeout, message: "model \(model) sent no response within \(after.nanoseconds / 1_000_000_000) s (--upstream-response-timeout)",
            type: "api_error", code: "upstream_timeout")
    }

    static func bodyTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(status: .payloadTooLarge, message: "request body exceeds \(limit) bytes (--max-body-size)", type: "invalid_request_error", code: "request_too_large")
    }

    static func notFound(_ path: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "no route for \(path)", type: "invalid_request_error", code: "not_found")
    }

    static let invalidAPIKey = OpenAIError(
        status: .unauthorized, message: "a valid API key is required: send Authorization: Bearer <key>", type: "invalid_request_error", code: "invalid_api_key")

    static func unknownModel(_ name: String, available: [String]) -> OpenAIError {
        let list = available.isEmpty ? "none are served yet (kubectl chill create NAME --model ORG/MODEL)" : available.joined(separator: ", ")
        return OpenAIError(
            status: .notFound, message: "The model `\(name)` does not exist. Available models: \(list)", type: "invalid_request_error", code: "model_not_found")
    }

    static func noActiveModel(available: [String]) -> OpenAIError {
        let list = available.isEmpty ? "none" : available.joined(separator: ", ")
        return OpenAIError(
            status: .badRequest, message: "the request names no model and no model is active: set \"model\" to one of: \(list)", type: "invalid_request_error", code: "model_required")
    }

    static let invalidModelField = OpenAIError(
        status: .badRequest, message: "\"model\" must be a string naming a served model", type: "invalid_request_error", code: "invalid_model")

    static let malformedBody = OpenAIError(
        status: .badRequest, message: "the request body is not valid JSON: it ends before the object does", type: "invalid_request_error", code: "invalid_json")

    static func heldBytesExhausted(limit: Int) -> OpenAIError {
        OpenAIError(
            status: .tooManyRequests, message: "too many request bytes are already held while models wake (\(limit) bytes, --max-held-bytes); retry shortly",
            type: "rate_limit_error", code: "held_bytes_exhausted", retryAfterSeconds: 5)
    }

    static func modelSwitching(_ model: String, detail: String) -> OpenAIError {
        OpenAIError(status: .serviceUnavailable, message: "model \(model): \(detail)", type: "service_unavailable", code: "model_switching", retryAfterSeconds: 30)
    }

    static let unauthorized = OpenAIError(
        status: .unauthorized, message: "this endpoint needs the admin token: send Authorization: Bearer <token>", type: "authentication_error", code: "invalid_admin_token")

    static func methodNotAllowed(_ method: HTTPMethod, _ path: String) -> OpenAIError {
        OpenAIError(status: .methodNotAllowed, message: "\(method.rawValue) is not allowed on \(path)", type: "invalid_request_error", code: "method_not_allowed")
    }

    static let headersTooLarge = OpenAIError(
        status: .requestHeaderFieldsTooLarge, message: "the request headers exceed 80 KB", type: "invalid_request_error", code: "request_headers_too_large")

    static func unparsableRequest(_ detail: String) -> OpenAIError {
        OpenAIError(status: .badRequest, message: "the request is not valid HTTP/1.1 (\(detail))", type: "invalid_request_error", code: "invalid_http")
    }

    /// A request whose head was still incomplete when the idle timeout closed the connection.
    static let requestHeadTimeout = OpenAIError(
        status: .requestTimeout, message: "the request headers did not arrive in time (--idle-connection-timeout)", type: "invalid_request_error", code: "request_timeout")

    static func requestBodyTimeout(after: TimeAmount) -> OpenAIError {
        OpenAIError(status: .requestTimeout, message: "the request body stopped arriving: nothing for \(after.nanoseconds / 1_000_000_000) s (--body-read-timeout)",
                    type: "invalid_request_error", code: "request_timeout")
    }

    static let shuttingDown = OpenAIError(
        status: .serviceUnavailable, message: "chill-server is shutting down", type: "service_unavailable", code: "shutting_down", retryAfterSeconds: 1)
}
