import ArgumentParser
import Foundation
import Shards

/// `report`: one Markdown file and one self-contained HTML page (inline SVG) from every mask-eval summary
/// and train log of a pipeline, with every number as mean ± std over seeds, and every comparison and claim with
/// a seeded bootstrap interval.
public struct ReportCommand: StageCommand {
    public static let stageName = "report"
    public static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the Markdown + HTML report (tables and SVG plots) of all evaluated runs.",
        discussion: """
            Inputs: --in summaries=summary.json (one per trained model, from mask-eval run; repeatable) and \
            --in logs=log.jsonl (from train; repeatable). Outputs: report.md, report.html, headline.svg, \
            curves.svg, timeline.svg, sensitivity.svg, difficulty.svg (a plot when the runs were trained on \
            several datasets, a difficulty sweep: the body is then about one of them, main_data, and a section \
            about all; else a note).
            """)

    public static let params: [ParamDecl] = [
        .string("title", "Moment retrieval under spurious correlation", "the report's title"),
        .integer("examples", 4, min: 1, max: 6, "queries shown in the timeline figure"),
        .string("main_data", "", "when runs were trained on several datasets, the one the report's body is about, by its feature-ingest params (e.g. rho=0.9,train_videos=500); empty: the one most runs share"),
    ]
    public static let inputRoles = ["summaries", "logs"]

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        // A node of one sweep can be the very run of another (the same cache key, e.g. the difficulty sweep's
        // default-data point and the ablation grid): its file comes twice and counts once.
        var seen = Set<String>()
        let runs = try io.inputs("summaries").map(ReportData.loadSummary).filter { seen.insert($0.hash).inserted }
        let logs = try io.inputs("logs").map(ReportData.loadLog).filter { seen.insert($0.hash).inserted }
        guard !runs.isEmpty else { throw StageError("report: no --in summaries=summary.json given") }
        let main = try ReportData.mainDataset(runs, named: p.string("main_data"))
        let builder = ReportBuilder(every: runs, logs: logs, examples: p.int("examples"), mainData: main)
        let (document, figures) = builder.build()
        try outputs.write(Data(("# \(p.string("title"))\n\n" + document.markdownText).utf8), as: "report.md")
        try outputs.write(Data(document.htmlPage(title: p.string("title")).utf8), as: "report.html")
        for (name, svg) in figures { try outputs.write(Data(svg.utf8), as: name) }
        print("report: \(runs.count) evaluated runs, \(builder.groups.count) configurations"
              + (builder.sweep.isEmpty ? "" : " on the main data of \(builder.sweepPoints.count) datasets") + ", \(logs.count) training logs")
    }
}
