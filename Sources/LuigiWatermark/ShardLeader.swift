import LuigiBase

/// The shard leader's protocol: recover, hold, agree, run in timestamp
/// order, log, vote, and mark.
extension ShardNode {
    // MARK: - Becoming a leader: catch up, then recover

    /// The leader has applied its whole log. It rebuilds what the log
    /// holds, fences and asks every other shard what they know of shared
    /// unfinished transactions, and serves once all have answered.
    func becomeCaughtUp() {
        guard var l = leader, !l.caughtUp else { return }
        l.caughtUp = true
        l.readFrontier = state.readFrontier
        l.writeFrontier = state.writeFrontier
        l.floor = state.marks
        l.lastMarksAppended = state.marks
        l.maxFinishedTs = state.txns.values.map(\.execution.ts).max() ?? 0
        for rec in state.txns.values where rec.outcome == nil {
            let e = rec.execution
            l.startAwaiting(.init(execution: e, durable: true, reads: Set(e.reads.map(\.key)), writes: Set(e.writes.map(\.key))))
        }
        l.recoveryPending = Set((0..<UInt64(config.shardCount)).filter { $0 != shard })
        leader = l
        askRecovery()
        if l.recoveryPending.isEmpty { finishRecovery() }
    }

    private func askRecovery() {
        leader!.recoveryAskedAt = now
        for s in leader!.recoveryPending.sorted() { send(.recover(from: shard, term: leader!.term), to: s) }
    }

    /// Another shard's new leader asks: fence its older terms, and tell it
    /// every transaction involving it that this shard knows, with the
    /// proposals held (what its predecessor proposed, if anyone got it).
    func onRecover(from s: UInt64, term t: UInt64) {
        guard leader!.caughtUp, leader!.admit(s, term: t) else { return }
        var known: [TxnId: (txn: Txn, proposals: [UInt64: UInt64])] = [:]
        // What ran here, committed or not yet, with the proposals it ran on.
        let ran = state.txns.values.map(\.execution) + leader!.awaiting.values.map(\.execution) + leader!.finishing.values
        for e in ran where e.shards.contains(s) && known[e.id] == nil {
            known[e.id] = (e.txn, Dictionary(uniqueKeysWithValues: e.proposals.map { ($0.shard, $0.ts) }))
        }
        for (id, q) in leader!.queue where q.txn.shards.contains(s) && known[id] == nil {
            var p = q.peers
            p[shard] = q.proposal
            known[id] = (q.txn, p)
        }
        for (id, r) in leader!.recovered where r.txn.shards.contains(s) && known[id] == nil { known[id] = r }
        let answer = known.sorted { $0.key < $1.key }.map { _, v in
            RecoveredTxn(txn: v.txn, proposals: v.proposals.sorted { $0.key < $1.key }.map { ShardStamp(shard: $0.key, ts: $0.value) })
        }
        send(.recovered(from: shard, term: leader!.term, txns: answer), to: s)
    }

    func onRecovered(from s: UInt64, term t: UInt64, txns: [RecoveredTxn]) {
        guard leader!.admit(s, term: t), !leader!.serving, leader!.recoveryPending.contains(s) else { return }
        for r in txns where r.txn.shards.contains(shard) {
            var entry = leader!.recovered[r.txn.id] ?? (r.txn, [:])
            guard entry.txn == r.txn else { continue }  // one id, one transaction
            for p in r.proposals where entry.proposals[p.shard] == nil { entry.proposals[p.shard] = p.ts }
            leader!.recovered[r.txn.id] = entry
        }
        leader!.recoveryPending.remove(s)
        if leader!.recoveryPending.isEmpty { finishRecovery() }
    }

    /// Every shard answered: queue what is unfinished here, at the proposal
    /// this shard's predecessor made if anyone holds it (someone may have
    /// run the transaction with it), else at a fresh one; then serve.
    private func finishRecovery() {
        leader!.serving = true
        let recovered = leader!.recovered
        leader!.recovered = [:]
        let sorted = recovered.sorted { $0.key < $1.key }
        for (id, r) in sorted where state.txns[id] == nil && leader!.awaiting[id] == nil && !state.isRetired(id) {
            if let mine = r.proposals[shard] {
                admitTxn(r.txn, proposal: mine, peers: r.proposals)
            }
        }
        for (id, r) in sorted where state.txns[id] == nil && leader!.awaiting[id] == nil && leader!.queue[id] == nil
            && !state.isRetired(id)
        {
            admitTxn(r.txn, proposal: nil, peers: r.proposals)
        }
        for s in leader!.order { sendProposal(s.id, ask: true) }
        for id in leader!.awaiting.keys.sorted() { sendVote(id, ask: true) }
        leader!.marksChanged = true
    }

    // MARK: - Transactions arriving

    func onSubmit(_ txn: Txn) {
        guard isNew(txn.id) else {
            if let rec = state.txns[txn.id] { replyFromRecord(rec) }
            return
        }
        admitTxn(txn, proposal: nil, peers: [:])
    }

    private func isNew(_ id: TxnId) -> Bool {
        !state.isRetired(id) && state.txns[id] == nil && leader!.queue[id] == nil && leader!.awaiting[id] == nil
            && leader!.finishing[id] == nil
    }

    /// Queues a transaction at `proposal`, or at a fresh one: above the
    /// stream's watermark floor and above the last run reads and writes of
    /// its keys. A single-shard transaction is stamped from this leader's
    /// clock (nothing to agree on, so nothing to wait for); a multi-shard
    /// one from the coordinator's future timestamp, and its proposal goes to
    /// the other shards at once.
    private func admitTxn(_ txn: Txn, proposal: UInt64?, peers known: [UInt64: UInt64]) {
        guard let part = txn.part(for: shard) else { return }
        let l = leader!
        let (r, w) = part.keys
        let single = txn.parts.count == 1
        var p: UInt64
        if let proposal {
            p = proposal
        } else {
            p = max(single ? now : txn.ts, l.floor[Int(txn.id.worker)] + 1)
            for k in r { p = max(p, (l.writeFrontier[k] ?? 0) + 1) }
            for k in w { p = max(p, (l.readFrontier[k] ?? 0) + 1, (l.writeFrontier[k] ?? 0) + 1) }
            p = min(p, WatermarkLimits.maxTimestamp)
        }
        var q = LeaderState.Queued(txn: txn, part: part, ts: p, proposal: p, receivedAt: now, reads: r, writes: w)
        q.peers = known.filter { $0.key != shard && txn.shards.contains($0.key) }
        q.agreed = single
        leader!.enqueue(q)
        if !single {
            sendProposal(txn.id, ask: false)
            agree(txn.id)
        }
    }

    func onPropose(_ txn: Txn, from: UInt64, ts: UInt64, ask: Bool) {
        let id = txn.id
        if var q = leader!.queue[id] {
            // The same id must mean the same transaction.
            guard q.txn == txn else { return }
            if q.peers[from] == nil && !q.agreed {
                q.peers[from] = ts
                leader!.queue[id] = q
                agree(id)
            }
            if ask { sendProposal(id, ask: false, only: from) }
            return
        }
        if let e = state.txns[id]?.execution ?? leader!.awaiting[id]?.execution ?? leader!.finishing[id] {
            // Ran here already: answer, never resurrect.
            if ask, let mine = e.proposals.first(where: { $0.shard == shard }) {
                send(.propose(e.txn, from: shard, term: leader!.term, ts: mine.ts, ask: false), to: from)
            }
            return
        }
        guard isNew(id) else { return }
        // The submit has not arrived (or never will): the proposal brought the transaction.
        admitTxn(txn, proposal: nil, peers: [from: ts])
    }

    func onVote(_ id: TxnId, shards: [UInt64], from: UInt64, commit: Bool, ask: Bool) {
        if var a = leader!.awaiting[id] {
            // Only the transaction's own shards vote on it.
            guard a.execution.shards == shards else { return }
            if a.votes[from] == nil { a.votes[from] = commit }
            leader!.updateAwaiting(a)
            if ask && a.durable { sendVote(id, ask: false, only: from) }
            decide(id)
            return
        }
        if let e = state.txns[id]?.execution {
            guard e.shards == shards else { return }
            if ask { send(.vote(id: id, shards: e.shards, from: shard, term: leader!.term, commit: e.vote, ask: false), to: from) }
            return
        }
        guard !state.isRetired(id) else { return }
        // Not run here yet: keep the vote (with the shards it names) for when it is.
        if let q = leader!.queue[id], q.txn.shards != shards { return }
        if leader!.earlyVotes[id] == nil && leader!.earlyVotes.count >= config.earlyCapacity { return }
        leader!.earlyVotes[id, default: [:]][from] = leader!.earlyVotes[id]?[from] ?? commit
    }

    func onRetire(_ c: UInt64, _ worker: UInt32, _ below: UInt64) {
        let key = ShardState.RetireKey(coordinator: c, worker: worker)
        guard below > max(state.retiredBelow(c, worker), leader!.retireAppended[key] ?? 0) else { return }
        leader!.retireAppended[key] = below
        output.appends.append(.retire(coordinator: c, worker: worker, below: below))
    }

    /// A coordinator taking over dead predecessors asks what they left
    /// here: the next page of their transactions, in id order, recorded
    /// (finished, or waiting for votes) or still on their way through this
    /// leader (a record to be).
    func onOrphansAsk(_ c: UInt64, pass: UInt64, _ predecessors: ClosedRange<UInt64>, after: TxnId?) {
        let l = leader!
        func txn(_ id: TxnId) -> Txn? {
            state.txns[id]?.execution.txn ?? l.queue[id]?.txn ?? l.awaiting[id]?.execution.txn ?? l.finishing[id]?.txn
        }
        let ids = Set(state.txns.keys).union(l.queue.keys).union(l.awaiting.keys).union(l.finishing.keys)
            .filter { id in predecessors.contains(id.coordinator) && (after.map { $0 < id } ?? true) }
            .sorted()
        // At most `orphansPerPage` transactions and `orphansPageBytes` (one at least).
        var page: [Txn] = []
        var bytes = 0
        for id in ids {
            guard let t = txn(id) else { continue }
            var w = ByteWriter()
            w.txn(t)
            if !page.isEmpty && (page.count == WatermarkLimits.orphansPerPage || bytes + w.bytes.count > WatermarkLimits.orphansPageBytes) {
                break
            }
            page.append(t)
            bytes += w.bytes.count
        }
        let more = page.count < ids.count
        // With the first page: a transaction retired here may still be
        // listed elsewhere, and its submit gets no answer here.
        let retired = after != nil ? [] : state.retired.filter { predecessors.contains($0.key.coordinator) }
            .map { RetirePoint(coordinator: $0.key.coordinator, worker: $0.key.worker, below: $0.value) }
            .sorted { ($0.coordinator, $0.worker) < ($1.coordinator, $1.worker) }
        send(.orphans(shard: shard, term: leader!.term, pass: pass, after: after, txns: page, retired: retired, more: more), to: c)
    }

    // MARK: - Timers

    func onTick() {
        let l = leader!
        if !l.serving {
            if l.caughtUp && now >= l.recoveryAskedAt + config.resendAfter { askRecovery() }
            return
        }
        // In the total order (a deterministic order of sends).
        for s in l.order {
            guard let q = l.queue[s.id], !q.single, !q.agreed, now >= q.lastSent + config.resendAfter else { continue }
            sendProposal(s.id, ask: true)
        }
        for id in l.awaiting.keys.sorted() {
            guard let a = l.awaiting[id], a.durable, now >= a.lastSent + config.resendAfter else { continue }
            sendVote(id, ask: true)
        }
        // Heartbeat marks while a part run here is not yet under them (a
        // stream that was held may have moved); an idle shard appends none.
        if now >= l.lastMarksAppendedAt + config.marksEvery && (l.lastMarksAppended.min() ?? 0) < l.maxFinishedTs {
            updateFloor()
            if leader!.floor != leader!.lastMarksAppended { appendMarks() }
        }
        if now >= l.marksPushedAt + config.marksEvery { leader!.marksChanged = true }
    }

    // MARK: - After every input: agree, release, mark

    func afterInput() {
        guard let l = leader, l.serving else { return }
        if l.releaseDirty || (l.firstStamp(after: l.releasedAt).map { $0.ts <= now } ?? false) { release() }
        if leader!.finishedSinceMarks {
            updateFloor()
            appendMarks()
        }
        if leader!.marksChanged { pushMarks() }
    }

    /// A multi-shard transaction with every shard's proposal takes the
    /// maximum: the agreed timestamp, the same on every shard.
    private func agree(_ id: TxnId) {
        guard var q = leader!.queue[id], !q.agreed, q.peers.count == q.txn.parts.count - 1 else { return }
        q.agreed = true
        leader!.queue[id] = q
        leader!.releaseDirty = true
        leader!.reposition(id, to: max(q.proposal, q.peers.values.max() ?? 0))
    }

    /// Runs every agreed transaction whose time has come, in the total
    /// order, skipping past those that wait on an earlier conflicting one
    /// (queued, or run and waiting for votes).
    private func release() {
        leader!.releaseDirty = false
        leader!.releasedAt = now
        let due = leader!.order.prefix { $0.ts <= now }
        for s in due {
            guard let q = leader!.queue[s.id], q.agreed, leader!.mayRun(s, q.reads, q.writes),
                let q = leader!.dequeue(s.id)
            else { continue }
            run(q)
        }
    }

    /// Runs a part at its agreed timestamp against the leader's view
    /// (committed state plus writes not yet committed).
    private func run(_ q: LeaderState.Queued) {
        let part = PartRun(q.part.ops) { leader!.read($0, state) }
        let vote = part.vote, reads = part.reads
        let writes = part.writes(q.writes.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        for k in q.reads { leader!.readFrontier[k] = max(leader!.readFrontier[k] ?? 0, q.ts) }
        for k in q.writes { leader!.writeFrontier[k] = max(leader!.writeFrontier[k] ?? 0, q.ts) }
        let pending = q.txn.mayAbort && !q.single
        let e = Execution(txn: q.txn, ts: q.ts, proposals: q.proposals(shard), vote: vote, pending: pending,
                          reads: reads, writes: vote || pending ? writes : [], receivedAt: q.receivedAt)
        if pending {
            output.appends.append(.exec(e))
            var a = LeaderState.Awaiting(execution: e, reads: q.reads, writes: q.writes)
            // Early votes count only from the transaction's other shards.
            a.votes = (leader!.earlyVotes.removeValue(forKey: e.id) ?? [:]).filter { e.shards.contains($0.key) && $0.key != shard }
            leader!.startAwaiting(a)
            leader!.finishing[e.id] = e
            leader!.finishedSinceMarks = true
            leader!.maxFinishedTs = max(leader!.maxFinishedTs, e.ts)
            reply(e, outcome: vote ? .committed : .aborted, decided: false)
            decide(e.id)
        } else {
            finish(e, outcome: vote ? .committed : .aborted)
        }
    }

    /// A may-abort transaction has every vote: the outcome is the AND. (The
    /// coordinator already answered its client from the same votes: each
    /// is in its shard's committed log, so the outcome is fixed; this record
    /// makes the writes visible here.)
    func decide(_ id: TxnId) {
        guard let a = leader!.awaiting[id], a.votes.count == a.execution.shards.count - 1 else { return }
        _ = leader!.stopAwaiting(id)
        let commit = a.execution.vote && a.votes.values.allSatisfy { $0 }
        output.appends.append(.outcome(id, committed: commit))
        leader!.finishing[id] = a.execution
        if commit { overlay(a.execution) }
    }

    /// Logs a finished part, makes its writes visible to later ones, and
    /// answers the coordinator at once: the coordinator acknowledges only
    /// when the watermarks show the record committed.
    private func finish(_ e: Execution, outcome: Outcome) {
        leader!.earlyVotes[e.id] = nil
        leader!.finishing[e.id] = e
        output.appends.append(.exec(e))
        if outcome == .committed { overlay(e) }
        leader!.finishedSinceMarks = true
        leader!.maxFinishedTs = max(leader!.maxFinishedTs, e.ts)
        reply(e, outcome: outcome)
    }

    private func overlay(_ e: Execution) {
        for w in e.writes { leader!.overlay[w.key] = (w.value, e.id) }
    }

    /// Per stream: everything below the earliest part not yet run (parts
    /// waiting for votes have their execution logged already), and nothing
    /// beyond the leader's clock. (Run after finishes and on the timer:
    /// between runs a lower floor is only less promised.)
    private func updateFloor() {
        var lo = Array(repeating: now, count: config.workers)
        var seen = Array(repeating: false, count: config.workers)
        var found = 0
        // The queue in timestamp order: the first of each stream is its earliest.
        for s in leader!.order where !seen[Int(s.id.worker)] {
            seen[Int(s.id.worker)] = true
            lo[Int(s.id.worker)] = min(lo[Int(s.id.worker)], s.ts - 1)
            found += 1
            if found == config.workers { break }
        }
        for w in 0..<config.workers { leader!.floor[w] = max(leader!.floor[w], lo[w]) }
    }

    private func appendMarks() {
        leader!.finishedSinceMarks = false
        leader!.lastMarksAppendedAt = now
        guard leader!.floor != leader!.lastMarksAppended else { return }
        leader!.lastMarksAppended = leader!.floor
        output.appends.append(.marks(leader!.floor))
    }

    private func pushMarks() {
        leader!.marksChanged = false
        leader!.marksPushedAt = now
        let targets = config.openCoordinators
            ? leader!.coordinators(heardSince: now >= config.coordinatorQuietAfter ? now - config.coordinatorQuietAfter : 0)
            : config.coordinators
        for c in targets {
            send(.marks(shard: shard, term: leader!.term, marks: state.marks), to: c)
        }
    }

    // MARK: - Committed records seen by the leader

    func leaderApplied(_ record: ShardRecord) {
        guard leader?.caughtUp == true else { return }
        switch record {
        case .exec(let e):
            if e.pending {
                guard var a = leader!.awaiting[e.id], !a.durable else { return }
                a.durable = true
                leader!.updateAwaiting(a)
                sendVote(e.id, ask: false)
            } else {
                leader!.finishing[e.id] = nil
                settle(e)
            }
        case .outcome(let id, _):
            leader!.finishing[id] = nil
            if let rec = state.txns[id] {
                settle(rec.execution)
                // Final now: the coordinator may retire it (no shard needs this vote any more).
                replyFromRecord(rec)
            }
        case .marks:
            leader!.marksChanged = true
        case .retire:
            break
        }
    }

    /// A committed write no longer needs the overlay (unless a later one
    /// overwrote it there).
    private func settle(_ e: Execution) {
        for w in e.writes where leader!.overlay[w.key]?.writer == e.id { leader!.overlay[w.key] = nil }
    }

    // MARK: - Sending

    func send(_ m: WatermarkMessage, to: UInt64) { output.messages.append(WatermarkEnvelope(to: to, m)) }

    func sendProposal(_ id: TxnId, ask: Bool, only: UInt64? = nil) {
        guard var q = leader!.queue[id], !q.single else { return }
        for s in q.txn.shards where s != shard && (only == nil || only == s) && (only != nil || !ask || q.peers[s] == nil) {
            send(.propose(q.txn, from: shard, term: leader!.term, ts: q.proposal, ask: ask), to: s)
        }
        if only == nil {
            q.lastSent = now
            leader!.queue[id] = q
        }
    }

    func sendVote(_ id: TxnId, ask: Bool, only: UInt64? = nil) {
        guard var a = leader!.awaiting[id], a.durable else { return }
        let e = a.execution
        for s in e.shards where s != shard && (only == nil || only == s) && (only != nil || !ask || a.votes[s] == nil) {
            send(.vote(id: id, shards: e.shards, from: shard, term: leader!.term, commit: e.vote, ask: ask), to: s)
        }
        if only == nil {
            a.lastSent = now
            leader!.updateAwaiting(a)
        }
    }

    private func reply(_ e: Execution, outcome: Outcome, decided: Bool = true) {
        let r = TxnReply(id: e.id, shard: shard, term: leader!.term, ts: e.ts, outcome: outcome, decided: decided,
                         reads: e.reads, receivedAt: e.receivedAt, executedAt: now, marks: state.marks)
        send(.reply(r), to: e.id.coordinator)
        // It waits for our watermarks now, even if its submit never reached
        // us (the part may have come in a proposal).
        leader!.heard(from: e.id.coordinator, at: now)
    }

    /// A finished part answers with its outcome; one waiting for votes with
    /// its own vote (the coordinator takes the AND of the shards' answers).
    private func replyFromRecord(_ rec: TxnRecord) {
        reply(rec.execution, outcome: rec.outcome ?? (rec.execution.vote ? .committed : .aborted), decided: rec.outcome != nil)
    }
}
