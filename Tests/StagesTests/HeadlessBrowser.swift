import Foundation
import XCTest

/// A page as Chromium shows it: loaded headless at 1280 x 800, with a probe script placed first in its head
/// that records uncaught errors, failed resources and `console.error` calls, and after the load event measures
/// every figure and where the first figure sits.
enum HeadlessBrowser {
    struct Check: Decodable {
        struct Figure: Decodable {
            let id: String
            let width: Double
            let height: Double
            let shown: Bool
        }
        let errors: [String]
        let figures: [Figure]
        /// Viewport height: the first screen.
        let viewport: Double
        /// Bottom edge of the figure with id `fig-headline`, -1 when there is none.
        let headlineBottom: Double
    }

    static let probe = """
        <script>
        window.__errors = [];
        window.addEventListener('error', e => window.__errors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || 'a resource failed')), true);
        window.addEventListener('unhandledrejection', e => window.__errors.push('unhandled rejection: ' + e.reason));
        const __consoleError = console.error;
        console.error = (...args) => { window.__errors.push('console.error: ' + args.join(' ')); __consoleError.apply(console, args); };
        window.addEventListener('load', () => {
          const figures = [...document.querySelectorAll('figure')].map(f => {
            const image = f.querySelector('svg, img');
            const box = image ? image.getBoundingClientRect() : { width: 0, height: 0 };
            const loaded = !image || image.tagName.toLowerCase() !== 'img' || (image.complete && image.naturalWidth > 0);
            return { id: f.id, width: box.width, height: box.height, shown: !!image && loaded && box.width > 0 && box.height > 0 };
          });
          const headline = document.getElementById('fig-headline');
          const result = { errors: window.__errors, figures: figures, viewport: window.innerHeight,
                           headlineBottom: headline ? headline.getBoundingClientRect().bottom + window.scrollY : -1 };
          const out = document.createElement('pre');
          out.id = 'browser-check';
          out.textContent = JSON.stringify(result);
          document.body.appendChild(out);
        });
        </script>
        """

    /// Chromium on PATH, or a failure that says how to get it (the tests never skip it silently).
    static func executable() throws -> String {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
                let path = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
        }
        throw BrowserError("no chromium on PATH: `scripts/install-system-packages.sh test` installs Debian's chromium")
    }

    struct BrowserError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func check(_ page: URL) throws -> Check {
        let html = try String(contentsOf: page, encoding: .utf8)
        guard let head = html.range(of: "<head>") else { throw BrowserError("\(page.path): no <head>") }
        let probed = page.deletingLastPathComponent().appendingPathComponent("probed-" + page.lastPathComponent)
        try (html[..<head.upperBound] + probe + html[head.upperBound...]).write(to: probed, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable())
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-profile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,800", "--virtual-time-budget=5000",
                             "--user-data-dir=\(profile.path)", "--dump-dom", probed.absoluteString]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let start = dom.range(of: "<pre id=\"browser-check\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
            throw BrowserError("chromium exited \(process.terminationStatus) without the probe's result; stderr: \(log.suffix(600))")
        }
        let json = dom[start.upperBound..<end.lowerBound].replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        return try JSONDecoder().decode(Check.self, from: Data(json.utf8))
    }
}
