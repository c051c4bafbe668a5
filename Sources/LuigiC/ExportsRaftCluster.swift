import CLuigi
import LuigiCore
import LuigiSimulation
import LuigiStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The simulated Raft cluster with the key-value state machine.

func raftCluster(_ h: OpaquePointer?) throws -> RaftCluster { try handles.get(h, .raftCluster, as: RaftCluster.self) }

/// The client history exists only on a cluster running the key-value machine.
private func history(_ h: OpaquePointer?) throws -> KVHistory {
    let cluster = try raftCluster(h)
    guard cluster.options.makeMachine == nil else {
        throw LuigiError.state("this cluster runs another state machine than the key-value one: it records no history")
    }
    return cluster.history
}

func ticks(_ timeout: UInt64) throws -> Int {
    guard timeout >= 1 && timeout <= 10_000_000 else {
        throw ABIError.invalidArgument("timeout must be in 1...10000000 ticks, got \(timeout)")
    }
    return Int(timeout)
}

private func timedOut(_ what: String, _ timeout: UInt64) -> LuigiError {
    .timeout("\(what) did not complete within \(timeout) ticks; its outcome is unknown")
}

@c @implementation public func luigi_raft_cluster_options_init(_ o: UnsafeMutablePointer<luigi_raft_cluster_options>!) {
    guard let o else { return }
    o.pointee = luigi_raft_cluster_options(
        version: UInt32(LUIGI_RAFT_CLUSTER_OPTIONS_VERSION), nodes: 3, seed: 0, election_tick: 10, heartbeat_tick: 1,
        pre_vote: 1, check_quorum: 1, compact_after: 0, max_delay: 0, drop_rate: 0, duplicate_rate: 0,
        reorder_rate: 0, data_dir: nil)
}

/// The Swift options a caller's `luigi_raft_cluster_options` describe, all checked.
func raftClusterOptions(_ options: UnsafePointer<luigi_raft_cluster_options>?) throws -> RaftCluster.Options {
    guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
    guard o.version == UInt32(LUIGI_RAFT_CLUSTER_OPTIONS_VERSION) else {
        throw ABIError.invalidArgument(
            "options.version is \(o.version); this library supports \(LUIGI_RAFT_CLUSTER_OPTIONS_VERSION)")
    }
    guard o.pre_vote <= 1, o.check_quorum <= 1 else { throw ABIError.invalidArgument("pre_vote and check_quorum are 0 or 1") }
    guard o.election_tick <= 1_000_000, o.max_delay <= 1_000 else { throw ABIError.invalidArgument("an option is out of range") }
    var opts = RaftCluster.Options(nodes: Int(o.nodes), seed: o.seed)
    opts.electionTick = Int(o.election_tick)
    opts.heartbeatTick = Int(o.heartbeat_tick)
    opts.preVote = o.pre_vote == 1
    opts.checkQuorum = o.check_quorum == 1
    opts.compactAfter = Int(o.compact_after)
    opts.faults = NetworkFaults(
        drop: o.drop_rate, duplicate: o.duplicate_rate, reorder: o.reorder_rate, maxDelay: Int(o.max_delay))
    if let dir = o.data_dir {
        let root = try utf8(dir, strlen(dir), "data_dir")
        opts.openStorage = { id in
            try DurableRaftStorage(directory: "\(root)/node-\(id)")
        }
    }
    return opts
}

@c @implementation public func luigi_raft_cluster_new(
    _ options: UnsafePointer<luigi_raft_cluster_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        out.pointee = handles.insert(try RaftCluster(try raftClusterOptions(options)), .raftCluster)
    }
}

@c @implementation public func luigi_raft_cluster_free(_ c: OpaquePointer!) { handles.remove(c, .raftCluster) }

@c @implementation public func luigi_raft_cluster_tick(_ c: OpaquePointer!, _ n: UInt64) -> luigi_status {
    guarded {
        guard n <= 10_000_000 else { throw ABIError.invalidArgument("at most 10000000 ticks per call") }
        try raftCluster(c).tick(Int(n))
    }
}

@c @implementation public func luigi_raft_cluster_stabilize(_ c: OpaquePointer!) -> luigi_status {
    guarded { try raftCluster(c).stabilize() }
}

private func member(_ c: RaftCluster, _ node: UInt64) throws -> UInt64 {
    guard c.nodeIDs.contains(node) else { throw ABIError.invalidArgument("node \(node) is not in the cluster") }
    return node
}

@c @implementation public func luigi_raft_cluster_campaign(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        try cluster.campaign(try member(cluster, node))
    }
}

@c @implementation public func luigi_raft_cluster_isolate(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        cluster.isolate(try member(cluster, node))
    }
}

@c @implementation public func luigi_raft_cluster_cut(_ c: OpaquePointer!, _ a: UInt64, _ b: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        cluster.cut(try member(cluster, a), try member(cluster, b))
    }
}

@c @implementation public func luigi_raft_cluster_heal(_ c: OpaquePointer!) -> luigi_status {
    guarded { try raftCluster(c).heal() }
}

@c @implementation public func luigi_raft_cluster_crash(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        cluster.crash(try member(cluster, node))
    }
}

@c @implementation public func luigi_raft_cluster_restart(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        try cluster.restart(try member(cluster, node))
    }
}

@c @implementation public func luigi_raft_cluster_leader(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_leader") { try raftCluster(c).leader ?? 0 }
}

@c @implementation public func luigi_raft_cluster_nodes(
    _ c: OpaquePointer!, _ ids: UnsafeMutablePointer<UInt64>!, _ capacity: Int, _ outCount: UnsafeMutablePointer<Int>!
) -> luigi_status {
    guarded {
        let outCount = try required(outCount, "out_count")
        let nodes = try raftCluster(c).nodeIDs
        if capacity > 0 && ids == nil { throw ABIError.invalidArgument("ids is NULL but capacity is \(capacity)") }
        guard capacity >= nodes.count else {
            outCount.pointee = nodes.count
            throw ABIError.bufferTooSmall("the cluster has \(nodes.count) nodes, capacity is \(capacity)")
        }
        for (i, id) in nodes.enumerated() { ids[i] = id }
        outCount.pointee = nodes.count
    }
}

@c @implementation public func luigi_raft_cluster_node_status(
    _ c: OpaquePointer!, _ node: UInt64, _ out: UnsafeMutablePointer<luigi_raft_status>!
) -> luigi_status {
    writeStatus(out) {
        let cluster = try raftCluster(c)
        guard let s = cluster.status(try member(cluster, node)) else { throw LuigiError.state("node \(node) is down") }
        return s
    }
}

@c @implementation public func luigi_raft_cluster_propose(
    _ c: OpaquePointer!, _ data: UnsafePointer<UInt8>!, _ len: Int, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_index") { try raftCluster(c).propose(try bytes(data, len, "data")) }
}

@c @implementation public func luigi_raft_cluster_put(
    _ c: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: UnsafePointer<UInt8>!, _ valueLen: Int,
    _ timeout: UInt64
) -> luigi_status {
    guarded {
        let command = KVStateMachine.Command.put(key: try utf8(key, keyLen, "key"), value: try bytes(value, valueLen, "value"))
        guard try raftCluster(c).execute(command, timeout: try ticks(timeout)) != nil else { throw timedOut("put", timeout) }
    }
}

@c @implementation public func luigi_raft_cluster_get(
    _ c: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ timeout: UInt64,
    _ outFound: UnsafeMutablePointer<Int32>!, _ outValue: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outFound = try required(outFound, "out_found"), outValue = try required(outValue, "out_value")
        let name = try utf8(key, keyLen, "key")
        guard let result = try raftCluster(c).linearizableGet(name, timeout: try ticks(timeout)) else {
            throw timedOut("get", timeout)
        }
        try fill(outValue, with: Array(result.dropFirst()))
        outFound.pointee = result.first == 1 ? 1 : 0
    }
}

@c @implementation public func luigi_raft_cluster_delete(
    _ c: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ timeout: UInt64,
    _ outExisted: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    output(outExisted, "out_existed") {
        let command = KVStateMachine.Command.delete(key: try utf8(key, keyLen, "key"))
        guard let result = try raftCluster(c).execute(command, timeout: try ticks(timeout)) else {
            throw timedOut("delete", timeout)
        }
        return result == [1] ? 1 : 0
    }
}

@c @implementation public func luigi_raft_cluster_cas(
    _ c: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ expected: UnsafePointer<UInt8>!,
    _ expectedLen: Int, _ value: UnsafePointer<UInt8>!, _ valueLen: Int, _ timeout: UInt64,
    _ outSwapped: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    output(outSwapped, "out_swapped") {
        let expectedValue: [UInt8]? = expected == nil ? nil : try bytes(expected, expectedLen, "expected")
        if expected == nil && expectedLen != 0 {
            throw ABIError.invalidArgument("expected is NULL but expected_len is \(expectedLen)")
        }
        let command = KVStateMachine.Command.cas(
            key: try utf8(key, keyLen, "key"), expected: expectedValue, new: try bytes(value, valueLen, "value"))
        guard let result = try raftCluster(c).execute(command, timeout: try ticks(timeout)) else {
            throw timedOut("cas", timeout)
        }
        return result == [1] ? 1 : 0
    }
}

@c @implementation public func luigi_raft_cluster_transfer_leader(_ c: OpaquePointer!, _ to: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        try cluster.transferLeader(to: try member(cluster, to))
    }
}

@c @implementation public func luigi_raft_cluster_add_node(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_node") { try raftCluster(c).addNode() }
}

@c @implementation public func luigi_raft_cluster_remove_node(_ c: OpaquePointer!, _ node: UInt64) -> luigi_status {
    guarded {
        let cluster = try raftCluster(c)
        try cluster.removeNode(try member(cluster, node))
    }
}

@c @implementation public func luigi_raft_cluster_log(
    _ c: OpaquePointer!, _ node: UInt64, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let cluster = try raftCluster(c)
        var w = ByteWriter()
        for entry in cluster.appliedLog(try member(cluster, node)) {
            w.u64le(entry.term)
            w.u32le(UInt32(entry.data.count))
            w.raw(entry.data)
        }
        try fill(out, with: w.bytes)
    }
}

@c @implementation public func luigi_raft_cluster_check_history(
    _ c: OpaquePointer!, _ outLinearizable: UnsafeMutablePointer<Int32>!, _ outExplanation: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outLinearizable = try required(outLinearizable, "out_linearizable")
        let outExplanation = try required(outExplanation, "out_explanation")
        let explanation: String
        switch try history(c).check() {
        case .linearizable: explanation = ""
        case .notLinearizable(let why, _): explanation = why
        case .unknown(let reason): explanation = "undecided: \(reason)"
        }
        try fill(outExplanation, with: Array(explanation.utf8))
        outLinearizable.pointee = explanation.isEmpty ? 1 : 0
    }
}

@c @implementation public func luigi_raft_cluster_history_len(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!)
    -> luigi_status
{
    output(out, "out_len") { try history(c).operations.count }
}

@c @implementation public func luigi_raft_cluster_history(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!)
    -> luigi_status
{
    guarded {
        let out = try required(out, "out")
        var w = ByteWriter()
        for op in try history(c).operations {
            var flags: Int32 = op.response != nil ? LUIGI_KV_COMPLETED : 0
            var value: [UInt8] = []
            var expected: [UInt8] = []
            let kind: Int32
            switch op.kind {
            case .put(_, let v):
                kind = LUIGI_KV_PUT
                value = v
            case .get:
                kind = LUIGI_KV_GET
                if case .value(let read?)? = op.result {
                    flags |= LUIGI_KV_FOUND
                    value = read
                }
            case .delete: kind = LUIGI_KV_DELETE
            case .cas(_, let e, let new):
                kind = LUIGI_KV_CAS
                value = new
                if let e {
                    flags |= LUIGI_KV_EXPECTED
                    expected = e
                }
                if case .swapped(true)? = op.result { flags |= LUIGI_KV_SWAPPED }
            }
            w.u8(UInt8(kind))
            w.u8(UInt8(flags))
            w.u64le(op.client)
            w.u64le(op.invoke)
            w.u64le(op.response ?? 0)
            for field in [Array(op.key.utf8), value, expected] {
                w.u32le(UInt32(field.count))
                w.raw(field)
            }
        }
        try fill(out, with: w.bytes)
    }
}
