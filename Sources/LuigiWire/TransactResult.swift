import LuigiBase
import LuigiWatermark

/// What a node answers to `transact`: the outcome, the agreed timestamp
/// (µs) and what each shard's part read.
///
///     outcome u8 (1 committed, 2 aborted) | ts varint |
///     shard count varint | per shard, ascending: shard varint, reads
public struct TransactResult: Equatable, Sendable {
    public var outcome: Outcome
    public var ts: UInt64
    public var reads: [UInt64: [ReadResult]]

    public init(outcome: Outcome, ts: UInt64, reads: [UInt64: [ReadResult]]) {
        self.outcome = outcome
        self.ts = ts
        self.reads = reads
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.u8(outcome.rawValue)
        w.varint(ts)
        w.varint(UInt64(reads.count))
        for shard in reads.keys.sorted() {
            w.varint(shard)
            w.reads(reads[shard] ?? [])
        }
        return w.bytes
    }

    /// Decodes and range-checks a result; nothing may trail it.
    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        guard let outcome = Outcome(rawValue: try r.u8()) else { throw LuigiError.decode("unknown outcome") }
        self.outcome = outcome
        ts = try r.timestamp("timestamp")
        let n = try r.count()
        guard n <= WatermarkLimits.maxShards else { throw LuigiError.decode("\(n) shards is too many") }
        var reads: [UInt64: [ReadResult]] = [:]
        var last: UInt64?
        for _ in 0..<n {
            let shard = try r.varint()
            guard shard < UInt64(WatermarkLimits.maxShards), last.map({ $0 < shard }) ?? true else {
                throw LuigiError.decode("shards are not sorted, unique and in range")
            }
            last = shard
            reads[shard] = try r.reads()
        }
        self.reads = reads
        try r.expectEnd("transaction result")
    }
}
