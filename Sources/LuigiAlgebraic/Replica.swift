import LuigiBase

/// One replica of coordination-free (algebraic) state.
///
/// Every update carries a dot (origin, seq) and the origin's clock. A replica
/// applies each update exactly once and only after everything it causally
/// depends on (earlier arrivals wait in `pending`), so the replica's clock is
/// also its version vector: `clock[o]` = the highest contiguous seq applied
/// from origin `o`.
///
/// Type conflicts. A key's type is fixed by its first op; a local op of
/// another type is rejected. Replicas that concurrently give one key different
/// types keep every op, under its own type ("variant"). The visible type is
/// the variant whose earliest dot is smallest in (origin, seq) order, which
/// every replica computes identically from the same set of updates; ops of the
/// other variants are counted in `conflicts`.
///
/// Not thread-safe: use one replica from one thread at a time. Its mutable
/// state is marked `@exclusivity(unchecked)` because of that confinement and
/// because no method calls out while it mutates; the debug build used by the
/// tests keeps the dynamic checks for the rest of the code.
public final class Replica {
    public let nodeID: UInt64
    @exclusivity(unchecked) public private(set) var clock = VectorClock()
    @exclusivity(unchecked) private var state: [String: KeyState] = [:]
    @exclusivity(unchecked) private var conflictedKeys: Set<String> = []
    @exclusivity(unchecked) private var pendingByOrigin: [UInt64: [UInt64: Update]] = [:]
    @exclusivity(unchecked) public private(set) var pendingCount = 0
    /// Applied updates per origin; index seq-1 (delivery is per-origin FIFO).
    @exclusivity(unchecked) private var logByOrigin: [UInt64: [Update]] = [:]
    /// Origins that are replicated logs attached to this replica. The log
    /// is their authority (`applyFromLog`); a remote copy of a log update is
    /// taken only in the one shape a log builds, and only when it is next in
    /// line, so it never waits in `pending` where it could shadow the log's.
    @exclusivity(unchecked) private var logOrigins: Set<UInt64> = []

    public init(nodeID: UInt64) { self.nodeID = nodeID }

    // MARK: - Local transactions

    public func transaction() -> Transaction { Transaction(replica: self) }

    /// Runs `body` in a transaction and commits it; discards it if body throws.
    @discardableResult
    public func commit(_ body: (Transaction) throws -> Void) throws -> Update {
        let tx = transaction()
        try body(tx)
        return try tx.commit()
    }

    /// Validates a transaction's buffered ops against the current state and
    /// turns them into the normalized update; changes nothing.
    func prepare(_ ops: [(key: String, op: PendingOp)]) throws -> Update {
        var keyOps: [(key: String, op: KeyOp)] = []
        keyOps.reserveCapacity(ops.count)
        for (key, pending) in ops {
            let current = state[key]
            if let kind = current?.visibleKind, kind != pending.kind {
                throw LuigiError.typeConflict("key '\(key)' is a \(kind), not a \(pending.kind)")
            }
            switch pending {
            case .counter(let delta):
                let mine = Int128(current?.variants.first?.contributions[nodeID] ?? 0)
                guard let next = Int64(exactly: mine + delta) else {
                    throw LuigiError.overflow(
                        "counter '\(key)': node \(nodeID)'s contribution \(mine) + \(delta) overflows 64 bits")
                }
                keyOps.append((key, .counter(contribution: next)))
            case .max(let n): keyOps.append((key, .max(n)))
            case .min(let n): keyOps.append((key, .min(n)))
            case .union(let elements): keyOps.append((key, .union(elements.sorted())))
            case .assign:
                throw LuigiError.notAlgebraic("set('\(key)') overwrites: it commits through the replicated log")
            }
        }
        if keyOps.count > 1 { keyOps.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
        var next = clock
        let seq = try next.tick(nodeID)
        return try Update(origin: nodeID, seq: seq, clock: next, ops: keyOps)
    }

    /// Applies an update prepared from a local transaction.
    func commitLocal(_ update: Update) {
        deliver(update)
    }

    // MARK: - Remote updates

    /// Applies a remote update. Returns true when it is new to this replica
    /// (applied now, or held in `pending` until its predecessors arrive) and
    /// false for a duplicate. An update of a log attached to this replica is
    /// taken only if its clock names the log alone and it is the next one
    /// (anti-entropy sends them in order); otherwise it is dropped, and the
    /// log delivers it.
    @discardableResult
    public func apply(_ update: Update) -> Bool {
        if logOrigins.contains(update.origin) {
            guard update.seq == clock[update.origin] + 1, update.clock.count == 1 else { return false }
        }
        return accept(update)
    }

    /// Makes `origin` a log attached to this replica (see `apply`). Its
    /// updates waiting in `pending` are dropped: the log delivers its own.
    package func reserve(logOrigin origin: UInt64) {
        logOrigins.insert(origin)
        if let waiting = pendingByOrigin.removeValue(forKey: origin) { pendingCount -= waiting.count }
    }

    /// Applies the log's update (origin, seq), built identically on every
    /// node. One the replica already holds (it came by anti-entropy before
    /// the log was attached) must be the same update, or the replica has
    /// diverged from the log: that throws and changes nothing.
    package func applyFromLog(_ update: Update) throws {
        let have = clock[update.origin]
        if update.seq <= have {
            guard logByOrigin[update.origin]?[Int(update.seq - 1)] == update else {
                throw LuigiError.state("replica \(nodeID) holds another update than the log's under dot \(update.dot)")
            }
            return
        }
        guard update.seq == have + 1 else {
            throw LuigiError.state("the log's update \(update.dot) skips seq \(have + 1) on replica \(nodeID)")
        }
        accept(update)
    }

    @discardableResult
    private func accept(_ update: Update) -> Bool {
        if update.seq <= clock[update.origin] { return false }
        if pendingByOrigin[update.origin]?[update.seq] != nil { return false }
        if isDeliverable(update) {
            deliver(update)
            drainPending()
        } else {
            pendingByOrigin[update.origin, default: [:]][update.seq] = update
            pendingCount += 1
        }
        return true
    }

    /// Whether `update` would apply now: it is its origin's next, and
    /// every update it depends on is here (otherwise it waits in pending).
    public func isDeliverable(_ update: Update) -> Bool {
        clock[update.origin] == update.seq - 1 && update.clock.isDominated(by: clock, ignoring: update.origin)
    }

    private func drainPending() {
        var progressed = true
        while progressed && pendingCount > 0 {
            progressed = false
            for origin in Array(pendingByOrigin.keys) {
                while let next = pendingByOrigin[origin]?[clock[origin] + 1], isDeliverable(next) {
                    pendingByOrigin[origin]![next.seq] = nil
                    if pendingByOrigin[origin]!.isEmpty { pendingByOrigin[origin] = nil }
                    pendingCount -= 1
                    deliver(next)
                    progressed = true
                }
            }
        }
    }

    /// The one place state changes: every op of the update, then the clock.
    private func deliver(_ update: Update) {
        let dot = update.dot
        for (key, op) in update.ops {
            if state[key, default: KeyState()].apply(op, from: update.origin, dot: dot) {
                conflictedKeys.insert(key)
            }
        }
        clock[update.origin] = update.seq
        logByOrigin[update.origin, default: []].append(update)
    }

    // MARK: - Reading

    public func value(_ key: String) -> Value? { state[key]?.visibleValue }

    public func kind(of key: String) -> Kind? { state[key]?.visibleKind }

    /// Keys sorted by UTF-8 bytes.
    public var keys: [String] {
        state.keys.sorted(by: utf8Precedes)
    }

    public var keyCount: Int { state.count }

    /// Ops kept under a type that lost its key's type conflict.
    public var conflicts: UInt64 {
        conflictedKeys.reduce(0) { sum, key in
            sum + state[key]!.variants.dropFirst().reduce(0) { $0 + $1.opCount }
        }
    }

    /// Every applied update that `seen` lacks, in an order consistent with
    /// causality (by the sum of their clocks, then by dot).
    public func delta(since seen: VectorClock) -> [Update] {
        var out: [Update] = []
        forEachDelta(since: seen) { out.append($0); return true }
        return out
    }

    /// The updates `delta(since:)` returns, in its order, handed to `body`
    /// until it returns false. Each origin's log is already in that order
    /// (an origin's next update's clock dominates its previous one's), so
    /// the logs are merged, not sorted: a caller that takes a frame's worth
    /// pays for that much, not for the whole delta.
    public func forEachDelta(since seen: VectorClock, _ body: (Update) throws -> Bool) rethrows {
        // One cursor per origin with updates to send; few origins, so the
        // smallest head is found by a scan.
        var heads: [(log: [Update], next: Int, rank: UInt128)] = []
        for (origin, log) in logByOrigin {
            let known = seen[origin]
            guard known < UInt64(log.count) else { continue }
            heads.append((log, Int(known), log[Int(known)].clock.total))
        }
        while !heads.isEmpty {
            var best = 0
            for i in heads.indices.dropFirst() {
                let a = heads[i], b = heads[best]
                if (a.rank, a.log[a.next].dot) < (b.rank, b.log[b.next].dot) { best = i }
            }
            guard try body(heads[best].log[heads[best].next]) else { return }
            heads[best].next += 1
            if heads[best].next == heads[best].log.count {
                heads.swapAt(best, heads.count - 1)
                heads.removeLast()
            } else {
                heads[best].rank = heads[best].log[heads[best].next].clock.total
            }
        }
    }

    /// The first `count` updates applied from `origin` (fewer if it has
    /// fewer), in seq order.
    package func updates(from origin: UInt64, count: Int) -> ArraySlice<Update> {
        (logByOrigin[origin] ?? []).prefix(max(count, 0))
    }

    /// Number of updates applied so far (from every origin).
    public var appliedCount: Int { logByOrigin.values.reduce(0) { $0 + $1.count } }
}

/// A key's state: one variant per type ever applied to it, the visible one
/// (smallest earliest dot) first.
struct KeyState {
    var variants: [Variant] = []

    var visibleKind: Kind? { variants.first?.kind }

    var visibleValue: Value? {
        guard let v = variants.first else { return nil }
        switch v.kind {
        case .counter: return .counter(v.total)
        case .max: return .max(v.number!)
        case .min: return .min(v.number!)
        case .set: return .set(v.elements)
        case .register: return .register(v.number!)
        }
    }

    /// Returns true when the key now holds more than one type.
    mutating func apply(_ op: KeyOp, from origin: UInt64, dot: Dot) -> Bool {
        let index: Int
        if let i = variants.firstIndex(where: { $0.kind == op.kind }) {
            index = i
        } else {
            variants.append(Variant(kind: op.kind, firstDot: dot))
            index = variants.count - 1
        }
        variants[index].apply(op, from: origin, dot: dot)
        guard variants.count > 1 else { return false }
        variants.sort { $0.firstDot < $1.firstDot }
        return true
    }
}

struct Variant {
    let kind: Kind
    var firstDot: Dot
    var opCount: UInt64 = 0
    var contributions: [UInt64: Int64] = [:]
    var total: Int128 = 0
    var number: Number?
    /// The dot of the assign that `number` holds (registers).
    var assignedBy: Dot?
    var elements: Set<Element> = []

    init(kind: Kind, firstDot: Dot) {
        self.kind = kind
        self.firstDot = firstDot
    }

    mutating func apply(_ op: KeyOp, from origin: UInt64, dot: Dot) {
        if dot < firstDot { firstDot = dot }
        opCount += 1
        switch op {
        case .counter(let contribution):
            total += Int128(contribution) - Int128(contributions[origin] ?? 0)
            contributions[origin] = contribution
        case .max(let n):
            if number.map({ $0 < n }) ?? true { number = n }
        case .min(let n):
            if number.map({ n < $0 }) ?? true { number = n }
        case .union(let added):
            elements.formUnion(added)
        case .assign(let n):
            if assignedBy.map({ $0 < dot }) ?? true {
                number = n
                assignedBy = dot
            }
        }
    }
}
