import Foundation
import Lineage

extension RunResources {
    /// For people, compact: `wall 12.3s cpu 20.1s rss 812 MB`.
    public var summary: String {
        "wall \(Self.duration(wallSeconds)) cpu \(Self.duration(cpuSeconds)) rss \(Self.size(peakRSSBytes))"
    }

    /// `0.04s`, `12.3s`, `4m07s`, `2h05m`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return String(format: "%.2fs", seconds) }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, whole % 3600 / 60)
    }

    /// In decimal units, so that `MB` means 10^6 bytes: `3.6 MB`, `812 MB`, `12.4 GB`.
    public static func size(_ bytes: Int64) -> String {
        let mb = Double(bytes) / 1e6
        if mb < 10 { return String(format: "%.1f MB", mb) }
        if mb < 1000 { return String(format: "%.0f MB", mb) }
        return String(format: "%.1f GB", mb / 1000)
    }
}
