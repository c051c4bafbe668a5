import LuigiCore

// The baseline beside the watermark protocol: two-phase commit over the
// same Raft shard groups, on the same network and loop, with the decision
// replicated. Participants take no-wait two-phase locks (a conflict votes
// no; the client retries after a random backoff), log their prepare, and
// vote to the transaction's first shard, whose leader logs the decision
// (as Spanner's coordinator leader does), answers the client and tells the
// others, who log it and release their locks. A single-shard transaction
// commits in one logged step. It runs fault-free benchmarks: it has no
// timeouts, no failover of in-flight transactions and no recovery.

enum TwoPhaseMessage {
    case prepare(TxnPart)
    case vote(TxnId, from: UInt64, yes: Bool, conflict: Bool, reads: [ReadResult])
    case decide(TxnId, commit: Bool)
    case result(TxnId, committed: Bool, conflict: Bool, reads: [(UInt64, [ReadResult])])

    static let magic: [UInt8] = [0x4C, 0x32, 0x50, 0x01]  // "L2P" v1

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.magic(Self.magic)
        switch self {
        case .prepare(let p): w.u8(1); w.part(p)
        case .vote(let id, let from, let yes, let conflict, let reads):
            w.u8(2); w.id(id); w.varint(from); w.flag(yes); w.flag(conflict); w.reads(reads)
        case .decide(let id, let commit): w.u8(3); w.id(id); w.flag(commit)
        case .result(let id, let committed, let conflict, let reads):
            w.u8(4); w.id(id); w.flag(committed); w.flag(conflict); w.varint(UInt64(reads.count))
            for (s, r) in reads { w.varint(s); w.reads(r) }
        }
        w.sealWithChecksum()
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "two-phase message")
        switch try r.u8() {
        case 1: self = .prepare(try r.part())
        case 2:
            self = .vote(try r.id(), from: try r.varint(), yes: try r.flag(), conflict: try r.flag(), reads: try r.reads())
        case 3: self = .decide(try r.id(), commit: try r.flag())
        case 4:
            let id = try r.id(), committed = try r.flag(), conflict = try r.flag()
            let n = try r.count()
            self = .result(id, committed: committed, conflict: conflict,
                           reads: try (0..<n).map { _ in (try r.varint(), try r.reads()) })
        default: throw LuigiError.decode("unknown two-phase message")
        }
        try r.expectEnd("two-phase message")
    }
}

enum TwoPhaseRecord {
    case prepared(TxnId, writes: [WriteResult], reads: Int)
    /// The decision, at the transaction's first shard (its own part's fate too).
    case decision(TxnId, commit: Bool)
    case decided(TxnId, commit: Bool)
    case onePhase(TxnId, writes: [WriteResult], reads: Int)

    static let magic: [UInt8] = [0x4C, 0x32, 0x52, 0x01]  // "L2R" v1

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.magic(Self.magic)
        switch self {
        case .prepared(let id, let writes, let reads): w.u8(1); w.id(id); w.writes(writes); w.varint(UInt64(reads))
        case .decision(let id, let commit): w.u8(2); w.id(id); w.flag(commit)
        case .decided(let id, let commit): w.u8(3); w.id(id); w.flag(commit)
        case .onePhase(let id, let writes, let reads): w.u8(4); w.id(id); w.writes(writes); w.varint(UInt64(reads))
        }
        w.sealWithChecksum()
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "two-phase record")
        switch try r.u8() {
        case 1: self = .prepared(try r.id(), writes: try r.writes(), reads: try Self.readCount(&r))
        case 2: self = .decision(try r.id(), commit: try r.flag())
        case 3: self = .decided(try r.id(), commit: try r.flag())
        case 4: self = .onePhase(try r.id(), writes: try r.writes(), reads: try Self.readCount(&r))
        default: throw LuigiError.decode("unknown two-phase record")
        }
        try r.expectEnd("two-phase record")
    }

    private static func readCount(_ r: inout ByteReader) throws -> Int {
        let n = try r.varint()
        guard n <= UInt64(WatermarkLimits.maxOpsPerPart) else { throw LuigiError.decode("read count \(n) out of range") }
        return Int(n)
    }
}

/// A two-phase-commit participant replica (and, for transactions whose
/// first shard it is, the decision's home).
public final class TwoPhaseShard: ClusterReplica, RaftStateMachine {
    public let shard: UInt64
    let driver: RaftDriver
    /// Replicated: the store, prepared writes, counters.
    public private(set) var store: [String: Int64] = [:]
    private var prepared: [TxnId: (writes: [WriteResult], reads: Int)] = [:]
    public private(set) var partsApplied: UInt64 = 0
    public private(set) var opsApplied: UInt64 = 0

    // The leader's volatile state.
    private var leading = false
    private var readers: [String: Set<TxnId>] = [:]
    private var writer: [String: TxnId] = [:]
    private var held: [TxnId: (reads: Set<String>, writes: Set<String>)] = [:]
    private var parts: [TxnId: TxnPart] = [:]
    private var myReads: [TxnId: [ReadResult]] = [:]
    private var votes: [TxnId: [UInt64: (yes: Bool, conflict: Bool, reads: [ReadResult])]] = [:]
    private var deciding: Set<TxnId> = []
    private var outbox: [Outgoing] = []
    private var proposals: [TwoPhaseRecord] = []

    init(shard: UInt64, driver: RaftDriver) {
        self.shard = shard
        self.driver = driver
    }

    public var stateMachine: RaftStateMachine { self }
    public func setClock(_ now: UInt64) {}
    public var nextDeadline: UInt64? { nil }
    public var isServing: Bool { leading }
    public var isIdle: Bool { held.isEmpty }

    private func send(_ m: TwoPhaseMessage, toShard: Bool, _ to: UInt64) {
        outbox.append(Outgoing(toShard: toShard, to: to, bytes: m.encoded()))
    }

    public func receive(_ bytes: [UInt8], now: UInt64) throws {
        let m = try TwoPhaseMessage(decoding: bytes)
        guard leading else { return }
        switch m {
        case .prepare(let part): prepare(part)
        case .vote(let id, let from, let yes, let conflict, let reads):
            // A vote may arrive before this shard's own prepare.
            guard votes[id]?[from] == nil else { return }
            votes[id, default: [:]][from] = (yes, conflict, reads)
            decideIfReady(id)
        case .decide(let id, let commit):
            if prepared[id] != nil || held[id] != nil { proposals.append(.decided(id, commit: commit)) }
        case .result:
            throw LuigiError.invalidArgument("a result is for a client")
        }
    }

    private func decideIfReady(_ id: TxnId) {
        guard let p = parts[id], p.shards.first == shard, let v = votes[id], v.count == p.shards.count,
            !deciding.contains(id)
        else { return }
        deciding.insert(id)
        proposals.append(.decision(id, commit: v.values.allSatisfy(\.yes)))
    }

    private func prepare(_ part: TxnPart) {
        let id = part.id
        guard parts[id] == nil else { return }
        parts[id] = part
        defer { decideIfReady(id) }
        let (r, w) = part.keys
        let conflict = w.contains { writer[$0] != nil || !(readers[$0]?.isEmpty ?? true) } || r.contains { writer[$0] != nil }
        if conflict {
            vote(part, yes: false, conflict: true, reads: [])
            return
        }
        held[id] = (r, w)
        for k in r { readers[k, default: []].insert(id) }
        for k in w { writer[k] = id }
        let run = PartRun(part.ops) { store[$0] }
        let reads = run.reads
        guard run.vote else {
            release(id)
            vote(part, yes: false, conflict: false, reads: reads)
            return
        }
        let writes = run.writes(w.sorted())
        myReads[id] = reads
        proposals.append(part.shards.count == 1 ? .onePhase(id, writes: writes, reads: reads.count)
                                                : .prepared(id, writes: writes, reads: reads.count))
    }

    private func vote(_ part: TxnPart, yes: Bool, conflict: Bool, reads: [ReadResult]) {
        if part.shards.count == 1 {
            parts[part.id] = nil
            send(.result(part.id, committed: false, conflict: conflict, reads: [(shard, reads)]), toShard: false, part.id.coordinator)
        } else {
            send(.vote(part.id, from: shard, yes: yes, conflict: conflict, reads: reads), toShard: true, part.shards[0])
        }
    }

    private func release(_ id: TxnId) {
        guard let h = held.removeValue(forKey: id) else { return }
        for k in h.reads { readers[k]?.remove(id); if readers[k]?.isEmpty == true { readers[k] = nil } }
        for k in h.writes where writer[k] == id { writer[k] = nil }
    }

    public func pumpOutgoing(now: UInt64) -> [Outgoing] {
        let isLeader = driver.node.role == .leader
        if isLeader != leading {
            leading = isLeader
            readers = [:]; writer = [:]; held = [:]; parts = [:]; myReads = [:]; votes = [:]; deciding = []
        }
        for p in proposals { _ = try? driver.node.propose(p.encoded()) }
        proposals = []
        defer { outbox = [] }
        return outbox
    }

    // MARK: - RaftStateMachine

    public func apply(_ entry: RaftEntry) throws -> [UInt8] {
        guard entry.kind == .normal, !entry.data.isEmpty, let record = try? TwoPhaseRecord(decoding: entry.data) else { return [] }
        switch record {
        case .onePhase(let id, let writes, let reads):
            write(writes, reads)
            if leading, let p = parts.removeValue(forKey: id) {
                release(id)
                send(.result(id, committed: true, conflict: false, reads: [(shard, myReads.removeValue(forKey: id) ?? [])]),
                     toShard: false, p.id.coordinator)
            }
        case .prepared(let id, let writes, let reads):
            prepared[id] = (writes, reads)
            if leading, let p = parts[id] { vote(p, yes: true, conflict: false, reads: myReads[id] ?? []) }
        case .decision(let id, let commit):
            finish(id, commit)
            deciding.remove(id)
            guard leading, let p = parts.removeValue(forKey: id), let v = votes.removeValue(forKey: id) else { return [] }
            let conflict = v.values.contains(where: \.conflict)
            for s in p.shards.dropFirst() where v[s]?.yes == true { send(.decide(id, commit: commit), toShard: true, s) }
            send(.result(id, committed: commit, conflict: conflict, reads: v.sorted { $0.key < $1.key }.map { ($0.key, $0.value.reads) }),
                 toShard: false, id.coordinator)
        case .decided(let id, let commit):
            finish(id, commit)
            parts[id] = nil
        }
        return []
    }

    private func finish(_ id: TxnId, _ commit: Bool) {
        if let p = prepared.removeValue(forKey: id), commit { write(p.writes, p.reads) }
        myReads[id] = nil
        release(id)
    }

    private func write(_ writes: [WriteResult], _ reads: Int) {
        for w in writes { store[w.key] = w.value }
        partsApplied += 1
        opsApplied += UInt64(writes.count + reads)
    }

    public func snapshot() throws -> [UInt8] { throw LuigiError.state("the baseline does not compact") }
    public func restore(_ snapshot: [UInt8]) throws { throw LuigiError.state("the baseline does not compact") }
}

/// The two-phase-commit client: sends prepares, retries conflict aborts
/// after a random backoff, and reports each logical transaction once.
public final class TwoPhaseClient: ClusterCoordinator {
    public struct Stats: Equatable, Sendable {
        public var submitted: UInt64 = 0
        public var committed: UInt64 = 0
        public var aborted: UInt64 = 0
        /// Attempts aborted by a lock conflict and retried.
        public var conflictRetries: UInt64 = 0
    }

    struct Logical {
        var parts: [UInt64: [Op]]
        var worker: UInt32
        var submittedAt: UInt64
        var attempts = 1
    }

    public let id: UInt64
    let shardCount: Int
    let backoffUs: UInt64
    public private(set) var stats = Stats()
    private var rng: SplitMix64
    private var nextSeq: [UInt64]
    private var logical: [TxnId: Logical] = [:]
    private var attemptOf: [TxnId: TxnId] = [:]
    private var retries: [(due: UInt64, id: TxnId)] = []
    private var output: [Outgoing] = []
    private var completions: [Completion] = []
    private var now: UInt64 = 0

    init(id: UInt64, shardCount: Int, workers: Int, backoffUs: UInt64, seed: UInt64) {
        self.id = id
        self.shardCount = shardCount
        self.backoffUs = max(1, backoffUs)
        rng = SplitMix64(seed: seed)
        nextSeq = Array(repeating: 1, count: workers)
    }

    public var inFlightCount: Int { logical.count }

    public func submit(_ parts: [UInt64: [Op]], worker: UInt32, now t: UInt64) throws -> TxnId {
        guard Int(worker) < nextSeq.count, !parts.isEmpty, parts.keys.allSatisfy({ $0 < UInt64(shardCount) }) else {
            throw LuigiError.invalidArgument("bad transaction")
        }
        now = max(now, t)
        let first = try send(parts, worker: worker)
        logical[first] = Logical(parts: parts, worker: worker, submittedAt: now)
        attemptOf[first] = first
        stats.submitted += 1
        return first
    }

    private func send(_ parts: [UInt64: [Op]], worker: UInt32) throws -> TxnId {
        let attempt = TxnId(coordinator: id, worker: worker, seq: nextSeq[Int(worker)])
        nextSeq[Int(worker)] += 1
        let shards = parts.keys.sorted()
        let mayAbort = parts.values.contains { $0.contains(where: \.mayAbort) }
        for s in shards {
            let part = TxnPart(id: attempt, ts: now, shards: shards, mayAbort: mayAbort, ops: parts[s] ?? [])
            try part.validate()
            output.append(Outgoing(toShard: true, to: s, bytes: TwoPhaseMessage.prepare(part).encoded()))
        }
        return attempt
    }

    public func receive(_ bytes: [UInt8], now t: UInt64) throws {
        guard case .result(let attempt, let committed, let conflict, let reads) = try TwoPhaseMessage(decoding: bytes) else {
            throw LuigiError.invalidArgument("a client takes only results")
        }
        now = max(now, t)
        guard let lid = attemptOf.removeValue(forKey: attempt), var l = logical[lid] else { return }
        if !committed && conflict {
            stats.conflictRetries += 1
            l.attempts += 1
            logical[lid] = l
            let window = backoffUs << UInt64(min(l.attempts, 6))
            retries.append((now + UInt64.random(in: 0...window, using: &rng), lid))
            return
        }
        logical[lid] = nil
        if committed { stats.committed += 1 } else { stats.aborted += 1 }
        completions.append(Completion(
            id: lid, outcome: committed ? .committed : .aborted, ts: 0, reads: Dictionary(reads, uniquingKeysWith: { a, _ in a }),
            submittedAt: l.submittedAt, proposedTs: l.submittedAt, receivedAt: 0, executedAt: 0, repliedAt: now,
            completedAt: now, attempts: l.attempts))
    }

    public func tick(now t: UInt64) {
        now = max(now, t)
        let due = retries.filter { $0.due <= now }
        retries.removeAll { $0.due <= now }
        for r in due {
            guard let l = logical[r.id], let attempt = try? send(l.parts, worker: l.worker) else { continue }
            attemptOf[attempt] = r.id
        }
    }

    public func takeOutgoing() -> [Outgoing] {
        defer { output = [] }
        return output
    }

    public func takeCompletions() -> [Completion] {
        defer { completions = [] }
        return completions
    }
}
