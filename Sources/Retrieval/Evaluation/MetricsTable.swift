import Foundation

/// Renders named metrics as an aligned two-column text table.
enum MetricsTable {
    /// One line per metric: the name padded to the longest name, two spaces, the value with two decimals
    /// right-aligned (`n/a` for NaN, an empty bucket).
    static func render(_ rows: [(name: String, value: Double)]) -> String {
        let texts = rows.map { $0.value.isNaN ? "n/a" : String(format: "%.2f", $0.value) }
        let nameWidth = rows.map(\.name.count).max() ?? 0
        let valueWidth = texts.map(\.count).max() ?? 0
        return zip(rows, texts).map { row, text in
            row.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + String(repeating: " ", count: valueWidth - text.count) + text + "\n"
        }.joined()
    }
}
