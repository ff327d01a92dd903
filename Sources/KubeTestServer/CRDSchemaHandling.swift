import Foundation
import Shared

/// Structural-schema handling of custom resources, as the apiextensions server does it: unknown fields are
/// pruned (a `Warning: 299` header each, or 400/422 with `fieldValidation=Strict`), `default`s filled in,
/// then the object is validated against the schema (422 with `details.causes`). CEL rules
/// (`x-kubernetes-validations`) are not evaluated; `setValidator` can stand in for them.
extension KubeStore {
    /// The `openAPIV3Schema` of a served custom resource version (nil for built-ins / no schema).
    func schema(for rt: ResourceType) -> JSONValue? {
        guard rt.isCustom else { return nil }
        return crdSchemas["\(rt.group)/\(rt.version)/\(rt.plural)"]
    }

    /// Unknown-field paths of `value` (dot paths, sorted depth-first like the real decoder's report), and the pruned value.
    static func prune(_ value: JSONValue, _ schema: JSONValue, path: String, root: Bool = false,
                      unknown: inout [String]) -> JSONValue {
        if schema["x-kubernetes-preserve-unknown-fields"] == true && schema["properties"] == nil { return value }
        switch value {
        case .object(var o):
            let props = schema["properties"]?.objectValue
            let additional = schema["additionalProperties"]
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true
            for k in o.keys.sorted() {
                let child = path.isEmpty ? k : "\(path).\(k)"
                if root && ["apiVersion", "kind", "metadata"].contains(k) { continue }
                if let p = props?[k] {
                    o[k] = prune(o[k]!, p, path: child, unknown: &unknown)
                } else if let additional, additional.objectValue != nil {
                    o[k] = prune(o[k]!, additional, path: child, unknown: &unknown)
                } else if props != nil && !preserve && additional != true {
                    unknown.append(child)
                    o[k] = nil
                }
            }
            return .object(o)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.enumerated().map { prune($1, itemSchema, path: "\(path)[\($0)]", unknown: &unknown) })
        default:
            return value
        }
    }

    static func hasCELRules(_ schema: JSONValue) -> Bool {
        switch schema {
        case .object(let o):
            return o["x-kubernetes-validations"] != nil || o.values.contains(where: hasCELRules)
        case .array(let a): return a.contains(where: hasCELRules)
        default: return false
        }
    }

    /// Prunes, defaults and validates a custom resource about to be stored. `patchedFrom`: the PATCH case
    /// (Strict gives the real server's odd 422 instead of a 400).
    func applySchema(_ rt: ResourceType, _ obj: JSONValue, name: String, isPatch: Bool) throws(APIError) -> JSONValue {
        guard let schema = schema(for: rt) else { return obj }
        var unknown: [String] = []
        let pruned = Self.prune(obj, schema, path: "", root: true, unknown: &unknown)
        if !unknown.isEmpty {
            let list = unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", ")
            switch requestFieldValidation ?? "" {
            case "Strict":
                if isPatch {
                    let quoted = KubeJSON.string(.string(KubeJSON.string(obj, sorted: true)))
                    throw APIError.invalid(kind: "", group: "", name: "",
                                           causes: [.invalid("patch", "\(quoted): strict decoding error: \(list)")])
                }
                throw APIError.badRequest("\(rt.kind) in version \"\(rt.version)\" cannot be handled as a \(rt.kind): strict decoding error: \(list)")
            case "Ignore":
                break
            default:
                requestWarnings += unknown.map { "unknown field \"\($0)\"" }
            }
        }
        var body = pruned
        body["metadata"] = nil
        body = OpenAPISchemaCheck.applyingDefaults(to: body, schema: schema)
        var result = body
        result["metadata"] = obj["metadata"]
        var check = body
        check["apiVersion"] = nil
        check["kind"] = nil
        var causes = OpenAPISchemaCheck.validate(check, schema: schema, path: "")
            .filter { !["apiVersion", "kind", "metadata"].contains($0.field) }
            .map { Cause(reason: $0.reason, message: $0.message, field: $0.field) }
        if !causes.isEmpty && Self.hasCELRules(schema) {
            causes.append(Cause(reason: "FieldValueInvalid",
                                message: "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                                field: "<nil>"))
        }
        if !causes.isEmpty { throw APIError.invalid(rt, name: name, causes: causes) }
        return result
    }
}
