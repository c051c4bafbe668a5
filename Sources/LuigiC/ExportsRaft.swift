import CLuigi
import LuigiCore
import LuigiStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// One Raft node for a caller with its own transport.

func raft(_ h: OpaquePointer?) throws -> RaftDriver { try handles.get(h, .raft, as: RaftDriver.self) }

/// A batch handed out through the ABI and the driver it came from, so that
/// freeing it un-advanced gives that driver its batch slot back.
final class ReadyHandle {
    let value: Ready
    weak var driver: RaftDriver?

    init(_ value: Ready, from driver: RaftDriver) {
        self.value = value
        self.driver = driver
    }
}

func raftReady(_ h: OpaquePointer?) throws -> Ready { try handles.get(h, .raftReady, as: ReadyHandle.self).value }

private func flag(_ v: UInt32, _ name: String) throws -> Bool {
    guard v <= 1 else { throw ABIError.invalidArgument("\(name) must be 0 or 1, got \(v)") }
    return v == 1
}

@c @implementation public func luigi_raft_options_init(_ options: UnsafeMutablePointer<luigi_raft_options>!) {
    guard let options else { return }
    options.pointee = luigi_raft_options(
        version: UInt32(LUIGI_RAFT_OPTIONS_VERSION), election_tick: 10, heartbeat_tick: 1, pre_vote: 1,
        check_quorum: 1, max_inflight_messages: 256, max_size_per_message: 1 << 20, seed: 0, data_dir: nil)
}

@c @implementation public func luigi_raft_new(
    _ id: UInt64, _ voters: UnsafePointer<UInt64>!, _ voterCount: Int,
    _ options: UnsafePointer<luigi_raft_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    luigi_raft_new_in_group(0, id, voters, voterCount, options, out)
}

@c @implementation public func luigi_raft_new_in_group(
    _ group: UInt64, _ id: UInt64, _ voters: UnsafePointer<UInt64>!, _ voterCount: Int,
    _ options: UnsafePointer<luigi_raft_options>!, _ out: UnsafeMutablePointer<OpaquePointer?>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard let o = options?.pointee else { throw ABIError.invalidArgument("options is NULL") }
        guard o.version == UInt32(LUIGI_RAFT_OPTIONS_VERSION) else {
            throw ABIError.invalidArgument("options.version is \(o.version); this library supports \(LUIGI_RAFT_OPTIONS_VERSION)")
        }
        guard voterCount >= 0, voterCount <= 1_000 else { throw ABIError.invalidArgument("voter_count must be in 0...1000") }
        if voterCount > 0 && voters == nil { throw ABIError.invalidArgument("voters is NULL but voter_count is \(voterCount)") }
        let members = voterCount == 0 ? [] : Array(UnsafeBufferPointer(start: voters, count: voterCount))
        guard Set(members).count == members.count else { throw ABIError.invalidArgument("voters has duplicates") }
        guard o.max_size_per_message <= UInt64(Int32.max), o.election_tick <= 1_000_000,
            o.max_inflight_messages <= 1_000_000
        else { throw ABIError.invalidArgument("an option is out of range") }
        var config = RaftConfig(id: id)
        config.group = group
        config.electionTick = Int(o.election_tick)
        config.heartbeatTick = Int(o.heartbeat_tick)
        config.preVote = try flag(o.pre_vote, "pre_vote")
        config.checkQuorum = try flag(o.check_quorum, "check_quorum")
        config.maxInflightMessages = Int(o.max_inflight_messages)
        config.maxSizePerMessage = Int(o.max_size_per_message)
        config.seed = o.seed
        let storage: RaftStorage
        if let dir = o.data_dir {
            storage = try DurableRaftStorage(directory: try utf8(dir, strlen(dir), "data_dir"), conf: ConfState(voters: members))
        } else {
            storage = MemoryRaftStorage()
        }
        out.pointee = handles.insert(try RaftDriver(config: config, storage: storage, voters: members), .raft)
    }
}

@c @implementation public func luigi_raft_free(_ r: OpaquePointer!) { handles.remove(r, .raft) }

@c @implementation public func luigi_raft_tick(_ r: OpaquePointer!) -> luigi_status {
    guarded { try raft(r).node.tick() }
}

@c @implementation public func luigi_raft_step(_ r: OpaquePointer!, _ message: UnsafePointer<UInt8>!, _ len: Int)
    -> luigi_status
{
    guarded {
        let driver = try raft(r)
        try driver.node.step(try RaftMessage(decoding: try bytes(message, len, "message")))
    }
}

@c @implementation public func luigi_raft_propose(
    _ r: OpaquePointer!, _ data: UnsafePointer<UInt8>!, _ len: Int, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_index") { try raft(r).node.propose(try bytes(data, len, "data")) }
}

@c @implementation public func luigi_raft_campaign(_ r: OpaquePointer!) -> luigi_status {
    guarded { try raft(r).node.campaign() }
}

@c @implementation public func luigi_raft_propose_conf_change(
    _ r: OpaquePointer!, _ kind: UInt32, _ node: UInt64, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_index") {
        guard kind <= UInt32(UInt8.max), let k = ConfChangeKind(rawValue: UInt8(kind)) else {
            throw ABIError.invalidArgument("unknown conf change kind \(kind)")
        }
        guard node != 0 else { throw ABIError.invalidArgument("node id 0 is reserved") }
        return try raft(r).node.proposeConfChange(ConfChange(k, node: node))
    }
}

@c @implementation public func luigi_raft_transfer_leader(_ r: OpaquePointer!, _ to: UInt64) -> luigi_status {
    guarded { try raft(r).node.transferLeadership(to: to) }
}

@c @implementation public func luigi_raft_read_index(_ r: OpaquePointer!, _ context: UnsafePointer<UInt8>!, _ len: Int)
    -> luigi_status
{
    guarded {
        let driver = try raft(r)
        try driver.node.readIndex(context: try bytes(context, len, "context"))
    }
}

@c @implementation public func luigi_raft_compact(
    _ r: OpaquePointer!, _ index: UInt64, _ snapshot: UnsafePointer<UInt8>!, _ len: Int
) -> luigi_status {
    guarded {
        let driver = try raft(r)
        try driver.compact(to: index, snapshot: try bytes(snapshot, len, "snapshot"))
    }
}

@c @implementation public func luigi_raft_take_ready(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<OpaquePointer?>!)
    -> luigi_status
{
    output(out, "out") {
        let driver = try raft(r)
        return try driver.nextReady().map { handles.insert(ReadyHandle($0, from: driver), .raftReady) }
    }
}

@c @implementation public func luigi_raft_advance(_ r: OpaquePointer!, _ rd: OpaquePointer!) -> luigi_status {
    guarded {
        let driver = try raft(r)
        try driver.advance(try raftReady(rd))
    }
}

@c @implementation public func luigi_raft_ready_free(_ rd: OpaquePointer!) {
    if let h = try? handles.get(rd, .raftReady, as: ReadyHandle.self) { h.driver?.discard(h.value) }
    handles.remove(rd, .raftReady)
}

@c @implementation public func luigi_raft_ready_counts(
    _ rd: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_raft_counts>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        try checkVersion(out.pointee.version, LUIGI_RAFT_COUNTS_VERSION, "LUIGI_RAFT_COUNTS_VERSION")
        let ready = try raftReady(rd)
        out.pointee = luigi_raft_counts(
            version: UInt32(LUIGI_RAFT_COUNTS_VERSION), messages: ready.messages.count, committed_entries: ready.committedEntries.count,
            read_states: ready.readStates.count, has_snapshot: ready.snapshot == nil ? 0 : 1)
    }
}

private func element<T>(_ items: [T], _ index: Int, _ what: String) throws -> T {
    guard index >= 0 && index < items.count else {
        throw ABIError.outOfRange("\(what) index \(index) is outside 0..<\(items.count)")
    }
    return items[index]
}

@c @implementation public func luigi_raft_ready_message(
    _ rd: OpaquePointer!, _ index: Int, _ outTo: UnsafeMutablePointer<UInt64>!,
    _ outBytes: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outTo = try required(outTo, "out_to"), outBytes = try required(outBytes, "out_bytes")
        let m = try element(try raftReady(rd).messages, index, "message")
        try fill(outBytes, with: m.encoded())
        outTo.pointee = m.to
    }
}

/// Writes one entry of `entries` through the caller's out pointers.
private func writeEntry(
    _ entries: (Ready) -> [RaftEntry], _ rd: OpaquePointer?, _ index: Int, _ outIndex: UnsafeMutablePointer<UInt64>?,
    _ outTerm: UnsafeMutablePointer<UInt64>?, _ outKind: UnsafeMutablePointer<UInt32>?,
    _ outData: UnsafeMutablePointer<luigi_buffer>?
) -> luigi_status {
    guarded {
        let outIndex = try required(outIndex, "out_index"), outTerm = try required(outTerm, "out_term")
        let outKind = try required(outKind, "out_kind"), outData = try required(outData, "out_data")
        let e = try element(entries(try raftReady(rd)), index, "entry")
        try fill(outData, with: e.data)
        outIndex.pointee = e.index
        outTerm.pointee = e.term
        outKind.pointee = UInt32(e.kind.rawValue)
    }
}

@c @implementation public func luigi_raft_ready_entry(
    _ rd: OpaquePointer!, _ index: Int, _ outIndex: UnsafeMutablePointer<UInt64>!,
    _ outTerm: UnsafeMutablePointer<UInt64>!, _ outKind: UnsafeMutablePointer<UInt32>!,
    _ outData: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    writeEntry(\.committedEntries, rd, index, outIndex, outTerm, outKind, outData)
}

@c @implementation public func luigi_raft_ready_persisted(
    _ rd: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_raft_persisted>!
) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        try checkVersion(out.pointee.version, LUIGI_RAFT_PERSISTED_VERSION, "LUIGI_RAFT_PERSISTED_VERSION")
        let ready = try raftReady(rd)
        let hs = ready.hardState
        out.pointee = luigi_raft_persisted(
            version: UInt32(LUIGI_RAFT_PERSISTED_VERSION), has_hard_state: hs == nil ? 0 : 1,
            term: hs?.term ?? 0, vote: hs?.vote ?? 0, commit: hs?.commit ?? 0, entries: ready.entries.count,
            must_sync: ready.mustSync ? 1 : 0)
    }
}

@c @implementation public func luigi_raft_ready_persisted_entry(
    _ rd: OpaquePointer!, _ index: Int, _ outIndex: UnsafeMutablePointer<UInt64>!,
    _ outTerm: UnsafeMutablePointer<UInt64>!, _ outKind: UnsafeMutablePointer<UInt32>!,
    _ outData: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    writeEntry(\.entries, rd, index, outIndex, outTerm, outKind, outData)
}

@c @implementation public func luigi_raft_ready_read_state(
    _ rd: OpaquePointer!, _ index: Int, _ outIndex: UnsafeMutablePointer<UInt64>!,
    _ outContext: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outIndex = try required(outIndex, "out_index"), outContext = try required(outContext, "out_context")
        let rs = try element(try raftReady(rd).readStates, index, "read state")
        try fill(outContext, with: rs.context)
        outIndex.pointee = rs.index
    }
}

@c @implementation public func luigi_raft_ready_snapshot(
    _ rd: OpaquePointer!, _ outIndex: UnsafeMutablePointer<UInt64>!, _ outTerm: UnsafeMutablePointer<UInt64>!,
    _ outData: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outIndex = try required(outIndex, "out_index"), outTerm = try required(outTerm, "out_term")
        let outData = try required(outData, "out_data")
        guard let snap = try raftReady(rd).snapshot else { throw LuigiError.state("this ready batch has no snapshot") }
        try fill(outData, with: snap.data)
        outIndex.pointee = snap.metadata.index
        outTerm.pointee = snap.metadata.term
    }
}

/// Writes a node's status into the caller's versioned struct.
func writeStatus(_ out: UnsafeMutablePointer<luigi_raft_status>?, _ status: () throws -> RaftStatus) -> luigi_status {
    guarded {
        let out = try required(out, "out")
        guard out.pointee.version == UInt32(LUIGI_RAFT_STATUS_VERSION) else {
            throw ABIError.invalidArgument("status.version must be LUIGI_RAFT_STATUS_VERSION (\(LUIGI_RAFT_STATUS_VERSION))")
        }
        let s = try status()
        out.pointee = luigi_raft_status(
            version: UInt32(LUIGI_RAFT_STATUS_VERSION), role: UInt32(s.role.rawValue), id: s.id, term: s.term,
            vote: s.vote, leader: s.leader, commit: s.commit, applied: s.applied, first_index: s.firstIndex,
            last_index: s.lastIndex, voters: UInt64(s.conf.voters.count), learners: UInt64(s.conf.learners.count))
    }
}

@c @implementation public func luigi_raft_get_status(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<luigi_raft_status>!)
    -> luigi_status
{
    writeStatus(out) { try raft(r).node.status }
}

// MARK: - State-machine plugins

/// A C vtable as a `RaftStateMachine`; callbacks run on the calling thread.
final class CStateMachine: RaftStateMachine {
    let table: luigi_state_machine

    init(_ table: luigi_state_machine) throws {
        guard table.version == UInt32(LUIGI_STATE_MACHINE_VERSION) else {
            throw ABIError.invalidArgument("machine.version must be LUIGI_STATE_MACHINE_VERSION (\(LUIGI_STATE_MACHINE_VERSION))")
        }
        guard table.apply != nil, table.snapshot != nil, table.restore != nil else {
            throw ABIError.invalidArgument("apply, snapshot and restore must all be set")
        }
        self.table = table
    }

    private func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else { throw LuigiError.state("state machine \(what) callback returned \(code)") }
    }

    func apply(_ entry: RaftEntry) throws -> [UInt8] {
        let code = entry.data.withUnsafeBufferPointer {
            table.apply!(table.user_data, entry.index, UInt32(entry.kind.rawValue), $0.baseAddress, $0.count)
        }
        try check(code, "apply (entry \(entry.index))")
        return []
    }

    func snapshot() throws -> [UInt8] {
        // nil once the callback wrote a length it cannot own.
        let sink = Box<[UInt8]?>([])
        let code = table.snapshot!(table.user_data, Unmanaged.passUnretained(sink).toOpaque()) { ctx, data, len in
            guard let ctx else { return }
            let sink = Unmanaged<Box<[UInt8]?>>.fromOpaque(ctx).takeUnretainedValue()
            guard (try? checkLength(len, "snapshot write")) != nil, len == 0 || data != nil else {
                sink.value = nil
                return
            }
            guard let data, len > 0 else { return }
            sink.value?.append(contentsOf: UnsafeBufferPointer(start: data, count: len))
        }
        try check(code, "snapshot")
        guard let bytes = sink.value else {
            throw ABIError.invalidArgument("the snapshot callback wrote a NULL pointer or a length above LUIGI_MAX_LENGTH")
        }
        return bytes
    }

    func restore(_ snapshot: [UInt8]) throws {
        let code = snapshot.withUnsafeBufferPointer { table.restore!(table.user_data, $0.baseAddress, $0.count) }
        try check(code, "restore")
    }
}

@c @implementation public func luigi_raft_set_state_machine(
    _ r: OpaquePointer!, _ machine: UnsafePointer<luigi_state_machine>!
) -> luigi_status {
    guarded {
        let driver = try raft(r)
        try driver.attach(try machine.map { try CStateMachine($0.pointee) })
    }
}

@c @implementation public func luigi_raft_snapshot_state_machine(_ r: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!)
    -> luigi_status
{
    output(out, "out_index") { try raft(r).snapshotMachine() }
}
