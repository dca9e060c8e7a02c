import Foundation
import Shards

/// The headline figure, the paired comparisons and the claims table: every difference the report states comes
/// with a seeded 95% bootstrap interval, and a paper's claim gets its verdict from that interval.
extension ReportBuilder {
    static let methodText = "Intervals: a difference between two configurations is paired by seed (the same seed trains both; seeds the two do not share are left out) and its 95% interval is the 2.5th-97.5th percentile of 10,000 seeded bootstrap resamples of the per-seed differences; with a single shared seed the resampled units are the queries of the split instead (per-query top-1 IoU, so R1 and mIoU only). \"signs\" is the share of seeds (or queries) whose difference has the sign of the mean. A claim is reproduced when the whole interval lies on the claimed side of zero, not reproduced when it lies wholly on the other side, and inconclusive when it holds zero. Bars in the headline figure show the mean over seeds with the same bootstrap interval of the mean."

    /// Runs of the configuration every comparison is made against for `model` (its group with no varying
    /// param, else its first group).
    func mainRuns(_ model: String) -> [EvaluatedRun] {
        let name = ReportData.modelNames[model] ?? model
        let candidates = groups.filter { runs(in: $0).first?.model == model }
        guard let group = candidates.first(where: { $0 == name }) ?? candidates.first else { return [] }
        return runs(in: group)
    }

    /// A metric of one run, and its per-query form (R1@t as 0/100 hits, mIoU as 100 x IoU) when the summary
    /// has the per-query top-1 IoUs.
    func perQuery(_ run: EvaluatedRun, _ split: String, _ weights: String, _ condition: String, _ key: String) -> [Double]? {
        guard let ious = run.summary["splits"]?[split]?[weights]?["top1_iou"]?[condition]?.arrayValue?.compactMap(\.doubleValue) else {
            return nil
        }
        if key == "mIoU" { return ious.map { 100 * $0 } }
        guard key.hasPrefix("R1@"), let threshold = Double(key.dropFirst(3)) else { return nil }
        return ious.map { $0 >= threshold ? 100 : 0 }
    }

    /// `a - b` for one metric, paired by seed, or by query when the two share one seed; nil when they share none.
    func paired(_ a: [EvaluatedRun], _ b: [EvaluatedRun], _ split: String, _ condition: String, _ key: String,
                weights: String = "trained") -> PairedDifference? {
        let name = "\(a.first?.group ?? "") vs \(b.first?.group ?? "") \(split) \(condition) \(key)"
        let bySeed = Dictionary(b.map { ($0.seed, $0) }, uniquingKeysWith: { first, _ in first })
        let pairs = a.compactMap { run in bySeed[run.seed].map { (run, $0) } }
        if pairs.count == 1, let (x, y) = pairs.first, let qa = perQuery(x, split, weights, condition, key),
           let qb = perQuery(y, split, weights, condition, key), qa.count == qb.count, !qa.isEmpty {
            return PairedDifference(unit: "queries", differences: zip(qa, qb).map { $0 - $1 }, seed: name)
        }
        let differences = pairs.compactMap { x, y -> Double? in
            guard let u = x.value(split, weights, condition, key), let v = y.value(split, weights, condition, key) else { return nil }
            return u - v
        }
        return differences.isEmpty ? nil : PairedDifference(unit: "seeds", differences: differences, seed: name)
    }

    /// Mean over seeds of one metric with its bootstrap interval (per query for a single seed).
    func meanWithInterval(_ runs: [EvaluatedRun], _ split: String, _ weights: String, _ condition: String,
                          _ key: String) -> (mean: Double, interval: (low: Double, high: Double)?)? {
        let values = runs.compactMap { $0.value(split, weights, condition, key) }
        guard !values.isEmpty else { return nil }
        let mean = values.reduce(0, +) / Double(values.count)
        let name = "\(runs.first?.group ?? "") \(split) \(weights) \(condition) \(key)"
        if values.count == 1, let run = runs.first, let queries = perQuery(run, split, weights, condition, key) {
            return (mean, Bootstrap.interval(queries, seed: name))
        }
        return (mean, Bootstrap.interval(values, seed: name))
    }

    /// Per model: R1@0.3 on val, on the shifted split and with the moment erased (or the first mask), each next to
    /// the untrained control, with intervals. The one picture the report is about.
    func headline(_ doc: inout ReportDocument) -> String {
        guard let val = splits.first else { return SVGPlot.document(width: 400, height: 40, "") }
        let mask = masks.contains("erase") ? "erase" : masks.first
        var measures: [(label: String, split: String, condition: String)] = [("\(val)", val, "none")]
        if splits.contains("shifted") { measures.append(("shifted", "shifted", "none")) }
        if let mask { measures.append(("\(val), \(mask)-masked", val, mask)) }
        var models: [String] = []
        for g in groups {
            if let main = runs(in: g).first.flatMap({ mainRuns($0.model).first?.group }), !models.contains(main) { models.append(main) }
        }
        let categories = models.map { g -> (label: String, bars: [SVGPlot.Bar]) in
            var bars: [SVGPlot.Bar] = []
            for m in measures {
                for weights in ["trained", "untrained"] {
                    if let s = meanWithInterval(runs(in: g), m.split, weights, m.condition, "R1@0.3") {
                        bars.append(SVGPlot.Bar(label: m.label, value: s.mean, interval: s.interval, control: weights == "untrained"))
                    }
                }
            }
            return (g, bars)
        }
        let width = max(560.0, 120 + Double(categories.count) * Double(measures.count) * 2 * 30)
        let svg = SVGPlot.document(width: width, height: 340, SVGPlot.bars(
            title: "R1@0.3 per model: solid trained, hatched untrained control; whiskers 95% bootstrap intervals",
            yLabel: "R1@0.3", categories: categories, series: measures.map(\.label), width: width, height: 340))
        doc.figure(svg: svg, file: "headline.svg",
                   alt: "R1@0.3 of each model on \(measures.map(\.label).joined(separator: ", ")), next to its untrained control, mean over seeds with 95% bootstrap intervals")
        return svg
    }

    /// The papers' claims with the paper's figure, ours with its interval, and the verdict the interval gives.
    func claims(_ doc: inout ReportDocument) {
        guard let val = splits.first else { return }
        doc.heading("The papers' claims")
        var t = ReportTable(header: ["claim", "paper", "ours (difference [95% interval], signs)", "verdict"]
                            + (sweep.isEmpty ? [] : ["where it holds (difficulty sweep)"]), rows: [])
        let qd = mainRuns("qd-detr"), td = mainRuns("td-detr"), cd = mainRuns("cdnet")
        // `models`: the two models whose main configurations the claim compares, for its range over the sweep.
        func row(_ claim: String, _ paper: String, _ a: [EvaluatedRun], _ b: [EvaluatedRun], _ split: String, _ condition: String,
                 _ key: String, negative: Bool = false, models: (String, String)? = nil) {
            let range = sweep.isEmpty ? [] : [models.flatMap {
                sweepRange(a: $0.0, b: $0.1, split: split, condition: condition, key: key, negative: negative)
            } ?? "-"]
            guard !a.isEmpty, !b.isEmpty, let d = paired(a, b, split, condition, key) else {
                t.rows.append([claim, paper, "not in this pipeline", "not run"] + range)
                return
            }
            // The means over the seeds the two share, the ones the difference pairs.
            let shared = Set(a.map(\.seed)).intersection(b.map(\.seed))
            let means = [a, b].map { runs in
                SeedStatistic(values: runs.filter { shared.contains($0.seed) }.compactMap { $0.value(split, "trained", condition, key) }).mean
            }
            let relative = means[1] != 0 ? String(format: " (%+.0f%%)", 100 * (means[0] / means[1] - 1)) : ""
            let ours = String(format: "%.2f vs %.2f%@: ", means[0], means[1], relative) + d.text
                + String(format: ", %.0f%% of %d %@", 100 * d.signShare, d.differences.count, d.unit)
            t.rows.append([claim, paper, ours, d.verdict(expectNegative: negative).rawValue] + range)
        }
        if masks.contains("zero") {
            row("TD-DETR lowers spurious R1@0.3 under the zero mask vs QD-DETR (table 2)", "33.10 -> 18.19 (-45%)", td, qd, val, "zero",
                "R1@0.3", negative: true, models: ("td-detr", "qd-detr"))
            row("TD-DETR lowers spurious mIoU under the zero mask vs QD-DETR (table 2)", "25.92 -> 14.04 (-46%)", td, qd, val, "zero",
                "mIoU", negative: true, models: ("td-detr", "qd-detr"))
        }
        if masks.contains("erase") {
            row("TD-DETR lowers spurious R1@0.3 with the moment erased, context kept (our mask, table 2's claim)", "-", td, qd, val, "erase",
                "R1@0.3", negative: true, models: ("td-detr", "qd-detr"))
        }
        if splits.contains("shifted") {
            row("TD-DETR is more robust when the event leaves its usual scene (shifted split R1@0.3)", "-", td, qd, "shifted", "none", "R1@0.3",
                models: ("td-detr", "qd-detr"))
        }
        let vsdc = mainRuns("vsdc-only"), tdem = mainRuns("tdem-only")
        row("VSDC alone helps (table 4, b vs a)", "mAP 42.54 -> 45.28", vsdc, qd, val, "none", "mAP")
        row("TDEM alone helps (table 4, c vs a)", "mAP 42.54 -> 44.62", tdem, qd, val, "none", "mAP")
        row("VSDC and TDEM together beat VSDC alone (table 4, d vs b)", "mAP 45.28 -> 46.97", td, vsdc, val, "none", "mAP")
        row("VSDC and TDEM together beat TDEM alone (table 4, d vs c)", "mAP 44.62 -> 46.97", td, tdem, val, "none", "mAP")
        let tdAll = runs.filter { $0.model == "td-detr" }
        func tdSweep(_ axis: String, _ value: Double, other: String) -> [EvaluatedRun] {
            let held = Dictionary(grouping: tdAll.compactMap { $0.axis(other)?.doubleValue }, by: { $0 }).max { $0.value.count < $1.value.count }?.key
            return tdAll.filter { $0.axis(axis)?.doubleValue == value && $0.axis(other)?.doubleValue == held }
        }
        row("Synthesis with alpha 0.5 beats alpha 1.0, no partner clips (table S1)", "mAP 44.62 -> 46.97", tdSweep("alpha", 0.5, other: "beta"),
            tdSweep("alpha", 1.0, other: "beta"), val, "none", "mAP")
        row("Dynamics injected with beta 0.5 beat beta 1.0, none (table S2)", "mAP 45.28 -> 46.71", tdSweep("beta", 0.5, other: "alpha"),
            tdSweep("beta", 1.0, other: "alpha"), val, "none", "mAP")
        row("CDNet beats QD-DETR on R1@0.3 (CDNet table 1)", "75.03 -> 78.32 (+3.29)", cd, qd, val, "none", "R1@0.3",
            models: ("cdnet", "qd-detr"))
        let cdAll = runs.filter { $0.model == "cdnet" }
        for (key, name) in [("cdnet_global_guidance", "global guidance"), ("cdnet_fine_grained", "fine-grained guidance"),
                            ("cdnet_relevance", "the relevance score"), ("cdnet_denoising", "dynamic denoising (CDD)")] {
            let switches = ["cdnet_global_guidance", "cdnet_fine_grained", "cdnet_relevance", "cdnet_denoising"]
            let full = cdAll.filter { run in switches.allSatisfy { run.params[$0]?.boolValue != false } }
            let without = cdAll.filter { run in switches.allSatisfy { (run.params[$0]?.boolValue != false) == ($0 != key) } }
            row("CDNet: \(name) helps (CDNet table 4)", key == "cdnet_denoising" ? "mAP +2.64" : "mAP up", full, without, val, "none", "mAP")
        }
        doc.table(t, caption: "Each claim with the paper's figure and ours on this benchmark (\(val) unless named); the verdict is read off the interval, as the method below says.")
        doc.paragraph(Self.methodText)
    }

    /// Every configuration against its base (QD-DETR; a CDNet ablation against full CDNet; a TD-DETR sweep point
    /// against TD-DETR's main configuration), paired, on the numbers the report is about.
    func comparisons(_ doc: inout ReportDocument) {
        guard let val = splits.first else { return }
        let qd = mainRuns("qd-detr")
        var measures: [(String, String, String)] = [(val, "none", "R1@0.3"), (val, "none", "mAP")]
        if splits.contains("shifted") { measures.append(("shifted", "none", "R1@0.3")) }
        for m in masks { measures.append((val, m, "R1@0.3")); measures.append((val, m, "mIoU")) }
        var t = ReportTable(header: ["configuration", "against"] + measures.map { "\($0.0)\($0.1 == "none" ? "" : " \($0.1)") \($0.2)" }, rows: [])
        for g in groups {
            let runs = runs(in: g)
            guard let model = runs.first?.model else { continue }
            let main = mainRuns(model)
            let base: [EvaluatedRun]
            if model != "qd-detr" && main.first?.group != g && !main.isEmpty {
                base = main
            } else if model != "qd-detr" {
                base = qd
            } else {
                continue
            }
            guard let baseGroup = base.first?.group else { continue }
            t.rows.append([g, baseGroup] + measures.map { split, condition, key in
                guard let d = paired(runs, base, split, condition, key) else { return "-" }
                return d.text + String(format: ", %.0f%%", 100 * d.signShare)
            })
        }
        guard !t.rows.isEmpty else { return }
        doc.heading("Paired differences")
        doc.table(t, caption: "Configuration minus its base, paired by seed: mean [95% bootstrap interval], share of seeds with that sign.")
    }
}
