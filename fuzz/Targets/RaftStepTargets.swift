import LuigiCore

/// Node 1 of the voter group [1, 2, 3] on `MemoryRaftStorage`, driven through
/// `RaftDriver`, brought into one role.
public enum FuzzRaftRole: String, Sendable, CaseIterable {
    case follower, candidate, leader
}

/// Flags (the first input byte of a raft_step target):
/// bit 0 pre-vote (follower only: the candidate and leader set-ups campaign
/// with it off), bit 1 check-quorum, bit 2 at most 2 appends in flight,
/// bit 3 appends of at most 64 bytes, bit 4 at most 512 bytes in flight,
/// bit 5 at most 64 bytes applied per Ready, bit 6 a `KVStateMachine` attached.
struct RaftHarness {
    let driver: RaftDriver
    let machine: KVStateMachine?
    static let maxReadies = 32

    init(role: FuzzRaftRole, flags: UInt8) {
        var config = RaftConfig(id: 1)
        config.preVote = role == .follower && flags & 1 != 0
        config.checkQuorum = flags & 2 != 0
        if flags & 4 != 0 { config.maxInflightMessages = 2 }
        if flags & 8 != 0 { config.maxSizePerMessage = 64 }
        if flags & 16 != 0 { config.maxInflightBytes = 512 }
        if flags & 32 != 0 { config.maxApplyBytes = 64 }
        config.seed = 7
        do {
            driver = try RaftDriver(config: config, storage: MemoryRaftStorage(), voters: [1, 2, 3])
        } catch {
            fatalError("raft harness: cannot create node 1: \(error)")
        }
        if flags & 64 != 0 {
            let kv = KVStateMachine()
            try? driver.attach(kv)
            machine = kv
        } else {
            machine = nil
        }
        switch role {
        case .follower:
            // Leader 2 of term 1 appends its no-op.
            var m = RaftMessage(kind: .append, to: 1, from: 2, term: 1)
            m.entries = [RaftEntry(term: 1, index: 1)]
            step(m)
        case .candidate:
            driver.node.campaign()
            drain()
        case .leader:
            driver.node.campaign()
            drain()
            step(RaftMessage(kind: .voteResponse, to: 1, from: 2, term: 1))
        }
        let want: RaftRole = switch role {
        case .follower: .follower
        case .candidate: .candidate
        case .leader: .leader
        }
        fuzzCheck(driver.node.role == want, "raft harness: set-up left node 1 \(driver.node.role), not \(want)")
    }

    /// Takes, persists and acknowledges every Ready (bounded).
    func drain() {
        for _ in 0..<Self.maxReadies {
            guard let rd = try? driver.nextReady() else { return }
            try? driver.advance(rd)
        }
    }

    func step(_ m: RaftMessage) {
        _ = try? driver.node.step(m)
        drain()
    }

    /// What a driver does between messages, chosen by `c`:
    /// bits 0-1 ticks (1, 1, 2 or 5), bit 2 campaign, bit 3 propose a
    /// key-value put, bit 4 readIndex, bit 5 a membership change (kind by
    /// bits 6-7), bit 6 transfer leadership (to 2 or 3 by bit 7), bit 7
    /// compact the log to the applied index.
    func consequences(_ c: UInt8) {
        let node = driver.node
        if c & 4 != 0 { node.campaign(); drain() }
        if c & 8 != 0 {
            _ = try? node.propose(KVStateMachine.Command.put(key: "k\(c & 3)", value: [c]).encoded())
            drain()
        }
        if c & 16 != 0 { _ = try? node.readIndex(context: [c]); drain() }
        if c & 32 != 0 {
            let change: ConfChange = switch c >> 6 {
            case 0: ConfChange(.addLearner, node: 4)
            case 1: ConfChange(.addVoter, node: 4)
            case 2: ConfChange(.removeNode, node: 3)
            default: ConfChange(.removeNode, node: 1)
            }
            _ = try? node.proposeConfChange(change)
            drain()
        }
        if c & 64 != 0 { _ = try? node.transferLeadership(to: c & 128 != 0 ? 3 : 2); drain() }
        if c & 128 != 0 {
            if machine != nil {
                _ = try? driver.snapshotMachine()
            } else {
                _ = try? driver.compact(to: node.status.applied, snapshot: [c])
            }
        }
        for _ in 0..<[1, 1, 2, 5][Int(c & 3)] {
            node.tick()
            drain()
        }
        _ = node.status
        _ = node.replicationState(of: 2)
    }
}

/// Input: `flags u8 | chunk (SEP chunk)*` where `SEP` is
/// `FuzzChunks.separator` and a chunk is `control u8 | message body`. Each
/// body is re-sealed as a Raft message (magic + CRC-32C); one that decodes
/// is sent to node 1 (`to` forced to 1) and stepped. After every chunk the
/// driver takes and acknowledges every Ready and runs the chunk's
/// `consequences`. Chunks are split by a separator rather than a length
/// prefix so that a mutation growing a field (a 1-byte varint becoming 9
/// bytes) keeps the message intact. Errors are fine; traps are bugs.
public func fuzzRaftStep(_ role: FuzzRaftRole, _ data: [UInt8]) {
    guard let flags = data.first else { return }
    let harness = RaftHarness(role: role, flags: flags)
    for chunk in FuzzChunks.split(data.dropFirst()).prefix(64) where !chunk.isEmpty {
        let c = chunk[chunk.startIndex]
        if var m = try? RaftMessage(decoding: fuzzSeal(FuzzMagic.raftMessage, chunk.dropFirst())) {
            m.to = 1
            harness.step(m)
        }
        harness.consequences(c)
    }
}

/// Builds a raft_step input from messages (for seeds).
public func raftStepInput(flags: UInt8, _ chunks: [(control: UInt8, message: RaftMessage)]) -> [UInt8] {
    [flags] + FuzzChunks.join(chunks.map { [$0.control] + fuzzUnseal($0.message.encoded()) })
}
