// libFuzzer target for the peer frame decoder. Built by Fuzz/run.sh with
// `swiftc -sanitize=fuzzer,address`, against RaftCore and BatonWire compiled as modules.
//
// Properties checked on every input (a violation traps, which libFuzzer reports as a crash):
// - decoding never traps, overflows or reads out of bounds (ASan and Swift's own checks);
// - the bytes mean the same whether they arrive in one piece or split at a point taken from
//   the input itself;
// - whatever decodes is canonical: re-encoding the frames gives back exactly the bytes consumed.
import BatonWire

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFrameFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A small maximum some of the time, so the oversize path is reached with short inputs too.
    let maximum = size > 0 && bytes[0] & 1 == 1 ? 256 : WireFormat.defaultMaximumFrameLength
    let configuration = FrameDecoder.Configuration(maximumFrameLength: maximum)

    let whole = decode([bytes[...]], configuration)
    let split = size > 1 ? Int(bytes[size - 1]) % size : 0
    let pieces = decode([bytes[..<split], bytes[split...]], configuration)
    let bytewise = size <= 512 ? decode(bytes.map { [$0][...] }, configuration) : whole

    precondition(whole.frames == pieces.frames && whole.error == pieces.error, "split at \(split) changed the result")
    precondition(
        whole.frames == bytewise.frames && whole.error == bytewise.error, "byte-wise feeding changed the result")

    var position = 0
    for frame in whole.frames {
        guard let encoded = try? frame.encoded(maximumFrameLength: maximum) else {
            preconditionFailure("a decoded frame does not re-encode: \(frame)")
        }
        precondition(Array(bytes[position..<(position + encoded.count)]) == encoded, "non-canonical frame \(frame)")
        position += encoded.count
    }
    return 0
}

private func decode(
    _ chunks: [ArraySlice<UInt8>],
    _ configuration: FrameDecoder.Configuration
) -> (frames: [Frame], error: WireError?) {
    var decoder = FrameDecoder(configuration: configuration)
    var frames: [Frame] = []
    for chunk in chunks {
        decoder.append(chunk)
        do {
            while let frame = try decoder.next() { frames.append(frame) }
        } catch {
            return (frames, error)
        }
    }
    return (frames, nil)
}
