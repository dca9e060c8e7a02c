import Foundation
import Shards

/// Builds the report's sections from the evaluated runs, grouped into configurations (seeds pooled).
struct ReportBuilder {
    let runs: [EvaluatedRun]
    let logs: [TrainingLog]
    let groups: [String]
    let examples: Int
    /// Every run, over every dataset, when the runs span several (a difficulty sweep); else empty.
    var sweep: [EvaluatedRun] = []

    /// The report of `every` run: when the runs were trained on several datasets (a difficulty sweep), the body is
    /// about the data most runs share and the sweep section about every dataset.
    init(every: [EvaluatedRun], logs: [TrainingLog], examples: Int, mainData: JSONValue? = nil) {
        var (runs, logs) = (every, logs)
        if let main = mainData ?? ReportData.mainDataset(every) {
            runs = runs.filter { $0.dataset == main }
            logs = logs.filter { $0.dataset == main }
        }
        let groups = ReportData.assignGroups(&runs, &logs)
        self.init(runs: runs, logs: logs, groups: groups, examples: examples, sweep: runs.count < every.count ? every : [])
    }

    init(runs: [EvaluatedRun], logs: [TrainingLog], groups: [String], examples: Int, sweep: [EvaluatedRun] = []) {
        (self.runs, self.logs, self.groups, self.examples, self.sweep) = (runs, logs, groups, examples, sweep)
    }

    var splits: [String] {
        var names: [String] = []
        for r in runs { for s in (r.summary["splits"]?.objectValue?.keys.sorted() ?? []) where !names.contains(s) { names.append(s) } }
        return names.sorted { ($0 == "val" ? 0 : 1, $0) < ($1 == "val" ? 0 : 1, $1) }
    }

    var masks: [String] {
        var names: [String] = []
        for r in runs { for m in r.summary["masks"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !names.contains(m) { names.append(m) } }
        return names
    }

    func runs(in group: String) -> [EvaluatedRun] { runs.filter { $0.group == group }.sorted { $0.seed < $1.seed } }

    func stat(_ group: String, _ split: String, _ weights: String, _ condition: String, _ key: String) -> SeedStatistic {
        SeedStatistic(values: runs(in: group).compactMap { $0.value(split, weights, condition, key) })
    }

    func build() -> (ReportDocument, [(String, String)]) {
        var doc = ReportDocument()
        var figures: [(String, String)] = []
        let seedsText = groups.map { g in "\(g): seeds \(runs(in: g).map { String($0.seed) }.joined(separator: ", "))" }.joined(separator: "; ")
        doc.paragraph("Runs: \(seedsText). Every number is the mean ± sample standard deviation over seeds (x100, as the official QVHighlights evaluation prints it) unless an interval is given. Splits: \(splits.joined(separator: ", ")).")
        figures.append(("headline.svg", headline(&doc)))
        claims(&doc)
        // Always written (a declared output), a note when the runs share one dataset.
        figures.append(("difficulty.svg", difficulty(&doc) ?? SVGPlot.document(width: 440, height: 60,
            "<text x=\"10\" y=\"35\" font-size=\"13\">No difficulty sweep in this pipeline (see difficulty.json).</text>\n")))
        findings(&doc)
        tableOne(&doc)
        maskedTables(&doc)
        comparisons(&doc)
        grounding(&doc)
        ablation(&doc)
        let sensitivitySVG = sensitivity(&doc)
        figures.append(("sensitivity.svg", sensitivitySVG))
        let curvesSVG = curves(&doc)
        figures.append(("curves.svg", curvesSVG))
        let timelineSVG = timeline(&doc)
        figures.append(("timeline.svg", timelineSVG))
        appendix(&doc)
        return (doc, figures)
    }

    // MARK: sections

    func findings(_ doc: inout ReportDocument) {
        doc.heading("What the numbers say")
        guard let val = splits.first else { return }
        var lines: [String] = []
        for g in groups {
            let plain = stat(g, val, "trained", "none", "R1@0.3"), control = stat(g, val, "untrained", "none", "R1@0.3")
            var text = "\(g): \(val) R1@0.3 \(plain.text) (untrained \(control.text))"
            for m in masks {
                text += "; masked (\(m)) \(stat(g, val, "trained", m, "R1@0.3").text) vs untrained \(stat(g, val, "untrained", m, "R1@0.3").text)"
            }
            if splits.contains("shifted") { text += "; shifted R1@0.3 \(stat(g, "shifted", "trained", "none", "R1@0.3").text)" }
            lines.append(text + ".")
        }
        doc.paragraph("R1@0.3 (top-1 window overlapping the ground truth at IoU >= 0.3), unmasked, with the ground-truth clips masked, and on the shifted split. A model that still \"finds\" masked moments well above the untrained control locates them from their context, not from the moment itself; a model that relies on context drops on the shifted split, where the queried event leaves its usual scene.")
        for l in lines { doc.paragraph("- " + l) }
    }

    static let tableOneKeys = ["R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"]
    static let maskedKeys = ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"]

    func tableOne(_ doc: inout ReportDocument) {
        doc.heading("Moment retrieval and highlight detection (table 1 style)")
        for split in splits {
            var t = ReportTable(header: ["model (\(split))"] + Self.tableOneKeys.map { $0 == "HD-mAP" ? "HD mAP (VG)" : ($0 == "HD-HIT@1" ? "HIT@1 (VG)" : "MR \($0)") }, rows: [])
            for g in groups {
                t.rows.append([g] + Self.tableOneKeys.map { stat(g, split, "trained", "none", $0).text })
            }
            for g in groups {
                t.rows.append(["untrained \(g)"] + Self.tableOneKeys.map { stat(g, split, "untrained", "none", $0).text })
            }
            doc.table(t, caption: "\(split): MR = moment retrieval, mAP averaged over IoU 0.5:0.05:0.95; HD = highlight detection at >= Very Good.")
        }
    }

    func maskedTables(_ doc: inout ReportDocument) {
        doc.heading("Masked (spurious) evaluation (table 2 style)")
        doc.paragraph("The ground-truth clips are masked, the duration kept. zero: the paper's mask, features set to 0 (out of distribution; it marks the moment's exact boundaries). erase: context kept, the clips replaced by their scene's background plus noise (synthetic data) or by the nearest non-ground-truth clip (real data). Under a mask every number is spurious: lower is better. gIoU loss: mean 1 - gIoU of the top-1 window on unmasked inputs.")
        for split in splits {
            for mask in masks {
                var t = ReportTable(header: ["model (\(split), \(mask))"] + Self.maskedKeys.map { "spurious \($0)" } + ["gIoU loss (unmasked)"], rows: [])
                for g in groups {
                    let giou = SeedStatistic(values: runs(in: g).compactMap { $0.summary["splits"]?[split]?["untrained"]?["giou_loss"]?.doubleValue })
                    t.rows.append(["untrained \(g)"] + Self.maskedKeys.map { stat(g, split, "untrained", mask, $0).text } + [giou.text])
                }
                for g in groups {
                    let giou = SeedStatistic(values: runs(in: g).compactMap { $0.summary["splits"]?[split]?["trained"]?["giou_loss"]?.doubleValue })
                    t.rows.append([g] + Self.maskedKeys.map { stat(g, split, "trained", mask, $0).text } + [giou.text])
                }
                doc.table(t)
            }
        }
    }

    func grounding(_ doc: inout ReportDocument) {
        let have = runs.contains { r in splits.contains { r.summary["splits"]?[$0]?["trained"]?["grounding"] != nil } }
        guard have else { return }
        doc.heading("Query grounding (synthetic benchmark)")
        doc.paragraph("Share of top-1 windows that overlap the queried event, the distractor event (the other event in the same video) or neither. A model that ignores the query splits evenly between the two events.")
        for split in splits {
            var t = ReportTable(header: ["model (\(split))", "queried %", "distractor %", "neither %"] + masks.map { "queried % (\($0))" }, rows: [])
            for weights in ["untrained", "trained"] {
                for g in groups {
                    func s(_ key: String, _ field: String) -> String {
                        SeedStatistic(values: runs(in: g).compactMap { $0.summary["splits"]?[split]?[weights]?[key]?[field]?.doubleValue }).text
                    }
                    t.rows.append([(weights == "untrained" ? "untrained " : "") + g, s("grounding", "queried"), s("grounding", "distractor"),
                                   s("grounding", "neither")] + masks.map { s("grounding_\($0)", "queried") })
                }
            }
            doc.table(t)
        }
    }

    func ablation(_ doc: inout ReportDocument) {
        let models = Set(runs.map(\.model))
        cdnetAblation(&doc)
        guard models.contains("vsdc-only") || models.contains("tdem-only") else { return }
        doc.heading("Ablation: VSDC x TDEM (table 4 style)")
        let split = splits.first!
        var t = ReportTable(header: ["VSDC", "TDEM", "configuration"] + ["R1@0.5", "R1@0.7", "mAP", "HD-mAP"].map { "\(split) \($0)" }
                            + masks.map { "\($0) R1@0.3" } + (splits.contains("shifted") ? ["shifted R1@0.3"] : []), rows: [])
        for g in groups {
            guard let model = runs(in: g).first?.model else { continue }
            let vsdc = model == "td-detr" || model == "vsdc-only", tdem = model == "td-detr" || model == "tdem-only"
            t.rows.append([vsdc ? "yes" : "-", tdem ? "yes" : "-", g] + ["R1@0.5", "R1@0.7", "mAP", "HD-mAP"].map { stat(g, split, "trained", "none", $0).text }
                          + masks.map { stat(g, split, "trained", $0, "R1@0.3").text }
                          + (splits.contains("shifted") ? [stat(g, "shifted", "trained", "none", "R1@0.3").text] : []))
        }
        doc.table(t)
    }

    /// CDNet's table 4: its four components switched on and off.
    func cdnetAblation(_ doc: inout ReportDocument) {
        let switches = [("cdnet_global_guidance", "global"), ("cdnet_fine_grained", "fine-grained"), ("cdnet_relevance", "relevance"),
                        ("cdnet_denoising", "CDD")]
        let cdnetGroups = groups.filter { runs(in: $0).first?.model == "cdnet" }
        let varies = switches.contains { key, _ in Set(cdnetGroups.compactMap { runs(in: $0).first?.params[key]?.canonical }).count > 1 }
        guard varies, let split = splits.first else { return }
        doc.heading("CDNet ablation (CDNet table 4 style)")
        let keys = ["R1@0.5", "R1@0.7", "mAP", "HD-mAP"]
        var t = ReportTable(header: switches.map(\.1) + keys.map { "\(split) \($0)" } + masks.map { "\($0) R1@0.3" }
                            + (splits.contains("shifted") ? ["shifted R1@0.3"] : []), rows: [])
        for g in cdnetGroups {
            guard let params = runs(in: g).first?.params else { continue }
            t.rows.append(switches.map { params[$0.0]?.boolValue == false ? "-" : "yes" } + keys.map { stat(g, split, "trained", "none", $0).text }
                          + masks.map { stat(g, split, "trained", $0, "R1@0.3").text }
                          + (splits.contains("shifted") ? [stat(g, "shifted", "trained", "none", "R1@0.3").text] : []))
        }
        doc.table(t)
    }

    /// Alpha (synthesis) and beta (TDEM) sweeps: a table and a line plot each.
    func sensitivity(_ doc: inout ReportDocument) -> String {
        var panels: [String] = []
        let split = splits.first ?? "val"
        // Sweeps of TD-DETR (tables S1/S2): one axis varies while the other stays at its most common value.
        let tdRuns = runs.filter { $0.model == "td-detr" }
        func mode(_ axis: String) -> JSONValue? {
            Dictionary(grouping: tdRuns.compactMap { $0.axis(axis) }, by: { $0 }).max { $0.value.count < $1.value.count }?.key
        }
        for (axis, other, what) in [("alpha", "beta", "sampling ratio alpha (VSDC)"), ("beta", "alpha", "injection ratio beta (TDEM)")] {
            let held = mode(other)
            let byValue = Dictionary(grouping: tdRuns.filter { $0.axis(axis) != nil && $0.axis(other) == held },
                                     by: { $0.axis(axis)!.doubleValue ?? 0 })
            guard byValue.count > 1 else { continue }
            if panels.isEmpty { doc.heading("Sensitivity to alpha and beta (tables S1/S2 style)") }
            let values = byValue.keys.sorted()
            var t = ReportTable(header: [axis] + ["R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"].map { "\(split) \($0)" }
                                + masks.map { "\($0) R1@0.3" }, rows: [])
            var mapSeries: [(Double, Double, Double)] = [], r1Series: [(Double, Double, Double)] = []
            for v in values {
                let group = byValue[v]!
                func s(_ condition: String, _ key: String) -> SeedStatistic {
                    SeedStatistic(values: group.compactMap { $0.value(split, "trained", condition, key) })
                }
                t.rows.append([JSONValue.formatNumber(v)] + ["R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"].map { s("none", $0).text }
                              + masks.map { s($0, "R1@0.3").text })
                mapSeries.append((v, s("none", "mAP").mean, s("none", "mAP").std))
                r1Series.append((v, s("none", "R1@0.5").mean, s("none", "R1@0.5").std))
            }
            doc.table(t, caption: "TD-DETR, \(what), \(split), \(other) held at \(held?.canonical ?? "-"), seeds pooled")
            panels.append(SVGPlot.panel(title: "Sensitivity to \(axis)", xLabel: axis, yLabel: "\(split) score",
                                        series: [SVGPlot.Series(label: "MR mAP", points: mapSeries.map { ($0.0, $0.1, $0.2) }),
                                                 SVGPlot.Series(label: "MR R1@0.5", points: r1Series.map { ($0.0, $0.1, $0.2) })],
                                        x0: Double(panels.count) * 440, y0: 0, width: 430, height: 300))
        }
        let svg: String
        if panels.isEmpty {
            svg = SVGPlot.document(width: 440, height: 60,
                                   "<text x=\"10\" y=\"35\" font-size=\"13\">No alpha or beta sweep in this pipeline (see experiments.json).</text>\n")
        } else {
            svg = SVGPlot.document(width: Double(panels.count) * 440, height: 300, panels.joined())
            doc.figure(svg: svg, file: "sensitivity.svg", alt: "Val scores against alpha and beta, mean ± std over seeds")
        }
        return svg
    }

    func curves(_ doc: inout ReportDocument) -> String {
        doc.heading("Training curves")
        func series(_ pick: (JSONValue) -> Double?) -> [SVGPlot.Series] {
            groups.compactMap { g in
                let groupLogs = logs.filter { $0.group == g }
                guard !groupLogs.isEmpty else { return nil }
                let epochs = groupLogs.map(\.epochs.count).min() ?? 0
                // Epochs without the value (val is scored every `eval_every` epochs) are left out.
                let points = (0..<epochs).compactMap { e -> (Double, Double, Double)? in
                    let values = groupLogs.compactMap { pick($0.epochs[e]) }
                    guard !values.isEmpty else { return nil }
                    let s = SeedStatistic(values: values)
                    return (Double(e + 1), s.mean, s.std)
                }
                return SVGPlot.Series(label: g, points: points.map { ($0.0, $0.1, 0) })
            }
        }
        let loss = series { $0["loss"]?["loss_total"]?.doubleValue }
        let val = series { $0["val"]?["MR-full-mAP"]?.doubleValue }
        let body = SVGPlot.panel(title: "Training loss (total)", xLabel: "epoch", yLabel: "loss", series: loss, x0: 0, y0: 0, width: 440, height: 300, markersEvery: 5)
            + SVGPlot.panel(title: "Val MR mAP", xLabel: "epoch", yLabel: "MR-full-mAP", series: val, x0: 440, y0: 0, width: 440, height: 300, markersEvery: 5)
        let svg = SVGPlot.document(width: 880, height: 300, body)
        doc.figure(svg: svg, file: "curves.svg", alt: "Total training loss and val MR-full-mAP per epoch, mean over seeds")
        // The last epoch's loss terms, per configuration.
        let terms = Array(Set(logs.flatMap { $0.epochs.last?["loss"]?.objectValue?.keys.filter { !$0.hasSuffix("_0") && !$0.hasSuffix("_1") && !$0.hasSuffix("_2") } ?? [] })).sorted()
        if !terms.isEmpty {
            var t = ReportTable(header: ["configuration (last epoch)"] + terms, rows: [])
            for g in groups {
                let groupLogs = logs.filter { $0.group == g }
                guard !groupLogs.isEmpty else { continue }
                t.rows.append([g] + terms.map { k in SeedStatistic(values: groupLogs.compactMap { $0.epochs.last?["loss"]?[k]?.doubleValue }).text })
            }
            doc.table(t, caption: "Loss terms at the last epoch (weighted terms before the coefficients; decoder-layer auxiliary terms omitted)")
        }
        return svg
    }

    /// Figure-4 style: for a few queries, the ground truth and each model's top-1 window on the time axis,
    /// unmasked and with the moment erased (masked clips hatched).
    func timeline(_ doc: inout ReportDocument) -> String {
        let representatives = groups.compactMap { runs(in: $0).first }
        guard let first = representatives.first, let items = first.summary["examples"]?.arrayValue, !items.isEmpty else {
            return SVGPlot.document(width: 400, height: 40, "<text x=\"10\" y=\"25\" font-size=\"13\">no examples</text>\n")
        }
        doc.heading("Examples (figure 4 style)")
        let mask = masks.contains("erase") ? "erase" : (masks.first ?? "none")
        let shown = Array(items.prefix(examples))
        let rowHeight = 16.0, labelWidth = 210.0, plotWidth = 620.0
        var rows: [(String, [Double]?, Bool, Bool)] = []  // label, window, hatched (masked input), outline
        var body = ""
        var y = 10.0
        for (i, item) in shown.enumerated() {
            let duration = item["duration"]?.doubleValue ?? 1
            let gt = item["gt"]?.arrayValue?.first?.arrayValue?.compactMap(\.doubleValue)
            rows = [("ground truth", gt, false, false)]
            if let d = item["distractor"]?.arrayValue?.compactMap(\.doubleValue) { rows.append(("distractor event", d, false, true)) }
            func top(_ run: EvaluatedRun, _ weights: String, _ condition: String) -> [Double]? {
                run.summary["examples"]?.arrayValue?[i]["top1"]?[weights]?[condition]?.arrayValue?.compactMap(\.doubleValue)
            }
            rows.append(("untrained", top(first, "untrained", "none"), false, false))
            for r in representatives {
                rows.append((r.group, top(r, "trained", "none"), false, false))
                rows.append(("\(r.group), \(mask)", top(r, "trained", mask), true, false))
            }
            let query = item["query"]?.stringValue ?? ""
            body += "<text x=\"4\" y=\"\(SVGPlot.f(y + 12))\" font-size=\"12\" font-weight=\"bold\">\(SVGPlot.escape("\"\(query)\" (\(Int(duration)) s)"))</text>\n"
            y += 18
            func px(_ t: Double) -> Double { labelWidth + t / duration * plotWidth }
            for (label, window, hatched, outline) in rows {
                body += "<text x=\"4\" y=\"\(SVGPlot.f(y + 11))\" font-size=\"10\">\(SVGPlot.escape(label))</text>\n"
                body += "<rect x=\"\(SVGPlot.f(labelWidth))\" y=\"\(SVGPlot.f(y + 2))\" width=\"\(SVGPlot.f(plotWidth))\" height=\"\(SVGPlot.f(rowHeight - 4))\" fill=\"#f4f4f4\"/>\n"
                if hatched, let gt {
                    body += "<rect x=\"\(SVGPlot.f(px(gt[0])))\" y=\"\(SVGPlot.f(y + 2))\" width=\"\(SVGPlot.f(px(gt[1]) - px(gt[0])))\" height=\"\(SVGPlot.f(rowHeight - 4))\" fill=\"url(#hatch)\"/>\n"
                }
                if let w = window, w.count >= 2 {
                    let fill = outline ? "none" : (label == "ground truth" ? "#2e7d32" : "#1b5e9e")
                    body += "<rect x=\"\(SVGPlot.f(px(w[0])))\" y=\"\(SVGPlot.f(y + 4))\" width=\"\(SVGPlot.f(max(1, px(w[1]) - px(w[0]))))\" height=\"\(SVGPlot.f(rowHeight - 8))\" fill=\"\(fill)\" stroke=\"#222\"\(outline ? " stroke-dasharray=\"4,2\"" : "")/>\n"
                }
                y += rowHeight
            }
            y += 10
        }
        let svg = SVGPlot.document(width: labelWidth + plotWidth + 20, height: y + 10, body)
        doc.figure(svg: svg, file: "timeline.svg",
                   alt: "Top-1 windows on the video's time axis: ground truth (green), the distractor event (dashed outline), the untrained control and each model (first seed), unmasked and with the moment's clips masked by \(mask) (hatched)")
        return svg
    }

    func appendix(_ doc: inout ReportDocument) {
        doc.heading("Appendix: lineage of every number")
        doc.paragraph("Each row is one input of this report: its content hash (the artifact hash in the manifest: `swift run pipeline lineage <hash>` prints the run, code fingerprint and inputs that produced it, down to feature-ingest), the configuration and seed, and the train (and synthesis) params it was made with.")
        var t = ReportTable(header: ["input", "sha256", "configuration", "seed"], rows: [])
        for r in runs.sorted(by: { ($0.group, $0.seed) < ($1.group, $1.seed) }) { t.rows.append(["summary.json", String(r.hash.prefix(16)), r.group, String(r.seed)]) }
        for l in logs.sorted(by: { ($0.group, $0.seed) < ($1.group, $1.seed) }) { t.rows.append(["log.jsonl", String(l.hash.prefix(16)), l.group, String(l.seed)]) }
        doc.table(t)
        resources(&doc)
        for g in groups {
            guard let r = runs(in: g).first else { continue }
            doc.paragraph("\(g): train params")
            doc.code(r.params.canonical + (r.synthesis == .null ? "" : "\nsynthesis " + r.synthesis.canonical))
        }
    }

    /// What each run cost, as the stage processes measured themselves (the driver's own records of the same
    /// runs are in `pipeline runs`).
    func resources(_ doc: inout ReportDocument) {
        func cells(_ r: JSONValue?) -> [String] {
            guard let r, let wall = r["wall_seconds"]?.doubleValue, let cpu = r["cpu_seconds"]?.doubleValue,
                  let rss = r["peak_rss_bytes"]?.doubleValue else { return ["-", "-", "-"] }
            return [String(format: "%.1f s", wall), String(format: "%.1f s", cpu), String(format: "%.0f MB", rss / 1e6)]
        }
        var t = ReportTable(header: ["configuration", "seed", "train wall", "train CPU", "train peak RSS", "eval wall", "eval CPU", "eval peak RSS"],
                            rows: [])
        for r in runs.sorted(by: { ($0.group, $0.seed) < ($1.group, $1.seed) }) {
            let log = logs.first { $0.params == r.params }
            t.rows.append([r.group, String(r.seed)] + cells(log?.epochs.last?["resources"]) + cells(r.summary["resources"]))
        }
        guard t.rows.contains(where: { $0[2] != "-" || $0[5] != "-" }) else { return }
        doc.paragraph("Resources of each run: wall time, CPU time (user + system) and peak resident memory of the train process (the one that finished it, for a resumed run) and of the mask-eval process, as each measured itself. `swift run pipeline runs` lists the driver's records of every run.")
        doc.table(t)
    }
}
