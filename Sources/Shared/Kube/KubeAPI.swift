#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An object the client can send and receive: a typed `KubeResource` or an untyped `JSONValue`.
public protocol KubeObject: Codable, Sendable {
    var objectName: String? { get }
}

extension JSONValue: KubeObject {
    public var objectName: String? { self[path: "metadata", "name"]?.stringValue }
    public var resourceVersion: String? { self[path: "metadata", "resourceVersion"]?.stringValue }
}

extension KubeResource {
    public var objectName: String? { metadata.name }
}

/// Typed access to one resource type, in one namespace or cluster-wide (kube-rs's `Api<K>`).
public typealias KubeAPI<R: KubeResource> = ResourceAPI<R>
/// The same verbs for resource types chill has no struct for.
public typealias UntypedAPI = ResourceAPI<JSONValue>

public struct ResourceAPI<Object: KubeObject>: Sendable {
    public let client: KubeClient
    public let type: ResourceType
    /// nil: cluster-scoped, or all namespaces for list and watch.
    public let namespace: String?

    init(client: KubeClient, type: ResourceType, namespace: String?) {
        self.client = client
        self.type = type
        self.namespace = namespace
    }

    public func path(_ name: String? = nil, subresource: String? = nil) -> String {
        type.path(namespace: namespace, name: name, subresource: subresource)
    }

    // MARK: Read

    public func get(_ name: String) async throws -> Object {
        try await client.sendJSON("GET", path(name), as: Object.self)
    }

    /// nil when the object doesn't exist.
    public func getIfExists(_ name: String) async throws -> Object? {
        do { return try await get(name) } catch let error as KubeError where error.isNotFound { return nil }
    }

    /// One page. Follow `metadata.continue` for the next, or use `listAll`.
    public func list(_ options: ListOptions = ListOptions()) async throws -> KubeList<Object> {
        try await client.sendJSON("GET", path() + options.query, as: KubeList<Object>.self)
    }

    /// Every page, with the list's resourceVersion (to start a watch from).
    public func listAll(_ options: ListOptions = ListOptions()) async throws -> KubeList<Object> {
        var options = options
        if options.limit == nil { options.limit = 500 }
        var page = try await list(options)
        var items = page.items
        while let token = page.metadata.continue, !token.isEmpty {
            options.continueToken = token
            page = try await list(options)
            items += page.items
        }
        page.items = items
        page.metadata.continue = nil
        return page
    }

    // MARK: Write

    public func create(_ object: Object, dryRun: Bool = false, fieldManager: String? = nil) async throws -> Object {
        let query = WriteQuery(dryRun: dryRun, fieldManager: fieldManager).string
        return try await client.sendJSON("POST", path() + query, body: try body(object), as: Object.self)
    }

    /// PUT: replaces the object; fails with 409 Conflict when its resourceVersion is stale.
    public func replace(_ object: Object, dryRun: Bool = false) async throws -> Object {
        let name = try requireName(object)
        return try await client.sendJSON("PUT", path(name) + WriteQuery(dryRun: dryRun).string, body: try body(object), as: Object.self)
    }

    /// PUT on `/status`: only status changes.
    public func replaceStatus(_ object: Object) async throws -> Object {
        let name = try requireName(object)
        return try await client.sendJSON("PUT", path(name, subresource: "status"), body: try body(object), as: Object.self)
    }

    public func patch(_ name: String, _ patch: JSONValue, type patchType: PatchType = .merge, subresource: String? = nil, dryRun: Bool = false) async throws -> Object {
        try await client.sendJSON(
            "PATCH", path(name, subresource: subresource) + WriteQuery(dryRun: dryRun).string,
            body: patch, contentType: patchType.contentType, as: Object.self)
    }

    public func patchStatus(_ name: String, _ patch: JSONValue, type patchType: PatchType = .merge) async throws -> Object {
        try await self.patch(name, patch, type: patchType, subresource: "status")
    }

    /// Server-side apply: creates or updates the fields `fieldManager` owns.
    public func apply(_ object: JSONValue, fieldManager: String, force: Bool = false, dryRun: Bool = false, subresource: String? = nil) async throws -> Object {
        guard let name = object.objectName else { throw KubeError(code: 0, reason: .invalid, message: "apply needs metadata.name") }
        var body = object
        if body["apiVersion"] == nil { body["apiVersion"] = .string(type.apiVersion) }
        if body["kind"] == nil { body["kind"] = .string(type.kind) }
        let query = WriteQuery(dryRun: dryRun, fieldManager: fieldManager, force: force).string
        return try await client.sendJSON("PATCH", path(name, subresource: subresource) + query, body: body, contentType: PatchType.apply.contentType, as: Object.self)
    }

    /// Deletes; returns the object when it survives for now (finalizers, Foreground, graceful pods), nil when gone.
    @discardableResult
    public func delete(_ name: String, propagationPolicy: PropagationPolicy? = nil, gracePeriodSeconds: Int? = nil, preconditionUID: String? = nil, dryRun: Bool = false) async throws -> Object? {
        var options: JSONValue = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let propagationPolicy { options["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        if let gracePeriodSeconds { options["gracePeriodSeconds"] = .int(gracePeriodSeconds) }
        if let preconditionUID { options["preconditions"] = ["uid": .string(preconditionUID)] }
        if dryRun { options["dryRun"] = ["All"] }
        let response: JSONValue = try await client.sendJSON("DELETE", path(name), body: options, as: JSONValue.self)
        if response["kind"]?.stringValue == "Status" { return nil }
        return try response.decode(as: Object.self)
    }

    /// Deletes, treating an already-missing object as done.
    public func deleteIfExists(_ name: String, propagationPolicy: PropagationPolicy? = nil) async throws {
        do { try await delete(name, propagationPolicy: propagationPolicy) } catch let error as KubeError where error.isNotFound {}
    }

    // MARK: Helpers

    func body(_ object: Object) throws -> JSONValue {
        var value = try JSONValue(encoding: object)
        if value["apiVersion"] == nil { value["apiVersion"] = .string(type.apiVersion) }
        if value["kind"] == nil { value["kind"] = .string(type.kind) }
        return value
    }

    private func requireName(_ object: Object) throws -> String {
        guard let name = object.objectName, !name.isEmpty else {
            throw KubeError(code: 0, reason: .invalid, message: "\(type.kind) has no metadata.name")
        }
        return name
    }
}

extension ResourceAPI where Object: KubeResource {
    init(client: KubeClient, namespace: String?) {
        self.init(client: client, type: Object.resourceType, namespace: namespace)
    }

    /// Read-modify-write that survives concurrent writers: on 409 it reads again and re-applies `mutate`
    /// (client-go's `RetryOnConflict`).
    @discardableResult
    public func update(_ name: String, status: Bool = false, attempts: Int = 5, _ mutate: @Sendable (inout Object) throws -> Void) async throws -> Object {
        try await retryOnConflict(attempts: attempts) {
            var object = try await get(name)
            try mutate(&object)
            return status ? try await replaceStatus(object) : try await replace(object)
        }
    }
}

// MARK: - The scale subresource

extension ResourceAPI {
    public func getScale(_ name: String) async throws -> Scale {
        try await client.sendJSON("GET", path(name, subresource: "scale"), as: Scale.self)
    }

    /// Sets `spec.replicas` through `/scale` with a merge patch: no read, no conflict with other writers.
    @discardableResult
    public func scale(_ name: String, replicas: Int) async throws -> Scale {
        try await client.sendJSON(
            "PATCH", path(name, subresource: "scale"), body: ["spec": ["replicas": .int(replicas)]],
            contentType: PatchType.merge.contentType, as: Scale.self)
    }
}

/// client-go's `retry.RetryOnConflict`: runs `body` again while it fails with 409 Conflict.
public func retryOnConflict<T: Sendable>(attempts: Int = 5, _ body: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
        do { return try await body() } catch let error as KubeError where error.isConflict && attempt + 1 < attempts {
            attempt += 1
            try await Task.sleep(for: .milliseconds(10 * (1 << min(attempt, 6))))
        }
    }
}

// MARK: - Options

public struct ListOptions: Sendable, Equatable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?
    public var resourceVersionMatch: String?
    public var timeoutSeconds: Int?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }

    var items: [(String, String)] {
        var q: [(String, String)] = []
        if let labelSelector { q.append(("labelSelector", labelSelector)) }
        if let fieldSelector { q.append(("fieldSelector", fieldSelector)) }
        if let limit { q.append(("limit", String(limit))) }
        if let continueToken { q.append(("continue", continueToken)) }
        if let resourceVersion { q.append(("resourceVersion", resourceVersion)) }
        if let resourceVersionMatch { q.append(("resourceVersionMatch", resourceVersionMatch)) }
        if let timeoutSeconds { q.append(("timeoutSeconds", String(timeoutSeconds))) }
        return q
    }

    var query: String { QueryString.build(items) }
}

public enum PatchType: Sendable {
    case merge, jsonPatch, strategicMerge, apply

    public var contentType: String {
        switch self {
        case .merge: "application/merge-patch+json"
        case .jsonPatch: "application/json-patch+json"
        case .strategicMerge: "application/strategic-merge-patch+json"
        case .apply: "application/apply-patch+yaml"
        }
    }
}

public enum PropagationPolicy: String, Sendable {
    case foreground = "Foreground", background = "Background", orphan = "Orphan"
}

struct WriteQuery {
    var dryRun = false
    var fieldManager: String? = nil
    var force = false

    var string: String {
        var q: [(String, String)] = []
        if dryRun { q.append(("dryRun", "All")) }
        if let fieldManager { q.append(("fieldManager", fieldManager)) }
        if force { q.append(("force", "true")) }
        return QueryString.build(q)
    }
}

enum QueryString {
    static func build(_ items: [(String, String)]) -> String {
        items.isEmpty ? "" : "?" + items.map { "\($0.0)=\($0.1.percentEncodedPathSegment)" }.joined(separator: "&")
    }
}
