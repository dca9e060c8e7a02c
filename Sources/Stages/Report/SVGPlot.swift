import Foundation

/// Small self-contained SVG figures. Series are told apart by dash pattern and marker shape as well as
/// colour, and labelled in a legend, so the plots read in grey scale too.
enum SVGPlot {
    struct Series {
        let label: String
        let points: [(x: Double, y: Double, err: Double)]
        /// An interval per point (the same x), drawn as a shaded band around the line; nil draws none.
        var band: [(low: Double, high: Double)]? = nil
        /// Drawn thin and grey, as a reference (e.g. the untrained control), rather than in the series' colour.
        var reference = false
    }

    static let colours = ["#1b5e9e", "#c0392b", "#2e7d32", "#7b3fa0", "#b9770e", "#555555"]
    static let dashes = ["", "6,3", "2,3", "8,3,2,3", "1,2", "10,4"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func marker(_ i: Int, x: Double, y: Double, colour: String) -> String {
        switch i % 4 {
        case 0: return "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"3\" fill=\"\(colour)\"/>"
        case 1: return "<rect x=\"\(f(x - 3))\" y=\"\(f(y - 3))\" width=\"6\" height=\"6\" fill=\"none\" stroke=\"\(colour)\"/>"
        case 2: return "<path d=\"M\(f(x)),\(f(y - 4)) L\(f(x + 4)),\(f(y + 3)) L\(f(x - 4)),\(f(y + 3)) Z\" fill=\"\(colour)\"/>"
        default: return "<path d=\"M\(f(x - 3)),\(f(y - 3)) L\(f(x + 3)),\(f(y + 3)) M\(f(x - 3)),\(f(y + 3)) L\(f(x + 3)),\(f(y - 3))\" stroke=\"\(colour)\"/>"
        }
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A line plot panel at (`x0`, `y0`) of the given size, as SVG elements.
    static func panel(title: String, xLabel: String, yLabel: String, series: [Series], x0: Double, y0: Double,
                      width: Double, height: Double, markersEvery: Int = 1) -> String {
        let left = x0 + 52, right = x0 + width - 12, top = y0 + 26, bottom = y0 + height - 40
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.flatMap { [$0.y - $0.err, $0.y + $0.err] } + ($0.band ?? []).flatMap { [$0.low, $0.high] } }
        var out = "<text x=\"\(f((left + right) / 2))\" y=\"\(f(y0 + 16))\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        guard let xMin = xs.min(), let xMax = xs.max(), let yLow = ys.min(), let yHigh = ys.max() else {
            return out + "<text x=\"\(f(left))\" y=\"\(f((top + bottom) / 2))\" font-size=\"12\">no data</text>\n"
        }
        let (yMin, yMax) = niceRange(yLow, yHigh)
        let xSpan = xMax > xMin ? xMax - xMin : 1
        func px(_ x: Double) -> Double { left + (x - xMin) / xSpan * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yMin) / (yMax - yMin) * (bottom - top) }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...4 {
            let v = yMin + (yMax - yMin) * Double(i) / 4
            out += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(py(v)))\" y2=\"\(f(py(v)))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(left - 4))\" y=\"\(f(py(v) + 4))\" text-anchor=\"end\" font-size=\"10\">\(tick(v))</text>\n"
        }
        let xTicks = Set(xs).sorted()
        let stride = max(1, xTicks.count / 8)
        for (i, v) in xTicks.enumerated() where i % stride == 0 || i == xTicks.count - 1 {
            out += "<text x=\"\(f(px(v)))\" y=\"\(f(bottom + 14))\" text-anchor=\"middle\" font-size=\"10\">\(tick(v))</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 30))\" text-anchor=\"middle\" font-size=\"11\">\(escape(xLabel))</text>\n"
        out += "<text transform=\"translate(\(f(x0 + 12)),\(f((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">\(escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let colour = s.reference ? "#777777" : colours[i % colours.count], dash = s.reference ? "3,3" : dashes[i % dashes.count]
            if let band = s.band, band.count == s.points.count, !band.isEmpty {
                let upper = zip(s.points, band).map { "\(f(px($0.x))),\(f(py($1.high)))" }
                let lower = zip(s.points, band).reversed().map { "\(f(px($0.x))),\(f(py($1.low)))" }
                out += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
            }
            let path = s.points.enumerated().map { j, p in "\(j == 0 ? "M" : "L")\(f(px(p.x))),\(f(py(p.y)))" }.joined(separator: " ")
            out += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
            for (j, p) in s.points.enumerated() where j % markersEvery == 0 || j == s.points.count - 1 {
                if p.err > 0 {
                    out += "<line x1=\"\(f(px(p.x)))\" x2=\"\(f(px(p.x)))\" y1=\"\(f(py(p.y - p.err)))\" y2=\"\(f(py(p.y + p.err)))\" stroke=\"\(colour)\"/>"
                }
                out += marker(i, x: px(p.x), y: py(p.y), colour: colour)
            }
            // Legend inside the panel, top right, with the series' own line style and marker.
            let ly = top + 12 + Double(i) * 14
            out += "<line x1=\"\(f(right - 150))\" x2=\"\(f(right - 126))\" y1=\"\(f(ly))\" y2=\"\(f(ly))\" stroke=\"\(colour)\" stroke-width=\"1.8\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>"
            out += marker(i, x: right - 138, y: ly, colour: colour)
            out += "<text x=\"\(f(right - 122))\" y=\"\(f(ly + 4))\" font-size=\"10\">\(escape(s.label))</text>\n"
        }
        return out
    }

    /// One bar of a grouped bar chart: its value, its interval (nil: none drawn) and whether it is a control
    /// (drawn hatched).
    struct Bar {
        let label: String
        let value: Double
        let interval: (low: Double, high: Double)?
        let control: Bool
    }

    /// A grouped bar chart panel (values in 0...100): one group of bars per category, a bar's colour naming its
    /// series (`series` labels, in the legend), controls hatched, intervals as whiskers.
    static func bars(title: String, yLabel: String, categories: [(label: String, bars: [Bar])], series: [String],
                     width: Double, height: Double) -> String {
        let left = 52.0, right = width - 12, top = 44.0, bottom = height - 46
        var out = "<text x=\"\(f((left + right) / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        func py(_ v: Double) -> Double { bottom - min(max(v, 0), 100) / 100 * (bottom - top) }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#999\"/>\n"
        for v in stride(from: 0.0, through: 100, by: 25) {
            out += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(py(v)))\" y2=\"\(f(py(v)))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(left - 4))\" y=\"\(f(py(v) + 4))\" text-anchor=\"end\" font-size=\"10\">\(tick(v))</text>\n"
        }
        out += "<text transform=\"translate(12,\(f((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">\(escape(yLabel))</text>\n"
        let slot = (right - left) / Double(max(1, categories.count))
        for (c, category) in categories.enumerated() {
            let barWidth = min(28, (slot - 16) / Double(max(1, category.bars.count)))
            let start = left + Double(c) * slot + (slot - barWidth * Double(category.bars.count)) / 2
            for (b, bar) in category.bars.enumerated() {
                let colour = colours[(series.firstIndex(of: bar.label) ?? 0) % colours.count]
                let x = start + Double(b) * barWidth
                out += "<rect x=\"\(f(x + 1))\" y=\"\(f(py(bar.value)))\" width=\"\(f(barWidth - 2))\" height=\"\(f(bottom - py(bar.value)))\" "
                    + (bar.control ? "fill=\"url(#hatch)\" stroke=\"\(colour)\"" : "fill=\"\(colour)\"") + "><title>\(escape(bar.label)): \(tick(bar.value))</title></rect>"
                if let interval = bar.interval {
                    let mid = x + barWidth / 2
                    out += "<line x1=\"\(f(mid))\" x2=\"\(f(mid))\" y1=\"\(f(py(interval.low)))\" y2=\"\(f(py(interval.high)))\" stroke=\"#000\"/>"
                    for y in [interval.low, interval.high] {
                        out += "<line x1=\"\(f(mid - 3))\" x2=\"\(f(mid + 3))\" y1=\"\(f(py(y)))\" y2=\"\(f(py(y)))\" stroke=\"#000\"/>"
                    }
                }
                out += "\n"
            }
            out += "<text x=\"\(f(left + (Double(c) + 0.5) * slot))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\" font-size=\"11\">\(escape(category.label))</text>\n"
        }
        // Legend above the plot: one swatch per series, then the control's hatching.
        var lx = left
        for (i, label) in series.enumerated() {
            out += "<rect x=\"\(f(lx))\" y=\"26\" width=\"12\" height=\"10\" fill=\"\(colours[i % colours.count])\"/>"
            out += "<text x=\"\(f(lx + 16))\" y=\"35\" font-size=\"10\">\(escape(label))</text>\n"
            lx += 24 + Double(label.count) * 5.6
        }
        out += "<rect x=\"\(f(lx))\" y=\"26\" width=\"12\" height=\"10\" fill=\"url(#hatch)\" stroke=\"#555\"/>"
        out += "<text x=\"\(f(lx + 16))\" y=\"35\" font-size=\"10\">untrained control (same architecture, initial weights)</text>\n"
        return out
    }

    static func document(width: Double, height: Double, _ body: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
        <defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#777" stroke-width="2"/></pattern></defs>
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }

    static func niceRange(_ low: Double, _ high: Double) -> (Double, Double) {
        if high - low < 1e-9 { return (low - 1, high + 1) }
        let pad = (high - low) * 0.08
        return (low - pad, high + pad)
    }

    static func tick(_ v: Double) -> String {
        abs(v) >= 100 || v.rounded() == v ? String(format: "%.0f", v) : (abs(v) >= 10 ? String(format: "%.1f", v) : String(format: "%.2f", v))
    }
}
