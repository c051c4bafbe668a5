import CLuigi
import LuigiBase
import LuigiClient
import LuigiWire

// The TCP client of a luigi-node cluster (LuigiClient: blocking sockets, no
// event loop, so libluigi.so carries no networking runtime).

func client(_ h: OpaquePointer?) throws -> Client { try handles.get(h, .client, as: Client.self) }

private func group(_ g: UInt64) -> UInt64? { g == 0 ? nil : g }

/// A call's timeout_ms: 0 takes the client's default.
func timeout(_ ms: UInt32) throws -> Int? {
    guard ms != 0 else { return nil }
    guard ms <= ClientLimits.maxTimeoutMillis else {
        throw ABIError.invalidArgument("timeout_ms \(ms) is above \(ClientLimits.maxTimeoutMillis)")
    }
    return Int(ms)
}

@c @implementation public func luigi_client_new(
    _ endpoints: UnsafePointer<CChar>!, _ endpointsLen: Int, _ options: UnsafePointer<luigi_client_options>!,
    _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        try checkVersion(o.version, LUIGI_CLIENT_OPTIONS_VERSION, "LUIGI_CLIENT_OPTIONS_VERSION")
        // Empty entries stay, so "a:1,,b:2" is refused rather than read as two endpoints.
        let list = try utf8(endpoints, endpointsLen, "endpoints").split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0.trimmingPrefix(" ")) }
        let credentials = try ClusterCredentials(
            clusterId: try utf8(o.cluster_id, o.cluster_id_len, "cluster_id"),
            secret: try bytes(o.secret, o.secret_len, "secret"))
        var settings = Client.Options()
        if let ms = try timeout(o.timeout_ms) { settings.timeoutMillis = ms }
        if o.group != 0 { settings.group = o.group }
        out.pointee = handles.insert(try Client(endpoints: list, credentials: credentials, options: settings), .client)
    }
}

@c @implementation public func luigi_client_free(_ c: OpaquePointer!) { handles.remove(c, .client) }

@c @implementation public func luigi_client_put(
    _ c: OpaquePointer!, _ g: UInt64, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ value: UnsafePointer<UInt8>!,
    _ valueLen: Int, _ timeoutMs: UInt32
) -> luigi_status {
    guarded {
        let key = try utf8(key, keyLen, "key"), value = try bytes(value, valueLen, "value")
        try client(c).put(key, value, group: group(g), timeoutMillis: try timeout(timeoutMs))
    }
}

@c @implementation public func luigi_client_get(
    _ c: OpaquePointer!, _ g: UInt64, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ timeoutMs: UInt32,
    _ outFound: UnsafeMutablePointer<Int32>!, _ outValue: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let found = try required(outFound, "out_found"), out = try required(outValue, "out_value")
        let value = try client(c).get(try utf8(key, keyLen, "key"), group: group(g), timeoutMillis: try timeout(timeoutMs))
        try fill(out, with: value ?? [])
        found.pointee = value == nil ? 0 : 1
    }
}

@c @implementation public func luigi_client_delete(
    _ c: OpaquePointer!, _ g: UInt64, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ timeoutMs: UInt32,
    _ outExisted: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    output(outExisted, "out_existed") {
        try client(c).delete(try utf8(key, keyLen, "key"), group: group(g), timeoutMillis: try timeout(timeoutMs)) ? 1 : 0
    }
}

@c @implementation public func luigi_client_cas(
    _ c: OpaquePointer!, _ g: UInt64, _ key: UnsafePointer<CChar>!, _ keyLen: Int, _ expected: UnsafePointer<UInt8>!,
    _ expectedLen: Int, _ new: UnsafePointer<UInt8>!, _ newLen: Int, _ timeoutMs: UInt32,
    _ outSwapped: UnsafeMutablePointer<Int32>!
) -> luigi_status {
    output(outSwapped, "out_swapped") {
        let key = try utf8(key, keyLen, "key")
        let expectedValue: [UInt8]? = expected == nil && expectedLen == 0 ? nil : try bytes(expected, expectedLen, "expected")
        let newValue = try bytes(new, newLen, "new_value")
        return try client(c).cas(key, expected: expectedValue, new: newValue, group: group(g), timeoutMillis: try timeout(timeoutMs))
            ? 1 : 0
    }
}

@c @implementation public func luigi_client_status(
    _ c: OpaquePointer!, _ timeoutMs: UInt32, _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out_json")
        try fill(out, with: Array(try client(c).status(timeoutMillis: try timeout(timeoutMs)).utf8))
    }
}
