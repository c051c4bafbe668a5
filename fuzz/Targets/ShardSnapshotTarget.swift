import LuigiCore

// MARK: - shard_snapshot: ShardState(decoding:), restored into a leader

/// Input: the body of an "LWS" v1 shard snapshot (re-sealed here). A decoded
/// snapshot must re-encode to the same bytes and decode back to an equal
/// state. It is then restored into a `ShardNode` of its shard (the
/// coordinators of its transactions known) that becomes leader: its no-op applied, every
/// other shard's recovery answered, a tick a second later. What it sends
/// must decode, what it appends must decode and, applied, leave a state that
/// still round-trips. Leader runs are skipped past 64 shards (recovery asks
/// every other shard).
public func fuzzShardSnapshot(_ data: [UInt8]) {
    let bytes = fuzzSeal(ShardState.snapshotMagic, data)
    guard let state = try? ShardState(decoding: bytes) else { return }
    fuzzCheck(state.encoded() == bytes, "shard_snapshot: a non-canonical encoding decoded")
    fuzzCheck((try? ShardState(decoding: bytes)) == state, "shard_snapshot: decoding twice differs")
    let shards = state.txns.values.flatMap(\.execution.shards) + [state.shard]
    let shardCount = Int(shards.max()!) + 1
    guard shardCount <= 64 else { return }
    let coordinators = Set(state.txns.keys.map(\.coordinator) + [9]).sorted()
    let config = ShardConfig(shard: state.shard, shardCount: max(shardCount, 2), workers: state.workers,
                             coordinators: coordinators)
    guard let node = try? ShardNode(config: config) else {
        fuzzCheck(false, "shard_snapshot: no shard for \(config)")
        return
    }
    do { try node.restore(state) } catch { fuzzCheck(false, "shard_snapshot: restore refused: \(error)") }
    fuzzCheck(node.state == state, "shard_snapshot: restore changed the state")
    node.setRole(leader: true, term: 2)
    node.apply(entry: [], term: 2, now: 1)
    var appended: [ShardRecord] = []
    func collect() {
        let out = node.takeOutput()
        for m in out.messages {
            fuzzCheck((try? WatermarkEnvelope(decoding: m.encoded())) == m, "shard_snapshot: a message does not decode: \(m)")
        }
        for r in out.appends {
            fuzzCheck((try? ShardRecord(decoding: r.encoded())) == r, "shard_snapshot: a record does not decode: \(r)")
            appended.append(r)
        }
    }
    collect()
    for s in 0..<UInt64(config.shardCount) where s != state.shard {
        try? node.step(WatermarkEnvelope(to: state.shard, .recovered(from: s, term: 1, txns: [])), now: 2)
        collect()
    }
    fuzzCheck(node.isServing, "shard_snapshot: recovery did not complete")
    node.tick(now: 1_000_000)
    collect()
    for r in appended { node.apply(entry: r.encoded(), term: 2, now: 1_000_001) }
    collect()
    let after = node.state.encoded()
    fuzzCheck((try? ShardState(decoding: after))?.encoded() == after, "shard_snapshot: the state after leading does not round-trip")
}


extension FuzzSeeds {
    /// Shard 1 of the golden records: a transaction awaiting votes, one
    /// decided, finished single-shard ones, marks and retire points.
    static func shardSnapshotSeeds() -> [[UInt8]] {
        let records = shardRecords()
        var awaiting = ShardState(shard: 1, workers: 2)
        awaiting.apply(records[0])
        var all = ShardState(shard: 1, workers: 2)
        for r in records { all.apply(r) }
        let single = Txn(id: TxnId(coordinator: 10, worker: 0, seq: 3), ts: 77, mayAbort: true, parts: [
            ShardOps(shard: 1, ops: [.read("é"), .write("", Int64.min), .check("n", atLeast: 1)]),
        ])
        var done = all
        done.apply(.exec(Execution(txn: single, ts: 80, proposals: [], vote: false, pending: false,
                                   reads: [ReadResult(key: "é", value: nil), ReadResult(key: "n", value: nil)],
                                   writes: [WriteResult(key: "", value: Int64.min)], receivedAt: 70)))
        done.apply(.retire(coordinator: 10, worker: 0, below: 2))
        done.apply(.marks([WatermarkLimits.maxTimestamp, 90]))
        return [ShardState(shard: 0, workers: 1), awaiting, all, done].map { fuzzUnseal($0.encoded()) }
    }
}
