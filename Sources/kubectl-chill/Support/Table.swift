/// kubectl's table layout: upper-case headers, columns left-aligned, three spaces apart.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    var rendered: String {
        let all = [headers] + rows
        var widths = [Int](repeating: 0, count: headers.count)
        for row in all { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return all.map { row in
            var line = ""
            for (i, cell) in row.enumerated() {
                line += i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 3)
            }
            return line
        }.joined(separator: "\n")
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

/// `45s`, `12m`, `3h`, `2d`: kubectl's short ages.
func shortDuration(seconds: Double) -> String {
    let s = Int(max(0, seconds))
    if s < 120 { return "\(s)s" }
    if s < 60 * 60 { return "\(s / 60)m" }
    if s < 48 * 3600 { return "\(s / 3600)h" }
    return "\(s / 86400)d"
}
