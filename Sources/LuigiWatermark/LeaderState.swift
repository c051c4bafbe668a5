import LuigiBase

/// The volatile state of a shard leader. Nothing here needs to survive a
/// crash: a new leader rebuilds it from the replicated state and from what
/// the other shards tell it during recovery (`ShardNode` docs).
struct LeaderState {
    /// A transaction waiting to run: for the other shards' proposals, for
    /// its timestamp to pass, or for an earlier conflicting transaction.
    struct Queued {
        var txn: Txn
        var part: TxnPart
        /// Its place in the total order: the proposal, then the agreed ts.
        var ts: UInt64
        var proposal: UInt64
        var agreed = false
        var peers: [UInt64: UInt64] = [:]
        var receivedAt: UInt64
        var lastSent: UInt64 = 0
        let reads: Set<String>
        let writes: Set<String>

        var single: Bool { txn.parts.count == 1 }

        /// Every shard's proposal, this one's (`shard`) included, by shard.
        func proposals(_ shard: UInt64) -> [ShardStamp] {
            guard !single else { return [] }
            var all = peers
            all[shard] = proposal
            return all.sorted { $0.key < $1.key }.map { ShardStamp(shard: $0.key, ts: $0.value) }
        }
    }

    /// A may-abort multi-shard transaction that ran and waits for votes.
    struct Awaiting {
        var execution: Execution
        var durable = false
        var votes: [UInt64: Bool] = [:]
        var lastSent: UInt64 = 0
        let reads: Set<String>
        let writes: Set<String>
    }

    let term: UInt64
    /// Applied an entry of its own term: its log is all applied, and it
    /// answers other shards' recovery requests.
    var caughtUp = false
    /// Recovered too: it takes submits and proposals.
    var serving = false
    /// Shards whose recovery answer has not arrived, and what the answers
    /// so far hold.
    var recoveryPending: Set<UInt64> = []
    var recoveryAskedAt: UInt64 = 0
    var recovered: [TxnId: (txn: Txn, proposals: [UInt64: UInt64])] = [:]
    /// Per shard: messages from its leaders of older terms are dropped.
    var fence: [UInt64: UInt64] = [:]
    var queue: [TxnId: Queued] = [:]
    /// The queue's keys in the total order.
    var order: [Stamp] = []
    /// Parts that ran and wait for votes: they hold their keys.
    private(set) var awaiting: [TxnId: Awaiting] = [:]
    /// Per key, the queued and awaiting parts that touch it, in the total
    /// order, and whether they write it: a part may run once no earlier one
    /// conflicts with it on any of its keys.
    private var uses: [String: [(stamp: Stamp, writes: Bool)]] = [:]
    /// Votes that arrived before this shard ran the transaction.
    var earlyVotes: [TxnId: [UInt64: Bool]] = [:]
    /// Run here in this term, the record not yet applied: a retry must not
    /// run it again, and recovery answers report it.
    var finishing: [TxnId: Execution] = [:]
    /// Writes run but not yet committed, newest per key, with their writer.
    var overlay: [String: (value: Int64, writer: TxnId)] = [:]
    var readFrontier: [String: UInt64] = [:]
    var writeFrontier: [String: UInt64] = [:]
    /// Per stream: no transaction of it will ever run at or below this.
    var floor: [UInt64]
    var lastMarksAppended: [UInt64]
    var lastMarksAppendedAt: UInt64 = 0
    var finishedSinceMarks = false
    /// The largest timestamp of a part run (or found run in the log): the
    /// timer appends marks only while the last appended ones are below it,
    /// so an idle shard writes no heartbeat entries.
    var maxFinishedTs: UInt64 = 0
    var marksPushedAt: UInt64 = 0
    var marksChanged = false
    var retireAppended: [ShardState.RetireKey: UInt64] = [:]
    /// Coordinators by when they last submitted, retired or were replied to
    /// (open coordinator sets push watermarks to these).
    var heardFrom: [UInt64: UInt64] = [:]
    /// A release pass is due: something was agreed or finished since the
    /// last one (else only a timestamp coming due can release anything).
    var releaseDirty = true
    var releasedAt: UInt64 = 0

    init(term: UInt64, workers: Int) {
        self.term = term
        floor = Array(repeating: 0, count: workers)
        lastMarksAppended = floor
    }

    mutating func heard(from coordinator: UInt64, at t: UInt64) { heardFrom[coordinator] = t }

    /// The coordinators heard from since `t`; older ones are forgotten.
    mutating func coordinators(heardSince t: UInt64) -> [UInt64] {
        heardFrom = heardFrom.filter { $0.value >= t }
        return heardFrom.keys.sorted()
    }

    /// Drops a message from `shard`'s leader of `term` if a newer leader of
    /// it has been heard from; otherwise remembers the term.
    mutating func admit(_ shard: UInt64, term t: UInt64) -> Bool {
        guard t >= fence[shard, default: 0] else { return false }
        fence[shard] = t
        return true
    }

    mutating func enqueue(_ q: Queued) {
        queue[q.part.id] = q
        insertOrder(Stamp(ts: q.ts, id: q.part.id))
        addUses(Stamp(ts: q.ts, id: q.part.id), q.reads, q.writes)
        releaseDirty = releaseDirty || q.agreed
    }

    mutating func startAwaiting(_ a: Awaiting) {
        awaiting[a.execution.id] = a
        addUses(Stamp(ts: a.execution.ts, id: a.execution.id), a.reads, a.writes)
    }

    mutating func updateAwaiting(_ a: Awaiting) { awaiting[a.execution.id] = a }

    mutating func stopAwaiting(_ id: TxnId) -> Awaiting? {
        guard let a = awaiting.removeValue(forKey: id) else { return nil }
        removeUses(Stamp(ts: a.execution.ts, id: id), a.reads, a.writes)
        releaseDirty = true
        return a
    }

    /// No earlier queued or awaiting part conflicts with this one: it reads
    /// nothing an earlier one writes, and writes nothing an earlier one touches.
    func mayRun(_ s: Stamp, _ reads: Set<String>, _ writes: Set<String>) -> Bool {
        for k in writes where uses[k]?.first?.stamp != s { return false }
        for k in reads where !writes.contains(k) {
            for u in uses[k] ?? [] {
                if u.stamp == s { break }
                if u.writes { return false }
            }
        }
        return true
    }

    private mutating func addUses(_ s: Stamp, _ reads: Set<String>, _ writes: Set<String>) {
        for k in reads.union(writes) {
            var list = uses[k] ?? []
            var lo = 0, hi = list.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if list[mid].stamp < s { lo = mid + 1 } else { hi = mid }
            }
            list.insert((s, writes.contains(k)), at: lo)
            uses[k] = list
        }
    }

    private mutating func removeUses(_ s: Stamp, _ reads: Set<String>, _ writes: Set<String>) {
        for k in reads.union(writes) {
            guard var list = uses[k], let i = list.firstIndex(where: { $0.stamp == s }) else { continue }
            list.remove(at: i)
            uses[k] = list.isEmpty ? nil : list
        }
    }

    mutating func insertOrder(_ s: Stamp) { order.insertSorted(s) }

    mutating func removeOrder(_ s: Stamp) {
        let i = order.lowerBound(s)
        if i < order.count, order[i] == s { order.remove(at: i) }
    }

    /// Moves a queued transaction to `ts` (agreement only moves it up).
    mutating func reposition(_ id: TxnId, to ts: UInt64) {
        guard var q = queue[id], ts != q.ts else { return }
        removeOrder(Stamp(ts: q.ts, id: id))
        removeUses(Stamp(ts: q.ts, id: id), q.reads, q.writes)
        q.ts = ts
        queue[id] = q
        insertOrder(Stamp(ts: ts, id: id))
        addUses(Stamp(ts: ts, id: id), q.reads, q.writes)
        releaseDirty = true
    }

    mutating func dequeue(_ id: TxnId) -> Queued? {
        guard let q = queue.removeValue(forKey: id) else { return nil }
        removeOrder(Stamp(ts: q.ts, id: id))
        removeUses(Stamp(ts: q.ts, id: id), q.reads, q.writes)
        return q
    }

    /// The earliest queued stamp with a timestamp after `ts`.
    func firstStamp(after ts: UInt64) -> Stamp? {
        let i = order.lowerBound(Stamp(ts: ts + 1, id: TxnId(coordinator: 0, worker: 0, seq: 0)))
        return i < order.count ? order[i] : nil
    }

    func read(_ key: String, _ state: ShardState) -> Int64? { overlay[key]?.value ?? state.store[key] }
}
