import BatonWire
import RaftCore
import Testing

/// The decoder faces bytes from the network: whatever arrives, it must return frames, ask for more,
/// or throw — never trap. (The libFuzzer target in Fuzz/ explores far more; this keeps a bounded,
/// seeded sample in every `swift test`.)
@Suite("Garbage never crashes the decoder")
struct GarbageTests {
    static let inputCount = 20_000

    @Test("20k seeded inputs: random bytes, mutated frames, random payloads behind a valid header and CRC")
    func garbage() throws {
        var random = SplitMix64(seed: 0xBA70_F022)
        let samples = try WireSamples.frames.map { try $0.frame.encoded() }
        var outcomes = (frames: 0, errors: 0, needMore: 0)
        for i in 0..<Self.inputCount {
            let input: [UInt8]
            switch i % 4 {
            case 0:
                input = (0..<Int.random(in: 0...64, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            case 1:
                // A real frame with a few bytes changed, cut short, or doubled.
                var bytes = samples[Int.random(in: 0..<samples.count, using: &random)]
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                if Bool.random(using: &random) {
                    // Re-seal the changed payload with a correct CRC, so the change reaches the payload
                    // decoder; many such changes (a round, a term, a name's letter) still decode.
                    let payload = Array(bytes[WireFormat.headerLength..<(bytes.count - WireFormat.trailerLength)])
                    bytes = WireSamples.frameBytes(type: bytes[5], cluster: WireSamples.cluster, payload: payload)
                } else if Bool.random(using: &random) {
                    bytes = Array(bytes[..<Int.random(in: 0...bytes.count, using: &random)])
                }
                input = bytes
            default:
                // Header and CRC right, payload arbitrary: this reaches deep into the payload decoder.
                let type = UInt8.random(in: 1...4, using: &random)
                var payload: [UInt8]
                if type == FrameType.raft.rawValue && Bool.random(using: &random) {
                    // A plausible raft prefix with small counts, so that loops are entered.
                    payload = WireSamples.raftPrefix(tag: UInt8.random(in: 0...9, using: &random))
                    for _ in 0..<Int.random(in: 0...12, using: &random) {
                        let small = UInt64.random(in: 0...3, using: &random)
                        payload +=
                            Bool.random(using: &random)
                            ? WireSamples.bigEndian(small, width: 4) : WireSamples.bigEndian(small, width: 8)
                    }
                } else {
                    payload = (0..<Int.random(in: 0...80, using: &random)).map { _ in
                        UInt8.random(in: 0...3, using: &random)
                    }
                }
                input = WireSamples.frameBytes(type: type, payload: payload)
            }
            let whole = decodeAll(input)
            let split = decodeAll(input, chunks: [Int.random(in: 1...7, using: &random), 1, 13])
            // The same bytes mean the same thing however they arrive.
            #expect(whole.frames == split.frames)
            #expect(whole.error == split.error)
            // Whatever decodes is canonical: it re-encodes to the bytes it came from.
            var position = 0
            for frame in whole.frames {
                let bytes = try frame.encoded()
                #expect(Array(input[position..<(position + bytes.count)]) == bytes)
                position += bytes.count
            }
            if whole.error != nil {
                outcomes.errors += 1
            } else if position < input.count {
                outcomes.needMore += 1
            }
            outcomes.frames += whole.frames.count
        }
        // The generator must reach all three outcomes, or this test is weaker than it looks.
        #expect(outcomes.frames > 100)
        #expect(outcomes.errors > 1000)
        #expect(outcomes.needMore > 100)
    }
}
