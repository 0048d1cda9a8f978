/// Reads big-endian fields from an untrusted payload. Every read checks the remaining length
/// first, so no input can make it read out of bounds, and every failure names the field and the
/// stream offset where it starts.
///
/// Only used inside a `withUnsafeBytes` scope over the payload; it never outlives that scope.
struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    /// The stream offset of `bytes[0]`.
    private let baseOffset: Int

    init(_ bytes: UnsafeRawBufferPointer, baseOffset: Int) {
        self.bytes = bytes
        self.baseOffset = baseOffset
    }

    var remaining: Int { bytes.count - position }
    var streamOffset: Int { baseOffset + position }

    func error(_ kind: WireError.Kind, _ field: String, value: UInt64? = nil) -> WireError {
        WireError(kind, field: field, offset: streamOffset, value: value)
    }

    private mutating func require(_ count: Int, _ field: @autoclosure () -> String) throws(WireError) {
        guard count <= remaining else { throw error(.truncated(needed: count, available: remaining), field()) }
    }

    private mutating func readBigEndian(_ width: Int, _ field: @autoclosure () -> String) throws(WireError) -> UInt64 {
        try require(width, field())
        var value: UInt64 = 0
        for i in 0..<width {
            value = (value << 8) | UInt64(bytes[position + i])
        }
        position += width
        return value
    }

    mutating func readUInt8(_ field: @autoclosure () -> String) throws(WireError) -> UInt8 {
        UInt8(truncatingIfNeeded: try readBigEndian(1, field()))
    }

    mutating func readUInt16(_ field: @autoclosure () -> String) throws(WireError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readBigEndian(2, field()))
    }

    mutating func readUInt32(_ field: @autoclosure () -> String) throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readBigEndian(4, field()))
    }

    mutating func readUInt64(_ field: @autoclosure () -> String) throws(WireError) -> UInt64 {
        try readBigEndian(8, field())
    }

    /// A boolean is one byte, 0 or 1; anything else is corruption, not "true".
    mutating func readBool(_ field: @autoclosure () -> String) throws(WireError) -> Bool {
        let start = self
        let byte = try readUInt8(field())
        switch byte {
        case 0: return false
        case 1: return true
        default:
            throw start.error(.invalidValue(reason: "a boolean is 0 or 1"), field(), value: UInt64(byte))
        }
    }

    /// `count` raw bytes; `count` was already checked against what is left, so a lying length
    /// prefix cannot make us allocate more than the payload holds.
    mutating func readBytes(_ count: Int, _ field: @autoclosure () -> String) throws(WireError) -> [UInt8] {
        try require(count, field())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        position += count
        return [UInt8](slice)
    }

    /// A u32 length followed by that many bytes.
    mutating func readLengthPrefixedBytes(_ field: @autoclosure () -> String) throws(WireError) -> [UInt8] {
        let length = Int(try readUInt32(field() + ".length"))
        return try readBytes(length, field())
    }

    /// A u16 length followed by that many bytes of UTF-8, at most `maximumLength` bytes.
    mutating func readString(_ field: @autoclosure () -> String, maximumLength: Int) throws(WireError) -> String {
        let lengthReader = self
        let length = Int(try readUInt16(field() + ".length"))
        guard length <= maximumLength else {
            throw lengthReader.error(
                .invalidValue(reason: "longer than the maximum of \(maximumLength) bytes"),
                field() + ".length",
                value: UInt64(length)
            )
        }
        let textReader = self
        let utf8 = try readBytes(length, field())
        guard let text = String(validating: utf8, as: UTF8.self) else { throw textReader.error(.invalidUTF8, field()) }
        return text
    }

    /// An element count (u32) for elements of at least `minimumElementSize` bytes each. A count
    /// that could not fit in what is left is refused here, before anything is allocated for it.
    mutating func readCount(_ field: @autoclosure () -> String, minimumElementSize: Int) throws(WireError) -> Int {
        let countReader = self
        let count = Int(try readUInt32(field()))
        let (needed, overflow) = count.multipliedReportingOverflow(by: minimumElementSize)
        guard !overflow, needed <= remaining else {
            throw countReader.error(
                .truncated(needed: overflow ? Int.max : needed, available: remaining),
                field(),
                value: UInt64(count)
            )
        }
        return count
    }

    /// Every field has been read; anything left is an error, so that one payload has one meaning.
    func finish(_ field: @autoclosure () -> String) throws(WireError) {
        guard remaining == 0 else { throw error(.trailingBytes(count: remaining), field()) }
    }
}

/// Appends big-endian fields to a growing frame.
struct WireWriter {
    var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 64) {
        bytes.reserveCapacity(capacity)
    }

    mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    mutating func writeUInt64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    mutating func writeBool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func writeLengthPrefixedBytes(_ value: [UInt8], _ field: String) throws(WireError) {
        guard let length = UInt32(exactly: value.count) else {
            throw WireError(.tooLargeToEncode(limit: Int(UInt32.max)), field: field, offset: bytes.count)
        }
        writeUInt32(length)
        bytes.append(contentsOf: value)
    }

    mutating func writeCount(_ count: Int, _ field: String) throws(WireError) {
        guard let value = UInt32(exactly: count) else {
            throw WireError(.tooLargeToEncode(limit: Int(UInt32.max)), field: field, offset: bytes.count)
        }
        writeUInt32(value)
    }

    mutating func writeString(_ value: String, _ field: String, maximumLength: Int) throws(WireError) {
        let utf8 = Array(value.utf8)
        guard utf8.count <= maximumLength, let length = UInt16(exactly: utf8.count) else {
            throw WireError(.tooLargeToEncode(limit: maximumLength), field: field, offset: bytes.count)
        }
        writeUInt16(length)
        bytes.append(contentsOf: utf8)
    }
}
