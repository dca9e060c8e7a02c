import ArgumentParser
import Foundation
import Retrieval
import Shards

/// `mask-eval score`: scores a submission file against annotations exactly as the official QVHighlights
/// evaluation does (or with Charades-STA / TACoS grounding metrics), writing the metrics JSON.
public struct ScoreCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score predictions (QVHighlights submission jsonl) against ground truth.")

    public enum MetricSet: String, ExpressibleByArgument, CaseIterable {
        /// MR mAP/R1 by length bucket and HL mAP/HIT@1, the official QVHighlights metrics file.
        case qvhighlights
        /// R1/R5 at IoU 0.3/0.5/0.7 and mIoU, as reported on Charades-STA and TACoS.
        case grounding
    }

    @Option(help: "Predictions, one JSON object per line (qid, pred_relevant_windows, pred_saliency_scores).")
    var submission: String
    @Option(help: "Ground truth jsonl (qid, duration, relevant_windows, ...).")
    var gt: String
    @Option(help: "Where to write the metrics JSON.")
    var out: String
    @Option(help: "Which metrics: \(MetricSet.allCases.map(\.rawValue).joined(separator: ", ")).")
    var metrics: MetricSet = .qvhighlights
    @Flag(help: "Add R1 at IoU 0.1..0.9 and mIoU of the top-1 window (as the TD-DETR code reports) to the QVHighlights metrics.")
    var extended = false
    @Option(help: "Grounding metrics only: non-maximum suppression IoU applied before taking the top 5.")
    var nms: Double?

    public init() {}

    public func run() throws {
        try runReportingFailure {
            let predictions = try MomentJSONL.loadPredictions(from: URL(fileURLWithPath: submission))
            let annotations = try MomentJSONL.loadAnnotations(from: URL(fileURLWithPath: gt))
            let json: String
            let table: String
            do {
                switch metrics {
                case .qvhighlights:
                    let evaluator = QVHighlightsEvaluator(options: .init(includeExtendedRecall: extended))
                    let result = try evaluator.evaluate(predictions: predictions, annotations: annotations)
                    json = result.jsonString()
                    table = result.briefTable()
                case .grounding:
                    let result = try GroundingMetrics.evaluate(predictions: predictions, annotations: annotations,
                                                               options: .init(nmsThreshold: nms))
                    json = result.jsonString()
                    table = result.table()
                }
            } catch let error as EvaluationError {
                throw StageError(Self.located(error, submission: submission, groundTruth: gt))
            }
            try AtomicFile.write(Data(json.utf8), to: URL(fileURLWithPath: out))
            print(table, terminator: table.hasSuffix("\n") ? "" : "\n")
        }
    }

    /// Errors found only when a submission meets its ground truth name no file: name the submission, and the
    /// line of the qid involved.
    static func located(_ error: EvaluationError, submission: String, groundTruth: String) -> String {
        switch error {
        case .qidMismatch:
            return "\(submission): \(error) (ground truth \(groundTruth))"
        case let .unscorable(qid, _):
            let line = lineOfQID(qid, in: submission).map { ":\($0)" } ?? ""
            return "\(submission)\(line): \(error) (ground truth \(groundTruth))"
        default:
            return "\(error)"
        }
    }

    /// The 1-based line of the record whose qid is `qid` (integer or string), or nil.
    static func lineOfQID(_ qid: String, in file: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard line.contains(qid), let record = try? JSONValue.parse(Data(line.utf8), source: file) else { continue }
            let value = record["qid"]
            if value?.stringValue == qid || value?.intValue.map(String.init) == qid { return i + 1 }
        }
        return nil
    }
}
