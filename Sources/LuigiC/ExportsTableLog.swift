import CLuigi
import LuigiCore
import LuigiSimulation

// The table log (versioned table metadata) on a simulated Raft cluster.

private func tableLog(_ h: OpaquePointer?) throws -> TableLog { try TableLog(try raftCluster(h)) }

private func count(_ n: Int, _ what: String) throws -> Int {
    guard n >= 0, n <= TableLimits.maxFilesPerCommit else {
        throw ABIError.invalidArgument("\(what) must be at most \(TableLimits.maxFilesPerCommit), got \(UInt(bitPattern: n))")
    }
    return n
}

private func optionalBytes(_ p: UnsafePointer<UInt8>?, _ len: Int, _ name: String) throws -> [UInt8]? {
    guard let p else {
        guard len == 0 else { throw ABIError.invalidArgument("\(name) is NULL but its length is \(len)") }
        return nil
    }
    try checkLength(len, name)
    return Array(UnsafeBufferPointer(start: p, count: len))
}

private func dataFile(_ f: luigi_meta_file) throws -> DataFile {
    DataFile(
        path: try utf8(f.path, f.path_len, "path"), rows: f.rows, size: f.size,
        partition: try utf8(f.partition, f.partition_len, "partition"),
        minStats: try optionalBytes(f.min_stats, f.min_stats_len, "min_stats"),
        maxStats: try optionalBytes(f.max_stats, f.max_stats_len, "max_stats"))
}

/// A caller's request, every pointer and count checked (its shape is
/// checked by the client before anything is proposed).
private func commitRequest(_ r: luigi_meta_commit_request) throws -> CommitRequest {
    try checkVersion(r.version, LUIGI_META_COMMIT_VERSION, "LUIGI_META_COMMIT_VERSION")
    let addCount = try count(r.add_count, "add_count"), removeCount = try count(r.remove_count, "remove_count")
    guard addCount == 0 || r.adds != nil else { throw ABIError.invalidArgument("adds is NULL but add_count is \(addCount)") }
    guard removeCount == 0 || (r.removes != nil && r.remove_lens != nil) else {
        throw ABIError.invalidArgument("removes or remove_lens is NULL but remove_count is \(removeCount)")
    }
    let adds = try (0..<addCount).map { try dataFile(r.adds![$0]) }
    let removes = try (0..<removeCount).map { try utf8(r.removes![$0], r.remove_lens![$0], "removes[\($0)]") }
    return CommitRequest(
        table: try utf8(r.table, r.table_len, "table"), baseVersion: r.base_version,
        txnId: try utf8(r.txn_id, r.txn_id_len, "txn_id"), adds: adds, removes: removes)
}

@c @implementation public func luigi_meta_cluster_new(
    _ options: UnsafePointer<luigi_raft_cluster_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let cluster = try RaftCluster(TableLog.clusterOptions(try raftClusterOptions(options)))
        out.pointee = handles.insert(cluster, .raftCluster)
    }
}

@c @implementation public func luigi_meta_create_table(
    _ c: OpaquePointer!, _ name: UnsafePointer<CChar>!, _ nameLen: Int, _ schema: UnsafePointer<UInt8>!, _ schemaLen: Int,
    _ retain: UInt64, _ timeout: UInt64
) -> luigi_status {
    guarded {
        let name = try utf8(name, nameLen, "name"), schema = try bytes(schema, schemaLen, "schema")
        try tableLog(c).createTable(name, schema: schema, retain: retain, timeout: try ticks(timeout))
    }
}

@c @implementation public func luigi_meta_commit(
    _ c: OpaquePointer!, _ request: UnsafePointer<luigi_meta_commit_request>!, _ timeout: UInt64,
    _ outVersion: UnsafeMutablePointer<UInt64>!, _ outLatest: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    guarded {
        let out = try required(outVersion, "out_version")
        guard let request else { throw ABIError.invalidArgument("request is NULL") }
        let log = try tableLog(c)
        do {
            out.pointee = try log.commit(try commitRequest(request.pointee), timeout: try ticks(timeout))
        } catch LuigiError.conflict(let message, let latest) {
            outLatest?.pointee = latest
            throw LuigiError.conflict(message, current: latest)
        }
    }
}

@c @implementation public func luigi_meta_commit_many(
    _ c: OpaquePointer!, _ requests: UnsafePointer<luigi_meta_commit_request>!, _ n: Int, _ timeout: UInt64,
    _ outOutcomes: UnsafeMutablePointer<luigi_meta_outcome>!
) -> luigi_status {
    guarded {
        let out = try required(outOutcomes, "out_outcomes")
        guard n >= 0, n <= 65_536 else { throw ABIError.invalidArgument("count must be at most 65536, got \(UInt(bitPattern: n))") }
        guard n == 0 || requests != nil else { throw ABIError.invalidArgument("requests is NULL but count is \(n)") }
        let log = try tableLog(c)
        let parsed = try (0..<n).map { try commitRequest(requests[$0]) }
        let outcomes = try log.commitAll(parsed, timeout: try ticks(timeout))
        for (i, o) in outcomes.enumerated() {
            switch o {
            case .committed(let v, let duplicate)?:
                out[i] = luigi_meta_outcome(status: LUIGI_OK, duplicate: duplicate ? 1 : 0, version: v, latest: 0)
            case .conflict(let latest, _)?:
                out[i] = luigi_meta_outcome(status: LUIGI_ERR_CONFLICT, duplicate: 0, version: 0, latest: latest)
            case .invalid?:
                out[i] = luigi_meta_outcome(status: LUIGI_ERR_INVALID_ARGUMENT, duplicate: 0, version: 0, latest: 0)
            case nil:
                out[i] = luigi_meta_outcome(status: LUIGI_ERR_TIMEOUT, duplicate: 0, version: 0, latest: 0)
            }
        }
    }
}

@c @implementation public func luigi_meta_latest(
    _ c: OpaquePointer!, _ table: UnsafePointer<CChar>!, _ tableLen: Int, _ timeout: UInt64,
    _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_version") {
        try tableLog(c).latest(try utf8(table, tableLen, "table"), timeout: try ticks(timeout))
    }
}

@c @implementation public func luigi_meta_files(
    _ c: OpaquePointer!, _ table: UnsafePointer<CChar>!, _ tableLen: Int, _ version: UInt64, _ timeout: UInt64,
    _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let files = try tableLog(c).files(
            try utf8(table, tableLen, "table"), at: version == UInt64.max ? nil : version, timeout: try ticks(timeout))
        var w = ByteWriter()
        w.u32le(UInt32(files.count))
        for f in files {
            lengthPrefixed(&w, Array(f.path.utf8))
            w.u64le(f.rows)
            w.u64le(f.size)
            lengthPrefixed(&w, Array(f.partition.utf8))
            for stats in [f.minStats, f.maxStats] {
                w.u8(stats == nil ? 0 : 1)
                lengthPrefixed(&w, stats ?? [])
            }
        }
        try fill(out, with: w.bytes)
    }
}

@c @implementation public func luigi_meta_versions(
    _ c: OpaquePointer!, _ table: UnsafePointer<CChar>!, _ tableLen: Int, _ timeout: UInt64,
    _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        let versions = try tableLog(c).versions(try utf8(table, tableLen, "table"), timeout: try ticks(timeout))
        var w = ByteWriter()
        w.u32le(UInt32(versions.count))
        for v in versions {
            w.u64le(v.version)
            w.u32le(UInt32(v.added))
            w.u32le(UInt32(v.removed))
            lengthPrefixed(&w, Array(v.txnId.utf8))
        }
        try fill(out, with: w.bytes)
    }
}

@c @implementation public func luigi_meta_schema(
    _ c: OpaquePointer!, _ table: UnsafePointer<CChar>!, _ tableLen: Int, _ timeout: UInt64,
    _ out: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        try fill(out, with: try tableLog(c).schema(try utf8(table, tableLen, "table"), timeout: try ticks(timeout)))
    }
}

/// u32 LE length, then the bytes (every length here is bounded well below 2^32).
private func lengthPrefixed(_ w: inout ByteWriter, _ bytes: [UInt8]) {
    w.u32le(UInt32(bytes.count))
    w.raw(bytes)
}
