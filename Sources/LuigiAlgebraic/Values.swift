import LuigiBase

/// A number held by a MAX, MIN or REGISTER key: an exact 64-bit int or a non-NaN double.
///
/// Numbers are totally ordered so that max/min are a semilattice join and
/// every replica converges bit-identically: ints and doubles compare by exact
/// mathematical value (no lossy conversion); at equal value a double sorts
/// below an int, and -0.0 below +0.0.
public enum Number: Hashable, Sendable, Comparable, CustomStringConvertible {
    case int(Int64)
    case float(Double)

    /// Rejects NaN (for max, min and registers).
    public static func checked(_ value: Double) throws -> Number {
        guard !value.isNaN else {
            throw LuigiError.invalidArgument("NaN is not a valid number: it has no place in a total order")
        }
        return .float(value)
    }

    public static func < (a: Number, b: Number) -> Bool { compare(a, b) < 0 }

    public static func == (a: Number, b: Number) -> Bool { compare(a, b) == 0 }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .int(let i): hasher.combine(0); hasher.combine(i)
        case .float(let d): hasher.combine(1); hasher.combine(d.bitPattern)
        }
    }

    /// -1, 0 or 1. Total: equal only for the same case and the same bits.
    static func compare(_ a: Number, _ b: Number) -> Int {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            return x < y ? -1 : (x > y ? 1 : 0)
        case (.float(let x), .float(let y)):
            if x < y { return -1 }
            if x > y { return 1 }
            // Numerically equal: only ±0 can differ in bits.
            let sx = x.sign == .minus, sy = y.sign == .minus
            return sx == sy ? 0 : (sx ? -1 : 1)
        case (.int(let x), .float(let y)):
            let c = compareExactly(x, y)
            return c != 0 ? c : 1  // equal value: the double sorts first
        case (.float(let x), .int(let y)):
            let c = compareExactly(y, x)
            return c != 0 ? -c : -1
        }
    }

    /// Compares an Int64 with a non-NaN Double by exact value.
    private static func compareExactly(_ i: Int64, _ d: Double) -> Int {
        let twoTo63 = 9_223_372_036_854_775_808.0
        if d >= twoTo63 { return -1 }
        if d < -twoTo63 { return 1 }
        let floor = d.rounded(.down)
        let t = Int64(floor)  // exact: |floor| < 2^63
        if i < t { return -1 }
        if i > t { return 1 }
        return d > floor ? -1 : 0
    }

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .float(let d): return String(d)
        }
    }
}

/// An element of a SET key.
public enum Element: Hashable, Sendable, Comparable {
    case int(Int64)
    case string(String)
    case bytes([UInt8])

    private var rank: Int {
        switch self {
        case .int: return 0
        case .string: return 1
        case .bytes: return 2
        }
    }

    /// Canonical order: ints, then strings (by UTF-8 bytes), then byte strings.
    public static func < (a: Element, b: Element) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y
        case (.string(let x), .string(let y)): return x.utf8.lexicographicallyPrecedes(y.utf8)
        case (.bytes(let x), .bytes(let y)): return x.lexicographicallyPrecedes(y)
        default: return a.rank < b.rank
        }
    }
}

/// The type of a key, fixed by its first op.
public enum Kind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case counter = 1
    case max = 2
    case min = 3
    case set = 4
    /// Overwritten by `Transaction.set`: only through the replicated log,
    /// whose order decides which write is last.
    case register = 5

    public var description: String {
        switch self {
        case .counter: return "counter"
        case .max: return "max"
        case .min: return "min"
        case .set: return "set"
        case .register: return "register"
        }
    }
}

/// The visible value of a key.
public enum Value: Equatable, Sendable {
    case counter(Int128)
    case max(Number)
    case min(Number)
    case set(Set<Element>)
    case register(Number)
}
