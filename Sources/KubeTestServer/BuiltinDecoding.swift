import Foundation
import Shared

/// What kube-apiserver's typed decoding and strategies do to built-in objects on write: MicroTime fields must
/// carry exactly 6 fractional digits (else 400, with Go's time-parse text), and resource quantities are
/// stored in canonical form (`0.5` → `500m`, `1024Mi` → `1Gi`, `1000m` → `1`).
enum BuiltinDecoding {
    /// MicroTime fields per storage key (dot paths).
    static let microTimeFields: [String: [String]] = [
        ResourceType.leases.storageKey: ["spec.acquireTime", "spec.renewTime"],
        ResourceType.events.storageKey: ["eventTime", "series.lastObservedTime"],  // also events.k8s.io/v1 (one store)
    ]

    static func checkMicroTimes(_ rt: ResourceType, _ obj: JSONValue) throws(APIError) {
        guard !rt.isCustom else { return }
        for path in microTimeFields[rt.storageKey] ?? [] {
            guard let s = Patch.get(obj, path: path)?.stringValue else { continue }
            if let problem = microTimeProblem(s) {
                throw APIError.badRequest("\(rt.kind) in version \"\(rt.version)\" cannot be handled as a \(rt.kind): parsing time \"\(s)\" as \"2006-01-02T15:04:05.000000Z07:00\": \(problem)")
            }
        }
    }

    /// Go's `time.Parse` complaint for a MicroTime string, or nil when it parses.
    static func microTimeProblem(_ s: String) -> String? {
        let chars = Array(s)
        guard chars.count >= 19, (try? Regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}").prefixMatch(in: s)) != nil else {
            return "cannot parse \"\(s)\" as \"2006\""
        }
        let rest = String(chars[19...])
        guard (try? Regex("^\\.[0-9]{6}(Z|[+-][0-9]{2}:[0-9]{2})$").wholeMatch(in: rest)) != nil else {
            if (try? Regex("^\\.[0-9]{6}").prefixMatch(in: rest)) != nil {
                return "cannot parse \"\(String(rest.dropFirst(7)))\" as \"Z07:00\""
            }
            return "cannot parse \"\(rest)\" as \".000000\""
        }
        return nil
    }

    // MARK: - Quantities

    /// Canonicalizes `resources.limits/requests` of every container of a Pod or a Deployment/ReplicaSet pod
    /// template, and `spec.resources` of a PersistentVolumeClaim.
    static func normalizeQuantities(_ rt: ResourceType, _ obj: JSONValue) -> JSONValue {
        var o = obj
        func fixResources(_ r: JSONValue?) -> JSONValue? {
            guard var r else { return nil }
            for key in ["limits", "requests"] {
                guard let m = r[key]?.objectValue else { continue }
                r[key] = .object(m.mapValues { v in v.stringValue.flatMap(canonical).map(JSONValue.string) ?? v })
            }
            return r
        }
        func fixPodSpec(_ spec: JSONValue?) -> JSONValue? {
            guard var spec else { return nil }
            for list in ["containers", "initContainers"] {
                guard let cs = spec[list]?.arrayValue else { continue }
                spec[list] = .array(cs.map { c in
                    var c = c
                    if let r = fixResources(c["resources"]) { c["resources"] = r }
                    return c
                })
            }
            return spec
        }
        switch rt.storageKey {
        case ResourceType.pods.storageKey:
            if let s = fixPodSpec(o["spec"]) { o["spec"] = s }
        case ResourceType.deployments.storageKey, ResourceType.replicaSets.storageKey:
            if let s = fixPodSpec(o["spec"]?["template"]?["spec"]) { o[keyPath: "spec", "template", "spec"] = s }
        case ResourceType.persistentVolumeClaims.storageKey:
            if let r = fixResources(o["spec"]?["resources"]) { o[keyPath: "spec", "resources"] = r }
        default:
            break
        }
        return o
    }

    static let binarySuffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
    static let decimalSuffixes: [Int: String] = [-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"]

    static func isInteger(_ d: Decimal) -> Bool {
        var value = d, rounded = Decimal()
        NSDecimalRound(&rounded, &value, 0, .plain)
        return rounded == d
    }

    static func power(_ base: Decimal, _ n: Int) -> Decimal {
        var r: Decimal = 1
        for _ in 0..<n { r *= base }
        return r
    }

    /// The canonical form of a quantity string (nil when it does not parse; decimal-exponent forms kept).
    static func canonical(_ s: String) -> String? {
        guard let m = try? Regex("^([+-]?[0-9]*\\.?[0-9]+|[+-]?[0-9]+\\.)([a-zA-Z]*)$").wholeMatch(in: s),
              let numberText = m.output[1].substring, let suffix = m.output[2].substring.map(String.init),
              let number = Decimal(string: String(numberText)) else { return nil }
        var value: Decimal
        var binary = false
        if let k = binarySuffixes.firstIndex(of: suffix), !suffix.isEmpty {
            value = number * power(1024, k)
            binary = true
        } else if let e = decimalSuffixes.first(where: { $0.value == suffix })?.key {
            value = e >= 0 ? number * power(10, e) : number / power(10, -e)
        } else {
            return nil
        }
        if binary && isInteger(value) && value >= 1024 || binary && isInteger(value) && value == 0 {
            var k = 0
            while k < 6, isInteger(value / power(1024, k + 1)) { k += 1 }
            return "\((value / power(1024, k)).description)\(binarySuffixes[k])"
        }
        // Decimal SI: the largest exponent (a multiple of 3) that keeps the mantissa an integer, nano at least.
        if value == 0 { return "0" }
        var e = 18
        while e > -9, !isInteger(e >= 0 ? value / power(10, e) : value * power(10, -e)) { e -= 3 }
        var mantissa = e >= 0 ? value / power(10, e) : value * power(10, -e)
        if !isInteger(mantissa) {  // finer than nano: rounded up, then canonical again (99.9999999999 → 100)
            var up = Decimal()
            NSDecimalRound(&up, &mantissa, 0, value < 0 ? .down : .up)
            return canonical("\(up.description)n")
        }
        return "\(mantissa.description)\(decimalSuffixes[e] ?? "")"
    }
}
