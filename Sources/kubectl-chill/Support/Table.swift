/// kubectl's table layout: upper-case headers, columns left-aligned, three spaces apart.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    var rendered: String { render(withHeaders: true) }
    /// `--no-headers`: the rows, aligned as they would be under the headers.
    var renderedRows: String { render(withHeaders: false) }

    func render(withHeaders: Bool) -> String {
        let all = withHeaders ? [headers] + rows : rows
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

/// An age (time since something), as kubectl's AGE column prints it.
func shortDuration(seconds: Double) -> String { humanDuration(seconds: seconds) }
