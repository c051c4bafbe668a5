import LuigiBase

/// One transaction as a shard's replicated state knows it: run here, and
/// finished or waiting for the other shards' votes.
public struct TxnRecord: Equatable, Sendable {
    public var execution: Execution
    /// Nil while the outcome waits for votes.
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
    /// The seqs `txns` holds for each (coordinator, worker), so a retire
    /// visits its own stream's transactions, not every one (a function of
    /// `txns`, so equal states still compare equal).
    private var seqsByStream: [RetireKey: Set<UInt64>] = [:]
    /// Parts applied with effect, and ops in them (checkers count these).
    public private(set) var partsApplied: UInt64 = 0
    public private(set) var opsApplied: UInt64 = 0

    struct RetireKey: Hashable, Sendable {
        var coordinator: UInt64
        var worker: UInt32

        init(coordinator: UInt64, worker: UInt32) {
            self.coordinator = coordinator
            self.worker = worker
        }

        init(_ id: TxnId) { self.init(coordinator: id.coordinator, worker: id.worker) }
    }

    public init(shard: UInt64, workers: Int) {
        self.shard = shard
        self.workers = workers
        marks = Array(repeating: 0, count: workers)
    }

    /// Every field as given: the snapshot decoder (ShardSnapshot.swift)
    /// rebuilds a state with it after checking each one.
    init(shard: UInt64, workers: Int, store: [String: Int64], txns: [TxnId: TxnRecord], marks: [UInt64],
         readFrontier: [String: UInt64], writeFrontier: [String: UInt64], retired: [RetireKey: UInt64],
         partsApplied: UInt64, opsApplied: UInt64) {
        self.shard = shard
        self.workers = workers
        self.store = store
        self.txns = txns
        self.marks = marks
        self.readFrontier = readFrontier
        self.writeFrontier = writeFrontier
        self.retired = retired
        self.partsApplied = partsApplied
        self.opsApplied = opsApplied
        for id in txns.keys { seqsByStream[RetireKey(id), default: []].insert(id.seq) }
    }

    public func isRetired(_ id: TxnId) -> Bool {
        id.seq < retired[RetireKey(coordinator: id.coordinator, worker: id.worker), default: 0]
    }

    /// The stream's retire point: every seq below it is finished and forgotten.
    public func retiredBelow(_ coordinator: UInt64, _ worker: UInt32) -> UInt64 {
        retired[RetireKey(coordinator: coordinator, worker: worker), default: 0]
    }

    /// Applies one committed record. A second execution of a transaction,
    /// an outcome without a pending execution, records of retired
    /// transactions and marks of the wrong width change nothing (a deposed
    /// leader's leftovers would be refused alike on every replica).
    public mutating func apply(_ record: ShardRecord) {
        switch record {
        case .exec(let e):
            guard !isRetired(e.id), txns[e.id] == nil else { return }
            for r in e.reads { readFrontier[r.key] = max(readFrontier[r.key] ?? 0, e.ts) }
            for w in e.writes { writeFrontier[w.key] = max(writeFrontier[w.key] ?? 0, e.ts) }
            let outcome: Outcome? = e.pending ? nil : (e.vote ? .committed : .aborted)
            txns[e.id] = TxnRecord(execution: e, outcome: outcome)
            seqsByStream[RetireKey(e.id), default: []].insert(e.id.seq)
            if outcome == .committed { write(e) }
        case .outcome(let id, let committed):
            guard var rec = txns[id], rec.outcome == nil else { return }
            rec.outcome = committed ? .committed : .aborted
            txns[id] = rec
            if committed { write(rec.execution) }
        case .marks(let m):
            guard m.count == workers else { return }
            for w in 0..<workers { marks[w] = max(marks[w], m[w]) }
        case .retire(let c, let worker, let below):
            let key = RetireKey(coordinator: c, worker: worker)
            guard below > retired[key, default: 0] else { return }
            retired[key] = below
            // Finished ones below go; one still waiting for votes stays.
            guard var seqs = seqsByStream.removeValue(forKey: key) else { return }
            for seq in seqs where seq < below {
                let id = TxnId(coordinator: c, worker: worker, seq: seq)
                if txns[id]?.outcome != nil {
                    txns[id] = nil
                    seqs.remove(seq)
                }
            }
            if !seqs.isEmpty { seqsByStream[key] = seqs }
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
