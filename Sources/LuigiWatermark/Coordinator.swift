import LuigiBase

public struct CoordinatorConfig: Equatable, Sendable {
    public var id: UInt64
    public var shardCount: Int
    /// Streams per shard (the shards' `workers`).
    public var workers: Int
    public var rule: CommitRule = .allStreams
    /// Added to the estimated one-way delay when choosing a timestamp (µs).
    public var headroom: UInt64 = 500
    /// The one-way delay assumed before any sample (µs).
    public var initialDelay: UInt64 = 2_000
    /// Re-send a submit that is not acknowledged after this long (µs).
    public var retryAfter: UInt64 = 50_000
    /// Send retire points at most this often (µs).
    public var retireEvery: UInt64 = 10_000
    /// Dead coordinators this one takes over (each range a set of ids; at
    /// most 64 ranges, none holding `id`): it asks the shards what they
    /// left, drives each transaction to its acknowledgement (answering no
    /// client), and retires their streams, so their records do not stay on
    /// the shards forever. Replies and watermarks addressed to them are
    /// this coordinator's to step.
    public var predecessors: [ClosedRange<UInt64>] = []

    public init(id: UInt64, shardCount: Int, workers: Int) {
        self.id = id
        self.shardCount = shardCount
        self.workers = workers
    }

    public func validated() throws -> CoordinatorConfig {
        guard (1...WatermarkLimits.maxShards).contains(shardCount), (1...WatermarkLimits.maxWorkers).contains(workers) else {
            throw LuigiError.invalidArgument("shardCount or workers out of range")
        }
        for t in [headroom, initialDelay, retryAfter, retireEvery] { try WatermarkLimits.check(t, "interval") }
        guard retryAfter > 0, retireEvery > 0 else { throw LuigiError.invalidArgument("intervals must be positive") }
        guard predecessors.count <= 64, !predecessors.contains(where: { $0.contains(id) }) else {
            throw LuigiError.invalidArgument("at most 64 predecessor ranges, none holding the coordinator's own id")
        }
        return self
    }
}

/// A transaction the coordinator has acknowledged (or reported aborted).
public struct Completion: Equatable, Sendable {
    public var id: TxnId
    public var outcome: Outcome
    /// The agreed timestamp (0 when a shard refused the transaction).
    public var ts: UInt64
    /// What each shard's part read.
    public var reads: [UInt64: [ReadResult]]
    public var submittedAt: UInt64
    /// The coordinator's timestamp proposal.
    public var proposedTs: UInt64
    /// The latest shard clock readings: when a part arrived, when one ran.
    public var receivedAt: UInt64
    public var executedAt: UInt64
    /// When the last shard's reply arrived, and when the watermarks allowed
    /// the acknowledgement (coordinator clock).
    public var repliedAt: UInt64
    public var completedAt: UInt64
    public var attempts: Int

    public init(id: TxnId, outcome: Outcome, ts: UInt64, reads: [UInt64: [ReadResult]], submittedAt: UInt64,
                proposedTs: UInt64, receivedAt: UInt64, executedAt: UInt64, repliedAt: UInt64, completedAt: UInt64,
                attempts: Int) {
        self.id = id
        self.outcome = outcome
        self.ts = ts
        self.reads = reads
        self.submittedAt = submittedAt
        self.proposedTs = proposedTs
        self.receivedAt = receivedAt
        self.executedAt = executedAt
        self.repliedAt = repliedAt
        self.completedAt = completedAt
        self.attempts = attempts
    }
}

/// The coordinator role: timestamps transactions in the future, sends each
/// shard its part, collects replies and watermarks, and acknowledges a
/// transaction once every involved shard's watermarks pass its timestamp.
/// Pure and sans-I/O, like `ShardNode`.
public final class Coordinator {
    struct InFlight {
        var txn: Txn
        var ts: UInt64
        var submittedAt: UInt64
        var lastSent: UInt64
        var replies: [UInt64: TxnReply] = [:]
        var repliedAt: UInt64 = 0
        var attempts = 1
        /// A predecessor's: no client waits, no delay sample is taken.
        var adopted = false
    }

    /// Taking over the predecessors, one range at a time, in passes: every
    /// shard lists (page by page) what it holds of the range; each listed
    /// transaction is driven to its acknowledgement, unless a shard's retire
    /// point shows it finished; once all are, each stream is retired up to
    /// its first seq no shard listed. Two passes in a row that find nothing
    /// new end the range.
    struct Adoption {
        var range = 0
        var pass: UInt64 = 1
        /// Per shard: the last id listed this pass (the next page's `after`).
        var cursor: [UInt64: TxnId] = [:]
        var listed: Set<UInt64> = []
        /// Listed this pass: taken over now, or retired but still held.
        var found = 0
        var askedAt: UInt64 = 0
        /// The pass is listed: the next starts after this.
        var nextPassAt: UInt64?
        /// Transactions of the range already taken over (across passes).
        var taken: Set<TxnId> = []
        /// The last pass found nothing new.
        var emptyBefore = false
        /// When the listed pass started waiting for what it drives.
        var busySince: UInt64?
    }

    public struct Stats: Equatable, Sendable {
        public var submitted: UInt64 = 0
        public var committed: UInt64 = 0
        public var aborted: UInt64 = 0
        /// Replies whose agreed timestamp equals the coordinator's proposal
        /// (every reply of a single-shard transaction: nothing to agree on).
        public var fastPath: UInt64 = 0
        public var replies: UInt64 = 0
        public var retries: UInt64 = 0
        /// Times the shards' replies for one transaction named different
        /// timestamps (it waits for newer replies; without failovers, never).
        public var disagreements: UInt64 = 0
        /// Predecessors' transactions taken over and acknowledged.
        public var adopted: UInt64 = 0

        public init() {}
    }

    public let config: CoordinatorConfig
    public private(set) var stats = Stats()
    private var inFlight: [TxnId: InFlight] = [:]
    /// Transactions every shard has replied to, by agreed timestamp: they
    /// wait for watermarks, and a watermark report wakes only those at or
    /// below it.
    private var waiting: [Stamp] = []
    /// Acknowledged may-abort transactions whose shards have not all
    /// reported their outcome record committed: not retired until they have
    /// (a shard may still need another's vote), re-asked on the retry timer.
    private var unsettled: [TxnId: (txn: Txn, pending: Set<UInt64>, lastSent: UInt64)] = [:]
    private var nextSeq: [UInt64]
    private var estimators: [DelayEstimator]
    /// Per shard: committed watermarks (elementwise max) and the newest
    /// leader term heard from.
    public private(set) var marks: [[UInt64]]
    private var terms: [UInt64]
    /// When each shard's newest leader last sent us watermarks (a push or a
    /// reply): a shard silent for `retryAfter` may not know us.
    private var heardAt: [UInt64]
    private var retireSent: [UInt64]
    private var retireSentAt: UInt64 = 0
    /// The dead coordinators taken over: the config's, then `adopt`'s.
    public private(set) var predecessors: [ClosedRange<UInt64>]
    /// Nil once every predecessor range is taken over.
    private var adoption: Adoption?
    /// The last pass of a finished adoption (pass numbers never repeat).
    private var lastPass: UInt64 = 0
    /// Per predecessor stream of the range being taken over: the highest
    /// retire point a shard reported, and the one this coordinator sent.
    private var knownRetired: [ShardState.RetireKey: UInt64] = [:]
    private var retireSentFor: [ShardState.RetireKey: UInt64] = [:]
    private var now: UInt64 = 0
    private var output: [WatermarkEnvelope] = []
    private var completions: [Completion] = []

    public init(config: CoordinatorConfig) throws {
        self.config = try config.validated()
        nextSeq = Array(repeating: 1, count: config.workers)
        retireSent = Array(repeating: 1, count: config.workers)
        estimators = Array(repeating: DelayEstimator(initial: config.initialDelay), count: config.shardCount)
        marks = Array(repeating: Array(repeating: 0, count: config.workers), count: config.shardCount)
        terms = Array(repeating: 0, count: config.shardCount)
        heardAt = Array(repeating: 0, count: config.shardCount)
        predecessors = config.predecessors
        adoption = predecessors.isEmpty ? nil : Adoption()
    }

    public var id: UInt64 { config.id }
    public var inFlightCount: Int { inFlight.count }
    /// True until every predecessor is taken over.
    public var isAdopting: Bool { adoption != nil }

    /// Whether messages for `id` are this coordinator's.
    public func answers(for id: UInt64) -> Bool {
        id == config.id || predecessors.contains { $0.contains(id) }
    }

    /// The current one-way delay estimate to `shard` (µs).
    public func estimatedDelay(to shard: UInt64) -> UInt64? {
        shard < UInt64(config.shardCount) ? estimators[Int(shard)].estimate : nil
    }

    private func advanceClock(_ t: UInt64) { now = max(now, min(t, WatermarkLimits.maxTimestamp)) }

    // MARK: - Submitting

    /// Starts a transaction of `worker`'s stream: `parts` maps each involved
    /// shard to its ops. Bad input throws and changes nothing.
    @discardableResult
    public func submit(_ parts: [UInt64: [Op]], worker: UInt32, now t: UInt64) throws -> TxnId {
        guard Int(worker) < config.workers else {
            throw LuigiError.invalidArgument("worker \(worker) of \(config.workers)")
        }
        guard !parts.isEmpty, parts.keys.allSatisfy({ $0 < UInt64(config.shardCount) }) else {
            throw LuigiError.invalidArgument("a transaction needs parts for shards below \(config.shardCount)")
        }
        advanceClock(t)
        let shards = parts.keys.sorted()
        let mayAbort = parts.values.contains { $0.contains(where: \.mayAbort) }
        let id = TxnId(coordinator: config.id, worker: worker, seq: nextSeq[Int(worker)])
        let delay = shards.map { estimators[Int($0)].estimate }.max() ?? 0
        let ts = min(now + delay + config.headroom, WatermarkLimits.maxTimestamp)
        let txn = Txn(id: id, ts: ts, mayAbort: mayAbort, parts: shards.map { ShardOps(shard: $0, ops: parts[$0] ?? []) })
        try txn.validate()
        nextSeq[Int(worker)] += 1
        inFlight[id] = InFlight(txn: txn, ts: ts, submittedAt: now, lastSent: now)
        stats.submitted += 1
        for s in shards { output.append(WatermarkEnvelope(to: s, .submit(txn))) }
        return id
    }

    // MARK: - Input

    /// Steps a reply or watermark report. Malformed input throws and
    /// changes nothing.
    public func step(_ e: WatermarkEnvelope, now t: UInt64) throws {
        guard !e.toShard, answers(for: e.to) else {
            throw LuigiError.invalidArgument("message for \(e.to) stepped into coordinator \(config.id)")
        }
        switch e.message {
        case .reply(let r):
            try checkShard(r.shard, r.marks)
            try WatermarkLimits.check(r.ts, "timestamp")
            guard answers(for: r.id.coordinator) else { throw LuigiError.invalidArgument("reply for another coordinator") }
            advanceClock(t)
            noteMarks(r.shard, r.term, r.marks)
            onReply(r)
        case .marks(let shard, let term, let m):
            try checkShard(shard, m)
            advanceClock(t)
            noteMarks(shard, term, m)
            let wm = config.rule == .allStreams ? (marks[Int(shard)].min() ?? 0) : (marks[Int(shard)].max() ?? 0)
            var i = 0
            while i < waiting.count, waiting[i].ts <= wm {
                let id = waiting[i].id
                if inFlight[id]?.txn.shards.contains(shard) == true { tryComplete(id) }
                if inFlight[id] == nil { waiting.remove(at: i) } else { i += 1 }
            }
        case .orphans(let shard, let term, let pass, let after, let txns, let retired, let more):
            guard shard < UInt64(config.shardCount) else { throw LuigiError.invalidArgument("orphans from shard \(shard)") }
            try WatermarkLimits.check(term, "term")
            // Each will be driven like this coordinator's own: within its shards and streams.
            for txn in txns {
                try txn.validate()
                guard txn.shards.contains(shard), txn.shards.allSatisfy({ $0 < UInt64(config.shardCount) }),
                    Int(txn.id.worker) < config.workers
                else {
                    throw LuigiError.invalidArgument("orphan \(txn.id) names shards \(txn.shards) or a worker out of range")
                }
            }
            advanceClock(t)
            onOrphans(shard, pass: pass, after: after, txns, retired, more: more)
        default:
            throw LuigiError.invalidArgument("a coordinator takes only replies, watermarks and orphans")
        }
    }

    private func checkShard(_ shard: UInt64, _ m: [UInt64]) throws {
        guard shard < UInt64(config.shardCount), m.count == config.workers else {
            throw LuigiError.invalidArgument("report from shard \(shard) with \(m.count) marks")
        }
        for v in m { try WatermarkLimits.check(v, "watermark") }
    }

    private func noteMarks(_ shard: UInt64, _ term: UInt64, _ m: [UInt64]) {
        let s = Int(shard)
        terms[s] = max(terms[s], term)
        if term == terms[s] { heardAt[s] = now }
        for w in 0..<config.workers { marks[s][w] = max(marks[s][w], m[w]) }
    }

    private func onReply(_ r: TxnReply) {
        if r.decided, var u = unsettled[r.id] {
            u.pending.remove(r.shard)
            unsettled[r.id] = u.pending.isEmpty ? nil : u
        }
        guard var t = inFlight[r.id], t.txn.shards.contains(r.shard) else { return }
        if t.replies[r.shard].map({ $0.term <= r.term }) ?? true {
            if t.replies[r.shard] == nil {
                stats.replies += 1
                // Nothing to agree on for one shard: its leader stamps it itself.
                if r.ts == t.ts || t.txn.parts.count == 1 { stats.fastPath += 1 }
                if t.attempts == 1 && !t.adopted {
                    estimators[Int(r.shard)].add(sentAt: t.submittedAt, receivedAt: r.receivedAt)
                }
            }
            t.replies[r.shard] = r
            if t.replies.count == t.txn.parts.count { t.repliedAt = now }
            inFlight[r.id] = t
        }
        tryComplete(r.id)
        if inFlight[r.id] != nil, let t = inFlight[r.id], t.replies.count == t.txn.parts.count {
            waiting.insertSorted(Stamp(ts: r.ts, id: r.id))
        }
    }

    /// Acknowledges `id` when every shard replied alike and, for every
    /// shard, the watermarks (from no newer a term than its reply) pass the
    /// agreed timestamp.
    private func tryComplete(_ id: TxnId) {
        guard let t = inFlight[id], t.replies.count == t.txn.parts.count, let first = t.replies.values.first else { return }
        guard t.replies.values.allSatisfy({ $0.ts == first.ts }) else {
            stats.disagreements += 1
            // Keep waiting: a newer leader's reply replaces a stale one.
            return
        }
        for (s, r) in t.replies {
            guard r.term >= terms[Int(s)] else { return }  // a newer leader may have re-run it: ask again on retry
            let m = marks[Int(s)]
            let wm = config.rule == .allStreams ? (m.min() ?? 0) : m[Int(id.worker)]
            guard first.ts <= wm else { return }
        }
        inFlight[id] = nil
        let undecided = Set(t.replies.filter { !$0.value.decided }.keys)
        if !undecided.isEmpty { unsettled[id] = (t.txn, undecided, now) }
        // Each shard answers with its outcome or its vote: the AND.
        let outcome: Outcome = t.replies.values.allSatisfy { $0.outcome == .committed } ? .committed : .aborted
        if t.adopted {
            stats.adopted += 1
            return
        }
        if outcome == .committed { stats.committed += 1 } else { stats.aborted += 1 }
        completions.append(Completion(
            id: id, outcome: outcome, ts: first.ts, reads: t.replies.mapValues(\.reads),
            submittedAt: t.submittedAt, proposedTs: t.ts,
            receivedAt: t.replies.values.map(\.receivedAt).max() ?? 0, executedAt: t.replies.values.map(\.executedAt).max() ?? 0,
            repliedAt: t.repliedAt, completedAt: now, attempts: t.attempts))
    }

    // MARK: - Timers

    /// Retries what waits too long (to the shards whose reply is missing or
    /// stale, or that have sent no watermarks for `retryAfter`) and sends
    /// retire points.
    public func tick(now t: UInt64) {
        advanceClock(t)
        for id in inFlight.keys.sorted() {
            guard var f = inFlight[id], now >= f.lastSent + config.retryAfter else { continue }
            f.lastSent = now
            var resent = false
            for s in f.txn.shards {
                let stale = (f.replies[s]?.term ?? 0) < max(1, terms[Int(s)])
                // A silent shard may have a new leader that does not know
                // us (shards with open coordinator sets push watermarks only
                // to coordinators heard from): the submit tells it, and it
                // answers from its record.
                guard stale || now >= heardAt[Int(s)] + config.retryAfter else { continue }
                if stale { f.replies[s] = nil }
                output.append(WatermarkEnvelope(to: s, .submit(f.txn)))
                resent = true
            }
            if resent {
                f.attempts += 1
                stats.retries += 1
            }
            inFlight[id] = f
        }
        for id in unsettled.keys.sorted() {
            guard var u = unsettled[id], now >= u.lastSent + config.retryAfter else { continue }
            u.lastSent = now
            unsettled[id] = u
            for s in u.pending.sorted() { output.append(WatermarkEnvelope(to: s, .submit(u.txn))) }
        }
        if now >= retireSentAt + config.retireEvery {
            retireSentAt = now
            var lowest = nextSeq
            for id in inFlight.keys where id.coordinator == config.id {
                lowest[Int(id.worker)] = min(lowest[Int(id.worker)], id.seq)
            }
            for id in unsettled.keys where id.coordinator == config.id {
                lowest[Int(id.worker)] = min(lowest[Int(id.worker)], id.seq)
            }
            for w in 0..<config.workers where lowest[w] > retireSent[w] {
                retireSent[w] = lowest[w]
                for s in 0..<UInt64(config.shardCount) {
                    output.append(WatermarkEnvelope(to: s, .retire(coordinator: config.id, worker: UInt32(w), below: lowest[w])))
                }
            }
        }
        askOrphans()
    }

    // MARK: - Taking over predecessors

    /// Adopted transactions in flight past which the next page waits for the timer.
    static let adoptingAtOnce = 1024

    /// Takes over the dead coordinators `ids` too (see
    /// `CoordinatorConfig.predecessors`). Refused, changing nothing: a range
    /// holding this coordinator's id, or past 64 ranges in all.
    public func adopt(_ ids: ClosedRange<UInt64>) throws {
        guard !ids.contains(config.id), predecessors.count < 64 else {
            throw LuigiError.invalidArgument("cannot take over \(ids): it holds this coordinator's id, or 64 ranges are taken over")
        }
        predecessors.append(ids)
        if adoption == nil { adoption = Adoption(range: predecessors.count - 1, pass: lastPass + 1) }
    }

    /// On the timer: asks the shards that have not finished listing the
    /// pass (again, every `retryAfter`), or starts the next pass.
    private func askOrphans() {
        settleAdoptionPass()
        guard var a = adoption else { return }
        if let at = a.nextPassAt {
            guard now >= at else { return }
            a = Adoption(range: a.range, pass: a.pass + 1, taken: a.taken, emptyBefore: a.emptyBefore)
        } else {
            guard now >= a.askedAt + config.retryAfter else { return }
        }
        a.askedAt = now
        adoption = a
        for s in 0..<UInt64(config.shardCount) where !a.listed.contains(s) { askOrphans(of: s) }
    }

    private func askOrphans(of shard: UInt64) {
        guard let a = adoption else { return }
        let range = predecessors[a.range]
        output.append(WatermarkEnvelope(to: shard, .orphansAsk(
            coordinator: config.id, pass: a.pass, lowest: range.lowerBound, highest: range.upperBound, after: a.cursor[shard])))
    }

    private func onOrphans(_ shard: UInt64, pass: UInt64, after: TxnId?, _ txns: [Txn], _ retired: [RetirePoint], more: Bool) {
        // Only the answer to the page asked last of this shard in this pass.
        guard var a = adoption, a.nextPassAt == nil, pass == a.pass, !a.listed.contains(shard), after == a.cursor[shard],
            !more || !txns.isEmpty
        else { return }
        let range = predecessors[a.range]
        for p in retired where range.contains(p.coordinator) {
            let key = ShardState.RetireKey(coordinator: p.coordinator, worker: p.worker)
            knownRetired[key] = max(knownRetired[key, default: 0], p.below)
        }
        // Finished everywhere (retired on some shard): no shard answers for them any more.
        for id in inFlight.keys.sorted() where range.contains(id.coordinator) && id.seq < knownRetired[ShardState.RetireKey(id), default: 0] {
            inFlight[id] = nil
        }
        for id in unsettled.keys.sorted() where range.contains(id.coordinator) && id.seq < knownRetired[ShardState.RetireKey(id), default: 0] {
            unsettled[id] = nil
        }
        for t in txns where range.contains(t.id.coordinator) {
            let key = ShardState.RetireKey(t.id)
            // Still here though retired (that retire has not applied yet, or was lost).
            if t.id.seq < max(knownRetired[key, default: 0], retireSentFor[key, default: 0]) {
                a.found += 1
                continue
            }
            guard a.taken.insert(t.id).inserted else { continue }  // taken, and above a gap
            a.found += 1
            inFlight[t.id] = InFlight(txn: t, ts: t.ts, submittedAt: now, lastSent: now, adopted: true)
            for s in t.shards { output.append(WatermarkEnvelope(to: s, .submit(t))) }
        }
        if more, let last = txns.last {
            a.cursor[shard] = last.id
        } else {
            a.listed.insert(shard)
        }
        adoption = a
        // The next page at once while few are in flight; else on the timer.
        if more && inFlight.values.lazy.filter(\.adopted).count < Self.adoptingAtOnce { askOrphans(of: shard) }
        settleAdoptionPass()
    }

    /// Once every shard listed the pass and all it found is acknowledged
    /// and settled: retires each of the range's streams up to its first seq
    /// no shard listed (a seq nobody listed may still arrive and run, so it
    /// is never retired under it; records above such a gap stay). The
    /// second pass in a row that finds nothing new and nothing awaiting its
    /// retire ends the range; otherwise the next pass starts `retryAfter`
    /// later.
    private func settleAdoptionPass() {
        guard var a = adoption, a.nextPassAt == nil, a.listed.count == config.shardCount else { return }
        let range = predecessors[a.range]
        let busy = inFlight.keys.contains { range.contains($0.coordinator) } || unsettled.keys.contains { range.contains($0.coordinator) }
        if !busy {
            var streams = Set(knownRetired.keys.filter { range.contains($0.coordinator) })
            for id in a.taken { streams.insert(ShardState.RetireKey(id)) }
            for key in streams.sorted(by: { ($0.coordinator, $0.worker) < ($1.coordinator, $1.worker) }) {
                var below = max(1, knownRetired[key, default: 0])
                while a.taken.contains(TxnId(coordinator: key.coordinator, worker: key.worker, seq: below)) { below += 1 }
                guard below > 1 else { continue }
                retireSentFor[key] = max(retireSentFor[key, default: 0], below)
                for s in 0..<UInt64(config.shardCount) {
                    output.append(WatermarkEnvelope(to: s, .retire(coordinator: key.coordinator, worker: key.worker, below: below)))
                }
            }
            if a.found == 0 && a.emptyBefore {
                for key in Array(knownRetired.keys) where range.contains(key.coordinator) { knownRetired[key] = nil }
                for key in Array(retireSentFor.keys) where range.contains(key.coordinator) { retireSentFor[key] = nil }
                a.range += 1
                adoption = a.range == predecessors.count ? nil : Adoption(range: a.range, pass: a.pass + 1)
                lastPass = a.pass
                return
            }
            a.emptyBefore = a.found == 0
            a.nextPassAt = now + config.retryAfter
        } else {
            // Waits (checked on every tick) for what it drives; but lists
            // again after a while: a shard's retire point may release one
            // that no shard answers any more.
            a.emptyBefore = false
            let since = a.busySince ?? now
            a.busySince = since
            if now >= since + 20 * config.retryAfter { a.nextPassAt = now }
        }
        adoption = a
    }

    public func takeOutput() -> [WatermarkEnvelope] {
        defer { output = [] }
        return output
    }

    public func takeCompletions() -> [Completion] {
        defer { completions = [] }
        return completions
    }
}
