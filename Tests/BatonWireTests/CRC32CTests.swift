import BatonWire
import Testing

@Suite("CRC32C")
struct CRC32CTests {
    @Test("the standard check value: CRC32C(\"123456789\") = 0xE3069283")
    func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("known values: empty input and 32 zero bytes (RFC 3720 B.4)")
    func knownValues() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test("updating in pieces gives the one-shot checksum")
    func incremental() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        var crc = CRC32C()
        crc.update(bytes[0..<1])
        crc.update(bytes[1..<500])
        bytes[500...].withUnsafeBytes { crc.update($0) }
        #expect(crc.checksum == CRC32C.checksum(bytes))
    }
}
