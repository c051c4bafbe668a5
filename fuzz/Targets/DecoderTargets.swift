import LuigiCore
import LuigiStorage

// MARK: - update: Update(decoding:), then applied to a replica

/// Input: the body of an "LUP" v1 update (re-sealed here). A decoded update
/// must re-encode to the same bytes (the decoder accepts only canonical
/// input), and applying it to a replica must not trap.
public func fuzzUpdate(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.update, data)
    guard let update = try? Update(decoding: bytes) else { return }
    fuzzCheck(update.encoded() == bytes, "update: a non-canonical encoding decoded")
    let replica = Replica(nodeID: 1)
    exercise(replica, [update])
}

// MARK: - update_list: Update.decodeBatch, then applied in two orders

/// Input: the body of an "LUL" v1 update batch (re-sealed here).
public func fuzzUpdateList(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.updateBatch, data)
    guard let updates = try? Update.decodeBatch(bytes) else { return }
    fuzzCheck(Update.encodeBatch(updates) == bytes, "update_list: a non-canonical encoding decoded")
    exercise(Replica(nodeID: 1), updates)
    exercise(Replica(nodeID: 2), updates.reversed())
}

/// Applies updates to a replica, then reads everything a peer or user could.
func exercise(_ replica: Replica, _ updates: [Update]) {
    for u in updates {
        _ = replica.apply(u)
        _ = replica.apply(u)  // redelivery is dropped
    }
    for key in replica.keys {
        _ = replica.value(key)
        _ = replica.kind(of: key)
    }
    _ = replica.conflicts
    _ = replica.pendingCount
    _ = replica.appliedCount
    _ = replica.clock.encoded()
    let delta = replica.delta(since: VectorClock())
    _ = Update.encodeBatch(delta)
    if let first = updates.first { _ = replica.delta(since: first.clock) }
}

// MARK: - clock: VectorClock(decoding:)

/// Input: the body of an "LVC" v1 clock (re-sealed here).
public func fuzzClock(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.clock, data)
    guard let clock = try? VectorClock(decoding: bytes) else { return }
    fuzzCheck(clock.encoded() == bytes, "clock: a non-canonical encoding decoded")
    var other = VectorClock([1: 3, 7: 1])
    _ = clock.compare(other)
    _ = other.compare(clock)
    _ = clock.total
    _ = clock.description
    other.merge(clock)
    fuzzCheck(clock.isDominated(by: other), "clock: merge does not dominate its input")
    var ticked = clock
    for e in clock.sortedEntries.prefix(4) { _ = try? ticked.tick(e.node) }
    _ = try? ticked.tick(1)
}

// MARK: - raft_message: RaftMessage(decoding:)

/// Input: the body of an "LRM" v1 Raft message (re-sealed here). What
/// decodes must re-encode to something that decodes to the same message.
public func fuzzRaftMessage(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.raftMessage, data)
    guard let m = try? RaftMessage(decoding: bytes) else { return }
    let again = try? RaftMessage(decoding: m.encoded())
    fuzzCheck(again == m, "raft_message: re-encoding a decoded message does not decode to it")
    for e in m.entries {
        switch e.kind {
        case .confChange: _ = try? ConfChange(decoding: e.data)
        case .normal: _ = try? KVStateMachine.Command(decoding: e.data)
        }
    }
    if let s = m.snapshot { _ = try? KVStateMachine().restore(s.data) }
}

// MARK: - snapshot: the snapshot file encoding, loaded by DurableRaftStorage

/// Input: the body of an "LSN" v1 snapshot file (`kind u8 | walSeq | Snapshot
/// encoding`, re-sealed here). The bytes are parsed with the public
/// `Snapshot.read`, then stored as the only snapshot file of an in-memory
/// directory (named after the index and term they hold) that
/// `DurableRaftStorage` opens and reads back; a snapshot that parses is also
/// sent to a follower as a snapshot message.
public func fuzzSnapshot(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.snapshotFile, data)
    var parsed: Snapshot? = nil
    if var r = try? ByteReader.sealed(bytes, magic: FuzzMagic.snapshotFile, what: "snapshot file"),
        (try? r.u8()) != nil, (try? r.varint()) != nil,
        let s = try? Snapshot.read(from: &r)
    {
        parsed = s
        var w = ByteWriter()
        s.write(to: &w)
        var back = ByteReader(w.bytes)
        fuzzCheck((try? Snapshot.read(from: &back)) == s, "snapshot: write/read does not round-trip")
    }
    let name = SnapshotFileName.of(index: parsed?.metadata.index ?? 0, term: parsed?.metadata.term ?? 0)
    let fs = MemorySyscalls(directories: [FuzzDisk.directory], files: [FuzzDisk.directory + "/" + name: bytes])
    if let storage = try? DurableRaftStorage(directory: FuzzDisk.directory, syscalls: fs) {
        readBack(storage)
        storage.close()
    }
    if let parsed {
        var m = RaftMessage(kind: .snapshot, to: 1, from: 2, term: 1)
        m.snapshot = parsed
        let harness = RaftHarness(role: .follower, flags: 0x40)
        harness.step(m)
    }
}

enum SnapshotFileName {
    static func of(index: UInt64, term: UInt64) -> String {
        "snap-\(hex16(term))-\(hex16(index)).snap"
    }

    static func hex16(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// Reads every piece of state a `RaftStorage` offers (and nothing may trap).
func readBack(_ storage: RaftStorage) {
    _ = try? storage.initialState()
    _ = try? storage.snapshot()
    guard let first = try? storage.firstIndex(), let last = try? storage.lastIndex() else { return }
    if first > 0 { _ = try? storage.term(first - 1) }
    if last >= first && last < UInt64.max {
        _ = try? storage.entries(first, last + 1, maxBytes: Int.max)
        _ = try? storage.entries(first, last + 1, maxBytes: 1)
    }
    var i = first
    var n = 0
    while i <= last && n < 64 {
        _ = try? storage.term(i)
        if i == UInt64.max { break }
        i += 1
        n += 1
    }
}
