import Tensor

/// Gradient clipping by global norm, as PyTorch's `clip_grad_norm_`.
public enum GradientClipping {
    /// Scales all gradients by `maxNorm / (norm + 1e-6)` when their joint L2 norm exceeds `maxNorm`, in place.
    /// Returns the norm before clipping (the squares summed in Double, see `sumOfSquares`).
    @discardableResult
    public static func clipByGlobalNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
        let (norm, scale) = globalNormScale(parameters, maxNorm: maxNorm)
        let profiled = Profiler.enter(.optimizer)
        defer { Profiler.exit(profiled) }
        if let coefficient = scale {
            for p in parameters where p.grad != nil {
                p.grad!.withUnsafeMutableBufferPointer { values in
                    Parallelism.forEachChunk(count: values.count, grain: Parallelism.elementwiseGrain) { range in
                        // `Elementwise.affine`'s `x * scale + shift` with shift 0 (which turns a -0 into +0).
                        for i in range { values[i] = values[i] * coefficient + 0 }
                    }
                }
            }
        }
        return norm
    }

    /// The gradients' joint L2 norm and the factor `clipByGlobalNorm` would scale them by (nil when the norm is within
    /// `maxNorm`), leaving them as they are: for `AdamW.update(gradientScale:)`, which applies the scaling as it reads
    /// each gradient, so clipping costs no pass of its own over the gradients.
    public static func globalNormScale(_ parameters: [Variable], maxNorm: Float) -> (norm: Float, scale: Float?) {
        let profiled = Profiler.enter(.optimizer)
        defer { Profiler.exit(profiled) }
        let norm = Float(sumOfSquares(parameters.compactMap(\.grad)).squareRoot())
        let coefficient = maxNorm / (norm + 1e-6)
        return (norm, coefficient < 1 ? coefficient : nil)
    }

    /// Elements per block of `sumOfSquares`.
    static let blockLength = 1 << 15

    /// The sum of the squares of every element of `tensors`, in Double. Each tensor is cut into blocks of
    /// `blockLength` elements; a block's squares are summed in 16 lanes (element `i` of the block in lane `i % 16`),
    /// lane `j` then added to lane `j + 8` and those eight pairwise; the blocks are summed side by side on the worker
    /// threads and their sums added in tensor and block order. So the result depends on the values alone, not on
    /// the thread count. (A Float squared is exact in Double; only the order of the additions differs from one
    /// running sum's, which was latency-bound at 8M parameters: 7 ms a step.)
    static func sumOfSquares(_ tensors: [Tensor]) -> Double {
        var blocks: [(tensor: Int, start: Int, count: Int)] = []
        for (index, tensor) in tensors.enumerated() {
            for start in stride(from: 0, to: tensor.count, by: blockLength) {
                blocks.append((index, start, min(blockLength, tensor.count - start)))
            }
        }
        var sums = [Double](repeating: 0, count: blocks.count)
        sums.withUnsafeMutableBufferPointer { out in
            Parallelism.forEachChunk(count: blocks.count, grain: 1) { range in
                for b in range {
                    let block = blocks[b]
                    out[b] = tensors[block.tensor].withUnsafeBufferPointer { values in
                        blockSumOfSquares(values.baseAddress! + block.start, count: block.count)
                    }
                }
            }
        }
        return sums.reduce(0, +)
    }

    private static func blockSumOfSquares(_ values: UnsafePointer<Float>, count: Int) -> Double {
        var low = SIMD8<Double>(), high = SIMD8<Double>()
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(values + i).loadUnaligned(as: SIMD16<Float>.self)
            let a = SIMD8<Double>(x.lowHalf), b = SIMD8<Double>(x.highHalf)
            low += a * a
            high += b * b
            i += 16
        }
        if i < count {
            var x = SIMD16<Float>()
            for j in 0..<(count - i) { x[j] = values[i + j] }
            let a = SIMD8<Double>(x.lowHalf), b = SIMD8<Double>(x.highHalf)
            low += a * a
            high += b * b
        }
        let lanes = low + high
        return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    }
}

/// Step learning-rate decay: `base * gamma^floor(epoch / stepSize)` (PyTorch's `StepLR`).
public struct StepLRSchedule: Sendable, Equatable {
    public let baseLearningRate: Float
    public let stepSize: Int
    public let gamma: Float

    public init(baseLearningRate: Float, stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize > 0, "StepLRSchedule: step size must be positive, got \(stepSize)")
        self.baseLearningRate = baseLearningRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// The learning rate for `epoch` (0-based).
    public func learningRate(epoch: Int) -> Float {
        var rate = baseLearningRate
        for _ in 0..<(epoch / stepSize) { rate *= gamma }
        return rate
    }
}
