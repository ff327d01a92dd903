import Shared

/// A parsed `labelSelector` (equality- and set-based, like k8s.io/apimachinery/pkg/labels).
struct LabelSelector: Sendable {
    enum Op: Sendable { case equals, notEquals, `in`, notIn, exists, doesNotExist }
    struct Requirement: Sendable {
        var key: String
        var op: Op
        var values: [String]
    }
    var requirements: [Requirement] = []
    var isEmpty: Bool { requirements.isEmpty }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            let v = labels[r.key]
            switch r.op {
            case .equals, .in: return v.map { r.values.contains($0) } ?? false
            case .notEquals, .notIn: return v.map { !r.values.contains($0) } ?? true
            case .exists: return v != nil
            case .doesNotExist: return v == nil
            }
        }
    }

    /// Builds a selector from a `matchLabels`/`matchExpressions` object (a Deployment's spec.selector).
    init(labelSelectorObject obj: JSONValue?) {
        for (k, v) in obj?["matchLabels"]?.objectValue ?? [:] {
            requirements.append(Requirement(key: k, op: .equals, values: [v.stringValue ?? ""]))
        }
        for e in obj?["matchExpressions"]?.arrayValue ?? [] {
            let key = e["key"]?.stringValue ?? ""
            let values = (e["values"]?.arrayValue ?? []).compactMap(\.stringValue)
            switch e["operator"]?.stringValue {
            case "In": requirements.append(Requirement(key: key, op: .in, values: values))
            case "NotIn": requirements.append(Requirement(key: key, op: .notIn, values: values))
            case "Exists": requirements.append(Requirement(key: key, op: .exists, values: []))
            case "DoesNotExist": requirements.append(Requirement(key: key, op: .doesNotExist, values: []))
            default: break
            }
        }
        requirements.sort { $0.key < $1.key }
    }

    /// The string form (`app=x,tier in (a,b)`), as used in Scale `status.selector`.
    var string: String {
        requirements.map { r in
            switch r.op {
            case .equals: return "\(r.key)=\(r.values.first ?? "")"
            case .notEquals: return "\(r.key)!=\(r.values.first ?? "")"
            case .in: return "\(r.key) in (\(r.values.sorted().joined(separator: ",")))"
            case .notIn: return "\(r.key) notin (\(r.values.sorted().joined(separator: ",")))"
            case .exists: return r.key
            case .doesNotExist: return "!\(r.key)"
            }
        }.joined(separator: ",")
    }

    init() {}

    // MARK: - Parsing

    private enum Token: Equatable {
        case identifier(String), equals, doubleEquals, notEquals, bang, open, close, comma, `in`, notIn, end
        var text: String {
            switch self {
            case .identifier(let s): return s
            case .equals: return "="
            case .doubleEquals: return "=="
            case .notEquals: return "!="
            case .bang: return "!"
            case .open: return "("
            case .close: return ")"
            case .comma: return ","
            case .in: return "in"
            case .notIn: return "notin"
            case .end: return ""
            }
        }
    }

    private static func lex(_ s: String) -> [Token] {
        var tokens: [Token] = []
        let chars = Array(s)
        var i = 0
        func isIdent(_ c: Character) -> Bool { c.isLetter || c.isNumber || "-_./".contains(c) }
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "\t" { i += 1; continue }
            if c == "=" {
                if i + 1 < chars.count, chars[i + 1] == "=" { tokens.append(.doubleEquals); i += 2 } else { tokens.append(.equals); i += 1 }
            } else if c == "!" {
                if i + 1 < chars.count, chars[i + 1] == "=" { tokens.append(.notEquals); i += 2 } else { tokens.append(.bang); i += 1 }
            } else if c == "(" { tokens.append(.open); i += 1 }
            else if c == ")" { tokens.append(.close); i += 1 }
            else if c == "," { tokens.append(.comma); i += 1 }
            else {
                var j = i
                while j < chars.count, isIdent(chars[j]) || !" \t=!(),".contains(chars[j]) { j += 1 }
                let word = String(chars[i..<j])
                tokens.append(word == "in" ? .in : word == "notin" ? .notIn : .identifier(word))
                i = j
            }
        }
        tokens.append(.end)
        return tokens
    }

    static func parse(_ s: String) throws(APIError) -> LabelSelector {
        var sel = LabelSelector()
        let tokens = lex(s)
        var i = 0
        func fail(_ t: Token, _ expected: String) -> APIError {
            let found = t == .end ? "end of string" : t.text
            return APIError.badRequest("found '\(found)', expected: \(expected)")
        }
        if tokens == [.end] { return sel }
        while true {
            var negate = false
            if tokens[i] == .bang { negate = true; i += 1 }
            guard case .identifier(let key) = tokens[i] else {
                throw fail(tokens[i], negate ? "identifier" : "!, identifier, or 'end of string'")
            }
            i += 1
            if negate {
                sel.requirements.append(Requirement(key: key, op: .doesNotExist, values: []))
            } else {
                switch tokens[i] {
                case .comma, .end:
                    sel.requirements.append(Requirement(key: key, op: .exists, values: []))
                case .equals, .doubleEquals, .notEquals:
                    let op: Op = tokens[i] == .notEquals ? .notEquals : .equals
                    i += 1
                    var value = ""
                    if case .identifier(let v) = tokens[i] { value = v; i += 1 }
                    else if tokens[i] != .comma && tokens[i] != .end { throw fail(tokens[i], "identifier") }
                    sel.requirements.append(Requirement(key: key, op: op, values: [value]))
                case .in, .notIn:
                    let op: Op = tokens[i] == .in ? .in : .notIn
                    i += 1
                    guard tokens[i] == .open else { throw fail(tokens[i], "'('") }
                    i += 1
                    var values: [String] = []
                    while true {
                        if case .identifier(let v) = tokens[i] { values.append(v); i += 1 }
                        if tokens[i] == .comma { i += 1; continue }
                        if tokens[i] == .close { i += 1; break }
                        throw fail(tokens[i], "',' or ')'")
                    }
                    sel.requirements.append(Requirement(key: key, op: op, values: values))
                default:
                    throw fail(tokens[i], "'=', '!=', '==', 'in', notin'")
                }
            }
            if tokens[i] == .end { break }
            guard tokens[i] == .comma else { throw fail(tokens[i], "','") }
            i += 1
        }
        return sel
    }
}

/// A parsed `fieldSelector`: `a=b`, `a==b`, `a!=b`, comma-separated.
struct FieldSelector: Sendable {
    struct Term: Sendable {
        var field: String
        var value: String
        var negated: Bool
    }
    var terms: [Term] = []
    var isEmpty: Bool { terms.isEmpty }

    static func parse(_ s: String, for rt: ResourceType) throws(APIError) -> FieldSelector {
        var sel = FieldSelector()
        for part in s.split(separator: ",", omittingEmptySubsequences: true) {
            let p = String(part)
            let term: Term
            if let r = p.range(of: "!=") {
                term = Term(field: String(p[..<r.lowerBound]), value: String(p[r.upperBound...]), negated: true)
            } else if let r = p.range(of: "==") {
                term = Term(field: String(p[..<r.lowerBound]), value: String(p[r.upperBound...]), negated: false)
            } else if let r = p.range(of: "=") {
                term = Term(field: String(p[..<r.lowerBound]), value: String(p[r.upperBound...]), negated: false)
            } else {
                throw APIError.badRequest("invalid selector: '\(s)'; can't understand '\(p)'")
            }
            let allowed = ["metadata.name", "metadata.namespace"] + rt.extraFieldSelectors
            guard allowed.contains(term.field) else {
                if rt.isCustom || !rt.extraFieldSelectors.isEmpty {
                    throw APIError.badRequest("field label not supported: \(term.field)")
                }
                throw APIError.badRequest("\"\(term.field)\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
            }
            sel.terms.append(term)
        }
        return sel
    }

    func matches(_ obj: JSONValue) -> Bool {
        terms.allSatisfy { t in
            let actual = FieldSelector.value(of: t.field, in: obj)
            return (actual == t.value) != t.negated
        }
    }

    static func value(of field: String, in obj: JSONValue) -> String {
        var cur: JSONValue? = obj
        for key in field.split(separator: ".") { cur = cur?[String(key)] }
        switch cur {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .bool(let b)?: return b ? "true" : "false"
        case .object(let o)? where field == "source": return o["component"]?.stringValue ?? ""
        default: return ""
        }
    }
}

extension JSONValue {
    /// `metadata.labels` as a string map.
    var labels: [String: String] {
        var out: [String: String] = [:]
        for (k, v) in self["metadata"]?["labels"]?.objectValue ?? [:] { out[k] = v.stringValue ?? "" }
        return out
    }
}
