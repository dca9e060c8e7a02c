import Foundation
import Shards

/// The difficulty sweep: the main comparisons repeated on every dataset the runs were trained on (e.g. the
/// synthetic benchmark at several `rho` and `train_videos`), so that each verdict comes with the range where it holds.
extension ReportBuilder {
    /// A comparison the sweep repeats at every point: `a` minus `b` on one metric, with the claimed sign.
    struct SweepClaim {
        let name: String
        let a: String, b: String
        let split: String, condition: String, key: String
        let negative: Bool
    }

    /// The dataset params that vary over the sweep, the x axis first (`rho` when it varies).
    var sweepAxes: [String] {
        let keys = ReportData.varyingDatasetKeys(sweep)
        return keys.contains("rho") ? ["rho"] + keys.filter { $0 != "rho" } : keys
    }

    /// Every dataset of the sweep, ordered by its axis values.
    var sweepPoints: [JSONValue] {
        let axes = sweepAxes
        var points: [JSONValue] = []
        for r in sweep where !points.contains(r.dataset) { points.append(r.dataset) }
        func key(_ p: JSONValue) -> [Double] { axes.reversed().map { p[$0]?.doubleValue ?? 0 } }
        return points.sorted { key($0).lexicographicallyPrecedes(key($1)) }
    }

    /// "rho=0.6, train_videos=250".
    func pointLabel(_ point: JSONValue) -> String {
        sweepAxes.map { "\($0)=\(point[$0]?.canonical ?? "-")" }.joined(separator: ", ")
    }

    /// A run's train params without those that do not make a configuration (seed, thread count).
    static func configuration(_ params: JSONValue) -> JSONValue {
        guard var object = params.objectValue else { return params }
        for k in ["seed", "threads", "eval_batch_size"] { object[k] = nil }
        return .object(object)
    }

    /// The configuration of `model` the sweep repeats: the one trained on the most datasets (a pipeline may also
    /// run ablations on the main data only), the body's main configuration among equals.
    func sweepConfiguration(_ model: String) -> JSONValue? {
        var datasets: [JSONValue: Set<JSONValue>] = [:]
        for r in sweep where r.model == model { datasets[Self.configuration(r.params), default: []].insert(r.dataset) }
        let main = mainRuns(model).first.map { Self.configuration($0.params) }
        return datasets.max { a, b in (a.value.count, a.key == main ? 1 : 0) < (b.value.count, b.key == main ? 1 : 0) }?.key
    }

    /// The runs of `model`'s swept configuration (`sweepConfiguration`) on `point`, labelled with the point.
    func sweepRuns(_ model: String, at point: JSONValue) -> [EvaluatedRun] {
        guard let configuration = sweepConfiguration(model) else { return [] }
        // On the body's data these are the body's runs: the body's label, so their intervals (seeded by the
        // label) are the claims table's.
        let main = mainRuns(model).first
        let label = main.map { point == $0.dataset && Self.configuration($0.params) == configuration } == true
            ? main!.group : "\(ReportData.modelNames[model] ?? model) at \(pointLabel(point))"
        return sweep.filter { $0.model == model && $0.dataset == point && Self.configuration($0.params) == configuration }
            .sorted { $0.seed < $1.seed }
            .map { run in
                var labelled = run
                labelled.group = label
                return labelled
            }
    }

    /// The comparisons the sweep repeats (those whose models ran).
    var sweepClaims: [SweepClaim] {
        guard let val = splits.first else { return [] }
        var claims: [SweepClaim] = []
        if splits.contains("shifted") {
            claims.append(SweepClaim(name: "TD-DETR more robust on the shifted split (R1@0.3)", a: "td-detr", b: "qd-detr",
                                     split: "shifted", condition: "none", key: "R1@0.3", negative: false))
        }
        if masks.contains("erase") {
            claims.append(SweepClaim(name: "TD-DETR lowers erase-masked R1@0.3", a: "td-detr", b: "qd-detr",
                                     split: val, condition: "erase", key: "R1@0.3", negative: true))
        }
        if masks.contains("zero") {
            claims.append(SweepClaim(name: "TD-DETR lowers zero-masked R1@0.3", a: "td-detr", b: "qd-detr",
                                     split: val, condition: "zero", key: "R1@0.3", negative: true))
        }
        claims.append(SweepClaim(name: "CDNet beats QD-DETR on R1@0.3", a: "cdnet", b: "qd-detr",
                                 split: val, condition: "none", key: "R1@0.3", negative: false))
        return claims
    }

    /// The claim's paired difference and verdict at one point, nil where either model did not run.
    func sweepVerdict(_ claim: SweepClaim, at point: JSONValue) -> (difference: PairedDifference, verdict: PairedDifference.Verdict)? {
        let a = sweepRuns(claim.a, at: point), b = sweepRuns(claim.b, at: point)
        guard !a.isEmpty, !b.isEmpty, let d = paired(a, b, claim.split, claim.condition, claim.key) else { return nil }
        return (d, d.verdict(expectNegative: claim.negative))
    }

    /// Where a claim's verdict holds over the sweep, e.g. "reproduced at 5 of 12 points (rho=0.9, train_videos=250; ...);
    /// inconclusive at 7 (...)". Nil without a sweep or when the claim's models did not run at any point.
    func sweepRange(a: String, b: String, split: String, condition: String, key: String, negative: Bool) -> String? {
        guard !sweep.isEmpty else { return nil }
        let claim = SweepClaim(name: "", a: a, b: b, split: split, condition: condition, key: key, negative: negative)
        let points = sweepPoints
        var byVerdict: [(PairedDifference.Verdict, [String])] = [(.reproduced, []), (.inconclusive, []), (.notReproduced, [])]
        var decided = 0
        for point in points {
            guard let (_, verdict) = sweepVerdict(claim, at: point) else { continue }
            decided += 1
            byVerdict[byVerdict.firstIndex { $0.0 == verdict }!].1.append(pointLabel(point))
        }
        guard decided > 0 else { return nil }
        return byVerdict.filter { !$0.1.isEmpty }.map { verdict, labels in
            "\(verdict.rawValue) at \(labels.count) of \(decided) (\(labels.joined(separator: "; ")))"
        }.joined(separator: "; ")
    }

    /// Mean over seeds of a per-run value, with its bootstrap interval.
    func sweepMean(_ values: [Double], name: String) -> (mean: Double, interval: (low: Double, high: Double)?)? {
        guard !values.isEmpty else { return nil }
        return (values.reduce(0, +) / Double(values.count), Bootstrap.interval(values, seed: name))
    }

    /// The section: a table of each comparison's verdict at each point, and per value of the other axes two panels
    /// over the first axis, each model with its interval band: the shifted-split gap (val minus shifted R1@0.3),
    /// and the erase-masked R1@0.3 against the untrained control. Nil (no section) without a sweep.
    func difficulty(_ doc: inout ReportDocument) -> String? {
        guard !sweep.isEmpty, let val = splits.first, let xAxis = sweepAxes.first else { return nil }
        let points = sweepPoints, claims = sweepClaims
        let models = ["qd-detr", "td-detr", "cdnet"].filter { m in points.contains { !sweepRuns(m, at: $0).isEmpty } }
        doc.heading("Where the verdicts hold: the difficulty sweep")
        let main = runs.first.map { pointLabel($0.dataset) } ?? "-"
        doc.paragraph("The same models and seeds trained on \(points.count) versions of the data, varying \(sweepAxes.joined(separator: " and ")) "
            + "(rho: how often an event happens in its usual scene in train and val; train_videos: the training set's size). "
            + "The headline figure, the claims table and the sections after this one are about \(main) (the data most runs share, "
            + "or the report's main_data). Each cell is the paired difference over seeds "
            + "with its 95% bootstrap interval and the verdict it gives, as in the claims table.")
        var t = ReportTable(header: [sweepAxes.joined(separator: ", ")] + claims.map(\.name), rows: [])
        for point in points {
            t.rows.append([sweepAxes.map { point[$0]?.canonical ?? "-" }.joined(separator: ", ")] + claims.map { claim in
                guard let (d, verdict) = sweepVerdict(claim, at: point) else { return "not run" }
                return "\(d.text), \(verdict.rawValue)"
            })
        }
        doc.table(t, caption: "Each comparison at each point of the sweep: difference [95% interval] over the seeds both models share, and its verdict.")

        // One column of panels per value of the other axes; x is the first axis.
        let others = Array(sweepAxes.dropFirst())
        var columns: [JSONValue] = []
        for p in points {
            let rest = JSONValue.object(Dictionary(uniqueKeysWithValues: others.map { ($0, p[$0] ?? .null) }))
            if !columns.contains(rest) { columns.append(rest) }
        }
        let panelWidth = 430.0, panelHeight = 300.0
        var body = ""
        let mask = masks.contains("erase") ? "erase" : masks.first
        for (c, column) in columns.enumerated() {
            let inColumn = points.filter { p in others.allSatisfy { p[$0] == column[$0] } }
            let suffix = others.isEmpty ? "" : " (" + others.map { "\($0) \(column[$0]?.canonical ?? "-")" }.joined(separator: ", ") + ")"
            var gapSeries: [SVGPlot.Series] = [], maskedSeries: [SVGPlot.Series] = []
            var control: [(Double, Double)] = []
            for model in models {
                var gap: [(x: Double, y: Double, err: Double)] = [], gapBand: [(low: Double, high: Double)] = []
                var masked: [(x: Double, y: Double, err: Double)] = [], maskedBand: [(low: Double, high: Double)] = []
                for point in inColumn {
                    guard let x = point[xAxis]?.doubleValue else { continue }
                    let runs = sweepRuns(model, at: point)
                    let name = "\(model) \(pointLabel(point))"
                    let gaps = runs.compactMap { r -> Double? in
                        guard let v = r.value(val, "trained", "none", "R1@0.3"), let s = r.value("shifted", "trained", "none", "R1@0.3") else { return nil }
                        return v - s
                    }
                    if let m = sweepMean(gaps, name: name + " gap") {
                        gap.append((x, m.mean, 0))
                        gapBand.append(m.interval ?? (m.mean, m.mean))
                    }
                    if let mask, let m = sweepMean(runs.compactMap { $0.value(val, "trained", mask, "R1@0.3") }, name: name + " " + mask) {
                        masked.append((x, m.mean, 0))
                        maskedBand.append(m.interval ?? (m.mean, m.mean))
                    }
                }
                // Every model has its series in every panel, empty where it did not run, so that a model keeps
                // its colour, dash and marker (which go by position) across panels.
                let label = ReportData.modelNames[model] ?? model
                gapSeries.append(SVGPlot.Series(label: label, points: gap, band: gapBand))
                maskedSeries.append(SVGPlot.Series(label: label, points: masked, band: maskedBand))
            }
            if let mask {
                // The untrained control: every model's initial weights, pooled, at each point.
                for point in inColumn {
                    guard let x = point[xAxis]?.doubleValue else { continue }
                    let values = models.flatMap { sweepRuns($0, at: point) }.compactMap { $0.value(val, "untrained", mask, "R1@0.3") }
                    if !values.isEmpty { control.append((x, values.reduce(0, +) / Double(values.count))) }
                }
                if !control.isEmpty {
                    maskedSeries.append(SVGPlot.Series(label: "untrained control", points: control.map { ($0.0, $0.1, 0) }, reference: true))
                }
            }
            body += SVGPlot.panel(title: "Shifted-split gap\(suffix)", xLabel: xAxis, yLabel: "\(val) - shifted R1@0.3",
                                  series: gapSeries, x0: Double(c) * panelWidth, y0: 0, width: panelWidth, height: panelHeight)
            body += SVGPlot.panel(title: "\(mask ?? "masked")-masked R1@0.3\(suffix)", xLabel: xAxis, yLabel: "\(val) R1@0.3, \(mask ?? "") mask",
                                  series: maskedSeries, x0: Double(c) * panelWidth, y0: panelHeight, width: panelWidth, height: panelHeight)
        }
        let svg = SVGPlot.document(width: Double(max(1, columns.count)) * panelWidth, height: 2 * panelHeight, body)
        doc.figure(svg: svg, file: "difficulty.svg",
                   alt: "Over \(xAxis): the shifted-split gap and the \(mask ?? "")-masked R1@0.3 of each model with 95% bootstrap bands, the untrained control dashed")
        return svg
    }
}
