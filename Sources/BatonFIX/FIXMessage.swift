/// The field separator of the tag=value encoding (SOH).
public let fixSOH: UInt8 = 0x01

/// One tag=value pair. Values are bytes because DATA fields (RawData(96), SecureData(91) …) may
/// hold anything, SOH included; every other field is ASCII text.
public struct FIXField: Hashable, Sendable, CustomStringConvertible {
    public var tag: Int
    public var value: [UInt8]

    public init(_ tag: Int, _ value: [UInt8]) {
        self.tag = tag
        self.value = value
    }

    public init(_ tag: Int, _ value: String) {
        self.init(tag, Array(value.utf8))
    }

    /// The value as text (invalid UTF-8 is repaired, so use `value` for DATA fields).
    public var string: String { String(decoding: value, as: UTF8.self) }

    /// Secrets never reach a log line through this: Password(554), NewPassword(925) and the
    /// DATA fields that carry credentials or signatures are shown as `***`.
    public var description: String { FIXTag.redacted.contains(tag) ? "\(tag)=***" : "\(tag)=\(string)" }
}

/// Well-known tags of the standard header, trailer and the session messages.
public enum FIXTag {
    public static let beginString = 8
    public static let bodyLength = 9
    public static let checkSum = 10
    public static let msgType = 35
    public static let senderCompID = 49
    public static let targetCompID = 56
    public static let msgSeqNum = 34
    public static let sendingTime = 52
    public static let possDupFlag = 43
    public static let possResend = 97
    public static let origSendingTime = 122
    public static let signatureLength = 93
    public static let signature = 89
    public static let beginSeqNo = 7
    public static let endSeqNo = 16
    public static let newSeqNo = 36
    public static let gapFillFlag = 123
    public static let testReqID = 112
    public static let heartBtInt = 108
    public static let resetSeqNumFlag = 141
    public static let encryptMethod = 98
    public static let text = 58
    public static let refSeqNum = 45
    public static let refTagID = 371
    public static let refMsgType = 372
    public static let sessionRejectReason = 373
    public static let username = 553
    public static let password = 554
    public static let newPassword = 925
    /// Tags whose values `description` hides: passwords, and RawData(96) / SecureData(91) /
    /// Signature(89), which brokers use for logon secrets and signatures.
    public static let redacted: Set<Int> = [password, newPassword, 96, 91, signature]
}

/// A FIX message as an ordered list of fields.
///
/// `fields` holds everything except BeginString(8), BodyLength(9) and CheckSum(10), which the
/// encoder computes; MsgType(35) is one of the fields. Field order is kept as given (or as
/// received), which repeating groups depend on; `encoded()` only moves standard-header fields to
/// the front and trailer fields to the end.
public struct FIXMessage: Hashable, Sendable, CustomStringConvertible {
    public var beginString: String
    public var fields: [FIXField]

    public init(beginString: String = "FIX.4.4", fields: [FIXField]) {
        self.beginString = beginString
        self.fields = fields
    }

    /// A message of the given type with the given body fields (header fields may be included).
    public init(beginString: String = "FIX.4.4", msgType: String, fields: [FIXField] = []) {
        self.init(beginString: beginString, fields: [FIXField(FIXTag.msgType, msgType)] + fields)
    }

    public var msgType: String? { self[FIXTag.msgType] }

    public var msgSeqNum: Int? { self[FIXTag.msgSeqNum].flatMap { Int($0) } }

    /// PossDupFlag(43)=Y: a retransmission the receiver may already have seen.
    public var isPossDup: Bool { self[FIXTag.possDupFlag] == "Y" }

    /// The first value of a tag as text.
    public subscript(tag: Int) -> String? {
        fields.first { $0.tag == tag }?.string
    }

    /// Every value of a tag, in order (repeating groups).
    public func values(_ tag: Int) -> [String] {
        fields.filter { $0.tag == tag }.map(\.string)
    }

    public func contains(_ tag: Int) -> Bool { fields.contains { $0.tag == tag } }

    /// Replaces the first occurrence of a tag, or appends the field.
    public mutating func set(_ tag: Int, _ value: String) {
        if let i = fields.firstIndex(where: { $0.tag == tag }) {
            fields[i].value = Array(value.utf8)
        } else {
            fields.append(FIXField(tag, value))
        }
    }

    public mutating func remove(_ tag: Int) {
        fields.removeAll { $0.tag == tag }
    }

    public var description: String {
        "8=\(beginString)|" + fields.map(\.description).joined(separator: "|")
    }

    // MARK: - Encoding

    /// The complete wire bytes: `8=…|9=<body length>|35=…|<header>|<body>|<trailer>|10=<checksum>|`.
    ///
    /// Header fields are put in the standard order (49, 56, …, 34, …, 52, …) whatever order
    /// they were set in, so a message encodes the same way however it was built.
    public func encoded() -> [UInt8] {
        var header: [(rank: Int, index: Int, field: FIXField)] = []
        var body: [FIXField] = []
        var trailer: [FIXField] = []
        var msgTypeField: FIXField?
        for (index, field) in fields.enumerated() {
            switch field.tag {
            case FIXTag.beginString, FIXTag.bodyLength, FIXTag.checkSum:
                continue  // computed below
            case FIXTag.msgType where msgTypeField == nil:
                msgTypeField = field
            case FIXTag.signatureLength, FIXTag.signature:
                trailer.append(field)
            default:
                if let rank = FIXMessage.headerRank[field.tag] {
                    header.append((rank, index, field))
                } else {
                    body.append(field)
                }
            }
        }
        header.sort { ($0.rank, $0.index) < ($1.rank, $1.index) }

        var content: [UInt8] = []
        content.reserveCapacity(fields.reduce(0) { $0 + $1.value.count + 6 })
        func append(_ field: FIXField) {
            content.append(contentsOf: String(field.tag).utf8)
            content.append(UInt8(ascii: "="))
            content.append(contentsOf: field.value)
            content.append(fixSOH)
        }
        if let msgTypeField { append(msgTypeField) }
        for entry in header { append(entry.field) }
        for field in body { append(field) }
        for field in trailer { append(field) }

        var out: [UInt8] = []
        out.reserveCapacity(content.count + 32)
        out.append(contentsOf: "8=\(beginString)\u{01}9=\(content.count)\u{01}".utf8)
        out.append(contentsOf: content)
        let sum = FIXMessage.checksum(out[...])
        out.append(contentsOf: "10=".utf8)
        out.append(contentsOf: FIXMessage.threeDigits(sum).utf8)
        out.append(fixSOH)
        return out
    }

    /// The FIX checksum: the sum of the bytes modulo 256.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> Int {
        var sum: UInt8 = 0
        for byte in bytes { sum &+= byte }
        return Int(sum)
    }

    static func threeDigits(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }

    /// Standard-header tags (after 8, 9, 35) in the order FIX 4.4 lists them. The hop group
    /// (627 and its members) shares one rank so its instances keep their order.
    static let headerRank: [Int: Int] = {
        let order: [[Int]] = [
            [49], [56], [115], [128], [90], [91], [34], [50], [142], [57], [143], [116], [144], [129], [145],
            [43], [97], [52], [122], [212], [213], [347], [369], [627, 628, 629, 630],
        ]
        var ranks: [Int: Int] = [:]
        for (rank, tags) in order.enumerated() {
            for tag in tags { ranks[tag] = rank }
        }
        return ranks
    }()
}
