import Foundation
import Retrieval
import Shards
import XCTest

/// `feature-ingest folders` run as a user runs it, on tiny fixtures in each public layout (annotation lines
/// copied from the real releases, made-up features; see Fixtures/README.md). Every expected number is
/// recomputed here from the generator's formula, not read back through the code under test.
final class FeatureIngestTests: XCTestCase {
    /// One video feature family of a fixture dataset: its folder, width and rows per video.
    struct Family {
        let folder: String
        let dim: Int
        let rows: [String: Int]
    }

    static let qvSlowFast = Family(folder: "slowfast", dim: 8, rows: [
        "NUsG9BgSes0_210.0_360.0": 75, "lwNho_1tKrc_60.0_210.0": 76, "bP5KfdFJzC4_660.0_810.0": 63])
    static let qvClip = Family(folder: "clip", dim: 4, rows: [
        "NUsG9BgSes0_210.0_360.0": 74, "lwNho_1tKrc_60.0_210.0": 76, "bP5KfdFJzC4_660.0_810.0": 63])
    static let charadesSlowFast = Family(folder: "slowfast", dim: 5, rows: ["3MSZA": 31, "VXJS4": 30])
    static let tacosClip = Family(folder: "clip", dim: 4, rows: ["s17-d69": 212, "s22-d55": 26])

    /// The generator's values (scripts/make_ingest_fixtures.py): `((7 t + 3 j + s) % 13 - 6) / 4` with
    /// `s` the byte sum of "FOLDER/FILE" mod 13. Row-major `[rows, dim]`.
    static func fixtureValues(_ name: String, rows: Int, dim: Int) -> [Double] {
        let s = name.utf8.reduce(0) { $0 + Int($1) } % 13
        var out: [Double] = []
        for t in 0..<rows { for j in 0..<dim { out.append(Double((7 * t + 3 * j + s) % 13 - 6) / 4) } }
        return out
    }

    /// The reference loader's per-row normalisation, `x / (|x| + 1e-5)`, in Float64.
    static func normalised(_ values: [Double], dim: Int) -> [Double] {
        var out = values
        for r in 0..<(values.count / dim) {
            let norm = (0..<dim).reduce(0.0) { $0 + values[r * dim + $1] * values[r * dim + $1] }.squareRoot()
            for j in 0..<dim { out[r * dim + j] = values[r * dim + j] / (norm + 1e-5) }
        }
        return out
    }

    /// The rows a video should get: each family normalised, all trimmed to the shortest and to
    /// `maxClips`, concatenated in `families` order, then `[t/L, (t+1)/L]`.
    static func expectedRows(vid: String, families: [Family], maxClips: Int = 75) -> (rows: [Double], clips: Int) {
        let clips = min(families.map { $0.rows[vid]! }.min()!, maxClips)
        let normalisedFamilies = families.map {
            normalised(fixtureValues("\($0.folder)/\(vid).npz", rows: $0.rows[vid]!, dim: $0.dim), dim: $0.dim)
        }
        var rows: [Double] = []
        for t in 0..<clips {
            for (f, values) in zip(families, normalisedFamilies) { rows += values[(t * f.dim)..<((t + 1) * f.dim)] }
            rows += [Double(t) / Double(clips), Double(t + 1) / Double(clips)]
        }
        return (rows, clips)
    }

    /// The token rows a query should get: the first `maxTokens` of `len(words) + 2`, each normalised.
    static func expectedTokens(qid: String, query: String, dim: Int, maxTokens: Int) -> [Double] {
        let count = query.split(separator: " ").count + 2
        let values = fixtureValues("clip_text/qid\(qid).npz", rows: count, dim: dim)
        return normalised(Array(values.prefix(min(count, maxTokens) * dim)), dim: dim)
    }

    /// The annotation records of a fixture file, parsed with Foundation (not the code under test).
    static func records(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    static func qid(_ record: [String: Any]) -> String {
        (record["qid"] as? String) ?? String((record["qid"] as! NSNumber).intValue)
    }

    func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-6, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): size", file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() where abs(Double(a) - e) > tolerance {
            XCTFail("\(what)[\(i)] = \(a), expected \(e)", file: file, line: line)
            return
        }
    }

    func ingest(_ dataset: URL, families: [String], params: String, out: URL) throws -> StageProcess.Result {
        var args = ["folders", "--out", out.path, "--params", params,
                    "--in", "annotations=\(dataset.appendingPathComponent("annotations").path)"]
        for f in families { args += ["--in", "video_features=\(dataset.appendingPathComponent(f).path)"] }
        args += ["--in", "text_features=\(dataset.appendingPathComponent("clip_text").path)"]
        return try StageProcess.run("feature-ingest", args)
    }

    // MARK: QVHighlights

    func testQVHighlightsTwoFamiliesAreNormalisedTrimmedConcatenatedAndCut() throws {
        let dataset = StageProcess.fixtures.appendingPathComponent("qvhighlights")
        let out = try StageProcess.temporaryDirectory("ingest-qv", for: self)
        let result = try ingest(dataset, families: ["slowfast", "clip"],
                                params: #"{"splits": "val:highlight_val_release.jsonl", "max_tokens": 16}"#, out: out)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(StageProcess.files(in: out), ["val.annotations.jsonl", "val.queries.tshard", "val.videos.tshard"])

        let split = try DatasetShards.readSplit(videos: out.appendingPathComponent("val.videos.tshard"),
                                                queries: out.appendingPathComponent("val.queries.tshard"), name: "val")
        let v = split.videos, q = split.queries
        let vids = ["NUsG9BgSes0_210.0_360.0", "lwNho_1tKrc_60.0_210.0", "bP5KfdFJzC4_660.0_810.0"]
        XCTAssertEqual(v.vids, vids, "one entry per video, in order of first appearance")
        XCTAssertEqual(v.durations, [150, 150, 126])
        XCTAssertEqual(v.clipLength, 2)
        XCTAssertEqual(v.featureDim, 12)
        XCTAssertTrue(v.tef)
        // 75 vs 74 rows: trimmed to the shorter family; 76 and 76: cut to max_clips 75; 63: kept.
        XCTAssertEqual((0..<3).map(v.length), [74, 75, 63])
        for (i, vid) in vids.enumerated() {
            let expected = Self.expectedRows(vid: vid, families: [Self.qvSlowFast, Self.qvClip])
            assertClose(try v.clips(i), expected.rows, "video \(vid)")
        }

        let annotations = try Self.records(dataset.appendingPathComponent("annotations/highlight_val_release.jsonl"))
        XCTAssertEqual(q.qids, ["2579", "548", "1918", "8737"])
        XCTAssertEqual(q.videoIndex, [0, 1, 1, 2])
        XCTAssertEqual(q.textDim, 6)
        XCTAssertTrue(q.hasSaliency)
        // 15, 11, 17 and 13 tokens in the files; max_tokens 16 cuts the third.
        XCTAssertEqual((0..<4).map(q.tokenCount), [15, 11, 16, 13])
        for (i, record) in annotations.enumerated() {
            let qid = Self.qid(record)
            assertClose(try q.tokens(i), Self.expectedTokens(qid: qid, query: record["query"] as! String, dim: 6, maxTokens: 16),
                        "tokens of qid \(qid)")
            XCTAssertEqual(q.windows[i], record["relevant_windows"] as! [[Double]])
            // Saliency rows follow the video's clips; annotated clips past the features are dropped.
            let clips = v.length(q.videoIndex[i])
            let ids = record["relevant_clip_ids"] as! [Int], scores = record["saliency_scores"] as! [[Int]]
            var expectedSaliency = [Int32](repeating: 0, count: clips * 3)
            var expectedRelevant = [UInt8](repeating: 0, count: clips)
            for (id, s) in zip(ids, scores) where id < clips {
                expectedRelevant[id] = 1
                for a in 0..<3 { expectedSaliency[id * 3 + a] = Int32(s[a]) }
            }
            XCTAssertEqual(Array(q.relevant[q.clipOffsets[i]..<q.clipOffsets[i + 1]]), expectedRelevant, "qid \(qid)")
            XCTAssertEqual(Array(q.saliency[(q.clipOffsets[i] * 3)..<(q.clipOffsets[i + 1] * 3)]), expectedSaliency, "qid \(qid)")
        }

        // The written ground truth is the input's, with clip ids past the features dropped (clip 74 of the first video).
        let written = try Self.records(out.appendingPathComponent("val.annotations.jsonl"))
        XCTAssertEqual(written.count, annotations.count)
        for (w, a) in zip(written, annotations) {
            XCTAssertEqual(Self.qid(w), Self.qid(a))
            XCTAssertEqual(w["query"] as? String, a["query"] as? String)
            XCTAssertEqual(w["vid"] as? String, a["vid"] as? String)
            XCTAssertEqual(w["duration"] as? Double, a["duration"] as? Double)
            XCTAssertEqual(w["relevant_windows"] as? [[Double]], a["relevant_windows"] as? [[Double]])
            let ids = a["relevant_clip_ids"] as! [Int]
            let clips = v.length(vids.firstIndex(of: a["vid"] as! String)!)
            XCTAssertEqual(w["relevant_clip_ids"] as? [Int], ids.filter { $0 < clips })
            XCTAssertEqual(w["saliency_scores"] as? [[Int]], Array((a["saliency_scores"] as! [[Int]]).prefix(ids.filter { $0 < clips }.count)))
        }
        XCTAssertEqual((written[0]["relevant_clip_ids"] as! [Int]).last, 73)

        // Every output echoes the resolved parameters, defaults included.
        let params = try ShardReader(url: out.appendingPathComponent("val.videos.tshard")).meta["params"]
        XCTAssertEqual(params?["max_tokens"], .number(16))
        XCTAssertEqual(params?["max_clips"], .number(75))
        XCTAssertEqual(params?["clip_length"], .number(2))
    }

    func testFamiliesAreConcatenatedInTheOrderGiven() throws {
        let dataset = StageProcess.fixtures.appendingPathComponent("qvhighlights")
        let out = try StageProcess.temporaryDirectory("ingest-order", for: self)
        let result = try ingest(dataset, families: ["clip", "slowfast"],
                                params: #"{"splits": "val:highlight_val_release.jsonl", "max_clips": 50, "tef": false}"#, out: out)
        XCTAssertEqual(result.status, 0, result.stderr)
        let v = try DatasetShards.readVideos(out.appendingPathComponent("val.videos.tshard"))
        XCTAssertEqual(v.dim, 12, "no tef dims")
        XCTAssertEqual((0..<3).map(v.length), [50, 50, 50])
        for (i, vid) in v.vids.enumerated() {
            let expected = Self.expectedRows(vid: vid, families: [Self.qvClip, Self.qvSlowFast], maxClips: 50)
            // Without tef: drop the two endpoint values of every expected row.
            let rows = (0..<expected.clips).flatMap { t in expected.rows[(t * 14)..<(t * 14 + 12)] }
            assertClose(try v.clips(i), rows, "video \(vid), clip family first")
        }
    }

    // MARK: Charades-STA and TACoS

    func testCharadesSTAOneSecondClipsAndFloatDurations() throws {
        let dataset = StageProcess.fixtures.appendingPathComponent("charades_sta")
        let out = try StageProcess.temporaryDirectory("ingest-charades", for: self)
        let result = try ingest(dataset, families: ["slowfast"],
                                params: #"{"splits": "test:charades_test_release.jsonl", "clip_length": 1}"#, out: out)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(StageProcess.files(in: out), ["test.annotations.jsonl", "test.queries.tshard", "test.videos.tshard"])
        let split = try DatasetShards.readSplit(videos: out.appendingPathComponent("test.videos.tshard"),
                                                queries: out.appendingPathComponent("test.queries.tshard"), name: "test")
        let v = split.videos, q = split.queries
        XCTAssertEqual(v.vids, ["3MSZA", "VXJS4"])
        XCTAssertEqual(v.durations, [30.96, 30.21])
        XCTAssertEqual(v.clipLength, 1)
        XCTAssertEqual((0..<2).map(v.length), [31, 30])
        for (i, vid) in v.vids.enumerated() {
            assertClose(try v.clips(i), Self.expectedRows(vid: vid, families: [Self.charadesSlowFast]).rows, "video \(vid)")
        }
        XCTAssertEqual(q.qids, ["12404", "12405", "12410"])
        XCTAssertEqual(q.videoIndex, [0, 0, 1])
        XCTAssertFalse(q.hasSaliency)
        XCTAssertTrue(q.saliency.allSatisfy { $0 == 0 } && q.relevant.allSatisfy { $0 == 0 })
        XCTAssertEqual(q.windows, [[[24.3, 30.4]], [[24.3, 30.4]], [[0.0, 3.4]]])
        let annotations = try Self.records(dataset.appendingPathComponent("annotations/charades_test_release.jsonl"))
        for (i, record) in annotations.enumerated() {
            assertClose(try q.tokens(i), Self.expectedTokens(qid: Self.qid(record), query: record["query"] as! String, dim: 6, maxTokens: 32),
                        "tokens of qid \(Self.qid(record))")
        }
        // Without saliency the written ground truth is the input, record for record.
        let written = try Self.records(out.appendingPathComponent("test.annotations.jsonl"))
        XCTAssertEqual(written as NSArray, annotations as NSArray)
    }

    func testTACoSStringQidsAndLongVideosCutToMaxClips() throws {
        let dataset = StageProcess.fixtures.appendingPathComponent("tacos")
        let out = try StageProcess.temporaryDirectory("ingest-tacos", for: self)
        let result = try ingest(dataset, families: ["clip"], params: #"{"splits": "train:tacos_train_release.jsonl"}"#, out: out)
        XCTAssertEqual(result.status, 0, result.stderr)
        let split = try DatasetShards.readSplit(videos: out.appendingPathComponent("train.videos.tshard"),
                                                queries: out.appendingPathComponent("train.queries.tshard"), name: "train")
        let v = split.videos, q = split.queries
        XCTAssertEqual(v.vids, ["s17-d69", "s22-d55"])
        XCTAssertEqual(v.durations, [423.06122448979596, 51.49659863945578])
        XCTAssertEqual((0..<2).map(v.length), [75, 26], "212 rows cut to max_clips 75")
        for (i, vid) in v.vids.enumerated() {
            let expected = Self.expectedRows(vid: vid, families: [Self.tacosClip])
            assertClose(try v.clips(i), expected.rows, "video \(vid)")
        }
        XCTAssertEqual(Array(try v.clips(0).suffix(2)), [Float(74) / 75, 1], "tef of the cut video uses its kept length")
        XCTAssertEqual(q.qids, ["s17-d69_0", "s17-d69_1", "s22-d55_0"])
        XCTAssertEqual(q.textDim, 5, "[1, tokens, dim] text arrays lose their batch axis")
        let annotations = try Self.records(dataset.appendingPathComponent("annotations/tacos_train_release.jsonl"))
        for (i, record) in annotations.enumerated() {
            assertClose(try q.tokens(i), Self.expectedTokens(qid: Self.qid(record), query: record["query"] as! String, dim: 5, maxTokens: 32),
                        "tokens of qid \(Self.qid(record))")
        }
        let written = try Self.records(out.appendingPathComponent("train.annotations.jsonl"))
        XCTAssertEqual(written as NSArray, annotations as NSArray, "string qids and float durations survive")
    }

    // MARK: errors

    /// A writable copy of the QVHighlights fixture with two splits: `train` (the first three lines, two
    /// videos) is ingested first and succeeds; `val` (all four lines) carries the defect. So each failure
    /// also shows that outputs already written for an earlier split are removed.
    func brokenDataset(_ label: String) throws -> (dataset: URL, out: URL, val: URL) {
        let dir = try StageProcess.temporaryDirectory(label, for: self)
        let dataset = dir.appendingPathComponent("qvhighlights")
        try FileManager.default.copyItem(at: StageProcess.fixtures.appendingPathComponent("qvhighlights"), to: dataset)
        let lines = try String(contentsOf: dataset.appendingPathComponent("annotations/highlight_val_release.jsonl"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        try (lines.prefix(3).joined(separator: "\n") + "\n")
            .write(to: dataset.appendingPathComponent("annotations/train.jsonl"), atomically: true, encoding: .utf8)
        let val = dataset.appendingPathComponent("annotations/val.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: val, atomically: true, encoding: .utf8)
        return (dataset, dir.appendingPathComponent("out"), val)
    }

    func assertFails(_ dataset: URL, out: URL, params: String = #"{"splits": "train:train.jsonl,val:val.jsonl"}"#,
                     mentions expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try ingest(dataset, families: ["slowfast", "clip"], params: params, out: out)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        XCTAssertEqual(result.errorLines.count, 1, result.stderr, file: file, line: line)
        let message = result.errorLines.first ?? ""
        for text in expected {
            XCTAssertTrue(message.contains(text), "'\(text)' not in: \(message)", file: file, line: line)
        }
        XCTAssertEqual(StageProcess.files(in: out), [], "nothing left in the out dir", file: file, line: line)
    }

    func testMissingFeatureFileNamesTheFileAndQid() throws {
        let (dataset, out, _) = try brokenDataset("ingest-missing")
        let missing = dataset.appendingPathComponent("clip/bP5KfdFJzC4_660.0_810.0.npz")
        try FileManager.default.removeItem(at: missing)
        try assertFails(dataset, out: out, mentions: [missing.path, "not found", "qid 8737"])
    }

    func testNaNInFeaturesNamesTheFileClipAndQid() throws {
        let (dataset, out, _) = try brokenDataset("ingest-nan")
        let target = dataset.appendingPathComponent("slowfast/bP5KfdFJzC4_660.0_810.0.npz")
        try FileManager.default.removeItem(at: target)
        try FileManager.default.copyItem(at: dataset.appendingPathComponent("broken/nan/bP5KfdFJzC4_660.0_810.0.npz"), to: target)
        try assertFails(dataset, out: out, mentions: [target.path, "non-finite", "clip 5", "qid 8737"])
    }

    func testDimensionMismatchBetweenVideosNamesTheFileAndQid() throws {
        let (dataset, out, _) = try brokenDataset("ingest-dim")
        let target = dataset.appendingPathComponent("slowfast/bP5KfdFJzC4_660.0_810.0.npz")
        try FileManager.default.removeItem(at: target)
        try FileManager.default.copyItem(at: dataset.appendingPathComponent("broken/dim/bP5KfdFJzC4_660.0_810.0.npz"), to: target)
        try assertFails(dataset, out: out, mentions: [target.path, "qid 8737", "9", "8"])
    }

    func testWindowOutsideTheVideoNamesTheFileAndQid() throws {
        let (dataset, out, val) = try brokenDataset("ingest-window")
        let text = try String(contentsOf: val, encoding: .utf8)
        XCTAssertTrue(text.contains(#""relevant_windows": [[0, 16]]"#))
        try text.replacingOccurrences(of: #""relevant_windows": [[0, 16]]"#, with: #""relevant_windows": [[120, 130]]"#)
            .write(to: val, atomically: true, encoding: .utf8)
        try assertFails(dataset, out: out, mentions: [val.path, "qid 8737", "[120.0, 130.0]", "outside"])
    }

    func testMalformedLineNamesTheFileAndLine() throws {
        let (dataset, out, val) = try brokenDataset("ingest-malformed")
        var lines = try String(contentsOf: val, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[2] = String(lines[2].dropLast(20))
        try (lines.joined(separator: "\n") + "\n").write(to: val, atomically: true, encoding: .utf8)
        try assertFails(dataset, out: out, mentions: [val.path + ":3", "not valid JSON"])
    }

    func testUnknownParamIsRefused() throws {
        let (dataset, out, _) = try brokenDataset("ingest-param")
        try assertFails(dataset, out: out, params: #"{"splits": "train:train.jsonl", "max_clip": 70}"#,
                        mentions: ["unknown param 'max_clip'", "max_clips"])
    }

    /// Replaces `old` by `new` in the val annotation line of qid 8737 (the fourth line, only in val).
    func breakVal(_ val: URL, _ old: String, _ new: String) throws {
        var lines = try String(contentsOf: val, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[3].contains(old), "fixture line lacks \(old)")
        lines[3] = lines[3].replacingOccurrences(of: old, with: new)
        try (lines.joined(separator: "\n") + "\n").write(to: val, atomically: true, encoding: .utf8)
    }

    func testSaliencyScoresOutOfRangeOrFractionalAreRefusedNotConverted() throws {
        // 1e10 and -1e12 used to trap converting to Int32; 1.5 was truncated to 1.
        for (label, bad) in [("big", "1e10"), ("negative", "-1e12"), ("fraction", "1.5")] {
            let (dataset, out, val) = try brokenDataset("ingest-saliency-\(label)")
            try breakVal(val, #""saliency_scores": [[4, "#, #""saliency_scores": [["# + bad + ", ")
            try assertFails(dataset, out: out, mentions: [val.path + ":4", "qid 8737", "saliency_scores[0] holds", "integers 0-4"])
        }
    }

    func testAnAbsurdDurationIsRefusedNotConverted() throws {
        // 1e300 used to trap converting to Int.
        let (dataset, out, val) = try brokenDataset("ingest-duration-huge")
        try breakVal(val, #""duration": 126"#, #""duration": 1e300"#)
        try assertFails(dataset, out: out, mentions: [val.path + ":4", "qid 8737", "over the 1000000 s limit"])
    }

    func testADurationFarBeyondTheFeaturesIsRefused() throws {
        // Under the global limit, but far more than the video's feature clips cover.
        let (dataset, out, val) = try brokenDataset("ingest-duration-features")
        try breakVal(val, #""duration": 126"#, #""duration": 900000"#)
        try assertFails(dataset, out: out, mentions: ["bP5KfdFJzC4_660.0_810.0.npz", "qid 8737", "duration 900000.0 s", "feature clips cover"])
    }
}
