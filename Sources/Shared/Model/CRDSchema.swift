#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A small DSL for an `apiextensions.k8s.io/v1` structural OpenAPI schema. Each node knows its
/// type, description, default, bounds and CEL rules, and renders itself as JSON (`json`) or as a
/// Markdown field reference (`referenceRows`). Every CEL rule carries a Swift mirror (`check`), so
/// clients and the in-process test server can apply the same rules without a CEL interpreter.
public struct CRDSchema: Sendable {
    public indirect enum Kind: Sendable {
        case string
        case integer(format: String?)
        case number
        case boolean
        /// An object with fixed properties.
        case object([Field])
        /// An object used as a map (`additionalProperties`).
        case map(CRDSchema)
        case array(CRDSchema)
        /// `x-kubernetes-int-or-string` (quantities).
        case intOrString
        /// A free-form object kept verbatim (`x-kubernetes-preserve-unknown-fields`).
        case preservedObject
    }

    public struct Field: Sendable {
        public var name: String
        public var schema: CRDSchema
        public var required: Bool
        public init(_ name: String, _ schema: CRDSchema, required: Bool = false) {
            self.name = name
            self.schema = schema
            self.required = required
        }
    }

    /// A CEL validation rule (`x-kubernetes-validations`) and its Swift equivalent.
    public struct Rule: Sendable {
        public var rule: String
        public var message: String
        /// Returns true when `self` (the node's value, after defaulting) satisfies the rule.
        public var check: @Sendable (JSONValue) -> Bool
        public init(_ rule: String, message: String, check: @escaping @Sendable (JSONValue) -> Bool) {
            self.rule = rule
            self.message = message
            self.check = check
        }
        public var json: JSONValue { ["rule": .string(rule), "message": .string(message)] }
    }

    public var kind: Kind
    public var description: String
    public var defaultValue: JSONValue?
    public var format: String?
    public var enumValues: [String]?
    public var minimum: JSONValue?
    public var maximum: JSONValue?
    public var exclusiveMinimum = false
    public var minLength: Int?
    public var maxLength: Int?
    public var pattern: String?
    public var maxItems: Int?
    public var maxProperties: Int?
    public var listType: String?
    public var listMapKeys: [String]?
    public var rules: [Rule] = []

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    // MARK: Builders

    public static func string(
        _ description: String, default: String? = nil, enum values: [String]? = nil, minLength: Int? = nil,
        maxLength: Int? = nil, pattern: String? = nil, format: String? = nil, rules: [Rule] = []
    ) -> CRDSchema {
        var s = CRDSchema(.string, description)
        s.defaultValue = `default`.map(JSONValue.string)
        s.enumValues = values
        s.minLength = minLength
        s.maxLength = maxLength
        s.pattern = pattern
        s.format = format
        s.rules = rules
        return s
    }

    public static func integer(
        _ description: String, default: Int? = nil, minimum: Int? = nil, maximum: Int? = nil,
        format: String? = nil
    ) -> CRDSchema {
        var s = CRDSchema(.integer(format: format), description)
        s.defaultValue = `default`.map(JSONValue.int)
        s.minimum = minimum.map(JSONValue.int)
        s.maximum = maximum.map(JSONValue.int)
        return s
    }

    public static func number(
        _ description: String, default: Double? = nil, minimum: Double? = nil, exclusiveMinimum: Bool = false,
        maximum: Double? = nil
    ) -> CRDSchema {
        var s = CRDSchema(.number, description)
        s.defaultValue = `default`.map(JSONValue.double)
        s.minimum = minimum.map(JSONValue.double)
        s.exclusiveMinimum = exclusiveMinimum
        s.maximum = maximum.map(JSONValue.double)
        return s
    }

    public static func boolean(_ description: String, default: Bool? = nil) -> CRDSchema {
        var s = CRDSchema(.boolean, description)
        s.defaultValue = `default`.map(JSONValue.bool)
        return s
    }

    public static func object(_ description: String, _ fields: [Field], rules: [Rule] = []) -> CRDSchema {
        var s = CRDSchema(.object(fields), description)
        s.rules = rules
        return s
    }

    public static func map(_ description: String, of values: CRDSchema, maxProperties: Int? = nil) -> CRDSchema {
        var s = CRDSchema(.map(values), description)
        s.maxProperties = maxProperties
        return s
    }

    public static func array(
        _ description: String, of items: CRDSchema, maxItems: Int? = nil, listType: String? = nil,
        listMapKeys: [String]? = nil
    ) -> CRDSchema {
        var s = CRDSchema(.array(items), description)
        s.maxItems = maxItems
        s.listType = listType
        s.listMapKeys = listMapKeys
        return s
    }

    /// A Kubernetes resource quantity: int-or-string with Kubernetes' quantity pattern.
    public static func quantity(_ description: String, default: String? = nil) -> CRDSchema {
        var s = CRDSchema(.intOrString, description)
        s.pattern = VLLMModel.Quantity.pattern
        s.defaultValue = `default`.map(JSONValue.string)
        return s
    }

    public static func preservedObject(_ description: String) -> CRDSchema {
        CRDSchema(.preservedObject, description)
    }

    // MARK: Rendering

    /// The OpenAPI v3 JSON of this node.
    public var json: JSONValue {
        var o: [String: JSONValue] = [:]
        if !description.isEmpty { o["description"] = .string(description) }
        switch kind {
        case .string: o["type"] = "string"
        case .integer(let format):
            o["type"] = "integer"
            if let format { o["format"] = .string(format) }
        case .number: o["type"] = "number"
        case .boolean: o["type"] = "boolean"
        case .object(let fields):
            o["type"] = "object"
            if !fields.isEmpty {
                o["properties"] = .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.schema.json) }))
            }
            let required = fields.filter(\.required).map { JSONValue.string($0.name) }
            if !required.isEmpty { o["required"] = .array(required) }
        case .map(let values):
            o["type"] = "object"
            o["additionalProperties"] = values.json
        case .array(let items):
            o["type"] = "array"
            o["items"] = items.json
        case .intOrString:
            o["x-kubernetes-int-or-string"] = true
            o["anyOf"] = [["type": "integer"], ["type": "string"]]
        case .preservedObject:
            o["type"] = "object"
            o["x-kubernetes-preserve-unknown-fields"] = true
        }
        if let defaultValue { o["default"] = defaultValue }
        if let format { o["format"] = .string(format) }
        if let enumValues { o["enum"] = .array(enumValues.map(JSONValue.string)) }
        if let minimum { o["minimum"] = minimum }
        if let maximum { o["maximum"] = maximum }
        if exclusiveMinimum { o["exclusiveMinimum"] = true }
        if let minLength { o["minLength"] = .int(minLength) }
        if let maxLength { o["maxLength"] = .int(maxLength) }
        if let pattern { o["pattern"] = .string(pattern) }
        if let maxItems { o["maxItems"] = .int(maxItems) }
        if let maxProperties { o["maxProperties"] = .int(maxProperties) }
        if let listType { o["x-kubernetes-list-type"] = .string(listType) }
        if let listMapKeys { o["x-kubernetes-list-map-keys"] = .array(listMapKeys.map(JSONValue.string)) }
        if !rules.isEmpty { o["x-kubernetes-validations"] = .array(rules.map(\.json)) }
        return .object(o)
    }

    /// A short type name for documentation: `string`, `integer`, `[]string`, `map[string]string`, `quantity`.
    public var typeName: String {
        switch kind {
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .object: return "object"
        case .map(let v): return "map[string]\(v.typeName)"
        case .array(let i): return "[]\(i.typeName)"
        case .intOrString: return "quantity"
        case .preservedObject: return "object (free-form)"
        }
    }

    /// One documentation row per field below this node, depth first: (path, type, required, default, description+constraints).
    public func referenceRows(prefix: String) -> [(path: String, type: String, required: Bool, default: String, description: String)] {
        var rows: [(path: String, type: String, required: Bool, default: String, description: String)] = []
        let fields: [Field]
        switch kind {
        case .object(let f): fields = f
        case .array(let items): if case .object(let f) = items.kind { fields = f } else { fields = [] }
        default: fields = []
        }
        let childPrefix: String
        if case .array = kind { childPrefix = prefix + "[]" } else { childPrefix = prefix }
        for field in fields {
            let path = childPrefix.isEmpty ? field.name : childPrefix + "." + field.name
            let s = field.schema
            var text = s.description
            var constraints: [String] = []
            if let e = s.enumValues { constraints.append("one of " + e.map { "`\($0)`" }.joined(separator: ", ")) }
            if let m = s.minimum { constraints.append((s.exclusiveMinimum ? "> " : ">= ") + m.jsonString()) }
            if let m = s.maximum { constraints.append("<= " + m.jsonString()) }
            if let l = s.maxLength { constraints.append("at most \(l) characters") }
            if let l = s.maxItems { constraints.append("at most \(l) items") }
            if let l = s.maxProperties { constraints.append("at most \(l) entries") }
            for r in s.rules { constraints.append("rule: " + r.message) }
            if !constraints.isEmpty { text += " (" + constraints.joined(separator: "; ") + ")" }
            let def = s.defaultValue.map { v in v.stringValue ?? v.jsonString() } ?? ""
            rows.append((path, s.typeName, field.required, def, text))
            rows += s.referenceRows(prefix: path)
        }
        return rows
    }

    /// The OpenAPI type name (`object`, `string`, …; int-or-string nodes report `string`).
    var schemaTypeName: String {
        switch kind {
        case .string, .intOrString: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .object, .map, .preservedObject: return "object"
        case .array: return "array"
        }
    }

    /// The fields of an object node (empty for other kinds).
    public var fields: [Field] {
        if case .object(let f) = kind { return f }
        return []
    }

    /// Evaluates the Swift mirrors of all CEL rules on `value` and below (after defaulting),
    /// reporting each violation with its field path (`spec`, `spec.idleTimeout`, …) as the API server does.
    public func violations(of value: JSONValue, path: String) -> [VLLMModelCRD.Violation] {
        var out: [VLLMModelCRD.Violation] = []
        if value == .null { return out }
        for rule in rules where !rule.check(value) {
            out.append(.init(field: path, rule: rule.rule, message: rule.message, type: schemaTypeName))
        }
        switch kind {
        case .object(let fields):
            for f in fields {
                if let child = value[f.name] { out += f.schema.violations(of: child, path: path + "." + f.name) }
            }
        case .array(let items):
            for (i, child) in (value.arrayValue ?? []).enumerated() {
                out += items.violations(of: child, path: "\(path)[\(i)]")
            }
        case .map(let values):
            for (k, child) in (value.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                out += values.violations(of: child, path: "\(path)[\(k)]")
            }
        default: break
        }
        return out
    }
}
