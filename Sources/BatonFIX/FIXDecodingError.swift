/// What was wrong with the bytes of one message, and where.
///
/// `offset` counts bytes from the start of the stream given to the decoder (not from the
/// start of the message), so a log line points at the exact byte of a capture.
public struct FIXDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The message does not start with `8=`.
        case missingBeginString
        /// BeginString(8) is empty, too long, unterminated or not `FIX…`.
        case garbledBeginString
        /// The second field is not BodyLength(9).
        case missingBodyLength
        /// BodyLength(9) is empty or has a non-digit.
        case bodyLengthNotANumber
        /// BodyLength(9) exceeds the decoder's maximum message size.
        case bodyLengthTooLarge(limit: Int)
        /// The bytes where BodyLength(9) says the body ends are not `10=`.
        case checkSumFieldMissing
        /// CheckSum(10) is not three digits followed by SOH.
        case checkSumNotANumber
        /// CheckSum(10) disagrees with the sum of the bytes.
        case checkSumMismatch(declared: Int, computed: Int)
        /// A field's tag is empty, not digits, zero, or too long.
        case tagNotAPositiveInteger
        /// A field has no `=` before its SOH.
        case missingEquals
        /// `tag=` immediately followed by SOH.
        case emptyValue
        /// A field that may appear once (header, trailer) appears again.
        case duplicateTag
        /// MsgType(35) is missing or is not the third field.
        case msgTypeNotThird
        /// A DATA field's declared length (from its LENGTH field) does not end on a SOH.
        case dataLengthMismatch(declared: Int)
        /// A DATA field whose LENGTH field came earlier but not right before it: FIX reads a DATA
        /// field's length from the field before it, so the two must be adjacent.
        case dataFieldApartFromLength(lengthTag: Int)
        /// A field of the body is not terminated by SOH.
        case unterminatedField
    }

    public var kind: Kind
    /// Byte offset in the stream of the offending byte or field.
    public var offset: Int
    /// Byte offset in the stream where the offending message starts.
    public var messageOffset: Int
    public var tag: Int?
    /// The offending text (truncated to 64 bytes, non-printable bytes escaped).
    public var value: String?
    /// Recovered from a message whose framing and checksum were sound, so the session can answer
    /// with a Reject(3) naming it. Nil for garbled framing, which FIX says to ignore.
    public var msgSeqNum: Int?
    public var msgType: String?

    public init(
        _ kind: Kind, offset: Int, messageOffset: Int, tag: Int? = nil, value: String? = nil,
        msgSeqNum: Int? = nil, msgType: String? = nil
    ) {
        self.kind = kind
        self.offset = offset
        self.messageOffset = messageOffset
        self.tag = tag
        self.value = value
        self.msgSeqNum = msgSeqNum
        self.msgType = msgType
    }

    /// Framing errors (BeginString, BodyLength, CheckSum): the message boundaries themselves are
    /// in doubt, so FIX says the message is garbled and must be ignored, not rejected.
    public var isGarbled: Bool {
        switch kind {
        case .missingBeginString, .garbledBeginString, .missingBodyLength, .bodyLengthNotANumber,
            .bodyLengthTooLarge, .checkSumFieldMissing, .checkSumNotANumber, .checkSumMismatch:
            return true
        case .tagNotAPositiveInteger, .missingEquals, .emptyValue, .duplicateTag, .msgTypeNotThird,
            .dataLengthMismatch, .dataFieldApartFromLength, .unterminatedField:
            return false
        }
    }

    /// The SessionRejectReason(373) a Reject(3) for this error carries.
    public var sessionRejectReason: FIXSessionRejectReason {
        switch kind {
        case .tagNotAPositiveInteger: return .invalidTagNumber
        case .missingEquals, .unterminatedField, .dataLengthMismatch, .dataFieldApartFromLength, .msgTypeNotThird:
            return .incorrectDataFormat
        case .emptyValue: return .tagSpecifiedWithoutValue
        case .duplicateTag: return .tagAppearsMoreThanOnce
        default: return .other
        }
    }

    public var description: String {
        var what: String
        switch kind {
        case .missingBeginString: what = "message does not start with BeginString(8)"
        case .garbledBeginString: what = "BeginString(8) is garbled"
        case .missingBodyLength: what = "BodyLength(9) is not the second field"
        case .bodyLengthNotANumber: what = "BodyLength(9) is not a number"
        case .bodyLengthTooLarge(let limit): what = "BodyLength(9) exceeds the \(limit)-byte limit"
        case .checkSumFieldMissing: what = "no CheckSum(10) where BodyLength(9) says the body ends"
        case .checkSumNotANumber: what = "CheckSum(10) is not three digits"
        case .checkSumMismatch(let declared, let computed):
            what =
                "CheckSum(10) is \(FIXMessage.threeDigits(declared)) but the bytes sum to "
                + FIXMessage.threeDigits(computed)
        case .tagNotAPositiveInteger: what = "tag is not a positive integer"
        case .missingEquals: what = "field has no '='"
        case .emptyValue: what = "field has an empty value"
        case .duplicateTag: what = "tag appears more than once"
        case .msgTypeNotThird: what = "MsgType(35) is not the third field"
        case .dataLengthMismatch(let declared): what = "DATA field does not end after its declared \(declared) bytes"
        case .dataFieldApartFromLength(let lengthTag): what = "DATA field does not follow its length field \(lengthTag) directly"
        case .unterminatedField: what = "field is not terminated by SOH"
        }
        if let tag { what += ", tag \(tag)" }
        if let value { what += ", value \"\(value)\"" }
        return "\(what) at byte \(offset) (message starting at byte \(messageOffset))"
    }
}

/// SessionRejectReason(373) values of FIX 4.4.
public enum FIXSessionRejectReason: Int, Hashable, Sendable, CaseIterable {
    case invalidTagNumber = 0
    case requiredTagMissing = 1
    case tagNotDefinedForMessageType = 2
    case undefinedTag = 3
    case tagSpecifiedWithoutValue = 4
    case valueIncorrect = 5
    case incorrectDataFormat = 6
    case decryptionProblem = 7
    case signatureProblem = 8
    case compIDProblem = 9
    case sendingTimeAccuracyProblem = 10
    case invalidMsgType = 11
    case xmlValidationError = 12
    case tagAppearsMoreThanOnce = 13
    case tagSpecifiedOutOfRequiredOrder = 14
    case repeatingGroupFieldsOutOfOrder = 15
    case incorrectNumInGroupCount = 16
    case nonDataValueIncludesFieldDelimiter = 17
    case other = 99
}

/// Renders bytes for an error message: printable ASCII as is, anything else as `\xNN`, at most
/// 64 bytes, so a hostile peer cannot blow up a log line.
func describeBytes(_ bytes: ArraySlice<UInt8>) -> String {
    var out = ""
    for byte in bytes.prefix(64) {
        if byte >= 0x20 && byte < 0x7F {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16, uppercase: true)
            out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    if bytes.count > 64 { out += "…" }
    return out
}
