import LuigiCore
import Testing

/// RaftDriver.nextReady(sendingEarly:): a leader hands out its appends
/// before its own sync, and a persist failure after that stops the driver
/// (RaftNode counts the leader's own entries toward the quorum as soon as
/// they are appended, so an acknowledgement must never be stepped into a
/// commit while the leader's copy is not durable).
@Suite struct RaftEarlySendTests {
    /// Records writes, syncs and sends in one order; can fail the next sync.
    final class Events {
        var log: [String] = []
    }

    final class RecordingStorage: RaftStorage {
        let inner = MemoryRaftStorage()
        let events: Events
        var failNextSync = false
        init(_ events: Events) { self.events = events }
        func initialState() throws -> (hardState: HardState, conf: ConfState) { try inner.initialState() }
        func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
            try inner.entries(lo, hi, maxBytes: maxBytes)
        }
        func term(_ index: UInt64) throws -> UInt64 { try inner.term(index) }
        func firstIndex() throws -> UInt64 { try inner.firstIndex() }
        func lastIndex() throws -> UInt64 { try inner.lastIndex() }
        func snapshot() throws -> Snapshot { try inner.snapshot() }
        func append(_ entries: [RaftEntry]) throws {
            if !entries.isEmpty { events.log.append("append") }
            try inner.append(entries)
        }
        func setHardState(_ state: HardState) throws { try inner.setHardState(state) }
        func applySnapshot(_ snapshot: Snapshot) throws { try inner.applySnapshot(snapshot) }
        func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws {
            try inner.compact(to: index, conf: conf, data: data)
        }
        func sync() throws {
            if failNextSync {
                failNextSync = false
                throw LuigiError.state("sync failed")
            }
            events.log.append("sync")
        }
    }

    struct Cluster {
        var drivers: [UInt64: RaftDriver] = [:]
        var storages: [UInt64: RecordingStorage] = [:]
        let events = Events()

        init(voters: [UInt64], preVote: Bool = true) throws {
            for id in voters {
                let storage = RecordingStorage(events)
                storages[id] = storage
                var config = RaftConfig(id: id)
                config.preVote = preVote
                drivers[id] = try RaftDriver(config: config, storage: storage, voters: voters)
            }
        }

        /// Delivers every message (early ones included) until all is quiet.
        func settle() throws {
            var queue: [RaftMessage] = []
            repeat {
                for id in drivers.keys.sorted() {
                    let d = drivers[id]!
                    while let rd = try d.nextReady(sendingEarly: { queue += $0 }) {
                        queue += rd.messages
                        try d.advance(rd)
                    }
                }
                let batch = queue
                queue = []
                for m in batch { try drivers[m.to]!.node.step(m) }
            } while !queue.isEmpty || drivers.values.contains { $0.node.hasReady }
        }
    }

    @Test func leaderSendsItsAppendsBeforeItsOwnSync() throws {
        let c = try Cluster(voters: [1, 2, 3])
        c.drivers[1]!.node.campaign()
        try c.settle()
        #expect(c.drivers[1]!.node.role == .leader)
        let leader = c.drivers[1]!
        let index = try leader.node.propose([7])
        c.events.log = []
        var early: [RaftMessage] = []
        let rd = try #require(try leader.nextReady(sendingEarly: { early += $0; c.events.log.append("send") }))
        #expect(c.events.log == ["send", "append", "sync"])
        #expect(early.count == 2 && early.allSatisfy { $0.kind == .append && $0.entries.last?.index == index })
        #expect(!rd.messages.contains { $0.kind == .append })
        #expect(rd.committedEntries.isEmpty)
        try leader.advance(rd)
        // The followers' acknowledgements commit it, as usual.
        for m in early { try c.drivers[m.to]!.node.step(m) }
        try c.settle()
        #expect(leader.node.status.commit == index)
        #expect(c.drivers.values.allSatisfy { $0.node.status.applied == index })
    }

    @Test func aFailedPersistAfterAnEarlySendStopsTheDriver() throws {
        let c = try Cluster(voters: [1, 2, 3])
        c.drivers[1]!.node.campaign()
        try c.settle()
        let leader = c.drivers[1]!
        let index = try leader.node.propose([7])
        c.storages[1]!.failNextSync = true
        var early: [RaftMessage] = []
        #expect(throws: LuigiError.self) { _ = try leader.nextReady(sendingEarly: { early += $0 }) }
        #expect(!early.isEmpty)
        // A follower persists the entry and acknowledges it. The leader's copy
        // never reached its disk, so one durable copy of three: counting the
        // leader's own (unsynced) entry must not surface as a commit.
        let follower = c.drivers[2]!
        for m in early where m.to == 2 { try follower.node.step(m) }
        var acks: [RaftMessage] = []
        while let rd = try follower.nextReady() {
            acks += rd.messages
            try follower.advance(rd)
        }
        for m in acks { try leader.node.step(m) }
        if case .success(let rd) = Result(catching: { try leader.nextReady(sendingEarly: { _ in }) }) {
            Issue.record("the driver went on and committed \(rd?.committedEntries.map(\.index) ?? [])")
        }
        #expect(throws: LuigiError.self) { _ = try leader.nextReady() }
        #expect(leader.node.status.applied < index)
    }

    @Test func aFailedPersistWithNothingSentEarlyCanBeRetried() throws {
        let c = try Cluster(voters: [1, 2, 3], preVote: false)
        let candidate = c.drivers[1]!
        candidate.node.campaign()
        c.storages[1]!.failNextSync = true
        var early: [RaftMessage] = []
        // A campaign changes the term and vote: nothing may go out before the
        // sync, so the failed batch is simply offered again.
        #expect(throws: LuigiError.self) { _ = try candidate.nextReady(sendingEarly: { early += $0 }) }
        #expect(early.isEmpty)
        c.events.log = []
        try c.settle()  // the retried batch persists; its vote requests were lost
        #expect(c.events.log.contains("sync"))
        candidate.node.campaign()  // as an election timeout would
        try c.settle()
        #expect(candidate.node.role == .leader)
    }

    @Test func aSingleVoterSendsNothingEarly() throws {
        let c = try Cluster(voters: [1])
        let only = c.drivers[1]!
        only.node.campaign()
        try c.settle()
        try only.node.propose([7])
        var early: [RaftMessage] = []
        while let rd = try only.nextReady(sendingEarly: { early += $0 }) { try only.advance(rd) }
        #expect(early.isEmpty)
        #expect(only.node.status.applied == 2)
    }
}
