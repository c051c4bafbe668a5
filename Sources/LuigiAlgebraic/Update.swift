import LuigiBase

/// A dot names one update: the origin replica and its sequence number.
public struct Dot: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let origin: UInt64
    public let seq: UInt64

    public init(origin: UInt64, seq: UInt64) {
        self.origin = origin
        self.seq = seq
    }

    public static func < (a: Dot, b: Dot) -> Bool {
        (a.origin, a.seq) < (b.origin, b.seq)
    }

    public var description: String { "(\(origin), \(seq))" }
}

/// The effect of one committed transaction on one key. Ops are normalized at
/// commit: one per key, and a counter op carries the origin's new absolute
/// contribution, so applying it can never overflow and never double-counts.
public enum KeyOp: Equatable, Sendable {
    case counter(contribution: Int64)
    case max(Number)
    case min(Number)
    case union([Element])  // sorted, distinct
    /// Overwrite; of two assigns the larger dot wins (the log's order, as
    /// only the replicated log's origin issues them).
    case assign(Number)

    public var kind: Kind {
        switch self {
        case .counter: return .counter
        case .max: return .max
        case .min: return .min
        case .union: return .set
        case .assign: return .register
        }
    }
}

/// A committed transaction, as shipped between replicas.
public struct Update: Equatable, Sendable {
    public let origin: UInt64
    public let seq: UInt64
    /// The origin's clock right after the commit: `clock[origin] == seq`, the
    /// other entries are the updates it depends on.
    public let clock: VectorClock
    /// Sorted by key, one op per key.
    public let ops: [(key: String, op: KeyOp)]

    public var dot: Dot { Dot(origin: origin, seq: seq) }

    public init(origin: UInt64, seq: UInt64, clock: VectorClock, ops: [(key: String, op: KeyOp)]) throws {
        guard seq >= 1, clock[origin] == seq else {
            throw LuigiError.decode("update (\(origin), \(seq)) has inconsistent clock entry \(clock[origin])")
        }
        for i in ops.indices.dropFirst() where !ops[i - 1].key.utf8.lexicographicallyPrecedes(ops[i].key.utf8) {
            throw LuigiError.decode("update ops are not sorted by distinct key")
        }
        for (_, op) in ops {
            switch op {
            case .max(.float(let d)), .min(.float(let d)), .assign(.float(let d)):
                if d.isNaN { throw LuigiError.decode("update carries NaN") }
            case .union(let elements):
                for i in elements.indices.dropFirst() where !(elements[i - 1] < elements[i]) {
                    throw LuigiError.decode("set elements are not sorted and distinct")
                }
            default:
                break
            }
        }
        self.origin = origin
        self.seq = seq
        self.clock = clock
        self.ops = ops
    }

    public static func == (a: Update, b: Update) -> Bool {
        a.origin == b.origin && a.seq == b.seq && a.clock == b.clock
            && a.ops.count == b.ops.count
            && zip(a.ops, b.ops).allSatisfy { $0.key == $1.key && $0.op == $1.op }
    }

    // MARK: - Encoding
    //
    // "LUP" v1 | origin | seq | clock | op count | ops | CRC-32C
    // op = tag(kind) | key | payload; numbers: 0 + zigzag int or 1 + 8-byte LE
    // double bits; elements: 1 + zigzag int, 2 + utf8, 3 + bytes.
    // Every encoding is canonical, so equal updates have equal bytes.

    static let magic: [UInt8] = [0x4C, 0x55, 0x50, 0x01]  // "LUP" v1

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 32 + clock.count * 4 + ops.count * 16)
        w.magic(Self.magic)
        w.varint(origin)
        w.varint(seq)
        clock.write(to: &w)
        w.varint(UInt64(ops.count))
        for (key, op) in ops {
            w.u8(op.kind.rawValue)
            w.blob(key.utf8)
            switch op {
            case .counter(let c): w.zigzag(c)
            case .max(let n), .min(let n), .assign(let n): Self.write(n, to: &w)
            case .union(let elements):
                w.varint(UInt64(elements.count))
                for e in elements { Self.write(e, to: &w) }
            }
        }
        w.sealWithChecksum()
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "update")
        let origin = try r.varint()
        let seq = try r.varint()
        let clock = try VectorClock.read(from: &r)
        let n = try r.count()
        var ops: [(key: String, op: KeyOp)] = []
        ops.reserveCapacity(n)
        for _ in 0..<n {
            guard let kind = Kind(rawValue: try r.u8()) else { throw LuigiError.decode("unknown op kind") }
            let key = try r.utf8()
            switch kind {
            case .counter: ops.append((key, .counter(contribution: try r.zigzag())))
            case .max: ops.append((key, .max(try Self.readNumber(&r))))
            case .min: ops.append((key, .min(try Self.readNumber(&r))))
            case .set:
                let m = try r.count()
                var elements: [Element] = []
                elements.reserveCapacity(m)
                for _ in 0..<m { elements.append(try Self.readElement(&r)) }
                ops.append((key, .union(elements)))
            case .register: ops.append((key, .assign(try Self.readNumber(&r))))
            }
        }
        try r.expectEnd("update")
        try self.init(origin: origin, seq: seq, clock: clock, ops: ops)
    }

    // MARK: - Batches
    //
    // "LUL" v1 | count | (length, update encoding)* | CRC-32C: one buffer for
    // a delta, so a transport ships and checks it in one piece.

    static let batchMagic: [UInt8] = [0x4C, 0x55, 0x4C, 0x01]  // "LUL" v1

    public static func encodeBatch(_ updates: [Update]) -> [UInt8] {
        var w = ByteWriter(capacity: 8 + updates.count * 32)
        w.magic(batchMagic)
        w.varint(UInt64(updates.count))
        for u in updates { w.blob(u.encoded()) }
        w.sealWithChecksum()
        return w.bytes
    }

    public static func decodeBatch(_ bytes: [UInt8]) throws -> [Update] {
        var r = try ByteReader.sealed(bytes, magic: batchMagic, what: "update batch")
        let n = try r.count()
        var updates: [Update] = []
        updates.reserveCapacity(n)
        for _ in 0..<n { updates.append(try Update(decoding: try r.blob())) }
        try r.expectEnd("update batch")
        return updates
    }

    package static func write(_ n: Number, to w: inout ByteWriter) {
        switch n {
        case .int(let i): w.u8(0); w.zigzag(i)
        case .float(let d): w.u8(1); w.u64le(d.bitPattern)
        }
    }

    package static func readNumber(_ r: inout ByteReader) throws -> Number {
        switch try r.u8() {
        case 0: return .int(try r.zigzag())
        case 1:
            let d = Double(bitPattern: try r.u64le())
            guard !d.isNaN else { throw LuigiError.decode("update carries NaN") }
            return .float(d)
        default: throw LuigiError.decode("unknown number tag")
        }
    }

    package static func write(_ e: Element, to w: inout ByteWriter) {
        switch e {
        case .int(let i): w.u8(1); w.zigzag(i)
        case .string(let s): w.u8(2); w.blob(s.utf8)
        case .bytes(let b): w.u8(3); w.blob(b)
        }
    }

    package static func readElement(_ r: inout ByteReader) throws -> Element {
        switch try r.u8() {
        case 1: return .int(try r.zigzag())
        case 2: return .string(try r.utf8())
        case 3: return .bytes(try r.blob())
        default: throw LuigiError.decode("unknown set element tag")
        }
    }
}
