import LuigiBase

/// An op buffered in a transaction, merged per key.
package enum PendingOp {
    case counter(Int128)
    case max(Number)
    case min(Number)
    case union(Set<Element>)
    case assign(Number)

    package var kind: Kind {
        switch self {
        case .counter: return .counter
        case .max: return .max
        case .min: return .min
        case .union: return .set
        case .assign: return .register
        }
    }
}

/// A transaction on a replica: ops are buffered and merged per key.
///
/// Algebraic ops only (add, max, min, union): `commit` validates all of them
/// and applies them locally and atomically (all or nothing), with no
/// coordination. With an overwrite (`set`) the transaction needs the
/// replicated log's order: `ReplicaStateMachine.propose` sends it through
/// the log and every replica applies it at the same position. Confined to one
/// thread at a time, like its replica (hence `@exclusivity(unchecked)`).
public final class Transaction {
    public let replica: Replica
    /// Buffered ops, one per key. Transactions are usually small, so keys are
    /// found by a linear scan; `index` takes over once there are many.
    @exclusivity(unchecked) private var ops: [(key: String, op: PendingOp)] = []
    @exclusivity(unchecked) private var index: [String: Int]?
    /// The first op whose type disagreed with an earlier op on the same key.
    @exclusivity(unchecked) private var conflict: LuigiError?
    /// The first key the transaction overwrites (so commit need not scan).
    @exclusivity(unchecked) private var overwritten: String?
    @exclusivity(unchecked) public private(set) var opCount = 0
    @exclusivity(unchecked) public private(set) var update: Update?
    /// The log index it was proposed at (coordinated transactions).
    @exclusivity(unchecked) public private(set) var proposedIndex: UInt64?

    init(replica: Replica) { self.replica = replica }

    public var isFinished: Bool { update != nil || proposedIndex != nil }

    /// True when an op overwrites, so the transaction must go through the log.
    public var needsCoordination: Bool { overwritten != nil }

    public func add(_ key: String, _ delta: Int64) throws {
        try record(key, .counter(Int128(delta)))
    }

    public func max(_ key: String, _ value: Number) throws { try record(key, .max(try checked(value))) }

    public func min(_ key: String, _ value: Number) throws { try record(key, .min(try checked(value))) }

    public func union(_ key: String, _ element: Element) throws { try record(key, .union([element])) }

    public func union<S: Sequence>(_ key: String, _ elements: S) throws where S.Element == Element {
        try record(key, .union(Set(elements)))
    }

    /// Overwrites a register key (the last set in log order wins). Not
    /// algebraic: the transaction must be proposed through the log.
    public func set(_ key: String, _ value: Number) throws { try record(key, .assign(try checked(value))) }

    /// Validates every op, then applies all of them; on error nothing changes
    /// and the transaction stays open.
    @discardableResult
    public func commit() throws -> Update {
        try ensureOpen()
        if let conflict { throw conflict }
        if let key = overwritten {
            throw LuigiError.notAlgebraic(
                "set('\(key)') overwrites, which is not algebraic: propose the transaction through the replicated log")
        }
        let update = try replica.prepare(ops)
        replica.commitLocal(update)
        self.update = update
        ops = []
        index = nil
        return update
    }

    /// The buffered ops for the replicated log, checked against this
    /// replica's key types; the transaction stays open until `markProposed`.
    package func opsForLog() throws -> [(key: String, op: PendingOp)] {
        try ensureOpen()
        if let conflict { throw conflict }
        for (key, op) in ops {
            if let kind = replica.kind(of: key), kind != op.kind {
                throw LuigiError.typeConflict("key '\(key)' is a \(kind), not a \(op.kind)")
            }
        }
        return ops
    }

    /// The log accepted the transaction at `index`: it is finished.
    package func markProposed(at index: UInt64) {
        proposedIndex = index
        ops = []
        self.index = nil
        overwritten = nil
    }

    private func checked(_ n: Number) throws -> Number {
        if case .float(let d) = n { return try Number.checked(d) }
        return n
    }

    private func ensureOpen() throws {
        guard update == nil else { throw LuigiError.state("transaction already committed") }
        guard proposedIndex == nil else { throw LuigiError.state("transaction already proposed to the log") }
    }

    private func slot(of key: String) -> Int? {
        if let index { return index[key] }
        return ops.firstIndex { $0.key == key }
    }

    private func record(_ key: String, _ op: PendingOp) throws {
        try ensureOpen()
        opCount += 1
        if case .assign = op, overwritten == nil { overwritten = key }
        guard let i = slot(of: key) else {
            ops.append((key, op))
            if index != nil {
                index![key] = ops.count - 1
            } else if ops.count > 16 {
                index = Dictionary(uniqueKeysWithValues: ops.enumerated().map { ($1.key, $0) })
            }
            return
        }
        if case .union(let added) = op, case .union(var buffered) = ops[i].op {
            ops[i].op = .counter(0)  // drop the buffer's reference so the union happens in place
            buffered.formUnion(added)
            ops[i].op = .union(buffered)
            return
        }
        switch (ops[i].op, op) {
        case (.counter(let a), .counter(let b)): ops[i].op = .counter(a + b)
        case (.max(let a), .max(let b)): ops[i].op = .max(Swift.max(a, b))
        case (.min(let a), .min(let b)): ops[i].op = .min(Swift.min(a, b))
        case (.assign, .assign): ops[i].op = op
        default:
            if conflict == nil {
                conflict = .typeConflict(
                    "key '\(key)' is used as a \(ops[i].op.kind) and as a \(op.kind) in one transaction")
            }
        }
    }
}
