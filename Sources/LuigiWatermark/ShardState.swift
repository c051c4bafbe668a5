import LuigiBase

/// One transaction as a shard's replicated state knows it.
public struct TxnRecord: Equatable, Sendable {
    public enum Phase: Equatable, Sendable {
        /// Multi-shard, proposal durable, not yet run.
        case arrived
        /// Ran; the outcome waits for the other shards' votes.
        case pending
        /// Finished (committed or aborted).
        case done
        /// This shard refused it: it never runs anywhere.
        case refused
    }

    public var phase: Phase
    public var shards: [UInt64]
    /// The part (multi-shard transactions; nil once finished).
    public var part: TxnPart?
    public var proposal: UInt64
    public var execution: Execution?
    public var outcome: Outcome?
}

/// A shard's replicated state: what every replica holds after applying the
/// committed records in log order. Deterministic: the same records give the
/// same state, bit for bit.
public struct ShardState: Equatable, Sendable {
    public let shard: UInt64
    public let workers: Int
    public private(set) var store: [String: Int64] = [:]
    public private(set) var txns: [TxnId: TxnRecord] = [:]
    /// Committed watermarks, one per stream.
    public private(set) var marks: [UInt64]
    /// The timestamps of the last run read and write of each key.
    private(set) var readFrontier: [String: UInt64] = [:]
    private(set) var writeFrontier: [String: UInt64] = [:]
    /// (coordinator, worker) -> every seq below is finished and forgotten.
    private(set) var retired: [RetireKey: UInt64] = [:]
    /// Parts applied with effect, and ops in them (checkers count these).
    public private(set) var partsApplied: UInt64 = 0
    public private(set) var opsApplied: UInt64 = 0

    struct RetireKey: Hashable, Sendable {
        var coordinator: UInt64
        var worker: UInt32
    }

    public init(shard: UInt64, workers: Int) {
        self.shard = shard
        self.workers = workers
        marks = Array(repeating: 0, count: workers)
    }

    public func isRetired(_ id: TxnId) -> Bool {
        id.seq < retired[RetireKey(coordinator: id.coordinator, worker: id.worker), default: 0]
    }

    func retiredBelow(_ coordinator: UInt64, _ worker: UInt32) -> UInt64 {
        retired[RetireKey(coordinator: coordinator, worker: worker), default: 0]
    }

    /// Applies one committed record. Records about retired transactions, a
    /// second record of a kind a transaction already has, and marks of the
    /// wrong width change nothing (a deposed leader's leftovers).
    public mutating func apply(_ record: ShardRecord) {
        switch record {
        case .arrive(let part, let proposal):
            guard !isRetired(part.id), txns[part.id] == nil else { return }
            txns[part.id] = TxnRecord(phase: .arrived, shards: part.shards, part: part, proposal: proposal)
        case .refuse(let id, let shards):
            guard !isRetired(id), txns[id] == nil else { return }
            txns[id] = TxnRecord(phase: .refused, shards: shards, proposal: 0, outcome: .aborted)
        case .exec(let e):
            guard !isRetired(e.id) else { return }
            var rec = txns[e.id] ?? TxnRecord(phase: .arrived, shards: e.shards, proposal: e.ts)
            guard rec.phase == .arrived else { return }
            rec.execution = e
            rec.part = nil
            for r in e.reads { readFrontier[r.key] = max(readFrontier[r.key] ?? 0, e.ts) }
            for w in e.writes { writeFrontier[w.key] = max(writeFrontier[w.key] ?? 0, e.ts) }
            if e.pending {
                rec.phase = .pending
            } else {
                rec.phase = .done
                rec.outcome = e.vote ? .committed : .aborted
                if e.vote { write(e) }
            }
            txns[e.id] = rec
        case .outcome(let id, let committed):
            guard var rec = txns[id], rec.phase == .pending, let e = rec.execution else { return }
            rec.phase = .done
            rec.outcome = committed ? .committed : .aborted
            if committed { write(e) }
            txns[id] = rec
        case .marks(let m):
            guard m.count == workers else { return }
            for w in 0..<workers { marks[w] = max(marks[w], m[w]) }
        case .retire(let c, let worker, let below):
            let key = RetireKey(coordinator: c, worker: worker)
            guard below > retired[key, default: 0] else { return }
            retired[key] = below
            txns = txns.filter { id, rec in
                !(id.coordinator == c && id.worker == worker && id.seq < below
                    && (rec.phase == .done || rec.phase == .refused))
            }
        }
    }

    private mutating func write(_ e: Execution) {
        for w in e.writes { store[w.key] = w.value }
        partsApplied += 1
        opsApplied += UInt64(e.reads.count + e.writes.count)
    }

    /// Current value of `key` in the replicated store.
    public func value(_ key: String) -> Int64? { store[key] }
}
