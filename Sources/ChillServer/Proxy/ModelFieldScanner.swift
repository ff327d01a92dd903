/// Finds the top-level `"model"` string of a JSON request body as its bytes arrive, without parsing
/// (or keeping) the rest: the proxy reads a body only as far as it must to route it, then streams it.
/// Nested `"model"` keys (inside messages or tools) are skipped; so is everything inside strings.
struct ModelFieldScanner: Sendable {
    enum Result: Sendable, Equatable {
        /// More bytes are needed.
        case pending
        case found(String)
        /// A JSON object without a top-level `model`.
        case absent
        /// `model` is present but not a string (or an absurdly long one).
        case invalid
        /// The body is not a JSON object (form data, plain text, empty): route it without a model.
        case notJSON
        /// It starts as a JSON object but ends before the object does.
        case malformed
    }

    static let maxNameBytes = 512

    private(set) var result = Result.pending
    private var started = false
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// At depth 1: the next string is a key.
    private var expectKey = false
    /// Capturing the current string (a depth-1 key, or the model's value).
    private var capturing = false
    private var captured: [UInt8] = []
    private var capturingValue = false
    private var keyIsModel = false
    /// After `"model":`, before its value.
    private var awaitingValue = false
    /// Inside `\uXXXX`: the hex digits still to come, and the value so far.
    private var unicodeDigits = 0
    private var unicodeValue: UInt32 = 0
    /// A `\uD8xx` waiting for its low surrogate.
    private var highSurrogate: UInt32?

    init() {}

    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> Result where Bytes.Element == UInt8 {
        guard result == .pending else { return result }
        for byte in bytes {
            step(byte)
            if result != .pending { return result }
        }
        return result
    }

    /// The body ended.
    mutating func finish() -> Result {
        if result == .pending { result = started ? .malformed : .notJSON }
        return result
    }

    private mutating func step(_ byte: UInt8) {
        if inString {
            if unicodeDigits > 0 {
                unicodeEscapeDigit(byte)
            } else if escaped {
                escaped = false
                if byte == UInt8(ascii: "u") {
                    unicodeDigits = 4
                    unicodeValue = 0
                } else if capturing {
                    appendCaptured(Self.unescaped(byte))
                }
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
                if capturing { endCapture() }
            } else if capturing {
                appendCaptured([byte])
            }
            return
        }
        switch byte {
        case 0x20, 0x09, 0x0A, 0x0D:
            return
        default:
            break
        }
        guard started else {
            if byte == UInt8(ascii: "{") {
                started = true
                depth = 1
                expectKey = true
            } else if byte == 0xEF || byte == 0xBB || byte == 0xBF {
                return  // a UTF-8 byte-order mark
            } else {
                result = .notJSON
            }
            return
        }
        if awaitingValue {
            awaitingValue = false
            if byte == UInt8(ascii: "\"") {
                inString = true
                capturing = true
                capturingValue = true
                captured.removeAll(keepingCapacity: true)
            } else {
                result = .invalid
            }
            return
        }
        switch byte {
        case UInt8(ascii: "\""):
            inString = true
            if depth == 1 && expectKey {
                capturing = true
                capturingValue = false
                captured.removeAll(keepingCapacity: true)
                expectKey = false
            }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth == 0 { result = .absent }
        case UInt8(ascii: ","):
            if depth == 1 { expectKey = true }
        case UInt8(ascii: ":"):
            if depth == 1 && keyIsModel {
                keyIsModel = false
                awaitingValue = true
            }
        default:
            break
        }
    }

    /// `\b \f \n \r \t` → their control characters; `\" \\ \/` (and anything else) → the byte itself.
    private static func unescaped(_ byte: UInt8) -> [UInt8] {
        switch byte {
        case UInt8(ascii: "b"): [8]
        case UInt8(ascii: "f"): [12]
        case UInt8(ascii: "n"): [10]
        case UInt8(ascii: "r"): [13]
        case UInt8(ascii: "t"): [9]
        default: [byte]
        }
    }

    /// One hex digit of `\uXXXX`; a complete escape is captured as UTF-8, joining surrogate pairs
    /// (a lone surrogate becomes U+FFFD, as decoders that accept it do).
    private mutating func unicodeEscapeDigit(_ byte: UInt8) {
        let digit: UInt32
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
        default:
            // Not JSON; keep scanning as if the escape had ended.
            unicodeDigits = 0
            return step(byte)
        }
        unicodeValue = unicodeValue << 4 | digit
        unicodeDigits -= 1
        guard unicodeDigits == 0, capturing else { return }
        var scalar: Unicode.Scalar?
        if let high = highSurrogate {
            highSurrogate = nil
            if (0xDC00...0xDFFF).contains(unicodeValue) {
                scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (unicodeValue - 0xDC00))
            } else {
                appendCaptured(Array("\u{FFFD}".utf8))
            }
        }
        if scalar == nil {
            if (0xD800...0xDBFF).contains(unicodeValue) { highSurrogate = unicodeValue; return }
            scalar = Unicode.Scalar(unicodeValue)
        }
        appendCaptured(Array(String(Character(scalar ?? "\u{FFFD}")).utf8))
    }

    private mutating func appendCaptured(_ bytes: [UInt8]) {
        if highSurrogate != nil {
            // A high surrogate not followed by a low one.
            highSurrogate = nil
            captured.append(contentsOf: "\u{FFFD}".utf8)
        }
        captured.append(contentsOf: bytes)
        if captured.count > Self.maxNameBytes { result = .invalid }
    }

    private mutating func endCapture() {
        if highSurrogate != nil { appendCaptured([]) }
        capturing = false
        if capturingValue {
            result = .found(String(decoding: captured, as: UTF8.self))
        } else {
            keyIsModel = captured.elementsEqual("model".utf8)
        }
    }
}
