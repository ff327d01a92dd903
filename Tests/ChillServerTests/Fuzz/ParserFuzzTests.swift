import Foundation
import Testing
@testable import KubeTestServer
@testable import Shared

/// Fuzz targets for chill's parsers of untrusted text: YAML (kubeconfigs, manifests), kubeconfig
/// decoding, Go durations and Kubernetes quantities. Each must never crash or hang, and each has a
/// round-trip property on the inputs it accepts.
@Suite struct ParserFuzzTests {
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func containsNaN(_ value: JSONValue) -> Bool {
        switch value {
        case .double(let d): d.isNaN
        case .array(let a): a.contains(where: containsNaN)
        case .object(let o): o.values.contains(where: containsNaN)
        default: false
        }
    }

    static let yamlCorpus = [
        "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://1.2.3.4:6443\n",
        "a: &x {b: [1, 2.5, -3e4, true, null, ~, 'q', \"d\\n\"]}\nc: *x\n",
        "--- |\n  literal\n   text\n--- >\n  folded\n  text\n...\n",
        "? complex key\n: value\nlist:\n  - - nested\n    - 0x1F\n  - .inf\n  - 0o17\n",
        "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
        "s: !!str 123\nt: !!int \"7\"\nempty:\nquoted: \"\\u00e9\\t\"\n",
    ]
    static let yamlTokens = [": ", "- ", "\n", "  ", "{", "}", "[", "]", ", ", "&a ", "*a", "!!str ", "!!int ", "!!binary ", "'", "\"", "|\n", ">-\n",
                             "---\n", "...\n", "# c\n", "? ", "%YAML 1.2\n", "<<: *a\n", "~", "null", "true", "0x1F", "1e3", ".nan", "\t", "\\u", "\u{FEFF}"]

    @Test func yamlParsingNeverCrashesAndWhatParsesRoundTrips() {
        let accepted = Fuzz.run("yaml", corpus: Self.yamlCorpus, tokens: Self.yamlTokens) { bytes in
            guard let value = try? YAML.decode(Self.text(bytes)) else { return .rejected }
            if Self.containsNaN(value) { return .accepted }
            let emitted = YAML.encode(value)
            guard let again = try? YAML.decode(emitted) else { return .failed("the emitted YAML does not parse:\n\(emitted)") }
            return again == value ? .accepted : .failed("round trip changed the value: \(value.jsonString()) → \(again.jsonString())")
        }
        #expect(accepted > 0)
    }

    @Test func kubeconfigParsingNeverCrashes() {
        let corpus = [
            """
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "aGVsbG8=", insecure-skip-tls-verify: false}
            users:
            - name: u
              user: {token: abc, client-certificate: rel/cert.pem, exec: {command: ./plugin, args: [a], env: [{name: A, value: b}], apiVersion: client.authentication.k8s.io/v1}}
            contexts:
            - name: x
              context: {cluster: c, user: u, namespace: ns}
            current-context: x
            """,
            "current-context: nope\ncontexts: []\n",
            "users:\n- name: u\n  user:\n    tokenFile: /dev/null\n    username: a\n    password: b\n",
        ]
        let tokens = ["clusters:", "users:", "contexts:", "- name: ", "cluster:", "user:", "context:", "server: ", "token: ", "exec:", "command: ",
                      "certificate-authority-data: ", "current-context: ", "namespace: ", "{", "}", "[", "]", "null", "42", "\n", "  ", ": "]
        Fuzz.run("kubeconfig", corpus: corpus, tokens: tokens) { bytes in
            guard let config = try? KubeConfig.parse(Self.text(bytes), directory: "/tmp") else { return .rejected }
            _ = try? ClientConfiguration(kubeConfig: config)
            return .accepted
        }
    }

    @Test func goDurationParsingAgreesWithItsPatternAndRoundTrips() throws {
        let corpus = ["300ms", "1.5h", "2h45m", "-1.5us", "0", "+0", "1\u{00B5}s", "1\u{03BC}s", ".5s", "1.s", "9223372036854775807ns",
                      "-9223372036854775808ns", "2562047h47m16.854775807s", "1h1h1h", "0.000000001s"]
        let tokens = ["0", "1", "9", ".", "-", "+", "ns", "us", "\u{00B5}s", "ms", "s", "m", "h", "9223372036854775808", "00000000000000000000", "x", " "]
        let pattern = try Regex(GoDuration.pattern)
        Fuzz.run("duration", corpus: corpus, tokens: tokens) { bytes in
            let text = Self.text(bytes)
            let matches = (try? pattern.wholeMatch(in: text)) != nil
            guard let ns = try? GoDuration.parseNanoseconds(text) else {
                // The pattern does not check the range (±2562047h): only long numbers may match and still fail.
                let digits = text.filter(\.isNumber).count
                return matches && digits <= 6 ? .failed("matches the pattern but does not parse") : .rejected
            }
            guard matches else { return .failed("parses to \(ns) ns but does not match the pattern") }
            let formatted = GoDuration.formatNanoseconds(ns)
            guard let again = try? GoDuration.parseNanoseconds(formatted), again == ns else {
                return .failed("\(ns) ns formats as \(formatted), which does not parse back")
            }
            return .accepted
        }
    }

    @Test func quantityParsingIsCanonicalAndAgreesWithThePattern() {
        let corpus = ["8", "500m", "32Gi", "1.5", ".5Ki", "1e3", "-2E-3", "+7k", "0", "1.", "100Mi", "1Ei", "999999999999n", "0.1n"]
        let tokens = ["0", "1", "9", ".", "-", "+", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "e", "e-", "i", "x"]
        Fuzz.run("quantity", corpus: corpus, tokens: tokens) { bytes in
            let text = Self.text(bytes)
            let valid = VLLMModel.Quantity(text).isValid
            guard let canonical = BuiltinDecoding.canonical(text) else {
                // Exponents and very long numbers aside, every valid quantity has a canonical form.
                let exponent = text.contains("e") || (text.contains("E") && !text.hasSuffix("E") && !text.hasSuffix("Ei"))
                return valid && !exponent && text.count <= 12 ? .failed("a valid quantity without a canonical form") : .rejected
            }
            guard valid else { return .rejected }  // the canonical form's regex is looser than Kubernetes'
            guard text.count <= 30 else { return .accepted }  // Decimal keeps 38 digits: longer ones are rounded
            guard BuiltinDecoding.canonical(canonical) == canonical else { return .failed("canonical form \(canonical) is not canonical") }
            guard VLLMModel.Quantity(canonical).isValid else { return .failed("canonical form \(canonical) is not a valid quantity") }
            return .accepted
        }
    }
}

@Suite struct ParserRegressionTests {
    /// Two terms of exactly 2^63 ns each: the sum overflowed UInt64 and trapped (found by review
    /// while writing the duration fuzz target); now it is "out of range".
    @Test func aDurationWhoseTermsSumPast2To64IsOutOfRangeNotACrash() {
        #expect(throws: GoDuration.ParseError.self) { try GoDuration.parseNanoseconds("9223372036854775808ns9223372036854775808ns") }
        #expect(throws: GoDuration.ParseError.self) { try GoDuration.parseNanoseconds("2562048h2562048h") }
        #expect((try? GoDuration.parseNanoseconds("-9223372036854775808ns")) == Int64.min)
    }

    /// Rounding up to nano units gave a non-canonical form (found by the quantity fuzz target).
    @Test func aQuantityRoundedUpToNanoIsCanonicalAgain() {
        #expect(BuiltinDecoding.canonical("99.999999999999") == "100")
        #expect(BuiltinDecoding.canonical(".9999999999995") == "1")
    }
}
