import CLuigi
import LuigiCore

// The watermark roles for bring-your-own-transport, and the byte formats
// shared with the simulated cluster's exports.

/// A caller's ops, grouped by shard in first-seen order of their shards.
func wmOps(_ ops: UnsafePointer<luigi_wm_op>?, _ count: Int) throws -> [UInt64: [Op]] {
    try checkLength(count, "ops count")
    guard count > 0 else { throw ABIError.invalidArgument("a transaction needs at least one op") }
    guard let ops else { throw ABIError.invalidArgument("ops is NULL but count is \(count)") }
    var parts: [UInt64: [Op]] = [:]
    for o in UnsafeBufferPointer(start: ops, count: count) {
        guard o.reserved == 0 else { throw ABIError.invalidArgument("luigi_wm_op.reserved must be 0") }
        let key = try utf8(o.key, o.key_len, "key")
        let op: Op
        switch Int32(o.kind) {
        case LUIGI_WM_READ: op = .read(key)
        case LUIGI_WM_WRITE: op = .write(key, o.value)
        case LUIGI_WM_ADD: op = .add(key, o.value)
        case LUIGI_WM_CHECK: op = .check(key, atLeast: o.value)
        default: throw ABIError.invalidArgument("unknown op kind \(o.kind)")
        }
        parts[o.shard, default: []].append(op)
    }
    return parts
}

func wmID(_ id: TxnId) -> luigi_wm_txn_id {
    luigi_wm_txn_id(coordinator: id.coordinator, worker: UInt64(id.worker), seq: id.seq)
}

func wmID(_ id: luigi_wm_txn_id) throws -> TxnId {
    guard id.worker < UInt64(WatermarkLimits.maxWorkers) else { throw ABIError.invalidArgument("worker \(id.worker) out of range") }
    return TxnId(coordinator: id.coordinator, worker: UInt32(id.worker), seq: id.seq)
}

extension ByteWriter {
    mutating func wmMessages(_ envelopes: [WatermarkEnvelope]) {
        for e in envelopes {
            let bytes = e.encoded()
            u8(e.toShard ? 1 : 0)
            u64le(e.to)
            u32le(UInt32(bytes.count))
            raw(bytes)
        }
    }

    mutating func wmReads(_ reads: [UInt64: [ReadResult]]) {
        for (shard, rs) in reads.sorted(by: { $0.key < $1.key }) {
            for r in rs {
                u64le(shard)
                u32le(UInt32(r.key.utf8.count))
                raw(Array(r.key.utf8))
                u8(r.value == nil ? 0 : 1)
                u64le(UInt64(bitPattern: r.value ?? 0))
            }
        }
    }
}

func coordinatorRole(_ h: OpaquePointer?) throws -> Coordinator { try handles.get(h, .wmCoordinator, as: Coordinator.self) }
func shardRole(_ h: OpaquePointer?) throws -> ShardNode { try handles.get(h, .wmShard, as: ShardNode.self) }

func commitRule(_ raw: UInt32) throws -> CommitRule {
    guard let rule = CommitRule(rawValue: UInt8(clamping: raw)), raw <= 1 else {
        throw ABIError.invalidArgument("rule must be LUIGI_RULE_ALL_STREAMS or LUIGI_RULE_OWN_STREAM, got \(raw)")
    }
    return rule
}

// MARK: - Coordinator

@c @implementation public func luigi_wm_coordinator_options_init(_ o: UnsafeMutablePointer<luigi_wm_coordinator_options>!) {
    guard let o else { return }
    let d = CoordinatorConfig(id: 1, shardCount: 1, workers: 1)
    o.pointee = luigi_wm_coordinator_options(
        version: UInt32(LUIGI_WM_COORDINATOR_OPTIONS_VERSION), rule: 0, id: 1, shard_count: 1, workers: 1,
        headroom_us: d.headroom, initial_delay_us: d.initialDelay, retry_after_us: d.retryAfter,
        retire_every_us: d.retireEvery)
}

@c @implementation public func luigi_wm_coordinator_new(
    _ options: UnsafePointer<luigi_wm_coordinator_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        try checkVersion(o.version, LUIGI_WM_COORDINATOR_OPTIONS_VERSION, "LUIGI_WM_COORDINATOR_OPTIONS_VERSION")
        var c = CoordinatorConfig(id: o.id, shardCount: Int(o.shard_count), workers: Int(o.workers))
        c.rule = try commitRule(o.rule)
        c.headroom = o.headroom_us
        c.initialDelay = o.initial_delay_us
        c.retryAfter = o.retry_after_us
        c.retireEvery = o.retire_every_us
        out.pointee = handles.insert(try Coordinator(config: c), .wmCoordinator)
    }
}

@c @implementation public func luigi_wm_coordinator_free(_ c: OpaquePointer!) { handles.remove(c, .wmCoordinator) }

@c @implementation public func luigi_wm_coordinator_submit(
    _ c: OpaquePointer!, _ ops: UnsafePointer<luigi_wm_op>!, _ count: Int, _ worker: UInt32, _ now: UInt64,
    _ out: UnsafeMutablePointer<luigi_wm_txn_id>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_id")
        let co = try coordinatorRole(c)
        out.pointee = wmID(try co.submit(try wmOps(ops, count), worker: worker, now: now))
    }
}

@c @implementation public func luigi_wm_coordinator_step(
    _ c: OpaquePointer!, _ message: UnsafePointer<UInt8>!, _ len: Int, _ now: UInt64
) -> luigi_status {
    guarded {
        let co = try coordinatorRole(c)
        try co.step(try WatermarkEnvelope(decoding: try bytes(message, len, "message")), now: now)
    }
}

@c @implementation public func luigi_wm_coordinator_tick(_ c: OpaquePointer!, _ now: UInt64) -> luigi_status {
    guarded { try coordinatorRole(c).tick(now: now) }
}

@c @implementation public func luigi_wm_coordinator_take_messages(
    _ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        var w = ByteWriter()
        w.wmMessages(try coordinatorRole(c).takeOutput())
        try fill(out, with: w.bytes)
    }
}

@c @implementation public func luigi_wm_coordinator_take_completions(
    _ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        var w = ByteWriter()
        for d in try coordinatorRole(c).takeCompletions() {
            w.u64le(d.id.coordinator)
            w.u64le(UInt64(d.id.worker))
            w.u64le(d.id.seq)
            w.u8(d.outcome == .committed ? UInt8(LUIGI_WM_COMMITTED) : UInt8(LUIGI_WM_ABORTED))
            w.u64le(d.ts)
            w.u64le(d.submittedAt)
            w.u64le(d.completedAt)
            w.u32le(UInt32(d.reads.values.reduce(0) { $0 + $1.count }))
            w.wmReads(d.reads)
        }
        try fill(out, with: w.bytes)
    }
}

// MARK: - Shard

@c @implementation public func luigi_wm_shard_options_init(_ o: UnsafeMutablePointer<luigi_wm_shard_options>!) {
    guard let o else { return }
    let d = ShardConfig(shard: 0, shardCount: 1, workers: 1, coordinators: [1])
    o.pointee = luigi_wm_shard_options(
        version: UInt32(LUIGI_WM_SHARD_OPTIONS_VERSION), workers: 1, shard: 0, shard_count: 1, coordinator_count: 0,
        coordinators: nil, resend_after_us: d.resendAfter, marks_every_us: d.marksEvery)
}

@c @implementation public func luigi_wm_shard_new(
    _ options: UnsafePointer<luigi_wm_shard_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        try checkVersion(o.version, LUIGI_WM_SHARD_OPTIONS_VERSION, "LUIGI_WM_SHARD_OPTIONS_VERSION")
        let n = Int(o.coordinator_count)
        guard n <= 1 << 16 else { throw ABIError.invalidArgument("at most 65536 coordinators") }
        guard n == 0 || o.coordinators != nil else { throw ABIError.invalidArgument("coordinators is NULL") }
        let ids = n == 0 ? [] : Array(UnsafeBufferPointer(start: o.coordinators, count: n))
        var c = ShardConfig(shard: o.shard, shardCount: Int(o.shard_count), workers: Int(o.workers), coordinators: ids)
        c.resendAfter = o.resend_after_us
        c.marksEvery = o.marks_every_us
        out.pointee = handles.insert(try ShardNode(config: c), .wmShard)
    }
}

@c @implementation public func luigi_wm_shard_free(_ s: OpaquePointer!) { handles.remove(s, .wmShard) }

@c @implementation public func luigi_wm_shard_set_role(_ s: OpaquePointer!, _ leader: Int32, _ term: UInt64) -> luigi_status {
    guarded {
        guard leader == 0 || leader == 1 else { throw ABIError.invalidArgument("leader must be 0 or 1") }
        try WatermarkLimits.check(term, "term")
        try shardRole(s).setRole(leader: leader == 1, term: term)
    }
}

@c @implementation public func luigi_wm_shard_apply(
    _ s: OpaquePointer!, _ entry: UnsafePointer<UInt8>!, _ len: Int, _ term: UInt64, _ now: UInt64
) -> luigi_status {
    guarded {
        let node = try shardRole(s)
        node.apply(entry: try bytes(entry, len, "entry"), term: term, now: now)
    }
}

@c @implementation public func luigi_wm_shard_step(
    _ s: OpaquePointer!, _ message: UnsafePointer<UInt8>!, _ len: Int, _ now: UInt64
) -> luigi_status {
    guarded {
        let node = try shardRole(s)
        try node.step(try WatermarkEnvelope(decoding: try bytes(message, len, "message")), now: now)
    }
}

@c @implementation public func luigi_wm_shard_tick(_ s: OpaquePointer!, _ now: UInt64) -> luigi_status {
    guarded { try shardRole(s).tick(now: now) }
}

@c @implementation public func luigi_wm_shard_take_output(
    _ s: OpaquePointer!, _ outMessages: UnsafeMutablePointer<luigi_buffer>!,
    _ outRecords: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outMessages = try required(outMessages, "out_messages")
        let outRecords = try required(outRecords, "out_records")
        let out = try shardRole(s).takeOutput()
        var m = ByteWriter(), r = ByteWriter()
        m.wmMessages(out.messages)
        for record in out.appends {
            let bytes = record.encoded()
            r.u32le(UInt32(bytes.count))
            r.raw(bytes)
        }
        try fill(outMessages, with: m.bytes)
        do { try fill(outRecords, with: r.bytes) } catch {
            luigi_buffer_free(outMessages)
            throw error
        }
    }
}

@c @implementation public func luigi_wm_shard_value(
    _ s: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ len: Int, _ outValue: UnsafeMutablePointer<Int64>!,
    _ outPresent: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    guarded {
        let outValue = try required(outValue, "out_value")
        let outPresent = try required(outPresent, "out_present")
        let v = try shardRole(s).state.value(try utf8(key, len, "key"))
        outValue.pointee = v ?? 0
        outPresent.pointee = v == nil ? 0 : 1
    }
}

@c @implementation public func luigi_wm_shard_serving(_ s: OpaquePointer!, _ out: UnsafeMutablePointer<Int32>!) -> luigi_status {
    output(out, "out_serving") { try shardRole(s).isServing ? 1 : 0 }
}

@c @implementation public func luigi_wm_shard_records(_ s: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!) -> luigi_status {
    output(out, "out_records") { UInt64(try shardRole(s).state.txns.count) }
}

@c @implementation public func luigi_wm_coordinator_adopt(_ c: OpaquePointer!, _ lowest: UInt64, _ highest: UInt64) -> luigi_status {
    guarded {
        let co = try coordinatorRole(c)
        guard lowest <= highest else { throw ABIError.invalidArgument("lowest \(lowest) is above highest \(highest)") }
        try co.adopt(lowest...highest)
    }
}

@c @implementation public func luigi_wm_coordinator_adopting(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<Int32>!) -> luigi_status {
    output(out, "out_adopting") { try coordinatorRole(c).isAdopting ? 1 : 0 }
}
