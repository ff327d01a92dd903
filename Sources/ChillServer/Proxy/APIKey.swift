/// The API key clients must present (`Authorization: Bearer <key>`), compared in constant time.
/// Its value never appears in logs or in `/proxy/*` output: `description` is redacted.
struct APIKey: Sendable, CustomStringConvertible {
    private let bytes: [UInt8]
    /// The header value chill sends to vLLM, which checks the same key.
    let bearer: String

    init?(_ key: String?) {
        guard let key, !key.isEmpty else { return nil }
        bytes = Array(key.utf8)
        bearer = "Bearer \(key)"
    }

    var description: String { "<redacted>" }

    func matches(authorization header: String?) -> Bool {
        guard let header, header.utf8.count > 7 else { return false }
        let scheme = header.prefix(7)
        guard scheme.lowercased() == "bearer " else { return false }
        return Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), bytes)
    }

    /// Time depends only on the expected key's length, never on where the inputs differ.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference = given.count ^ expected.count
        for i in 0..<expected.count { difference |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
        return difference == 0
    }
}
