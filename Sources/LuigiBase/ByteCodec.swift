/// Append-only byte writer for Luigi's canonical binary encodings.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    public mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 {
        bytes.append(contentsOf: data)
    }

    /// LEB128 unsigned varint.
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zigzag-encoded signed varint.
    public mutating func zigzag(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func u32le(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func u64le(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Length-prefixed bytes.
    public mutating func blob<C: Collection>(_ data: C) where C.Element == UInt8 {
        varint(UInt64(data.count))
        raw(data)
    }

    /// A UTF-8 string, length-prefixed.
    public mutating func string(_ s: String) { blob(s.utf8) }

    public mutating func flag(_ b: Bool) { u8(b ? 1 : 0) }

    /// Header: 4 magic bytes (the last is the format version).
    public mutating func magic(_ tag: [UInt8]) { raw(tag) }

    /// Appends the CRC-32C of everything written so far.
    public mutating func sealWithChecksum() { u32le(CRC32C.checksum(bytes)) }

    // In-place framing: a caller reserves a header, writes the body after it,
    // then fills the header in (a reused writer builds many frames with no
    // per-frame arrays).

    public var count: Int { bytes.count }

    public mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

    /// Empties the writer, keeping its storage for the next use.
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    /// Overwrites 4 bytes already written at `offset`.
    public mutating func setU32le(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "setU32le outside the written bytes")
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
    }

    /// CRC-32C of the bytes from `offset` to the end.
    public func checksum(from offset: Int) -> UInt32 { CRC32C.checksum(bytes[offset...]) }
}

/// Bounds-checked reader: every read either succeeds or throws `.decode`;
/// no input can make it trap.
public struct ByteReader {
    private let bytes: [UInt8]
    private var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    /// Verifies magic + trailing CRC-32C and returns a reader over the body.
    public static func sealed(_ bytes: [UInt8], magic: [UInt8], what: String) throws -> ByteReader {
        guard bytes.count >= magic.count + 4 else {
            throw LuigiError.decode("\(what): \(bytes.count) bytes is too short")
        }
        guard bytes.starts(with: magic) else {
            if bytes.starts(with: magic.dropLast()) {
                throw LuigiError.decode("\(what): unsupported format version \(bytes[magic.count - 1])")
            }
            throw LuigiError.decode("\(what): bad magic bytes")
        }
        let bodyEnd = bytes.count - 4
        var stored: UInt32 = 0
        for i in 0..<4 { stored |= UInt32(bytes[bodyEnd + i]) << UInt32(8 * i) }
        guard CRC32C.checksum(bytes[0..<bodyEnd]) == stored else {
            throw LuigiError.decode("\(what): checksum mismatch")
        }
        return ByteReader(bytes, from: magic.count, to: bodyEnd)
    }

    private init(_ bytes: [UInt8], from: Int, to: Int) {
        self.bytes = bytes
        self.offset = from
        self.end = to
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset == end }

    public mutating func u8() throws -> UInt8 {
        guard offset < end else { throw LuigiError.decode("unexpected end of input") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try u8()
            if shift == 63 && byte > 1 { throw LuigiError.decode("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw LuigiError.decode("non-canonical varint") }
                return result
            }
            shift += 7
        }
    }

    public mutating func zigzag() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    public mutating func u32le() throws -> UInt32 {
        guard remaining >= 4 else { throw LuigiError.decode("unexpected end of input") }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        offset += 4
        return value
    }

    public mutating func u64le() throws -> UInt64 {
        guard remaining >= 8 else { throw LuigiError.decode("unexpected end of input") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        offset += 8
        return value
    }

    /// A count of items that each take at least one byte: bounded by the input.
    public mutating func count() throws -> Int {
        let n = try varint()
        guard n <= UInt64(remaining) else { throw LuigiError.decode("count \(n) exceeds input") }
        return Int(n)
    }

    public mutating func blob() throws -> [UInt8] {
        let n = try count()
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    public mutating func utf8() throws -> String {
        let raw = try blob()
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw LuigiError.decode("invalid UTF-8")
        }
        return s
    }

    public mutating func flag() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw LuigiError.decode("bad flag")
        }
    }

    public func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw LuigiError.decode("\(what): \(remaining) trailing bytes") }
    }
}
