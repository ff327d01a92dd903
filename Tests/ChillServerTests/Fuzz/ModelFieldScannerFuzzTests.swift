import Foundation
import Testing
@testable import ChillServer

/// The request-routing body scan against a reference decoder. Well-formed bodies (random JSON,
/// random escapes and whitespace, fed in random splits) must give exactly what JSONSerialization
/// says of the top-level `model`; garbage must never crash, and must give the same answer however
/// it is split.
@Suite struct ModelFieldScannerFuzzTests {
    static func scan(_ bytes: [UInt8], splits: [Int]) -> ModelFieldScanner.Result {
        var scanner = ModelFieldScanner()
        var start = 0
        for split in splits.sorted() where split > start && split < bytes.count {
            _ = scanner.feed(bytes[start..<split])
            start = split
        }
        _ = scanner.feed(bytes[start...])
        return scanner.finish()
    }

    static func randomSplits(_ count: Int, _ rng: inout SplitMix64) -> [Int] {
        guard count > 1 else { return [] }
        return (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 1..<count, using: &rng) }
    }

    /// What the scanner must answer for a body JSONSerialization parses as an object.
    static func reference(_ object: [String: Any]) -> ModelFieldScanner.Result {
        guard let model = object["model"] else { return .absent }
        guard let name = model as? String, !(model is NSNumber) else { return .invalid }
        return name.utf8.count > ModelFieldScanner.maxNameBytes ? .invalid : .found(name)
    }

    @Test func wellFormedBodiesGiveTheReferenceDecodersAnswer() throws {
        var rng = SplitMix64(seed: Fuzz.seed)
        var generator = RandomJSON()
        for i in 0..<Fuzz.iterations {
            let body = generator.body(&rng)
            let bytes = Array(body.utf8)
            guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                Issue.record("the generator made something that is not a JSON object: \(Fuzz.literal(bytes))")
                continue
            }
            let expected = Self.reference(object)
            let got = Self.scan(bytes, splits: Self.randomSplits(bytes.count, &rng))
            if got != expected {
                Issue.record("body #\(i) (seed \(Fuzz.seed)): scanner \(got), reference \(expected)\n\(Fuzz.literal(bytes))")
                return
            }
        }
    }

    @Test func garbageNeverCrashesAndAnySplitGivesTheSameAnswer() {
        var rng = SplitMix64(seed: Fuzz.seed ^ 0x6A4B)
        let corpus = [
            #"{"model":"qwen","messages":[{"role":"user","content":"hi","model":"x"}],"stream":true}"#,
            #"{"messages":[],"model":"e2e\u002dmodel"}"#,
            #"{"tools":[{"model":{"model":"n"}}],"model":null}"#,
            #"  {"model" : "\ud83d\ude00", "n": -1.5e3}"#,
            "\u{FEFF}{\"prompt\":\"a\\\"b\\\\\",\"model\":\"m\"}",
            #"{"a":"\u00"#,
            "[1,2]",
            "model=qwen&prompt=hi",
        ]
        let tokens = [#"""#, "\\", "\\u", "\\ud83d", "\\udc00", "{", "}", "[", "]", ":", ",", #""model""#, #""model":"#, "null", "1e5", " ", "\n", "\u{FEFF}", "\u{00}"]
        Fuzz.run("model-field-scanner", corpus: corpus, tokens: tokens) { bytes in
            let whole = Self.scan(bytes, splits: [])
            if whole == .pending { return .failed("pending after finish") }
            let split = Self.scan(bytes, splits: Self.randomSplits(bytes.count, &rng))
            if split != whole { return .failed("split differently: \(whole) whole, \(split) split") }
            // Where the reference parses an object with one plain `model` key, they must agree.
            if let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
               Self.text(bytes).components(separatedBy: "model").count == 2, !Self.text(bytes).contains("\\u") {
                let expected = Self.reference(object)
                if whole != expected { return .failed("scanner \(whole), reference \(expected)") }
            }
            return whole == .notJSON ? .rejected : .accepted
        }
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func regressionEscapesInTheModelNameAreDecoded() {
        let cases: [(String, ModelFieldScanner.Result)] = [
            (#"{"model":"e2e\u002dmodel"}"#, .found("e2e-model")),
            (#"{"mod\u0065l":"q"}"#, .found("q")),
            (#"{"model":"\ud83d\ude00"}"#, .found("😀")),
            (#"{"model":"a\/b\r\f\b"}"#, .found("a/b\r\u{0C}\u{08}")),
            (#"{"model":"\ud83d"}"#, .found("\u{FFFD}")),
            (#"{"model":"\ud83dx"}"#, .found("\u{FFFD}x")),
        ]
        for (body, expected) in cases {
            #expect(Self.scan(Array(body.utf8), splits: []) == expected, "\(body)")
            // Split inside the escape.
            #expect(Self.scan(Array(body.utf8), splits: [12, 14]) == expected, "\(body) split")
        }
    }
}

/// Random JSON object bodies, serialised with random whitespace and escapes, without duplicate keys
/// (JSON leaves duplicates' meaning open) and without lone surrogates.
struct RandomJSON {
    mutating func body(_ rng: inout SplitMix64) -> String {
        var members: [(String, String)] = []
        var keys = Set<String>()
        for _ in 0..<Int.random(in: 0...6, using: &rng) {
            let key = Bool.random(using: &rng) ? ["messages", "prompt", "stream", "max_tokens", "tools", "n", "mode", "models", "Model"].randomElement(using: &rng)! : string(&rng, max: 6)
            guard keys.insert(key).inserted, key != "model" else { continue }
            members.append((key, value(&rng, depth: 0)))
        }
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: break  // no model
        case 1: members.insert(("model", value(&rng, depth: 1)), at: Int.random(in: 0...members.count, using: &rng))  // any value
        case 2: members.insert(("model", encode(String(repeating: "m", count: Int.random(in: 500...530, using: &rng)), &rng)), at: 0)
        default: members.insert(("model", encode(string(&rng, max: 24), &rng)), at: Int.random(in: 0...members.count, using: &rng))
        }
        let ws = { (rng: inout SplitMix64) -> String in ["", "", " ", "\n", "\t", "  \r\n"].randomElement(using: &rng)! }
        var out = ws(&rng) + "{"
        for (i, (key, value)) in members.enumerated() {
            if i > 0 { out += ws(&rng) + "," }
            out += ws(&rng) + encode(key, &rng) + ws(&rng) + ":" + ws(&rng) + value + ws(&rng)
        }
        return out + "}" + ws(&rng)
    }

    func string(_ rng: inout SplitMix64, max: Int) -> String {
        let alphabet: [Character] = ["a", "z", "Q", "0", "-", "/", ".", "_", " ", "\"", "\\", "\n", "\t", "\u{01}", "é", "中", "😀", "\u{7F}", "{", "}", ":"]
        return String((0..<Int.random(in: 0...max, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    /// A JSON string literal for `text`, each character escaped or not at random.
    func encode(_ text: String, _ rng: inout SplitMix64) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            let mustEscape = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
            if mustEscape || Int.random(in: 0..<8, using: &rng) == 0 {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n" where Bool.random(using: &rng): out += "\\n"
                case "\t" where Bool.random(using: &rng): out += "\\t"
                case "/" where Bool.random(using: &rng): out += "\\/"
                default:
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16, uppercase: Bool.random(using: &rng))
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    func value(_ rng: inout SplitMix64, depth: Int) -> String {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 8), using: &rng) {
        case 0: return "null"
        case 1: return Bool.random(using: &rng) ? "true" : "false"
        case 2: return ["0", "-1", "3.25", "1e5", "-2.5E-3", "12345678901234567890"].randomElement(using: &rng)!
        case 3, 4: return encode(string(&rng, max: 12), &rng)
        case 5, 6:
            let items = (0..<Int.random(in: 0...3, using: &rng)).map { _ in value(&rng, depth: depth + 1) }
            return "[" + items.joined(separator: ",") + "]"
        default:
            var keys = Set<String>()
            var members: [String] = []
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let key = Bool.random(using: &rng) ? "model" : string(&rng, max: 4)
                guard keys.insert(key).inserted else { continue }
                members.append(encode(key, &rng) + ":" + value(&rng, depth: depth + 1))
            }
            return "{" + members.joined(separator: ",") + "}"
        }
    }
}
