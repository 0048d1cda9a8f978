import BatonFIX
import Testing

/// Turns `|` into SOH so tests can write messages legibly.
func soh(_ text: String) -> [UInt8] {
    Array(text.utf8).map { $0 == UInt8(ascii: "|") ? 0x01 : $0 }
}

/// Frames a body (everything after 9=…|, before 10=) with a correct BodyLength and CheckSum.
func frame(_ body: String, beginString: String = "FIX.4.4") -> [UInt8] {
    let bodyBytes = soh(body)
    var bytes = soh("8=\(beginString)|9=\(bodyBytes.count)|") + bodyBytes
    let sum = bytes.reduce(UInt8(0), &+)
    bytes += soh("10=" + threeDigits(Int(sum)) + "|")
    return bytes
}

func threeDigits(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}

/// Decodes a whole stream: messages and errors in order.
func decodeAll(_ bytes: [UInt8], chunks: Int? = nil, options: FIXDecoderOptions = FIXDecoderOptions())
    -> (messages: [FIXMessage], errors: [FIXDecodingError])
{
    var decoder = FIXMessageDecoder(options: options)
    var messages: [FIXMessage] = []
    var errors: [FIXDecodingError] = []
    func drain() {
        // Bounded: each call consumes input or returns nil.
        for _ in 0..<(bytes.count + 2) {
            do {
                guard let message = try decoder.next() else { return }
                messages.append(message)
            } catch {
                errors.append(error)
            }
        }
    }
    let size = max(1, chunks ?? bytes.count)
    var index = 0
    while index < bytes.count {
        decoder.append(bytes[index..<min(bytes.count, index + size)])
        index += size
        drain()
    }
    drain()
    return (messages, errors)
}

let sampleTime = FIXTimestamp(millisecondsSinceEpoch: 1_704_164_645_678)  // 2024-01-02 03:04:05.678 UTC

@Suite("FIX codec")
struct FIXCodecTests {
    @Test("known-answer bytes of a Heartbeat, BodyLength and CheckSum computed independently (Python)")
    func knownAnswerHeartbeat() {
        let message = FIXMessage(
            msgType: "0",
            fields: [
                // Deliberately out of header order: the encoder puts 49, 56, 34, 52 in place.
                FIXField(52, "20240102-03:04:05.678"), FIXField(34, "1"), FIXField(56, "VENUE"), FIXField(49, "BATON1"),
            ])
        let expected = soh("8=FIX.4.4|9=54|35=0|49=BATON1|56=VENUE|34=1|52=20240102-03:04:05.678|10=249|")
        #expect(message.encoded() == expected)
        let decoded = decodeAll(expected)
        #expect(decoded.errors.isEmpty)
        #expect(decoded.messages.first?[34] == "1")
        #expect(decoded.messages.first?.msgType == "0")
    }

    @Test("known-answer bytes of a NewOrderSingle built by the typed builder")
    func knownAnswerOrder() {
        var message = FIXNewOrderSingle(
            clOrdID: "b-3-42", symbol: "AAPL", side: .buy,
            transactTime: FIXTimestamp(millisecondsSinceEpoch: 1_704_164_645_000), orderQty: 100, ordType: .limit,
            price: FIXDecimal("101.25"), timeInForce: .day
        ).message
        message.set(49, "BATON1")
        message.set(56, "VENUE")
        message.set(34, "7")
        message.set(52, sampleTime.fixString)
        let expected = soh(
            "8=FIX.4.4|9=129|35=D|49=BATON1|56=VENUE|34=7|52=20240102-03:04:05.678|11=b-3-42|55=AAPL|54=1|"
                + "60=20240102-03:04:05.000|38=100|40=2|44=101.25|59=0|10=074|")
        #expect(message.encoded() == expected)
    }

    @Test("decode → encode gives the same bytes; values with '=' and binary DATA survive")
    func roundTrip() throws {
        let samples: [[UInt8]] = [
            frame("35=0|49=A|56=B|34=1|52=20240102-03:04:05.678|"),
            frame("35=1|49=A|56=B|34=2|52=20240102-03:04:05.678|112=x=y=z|"),
            frame("35=D|49=A|56=B|34=3|52=20240102-03:04:05.678|95=5|96=a\u{01}b=c|11=X|"),
            frame("35=A|49=A|56=B|34=1|52=20240102-03:04:05.678|98=0|108=30|141=Y|"),
        ]
        for bytes in samples {
            let decoded = decodeAll(bytes)
            #expect(decoded.errors.isEmpty, "\(decoded.errors)")
            let message = try #require(decoded.messages.first)
            #expect(message.encoded() == bytes)
        }
        let raw = try #require(decodeAll(samples[2]).messages.first)
        #expect(raw.fields.first { $0.tag == 96 }?.value == [0x61, 0x01, 0x62, 0x3D, 0x63])
    }

    @Test("a stream split at every byte, or in chunks of any size, gives the same messages")
    func splitsEverywhere() {
        let stream =
            frame("35=0|49=A|56=B|34=1|52=20240102-03:04:05.678|")
            + frame("35=D|49=A|56=B|34=2|52=20240102-03:04:05.678|95=3|96=\u{01}\u{01}\u{01}|11=X|")
            + frame("35=5|49=A|56=B|34=3|52=20240102-03:04:05.678|58=bye|")
        let whole = decodeAll(stream)
        #expect(whole.messages.count == 3)
        #expect(whole.errors.isEmpty)
        for chunk in 1...stream.count {
            let split = decodeAll(stream, chunks: chunk)
            #expect(split.messages == whole.messages, "chunk size \(chunk)")
            #expect(split.errors.isEmpty, "chunk size \(chunk)")
        }
        // Two pieces, cut at every byte.
        for cut in 0...stream.count {
            var decoder = FIXMessageDecoder()
            var got: [FIXMessage] = []
            decoder.append(stream[..<cut])
            while let m = try? decoder.next() { got.append(m) }
            decoder.append(stream[cut...])
            while let m = try? decoder.next() { got.append(m) }
            #expect(got == whole.messages, "cut at \(cut)")
        }
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var kind: FIXDecodingError.Kind
        var offset: Int
        var tag: Int?
        var testDescription: String { name }
    }

    // Offsets are counted by hand from the start of each input (after the 8 bytes of a
    // leading good Heartbeat where noted, to prove offsets are stream offsets).
    static let errorCases: [ErrorCase] = {
        let good = frame("35=0|49=A|56=B|34=1|52=20240102-03:04:05.678|")
        let g = good.count
        // Body offsets: "8=FIX.4.4|" (10) + "9=NN|" (5) = 15 for two-digit BodyLengths.
        return [
            ErrorCase(
                name: "missing BeginString", bytes: soh("X=FIX.4.4|9=5|35=0|10=000|"), kind: .missingBeginString,
                offset: 0),
            ErrorCase(
                name: "missing BeginString after a good message", bytes: good + soh("9=5|35=0|10=000|"),
                kind: .missingBeginString, offset: g),
            ErrorCase(
                name: "garbled BeginString", bytes: soh("8=XIF.4.4|9=5|35=0|10=000|"), kind: .garbledBeginString,
                offset: 2, tag: 8),
            ErrorCase(
                name: "unterminated BeginString", bytes: soh("8=FIX.4.4.4.4.4.4.4.4.4.4"), kind: .garbledBeginString,
                offset: 2, tag: 8),
            ErrorCase(
                name: "missing BodyLength", bytes: soh("8=FIX.4.4|35=0|10=000|"), kind: .missingBodyLength, offset: 10),
            ErrorCase(
                name: "BodyLength not a number", bytes: soh("8=FIX.4.4|9=1x|35=0|"), kind: .bodyLengthNotANumber,
                offset: 13, tag: 9),
            ErrorCase(
                name: "BodyLength empty", bytes: soh("8=FIX.4.4|9=|35=0|"), kind: .bodyLengthNotANumber, offset: 12,
                tag: 9),
            ErrorCase(
                name: "BodyLength too large", bytes: soh("8=FIX.4.4|9=999999|35=0|"),
                kind: .bodyLengthTooLarge(limit: 256 * 1024), offset: 12, tag: 9),
            ErrorCase(
                name: "BodyLength absurdly long", bytes: soh("8=FIX.4.4|9=12345678901234567890|"),
                kind: .bodyLengthTooLarge(limit: 256 * 1024), offset: 12, tag: 9),
            ErrorCase(
                name: "BodyLength too short (no CheckSum where it says)", bytes: soh("8=FIX.4.4|9=3|35=0|10=000|"),
                kind: .checkSumFieldMissing, offset: 17),
            ErrorCase(
                name: "CheckSum not digits", bytes: soh("8=FIX.4.4|9=5|35=0|10=0x0|"), kind: .checkSumNotANumber,
                offset: 22, tag: 10),
            ErrorCase(
                name: "CheckSum mismatch", bytes: soh("8=FIX.4.4|9=5|35=0|10=000|"),
                kind: .checkSumMismatch(declared: 0, computed: 163), offset: 22, tag: 10),
            ErrorCase(name: "tag not a number", bytes: frame("35=0|4x=1|"), kind: .tagNotAPositiveInteger, offset: 20),
            ErrorCase(name: "tag zero", bytes: frame("35=0|0=1|"), kind: .tagNotAPositiveInteger, offset: 19),
            ErrorCase(name: "tag empty", bytes: frame("35=0|=1|"), kind: .tagNotAPositiveInteger, offset: 19),
            ErrorCase(name: "tag negative", bytes: frame("35=0|-5=1|"), kind: .tagNotAPositiveInteger, offset: 20),
            ErrorCase(name: "missing '='", bytes: frame("35=0|34|"), kind: .missingEquals, offset: 19),
            ErrorCase(name: "empty value", bytes: frame("35=0|34=|"), kind: .emptyValue, offset: 19, tag: 34),
            ErrorCase(
                name: "duplicate header tag", bytes: frame("35=0|34=1|34=2|"), kind: .duplicateTag, offset: 25, tag: 34),
            ErrorCase(
                name: "MsgType not third", bytes: frame("34=1|35=0|"), kind: .msgTypeNotThird, offset: 15, tag: 34),
            ErrorCase(
                name: "body not terminated", bytes: frame("35=0|34=1"), kind: .unterminatedField, offset: 19, tag: 34),
            ErrorCase(
                name: "DATA length past the body", bytes: frame("35=0|95=50|96=abc|"),
                kind: .dataLengthMismatch(declared: 50), offset: 29, tag: 96),
            // Found by the fix fuzzer: read to SOH, this Signature re-encoded beside its
            // SignatureLength (the trailer keeps the pair together) as another message.
            ErrorCase(
                name: "DATA field apart from its length", bytes: frame("35=0|93=3|34=1|89=abc|"),
                kind: .dataFieldApartFromLength(lengthTag: 93), offset: 30, tag: 89),
        ]
    }()

    @Test("every decoder error says what and where", arguments: errorCases)
    func decoderErrors(_ c: ErrorCase) {
        let result = decodeAll(c.bytes)
        let error = result.errors.first
        #expect(error?.kind == c.kind, "\(String(describing: error))")
        #expect(error?.offset == c.offset, "\(String(describing: error))")
        #expect(error?.tag == c.tag, "\(String(describing: error))")
        #expect(error.map { !$0.description.isEmpty } == true)
        // The same errors however the input is split.
        for chunk in [1, 2, 3, 7] {
            let split = decodeAll(c.bytes, chunks: chunk)
            #expect(split.errors == result.errors, "chunk \(chunk)")
            #expect(split.messages == result.messages, "chunk \(chunk)")
        }
    }

    @Test("a field error keeps MsgSeqNum and MsgType for the Reject, and the next message still decodes")
    func fieldErrorRecovery() {
        let bad = frame("35=D|49=A|56=B|34=9|52=20240102-03:04:05.678|11=|")
        let good = frame("35=0|49=A|56=B|34=10|52=20240102-03:04:05.678|")
        let result = decodeAll(bad + good)
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.msgSeqNum == 9)
        #expect(result.errors.first?.msgType == "D")
        #expect(result.errors.first?.isGarbled == false)
        #expect(result.messages.map(\.msgSeqNum) == [10])
    }

    @Test("after a garbled frame the decoder resynchronises on the next message")
    func garbledRecovery() {
        var corrupted = frame("35=0|49=A|56=B|34=1|52=20240102-03:04:05.678|")
        corrupted[20] ^= 0x01  // flips a body byte: checksum mismatch
        let good = frame("35=0|49=A|56=B|34=2|52=20240102-03:04:05.678|")
        let result = decodeAll(soh("garbage|") + corrupted + good)
        #expect(result.errors.count == 2)
        #expect(result.errors.allSatisfy { $0.isGarbled })
        #expect(result.messages.map(\.msgSeqNum) == [2])
    }

    @Test("20,000 seeded garbage inputs never trap and keep the buffer bounded")
    func garbageNeverTraps() {
        var rng = SplitMix64(seed: 0xBA70_F1C5)
        let good = frame("35=D|49=A|56=B|34=3|52=20240102-03:04:05.678|95=3|96=a|b|11=X|")
        let alphabet = soh("0123456789=|8FIX.9")
        var decoded = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8]
            switch rng.next() % 3 {
            case 0:
                // Pure noise, biased towards FIX-looking bytes.
                bytes = (0..<Int(rng.next() % 200)).map { _ in
                    rng.next() % 2 == 0
                        ? alphabet[Int(rng.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: rng.next())
                }
            default:
                // A good message with a few bytes mutated, inserted or deleted.
                bytes = good
                for _ in 0..<(1 + rng.next() % 4) {
                    let i = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 3 {
                    case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                    default: bytes.remove(at: i)
                    }
                }
            }
            let result = decodeAll(bytes + good, chunks: Int(1 + rng.next() % 40))
            decoded += result.messages.count
        }
        // Most inputs are followed by a good message the decoder must find again. Not all: a
        // mutation that enlarges BodyLength makes the decoder wait for bytes that never come,
        // and noise that does not end in SOH hides the next message's start.
        #expect(decoded > 12_000)
    }

    @Test("timestamps and decimals format and parse exactly")
    func values() {
        #expect(sampleTime.fixString == "20240102-03:04:05.678")
        #expect(FIXTimestamp(fixString: "20240102-03:04:05.678") == sampleTime)
        #expect(FIXTimestamp(fixString: "20240102-03:04:05")?.millisecondsSinceEpoch == 1_704_164_645_000)
        #expect(FIXTimestamp(fixString: "20240229-00:00:00") != nil)
        #expect(FIXTimestamp(fixString: "20230229-00:00:00") == nil)
        #expect(FIXTimestamp(fixString: "20241301-00:00:00") == nil)
        #expect(FIXTimestamp(fixString: "20240102-24:00:00") == nil)
        #expect(FIXTimestamp(millisecondsSinceEpoch: -1).fixString == "19691231-23:59:59.999")
        #expect(FIXDecimal("101.25") == FIXDecimal(units: 10125, scale: 2))
        #expect(FIXDecimal("-0.05")?.description == "-0.05")
        #expect(FIXDecimal("100")?.description == "100")
        #expect(FIXDecimal("1.2.3") == nil)
        #expect(FIXDecimal("") == nil)
        #expect(FIXDecimal("-") == nil)
    }
}

/// A small seeded generator, so every garbage run is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
