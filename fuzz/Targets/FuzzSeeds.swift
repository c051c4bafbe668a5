import LuigiCore
import LuigiStorage

/// Seed inputs for every target: valid encodings of each kind, in the form
/// the target takes (sealed encodings without magic and CRC). `make fuzz`
/// writes them (`LUIGI_FUZZ_WRITE_SEEDS=<dir>`) into each run's scratch
/// corpus; `fuzz/corpus` keeps what libFuzzer's merge found worth keeping.
public enum FuzzSeeds {
    public static func inputs(for target: String) -> [[UInt8]] {
        switch target {
        case "update": return updates().map { fuzzUnseal($0.encoded()) }
        case "update_list": return updateLists().map { fuzzUnseal(Update.encodeBatch($0)) }
        case "clock": return clocks().map { fuzzUnseal($0.encoded()) }
        case "raft_message": return raftMessages().map { fuzzUnseal($0.encoded()) }
        case "snapshot": return snapshotFiles()
        case "wal": return walSegments()
        case "raft_step_follower": return followerScripts()
        case "raft_step_candidate": return candidateScripts()
        case "raft_step_leader": return leaderScripts()
        case "watermark_message": return watermarkMessages().map { fuzzUnseal($0.encoded()) }
        case "shard_record": return shardRecords().map { fuzzUnseal($0.encoded()) }
        case "shard_snapshot": return shardSnapshotSeeds()
        case "shard_step": return shardStepScripts()
        case "coordinator_step": return coordinatorStepScripts()
        case "table_command": return tableCommandSeeds()
        case "table_snapshot": return tableSnapshotSeeds()
        case "frame_stream": return frameStreamSeeds()
        case "client_request": return clientRequestSeeds()
        case "handshake_hello": return handshakeHelloSeeds()
        case "session_snapshot": return sessionSnapshotSeeds()
        case "sync_message": return syncMessageSeeds()
        case "wire_value": return wireValueSeeds()
        case "frame_chunks": return frameChunkSeeds()
        default: return []
        }
    }

    // MARK: - Algebraic

    static func clocks() -> [VectorClock] {
        [VectorClock(), VectorClock([1: 1]), VectorClock([1: 5, 2: 3, 1_000_000: UInt64.max])]
    }

    static func updates() -> [Update] {
        do {
            let a = Replica(nodeID: 1)
            let b = Replica(nodeID: 2)
            let u1 = try a.commit { try $0.add("count", 42) }
            b.apply(u1)
            let u2 = try b.commit { tx in
                try tx.max("hi", .float(2.5))
                try tx.min("lo", .int(-7))
                try tx.union("tags", [.string("é"), .bytes([0, 255]), .int(Int64.min)])
            }
            let u3 = try a.commit { tx in
                try tx.add("count", -3)
                try tx.max("count2", .int(Int64.max))
            }
            a.apply(u2)
            let u4 = try a.commit { try $0.union("tags", [.int(1)]) }
            return [u1, u2, u3, u4]
        } catch {
            fatalError("seeds: \(error)")
        }
    }

    static func updateLists() -> [[Update]] {
        let u = updates()
        return [[], [u[0]], u, [u[3], u[1], u[0], u[2]]]
    }

    // MARK: - Raft messages

    static func kvSnapshot() -> [UInt8] {
        let kv = KVStateMachine()
        _ = kv.execute(.put(key: "a", value: [1]))
        _ = kv.execute(.put(key: "b", value: [2, 3]))
        return kv.snapshot()
    }

    static func entries(term: UInt64, from index: UInt64, count: Int) -> [RaftEntry] {
        (0..<UInt64(count)).map { i in
            RaftEntry(term: term, index: index + i, data: KVStateMachine.Command.put(key: "k\(i)", value: [UInt8(i)]).encoded())
        }
    }

    static func message(
        _ kind: MessageKind, from: UInt64, term: UInt64, logTerm: UInt64 = 0, index: UInt64 = 0,
        entries: [RaftEntry] = [], commit: UInt64 = 0, reject: Bool = false, hint: UInt64 = 0,
        snapshot: Snapshot? = nil, context: [UInt8] = []
    ) -> RaftMessage {
        var m = RaftMessage(kind: kind, to: 1, from: from, term: term)
        m.logTerm = logTerm
        m.index = index
        m.entries = entries
        m.commit = commit
        m.reject = reject
        m.rejectHint = hint
        m.snapshot = snapshot
        m.context = context
        return m
    }

    static func snapshot(index: UInt64, term: UInt64, learners: [UInt64] = []) -> Snapshot {
        Snapshot(
            metadata: SnapshotMetadata(index: index, term: term, conf: ConfState(voters: [1, 2, 3], learners: learners)),
            data: kvSnapshot())
    }

    static func raftMessages() -> [RaftMessage] {
        let conf = RaftEntry(term: 2, index: 4, kind: .confChange, data: ConfChange(.addLearner, node: 4).encoded())
        return [
            message(.append, from: 2, term: 2, logTerm: 1, index: 3, entries: entries(term: 2, from: 4, count: 3), commit: 4),
            message(.append, from: 2, term: 2, logTerm: 2, index: 3, entries: [conf], commit: 3),
            message(.appendResponse, from: 2, term: 2, index: 7),
            message(.appendResponse, from: 3, term: 2, logTerm: 1, index: 9, reject: true, hint: 5),
            message(.vote, from: 3, term: 3, logTerm: 2, index: 7),
            message(.voteResponse, from: 2, term: 3, reject: true),
            message(.preVote, from: 3, term: 4, logTerm: 2, index: 7),
            message(.preVoteResponse, from: 2, term: 4),
            message(.heartbeat, from: 2, term: 2, commit: 5, context: [9, 9]),
            message(.heartbeatResponse, from: 3, term: 2, context: [9, 9]),
            message(.snapshot, from: 2, term: 2, snapshot: snapshot(index: 10, term: 2, learners: [4])),
            message(.timeoutNow, from: 2, term: 2),
        ]
    }

    // MARK: - Storage

    /// Snapshot file bodies (`kind | walSeq | Snapshot`).
    static func snapshotFiles() -> [[UInt8]] {
        func body(kind: UInt8, walSeq: UInt64, _ s: Snapshot) -> [UInt8] {
            var w = ByteWriter()
            w.u8(kind)
            w.varint(walSeq)
            s.write(to: &w)
            return w.bytes
        }
        return [
            body(kind: 0, walSeq: 0, Snapshot(metadata: SnapshotMetadata(index: 0, term: 0, conf: ConfState(voters: [1, 2, 3])))),
            body(kind: 0, walSeq: 0, snapshot(index: 5, term: 2)),
            body(kind: 1, walSeq: 0, snapshot(index: 9, term: 3, learners: [4])),
            body(kind: 1, walSeq: 4, snapshot(index: 9, term: 3)),
        ]
    }

    /// WAL segments written by a real `DurableRaftStorage` (in memory), each
    /// with a few control bytes.
    static func walSegments() -> [[UInt8]] {
        func segment(_ script: (DurableRaftStorage) throws -> Void) -> [UInt8] {
            let fs = MemorySyscalls()
            do {
                let s = try DurableRaftStorage(directory: FuzzDisk.directory, conf: ConfState(voters: [1, 2, 3]), syscalls: fs)
                try script(s)
                try s.sync()
                s.close()
            } catch {
                fatalError("seeds: \(error)")
            }
            guard let bytes = fs.contents(FuzzDisk.directory + "/" + WriteAheadLog.segmentName(0)) else {
                fatalError("seeds: no WAL segment 0")
            }
            return bytes
        }
        let plain = segment { s in
            try s.append(entries(term: 1, from: 1, count: 3))
            try s.setHardState(HardState(term: 1, vote: 1, commit: 2))
        }
        let overwritten = segment { s in
            try s.append(entries(term: 1, from: 1, count: 4))
            try s.setHardState(HardState(term: 2, vote: 2, commit: 1))
            try s.append(entries(term: 2, from: 3, count: 2))
            try s.append([RaftEntry(term: 2, index: 5, kind: .confChange, data: ConfChange(.addLearner, node: 4).encoded())])
        }
        let compacted = segment { s in
            try s.append(entries(term: 1, from: 1, count: 5))
            try s.setHardState(HardState(term: 1, vote: 1, commit: 4))
            try s.compact(to: 3, conf: ConfState(voters: [1, 2, 3]), data: kvSnapshot())
            try s.append(entries(term: 1, from: 6, count: 1))
        }
        let replaced = segment { s in
            try s.append(entries(term: 1, from: 1, count: 2))
            try s.applySnapshot(snapshot(index: 8, term: 2))
            try s.append(entries(term: 2, from: 9, count: 2))
        }
        var seeds: [[UInt8]] = []
        for seg in [plain, overwritten, compacted, replaced] {
            seeds.append([0] + seg)
        }
        seeds.append([0x02] + overwritten)  // two segments
        seeds.append([0x01] + plain)  // EINTR and short transfers
        seeds.append([0x18] + plain)  // record 2 keeps its (valid) CRC
        seeds.append([0] + plain.dropLast(3))  // torn tail
        for seg in [plain, compacted, replaced] {  // framed mode
            seeds.append([0x04] + FuzzChunks.join(WALFrame.records(seg)))
        }
        seeds.append([0x06] + FuzzChunks.join(WALFrame.records(overwritten)))  // framed, two segments
        seeds.append([0x24] + FuzzChunks.join(WALFrame.records(plain)))  // framed, record 3 corrupt
        return seeds
    }

    // MARK: - Raft step scripts

    // Control bytes of a chunk (see `RaftHarness.consequences`).
    static let quiet: UInt8 = 0x00  // one tick
    static let propose: UInt8 = 0x08
    static let read: UInt8 = 0x10
    static let learner: UInt8 = 0x20
    static let campaign: UInt8 = 0x04
    static let compact: UInt8 = 0x80
    static let transfer: UInt8 = 0x40
    static let fiveTicks: UInt8 = 0x03

    static func followerScripts() -> [[UInt8]] {
        let e = entries(term: 1, from: 2, count: 3)
        let conf = RaftEntry(term: 1, index: 5, kind: .confChange, data: ConfChange(.addLearner, node: 4).encoded())
        return [
            raftStepInput(flags: 0x40, [
                (quiet, message(.append, from: 2, term: 1, logTerm: 1, index: 1, entries: e, commit: 3)),
                (quiet, message(.heartbeat, from: 2, term: 1, commit: 4, context: [1])),
                (propose, message(.append, from: 2, term: 1, logTerm: 1, index: 4, entries: [conf], commit: 5)),
                (compact, message(.heartbeat, from: 2, term: 1, commit: 5)),
            ]),
            raftStepInput(flags: 0x43, [
                (quiet, message(.append, from: 2, term: 1, logTerm: 1, index: 1, entries: e, commit: 1)),
                // leader 3 of term 2 overwrites the uncommitted tail
                (quiet, message(.append, from: 3, term: 2, logTerm: 1, index: 2, entries: entries(term: 2, from: 3, count: 2), commit: 3)),
                (quiet, message(.append, from: 3, term: 2, logTerm: 2, index: 9, commit: 3)),
                (fiveTicks, message(.vote, from: 3, term: 3, logTerm: 2, index: 4)),
            ]),
            raftStepInput(flags: 0x40, [
                (quiet, message(.snapshot, from: 2, term: 1, snapshot: snapshot(index: 10, term: 1))),
                (quiet, message(.append, from: 2, term: 1, logTerm: 1, index: 10, entries: entries(term: 1, from: 11, count: 2), commit: 12)),
                (read, message(.timeoutNow, from: 2, term: 1)),
                (quiet, message(.voteResponse, from: 2, term: 2)),
            ]),
            raftStepInput(flags: 0x01, [
                (fiveTicks, message(.preVote, from: 3, term: 2, logTerm: 1, index: 1)),
                (fiveTicks, message(.preVoteResponse, from: 2, term: 2)),
                (campaign, message(.preVoteResponse, from: 3, term: 2)),
                (quiet, message(.voteResponse, from: 3, term: 2)),
            ]),
        ]
    }

    static func candidateScripts() -> [[UInt8]] {
        [
            raftStepInput(flags: 0x40, [
                (quiet, message(.voteResponse, from: 3, term: 1)),
                (propose, message(.appendResponse, from: 3, term: 1, index: 1)),
                (quiet, message(.appendResponse, from: 2, term: 1, index: 2)),
            ]),
            raftStepInput(flags: 0x02, [
                (quiet, message(.voteResponse, from: 2, term: 1, reject: true)),
                (quiet, message(.voteResponse, from: 3, term: 1, reject: true)),
                (fiveTicks, message(.heartbeat, from: 3, term: 1)),
            ]),
            raftStepInput(flags: 0x00, [
                (quiet, message(.append, from: 2, term: 1, entries: entries(term: 1, from: 1, count: 2), commit: 1)),
                (quiet, message(.vote, from: 3, term: 2, logTerm: 1, index: 2)),
            ]),
            raftStepInput(flags: 0x00, [
                (quiet, message(.snapshot, from: 3, term: 2, snapshot: snapshot(index: 4, term: 2))),
                (campaign, message(.preVote, from: 2, term: 3, logTerm: 2, index: 4)),
            ]),
        ]
    }

    static func leaderScripts() -> [[UInt8]] {
        [
            raftStepInput(flags: 0x40, [
                (propose, message(.appendResponse, from: 2, term: 1, index: 1)),
                (propose, message(.appendResponse, from: 3, term: 1, index: 1)),
                (read, message(.appendResponse, from: 2, term: 1, index: 3)),
                (quiet, message(.heartbeatResponse, from: 2, term: 1, context: [read])),
                (learner, message(.appendResponse, from: 3, term: 1, index: 3)),
                (quiet, message(.appendResponse, from: 2, term: 1, index: 4)),
            ]),
            raftStepInput(flags: 0x06, [
                (propose, message(.appendResponse, from: 2, term: 1, index: 1)),
                (propose | compact, message(.appendResponse, from: 2, term: 1, index: 2)),
                // follower 3 is far behind: the leader sends a snapshot
                (quiet, message(.appendResponse, from: 3, term: 1, logTerm: 0, index: 1, reject: true, hint: 0)),
                (fiveTicks, message(.heartbeatResponse, from: 3, term: 1)),
            ]),
            raftStepInput(flags: 0x00, [
                (transfer, message(.appendResponse, from: 2, term: 1, index: 1)),
                (quiet, message(.appendResponse, from: 2, term: 1, index: 1)),
                (quiet, message(.vote, from: 2, term: 2, logTerm: 1, index: 1)),
            ]),
            raftStepInput(flags: 0x02, [
                (quiet, message(.append, from: 3, term: 2, logTerm: 0, index: 0, entries: entries(term: 2, from: 1, count: 2), commit: 1)),
                (fiveTicks, message(.preVote, from: 2, term: 3, logTerm: 2, index: 2)),
            ]),
        ]
    }
}
