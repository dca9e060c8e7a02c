import Foundation

/// Reads submission and ground-truth JSONL files (one JSON object per line), checking every record.
///
/// Errors name the file, the 1-based line and the qid. Blank lines are skipped. Checked: qid is an integer or a
/// string and unique within the file; windows are `[start, end, score]` (submission) or `[start, end]` (ground
/// truth) of finite numbers with `start <= end`; saliency scores are finite; relevant clip ids are integers
/// inside the video and match `saliency_scores` in count, each score row holding three annotators.
public enum MomentJSONL {
    /// Loads a submission file.
    public static func loadPredictions(from url: URL) throws(EvaluationError) -> [MomentPrediction] {
        try parsePredictions(readFile(url), source: url.path)
    }

    /// Loads a ground-truth file.
    public static func loadAnnotations(from url: URL) throws(EvaluationError) -> [MomentAnnotation] {
        try parseAnnotations(readFile(url), source: url.path)
    }

    /// Parses submission lines; `source` names the data in error messages.
    public static func parsePredictions(_ data: Data, source: String) throws(EvaluationError) -> [MomentPrediction] {
        try parseLines(data, source: source) { record, reader throws(EvaluationError) in
            let windows = try reader.optionalArray(record["pred_relevant_windows"], field: "pred_relevant_windows")
                .map { items throws(EvaluationError) in
                    try items.enumerated().map { index, item throws(EvaluationError) in
                        let values = try reader.numbers(item, count: 3, field: "pred_relevant_windows[\(index)]")
                        try reader.checkWindow(start: values[0], end: values[1], field: "pred_relevant_windows[\(index)]")
                        return ScoredWindow(start: values[0], end: values[1], score: values[2])
                    }
                }
            let saliency = try reader.optionalArray(record["pred_saliency_scores"], field: "pred_saliency_scores")
                .map { items throws(EvaluationError) in
                    try items.enumerated().map { index, item throws(EvaluationError) in
                        try reader.number(item, field: "pred_saliency_scores[\(index)]")
                    }
                }
            return MomentPrediction(qid: reader.qid, query: reader.optionalString(record["query"]),
                                    vid: reader.optionalString(record["vid"]),
                                    windows: windows, saliencyScores: saliency)
        }
    }

    /// Parses ground-truth lines; `source` names the data in error messages.
    public static func parseAnnotations(_ data: Data, source: String) throws(EvaluationError) -> [MomentAnnotation] {
        try parseLines(data, source: source) { record, reader throws(EvaluationError) in
            guard let durationValue = record["duration"] else { throw reader.failure("missing field 'duration'") }
            let duration = try reader.number(durationValue, field: "duration")
            if duration < 0 { throw reader.failure("duration \(duration) is negative") }
            if duration > MomentAnnotation.maxDuration {
                throw reader.failure("duration \(duration) s is over the \(Int(MomentAnnotation.maxDuration)) s limit (file corrupt?)")
            }
            guard let windowItems = try reader.optionalArray(record["relevant_windows"], field: "relevant_windows") else {
                throw reader.failure("missing field 'relevant_windows'")
            }
            let windows = try windowItems.enumerated().map { index, item throws(EvaluationError) in
                let values = try reader.numbers(item, count: 2, field: "relevant_windows[\(index)]")
                try reader.checkWindow(start: values[0], end: values[1], field: "relevant_windows[\(index)]")
                return TimeWindow(start: values[0], end: values[1])
            }
            let clipIDs = try (reader.optionalArray(record["relevant_clip_ids"], field: "relevant_clip_ids") ?? [])
                .enumerated().map { index, item throws(EvaluationError) in
                    try reader.integer(item, field: "relevant_clip_ids[\(index)]")
                }
            let saliency = try reader.optionalArray(record["saliency_scores"], field: "saliency_scores")
                .map { rows throws(EvaluationError) in
                    try rows.enumerated().map { index, row throws(EvaluationError) in
                        let scores = try reader.numbers(row, count: MomentAnnotation.annotatorCount, field: "saliency_scores[\(index)]")
                        if let bad = scores.first(where: { !MomentAnnotation.saliencyRange.contains($0) || $0.rounded() != $0 }) {
                            throw reader.failure("saliency_scores[\(index)] holds \(bad): scores are integers 0-4")
                        }
                        return scores
                    }
                }
            let annotation = MomentAnnotation(
                qid: reader.qid, query: reader.optionalString(record["query"]), vid: reader.optionalString(record["vid"]),
                duration: duration, relevantWindows: windows, relevantClipIDs: clipIDs, saliencyScores: saliency)
            if let saliency {
                if saliency.count != clipIDs.count {
                    throw reader.failure("\(clipIDs.count) relevant_clip_ids but \(saliency.count) saliency_scores rows")
                }
                let clipCount = annotation.clipCount
                if let outside = clipIDs.first(where: { $0 < 0 || $0 >= clipCount }) {
                    throw reader.failure("relevant clip id \(outside) is outside the video's \(clipCount) clips (duration \(duration))")
                }
            }
            return annotation
        }
    }

    private static func readFile(_ url: URL) throws(EvaluationError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(file: url.path, reason: error.localizedDescription)
        }
    }

    /// Splits `data` into lines, parses each as a JSON object, reads its qid and hands it to `decode`.
    private static func parseLines<Record>(
        _ data: Data, source: String,
        decode: (_ record: [String: ParsedJSONValue], _ reader: FieldReader) throws(EvaluationError) -> Record
    ) throws(EvaluationError) -> [Record] {
        var records: [Record] = []
        var lineOfQID: [String: Int] = [:]
        let result: Result<Void, EvaluationError> = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var lineStart = 0
            var lineNumber = 0
            while lineStart < bytes.count {
                lineNumber += 1
                var lineEnd = lineStart
                while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[lineStart..<lineEnd])
                lineStart = lineEnd + 1
                if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) {
                    continue
                }
                do throws(EvaluationError) {
                    let value: ParsedJSONValue
                    do throws(JSONLineParser.SyntaxError) {
                        value = try JSONLineParser.parse(line)
                    } catch {
                        throw EvaluationError.invalidRecord(
                            file: source, line: lineNumber, qid: nil,
                            problem: "not valid JSON: \(error.message) at column \(error.offset + 1)")
                    }
                    guard case let .object(record) = value else {
                        throw EvaluationError.invalidRecord(file: source, line: lineNumber, qid: nil,
                                                            problem: "not a JSON object")
                    }
                    let qid = try FieldReader.qid(record["qid"], file: source, line: lineNumber)
                    if let firstLine = lineOfQID[qid] {
                        throw EvaluationError.duplicateQID(file: source, line: lineNumber, firstLine: firstLine, qid: qid)
                    }
                    lineOfQID[qid] = lineNumber
                    records.append(try decode(record, FieldReader(file: source, line: lineNumber, qid: qid)))
                } catch {
                    return .failure(error)
                }
            }
            return .success(())
        }
        try result.get()
        if records.isEmpty { throw .emptyFile(file: source) }
        return records
    }
}

/// Reads typed fields of one record and turns every problem into an error naming its file, line and qid.
struct FieldReader {
    let file: String
    let line: Int
    let qid: String

    func failure(_ problem: String) -> EvaluationError {
        .invalidRecord(file: file, line: line, qid: qid, problem: problem)
    }

    /// Reads a qid: a JSON integer (kept as its decimal digits) or a string.
    static func qid(_ value: ParsedJSONValue?, file: String, line: Int) throws(EvaluationError) -> String {
        switch value {
        case let .string(text):
            return text
        case let .number(number, isInteger: true) where number.magnitude < 9.007_199_254_740_992e15:
            return String(Int64(number))
        case nil:
            throw .invalidRecord(file: file, line: line, qid: nil, problem: "missing field 'qid'")
        default:
            throw .invalidRecord(file: file, line: line, qid: nil, problem: "qid must be an integer or a string")
        }
    }

    func optionalString(_ value: ParsedJSONValue?) -> String? {
        if case let .string(text) = value { return text }
        return nil
    }

    /// An array field, or nil when the field is absent or null.
    func optionalArray(_ value: ParsedJSONValue?, field: String) throws(EvaluationError) -> [ParsedJSONValue]? {
        switch value {
        case nil, .null?: return nil
        case let .array(items)?: return items
        default: throw failure("'\(field)' must be a list")
        }
    }

    /// A finite number.
    func number(_ value: ParsedJSONValue, field: String) throws(EvaluationError) -> Double {
        guard case let .number(number, _) = value else { throw failure("'\(field)' must be a number") }
        if number.isNaN { throw failure("'\(field)' is NaN") }
        if !number.isFinite { throw failure("'\(field)' is infinite") }
        return number
    }

    /// A JSON integer.
    func integer(_ value: ParsedJSONValue, field: String) throws(EvaluationError) -> Int {
        guard case let .number(number, isInteger: true) = value, number.magnitude < 9.007_199_254_740_992e15 else {
            throw failure("'\(field)' must be an integer")
        }
        return Int(number)
    }

    /// A list of exactly `count` finite numbers.
    func numbers(_ value: ParsedJSONValue, count: Int, field: String) throws(EvaluationError) -> [Double] {
        guard case let .array(items) = value, items.count == count else {
            throw failure("'\(field)' must be a list of \(count) numbers")
        }
        return try items.map { item throws(EvaluationError) in try number(item, field: field) }
    }

    func checkWindow(start: Double, end: Double, field: String) throws(EvaluationError) {
        if start > end { throw failure("'\(field)' has start \(start) after end \(end)") }
    }
}
