// A linearizability checker for client histories of a key-value store.
//
// Algorithm: the history is split by key (P-compositionality: every key is an
// independent register, so a history is linearizable iff each per-key
// sub-history is), then each key is checked with the Wing–Gong search over a
// linked list of call/return events, memoized as Lowe suggests with a cache of
// configurations already explored. Operations that never returned (unknown
// outcome) may take effect at any point after their invocation, or never;
// they are only tried where an answered operation observes their effect (see
// `Register.search`). A violation is explained by the shortest failing prefix
// of the key's history, shrunk to a small counterexample.
//
// Pure Swift, no I/O; all types are Sendable values.

// MARK: - History

/// One client operation on the key-value store, as a client saw it.
public struct KVOperation: Sendable, Hashable {
    /// What the client asked for.
    public enum Kind: Sendable, Hashable {
        case put(key: String, value: [UInt8])
        case get(key: String)
        case delete(key: String)
        /// Compare-and-set: if the key's value equals `expected` (`nil`: the key
        /// is absent), set it to `new`.
        case cas(key: String, expected: [UInt8]?, new: [UInt8])

        public var key: String {
            switch self {
            case .put(let key, _), .get(let key), .delete(let key), .cas(let key, _, _): return key
            }
        }
    }

    /// What the client observed when the operation returned.
    public enum Result: Sendable, Hashable {
        /// A put or delete was acknowledged.
        case ok
        /// The value a get read (`nil`: the key was absent).
        case value([UInt8]?)
        /// Whether a compare-and-set swapped.
        case swapped(Bool)
    }

    /// The client that issued the operation (informational: linearizability
    /// only looks at real time).
    public var client: UInt64
    public var kind: Kind
    /// Virtual time of the invocation.
    public var invoke: UInt64
    /// Virtual time of the response; `nil` if the client never got one (a
    /// timeout, a crash, a failed request): the operation may or may not have
    /// taken effect, at any point after `invoke`.
    public var response: UInt64?
    /// The observed result; present exactly when `response` is. Put and delete
    /// may leave it `nil` (meaning `.ok`).
    public var result: Result?

    public init(client: UInt64, kind: Kind, invoke: UInt64, response: UInt64? = nil, result: Result? = nil) {
        self.client = client
        self.kind = kind
        self.invoke = invoke
        self.response = response
        self.result = result
    }

    public var key: String { kind.key }
}

/// A recorder for a client history: call `invoke` when a client sends a
/// request and `complete` when it gets the answer. Operations never completed
/// stay with an unknown outcome.
public struct KVHistory: Sendable {
    public private(set) var operations: [KVOperation] = []
    /// The store's contents before the first operation (keys not listed
    /// start absent), e.g. what a cluster recovered from disk.
    public let initial: [String: [UInt8]]

    public init(initial: [String: [UInt8]] = [:]) { self.initial = initial }

    /// Records an invocation; returns the id to pass to `complete`.
    @discardableResult
    public mutating func invoke(client: UInt64, kind: KVOperation.Kind, at time: UInt64) -> Int {
        operations.append(KVOperation(client: client, kind: kind, invoke: time))
        return operations.count - 1
    }

    /// Records the response of operation `id`.
    public mutating func complete(_ id: Int, result: KVOperation.Result = .ok, at time: UInt64) {
        precondition(operations.indices.contains(id), "KVHistory: unknown operation id \(id)")
        precondition(operations[id].response == nil, "KVHistory: operation \(id) completed twice")
        precondition(time >= operations[id].invoke, "KVHistory: operation \(id) completes before its invocation")
        operations[id].response = time
        operations[id].result = result
    }

    /// Checks the recorded history (see `LinearizabilityChecker.check`). The
    /// initial contents enter as completed puts before every operation.
    public func check(budget: Int = 1_000_000) -> LinearizabilityResult {
        guard !initial.isEmpty else { return LinearizabilityChecker.check(operations, budget: budget) }
        // Times move up by one so the initial puts at time 0 precede everything.
        var checked = operations.map { op in
            var op = op
            op.invoke += 1
            op.response = op.response.map { $0 + 1 }
            return op
        }
        for (key, value) in initial.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            checked.append(KVOperation(client: .max, kind: .put(key: key, value: value), invoke: 0, response: 0, result: .ok))
        }
        return LinearizabilityChecker.check(checked, budget: budget)
    }
}

// MARK: - Result

public enum LinearizabilityResult: Sendable, Hashable {
    case linearizable
    /// A proof of a violation: `explanation` names the key and the shortest
    /// prefix of that key's history that cannot be linearized;
    /// `minimalCounterexample` is a small sub-history of that prefix that
    /// still cannot be linearized (operations still in flight at the end of
    /// the prefix appear with `response == nil`).
    case notLinearizable(explanation: String, minimalCounterexample: [KVOperation])
    /// Neither proved nor refuted: the search budget ran out, or the history is
    /// malformed (the reason says which).
    case unknown(reason: String)

    public var isLinearizable: Bool {
        if case .linearizable = self { return true }
        return false
    }

    public var isViolation: Bool {
        if case .notLinearizable = self { return true }
        return false
    }
}

// MARK: - Checker

public enum LinearizabilityChecker {
    /// Checks `history` against a sequential key-value store whose keys all
    /// start absent.
    ///
    /// Intervals are closed: operations whose intervals touch (one's response
    /// at the very time of the other's invocation) count as concurrent, so the
    /// order of events within a single virtual tick never raises a false alarm.
    ///
    /// `budget` bounds the search steps of the verdict, summed over all keys
    /// (a step is a move tried or listed, or a comparison in the memo: well
    /// under a microsecond each in an optimized build). Each key first gets an
    /// equal share, then the undecided ones what is left, in turn; when it
    /// runs out before a proof the answer is `.unknown`. Explaining a
    /// violation (finding the shortest failing prefix, shrinking it) gets a
    /// separate allowance of `budget` steps; when that runs out the
    /// counterexample is still a proof, only not the shortest or smallest.
    public static func check(_ history: [KVOperation], budget: Int = 1_000_000) -> LinearizabilityResult {
        if let problem = validate(history) { return .unknown(reason: "malformed history: \(problem)") }

        // Partition by key, in order of first appearance.
        var keyOrder: [String] = []
        var byKey: [String: [Int]] = [:]
        for (i, op) in history.enumerated() {
            let key = op.key
            if byKey[key] == nil { keyOrder.append(key) }
            byKey[key, default: []].append(i)
        }

        var remaining = budget
        let share = max(budget / max(keyOrder.count, 1), 1)
        var undecided: [Register] = []
        for key in keyOrder {
            let register = Register(key: key, indices: byKey[key]!, history: history)
            let allowance = min(share, remaining)
            var left = allowance
            let outcome = register.search(register.allOps, budget: &left)
            remaining = max(remaining - (allowance - left), 0)
            switch outcome {
            case .linearizable: continue
            case .outOfBudget: undecided.append(register)
            case .violation: return register.explainViolation(history: history, budget: budget)
            }
        }
        var exhausted: [String] = []
        for register in undecided {
            var left = remaining
            let outcome = remaining > 0 ? register.search(register.allOps, budget: &left) : .outOfBudget
            remaining = max(left, 0)
            switch outcome {
            case .linearizable: continue
            case .outOfBudget: exhausted.append(register.key)
            case .violation: return register.explainViolation(history: history, budget: budget)
            }
        }
        if exhausted.isEmpty { return .linearizable }
        let keys = exhausted.map { show($0) }.joined(separator: ", ")
        return .unknown(reason: "search budget of \(budget) steps exhausted before a verdict on key(s) \(keys)")
    }

    static func validate(_ history: [KVOperation]) -> String? {
        for (i, op) in history.enumerated() {
            guard let response = op.response else {
                if op.result != nil { return "operation #\(i) has a result but no response time" }
                continue
            }
            if response < op.invoke { return "operation #\(i) responds at \(response), before its invocation at \(op.invoke)" }
            switch (op.kind, op.result) {
            case (.put, nil), (.put, .ok?), (.delete, nil), (.delete, .ok?), (.get, .value?), (.cas, .swapped?):
                continue
            case (.get, _):
                return "operation #\(i) is a completed get without a .value result"
            case (.cas, _):
                return "operation #\(i) is a completed cas without a .swapped result"
            default:
                return "operation #\(i) is a completed put or delete with a result other than .ok"
            }
        }
        return nil
    }
}

// MARK: - One key

/// One key's sub-history, with values interned as small integers so that a
/// register state is an `Int32`.
///
/// Only values some op compares the state with (a read's result, a
/// compare-and-set's expected value) get an id of their own; every other
/// written value gets one shared id, which is also that of "absent" when no
/// op compares with absent. No op can tell such states apart, so the search
/// is unchanged, but it has fewer states to tell apart, and unanswered writes
/// of such values become identical (see `search`).
struct Register {
    enum Step: Hashable {
        /// Also a delete (absent is a value like any other here).
        case put(Int32)
        case get(Int32)
        /// `swapped == nil`: outcome unknown.
        case cas(expected: Int32, new: Int32, swapped: Bool?)
    }

    struct Op {
        var step: Step
        var invoke: UInt64
        var response: UInt64?
        /// Index into the checked history.
        var original: Int
    }

    enum Outcome { case linearizable, violation, outOfBudget }

    let key: String
    /// The ops that can matter, in history order.
    let allOps: [Op]
    /// The id of the values no op compares with; ids run up to `maxID`.
    let other: Int32
    let maxID: Int32

    init(key: String, indices: [Int], history: [KVOperation]) {
        self.key = key
        var compared = Set<[UInt8]?>()
        for i in indices {
            let h = history[i]
            switch h.kind {
            case .get:
                if h.response != nil, case .value(let v)? = h.result { compared.insert(v) }
            case .cas(_, let expected, _):
                compared.insert(expected)
            case .put, .delete:
                break
            }
        }
        // 0: absent; `other`: any value never compared with (0 as well if
        // absent is never compared with either).
        let other: Int32 = compared.contains(nil) ? 1 : 0
        self.other = other
        var ids: [[UInt8]: Int32] = [:]
        func intern(_ value: [UInt8]?) -> Int32 {
            guard let value else { return 0 }
            guard compared.contains(value) else { return other }
            if let id = ids[value] { return id }
            let id = other + 1 + Int32(ids.count)
            ids[value] = id
            return id
        }
        var ops: [Op] = []
        for i in indices {
            let h = history[i]
            let step: Step
            switch h.kind {
            case .put(_, let value):
                step = .put(intern(value))
            case .delete:
                step = .put(0)
            case .get:
                // A read that never returned observed nothing and changed nothing.
                guard case .value(let v)? = h.result, h.response != nil else { continue }
                step = .get(intern(v))
            case .cas(_, let expected, let new):
                var swapped: Bool? = nil
                if h.response != nil, case .swapped(let s)? = h.result { swapped = s }
                step = .cas(expected: intern(expected), new: intern(new), swapped: swapped)
            }
            ops.append(Op(step: step, invoke: h.invoke, response: h.response, original: i))
        }
        allOps = ops
        maxID = other + Int32(ids.count)
    }

    /// Values (never "absent") that a completed op observes (a read, a
    /// successful compare-and-set's expected value) but no op writes.
    static func orphans(_ ops: [Op]) -> Set<Int32> {
        var observed = Set<Int32>(), written = Set<Int32>()
        for op in ops {
            switch op.step {
            case .put(let v): written.insert(v)
            case .get(let v): observed.insert(v)
            case .cas(let e, let n, let swapped):
                if swapped != false { written.insert(n) }
                if swapped == true { observed.insert(e) }
            }
        }
        observed.remove(0)
        return observed.subtracting(written)
    }

    /// The register's transition: the new state, or nil when the op's observed
    /// result is impossible in `state`.
    @inline(__always)
    static func apply(_ step: Step, to state: Int32) -> Int32? {
        switch step {
        case .put(let v): return v
        case .get(let v): return v == state ? state : nil
        case .cas(let expected, let new, let swapped):
            let matches = expected == state
            if let swapped, swapped != matches { return nil }
            return matches ? new : state
        }
    }

    /// Wing–Gong search with Lowe's memoization on `ops`.
    ///
    /// The events of the answered ops (a call and a return each) form a
    /// linked list in time order. Walking it from the head, any call met
    /// before the first return may be linearized next (nothing still pending
    /// returned before it was invoked); linearizing it unlinks its call and
    /// return. When no candidate works, the op of that first return can no
    /// longer be placed: backtrack. A configuration (linearized answered ops,
    /// used unanswered ops, register state) is explored at most once.
    ///
    /// Unanswered ops have no return: each may take effect at any time after
    /// its invocation, or never, and constrains nothing. So they only ever
    /// run as a *prelude* to an answered op that observes their effect (a
    /// read, a compare-and-set): before anything else their effect would be
    /// hidden (a blind write) or unseen (the end), and they are as well left
    /// out; ops of a prelude after the state it needs is reached can as well
    /// wait for the next observer. A prelude is therefore a path in the
    /// state graph that unanswered ops draw: at most one put first, then
    /// compare-and-sets, no state twice; when the observer is a failed
    /// compare-and-set, a single op leaving its expected value. Identical
    /// unanswered ops are used in invocation order (any one can stand for
    /// another invoked no later). A value no op left to linearize compares
    /// with is "dead": the state then counts as `other`, and unanswered puts
    /// of dead values are all identical. And a configuration is pruned when
    /// one with the same answered ops and state but a subset of its used
    /// unanswered ops was explored: that one can do all this one can.
    func search(_ ops: [Op], budget: inout Int) -> Outcome {
        let n = ops.count
        budget -= n  // the setup below
        var answeredLeft = 0
        for op in ops where op.response != nil { answeredLeft += 1 }
        if answeredLeft == 0 { return .linearizable }
        let steps = ops.map(\.step)

        // Events of the answered ops in time order; at equal times calls come
        // first (touching intervals are concurrent).
        var events: [(time: UInt64, isReturn: Bool, op: Int)] = []
        events.reserveCapacity(2 * answeredLeft)
        for (i, op) in ops.enumerated() {
            if let r = op.response {
                events.append((op.invoke, false, i))
                events.append((r, true, i))
            }
        }
        events.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.isReturn != b.isReturn { return !a.isReturn }
            return a.op < b.op
        }

        // The list: node 0 is the head, -1 the end. A node is a call
        // (nodeOp >= 0) or a return (nodeOp = ~op).
        let nodes = events.count + 1
        var next = [Int](repeating: -1, count: nodes)
        var prev = [Int](repeating: -1, count: nodes)
        var nodeOp = [Int](repeating: 0, count: nodes)
        var nodeTime = [UInt64](repeating: 0, count: nodes)
        var returnNode = [Int](repeating: -1, count: n)
        for (j, e) in events.enumerated() {
            let node = j + 1
            prev[node] = node - 1
            next[node - 1] = node
            nodeOp[node] = e.isReturn ? ~e.op : e.op
            nodeTime[node] = e.time
            if e.isReturn { returnNode[e.op] = node }
        }

        // Unanswered ops: queues of identical ones, in invocation order; the
        // first `used[q]` of queue q are used. Puts (and deletes) by value,
        // compare-and-sets by expected value.
        var queues: [[Int]] = []
        var queueOf: [Step: Int] = [:]
        for i in ops.indices.sorted(by: { (ops[$0].invoke, $0) < (ops[$1].invoke, $1) }) where ops[i].response == nil {
            if let q = queueOf[steps[i]] {
                queues[q].append(i)
            } else {
                queueOf[steps[i]] = queues.count
                queues.append([i])
            }
        }
        var putQueue: [Int32: Int] = [:]
        var casQueues: [Int32: [(queue: Int, new: Int32)]] = [:]
        var compact = [Int](repeating: -1, count: n)  // unanswered op -> its bit in `usedSet`
        var queueOfOp = [Int](repeating: -1, count: n)
        var unansweredCount = 0
        for (q, queue) in queues.enumerated() {
            switch steps[queue[0]] {
            case .put(let v): putQueue[v] = q
            case .cas(let e, let new, _) where e != new: casQueues[e, default: []].append((q, new))
            case .cas, .get: break
            }
            for i in queue {
                compact[i] = unansweredCount
                queueOfOp[i] = q
                unansweredCount += 1
            }
        }
        var used = [Int](repeating: 0, count: queues.count)
        // Put queues by first invocation (then by queue: deterministic, as
        // dictionaries are not), and the values that both a lost put writes
        // and a lost compare-and-set expects.
        let putQueues = putQueue.map { (value: $0.key, queue: $0.value) }
            .sorted { (ops[queues[$0.queue][0]].invoke, $0.queue) < (ops[queues[$1.queue][0]].invoke, $1.queue) }
        let putCasSources = casQueues.keys.filter { putQueue[$0] != nil }.sorted()

        // Answered ops numbered in invocation order, for the memo.
        var rank = [Int](repeating: -1, count: n)
        var ranked = 0
        for e in events where !e.isReturn {
            rank[e.op] = ranked
            ranked += 1
        }

        // How many ops left to linearize compare with each value (answered
        // reads and compare-and-sets, unused unanswered compare-and-sets);
        // values with none are dead, and the state is kept canonical.
        var observers = [Int](repeating: 0, count: Int(maxID) + 1)
        for (i, step) in steps.enumerated() {
            switch step {
            case .get(let v): observers[Int(v)] += 1
            case .cas(let e, let new, _): if ops[i].response != nil || e != new { observers[Int(e)] += 1 }
            case .put: break
            }
        }
        let other = self.other
        observers[Int(other)] = 0
        func canonical(_ v: Int32) -> Int32 { observers[Int(v)] == 0 ? other : v }
        func observe(_ op: Int, _ delta: Int) {
            switch steps[op] {
            case .get(let v): observers[Int(v)] += delta
            case .cas(let e, let new, _): if ops[op].response != nil || e != new { observers[Int(e)] += delta }
            case .put: break
            }
        }

        var memo = Memo(unanswered: unansweredCount)
        var linearized = Bitset(count: ranked)  // answered ops, by rank
        var hash: UInt64 = 0  // of `linearized`
        var usedSet = Bitset(count: max(unansweredCount, 1))
        var state: Int32 = canonical(0)

        // The DFS: per configuration on the path, a frame listing its moves
        // (an answered op and its prelude), of which `next` is the next to
        // try; the moves and preludes of all frames live in flat arrays.
        var moveOp: [Int] = [], moveNode: [Int] = [], movePrelude: [Int] = [], movePreludeCount: [Int] = []
        var preludeOps: [Int] = []
        var frames: [(firstMove: Int, next: Int, firstPrelude: Int, state: Int32)] = []

        // Lists all moves of the current configuration as a new frame.
        func expand() {
            let firstMove = moveOp.count, firstPrelude = preludeOps.count
            var limit: UInt64 = 0
            var node = next[0]
            while node > 0 && nodeOp[node] >= 0 { node = next[node] }
            precondition(node > 0, "linearizability search ran off the event list")
            limit = nodeTime[node]  // unanswered ops invoked by then may run

            func head(_ q: Int) -> Int? {
                let u = used[q]
                guard u < queues[q].count else { return nil }
                let op = queues[q][u]
                return ops[op].invoke <= limit ? op : nil
            }
            var path: [Int] = []
            func add(_ op: Int, _ node: Int) {
                moveOp.append(op)
                moveNode.append(node)
                movePrelude.append(preludeOps.count)
                movePreludeCount.append(path.count)
                preludeOps.append(contentsOf: path)
                budget -= 1
            }
            // Compare-and-set chains from `from` to `target`, after `path`.
            func chains(from: Int32, to target: Int32, visited: [Int32], op: Int, node: Int) {
                for (q, new) in casQueues[from] ?? [] {
                    budget -= 1
                    guard let h = head(q) else { continue }
                    path.append(h)
                    if new == target {
                        add(op, node)
                    } else if !visited.contains(new) {
                        chains(from: new, to: target, visited: visited + [new], op: op, node: node)
                    }
                    path.removeLast()
                }
            }
            // Every prelude from `state` to `target` (!= state), then `op`.
            func preludes(to target: Int32, op: Int, node: Int) {
                if let q = putQueue[target], let h = head(q) {
                    path = [h]
                    add(op, node)
                    path = []
                }
                chains(from: state, to: target, visited: [state], op: op, node: node)
                for x in putCasSources where x != state && x != target {
                    budget -= 1
                    guard let q = putQueue[x], let h = head(q) else { continue }
                    path = [h]
                    chains(from: x, to: target, visited: [state, x], op: op, node: node)
                    path = []
                }
            }

            node = next[0]
            while nodeOp[node] >= 0 {
                let op = nodeOp[node]
                budget -= 1
                switch steps[op] {
                case .put:
                    add(op, node)
                case .get(let v):
                    if v == state { add(op, node) } else { preludes(to: v, op: op, node: node) }
                case .cas(let e, _, let swapped):
                    if swapped == true {
                        if e == state { add(op, node) } else { preludes(to: e, op: op, node: node) }
                    } else if e != state {
                        add(op, node)
                    } else {
                        // A single op leaving `e`. Puts of dead values are
                        // all alike: the earliest invoked stands for them.
                        var dead: Int? = nil
                        for (x, q) in putQueues where x != e {
                            budget -= 1
                            if ops[queues[q][0]].invoke > limit { break }
                            guard let h = head(q) else { continue }
                            if observers[Int(x)] == 0 {
                                if dead.map({ (ops[h].invoke, h) < (ops[$0].invoke, $0) }) ?? true { dead = h }
                                continue
                            }
                            path = [h]
                            add(op, node)
                        }
                        if let dead {
                            path = [dead]
                            add(op, node)
                        }
                        for (q, _) in casQueues[e] ?? [] {
                            guard let h = head(q) else { continue }
                            path = [h]
                            add(op, node)
                        }
                        path = []
                    }
                }
                node = next[node]
            }
            frames.append((firstMove, firstMove, firstPrelude, state))
        }

        expand()
        while true {
            if budget <= 0 { return .outOfBudget }
            budget -= 1
            let f = frames.count - 1
            if frames[f].next == moveOp.count {
                // Every move of this configuration failed: back to its parent.
                let frame = frames.removeLast()
                moveOp.removeSubrange(frame.firstMove...)
                moveNode.removeSubrange(frame.firstMove...)
                movePrelude.removeSubrange(frame.firstMove...)
                movePreludeCount.removeSubrange(frame.firstMove...)
                preludeOps.removeSubrange(frame.firstPrelude...)
                guard let parent = frames.last else { return .violation }
                let m = parent.next - 1
                let op = moveOp[m], call = moveNode[m], ret = returnNode[op]
                linearized.remove(rank[op])
                hash ^= Memo.zobrist(rank[op])
                for p in preludeOps[movePrelude[m]..<(movePrelude[m] + movePreludeCount[m])] {
                    used[queueOfOp[p]] -= 1
                    usedSet.remove(compact[p])
                    observe(p, 1)
                }
                observe(op, 1)
                next[prev[ret]] = ret
                if next[ret] >= 0 { prev[next[ret]] = ret }
                next[prev[call]] = call
                if next[call] >= 0 { prev[next[call]] = call }
                answeredLeft += 1
                state = parent.state
                continue
            }

            // Try the next move.
            let m = frames[f].next
            frames[f].next += 1
            let op = moveOp[m]
            let prelude = movePrelude[m]..<(movePrelude[m] + movePreludeCount[m])
            var newState = state
            for p in preludeOps[prelude] {
                newState = Register.apply(steps[p], to: newState)!
                usedSet.insert(compact[p])
            }
            guard var after = Register.apply(steps[op], to: newState) else {
                preconditionFailure("linearizability search: a move that does not apply")
            }
            for p in preludeOps[prelude] { observe(p, -1) }
            observe(op, -1)
            after = canonical(after)
            linearized.insert(rank[op])
            let z = Memo.zobrist(rank[op])
            guard memo.record(linearized, state: after, hash: hash ^ z, unanswered: usedSet, budget: &budget) else {
                linearized.remove(rank[op])
                for p in preludeOps[prelude] {
                    usedSet.remove(compact[p])
                    observe(p, 1)
                }
                observe(op, 1)
                continue
            }
            hash ^= z
            for p in preludeOps[prelude] { used[queueOfOp[p]] += 1 }
            let call = moveNode[m], ret = returnNode[op]
            next[prev[call]] = next[call]
            if next[call] >= 0 { prev[next[call]] = prev[call] }
            next[prev[ret]] = next[ret]
            if next[ret] >= 0 { prev[next[ret]] = prev[ret] }
            answeredLeft -= 1
            if answeredLeft == 0 { return .linearizable }
            state = after
            expand()
        }
    }

    // MARK: Explaining a violation

    /// The ops of the shortest event prefix: ops invoked among the first
    /// `length` events, those whose response is not among them turned into
    /// in-flight ops (unknown outcome, no observation).
    func prefix(_ events: [(time: UInt64, isReturn: Bool, op: Int)], length: Int) -> [Op] {
        var included = [Bool](repeating: false, count: allOps.count)
        var returned = [Bool](repeating: false, count: allOps.count)
        for e in events.prefix(length) {
            if e.isReturn { returned[e.op] = true } else { included[e.op] = true }
        }
        var result: [Op] = []
        for (i, op) in allOps.enumerated() where included[i] {
            if returned[i] {
                result.append(op)
                continue
            }
            var inFlight = op
            inFlight.response = nil
            switch op.step {
            case .get: continue  // an unanswered read constrains nothing
            case .cas(let e, let n, _): inFlight.step = .cas(expected: e, new: n, swapped: nil)
            case .put: break
            }
            result.append(inFlight)
        }
        return result
    }

    func explainViolation(history: [KVOperation], budget: Int) -> LinearizabilityResult {
        var events: [(time: UInt64, isReturn: Bool, op: Int)] = []
        for (i, op) in allOps.enumerated() {
            events.append((op.invoke, false, i))
            if let r = op.response { events.append((r, true, i)) }
        }
        events.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.isReturn != b.isReturn { return !a.isReturn }
            return a.op < b.op
        }

        // Linearizability is prefix-closed, so "this prefix fails" is monotone
        // in the prefix length: binary search for the shortest failing one.
        // A search that runs out of budget counts as "not proved failing",
        // which can only make the reported prefix longer, never wrong.
        var allowance = budget
        var lo = 0, hi = events.count  // prefix(lo) passes, prefix(hi) fails
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            var b = allowance
            let outcome = search(prefix(events, length: mid), budget: &b)
            allowance = max(b, 0)
            if outcome == .violation { hi = mid } else { lo = mid }
        }
        // Ending with a call, a prefix fails only if the one without it does
        // (an op still in flight can be left out): end with the return that
        // cannot be placed, even if the search above ran out of budget.
        while !events[hi - 1].isReturn { hi -= 1 }
        let cut = events[hi - 1]
        let failing = prefix(events, length: hi)

        // Shrink (delta debugging): drop chunks of ops, then single ops, as
        // long as what is left still fails, always keeping the op whose
        // response ends the prefix (the failure being explained). A removal
        // that would leave a value observed without any op writing it is
        // refused (unless the failing prefix already had such an orphan), so
        // the counterexample keeps the writes that make its story, e.g. both
        // writes of a stale read.
        let culprit = allOps[cut.op].original
        let allowedOrphans = Register.orphans(failing)
        var minimal = failing
        var removedInPass = true
        while removedInPass && allowance > 0 {
            removedInPass = false
            var chunk = max(minimal.count / 2, 1)
            while chunk >= 1 && allowance > 0 {
                var start = minimal.count - chunk
                while start + chunk > 0 && allowance > 0 {
                    let lower = max(start, 0)
                    var candidate = Array(minimal[..<lower])
                    candidate += minimal[lower..<(start + chunk)].filter { $0.original == culprit }
                    candidate += minimal[(start + chunk)...]
                    if candidate.count < minimal.count && Register.orphans(candidate).isSubset(of: allowedOrphans) {
                        var b = allowance
                        let outcome = search(candidate, budget: &b)
                        allowance = max(b, 0)
                        if outcome == .violation {
                            minimal = candidate
                            removedInPass = true
                        }
                    }
                    start -= chunk
                }
                chunk /= 2
            }
        }

        let operations = minimal.map { op -> KVOperation in
            var h = history[op.original]
            if op.response == nil {
                h.response = nil
                h.result = nil
            }
            return h
        }
        var text = "key \(LinearizabilityChecker.show(key)) is not linearizable. "
        text += "The shortest failing prefix of its history ends at t=\(cut.time) with the response of "
        text += "operation #\(culprit) (\(LinearizabilityChecker.describe(history[culprit]))): "
        text += "no order of the \(failing.count) operation(s) invoked by then explains it"
        let inFlight = failing.filter { $0.response == nil && history[$0.original].response != nil }.count
        if inFlight > 0 { text += " (\(inFlight) of them still in flight at t=\(cut.time), so free to have taken effect or not)" }
        text += "."
        if !Register.orphans(minimal).isEmpty {
            text += " It observes a value that no operation invoked by then could have written."
        }
        text += "\n"
        text += allowance > 0 ? "A minimal counterexample" : "A counterexample (shrinking budget exhausted, may not be minimal)"
        text += " (\(minimal.count) operation(s)):"
        for (op, shown) in zip(minimal, operations) {
            text += "\n  #\(op.original) \(LinearizabilityChecker.describe(shown))"
            if op.response == nil, let late = history[op.original].response {
                text += " (in flight at t=\(cut.time): it responded at t=\(late))"
            }
        }
        return .notLinearizable(explanation: text, minimalCounterexample: operations)
    }
}

/// The set of linearized operations, as bits.
struct Bitset {
    var words: [UInt64]
    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
    @inline(__always) mutating func insert(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
    @inline(__always) mutating func remove(_ i: Int) { words[i >> 6] &= ~(1 << UInt64(i & 63)) }
}

/// The memo (Lowe): for each explored set of linearized answered ops with a
/// register state (a "core"), the sets of unanswered ops that were used
/// along with it, keeping only the minimal ones. A configuration is pruned
/// when one of those is a subset of its own: that configuration was (or is
/// being) explored and can do all this one can.
///
/// Cores are kept in an open-addressing table and compared exactly (the hash
/// only picks the slot). With answered ops numbered in invocation order, a
/// linearized set is a run of full words and then a short frontier, so a core
/// stores only how many full words it starts with and the words after them,
/// up to the last non-empty one: its size follows the concurrency, not the
/// length of the history.
struct Memo {
    private var slots: [Int32]  // core index + 1; 0 = empty
    private var coreHash: [UInt64] = []
    private var coreState: [Int32] = []
    private var coreFull: [Int32] = []  // leading words all ones
    private var coreStart: [Int32] = []  // into `words`
    private var coreLength: [Int32] = []
    private var words: [UInt64] = []

    private let usedWidth: Int  // bitset words of an unanswered set
    private var head: [Int32] = []  // per core: its first unanswered set, or -1
    private var link: [Int32] = []  // per unanswered set: the next one of its core, or -1
    private var used: [UInt64] = []  // the unanswered sets, usedWidth words each

    init(unanswered: Int) {
        usedWidth = max((unanswered + 63) / 64, 1)
        slots = [Int32](repeating: 0, count: 1024)
    }

    /// Bit `i`'s random 64-bit key; a set's hash is the xor of its bits' keys.
    @inline(__always) static func zobrist(_ i: Int) -> UInt64 {
        var z = UInt64(truncatingIfNeeded: i) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) private func slot(_ hash: UInt64, _ state: Int32) -> Int {
        let h = (hash ^ (UInt64(UInt32(bitPattern: state)) &* 0xD6E8_FEB8_6659_FD93)) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: h >> 32) & (slots.count - 1)
    }

    /// Records the configuration: answered ops `set` (whose hash is `hash`)
    /// with `state`, and unanswered ops `unanswered`. Returns false
    /// (recording nothing) when a recorded configuration subsumes it. Each
    /// set compared costs one step of `budget`.
    mutating func record(_ set: Bitset, state: Int32, hash: UInt64, unanswered: Bitset, budget: inout Int) -> Bool {
        var full = 0
        while full < set.words.count && set.words[full] == ~0 { full += 1 }
        var end = set.words.count
        while end > full && set.words[end - 1] == 0 { end -= 1 }

        var i = slot(hash, state)
        var core = -1
        while slots[i] != 0 {
            let c = Int(slots[i] - 1)
            if coreHash[c] == hash && coreState[c] == state && Int(coreFull[c]) == full
                && Int(coreLength[c]) == end - full {
                let start = Int(coreStart[c])
                var equal = true
                var w = 0
                while equal && w < end - full {
                    equal = words[start + w] == set.words[full + w]
                    w += 1
                }
                if equal {
                    core = c
                    break
                }
            }
            i = (i + 1) & (slots.count - 1)
        }
        if core < 0 {
            core = coreHash.count
            coreHash.append(hash)
            coreState.append(state)
            coreFull.append(Int32(full))
            coreStart.append(Int32(words.count))
            coreLength.append(Int32(end - full))
            words.append(contentsOf: set.words[full..<end])
            head.append(-1)
            slots[i] = Int32(core + 1)
            if coreHash.count * 2 > slots.count { grow() }
        } else {
            // Subsumed by a recorded subset? Drop recorded supersets on the way.
            var previous: Int32 = -1
            var entry = head[core]
            while entry >= 0 {
                budget -= 1
                let base = Int(entry) * usedWidth
                var subset = true, superset = true
                for w in 0..<usedWidth {
                    let recorded = used[base + w], mine = unanswered.words[w]
                    if recorded & ~mine != 0 { subset = false }
                    if mine & ~recorded != 0 { superset = false }
                }
                if subset { return false }
                if superset {
                    if previous < 0 { head[core] = link[Int(entry)] } else { link[Int(previous)] = link[Int(entry)] }
                } else {
                    previous = entry
                }
                entry = link[Int(entry)]
            }
        }
        used.append(contentsOf: unanswered.words)
        link.append(head[core])
        head[core] = Int32(link.count - 1)
        return true
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        for c in coreHash.indices {
            var i = slot(coreHash[c], coreState[c])
            while slots[i] != 0 { i = (i + 1) & (slots.count - 1) }
            slots[i] = Int32(c + 1)
        }
    }
}

// MARK: - Rendering

extension LinearizabilityChecker {
    /// A byte string as a quoted string when it is printable UTF-8, else hex.
    static func show(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "absent" }
        if let s = String(validating: bytes, as: UTF8.self),
           s.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" && $0 != "\\" }) {
            return "\"\(s)\""
        }
        return "0x" + bytes.map { b in
            let h = String(b, radix: 16)
            return b < 16 ? "0" + h : h
        }.joined()
    }

    static func show(_ key: String) -> String { show(Array(key.utf8)) }

    /// One operation in one line, e.g. `client 2: get "k" -> "v" [3, 7]`.
    static func describe(_ op: KVOperation) -> String {
        var s = "client \(op.client): "
        switch op.kind {
        case .put(let key, let value): s += "put \(show(key)) = \(show(value))"
        case .get(let key): s += "get \(show(key))"
        case .delete(let key): s += "delete \(show(key))"
        case .cas(let key, let expected, let new): s += "cas \(show(key)) \(show(expected)) -> \(show(new))"
        }
        switch op.result {
        case .value(let v)?: s += " read \(show(v))"
        case .swapped(let b)?: s += b ? " swapped" : " did not swap"
        case .ok?, nil: break
        }
        if let r = op.response {
            s += " [\(op.invoke), \(r)]"
        } else {
            s += " [\(op.invoke), no response]"
        }
        return s
    }
}
