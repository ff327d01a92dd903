#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Go's `time.Duration` text form (`"300ms"`, `"1.5h"`, `"2h45m"`), which Kubernetes users know
/// from every other controller. `parse` accepts exactly what Go's `time.ParseDuration` accepts
/// (and so what CEL's `duration()` accepts); `format` writes what Go's `Duration.String()` writes.
public enum GoDuration {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var input: String
        public var reason: String
        public var description: String { "invalid duration \"\(input)\": \(reason)" }
    }

    /// The unit suffixes Go accepts, in nanoseconds. Both micro signs (U+00B5 and U+03BC) are accepted.
    static let units: [String: UInt64] = [
        "ns": 1, "us": 1_000, "\u{00B5}s": 1_000, "\u{03BC}s": 1_000,
        "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// A regular expression (RE2 and Swift compatible, no backslashes) matching Go's duration syntax.
    /// It does not check for overflow; `parse` does.
    public static let pattern = "^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|\u{00B5}s|\u{03BC}s|ms|s|m|h))+)$"

    /// Parses a Go duration: an optional sign, then a sequence of decimal numbers, each with an
    /// optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `"1h30m"`, `"1.5s"`,
    /// `"-2m"`. `"0"` alone (optionally signed) is also valid. Range: ±~292 years (Int64 nanoseconds).
    public static func parse(_ text: String) throws(ParseError) -> Duration {
        .nanoseconds(try parseNanoseconds(text))
    }

    /// Like `parse`, in nanoseconds.
    public static func parseNanoseconds(_ text: String) throws(ParseError) -> Int64 {
        func fail(_ reason: String) -> ParseError { ParseError(input: text, reason: reason) }
        var s = Array(text.utf8)[...]
        var negative = false
        if let c = s.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            s = s.dropFirst()
        }
        if s.elementsEqual("0".utf8) { return 0 }
        if s.isEmpty { throw fail(text.isEmpty ? "empty string" : "no number after the sign") }
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        let dot = UInt8(ascii: ".")
        var total: UInt64 = 0
        while !s.isEmpty {
            guard let first = s.first, first == dot || isDigit(first) else {
                throw fail("expected a number at \"\(String(decoding: s, as: UTF8.self))\"")
            }
            // Integer part.
            var whole: UInt64 = 0
            var sawWhole = false
            while let c = s.first, isDigit(c) {
                sawWhole = true
                let (m, o1) = whole.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
                if o1 || o2 || a > 1 << 63 { throw fail("number too large") }
                whole = a
                s = s.dropFirst()
            }
            // Fraction: keep as many digits as fit, as Go does.
            var fraction: UInt64 = 0
            var scale: Double = 1
            var sawFraction = false
            if s.first == dot {
                s = s.dropFirst()
                var overflowed = false
                while let c = s.first, isDigit(c) {
                    sawFraction = true
                    s = s.dropFirst()
                    if overflowed { continue }
                    if fraction > (1 << 63 - 1) / 10 { overflowed = true; continue }
                    let next = fraction * 10 + UInt64(c - UInt8(ascii: "0"))
                    if next > 1 << 63 { overflowed = true; continue }
                    fraction = next
                    scale *= 10
                }
            }
            if !sawWhole && !sawFraction { throw fail("a number needs at least one digit") }
            // Unit: everything up to the next digit or dot.
            var unitBytes: [UInt8] = []
            while let c = s.first, c != dot, !isDigit(c) {
                unitBytes.append(c)
                s = s.dropFirst()
            }
            if unitBytes.isEmpty { throw fail("missing unit (use ns, us, ms, s, m or h)") }
            let unitName = String(decoding: unitBytes, as: UTF8.self)
            guard let unit = units[unitName] else {
                throw fail("unknown unit \"\(unitName)\" (use ns, us, ms, s, m or h)")
            }
            if whole > (1 << 63) / unit { throw fail("out of range") }
            var value = whole * unit
            if fraction > 0 {
                value += UInt64(Double(fraction) * (Double(unit) / scale))
                if value > 1 << 63 { throw fail("out of range") }
            }
            let (sum, overflow) = total.addingReportingOverflow(value)
            if overflow || sum > 1 << 63 { throw fail("out of range") }
            total = sum
        }
        if negative { return total == 1 << 63 ? Int64.min : -Int64(total) }
        if total > UInt64(Int64.max) { throw fail("out of range") }
        return Int64(total)
    }

    /// True when `parse` would succeed.
    public static func isValid(_ text: String) -> Bool {
        (try? parseNanoseconds(text)) != nil
    }

    /// Go's `Duration.String()`: `"1h30m0s"`, `"5m0s"`, `"1.5s"`, `"300ms"`, `"2µs"`, `"0s"`.
    public static func format(_ duration: Duration) -> String {
        formatNanoseconds(nanoseconds(of: duration))
    }

    /// Go's `Duration.String()` for a nanosecond count.
    public static func formatNanoseconds(_ ns: Int64) -> String {
        let negative = ns < 0
        let u = ns.magnitude
        var out: String
        if u == 0 { return "0s" }
        if u < 1_000_000_000 {
            switch u {
            case ..<1_000: out = "\(u)ns"
            case ..<1_000_000: out = fixed(u, precision: 3) + "\u{00B5}s"
            default: out = fixed(u, precision: 6) + "ms"
            }
        } else {
            let secondsPart = fixed(u % 60_000_000_000, precision: 9) + "s"
            let minutes = u / 60_000_000_000
            if minutes == 0 {
                out = secondsPart
            } else if minutes < 60 {
                out = "\(minutes)m" + secondsPart
            } else {
                out = "\(minutes / 60)h\(minutes % 60)m" + secondsPart
            }
        }
        return negative ? "-" + out : out
    }

    /// A shorter form that omits zero components and is still valid Go syntax:
    /// `"1h30m"`, `"5m"`, `"45s"`, `"1m30.5s"`, `"300ms"`, `"0s"`.
    public static func formatCompact(_ duration: Duration) -> String {
        let ns = nanoseconds(of: duration)
        let u = ns.magnitude
        if u < 1_000_000_000 { return formatNanoseconds(ns) }
        let hours = u / 3_600_000_000_000
        let minutes = (u / 60_000_000_000) % 60
        let rest = u % 60_000_000_000
        var out = ""
        if hours > 0 { out += "\(hours)h" }
        if minutes > 0 { out += "\(minutes)m" }
        if rest > 0 { out += fixed(rest, precision: 9) + "s" }
        return ns < 0 ? "-" + out : out
    }

    /// `value / 10^precision` with the fraction's trailing zeros (and a bare dot) removed.
    private static func fixed(_ value: UInt64, precision: Int) -> String {
        var p: UInt64 = 1
        for _ in 0..<precision { p *= 10 }
        let whole = value / p
        var fraction = value % p
        if fraction == 0 { return "\(whole)" }
        var digits = precision
        while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
        let text = String(fraction)
        return "\(whole)." + String(repeating: "0", count: digits - text.count) + text
    }

    /// A Swift `Duration` in whole nanoseconds, clamped to the Int64 range.
    public static func nanoseconds(of duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }
}

extension Duration {
    /// This duration in seconds, as a Double (for status fields and metrics).
    public var chillSeconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
