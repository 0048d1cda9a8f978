/// Limits and field knowledge the decoder needs.
public struct FIXDecoderOptions: Hashable, Sendable {
    /// The largest BodyLength(9) accepted. The decoder buffers at most this much (plus the few
    /// bytes of 8, 9 and 10) for one message, so a peer cannot make it grow without bound.
    public var maxBodyLength: Int
    /// DATA field tag → its LENGTH field tag. A DATA value is read by length, not up to the
    /// next SOH, when its LENGTH field comes right before it.
    public var dataFieldLengthTags: [Int: Int]

    public init(maxBodyLength: Int = 256 * 1024, dataFieldLengthTags: [Int: Int] = FIXDecoderOptions.fix44DataFields) {
        self.maxBodyLength = maxBodyLength
        self.dataFieldLengthTags = dataFieldLengthTags
    }

    /// The DATA fields of FIX 4.4 and their LENGTH fields (the same pairs
    /// `FIXDictionary.dataFieldLengthTags` derives from FIX44.xml; a test checks they agree).
    public static let fix44DataFields: [Int: Int] = [
        89: 93, 91: 90, 96: 95, 213: 212, 349: 348, 351: 350, 353: 352, 355: 354, 357: 356, 359: 358,
        361: 360, 363: 362, 365: 364, 446: 445, 619: 618, 622: 621,
    ]
}

/// A streaming tag=value decoder: append bytes as they arrive, pull whole messages out.
///
/// `next()` returns nil when more bytes are needed and never moves past a message it has not
/// finished, so a message may be split anywhere. It never traps: every malformed input is a
/// `FIXDecodingError` saying what and where. After a garbled frame (`isGarbled`) the decoder
/// skips ahead to the next `<SOH>8=` and carries on; after a field error the frame itself was
/// sound and is consumed whole. Either way the next call continues with the next message.
public struct FIXMessageDecoder: Sendable {
    public let options: FIXDecoderOptions
    private var buffer: [UInt8] = []
    /// Index in `buffer` of the first byte not yet consumed.
    private var start = 0
    /// Stream offset of `buffer[0]`.
    private var bufferOffset = 0
    /// Set after a garbled frame: skip to the next `<SOH>8=` before decoding again.
    private var resynchronizing = false

    /// Bytes longer than this before BeginString's SOH make it garbled.
    static let maxBeginStringLength = 16
    /// BodyLength digits beyond this are refused before they can overflow anything.
    static let maxBodyLengthDigits = 9

    public init(options: FIXDecoderOptions = FIXDecoderOptions()) {
        self.options = options
    }

    /// Bytes received but not yet consumed.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Stream offset of the next byte to decode.
    public var streamOffset: Int { bufferOffset + start }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// Drops everything buffered (on disconnect); stream offsets keep counting.
    public mutating func reset() {
        bufferOffset += buffer.count
        buffer.removeAll(keepingCapacity: true)
        start = 0
        resynchronizing = false
    }

    /// The next complete message, nil if more bytes are needed, or the error of the next one.
    public mutating func next() throws(FIXDecodingError) -> FIXMessage? {
        defer { compact() }
        if resynchronizing {
            guard skipToNextBeginString() else { return nil }
        }
        switch frame() {
        case .needMoreData:
            return nil
        case .garbled(let error):
            // The frame's end is unknown: look for the next message from the byte after this start.
            resynchronizing = true
            start += 1
            throw error
        case .frame(let bodyStart, let bodyEnd, let end, let beginString):
            let messageStart = start
            start = end
            return try parseBody(
                messageStart: messageStart, bodyStart: bodyStart, bodyEnd: bodyEnd, beginString: beginString)
        }
    }

    // MARK: - Framing

    private enum FrameResult {
        case needMoreData
        case garbled(FIXDecodingError)
        case frame(bodyStart: Int, bodyEnd: Int, end: Int, beginString: String)
    }

    private func garbled(_ kind: FIXDecodingError.Kind, at index: Int, tag: Int?, value: ArraySlice<UInt8>?)
        -> FrameResult
    {
        .garbled(
            FIXDecodingError(
                kind, offset: bufferOffset + index, messageOffset: bufferOffset + start, tag: tag,
                value: value.map(describeBytes)))
    }

    /// Checks `expected` at `index` against what has arrived: nil if it matches so far (and
    /// `complete` says whether all of it is there), or the index of the first wrong byte.
    private func match(_ expected: StaticString, at index: Int) -> (mismatch: Int?, complete: Bool) {
        let count = expected.utf8CodeUnitCount
        for k in 0..<count {
            guard index + k < buffer.count else { return (nil, false) }
            let want = expected.withUTF8Buffer { $0[k] }
            if buffer[index + k] != want { return (index + k, false) }
        }
        return (nil, true)
    }

    private func frame() -> FrameResult {
        let end = buffer.count
        guard start < end else { return .needMoreData }

        // 8=<BeginString><SOH>
        let begin = match("8=", at: start)
        if let bad = begin.mismatch {
            // Only bytes up to the wrong one: the error must not depend on how much has arrived.
            return garbled(.missingBeginString, at: bad, tag: nil, value: buffer[start...bad])
        }
        guard begin.complete else { return .needMoreData }
        let valueStart = start + 2
        let scanLimit = min(end, valueStart + Self.maxBeginStringLength + 1)
        guard let soh1 = buffer[valueStart..<scanLimit].firstIndex(of: fixSOH) else {
            if end - valueStart > Self.maxBeginStringLength {
                return garbled(.garbledBeginString, at: valueStart, tag: 8, value: buffer[valueStart..<scanLimit])
            }
            return .needMoreData
        }
        let beginBytes = buffer[valueStart..<soh1]
        guard beginBytes.starts(with: "FIX".utf8) else {
            return garbled(.garbledBeginString, at: valueStart, tag: 8, value: beginBytes)
        }

        // 9=<digits><SOH>
        let lengthTagStart = soh1 + 1
        let nine = match("9=", at: lengthTagStart)
        if let bad = nine.mismatch {
            return garbled(.missingBodyLength, at: bad, tag: nil, value: buffer[lengthTagStart...bad])
        }
        guard nine.complete else { return .needMoreData }
        let digitsStart = lengthTagStart + 2
        var bodyLength = 0
        var index = digitsStart
        while true {
            guard index < end else { return .needMoreData }
            let byte = buffer[index]
            if byte == fixSOH { break }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                return garbled(.bodyLengthNotANumber, at: index, tag: 9, value: buffer[digitsStart...index])
            }
            guard index - digitsStart < Self.maxBodyLengthDigits else {
                return garbled(
                    .bodyLengthTooLarge(limit: options.maxBodyLength), at: digitsStart, tag: 9,
                    value: buffer[digitsStart...index])
            }
            bodyLength = bodyLength * 10 + Int(byte - UInt8(ascii: "0"))
            index += 1
        }
        let soh2 = index
        guard soh2 > digitsStart else {
            return garbled(.bodyLengthNotANumber, at: digitsStart, tag: 9, value: buffer[digitsStart..<digitsStart])
        }
        guard bodyLength <= options.maxBodyLength else {
            return garbled(
                .bodyLengthTooLarge(limit: options.maxBodyLength), at: digitsStart, tag: 9,
                value: buffer[digitsStart..<soh2])
        }

        // <body>10=<3 digits><SOH>
        let bodyStart = soh2 + 1
        let bodyEnd = bodyStart + bodyLength
        let frameEnd = bodyEnd + 7
        guard frameEnd <= end else { return .needMoreData }
        guard match("10=", at: bodyEnd).complete else {
            return garbled(.checkSumFieldMissing, at: bodyEnd, tag: nil, value: buffer[bodyEnd..<frameEnd])
        }
        var declared = 0
        for k in bodyEnd + 3..<bodyEnd + 6 {
            let byte = buffer[k]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                return garbled(.checkSumNotANumber, at: bodyEnd + 3, tag: 10, value: buffer[bodyEnd + 3..<frameEnd])
            }
            declared = declared * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard buffer[bodyEnd + 6] == fixSOH else {
            return garbled(.checkSumNotANumber, at: bodyEnd + 3, tag: 10, value: buffer[bodyEnd + 3..<frameEnd])
        }
        let computed = FIXMessage.checksum(buffer[start..<bodyEnd])
        guard computed == declared else {
            return garbled(
                .checkSumMismatch(declared: declared, computed: computed), at: bodyEnd + 3, tag: 10,
                value: buffer[bodyEnd + 3..<bodyEnd + 6])
        }
        return .frame(
            bodyStart: bodyStart, bodyEnd: bodyEnd, end: frameEnd,
            beginString: String(decoding: beginBytes, as: UTF8.self))
    }

    /// Skips to the byte after the next SOH that is followed by `8=`; false if none has arrived
    /// yet (keeping the last byte, which may be that SOH).
    private mutating func skipToNextBeginString() -> Bool {
        var index = start
        while index + 2 < buffer.count {
            if buffer[index] == fixSOH && buffer[index + 1] == UInt8(ascii: "8")
                && buffer[index + 2] == UInt8(ascii: "=")
            {
                start = index + 1
                resynchronizing = false
                return true
            }
            index += 1
        }
        // Keep up to two bytes: they may be the start of `<SOH>8=`.
        start = max(start, buffer.count - 2)
        return false
    }

    private mutating func compact() {
        if start > 4096 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            bufferOffset += start
            start = 0
        }
    }

    // MARK: - Fields

    /// Tags that occur once per message: the standard header and trailer outside the hop group.
    static let singleOccurrenceTags: Set<Int> = [
        8, 9, 10, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129, 145, 43, 97, 52, 122, 212,
        213, 347, 369, 627, 93, 89,
    ]

    private func parseBody(messageStart: Int, bodyStart: Int, bodyEnd: Int, beginString: String)
        throws(FIXDecodingError) -> FIXMessage
    {
        var fields: [FIXField] = []
        var seenOnce: Set<Int> = []
        var index = bodyStart

        func fail(_ kind: FIXDecodingError.Kind, at offset: Int, tag: Int?, value: ArraySlice<UInt8>?)
            -> FIXDecodingError
        {
            // Recover MsgSeqNum and MsgType from what parsed, or leniently from the raw bytes,
            // so the session can name the message in its Reject.
            var seq = fields.first { $0.tag == 34 }.flatMap { Int($0.string) }
            var type = fields.first { $0.tag == 35 }?.string
            if seq == nil || type == nil {
                let raw = Self.lenientScan(buffer[bodyStart..<bodyEnd])
                seq = seq ?? raw.seq
                type = type ?? raw.type
            }
            return FIXDecodingError(
                kind, offset: bufferOffset + offset, messageOffset: bufferOffset + messageStart, tag: tag,
                value: value.map(describeBytes), msgSeqNum: seq, msgType: type)
        }

        while index < bodyEnd {
            // Tag: digits up to '='.
            var cursor = index
            var tag = 0
            var tagIsDigits = true
            while cursor < bodyEnd && buffer[cursor] != UInt8(ascii: "=") && buffer[cursor] != fixSOH {
                let byte = buffer[cursor]
                if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") && cursor - index < 9 {
                    tag = tag * 10 + Int(byte - UInt8(ascii: "0"))
                } else {
                    tagIsDigits = false
                }
                cursor += 1
            }
            guard cursor < bodyEnd && buffer[cursor] == UInt8(ascii: "=") else {
                throw fail(.missingEquals, at: index, tag: nil, value: buffer[index..<cursor])
            }
            guard tagIsDigits, cursor > index, tag > 0, buffer[index] != UInt8(ascii: "0") else {
                throw fail(.tagNotAPositiveInteger, at: index, tag: nil, value: buffer[index..<cursor])
            }
            let valueStart = cursor + 1
            let valueEnd: Int
            if let lengthTag = options.dataFieldLengthTags[tag], let previous = fields.last, previous.tag == lengthTag,
                let declared = Int(previous.string), declared >= 0
            {
                guard declared <= bodyEnd - valueStart - 1, buffer[valueStart + declared] == fixSOH else {
                    throw fail(.dataLengthMismatch(declared: declared), at: valueStart, tag: tag, value: nil)
                }
                valueEnd = valueStart + declared
            } else {
                // Read to the next SOH only when no length was declared for it: a length field
                // further back would make the same bytes another message once re-encoded with
                // the pair together (the trailer's SignatureLength(93) and Signature(89)).
                if let lengthTag = options.dataFieldLengthTags[tag], fields.last?.tag != lengthTag,
                    fields.contains(where: { $0.tag == lengthTag })
                {
                    throw fail(.dataFieldApartFromLength(lengthTag: lengthTag), at: index, tag: tag, value: nil)
                }
                guard let soh = buffer[valueStart..<bodyEnd].firstIndex(of: fixSOH) else {
                    throw fail(.unterminatedField, at: index, tag: tag, value: buffer[valueStart..<bodyEnd])
                }
                valueEnd = soh
            }
            guard valueEnd > valueStart else {
                throw fail(.emptyValue, at: index, tag: tag, value: nil)
            }
            if fields.isEmpty && tag != FIXTag.msgType {
                throw fail(.msgTypeNotThird, at: index, tag: tag, value: buffer[valueStart..<valueEnd])
            }
            if Self.singleOccurrenceTags.contains(tag) {
                guard seenOnce.insert(tag).inserted else {
                    throw fail(.duplicateTag, at: index, tag: tag, value: buffer[valueStart..<valueEnd])
                }
            }
            fields.append(FIXField(tag, Array(buffer[valueStart..<valueEnd])))
            index = valueEnd + 1
        }
        if fields.isEmpty {
            throw fail(.msgTypeNotThird, at: bodyStart, tag: nil, value: nil)
        }
        return FIXMessage(beginString: beginString, fields: fields)
    }

    /// Finds `<SOH>34=<n><SOH>` and `35=<t><SOH>` in a body without trusting its structure.
    static func lenientScan(_ body: ArraySlice<UInt8>) -> (seq: Int?, type: String?) {
        var seq: Int?
        var type: String?
        var fieldStart = body.startIndex
        while fieldStart < body.endIndex {
            let fieldEnd = body[fieldStart...].firstIndex(of: fixSOH) ?? body.endIndex
            let field = body[fieldStart..<fieldEnd]
            if seq == nil, field.starts(with: "34=".utf8) {
                let digits = field.dropFirst(3)
                if !digits.isEmpty, digits.count < 10, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                    seq = Int(String(decoding: digits, as: UTF8.self))
                }
            } else if type == nil, field.starts(with: "35=".utf8), field.count > 3, field.count <= 8 {
                type = String(decoding: field.dropFirst(3), as: UTF8.self)
            }
            fieldStart = fieldEnd + 1
        }
        return (seq, type)
    }
}
