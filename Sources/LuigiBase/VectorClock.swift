/// How two events relate causally.
public enum CausalOrder: Int32, Sendable {
    case equal = 0
    case before = 1
    case after = 2
    case concurrent = 3
}

/// A vector clock: node id -> counter, absent entries read as 0.
///
/// Stored as entries sorted by node id with no zero counters, so equal clocks
/// have equal storage, copies are one memcpy, and merge/compare are a single
/// linear walk over both clocks.
public struct VectorClock: Hashable, Sendable, CustomStringConvertible {
    public struct Entry: Hashable, Sendable {
        public let node: UInt64
        public var counter: UInt64
    }

    /// Sorted by node id; counters are never 0.
    public private(set) var entries: [Entry] = []

    public init() {}

    public init(_ counters: [UInt64: UInt64]) {
        entries = counters.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map { Entry(node: $0.key, counter: $0.value) }
    }

    /// Index of `node`, or where it would be inserted.
    private func position(of node: UInt64) -> (index: Int, found: Bool) {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].node < node { low = mid + 1 } else { high = mid }
        }
        return (low, low < entries.count && entries[low].node == node)
    }

    public subscript(node: UInt64) -> UInt64 {
        get {
            let (i, found) = position(of: node)
            return found ? entries[i].counter : 0
        }
        set {
            let (i, found) = position(of: node)
            switch (found, newValue) {
            case (true, 0): entries.remove(at: i)
            case (true, _): entries[i].counter = newValue
            case (false, 0): break
            case (false, _): entries.insert(Entry(node: node, counter: newValue), at: i)
            }
        }
    }

    public var count: Int { entries.count }

    /// Entries sorted by node id.
    public var sortedEntries: [(node: UInt64, counter: UInt64)] { entries.map { ($0.node, $0.counter) } }

    /// Sum of all counters: it grows along every causal chain, so sorting
    /// events by it gives an order consistent with causality.
    public var total: UInt128 { entries.reduce(0) { $0 + UInt128($1.counter) } }

    /// Increments `node`'s counter and returns it.
    @discardableResult
    public mutating func tick(_ node: UInt64) throws -> UInt64 {
        let (i, found) = position(of: node)
        guard found else {
            entries.insert(Entry(node: node, counter: 1), at: i)
            return 1
        }
        guard entries[i].counter < UInt64.max else {
            throw LuigiError.overflow("vector clock counter of node \(node) is at its maximum")
        }
        entries[i].counter += 1
        return entries[i].counter
    }

    /// Pointwise maximum, in place.
    public mutating func merge(_ other: VectorClock) {
        if other.isDominated(by: self) { return }
        var merged: [Entry] = []
        merged.reserveCapacity(entries.count + other.entries.count)
        var i = 0, j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].node < other.entries[j].node) {
                merged.append(entries[i]); i += 1
            } else if i == entries.count || other.entries[j].node < entries[i].node {
                merged.append(other.entries[j]); j += 1
            } else {
                merged.append(Entry(node: entries[i].node, counter: Swift.max(entries[i].counter, other.entries[j].counter)))
                i += 1; j += 1
            }
        }
        entries = merged
    }

    /// True when every entry of `self` (except `ignoring`'s) is <= the same
    /// entry of `other`.
    public func isDominated(by other: VectorClock, ignoring: UInt64? = nil) -> Bool {
        var j = 0
        for e in entries where e.node != ignoring {
            while j < other.entries.count && other.entries[j].node < e.node { j += 1 }
            guard j < other.entries.count, other.entries[j].node == e.node, e.counter <= other.entries[j].counter else {
                return false
            }
        }
        return true
    }

    public func compare(_ other: VectorClock) -> CausalOrder {
        let le = isDominated(by: other)
        let ge = other.isDominated(by: self)
        switch (le, ge) {
        case (true, true): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (false, false): return .concurrent
        }
    }

    public func happenedBefore(_ other: VectorClock) -> Bool { compare(other) == .before }
    public func isConcurrent(with other: VectorClock) -> Bool { compare(other) == .concurrent }

    public var description: String {
        "VectorClock(" + entries.map { "\($0.node): \($0.counter)" }.joined(separator: ", ") + ")"
    }

    // MARK: - Encoding

    static let magic: [UInt8] = [0x4C, 0x56, 0x43, 0x01]  // "LVC" v1

    /// Canonical entries (strictly increasing node ids, non-zero counters).
    public func write(to writer: inout ByteWriter) {
        writer.varint(UInt64(entries.count))
        for entry in entries {
            writer.varint(entry.node)
            writer.varint(entry.counter)
        }
    }

    public static func read(from reader: inout ByteReader) throws -> VectorClock {
        let n = try reader.count()
        var clock = VectorClock()
        clock.entries.reserveCapacity(n)
        var previous: UInt64? = nil
        for _ in 0..<n {
            let node = try reader.varint()
            let counter = try reader.varint()
            if let p = previous, node <= p { throw LuigiError.decode("clock entries out of order") }
            guard counter != 0 else { throw LuigiError.decode("clock entry with zero counter") }
            clock.entries.append(Entry(node: node, counter: counter))
            previous = node
        }
        return clock
    }

    /// Standalone encoding: magic, entries, CRC-32C.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + entries.count * 4)
        writer.magic(Self.magic)
        write(to: &writer)
        writer.sealWithChecksum()
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var reader = try ByteReader.sealed(bytes, magic: Self.magic, what: "vector clock")
        self = try Self.read(from: &reader)
        try reader.expectEnd("vector clock")
    }
}
