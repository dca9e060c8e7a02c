import Foundation

/// Where a computation's time goes, by kind of work: an opt-in tally for `bench train-step --profile`. Off
/// by default; when off, a marked region costs one load of a flag.
///
/// Kernels mark their work with `region(kind) { ... }`. Only the thread that called `start()` is timed (the
/// kernels' worker threads run inside its regions), with the wall clock, and a region's time is its own:
/// time spent in regions nested in it is charged to them, except inside a region that `absorbs` its nested
/// ones (the attention kernel's per-head products stay attention). Every matrix product `GEMM.multiply` makes,
/// on any thread, is also counted by shape, so that a bench can replay the products bare and find the
/// computation's GEMM floor.
public enum Profiler {
    /// A kind of work.
    public enum Kind: String, CaseIterable, Sendable {
        case gemm = "GEMM (linear layers and other whole products)"
        case attention = "attention kernel (per-head products, mask, softmax, dropout)"
        case biasActivation = "bias + activation + dropout (fused, after a product)"
        case layerNorm = "layer norm (fused residual + dropout)"
        case dropout = "dropout (unfused)"
        case softmax = "softmax"
        case elementwise = "element-wise, activations, broadcasting"
        case reduction = "reductions"
        case copies = "copies (concat, slice, gather, pad, transpose)"
        case convolution = "convolution and interpolation"
        case lossAndMatcher = "losses and Hungarian matching"
        case optimizer = "gradient clipping and AdamW"
    }

    /// A matrix product as `GEMM.multiply` was called: `op(A)` `m x k` times `op(B)` `k x n`.
    public struct Product: Hashable, Sendable {
        public let m: Int, n: Int, k: Int
        public let transposeA: Bool, transposeB: Bool

        public init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) {
            (self.m, self.n, self.k, self.transposeA, self.transposeB) = (m, n, k, transposeA, transposeB)
        }

        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    /// What was measured between `start()` and `stop()`.
    public struct Tally: Sendable {
        /// Own wall seconds per kind, on the timed thread.
        public var seconds: [Kind: Double] = [:]
        /// Calls per product shape, on every thread.
        public var products: [Product: Int] = [:]
        /// Own wall seconds of the products made directly on the timed thread (not inside an absorbing region), by shape.
        public var productSeconds: [Product: Double] = [:]

        public var gemmFlops: Double { products.reduce(0) { $0 + $1.key.flops * Double($1.value) } }
    }

    @usableFromInline nonisolated(unsafe) static var enabled = false
    nonisolated(unsafe) private static var owner = pthread_self()
    nonisolated(unsafe) private static var tally = Tally()
    /// Open regions on the timed thread: kind, start, seconds of nested regions, whether it absorbs them, the
    /// product it is.
    nonisolated(unsafe) private static var stack: [(kind: Kind, start: Double, nested: Double, absorbs: Bool, product: Product?)] = []
    private static let lock = NSLock()

    /// Whether regions are being timed.
    @inlinable public static var isEnabled: Bool { enabled }

    /// Starts a tally from zero, timing the calling thread.
    public static func start() {
        lock.lock()
        tally = Tally()
        lock.unlock()
        stack = []
        owner = pthread_self()
        enabled = true
    }

    /// Stops and returns the tally since `start()`.
    public static func stop() -> Tally {
        enabled = false
        lock.lock()
        defer { lock.unlock() }
        return tally
    }

    /// Opens a region of `kind` (close it with `exit`, e.g. in a `defer`); nil when nothing is timed.
    @inlinable
    public static func enter(_ kind: Kind, absorbs: Bool = false) -> Int? {
        enabled ? open(kind, absorbs: absorbs, product: nil) : nil
    }

    /// Opens the region of a matrix product of shape `product`: counted on any thread, timed as GEMM on the
    /// timed thread (and absorbing, as a product's own threads run inside it).
    @inlinable
    public static func enter(_ product: @autoclosure () -> Product) -> Int? {
        enabled ? open(.gemm, absorbs: true, product: product()) : nil
    }

    /// Closes the region `enter` opened.
    @inlinable
    public static func exit(_ token: Int?) {
        if let token { close(token) }
    }

    /// Runs `body` as work of `kind`.
    @inlinable
    public static func region<R>(_ kind: Kind, absorbs: Bool = false, _ body: () throws -> R) rethrows -> R {
        let token = enter(kind, absorbs: absorbs)
        defer { exit(token) }
        return try body()
    }

    @usableFromInline
    static func open(_ kind: Kind, absorbs: Bool, product: Product?) -> Int? {
        if let product {
            lock.lock()
            tally.products[product, default: 0] += 1
            lock.unlock()
        }
        guard pthread_equal(pthread_self(), owner) != 0, !(stack.last?.absorbs ?? false) else { return nil }
        stack.append((kind, now(), 0, absorbs, product))
        return stack.count
    }

    @usableFromInline
    static func close(_ token: Int) {
        guard stack.count == token else { return }
        let open = stack.removeLast()
        let elapsed = now() - open.start
        let own = elapsed - open.nested
        lock.lock()
        tally.seconds[open.kind, default: 0] += own
        if let product = open.product { tally.productSeconds[product, default: 0] += own }
        lock.unlock()
        if !stack.isEmpty { stack[stack.count - 1].nested += elapsed }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
