import Foundation
import Tensor
import XCTest

final class ParallelismTests: XCTestCase {
    func testAvailableCoresFollowTheAffinityMaskAndAreSharedAmongStagesAndRanks() throws {
        let all = Parallelism.availableCores(environment: [:])
        XCTAssertGreaterThanOrEqual(all, 1)
        XCTAssertLessThanOrEqual(all, ProcessInfo.processInfo.activeProcessorCount)
        XCTAssertEqual(Parallelism.availableCores(environment: ["PIPELINE_JOBS": "\(all)"]), 1)
        XCTAssertEqual(Parallelism.availableCores(environment: ["PIPELINE_JOBS": "\(all + 5)"]), 1, "never below one")
        XCTAssertEqual(Parallelism.availableCores(environment: ["SLURM_CPUS_PER_TASK": "1"]), 1)
        XCTAssertEqual(Parallelism.availableCores(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "\(all)"]), 1)
        XCTAssertEqual(Parallelism.availableCores(environment: ["PIPELINE_JOBS": "0", "SLURM_CPUS_PER_TASK": "x"]), all,
                       "values that are not positive integers are ignored")

        // Bound to one CPU (as taskset or a Slurm task binding would), the thread counts one core.
        typealias Affinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
        let get = unsafeBitCast(try XCTUnwrap(dlsym(nil, "sched_getaffinity")), to: Affinity.self)
        let set = unsafeBitCast(try XCTUnwrap(dlsym(nil, "sched_setaffinity")), to: Affinity.self)
        var saved = [UInt64](repeating: 0, count: 16)
        XCTAssertEqual(saved.withUnsafeMutableBytes { get(0, $0.count, $0.baseAddress!) }, 0)
        defer { _ = saved.withUnsafeMutableBytes { set(0, $0.count, $0.baseAddress!) } }
        let first = try XCTUnwrap(saved.withUnsafeBytes { bytes in (0..<(bytes.count * 8)).first { bytes[$0 / 8] & (1 << ($0 % 8)) != 0 } })
        var one = [UInt64](repeating: 0, count: 16)
        one[first / 64] = 1 << UInt64(first % 64)
        XCTAssertEqual(one.withUnsafeMutableBytes { set(0, $0.count, $0.baseAddress!) }, 0)
        XCTAssertEqual(Parallelism.availableCores(environment: [:]), 1)
    }

    func testEveryChunkRunsExactlyOnceOnAnyThreadCount() {
        let previous = Parallelism.threadCount
        defer { Parallelism.setThreadCount(previous) }
        for threads in [1, 2, 3] {
            Parallelism.setThreadCount(threads)
            for count in [1, 7, 10_000] {
                var visits = [Int](repeating: 0, count: count)
                visits.withUnsafeMutableBufferPointer { slots in
                    Parallelism.forEachChunk(count: count, grain: 3) { range in
                        for i in range { slots[i] += 1 }
                    }
                }
                XCTAssertEqual(visits, [Int](repeating: 1, count: count), "\(threads) threads, \(count) items")
            }
        }
    }

    func testNestedAndConcurrentLoopsFinishWithEveryItemDone() {
        // A loop started inside another, or from a second thread while one runs, runs on its caller.
        let (outer, inner) = (64, 100)
        var nested = [Int](repeating: 0, count: outer * inner)
        nested.withUnsafeMutableBufferPointer { slots in
            Parallelism.forEachChunk(count: outer, grain: 1) { rows in
                for row in rows {
                    Parallelism.forEachChunk(count: inner, grain: 10) { columns in
                        for column in columns { slots[row * inner + column] += row + column }
                    }
                }
            }
        }
        XCTAssertEqual(nested, (0..<(outer * inner)).map { $0 / inner + $0 % inner })

        let group = DispatchGroup()
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4 * 5_000)
        defer { results.deallocate() }
        results.initialize(repeating: 0)
        for caller in 0..<4 {
            group.enter()
            Thread {
                for _ in 0..<20 {
                    Parallelism.forEachChunk(count: 5_000, grain: 100) { range in
                        for i in range { results[caller * 5_000 + i] += 1 }
                    }
                }
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertTrue(results.allSatisfy { $0 == 20 })
    }
}
