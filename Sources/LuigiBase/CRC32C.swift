import CCRC32C

/// CRC-32C (Castagnoli), the checksum of every Luigi encoding and WAL record:
/// the CPU's crc32 instruction when it has one (x86-64 SSE4.2), else
/// slicing-by-8 over contiguous bytes (eight table lookups per 8 bytes).
public enum CRC32C {
    /// Checked once: does this CPU have the instruction?
    static let hardware = lu_crc32c_hw_available() != 0

    /// tables[k][b]: the CRC of byte b followed by k zero bytes.
    @usableFromInline static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            t[0][byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 { t[k][byte] = (t[k - 1][byte] >> 8) ^ t[0][Int(t[k - 1][byte] & 0xFF)] }
        }
        return t
    }()

    public static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard hardware, let base = buffer.baseAddress else { return software(buffer) }
        return lu_crc32c_hw(0xFFFF_FFFF, base, buffer.count) ^ 0xFFFF_FFFF
    }

    /// The table-driven CRC (also the reference the instruction is tested against).
    static func software(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
        let t = tables
        var crc: UInt32 = 0xFFFF_FFFF
        var i = 0
        let n = buffer.count
        t[0].withUnsafeBufferPointer { t0 in
        t[1].withUnsafeBufferPointer { t1 in
        t[2].withUnsafeBufferPointer { t2 in
        t[3].withUnsafeBufferPointer { t3 in
        t[4].withUnsafeBufferPointer { t4 in
        t[5].withUnsafeBufferPointer { t5 in
        t[6].withUnsafeBufferPointer { t6 in
        t[7].withUnsafeBufferPointer { t7 in
            while i + 8 <= n {
                let lo = crc ^ (UInt32(buffer[i]) | UInt32(buffer[i + 1]) << 8 | UInt32(buffer[i + 2]) << 16
                    | UInt32(buffer[i + 3]) << 24)
                crc = t7[Int(lo & 0xFF)] ^ t6[Int((lo >> 8) & 0xFF)] ^ t5[Int((lo >> 16) & 0xFF)] ^ t4[Int(lo >> 24)]
                    ^ t3[Int(buffer[i + 4])] ^ t2[Int(buffer[i + 5])] ^ t1[Int(buffer[i + 6])] ^ t0[Int(buffer[i + 7])]
                i += 8
            }
            while i < n {
                crc = t0[Int((crc ^ UInt32(buffer[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
        }}}}}}}}
        return crc ^ 0xFFFF_FFFF
    }

    @inlinable
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { checksum($0) }
    }
}
