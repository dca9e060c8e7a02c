import ArgumentParser
import Foundation
import Retrieval
import Shards

/// `feature-ingest export-layout`: writes an ingested split back out in the public QVHighlights layout
/// (annotation jsonl, one `{vid}.npz` per video feature family, `qid{qid}.npz` text features), one video at a
/// time. With the synthetic benchmark at full size it gives `feature-ingest folders` a QVHighlights-sized
/// input to be checked on (scripts/write-qvhighlights-layout.sh).
public struct LayoutExport: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export-layout",
        abstract: "Write a split's shards out as annotation jsonl + per-video .npz feature folders + per-query text .npz.")

    @Option(help: "The split's videos shard (from feature-ingest).") var videos: String
    @Option(help: "The split's queries shard (from feature-ingest).") var queries: String
    @Option(help: "Root of the layout: writes annotations/FILE and features/FAMILY/{vid}.npz, features/clip_text_features/qid{qid}.npz.")
    var out: String
    @Option(help: "Annotation file name, e.g. highlight_train_release.jsonl.") var annotations: String
    @Option(help: "Feature families as NAME:DIMS, in order; their dims add up to the features' (tef dims are left out).")
    var families = "slowfast_features:2304,clip_features:512"

    public init() {}

    public func run() throws {
        do {
            try export()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func export() throws {
        let split = try DatasetShards.readSplit(videos: URL(fileURLWithPath: videos), queries: URL(fileURLWithPath: queries), name: "export")
        let v = split.videos, q = split.queries
        let parsed = try families.split(separator: ",").map { item -> (name: String, dims: Int) in
            let parts = item.split(separator: ":")
            guard parts.count == 2, let dims = Int(parts[1]), dims > 0, !parts[0].isEmpty else {
                throw StageError("--families: '\(item)' is not NAME:DIMS")
            }
            return (String(parts[0]), dims)
        }
        guard parsed.reduce(0, { $0 + $1.dims }) == v.featureDim else {
            throw StageError("--families: dims add up to \(parsed.reduce(0) { $0 + $1.dims }), the features have \(v.featureDim)")
        }
        let root = URL(fileURLWithPath: out)
        let features = root.appendingPathComponent("features")
        let progress = Progress("export videos", total: v.count)
        for i in 0..<v.count {
            let rows = try v.clips(i)
            let length = v.length(i)
            var column = 0
            for f in parsed {
                var values = [Float](repeating: 0, count: length * f.dims)
                for t in 0..<length {
                    for j in 0..<f.dims { values[t * f.dims + j] = rows[t * v.dim + column + j] }
                }
                try NpzWriter.write([("features", values, [length, f.dims])],
                                    to: features.appendingPathComponent(f.name).appendingPathComponent("\(v.vids[i]).npz"))
                column += f.dims
            }
            progress.update(i + 1)
        }
        for i in 0..<q.count {
            try NpzWriter.write([("last_hidden_state", try q.tokens(i), [q.tokenCount(i), q.textDim])],
                                to: features.appendingPathComponent("clip_text_features").appendingPathComponent("qid\(q.qids[i]).npz"))
        }
        try AtomicFile.write(Data((split.annotationLines().joined(separator: "\n") + "\n").utf8),
                             to: root.appendingPathComponent("annotations").appendingPathComponent(annotations))
        print("exported \(v.count) videos (\(parsed.map { "\($0.name) \($0.dims)-d" }.joined(separator: ", "))) and \(q.count) queries to \(root.path)")
    }
}
