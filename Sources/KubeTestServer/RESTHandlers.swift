import Foundation
import Shared

/// A request after TLS: what the NIO handler (or an in-process test) hands to the store.
struct IncomingRequest: Sendable {
    var method: String
    var target: String
    var headers: [(String, String)]
    var body: Data
    /// The identity from a verified client certificate, or an explicit in-process identity.
    var presetUser: KubeUser?
    /// The TLS peer presented a client certificate the server does not trust.
    var untrustedCertificate = false

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

enum Outcome: Sendable {
    case response(KubeResponse)
    case watch(WatchSession)
}

extension KubeStore {
    func handle(_ req: IncomingRequest) -> Outcome {
        let t = RequestTarget(req.target)
        var userName: String?
        var outcome: Outcome
        let ua = req.header("User-Agent").map { String($0.split(separator: "/", omittingEmptySubsequences: false).first ?? "") }
        requestFieldManager = t.query["fieldManager"] ?? ua ?? ""
        requestFieldValidation = t.query["fieldValidation"]
        requestIsPatch = req.method == "PATCH"
        requestWarnings = []
        do throws(APIError) {
            let user = try authenticate(req)
            userName = user.name
            requestUser = user
            outcome = try dispatch(req, t, user: user)
        } catch {
            outcome = .response(.error(error))
        }
        requestFieldManager = nil
        requestUser = nil
        drainControllers()
        if case .response(var r) = outcome, !requestWarnings.isEmpty {
            r.headers += requestWarnings.map { ("Warning", "299 - " + KubeJSON.string(.string($0))) }
            outcome = .response(r)
        }
        let status: Int
        switch outcome {
        case .response(let r): status = r.status
        case .watch: status = 200
        }
        requestLog.append(RecordedRequest(method: req.method, path: req.target, headers: req.headers, body: req.body,
                                          user: userName, status: status))
        return outcome
    }

    func authenticate(_ req: IncomingRequest) throws(APIError) -> KubeUser {
        if let u = req.presetUser { return u }
        if let auth = req.header("Authorization") {
            guard auth.hasPrefix("Bearer "), let name = tokens[String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)] else {
                throw APIError.unauthorized
            }
            return KubeUser(name: name, groups: ["system:authenticated"])
        }
        // The real server would fall through to anonymous (403); chill's issue asks for the 401 Status here.
        if req.untrustedCertificate { throw APIError.unauthorized }
        return .anonymous
    }

    private func verb(_ method: String, _ p: ResourcePath, _ t: RequestTarget) -> String {
        switch method {
        case "GET", "HEAD": return p.name != nil ? "get" : (t.flag("watch") ? "watch" : "list")
        case "POST": return "create"
        case "PUT": return "update"
        case "PATCH": return "patch"
        case "DELETE": return p.name != nil ? "delete" : "deletecollection"
        default: return method.lowercased()
        }
    }

    private func dispatch(_ req: IncomingRequest, _ t: RequestTarget, user: KubeUser) throws(APIError) -> Outcome {
        let route = route(t)
        let isPublic: Bool
        switch route {
        case .version, .health: isPublic = true
        default: isPublic = false
        }
        guard case .resource(let p) = route else {
            if user == .anonymous && !isPublic {
                throw APIError.status(code: 403, reason: "Forbidden",
                                      message: "forbidden: User \"system:anonymous\" cannot get path \"/\(t.segments.joined(separator: "/"))\"",
                                      details: .object([:]))
            }
            return .response(try discovery(route))
        }
        let v = verb(req.method, p, t)
        let attrs = AuthorizationAttributes(verb: v, group: p.type.group, resource: p.type.plural, subresource: p.subresource,
                                            namespace: p.namespace, name: p.name)
        if user == .anonymous || !(authorizer?(user, attrs) ?? true) {
            throw APIError.forbidden(user: user.name, verb: v, rt: p.type, resourceName: p.type.plural, group: p.type.group,
                                     name: p.name, namespace: p.namespace, subresource: p.subresource)
        }
        if let sub = p.subresource {
            let allowed = (sub == "status" && p.type.hasStatus) || (sub == "scale" && p.type.scale != nil)
            guard allowed, p.name != nil else { throw APIError.pageNotFound }
        }
        switch (req.method, p.subresource) {
        case ("GET", "scale"): return .response(try getScale(p))
        case ("PUT", "scale"), ("PATCH", "scale"): return .response(try writeScale(p, req, t))
        case ("GET", _), ("HEAD", _):
            if p.name != nil { return .response(try getObject(p)) }
            if t.flag("watch") { return .watch(try startWatch(p, t)) }
            return .response(try listObjects(p, t))
        case ("POST", nil) where p.name == nil:
            return .response(try createObject(p, req, t))
        case ("PUT", _) where p.name != nil:
            return .response(try replaceObject(p, req, t))
        case ("PATCH", _) where p.name != nil:
            return .response(try patchObject(p, req, t))
        case ("DELETE", nil):
            if p.name != nil { return .response(try deleteObject(p, req, t)) }
            return .response(try deleteCollection(p, t))
        default:
            throw APIError.methodNotSupported(p.type, req.method)
        }
    }

    // MARK: - Encoding

    func respond(_ status: Int, _ obj: JSONValue, _ rt: ResourceType) -> KubeResponse {
        .json(status, obj, sorted: rt.isCustom)
    }

    func stored(_ p: ResourcePath, name: String? = nil) -> JSONValue? {
        objects[p.type.storageKey]?[Self.key(namespace: p.type.namespaced ? p.namespace : nil, name: name ?? p.name ?? "")]
    }

    // MARK: - GET

    func getObject(_ p: ResourcePath) throws(APIError) -> KubeResponse {
        guard let obj = stored(p) else { throw APIError.notFound(p.type, p.name ?? "") }
        return respond(200, present(obj, as: p.type), p.type)
    }

    // MARK: - LIST

    struct ContinueToken: Codable { var v: String; var rv: Int; var start: String }

    static func encodeContinue(rv: Int, start: String) -> String {
        let json = "{\"v\":\"meta.k8s.io/v1\",\"rv\":\(rv),\"start\":" + KubeJSON.string(.string(start)) + "}"
        return Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decodeContinue(_ s: String) -> ContinueToken? {
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        guard let d = Data(base64Encoded: b) else { return nil }
        return try? JSONDecoder().decode(ContinueToken.self, from: d)
    }

    func selectors(_ p: ResourcePath, _ t: RequestTarget) throws(APIError) -> (LabelSelector, FieldSelector) {
        let ls = try LabelSelector.parse(t.query["labelSelector"] ?? "")
        let fs = try FieldSelector.parse(t.query["fieldSelector"] ?? "", for: p.type)
        return (ls, fs)
    }

    func matches(_ obj: JSONValue, _ p: ResourcePath, _ ls: LabelSelector, _ fs: FieldSelector) -> Bool {
        if let ns = p.namespace, p.type.namespaced, obj["metadata"]?["namespace"]?.stringValue != ns { return false }
        return ls.matches(obj.labels) && fs.matches(EventConversion.isEventsV1(p.type) ? present(obj, as: p.type) : obj)
    }

    func parseRV(_ s: String?) throws(APIError) -> Int? {
        guard let s, !s.isEmpty else { return nil }
        guard let v = Int(s), v >= 0 else {
            throw APIError.status(code: 500, reason: nil,
                                  message: "resourceVersion: Invalid value: \"\(s)\": strconv.ParseUint: parsing \"\(s)\": invalid syntax")
        }
        return v
    }

    func listObjects(_ p: ResourcePath, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let (ls, fs) = try selectors(p, t)
        if t.query["sendInitialEvents"] != nil {
            throw APIError.invalid(kind: "ListOptions", group: "meta.k8s.io", name: "",
                                   causes: [Cause(reason: "FieldValueForbidden", message: "Forbidden: sendInitialEvents is forbidden for list",
                                                  field: "sendInitialEvents")])
        }
        var snapshotRV = currentResourceVersion
        var startAfter: String?
        if let c = t.query["continue"], !c.isEmpty {
            guard let tok = Self.decodeContinue(c) else {
                throw APIError.badRequest("invalid continue token: continue key is not valid: illegal base64 data at input byte 0")
            }
            if tok.rv < compactedResourceVersion {
                throw APIError.expiredContinue(newToken: Self.encodeContinue(rv: -1, start: String(tok.start.drop { $0 == "/" })))
            }
            snapshotRV = tok.rv
            startAfter = tok.start
        } else if let rv = try parseRV(t.query["resourceVersion"]), rv > 0 {
            let match = t.query["resourceVersionMatch"] ?? ""
            if rv > currentResourceVersion {
                var e = APIError.status(code: 504, reason: "Timeout",
                                        message: "Timeout: Too large resource version: \(rv), current: \(currentResourceVersion)",
                                        details: .object(["causes": .array([.object(["reason": "ResourceVersionTooLarge",
                                                                                      "message": "Too large resource version"])]),
                                                          "retryAfterSeconds": 1]))
                e.headers = [("Retry-After", "1")]
                throw e
            }
            if match == "Exact" {
                guard rv >= compactedResourceVersion else {
                    throw APIError.status(code: 410, reason: "Expired", message: "The resourceVersion for the provided list is too old.")
                }
                snapshotRV = rv
            }
        }
        guard let state = snapshot(p.type, at: snapshotRV) else {
            throw APIError.status(code: 410, reason: "Expired", message: "The resourceVersion for the provided list is too old.")
        }
        // Sort like etcd keys: namespace/name.
        var items = state.filter { matches($0.value, p, ls, fs) }.sorted { $0.key < $1.key }
        // The key relative to the listed prefix, like etcd's: "/name" or "/namespace/name".
        let pageKey: (String) -> String = { k in
            p.namespace != nil ? String(k.drop { $0 != "/" }) : (p.type.namespaced ? "/" + k : k)
        }
        if let startAfter { items = items.filter { pageKey($0.key) >= startAfter } }
        var meta: [String: JSONValue] = ["resourceVersion": .string(String(snapshotRV))]
        if let limit = Int(t.query["limit"] ?? ""), limit > 0, items.count > limit {
            let rest = items.count - limit
            items = Array(items.prefix(limit))
            meta["continue"] = .string(Self.encodeContinue(rv: snapshotRV, start: pageKey(items.last!.key) + "\u{0}"))
            if ls.isEmpty && fs.isEmpty { meta["remainingItemCount"] = .int(rest) }
        } else if p.type.isCustom {
            meta["continue"] = ""
        }
        let rendered: [JSONValue] = items.map { item in
            var o = present(item.value, as: p.type)
            if !p.type.isCustom { o["kind"] = nil; o["apiVersion"] = nil }
            return o
        }
        let list: JSONValue = .object(["kind": .string(p.type.listKind), "apiVersion": .string(p.type.apiVersion),
                                       "metadata": .object(meta), "items": .array(rendered)])
        return respond(200, list, p.type)
    }

    // MARK: - CREATE

    func decodeBody(_ data: Data, _ rt: ResourceType) throws(APIError) -> JSONValue {
        guard let v = try? JSONValue.parse(data) else {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(rt.kind)): couldn't get version/kind; json parse error: invalid JSON")
        }
        guard case .object = v else {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(rt.kind)): couldn't get version/kind; json parse error: json: cannot unmarshal \(Self.jsonTypeName(v)) into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }")
        }
        return v
    }

    static func jsonTypeName(_ v: JSONValue) -> String {
        switch v {
        case .array: return "array"
        case .string: return "string"
        case .int, .double: return "number"
        case .bool: return "bool"
        default: return "null"
        }
    }

    func checkTypeMeta(_ obj: JSONValue, _ rt: ResourceType) throws(APIError) {
        if let av = obj["apiVersion"]?.stringValue, !av.isEmpty, av != rt.apiVersion {
            throw APIError.badRequest("the API version in the data (\(av)) does not match the expected API version (\(rt.apiVersion))")
        }
        if let k = obj["kind"]?.stringValue, !k.isEmpty, k != rt.kind {
            throw APIError.badRequest("the kind in the data (\(k)) does not match the expected kind (\(rt.kind))")
        }
    }

    static let readOnlyMetadata = ["uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                                   "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"]

    func createObject(_ p: ResourcePath, _ req: IncomingRequest, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let body = try decodeBody(req.body, p.type)
        try checkTypeMeta(body, p.type)
        let created = try create(p, body, dryRun: t.query["dryRun"] == "All", owner: .update(subresource: nil))
        return respond(201, present(created, as: p.type), p.type)
    }

    /// The full create path (validation, defaults, admission-like checks). Used by POST and apply-create.
    func create(_ p: ResourcePath, _ body: JSONValue, dryRun: Bool, owner: FieldOwner) throws(APIError) -> JSONValue {
        // events.k8s.io/v1 Events are stored as core/v1 ones.
        let rt = EventConversion.isEventsV1(p.type) ? storageTypes[p.type.storageKey] ?? p.type : p.type
        var obj = EventConversion.isEventsV1(p.type) ? EventConversion.toCore(body) : body
        if EventConversion.isEventsV1(p.type) { try BuiltinDecoding.checkMicroTimes(p.type, body) }
        var meta = obj["metadata"]?.objectValue ?? [:]
        if rt.namespaced {
            let bodyNS = meta["namespace"]?.stringValue ?? ""
            guard let ns = p.namespace else { throw APIError.pageNotFound }
            if !bodyNS.isEmpty && bodyNS != ns {
                throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
            }
            meta["namespace"] = .string(ns)
        } else {
            meta["namespace"] = nil
        }
        for k in Self.readOnlyMetadata { meta[k] = nil }
        var name = meta["name"]?.stringValue ?? ""
        if name.isEmpty, let gen = meta["generateName"]?.stringValue, !gen.isEmpty {
            name = gen + Self.randomSuffix()
            meta["name"] = .string(name)
        }
        if name.isEmpty {
            throw APIError.invalid(rt, name: "", causes: [.required("metadata.name", "name or generateName is required")])
        }
        if let cause = Validation.name(name, for: rt) { throw APIError.invalid(rt, name: name, causes: [cause]) }
        obj["metadata"] = .object(meta)
        if rt.hasStatus { obj["status"] = nil }
        try BuiltinDecoding.checkMicroTimes(rt, obj)
        obj = BuiltinDecoding.normalizeQuantities(rt, Defaults.apply(rt, obj))
        obj = try applySchema(rt, obj, name: name, isPatch: false)
        let causes = Validation.builtin(rt, obj) + (validators[rt.storageKey]?(obj) ?? [])
        if !causes.isEmpty { throw APIError.invalid(rt, name: name, causes: causes) }
        if rt.namespaced, let ns = p.namespace, objects[ResourceType.namespaces.storageKey]?[Self.key(namespace: nil, name: ns)] == nil {
            throw APIError.notFound(.namespaces, ns)
        }
        if stored(p, name: name) != nil { throw APIError.alreadyExists(rt, name) }
        try checkBlockOwnerDeletion(rt, old: nil, new: obj, name: name, namespace: p.namespace)
        obj = initializeMetadata(rt, obj)
        switch owner {
        case .update(let sub):
            obj = ManagedFields.recordUpdate(old: nil, new: obj, rt, manager: requestFieldManager ?? "", subresource: sub, time: timestamp())
        case .apply(let manager, let applied):
            let fields = ManagedFields.fieldSet(ManagedFields.scoped(applied, rt, subresource: nil), custom: rt.isCustom, members: false)
            obj = ManagedFields.set([.init(manager: manager, operation: "Apply", apiVersion: rt.apiVersion, time: timestamp(),
                                           subresource: nil, fields: fields)], on: obj)
        case .precomputed:
            break
        }
        if dryRun { return obj }
        return commit(rt, obj, type: .added)
    }

    // MARK: - UPDATE

    func replaceObject(_ p: ResourcePath, _ req: IncomingRequest, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let body = try decodeBody(req.body, p.type)
        try checkTypeMeta(body, p.type)
        let bodyName = body["metadata"]?["name"]?.stringValue ?? ""
        if bodyName != p.name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(p.name ?? ""))")
        }
        if p.type.namespaced, let ns = body["metadata"]?["namespace"]?.stringValue, !ns.isEmpty, ns != p.namespace {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        guard let old = stored(p) else { throw APIError.notFound(p.type, p.name ?? "") }
        let result = try update(p, old: old, new: EventConversion.isEventsV1(p.type) ? EventConversion.toCore(body) : body,
                                requireRV: p.type.isCustom, dryRun: t.query["dryRun"] == "All",
                                owner: .update(subresource: p.subresource))
        return respond(200, present(result, as: p.type), p.type)
    }

    /// The shared update path for PUT, PATCH and apply.
    func update(_ p: ResourcePath, old: JSONValue, new: JSONValue, requireRV: Bool, dryRun: Bool,
                owner: FieldOwner) throws(APIError) -> JSONValue {
        let rt = p.type
        let name = p.name ?? ""
        let oldRV = old["metadata"]?["resourceVersion"]?.stringValue ?? ""
        let newRV = new["metadata"]?["resourceVersion"]?.stringValue ?? ""
        if newRV.isEmpty {
            if rt == .leases {
                // Leases do not allow unconditional updates (a built-in, so the Kind form of the message).
                throw APIError.invalid(rt, name: name, causes: [.invalid("metadata.resourceVersion", "0x0: must be specified for an update")])
            }
            if requireRV {
                throw APIError.invalid(kind: rt.plural, group: rt.group, name: name,
                                       causes: [.invalid("metadata.resourceVersion", "0: must be specified for an update")],
                                       messagePrefix: rt.qualifiedPlural)
            }
        } else if newRV != oldRV {
            throw APIError.conflict(rt, name)
        }
        var result: JSONValue
        if p.subresource == "status" {
            result = old
            result["status"] = new["status"]
        } else {
            result = new
            result["apiVersion"] = old["apiVersion"]
            result["kind"] = old["kind"]
            var meta = result["metadata"]?.objectValue ?? [:]
            for k in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"] {
                meta[k] = old["metadata"]?[k]
            }
            meta["managedFields"] = nil
            result["metadata"] = .object(meta)
            if rt.hasStatus { result["status"] = old["status"] }
            result = BuiltinDecoding.normalizeQuantities(rt, Defaults.apply(rt, result))
        }
        try BuiltinDecoding.checkMicroTimes(rt, result)
        result[keyPath: "metadata", "resourceVersion"] = .string(oldRV)
        result = try applySchema(rt, result, name: name, isPatch: requestIsPatch)
        if hasGeneration(rt), specPart(result, rt) != specPart(old, rt) {
            result[keyPath: "metadata", "generation"] = .int((old["metadata"]?["generation"]?.intValue ?? 1) + 1)
        }
        switch owner {
        case .update(let sub):
            result = ManagedFields.recordUpdate(old: old, new: result, rt, manager: requestFieldManager ?? "", subresource: sub,
                                                time: timestamp())
        case .apply, .precomputed:
            result[keyPath: "metadata", "managedFields"] = new["metadata"]?["managedFields"]
        }
        let causes = (p.subresource == nil ? Validation.builtin(rt, result) : []) + (validators[rt.storageKey]?(result) ?? [])
        if !causes.isEmpty { throw APIError.invalid(rt, name: name, causes: causes) }
        if result == old { return old }
        try checkBlockOwnerDeletion(rt, old: old, new: result, name: name, namespace: p.namespace)
        if dryRun { return result }
        if result["metadata"]?["deletionTimestamp"] != nil, (result["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty {
            return commit(rt, result, type: .deleted)
        }
        return commit(rt, result, type: .modified)
    }

    func specPart(_ obj: JSONValue, _ rt: ResourceType) -> JSONValue {
        var o = obj
        o["metadata"] = nil
        if rt.hasStatus || !rt.isCustom { o["status"] = nil }
        return o
    }

    // MARK: - DELETE

    func deleteObject(_ p: ResourcePath, _ req: IncomingRequest, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let rt = p.type
        let name = p.name ?? ""
        let options = req.body.isEmpty ? JSONValue.object([:]) : ((try? JSONValue.parse(req.body)) ?? .object([:]))
        let policy = t.query["propagationPolicy"] ?? options["propagationPolicy"]?.stringValue
        if let policy, !["Foreground", "Background", "Orphan"].contains(policy) {
            throw APIError.invalid(kind: "DeleteOptions", group: "meta.k8s.io", name: "",
                                   causes: [Cause(reason: "FieldValueNotSupported",
                                                  message: "Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                                                  field: "propagationPolicy")])
        }
        guard let old = stored(p) else { throw APIError.notFound(rt, name) }
        let uid = old["metadata"]?["uid"]?.stringValue ?? ""
        if let pre = options["preconditions"]?["uid"]?.stringValue, pre != uid {
            throw APIError.status(code: 409, reason: "Conflict",
                                  message: "Operation cannot be fulfilled on \(rt.kind) \"\(name)\": the UID in the precondition (\(pre)) does not match the UID in record (\(uid)). The object might have been deleted and then recreated",
                                  details: .object(["name": .string(name), "kind": .string(rt.kind)]))
        }
        if let pre = options["preconditions"]?["resourceVersion"]?.stringValue,
           pre != old["metadata"]?["resourceVersion"]?.stringValue {
            throw APIError.status(code: 409, reason: "Conflict",
                                  message: "Operation cannot be fulfilled on \(rt.kind) \"\(name)\": the ResourceVersion in the precondition (\(pre)) does not match the ResourceVersion in record (\(old["metadata"]?["resourceVersion"]?.stringValue ?? "")). The object might have been modified",
                                  details: .object(["name": .string(name), "kind": .string(rt.kind)]))
        }
        if t.query["dryRun"] == "All" { return respond(200, present(old, as: rt), rt) }
        let grace = Int(t.query["gracePeriodSeconds"] ?? "") ?? options["gracePeriodSeconds"]?.intValue
        switch performDelete(rt, old, policy: policy, grace: grace) {
        case .terminating(let o):
            return respond(200, present(o, as: rt), rt)
        case .gone:
            var details = APIError.details(rt, name: name).objectValue ?? [:]
            details["uid"] = .string(uid)
            return .json(200, .object(["kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Success",
                                       "details": .object(details)]))
        }
    }

    /// Who gets the fields a write sets (see ManagedFields).
    enum FieldOwner {
        /// An Update by the request's field manager, through `subresource` (nil = the main resource).
        case update(subresource: String?)
        /// An apply-create: the applier owns what it applied.
        case apply(manager: String, applied: JSONValue)
        /// `new` already carries its managedFields.
        case precomputed
    }

    enum DeleteResult { case gone(JSONValue), terminating(JSONValue) }

    /// Deletes `old` like the registry does: at once, or (finalizers, Foreground, Orphan, a scheduled Pod) by
    /// setting `deletionTimestamp` (and `generation` + 1). Cascades are left to the garbage collector.
    func performDelete(_ rt: ResourceType, _ old: JSONValue, policy: String?, grace: Int?) -> DeleteResult {
        // Already terminating: idempotent, returns the object.
        if Self.isTerminating(old) { return .terminating(old) }
        let finalizers = Self.finalizers(old)
        func markDeleted(_ o: inout JSONValue) {
            o[keyPath: "metadata", "deletionTimestamp"] = .string(timestamp())
            if let g = o["metadata"]?["generation"]?.intValue, g > 0 { o[keyPath: "metadata", "generation"] = .int(g + 1) }
        }
        if rt == .namespaces {
            var o = old
            o[keyPath: "metadata", "deletionTimestamp"] = .string(timestamp())
            o[keyPath: "status", "phase"] = "Terminating"
            let terminating = commit(rt, o, type: .modified)
            deleteNamespaceContents(old["metadata"]?["name"]?.stringValue ?? "")
            commit(rt, terminating, type: .deleted)
            return .terminating(terminating)
        }
        let extra: JSONValue? = policy == "Foreground" ? "foregroundDeletion" : (policy == "Orphan" ? "orphan" : nil)
        if extra != nil || !finalizers.isEmpty {
            var o = old
            markDeleted(&o)
            o[keyPath: "metadata", "deletionGracePeriodSeconds"] = 0
            if let extra, !finalizers.contains(extra) { o[keyPath: "metadata", "finalizers"] = .array(finalizers + [extra]) }
            return .terminating(commit(rt, o, type: .modified))
        }
        // A scheduled Pod is deleted gracefully: the response is the Pod with deletionTimestamp; the simulated
        // kubelet then removes it at once.
        if rt == .pods, old["spec"]?["nodeName"] != nil, grace != 0 {
            var o = old
            markDeleted(&o)
            o[keyPath: "metadata", "deletionGracePeriodSeconds"] = .int(grace ?? old["spec"]?["terminationGracePeriodSeconds"]?.intValue ?? 30)
            let terminating = commit(rt, o, type: .modified)
            commit(rt, terminating, type: .deleted)
            return .terminating(terminating)
        }
        return .gone(commit(rt, old, type: .deleted))
    }

    func deleteNamespaceContents(_ ns: String) {
        for (storageKey, objs) in objects {
            guard let rt = storageTypes[storageKey], rt.namespaced else { continue }
            for (_, obj) in objs.sorted(by: { $0.key < $1.key }) where obj["metadata"]?["namespace"]?.stringValue == ns {
                commit(rt, obj, type: .deleted)
            }
        }
    }

    func deleteCollection(_ p: ResourcePath, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let (ls, fs) = try selectors(p, t)
        var deleted: [JSONValue] = []
        for (_, obj) in (objects[p.type.storageKey] ?? [:]).sorted(by: { $0.key < $1.key }) where matches(obj, p, ls, fs) {
            switch performDelete(p.type, obj, policy: t.query["propagationPolicy"], grace: nil) {
            case .gone(let o), .terminating(let o): deleted.append(o)
            }
        }
        let list: JSONValue = .object(["kind": .string(p.type.listKind), "apiVersion": .string(p.type.apiVersion),
                                       "metadata": .object(["resourceVersion": .string(String(currentResourceVersion))]),
                                       "items": .array(deleted.map { present($0, as: p.type) })])
        return respond(200, list, p.type)
    }
}
