import Shared

/// RFC 6902 JSON patch, a built-in-only strategic merge patch, and dotted-path helpers.
enum Patch {
    struct Failed: Error {}

    // MARK: - JSON patch (RFC 6902)

    static func jsonPatch(_ doc: JSONValue, ops: JSONValue) throws(Failed) -> JSONValue {
        guard let list = ops.arrayValue else { throw Failed() }
        var doc = doc
        for op in list {
            guard let name = op["op"]?.stringValue, let path = op["path"]?.stringValue else { throw Failed() }
            let tokens = try pointer(path)
            switch name {
            case "add":
                guard let v = op["value"] else { throw Failed() }
                doc = try add(doc, tokens[...], v)
            case "remove":
                doc = try remove(doc, tokens[...])
            case "replace":
                guard let v = op["value"] else { throw Failed() }
                _ = try get(doc, tokens[...])
                doc = try remove(doc, tokens[...])
                doc = try add(doc, tokens[...], v)
            case "test":
                guard let v = op["value"], try get(doc, tokens[...]) == v else { throw Failed() }
            case "move", "copy":
                guard let from = op["from"]?.stringValue else { throw Failed() }
                let fromTokens = try pointer(from)
                let v = try get(doc, fromTokens[...])
                if name == "move" { doc = try remove(doc, fromTokens[...]) }
                doc = try add(doc, tokens[...], v)
            default:
                throw Failed()
            }
        }
        return doc
    }

    private static func pointer(_ path: String) throws(Failed) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw Failed() }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func get(_ doc: JSONValue, _ tokens: ArraySlice<String>) throws(Failed) -> JSONValue {
        guard let first = tokens.first else { return doc }
        switch doc {
        case .object(let o):
            guard let child = o[first] else { throw Failed() }
            return try get(child, tokens.dropFirst())
        case .array(let a):
            guard let i = Int(first), a.indices.contains(i) else { throw Failed() }
            return try get(a[i], tokens.dropFirst())
        default: throw Failed()
        }
    }

    private static func add(_ doc: JSONValue, _ tokens: ArraySlice<String>, _ value: JSONValue) throws(Failed) -> JSONValue {
        guard let first = tokens.first else { return value }
        let last = tokens.count == 1
        switch doc {
        case .object(var o):
            if last { o[first] = value } else {
                guard let child = o[first] else { throw Failed() }
                o[first] = try add(child, tokens.dropFirst(), value)
            }
            return .object(o)
        case .array(var a):
            if last {
                if first == "-" { a.append(value) } else {
                    guard let i = Int(first), i >= 0, i <= a.count else { throw Failed() }
                    a.insert(value, at: i)
                }
            } else {
                guard let i = Int(first), a.indices.contains(i) else { throw Failed() }
                a[i] = try add(a[i], tokens.dropFirst(), value)
            }
            return .array(a)
        default: throw Failed()
        }
    }

    private static func remove(_ doc: JSONValue, _ tokens: ArraySlice<String>) throws(Failed) -> JSONValue {
        guard let first = tokens.first else { throw Failed() }
        let last = tokens.count == 1
        switch doc {
        case .object(var o):
            guard let child = o[first] else { throw Failed() }
            o[first] = last ? nil : try remove(child, tokens.dropFirst())
            return .object(o)
        case .array(var a):
            guard let i = Int(first), a.indices.contains(i) else { throw Failed() }
            if last { a.remove(at: i) } else { a[i] = try remove(a[i], tokens.dropFirst()) }
            return .array(a)
        default: throw Failed()
        }
    }

    // MARK: - Strategic merge patch (built-in types)

    /// Merge keys of the list fields kube-apiserver merges by key; other lists are replaced.
    static func mergeKey(field: String, items: [JSONValue]) -> String? {
        switch field {
        case "containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets", "resourceClaims":
            return "name"
        case "hostAliases": return "ip"
        case "volumeMounts": return "mountPath"
        case "volumeDevices": return "devicePath"
        case "conditions": return "type"
        case "ownerReferences": return "uid"
        case "topologySpreadConstraints": return "topologyKey"
        case "ports":
            // Container ports merge by containerPort, Service ports by port.
            return items.contains { $0["containerPort"] != nil } ? "containerPort" : "port"
        default: return nil
        }
    }

    /// Primitive lists with patchStrategy=merge (union) rather than replace.
    static let primitiveMergeLists: Set<String> = ["finalizers"]

    static func strategicMerge(_ original: JSONValue, patch: JSONValue) -> JSONValue {
        guard case .object(var patchObject) = patch else { return patch }
        if patchObject["$patch"]?.stringValue == "replace" {
            patchObject["$patch"] = nil
            return .object(patchObject.filter { !$0.key.hasPrefix("$") })
        }
        if patchObject["$patch"]?.stringValue == "delete" { return .null }
        var result = original.objectValue ?? [:]
        var retainKeys: [String]?
        if let keys = patchObject["$retainKeys"]?.arrayValue { retainKeys = keys.compactMap(\.stringValue) }
        for (key, value) in patchObject {
            if key.hasPrefix("$setElementOrder/") || key == "$retainKeys" || key == "$patch" { continue }
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let field = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                let drop = Set(value.arrayValue ?? [])
                if let current = result[field]?.arrayValue { result[field] = .array(current.filter { !drop.contains($0) }) }
                continue
            }
            if value == .null { result[key] = nil; continue }
            switch value {
            case .object:
                let merged = strategicMerge(result[key] ?? .null, patch: value)
                result[key] = merged == .null ? nil : merged
            case .array(let patchItems):
                let current = result[key]?.arrayValue ?? []
                if let mk = mergeKey(field: key, items: current + patchItems),
                   patchItems.allSatisfy({ $0.objectValue != nil }) {
                    result[key] = .array(mergeList(current, patchItems, key: mk))
                } else if primitiveMergeLists.contains(key) {
                    var out = current
                    for item in patchItems where !out.contains(item) { out.append(item) }
                    result[key] = .array(out)
                } else {
                    result[key] = .array(patchItems.map(stripDirectives))
                }
            default:
                result[key] = value
            }
        }
        if let retainKeys { result = result.filter { retainKeys.contains($0.key) } }
        return .object(result)
    }

    private static func mergeList(_ current: [JSONValue], _ patch: [JSONValue], key: String) -> [JSONValue] {
        var out = current
        if patch.count == 1, patch[0]["$patch"]?.stringValue == "replace" { return [] }
        for item in patch {
            let k = item[key]
            let directive = item["$patch"]?.stringValue
            if let i = out.firstIndex(where: { $0[key] == k && k != nil }) {
                if directive == "delete" { out.remove(at: i) }
                else if directive == "replace" { out[i] = stripDirectives(item) }
                else { out[i] = strategicMerge(out[i], patch: item) }
            } else if directive != "delete" {
                out.append(stripDirectives(item))
            }
        }
        return out
    }

    private static func stripDirectives(_ v: JSONValue) -> JSONValue {
        switch v {
        case .object(let o):
            return .object(o.filter { !$0.key.hasPrefix("$") }.mapValues(stripDirectives))
        case .array(let a): return .array(a.map(stripDirectives))
        default: return v
        }
    }

    // MARK: - Dotted paths

    static func get(_ obj: JSONValue, path: String) -> JSONValue? {
        var cur: JSONValue? = obj
        for key in path.split(separator: ".") { cur = cur?[String(key)] }
        return cur
    }

    static func set(_ obj: JSONValue, path: String, to value: JSONValue?) -> JSONValue {
        let keys = path.split(separator: ".").map(String.init)
        return set(obj, keys[...], value)
    }

    static func set(_ obj: JSONValue, keys: [String], to value: JSONValue?) -> JSONValue {
        set(obj, keys[...], value)
    }

    private static func set(_ obj: JSONValue, _ keys: ArraySlice<String>, _ value: JSONValue?) -> JSONValue {
        guard let first = keys.first else { return value ?? .null }
        var o = obj.objectValue ?? [:]
        if keys.count == 1 { o[first] = value } else { o[first] = set(o[first] ?? .object([:]), keys.dropFirst(), value) }
        return .object(o)
    }
}
