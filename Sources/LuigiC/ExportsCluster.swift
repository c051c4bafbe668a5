import CLuigi
import LuigiCore
import LuigiSimulation

// The simulated cluster.

func cluster(_ h: OpaquePointer?) throws -> SimulatedCluster {
    try handles.get(h, .cluster, as: SimulatedCluster.self)
}

private func faults(drop: Double, duplicate: Double, reorder: Double, maxDelay: UInt32) throws -> NetworkFaults {
    guard maxDelay <= 1_000 else { throw LuigiError.invalidArgument("max_delay must be at most 1000 rounds") }
    // NaN fails the range check in validated().
    return try NetworkFaults(drop: drop, duplicate: duplicate, reorder: reorder, maxDelay: Int(maxDelay)).validated()
}

@c @implementation public func luigi_cluster_options_init(_ options: UnsafeMutablePointer<luigi_cluster_options>!) {
    guard let options else { return }
    options.pointee = luigi_cluster_options(
        version: UInt32(LUIGI_CLUSTER_OPTIONS_VERSION), nodes: 3, seed: 0, fanout: 1, max_delay: 0,
        drop_rate: 0, duplicate_rate: 0, reorder_rate: 0)
}

@c @implementation public func luigi_cluster_new(
    _ options: UnsafePointer<luigi_cluster_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        guard o.version == UInt32(LUIGI_CLUSTER_OPTIONS_VERSION) else {
            throw ABIError.invalidArgument(
                "options.version is \(o.version); this library supports \(LUIGI_CLUSTER_OPTIONS_VERSION)")
        }
        let simulated = try SimulatedCluster(
            .init(
                nodes: Int(o.nodes), seed: o.seed, fanout: Int(o.fanout),
                faults: try faults(
                    drop: o.drop_rate, duplicate: o.duplicate_rate, reorder: o.reorder_rate, maxDelay: o.max_delay)))
        out.pointee = handles.insert(simulated, .cluster)
    }
}

@c @implementation public func luigi_cluster_free(_ c: OpaquePointer!) { handles.remove(c, .cluster) }

@c @implementation public func luigi_cluster_size(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!) -> luigi_status {
    output(out, "out_nodes") { try cluster(c).count }
}

@c @implementation public func luigi_cluster_replica(
    _ c: OpaquePointer!, _ index: Int, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let sim = try cluster(c)
        guard index >= 0 && index < sim.count else {
            throw ABIError.outOfRange("replica index \(index) is outside a cluster of \(sim.count)")
        }
        out.pointee = handles.insert(sim[index], .replica)
    }
}

@c @implementation public func luigi_cluster_set_faults(
    _ c: OpaquePointer!, _ drop: Double, _ duplicate: Double, _ reorder: Double, _ maxDelay: UInt32
) -> luigi_status {
    guarded {
        let sim = try cluster(c)
        try sim.setFaults(try faults(drop: drop, duplicate: duplicate, reorder: reorder, maxDelay: maxDelay))
    }
}

@c @implementation public func luigi_cluster_partition(
    _ c: OpaquePointer!, _ groupOf: UnsafePointer<UInt32>!, _ count: Int
) -> luigi_status {
    guarded {
        let sim = try cluster(c)
        guard count == sim.count else {
            throw ABIError.invalidArgument("group_of has \(count) entries for \(sim.count) nodes")
        }
        guard let groupOf else { throw ABIError.invalidArgument("group_of is NULL") }
        try sim.partition(groupOf: UnsafeBufferPointer(start: groupOf, count: count).map { Int($0) })
    }
}

@c @implementation public func luigi_cluster_heal(_ c: OpaquePointer!) -> luigi_status {
    guarded { try cluster(c).heal() }
}

@c @implementation public func luigi_cluster_run(_ c: OpaquePointer!, _ rounds: UInt64) -> luigi_status {
    guarded {
        let sim = try cluster(c)
        guard rounds <= UInt64(Int32.max) else { throw ABIError.invalidArgument("rounds must be at most 2^31-1") }
        sim.run(rounds: Int(rounds))
    }
}

@c @implementation public func luigi_cluster_run_until_converged(
    _ c: OpaquePointer!, _ maxRounds: UInt64, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_rounds")
        let sim = try cluster(c)
        guard maxRounds <= UInt64(Int32.max) else {
            throw ABIError.invalidArgument("max_rounds must be at most 2^31-1")
        }
        out.pointee = UInt64(try sim.runUntilConverged(maxRounds: Int(maxRounds)))
    }
}

@c @implementation public func luigi_cluster_converged(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<Int32>!)
    -> luigi_status
{
    output(out, "out_converged") { try cluster(c).isConverged ? 1 : 0 }
}

@c @implementation public func luigi_cluster_get_stats(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_cluster_stats>!)
    -> luigi_status
{
    guarded {
        let out = try required(out, "out")
        guard out.pointee.version == UInt32(LUIGI_CLUSTER_STATS_VERSION) else {
            throw ABIError.invalidArgument(
                "stats.version is \(out.pointee.version); set it to LUIGI_CLUSTER_STATS_VERSION (\(LUIGI_CLUSTER_STATS_VERSION))")
        }
        let s = try cluster(c).stats
        out.pointee = luigi_cluster_stats(
            version: UInt32(LUIGI_CLUSTER_STATS_VERSION), reserved: 0, rounds: s.rounds, messages: s.messages,
            bytes: s.bytes, dropped: s.dropped, duplicated: s.duplicated, updates_shipped: s.updatesShipped,
            type_conflicts: s.typeConflicts)
    }
}
