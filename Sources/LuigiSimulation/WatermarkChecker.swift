import LuigiCore

/// A broken invariant of the watermark protocol, named, with the evidence.
public struct WatermarkViolation: Error, CustomStringConvertible, Equatable {
    public let invariant: String
    public let detail: String
    public var description: String { "\(invariant): \(detail)" }

    public init(invariant: String, detail: String) {
        self.invariant = invariant
        self.detail = detail
    }
}

/// Checks a finished `ShardedCluster` run against the protocol's
/// invariants, from the shards' committed logs, the replicas' states and
/// what clients were told:
/// - logs: replicas never applied different entries at one index;
/// - exactly once: at most one execution (and arrival) per transaction per shard;
/// - watermarks: per stream they only move forward, and no execution at or
///   below a logged watermark follows it in the log;
/// - ordering: conflicting committed transactions run in timestamp order on
///   every shard;
/// - agreement: every shard ran a transaction at one timestamp, on the same
///   proposals (one per shard), their maximum; acknowledgements report it;
/// - atomicity: every shard reached the same outcome;
/// - serializability: replaying the committed transactions serially in the
///   total order gives every read clients and logs saw, every abort, the
///   parts and ops applied, and each live replica's store;
/// - durability: every acknowledged transaction is in every involved
///   shard's log, as acknowledged;
/// - replica state: each live replica's whole `ShardState` is the committed
///   log replayed through its applied index (restored snapshots included).
public struct WatermarkChecker {
    struct Ran {
        var ts: UInt64
        var reads: [ReadResult]
        var writes: [WriteResult]
        var outcome: Outcome?
    }

    public private(set) var committedCount = 0
    public private(set) var abortedCount = 0
    /// Transactions that finished on their shards though no coordinator
    /// acknowledged them (their coordinator crashed).
    public private(set) var finishedWithoutCoordinator = 0

    public init() {}

    public mutating func check(_ cluster: ShardedCluster) throws {
        func fail(_ invariant: String, _ detail: String) -> WatermarkViolation {
            WatermarkViolation(invariant: invariant, detail: detail)
        }
        if let m = cluster.logMismatches.first { throw fail("log matching", m) }
        let shards = cluster.options.shards
        var ran: [[TxnId: Ran]] = Array(repeating: [:], count: shards)
        var proposals: [TxnId: [[ShardStamp]]] = [:]
        for s in 0..<shards {
            var marks = Array(repeating: UInt64(0), count: cluster.options.workers)
            var readMax: [String: Stamp] = [:], writeMax: [String: Stamp] = [:]
            var pendingKeys: [TxnId: (reads: [String], writes: [String])] = [:]
            for index in cluster.committed[s].keys.sorted() {
                let data = cluster.committed[s][index]!.data
                guard !data.isEmpty, let record = try? ShardRecord(decoding: data) else { continue }
                switch record {
                case .exec(let e):
                    if ran[s][e.id] != nil { throw fail("exactly once", "\(e.id) ran twice at shard \(s)") }
                    let w = Int(e.id.worker)
                    if e.ts <= marks[w] {
                        throw fail("watermark safety", "\(e.id) ran at \(e.ts) after shard \(s) stream \(w) marked \(marks[w])")
                    }
                    if e.shards.count > 1 { proposals[e.id, default: []].append(e.proposals) }
                    ran[s][e.id] = Ran(ts: e.ts, reads: e.reads, writes: e.writes,
                                       outcome: e.pending ? nil : (e.vote ? .committed : .aborted))
                    let keys = (e.reads.map(\.key), e.writes.map(\.key))
                    if e.pending { pendingKeys[e.id] = keys } else if e.vote { try order(e.id, e.ts, keys) }
                case .outcome(let id, let committed):
                    guard var r = ran[s][id], r.outcome == nil else { throw fail("atomicity", "outcome of \(id) without a pending execution at shard \(s)") }
                    r.outcome = committed ? .committed : .aborted
                    ran[s][id] = r
                    if committed, let keys = pendingKeys[id] { try order(id, r.ts, keys) }
                case .marks(let m):
                    for w in m.indices where m[w] < marks[w] {
                        throw fail("watermark monotonicity", "shard \(s) stream \(w) went from \(marks[w]) back to \(m[w])")
                    }
                    marks = m
                case .retire:
                    break
                }
            }
            func order(_ id: TxnId, _ ts: UInt64, _ keys: ([String], [String])) throws {
                let stamp = Stamp(ts: ts, id: id)
                for k in keys.0 {
                    if let w = writeMax[k], w >= stamp { throw fail("ordering", "\(id) read \(k) at \(ts) after a write at \(w.ts) by \(w.id) on shard \(s)") }
                }
                for k in keys.1 {
                    if let w = writeMax[k], w >= stamp { throw fail("ordering", "\(id) wrote \(k) at \(ts) after a write at \(w.ts) on shard \(s)") }
                    if let r = readMax[k], r >= stamp { throw fail("ordering", "\(id) wrote \(k) at \(ts) after a read at \(r.ts) on shard \(s)") }
                }
                for k in keys.0 { readMax[k] = max(readMax[k] ?? stamp, stamp) }
                for k in keys.1 { writeMax[k] = stamp }
            }
        }

        // Agreement and atomicity, per transaction.
        var committedTxns: [Stamp] = []
        var abortedAt: [Stamp] = []
        for (id, parts) in cluster.submitted {
            let involved = parts.keys.sorted()
            let runs = involved.compactMap { ran[Int($0)][id] }
            let outcomes = Set(runs.compactMap(\.outcome))
            if outcomes.count > 1 { throw fail("atomicity", "\(id) committed on one shard and aborted on another") }
            let stamps = Set(runs.map(\.ts))
            if stamps.count > 1 { throw fail("agreement", "\(id) ran at timestamps \(stamps.sorted())") }
            if involved.count > 1, let ts = stamps.first {
                let used = proposals[id] ?? []
                guard let p = used.first, used.allSatisfy({ $0 == p }), p.map(\.shard) == involved,
                    p.map(\.ts).max() == ts
                else {
                    throw fail("agreement", "\(id) ran at \(ts) on proposals \(used.map { $0.map { "\($0.shard):\($0.ts)" } })")
                }
            }
            guard let ts = stamps.first else { continue }
            if outcomes == [.committed] {
                if runs.count != involved.count { throw fail("atomicity", "\(id) committed on \(runs.count) of \(involved.count) shards") }
                committedTxns.append(Stamp(ts: ts, id: id))
            } else if outcomes == [.aborted] {
                abortedAt.append(Stamp(ts: ts, id: id))
            }
        }

        // What clients were told is what the logs hold.
        for c in cluster.completions {
            for s in (cluster.submitted[c.id] ?? [:]).keys {
                guard let r = ran[Int(s)][c.id] else {
                    throw fail("durability", "acknowledged \(c.id) is not in shard \(s)'s log")
                }
                guard r.ts == c.ts, r.outcome == c.outcome, r.reads == c.reads[s] ?? [] else {
                    throw fail("durability", "\(c.id) was acknowledged \(c.outcome) at \(c.ts) with reads \(c.reads[s] ?? []), shard \(s) logged \(r.outcome.map(\.description) ?? "pending") at \(r.ts) with \(r.reads)")
                }
            }
        }

        // Serial replay in the total order.
        var model: [[String: Int64]] = Array(repeating: [:], count: shards)
        var parts = Array(repeating: UInt64(0), count: shards)
        var ops = Array(repeating: UInt64(0), count: shards)
        let abortedSet = Set(abortedAt)
        for stamp in (committedTxns + abortedAt).sorted() {
            let committing = !abortedSet.contains(stamp)
            var votes = true
            // Each part's writes, staged over the model (copying the model per
            // transaction would make the check quadratic).
            var staged: [(shard: Int, writes: [String: Int64], ops: Int)] = []
            for (s, partOps) in cluster.submitted[stamp.id]!.sorted(by: { $0.key < $1.key }) {
                var view: [String: Int64] = [:]
                func get(_ k: String) -> Int64? { view[k] ?? model[Int(s)][k] }
                var reads: [ReadResult] = []
                for op in partOps {
                    switch op {
                    case .read(let k): reads.append(ReadResult(key: k, value: get(k)))
                    case .write(let k, let v): view[k] = v
                    case .add(let k, let d):
                        let (sum, o) = (get(k) ?? 0).addingReportingOverflow(d)
                        if o { votes = false } else { view[k] = sum }
                    case .check(let k, let least):
                        reads.append(ReadResult(key: k, value: get(k)))
                        if (get(k) ?? 0) < least { votes = false }
                    }
                }
                if let logged = ran[Int(s)][stamp.id], logged.reads != reads {
                    throw fail("serializability", "\(stamp.id) at \(stamp.ts) read \(logged.reads) on shard \(s); serial order gives \(reads)")
                }
                staged.append((Int(s), view, reads.count + view.count))
            }
            if votes != committing {
                throw fail("serializability", "\(stamp.id) \(committing ? "committed" : "aborted") at \(stamp.ts), but in serial order its checks \(votes ? "pass" : "fail")")
            }
            guard committing else { continue }
            for (s, writes, n) in staged {
                model[s].merge(writes) { _, new in new }
                parts[s] += 1
                ops[s] += UInt64(n)
            }
        }
        committedCount = committedTxns.count
        abortedCount = abortedAt.count
        let acknowledged = Set(cluster.completions.map(\.id))
        finishedWithoutCoordinator = (committedTxns + abortedAt).filter { !acknowledged.contains($0.id) }.count

        for s in 0..<shards {
            for id in cluster.replicaIDs(UInt64(s)) {
                guard let st = cluster.state(of: id) else { continue }
                guard st.store == model[s] else {
                    let diff = Set(st.store.keys).union(model[s].keys).filter { st.store[$0] != model[s][$0] }.sorted().prefix(3)
                    throw fail("serializability", "replica \(id) of shard \(s) differs from the serial replay at \(diff.map { "\($0): \(st.store[$0].map(String.init) ?? "absent") vs \(model[s][$0].map(String.init) ?? "absent")" })")
                }
                guard st.partsApplied == parts[s], st.opsApplied == ops[s] else {
                    throw fail("ops applied", "replica \(id) applied \(st.partsApplied) parts / \(st.opsApplied) ops, the serial replay \(parts[s]) / \(ops[s])")
                }
            }
            try checkReplay(cluster, shard: s)
        }
    }

    /// `committed` comes from `onApply`, not from the replicas' logs: an
    /// entry a replica compacted away was applied there first, so it is kept.
    private func checkReplay(_ cluster: ShardedCluster, shard s: Int) throws {
        let live = cluster.replicaIDs(UInt64(s)).compactMap { id in cluster.appliedIndex(of: id).map { (id, $0) } }
        var replay = ShardState(shard: UInt64(s), workers: cluster.options.workers)
        var at: UInt64 = 0
        for (id, applied) in live.sorted(by: { $0.1 < $1.1 }) {
            guard let st = cluster.state(of: id) else { continue }
            while at < applied {
                at += 1
                guard let entry = cluster.committed[s][at] else {
                    throw WatermarkViolation(invariant: "replica state", detail: "shard \(s) index \(at) was applied by no replica")
                }
                if let record = try? ShardRecord(decoding: entry.data) { replay.apply(record) }
            }
            guard st == replay else {
                throw WatermarkViolation(invariant: "replica state", detail: "replica \(id) of shard \(s) differs from its log replayed through index \(applied)")
            }
        }
    }
}
