import CLuigi
import LuigiCore

// Replicas, transactions, updates.

func replica(_ h: OpaquePointer?) throws -> Replica { try handles.get(h, .replica, as: Replica.self) }
func txn(_ h: OpaquePointer?) throws -> Transaction { try handles.get(h, .txn, as: Transaction.self) }

typealias UpdateBox = Box<Update>
typealias UpdateListBox = Box<[Update]>

func update(_ h: OpaquePointer?) throws -> Update { try handles.get(h, .update, as: UpdateBox.self).value }
func updateList(_ h: OpaquePointer?) throws -> UpdateListBox { try handles.get(h, .updateList, as: UpdateListBox.self) }

@c @implementation public func luigi_replica_new(_ nodeID: UInt64, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    guarded { try required(out, "out").pointee = handles.insert(Replica(nodeID: nodeID), .replica) }
}

@c @implementation public func luigi_replica_free(_ r: OpaquePointer!) { handles.remove(r, .replica) }

@c @implementation public func luigi_replica_node_id(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_node_id") { try replica(r).nodeID }
}

@c @implementation public func luigi_replica_begin(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    output(out, "out") { handles.insert(try replica(r).transaction(), .txn) }
}

@c @implementation public func luigi_txn_free(_ t: OpaquePointer!) { handles.remove(t, .txn) }

@c @implementation public func luigi_txn_add(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ delta: Int64
) -> luigi_status {
    guarded { try txn(t).add(try utf8(key, keyLen, "key"), delta) }
}

@c @implementation public func luigi_txn_max_int(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Int64
) -> luigi_status {
    guarded { try txn(t).max(try utf8(key, keyLen, "key"), .int(value)) }
}

@c @implementation public func luigi_txn_max_float(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Double
) -> luigi_status {
    guarded { try txn(t).max(try utf8(key, keyLen, "key"), .float(value)) }
}

@c @implementation public func luigi_txn_min_int(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Int64
) -> luigi_status {
    guarded { try txn(t).min(try utf8(key, keyLen, "key"), .int(value)) }
}

@c @implementation public func luigi_txn_min_float(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Double
) -> luigi_status {
    guarded { try txn(t).min(try utf8(key, keyLen, "key"), .float(value)) }
}

@c @implementation public func luigi_txn_union_int(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ element: Int64
) -> luigi_status {
    guarded { try txn(t).union(try utf8(key, keyLen, "key"), .int(element)) }
}

@c @implementation public func luigi_txn_union_str(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int,
    _ element: UnsafePointer<CChar>!, _ elementLen: Int
) -> luigi_status {
    guarded { try txn(t).union(try utf8(key, keyLen, "key"), .string(try utf8(element, elementLen, "element"))) }
}

@c @implementation public func luigi_txn_union_empty(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int
) -> luigi_status {
    guarded { try txn(t).union(try utf8(key, keyLen, "key"), [Element]()) }
}

@c @implementation public func luigi_txn_union_bytes(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int,
    _ element: UnsafePointer<UInt8>!, _ elementLen: Int
) -> luigi_status {
    guarded { try txn(t).union(try utf8(key, keyLen, "key"), .bytes(try bytes(element, elementLen, "element"))) }
}

@c @implementation public func luigi_txn_set_int(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Int64
) -> luigi_status {
    guarded { try txn(t).set(try utf8(key, keyLen, "key"), .int(value)) }
}

@c @implementation public func luigi_txn_set_float(
    _ t: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: Double
) -> luigi_status {
    guarded { try txn(t).set(try utf8(key, keyLen, "key"), try Number.checked(value)) }
}

@c @implementation public func luigi_txn_op_count(_ t: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!) -> luigi_status {
    guarded {
        let out = try required(out, "out_count")
        let tx = try txn(t)
        guard !tx.isFinished else {
            throw LuigiError.state("transaction already \(tx.update != nil ? "committed" : "proposed to the log")")
        }
        out.pointee = tx.opCount
    }
}

@c @implementation public func luigi_txn_commit(_ t: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    guarded {
        let out = try required(out, "out")
        let committed = try txn(t).commit()
        out.pointee = handles.insert(UpdateBox(committed), .update)
    }
}

@c @implementation public func luigi_replica_apply(
    _ r: OpaquePointer!, _ u: OpaquePointer!, _ outNew: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    guarded {
        let outNew = try required(outNew, "out_new")
        let target = try replica(r)
        outNew.pointee = target.apply(try update(u)) ? 1 : 0
    }
}

@c @implementation public func luigi_replica_apply_list(
    _ r: OpaquePointer!, _ l: OpaquePointer!, _ outNew: UnsafeMutablePointer<Int>!
) -> luigi_status {
    guarded {
        let outNew = try required(outNew, "out_new")
        let target = try replica(r)
        let list = try updateList(l).value
        outNew.pointee = list.reduce(0) { $0 + (target.apply($1) ? 1 : 0) }
    }
}

@c @implementation public func luigi_replica_value(
    _ r: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ out: UnsafeMutablePointer<luigi_value>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        out.pointee = cValue(try replica(r).value(try utf8(key, keyLen, "key")))
    }
}

/// A key's value as luigi_value (a set's elements come separately: `elementBytes`).
func cValue(_ value: Value?) -> luigi_value {
    var v = luigi_value()
    switch value {
    case nil:
        v.kind = LUIGI_KIND_NONE.rawValue
    case .counter(let total)?:
        v.kind = LUIGI_KIND_COUNTER.rawValue
        v.counter_hi = Int64(truncatingIfNeeded: total >> 64)
        v.counter_lo = UInt64(truncatingIfNeeded: total)
    case .max(let n)?:
        v.kind = LUIGI_KIND_MAX.rawValue
        store(n, in: &v)
    case .min(let n)?:
        v.kind = LUIGI_KIND_MIN.rawValue
        store(n, in: &v)
    case .set(let elements)?:
        v.kind = LUIGI_KIND_SET.rawValue
        v.set_size = UInt64(elements.count)
    case .register(let n)?:
        v.kind = LUIGI_KIND_REGISTER.rawValue
        store(n, in: &v)
    }
    return v
}

private func store(_ n: Number, in v: inout luigi_value) {
    switch n {
    case .int(let i):
        v.number_type = LUIGI_NUMBER_INT.rawValue
        v.int_value = i
    case .float(let d):
        v.number_type = LUIGI_NUMBER_FLOAT.rawValue
        v.float_value = d
    }
}

@c @implementation public func luigi_replica_set_elements(
    _ r: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let name = try utf8(key, keyLen, "key")
        guard case .set(let elements)? = try replica(r).value(name) else {
            throw LuigiError.typeConflict("key '\(name)' is not a set")
        }
        try fill(out, with: elementBytes(elements))
    }
}

/// A set's elements, sorted, in luigi.h's layout: a tag byte, then 8 bytes
/// LE for an int, a 4-byte LE length and the bytes for a string or bytes.
func elementBytes(_ elements: Set<Element>) -> [UInt8] {
    var w = ByteWriter(capacity: elements.count * 9)
    for e in elements.sorted() {
        switch e {
        case .int(let i):
            w.u8(UInt8(LUIGI_ELEMENT_INT))
            w.u64le(UInt64(bitPattern: i))
        case .string(let s):
            w.u8(UInt8(LUIGI_ELEMENT_STR))
            w.u32le(UInt32(s.utf8.count))
            w.raw(s.utf8)
        case .bytes(let b):
            w.u8(UInt8(LUIGI_ELEMENT_BYTES))
            w.u32le(UInt32(b.count))
            w.raw(b)
        }
    }
    return w.bytes
}

@c @implementation public func luigi_replica_keys(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!)
    -> luigi_status
{
    guarded {
        let out = try required(out, "out")
        var w = ByteWriter()
        for key in try replica(r).keys {
            w.u32le(UInt32(key.utf8.count))
            w.raw(key.utf8)
        }
        try fill(out, with: w.bytes)
    }
}

@c @implementation public func luigi_replica_key_count(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!)
    -> luigi_status
{
    output(out, "out_count") { try replica(r).keyCount }
}

@c @implementation public func luigi_replica_clock(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    output(out, "out") { newClock(try replica(r).clock) }
}

@c @implementation public func luigi_replica_pending(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!)
    -> luigi_status
{
    output(out, "out_count") { try replica(r).pendingCount }
}

@c @implementation public func luigi_replica_conflicts(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_count") { try replica(r).conflicts }
}

@c @implementation public func luigi_replica_delta_since(
    _ r: OpaquePointer!, _ c: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let missing = try replica(r).delta(since: try clock(c).value)
        out.pointee = handles.insert(UpdateListBox(missing), .updateList)
    }
}

@c @implementation public func luigi_replica_delta_encode(
    _ r: OpaquePointer!, _ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        try fill(out, with: Update.encodeBatch(try replica(r).delta(since: try clock(c).value)))
    }
}

@c @implementation public func luigi_replica_apply_encoded(
    _ r: OpaquePointer!, _ data: UnsafePointer<UInt8>!, _ len: Int, _ outNew: UnsafeMutablePointer<Int>!
) -> luigi_status {
    guarded {
        let outNew = try required(outNew, "out_new")
        let target = try replica(r)
        let updates = try Update.decodeBatch(try bytes(data, len, "data"))
        outNew.pointee = updates.reduce(0) { $0 + (target.apply($1) ? 1 : 0) }
    }
}

// MARK: - Updates

@c @implementation public func luigi_update_free(_ u: OpaquePointer!) { handles.remove(u, .update) }

@c @implementation public func luigi_update_origin(_ u: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_origin") { try update(u).origin }
}

@c @implementation public func luigi_update_seq(_ u: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_seq") { try update(u).seq }
}

@c @implementation public func luigi_update_clock(_ u: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    output(out, "out") { newClock(try update(u).clock) }
}

@c @implementation public func luigi_update_op_count(_ u: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!)
    -> luigi_status
{
    output(out, "out_count") { try update(u).ops.count }
}

@c @implementation public func luigi_update_encode(_ u: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!)
    -> luigi_status
{
    guarded { try fill(try required(out, "out"), with: try update(u).encoded()) }
}

@c @implementation public func luigi_update_decode(
    _ data: UnsafePointer<UInt8>!, _ len: Int, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    output(out, "out") { handles.insert(UpdateBox(try Update(decoding: try bytes(data, len, "data"))), .update) }
}

@c @implementation public func luigi_update_list_new(_ out: UnsafeMutablePointer<OpaquePointer?>!) -> luigi_status {
    guarded { try required(out, "out").pointee = handles.insert(UpdateListBox([]), .updateList) }
}

@c @implementation public func luigi_update_list_free(_ l: OpaquePointer!) { handles.remove(l, .updateList) }

@c @implementation public func luigi_update_list_len(_ l: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!)
    -> luigi_status
{
    output(out, "out_len") { try updateList(l).value.count }
}

@c @implementation public func luigi_update_list_get(
    _ l: OpaquePointer!, _ index: Int, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let list = try updateList(l).value
        guard index >= 0 && index < list.count else {
            throw ABIError.outOfRange("index \(index) is outside a list of \(list.count) updates")
        }
        out.pointee = handles.insert(UpdateBox(list[index]), .update)
    }
}

@c @implementation public func luigi_update_list_encode(
    _ l: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded { try fill(try required(out, "out"), with: Update.encodeBatch(try updateList(l).value)) }
}

@c @implementation public func luigi_update_list_decode(
    _ data: UnsafePointer<UInt8>!, _ len: Int, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let updates = try Update.decodeBatch(try bytes(data, len, "data"))
        out.pointee = handles.insert(UpdateListBox(updates), .updateList)
    }
}

@c @implementation public func luigi_update_list_push(_ l: OpaquePointer!, _ u: OpaquePointer!) -> luigi_status {
    guarded {
        let list = try updateList(l)
        list.value.append(try update(u))
    }
}
