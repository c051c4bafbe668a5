import LuigiBase

/// What a shard leader writes to its shard's replicated log. Every replica
/// applies the committed records in log order (`ShardState.apply`), so each
/// holds the same data, transaction records and watermarks, and a new leader
/// continues from them.
public enum ShardRecord: Equatable, Sendable {
    /// The shard ran its part at the agreed timestamp.
    case exec(Execution)
    /// The agreed outcome of a may-abort multi-shard transaction.
    case outcome(TxnId, committed: Bool)
    /// Watermarks, one per stream: every transaction of stream w with a
    /// timestamp at or below marks[w] is in the log before this record, and
    /// the shard never runs another one at or below it.
    case marks([UInt64])
    /// (coordinator, worker) transactions below `below` are finished.
    case retire(coordinator: UInt64, worker: UInt32, below: UInt64)

    // MARK: - Encoding: "LWR" v1 | kind | fields | CRC-32C

    public static let magic: [UInt8] = [0x4C, 0x57, 0x52, 0x01]

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.magic(Self.magic)
        switch self {
        case .exec(let e):
            w.u8(1); e.write(to: &w)
        case .outcome(let id, let committed):
            w.u8(2); w.id(id); w.flag(committed)
        case .marks(let marks):
            w.u8(3); w.list(marks)
        case .retire(let c, let worker, let below):
            w.u8(4); w.varint(c); w.varint(UInt64(worker)); w.varint(below)
        }
        w.sealWithChecksum()
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "shard record")
        switch try r.u8() {
        case 1: self = .exec(try Execution.read(from: &r))
        case 2: self = .outcome(try r.id(), committed: try r.flag())
        case 3: self = .marks(try r.timestamps("marks"))
        case 4:
            let c = try r.varint(), worker = try r.varint()
            guard worker < UInt64(WatermarkLimits.maxWorkers) else { throw LuigiError.decode("worker out of range") }
            self = .retire(coordinator: c, worker: UInt32(worker), below: try r.timestamp("retire point"))
        case let kind:
            throw LuigiError.decode("unknown shard record kind \(kind)")
        }
        try r.expectEnd("shard record")
    }
}

/// A part's execution: the whole transaction (so any replica can hand it to
/// another shard), where it ran in the total order and on which proposals,
/// what it read, what it would write, and its vote.
public struct Execution: Equatable, Sendable {
    public var txn: Txn
    /// The agreed timestamp: the maximum of `proposals`.
    public var ts: UInt64
    /// Every involved shard's proposal (multi-shard transactions; empty for
    /// a single-shard one, which the leader timestamps alone).
    public var proposals: [ShardStamp]
    /// This shard's vote: its checks passed and no add overflowed.
    public var vote: Bool
    /// True while the outcome waits for the other shards' votes.
    public var pending: Bool
    public var reads: [ReadResult]
    /// Final values of the keys the part writes, sorted by key; applied when
    /// the outcome is commit.
    public var writes: [WriteResult]
    public var receivedAt: UInt64

    public init(txn: Txn, ts: UInt64, proposals: [ShardStamp], vote: Bool, pending: Bool, reads: [ReadResult],
                writes: [WriteResult], receivedAt: UInt64) {
        self.txn = txn
        self.ts = ts
        self.proposals = proposals
        self.vote = vote
        self.pending = pending
        self.reads = reads
        self.writes = writes
        self.receivedAt = receivedAt
    }

    public var id: TxnId { txn.id }
    public var shards: [UInt64] { txn.shards }

    func write(to w: inout ByteWriter) {
        w.txn(txn); w.varint(ts); w.proposals(proposals); w.flag(vote); w.flag(pending)
        w.reads(reads); w.writes(writes); w.varint(receivedAt)
    }

    static func read(from r: inout ByteReader) throws -> Execution {
        Execution(txn: try r.txn(), ts: try r.timestamp("timestamp"), proposals: try r.proposals(), vote: try r.flag(),
                  pending: try r.flag(), reads: try r.reads(), writes: try r.writes(),
                  receivedAt: try r.timestamp("receive stamp"))
    }
}
