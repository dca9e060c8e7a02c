/// What one stage run's child process used, as the kernel accounted it when the driver reaped that child
/// (its own usage plus that of every descendant it waited for).
public struct RunResources: Equatable, Sendable {
    /// From starting the child to reaping it.
    public let wallSeconds: Double
    /// User plus system CPU time.
    public let cpuSeconds: Double
    /// The largest resident set of the child or of any descendant it waited for.
    public let peakRSSBytes: Int64

    public init(wallSeconds: Double, cpuSeconds: Double, peakRSSBytes: Int64) {
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.peakRSSBytes = peakRSSBytes
    }
}
