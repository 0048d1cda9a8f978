/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum every frame ends with.
///
/// Castagnoli rather than the zlib CRC-32 because it detects more error patterns in the frame sizes
/// we send, and it is the checksum iSCSI, SCTP, ext4 and etcd's WAL use, so tools exist to check it.
/// Table-driven, one byte at a time: frames are small and this keeps the code obviously correct.
public struct CRC32C: Hashable, Sendable {
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The checksum of everything passed to `update` so far.
    public var checksum: UInt32 { state ^ 0xFFFF_FFFF }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes {
                // The index is masked to 0...255 and the table has 256 entries.
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        state = crc
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        state = crc
    }

    /// The CRC-32C of `bytes`; `CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.checksum
    }

    private static let table: [UInt32] = (0..<256).map { (index: UInt32) -> UInt32 in
        var value = index
        for _ in 0..<8 {
            value = (value & 1) != 0 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1
        }
        return value
    }
}
