import Foundation
import Shards

/// One mask-eval summary (one trained model) as the report reads it.
struct EvaluatedRun {
    let file: String
    /// SHA-256 of the file's bytes: the artifact hash `pipeline lineage` resolves.
    let hash: String
    let model: String
    let seed: Int
    let params: JSONValue
    let synthesis: JSONValue
    /// The feature-ingest params of the data the model was trained on (null when the summary has none).
    let dataset: JSONValue
    let summary: JSONValue
    var group = ""

    /// A metric: split, weights (trained/untrained), condition (none/zero/erase), key.
    func value(_ split: String, _ weights: String, _ condition: String, _ key: String) -> Double? {
        summary["splits"]?[split]?[weights]?[condition]?[key]?.doubleValue
    }

    /// The value a sweep axis has for this run (`alpha` comes from the synthesis behind VSDC runs).
    func axis(_ name: String) -> JSONValue? {
        name == "alpha" ? synthesis["alpha"] : params[name]
    }
}

/// One train log (per-epoch lines) with the params that identify its run.
struct TrainingLog {
    let file: String
    let hash: String
    let model: String
    let seed: Int
    let params: JSONValue
    let dataset: JSONValue
    let epochs: [JSONValue]
    var group = ""
}

/// Mean and sample standard deviation over seeds.
struct SeedStatistic {
    let values: [Double]

    var mean: Double { values.reduce(0, +) / Double(max(1, values.count)) }
    var std: Double {
        guard values.count > 1 else { return 0 }
        let m = mean
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    var text: String {
        guard !values.isEmpty else { return "-" }
        return values.count > 1 ? String(format: "%.2f ± %.2f", mean, std) : String(format: "%.2f", mean)
    }
}

enum ReportData {
    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func loadSummary(_ url: URL) throws -> EvaluatedRun {
        let data = try Data(contentsOf: url)
        let json = try JSONValue.parse(data, source: url.path)
        guard let model = json["model"]?.stringValue, let params = json["params"], json["splits"]?.objectValue != nil else {
            throw StageError("\(url.path): not a mask-eval summary (no model/params/splits)")
        }
        return EvaluatedRun(file: url.lastPathComponent, hash: sha256(data), model: model, seed: params["seed"]?.intValue ?? 0,
                            params: params, synthesis: json["synthesis"] ?? .null, dataset: json["dataset"] ?? .null, summary: json)
    }

    static func loadLog(_ url: URL) throws -> TrainingLog {
        let data = try Data(contentsOf: url)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let epochs = try lines.enumerated().map { i, line in try JSONValue.parse(String(line), source: "\(url.path):\(i + 1)") }
        guard let params = epochs.first?["params"], let model = params["model"]?.stringValue else {
            throw StageError("\(url.path): not a train log (no params on its lines)")
        }
        return TrainingLog(file: url.lastPathComponent, hash: sha256(data), model: model, seed: params["seed"]?.intValue ?? 0,
                           params: params, dataset: epochs.first?["dataset"] ?? .null, epochs: epochs)
    }

    static let modelNames = ["qd-detr": "QD-DETR", "td-detr": "TD-DETR", "vsdc-only": "VSDC only", "tdem-only": "TDEM only",
                             "cdnet": "CDNet"]

    /// The data most runs were trained on, when runs were trained on more than one (a difficulty sweep); the
    /// report's body is about the runs on it, and the sweep section about all.
    static func mainDataset(_ runs: [EvaluatedRun]) -> JSONValue? {
        var counts: [JSONValue: Int] = [:], order: [JSONValue] = []
        for r in runs {
            if counts[r.dataset] == nil { order.append(r.dataset) }
            counts[r.dataset, default: 0] += 1
        }
        guard order.count > 1 else { return nil }
        return order.max { counts[$0]! < counts[$1]! || (counts[$0]! == counts[$1]! && order.firstIndex(of: $0)! > order.firstIndex(of: $1)!) }
    }

    /// The data named by `name` ("rho=0.9,train_videos=500": the runs' dataset params with those values), or the
    /// one most runs share when `name` is empty; nil when all runs share one dataset.
    static func mainDataset(_ runs: [EvaluatedRun], named name: String) throws -> JSONValue? {
        guard !name.isEmpty else { return mainDataset(runs) }
        var wanted: [(String, String)] = []
        for part in name.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, !pair[0].isEmpty else {
                throw StageError("report: main_data \"\(name)\": expected key=value pairs separated by commas, got \"\(part)\"")
            }
            wanted.append((pair[0], pair[1]))
        }
        func text(_ v: JSONValue?) -> String? { v.map { $0.stringValue ?? $0.canonical } }
        let matches = Set(runs.map(\.dataset).filter { data in wanted.allSatisfy { key, value in text(data[key]) == value } })
        guard matches.count == 1, let main = matches.first else {
            let seen = Set(runs.map(\.dataset)).map { data in varyingDatasetKeys(runs).map { "\($0)=\(text(data[$0]) ?? "-")" }.joined(separator: ",") }
            throw StageError("report: main_data \"\(name)\" matches \(matches.count) of the runs' datasets, not one (they are: \(seen.sorted().joined(separator: "; ")))")
        }
        return main
    }

    /// The dataset params that differ between runs (e.g. rho and train_videos of the synthetic benchmark).
    static func varyingDatasetKeys(_ runs: [EvaluatedRun]) -> [String] {
        let keys = Set(runs.flatMap { $0.dataset.objectValue?.keys.map { $0 } ?? [] })
        return keys.sorted().filter { k in Set(runs.map { $0.dataset[k]?.canonical ?? "" }).count > 1 }
    }

    /// Labels runs by model plus every param (and the synthesis alpha) that varies across that model's runs,
    /// seeds aside: runs with the same label are seeds of one configuration.
    static func assignGroups(_ runs: inout [EvaluatedRun], _ logs: inout [TrainingLog]) -> [String] {
        let ignored: Set<String> = ["seed", "model", "threads", "eval_batch_size"]
        var varyingByModel: [String: [String]] = [:]
        var alphaVariesByModel: [String: Bool] = [:]
        for (model, group) in Dictionary(grouping: runs, by: \.model) {
            var keys = Set<String>()
            for r in group { keys.formUnion(r.params.objectValue?.keys.map { $0 } ?? []) }
            varyingByModel[model] = keys.subtracting(ignored).sorted().filter { k in Set(group.map { $0.params[k]?.canonical ?? "" }).count > 1 }
            alphaVariesByModel[model] = Set(group.compactMap { $0.synthesis["alpha"]?.canonical }).count > 1
        }
        func label(model: String, params: JSONValue, synthesis: JSONValue?) -> String {
            var parts = (varyingByModel[model] ?? []).compactMap { k in params[k].map { "\(k)=\($0.canonical)" } }
            if alphaVariesByModel[model] == true, let a = synthesis?["alpha"] { parts.append("alpha=\(a.canonical)") }
            let name = modelNames[model] ?? model
            return parts.isEmpty ? name : "\(name) (\(parts.joined(separator: ", ")))"
        }
        for i in runs.indices { runs[i].group = label(model: runs[i].model, params: runs[i].params, synthesis: runs[i].synthesis) }
        // A log belongs to the run with the same train params.
        for i in logs.indices {
            let match = runs.first { $0.params == logs[i].params }
            logs[i].group = match?.group ?? label(model: logs[i].model, params: logs[i].params, synthesis: nil)
        }
        var order: [String] = []
        for r in runs.sorted(by: { ($0.model, $0.group) < ($1.model, $1.group) }) where !order.contains(r.group) { order.append(r.group) }
        return order
    }
}
