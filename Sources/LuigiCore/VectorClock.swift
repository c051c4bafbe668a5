/// How two events relate causally.
public enum CausalOrder: Int32, Sendable {
    case equal = 0
    case before = 1
    case after = 2
    case concurrent = 3
}

/// A vector clock: node id -> counter, absent entries read as 0.
/// Zero entries are never stored, so equal clocks have equal storage.
public struct VectorClock: Hashable, Sendable, CustomStringConvertible {
    public private(set) var counters: [UInt64: UInt64]

    public init() { counters = [:] }

    public init(_ counters: [UInt64: UInt64]) {
        self.counters = counters.filter { $0.value != 0 }
    }

    public subscript(node: UInt64) -> UInt64 {
        get { counters[node] ?? 0 }
        set { counters[node] = newValue == 0 ? nil : newValue }
    }

    public var count: Int { counters.count }

    /// Entries sorted by node id.
    public var sortedEntries: [(node: UInt64, counter: UInt64)] {
        counters.sorted { $0.key < $1.key }.map { (node: $0.key, counter: $0.value) }
    }

    /// Increments `node`'s counter and returns it.
    @discardableResult
    public mutating func tick(_ node: UInt64) throws -> UInt64 {
        let current = self[node]
        guard current < UInt64.max else {
            throw LuigiError.overflow("vector clock counter of node \(node) is at its maximum")
        }
        counters[node] = current + 1
        return current + 1
    }

    /// Pointwise maximum, in place.
    public mutating func merge(_ other: VectorClock) {
        for (node, counter) in other.counters where counter > self[node] {
            counters[node] = counter
        }
    }

    /// True when every entry of `self` is <= the same entry of `other`.
    public func isDominated(by other: VectorClock) -> Bool {
        counters.allSatisfy { $0.value <= other[$0.key] }
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
        "VectorClock(" + sortedEntries.map { "\($0.node): \($0.counter)" }.joined(separator: ", ") + ")"
    }

    // MARK: - Encoding

    static let magic: [UInt8] = [0x4C, 0x56, 0x43, 0x01]  // "LVC" v1

    /// Canonical entries (strictly increasing node ids, non-zero counters).
    public func write(to writer: inout ByteWriter) {
        writer.varint(UInt64(counters.count))
        for entry in sortedEntries {
            writer.varint(entry.node)
            writer.varint(entry.counter)
        }
    }

    public static func read(from reader: inout ByteReader) throws -> VectorClock {
        let n = try reader.count()
        var counters = [UInt64: UInt64](minimumCapacity: n)
        var previous: UInt64? = nil
        for _ in 0..<n {
            let node = try reader.varint()
            let counter = try reader.varint()
            if let p = previous, node <= p { throw LuigiError.decode("clock entries out of order") }
            guard counter != 0 else { throw LuigiError.decode("clock entry with zero counter") }
            counters[node] = counter
            previous = node
        }
        var clock = VectorClock()
        clock.counters = counters
        return clock
    }

    /// Standalone encoding: magic, entries, CRC-32C.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + counters.count * 4)
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
