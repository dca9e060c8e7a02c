import Foundation

/// Why a submission or an annotation file cannot be scored. Each description is one line that names the file,
/// line and qid when they are known, so that the user can find the record at fault.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read at all.
    case unreadableFile(file: String, reason: String)
    /// A line is not valid JSON, lacks a field, or holds a value the rules do not allow (a window whose start is
    /// after its end, a NaN score, ...). `qid` is nil when the line is too broken to tell.
    case invalidRecord(file: String, line: Int, qid: String?, problem: String)
    /// Two lines of one file share a qid.
    case duplicateQID(file: String, line: Int, firstLine: Int, qid: String)
    /// A file holds no records.
    case emptyFile(file: String)
    /// The submission's qids differ from the ground truth's: `missing` are in the ground truth only, `extra` in
    /// the submission only, each in file order.
    case qidMismatch(missing: [String], extra: [String])
    /// Neither side holds a query.
    case nothingToScore
    /// A record that parsed fine cannot be scored together with its counterpart (for example an empty saliency
    /// list, or a submission that has windows for some queries only).
    case unscorable(qid: String, problem: String)

    /// How many qids a mismatch message lists before it summarises the rest.
    static let listedQIDs = 5

    public var description: String {
        switch self {
        case let .unreadableFile(file, reason):
            return "\(file): cannot read the file (\(reason))"
        case let .invalidRecord(file, line, qid, problem):
            let qidPart = qid.map { " (qid \($0))" } ?? ""
            return "\(file):\(line)\(qidPart): \(problem)"
        case let .duplicateQID(file, line, firstLine, qid):
            return "\(file):\(line) (qid \(qid)): qid already used on line \(firstLine)"
        case let .emptyFile(file):
            return "\(file): no records"
        case let .qidMismatch(missing, extra):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("\(missing.count) in the ground truth but not the submission (\(Self.sample(missing)))") }
            if !extra.isEmpty { parts.append("\(extra.count) in the submission but not the ground truth (\(Self.sample(extra)))") }
            return "submission qids do not match the ground truth: " + parts.joined(separator: "; ")
        case .nothingToScore:
            return "no queries to score"
        case let .unscorable(qid, problem):
            return "qid \(qid): \(problem)"
        }
    }

    private static func sample(_ qids: [String]) -> String {
        let shown = qids.prefix(listedQIDs).joined(separator: ", ")
        return qids.count > listedQIDs ? "\(shown), ..." : shown
    }
}
