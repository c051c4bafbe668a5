import LuigiBase

/// Value types of the watermark-commit kernel: transaction ids, ops, the
/// part of a transaction one shard runs, and the limits peer input must
/// respect.

/// Bounds on every number and size a shard or coordinator accepts.
public enum WatermarkLimits {
    /// Timestamps (microseconds) and sequence numbers stay at or below 2^62,
    /// so `ts + 1` and `ts + delay` never overflow.
    public static let maxTimestamp: UInt64 = 1 << 62
    public static let maxShards = 1 << 16
    public static let maxWorkers = 1 << 10
    public static let maxOpsPerPart = 1 << 12
    public static let maxOpsPerTxn = 1 << 14
    public static let maxKeyBytes = 1 << 10
    /// Transactions, and their bytes, in one `orphans` page (a page holds
    /// one transaction at least).
    public static let orphansPerPage = 64
    public static let orphansPageBytes = 4 << 20

    public static func check(_ value: UInt64, _ what: @autoclosure () -> String) throws {
        guard value <= maxTimestamp else {
            throw LuigiError.invalidArgument("\(what()) \(value) is above the limit 2^62")
        }
    }
}

/// A transaction's identity, fixed by its coordinator: retries reuse it, so
/// a shard recognises a transaction it has seen.
public struct TxnId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var coordinator: UInt64
    public var worker: UInt32
    public var seq: UInt64

    public init(coordinator: UInt64, worker: UInt32, seq: UInt64) {
        self.coordinator = coordinator
        self.worker = worker
        self.seq = seq
    }

    public static func < (a: TxnId, b: TxnId) -> Bool {
        (a.coordinator, a.worker, a.seq) < (b.coordinator, b.worker, b.seq)
    }

    public var description: String { "T\(coordinator).\(worker).\(seq)" }
}

/// The protocol's total order: (ts, coordinator, worker, seq).
public struct Stamp: Hashable, Comparable, Sendable {
    public var ts: UInt64
    public var id: TxnId

    public init(ts: UInt64, id: TxnId) {
        self.ts = ts
        self.id = id
    }

    public static func < (a: Stamp, b: Stamp) -> Bool { (a.ts, a.id) < (b.ts, b.id) }
}

extension Array where Element == Stamp {
    /// The first index whose stamp is not below `s` (the array is sorted).
    func lowerBound(_ s: Stamp) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] < s { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Inserts `s` in order unless it is there already.
    mutating func insertSorted(_ s: Stamp) {
        let i = lowerBound(s)
        if i == count || self[i] != s { insert(s, at: i) }
    }
}

/// One operation of a shard's part. Parts run their ops in order; a missing
/// key reads as absent and counts as 0 for `add` and `check`.
public enum Op: Equatable, Hashable, Sendable {
    case read(String)
    case write(String, Int64)
    /// Adds to the key's value; an add that would overflow Int64 aborts the
    /// transaction (one deterministic rule, never a wrap).
    case add(String, Int64)
    /// Aborts the transaction unless the key's value is at least `atLeast`.
    case check(String, atLeast: Int64)

    public var key: String {
        switch self {
        case .read(let k), .write(let k, _), .add(let k, _), .check(let k, _): return k
        }
    }

    /// Ops that change the key (a check only reads it).
    public var writes: Bool {
        switch self {
        case .write, .add: return true
        case .read, .check: return false
        }
    }

    /// Ops whose outcome depends on the state: the transaction may abort.
    public var mayAbort: Bool {
        switch self {
        case .add, .check: return true
        case .read, .write: return false
        }
    }
}

/// What a shard runs of a transaction: the header every shard shares, and
/// this shard's ops.
public struct TxnPart: Equatable, Sendable {
    public var id: TxnId
    /// The coordinator's future timestamp (microseconds).
    public var ts: UInt64
    /// Every shard involved, sorted, without duplicates.
    public var shards: [UInt64]
    /// True when any part of the transaction may abort: the outcome is then
    /// agreed (votes) before any effect is visible.
    public var mayAbort: Bool
    public var ops: [Op]

    public init(id: TxnId, ts: UInt64, shards: [UInt64], mayAbort: Bool, ops: [Op]) {
        self.id = id
        self.ts = ts
        self.shards = shards
        self.mayAbort = mayAbort
        self.ops = ops
    }

    /// The rules every part obeys, whoever built it: a decoded part already
    /// does (the decoder checks them too).
    public func validate() throws {
        try WatermarkLimits.check(ts, "timestamp")
        try WatermarkLimits.check(id.seq, "sequence")
        guard Int(id.worker) < WatermarkLimits.maxWorkers else { throw LuigiError.invalidArgument("worker \(id.worker) out of range") }
        guard !shards.isEmpty, shards.count <= WatermarkLimits.maxShards,
            zip(shards, shards.dropFirst()).allSatisfy({ $0 < $1 }), (shards.last ?? 0) < UInt64(WatermarkLimits.maxShards)
        else { throw LuigiError.invalidArgument("shards must be sorted, unique, non-empty and below 2^16") }
        guard (1...WatermarkLimits.maxOpsPerPart).contains(ops.count) else {
            throw LuigiError.invalidArgument("a part has 1...\(WatermarkLimits.maxOpsPerPart) ops, got \(ops.count)")
        }
        guard ops.allSatisfy({ $0.key.utf8.count <= WatermarkLimits.maxKeyBytes }) else {
            throw LuigiError.invalidArgument("keys are at most 1 KiB")
        }
        guard mayAbort || !ops.contains(where: \.mayAbort) else {
            throw LuigiError.invalidArgument("a part with add or check must be marked may-abort")
        }
    }

    /// Keys this part reads and keys it writes (a key both read and written
    /// is in both).
    package var keys: (reads: Set<String>, writes: Set<String>) {
        var r = Set<String>(), w = Set<String>()
        for op in ops {
            if op.writes { w.insert(op.key) } else { r.insert(op.key) }
        }
        return (r, w)
    }
}

/// One shard's proposal for a transaction.
public struct ShardStamp: Equatable, Hashable, Sendable {
    public var shard: UInt64
    public var ts: UInt64

    public init(shard: UInt64, ts: UInt64) {
        self.shard = shard
        self.ts = ts
    }
}

/// One shard's ops of a transaction.
public struct ShardOps: Equatable, Sendable {
    public var shard: UInt64
    public var ops: [Op]

    public init(shard: UInt64, ops: [Op]) {
        self.shard = shard
        self.ops = ops
    }
}

/// A whole transaction, every shard's part. Shards pass it whole (in
/// submits, proposals, recovery answers and their logs), so any involved
/// shard can hand a part to another: a transaction never depends on its
/// coordinator staying up, or on one shard's leader surviving.
public struct Txn: Equatable, Sendable {
    public var id: TxnId
    /// The coordinator's future timestamp (microseconds).
    public var ts: UInt64
    /// True when any part may abort (an add or a check).
    public var mayAbort: Bool
    /// Sorted by shard, one entry per involved shard.
    public var parts: [ShardOps]

    public init(id: TxnId, ts: UInt64, mayAbort: Bool, parts: [ShardOps]) {
        self.id = id
        self.ts = ts
        self.mayAbort = mayAbort
        self.parts = parts
    }

    public var shards: [UInt64] { parts.map(\.shard) }

    /// The part `shard` runs (nil: the shard is not involved).
    public func part(for shard: UInt64) -> TxnPart? {
        guard let p = parts.first(where: { $0.shard == shard }) else { return nil }
        return TxnPart(id: id, ts: ts, shards: shards, mayAbort: mayAbort, ops: p.ops)
    }

    /// Every part obeys `TxnPart.validate`, and the whole stays below
    /// `maxOpsPerTxn` ops.
    public func validate() throws {
        guard parts.reduce(0, { $0 + $1.ops.count }) <= WatermarkLimits.maxOpsPerTxn else {
            throw LuigiError.invalidArgument("a transaction has at most \(WatermarkLimits.maxOpsPerTxn) ops")
        }
        guard mayAbort == parts.contains(where: { $0.ops.contains(where: \.mayAbort) }) else {
            throw LuigiError.invalidArgument("may-abort must be set exactly when some op is an add or a check")
        }
        for s in shards { try part(for: s)?.validate() }
    }
}

public enum Outcome: UInt8, Sendable, CustomStringConvertible {
    case committed = 1
    case aborted = 2

    public var description: String { self == .committed ? "committed" : "aborted" }
}

/// A value a read saw (nil: the key was absent).
public struct ReadResult: Equatable, Hashable, Sendable {
    public var key: String
    public var value: Int64?

    public init(key: String, value: Int64?) {
        self.key = key
        self.value = value
    }
}

/// A key's value after a part ran.
public struct WriteResult: Equatable, Hashable, Sendable {
    public var key: String
    public var value: Int64

    public init(key: String, value: Int64) {
        self.key = key
        self.value = value
    }
}

/// Which watermarks a coordinator waits for before acknowledging.
public enum CommitRule: UInt8, Sendable {
    /// ts <= min over the shard's streams, for every involved shard (default).
    case allStreams = 0
    /// ts <= the watermark of the transaction's own stream (the original
    /// design; see docs/ARCHITECTURE.md for when it is weaker).
    case ownStream = 1
}
