import LuigiBase

/// The volatile state of a shard leader, rebuilt from the replicated state
/// whenever a replica starts to serve. Nothing here needs to survive a
/// crash: what other shards may have relied on (proposals, votes) is
/// durable in the log before it is sent.
struct LeaderState {
    /// A transaction waiting to run: for its proposal to be durable, for
    /// the other shards' proposals, for its timestamp to pass, or for an
    /// earlier conflicting transaction.
    struct Queued {
        var part: TxnPart
        /// Its place in the total order: the proposal, then the agreed ts.
        var ts: UInt64
        var proposal: UInt64
        var durable: Bool
        var agreed = false
        var peers: [UInt64: UInt64] = [:]
        var refused = false
        var receivedAt: UInt64
        var lastSent: UInt64 = 0
        let reads: Set<String>
        let writes: Set<String>
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

    /// Proposals and votes that arrived before the submit.
    struct Early {
        var firstSeen: UInt64
        var shards: [UInt64]
        var proposals: [UInt64: (ts: UInt64, refused: Bool)] = [:]
        var votes: [UInt64: Bool] = [:]
        var refusing = false
    }

    let term: UInt64
    var serving = false
    var queue: [TxnId: Queued] = [:]
    /// The queue's keys in the total order.
    var order: [Stamp] = []
    var awaiting: [TxnId: Awaiting] = [:]
    var early: [TxnId: Early] = [:]
    /// Finished here in this term, its record not yet applied: a retry
    /// must not run it again.
    var finishing: Set<TxnId> = []
    /// Writes run but not yet committed, newest per key, with their writer.
    var overlay: [String: (value: Int64, writer: TxnId)] = [:]
    var readFrontier: [String: UInt64] = [:]
    var writeFrontier: [String: UInt64] = [:]
    /// Per stream: no transaction of it will ever run at or below this.
    var floor: [UInt64]
    var lastMarksAppended: [UInt64]
    var lastMarksAppendedAt: UInt64 = 0
    var finishedSinceMarks = false
    var marksPushedAt: UInt64 = 0
    var marksChanged = false
    var retireAppended: [ShardState.RetireKey: UInt64] = [:]

    init(term: UInt64, workers: Int) {
        self.term = term
        floor = Array(repeating: 0, count: workers)
        lastMarksAppended = floor
    }

    mutating func enqueue(_ q: Queued) {
        queue[q.part.id] = q
        insertOrder(Stamp(ts: q.ts, id: q.part.id))
    }

    mutating func insertOrder(_ s: Stamp) {
        order.insert(s, at: position(of: s))
    }

    mutating func removeOrder(_ s: Stamp) {
        let i = position(of: s)
        if i < order.count, order[i] == s { order.remove(at: i) }
    }

    /// Moves a queued transaction to `ts` (agreement only moves it up).
    mutating func reposition(_ id: TxnId, to ts: UInt64) {
        guard var q = queue[id], ts != q.ts else { return }
        removeOrder(Stamp(ts: q.ts, id: id))
        q.ts = ts
        queue[id] = q
        insertOrder(Stamp(ts: ts, id: id))
    }

    mutating func dequeue(_ id: TxnId) -> Queued? {
        guard let q = queue.removeValue(forKey: id) else { return nil }
        removeOrder(Stamp(ts: q.ts, id: id))
        return q
    }

    /// First index whose stamp is not below `s`.
    private func position(of s: Stamp) -> Int {
        var lo = 0, hi = order.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if order[mid] < s { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func read(_ key: String, _ state: ShardState) -> Int64? { overlay[key]?.value ?? state.store[key] }
}
