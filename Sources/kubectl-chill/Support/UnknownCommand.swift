/// `kubectl chill nosuch` and `kubectl chill help nosuch`: cobra's "unknown command" (a usage error,
/// exit 2) with its "did you mean" for a near miss, before ArgumentParser would take the word as an argument.
enum UnknownCommand {
    /// The one-line error for `arguments` (already hoisted), or nil when the command exists.
    /// `suggest`: the names offered for a near miss (aliases left out).
    static func problem(_ arguments: [String], commands: Set<String>, suggest: Set<String>) -> String? {
        // Global flags in front of a word that is no command were not moved behind it: skip them.
        var i = 0
        while let n = GlobalFlags.span(arguments[i...]) { i += n }
        let arguments = Array(arguments[i...])
        guard var word = arguments.first, !word.hasPrefix("-") else { return nil }
        if word == "help" {
            guard arguments.count > 1, !arguments[1].hasPrefix("-") else { return nil }
            word = arguments[1]
        }
        if commands.contains(word) { return nil }
        let near = suggestions(for: word, among: suggest).prefix(3).map { "\"\($0)\"" }
        let suggestion = near.isEmpty ? " — see `kubectl chill --help` for the commands" : " — did you mean \(near.joined(separator: " or "))? See `kubectl chill --help`"
        return "unknown command \"\(word)\" for \"kubectl chill\"" + suggestion
    }

    /// Commands within an edit distance of 2, or that start with the word (as cobra suggests them).
    static func suggestions(for word: String, among commands: Set<String>) -> [String] {
        commands.filter { !$0.hasPrefix("_") && (distance(word.lowercased(), $0) <= 2 || $0.hasPrefix(word.lowercased())) }
            .sorted { (distance(word, $0), $0) < (distance(word, $1), $1) }
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}
