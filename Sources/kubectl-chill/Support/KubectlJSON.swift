import Shared

/// JSON as `kubectl get -o json` prints it (Go's json.MarshalIndent with four spaces): `"key": value`,
/// keys sorted (as for custom resources), `<`, `>` and `&` escaped, whole numbers without a fraction.
enum KubectlJSON {
    static func format(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: 0, into: &out)
        return out
    }

    static let step = "    "

    static func write(_ value: JSONValue, indent: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += number(d)
        case .string(let s): out += quoted(s)
        case .array(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += String(repeating: step, count: indent + 1)
                write(item, indent: indent + 1, into: &out)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: step, count: indent) + "]"
        case .object(let fields):
            guard !fields.isEmpty else { out += "{}"; return }
            out += "{\n"
            let keys = fields.keys.sorted()
            for (i, key) in keys.enumerated() {
                out += String(repeating: step, count: indent + 1) + quoted(key) + ": "
                write(fields[key]!, indent: indent + 1, into: &out)
                out += i == keys.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: step, count: indent) + "}"
        }
    }

    /// Go's float formatting for the values chill prints: `36000`, `42.4`.
    static func number(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return "\(d)"
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": out += unicodeEscape(scalar)
            default: out += scalar.value < 0x20 ? unicodeEscape(scalar) : String(scalar)
            }
        }
        return out + "\""
    }

    static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

extension JSONValue {
    /// Whole floating-point numbers as integers, so JSON and YAML print the same `36000` (kubectl's YAML
    /// comes from its JSON, where a number has no type).
    var wholeNumbersAsIntegers: JSONValue {
        switch self {
        case .double(let d) where d.isFinite && d == d.rounded() && abs(d) < 1e15: .int(Int(d))
        case .array(let items): .array(items.map(\.wholeNumbersAsIntegers))
        case .object(let fields): .object(fields.mapValues(\.wholeNumbersAsIntegers))
        default: self
        }
    }
}

/// kubectl's ages and durations (apimachinery's `duration.HumanDuration`): `45s`, `3m12s`, `12m`,
/// `5h30m`, `20h`, `2d4h`, `30d`, `2y10d`; one format for every age and duration chill prints.
func humanDuration(seconds: Double) -> String {
    let s = Int(max(0, seconds))
    if s < 120 { return "\(s)s" }
    let minutes = s / 60
    if minutes < 10 { return s % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(s % 60)s" }
    if minutes < 180 { return "\(minutes)m" }
    let hours = s / 3600
    if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
    if hours < 48 { return "\(hours)h" }
    if hours < 24 * 8 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
    if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
    let years = hours / 24 / 365, days = (hours / 24) % 365
    if hours < 24 * 365 * 8 { return days == 0 ? "\(years)y" : "\(years)y\(days)d" }
    return "\(years)y"
}
