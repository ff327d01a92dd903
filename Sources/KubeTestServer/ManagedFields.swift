import Foundation
import Shared

/// Server-side apply field ownership, modelled on structured-merge-diff: each `metadata.managedFields`
/// entry owns a set of field paths in the `FieldsV1` notation (`f:<field>`, `k:<key JSON>` for list items
/// keyed by merge keys, `v:<value>` for set items). Built-in lists merge by the upstream merge keys
/// (containers/env/volumes by `name`, ports by `containerPort`+`protocol`, conditions by `type`, …);
/// custom-resource lists are atomic (no `x-kubernetes-list-type` support); `spec.selector` label selectors
/// are atomic.
enum ManagedFields {
    typealias Path = [String]

    struct Entry: Equatable {
        var manager: String
        var operation: String
        var apiVersion: String
        var time: String
        var subresource: String?
        var fields: Set<Path>

        var identity: String {
            var o: [String: JSONValue] = ["manager": .string(manager), "operation": .string(operation)]
            if operation == "Update" { o["apiVersion"] = .string(apiVersion) }
            if let subresource { o["subresource"] = .string(subresource) }
            return KubeJSON.string(.object(o), sorted: true)
        }

        /// `"mgr"`, `"mgr" with subresource "scale" using apps/v1` (the Update form names the version).
        var described: String {
            var s = "\"\(manager)\""
            if let subresource { s += " with subresource \"\(subresource)\"" }
            if operation == "Update" { s += " using \(apiVersion)" }
            return s
        }

        var json: JSONValue {
            var o: [String: JSONValue] = ["operation": .string(operation), "apiVersion": .string(apiVersion),
                                          "time": .string(time), "fieldsType": "FieldsV1", "fieldsV1": encode(fields)]
            if !manager.isEmpty { o["manager"] = .string(manager) }
            if let subresource { o["subresource"] = .string(subresource) }
            return .object(o)
        }

        init(manager: String, operation: String, apiVersion: String, time: String, subresource: String?, fields: Set<Path>) {
            self.manager = manager
            self.operation = operation
            self.apiVersion = apiVersion
            self.time = time
            self.subresource = subresource
            self.fields = fields
        }

        init?(_ v: JSONValue) {
            guard let op = v["operation"]?.stringValue else { return nil }
            self.init(manager: v["manager"]?.stringValue ?? "", operation: op, apiVersion: v["apiVersion"]?.stringValue ?? "",
                      time: v["time"]?.stringValue ?? "", subresource: v["subresource"]?.stringValue,
                      fields: decode(v["fieldsV1"] ?? .object([:])))
        }
    }

    struct Conflict { var entry: Entry; var path: Path }

    static func entries(_ obj: JSONValue?) -> [Entry] {
        (obj?["metadata"]?["managedFields"]?.arrayValue ?? []).compactMap(Entry.init)
    }

    static func set(_ entries: [Entry], on obj: JSONValue) -> JSONValue {
        var o = obj
        let kept = entries.filter { !$0.fields.isEmpty }
        o[keyPath: "metadata", "managedFields"] = kept.isEmpty ? nil : .array(kept.map(\.json))
        return o
    }

    // MARK: - Scope

    static let ignoredMetadata: Set<String> = ["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                                               "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"]

    /// The part of an object a write through `subresource` manages: `status` alone for /status, everything
    /// but `status` (when it is a subresource) for the main resource; never apiVersion/kind/identity metadata.
    static func scoped(_ obj: JSONValue, _ rt: ResourceType, subresource: String?) -> JSONValue {
        if subresource == "status" { return .object(obj["status"].map { ["status": $0] } ?? [:]) }
        var o = obj.objectValue ?? [:]
        o["apiVersion"] = nil
        o["kind"] = nil
        if rt.hasStatus { o["status"] = nil }
        var meta = o["metadata"]?.objectValue ?? [:]
        for k in ignoredMetadata { meta[k] = nil }
        o["metadata"] = meta.isEmpty ? nil : .object(meta)
        return .object(o)
    }

    // MARK: - Field sets

    static func listKeys(_ field: String, _ items: [JSONValue]) -> [String]? {
        switch field {
        case "containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets", "resourceClaims":
            return ["name"]
        case "ports": return items.contains { $0["containerPort"] != nil } ? ["containerPort", "protocol"] : ["port", "protocol"]
        case "volumeMounts": return ["mountPath"]
        case "volumeDevices": return ["devicePath"]
        case "conditions": return ["type"]
        case "ownerReferences": return ["uid"]
        case "hostAliases": return ["ip"]
        default: return nil
        }
    }

    static let mapTyped: Set<String> = ["labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "limits",
                                        "requests", "selector"]

    static func isAtomic(_ field: String, _ value: [String: JSONValue]) -> Bool {
        field == "selector" && (value["matchLabels"] != nil || value["matchExpressions"] != nil)
    }

    static func keyElement(_ item: JSONValue, _ keys: [String]) -> String? {
        var k: [String: JSONValue] = [:]
        for key in keys {
            if let v = item[key] { k[key] = v } else if key == "protocol" { k[key] = "TCP" } else { return nil }
        }
        return "k:" + KubeJSON.string(.object(k), sorted: true)
    }

    /// The paths set in `v`. `members`: also the maps and lists themselves (an Update's view of what it added).
    static func fieldSet(_ v: JSONValue, custom: Bool, members: Bool) -> Set<Path> {
        var out: Set<Path> = []
        walk(v, [], custom: custom, members: members, into: &out)
        return out
    }

    private static func walk(_ v: JSONValue, _ path: Path, custom: Bool, members: Bool, into out: inout Set<Path>) {
        guard case .object(let o) = v else { return }
        for (k, child) in o {
            let p = path + ["f:" + k]
            let typed = !custom || p.first == "f:metadata"
            switch child {
            case .object(let c) where !c.isEmpty && !isAtomic(k, c):
                // Update-added maps are members ("."): typed maps of built-ins, every object of a custom resource.
                if members && (typed ? mapTyped.contains(k) : true) { out.insert(p) }
                walk(child, p, custom: custom, members: members, into: &out)
            case .array(let items) where !items.isEmpty && typed:
                if let keys = listKeys(k, items), items.allSatisfy({ keyElement($0, keys) != nil }) {
                    if members { out.insert(p) }
                    for item in items {
                        let ip = p + [keyElement(item, keys)!]
                        out.insert(ip)
                        walk(item, ip, custom: custom, members: members, into: &out)
                    }
                } else if k == "finalizers", items.allSatisfy({ $0.stringValue != nil }) {
                    if members { out.insert(p) }
                    for item in items { out.insert(p + ["v:" + KubeJSON.string(item)]) }
                } else {
                    out.insert(p)
                }
            default:
                out.insert(p)
            }
        }
    }

    /// Paths that have no descendant in `set`.
    static func leaves(_ set: Set<Path>) -> Set<Path> {
        var parents: Set<Path> = []
        for p in set { for i in 0..<p.count { parents.insert(Array(p[..<i])) } }
        return set.filter { !parents.contains($0) }
    }

    static func value(_ obj: JSONValue, at path: Path) -> JSONValue? {
        var cur: JSONValue? = obj
        for el in path {
            guard let c = cur else { return nil }
            if el.hasPrefix("f:") {
                cur = c[String(el.dropFirst(2))]
            } else {
                guard let items = c.arrayValue else { return nil }
                cur = items.first { matches($0, el) }
            }
        }
        return cur
    }

    private static func matches(_ item: JSONValue, _ el: String) -> Bool {
        guard let v = try? JSONValue.parse(Data(el.dropFirst(2).utf8)) else { return false }
        if el.hasPrefix("v:") { return item == v }
        guard let keys = v.objectValue else { return false }
        return keys.allSatisfy { key, want in item[key] == want || (item[key] == nil && key == "protocol" && want == "TCP") }
    }

    static func removing(_ obj: JSONValue, _ path: ArraySlice<Path.Element>) -> JSONValue {
        guard let el = path.first else { return obj }
        if el.hasPrefix("f:") {
            guard var o = obj.objectValue else { return obj }
            let k = String(el.dropFirst(2))
            if path.count == 1 { o[k] = nil } else if let child = o[k] { o[k] = removing(child, path.dropFirst()) }
            return .object(o)
        }
        guard var items = obj.arrayValue, let i = items.firstIndex(where: { matches($0, el) }) else { return obj }
        if path.count == 1 { items.remove(at: i) } else { items[i] = removing(items[i], path.dropFirst()) }
        return .array(items)
    }

    // MARK: - FieldsV1

    final class Node {
        var member = false
        var children: [String: Node] = [:]
    }

    static func encode(_ set: Set<Path>) -> JSONValue {
        let root = Node()
        for p in set {
            var n = root
            for el in p {
                if let c = n.children[el] { n = c } else { let c = Node(); n.children[el] = c; n = c }
            }
            n.member = true
        }
        func render(_ n: Node) -> JSONValue {
            var o = n.children.mapValues(render)
            if n.member && !n.children.isEmpty { o["."] = .object([:]) }
            return .object(o)
        }
        return render(root)
    }

    static func decode(_ v: JSONValue) -> Set<Path> {
        var out: Set<Path> = []
        func walk(_ v: JSONValue, _ path: Path) {
            let o = v.objectValue ?? [:]
            if o.isEmpty { if !path.isEmpty { out.insert(path) }; return }
            for (k, child) in o {
                if k == "." { out.insert(path) } else { walk(child, path + [k]) }
            }
        }
        walk(v, [])
        return out
    }

    /// `.spec.template.spec.containers[name="vllm"].image`
    static func describe(_ path: Path) -> String {
        path.map { el -> String in
            if el.hasPrefix("f:") { return "." + el.dropFirst(2) }
            let v = (try? JSONValue.parse(Data(el.dropFirst(2).utf8))) ?? .null
            if el.hasPrefix("v:") { return "[=\(KubeJSON.string(v))]" }
            let keys = (v.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\(KubeJSON.string($0.value))" }
            return "[" + keys.joined(separator: ",") + "]"
        }.joined()
    }

    // MARK: - Operations

    /// An Update (POST, PUT, non-apply PATCH, controllers): the writer owns what it added or changed, and takes
    /// changed fields away from other managers; removed fields leave every set.
    static func recordUpdate(old: JSONValue?, new: JSONValue, _ rt: ResourceType, manager: String, subresource: String?,
                             time: String, base: JSONValue? = nil) -> JSONValue {
        var entries = entries(base ?? old)
        let before = old.map { fieldSet(scoped($0, rt, subresource: subresource), custom: rt.isCustom, members: true) } ?? []
        let newScoped = scoped(new, rt, subresource: subresource)
        let after = fieldSet(newScoped, custom: rt.isCustom, members: true)
        let added = after.subtracting(before), removed = before.subtracting(after)
        let oldScoped = old.map { scoped($0, rt, subresource: subresource) } ?? .null
        let modified = leaves(after).intersection(before).filter { value(oldScoped, at: $0) != value(newScoped, at: $0) }
        guard !(added.isEmpty && removed.isEmpty && modified.isEmpty) else { return set(entries, on: new) }
        let id = Entry(manager: manager, operation: "Update", apiVersion: rt.apiVersion, time: time, subresource: subresource,
                       fields: []).identity
        for i in entries.indices where entries[i].identity != id {
            entries[i].fields.subtract(modified.union(removed))
        }
        if let i = entries.firstIndex(where: { $0.identity == id }) {
            entries[i].fields = entries[i].fields.union(added).union(modified).subtracting(removed)
            entries[i].time = time
        } else {
            entries.append(Entry(manager: manager, operation: "Update", apiVersion: rt.apiVersion, time: time,
                                 subresource: subresource, fields: added.union(modified)))
        }
        return set(entries, on: new)
    }

    /// Server-side apply of `applied` onto `live` by `manager`: conflicts with other owners of changed fields
    /// (unless `force`), removal of fields this manager no longer applies and nobody else owns, then a merge.
    static func apply(live: JSONValue, applied: JSONValue, _ rt: ResourceType, manager: String, force: Bool,
                      subresource: String?, time: String,
                      merge: (JSONValue, JSONValue) -> JSONValue) throws(APIError) -> JSONValue {
        var entries = entries(live)
        let appliedScoped = scoped(applied, rt, subresource: subresource)
        let appliedSet = fieldSet(appliedScoped, custom: rt.isCustom, members: false)
        let me = Entry(manager: manager, operation: "Apply", apiVersion: rt.apiVersion, time: time, subresource: subresource,
                       fields: appliedSet)
        var conflicts: [Conflict] = []
        for e in entries where e.identity != me.identity {
            for p in leaves(appliedSet).intersection(e.fields) where value(live, at: p) != value(appliedScoped, at: p) {
                conflicts.append(Conflict(entry: e, path: p))
            }
        }
        if !conflicts.isEmpty && !force { throw conflictError(conflicts) }
        for c in conflicts {
            if let i = entries.firstIndex(where: { $0.identity == c.entry.identity }) { entries[i].fields.remove(c.path) }
        }
        let mine = entries.firstIndex { $0.identity == me.identity }
        let previous = mine.map { entries[$0].fields } ?? []
        let others = entries.filter { $0.identity != me.identity }.reduce(into: Set<Path>()) { $0.formUnion($1.fields) }
        var obj = live
        // Parents first (a removed list item takes its fields along); keep anything another manager owns inside.
        let othersPrefixes = others.reduce(into: Set<Path>()) { acc, p in for i in 0...p.count { acc.insert(Array(p[..<i])) } }
        for p in previous.subtracting(appliedSet).subtracting(othersPrefixes).sorted(by: { $0.count < $1.count }) {
            obj = removing(obj, p[...])
            // A list or map emptied by the removal goes too, unless someone set it (empty) on purpose.
            for i in stride(from: p.count - 1, to: 0, by: -1) {
                let q = Array(p[..<i])
                guard !appliedSet.contains(q), !othersPrefixes.contains(q), let v = value(obj, at: q),
                      v.arrayValue?.isEmpty == true || v.objectValue?.isEmpty == true else { break }
                obj = removing(obj, q[...])
            }
        }
        var toMerge = applied
        if subresource == "status" { toMerge = .object(applied["status"].map { ["status": $0] } ?? [:]) }
        else if rt.hasStatus { toMerge["status"] = nil }
        obj = merge(obj, toMerge)
        if let mine {
            if entries[mine].fields != appliedSet || obj != live { entries[mine].fields = appliedSet; entries[mine].time = time }
        } else {
            entries.append(me)
        }
        return set(entries, on: obj)
    }

    static func conflictError(_ conflicts: [Conflict]) -> APIError {
        let sorted = conflicts.sorted { a, b in
            a.entry.identity != b.entry.identity ? a.entry.identity < b.entry.identity : describe(a.path) < describe(b.path)
        }
        let message: String
        if sorted.count == 1 {
            message = "Apply failed with 1 conflict: conflict with \(sorted[0].entry.described): \(describe(sorted[0].path))"
        } else {
            var lines: [String] = []
            var last: String?
            for c in sorted {
                if c.entry.identity != last { lines.append("conflicts with \(c.entry.described):"); last = c.entry.identity }
                lines.append("- \(describe(c.path))")
            }
            message = "Apply failed with \(sorted.count) conflicts: " + lines.joined(separator: "\n")
        }
        let causes: [JSONValue] = sorted.map {
            ["reason": "FieldManagerConflict", "message": .string("conflict with \($0.entry.described)"), "field": .string(describe($0.path))]
        }
        return APIError.status(code: 409, reason: "Conflict", message: message, details: .object(["causes": .array(causes)]))
    }
}
