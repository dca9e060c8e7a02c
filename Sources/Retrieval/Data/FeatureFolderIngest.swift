import Foundation
import Shards

/// Ingests a real dataset laid out as the public moment-retrieval releases do (QVHighlights /
/// Moment-DETR, and Charades-STA / TACoS in the same layout):
/// - an annotation jsonl per split (`qid, query, duration, vid, relevant_windows` and, for QVHighlights,
///   `relevant_clip_ids, saliency_scores`);
/// - one folder per video feature family with `{vid}.npz` holding `features` `[clips, D]`;
/// - one folder of text features with `qid{qid}.npz` holding `last_hidden_state` `[tokens, Dt]`.
///
/// As the reference loader does: each family is L2-normalised per clip (`x / (|x| + 1e-5)`), families are
/// trimmed to the shortest and concatenated in the given order, then cut to `maxClips`; temporal endpoint
/// features `[t/L, (t+1)/L]` are appended when enabled; text keeps the first `maxTokens` tokens, each
/// L2-normalised.
public struct FeatureFolderIngest: Sendable {
    public struct Config: Sendable {
        public var videoFamilies: [URL]
        public var textFolder: URL
        public var clipLength: Double = 2
        public var maxClips = 75
        public var maxTokens = 32
        public var tef = true
        public var videoFilePattern = "{vid}.npz"
        public var textFilePattern = "qid{qid}.npz"

        public init(videoFamilies: [URL], textFolder: URL) {
            self.videoFamilies = videoFamilies
            self.textFolder = textFolder
        }
    }

    public let config: Config

    public init(config: Config) { self.config = config }

    /// Reads one split's annotation file and every feature file it needs, in memory (small sets and tests).
    public func ingest(annotations url: URL, split: String, progress: ((Int, Int) -> Void)? = nil) throws -> MomentSplit {
        var sink = MemorySplitBuilder(name: split)
        let info = try ingest(annotations: url, into: &sink, progress: progress)
        return sink.finish(info)
    }

    /// Reads one split's annotation file and streams its videos, then its queries, into `sink`, one feature
    /// file at a time. Any problem (missing file, NaN, dimension mismatch, window outside the video, malformed
    /// line) throws one error naming the file and the record.
    public func ingest<Sink: SplitSink>(annotations url: URL, into sink: inout Sink, widths: ((Int, Int) -> Void)? = nil,
                                        progress: ((Int, Int) -> Void)? = nil) throws -> SplitInfo {
        let annotations: [MomentAnnotation]
        do { annotations = try MomentJSONL.loadAnnotations(from: url) } catch { throw DatasetError("\(error)") }
        guard !annotations.isEmpty else { throw DatasetError("\(url.path): no annotations") }
        let hasSaliency = annotations.allSatisfy { $0.saliencyScores != nil }
        for a in annotations {
            guard let vid = a.vid else { throw DatasetError("\(url.path) (qid \(a.qid)): no vid") }
            for w in a.relevantWindows where w.start < 0 || w.end > a.duration + 1e-6 || w.start > w.end {
                throw DatasetError("\(url.path) (qid \(a.qid), vid \(vid)): window [\(w.start), \(w.end)] lies outside the video's \(a.duration) s")
            }
        }
        // The widths come from the first video and the first query's text features, before anything is streamed.
        let first = annotations[0]
        let (firstRows, firstDims) = try loadVideo(vid: first.vid!, qid: first.qid, duration: first.duration)
        let textDim = try loadText(qid: first.qid).dim
        let featureDim = firstDims.reduce(0, +)
        widths?(featureDim + (config.tef ? 2 : 0), textDim)

        var videoIndex: [String: Int] = [:]
        var clips: [Int] = []
        for (n, a) in annotations.enumerated() where videoIndex[a.vid!] == nil {
            let vid = a.vid!
            let (rows, dims) = n == 0 ? (firstRows, firstDims) : try loadVideo(vid: vid, qid: a.qid, duration: a.duration)
            if dims != firstDims {
                let f = dims.indices.first { dims[$0] != firstDims[$0] }!
                throw DatasetError("\(videoURL(family: config.videoFamilies[f], vid: vid).path) (video \(vid), qid \(a.qid)): "
                                   + "features are \(dims[f])-d, those of earlier videos \(firstDims[f])-d")
            }
            videoIndex[vid] = clips.count
            clips.append(rows.count / (featureDim + (config.tef ? 2 : 0)))
            try sink.addVideo(vid: vid, duration: a.duration, rows: rows, clipScene: nil)
            progress?(n + 1, annotations.count)
        }

        for a in annotations {
            let v = videoIndex[a.vid!]!
            let tokens = try loadText(qid: a.qid)
            guard tokens.dim == textDim else {
                throw DatasetError("\(textURL(a.qid).path) (qid \(a.qid)): text features are \(tokens.dim)-d, earlier ones \(textDim)-d")
            }
            var saliency = [Int32](repeating: 0, count: clips[v] * 3)
            var relevant = [UInt8](repeating: 0, count: clips[v])
            if let scores = a.saliencyScores {
                for (k, c) in a.relevantClipIDs.enumerated() where c < clips[v] {
                    relevant[c] = 1
                    for j in 0..<min(3, scores[k].count) { saliency[c * 3 + j] = Int32(scores[k][j]) }
                }
            }
            try sink.addQuery(QueryRecord(qid: a.qid, text: a.query ?? "", videoIndex: v, tokens: tokens.values,
                                          windows: a.relevantWindows.map { [$0.start, $0.end] }, saliency: saliency, relevant: relevant))
        }
        return SplitInfo(clipLength: config.clipLength, featureDim: featureDim, tef: config.tef, textDim: textDim, hasSaliency: hasSaliency)
    }

    func videoURL(family: URL, vid: String) -> URL {
        family.appendingPathComponent(config.videoFilePattern.replacingOccurrences(of: "{vid}", with: vid))
    }

    func textURL(_ qid: String) -> URL {
        config.textFolder.appendingPathComponent(config.textFilePattern.replacingOccurrences(of: "{qid}", with: qid))
    }

    /// The normalised, trimmed, concatenated clip rows of one video (with tef), and each family's width.
    func loadVideo(vid: String, qid: String, duration: Double) throws -> ([Float], [Int]) {
        var families: [(values: [Float], clips: Int, dim: Int)] = []
        for family in config.videoFamilies {
            let url = videoURL(family: family, vid: vid)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw DatasetError("\(url.path): feature file not found (video \(vid), qid \(qid))")
            }
            let array: NumpyArray
            do { array = try NpzArchive(url: url).array("features") } catch { throw DatasetError("\(error) (video \(vid), qid \(qid))") }
            guard array.shape.count == 2, array.shape[0] > 0, array.shape[1] > 0 else {
                throw DatasetError("\(url.path): 'features' must be [clips, dim], got shape \(array.shape) (video \(vid), qid \(qid))")
            }
            var values = array.floats()
            let (clips, dim) = (array.shape[0], array.shape[1])
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw DatasetError("\(url.path): non-finite value at clip \(bad / dim), dim \(bad % dim) (video \(vid), qid \(qid))")
            }
            Self.normaliseRows(&values, dim: dim)
            families.append((values, clips, dim))
        }
        let available = families.map(\.clips).min()!
        // Features cover the video (some releases subsample them): a duration far beyond what they could
        // cover is a corrupt annotation, not a long video.
        let covered = Double(available + 1) * config.clipLength
        guard duration <= covered * Self.durationSlack else {
            throw DatasetError("\(videoURL(family: config.videoFamilies[0], vid: vid).path) (video \(vid), qid \(qid)): duration \(duration) s "
                               + "is more than \(Int(Self.durationSlack)) x the \(covered) s its \(available) feature clips cover")
        }
        let clips = min(available, config.maxClips)
        let dims = families.map(\.dim)
        let width = dims.reduce(0, +) + (config.tef ? 2 : 0)
        var rows = [Float](repeating: 0, count: clips * width)
        for t in 0..<clips {
            var col = 0
            for f in families {
                for j in 0..<f.dim { rows[t * width + col + j] = f.values[t * f.dim + j] }
                col += f.dim
            }
            if config.tef {
                rows[t * width + col] = Float(t) / Float(clips)
                rows[t * width + col + 1] = Float(t + 1) / Float(clips)
            }
        }
        return (rows, dims)
    }

    func loadText(qid: String) throws -> (values: [Float], dim: Int) {
        let url = textURL(qid)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DatasetError("\(url.path): text feature file not found (qid \(qid))")
        }
        let array: NumpyArray
        do { array = try NpzArchive(url: url).array("last_hidden_state") } catch { throw DatasetError("\(error) (qid \(qid))") }
        let shape = array.shape.count == 3 && array.shape[0] == 1 ? Array(array.shape.dropFirst()) : array.shape
        guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
            throw DatasetError("\(url.path): 'last_hidden_state' must be [tokens, dim], got shape \(array.shape) (qid \(qid))")
        }
        let keep = min(shape[0], config.maxTokens)
        var values = Array(array.floats().prefix(keep * shape[1]))
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DatasetError("\(url.path): non-finite value at token \(bad / shape[1]) (qid \(qid))")
        }
        Self.normaliseRows(&values, dim: shape[1])
        return (values, shape[1])
    }

    /// How far an annotated duration may exceed the span its feature clips cover.
    static let durationSlack = 8.0

    static func normaliseRows(_ values: inout [Float], dim: Int) {
        values.withUnsafeMutableBufferPointer { buf in
            for r in 0..<(buf.count / dim) {
                var norm: Float = 0
                for j in 0..<dim { norm += buf[r * dim + j] * buf[r * dim + j] }
                let inv = 1 / (norm.squareRoot() + 1e-5)
                for j in 0..<dim { buf[r * dim + j] *= inv }
            }
        }
    }
}
