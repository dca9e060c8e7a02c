import Foundation
import Shards

/// What a stage's job asks the cluster scheduler for: pipeline.json's `resources` block of a stage, or the
/// defaults of `pipeline run --executor slurm`. Every field is optional; a stage's field wins over the
/// command line's. The local executor ignores them. They are not part of the cache key: where a stage runs
/// does not change what it computes.
public struct StageResources: Equatable, Sendable {
    /// CPUs per task (`--cpus-per-task`).
    public var cpus: Int?
    /// Memory per node in Slurm's notation: a number of megabytes, or a number with K, M, G or T (`--mem`).
    public var mem: String?
    /// Wall-time limit in Slurm's notation: minutes, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS` (`--time`).
    public var time: String?
    /// The partition (`--partition`).
    public var partition: String?

    public init(cpus: Int? = nil, mem: String? = nil, time: String? = nil, partition: String? = nil) {
        self.cpus = cpus
        self.mem = mem
        self.time = time
        self.partition = partition
    }

    static let keys = ["cpus", "mem", "partition", "time"]

    /// `self`, with the fields `override` sets replaced.
    public func overridden(by override: StageResources?) -> StageResources {
        guard let override else { return self }
        return StageResources(cpus: override.cpus ?? cpus, mem: override.mem ?? mem, time: override.time ?? time,
                              partition: override.partition ?? partition)
    }

    /// The sbatch options these resources stand for.
    public var sbatchArguments: [String] {
        var arguments: [String] = []
        if let partition { arguments.append("--partition=\(partition)") }
        if let time { arguments.append("--time=\(time)") }
        if let cpus { arguments.append("--cpus-per-task=\(cpus)") }
        if let mem { arguments.append("--mem=\(mem)") }
        return arguments
    }

    /// Parses pipeline.json's `resources` object; errors name the file and place.
    static func parse(_ value: JSONValue, file: String, place: String) throws -> StageResources {
        guard case .object(let fields) = value else {
            throw PipelineSpecError(file, place, "must be an object such as {\"cpus\": 2, \"mem\": \"4G\", \"time\": \"01:00:00\"}")
        }
        if let unknown = fields.keys.sorted().first(where: { !keys.contains($0) }) {
            throw PipelineSpecError(file, "\(place).\(unknown)", "unknown key (expected \(keys.joined(separator: ", ")))")
        }
        var resources = StageResources()
        if let cpus = fields["cpus"] {
            guard let n = cpus.intValue, n >= 1 else {
                throw PipelineSpecError(file, "\(place).cpus", "expected an integer of at least 1, got \(cpus.canonical)")
            }
            resources.cpus = n
        }
        if let mem = fields["mem"] {
            guard let text = mem.stringValue ?? mem.intValue.map(String.init) else {
                throw PipelineSpecError(file, "\(place).mem", "expected a string such as \"4G\", got \(mem.canonical)")
            }
            if let problem = memoryProblem(text) { throw PipelineSpecError(file, "\(place).mem", problem) }
            resources.mem = text
        }
        if let time = fields["time"] {
            guard let text = time.stringValue ?? time.intValue.map(String.init) else {
                throw PipelineSpecError(file, "\(place).time", "expected a string such as \"01:00:00\", got \(time.canonical)")
            }
            if let problem = timeProblem(text) { throw PipelineSpecError(file, "\(place).time", problem) }
            resources.time = text
        }
        if let partition = fields["partition"] {
            guard let text = partition.stringValue else {
                throw PipelineSpecError(file, "\(place).partition", "expected a string, got \(partition.canonical)")
            }
            if let problem = partitionProblem(text) { throw PipelineSpecError(file, "\(place).partition", problem) }
            resources.partition = text
        }
        return resources
    }

    /// Why `text` is not a Slurm memory size, or nil.
    public static func memoryProblem(_ text: String) -> String? {
        let pattern = #"^[0-9]+[KMGTkmgt]?$"#
        guard text.range(of: pattern, options: .regularExpression) != nil else {
            return "'\(text)' is not a memory size (a number of megabytes, or a number with K, M, G or T, e.g. 4G)"
        }
        return nil
    }

    /// Why `text` is not a Slurm time limit, or nil.
    public static func timeProblem(_ text: String) -> String? {
        let patterns = [#"^[0-9]+$"#, #"^[0-9]+:[0-9]{1,2}$"#, #"^[0-9]+:[0-9]{1,2}:[0-9]{1,2}$"#,
                        #"^[0-9]+-[0-9]{1,2}$"#, #"^[0-9]+-[0-9]{1,2}:[0-9]{1,2}$"#, #"^[0-9]+-[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}$"#]
        guard patterns.contains(where: { text.range(of: $0, options: .regularExpression) != nil }) else {
            return "'\(text)' is not a time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"
        }
        return nil
    }

    /// Why `text` is not a partition name, or nil.
    public static func partitionProblem(_ text: String) -> String? {
        guard !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || "-_.,".contains($0) }) else {
            return "'\(text)' is not a partition name"
        }
        return nil
    }
}
