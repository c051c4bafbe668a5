import LuigiBase

// A shard's replicated state as a Raft snapshot (log compaction):
// "LWS" 0x01 | shard | workers | store | txns | marks | read frontier |
// write frontier | retired | parts | ops | CRC-32C.
// Maps are written in one order (keys by UTF-8 bytes, ids and retire keys
// ascending) and the decoder accepts only that order, so equal states give
// equal bytes and every accepted snapshot re-encodes to itself. A snapshot
// comes from a peer (InstallSnapshot): everything is range-checked, and
// the cross-field rules a real state keeps are checked too.
extension ShardState {
    public static let snapshotMagic: [UInt8] = [0x4C, 0x57, 0x53, 0x01]

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.magic(Self.snapshotMagic)
        w.varint(shard)
        w.varint(UInt64(workers))
        w.keyed(store) { out, v in out.zigzag(v) }
        w.varint(UInt64(txns.count))
        for id in txns.keys.sorted() {
            let rec = txns[id]!
            rec.execution.write(to: &w)
            w.u8(rec.outcome?.rawValue ?? 0)
        }
        w.list(marks)
        w.keyed(readFrontier) { out, ts in out.varint(ts) }
        w.keyed(writeFrontier) { out, ts in out.varint(ts) }
        w.varint(UInt64(retired.count))
        for k in retired.keys.sorted(by: { ($0.coordinator, $0.worker) < ($1.coordinator, $1.worker) }) {
            w.varint(k.coordinator); w.varint(UInt64(k.worker)); w.varint(retired[k]!)
        }
        w.varint(partsApplied)
        w.varint(opsApplied)
        w.sealWithChecksum()
        return w.bytes
    }

    /// Throws `LuigiError.decode` on anything but a canonical snapshot.
    public init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.snapshotMagic, what: "shard snapshot")
        let shard = try r.varint()
        guard shard < UInt64(WatermarkLimits.maxShards) else { throw LuigiError.decode("shard \(shard) out of range") }
        let w = try r.varint()
        guard w >= 1, w <= UInt64(WatermarkLimits.maxWorkers) else { throw LuigiError.decode("\(w) workers out of range") }
        let workers = Int(w)
        let store = try r.keyed("store") { try $0.zigzag() }
        let txns = try r.txnRecords(shard: shard, workers: workers)
        let marks = try r.timestamps("marks")
        guard marks.count == workers else { throw LuigiError.decode("\(marks.count) marks for \(workers) streams") }
        let reads = try r.keyed("read frontier") { try $0.timestamp("frontier") }
        let writes = try r.keyed("write frontier") { try $0.timestamp("frontier") }
        let retired = try r.retired(workers: workers)
        let parts = try r.varint(), ops = try r.varint()
        try r.expectEnd("shard snapshot")
        self.init(shard: shard, workers: workers, store: store, txns: txns, marks: marks, readFrontier: reads,
                  writeFrontier: writes, retired: retired, partsApplied: parts, opsApplied: ops)
    }
}

extension ByteWriter {
    /// `count | (key, value)*`, keys ascending by UTF-8 bytes.
    mutating func keyed<V>(_ map: [String: V], _ value: (inout ByteWriter, V) -> Void) {
        varint(UInt64(map.count))
        for k in map.keys.sorted(by: utf8Precedes) {
            string(k)
            value(&self, map[k]!)
        }
    }
}

extension ByteReader {
    mutating func keyed<V>(_ what: String, _ value: (inout ByteReader) throws -> V) throws -> [String: V] {
        let n = try count()
        var out: [String: V] = [:]
        out.reserveCapacity(n)
        var last: String?
        for _ in 0..<n {
            let k = try key()
            guard last.map({ $0.utf8.lexicographicallyPrecedes(k.utf8) }) ?? true else {
                throw LuigiError.decode("\(what) keys are not sorted and unique")
            }
            // Two spellings of one key (canonically equivalent Unicode) are one key.
            guard out.updateValue(try value(&self), forKey: k) == nil else {
                throw LuigiError.decode("\(what) holds one key twice")
            }
            last = k
        }
        return out
    }

    /// Execution + outcome (0 while votes are awaited), ascending by id.
    /// A finished execution's outcome is its vote, as `apply` sets it.
    mutating func txnRecords(shard: UInt64, workers: Int) throws -> [TxnId: TxnRecord] {
        let n = try count()
        var out: [TxnId: TxnRecord] = [:]
        out.reserveCapacity(n)
        var last: TxnId?
        for _ in 0..<n {
            let e = try Execution.read(from: &self)
            guard last.map({ $0 < e.id }) ?? true else { throw LuigiError.decode("transactions are not sorted and unique") }
            guard Int(e.id.worker) < workers, e.shards.contains(shard) else {
                throw LuigiError.decode("\(e.id) is not a transaction of shard \(shard) with \(workers) streams")
            }
            let raw = try u8()
            guard raw == 0 || Outcome(rawValue: raw) != nil else { throw LuigiError.decode("bad outcome \(raw)") }
            let outcome = Outcome(rawValue: raw)
            guard e.pending || outcome == (e.vote ? .committed : .aborted) else {
                throw LuigiError.decode("\(e.id) finished with its vote, but its outcome differs")
            }
            out[e.id] = TxnRecord(execution: e, outcome: outcome)
            last = e.id
        }
        return out
    }

    /// (coordinator, worker, below) ascending by (coordinator, worker); below >= 1.
    mutating func retired(workers: Int) throws -> [ShardState.RetireKey: UInt64] {
        let n = try count()
        var out: [ShardState.RetireKey: UInt64] = [:]
        out.reserveCapacity(n)
        var last: (UInt64, UInt64)?
        for _ in 0..<n {
            let c = try varint(), w = try varint()
            guard w < UInt64(workers), last.map({ $0 < (c, w) }) ?? true else {
                throw LuigiError.decode("retire points are not sorted, unique and of a stream")
            }
            let below = try timestamp("retire point")
            guard below >= 1 else { throw LuigiError.decode("a retire point of 0") }
            out[ShardState.RetireKey(coordinator: c, worker: UInt32(w))] = below
            last = (c, w)
        }
        return out
    }
}
