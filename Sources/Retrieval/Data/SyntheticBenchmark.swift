import Foundation
import Tensor

/// The embedded default dataset: a deterministic synthetic benchmark with a controllable spurious
/// correlation between an event and the scene it happens in (ARCHITECTURE.md section 10).
///
/// - Scenes: `scenes` static appearance vectors; a clip is its scene's vector plus small noise, so
///   clip-to-clip differences inside a scene are near zero.
/// - Events: `events` types, each with a weak appearance vector `a_e` and a motion `sin(w_e t + phi_e) b_e`
///   added on top of the scene during the event's window (1-20 clips = 2-40 s), so an event shows in
///   appearance and, more strongly, in clip-to-clip differences.
/// - Each video has one queried event and one distractor event of another type (in its own correlated
///   scene), plus filler scene segments. The query (3-8 tokens: the event's word, filler words, sometimes
///   the word of the scene the event happens in) names the queried event.
/// - Spurious correlation: event `e` has a correlated scene `c(e) = e mod scenes`. In `train` and `val`
///   the queried event happens in `c(e)` with probability `rho`, and `c(e)` appears nowhere else. In
///   `shifted` it happens in another scene, while a segment of `c(e)` without any event (a decoy) appears
///   elsewhere in the video. A model that finds "the scene that goes with the word" scores well on `val`,
///   badly on `shifted`, and still finds masked moments.
/// - Saliency: three annotators' 0-4 scores inside the window (highest at the event's middle, noisy), 0 outside.
///
/// Every video is generated from its own generator seeded by (seed, split, index), so a split is the same
/// bytes whatever the other splits' sizes, and adding videos leaves the earlier ones unchanged.
public struct SyntheticBenchmark: Sendable {
    public struct Config: Sendable, Equatable {
        public var seed: UInt64 = 1
        public var trainVideos = 500
        public var valVideos = 150
        public var shiftedVideos = 150
        public var minClips = 16
        public var maxClips = 40
        public var videoDim = 64
        public var textDim = 32
        public var scenes = 8
        public var events = 8
        public var rho = 0.9
        public var tef = true
        public var clipNoise: Float = 0.05
        public var eventAppearance: Float = 0.3
        public var eventMotion: Float = 0.8
        public var textNoise: Float = 0.1
        public init() {}
    }

    public let config: Config
    /// `[scenes, videoDim]`, unit vectors.
    public let sceneVectors: [Float]
    let eventAppearance: [Float]
    let eventMotion: [Float]
    let eventFrequency: [Float]
    let eventPhase: [Float]
    /// Word vectors `[words, textDim]`: event words (two per event), scene words, filler words.
    let words: [Float]
    static let fillerCount = 12

    public static let eventNames = ["juggling", "jumping", "waving", "dancing", "clapping", "running", "cooking",
                                    "painting", "skating", "boxing", "singing", "swimming"]
    public static let eventSynonyms = ["tossing balls", "hopping", "gesturing", "grooving", "applauding", "jogging",
                                       "frying food", "drawing", "gliding", "punching", "chanting", "diving"]
    public static let sceneNames = ["kitchen", "park", "beach", "office", "garage", "street", "forest", "gym",
                                    "library", "stadium", "garden", "station"]
    static let fillerWords = ["a", "person", "is", "the", "someone", "while", "then", "in", "of", "with", "and", "they"]

    public init(config: Config) {
        self.config = config
        var g = SeededGenerator(seed: config.seed &* 0x9E37_79B9_7F4A_7C15 &+ 17)
        func unitVectors(_ n: Int, _ d: Int) -> [Float] {
            var out = [Float](repeating: 0, count: n * d)
            for i in 0..<n {
                var norm: Float = 0
                for j in 0..<d {
                    let x = g.nextNormal()
                    out[i * d + j] = x
                    norm += x * x
                }
                let inv = 1 / norm.squareRoot()
                for j in 0..<d { out[i * d + j] *= inv }
            }
            return out
        }
        sceneVectors = unitVectors(config.scenes, config.videoDim)
        eventAppearance = unitVectors(config.events, config.videoDim)
        eventMotion = unitVectors(config.events, config.videoDim)
        eventFrequency = (0..<config.events).map { _ in g.nextUniform(in: 0.6, 2.2) }
        eventPhase = (0..<config.events).map { _ in g.nextUniform(in: 0, 2 * Float.pi) }
        words = unitVectors(2 * config.events + config.scenes + Self.fillerCount, config.textDim)
    }

    /// The correlated scene of an event.
    public func correlatedScene(_ event: Int) -> Int { event % config.scenes }

    public func eventName(_ e: Int) -> String { e < Self.eventNames.count ? Self.eventNames[e] : "event\(e)" }
    public func sceneName(_ s: Int) -> String { s < Self.sceneNames.count ? Self.sceneNames[s] : "scene\(s)" }

    /// Generates a split in memory: `train`, `val` (same distribution) or `shifted`.
    public func split(_ name: String) -> MomentSplit {
        var sink = MemorySplitBuilder(name: name)
        // The in-memory builder never throws.
        try! generate(name, into: &sink)
        return sink.finish(info)
    }

    /// What describes every split of this benchmark.
    public var info: SplitInfo {
        SplitInfo(clipLength: 2, featureDim: config.videoDim, tef: config.tef, textDim: config.textDim, hasSaliency: true,
                  sceneVectors: sceneVectors, sceneNoise: config.clipNoise)
    }

    /// The number of videos (= queries) of a split.
    public func count(_ name: String) -> Int {
        switch name {
        case "train": return config.trainVideos
        case "val": return config.valVideos
        case "shifted": return config.shiftedVideos
        default: preconditionFailure("unknown synthetic split \(name)")
        }
    }

    /// Generates a split video by video into `sink`, so that memory does not grow with its size.
    public func generate<Sink: SplitSink>(_ name: String, into sink: inout Sink, progress: ((Int, Int) -> Void)? = nil) throws {
        let count = self.count(name)
        let splitCode: UInt64 = name == "train" ? 1 : name == "val" ? 2 : 3
        for i in 0..<count {
            var g = SeededGenerator(seed: (config.seed &* 1_000_003 &+ splitCode) &* 0x2545_F491_4F6C_DD1D &+ UInt64(i))
            let video = makeVideo(&g, shifted: name == "shifted")
            let vid = "\(name)_\(String(format: "%05d", i))"
            var rows: [Float] = []
            rows.reserveCapacity(video.scenes.count * (config.videoDim + (config.tef ? 2 : 0)))
            for t in 0..<video.scenes.count {
                rows += clipFeatures(&g, t: t, video: video)
            }
            try sink.addVideo(vid: vid, duration: Double(video.scenes.count) * 2, rows: rows, clipScene: video.scenes.map(Int32.init))

            let (text, tokenVectors) = makeQuery(&g, video: video)
            var relevant: [UInt8] = [], saliency: [Int32] = []
            for t in 0..<video.scenes.count {
                let inside = t >= video.event.lowerBound && t < video.event.upperBound
                relevant.append(inside ? 1 : 0)
                for _ in 0..<3 { saliency.append(inside ? saliencyScore(&g, t: t, window: video.event) : 0) }
            }
            try sink.addQuery(QueryRecord(
                qid: String(i + Int(splitCode) * 100_000), text: text, videoIndex: i, tokens: tokenVectors,
                windows: [[Double(video.event.lowerBound * 2), Double(video.event.upperBound * 2)]],
                saliency: saliency, relevant: relevant, eventType: video.eventType, distractorType: video.distractorType,
                distractorWindow: [Double(video.distractor.lowerBound * 2), Double(video.distractor.upperBound * 2)]))
            progress?(i + 1, count)
        }
    }

    struct Video {
        var scenes: [Int]
        var eventType: Int
        var event: Range<Int>
        var distractorType: Int
        var distractor: Range<Int>
    }

    /// Lays out one video: segments for the queried event, the distractor event, a decoy (shifted only)
    /// and filler scenes, in random order.
    func makeVideo(_ g: inout SeededGenerator, shifted: Bool) -> Video {
        let s = config.scenes
        let length = Int.random(in: config.minClips...config.maxClips, using: &g)
        let e = Int.random(in: 0..<config.events, using: &g)
        var e2 = Int.random(in: 0..<(config.events - 1), using: &g)
        if e2 >= e { e2 += 1 }
        let ce = correlatedScene(e), ce2 = correlatedScene(e2)
        func otherScene(excluding: Set<Int>) -> Int {
            let choices = (0..<s).filter { !excluding.contains($0) }
            return choices.isEmpty ? Int.random(in: 0..<s, using: &g) : choices[Int.random(in: 0..<choices.count, using: &g)]
        }
        let eventScene: Int
        if shifted || Double(g.nextUniform()) >= config.rho {
            eventScene = otherScene(excluding: [ce, ce2])
        } else {
            eventScene = ce
        }
        // Budget: each event 1..20 clips with 1-3 clips of its scene on both sides.
        let maxEvent = max(1, min(20, length / (shifted ? 5 : 4)))
        let eventLength = Int.random(in: 1...maxEvent, using: &g)
        let distractorLength = Int.random(in: 1...maxEvent, using: &g)
        var segments: [(scene: Int, length: Int, event: Int?, eventLength: Int)] = []
        func pad() -> Int { Int.random(in: 1...3, using: &g) }
        segments.append((eventScene, eventLength + pad() + pad(), e, eventLength))
        segments.append((ce2, distractorLength + pad() + pad(), e2, distractorLength))
        if shifted { segments.append((ce, eventLength + pad() + pad(), nil, 0)) }
        var used = segments.reduce(0) { $0 + $1.length }
        // Shrink padding if the segments do not fit.
        while used > length {
            if let i = segments.indices.max(by: { segments[$0].length - segments[$0].eventLength < segments[$1].length - segments[$1].eventLength }),
               segments[i].length - segments[i].eventLength > (segments[i].event == nil ? 1 : 0) {
                segments[i].length -= 1
                used -= 1
            } else {
                break
            }
        }
        // Fillers: scenes that are not the queried event's correlated scene (so c(e) marks the event in train).
        var remaining = length - used
        while remaining > 0 {
            let n = remaining <= 6 ? remaining : Int.random(in: 3...min(remaining, 12), using: &g)
            segments.append((otherScene(excluding: [ce, eventScene]), n, nil, 0))
            remaining -= n
        }
        segments.shuffle(using: &g)
        var scenes: [Int] = []
        var event = 0..<0, distractor = 0..<0
        for seg in segments {
            let start = scenes.count
            if let type = seg.event {
                let offset = Int.random(in: 0...(seg.length - seg.eventLength), using: &g)
                let window = (start + offset)..<(start + offset + seg.eventLength)
                if type == e { event = window } else { distractor = window }
            }
            scenes += Array(repeating: seg.scene, count: seg.length)
        }
        return Video(scenes: scenes, eventType: e, event: event, distractorType: e2, distractor: distractor)
    }

    /// One clip: scene + noise (+ event appearance and motion inside an event window), L2-normalised as
    /// real features are at ingestion, then the temporal endpoint features.
    func clipFeatures(_ g: inout SeededGenerator, t: Int, video: Video) -> [Float] {
        let d = config.videoDim
        var x = [Float](repeating: 0, count: d)
        let scene = video.scenes[t]
        for j in 0..<d { x[j] = sceneVectors[scene * d + j] + config.clipNoise * g.nextNormal() }
        for (type, window) in [(video.eventType, video.event), (video.distractorType, video.distractor)] where window.contains(t) {
            let tau = Float(t - window.lowerBound)
            let wave = config.eventMotion * sin(eventFrequency[type] * tau + eventPhase[type])
            for j in 0..<d { x[j] += config.eventAppearance * eventAppearance[type * d + j] + wave * eventMotion[type * d + j] }
        }
        var norm: Float = 0
        for v in x { norm += v * v }
        let inv = 1 / (norm.squareRoot() + 1e-5)
        for j in 0..<d { x[j] *= inv }
        if config.tef {
            let n = Float(video.scenes.count)
            x += [Float(t) / n, Float(t + 1) / n]
        }
        return x
    }

    /// The raw (unnormalised, no tef) background of a clip of `scene`: what the `erase` mask puts in place
    /// of a ground-truth clip.
    public func background(scene: Int, generator g: inout SeededGenerator) -> [Float] {
        let d = config.videoDim
        return (0..<d).map { sceneVectors[scene * d + $0] + config.clipNoise * g.nextNormal() }
    }

    func makeQuery(_ g: inout SeededGenerator, video: Video) -> (String, [Float]) {
        let e = video.eventType
        let sceneWord = 2 * config.events + video.scenes[video.event.lowerBound]
        let fillerBase = 2 * config.events + config.scenes
        let synonym = g.nextUniform() < 0.5
        var wordIDs: [Int] = [synonym ? config.events + e : e]
        var names: [String] = [synonym ? (e < Self.eventSynonyms.count ? Self.eventSynonyms[e] : "event\(e) alt") : eventName(e)]
        if g.nextUniform() < 0.3 {
            wordIDs.append(sceneWord)
            names.append("in the " + sceneName(video.scenes[video.event.lowerBound]))
        }
        let total = Int.random(in: 3...8, using: &g)
        var fillers: [Int] = []
        while wordIDs.count + fillers.count < total { fillers.append(Int.random(in: 0..<Self.fillerCount, using: &g)) }
        // Event word after one or two fillers, then the rest: word order varies, the event word stays.
        let lead = min(fillers.count, Int.random(in: 0...2, using: &g))
        let order = fillers.prefix(lead).map { fillerBase + $0 } + wordIDs + fillers.dropFirst(lead).map { fillerBase + $0 }
        let text = (fillers.prefix(lead).map { Self.fillerWords[$0] } + names + fillers.dropFirst(lead).map { Self.fillerWords[$0] })
            .joined(separator: " ")
        let dt = config.textDim
        var out: [Float] = []
        out.reserveCapacity(order.count * dt)
        let noise = config.textNoise / Float(dt).squareRoot()
        for w in order {
            var v = (0..<dt).map { words[w * dt + $0] + noise * g.nextNormal() }
            var norm: Float = 0
            for x in v { norm += x * x }
            let inv = 1 / (norm.squareRoot() + 1e-5)
            for j in 0..<dt { v[j] *= inv }
            out += v
        }
        return (text, out)
    }

    func saliencyScore(_ g: inout SeededGenerator, t: Int, window: Range<Int>) -> Int32 {
        let mid = Float(window.lowerBound + window.upperBound - 1) / 2
        let half = Float(window.count) / 2 + 0.5
        let base = 4 * (1 - abs(Float(t) - mid) / half) + 0.6 * g.nextNormal()
        return Int32(max(1, min(4, base.rounded())))
    }
}
