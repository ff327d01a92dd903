import Foundation
import Shared

/// A failed request, rendered as a `Status` body exactly like kube-apiserver's.
struct APIError: Error, Sendable {
    var code: Int
    var body: JSONValue
    var headers: [(String, String)] = []
    /// `404 page not found` (text/plain) instead of a Status.
    var plainNotFound = false

    static func status(code: Int, reason: String?, message: String, details: JSONValue? = nil,
                       metadata: JSONValue = .object([:])) -> APIError {
        var o: [String: JSONValue] = [
            "kind": "Status", "apiVersion": "v1", "metadata": metadata, "status": "Failure",
            "message": .string(message), "code": .int(code),
        ]
        if let reason { o["reason"] = .string(reason) }
        if let details { o["details"] = details }
        return APIError(code: code, body: .object(o))
    }

    static func details(_ rt: ResourceType, name: String?, kind: String? = nil) -> JSONValue {
        var d: [String: JSONValue] = ["kind": .string(kind ?? rt.plural)]
        if let name { d["name"] = .string(name) }
        if !rt.group.isEmpty { d["group"] = .string(rt.group) }
        return .object(d)
    }

    static let pageNotFound = APIError(code: 404, body: .null, plainNotFound: true)

    static func notFound(_ rt: ResourceType, _ name: String) -> APIError {
        status(code: 404, reason: "NotFound", message: "\(rt.qualifiedPlural) \"\(name)\" not found",
               details: details(rt, name: name))
    }

    static func alreadyExists(_ rt: ResourceType, _ name: String) -> APIError {
        status(code: 409, reason: "AlreadyExists", message: "\(rt.qualifiedPlural) \"\(name)\" already exists",
               details: details(rt, name: name))
    }

    static func conflict(_ rt: ResourceType, _ name: String) -> APIError {
        status(code: 409, reason: "Conflict",
               message: "Operation cannot be fulfilled on \(rt.qualifiedPlural) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
               details: details(rt, name: name))
    }

    static func badRequest(_ message: String) -> APIError {
        status(code: 400, reason: "BadRequest", message: message)
    }

    static func methodNotSupported(_ rt: ResourceType, _ verb: String) -> APIError {
        status(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource",
               details: .object(["kind": .string(rt.plural)].merging(rt.group.isEmpty ? [:] : ["group": .string(rt.group)]) { a, _ in a }))
    }

    /// 422 Invalid, `Kind.group "name" is invalid: field: message` (several causes are bracketed).
    static func invalid(kind: String, group: String, name: String, causes: [Cause], detailsKind: String? = nil,
                        messagePrefix: String? = nil) -> APIError {
        let parts = causes.map { "\($0.field): \($0.message)" }
        let summary = parts.count == 1 ? parts[0] : "[" + parts.joined(separator: ", ") + "]"
        let qualified = messagePrefix ?? (group.isEmpty ? kind : "\(kind).\(group)")
        var d: [String: JSONValue] = ["kind": .string(detailsKind ?? kind)]
        if !name.isEmpty { d["name"] = .string(name) }
        if !group.isEmpty { d["group"] = .string(group) }
        d["causes"] = .array(causes.map { .object(["reason": .string($0.reason), "message": .string($0.message), "field": .string($0.field)]) })
        return status(code: 422, reason: "Invalid", message: "\(qualified) \"\(name)\" is invalid: \(summary)", details: .object(d))
    }

    static func invalid(_ rt: ResourceType, name: String, causes: [Cause]) -> APIError {
        invalid(kind: rt.kind, group: rt.group, name: name, causes: causes)
    }

    static let unauthorized = status(code: 401, reason: "Unauthorized", message: "Unauthorized")

    /// `secrets "x" is forbidden: User "u" cannot get resource "secrets" in API group "" in the namespace "ns"`
    static func forbidden(user: String, verb: String, rt: ResourceType?, resourceName: String, group: String,
                          name: String?, namespace: String?, subresource: String?) -> APIError {
        let qualified = group.isEmpty ? resourceName : "\(resourceName).\(group)"
        let target = name.map { "\(qualified) \"\($0)\"" } ?? qualified
        let resource = subresource.map { "\(resourceName)/\($0)" } ?? resourceName
        let scope = namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
        var d: [String: JSONValue] = ["kind": .string(resourceName)]
        if let name { d["name"] = .string(name) }
        if !group.isEmpty { d["group"] = .string(group) }
        return status(code: 403, reason: "Forbidden",
                      message: "\(target) is forbidden: User \"\(user)\" cannot \(verb) resource \"\(resource)\" in API group \"\(group)\" \(scope)",
                      details: .object(d))
    }

    static let jsonPatchRejected = status(code: 422, reason: "Invalid",
                                          message: "the server rejected our request due to an error in our request",
                                          details: .object([:]))
    static let unsupportedMediaType = status(code: 415, reason: "UnsupportedMediaType", message: "415: Unsupported Media Type",
                                             details: .object([:]))
    static let strategicMergeOnCustomResource = status(
        code: 415, reason: "UnsupportedMediaType",
        message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")

    static func tooOldResourceVersion(_ rv: Int, oldest: Int) -> JSONValue {
        APIError.status(code: 410, reason: "Expired", message: "too old resource version: \(rv) (\(oldest))").body
    }

    static func expiredContinue(newToken: String) -> APIError {
        status(code: 410, reason: "Expired",
               message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
               metadata: .object(["continue": .string(newToken)]))
    }

    static func internalError(_ message: String) -> APIError {
        status(code: 500, reason: "InternalError", message: message)
    }
}
