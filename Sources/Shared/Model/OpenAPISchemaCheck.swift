#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Checks on a CRD's `openAPIV3Schema` (as JSON) the way kube-apiserver does them, far enough for
/// chill's own CRD: structural-schema rules, default values, CEL cost bounds, and validation +
/// defaulting of objects with messages worded like the API server's (`spec.minReplicas in body
/// must be of type integer: "string"`). Usable by the in-process test API server.
public enum OpenAPISchemaCheck {
    /// One validation error, shaped like a `details.causes[]` entry of a 422 Status.
    public struct FieldError: Sendable, Hashable, CustomStringConvertible {
        /// `FieldValueInvalid`, `FieldValueTypeInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
        public var reason: String
        public var field: String
        public var message: String
        public var description: String { "\(field): \(message)" }
    }

    static let knownKeys: Set<String> = [
        "type", "description", "properties", "required", "items", "additionalProperties", "default", "enum",
        "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
        "pattern", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf",
        "anyOf", "allOf", "oneOf", "not", "nullable", "title", "example", "externalDocs",
        "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations",
    ]
    static let types: Set<String> = ["object", "array", "string", "integer", "number", "boolean"]

    // MARK: Structural schema

    /// Problems that would make kube-apiserver reject the schema (empty when none were found).
    /// Checks: every node has a `type` unless it is int-or-string or preserve-unknown-fields; only
    /// known keywords; arrays have `items`; `properties` and `additionalProperties` are exclusive;
    /// int-or-string nodes have the canonical `anyOf`; `metadata` at the root has no constraints;
    /// list-type map keys are required scalar properties; every `default` validates against its node;
    /// nodes with CEL rules bound the strings, lists and maps they use (cost estimation).
    public static func structuralProblems(_ schema: JSONValue) -> [String] {
        var problems: [String] = []
        if schema["type"]?.stringValue != "object" { problems.append("openAPIV3Schema: type must be object") }
        if let metadata = schema[path: "properties", "metadata"] {
            let extra = Set((metadata.objectValue ?? [:]).keys).subtracting(["type", "description"])
            if !extra.isEmpty || metadata["type"]?.stringValue != "object" {
                problems.append("openAPIV3Schema.properties[metadata]: must be just {type: object}, found \(extra.sorted())")
            }
        }
        check(schema, path: "openAPIV3Schema", into: &problems)
        return problems
    }

    private static func check(_ node: JSONValue, path: String, into problems: inout [String]) {
        guard let o = node.objectValue else {
            problems.append("\(path): must be an object")
            return
        }
        for key in o.keys where !knownKeys.contains(key) { problems.append("\(path): unknown keyword \(key)") }
        let intOrString = o["x-kubernetes-int-or-string"] == true
        let preserve = o["x-kubernetes-preserve-unknown-fields"] == true
        let type = o["type"]?.stringValue
        if let type, !types.contains(type) { problems.append("\(path).type: unknown type \(type)") }
        if type == nil && !intOrString && !preserve { problems.append("\(path): type is required") }
        if intOrString {
            if type != nil { problems.append("\(path): int-or-string must not have a type") }
            let canonical: JSONValue = [["type": "integer"], ["type": "string"]]
            if let anyOf = o["anyOf"], anyOf != canonical {
                problems.append("\(path).anyOf: int-or-string must be anyOf [integer, string]")
            }
        } else if o["anyOf"] != nil || o["oneOf"] != nil || o["allOf"] != nil || o["not"] != nil {
            problems.append("\(path): anyOf/oneOf/allOf/not are not used by this checker's schemas")
        }
        if o["properties"] != nil && o["additionalProperties"] != nil {
            problems.append("\(path): properties and additionalProperties are mutually exclusive")
        }
        if (o["properties"] != nil || o["additionalProperties"] != nil || o["required"] != nil) && type != "object" {
            problems.append("\(path): properties/additionalProperties/required need type object")
        }
        if type == "array" && o["items"] == nil { problems.append("\(path): arrays need items") }
        if o["items"] != nil && type != "array" { problems.append("\(path): items needs type array") }
        if let props = o["properties"]?.objectValue {
            for req in o["required"]?.arrayValue ?? [] {
                if let r = req.stringValue, props[r] == nil { problems.append("\(path).required: \(r) is not a property") }
            }
            for (name, child) in props.sorted(by: { $0.key < $1.key }) {
                check(child, path: "\(path).properties[\(name)]", into: &problems)
            }
        }
        if let ap = o["additionalProperties"] {
            if ap.boolValue == nil { check(ap, path: "\(path).additionalProperties", into: &problems) }
        }
        if let items = o["items"] { check(items, path: "\(path).items", into: &problems) }

        // x-kubernetes-list-type
        if let lt = o["x-kubernetes-list-type"]?.stringValue {
            if !["atomic", "set", "map"].contains(lt) { problems.append("\(path): unknown list type \(lt)") }
            if type != "array" { problems.append("\(path): list type on a non-array") }
            if lt == "map" {
                let keys = o["x-kubernetes-list-map-keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if keys.isEmpty { problems.append("\(path): list type map needs x-kubernetes-list-map-keys") }
                let item = o["items"] ?? .null
                let required = Set(item["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                for k in keys {
                    guard let prop = item[path: "properties", k] else {
                        problems.append("\(path): map key \(k) is not an item property")
                        continue
                    }
                    if !required.contains(k) && prop["default"] == nil {
                        problems.append("\(path): map key \(k) must be required or defaulted")
                    }
                    if !["string", "integer", "boolean", "number"].contains(prop["type"]?.stringValue ?? "") {
                        problems.append("\(path): map key \(k) must be a scalar")
                    }
                }
            }
        } else if o["x-kubernetes-list-map-keys"] != nil {
            problems.append("\(path): list-map-keys without list type map")
        }

        // Defaults must validate against their own node (the API server checks this on CRD create).
        if let def = o["default"] {
            var stripped = o
            stripped["default"] = nil
            for e in validate(def, schema: .object(stripped), path: path + ".default") {
                problems.append("\(path).default: \(e.message)")
            }
        }

        // CEL: rules need bounded inputs, or the cost estimate exceeds the budget.
        for rule in o["x-kubernetes-validations"]?.arrayValue ?? [] {
            guard let text = rule["rule"]?.stringValue, !text.isEmpty else {
                problems.append("\(path).x-kubernetes-validations: rule is required")
                continue
            }
            if (rule["message"]?.stringValue ?? "").isEmpty {
                problems.append("\(path).x-kubernetes-validations: rule \(text) has no message")
            }
            if text.contains("self") { problems += unbounded(node, path: path, label: "self") }
            if let props = o["properties"]?.objectValue {
                for (name, child) in props where text.contains("self.\(name)") {
                    problems += unbounded(child, path: "\(path).properties[\(name)]", label: "self.\(name)")
                }
            }
        }
    }

    private static func unbounded(_ node: JSONValue, path: String, label: String) -> [String] {
        let type = node["type"]?.stringValue
        if type == "string" || node["x-kubernetes-int-or-string"] == true {
            if node["maxLength"] == nil && node["enum"] == nil {
                return ["\(path): used in CEL as \(label) but has no maxLength"]
            }
        } else if type == "array" && node["maxItems"] == nil {
            return ["\(path): used in CEL as \(label) but has no maxItems"]
        } else if type == "object" && node["additionalProperties"] != nil && node["maxProperties"] == nil {
            return ["\(path): used in CEL as \(label) but has no maxProperties"]
        }
        return []
    }

    // MARK: Validation

    /// Validates `value` against `schema` (types, required, enum, bounds, pattern, sizes). Unknown
    /// fields are not errors (the API server prunes them). CEL rules are not evaluated here; see
    /// `CRDSchema.violations(of:path:)` for chill's own rules.
    public static func validate(_ value: JSONValue, schema: JSONValue, path: String) -> [FieldError] {
        var errors: [FieldError] = []
        validate(value, schema, path, &errors)
        return errors
    }

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double(let d): return d == d.rounded() ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    static func number(_ v: JSONValue) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    private static func validate(_ value: JSONValue, _ schema: JSONValue, _ path: String, _ errors: inout [FieldError]) {
        func invalid(_ detail: String, reason: String = "FieldValueInvalid") {
            errors.append(FieldError(reason: reason, field: path, message: "Invalid value: \(shortJSON(value)): \(path) in body \(detail)"))
        }
        if value == .null {
            if schema["nullable"] != true && schema["x-kubernetes-preserve-unknown-fields"] != true {
                // The API server drops nulls for non-nullable fields; nothing to check.
            }
            return
        }
        let actual = typeName(value)
        if schema["x-kubernetes-int-or-string"] == true {
            if actual != "integer" && actual != "string" {
                errors.append(FieldError(reason: "FieldValueTypeInvalid", field: path,
                    message: "Invalid value: \"\(actual)\": \(path) in body must be of type integer-or-string: \"\(actual)\""))
                return
            }
        } else if let type = schema["type"]?.stringValue {
            let ok = type == actual || (type == "number" && actual == "integer")
            if !ok {
                errors.append(FieldError(reason: "FieldValueTypeInvalid", field: path,
                    message: "Invalid value: \"\(actual)\": \(path) in body must be of type \(type): \"\(actual)\""))
                return
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            let list = allowed.map { shortJSON($0) }.joined(separator: ", ")
            errors.append(FieldError(reason: "FieldValueNotSupported", field: path,
                message: "Unsupported value: \(shortJSON(value)): supported values: \(list)"))
        }
        if let n = number(value) {
            if let min = schema["minimum"].flatMap(number) {
                if schema["exclusiveMinimum"] == true ? !(n > min) : !(n >= min) {
                    invalid("should be greater than \(schema["exclusiveMinimum"] == true ? "" : "or equal to ")\(fmt(schema["minimum"]!))")
                }
            }
            if let max = schema["maximum"].flatMap(number) {
                if schema["exclusiveMaximum"] == true ? !(n < max) : !(n <= max) {
                    invalid("should be less than \(schema["exclusiveMaximum"] == true ? "" : "or equal to ")\(fmt(schema["maximum"]!))")
                }
            }
        }
        if case .string(let s) = value {
            if let max = schema["maxLength"]?.intValue, s.count > max { invalid("should be at most \(max) chars long") }
            if let min = schema["minLength"]?.intValue, s.count < min { invalid("should be at least \(min) chars long") }
            if let p = schema["pattern"]?.stringValue, (try? Regex(p).firstMatch(in: s)) == nil {
                invalid("should match '\(p)'")
            }
            if schema["format"]?.stringValue == "date-time", !isRFC3339(s) {
                invalid("must be of type date-time: \(shortJSON(value))")
            }
        }
        if case .array(let items) = value {
            if let max = schema["maxItems"]?.intValue, items.count > max { invalid("should have at most \(max) items") }
            if let min = schema["minItems"]?.intValue, items.count < min { invalid("should have at least \(min) items") }
            if let itemSchema = schema["items"] {
                for (i, item) in items.enumerated() { validate(item, itemSchema, "\(path)[\(i)]", &errors) }
            }
            if schema["x-kubernetes-list-type"]?.stringValue == "map",
                let keys = schema["x-kubernetes-list-map-keys"]?.arrayValue?.compactMap(\.stringValue)
            {
                var seen = Set<[JSONValue]>()
                for (i, item) in items.enumerated() {
                    let key = keys.map { item[$0] ?? .null }
                    if !seen.insert(key).inserted {
                        errors.append(FieldError(reason: "FieldValueDuplicate", field: "\(path)[\(i)]",
                            message: "Duplicate value: \(shortJSON(.object(Dictionary(uniqueKeysWithValues: zip(keys, key)))))"))
                    }
                }
            }
        }
        if case .object(let o) = value {
            if let max = schema["maxProperties"]?.intValue, o.count > max { invalid("should have at most \(max) properties") }
            let props = schema["properties"]?.objectValue ?? [:]
            func child(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
            for req in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where o[req] == nil || o[req] == .null {
                errors.append(FieldError(reason: "FieldValueRequired", field: child(req), message: "Required value"))
            }
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                if let p = props[k] { validate(v, p, child(k), &errors) }
                else if let ap = schema["additionalProperties"], ap.objectValue != nil { validate(v, ap, child(k), &errors) }
            }
        }
    }

    private static func fmt(_ v: JSONValue) -> String {
        if case .double(let d) = v, d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return v.jsonString()
    }

    private static func shortJSON(_ v: JSONValue) -> String {
        switch v {
        case .object: return "\"object\""
        case .array: return "\"array\""
        default: return v.jsonString()
        }
    }

    /// RFC 3339 date-time, e.g. `2026-11-22T23:12:10Z` or `2026-11-22T23:12:10.123456+01:00`.
    public static func isRFC3339(_ s: String) -> Bool {
        let p = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
        return (try? Regex(p).wholeMatch(in: s)) != nil
    }

    // MARK: Defaulting

    /// Applies `default`s as the API server does: a missing property with a default gets it (then
    /// defaults inside it apply too); arrays and maps are defaulted element by element.
    public static func applyingDefaults(to value: JSONValue, schema: JSONValue) -> JSONValue {
        switch value {
        case .object(var o):
            if let props = schema["properties"]?.objectValue {
                for (k, p) in props {
                    if o[k] == nil, let d = p["default"] { o[k] = d }
                    if let v = o[k] { o[k] = applyingDefaults(to: v, schema: p) }
                }
            } else if let ap = schema["additionalProperties"], ap.objectValue != nil {
                for (k, v) in o { o[k] = applyingDefaults(to: v, schema: ap) }
            }
            return .object(o)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.map { applyingDefaults(to: $0, schema: itemSchema) })
        default:
            return value
        }
    }
}
