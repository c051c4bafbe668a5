import LuigiAlgebraic
import LuigiBase

/// One operation of a transaction on a replica group, as a client sends it.
/// `add`, `max`, `min` and `union` commit on the node the client talks to
/// and spread by anti-entropy; `set` (overwrite) needs the group's log, so
/// a transaction holding one must be sent as coordinated.
public enum AlgebraicOp: Equatable, Sendable {
    case add(key: String, delta: Int64)
    case max(key: String, value: Number)
    case min(key: String, value: Number)
    case union(key: String, elements: [Element])
    case set(key: String, value: Number)

    public var key: String {
        switch self {
        case .add(let k, _), .max(let k, _), .min(let k, _), .union(let k, _), .set(let k, _): return k
        }
    }

    /// Records the op in `tx` (its checks: NaN, type conflicts, overflow).
    public func record(in tx: Transaction) throws {
        switch self {
        case .add(let k, let d): try tx.add(k, d)
        case .max(let k, let n): try tx.max(k, n)
        case .min(let k, let n): try tx.min(k, n)
        case .union(let k, let e): try tx.union(k, e)
        case .set(let k, let n): try tx.set(k, n)
        }
    }

    func write(to w: inout ByteWriter) {
        switch self {
        case .add(let k, let d): w.u8(1); w.string(k); w.zigzag(d)
        case .max(let k, let n): w.u8(2); w.string(k); Update.write(n, to: &w)
        case .min(let k, let n): w.u8(3); w.string(k); Update.write(n, to: &w)
        case .union(let k, let elements):
            w.u8(4); w.string(k); w.varint(UInt64(elements.count))
            for e in elements { Update.write(e, to: &w) }
        case .set(let k, let n): w.u8(5); w.string(k); Update.write(n, to: &w)
        }
    }

    static func read(from r: inout ByteReader) throws -> AlgebraicOp {
        let tag = try r.u8()
        let key = try r.utf8()
        try ClientRequest.checkKey(key)
        switch tag {
        case 1: return .add(key: key, delta: try r.zigzag())
        case 2: return .max(key: key, value: try checkedNumber(&r))
        case 3: return .min(key: key, value: try checkedNumber(&r))
        case 4:
            let count = try r.count()
            guard count <= AlgebraicLimits.maxElements else {
                throw LuigiError.invalidArgument("a union of \(count) elements exceeds \(AlgebraicLimits.maxElements)")
            }
            return .union(key: key, elements: try (0..<count).map { _ in try Update.readElement(&r) })
        case 5: return .set(key: key, value: try checkedNumber(&r))
        default: throw LuigiError.decode("unknown algebraic op \(tag)")
        }
    }

    private static func checkedNumber(_ r: inout ByteReader) throws -> Number {
        let n = try Update.readNumber(&r)
        if case .float(let d) = n, d.isNaN { throw LuigiError.invalidArgument("NaN is not a valid number") }
        return n
    }

    static func writeList(_ ops: [AlgebraicOp], to w: inout ByteWriter) {
        w.varint(UInt64(ops.count))
        for op in ops { op.write(to: &w) }
    }

    static func readList(_ r: inout ByteReader) throws -> [AlgebraicOp] {
        let count = try r.count()
        guard (1...AlgebraicLimits.maxOps).contains(count) else {
            throw LuigiError.invalidArgument("a transaction needs 1...\(AlgebraicLimits.maxOps) ops, got \(count)")
        }
        return try (0..<count).map { _ in try read(from: &r) }
    }
}

public enum AlgebraicLimits {
    public static let maxOps = 10_000
    public static let maxElements = 100_000
}

/// A replica's value of a key as a reply carries it: absent, or the kind
/// and its value (a counter is a 128-bit sum: two 64-bit halves).
public enum WireValue {
    public static func encode(_ value: Value?) -> [UInt8] {
        var w = ByteWriter()
        switch value {
        case nil: w.u8(0)
        case .counter(let sum)?:
            w.u8(1)
            w.u64le(UInt64(truncatingIfNeeded: sum))
            w.u64le(UInt64(truncatingIfNeeded: sum >> 64))
        case .max(let n)?: w.u8(2); Update.write(n, to: &w)
        case .min(let n)?: w.u8(3); Update.write(n, to: &w)
        case .set(let elements)?:
            w.u8(4); w.varint(UInt64(elements.count))
            for e in elements.sorted() { Update.write(e, to: &w) }
        case .register(let n)?: w.u8(5); Update.write(n, to: &w)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Value? {
        var r = ByteReader(bytes)
        let value: Value?
        switch try r.u8() {
        case 0: value = nil
        case 1:
            let low = try r.u64le(), high = try r.u64le()
            value = .counter(Int128(Int64(bitPattern: high)) << 64 | Int128(low))
        case 2: value = .max(try Update.readNumber(&r))
        case 3: value = .min(try Update.readNumber(&r))
        case 4:
            let count = try r.count()
            value = .set(Set(try (0..<count).map { _ in try Update.readElement(&r) }))
        case 5: value = .register(try Update.readNumber(&r))
        case let tag: throw LuigiError.decode("unknown value kind \(tag)")
        }
        try r.expectEnd("value")
        return value
    }
}
