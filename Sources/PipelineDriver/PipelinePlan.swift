import Foundation
import Shards

/// Where one input of a node comes from once sweeps are expanded.
public enum NodeInput: Equatable, Sendable {
    case output(node: String, file: String)
    case file(path: String)
}

/// One runnable unit: a stage at one point of its sweep.
public struct PlanNode: Sendable {
    /// `stage`, or `stage@key=value,...` for a sweep point.
    public let id: String
    public let stage: StageInstance
    /// Defaults, overridden by pipeline.json's params, overridden by the sweep point.
    public let params: JSONValue
    /// (role, source) in a stable order; a gathered role appears once per source.
    public let inputs: [(role: String, source: NodeInput)]
    public let upstream: [String]
}

/// pipeline.json expanded into nodes, in dependency order.
public struct PipelinePlan: Sendable {
    public let spec: PipelineSpec
    public let nodes: [PlanNode]
    public let byID: [String: Int]

    public init(spec: PipelineSpec) throws {
        self.spec = spec
        let file = spec.url.lastPathComponent
        var nodes: [PlanNode] = []
        var nodesOfStage: [String: [PlanNode]] = [:]
        // The sweep label of each node, so foreach nodes can carry their upstream's label.
        var labelOf: [String: [(String, JSONValue)]] = [:]
        // Every node each node descends from, so a foreach node takes, from a sweep its point descends from,
        // the point it descends from.
        var ancestorsOf: [String: Set<String>] = [:]

        for inst in spec.stages {
            let ownPoints = Self.cartesian(inst.matrix)
            let parents: [PlanNode?] = inst.foreach.map { nodesOfStage[$0]!.map(Optional.some) } ?? [nil]
            var made: [PlanNode] = []
            for parent in parents {
                for point in ownPoints {
                    var params: [String: JSONValue] = inst.definition.params.mapValues { $0.defaultValue }
                    for (k, v) in inst.params { params[k] = v }
                    for (k, v) in point { params[k] = v }
                    let label = (parent.map { labelOf[$0.id]! } ?? []) + point
                    let id = label.isEmpty ? inst.name
                        : inst.name + "@" + label.map { "\($0.0)=\(Self.labelText($0.1))" }.joined(separator: ",")
                    var inputs: [(role: String, source: NodeInput)] = []
                    for role in inst.inputs.keys.sorted() {
                        for source in inst.inputs[role]! {
                            switch source {
                            case let .file(path):
                                inputs.append((role, .file(path: path)))
                            case let .output(stage, out):
                                let candidates: [PlanNode]
                                if let parent, stage == inst.foreach {
                                    candidates = [parent]
                                } else if let parent, case let lineage = nodesOfStage[stage]!.filter({ ancestorsOf[parent.id]!.contains($0.id) }),
                                          !lineage.isEmpty {
                                    // e.g. a train node foreach synthesis reading ingest's videos: the ingest point
                                    // its synthesis point was made from.
                                    candidates = lineage
                                } else {
                                    candidates = nodesOfStage[stage]!
                                }
                                if candidates.count > 1 && !inst.definition.inputs[role]!.many {
                                    throw PipelineSpecError(file, "stages.\(inst.name).inputs.\(role)",
                                        "'\(stage)' is a sweep of \(candidates.count) points; add \"foreach\": \"\(stage)\" or use an input that takes many")
                                }
                                for c in candidates { inputs.append((role, .output(node: c.id, file: out))) }
                            }
                        }
                    }
                    var upstream: [String] = []
                    for case let (_, .output(node, _)) in inputs where !upstream.contains(node) { upstream.append(node) }
                    let node = PlanNode(id: id, stage: inst, params: .object(params), inputs: inputs, upstream: upstream)
                    labelOf[id] = label
                    ancestorsOf[id] = upstream.reduce(into: Set(upstream)) { $0.formUnion(ancestorsOf[$1]!) }
                    made.append(node)
                }
            }
            nodesOfStage[inst.name] = made
            nodes += made
        }
        self.nodes = nodes
        var index: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { index[n.id] = i }
        byID = index
    }

    public func node(_ id: String) -> PlanNode? { byID[id].map { nodes[$0] } }

    /// Node ids of a stage name or a node id.
    public func nodes(matching name: String) -> [PlanNode] {
        if let n = node(name) { return [n] }
        return nodes.filter { $0.stage.name == name }
    }

    /// Every node downstream of (and including) the given ones.
    public func downstream(of ids: Set<String>) -> Set<String> {
        var result = ids
        for n in nodes where n.upstream.contains(where: result.contains) { result.insert(n.id) }
        return result
    }

    /// The nodes in the order `run --jobs N` (N > 1) considers them: those on the longest chain of stages from
    /// a source to a sink first (the critical path of a graph whose stages cost alike), then in dependency
    /// order. Starting them first keeps the long chain from finishing alone at the end: in the default pipeline,
    /// pairs -> synthesis -> TD-DETR's trainings start before the other models' trainings.
    public func criticalPathOrder() -> [PlanNode] {
        var depth = [Int](repeating: 1, count: nodes.count), height = [Int](repeating: 1, count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for up in n.upstream { depth[i] = max(depth[i], depth[byID[up]!] + 1) }
        }
        for (i, n) in nodes.enumerated().reversed() {
            for up in n.upstream { height[byID[up]!] = max(height[byID[up]!], height[i] + 1) }
        }
        return nodes.indices.sorted { a, b in
            let (chainA, chainB) = (depth[a] + height[a], depth[b] + height[b])
            return chainA != chainB ? chainA > chainB : a < b
        }.map { nodes[$0] }
    }

    /// Every node upstream of (and including) the given ones.
    public func upstream(of ids: Set<String>) -> Set<String> {
        var result = ids
        for n in nodes.reversed() where result.contains(n.id) { result.formUnion(n.upstream) }
        return result
    }

    static func labelText(_ v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        return v.canonical
    }

    static func cartesian(_ axes: [(key: String, values: [JSONValue])]) -> [[(String, JSONValue)]] {
        var points: [[(String, JSONValue)]] = [[]]
        for axis in axes {
            points = points.flatMap { p in axis.values.map { p + [(axis.key, $0)] } }
        }
        return points
    }
}
