/// Scalar resolution (reading) and quoting decisions (writing).
///
/// Reading follows the YAML 1.2 core schema for plain scalars, as Kubernetes' decoder does:
/// `yes`/`no`/`on`/`off` stay strings and `0777` is the decimal 777. Writing is more cautious and
/// also quotes anything a YAML 1.1 reader (PyYAML, old go-yaml) would take for a non-string.
enum YAMLScalar {
    static let strTag = "tag:yaml.org,2002:str"
    static let intTag = "tag:yaml.org,2002:int"
    static let floatTag = "tag:yaml.org,2002:float"
    static let boolTag = "tag:yaml.org,2002:bool"
    static let nullTag = "tag:yaml.org,2002:null"

    // MARK: - Core schema

    static func isNull(_ text: String) -> Bool {
        switch text {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func bool(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func isHexDigit(_ c: UInt8) -> Bool {
        isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }
    private static func isOctalDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x37 }

    enum IntForm { case decimal, hex, octal }

    /// Which core-schema integer form `text` has, if any (regardless of whether it fits an Int).
    static func intForm(_ text: String) -> IntForm? {
        let u = Array(text.utf8)
        if u.count > 2, u[0] == 0x30, u[1] == 0x78 /* 0x */, u[2...].allSatisfy(isHexDigit) { return .hex }
        if u.count > 2, u[0] == 0x30, u[1] == 0x6F /* 0o */, u[2...].allSatisfy(isOctalDigit) { return .octal }
        var digits = u[...]
        if let first = digits.first, first == 0x2B || first == 0x2D { digits = digits.dropFirst() }
        if !digits.isEmpty, digits.allSatisfy(isDigit) { return .decimal }
        return nil
    }

    /// A core-schema integer that fits in an Int.
    static func int(_ text: String) -> Int? {
        switch intForm(text) {
        case .decimal: return Int(text)
        case .hex: return Int(text.dropFirst(2), radix: 16)
        case .octal: return Int(text.dropFirst(2), radix: 8)
        case nil: return nil
        }
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    static func isCoreFloatSyntax(_ text: String) -> Bool {
        let u = Array(text.utf8)
        var i = 0
        func digits() -> Int {
            let start = i
            while i < u.count, isDigit(u[i]) { i += 1 }
            return i - start
        }
        if i < u.count, u[i] == 0x2B || u[i] == 0x2D { i += 1 }
        if i < u.count, u[i] == 0x2E {  // .5
            i += 1
            if digits() == 0 { return false }
        } else {
            if digits() == 0 { return false }
            if i < u.count, u[i] == 0x2E {
                i += 1
                _ = digits()
            }
        }
        if i < u.count, u[i] == 0x65 || u[i] == 0x45 {
            i += 1
            if i < u.count, u[i] == 0x2B || u[i] == 0x2D { i += 1 }
            if digits() == 0 { return false }
        }
        return i == u.count
    }

    static func special(_ text: String) -> Double? {
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: return nil
        }
    }

    /// A core-schema float (also accepts the integer forms, for `!!float 1`).
    static func double(_ text: String) -> Double? {
        if let d = special(text) { return d }
        if isCoreFloatSyntax(text) { return Double(text) }
        if let i = int(text) { return Double(i) }
        return nil
    }

    /// The value of an untagged plain scalar.
    static func resolvePlain(_ text: String) -> JSONValue {
        guard let first = text.utf8.first else { return .null }
        // Fast path: every non-string form starts with one of these characters.
        switch first {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            if let i = int(text) { return .int(i) }
            if let d = special(text) { return .double(d) }
            if isCoreFloatSyntax(text), let d = Double(text) { return .double(d) }  // also too-large integers
            return .string(text)
        case UInt8(ascii: "~"), UInt8(ascii: "n"), UInt8(ascii: "N"):
            return isNull(text) ? .null : .string(text)
        case UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"):
            if let b = bool(text) { return .bool(b) }
            return .string(text)
        default:
            return .string(text)
        }
    }

    // MARK: - Writing

    /// Whether `text`, written as a plain scalar, could be read back as anything but this string,
    /// by this decoder or by a YAML 1.1 one.
    static func needsQuotes(_ text: String) -> Bool {
        guard let first = text.utf8.first else { return true }
        switch first {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            if resolvePlain(text) != .string(text) || intForm(text) != nil || isCoreFloatSyntax(text) { return true }
            return isYAML11Number(text) || looksLikeTimestamp(text)
        default:
            if resolvePlain(text) != .string(text) { return true }
            switch text {
            case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
                "on", "On", "ON", "off", "Off", "OFF", "<<", "=":
                return true
            default:
                return false
            }
        }
    }

    // MARK: - YAML 1.1 implicit types (PyYAML's resolver.py), to keep old readers from re-typing strings

    private static func isBinaryDigitOrUnderscore(_ c: UInt8) -> Bool { c == 0x30 || c == 0x31 || c == 0x5F }
    private static func isOctalDigitOrUnderscore(_ c: UInt8) -> Bool { isOctalDigit(c) || c == 0x5F }
    private static func isDigitOrUnderscore(_ c: UInt8) -> Bool { isDigit(c) || c == 0x5F }
    private static func isHexDigitOrUnderscore(_ c: UInt8) -> Bool { isHexDigit(c) || c == 0x5F }

    /// `[0-9][0-9_]*(:[0-5]?[0-9])+`, with `leading` restricting the first digit.
    private static func isSexagesimal(_ u: ArraySlice<UInt8>, leading: (UInt8) -> Bool) -> Bool {
        let parts = u.split(separator: 0x3A, omittingEmptySubsequences: false)
        guard parts.count >= 2, let head = parts.first, let first = head.first, leading(first),
            head.dropFirst().allSatisfy(isDigitOrUnderscore)
        else { return false }
        for part in parts.dropFirst() {
            switch part.count {
            case 1: if !isDigit(part[part.startIndex]) { return false }
            case 2:
                let a = part[part.startIndex], b = part[part.startIndex + 1]
                if !(a >= 0x30 && a <= 0x35) || !isDigit(b) { return false }
            default: return false
            }
        }
        return true
    }

    /// `([eE][-+][0-9]+)?` covering all of `u`.
    private static func isOptionalYAML11Exponent(_ u: ArraySlice<UInt8>) -> Bool {
        if u.isEmpty { return true }
        guard u.count >= 3, u[u.startIndex] == 0x65 || u[u.startIndex] == 0x45 else { return false }
        let sign = u[u.startIndex + 1]
        return (sign == 0x2B || sign == 0x2D) && u.dropFirst(2).allSatisfy(isDigit)
    }

    /// Whether a YAML 1.1 reader would resolve `text` as an int or a float.
    static func isYAML11Number(_ text: String) -> Bool {
        let all = Array(text.utf8)[...]
        var u = all
        if let first = u.first, first == 0x2B || first == 0x2D { u = u.dropFirst() }
        guard let first = u.first else { return false }
        let rest = u.dropFirst()
        // Integers.
        if first == 0x30 {
            if rest.isEmpty { return true }
            if let x = rest.first, x == 0x62, rest.count > 1, rest.dropFirst().allSatisfy(isBinaryDigitOrUnderscore) { return true }
            if let x = rest.first, x == 0x78, rest.count > 1, rest.dropFirst().allSatisfy(isHexDigitOrUnderscore) { return true }
            if rest.allSatisfy(isOctalDigitOrUnderscore) { return true }
        } else if isDigit(first) {
            if rest.allSatisfy(isDigitOrUnderscore) { return true }
            if isSexagesimal(u, leading: { $0 >= 0x31 && $0 <= 0x39 }) { return true }
        }
        // Floats.
        if let dot = u.firstIndex(of: 0x2E) {
            let whole = u[..<dot]
            let fraction = u[(dot + 1)...]
            let fractionDigits = fraction.prefix(while: isDigitOrUnderscore)
            let exponent = fraction[fractionDigits.endIndex...]
            if let w = whole.first, isDigit(w), whole.allSatisfy(isDigitOrUnderscore), isOptionalYAML11Exponent(exponent) {
                return true  // [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?
            }
            if whole.isEmpty, all.first == 0x2E, let f = fraction.first, isDigit(f), isOptionalYAML11Exponent(exponent) {
                return true  // \.[0-9][0-9_]*([eE][-+][0-9]+)?
            }
            if isSexagesimal(whole, leading: isDigit), fraction.allSatisfy(isDigitOrUnderscore) {
                return true  // [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
            }
        }
        return special(text) != nil
    }

    /// `YYYY-M(M)-D(D)` alone or followed by a time (YAML 1.1 timestamps; kubectl quotes them too).
    static func looksLikeTimestamp(_ text: String) -> Bool {
        let u = Array(text.utf8)
        var i = 0
        func digits(_ min: Int, _ max: Int) -> Bool {
            let start = i
            while i < u.count, i - start < max, isDigit(u[i]) { i += 1 }
            return i - start >= min
        }
        guard digits(4, 4), i < u.count, u[i] == 0x2D else { return false }
        i += 1
        guard digits(1, 2), i < u.count, u[i] == 0x2D else { return false }
        i += 1
        guard digits(1, 2) else { return false }
        if i == u.count { return true }
        let c = u[i]
        return c == 0x54 || c == 0x74 || c == 0x20 || c == 0x09
    }
}
