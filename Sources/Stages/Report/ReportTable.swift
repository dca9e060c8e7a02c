/// A table rendered both as Markdown and as HTML.
struct ReportTable {
    let header: [String]
    var rows: [[String]]

    var markdown: String {
        var out = "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + header.enumerated().map { i, _ in i == 0 ? "---" : "---:" }.joined(separator: "|") + "|\n"
        for r in rows { out += "| " + r.joined(separator: " | ") + " |\n" }
        return out
    }

    var html: String {
        var out = "<table>\n<tr>" + header.map { "<th>\(SVGPlot.escape($0))</th>" }.joined() + "</tr>\n"
        for r in rows { out += "<tr>" + r.enumerated().map { i, c in i == 0 ? "<th>\(SVGPlot.escape(c))</th>" : "<td>\(SVGPlot.escape(c))</td>" }.joined() + "</tr>\n" }
        return out + "</table>\n"
    }
}

/// A report assembled once and written as Markdown and as a self-contained HTML page.
struct ReportDocument {
    private var markdown = ""
    private var html = ""

    mutating func heading(_ text: String, level: Int = 2) {
        markdown += String(repeating: "#", count: level) + " " + text + "\n\n"
        html += "<h\(level)>\(SVGPlot.escape(text))</h\(level)>\n"
    }

    mutating func paragraph(_ text: String) {
        markdown += text + "\n\n"
        html += "<p>\(SVGPlot.escape(text))</p>\n"
    }

    mutating func table(_ t: ReportTable, caption: String? = nil) {
        if let caption { markdown += "*\(caption)*\n\n"; html += "<p class=\"caption\">\(SVGPlot.escape(caption))</p>\n" }
        markdown += t.markdown + "\n"
        html += t.html
    }

    /// A figure: inline in the HTML, a file reference in the Markdown.
    mutating func figure(svg: String, file: String, alt: String) {
        markdown += "![\(alt)](\(file))\n\n"
        let id = "fig-" + (file.hasSuffix(".svg") ? String(file.dropLast(4)) : file)
        html += "<figure id=\"\(SVGPlot.escape(id))\">\(svg)<figcaption>\(SVGPlot.escape(alt))</figcaption></figure>\n"
    }

    mutating func code(_ text: String) {
        markdown += "```\n\(text)\n```\n\n"
        html += "<pre>\(SVGPlot.escape(text))</pre>\n"
    }

    var markdownText: String { markdown }

    func htmlPage(title: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(SVGPlot.escape(title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
        th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
        tr > th:first-child { text-align: left; }
        th { background: #f3f3f3; }
        .caption { font-style: italic; margin-bottom: 0.2em; }
        pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 12px; }
        figure { margin: 1em 0; } figcaption { font-size: 12px; color: #555; }
        </style></head><body>
        <h1>\(SVGPlot.escape(title))</h1>
        \(html)</body></html>

        """
    }
}
