import Foundation
import Shards

#if canImport(Glibc)
import Glibc
#endif

/// What this stage process has used so far: wall time since it started, CPU time (user + system) and peak
/// resident memory. The driver records the same figures for every run from outside (`pipeline runs`); a
/// stage writes its own into its outputs so that the report, which reads only files, can show them.
public struct ProcessResources: Sendable {
    public let wallSeconds: Double
    public let cpuSeconds: Double
    public let peakRSSBytes: Int

    nonisolated(unsafe) static var started = Date()

    /// Marks the process start (called when a stage begins).
    public static func markStart() { started = Date() }

    public static func current() -> ProcessResources {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return ProcessResources(wallSeconds: Date().timeIntervalSince(started),
                                cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
                                peakRSSBytes: Int(usage.ru_maxrss) * 1024)
    }

    public var json: JSONValue {
        ["wall_seconds": .number((wallSeconds * 1000).rounded() / 1000), "cpu_seconds": .number((cpuSeconds * 1000).rounded() / 1000),
         "peak_rss_bytes": .number(Double(peakRSSBytes))]
    }
}
