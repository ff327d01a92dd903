import Foundation
import Shared

extension KubeStore {
    enum PatchKind { case merge, json, strategic, apply }

    func patchKind(_ req: IncomingRequest, _ rt: ResourceType) throws(APIError) -> PatchKind {
        let ct = (req.header("Content-Type") ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch ct {
        case "application/merge-patch+json": return .merge
        case "application/json-patch+json": return .json
        case "application/strategic-merge-patch+json":
            if rt.isCustom { throw APIError.strategicMergeOnCustomResource }
            return .strategic
        case "application/apply-patch+yaml", "application/apply-patch+cbor": return .apply
        default: throw APIError.unsupportedMediaType
        }
    }

    func parsePatchBody(_ data: Data) throws(APIError) -> JSONValue {
        guard let v = try? JSONValue.parse(data) else {
            throw APIError.badRequest("error decoding patch: invalid character in JSON input")
        }
        return v
    }

    /// Applies a patch document of the given kind to `target`.
    func applyPatch(_ kind: PatchKind, _ target: JSONValue, _ patch: JSONValue, _ rt: ResourceType) throws(APIError) -> JSONValue {
        switch kind {
        case .merge:
            guard case .object = patch else { throw APIError.badRequest("json: cannot unmarshal \(Self.jsonTypeName(patch)) into Go value of type map[string]interface {}") }
            return target.merging(patch: patch)
        case .json:
            do { return try Patch.jsonPatch(target, ops: patch) } catch { throw APIError.jsonPatchRejected }
        case .strategic:
            guard case .object = patch else { throw APIError.badRequest("json: cannot unmarshal \(Self.jsonTypeName(patch)) into Go value of type map[string]interface {}") }
            return Patch.strategicMerge(target, patch: patch)
        case .apply:
            // Field ownership is handled by ManagedFields.apply; this is its merge step.
            return rt.isCustom ? target.merging(patch: patch) : Patch.strategicMerge(target, patch: patch)
        }
    }

    func patchObject(_ p: ResourcePath, _ req: IncomingRequest, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let rt = p.type
        let kind = try patchKind(req, rt)
        let dryRun = t.query["dryRun"] == "All"
        if kind == .apply {
            guard let manager = t.query["fieldManager"], !manager.isEmpty else {
                throw APIError.invalid(kind: "PatchOptions", group: "meta.k8s.io", name: "",
                                       causes: [.required("fieldManager", "is required for apply patch")])
            }
            var body = try decodeApplyBody(req.body)
            let av = body["apiVersion"]?.stringValue ?? "", k = body["kind"]?.stringValue ?? ""
            if av.isEmpty || k.isEmpty {
                let gv = av.split(separator: "/")
                throw APIError.badRequest("invalid object type: \(gv.count > 1 ? String(gv[0]) : "")/\(gv.last.map(String.init) ?? ""), Kind=\(k)")
            }
            try checkTypeMeta(body, rt)
            if EventConversion.isEventsV1(rt) { body = EventConversion.toCore(body) }
            if let bodyName = body["metadata"]?["name"]?.stringValue, bodyName != p.name {
                throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(p.name ?? ""))")
            }
            guard let old = stored(p) else {
                if p.subresource != nil { throw APIError.notFound(rt, p.name ?? "") }
                // An apply that creates is authorized as a create too (the real PATCH handler's createValidation).
                if let authorizer, let user = requestUser,
                   !authorizer(user, AuthorizationAttributes(verb: "create", group: rt.group, resource: rt.plural, subresource: nil,
                                                            namespace: p.namespace, name: p.name)) {
                    throw APIError.forbidden(user: user.name, verb: "create", rt: rt, resourceName: rt.plural, group: rt.group,
                                             name: p.name, namespace: p.namespace, subresource: nil)
                }
                var b = body
                b[keyPath: "metadata", "name"] = .string(p.name ?? "")
                let created = try create(p, b, dryRun: dryRun, owner: .apply(manager: manager, applied: body))
                return respond(201, present(created, as: rt), rt)
            }
            let force = ["true", "1"].contains(t.query["force"] ?? "")
            var patched = try ManagedFields.apply(live: old, applied: body, rt, manager: manager, force: force,
                                                  subresource: p.subresource, time: timestamp()) { target, patch in
                rt.isCustom ? target.merging(patch: patch) : Patch.strategicMerge(target, patch: patch)
            }
            patched[keyPath: "metadata", "resourceVersion"] = body["metadata"]?["resourceVersion"] ?? old["metadata"]?["resourceVersion"]
            let result = try update(p, old: old, new: patched, requireRV: false, dryRun: dryRun, owner: .precomputed)
            return respond(200, present(result, as: rt), rt)
        }
        let patch = try parsePatchBody(req.body)
        guard let old = stored(p) else { throw APIError.notFound(rt, p.name ?? "") }
        var patched = try applyPatch(kind, present(old, as: rt), patch, rt)
        if EventConversion.isEventsV1(rt) { patched = EventConversion.toCore(patched) }
        if patched["metadata"]?["resourceVersion"] == nil { patched[keyPath: "metadata", "resourceVersion"] = old["metadata"]?["resourceVersion"] }
        if patched["metadata"]?["name"]?.stringValue != p.name {
            throw APIError.badRequest("the name of the object (\(patched["metadata"]?["name"]?.stringValue ?? "")) does not match the name on the URL (\(p.name ?? ""))")
        }
        let result = try update(p, old: old, new: patched, requireRV: false, dryRun: dryRun, owner: .update(subresource: p.subresource))
        return respond(200, present(result, as: rt), rt)
    }

    /// SSA bodies: JSON (what chill's client sends; JSON is valid YAML) or YAML via Shared's decoder.
    func decodeApplyBody(_ data: Data) throws(APIError) -> JSONValue {
        if let v = try? JSONValue.parse(data), case .object = v { return v }
        if let v = YAMLBridge.decode(data), case .object = v { return v }
        throw APIError.badRequest("error decoding YAML: the apply body is neither a JSON nor a YAML object")
    }

    // MARK: - Scale subresource

    func scaleObject(_ obj: JSONValue, _ rt: ResourceType) -> JSONValue {
        let s = rt.scale!
        var meta: [String: JSONValue] = [:]
        for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] { meta[k] = obj["metadata"]?[k] }
        var spec: [String: JSONValue] = [:]
        if let r = Patch.get(obj, path: s.specReplicasPath)?.intValue, r != 0 { spec["replicas"] = .int(r) }
        var status: [String: JSONValue] = ["replicas": .int(Patch.get(obj, path: s.statusReplicasPath)?.intValue ?? 0)]
        if rt == .deployments {
            let sel = LabelSelector(labelSelectorObject: obj["spec"]?["selector"]).string
            if !sel.isEmpty { status["selector"] = .string(sel) }
        } else if let path = s.labelSelectorPath, let sel = Patch.get(obj, path: path)?.stringValue, !sel.isEmpty {
            status["selector"] = .string(sel)
        }
        return .object(["kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": .object(meta),
                        "spec": .object(spec), "status": .object(status)])
    }

    func getScale(_ p: ResourcePath) throws(APIError) -> KubeResponse {
        guard let obj = stored(p) else { throw APIError.notFound(p.type, p.name ?? "") }
        return .json(200, scaleObject(obj, p.type))
    }

    func writeScale(_ p: ResourcePath, _ req: IncomingRequest, _ t: RequestTarget) throws(APIError) -> KubeResponse {
        let rt = p.type
        guard let old = stored(p) else { throw APIError.notFound(rt, p.name ?? "") }
        let current = scaleObject(old, rt)
        var scale: JSONValue
        if req.method == "PUT" {
            scale = try decodeBody(req.body, rt)
            if let av = scale["apiVersion"]?.stringValue, !av.isEmpty, av != "autoscaling/v1" {
                throw APIError.badRequest("the API version in the data (\(av)) does not match the expected API version (autoscaling/v1)")
            }
        } else {
            let kind = try patchKind(req, .deployments)
            let patch = kind == .apply ? try decodeApplyBody(req.body) : try parsePatchBody(req.body)
            scale = try applyPatch(kind == .apply ? .merge : kind, current, patch, .deployments)
        }
        let rv = scale["metadata"]?["resourceVersion"]?.stringValue ?? ""
        if !rv.isEmpty, rv != old["metadata"]?["resourceVersion"]?.stringValue {
            throw APIError.status(code: 409, reason: "Conflict",
                                  message: "Operation cannot be fulfilled on \(rt.qualifiedPlural) \"\(p.name ?? "")\": the object has been modified; please apply your changes to the latest version and try again",
                                  details: APIError.details(rt, name: p.name))
        }
        let replicas = scale["spec"]?["replicas"]?.intValue ?? 0
        if replicas < 0 {
            throw APIError.invalid(kind: "Scale", group: "autoscaling", name: p.name ?? "",
                                   causes: [.invalid("spec.replicas", "\(replicas): must be greater than or equal to 0")])
        }
        var updated = Patch.set(old, path: rt.scale!.specReplicasPath, to: .int(replicas))
        updated[keyPath: "metadata", "resourceVersion"] = old["metadata"]?["resourceVersion"]
        let main = ResourcePath(type: rt, namespace: p.namespace, name: p.name, subresource: nil)
        let result = try update(main, old: old, new: updated, requireRV: false, dryRun: t.query["dryRun"] == "All",
                                owner: .update(subresource: "scale"))
        return .json(200, scaleObject(result, rt))
    }
}
