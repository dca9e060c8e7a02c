import Foundation
import Shards
import XCTest

/// The report stage on hand-made mask-eval summaries and train logs: seeds pooled as mean ± std, the
/// beta sweep tabulated and plotted, the VSDC x TDEM grid laid out.
final class ReportTests: XCTestCase {
    func summary(model: String, seed: Int, beta: Double, r1: Double) -> String {
        let numbers = #"{"R1@0.3": \#(r1), "R1@0.5": \#(r1 - 10), "R1@0.7": 5, "mIoU": 40, "mAP@0.5": 50, "mAP@0.75": 30, "mAP": \#(r1 / 2), "HD-mAP": 20, "HD-HIT@1": 25}"#
        let weights = #"{"none": \#(numbers), "zero": \#(numbers), "erase": \#(numbers), "giou_loss": 0.5}"#
        return """
            {"model": "\(model)", "params": {"model": "\(model)", "seed": \(seed), "beta": \(beta)}, "synthesis": {"alpha": 0.5},
             "masks": ["zero", "erase"], "splits": {"val": {"trained": \(weights), "untrained": \(weights)}}}
            """
    }

    func log(model: String, seed: Int, beta: Double) -> String {
        (1...3).map { e in
            #"{"epoch": \#(e), "loss": {"loss_total": \#(10.0 / Double(e))}, "val": {"MR-full-mAP": \#(10 * e)}, "params": {"model": "\#(model)", "seed": \#(seed), "beta": \#(beta)}}"#
        }.joined(separator: "\n") + "\n"
    }

    /// Writes the report of QD-DETR, the VSDC x TDEM grid and a TD-DETR beta sweep over seeds 1 and 2; returns
    /// its output folder.
    func writeReport() throws -> URL {
        let root = try StageProcess.temporaryDirectory("report", for: self)
        var args: [String] = []
        var runs: [(String, Int, Double, Double)] = []
        for seed in [1, 2] {
            runs.append(("qd-detr", seed, 0.5, 40 + Double(seed)))
            runs.append(("vsdc-only", seed, 0.5, 45))
            runs.append(("tdem-only", seed, 0.5, 46))
            for beta in [0.3, 0.5, 0.7] { runs.append(("td-detr", seed, beta, 50 + 10 * beta + Double(seed))) }
        }
        for (i, run) in runs.enumerated() {
            let s = root.appendingPathComponent("s\(i).json"), l = root.appendingPathComponent("l\(i).jsonl")
            try summary(model: run.0, seed: run.1, beta: run.2, r1: run.3).write(to: s, atomically: true, encoding: .utf8)
            try log(model: run.0, seed: run.1, beta: run.2).write(to: l, atomically: true, encoding: .utf8)
            args += ["--in", "summaries=\(s.path)", "--in", "logs=\(l.path)"]
        }
        let out = root.appendingPathComponent("out")
        let result = try StageProcess.run("report", ["--out", out.path] + args)
        XCTAssertEqual(result.status, 0, result.stderr)
        return out
    }

    /// The page as a reader sees it: it loads without a console error, every figure shows, and the headline
    /// figure lies wholly in the first screen.
    func testThePageLoadsCleanlyShowsEveryFigureAndTheHeadlineInTheFirstScreen() throws {
        let out = try writeReport()
        let check = try HeadlessBrowser.check(out.appendingPathComponent("report.html"))
        XCTAssertEqual(check.errors, [])
        // The summaries carry no example queries, so there is no timeline figure.
        XCTAssertEqual(check.figures.map(\.id), ["fig-headline", "fig-sensitivity", "fig-curves"])
        for figure in check.figures { XCTAssertTrue(figure.shown, "\(figure.id) is not shown (\(figure.width) x \(figure.height))") }
        XCTAssertGreaterThan(check.headlineBottom, 0)
        XCTAssertLessThanOrEqual(check.headlineBottom, check.viewport, "the headline figure ends below the first screen")
    }

    func testSeedsArePooledAndTheBetaSweepAndAblationGridAreReported() throws {
        let out = try writeReport()
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        // QD-DETR over seeds 1 and 2: R1@0.3 41 and 42 -> 41.50 ± 0.71.
        XCTAssertTrue(md.contains("QD-DETR: val R1@0.3 41.50 ± 0.71"), md)
        XCTAssertTrue(md.contains("Sensitivity to alpha and beta"), "the beta sweep is tabulated")
        // beta 0.7 over seeds: 50 + 7 + 1 and + 2 -> R1@0.5 = 48.50 ± 0.71.
        XCTAssertTrue(md.contains("| 0.7 | 48.50 ± 0.71 |"), md)
        XCTAssertTrue(md.contains("Ablation: VSDC x TDEM"))
        // The grid's rows: R1@0.5, R1@0.7, mAP, HD-mAP, then zero and erase R1@0.3, each over seeds 1 and 2.
        XCTAssertTrue(md.contains("| - | - | QD-DETR | 31.50 ± 0.71 | 5.00 ± 0.00 | 20.75 ± 0.35 | 20.00 ± 0.00 | 41.50 ± 0.71 | 41.50 ± 0.71 |"), md)
        XCTAssertTrue(md.contains("| yes | - | VSDC only | 35.00 ± 0.00 | 5.00 ± 0.00 | 22.50 ± 0.00 | 20.00 ± 0.00 | 45.00 ± 0.00 | 45.00 ± 0.00 |"), md)
        XCTAssertTrue(md.contains("| yes | yes | TD-DETR (beta=0.5) | 46.50 ± 0.71 | 5.00 ± 0.00 | 28.25 ± 0.35 | 20.00 ± 0.00 | 56.50 ± 0.71 | 56.50 ± 0.71 |"), md)
        let sensitivity = try String(contentsOf: out.appendingPathComponent("sensitivity.svg"), encoding: .utf8)
        XCTAssertTrue(sensitivity.contains("Sensitivity to beta") && sensitivity.contains("stroke-dasharray"),
                      "a line plot whose series differ by dash pattern, not colour alone")
        XCTAssertFalse(sensitivity.contains("Sensitivity to alpha"), "alpha did not vary")
    }
}
