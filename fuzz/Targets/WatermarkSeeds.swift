import LuigiCore

/// Seeds of the watermark targets: the golden vectors of
/// Tests/golden/watermark_v1.hex (the same values as
/// `WatermarkGoldenTests`: each shard-bound one valid for shard 1, with
/// coordinator 9 and worker 1) and a few more, and step scripts that walk a
/// shard leader and a coordinator through the protocol's paths.
extension FuzzSeeds {
    // MARK: - Golden values

    static var goldenTxn: Txn {
        Txn(id: TxnId(coordinator: 9, worker: 1, seq: 42), ts: 1_000_000, mayAbort: true, parts: [
            ShardOps(shard: 0, ops: [.check("a", atLeast: 5), .add("a", -5)]),
            ShardOps(shard: 1, ops: [.add("b", 5), .read("b"), .write("c", -1)]),
        ])
    }

    static func watermarkMessages() -> [WatermarkEnvelope] {
        let t = goldenTxn
        let single = Txn(id: TxnId(coordinator: 10, worker: 0, seq: 3), ts: 77, mayAbort: false, parts: [
            ShardOps(shard: 1, ops: [.read("é"), .write("", Int64.min)]),
        ])
        return [
            WatermarkEnvelope(to: 1, .submit(t)),
            WatermarkEnvelope(to: 1, .propose(t, from: 0, term: 3, ts: 1_000_007, ask: true)),
            WatermarkEnvelope(to: 1, .vote(id: t.id, shards: [0, 1], from: 0, term: 3, commit: true, ask: false)),
            WatermarkEnvelope(to: 1, .retire(coordinator: 9, worker: 1, below: 40)),
            WatermarkEnvelope(to: 1, .recover(from: 0, term: 4)),
            WatermarkEnvelope(to: 1, .recovered(from: 0, term: 4, txns: [
                RecoveredTxn(txn: t, proposals: [ShardStamp(shard: 0, ts: 1_000_007)]),
            ])),
            WatermarkEnvelope(to: 9, .reply(TxnReply(
                id: t.id, shard: 1, term: 2, ts: 1_000_007, outcome: .committed,
                reads: [ReadResult(key: "b", value: 5), ReadResult(key: "z", value: nil)],
                receivedAt: 999_000, executedAt: 1_000_010, marks: [1_000_000, 1_000_020]))),
            WatermarkEnvelope(to: 9, .marks(shard: 1, term: 2, marks: [7, 1 << 40])),
            // Beyond the golden vectors: limits and empty lists.
            WatermarkEnvelope(to: 1, .submit(single)),
            WatermarkEnvelope(to: 2, .recovered(from: 1, term: WatermarkLimits.maxTimestamp, txns: [])),
            WatermarkEnvelope(to: 10, .marks(shard: 0, term: 1, marks: [])),
            // Taking over dead coordinators.
            WatermarkEnvelope(to: 1, .orphansAsk(coordinator: 12, pass: 3, lowest: 9, highest: 11, after: nil)),
            WatermarkEnvelope(to: 0, .orphansAsk(coordinator: 12, pass: 4, lowest: 10, highest: 10, after: single.id)),
            WatermarkEnvelope(to: 12, .orphans(shard: 1, term: 2, pass: 3, after: nil, txns: [t, single],
                                               retired: [RetirePoint(coordinator: 9, worker: 1, below: 40)], more: true)),
            WatermarkEnvelope(to: 12, .orphans(shard: 0, term: 2, pass: 4, after: t.id, txns: [], retired: [], more: false)),
        ]
    }

    static func shardRecords() -> [ShardRecord] {
        let e = Execution(txn: goldenTxn, ts: 1_000_007,
                          proposals: [ShardStamp(shard: 0, ts: 1_000_007), ShardStamp(shard: 1, ts: 1_000_001)],
                          vote: true, pending: true, reads: [ReadResult(key: "b", value: 5)],
                          writes: [WriteResult(key: "b", value: 5), WriteResult(key: "c", value: -1)], receivedAt: 999_000)
        var done = e
        done.pending = false
        return [
            .exec(e),
            .outcome(goldenTxn.id, committed: true),
            .marks([5, 6]),
            .retire(coordinator: 9, worker: 1, below: 40),
            .exec(done),
            .marks([]),
        ]
    }

    // MARK: - shard_step scripts

    // Control bytes of a shard_step chunk (see `fuzzShardStep`).
    static let wmNow: UInt8 = 0x00  // no clock change, tick, commit all
    static let wmMs: UInt8 = 0x03  // +1 ms
    static let wm10ms: UInt8 = 0x04
    static let wmSecond: UInt8 = 0x06
    static let wmNoTick: UInt8 = 0x08
    static let wmHold: UInt8 = 0x10
    static let wmTwice: UInt8 = 0x20
    static let wmCommitOne: UInt8 = 0x40
    static let wmNewTerm: UInt8 = 0x80

    static func shardStepScripts() -> [[UInt8]] {
        let t1 = shardSetupTxn  // submitted by the set-up: T9.0.1 on shards 1 and 2
        let g = goldenTxn  // T9.1.42 on shards 0 and 1
        let single = Txn(id: TxnId(coordinator: 10, worker: 1, seq: 5), ts: 10, mayAbort: true, parts: [
            ShardOps(shard: 1, ops: [.add("x", 2), .check("x", atLeast: 1), .read("y")]),
        ])
        let t3 = Txn(id: TxnId(coordinator: 9, worker: 1, seq: 7), ts: 2_000, mayAbort: false, parts: [
            ShardOps(shard: 0, ops: [.read("x")]),
            ShardOps(shard: 1, ops: [.write("y", 9)]),
            ShardOps(shard: 2, ops: [.read("z")]),
        ])
        func to1(_ m: WatermarkMessage) -> WatermarkEnvelope { WatermarkEnvelope(to: 1, m) }
        return [
            // T1 agrees with shard 2, runs, gets shard 2's vote (early), commits; retire.
            shardStepInput(flags: 0, [
                (wmNow, to1(.propose(t1, from: 2, term: 1, ts: 1_005, ask: false))),
                (wm10ms, to1(.vote(id: t1.id, shards: [1, 2], from: 2, term: 1, commit: true, ask: false))),
                (wm10ms, to1(.retire(coordinator: 9, worker: 0, below: 2))),
                (wm10ms, to1(.submit(t1))),  // a retry of a finished transaction
            ]),
            // The golden transaction: submitted, proposed by shard 0, voted
            // down after it ran (the vote goes out once the exec is committed).
            shardStepInput(flags: 2, [
                (wmMs, to1(.submit(g))),
                (wmHold, to1(.propose(g, from: 0, term: 3, ts: 1_000_007, ask: true))),
                (wmSecond, to1(.recover(from: 0, term: 4))),
                (wmCommitOne, to1(.vote(id: g.id, shards: [0, 1], from: 0, term: 4, commit: false, ask: true))),
                (wm10ms | wmTwice, to1(.vote(id: g.id, shards: [0, 1], from: 0, term: 4, commit: false, ask: true))),
            ]),
            // Recovery left open: shard 2 reports a transaction with proposals.
            shardStepInput(flags: 1, [
                (wmMs, to1(.submit(single))),  // ignored: not serving yet
                (wmNow, to1(.recovered(from: 2, term: 1, txns: [
                    RecoveredTxn(txn: t1, proposals: [ShardStamp(shard: 1, ts: 500), ShardStamp(shard: 2, ts: 700)]),
                    RecoveredTxn(txn: t3, proposals: [ShardStamp(shard: 2, ts: 2_100)]),
                ]))),
                (wmMs, to1(.submit(single))),
                (wmMs, to1(.propose(t3, from: 0, term: 1, ts: 1_900, ask: true))),
                (wm10ms, to1(.vote(id: t1.id, shards: [1, 2], from: 2, term: 1, commit: true, ask: false))),
            ]),
            // A new term: the leader recovers again (shard 0 reports the
            // golden transaction, which it proposed), with appends lost.
            shardStepInput(flags: 0, [
                (wmHold, to1(.propose(t1, from: 2, term: 1, ts: 990, ask: false))),
                (wmNewTerm | wmHold | wmMs, to1(.recovered(from: 0, term: 1, txns: [
                    RecoveredTxn(txn: g, proposals: [ShardStamp(shard: 0, ts: 1_000_007)]),
                ]))),
                (wmNow, to1(.recovered(from: 2, term: 2, txns: []))),
                (wmSecond, to1(.propose(g, from: 0, term: 1, ts: 1_000_007, ask: false))),
                (wm10ms, to1(.vote(id: g.id, shards: [0, 1], from: 0, term: 1, commit: true, ask: false))),
                (wm10ms, to1(.vote(id: t1.id, shards: [1, 2], from: 2, term: 2, commit: true, ask: true))),
            ]),
            // Refusals: wrong coordinator, worker, shard; a stale term is fenced.
            shardStepInput(flags: 0, [
                (wmNow, to1(.retire(coordinator: 11, worker: 0, below: 5))),
                (wmNow, to1(.vote(id: TxnId(coordinator: 9, worker: 2, seq: 1), shards: [1, 2], from: 2, term: 1, commit: true, ask: false))),
                (wmNow, to1(.recover(from: 1, term: 1))),
                (wmNow, to1(.propose(t1, from: 2, term: 5, ts: 1_010, ask: false))),
                (wmNow, to1(.propose(t1, from: 2, term: 4, ts: 2_000, ask: true))),
                (wmSecond, WatermarkEnvelope(to: 9, .marks(shard: 1, term: 2, marks: [1, 2]))),
            ]),
        ]
    }

    // MARK: - coordinator_step scripts

    static func coordinatorStepScripts() -> [[UInt8]] {
        // The set-up's transactions: T9.0.1 on shards 1 and 2, T9.0.2 on shard 0.
        let a = TxnId(coordinator: 9, worker: 0, seq: 1)
        let b = TxnId(coordinator: 9, worker: 0, seq: 2)
        func reply(_ id: TxnId, shard: UInt64, term: UInt64 = 1, ts: UInt64, outcome: Outcome = .committed,
                   reads: [ReadResult] = [], marks: [UInt64]) -> WatermarkEnvelope {
            WatermarkEnvelope(to: 9, .reply(TxnReply(id: id, shard: shard, term: term, ts: ts, outcome: outcome, reads: reads,
                                                     receivedAt: 2_300, executedAt: ts + 5, marks: marks)))
        }
        func marks(_ shard: UInt64, term: UInt64 = 1, _ m: [UInt64]) -> WatermarkEnvelope {
            WatermarkEnvelope(to: 9, .marks(shard: shard, term: term, marks: m))
        }
        let submit: UInt8 = 0x10
        let second: UInt8 = 0x06
        return [
            // Both transactions commit once the watermarks pass their timestamps.
            coordinatorStepInput([
                (0x03, reply(a, shard: 1, ts: 2_600, reads: [ReadResult(key: "b", value: nil)], marks: [0, 0])),
                (0x03, reply(a, shard: 2, ts: 2_600, reads: [ReadResult(key: "c", value: 4)], marks: [100, 100])),
                (0x00, marks(1, [3_000, 3_000])),
                (0x00, marks(2, [3_000, 2_000])),
                (0x00, reply(b, shard: 0, ts: 2_501, outcome: .aborted, marks: [3_000, 3_000])),
                (submit | 0x40, marks(0, [3_000, 3_000])),
            ]),
            // Shards disagree, a newer term replaces a reply, retries and retire points.
            coordinatorStepInput([
                (0x03, reply(a, shard: 1, ts: 2_600, marks: [0, 0])),
                (0x03, reply(a, shard: 2, ts: 2_700, marks: [0, 0])),
                (0x04, marks(2, term: 2, [9_000, 9_000])),
                (second, reply(a, shard: 2, term: 2, ts: 2_600, marks: [9_000, 9_000])),
                (second | 0x80, marks(1, term: 1, [9_000, 9_000])),
                (second | submit | 0x20, reply(b, shard: 0, ts: 2_501, marks: [9_000, 9_000])),
            ]),
            // Refusals: wrong shard, wrong mark count, another coordinator's id, shard-bound kinds.
            coordinatorStepInput([
                (0x00, reply(a, shard: 3, ts: 2_600, marks: [0, 0])),
                (0x00, marks(1, [1, 2, 3])),
                (0x00, reply(TxnId(coordinator: 10, worker: 0, seq: 1), shard: 1, ts: 1, marks: [0, 0])),
                (0x00, WatermarkEnvelope(to: 1, .submit(shardSetupTxn))),
                (0x07, nil),
            ]),
        ]
    }
}
