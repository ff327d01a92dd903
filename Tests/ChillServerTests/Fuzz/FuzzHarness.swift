import Foundation
import Testing

/// A deterministic mutation fuzzer that runs as an ordinary test: a seeded PRNG, a seed corpus, and
/// byte flips, truncation, deletion, duplication, splicing and token insertion. Inputs the target
/// accepts join the pool (bounded), so mutations build on valid inputs. The same seed and iteration
/// count always produce the same inputs: a failure names both, and its input, to reproduce.
///
/// Environment: `CHILL_FUZZ_ITERATIONS` (per target; default 2000), `CHILL_FUZZ_SEED` (default fixed),
/// `CHILL_FUZZ_VERBOSE=1` prints every input before it runs (to find the one that crashes the process).
/// See docs/TESTING.md for a longer campaign.
enum Fuzz {
    enum Outcome {
        /// The target accepted the input (it parsed); it may seed further mutations.
        case accepted
        /// Rejected with an error: fine.
        case rejected
        /// A property does not hold.
        case failed(String)
    }

    static let environment = ProcessInfo.processInfo.environment
    static var iterations: Int { environment["CHILL_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 2000 }
    static var seed: UInt64 { environment["CHILL_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x5EED_C411 }
    static var verbose: Bool { environment["CHILL_FUZZ_VERBOSE"] == "1" }

    /// Runs `target` on `iterations` inputs mutated from `corpus`; records an issue per failed property
    /// (at most 5) with the input as a Swift string literal. Returns how many inputs were accepted.
    @discardableResult
    static func run(_ name: String, corpus: [String], tokens: [String], iterations: Int = Fuzz.iterations,
                    sourceLocation: SourceLocation = #_sourceLocation, _ target: ([UInt8]) -> Outcome) -> Int {
        var rng = SplitMix64(seed: seed ^ UInt64(truncatingIfNeeded: name.utf8.reduce(5381) { ($0 << 5) &+ $0 &+ Int($1) }))
        var pool = corpus.map { Array($0.utf8) }
        let tokenBytes = tokens.map { Array($0.utf8) }
        var accepted = 0
        var failures = 0
        // The corpus itself first, then mutants.
        for i in 0..<(corpus.count + iterations) {
            let input = i < corpus.count ? pool[i] : mutate(pool[Int.random(in: 0..<pool.count, using: &rng)], pool: pool, tokens: tokenBytes, rng: &rng)
            if verbose { print("fuzz \(name) #\(i): \(literal(input))") }
            switch target(input) {
            case .accepted:
                accepted += 1
                if pool.count < 512 { pool.append(input) } else { pool[Int.random(in: corpus.count..<pool.count, using: &rng)] = input }
            case .rejected:
                break
            case .failed(let message):
                failures += 1
                if failures <= 5 {
                    Issue.record("fuzz \(name) (seed \(seed), input #\(i)): \(message)\ninput: \(literal(input))", sourceLocation: sourceLocation)
                }
            }
        }
        return accepted
    }

    /// One to four stacked mutations, the result at most 64 KB.
    static func mutate(_ input: [UInt8], pool: [[UInt8]], tokens: [[UInt8]], rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<9, using: &rng) {
            case 0 where !bytes.isEmpty:  // flip a bit
                bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:  // an interesting byte
                bytes[at] = [0x00, 0xFF, 0x80, 0xC3, 0x7F, 0x0A, 0x0D, 0x09, 0x20, 0x22, 0x5C, 0x3A, 0x2D, 0x7B, 0x5B].randomElement(using: &rng)!
            case 2:  // truncate
                bytes = Array(bytes.prefix(at))
            case 3 where !bytes.isEmpty:  // delete a range
                bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &rng)))
            case 4 where !bytes.isEmpty:  // duplicate a range
                let end = min(bytes.count, at + Int.random(in: 1...32, using: &rng))
                bytes.insert(contentsOf: bytes[at..<end], at: at)
            case 5, 6:  // insert a token of the format
                bytes.insert(contentsOf: tokens.randomElement(using: &rng) ?? [], at: at)
            case 7:  // splice with another input
                let other = pool.randomElement(using: &rng) ?? []
                let from = other.isEmpty ? 0 : Int.random(in: 0..<other.count, using: &rng)
                bytes = Array(bytes.prefix(at)) + other[from...]
            default:  // repeat a token many times (deep nesting, long runs)
                let token = tokens.randomElement(using: &rng) ?? [0x5B]
                bytes.insert(contentsOf: Array(repeating: token, count: Int.random(in: 2...300, using: &rng)).joined(), at: at)
            }
        }
        return Array(bytes.prefix(64 * 1024))
    }

    /// `input` as a Swift string literal (bytes that are not printable ASCII as `\u{..}`, or — not
    /// UTF-8 — as a byte array).
    static func literal(_ input: [UInt8]) -> String {
        guard let text = String(validating: input, as: UTF8.self) else { return "\(input) (bytes)" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return out + "\""
    }
}

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
