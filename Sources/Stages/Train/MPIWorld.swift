import Foundation
import Retrieval

/// The MPI world of a train run started by `mpirun -np N`, reached through OpenMPI's C API loaded at run time.
///
/// libmpi is opened with `dlopen` rather than linked, so the package builds, and `train` runs as one process,
/// on a machine without MPI: only a process that `mpirun` started (it sets `OMPI_COMM_WORLD_SIZE`, or
/// `PMI_SIZE` under other launchers) with more than one rank opens it. The handles `MPI_COMM_WORLD`,
/// `MPI_FLOAT` and `MPI_SUM` are OpenMPI's exported objects (`ompi_mpi_comm_world` and so on), whose
/// addresses are the handles; another MPI (MPICH's integer handles) is not supported.
final class MPIWorld {
    typealias InitFn = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32
    typealias CommIntFn = @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> Int32
    typealias AllreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer, Int32, UnsafeMutableRawPointer,
                                            UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    typealias FinalizeFn = @convention(c) () -> Int32
    typealias AbortFn = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32

    let rank: Int
    let size: Int
    private let allreduce: AllreduceFn
    private let finalize: FinalizeFn
    private let abortFn: AbortFn
    private let world: UnsafeMutableRawPointer
    private let float: UnsafeMutableRawPointer
    private let sum: UnsafeMutableRawPointer
    /// `MPI_IN_PLACE` in OpenMPI is `(void *) 1`.
    private static let inPlace = UnsafeRawPointer(bitPattern: 1)

    /// The rank count the launcher announced in the environment (1 when not started by a launcher): mpirun's
    /// `OMPI_COMM_WORLD_SIZE`, a PMI launcher's `PMI_SIZE`, or the task count of an `srun` step that wired its
    /// tasks through PMIx.
    static var launchedSize: Int {
        let env = ProcessInfo.processInfo.environment
        let srunTasks = env["PMIX_RANK"] != nil ? env["SLURM_STEP_NUM_TASKS"] : nil
        return Int(env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"] ?? srunTasks ?? "1") ?? 1
    }

    /// Opens libmpi and initialises MPI; throws when the library or one of its symbols is missing.
    init() throws {
        let names = ["libmpi.so.40", "libmpi.so", "libmpi.so.12"]
        guard let handle = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_GLOBAL) }).first else {
            throw StageError("train: started by an MPI launcher with \(Self.launchedSize) ranks, but libmpi cannot be opened "
                             + "(install openmpi-bin and libopenmpi-dev): \(String(cString: dlerror()))")
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let s = dlsym(handle, name) else { throw StageError("train: libmpi has no symbol \(name) (OpenMPI is required)") }
            return s
        }
        let initFn = unsafeBitCast(try symbol("MPI_Init"), to: InitFn.self)
        let rankFn = unsafeBitCast(try symbol("MPI_Comm_rank"), to: CommIntFn.self)
        let sizeFn = unsafeBitCast(try symbol("MPI_Comm_size"), to: CommIntFn.self)
        allreduce = unsafeBitCast(try symbol("MPI_Allreduce"), to: AllreduceFn.self)
        finalize = unsafeBitCast(try symbol("MPI_Finalize"), to: FinalizeFn.self)
        abortFn = unsafeBitCast(try symbol("MPI_Abort"), to: AbortFn.self)
        world = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        sum = try symbol("ompi_mpi_op_sum")
        guard initFn(nil, nil) == 0 else { throw StageError("train: MPI_Init failed") }
        var r: Int32 = 0, s: Int32 = 0
        _ = rankFn(world, &r)
        _ = sizeFn(world, &s)
        rank = Int(r)
        size = Int(s)
        guard size == Self.launchedSize else {
            throw StageError("train: the launcher started \(Self.launchedSize) ranks but MPI_Init joined a world of \(size): "
                             + "the launcher did not wire them up (under srun, set the MPI plugin, e.g. srun --mpi=pmix or SLURM_MPI_TYPE=pmix)")
        }
    }

    /// Replaces `buffer` by its element-wise sum over every rank (one `MPI_Allreduce`, in place).
    func allReduceSum(_ buffer: inout [Float]) {
        precondition(buffer.count < Int(Int32.max), "MPI all-reduce: buffer of \(buffer.count) floats is too long")
        let count = Int32(buffer.count)
        let status = buffer.withUnsafeMutableBytes { bytes in
            allreduce(Self.inPlace, bytes.baseAddress!, count, float, sum, world)
        }
        if status != 0 { abort(code: 1) }
    }

    /// The trainer's view of this world.
    var dataParallel: DataParallel {
        DataParallel(rank: rank, size: size) { [self] in allReduceSum(&$0) }
    }

    func close() { _ = finalize() }

    /// Ends every rank (after an error on one, so the others do not wait forever in a collective).
    func abort(code: Int32) -> Never {
        _ = abortFn(world, code)
        exit(code)
    }
}
