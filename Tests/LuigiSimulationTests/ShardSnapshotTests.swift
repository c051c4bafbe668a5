import LuigiCore
import LuigiSimulation
import Testing

/// Shard 1 of 2, 3 streams, coordinators 9 and 10: the states and records below.
private let shardOne = ShardConfig(shard: 1, shardCount: 2, workers: 3, coordinators: [9, 10])

private func txn(_ c: UInt64, _ w: UInt32, _ seq: UInt64, ts: UInt64, _ parts: [UInt64: [Op]]) -> Txn {
    let mayAbort = parts.values.contains { ops in
        ops.contains { if case .add = $0 { true } else if case .check = $0 { true } else { false } }
    }
    return Txn(id: TxnId(coordinator: c, worker: w, seq: seq), ts: ts, mayAbort: mayAbort,
               parts: parts.keys.sorted().map { ShardOps(shard: $0, ops: parts[$0]!) })
}

private func exec(_ t: Txn, ts: UInt64, vote: Bool = true, pending: Bool = false, reads: [ReadResult] = [],
                  writes: [WriteResult] = [], proposals: [ShardStamp] = []) -> ShardRecord {
    .exec(Execution(txn: t, ts: ts, proposals: proposals, vote: vote, pending: pending, reads: reads,
                    writes: writes, receivedAt: ts / 2))
}

/// Every kind of record, with the limits: a committed, an aborted and
/// pending executions, outcomes, marks and retire points.
private func sampleRecords() -> [ShardRecord] {
    let max = WatermarkLimits.maxTimestamp
    let multi = txn(9, 1, 1, ts: 100, [0: [.add("x0", 1)], 1: [.add("x", 2), .read("b")]])
    let abortHere = txn(10, 2, 4, ts: 110, [0: [.write("q", 1)], 1: [.check("x", atLeast: 99)]])
    let open = txn(10, 0, 7, ts: 115, [0: [.write("r", 1)], 1: [.check("b", atLeast: 0)]])
    return [
        exec(txn(9, 0, 1, ts: 50, [1: [.write("a", 5), .read("b")]]), ts: 60,
             reads: [ReadResult(key: "b", value: nil)], writes: [WriteResult(key: "a", value: 5)]),
        exec(multi, ts: 120, pending: true, reads: [ReadResult(key: "b", value: nil)],
             writes: [WriteResult(key: "x", value: 2)], proposals: [ShardStamp(shard: 0, ts: 100), ShardStamp(shard: 1, ts: 120)]),
        exec(abortHere, ts: 130, vote: false, pending: true, reads: [ReadResult(key: "x", value: nil)],
             proposals: [ShardStamp(shard: 0, ts: 130), ShardStamp(shard: 1, ts: 110)]),
        exec(open, ts: 140, pending: true, reads: [ReadResult(key: "b", value: nil)],
             proposals: [ShardStamp(shard: 0, ts: 140), ShardStamp(shard: 1, ts: 115)]),
        .outcome(multi.id, committed: true),
        .outcome(abortHere.id, committed: false),
        exec(txn(9, 0, 2, ts: 150, [1: [.check("y", atLeast: 10)]]), ts: 150, vote: false,
             reads: [ReadResult(key: "y", value: nil)]),
        .marks([100, 130, max]),
        exec(txn(10, 1, 3, ts: max, [1: [.write("é", Int64.min), .write("", Int64.max), .read("a")]]), ts: max,
             reads: [ReadResult(key: "a", value: 5)],
             writes: [WriteResult(key: "", value: Int64.max), WriteResult(key: "é", value: Int64.min)]),
        .retire(coordinator: 9, worker: 0, below: 2),
        .retire(coordinator: 10, worker: 0, below: 8),
        .marks([200, 130, max]),
    ]
}

private func applying(_ records: [ShardRecord], _ config: ShardConfig = shardOne) -> ShardState {
    var s = ShardState(shard: config.shard, workers: config.workers)
    for r in records { s.apply(r) }
    return s
}

/// Round trip: equal, and the same bytes again.
private func expectRoundTrip(_ s: ShardState, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bytes = s.encoded()
    let back = try ShardState(decoding: bytes)
    #expect(back == s, sourceLocation: sourceLocation)
    #expect(back.encoded() == bytes, sourceLocation: sourceLocation)
}

private func reseal(_ body: ArraySlice<UInt8>) -> [UInt8] {
    var w = ByteWriter()
    w.magic(ShardState.snapshotMagic)
    w.raw(body)
    w.sealWithChecksum()
    return w.bytes
}

@Suite struct ShardSnapshotTests {
    @Test func roundTripsEveryPrefixOfTheSampleRecords() throws {
        let records = sampleRecords()
        for n in 0...records.count { try expectRoundTrip(applying(Array(records.prefix(n)))) }
        let s = applying(records)
        #expect(s.txns.count == 5, "pending (open), decided, aborted and retired-but-pending records are all kept")
        #expect(s.isRetired(TxnId(coordinator: 10, worker: 0, seq: 7)) && s.txns[TxnId(coordinator: 10, worker: 0, seq: 7)] != nil)
        #expect(s.value("x") == 2 && s.value("é") == Int64.min)
    }

    @Test func equalStatesGiveEqualBytesWhateverTheOrderBuilt() throws {
        let parts: [ShardRecord] = (0..<60).map { (i: Int) -> ShardRecord in
            let ops: [Op] = [.write("k\(i)", Int64(i)), .read("r\(i)")]
            let t = txn(9, UInt32(i % 3), UInt64(i + 1), ts: 10, [1: ops])
            return exec(t, ts: UInt64(1_000 + i), reads: [ReadResult(key: "r\(i)", value: nil)],
                        writes: [WriteResult(key: "k\(i)", value: Int64(i))])
        }
        let a = applying(parts), b = applying(parts.reversed())
        #expect(a == b)
        #expect(a.encoded() == b.encoded())
    }

    @Test func roundTripsTheStatesOfASimulatedRun() throws {
        let (cluster, _) = try WatermarkSchedule.random(seed: 7, transactions: 60)
        var checked = 0
        for s in 0..<UInt64(cluster.options.shards) {
            for id in cluster.replicaIDs(s) {
                guard let st = cluster.state(of: id) else { continue }
                try expectRoundTrip(st)
                checked += 1
            }
        }
        #expect(checked > 0)
    }

    @Test func everyFlipAndTruncationIsRefused() throws {
        let bytes = applying(sampleRecords()).encoded()
        var accepted: [String] = []
        func refused(_ b: [UInt8], _ what: String) {
            do {
                _ = try ShardState(decoding: b)
                accepted.append(what)
            } catch is LuigiError {
            } catch {
                accepted.append("\(what) threw \(error)")
            }
        }
        for i in bytes.indices {
            for mask: UInt8 in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF] {
                var b = bytes
                b[i] ^= mask
                refused(b, "byte \(i) ^ \(mask)")
            }
        }
        for n in 0..<bytes.count { refused(Array(bytes.prefix(n)), "first \(n) bytes") }
        refused(bytes + [0], "one byte more")
        #expect(accepted.isEmpty, "accepted: \(accepted.prefix(5))")
    }

    /// Mutations with a valid CRC reach the decoder: each is refused or is
    /// a canonical snapshot of its own.
    @Test func resealedMutationsAreRefusedOrCanonical() throws {
        let bytes = applying(sampleRecords()).encoded()
        let body = bytes[4..<(bytes.count - 4)]
        var decoded = 0
        for i in body.indices {
            for v: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF, body[i] &+ 1, body[i] &- 1] where v != body[i] {
                var b = body
                b[i] = v
                let sealed = reseal(b)
                guard let s = try? ShardState(decoding: sealed) else { continue }
                decoded += 1
                #expect(s.encoded() == sealed, "byte \(i) = \(v)")
            }
            let cut = reseal(body[..<i])
            #expect((try? ShardState(decoding: cut)) == nil, "body cut at \(i) decoded")
        }
        #expect(decoded > 0, "some mutations (values, keys) are valid snapshots")
    }

    @Test func rangesAndCrossFieldRulesAreChecked() throws {
        let e = { (r: ShardRecord) -> [UInt8] in let b = r.encoded(); return Array(b[5..<(b.count - 4)]) }
        let finished = e(exec(txn(9, 0, 1, ts: 5, [1: [.read("a")]]), ts: 5, reads: [ReadResult(key: "a", value: nil)]))
        let otherShard = e(exec(txn(9, 0, 2, ts: 5, [0: [.read("a")]]), ts: 5))
        let bigWorker = e(exec(txn(9, 2, 1, ts: 5, [1: [.read("a")]]), ts: 5))
        let later = e(exec(txn(9, 1, 1, ts: 5, [1: [.read("a")]]), ts: 5, pending: true))
        struct Case { var name: String; var ok: Bool; var body: [UInt8] }
        // Fields written as given (in order, unchecked): shard 1, 2 streams by default.
        func snap(shard: UInt64 = 1, workers: UInt64 = 2, store: [(String, Int64)] = [], txns: [([UInt8], UInt8)] = [],
                  marks: [UInt64] = [0, 0], frontier: [(String, UInt64)] = [], retired: [(UInt64, UInt64, UInt64)] = [],
                  storeCount: UInt64? = nil, tail: [UInt8] = []) -> [UInt8] {
            var w = ByteWriter()
            w.magic(ShardState.snapshotMagic)
            w.varint(shard); w.varint(workers)
            w.varint(storeCount ?? UInt64(store.count))
            for (k, v) in store { w.string(k); w.zigzag(v) }
            w.varint(UInt64(txns.count))
            for (x, outcome) in txns { w.raw(x); w.u8(outcome) }
            w.varint(UInt64(marks.count))
            for m in marks { w.varint(m) }
            w.varint(UInt64(frontier.count))
            for (k, t) in frontier { w.string(k); w.varint(t) }
            w.varint(0)
            w.varint(UInt64(retired.count))
            for (c, wk, b) in retired { w.varint(c); w.varint(wk); w.varint(b) }
            w.varint(3); w.varint(4)
            w.raw(tail)
            w.sealWithChecksum()
            return w.bytes
        }
        let max = WatermarkLimits.maxTimestamp
        let kib = String(repeating: "k", count: 1024)
        let cases: [Case] = [
            Case(name: "valid", ok: true, body: snap(store: [("a", 1), ("b", -1), (kib, 0)], txns: [(finished, 1), (later, 0)],
                                                     marks: [max, 0], frontier: [("a", max)], retired: [(9, 0, 1), (9, 1, 3), (10, 0, 1)])),
            Case(name: "shard 2^16", ok: false, body: snap(shard: 1 << 16)),
            Case(name: "0 workers", ok: false, body: snap(workers: 0, marks: [])),
            Case(name: "1025 workers", ok: false, body: snap(workers: 1025, marks: Array(repeating: 0, count: 1025))),
            Case(name: "marks of the wrong width", ok: false, body: snap(marks: [0])),
            Case(name: "a mark above 2^62", ok: false, body: snap(marks: [0, max + 1])),
            Case(name: "store out of order", ok: false, body: snap(store: [("b", 1), ("a", 1)])),
            Case(name: "a store key twice", ok: false, body: snap(store: [("a", 1), ("a", 2)])),
            Case(name: "one key in two spellings", ok: false, body: snap(store: [("e\u{301}", 1), ("\u{e9}", 2)])),
            Case(name: "a key over 1 KiB", ok: false, body: snap(store: [(kib + "k", 0)])),
            Case(name: "a store count beyond the input", ok: false, body: snap(storeCount: 1 << 40)),
            Case(name: "a frontier above 2^62", ok: false, body: snap(frontier: [("a", max + 1)])),
            Case(name: "a finished execution with another outcome", ok: false, body: snap(txns: [(finished, 2)])),
            Case(name: "a finished execution awaiting votes", ok: false, body: snap(txns: [(finished, 0)])),
            Case(name: "an unknown outcome", ok: false, body: snap(txns: [(later, 3)])),
            Case(name: "transactions out of order", ok: false, body: snap(txns: [(later, 0), (finished, 1)])),
            Case(name: "a transaction twice", ok: false, body: snap(txns: [(later, 0), (later, 0)])),
            Case(name: "another shard's transaction", ok: false, body: snap(txns: [(otherShard, 0)])),
            Case(name: "a transaction of stream 2 of 2", ok: false, body: snap(txns: [(bigWorker, 0)])),
            Case(name: "a retire point of 0", ok: false, body: snap(retired: [(9, 0, 0)])),
            Case(name: "a retire point above 2^62", ok: false, body: snap(retired: [(9, 0, max + 1)])),
            Case(name: "a retire point of stream 2 of 2", ok: false, body: snap(retired: [(9, 2, 1)])),
            Case(name: "retire points out of order", ok: false, body: snap(retired: [(9, 1, 1), (9, 0, 1)])),
            Case(name: "trailing bytes", ok: false, body: snap(tail: [0])),
        ]
        for c in cases {
            if c.ok {
                let s = try ShardState(decoding: c.body)
                #expect(s.encoded() == c.body, "\(c.name)")
                #expect(s.partsApplied == 3 && s.opsApplied == 4 && s.marks == [max, 0])
            } else {
                #expect(throws: LuigiError.self, "\(c.name)") { try ShardState(decoding: c.body) }
            }
        }
        #expect(throws: LuigiError.self) { try ShardState(decoding: []) }
        var v2 = applying([]).encoded()
        v2[3] = 2
        #expect(throws: LuigiError.decode("shard snapshot: unsupported format version 2")) { try ShardState(decoding: v2) }
    }

    /// The Raft state machine: snapshot, restore, and refusals that change nothing.
    @Test func restoresThroughTheRaftStateMachine() throws {
        let state = applying(sampleRecords())
        func replica(_ config: ShardConfig) throws -> ShardReplica {
            let driver = try RaftDriver(config: RaftConfig(id: 1), storage: MemoryRaftStorage(), voters: [1])
            return ShardReplica(shard: try ShardNode(config: config), driver: driver)
        }
        let r = try replica(shardOne)
        try r.stateMachine.restore(state.encoded())
        #expect(r.shard.state == state)
        #expect(try r.stateMachine.snapshot() == state.encoded())
        var shardZero = shardOne
        shardZero.shard = 0
        var twoStreams = shardOne
        twoStreams.workers = 2
        for other in [shardZero, twoStreams] {
            let o = try replica(other)
            #expect(throws: LuigiError.self) { try o.stateMachine.restore(state.encoded()) }
            #expect(o.shard.state == ShardState(shard: other.shard, workers: other.workers))
        }
        var bad = state.encoded()
        bad[bad.count / 2] ^= 1
        #expect(throws: LuigiError.self) { try r.stateMachine.restore(bad) }
        #expect(r.shard.state == state)
    }

    /// A node restored from a snapshot knows no applied term; as a new
    /// leader it catches up once it applies an entry of its own term (the
    /// no-op Raft appends on election), so the snapshot carries no term.
    @Test func aLeaderElectedAfterARestoreServesOnceItsNoOpApplies() throws {
        let state = applying(sampleRecords())
        let node = try ShardNode(config: shardOne)
        try node.restore(ShardState(decoding: state.encoded()))
        let answer = WatermarkEnvelope(to: 1, .recovered(from: 0, term: 1, txns: []))
        node.setRole(leader: true, term: 5)
        node.apply(entry: [], term: 4, now: 1_000)
        try node.step(answer, now: 1_000)
        #expect(!node.isServing, "not caught up before an entry of term 5: the answer is ignored")
        node.apply(entry: [], term: 5, now: 1_001)
        let asked = node.takeOutput().messages.contains { if case .recover(from: 1, term: 5) = $0.message { $0.to == 0 } else { false } }
        #expect(asked, "caught up: it asks shard 0 to recover")
        try node.step(answer, now: 1_002)
        #expect(node.isServing)
        #expect(node.state == state)
    }
}

@Suite struct ShardSnapshotSweepTests {
    /// Every shard restarts from its own compacted log: each replica
    /// restores its snapshot, a new leader serves, and new work commits.
    @Test func aWholeShardRestartsFromItsSnapshots() throws {
        var o = ShardedCluster.Options()
        o.shards = 2
        o.replicas = 3
        o.compactEvery = 10
        o.seed = 3
        let cluster = try ShardedCluster(o)
        #expect(try cluster.awaitLeaders(limitUs: 1_000_000))
        // A follower misses the load, so it must catch up from a snapshot.
        let leader = try #require(cluster.leader(of: 0))
        let follower = cluster.replicaIDs(0).first { $0 != leader }!
        try WatermarkSchedule.runChecked(cluster, MicroWorkload(keysPerShard: 20, crossShard: 0.5), count: 100,
                                         faults: { c, _ in
            try c.crash(follower)
            try c.run(forUs: 200 * c.options.profile.roundTripUs)
        })
        #expect(cluster.compactions > 0)
        #expect(cluster.snapshotRestores > 0)
        for id in cluster.replicaIDs(0) { try cluster.crash(id) }
        for id in cluster.replicaIDs(0) { try cluster.restart(id) }
        let restores = cluster.snapshotRestores
        #expect(restores >= 3, "each restarted replica restores its stored snapshot")
        let checker = try WatermarkSchedule.runChecked(cluster, MicroWorkload(keysPerShard: 20, crossShard: 0.5), count: 100)
        #expect(checker.committedCount == 200)
    }

    @Test func compactedRandomSchedulesKeepEveryInvariant() throws {
        let scale = Int(getenvString("LUIGI_SWEEP_SCALE") ?? "") ?? 1
        var compactions: UInt64 = 0, restores: UInt64 = 0
        for seed in seeds(24 * scale) {
            var rng = SplitMix64(seed: seed ^ 0x5EED)
            let every = [4, 16, 64][Int.random(in: 0..<3, using: &rng)]
            do {
                let (cluster, _) = try WatermarkSchedule.random(seed: seed, compactEvery: every)
                compactions += cluster.compactions
                restores += cluster.snapshotRestores
            } catch {
                Issue.record("seed \(seed), compactEvery \(every) (LUIGI_SEED=\(seed) to replay): \(error)")
            }
        }
        if getenvString("LUIGI_SEED") == nil {
            #expect(compactions > 0)
            #expect(restores > 0, "crashes and lagging followers should restore snapshots")
        }
    }
}
