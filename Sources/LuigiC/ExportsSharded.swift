import CLuigi
import LuigiCore
import LuigiSimulation

// The simulated sharded cluster (watermark commit, or the 2PC baseline).

func sharded(_ h: OpaquePointer?) throws -> ShardedCluster { try handles.get(h, .shardedCluster, as: ShardedCluster.self) }

@c @implementation public func luigi_sharded_options_init(_ o: UnsafeMutablePointer<luigi_sharded_options>!) {
    guard let o else { return }
    let d = ShardedCluster.Options()
    o.pointee = luigi_sharded_options(
        version: UInt32(LUIGI_SHARDED_OPTIONS_VERSION), protocol: UInt32(LUIGI_PROTOCOL_WATERMARK),
        shards: UInt32(d.shards), replicas: UInt32(d.replicas), workers: UInt32(d.workers),
        coordinators: UInt32(d.coordinators), window: UInt32(d.window), profile: UInt32(LUIGI_PROFILE_SAME_REGION),
        rule: UInt32(LUIGI_RULE_ALL_STREAMS), reserved: 0, seed: 0, skew_us: 0, drift_ppm: 0, drop_rate: 0,
        duplicate_rate: 0, reorder_rate: 0)
}

@c @implementation public func luigi_sharded_new(
    _ options: UnsafePointer<luigi_sharded_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        try checkVersion(o.version, LUIGI_SHARDED_OPTIONS_VERSION, "LUIGI_SHARDED_OPTIONS_VERSION")
        guard o.reserved == 0 else { throw ABIError.invalidArgument("options.reserved must be 0") }
        var c = ShardedCluster.Options()
        switch Int32(clamping: o.protocol) {
        case LUIGI_PROTOCOL_WATERMARK where o.protocol <= 1: c.proto = .watermark
        case LUIGI_PROTOCOL_2PC where o.protocol <= 1: c.proto = .twoPhaseCommit
        default: throw ABIError.invalidArgument("unknown protocol \(o.protocol)")
        }
        guard o.profile < UInt32(DelayProfile.all.count) else { throw ABIError.invalidArgument("unknown profile \(o.profile)") }
        c.profile = DelayProfile.all[Int(o.profile)]
        c.rule = try commitRule(o.rule)
        // The option structs' limits are checked by ShardedCluster (Int fits every u32).
        c.shards = Int(o.shards)
        c.replicas = Int(o.replicas)
        c.workers = Int(o.workers)
        c.coordinators = Int(o.coordinators)
        c.window = Int(o.window)
        c.seed = o.seed
        c.skewUs = o.skew_us
        c.driftPpm = o.drift_ppm
        c.drop = o.drop_rate
        c.duplicate = o.duplicate_rate
        c.reorder = o.reorder_rate
        out.pointee = handles.insert(try ShardedCluster(c), .shardedCluster)
    }
}

@c @implementation public func luigi_sharded_free(_ c: OpaquePointer!) { handles.remove(c, .shardedCluster) }

@c @implementation public func luigi_sharded_submit(
    _ c: OpaquePointer!, _ ops: UnsafePointer<luigi_wm_op>!, _ count: Int, _ coordinator: UInt32, _ worker: UInt32,
    _ out: UnsafeMutablePointer<luigi_wm_txn_id>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_id")
        let cluster = try sharded(c)
        out.pointee = wmID(try cluster.submit(try wmOps(ops, count), coordinator: Int(coordinator), worker: worker))
    }
}

@c @implementation public func luigi_sharded_load(
    _ c: OpaquePointer!, _ workload: UInt32, _ count: UInt64, _ crossShard: Double
) -> luigi_status {
    guarded {
        let cluster = try sharded(c)
        guard workload < UInt32(BuiltinWorkload.allCases.count) else {
            throw ABIError.invalidArgument("unknown workload \(workload)")
        }
        guard count <= 100_000_000 else { throw ABIError.invalidArgument("count must be at most 10^8") }
        guard crossShard >= 0, crossShard <= 1 else { throw ABIError.invalidArgument("cross_shard must be in [0, 1]") }
        try cluster.load(BuiltinWorkload.allCases[Int(workload)], count: Int(count), crossShard: crossShard)
    }
}

private func checkSpan(_ us: UInt64) throws {
    guard us <= 1 << 40 else { throw ABIError.invalidArgument("a span of virtual time is at most 2^40 us") }
}

@c @implementation public func luigi_sharded_run(_ c: OpaquePointer!, _ us: UInt64) -> luigi_status {
    guarded {
        let cluster = try sharded(c)
        try checkSpan(us)
        try cluster.run(forUs: us)
    }
}

@c @implementation public func luigi_sharded_run_until_idle(
    _ c: OpaquePointer!, _ limit: UInt64, _ out: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_idle")
        let cluster = try sharded(c)
        try checkSpan(limit)
        out.pointee = try cluster.runUntilIdle(limitUs: limit) ? 1 : 0
    }
}

@c @implementation public func luigi_sharded_replicas(
    _ c: OpaquePointer!, _ shard: UInt64, _ ids: UnsafeMutablePointer<UInt64>!, _ capacity: Int,
    _ outCount: UnsafeMutablePointer<Int>!
) -> luigi_status {
    guarded {
        let outCount = try required(outCount, "out_count")
        let cluster = try sharded(c)
        try checkLength(capacity, "capacity")
        guard shard < UInt64(cluster.options.shards) else { throw ABIError.outOfRange("no shard \(shard)") }
        let list = cluster.replicaIDs(shard)
        outCount.pointee = list.count
        guard capacity >= list.count else { throw ABIError.bufferTooSmall("need room for \(list.count) ids") }
        guard let ids else { throw ABIError.invalidArgument("ids is NULL") }
        for (i, id) in list.enumerated() { ids[i] = id }
    }
}

@c @implementation public func luigi_sharded_leader(_ c: OpaquePointer!, _ shard: UInt64, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_node") {
        let cluster = try sharded(c)
        guard shard < UInt64(cluster.options.shards) else { throw ABIError.outOfRange("no shard \(shard)") }
        guard let l = cluster.leader(of: shard) else { throw LuigiError.state("shard \(shard) has no leader now") }
        return l
    }
}

@c @implementation public func luigi_sharded_crash_leader(
    _ c: OpaquePointer!, _ shard: UInt64, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_node") {
        let cluster = try sharded(c)
        guard shard < UInt64(cluster.options.shards) else { throw ABIError.outOfRange("no shard \(shard)") }
        guard let l = cluster.leader(of: shard) else { throw LuigiError.state("shard \(shard) has no leader now") }
        try cluster.crash(l)
        return l
    }
}

private func checkNode(_ cluster: ShardedCluster, _ node: UInt64) throws {
    let all = (0..<UInt64(cluster.options.shards)).flatMap { cluster.replicaIDs($0) }
    guard all.contains(node) else { throw ABIError.outOfRange("no replica node \(node)") }
}

@c @implementation public func luigi_sharded_crash(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try sharded(c)
        try checkNode(cluster, node)
        try cluster.crash(node)
    }
}

@c @implementation public func luigi_sharded_restart(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try sharded(c)
        try checkNode(cluster, node)
        try cluster.restart(node)
    }
}

@c @implementation public func luigi_sharded_crash_coordinator(_ c: OpaquePointer!, _ coordinator: UInt32) -> luigi_status {
    guarded { try sharded(c).crashCoordinator(Int(coordinator)) }
}

@c @implementation public func luigi_sharded_partition(
    _ c: OpaquePointer!, _ nodes: UnsafePointer<UInt64>!, _ count: Int
) -> luigi_status {
    guarded {
        let cluster = try sharded(c)
        try checkLength(count, "count")
        guard count == 0 || nodes != nil else { throw ABIError.invalidArgument("nodes is NULL") }
        let list = count == 0 ? [] : Array(UnsafeBufferPointer(start: nodes, count: count))
        for n in list { try checkNode(cluster, n) }
        try cluster.partition([list])
    }
}

@c @implementation public func luigi_sharded_heal(_ c: OpaquePointer!) -> luigi_status {
    guarded { try sharded(c).heal() }
}

@c @implementation public func luigi_sharded_set_faults(
    _ c: OpaquePointer!, _ drop: Double, _ duplicate: Double, _ reorder: Double
) -> luigi_status {
    guarded { try sharded(c).setNetworkFaults(drop: drop, duplicate: duplicate, reorder: reorder) }
}

@c @implementation public func luigi_sharded_check(
    _ c: OpaquePointer!, _ outOk: UnsafeMutablePointer<Int32>!, _ outInvariant: UnsafeMutablePointer<luigi_buffer>!,
    _ outDetail: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outOk = try required(outOk, "out_ok")
        let outInvariant = try required(outInvariant, "out_invariant")
        let outDetail = try required(outDetail, "out_detail")
        var violation: WatermarkViolation?
        do { try sharded(c).checkInvariants() } catch let v as WatermarkViolation { violation = v }
        try fill(outInvariant, with: Array((violation?.invariant ?? "").utf8))
        do { try fill(outDetail, with: Array((violation?.detail ?? "").utf8)) } catch {
            luigi_buffer_free(outInvariant)
            throw error
        }
        outOk.pointee = violation == nil ? 1 : 0
    }
}

@c @implementation public func luigi_sharded_result(
    _ c: OpaquePointer!, _ id: UnsafePointer<luigi_wm_txn_id>!, _ outOutcome: UnsafeMutablePointer<UInt32>!,
    _ outTs: UnsafeMutablePointer<UInt64>!, _ outReads: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outOutcome = try required(outOutcome, "out_outcome")
        let outTs = try required(outTs, "out_ts")
        let outReads = try required(outReads, "out_reads")
        guard let id = id?.pointee else { throw ABIError.invalidArgument("id is NULL") }
        let done = try sharded(c).result(of: try wmID(id))
        var w = ByteWriter()
        if let done { w.wmReads(done.reads) }
        try fill(outReads, with: w.bytes)
        outTs.pointee = done?.ts ?? 0
        outOutcome.pointee = switch done?.outcome {
        case .committed: UInt32(LUIGI_WM_COMMITTED)
        case .aborted: UInt32(LUIGI_WM_ABORTED)
        case nil: UInt32(LUIGI_WM_PENDING)
        }
    }
}

@c @implementation public func luigi_sharded_value(
    _ c: OpaquePointer!, _ shard: UInt64, _ key: UnsafePointer<CChar>!, _ len: Int,
    _ outValue: UnsafeMutablePointer<Int64>!, _ outPresent: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    guarded {
        let outValue = try required(outValue, "out_value")
        let outPresent = try required(outPresent, "out_present")
        let cluster = try sharded(c)
        guard shard < UInt64(cluster.options.shards) else { throw ABIError.outOfRange("no shard \(shard)") }
        let v = try cluster.value(try utf8(key, len, "key"), shard: shard)
        outValue.pointee = v ?? 0
        outPresent.pointee = v == nil ? 0 : 1
    }
}

@c @implementation public func luigi_sharded_get_stats(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_sharded_stats>!)
    -> luigi_status
{
    guarded {
        let out = try required(out, "out")
        try checkVersion(out.pointee.version, LUIGI_SHARDED_STATS_VERSION, "LUIGI_SHARDED_STATS_VERSION")
        let s = try sharded(c).summary()
        out.pointee = luigi_sharded_stats(
            version: UInt32(LUIGI_SHARDED_STATS_VERSION), reserved: 0, now_us: s.nowUs, round_trip_us: s.roundTripUs,
            submitted: s.submitted, committed: s.committed, aborted: s.aborted, in_flight: s.inFlight,
            unacknowledged: s.unacknowledged,
            replies: s.replies, fast_path: s.fastPath, retries: s.retries, conflict_retries: s.conflictRetries,
            ops_applied: s.opsApplied, messages: s.messages, dropped: s.dropped, latency_p50_rtt: s.latencyP50,
            latency_p99_rtt: s.latencyP99, watermark_wait_p50_rtt: s.watermarkWaitP50)
    }
}
