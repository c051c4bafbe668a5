import CLuigi
import LuigiCore
import LuigiClient

// Sharded (watermark) transactions through the TCP client. The ops and the
// reads use the simulated sharded cluster's conversions (wmOps, wmReads).

@c @implementation public func luigi_client_transact(
    _ c: OpaquePointer!, _ ops: UnsafePointer<luigi_wm_op>!, _ count: Int, _ timeoutMs: UInt32,
    _ outOutcome: UnsafeMutablePointer<UInt32>!, _ outTs: UnsafeMutablePointer<UInt64>!,
    _ outReads: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outOutcome = try required(outOutcome, "out_outcome")
        let outTs = try required(outTs, "out_ts")
        let outReads = try required(outReads, "out_reads")
        let client = try client(c)
        let parts = try wmOps(ops, count)
        let done = try client.transact(parts, timeoutMillis: try timeout(timeoutMs))
        var w = ByteWriter()
        w.wmReads(done.reads)
        try fill(outReads, with: w.bytes)
        outTs.pointee = done.ts
        outOutcome.pointee = UInt32(done.outcome == .committed ? LUIGI_WM_COMMITTED : LUIGI_WM_ABORTED)
    }
}
