import ArgumentParser
import Foundation
import Retrieval
import Shards

/// Scoring the 1550-query QVHighlights val file, parse included, against the official Python script's ~20 s.
struct ScoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "score", abstract: "Evaluator speed on the QVHighlights val file.")

    @Option(help: "Folder holding highlight_val_release.jsonl.zst and sample_val_preds.jsonl.zst.")
    var fixtures = "Tests/RetrievalTests/Fixtures"
    @Option(help: "Timed repetitions (median reported).")
    var repeats = 10

    func run() throws {
        let dir = URL(fileURLWithPath: fixtures)
        let gt = try Zstd.decompress(Data(contentsOf: dir.appendingPathComponent("highlight_val_release.jsonl.zst")))
        let preds = try Zstd.decompress(Data(contentsOf: dir.appendingPathComponent("sample_val_preds.jsonl.zst")))
        var metrics: QVHighlightsMetrics?
        let time = try Measure.median(repeats: repeats) {
            let annotations = try MomentJSONL.parseAnnotations(gt, source: "gt")
            let predictions = try MomentJSONL.parsePredictions(preds, source: "preds")
            metrics = try QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations)
            _ = metrics!.jsonString()
        }
        print("1550 val queries: parse GT + predictions, evaluate MR and HL, render JSON (in memory), median of \(repeats)")
        print("anchor: the official Python evaluation (numpy, scikit-learn) takes about 20 s here (ANCHORS.md)")
        print(String(format: "%.1f ms; %.0fx faster than the anchor", time * 1000, 20 / time))
        Measure.figure("score.val1550.ms", time * 1000, "ms", digits: 1)
        Measure.figure("score.val1550.speedup_vs_official", 20 / time, "x", digits: 0)
    }
}
