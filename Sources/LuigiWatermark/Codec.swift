import LuigiBase

// Shared pieces of the message ("LWM") and record ("LWR") encodings. Every
// reader range-checks what it decodes, so a decoded value is always in
// bounds; cross-field rules (a shard listed in `shards`, marks for every
// stream) are checked by the role that receives it.

extension ByteWriter {
    package mutating func id(_ id: TxnId) {
        varint(id.coordinator)
        varint(UInt64(id.worker))
        varint(id.seq)
    }

    package mutating func optionalId(_ id: TxnId?) {
        flag(id != nil)
        if let id { self.id(id) }
    }

    package mutating func list(_ values: [UInt64]) {
        varint(UInt64(values.count))
        for v in values { varint(v) }
    }

    package mutating func op(_ op: Op) {
        switch op {
        case .read(let k): u8(1); string(k)
        case .write(let k, let v): u8(2); string(k); zigzag(v)
        case .add(let k, let v): u8(3); string(k); zigzag(v)
        case .check(let k, let v): u8(4); string(k); zigzag(v)
        }
    }

    package mutating func part(_ p: TxnPart) {
        id(p.id)
        varint(p.ts)
        list(p.shards)
        flag(p.mayAbort)
        varint(UInt64(p.ops.count))
        for o in p.ops { op(o) }
    }

    package mutating func txn(_ t: Txn) {
        id(t.id)
        varint(t.ts)
        flag(t.mayAbort)
        shardOps(t.parts)
    }

    /// Each shard's ops, sorted by shard.
    package mutating func shardOps(_ parts: [ShardOps]) {
        varint(UInt64(parts.count))
        for p in parts {
            varint(p.shard)
            varint(UInt64(p.ops.count))
            for o in p.ops { op(o) }
        }
    }

    /// (shard, timestamp) pairs, sorted by shard.
    package mutating func proposals(_ p: [ShardStamp]) {
        varint(UInt64(p.count))
        for x in p { varint(x.shard); varint(x.ts) }
    }

    package mutating func reads(_ reads: [ReadResult]) {
        varint(UInt64(reads.count))
        for r in reads {
            string(r.key)
            if let v = r.value { u8(1); zigzag(v) } else { u8(0) }
        }
    }

    package mutating func writes(_ writes: [WriteResult]) {
        varint(UInt64(writes.count))
        for w in writes { string(w.key); zigzag(w.value) }
    }
}

extension ByteReader {
    package mutating func id() throws -> TxnId {
        let c = try varint(), w = try varint(), s = try varint()
        guard w < UInt64(WatermarkLimits.maxWorkers) else { throw LuigiError.decode("worker \(w) out of range") }
        try timestamp(s, "sequence")
        return TxnId(coordinator: c, worker: UInt32(w), seq: s)
    }

    package mutating func optionalId() throws -> TxnId? {
        try flag() ? try id() : nil
    }

    package mutating func timestamp(_ what: String) throws -> UInt64 {
        let v = try varint()
        try timestamp(v, what)
        return v
    }

    package func timestamp(_ v: UInt64, _ what: String) throws {
        guard v <= WatermarkLimits.maxTimestamp else { throw LuigiError.decode("\(what) \(v) is above 2^62") }
    }

    package mutating func key() throws -> String {
        let k = try utf8()
        guard k.utf8.count <= WatermarkLimits.maxKeyBytes else { throw LuigiError.decode("key longer than 1 KiB") }
        return k
    }

    /// Shard ids: sorted, unique, non-empty, each below the limit.
    package mutating func shardList() throws -> [UInt64] {
        let n = try count()
        guard n >= 1, n <= WatermarkLimits.maxShards else { throw LuigiError.decode("shard count \(n) out of range") }
        var out: [UInt64] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let s = try varint()
            guard s < UInt64(WatermarkLimits.maxShards), out.last.map({ $0 < s }) ?? true else {
                throw LuigiError.decode("shard list is not sorted, unique and in range")
            }
            out.append(s)
        }
        return out
    }

    package mutating func timestamps(_ what: String) throws -> [UInt64] {
        let n = try count()
        guard n <= WatermarkLimits.maxWorkers else { throw LuigiError.decode("\(n) \(what) is too many") }
        return try (0..<n).map { _ in try timestamp(what) }
    }

    package mutating func op() throws -> Op {
        let tag = try u8()
        let k = try key()
        switch tag {
        case 1: return .read(k)
        case 2: return .write(k, try zigzag())
        case 3: return .add(k, try zigzag())
        case 4: return .check(k, atLeast: try zigzag())
        default: throw LuigiError.decode("unknown op \(tag)")
        }
    }

    package mutating func part() throws -> TxnPart {
        let id = try id()
        let ts = try timestamp("timestamp")
        let shards = try shardList()
        let mayAbort = try flag()
        let n = try count()
        guard n <= WatermarkLimits.maxOpsPerPart else { throw LuigiError.decode("\(n) ops is too many") }
        let ops = try (0..<n).map { _ in try op() }
        guard mayAbort || !ops.contains(where: \.mayAbort) else {
            throw LuigiError.decode("a part with add or check must be marked may-abort")
        }
        return TxnPart(id: id, ts: ts, shards: shards, mayAbort: mayAbort, ops: ops)
    }

    /// A whole transaction, fully validated (`Txn.validate`).
    package mutating func txn() throws -> Txn {
        let id = try id()
        let ts = try timestamp("timestamp")
        let mayAbort = try flag()
        let t = Txn(id: id, ts: ts, mayAbort: mayAbort, parts: try shardOps())
        do { try t.validate() } catch { throw LuigiError.decode("\(error)") }
        return t
    }

    /// Each shard's ops: 1...2^16 parts sorted by shard, each of
    /// 1...maxOpsPerPart ops, at most maxOpsPerTxn in all.
    package mutating func shardOps() throws -> [ShardOps] {
        let n = try count()
        guard n >= 1, n <= WatermarkLimits.maxShards else { throw LuigiError.decode("\(n) parts is out of range") }
        var parts: [ShardOps] = []
        var total = 0
        for _ in 0..<n {
            let shard = try varint()
            guard shard < UInt64(WatermarkLimits.maxShards), parts.last.map({ $0.shard < shard }) ?? true else {
                throw LuigiError.decode("parts are not sorted by shard, unique and in range")
            }
            let k = try count()
            total += k
            guard k >= 1, k <= WatermarkLimits.maxOpsPerPart, total <= WatermarkLimits.maxOpsPerTxn else {
                throw LuigiError.decode("a part has 1...\(WatermarkLimits.maxOpsPerPart) ops, a transaction at most \(WatermarkLimits.maxOpsPerTxn)")
            }
            parts.append(ShardOps(shard: shard, ops: try (0..<k).map { _ in try op() }))
        }
        return parts
    }

    package mutating func proposals() throws -> [ShardStamp] {
        let n = try count()
        guard n <= WatermarkLimits.maxShards else { throw LuigiError.decode("\(n) proposals is too many") }
        var out: [ShardStamp] = []
        for _ in 0..<n {
            let s = try varint()
            guard s < UInt64(WatermarkLimits.maxShards), out.last.map({ $0.shard < s }) ?? true else {
                throw LuigiError.decode("proposals are not sorted by shard, unique and in range")
            }
            out.append(ShardStamp(shard: s, ts: try timestamp("proposal")))
        }
        return out
    }

    package mutating func reads() throws -> [ReadResult] {
        let n = try count()
        return try (0..<n).map { _ in
            let k = try key()
            return ReadResult(key: k, value: try flag() ? try zigzag() : nil)
        }
    }

    package mutating func writes() throws -> [WriteResult] {
        let n = try count()
        return try (0..<n).map { _ in WriteResult(key: try key(), value: try zigzag()) }
    }
}
