import CLuigi
import LuigiCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Version, errors and buffers.

@c @implementation public func luigi_version_number() -> UInt32 { UInt32(LUIGI_VERSION_MAJOR * 10000 + LUIGI_VERSION_MINOR * 100 + LUIGI_VERSION_PATCH) }

@c @implementation public func luigi_abi_version() -> UInt32 { UInt32(LUIGI_ABI_VERSION) }

@c @implementation public func luigi_version_string() -> UnsafePointer<CChar>! { staticCString("0.1.0\0") }

@c @implementation public func luigi_last_error_message() -> UnsafePointer<CChar>! { lastError() }

@c @implementation public func luigi_status_name(_ status: luigi_status) -> UnsafePointer<CChar>! {
    switch status {
    case LUIGI_OK: return staticCString("LUIGI_OK\0")
    case LUIGI_ERR_INVALID_ARGUMENT: return staticCString("LUIGI_ERR_INVALID_ARGUMENT\0")
    case LUIGI_ERR_INVALID_HANDLE: return staticCString("LUIGI_ERR_INVALID_HANDLE\0")
    case LUIGI_ERR_DECODE: return staticCString("LUIGI_ERR_DECODE\0")
    case LUIGI_ERR_NOT_ALGEBRAIC: return staticCString("LUIGI_ERR_NOT_ALGEBRAIC\0")
    case LUIGI_ERR_TYPE_CONFLICT: return staticCString("LUIGI_ERR_TYPE_CONFLICT\0")
    case LUIGI_ERR_OVERFLOW: return staticCString("LUIGI_ERR_OVERFLOW\0")
    case LUIGI_ERR_STATE: return staticCString("LUIGI_ERR_STATE\0")
    case LUIGI_ERR_BUFFER_TOO_SMALL: return staticCString("LUIGI_ERR_BUFFER_TOO_SMALL\0")
    case LUIGI_ERR_NOT_CONVERGED: return staticCString("LUIGI_ERR_NOT_CONVERGED\0")
    case LUIGI_ERR_OUT_OF_RANGE: return staticCString("LUIGI_ERR_OUT_OF_RANGE\0")
    case LUIGI_ERR_IO: return staticCString("LUIGI_ERR_IO\0")
    case LUIGI_ERR_TIMEOUT: return staticCString("LUIGI_ERR_TIMEOUT\0")
    case LUIGI_ERR_CONFLICT: return staticCString("LUIGI_ERR_CONFLICT\0")
    case LUIGI_ERR_AUTH: return staticCString("LUIGI_ERR_AUTH\0")
    case LUIGI_ERR_INTERNAL: return staticCString("LUIGI_ERR_INTERNAL\0")
    default: return staticCString("LUIGI_UNKNOWN_STATUS\0")
    }
}

@c @implementation public func luigi_buffer_free(_ buffer: UnsafeMutablePointer<luigi_buffer>!) {
    guard let buffer else { return }
    free(buffer.pointee.data)
    buffer.pointee = luigi_buffer(data: nil, len: 0)
}

// MARK: - Vector clocks

typealias ClockBox = Box<VectorClock>

func clock(_ h: OpaquePointer?) throws -> ClockBox { try handles.get(h, .clock, as: ClockBox.self) }

func newClock(_ value: VectorClock) -> OpaquePointer { handles.insert(ClockBox(value), .clock) }

@c @implementation public func luigi_clock_new(_ out: UnsafeMutablePointer<OpaquePointer?>!) -> luigi_status {
    guarded { try required(out, "out").pointee = newClock(VectorClock()) }
}

@c @implementation public func luigi_clock_free(_ clock: OpaquePointer!) { handles.remove(clock, .clock) }

@c @implementation public func luigi_clock_copy(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    output(out, "out") { newClock(try clock(c).value) }
}

@c @implementation public func luigi_clock_tick(
    _ c: OpaquePointer!, _ node: UInt64, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_counter") { try clock(c).value.tick(node) }
}

@c @implementation public func luigi_clock_get(
    _ c: OpaquePointer!, _ node: UInt64, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_counter") { try clock(c).value[node] }
}

@c @implementation public func luigi_clock_set(_ c: OpaquePointer!, _ node: UInt64, _ counter: UInt64) -> luigi_status {
    guarded { try clock(c).value[node] = counter }
}

@c @implementation public func luigi_clock_merge(_ c: OpaquePointer!, _ other: OpaquePointer!) -> luigi_status {
    guarded {
        let target = try clock(c)
        target.value.merge(try clock(other).value)
    }
}

@c @implementation public func luigi_clock_compare(
    _ a: OpaquePointer!, _ b: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_causal_order>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_order")
        let order = try clock(a).value.compare(try clock(b).value)
        out.pointee = luigi_causal_order(rawValue: UInt32(order.rawValue))
    }
}

@c @implementation public func luigi_clock_len(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<Int>!) -> luigi_status {
    output(out, "out_len") { try clock(c).value.count }
}

@c @implementation public func luigi_clock_entries(
    _ c: OpaquePointer!, _ nodes: UnsafeMutablePointer<UInt64>!, _ counters: UnsafeMutablePointer<UInt64>!,
    _ capacity: Int, _ outCount: UnsafeMutablePointer<Int>!
) -> luigi_status {
    guarded {
        let outCount = try required(outCount, "out_count")
        let entries = try clock(c).value.sortedEntries
        if capacity > 0 && (nodes == nil || counters == nil) {
            throw ABIError.invalidArgument("nodes and counters must not be NULL when capacity > 0")
        }
        guard capacity >= entries.count else {
            outCount.pointee = entries.count
            throw ABIError.bufferTooSmall("clock has \(entries.count) entries, capacity is \(capacity)")
        }
        for (i, e) in entries.enumerated() {
            nodes[i] = e.node
            counters[i] = e.counter
        }
        outCount.pointee = entries.count
    }
}

@c @implementation public func luigi_clock_encode(_ c: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_buffer>!)
    -> luigi_status
{
    guarded { try fill(try required(out, "out"), with: try clock(c).value.encoded()) }
}

@c @implementation public func luigi_clock_decode(
    _ data: UnsafePointer<UInt8>!, _ len: Int, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    output(out, "out") { newClock(try VectorClock(decoding: try bytes(data, len, "data"))) }
}
