@testable import LuigiAlgebraic
@testable import LuigiBase
import LuigiCore
import PropertyBased
import Testing

@Suite struct UpdateCodecTests {
    static func sample() throws -> Update {
        let other = Replica(nodeID: 2)
        let r = Replica(nodeID: 1)
        r.apply(try other.commit { try $0.add("x", -3) })
        return try r.commit { tx in
            try tx.add("count", 42)
            try tx.max("hi", .float(2.5))
            try tx.min("lo", .int(-7))
            try tx.union("tags", [.string("é"), .bytes([0, 255]), .int(Int64.min)])
        }
    }

    @Test func roundTrip() throws {
        let u = try Self.sample()
        let decoded = try Update(decoding: u.encoded())
        #expect(decoded == u)
        #expect(decoded.encoded() == u.encoded())
    }

    @Test func everySingleBitFlipIsDetected() throws {
        let bytes = try Self.sample().encoded()
        for i in 0..<bytes.count * 8 {
            var flipped = bytes
            flipped[i / 8] ^= 1 << UInt8(i % 8)
            #expect(throws: LuigiError.self) { try Update(decoding: flipped) }
        }
    }

    @Test func everyTruncationIsDetected() throws {
        let bytes = try Self.sample().encoded()
        for n in 0..<bytes.count {
            #expect(throws: LuigiError.self) { try Update(decoding: Array(bytes[0..<n])) }
        }
    }

    @Test func randomBytesNeverCrash() async {
        await propertyCheck(count: 2000, input: Gen.uint8(in: 0...255).array(of: 0...200)) { raw in
            #expect(throws: LuigiError.self) { try Update(decoding: raw) }
        }
    }

    /// Garbage with a valid header and checksum reaches the structural checks.
    @Test func validlySealedGarbageNeverCrashes() async {
        await propertyCheck(count: 2000, input: Gen.uint8(in: 0...255).array(of: 0...120)) { body in
            var w = ByteWriter()
            w.magic([0x4C, 0x55, 0x50, 0x01])
            w.raw(body)
            w.sealWithChecksum()
            if let u = try? Update(decoding: w.bytes) {
                #expect(u.encoded() == w.bytes)  // only canonical encodings decode
            }
        }
    }

    @Test func unknownVersionIsNamed() throws {
        var bytes = try Self.sample().encoded()
        bytes[3] = 9
        #expect(throws: LuigiError.decode("update: unsupported format version 9")) { try Update(decoding: bytes) }
    }
}

@Suite struct UpdateBatchTests {
    @Test func batchRoundTripsAndDetectsDamage() throws {
        let r = Replica(nodeID: 3)
        let updates = try (0..<20).map { i in try r.commit { try $0.add("k\(i % 3)", Int64(i)) } }
        let bytes = Update.encodeBatch(updates)
        #expect(try Update.decodeBatch(bytes) == updates)
        #expect(try Update.decodeBatch(Update.encodeBatch([])) == [])
        for i in stride(from: 0, to: bytes.count * 8, by: 7) {
            var flipped = bytes
            flipped[i / 8] ^= 1 << UInt8(i % 8)
            #expect(throws: LuigiError.self) { try Update.decodeBatch(flipped) }
        }
        #expect(throws: LuigiError.self) { try Update.decodeBatch(Array(bytes.dropLast())) }
    }
}

@Suite struct CRC32CTests {
    @Test func knownVectors() {
        // RFC 3720 (iSCSI) test vectors for CRC-32C.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func everyLengthAndAlignmentAgreesWithBytewise() {
        func bytewise(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        // Both paths: the CPU instruction (when present, as `checksum` uses
        // it) and the table-driven fallback.
        let data = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for start in 0..<9 {
            for end in start...data.count {
                let expected = bytewise(Array(data[start..<end]))
                #expect(CRC32C.checksum(data[start..<end]) == expected)
                #expect(data[start..<end].withUnsafeBytes { CRC32C.software($0) } == expected)
            }
        }
        let large = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        #expect(large.withUnsafeBytes { CRC32C.software($0) } == CRC32C.checksum(large))
    }
}
