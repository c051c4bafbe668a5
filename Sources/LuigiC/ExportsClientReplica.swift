import CLuigi
import LuigiCore
import LuigiClient
import LuigiWire

// Replica groups and membership through the TCP client; luigi_ops is the
// caller's list of a transaction's ops.

/// A transaction's ops before they are sent, with each key's type so a
/// second type on one key is refused at once (as a luigi_txn refuses it).
final class OpList {
    var ops: [AlgebraicOp] = []
    var kinds: [String: Kind] = [:]

    func append(_ op: AlgebraicOp, _ kind: Kind) throws {
        try ClientRequest.checkKey(op.key)
        guard ops.count < AlgebraicLimits.maxOps else {
            throw ABIError.invalidArgument("a transaction holds at most \(AlgebraicLimits.maxOps) ops")
        }
        if let known = kinds[op.key], known != kind {
            throw LuigiError.typeConflict("key '\(op.key)' is a \(known) in this transaction, not a \(kind)")
        }
        kinds[op.key] = kind
        ops.append(op)
    }
}

private func opList(_ h: OpaquePointer?) throws -> OpList { try handles.get(h, .ops, as: OpList.self) }

private func number(_ d: Double) throws -> Number { try Number.checked(d) }

private func replicaGroup(_ g: UInt64) throws -> UInt64 {
    guard g > NodeReplicaGroups.base else {
        throw ABIError.invalidArgument("replica group ids start at LUIGI_REPLICA_GROUP_BASE + 1 (\(NodeReplicaGroups.base + 1)), got \(g)")
    }
    return g
}

/// luigi.h's LUIGI_REPLICA_GROUP_BASE (the node's NodeConfig.replicaGroupBase).
enum NodeReplicaGroups { static let base = UInt64(LUIGI_REPLICA_GROUP_BASE) }

private func addOp(_ o: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ keyLen: Int, _ kind: Kind, _ make: (String) throws -> AlgebraicOp)
    -> luigi_status
{
    guarded {
        let list = try opList(o)
        try list.append(try make(try utf8(key, keyLen, "key")), kind)
    }
}

@c @implementation public func luigi_ops_new(_ out: UnsafeMutablePointer<OpaquePointer?>!) -> luigi_status {
    guarded { try required(out, "out").pointee = handles.insert(OpList(), .ops) }
}

@c @implementation public func luigi_ops_free(_ o: OpaquePointer!) { handles.remove(o, .ops) }

@c @implementation public func luigi_ops_add(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ delta: Int64)
    -> luigi_status
{ addOp(o, key, keyLen, .counter) { .add(key: $0, delta: delta) } }

@c @implementation public func luigi_ops_max_int(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Int64)
    -> luigi_status
{ addOp(o, key, keyLen, .max) { .max(key: $0, value: .int(v)) } }

@c @implementation public func luigi_ops_max_float(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Double)
    -> luigi_status
{ addOp(o, key, keyLen, .max) { .max(key: $0, value: try number(v)) } }

@c @implementation public func luigi_ops_min_int(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Int64)
    -> luigi_status
{ addOp(o, key, keyLen, .min) { .min(key: $0, value: .int(v)) } }

@c @implementation public func luigi_ops_min_float(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Double)
    -> luigi_status
{ addOp(o, key, keyLen, .min) { .min(key: $0, value: try number(v)) } }

@c @implementation public func luigi_ops_union_int(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ e: Int64)
    -> luigi_status
{ addOp(o, key, keyLen, .set) { .union(key: $0, elements: [.int(e)]) } }

@c @implementation public func luigi_ops_union_str(
    _ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ e: UnsafePointer<CChar>!, _ eLen: Int
) -> luigi_status {
    addOp(o, key, keyLen, .set) { .union(key: $0, elements: [.string(try utf8(e, eLen, "element"))]) }
}

@c @implementation public func luigi_ops_union_bytes(
    _ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ e: UnsafePointer<UInt8>!, _ eLen: Int
) -> luigi_status {
    addOp(o, key, keyLen, .set) { .union(key: $0, elements: [.bytes(try bytes(e, eLen, "element"))]) }
}

@c @implementation public func luigi_ops_union_empty(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int)
    -> luigi_status
{ addOp(o, key, keyLen, .set) { .union(key: $0, elements: []) } }

@c @implementation public func luigi_ops_set_int(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Int64)
    -> luigi_status
{ addOp(o, key, keyLen, .register) { .set(key: $0, value: .int(v)) } }

@c @implementation public func luigi_ops_set_float(_ o: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ v: Double)
    -> luigi_status
{ addOp(o, key, keyLen, .register) { .set(key: $0, value: try number(v)) } }

@c @implementation public func luigi_ops_count(_ o: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!) -> luigi_status {
    output(out, "out_count") { try opList(o).ops.count }
}

@c @implementation public func luigi_client_commit(
    _ c: OpaquePointer!, _ g: UInt64, _ o: OpaquePointer!, _ timeoutMs: UInt32, _ outOrigin: UnsafeMutablePointer<UInt64>!,
    _ outSeq: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    guarded {
        let origin = try required(outOrigin, "out_origin"), seq = try required(outSeq, "out_seq")
        let dot = try client(c).commit(try opList(o).ops, group: try replicaGroup(g), timeoutMillis: try timeout(timeoutMs))
        origin.pointee = dot.origin
        seq.pointee = dot.seq
    }
}

@c @implementation public func luigi_client_coordinate(_ c: OpaquePointer!, _ g: UInt64, _ o: OpaquePointer!, _ timeoutMs: UInt32)
    -> luigi_status
{
    guarded { try client(c).coordinate(try opList(o).ops, group: try replicaGroup(g), timeoutMillis: try timeout(timeoutMs)) }
}

@c @implementation public func luigi_client_value(
    _ c: OpaquePointer!, _ g: UInt64, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ endpoint: UnsafePointer<CChar>!,
    _ endpointLen: Int, _ timeoutMs: UInt32, _ out: UnsafeMutablePointer<luigi_value>!,
    _ outElements: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out"), elements = try required(outElements, "out_elements")
        let name = try utf8(key, keyLen, "key")
        let at: String? = endpoint == nil && endpointLen == 0 ? nil : try utf8(endpoint, endpointLen, "endpoint")
        let value = try client(c).value(name, group: try replicaGroup(g), endpoint: at, timeoutMillis: try timeout(timeoutMs))
        if case .set(let members)? = value { try fill(elements, with: elementBytes(members)) } else { try fill(elements, with: []) }
        out.pointee = cValue(value)
    }
}

@c @implementation public func luigi_client_add_member(
    _ c: OpaquePointer!, _ g: UInt64, _ id: UInt64, _ address: UnsafePointer<CChar>!, _ addressLen: Int, _ timeoutMs: UInt32
) -> luigi_status {
    guarded {
        try client(c).addMember(
            id, address: try utf8(address, addressLen, "address"), group: g == 0 ? nil : g, timeoutMillis: try timeout(timeoutMs))
    }
}

@c @implementation public func luigi_client_remove_member(_ c: OpaquePointer!, _ g: UInt64, _ id: UInt64, _ timeoutMs: UInt32)
    -> luigi_status
{
    guarded { try client(c).removeMember(id, group: g == 0 ? nil : g, timeoutMillis: try timeout(timeoutMs)) }
}
