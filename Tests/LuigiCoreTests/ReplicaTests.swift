import LuigiCore
import Testing

@Suite struct ReplicaTests {
    @Test func commitAppliesLocallyAndStampsADot() throws {
        let r = Replica(nodeID: 4)
        let u = try r.commit { tx in
            try tx.add("hits", 2)
            try tx.add("hits", 3)
            try tx.max("peak", .int(10))
            try tx.union("tags", [.string("a"), .int(1)])
        }
        #expect(u.origin == 4 && u.seq == 1 && u.clock == VectorClock([4: 1]))
        #expect(r.value("hits") == .counter(5))
        #expect(r.value("peak") == .max(.int(10)))
        #expect(r.value("tags") == .set([.string("a"), .int(1)]))
        #expect(r.keys == ["hits", "peak", "tags"])
        #expect(r.clock == VectorClock([4: 1]))
    }

    @Test func rejectedTransactionChangesNothing() throws {
        let r = Replica(nodeID: 1)
        try r.commit { try $0.add("n", 1) }
        let before = (r.clock, r.value("n"), r.keys)
        let tx = r.transaction()
        try tx.add("n", 5)
        try tx.add("fresh", 1)
        try tx.union("n", .int(3))  // conflicts with the counter
        #expect(throws: LuigiError.self) { try tx.commit() }
        #expect(r.clock == before.0 && r.value("n") == before.1 && r.keys == before.2)
        // The next commit still gets seq 2: the rejected one consumed nothing.
        let next = try r.commit { try $0.add("n", 1) }
        #expect(next.seq == 2)
    }

    @Test func typeIsFixedByTheFirstOp() throws {
        let r = Replica(nodeID: 1)
        try r.commit { try $0.max("k", .int(1)) }
        #expect(throws: LuigiError.typeConflict("key 'k' is a max, not a min")) {
            try r.commit { try $0.min("k", .int(0)) }
        }
    }

    @Test func overwriteIsNotAlgebraic() throws {
        let r = Replica(nodeID: 1)
        let tx = r.transaction()
        try tx.add("c", 1)
        try tx.set("k", .int(1))
        try tx.set("k", .int(2))  // the later set replaces the earlier
        #expect(tx.needsCoordination)
        #expect(throws: LuigiError.self) { try tx.commit() }
        do {
            try tx.commit()
        } catch LuigiError.notAlgebraic(let m) {
            #expect(m.contains("set('k')"))
        }
        #expect(!tx.isFinished)
        #expect(r.clock == VectorClock() && r.value("c") == nil)
        #expect(throws: LuigiError.invalidArgument("NaN is not a valid number: it has no place in a total order")) { try tx.set("n", .float(.nan)) }
        #expect(throws: LuigiError.self) {
            try r.commit {
                try $0.set("x", .int(1))
                try $0.add("x", 1)  // one key, two types
            }
        }
    }

    @Test func registerKeepsTheAssignWithTheLargestDot() throws {
        let log: UInt64 = 100
        func assign(_ seq: UInt64, _ n: Number) throws -> Update {
            try Update(origin: log, seq: seq, clock: VectorClock([log: seq]), ops: [("k", .assign(n))])
        }
        let first = try assign(1, .int(7)), second = try assign(2, .float(-0.5))
        #expect(try Update(decoding: second.encoded()) == second)
        let r = Replica(nodeID: 1)
        r.apply(second)  // waits for (100, 1)
        #expect(r.value("k") == nil)
        r.apply(first)
        #expect(r.value("k") == .register(.float(-0.5)))
        #expect(throws: LuigiError.typeConflict("key 'k' is a register, not a counter")) { try r.commit { try $0.add("k", 1) } }
    }

    @Test func committedTransactionCannotBeReused() throws {
        let tx = Replica(nodeID: 1).transaction()
        try tx.add("k", 1)
        try tx.commit()
        #expect(throws: LuigiError.state("transaction already committed")) { try tx.add("k", 1) }
        #expect(throws: LuigiError.self) { try tx.commit() }
    }

    @Test func ownContributionOverflowIsRejectedButTotalsExceed64Bits() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        let ua = try a.commit { try $0.add("c", Int64.max) }
        let ub = try b.commit { try $0.add("c", Int64.max) }
        #expect(throws: LuigiError.self) { try a.commit { try $0.add("c", 1) } }
        a.apply(ub)
        b.apply(ua)
        let expected = Int128(Int64.max) * 2
        #expect(a.value("c") == .counter(expected))
        #expect(b.value("c") == .counter(expected))
        // Going back down is fine: the contribution stays in range.
        try a.commit { try $0.add("c", -5) }
        #expect(a.value("c") == .counter(expected - 5))
    }

    @Test func nanIsRejectedAtTheOp() throws {
        let tx = Replica(nodeID: 1).transaction()
        #expect(throws: LuigiError.self) { try tx.max("m", .float(.nan)) }
        #expect(tx.opCount == 0)
    }

    @Test func applyIsIdempotent() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        let u = try a.commit { try $0.add("c", 7) }
        #expect(b.apply(u))
        #expect(!b.apply(u))
        #expect(!b.apply(try Update(decoding: u.encoded())))
        #expect(b.value("c") == .counter(7))
    }

    @Test func deliveryIsCausal() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2), c = Replica(nodeID: 3)
        let u1 = try a.commit { try $0.union("s", .int(1)) }
        b.apply(u1)
        let u2 = try b.commit { try $0.union("s", .int(2)) }  // depends on u1
        let u3 = try a.commit { try $0.union("s", .int(3)) }  // depends on u1
        #expect(c.apply(u2))
        #expect(c.apply(u3))
        #expect(c.pendingCount == 2)
        #expect(c.value("s") == nil)
        #expect(!c.apply(u3))  // already pending: a duplicate
        #expect(c.apply(u1))
        #expect(c.pendingCount == 0)
        #expect(c.value("s") == .set([.int(1), .int(2), .int(3)]))
        #expect(c.clock == VectorClock([1: 2, 2: 1]))
    }

    @Test func deltaShipsOnlyWhatIsMissingInCausalOrder() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        for i in 0..<5 { try a.commit { try $0.add("c", Int64(i)) } }
        let seen = a.clock
        try b.commit { try $0.add("c", 100) }
        a.apply(b.delta(since: a.clock)[0])
        for _ in 0..<3 { try a.commit { try $0.add("c", 1) } }
        let delta = a.delta(since: seen)
        #expect(delta.map(\.dot) == [Dot(origin: 2, seq: 1), Dot(origin: 1, seq: 6), Dot(origin: 1, seq: 7), Dot(origin: 1, seq: 8)])
        let fresh = Replica(nodeID: 9)
        for u in a.delta(since: VectorClock()) { fresh.apply(u) }
        #expect(fresh.pendingCount == 0)
        #expect(fresh.value("c") == a.value("c"))
    }

    /// The merged delta is the sort by (sum of clock, dot) it replaced, and
    /// stopping early gives a prefix of it.
    @Test(arguments: 0..<40) func deltaMergesTheOriginsLogsInSortedOrder(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let replicas = (1...4).map { Replica(nodeID: UInt64($0)) }
        for _ in 0..<60 {
            let r = replicas[Int(rng.next() % 4)]
            if rng.next() % 3 == 0 {
                let from = replicas[Int(rng.next() % 4)]
                for u in from.delta(since: r.clock) { r.apply(u) }
            } else {
                try r.commit { try $0.add("k\(rng.next() % 5)", 1) }
            }
        }
        for r in replicas {
            let seen = replicas[Int(rng.next() % 4)].clock
            var reference: [Update] = []
            for origin in UInt64(1)...4 {
                reference += r.updates(from: origin, count: Int.max).dropFirst(Int(min(seen[origin], UInt64(Int.max))))
            }
            reference.sort { ($0.clock.total, $0.dot) < ($1.clock.total, $1.dot) }
            #expect(r.delta(since: seen).map(\.dot) == reference.map(\.dot), "seed \(seed)")
            let k = Int(rng.next() % UInt64(reference.count + 1))
            var taken: [Dot] = []
            r.forEachDelta(since: seen) { u in
                guard taken.count < k else { return false }
                taken.append(u.dot)
                return true
            }
            #expect(taken == reference.prefix(k).map(\.dot), "seed \(seed)")
        }
    }

    @Test func concurrentTypeConflictConvergesByEarliestDot() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        let ua = try a.commit { try $0.union("k", .int(1)) }
        let ub = try b.commit { try $0.add("k", 5) }
        let ub2 = try b.commit { try $0.add("k", 1) }
        a.apply(ub)
        a.apply(ub2)
        b.apply(ua)
        // Dot (1, 1) < (2, 1): the set wins everywhere; both counter ops are kept and counted.
        #expect(a.value("k") == .set([.int(1)]))
        #expect(b.value("k") == .set([.int(1)]))
        #expect(a.conflicts == 2 && b.conflicts == 2)
        // Node 2 now sees a set, so another add is a local type conflict.
        #expect(throws: LuigiError.self) { try b.commit { try $0.add("k", 1) } }
    }

    @Test func extremesAreBitIdenticalWhateverTheOrder() throws {
        func converge(_ values: [Number]) throws -> [Replica] {
            let updates = try values.enumerated().map { i, v in
                try Replica(nodeID: UInt64(i)).commit { tx in
                    try tx.max("hi", v)
                    try tx.min("lo", v)
                }
            }
            let orders = [Array(updates.indices), Array(updates.indices.reversed()), Array(updates.indices).shuffled()]
            return orders.map { order in
                let r = Replica(nodeID: 99)
                for i in order { r.apply(updates[i]) }
                return r
            }
        }
        for r in try converge([.float(-0.0), .float(0.0), .int(0), .float(1e308), .float(.infinity), .int(-3)]) {
            #expect(r.value("hi") == .max(.float(.infinity)))
            #expect(r.value("lo") == .min(.int(-3)))
        }
        for r in try converge([.float(0.0), .float(-0.0), .int(0)]) {
            #expect(r.value("hi") == .max(.int(0)))  // at equal value an int sorts above a double
            guard case .min(.float(let lo))? = r.value("lo") else {
                Issue.record("min should be a float")
                continue
            }
            #expect(lo.bitPattern == (-0.0).bitPattern)
        }
    }
}

@Suite struct LargeSetTests {
    @Test func largeConcurrentUnionsConvergeAndRoundTrip() throws {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        let ua = try a.commit { try $0.union("s", (0..<50_000).map { Element.int(Int64($0)) }) }
        let ub = try b.commit { try $0.union("s", (25_000..<75_000).map { Element.string("e\($0)") } + [.int(7)]) }
        let wire = try Update(decoding: ub.encoded())
        #expect(wire == ub)
        a.apply(wire)
        b.apply(ua)
        guard case .set(let elements)? = a.value("s") else {
            Issue.record("not a set")
            return
        }
        #expect(elements.count == 100_000)
        #expect(a.value("s") == b.value("s"))
    }
}

extension LargeSetTests {
    /// One element per call is how the C ABI adds to a set: it must not copy
    /// the buffered set each time (200k calls would take minutes if it did).
    @Test func elementByElementUnionIsLinear() throws {
        let r = Replica(nodeID: 1)
        let tx = r.transaction()
        for i in 0..<200_000 { try tx.union("s", .int(Int64(i))) }
        try tx.commit()
        guard case .set(let s)? = r.value("s") else {
            Issue.record("not a set")
            return
        }
        #expect(s.count == 200_000)
    }
}
