@testable import LuigiAlgebraic
import LuigiCore
@testable import LuigiReplicaRaft
import LuigiSimulation
import Testing

/// The algebraic replica as a Raft plugin: transactions with overwrites
/// commit through the log, at the same position on every node, and merge
/// with the coordination-free updates of replicas inside and outside the
/// Raft group.
@Suite struct ReplicaPluginTests {
    static let logOrigin: UInt64 = 1_000

    static func cluster(seed: UInt64, nodes: Int = 3, compactAfter: Int = 0) throws -> RaftCluster {
        var o = RaftCluster.Options(nodes: nodes, seed: seed)
        o.compactAfter = compactAfter
        o.makeMachine = { id in try ReplicaStateMachine(replica: Replica(nodeID: id), logOrigin: logOrigin) }
        return try RaftCluster(o)
    }

    static func machine(_ c: RaftCluster, _ id: UInt64) -> ReplicaStateMachine {
        c.stateMachine(id) as! ReplicaStateMachine
    }

    /// Proposes a transaction built by `body` on the leader's replica.
    @discardableResult
    static func propose(_ c: RaftCluster, _ body: (Transaction) throws -> Void) throws -> (UInt64, UInt64) {
        let l = try c.electLeader()
        let m = machine(c, l)
        let tx = m.replica.transaction()
        try body(tx)
        return (l, try m.propose(tx, to: c.node(l)!))
    }

    /// The log's updates held by a node's replica, in seq order.
    static func logUpdates(_ c: RaftCluster, _ id: UInt64) -> [Update] {
        machine(c, id).replica.delta(since: VectorClock()).filter { $0.origin == logOrigin }
    }

    @Test func lastSetInLogOrderWinsOnEveryNode() throws {
        let c = try Self.cluster(seed: 1)
        let (l, first) = try Self.propose(c) { try $0.set("r", .int(1)); try $0.add("c", 5) }
        let (_, second) = try Self.propose(c) { try $0.set("r", .float(2.5)) }
        try c.settle()
        for id in c.nodeIDs {
            let r = Self.machine(c, id).replica
            #expect(r.value("r") == .register(.float(2.5)), "node \(id)")
            #expect(r.value("c") == .counter(5), "node \(id)")
            #expect(r.clock[Self.logOrigin] == 2)
        }
        #expect(Self.machine(c, l).outcome(at: first) == .committed)
        #expect(Self.machine(c, l).outcome(at: second) == .committed)
        #expect(Self.machine(c, l).outcome(at: 999) == .unknown)
        #expect(Self.sameLogUpdates(c))
    }

    static func sameLogUpdates(_ c: RaftCluster) -> Bool {
        let first = logUpdates(c, c.nodeIDs[0])
        return c.nodeIDs.allSatisfy { logUpdates(c, $0) == first }
    }

    @Test func proposedTransactionIsFinishedAndAFailedProposalLeavesItOpen() throws {
        let c = try Self.cluster(seed: 2)
        let l = try c.electLeader()
        let follower = c.nodeIDs.first { $0 != l }!
        let tx = Self.machine(c, follower).replica.transaction()
        try tx.set("r", .int(1))
        #expect(throws: LuigiError.self) { try Self.machine(c, follower).propose(tx, to: c.node(follower)!) }
        #expect(!tx.isFinished)
        #expect(throws: LuigiError.self) { try Self.machine(c, l).propose(tx, to: c.node(l)!) }  // another replica's txn
        let mine = Self.machine(c, l).replica.transaction()
        try mine.set("r", .int(1))
        let index = try Self.machine(c, l).propose(mine, to: c.node(l)!)
        #expect(mine.proposedIndex == index && mine.update == nil)
        #expect(throws: LuigiError.state("transaction already proposed to the log")) { try mine.add("c", 1) }
    }

    @Test func logRejectsTypeConflictsAndOverflowTheSameWayEverywhere() throws {
        let c = try Self.cluster(seed: 3)
        // Both proposed before either applies: the proposer's replica cannot
        // see the conflict; the log's own check rejects the second.
        let l = try c.electLeader()
        let m = Self.machine(c, l)
        func propose(_ body: (Transaction) throws -> Void) throws -> UInt64 {
            let tx = m.replica.transaction()
            try body(tx)
            return try m.propose(tx, to: c.node(l)!)
        }
        let set = try propose { try $0.set("r", .int(1)) }
        let add = try propose { try $0.add("r", 1) }
        let big = try propose { try $0.add("c", .max) }
        let overflow = try propose { try $0.add("c", 1); try $0.set("r", .int(9)) }
        #expect(m.outcome(at: set) == .pending)
        try c.settle()
        #expect(m.outcome(at: set) == .committed && m.outcome(at: big) == .committed)
        guard case .rejected(.typeConflict) = m.outcome(at: add) else { Issue.record("\(m.outcome(at: add))"); return }
        guard case .rejected(.overflow) = m.outcome(at: overflow) else { Issue.record("\(m.outcome(at: overflow))"); return }
        for id in c.nodeIDs {
            let r = Self.machine(c, id).replica
            #expect(r.value("r") == .register(.int(1)), "a rejected transaction changes nothing (node \(id))")
            #expect(r.value("c") == .counter(Int128(Int64.max)))
            #expect(Self.machine(c, id).committedTransactions == 2)
        }
    }

    @Test func proposalReplacedAfterALeaderChangeIsLost() throws {
        let c = try Self.cluster(seed: 4)
        let old = try c.electLeader()
        c.isolate(old)
        let (_, index) = try Self.propose(c) { try $0.set("r", .int(1)) }  // on the isolated leader
        for _ in 0..<200 where c.leader == old { try c.tick() }
        let (_, winner) = try Self.propose(c) { try $0.set("r", .int(2)) }
        c.heal()
        try c.settle()
        #expect(Self.machine(c, old).outcome(at: index) == .lost)
        #expect(Self.machine(c, c.leader!).outcome(at: winner) == .committed)
        for id in c.nodeIDs { #expect(Self.machine(c, id).replica.value("r") == .register(.int(2))) }
    }

    @Test func restartedNodeRebuildsTheLogsStateFromSnapshotAndLog() throws {
        let c = try Self.cluster(seed: 5, compactAfter: 5)
        for i in 0..<12 { try Self.propose(c) { try $0.set("r", .int(Int64(i))); try $0.union("s", .int(Int64(i))) } }
        try c.settle()
        let victim = c.nodeIDs.first { $0 != c.leader }!
        c.crash(victim)
        for i in 12..<20 { try Self.propose(c) { try $0.set("r", .int(Int64(i))); try $0.add("c", 1) } }
        try c.restart(victim)
        try c.settle()
        let r = Self.machine(c, victim).replica
        #expect(r.value("r") == .register(.int(19)))
        #expect(r.value("c") == .counter(8))
        #expect(r.value("s") == .set(Set((0..<12).map { Element.int(Int64($0)) })))
        #expect(Self.sameLogUpdates(c))
    }

    @Test func snapshotOfAnotherLogIsRefused() throws {
        let m = try ReplicaStateMachine(replica: Replica(nodeID: 1), logOrigin: 7)
        let other = try ReplicaStateMachine(replica: Replica(nodeID: 1), logOrigin: 8)
        _ = try other.apply(RaftEntry(term: 1, index: 1, kind: .normal, data: try {
            let tx = other.replica.transaction()
            try tx.set("r", .int(1))
            return try CoordinatedCommand(ops: tx.opsForLog()).encoded()
        }()))
        #expect(throws: LuigiError.self) { try m.restore(other.snapshot()) }
        #expect(throws: LuigiError.self) { try m.restore([1, 2, 3]) }
        #expect(throws: LuigiError.invalidArgument(
            "the log's origin id must be non-zero and differ from the replica's node id 1")) {
            try ReplicaStateMachine(replica: Replica(nodeID: 1), logOrigin: 1)
        }
        #expect(try m.apply(RaftEntry(term: 1, index: 2, kind: .normal, data: CoordinatedCommand.magic + [0])).first == 0)
        #expect(m.replica.clock == VectorClock(), "a malformed transaction changes nothing")
    }

    /// An update that claims one of the log's dots, arriving before the log
    /// gets there, never takes the log's update's place (it used to sit in
    /// `pending`, make the log's update look like a duplicate, and leave the
    /// snapshot slicing past the end of the replica's log).
    @Test func aForgedDotOfTheLogNeverReplacesTheLogsUpdate() throws {
        let logOrigin: UInt64 = 100
        func command(_ value: Int64) throws -> [UInt8] {
            let tx = Replica(nodeID: 9).transaction()
            try tx.set("r", .int(value))
            return try CoordinatedCommand(ops: tx.opsForLog()).encoded()
        }
        // Not the shape of a log update (its clock names another origin), or
        // not next in line: dropped on a replica the log is attached to.
        let forged = try Update(
            origin: logOrigin, seq: 1, clock: VectorClock([logOrigin: 1, 5: 3]), ops: [("r", .assign(.int(666)))])
        let ahead = try Update(
            origin: logOrigin, seq: 2, clock: VectorClock([logOrigin: 2]), ops: [("r", .assign(.int(666)))])
        // The shape of the log's first update, with other contents.
        let deliverable = try Update(
            origin: logOrigin, seq: 1, clock: VectorClock([logOrigin: 1]), ops: [("r", .assign(.int(666)))])
        for early in [forged, ahead] {
            let replica = Replica(nodeID: 1)
            let m = try ReplicaStateMachine(replica: replica, logOrigin: logOrigin)
            #expect(!replica.apply(early), "the log's origin is reserved")
            #expect(replica.pendingCount == 0 && replica.clock == VectorClock())
            #expect(try m.apply(RaftEntry(term: 1, index: 1, data: try command(1))) == [1])
            #expect(replica.value("r") == .register(.int(1)))
            let restored = try ReplicaStateMachine(replica: Replica(nodeID: 2), logOrigin: logOrigin)
            try restored.restore(m.snapshot())
            #expect(restored.replica.value("r") == .register(.int(1)))
        }
        // A replica that took a well-shaped impostor: the log's update is
        // refused loudly and offered again, never silently lost or skipped.
        for attachFirst in [false, true] {
            let diverged = Replica(nodeID: 3)
            var m: ReplicaStateMachine? = nil
            if attachFirst { m = try ReplicaStateMachine(replica: diverged, logOrigin: logOrigin) }
            #expect(diverged.apply(deliverable))
            if m == nil { m = try ReplicaStateMachine(replica: diverged, logOrigin: logOrigin) }
            #expect(throws: LuigiError.self) { try m!.apply(RaftEntry(term: 1, index: 1, data: try command(1))) }
            #expect(m!.committedTransactions == 0 && m!.appliedIndex == 0)
            #expect(try m!.snapshot() == ReplicaStateMachine(replica: Replica(nodeID: 8), logOrigin: logOrigin).snapshot())
        }
        // Pending updates of the log's origin are dropped when it is attached.
        let waiting = Replica(nodeID: 4)
        #expect(waiting.apply(forged) && waiting.pendingCount == 1)
        let w = try ReplicaStateMachine(replica: waiting, logOrigin: logOrigin)
        #expect(waiting.pendingCount == 0)
        #expect(try w.apply(RaftEntry(term: 1, index: 1, data: try command(2))) == [1])
        #expect(waiting.value("r") == .register(.int(2)))
    }

    /// Random coordinated transactions through a faulty Raft group, random
    /// algebraic transactions on its replicas and on two replicas outside
    /// it, anti-entropy between all of them: every replica ends equal to a
    /// sequential model that applies the log's transactions in log order and
    /// adds every algebraic contribution.
    @Test func randomMixedHistoriesConverge() throws {
        for seed in raftSeeds(300) {
            do {
                try Self.mixedHistory(seed: seed)
            } catch {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed)): \(error)")
            }
        }
    }

    static func mixedHistory(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var o = RaftCluster.Options(nodes: 3, seed: seed)
        o.faults = NetworkFaults(drop: 0.05, duplicate: 0.05, reorder: 0.2, maxDelay: 2)
        o.compactAfter = rng.chance(0.5) ? 8 : 0
        o.makeMachine = { id in try ReplicaStateMachine(replica: Replica(nodeID: id), logOrigin: logOrigin) }
        let c = try RaftCluster(o)
        let outsiders = [Replica(nodeID: 11), Replica(nodeID: 12)]
        var algebraic: [String: Int128] = [:]  // counter totals of every local commit
        var unions: [String: Set<Element>] = [:]
        var down: UInt64? = nil
        func replicas() -> [Replica] { c.nodeIDs.filter(c.isAlive).map { machine(c, $0).replica } + outsiders }
        func syncAll() {
            let all = replicas()
            for a in all { for b in all where a !== b { for u in a.delta(since: b.clock) { b.apply(u) } } }
        }
        try c.electLeader()
        for _ in 0..<60 {
            switch Int.random(in: 0..<12, using: &rng) {
            case 0 where down == nil:
                // Replicas live in memory: a member's own algebraic updates
                // survive its crash because anti-entropy shipped them first,
                // and come back before it commits again (no dot is reused).
                syncAll()
                let victim = c.nodeIDs.randomElement(using: &rng)!
                c.crash(victim)
                down = victim
            case 1:
                if let back = down {
                    try c.restart(back)
                    down = nil
                    syncAll()
                }
            case 2: c.isolate(c.nodeIDs.randomElement(using: &rng)!)
            case 3: c.heal()
            case 4: syncAll()
            default: break
            }
            let key = Int.random(in: 0..<3, using: &rng)
            if rng.chance(0.5) {
                // Coordinated, through whoever leads now (if anyone).
                guard let l = c.leader else { try c.tick(); continue }
                let tx = machine(c, l).replica.transaction()
                try tx.set("r\(key)", .int(Int64.random(in: 0..<100, using: &rng)))
                if rng.chance(0.5) { try tx.add("c\(key)", rng.chance(0.1) ? Int64.max / 3 * 2 : 1) }
                if rng.chance(0.3) { try tx.union("s\(key)", .int(Int64.random(in: 0..<5, using: &rng))) }
                if rng.chance(0.05) { try tx.add("r\(key)", 1) }  // conflicts with the register
                _ = try? machine(c, l).propose(tx, to: c.node(l)!)
            } else {
                // Algebraic, on a live member's replica or an outsider.
                let r = replicas().randomElement(using: &rng)!
                let delta = Int64.random(in: -3...3, using: &rng)
                let element = Element.int(Int64.random(in: 0..<5, using: &rng) + 100)
                try r.commit { try $0.add("c\(key)", delta); try $0.union("s\(key)", element) }
                algebraic["c\(key)", default: 0] += Int128(delta)
                unions["s\(key)", default: []].insert(element)
            }
            try c.tick(Int.random(in: 0...3, using: &rng))
        }
        c.heal()
        if let back = down { try c.restart(back) }
        try c.settle()
        syncAll()

        // The model: the log's transactions in log order, then the algebraic ones.
        let l = c.leader!
        var kinds: [String: Kind] = [:]
        var logShare: [String: Int128] = [:]
        var registers: [String: Number] = [:]
        var accepted = 0, rejected = 0
        for (_, _, data) in c.committedEntries where data.starts(with: CoordinatedCommand.magic) {
            let command = try CoordinatedCommand(decoding: data)
            let ok = command.ops.allSatisfy { key, op in
                if let k = kinds[key], k != op.kind { return false }
                if case .counter(let d) = op { return Int64(exactly: (logShare[key] ?? 0) + d) != nil }
                return true
            }
            guard ok else { rejected += 1; continue }
            accepted += 1
            for (key, op) in command.ops {
                kinds[key] = op.kind
                switch op {
                case .counter(let d): logShare[key, default: 0] += d
                case .assign(let n): registers[key] = n
                case .union(let e): unions[key, default: []].formUnion(e)
                default: break
                }
            }
        }
        let reference = machine(c, l).replica
        #expect(machine(c, l).committedTransactions == UInt64(accepted), "seed \(seed)")
        for (key, n) in registers where kinds[key] == .register {
            #expect(reference.value(key) == .register(n), "seed \(seed): \(key)")
        }
        for key in Set(algebraic.keys).union(logShare.keys) where kinds[key] ?? .counter == .counter {
            #expect(reference.value(key) == .counter((algebraic[key] ?? 0) + (logShare[key] ?? 0)), "seed \(seed): \(key)")
        }
        for (key, elements) in unions { #expect(reference.value(key) == .set(elements), "seed \(seed): \(key)") }
        for r in replicas() {
            #expect(r.keys == reference.keys, "seed \(seed): replica \(r.nodeID)")
            for key in reference.keys { #expect(r.value(key) == reference.value(key), "seed \(seed): \(key) on \(r.nodeID)") }
        }
        #expect(sameLogUpdates(c), "seed \(seed): the log's updates differ")
    }
}
