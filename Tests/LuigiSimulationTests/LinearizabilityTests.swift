import LuigiCore
import LuigiSimulation
import Testing

// MARK: - Building histories by hand

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// `put key = value` by `client` over [from, to] (`to == nil`: no response).
private func put(_ client: UInt64, _ key: String, _ value: String, _ from: UInt64, _ to: UInt64?) -> KVOperation {
    KVOperation(client: client, kind: .put(key: key, value: bytes(value)), invoke: from, response: to,
                result: to == nil ? nil : .ok)
}

private func get(_ client: UInt64, _ key: String, _ read: String?, _ from: UInt64, _ to: UInt64?) -> KVOperation {
    KVOperation(client: client, kind: .get(key: key), invoke: from, response: to,
                result: to == nil ? nil : .value(read.map(bytes)))
}

private func del(_ client: UInt64, _ key: String, _ from: UInt64, _ to: UInt64?) -> KVOperation {
    KVOperation(client: client, kind: .delete(key: key), invoke: from, response: to, result: to == nil ? nil : .ok)
}

private func cas(_ client: UInt64, _ key: String, _ expected: String?, _ new: String, swapped: Bool,
                 _ from: UInt64, _ to: UInt64?) -> KVOperation {
    KVOperation(client: client, kind: .cas(key: key, expected: expected.map(bytes), new: bytes(new)),
                invoke: from, response: to, result: to == nil ? nil : .swapped(swapped))
}

private func check(_ ops: [KVOperation]) -> LinearizabilityResult { LinearizabilityChecker.check(ops) }

private func counterexample(_ r: LinearizabilityResult) -> (String, [KVOperation])? {
    if case .notLinearizable(let explanation, let ops) = r { return (explanation, ops) }
    return nil
}

// MARK: - An independent oracle

/// Linearizability by definition, for tiny histories: depth-first over every
/// order of the operations (all keys at once, no partitioning, no pruning, no
/// memoization) that respects real time, replaying a plain dictionary.
private func bruteForceLinearizable(_ ops: [KVOperation]) -> Bool {
    var placed = [Bool](repeating: false, count: ops.count)
    var store: [String: [UInt8]] = [:]
    func completedLeft() -> Bool { ops.indices.contains { !placed[$0] && ops[$0].response != nil } }
    func go() -> Bool {
        if !completedLeft() { return true }  // unanswered ops may never take effect
        for i in ops.indices where !placed[i] {
            // i goes next only if no unplaced op returned before i was invoked.
            let blocked = ops.indices.contains { j in
                !placed[j] && j != i && (ops[j].response.map { $0 < ops[i].invoke } ?? false)
            }
            if blocked { continue }
            let saved = store
            let known = ops[i].response != nil
            var fits = true
            switch ops[i].kind {
            case .put(let k, let v): store[k] = v
            case .delete(let k): store[k] = nil
            case .get(let k):
                if known, case .value(let v)? = ops[i].result { fits = store[k] == v }
            case .cas(let k, let e, let n):
                let matches = store[k] == e
                if known, case .swapped(let s)? = ops[i].result { fits = s == matches }
                if fits && matches { store[k] = n }
            }
            if fits {
                placed[i] = true
                if go() { return true }
                placed[i] = false
            }
            store = saved
        }
        return false
    }
    return go()
}

/// Linearizability by the textbook search, for small histories: depth-first
/// over the ops that may go next (no unplaced answered op returned before
/// their invocation), memoized on (placed ops, store), every key at once,
/// unanswered ops placed like the others but never required.
private func memoizedLinearizable(_ ops: [KVOperation]) -> Bool {
    precondition(ops.count <= 64)
    let required = ops.indices.reduce(UInt64(0)) { ops[$1].response != nil ? $0 | 1 << UInt64($1) : $0 }
    struct Configuration: Hashable { var placed: UInt64; var store: [String: [UInt8]] }
    var seen = Set<Configuration>()
    func go(_ placed: UInt64, _ store: [String: [UInt8]]) -> Bool {
        if placed & required == required { return true }
        guard seen.insert(Configuration(placed: placed, store: store)).inserted else { return false }
        for i in ops.indices where placed & (1 << UInt64(i)) == 0 {
            let blocked = ops.indices.contains { j in
                placed & (1 << UInt64(j)) == 0 && (ops[j].response.map { $0 < ops[i].invoke } ?? false)
            }
            if blocked { continue }
            var next = store
            let known = ops[i].response != nil
            switch ops[i].kind {
            case .put(let k, let v): next[k] = v
            case .delete(let k): next[k] = nil
            case .get(let k):
                if known, case .value(let v)? = ops[i].result, store[k] != v { continue }
            case .cas(let k, let e, let n):
                let matches = store[k] == e
                if known, case .swapped(let s)? = ops[i].result, s != matches { continue }
                if matches { next[k] = n }
            }
            if go(placed | 1 << UInt64(i), next) { return true }
        }
        return false
    }
    return go(0, [:])
}

// MARK: - A seeded linearizable history generator

private struct GeneratedHistory {
    var ops: [KVOperation]
    /// For each op (same index), the written value, if it writes one.
    var written: [[UInt8]?]
}

/// Clients issue operations one after the other (or give up after a timeout);
/// each operation that takes effect does so atomically at a random instant
/// inside its interval (after its invocation, for one that never returned),
/// and the observed results are read off that ground truth, so the history is
/// linearizable by construction.
private func generateHistory(seed: UInt64, count: Int, keys: Int, clients: Int, valueDomain: Int?,
                             unknownRate: Double, casHeavy: Bool = false) -> GeneratedHistory {
    var rng = SplitMix64(seed: seed)
    var cursor = [UInt64](repeating: 0, count: clients)
    var ops: [KVOperation] = []
    var written: [[UInt8]?] = []
    var effect: [Double?] = []  // the instant the op takes effect; nil: never
    var recent: [String: [[UInt8]]] = [:]  // recently written values, in generation order
    for n in 0..<count {
        let c = Int.random(in: 0..<clients, using: &rng)
        let key = "k\(Int.random(in: 0..<keys, using: &rng))"
        func freshValue() -> [UInt8] {
            if let d = valueDomain { return bytes("v\(Int.random(in: 0..<d, using: &rng))") }
            return bytes("c\(c)-\(n)")
        }
        func someExpected() -> [UInt8]? {
            if let d = valueDomain { return rng.chance(0.2) ? nil : bytes("v\(Int.random(in: 0..<d, using: &rng))") }
            return rng.chance(0.2) ? nil : recent[key]?.suffix(2).randomElement(using: &rng)
        }
        let kind: KVOperation.Kind
        var value: [UInt8]? = nil
        switch casHeavy ? [0, 3, 3, 7, 8, 8, 8, 8, 8, 8][Int.random(in: 0..<10, using: &rng)] : Int.random(in: 0..<10, using: &rng) {
        case 0..<3: value = freshValue(); kind = .put(key: key, value: value!)
        case 3..<7: kind = .get(key: key)
        case 7: kind = .delete(key: key)
        default: value = freshValue(); kind = .cas(key: key, expected: someExpected(), new: value!)
        }
        if let value { recent[key, default: []].append(value) }
        let invoke = cursor[c] + UInt64.random(in: 0...3, using: &rng)
        let duration = UInt64.random(in: 0...8, using: &rng)
        var op = KVOperation(client: UInt64(c), kind: kind, invoke: invoke)
        if rng.chance(unknownRate) {
            // Timed out: took effect late, or never.
            effect.append(rng.chance(0.5) ? Double(invoke) + rng.unit() * 40 : nil)
        } else {
            op.response = invoke + duration
            effect.append(Double(invoke) + rng.unit() * Double(duration))
        }
        cursor[c] = invoke + duration
        ops.append(op)
        written.append(value)
    }
    // Apply the effects in order, reading the results off the ground truth.
    var store: [String: [UInt8]] = [:]
    let order = ops.indices.filter { effect[$0] != nil }.sorted { (effect[$0]!, $0) < (effect[$1]!, $1) }
    for i in order {
        var result: KVOperation.Result
        switch ops[i].kind {
        case .put(let k, let v): store[k] = v; result = .ok
        case .delete(let k): store[k] = nil; result = .ok
        case .get(let k): result = .value(store[k])
        case .cas(let k, let e, let n):
            let swapped = store[k] == e
            if swapped { store[k] = n }
            result = .swapped(swapped)
        }
        if ops[i].response != nil { ops[i].result = result }
    }
    // The recorder's order: by invocation.
    let byInvoke = ops.indices.sorted { (ops[$0].invoke, $0) < (ops[$1].invoke, $1) }
    return GeneratedHistory(ops: byInvoke.map { ops[$0] }, written: byInvoke.map { written[$0] })
}

/// Mutates one observed result so that the history certainly stops being
/// linearizable (values must be unique per write). Returns a description.
private func breakHistory(_ h: inout GeneratedHistory, rng: inout SplitMix64) -> String {
    let ops = h.ops
    func completed(_ i: Int) -> Bool { ops[i].response != nil }
    func isGet(_ i: Int) -> Bool { if case .get = ops[i].kind { return completed(i) }; return false }
    // Completed ops that certainly set the key to a definite value.
    func definiteWrite(_ i: Int) -> Bool {
        guard completed(i) else { return false }
        switch ops[i].kind {
        case .put, .delete: return true
        case .get: return false
        case .cas: return ops[i].result == .swapped(true)
        }
    }
    let gets = ops.indices.filter(isGet)
    var candidates: [(what: String, op: Int, result: KVOperation.Result)] = []

    // A read from the future: a value first written after the read returned.
    for g in gets {
        for w in ops.indices where ops[w].key == ops[g].key && ops[w].invoke > ops[g].response!
            && h.written[w] != nil {
            candidates.append(("op \(g) reads the value op \(w) writes later", g, .value(h.written[w])))
            break
        }
    }
    // A stale read: w1 wrote v, w2 overwrote it after w1 returned, and the read
    // starts after w2 returned.
    for g in gets {
        for w2 in ops.indices where ops[w2].key == ops[g].key && definiteWrite(w2) && ops[w2].response! < ops[g].invoke {
            if let w1 = ops.indices.first(where: { w1 in
                ops[w1].key == ops[g].key && definiteWrite(w1) && h.written[w1] != nil
                    && ops[w1].response! < ops[w2].invoke
            }) {
                candidates.append(("op \(g) reads op \(w1)'s value, overwritten by op \(w2) before", g,
                                   .value(h.written[w1])))
                break
            }
        }
    }
    // A successful compare-and-set, whose value someone read, reported as failed.
    for s in ops.indices where ops[s].result == .swapped(true) {
        if gets.contains(where: { ops[$0].result == .value(h.written[s]) }) {
            candidates.append(("op \(s)'s swap, which was read, reported as failed", s, .swapped(false)))
        }
    }
    // Fallback (and a quarter of the time): a read of a value nobody wrote.
    if candidates.isEmpty || rng.chance(0.25), let g = gets.randomElement(using: &rng) {
        h.ops[g].result = .value(bytes("never-written"))
        return "op \(g) reads a value nobody wrote"
    }
    let chosen = candidates.randomElement(using: &rng)!
    h.ops[chosen.op].result = chosen.result
    return chosen.what
}

// MARK: - Tests

@Suite struct LinearizabilityTests {
    @Test func sequentialHistories() {
        #expect(check([]) == .linearizable)
        let ok = [
            get(1, "x", nil, 0, 1),
            put(1, "x", "a", 2, 3),
            get(2, "x", "a", 4, 5),
            cas(1, "x", "a", "b", swapped: true, 6, 7),
            cas(2, "x", "a", "c", swapped: false, 8, 9),
            get(1, "x", "b", 10, 11),
            del(2, "x", 12, 13),
            get(1, "x", nil, 14, 15),
            cas(2, "x", nil, "d", swapped: true, 16, 17),  // create-if-absent
            get(1, "x", "d", 18, 19),
        ]
        #expect(check(ok) == .linearizable)

        // The same, with one wrong read.
        var wrong = ok
        wrong[7] = get(1, "x", "b", 14, 15)
        let result = check(wrong)
        let (explanation, ops) = try! #require(counterexample(result))
        #expect(explanation.contains("key \"x\""))
        #expect(explanation.contains("operation #7"))
        #expect(explanation.contains("ends at t=15"))
        // What it takes: "b" written (after "a"), then deleted, then read.
        #expect(ops == [ok[1], ok[3], ok[6], wrong[7]])
    }

    /// Linearizable only in an order other than the order of invocation.
    @Test func concurrentHistoriesInNonObviousOrders() {
        // The long put of "a" takes effect after the short put of "b".
        #expect(check([
            put(1, "x", "a", 0, 100),
            put(2, "x", "b", 10, 20),
            get(3, "x", "a", 30, 40),
            get(3, "x", "a", 50, 60),
        ]) == .linearizable)
        // A read invoked before the write it observes, overlapping it.
        #expect(check([
            get(1, "x", "a", 0, 5),
            put(2, "x", "a", 3, 10),
        ]) == .linearizable)
        // Three overlapping writes, read in the order c, a, b by readers that
        // follow each other: only c < a < b (of six orders) works.
        #expect(check([
            put(1, "x", "a", 0, 50),
            put(2, "x", "b", 1, 50),
            put(3, "x", "c", 2, 50),
            get(4, "x", "c", 5, 6),
            get(4, "x", "a", 7, 8),
            get(5, "x", "b", 9, 10),
        ]) == .linearizable)
        // Intervals that touch are concurrent; a gap orders them.
        #expect(check([put(1, "x", "a", 0, 5), get(2, "x", nil, 5, 8)]) == .linearizable)
        #expect(check([put(1, "x", "a", 0, 5), get(2, "x", nil, 6, 8)]).isViolation)
        // Keys are independent registers: interleavings that would contradict
        // on one register are fine across two.
        #expect(check([
            put(1, "x", "a", 0, 1), put(1, "y", "a", 0, 1),
            put(2, "x", "b", 2, 10), put(2, "y", "b", 2, 10),
            get(3, "x", "b", 3, 4), get(3, "y", "a", 5, 6),
        ]) == .linearizable)
    }

    @Test func staleReadAfterACompletedWrite() {
        let history = [
            put(1, "x", "old", 0, 1),
            put(1, "x", "new", 2, 3),
            get(2, "y", nil, 2, 9),
            get(2, "x", "old", 4, 5),
        ]
        let (explanation, ops) = try! #require(counterexample(check(history)))
        #expect(explanation.contains("key \"x\""))
        #expect(explanation.contains("ends at t=5"))
        #expect(ops == [history[0], history[1], history[3]])
        // The read overlapping the second write is fine.
        #expect(check([history[0], history[1], get(2, "x", "old", 3, 5)]) == .linearizable)
    }

    @Test func twoReadersObserveWritesInOppositeOrders() {
        let history = [
            put(1, "x", "1", 0, 10),
            put(2, "x", "2", 0, 10),
            get(3, "x", "1", 1, 2), get(3, "x", "2", 3, 4),
            get(4, "x", "2", 1, 2), get(4, "x", "1", 3, 4),
        ]
        let (_, ops) = try! #require(counterexample(check(history)))
        #expect(ops.count == 6, "each of the six ops is needed")
        // Either reader alone is fine.
        #expect(check(Array(history[0..<4])) == .linearizable)
        #expect(check(Array(history[0..<2] + history[4..<6])) == .linearizable)
    }

    @Test func compareAndSetSucceedingTwiceOnTheSameExpectedValue() {
        let base = put(1, "x", "0", 0, 1)
        let twice = [base, cas(2, "x", "0", "1", swapped: true, 2, 5), cas(3, "x", "0", "2", swapped: true, 3, 6)]
        let (explanation, ops) = try! #require(counterexample(check(twice)))
        #expect(explanation.contains("key \"x\""))
        #expect(ops == twice)
        // Create-if-absent twice.
        #expect(check([cas(1, "x", nil, "a", swapped: true, 0, 5), cas(2, "x", nil, "b", swapped: true, 1, 6)]).isViolation)
        // One wins, one loses: fine. A concurrent reset to "0" in between: fine.
        #expect(check([base, cas(2, "x", "0", "1", swapped: true, 2, 5), cas(3, "x", "0", "2", swapped: false, 3, 6)])
            == .linearizable)
        #expect(check(twice + [put(4, "x", "0", 2, 6)]) == .linearizable)
        // ... but not if the reset has finished before both.
        #expect(check([base, put(4, "x", "0", 1, 1)] + twice[1...]).isViolation)
    }

    /// An operation without a response may have taken effect (anywhere after
    /// its invocation) or not; both must be considered.
    @Test func unknownOutcomesAreBothAppliedAndNot() {
        let lost = put(1, "x", "a", 10, nil)
        #expect(check([lost, get(2, "x", "a", 15, 16)]) == .linearizable, "applied")
        #expect(check([lost, get(2, "x", nil, 15, 16)]) == .linearizable, "not applied")
        #expect(check([lost, get(2, "x", nil, 15, 16), get(2, "x", "a", 500, 501)]) == .linearizable, "applied late")
        #expect(check([lost, get(2, "x", "a", 15, 16), get(2, "x", nil, 17, 18)]).isViolation, "applied then undone")
        #expect(check([lost, get(2, "x", "a", 2, 5)]).isViolation, "applied before its invocation")

        // A compare-and-set that timed out.
        let setup = put(1, "x", "a", 0, 1)
        let maybeSwap = cas(1, "x", "a", "b", swapped: false, 2, nil)
        #expect(check([setup, maybeSwap, get(2, "x", "b", 3, 4)]) == .linearizable)
        #expect(check([setup, maybeSwap, get(2, "x", "a", 3, 4), get(2, "x", "b", 5, 6)]) == .linearizable)
        #expect(check([setup, maybeSwap, get(2, "x", "b", 3, 4), get(2, "x", "a", 5, 6)]).isViolation)

        // A delete that timed out.
        let maybeDelete = del(1, "x", 2, nil)
        #expect(check([setup, maybeDelete, get(2, "x", nil, 3, 4)]) == .linearizable)
        #expect(check([setup, maybeDelete, get(2, "x", nil, 3, 4), get(2, "x", "a", 5, 6)]).isViolation)

        // Two identical lost puts, both needed: "b" is read, overwritten, and
        // read again.
        let twice = [
            put(1, "x", "b", 2, nil), put(2, "x", "b", 3, nil),
            get(3, "x", "b", 4, 5), put(3, "x", "a", 6, 7), get(3, "x", "b", 8, 9),
        ]
        #expect(check(twice) == .linearizable)
        #expect(check(Array(twice[1...])).isViolation)

        // A lost put of a value nobody reads still explains a failed
        // compare-and-set: it must not be dropped as irrelevant.
        let failedCAS = cas(2, "x", "a", "c", swapped: false, 3, 4)
        #expect(check([setup, put(1, "x", "zzz", 2, nil), failedCAS]) == .linearizable)
        #expect(check([setup, failedCAS]).isViolation)

        // A failed compare-and-set explained by a lost compare-and-set
        // moving the value away first.
        #expect(check([setup, cas(1, "x", "a", "b", swapped: false, 2, nil), failedCAS]) == .linearizable)
        // Two failed compare-and-sets on "a", a read of "b" between them,
        // and two lost puts: the one of "b" must serve the first failure
        // (and the read), the one of "z" (read by nobody) the second.
        let lostPuts = [put(1, "x", "z", 0, nil), put(2, "x", "b", 1, nil)]
        let failures = [
            put(3, "x", "a", 2, 3), cas(3, "x", "a", "c", swapped: false, 4, 5), get(3, "x", "b", 6, 7),
            put(3, "x", "a", 8, 9), cas(3, "x", "a", "e", swapped: false, 10, 11),
        ]
        #expect(check(lostPuts + failures) == .linearizable)
        #expect(check([lostPuts[1]] + failures).isViolation)

        // A read explained by a chain of lost ops: a put, then a
        // compare-and-set from the value it wrote.
        let chain = [put(1, "x", "p", 0, nil), cas(2, "x", "p", "q", swapped: false, 1, nil)]
        #expect(check(chain + [get(3, "x", "q", 2, 3)]) == .linearizable)
        #expect(check([chain[1], get(3, "x", "q", 2, 3)]).isViolation)
        // A lost op invoked at the very tick a read returns may precede it.
        #expect(check([get(1, "x", "b", 0, 5), put(2, "x", "b", 5, nil)]) == .linearizable)
        #expect(check([get(1, "x", "b", 0, 5), put(2, "x", "b", 6, nil)]).isViolation)

        // A read that never returned constrains nothing.
        var recorder = KVHistory()
        let w = recorder.invoke(client: 1, kind: .put(key: "x", value: bytes("a")), at: 0)
        recorder.complete(w, at: 1)
        _ = recorder.invoke(client: 2, kind: .get(key: "x"), at: 2)
        let r = recorder.invoke(client: 3, kind: .get(key: "x"), at: 3)
        recorder.complete(r, result: .value(bytes("a")), at: 4)
        #expect(recorder.operations == [put(1, "x", "a", 0, 1), get(2, "x", nil, 2, nil), get(3, "x", "a", 3, 4)])
        #expect(recorder.check() == .linearizable)
        recorder.complete(1, result: .value(bytes("b")), at: 9)
        #expect(recorder.check().isViolation)
    }

    @Test func malformedHistoriesAndExhaustedBudgetsAreNeverLinearizable() {
        var backwards = put(1, "x", "a", 5, 4)
        backwards.result = .ok
        guard case .unknown(let reason) = check([backwards]) else { Issue.record("accepted"); return }
        #expect(reason.contains("malformed"))
        let wrongShape = KVOperation(client: 1, kind: .get(key: "x"), invoke: 0, response: 1, result: .swapped(true))
        #expect(!check([wrongShape]).isLinearizable)
        let noResult = KVOperation(client: 1, kind: .cas(key: "x", expected: nil, new: [1]), invoke: 0, response: 1)
        #expect(!check([noResult]).isLinearizable)

        let history = generateHistory(seed: 7, count: 60, keys: 1, clients: 4, valueDomain: 3, unknownRate: 0).ops
        #expect(check(history) == .linearizable)
        guard case .unknown(let why) = LinearizabilityChecker.check(history, budget: 10) else {
            Issue.record("a 10-step budget gave a verdict"); return
        }
        #expect(why.contains("budget"))
    }

    /// Tiny random histories, mutated half of the time, against the
    /// by-definition oracle; every counterexample is itself non-linearizable.
    @Test func agreesWithBruteForceOnSmallHistories() {
        var disagreements = 0, violations = 0
        for seed in seeds(1500) {
            var rng = SplitMix64(seed: seed ^ 0xC0FFEE)
            // A third of the histories are on one key with many unanswered ops.
            let crowded = seed % 3 == 0
            var ops = generateHistory(seed: seed, count: Int.random(in: 1...8, using: &rng), keys: crowded ? 1 : 2,
                                      clients: crowded ? 4 : 3, valueDomain: 2, unknownRate: crowded ? 0.4 : 0.2).ops
            if rng.chance(0.5), let i = ops.indices.filter({ ops[$0].response != nil }).randomElement(using: &rng) {
                switch ops[i].kind {
                case .get: ops[i].result = .value(rng.chance(0.3) ? nil : bytes("v\(Int.random(in: 0..<2, using: &rng))"))
                case .cas: ops[i].result = .swapped(rng.chance(0.5))
                case .put(let k, _): ops[i].kind = .put(key: k, value: bytes("v\(Int.random(in: 0..<2, using: &rng))"))
                case .delete: ops[i].response = ops[i].response! + UInt64.random(in: 0...5, using: &rng)
                }
            }
            let expected = bruteForceLinearizable(ops)
            let result = check(ops)
            if result.isLinearizable != expected || (!expected && !result.isViolation) {
                disagreements += 1
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): checker says \(result), oracle says \(expected)\n\(ops)")
            }
            if let (_, cx) = counterexample(result) {
                violations += 1
                #expect(!bruteForceLinearizable(cx), "seed \(seed): the counterexample is linearizable")
                #expect(cx.allSatisfy { c in ops.contains { $0.kind == c.kind && $0.invoke == c.invoke } }, "seed \(seed)")
            }
        }
        #expect(disagreements == 0)
        if getenvString("LUIGI_SEED") == nil { #expect(violations > 150, "the mutations should break some histories") }
    }

    /// Medium histories crowded with unanswered ops, mutated half of the
    /// time, against the textbook memoized search (which has none of the
    /// checker's reductions for unanswered ops).
    @Test func agreesWithTheTextbookSearchOnCrowdedHistories() {
        var violations = 0
        for seed in seeds(1500) {
            var rng = SplitMix64(seed: seed ^ 0xBADC0DE)
            var ops = generateHistory(seed: seed, count: Int.random(in: 8...16, using: &rng), keys: 1,
                                      clients: Int.random(in: 2...4, using: &rng),
                                      valueDomain: seed % 3 == 0 ? nil : Int.random(in: 2...3, using: &rng),
                                      unknownRate: 0.35, casHeavy: seed % 2 == 1).ops
            if rng.chance(0.5), let i = ops.indices.filter({ ops[$0].response != nil }).randomElement(using: &rng) {
                switch ops[i].kind {
                case .get: ops[i].result = .value(rng.chance(0.3) ? nil : bytes("v\(Int.random(in: 0..<3, using: &rng))"))
                case .cas: ops[i].result = .swapped(rng.chance(0.5))
                case .put(let k, _): ops[i].kind = .put(key: k, value: bytes("v\(Int.random(in: 0..<3, using: &rng))"))
                case .delete: break
                }
            }
            let expected = memoizedLinearizable(ops)
            let result = check(ops)
            if !expected { violations += 1 }
            #expect(result.isLinearizable == expected && (expected || result.isViolation),
                    "seed \(seed) (LUIGI_SEED=\(seed) to replay): checker says \(result), textbook search says \(expected)\n\(ops)")
        }
        if getenvString("LUIGI_SEED") == nil { #expect(violations > 200, "the mutations should break some histories") }
    }

    /// Random histories of 200+ operations, linearizable by construction.
    @Test func randomLinearizableHistoriesPass() {
        var opsChecked = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for seed in seeds(40) {
                var rng = SplitMix64(seed: seed)
                let history = generateHistory(
                    seed: seed, count: Int.random(in: 200...260, using: &rng), keys: Int.random(in: 2...4, using: &rng),
                    clients: Int.random(in: 3...6, using: &rng), valueDomain: seed % 2 == 0 ? 3 : nil,
                    unknownRate: [0.0, 0.05, 0.15][Int(seed % 3)])
                opsChecked += history.ops.count
                let result = check(history.ops)
                #expect(result == .linearizable, "seed \(seed) (LUIGI_SEED=\(seed) to replay): \(result)")
            }
        }
        print("linearizable 200+-op histories: \(opsChecked) ops in \(elapsed), \(rate(opsChecked, elapsed)) ops/s")
    }

    /// The same, with one observed result changed so that no linearization
    /// exists; the counterexample is itself a non-linearizable history.
    @Test func randomHistoriesWithOneWrongResultFail() {
        var opsChecked = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for seed in seeds(40) {
                var rng = SplitMix64(seed: seed)
                var history = generateHistory(
                    seed: seed, count: Int.random(in: 200...260, using: &rng), keys: Int.random(in: 2...4, using: &rng),
                    clients: Int.random(in: 3...6, using: &rng), valueDomain: nil,
                    unknownRate: [0.0, 0.05, 0.15][Int(seed % 3)])
                let mutation = breakHistory(&history, rng: &rng)
                opsChecked += history.ops.count
                let result = check(history.ops)
                guard let (explanation, cx) = counterexample(result) else {
                    Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(mutation), yet \(result)")
                    continue
                }
                #expect(explanation.contains("key \"k"), "seed \(seed)")
                #expect(!cx.isEmpty && cx.count < history.ops.count, "seed \(seed)")
                #expect(check(cx).isViolation, "seed \(seed): the counterexample passes:\n\(explanation)")
            }
        }
        print("broken 200+-op histories: \(opsChecked) ops in \(elapsed), \(rate(opsChecked, elapsed)) ops/s")
    }

    /// Small value domains make reads ambiguous, so refuting a read of a value
    /// nobody wrote means exhausting every candidate order up to it.
    @Test func ambiguousHistoriesWithAnImpossibleReadFail() {
        for seed in seeds(6) {
            var rng = SplitMix64(seed: seed)
            var history = generateHistory(seed: seed, count: 220, keys: 2, clients: 5, valueDomain: 2, unknownRate: 0.03)
            let gets = history.ops.indices.filter { isCompletedRead(history.ops[$0]) }
            let g = gets[Int.random(in: gets.count / 2..<gets.count, using: &rng)]
            history.ops[g].result = .value(bytes("never-written"))
            let result = check(history.ops)
            guard let (explanation, cx) = counterexample(result) else {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(result)"); continue
            }
            #expect(explanation.contains("operation #\(g)"), "seed \(seed): \(explanation)")
            #expect(cx.count == 1, "seed \(seed): the impossible read alone is the counterexample\n\(explanation)")
        }
    }
}

private func isCompletedRead(_ op: KVOperation) -> Bool {
    if case .value? = op.result { return true }
    return false
}

private func rate(_ ops: Int, _ d: Duration) -> Int {
    let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    return seconds > 0 ? Int(Double(ops) / seconds) : 0
}
