import Foundation
import Retrieval
import XCTest

/// The embedded synthetic benchmark: deterministic bytes through the executable, and the stated
/// properties of its splits measured on large samples.
final class SyntheticBenchmarkTests: XCTestCase {
    static let files = ["shifted.annotations.jsonl", "shifted.queries.tshard", "shifted.videos.tshard",
                        "train.annotations.jsonl", "train.queries.tshard", "train.videos.tshard",
                        "val.annotations.jsonl", "val.queries.tshard", "val.videos.tshard"]

    func generate(seed: Int) throws -> [String: Data] {
        let out = try StageProcess.temporaryDirectory("synthetic", for: self)
        let params = #"{"seed": \#(seed), "train_videos": 24, "val_videos": 6, "shifted_videos": 6, "video_dim": 16, "text_dim": 8}"#
        let result = try StageProcess.run("feature-ingest", ["synthetic", "--out", out.path, "--params", params])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(StageProcess.files(in: out), Self.files)
        var data: [String: Data] = [:]
        for f in Self.files { data[f] = try Data(contentsOf: out.appendingPathComponent(f)) }
        return data
    }

    func testSameSeedWritesTheSameBytesAndAnotherSeedDiffers() throws {
        let first = try generate(seed: 7), again = try generate(seed: 7), other = try generate(seed: 8)
        for f in Self.files {
            XCTAssertEqual(first[f], again[f], "\(f) differs between two runs with seed 7")
            XCTAssertNotEqual(first[f], other[f], "\(f) is the same for seeds 7 and 8")
        }
    }

    // MARK: split properties

    /// One video as the tests read it back: the scene of each clip and the two event windows in clips.
    struct Layout {
        var scenes: [Int]
        var eventType: Int
        var event: Range<Int>
        var distractorType: Int
        var distractor: Range<Int>
    }

    static let config: SyntheticBenchmark.Config = {
        var c = SyntheticBenchmark.Config()
        c.seed = 21
        c.trainVideos = 3000
        c.valVideos = 1000
        c.shiftedVideos = 1000
        return c
    }()
    static let benchmark = SyntheticBenchmark(config: config)
    static let splits: [String: MomentSplit] = Dictionary(uniqueKeysWithValues: ["train", "val", "shifted"].map { ($0, benchmark.split($0)) })

    static func layouts(_ split: MomentSplit) -> [Layout] {
        let v = split.videos, q = split.queries
        return (0..<q.count).map { i in
            let video = q.videoIndex[i]
            let scenes = v.clipScene![v.offsets[video]..<v.offsets[video + 1]].map(Int.init)
            func clips(_ w: [Double]) -> Range<Int> { Int(w[0] / 2)..<Int(w[1] / 2) }
            return Layout(scenes: scenes, eventType: q.eventType![i], event: clips(q.windows[i][0]),
                          distractorType: q.distractorType![i], distractor: clips(q.distractorWindows![i]))
        }
    }

    /// The maximal run of one scene around a window: the event's scene segment.
    static func segment(of window: Range<Int>, in scenes: [Int]) -> Range<Int> {
        let scene = scenes[window.lowerBound]
        var a = window.lowerBound, b = window.upperBound
        while a > 0 && scenes[a - 1] == scene { a -= 1 }
        while b < scenes.count && scenes[b] == scene { b += 1 }
        return a..<b
    }

    func correlated(_ e: Int) -> Int { e % Self.config.scenes }

    func testTrainAndValEventsSitInTheirCorrelatedSceneAtRateRho() {
        for name in ["train", "val"] {
            let layouts = Self.layouts(Self.splits[name]!)
            var inScene = 0, sceneElsewhere = 0
            for l in layouts {
                XCTAssertEqual(Set(l.event.map { l.scenes[$0] }).count, 1, "an event lies inside one scene segment")
                if l.scenes[l.event.lowerBound] == correlated(l.eventType) { inScene += 1 }
                let segment = Self.segment(of: l.event, in: l.scenes)
                if l.scenes.indices.contains(where: { !segment.contains($0) && l.scenes[$0] == correlated(l.eventType) }) { sceneElsewhere += 1 }
            }
            let rate = Double(inScene) / Double(layouts.count), elsewhere = Double(sceneElsewhere) / Double(layouts.count)
            print("\(name): event inside its correlated scene c(e) in \(String(format: "%.3f", rate)) of \(layouts.count) videos (rho 0.9); "
                  + "c(e) outside the event's segment in \(String(format: "%.3f", elsewhere))")
            // Binomial standard deviation at n = 1000 is 0.0095: 3.5 sigma.
            XCTAssertEqual(rate, Self.config.rho, accuracy: 0.033, name)
            XCTAssertLessThanOrEqual(elsewhere, 0.01, "\(name): c(e) marks the event")
        }
    }

    func testShiftedEventsAvoidTheirSceneWhichAppearsElsewhereAsADecoy() {
        let layouts = Self.layouts(Self.splits["shifted"]!)
        var decoys = 0
        for (i, l) in layouts.enumerated() {
            let ce = correlated(l.eventType)
            XCTAssertNotEqual(l.scenes[l.event.lowerBound], ce, "shifted video \(i): event in its correlated scene")
            let decoy = l.scenes.indices.filter { l.scenes[$0] == ce }
            XCTAssertTrue(decoy.allSatisfy { !l.event.contains($0) && !l.distractor.contains($0) },
                          "shifted video \(i): the decoy holds an event")
            if !decoy.isEmpty { decoys += 1 }
        }
        print("shifted: event inside c(e) in 0 of \(layouts.count) videos; a decoy segment of c(e) in \(decoys)")
        XCTAssertEqual(decoys, layouts.count, "every shifted video shows c(e) without the event")
    }

    func testEveryVideoHasOneDistractorOfAnotherTypeApartFromTheEvent() {
        for (name, split) in Self.splits {
            for (i, l) in Self.layouts(split).enumerated() {
                XCTAssertNotEqual(l.distractorType, l.eventType, "\(name) \(i)")
                XCTAssertFalse(l.distractor.isEmpty || l.event.isEmpty, "\(name) \(i)")
                XCTAssertFalse(l.distractor.overlaps(l.event), "\(name) \(i): windows \(l.event) and \(l.distractor) overlap")
                XCTAssertTrue((1...20).contains(l.event.count) && (1...20).contains(l.distractor.count), "\(name) \(i): 2-40 s events")
                XCTAssertEqual(Set(l.distractor.map { l.scenes[$0] }), [correlated(l.distractorType)], "\(name) \(i): distractor in its own scene")
                XCTAssertTrue((Self.config.minClips...Self.config.maxClips).contains(l.scenes.count))
                XCTAssertEqual(split.videos.durations[i], Double(l.scenes.count) * 2)
            }
        }
    }

    func testQueriesAreThreeToEightTokensNamingTheEvent() {
        for (name, split) in Self.splits {
            let q = split.queries
            var lengths = Set<Int>()
            for i in 0..<q.count {
                lengths.insert(q.tokenCount(i))
                let e = q.eventType![i]
                XCTAssertTrue(q.texts[i].contains(Self.benchmark.eventName(e)) || q.texts[i].contains(SyntheticBenchmark.eventSynonyms[e]),
                              "\(name) \(i): '\(q.texts[i])' does not name event \(e)")
            }
            XCTAssertEqual(lengths, Set(3...8), name)
        }
    }

    func testSaliencyIsZeroOutsideTheWindowAndOneToFourInside() {
        for (name, split) in Self.splits {
            let q = split.queries
            XCTAssertTrue(q.hasSaliency)
            for (i, l) in Self.layouts(split).enumerated() {
                for c in 0..<l.scenes.count {
                    let row = q.clipOffsets[i] + c
                    let scores = q.saliency[(row * 3)..<(row * 3 + 3)]
                    if l.event.contains(c) {
                        XCTAssertTrue(scores.allSatisfy { (1...4).contains($0) } && q.relevant[row] == 1, "\(name) \(i) clip \(c): \(Array(scores))")
                    } else {
                        XCTAssertTrue(scores.allSatisfy { $0 == 0 } && q.relevant[row] == 0, "\(name) \(i) clip \(c): \(Array(scores))")
                    }
                }
            }
        }
    }

    func testClipFeaturesAreTheirSceneOutsideEventsAndMoveInsideThem() throws {
        // Read from the features alone (the layout only says where the events are): every clip is a unit
        // vector nearest its own scene's, followed by the temporal endpoints; events add motion, so their
        // consecutive clips differ more than those of a static scene.
        let split = Self.splits["val"]!
        let v = split.videos, d = Self.config.videoDim, scenes = Self.benchmark.sceneVectors
        XCTAssertEqual(v.dim, d + 2)
        var ownScene: [Double] = [], stillSteps: [Double] = [], eventSteps: [Double] = []
        for (i, l) in Self.layouts(split).enumerated() {
            let rows = try v.clips(split.queries.videoIndex[i])
            let n = l.scenes.count
            let clip = { (t: Int) in (0..<d).map { Double(rows[t * (d + 2) + $0]) } }
            for t in 0..<n {
                let x = clip(t)
                XCTAssertEqual(x.map { $0 * $0 }.reduce(0, +).squareRoot(), 1, accuracy: 1e-4, "video \(i) clip \(t) is unit length")
                XCTAssertEqual(rows[t * (d + 2) + d], Float(t) / Float(n), "video \(i) clip \(t): tef start")
                XCTAssertEqual(rows[t * (d + 2) + d + 1], Float(t + 1) / Float(n), "video \(i) clip \(t): tef end")
                let inEvent = l.event.contains(t) || l.distractor.contains(t)
                guard !inEvent else { continue }
                let dots = (0..<Self.config.scenes).map { s in (0..<d).map { x[$0] * Double(scenes[s * d + $0]) }.reduce(0, +) }
                XCTAssertEqual(dots.indices.max { dots[$0] < dots[$1] }, l.scenes[t], "video \(i) clip \(t): nearest scene")
                ownScene.append(dots[l.scenes[t]])
            }
            for t in 1..<n where l.scenes[t] == l.scenes[t - 1] {
                let step = zip(clip(t), clip(t - 1)).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                for window in [l.event, l.distractor] {
                    if window.contains(t) && window.contains(t - 1) { eventSteps.append(step) }
                }
                if ![l.event, l.distractor].contains(where: { $0.contains(t) || $0.contains(t - 1) }) { stillSteps.append(step) }
            }
        }
        // Noise 0.05 per dim over 64 dims puts a still clip at cosine about 1 / sqrt(1.16) = 0.93 to its scene.
        let meanOwn = ownScene.reduce(0, +) / Double(ownScene.count)
        XCTAssertEqual(meanOwn, 0.93, accuracy: 0.02)
        XCTAssertGreaterThan(ownScene.min()!, 0.8)
        let still = stillSteps.reduce(0, +) / Double(stillSteps.count), moving = eventSteps.reduce(0, +) / Double(eventSteps.count)
        print("clip-to-clip distance: \(String(format: "%.3f", still)) in a still scene, \(String(format: "%.3f", moving)) inside events")
        XCTAssertGreaterThan(eventSteps.count, 1000)
        XCTAssertGreaterThan(moving, 1.2 * still, "events show in clip-to-clip differences (0.67 against 0.52 here)")
    }
}
