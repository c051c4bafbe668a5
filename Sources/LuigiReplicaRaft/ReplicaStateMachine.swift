import LuigiAlgebraic
import LuigiBase
import LuigiRaft

/// The coordinated path of the algebraic replica: transactions that overwrite
/// (`Transaction.set`) go through a Raft log, and every node's replica
/// applies them at the same log position.
///
/// The log acts as one more origin of updates, `logOrigin`: its n-th
/// transaction becomes the update (logOrigin, n), computed only from the
/// log's own earlier transactions, so every node builds the bit-identical
/// update. Its clock names no other origin, so it never waits for algebraic
/// updates, and delta anti-entropy may carry it to replicas outside the
/// Raft group (a duplicate is dropped by its dot). Registers take the value
/// of the last assign in log order; counters, max, min and sets merge with
/// the algebraic updates as usual.
///
/// A transaction is validated twice: by the proposer against its replica
/// (type conflicts, early), and when applied against the log's own keys.
/// The second check is deterministic (the same on every node): a log
/// transaction that gives a key of the log another type, or overflows the
/// log's counter contribution, is rejected everywhere and changes nothing.
public final class ReplicaStateMachine: RaftStateMachine {
    public let replica: Replica
    public let logOrigin: UInt64
    public private(set) var appliedIndex: UInt64 = 0
    /// Transactions the log has committed: the seq of its last update.
    public private(set) var committedTransactions: UInt64 = 0
    /// What the log itself has written: each key's type and counter share.
    private var logKeys: [String: LogKey] = [:]
    /// Transactions proposed through this machine, by log index.
    private var proposals: [UInt64: (term: UInt64, outcome: TransactionOutcome)] = [:]
    /// Outcomes are kept for this many recent proposals.
    public static let rememberedProposals = 65_536

    struct LogKey {
        var kind: Kind
        var contribution: Int64 = 0
    }

    public init(replica: Replica, logOrigin: UInt64) throws {
        guard logOrigin != 0, logOrigin != replica.nodeID else {
            throw LuigiError.invalidArgument(
                "the log's origin id must be non-zero and differ from the replica's node id \(replica.nodeID)")
        }
        self.replica = replica
        self.logOrigin = logOrigin
        replica.reserve(logOrigin: logOrigin)
    }

    // MARK: - Proposing

    /// Proposes `tx` through `node` (the leader) and returns its log index;
    /// the transaction is then finished. On error it stays open.
    @discardableResult
    public func propose(_ tx: Transaction, to node: RaftNode) throws -> UInt64 {
        guard tx.replica === replica else {
            throw LuigiError.invalidArgument("the transaction belongs to another replica than the log's")
        }
        let command = CoordinatedCommand(ops: try tx.opsForLog())
        let index = try node.propose(command.encoded())
        tx.markProposed(at: index)
        proposals[index] = (node.term, .pending)
        if proposals.count >= 2 * Self.rememberedProposals {  // forget the older half at once
            let keep = index - UInt64(Self.rememberedProposals)
            proposals = proposals.filter { $0.key > keep }
        }
        return index
    }

    /// The log command for `tx`, for a proposer that frames its own entries
    /// (request ids, client sessions) instead of calling `propose`: the
    /// applied entry's result is the outcome ([1] committed, [0] + reason).
    /// The transaction stays open; the caller discards it.
    public func command(for tx: Transaction) throws -> [UInt8] {
        guard tx.replica === replica else {
            throw LuigiError.invalidArgument("the transaction belongs to another replica than the log's")
        }
        return CoordinatedCommand(ops: try tx.opsForLog()).encoded()
    }

    /// What became of the transaction proposed at `index` through this machine.
    public func outcome(at index: UInt64) -> TransactionOutcome {
        proposals[index]?.outcome ?? .unknown
    }

    // MARK: - RaftStateMachine

    /// Results: [1] committed; [0] + UTF-8 reason when rejected (the same
    /// on every node); [] for an entry that is not a transaction. Throws,
    /// changing nothing, only when the replica already holds a different
    /// update under the log's next dot (it diverged before the log was
    /// attached): the entry is then offered again, never skipped.
    public func apply(_ entry: RaftEntry) throws -> [UInt8] {
        guard entry.kind == .normal, entry.data.starts(with: CoordinatedCommand.magic) else {
            appliedIndex = entry.index
            settle(entry, .lost)
            return []
        }
        let next: (update: Update, keys: [(String, LogKey)])
        do {
            next = try nextUpdate(try CoordinatedCommand(decoding: entry.data))
        } catch {
            appliedIndex = entry.index
            let failure = error as? LuigiError ?? .decode("\(error)")
            settle(entry, .rejected(failure))
            return [0] + Array(failure.description.utf8)
        }
        try replica.applyFromLog(next.update)
        appliedIndex = entry.index
        committedTransactions = next.update.seq
        for (key, state) in next.keys { logKeys[key] = state }
        settle(entry, .committed)
        return [1]
    }

    /// "LRS" v1 | applied index | the log's updates as one batch | CRC-32C.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.snapshotMagic)
        w.varint(appliedIndex)
        w.blob(Update.encodeBatch(Array(replica.updates(from: logOrigin, count: Int(committedTransactions)))))
        w.sealWithChecksum()
        return w.bytes
    }

    /// Brings the replica up to the snapshot: the log's updates it lacks are
    /// applied (the replica's algebraic state is kept: it only grows).
    public func restore(_ snapshot: [UInt8]) throws {
        var index: UInt64 = 0
        var updates: [Update] = []
        if !snapshot.isEmpty {
            var r = try ByteReader.sealed(snapshot, magic: Self.snapshotMagic, what: "replica snapshot")
            index = try r.varint()
            updates = try Update.decodeBatch(try r.blob())
            try r.expectEnd("replica snapshot")
            for (i, u) in updates.enumerated() where u.origin != logOrigin || u.seq != UInt64(i + 1) {
                throw LuigiError.decode("replica snapshot: update \(u.dot) is not the log's transaction \(i + 1)")
            }
        }
        var keys: [String: LogKey] = [:]
        for u in updates {
            try replica.applyFromLog(u)
            for (key, op) in u.ops {
                if case .counter(let c) = op { keys[key] = LogKey(kind: .counter, contribution: c) }
                else { keys[key] = LogKey(kind: op.kind) }
            }
        }
        logKeys = keys
        committedTransactions = UInt64(updates.count)
        appliedIndex = index
        for (i, p) in proposals where i <= index && p.outcome == .pending { proposals[i]?.outcome = .unknown }
    }

    static let snapshotMagic: [UInt8] = [0x4C, 0x52, 0x53, 0x01]  // "LRS" v1

    // MARK: - Applying

    /// Turns the command into the log's next update and the log keys it
    /// changes, or throws the reason every node rejects it. Changes nothing.
    private func nextUpdate(_ command: CoordinatedCommand) throws -> (update: Update, keys: [(String, LogKey)]) {
        var ops: [(key: String, op: KeyOp)] = []
        var changed: [(String, LogKey)] = []
        for (key, pending) in command.ops {
            let known = logKeys[key]
            if let known, known.kind != pending.kind {
                throw LuigiError.typeConflict("key '\(key)' is a \(known.kind) in the log, not a \(pending.kind)")
            }
            let op: KeyOp
            switch pending {
            case .counter(let delta):
                let share = Int128(known?.contribution ?? 0) + delta
                guard let next = Int64(exactly: share) else {
                    throw LuigiError.overflow("counter '\(key)': the log's contribution \(share) overflows 64 bits")
                }
                op = .counter(contribution: next)
                changed.append((key, LogKey(kind: .counter, contribution: next)))
            case .max(let n): op = .max(n)
            case .min(let n): op = .min(n)
            case .union(let elements): op = .union(elements.sorted())
            case .assign(let n): op = .assign(n)
            }
            if known == nil, pending.kind != .counter { changed.append((key, LogKey(kind: pending.kind))) }
            ops.append((key, op))
        }
        let seq = committedTransactions + 1
        return (try Update(origin: logOrigin, seq: seq, clock: VectorClock([logOrigin: seq]), ops: ops), changed)
    }

    private func settle(_ entry: RaftEntry, _ outcome: TransactionOutcome) {
        guard let p = proposals[entry.index] else { return }
        proposals[entry.index]!.outcome = p.term == entry.term ? outcome : .lost
    }
}

/// What became of a transaction proposed through the log.
public enum TransactionOutcome: Equatable, Sendable {
    /// Not applied on this node yet.
    case pending
    /// Applied; every replica applies it at the same log position.
    case committed
    /// Applied as a no-op on every node, for this reason.
    case rejected(LuigiError)
    /// Another entry took its log index (a leader change): propose it again.
    case lost
    /// Not proposed through this machine, forgotten, or skipped by a snapshot.
    case unknown
}

/// A transaction on its way through the log: the buffered ops, sorted by
/// key. A counter op is still a delta: the contribution it becomes depends
/// on the log's earlier transactions.
///
/// "LCT" v1 | op count | (kind, key, payload)* | CRC-32C; a counter delta is
/// 128 bits (zigzag high half, varint low half).
struct CoordinatedCommand {
    let ops: [(key: String, op: PendingOp)]

    static let magic: [UInt8] = [0x4C, 0x43, 0x54, 0x01]  // "LCT" v1

    init(ops: [(key: String, op: PendingOp)]) {
        self.ops = ops.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.magic)
        w.varint(UInt64(ops.count))
        for (key, op) in ops {
            w.u8(op.kind.rawValue)
            w.blob(key.utf8)
            switch op {
            case .counter(let delta):
                w.zigzag(Int64(truncatingIfNeeded: delta >> 64))
                w.varint(UInt64(truncatingIfNeeded: delta))
            case .max(let n), .min(let n), .assign(let n): Update.write(n, to: &w)
            case .union(let elements):
                w.varint(UInt64(elements.count))
                for e in elements.sorted() { Update.write(e, to: &w) }
            }
        }
        w.sealWithChecksum()
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "log transaction")
        var ops: [(key: String, op: PendingOp)] = []
        for _ in 0..<(try r.count()) {
            guard let kind = Kind(rawValue: try r.u8()) else { throw LuigiError.decode("unknown op kind") }
            let key = try r.utf8()
            if let last = ops.last, !last.key.utf8.lexicographicallyPrecedes(key.utf8) {
                throw LuigiError.decode("log transaction ops are not sorted by distinct key")
            }
            switch kind {
            case .counter:
                let high = Int128(try r.zigzag())
                ops.append((key, .counter(high << 64 | Int128(try r.varint()))))
            case .max: ops.append((key, .max(try Update.readNumber(&r))))
            case .min: ops.append((key, .min(try Update.readNumber(&r))))
            case .register: ops.append((key, .assign(try Update.readNumber(&r))))
            case .set:
                var elements = Set<Element>()
                for _ in 0..<(try r.count()) { elements.insert(try Update.readElement(&r)) }
                ops.append((key, .union(elements)))
            }
        }
        try r.expectEnd("log transaction")
        self.ops = ops
    }
}
