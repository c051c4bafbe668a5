import LuigiBase

/// How a shard replica is set up; every field is checked by `validated()`.
public struct ShardConfig: Equatable, Sendable {
    public var shard: UInt64
    public var shardCount: Int
    /// Streams (one per worker): T.worker picks the stream T is logged in.
    public var workers: Int
    /// Coordinator ids: replies and watermarks go to them.
    public var coordinators: [UInt64]
    /// Any coordinator id is accepted (`coordinators` may be empty), and
    /// watermarks are pushed to the coordinators heard from (a submit, a
    /// retire, or a reply this shard sent them) in the last
    /// `coordinatorQuietAfter` µs. For hosts whose
    /// coordinators take a new id each time they start (a node process),
    /// so that a restarted one never reuses a transaction id.
    public var openCoordinators = false
    public var coordinatorQuietAfter: UInt64 = 10_000_000
    /// Re-send an unanswered proposal, vote or recovery request after this long (µs).
    public var resendAfter: UInt64 = 10_000
    /// Push watermarks to coordinators at least this often (µs).
    public var marksEvery: UInt64 = 1_000
    /// Votes held for transactions not yet run here (more are dropped: they are re-sent).
    public var earlyCapacity: Int = 4_096

    public init(shard: UInt64, shardCount: Int, workers: Int, coordinators: [UInt64]) {
        self.shard = shard
        self.shardCount = shardCount
        self.workers = workers
        self.coordinators = coordinators
    }

    public func validated() throws -> ShardConfig {
        guard (1...WatermarkLimits.maxShards).contains(shardCount), shard < UInt64(shardCount) else {
            throw LuigiError.invalidArgument("shard \(shard) of \(shardCount) is out of range")
        }
        guard (1...WatermarkLimits.maxWorkers).contains(workers) else {
            throw LuigiError.invalidArgument("workers must be in 1...\(WatermarkLimits.maxWorkers), got \(workers)")
        }
        guard openCoordinators || !coordinators.isEmpty, Set(coordinators).count == coordinators.count else {
            throw LuigiError.invalidArgument("coordinators must be a non-empty list without duplicates")
        }
        for t in [resendAfter, marksEvery, coordinatorQuietAfter] { try WatermarkLimits.check(t, "interval") }
        guard resendAfter > 0, marksEvery > 0, coordinatorQuietAfter > 0, earlyCapacity >= 1 else {
            throw LuigiError.invalidArgument("intervals and the early-vote capacity must be positive")
        }
        return self
    }
}

/// What a shard replica asks its host to do: messages to send, and records
/// to append to the shard's replicated log (only while it leads).
public struct ShardOutput: Sendable {
    public var messages: [WatermarkEnvelope] = []
    public var appends: [ShardRecord] = []

    public var isEmpty: Bool { messages.isEmpty && appends.isEmpty }
}

/// One replica of one shard: the replicated state every replica applies,
/// and, while its Raft node leads, the shard leader's roles: the hold queue,
/// agreement by max, execution in timestamp order, per-worker streams and
/// their watermarks.
///
/// A new leader serves only after it has applied its whole log and every
/// other shard has answered its recovery request. Proposals are not logged:
/// they go out as soon as a transaction arrives. What keeps the agreed
/// timestamp fixed across failovers is recovery: the answering shards fence
/// the old leader's term (its late proposals are dropped) and report every
/// proposal of this shard they hold, and the new leader reuses those, so a
/// proposal anyone may have run with never changes (docs/ARCHITECTURE.md).
///
/// Pure and sans-I/O: time comes in as `now` (the replica's own clock, in
/// µs), messages through `step`, committed log entries through `apply`; the
/// host sends `takeOutput().messages` and proposes `appends` to the shard's
/// Raft group. Not thread-safe.
public final class ShardNode {
    public let config: ShardConfig
    public private(set) var state: ShardState
    /// The leader's volatile part (nil on a follower).
    var leader: LeaderState?
    var output = ShardOutput()
    /// The largest `now` seen: the clock never runs backwards here.
    private(set) var now: UInt64 = 0
    /// Committed entries that were not shard records (ignored alike on every replica).
    public private(set) var foreignEntries: UInt64 = 0
    /// The term of the last applied entry.
    private var lastAppliedTerm: UInt64 = 0

    public init(config: ShardConfig) throws {
        self.config = try config.validated()
        state = ShardState(shard: config.shard, workers: config.workers)
    }

    public var shard: UInt64 { config.shard }
    /// True while this replica leads, has applied its log and has recovered: it serves.
    public var isServing: Bool { leader?.serving ?? false }

    func advanceClock(_ t: UInt64) { now = max(now, min(t, WatermarkLimits.maxTimestamp)) }

    // MARK: - Role changes (from the host, after each Raft round)

    /// The replica's Raft node leads in `term` (true) or follows. A new
    /// term drops the old leader state; the new one serves once an entry of
    /// its own term has been applied (its log is then all applied).
    public func setRole(leader isLeader: Bool, term: UInt64) {
        if !isLeader {
            leader = nil
        } else if leader?.term != term {
            leader = LeaderState(term: term, workers: config.workers)
            if lastAppliedTerm >= term { becomeCaughtUp() }
        }
    }

    // MARK: - The log

    /// Applies one committed entry of the shard's log (`term` is the
    /// entry's). Empty entries (Raft's no-ops) and entries that are not
    /// shard records change only `foreignEntries`.
    public func apply(entry data: [UInt8], term: UInt64, now t: UInt64) {
        advanceClock(t)
        lastAppliedTerm = max(lastAppliedTerm, term)
        if !data.isEmpty {
            if let record = try? ShardRecord(decoding: data) {
                state.apply(record)
                leaderApplied(record)
            } else {
                foreignEntries += 1
            }
        }
        if let l = leader, !l.caughtUp, term >= l.term { becomeCaughtUp() }
    }

    /// Replaces the replicated state (a snapshot restore).
    public func restore(_ snapshot: ShardState) throws {
        guard snapshot.shard == config.shard, snapshot.workers == config.workers else {
            throw LuigiError.invalidArgument("snapshot of shard \(snapshot.shard) restored into shard \(config.shard)")
        }
        state = snapshot
        if let l = leader { leader = LeaderState(term: l.term, workers: config.workers) }
    }

    // MARK: - Input

    /// Steps a message addressed to this shard. A malformed message throws
    /// `.invalidArgument` and changes nothing; a follower ignores the rest.
    public func step(_ envelope: WatermarkEnvelope, now t: UInt64) throws {
        try check(envelope)
        advanceClock(t)
        guard let l = leader, l.caughtUp else { return }
        switch envelope.message {
        case .recover(let from, let term):
            onRecover(from: from, term: term)
        case .recovered(let from, let term, let txns):
            onRecovered(from: from, term: term, txns: txns)
        case .submit(let txn) where l.serving:
            leader!.heard(from: txn.id.coordinator, at: now)
            onSubmit(txn)
        case .propose(let txn, let from, let term, let ts, let ask) where l.serving:
            if leader!.admit(from, term: term) { onPropose(txn, from: from, ts: ts, ask: ask) }
        case .vote(let id, let shards, let from, let term, let commit, let ask) where l.serving:
            if leader!.admit(from, term: term) { onVote(id, shards: shards, from: from, commit: commit, ask: ask) }
        case .retire(let c, let worker, let below) where l.serving:
            leader!.heard(from: c, at: now)
            onRetire(c, worker, below)
        case .orphansAsk(let c, let pass, let lowest, let highest, let after) where l.serving:
            leader!.heard(from: c, at: now)
            onOrphansAsk(c, pass: pass, lowest...highest, after: after)
        default:
            break
        }
        afterInput()
    }

    /// Timers: re-sends, refusals, watermark heartbeats and releases.
    public func tick(now t: UInt64) {
        advanceClock(t)
        guard leader?.caughtUp == true else { return }
        onTick()
        afterInput()
    }

    /// The next time (this replica's clock) at which a held transaction's
    /// timestamp passes: a host wakes the replica then (nil: none held).
    public var nextDeadline: UInt64? {
        guard let l = leader, l.serving else { return nil }
        return l.firstStamp(after: now)?.ts
    }

    /// True when, as leader, it holds no transaction it has not finished
    /// and seen committed (a follower is always idle).
    public var isIdle: Bool {
        guard let l = leader else { return true }
        return l.queue.isEmpty && l.awaiting.isEmpty && l.finishing.isEmpty
    }

    /// What to send and to append since the last call.
    public func takeOutput() -> ShardOutput {
        defer { output = ShardOutput() }
        return output
    }

    func accepts(coordinator c: UInt64) -> Bool {
        config.openCoordinators ? c <= WatermarkLimits.maxTimestamp : config.coordinators.contains(c)
    }

    /// Every check a shard-bound message must pass, before anything changes.
    func check(_ e: WatermarkEnvelope) throws {
        guard e.toShard, e.to == config.shard else {
            throw LuigiError.invalidArgument("message for \(e.toShard ? "shard" : "coordinator") \(e.to) stepped into shard \(config.shard)")
        }
        func checkTxn(_ id: TxnId, _ shards: [UInt64]) throws {
            guard accepts(coordinator: id.coordinator) else {
                throw LuigiError.invalidArgument("\(id) names unknown coordinator \(id.coordinator)")
            }
            guard Int(id.worker) < config.workers else {
                throw LuigiError.invalidArgument("\(id) names worker \(id.worker) of \(config.workers)")
            }
            guard shards.contains(config.shard), shards.allSatisfy({ $0 < UInt64(config.shardCount) }) else {
                throw LuigiError.invalidArgument("\(id)'s shards \(shards) do not include shard \(config.shard) or are out of range")
            }
        }
        func checkPeer(_ from: UInt64, _ shards: [UInt64]?) throws {
            guard from != config.shard, from < UInt64(config.shardCount), shards?.contains(from) ?? true else {
                throw LuigiError.invalidArgument("shard \(from) is not another shard of the transaction")
            }
        }
        switch e.message {
        case .submit(let t):
            try t.validate()
            try checkTxn(t.id, t.shards)
        case .propose(let t, let from, let term, let ts, _):
            try t.validate()
            try WatermarkLimits.check(ts, "proposal")
            guard ts >= 1 else { throw LuigiError.invalidArgument("a proposal of 0 (every proposal is above a floor >= 0)") }
            try WatermarkLimits.check(term, "term")
            try checkTxn(t.id, t.shards)
            try checkPeer(from, t.shards)
        case .vote(let id, let shards, let from, let term, _, _):
            try WatermarkLimits.check(term, "term")
            try checkTxn(id, shards)
            try checkPeer(from, shards)
        case .retire(let c, let worker, _):
            guard accepts(coordinator: c), Int(worker) < config.workers else {
                throw LuigiError.invalidArgument("retire for unknown coordinator \(c) or worker \(worker)")
            }
        case .orphansAsk(let c, _, let lowest, let highest, _):
            guard accepts(coordinator: c), lowest <= highest, !(lowest...highest).contains(c) else {
                throw LuigiError.invalidArgument("coordinator \(c) asks for the orphans of \(lowest)...\(highest)")
            }
        case .recover(let from, let term):
            try WatermarkLimits.check(term, "term")
            try checkPeer(from, nil)
        case .recovered(let from, let term, let txns):
            try WatermarkLimits.check(term, "term")
            try checkPeer(from, nil)
            for r in txns {
                try r.txn.validate()
                try checkTxn(r.txn.id, r.txn.shards)
                guard r.proposals.allSatisfy({ r.txn.shards.contains($0.shard) }) else {
                    throw LuigiError.invalidArgument("a recovered proposal names a shard outside its transaction")
                }
                for p in r.proposals {
                    try WatermarkLimits.check(p.ts, "proposal")
                    guard p.ts >= 1 else { throw LuigiError.invalidArgument("a recovered proposal of 0") }
                }
            }
        case .reply, .marks, .orphans:
            break
        }
    }
}
