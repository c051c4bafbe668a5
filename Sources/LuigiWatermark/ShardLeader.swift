import LuigiBase

/// The shard leader's protocol: hold, agree, run in timestamp order, log,
/// vote, and mark. Every handler runs only while the replica serves.
extension ShardNode {
    // MARK: - Serving

    /// The replica leads and has applied its whole log: rebuild the leader
    /// state from the replicated one and pick up unfinished transactions.
    func startServing() {
        guard var l = leader else { return }
        l.serving = true
        l.readFrontier = state.readFrontier
        l.writeFrontier = state.writeFrontier
        l.floor = state.marks
        l.lastMarksAppended = state.marks
        for (id, rec) in state.txns.sorted(by: { $0.key < $1.key }) {
            switch rec.phase {
            case .arrived:
                guard let part = rec.part else { continue }
                let (r, w) = part.keys
                l.enqueue(.init(part: part, ts: rec.proposal, proposal: rec.proposal, durable: true,
                                receivedAt: now, reads: r, writes: w))
            case .pending:
                guard let e = rec.execution else { continue }
                l.awaiting[id] = .init(execution: e, durable: true, reads: Set(e.reads.map(\.key)),
                                       writes: Set(e.writes.map(\.key)))
            case .done, .refused:
                break
            }
        }
        leader = l
        // Ask at once for whatever the previous leader was waiting on.
        for id in leader!.queue.keys.sorted() { sendProposal(id, ask: true) }
        for id in leader!.awaiting.keys.sorted() { sendVote(id, ask: true) }
        leader!.marksChanged = true
        afterInput()
    }

    // MARK: - Handlers

    func onSubmit(_ part: TxnPart) {
        let id = part.id
        guard !state.isRetired(id), leader!.queue[id] == nil, leader!.awaiting[id] == nil,
            !leader!.finishing.contains(id)
        else { return }
        if let rec = state.txns[id] {
            if rec.phase == .done || rec.phase == .refused { replyFromRecord(id, rec) }
            return
        }
        let l = leader!
        let (r, w) = part.keys
        var p = max(part.ts, l.floor[Int(id.worker)] + 1)
        for k in r { p = max(p, (l.writeFrontier[k] ?? 0) + 1) }
        for k in w { p = max(p, (l.readFrontier[k] ?? 0) + 1, (l.writeFrontier[k] ?? 0) + 1) }
        p = min(p, WatermarkLimits.maxTimestamp)
        let single = part.shards.count == 1
        var q = LeaderState.Queued(part: part, ts: p, proposal: p, durable: single, receivedAt: now,
                                   reads: r, writes: w)
        q.agreed = single
        leader!.enqueue(q)
        if !single { output.appends.append(.arrive(part, proposal: p)) }
    }

    func onPropose(_ id: TxnId, shards: [UInt64], from: UInt64, ts: UInt64, refused: Bool, ask: Bool) {
        if var q = leader!.queue[id] {
            if q.peers[from] == nil && !q.refused {
                if refused { q.refused = true } else { q.peers[from] = ts }
                leader!.queue[id] = q
            }
            if ask && q.durable { sendProposal(id, ask: false, only: from) }
            return
        }
        if let rec = state.txns[id] {
            // Finished or refused here: answer, never resurrect.
            if ask { answerProposal(id, rec, to: from) }
            return
        }
        if leader!.awaiting[id] != nil || state.isRetired(id) { return }
        noteEarly(id, shards) { $0.proposals[from] = $0.proposals[from] ?? (ts, refused) }
    }

    func onVote(_ id: TxnId, shards: [UInt64], from: UInt64, commit: Bool, ask: Bool) {
        if var a = leader!.awaiting[id] {
            if a.votes[from] == nil { a.votes[from] = commit }
            leader!.awaiting[id] = a
            if ask && a.durable { sendVote(id, ask: false, only: from) }
            decide(id)
            return
        }
        if let rec = state.txns[id], let e = rec.execution {
            if ask { send(.vote(id: id, shards: e.shards, from: shard, commit: e.vote, ask: false), to: from) }
            return
        }
        guard !state.isRetired(id) else { return }
        // Not run here yet (queued, or not even submitted): keep the vote.
        noteEarly(id, shards) { $0.votes[from] = $0.votes[from] ?? commit }
    }

    func onRetire(_ c: UInt64, _ worker: UInt32, _ below: UInt64) {
        let key = ShardState.RetireKey(coordinator: c, worker: worker)
        guard below > max(state.retiredBelow(c, worker), leader!.retireAppended[key] ?? 0) else { return }
        leader!.retireAppended[key] = below
        output.appends.append(.retire(coordinator: c, worker: worker, below: below))
    }

    private func noteEarly(_ id: TxnId, _ shards: [UInt64], _ update: (inout LeaderState.Early) -> Void) {
        if leader!.early[id] == nil {
            guard leader!.early.count < config.earlyCapacity else { return }
            leader!.early[id] = .init(firstSeen: now, shards: shards)
        }
        update(&leader!.early[id]!)
    }

    func onTick() {
        let l = leader!
        for (id, q) in l.queue where q.durable && !q.agreed && now >= q.lastSent + config.resendAfter {
            sendProposal(id, ask: true)
        }
        for (id, a) in l.awaiting where a.durable && now >= a.lastSent + config.resendAfter {
            sendVote(id, ask: true)
        }
        for (id, e) in l.early where !e.refusing && now >= e.firstSeen + config.refuseAfter {
            if state.isRetired(id) || state.txns[id]?.execution != nil {
                leader!.early[id] = nil
                continue
            }
            guard state.txns[id] == nil, l.queue[id] == nil, l.awaiting[id] == nil else { continue }
            leader!.early[id]!.refusing = true
            output.appends.append(.refuse(id, shards: e.shards))
        }
        if l.floor != l.lastMarksAppended && now >= l.lastMarksAppendedAt + config.marksEvery {
            appendMarks()
        }
        if now >= l.marksPushedAt + config.marksEvery { leader!.marksChanged = true }
    }

    // MARK: - After every input: agree, release, mark

    func afterInput() {
        guard leader?.serving == true else { return }
        agree()
        release()
        updateFloor()
        if leader!.finishedSinceMarks { appendMarks() }
        if leader!.marksChanged { pushMarks() }
    }

    private func agree() {
        for (id, q) in leader!.queue where q.durable && !q.agreed {
            var q = q
            if let e = leader!.early[id], !e.proposals.isEmpty {
                for (s, p) in e.proposals where q.peers[s] == nil {
                    if p.refused { q.refused = true } else { q.peers[s] = p.ts }
                }
                leader!.early[id]!.proposals = [:]
            }
            if q.refused {
                _ = leader!.dequeue(id)
                let e = Execution(id: id, ts: 0, shards: q.part.shards, vote: false, pending: false, reads: [],
                                  writes: [], receivedAt: q.receivedAt)
                finish(e, outcome: .aborted)
                continue
            }
            guard q.peers.count == q.part.shards.count - 1 else {
                leader!.queue[id] = q
                continue
            }
            q.agreed = true
            leader!.queue[id] = q
            leader!.reposition(id, to: max(q.proposal, q.peers.values.max() ?? 0))
        }
    }

    /// Runs every agreed transaction whose time has come, in the total
    /// order, skipping past those that wait on an earlier conflicting one.
    private func release() {
        var blockedReads = Set<String>(), blockedWrites = Set<String>()
        for a in leader!.awaiting.values {
            blockedReads.formUnion(a.reads)
            blockedWrites.formUnion(a.writes)
        }
        var ready: [TxnId] = []
        for s in leader!.order {
            guard s.ts <= now else { break }
            let q = leader!.queue[s.id]!
            let conflict = !q.reads.isDisjoint(with: blockedWrites) || !q.writes.isDisjoint(with: blockedWrites)
                || !q.writes.isDisjoint(with: blockedReads)
            if q.agreed && !conflict {
                ready.append(s.id)
                // A part that will wait for votes holds its keys until the outcome.
                if q.part.mayAbort && q.part.shards.count > 1 {
                    blockedReads.formUnion(q.reads)
                    blockedWrites.formUnion(q.writes)
                }
            } else {
                blockedReads.formUnion(q.reads)
                blockedWrites.formUnion(q.writes)
            }
        }
        for id in ready { run(leader!.dequeue(id)!) }
    }

    /// Runs a part at its agreed timestamp against the leader's view
    /// (committed state plus writes not yet committed).
    private func run(_ q: LeaderState.Queued) {
        var view: [String: Int64?] = [:]
        func get(_ k: String) -> Int64? {
            if let v = view[k] { return v }
            return leader!.read(k, state)
        }
        var vote = true
        var reads: [ReadResult] = []
        for op in q.part.ops {
            switch op {
            case .read(let k):
                reads.append(ReadResult(key: k, value: get(k)))
            case .write(let k, let v):
                view[k] = .some(v)
            case .add(let k, let d):
                let (sum, overflow) = (get(k) ?? 0).addingReportingOverflow(d)
                if overflow { vote = false } else { view[k] = .some(sum) }
            case .check(let k, let atLeast):
                let v = get(k)
                reads.append(ReadResult(key: k, value: v))
                if (v ?? 0) < atLeast { vote = false }
            }
        }
        let writes = q.writes.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map {
            WriteResult(key: $0, value: (view[$0] ?? nil) ?? 0)
        }
        for k in q.reads { leader!.readFrontier[k] = max(leader!.readFrontier[k] ?? 0, q.ts) }
        for k in q.writes { leader!.writeFrontier[k] = max(leader!.writeFrontier[k] ?? 0, q.ts) }
        let pending = q.part.mayAbort && q.part.shards.count > 1
        let e = Execution(id: q.part.id, ts: q.ts, shards: q.part.shards, vote: vote, pending: pending,
                          reads: reads, writes: vote || pending ? writes : [], receivedAt: q.receivedAt)
        if pending {
            output.appends.append(.exec(e))
            var a = LeaderState.Awaiting(execution: e, reads: q.reads, writes: q.writes)
            if let early = leader!.early.removeValue(forKey: e.id) { a.votes = early.votes }
            leader!.awaiting[e.id] = a
            decide(e.id)
        } else {
            finish(e, outcome: vote ? .committed : .aborted)
        }
    }

    /// A may-abort transaction has every vote: the outcome is the AND.
    func decide(_ id: TxnId) {
        guard let a = leader!.awaiting[id], a.votes.count == a.execution.shards.count - 1 else { return }
        leader!.awaiting[id] = nil
        let commit = a.execution.vote && a.votes.values.allSatisfy { $0 }
        output.appends.append(.outcome(id, committed: commit))
        leader!.finishing.insert(id)
        if commit { overlay(a.execution) }
        leader!.finishedSinceMarks = true
        reply(a.execution, outcome: commit ? .committed : .aborted)
    }

    /// Logs a finished part, makes its writes visible to later ones, and
    /// answers the coordinator at once: the coordinator acknowledges only
    /// when the watermarks show the record committed.
    private func finish(_ e: Execution, outcome: Outcome) {
        leader!.early[e.id] = nil
        leader!.finishing.insert(e.id)
        output.appends.append(.exec(e))
        if outcome == .committed { overlay(e) }
        leader!.finishedSinceMarks = true
        reply(e, outcome: outcome)
    }

    private func overlay(_ e: Execution) {
        for w in e.writes { leader!.overlay[w.key] = (w.value, e.id) }
    }

    /// Per stream: everything below the earliest unfinished transaction,
    /// and nothing beyond the leader's clock.
    private func updateFloor() {
        var lo = Array(repeating: now, count: config.workers)
        for q in leader!.queue.values { lo[Int(q.part.id.worker)] = min(lo[Int(q.part.id.worker)], q.ts - 1) }
        for a in leader!.awaiting.values {
            let w = Int(a.execution.id.worker)
            lo[w] = min(lo[w], a.execution.ts - 1)
        }
        for w in 0..<config.workers { leader!.floor[w] = max(leader!.floor[w], lo[w]) }
    }

    private func appendMarks() {
        leader!.finishedSinceMarks = false
        guard leader!.floor != leader!.lastMarksAppended else { return }
        leader!.lastMarksAppended = leader!.floor
        leader!.lastMarksAppendedAt = now
        output.appends.append(.marks(leader!.floor))
    }

    private func pushMarks() {
        leader!.marksChanged = false
        leader!.marksPushedAt = now
        for c in config.coordinators {
            send(.marks(shard: shard, term: leader!.term, marks: state.marks), to: c)
        }
    }

    // MARK: - Committed records seen by the leader

    func leaderApplied(_ record: ShardRecord) {
        guard leader?.serving == true else { return }
        switch record {
        case .arrive(let part, _):
            guard var q = leader!.queue[part.id], !q.durable else { return }
            q.durable = true
            leader!.queue[part.id] = q
            sendProposal(part.id, ask: false)
        case .refuse(let id, let shards):
            leader!.early[id] = nil
            for s in shards where s != shard {
                send(.propose(id: id, shards: shards, from: shard, ts: 0, refused: true, ask: false), to: s)
            }
            if let rec = state.txns[id] { replyFromRecord(id, rec) }
        case .exec(let e):
            if e.pending {
                guard var a = leader!.awaiting[e.id], !a.durable else { return }
                a.durable = true
                leader!.awaiting[e.id] = a
                sendVote(e.id, ask: false)
            } else {
                leader!.finishing.remove(e.id)
                settle(e)
            }
        case .outcome(let id, _):
            leader!.finishing.remove(id)
            if let e = state.txns[id]?.execution { settle(e) }
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
        guard var q = leader!.queue[id], q.durable, q.part.shards.count > 1 else { return }
        for s in q.part.shards where s != shard && (only == nil || only == s) && (only != nil || q.peers[s] == nil || !ask) {
            send(.propose(id: id, shards: q.part.shards, from: shard, ts: q.proposal, refused: false, ask: ask), to: s)
        }
        if only == nil {
            q.lastSent = now
            leader!.queue[id] = q
        }
    }

    func sendVote(_ id: TxnId, ask: Bool, only: UInt64? = nil) {
        guard var a = leader!.awaiting[id], a.durable else { return }
        let e = a.execution
        for s in e.shards where s != shard && (only == nil || only == s) && (only != nil || a.votes[s] == nil || !ask) {
            send(.vote(id: id, shards: e.shards, from: shard, commit: e.vote, ask: ask), to: s)
        }
        if only == nil {
            a.lastSent = now
            leader!.awaiting[id] = a
        }
    }

    private func answerProposal(_ id: TxnId, _ rec: TxnRecord, to: UInt64) {
        if rec.phase == .refused {
            send(.propose(id: id, shards: rec.shards, from: shard, ts: 0, refused: true, ask: false), to: to)
        } else if rec.shards.count > 1 {
            send(.propose(id: id, shards: rec.shards, from: shard, ts: rec.proposal, refused: false, ask: false), to: to)
        }
    }

    private func reply(_ e: Execution, outcome: Outcome) {
        let r = TxnReply(id: e.id, shard: shard, term: leader!.term, ts: e.ts, outcome: outcome, reads: e.reads,
                         receivedAt: e.receivedAt, executedAt: now, marks: state.marks)
        send(.reply(r), to: e.id.coordinator)
    }

    private func replyFromRecord(_ id: TxnId, _ rec: TxnRecord) {
        let e = rec.execution ?? Execution(id: id, ts: 0, shards: rec.shards, vote: false, pending: false, reads: [],
                                           writes: [], receivedAt: now)
        reply(e, outcome: rec.outcome ?? .aborted)
    }
}
