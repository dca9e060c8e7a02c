/// Whether the row and block kernels that have an AVX-512 version in C (`CVectorKernels`: layer norm's rows, the
/// shared-slope PReLU's blocks, attention's softmax backward and dropout) run it, or run their portable Swift loops.
/// Each C version does its loop's arithmetic in its order, so the two give the same bits; tests switch this to check
/// that. On by default where the CPU has AVX-512.
public enum VectorKernels {
    nonisolated(unsafe) public static var enabled = GEMM.avx512Available {
        didSet { precondition(!enabled || GEMM.avx512Available, "VectorKernels: this CPU has no AVX-512") }
    }
}
