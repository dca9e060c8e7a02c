import Foundation
import Shards
import XCTest
@testable import Stages

/// The report's parts on hand-made summaries: seed statistics, grouping, the tables as rendered, the SVG
/// geometry and escaping.
final class ReportBuilderTests: XCTestCase {
    func testPercentileInterpolatesBetweenRanksAsNumpy() {
        XCTAssertEqual(Bootstrap.percentile([1, 2, 3, 4], 0.25), 1.75)
        XCTAssertEqual(Bootstrap.percentile([1, 2, 3, 4], 0.5), 2.5)
        XCTAssertEqual(Bootstrap.percentile([1, 2, 3, 4], 0), 1)
        XCTAssertEqual(Bootstrap.percentile([1, 2, 3, 4], 1), 4)
    }

    /// 0...99: mean 49.5, standard error 28.87 / 10, so the 95% interval is about 49.5 -+ 5.66.
    func testBootstrapIntervalIsSeededAndCloseToTheNormalApproximation() throws {
        let values = (0..<100).map(Double.init)
        let interval = try XCTUnwrap(Bootstrap.interval(values, seed: "a"))
        XCTAssertEqual(interval.low, 43.84, accuracy: 0.7)
        XCTAssertEqual(interval.high, 55.16, accuracy: 0.7)
        XCTAssertEqual(Bootstrap.interval(values, seed: "a")!.low, interval.low, "the same name, the same interval")
        XCTAssertNotEqual(Bootstrap.interval(values, seed: "b")!.low, interval.low)
        XCTAssertNil(Bootstrap.interval([3], seed: "a"), "one value has no spread")
        XCTAssertEqual(Bootstrap.interval([2, 2, 2], seed: "a")!.low, 2)
    }

    func testVerdictReadsWhichSideOfZeroTheIntervalIsOn() {
        let lower = PairedDifference(unit: "seeds", differences: [-10, -9, -11, -12], seed: "x")
        XCTAssertEqual(lower.verdict(expectNegative: true), .reproduced)
        XCTAssertEqual(lower.verdict(expectNegative: false), .notReproduced)
        XCTAssertEqual(PairedDifference(unit: "seeds", differences: [-1, 2, -3, 4], seed: "x").verdict(expectNegative: true), .inconclusive)
        XCTAssertEqual(PairedDifference(unit: "seeds", differences: [5], seed: "x").verdict(expectNegative: false), .inconclusive,
                       "one seed gives no interval")
        XCTAssertEqual(PairedDifference(unit: "seeds", differences: [-10, -9, 5], seed: "x").signShare, 2.0 / 3)
    }

    func testSeedStatisticIsTheMeanAndTheSampleStandardDeviation() {
        XCTAssertEqual(SeedStatistic(values: [41, 42]).text, "41.50 ± 0.71")
        // Sample (n - 1) standard deviation of 1, 2, 3, 4 is sqrt(5 / 3) = 1.29; the population one would be 1.12.
        let four = SeedStatistic(values: [1, 2, 3, 4])
        XCTAssertEqual(four.mean, 2.5)
        XCTAssertEqual(four.std, (5.0 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(four.text, "2.50 ± 1.29")
        XCTAssertEqual(SeedStatistic(values: [7]).text, "7.00", "one seed has no spread to show")
        XCTAssertEqual(SeedStatistic(values: []).text, "-")
    }

    func testEscapeMakesTextSafeInHTMLAndSVG() {
        XCTAssertEqual(SVGPlot.escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d")
        XCTAssertEqual(SVGPlot.escape("&lt;"), "&amp;lt;", "the ampersand first, so nothing is escaped twice or left raw")
        var document = ReportDocument()
        document.heading("<script>alert(1)</script>")
        document.table(ReportTable(header: ["a<b"], rows: [["x & y"], ["<i>"]]))
        let page = document.htmlPage(title: "R&D <report>")
        XCTAssertFalse(page.contains("<script>") || page.contains("<i>") || page.contains("a<b"), page)
        XCTAssertTrue(page.contains("<h2>&lt;script&gt;alert(1)&lt;/script&gt;</h2>"))
        XCTAssertTrue(page.contains("<tr><th>x &amp; y</th></tr>"))
        XCTAssertTrue(page.contains("<title>R&amp;D &lt;report&gt;</title>"))
        let panel = SVGPlot.panel(title: "t<1>", xLabel: "x&y", yLabel: "y", series: [SVGPlot.Series(label: "<b>", points: [(0, 1, 0)])],
                                  x0: 0, y0: 0, width: 430, height: 300)
        XCTAssertFalse(panel.contains("<b>") || panel.contains("t<1>") || panel.contains("x&y"), panel)
    }

    func testPanelMapsPointsIntoThePlotAreaWithPaddedYRangeAndErrorBars() {
        // Plot area: x 52...418, y 26...260. y from 0 to 10 padded by 8% each side: -0.8...10.8.
        let panel = SVGPlot.panel(title: "t", xLabel: "x", yLabel: "y",
                                  series: [SVGPlot.Series(label: "s", points: [(0, 0, 0), (1, 10, 0), (2, 5, 1)])],
                                  x0: 0, y0: 0, width: 430, height: 300)
        func py(_ y: Double) -> String { SVGPlot.f(260 - (y + 0.8) / 11.6 * 234) }
        XCTAssertTrue(panel.contains("<path d=\"M52.0,\(py(0)) L235.0,\(py(10)) L418.0,\(py(5))\" fill=\"none\""), panel)
        XCTAssertEqual(py(0), "243.9")
        // The third point's error bar spans 4...6.
        XCTAssertTrue(panel.contains("<line x1=\"418.0\" x2=\"418.0\" y1=\"\(py(4))\" y2=\"\(py(6))\""), panel)
        XCTAssertTrue(SVGPlot.panel(title: "t", xLabel: "x", yLabel: "y", series: [], x0: 0, y0: 0, width: 430, height: 300)
            .contains(">no data</text>"))
    }

    /// A mask-eval summary: val R1@0.3 = `r1`, R1@0.5 = `r1 - 10`, mAP = `r1 / 2`; erase R1@0.3 = `r1 - 20`.
    /// `ious`, when given, are the per-query top-1 IoUs of every condition.
    func summary(model: String, seed: Int, params: String = "", r1: Double, ious: [Double]? = nil, dataset: String = "null") -> String {
        func numbers(_ top: Double) -> String {
            #"{"R1@0.3": \#(top), "R1@0.5": \#(top - 10), "R1@0.7": 5, "mIoU": 40, "mAP@0.5": 50, "mAP@0.75": 30, "mAP": \#(top / 2), "HD-mAP": 20, "HD-HIT@1": 25}"#
        }
        let perQuery = ious.map { v in
            let list = "[" + v.map { "\($0)" }.joined(separator: ", ") + "]"
            return #", "top1_iou": {"none": \#(list), "zero": \#(list), "erase": \#(list)}"#
        } ?? ""
        let weights = #"{"none": \#(numbers(r1)), "zero": \#(numbers(r1 - 15)), "erase": \#(numbers(r1 - 20)), "giou_loss": 0.5\#(perQuery)}"#
        return """
            {"model": "\(model)", "params": {"model": "\(model)", "seed": \(seed)\(params)}, "synthesis": null, "dataset": \(dataset),
             "masks": ["zero", "erase"], "splits": {"val": {"trained": \(weights), "untrained": \(weights)}}}
            """
    }

    /// `sweep`: as the report stage builds it, the body on the data most runs share and a sweep section when
    /// the runs span several datasets.
    func builder(_ summaries: [String], sweep: Bool = false) throws -> ReportBuilder {
        let dir = try StageProcess.temporaryDirectory("report-builder", for: self)
        var runs: [EvaluatedRun] = []
        for (i, text) in summaries.enumerated() {
            let url = dir.appendingPathComponent("s\(i).json")
            try text.write(to: url, atomically: true, encoding: .utf8)
            runs.append(try ReportData.loadSummary(url))
        }
        var logs: [TrainingLog] = []
        if sweep { return ReportBuilder(every: runs, logs: logs, examples: 0) }
        let groups = ReportData.assignGroups(&runs, &logs)
        return ReportBuilder(runs: runs, logs: logs, groups: groups, examples: 0)
    }

    func build(_ summaries: [String]) throws -> (markdown: String, groups: [String]) {
        let builder = try builder(summaries)
        return (builder.build().0.markdownText, builder.groups)
    }

    /// The claims table's verdict comes from the interval of the seed-paired difference: QD-DETR's zero-mask
    /// R1@0.3 is 35, 37, 39 and TD-DETR's 25, 28, 30 on seeds 1-3 (differences -10, -9, -9; TD-DETR's seed 4 has
    /// no partner and is left out); both have the same mIoU (an interval of [0, 0]: inconclusive).
    func testClaimsAreJudgedByTheBootstrapIntervalOfSeedPairedDifferences() throws {
        let (md, _) = try build([
            summary(model: "qd-detr", seed: 1, r1: 50), summary(model: "qd-detr", seed: 2, r1: 52), summary(model: "qd-detr", seed: 3, r1: 54),
            summary(model: "td-detr", seed: 1, r1: 40), summary(model: "td-detr", seed: 2, r1: 43), summary(model: "td-detr", seed: 3, r1: 45),
            summary(model: "td-detr", seed: 4, r1: 90),
        ])
        func row(_ prefix: String) -> String { md.split(separator: "\n").first { $0.hasPrefix("| " + prefix) }.map(String.init) ?? "" }
        let r1 = row("TD-DETR lowers spurious R1@0.3 under the zero mask")
        XCTAssertTrue(r1.contains("| 33.10 -> 18.19 (-45%) | "), r1)
        // The means over the three shared seeds, and their paired difference.
        XCTAssertTrue(r1.contains("27.67 vs 37.00 (-25%): -9.33 [-10.00, -9.00], 100% of 3 seeds | reproduced |"), r1)
        XCTAssertTrue(row("TD-DETR lowers spurious mIoU under the zero mask").hasSuffix("| inconclusive |"), md)
        XCTAssertTrue(row("VSDC alone helps").hasSuffix("| not in this pipeline | not run |"), md)
        XCTAssertTrue(md.contains("## Paired differences"), md)
        XCTAssertTrue(md.contains(ReportBuilder.methodText), "the method is written in the report")
    }

    /// With one shared seed the paired units are the queries (per-query top-1 IoU).
    func testASingleSharedSeedIsPairedByQuery() throws {
        let builder = try builder([
            summary(model: "qd-detr", seed: 1, r1: 50, ious: [0.5, 0.1, 0.4, 0.2, 0.35]),
            summary(model: "td-detr", seed: 1, r1: 60, ious: [0.5, 0.5, 0.1, 0.5, 0.35]),
        ])
        let qd = builder.mainRuns("qd-detr"), td = builder.mainRuns("td-detr")
        let r1 = try XCTUnwrap(builder.paired(td, qd, "val", "zero", "R1@0.3"))
        XCTAssertEqual(r1.unit, "queries")
        XCTAssertEqual(r1.differences, [0, 100, -100, 100, 0])
        XCTAssertEqual(r1.mean, 20)
        XCTAssertEqual(r1.signShare, 0.4)
        let miou = try XCTUnwrap(builder.paired(td, qd, "val", "none", "mIoU"))
        XCTAssertEqual(miou.mean, 8, accuracy: 1e-9, "100 x the mean of 0, 0.4, -0.3, 0.3, 0")
        XCTAssertNil(builder.paired(td, qd, "val", "none", "mAP")?.interval, "mAP has no per-query form: one seed, no interval")
    }

    func testHeadlineFigureShowsEachModelWithItsControlAndIntervals() throws {
        let builder = try builder([
            summary(model: "qd-detr", seed: 1, r1: 50), summary(model: "qd-detr", seed: 2, r1: 52),
            summary(model: "td-detr", seed: 1, r1: 40), summary(model: "td-detr", seed: 2, r1: 43),
        ])
        let (document, figures) = builder.build()
        let svg = try XCTUnwrap(figures.first { $0.0 == "headline.svg" }?.1)
        XCTAssertEqual(figures.first?.0, "headline.svg", "the first figure of the report")
        // Per model: val and erase-masked, trained and untrained: 4 bars, 8 in all, the untrained ones hatched.
        XCTAssertEqual(svg.components(separatedBy: "<title>").count - 1, 8)
        XCTAssertEqual(svg.components(separatedBy: "fill=\"url(#hatch)\" stroke=").count - 1, 4 + 1, "4 control bars and the legend swatch")
        XCTAssertTrue(svg.contains(">QD-DETR</text>") && svg.contains(">TD-DETR</text>"), svg)
        XCTAssertTrue(document.markdownText.contains("![R1@0.3 of each model"), "the figure precedes everything but the runs line")
    }

    func testCDNetAblationTableHasOneRowPerSwitchSettingWithSeedsPooled() throws {
        let on = #", "cdnet_global_guidance": true, "cdnet_fine_grained": true, "cdnet_relevance": true, "cdnet_denoising": true"#
        let noDenoising = #", "cdnet_global_guidance": true, "cdnet_fine_grained": true, "cdnet_relevance": true, "cdnet_denoising": false"#
        let baseline = #", "cdnet_global_guidance": false, "cdnet_fine_grained": false, "cdnet_relevance": false, "cdnet_denoising": false"#
        let (md, groups) = try build([
            summary(model: "cdnet", seed: 1, params: on, r1: 60), summary(model: "cdnet", seed: 2, params: on, r1: 62),
            summary(model: "cdnet", seed: 1, params: noDenoising, r1: 50), summary(model: "cdnet", seed: 2, params: noDenoising, r1: 54),
            summary(model: "cdnet", seed: 1, params: baseline, r1: 40),
        ])
        XCTAssertEqual(groups.count, 3)
        XCTAssertTrue(md.contains("## CDNet ablation (CDNet table 4 style)"), md)
        XCTAssertTrue(md.contains("| global | fine-grained | relevance | CDD | val R1@0.5 | val R1@0.7 | val mAP | val HD-mAP | zero R1@0.3 | erase R1@0.3 |"), md)
        // Full model: R1@0.5 over seeds 50 and 52; mAP 30 and 31; erase R1@0.3 40 and 42.
        XCTAssertTrue(md.contains("| yes | yes | yes | yes | 51.00 ± 1.41 | 5.00 ± 0.00 | 30.50 ± 0.71 | 20.00 ± 0.00 | 46.00 ± 1.41 | 41.00 ± 1.41 |"), md)
        XCTAssertTrue(md.contains("| yes | yes | yes | - | 42.00 ± 2.83 | 5.00 ± 0.00 | 26.00 ± 1.41 | 20.00 ± 0.00 | 37.00 ± 2.83 | 32.00 ± 2.83 |"), md)
        XCTAssertTrue(md.contains("| - | - | - | - | 30.00 | 5.00 | 20.00 | 20.00 | 25.00 | 20.00 |"), md)
        XCTAssertFalse(md.contains("Ablation: VSDC x TDEM"), "no TD-DETR ablation runs, no TD-DETR table")
    }

    func testRunsAreGroupedByTheParamsThatVaryAndTheFindingsPoolTheirSeeds() throws {
        let (md, groups) = try build([
            summary(model: "qd-detr", seed: 1, r1: 40), summary(model: "qd-detr", seed: 2, r1: 44),
            summary(model: "td-detr", seed: 1, params: #", "beta": 0.3"#, r1: 50), summary(model: "td-detr", seed: 2, params: #", "beta": 0.3"#, r1: 52),
            summary(model: "td-detr", seed: 1, params: #", "beta": 0.7"#, r1: 60),
        ])
        XCTAssertEqual(groups, ["QD-DETR", "TD-DETR (beta=0.3)", "TD-DETR (beta=0.7)"])
        XCTAssertTrue(md.contains("Runs: QD-DETR: seeds 1, 2; TD-DETR (beta=0.3): seeds 1, 2; TD-DETR (beta=0.7): seeds 1."), md)
        XCTAssertTrue(md.contains("- QD-DETR: val R1@0.3 42.00 ± 2.83 (untrained 42.00 ± 2.83); masked (zero) 27.00 ± 2.83 vs untrained 27.00 ± 2.83; masked (erase) 22.00 ± 2.83 vs untrained 22.00 ± 2.83."), md)
        // Table 1: the MR R1@0.5 column of TD-DETR (beta=0.3), seeds 40 and 42.
        XCTAssertTrue(md.contains("| TD-DETR (beta=0.3) | 41.00 ± 1.41 | 5.00 ± 0.00 | 50.00 ± 0.00 | 30.00 ± 0.00 | 25.50 ± 0.71 | 20.00 ± 0.00 | 25.00 ± 0.00 |"), md)
    }

    /// Runs on three datasets: the report's body is about the one most runs share (rho 0.9), and the sweep
    /// section judges each comparison at every point. Erase-masked R1@0.3 is `r1 - 20` (see `summary`): TD-DETR
    /// is 10 lower than QD-DETR at rho 0.9 and 0.8 (the claim reproduced) and 9-10 higher at rho 0.6 (refuted).
    func testADifficultySweepJudgesEachComparisonAtEveryPointAndTheBodyUsesTheMainData() throws {
        func data(_ rho: Double) -> String { #"{"rho": \#(rho), "train_videos": 500, "seed": 1}"# }
        var summaries: [String] = []
        for (rho, td) in [(0.9, [40.0, 42, 44]), (0.6, [60.0, 61, 64]), (0.8, [40.0, 42, 44])] {
            for seed in 1...3 {
                summaries.append(summary(model: "qd-detr", seed: seed, r1: 48 + 2 * Double(seed), dataset: data(rho)))
                summaries.append(summary(model: "td-detr", seed: seed, r1: td[seed - 1], dataset: data(rho)))
            }
        }
        // An ablation on the main data only: it makes rho 0.9 the data most runs share.
        summaries.append(summary(model: "vsdc-only", seed: 1, r1: 45, dataset: data(0.9)))
        let builder = try builder(summaries, sweep: true)
        XCTAssertEqual(builder.groups, ["QD-DETR", "TD-DETR", "VSDC only"], "no rho in the labels: the body is one dataset")
        XCTAssertEqual(builder.runs.count, 7)
        XCTAssertEqual(builder.sweepAxes, ["rho"], "only what varies is an axis")
        XCTAssertEqual(builder.sweepPoints.map { $0["rho"]!.doubleValue! }, [0.6, 0.8, 0.9])
        let md = builder.build().0.markdownText
        // The body: TD-DETR's three seeds on rho 0.9 against QD-DETR's.
        func row(_ prefix: String) -> String { md.split(separator: "\n").first { $0.hasPrefix("| " + prefix) }.map(String.init) ?? "" }
        let erase = row("TD-DETR lowers spurious R1@0.3 with the moment erased")
        XCTAssertTrue(erase.contains("22.00 vs 32.00 (-31%): -10.00 [-10.00, -10.00], 100% of 3 seeds | reproduced |"), erase)
        XCTAssertTrue(erase.hasSuffix("| reproduced at 2 of 3 (rho=0.8; rho=0.9); not reproduced at 1 of 3 (rho=0.6) |"), erase)
        XCTAssertTrue(row("CDNet beats QD-DETR").hasSuffix("| not run | - |"), md)
        // The sweep section: one row per point, each comparison's difference and verdict.
        XCTAssertTrue(md.contains("## Where the verdicts hold: the difficulty sweep"), md)
        // Columns: erase-masked and zero-masked R1@0.3 (TD-DETR lower), CDNet vs QD-DETR (no CDNet here).
        XCTAssertTrue(md.contains("| 0.6 | +9.67 [+9.00, +10.00], not reproduced | +9.67 [+9.00, +10.00], not reproduced | not run |"), md)
        XCTAssertTrue(md.contains("| 0.8 | -10.00 [-10.00, -10.00], reproduced | -10.00 [-10.00, -10.00], reproduced | not run |"), md)
        let svg = try XCTUnwrap(builder.build().1.first { $0.0 == "difficulty.svg" }?.1)
        XCTAssertTrue(svg.contains("fill-opacity=\"0.15\""), "interval bands are drawn")
        XCTAssertTrue(svg.contains(">untrained control</text>"), svg)
        // No shifted split in these summaries: the gap panel has no data, the masked one lists both models.
        XCTAssertTrue(svg.contains(">no data</text>"), svg)
        XCTAssertEqual(svg.components(separatedBy: ">QD-DETR</text>").count - 1, 1)
        XCTAssertTrue(svg.contains("erase-masked R1@0.3"), svg)

        // main_data names the body's data instead; a name that picks no single dataset is a one-line error.
        let runs = builder.sweep
        XCTAssertEqual(try ReportData.mainDataset(runs, named: "rho=0.6")?["rho"], .number(0.6))
        XCTAssertEqual(try ReportData.mainDataset(runs, named: " rho = 0.8 , train_videos=500")?["rho"], .number(0.8))
        XCTAssertEqual(try ReportData.mainDataset(runs, named: ""), try ReportData.mainDataset(runs, named: "rho=0.9"))
        XCTAssertThrowsError(try ReportData.mainDataset(runs, named: "train_videos=500")) { error in
            XCTAssertEqual("\(error)", #"report: main_data "train_videos=500" matches 3 of the runs' datasets, not one (they are: rho=0.6; rho=0.8; rho=0.9)"#)
        }
        XCTAssertThrowsError(try ReportData.mainDataset(runs, named: "rho")) { error in
            XCTAssertTrue("\(error)".contains("expected key=value pairs"), "\(error)")
        }
        let onRho6 = ReportBuilder(every: runs, logs: [], examples: 0, mainData: try ReportData.mainDataset(runs, named: "rho=0.6"))
        XCTAssertEqual(onRho6.groups, ["QD-DETR", "TD-DETR"])
        XCTAssertEqual(onRho6.runs.count, 6)
    }

    /// The configuration the sweep repeats is the one trained on the most datasets, not an ablation run on the
    /// main data alone, even when that ablation is the body's first group.
    func testTheSweptConfigurationIsTheOneTrainedOnTheMostDatasets() throws {
        func data(_ rho: Double) -> String { #"{"rho": \#(rho)}"# }
        var summaries: [String] = []
        for seed in 1...2 {
            summaries.append(summary(model: "qd-detr", seed: seed, params: #", "lr": 0.5"#, r1: 70, dataset: data(0.9)))
            summaries.append(summary(model: "qd-detr", seed: seed, params: #", "lr": 0.001"#, r1: 50, dataset: data(0.9)))
            summaries.append(summary(model: "qd-detr", seed: seed, params: #", "lr": 0.001"#, r1: 40, dataset: data(0.6)))
        }
        let builder = try builder(summaries, sweep: true)
        XCTAssertEqual(builder.groups, ["QD-DETR (lr=0.001)", "QD-DETR (lr=0.5)"])
        XCTAssertEqual(builder.sweepConfiguration("qd-detr")?["lr"], .number(0.001))
        let main = try XCTUnwrap(builder.sweepPoints.first { $0["rho"] == .number(0.9) })
        XCTAssertEqual(builder.sweepRuns("qd-detr", at: main).map { $0.value("val", "trained", "none", "R1@0.3") }, [50, 50])
        // On the body's data the swept runs are the body's, under the body's label (so the same intervals).
        XCTAssertEqual(builder.sweepRuns("qd-detr", at: main).map(\.group), ["QD-DETR (lr=0.001)", "QD-DETR (lr=0.001)"])
        let other = try XCTUnwrap(builder.sweepPoints.first { $0["rho"] == .number(0.6) })
        XCTAssertEqual(builder.sweepRuns("qd-detr", at: other).map(\.group), ["QD-DETR at rho=0.6", "QD-DETR at rho=0.6"])
    }

    func testWithoutASweepThereIsNoSweepSectionOrColumn() throws {
        let builder = try builder([summary(model: "qd-detr", seed: 1, r1: 50), summary(model: "td-detr", seed: 1, r1: 40)], sweep: true)
        XCTAssertTrue(builder.sweep.isEmpty)
        let (doc, figures) = builder.build()
        XCTAssertFalse(doc.markdownText.contains("difficulty sweep"), doc.markdownText)
        XCTAssertTrue(try XCTUnwrap(figures.first { $0.0 == "difficulty.svg" }?.1).contains("No difficulty sweep"))
    }
}
