import LuigiBase
import LuigiCore
import LuigiHost
import Testing

// SessionMachine: exactly-once client writes over a KVStateMachine, entries built by hand.

typealias KV = KVStateMachine.Command

/// A session machine over a key-value machine, fed log entries 1, 2, 3, ...
final class SessionLog {
    private(set) var kv: KVStateMachine
    private(set) var machine: SessionMachine
    var index: UInt64

    init(index: UInt64 = 0) {
        kv = KVStateMachine()
        machine = SessionMachine(kv)
        self.index = index
    }

    /// Applies `data` as the next entry.
    @discardableResult
    func apply(_ data: [UInt8], kind: EntryKind = .normal) throws -> [UInt8] {
        index += 1
        return try machine.apply(RaftEntry(term: 1, index: index, kind: kind, data: data))
    }

    func outcome(_ data: [UInt8]) throws -> SessionOutcome { try SessionOutcome(decoding: try apply(data)) }

    func register() throws -> UInt64 {
        let o = try outcome(SessionMachine.registration())
        guard case .registered(let id) = o else { throw CheckFailed(description: "registration answered \(o)") }
        return id
    }

    func write(_ session: UInt64, _ seq: UInt64, _ command: KV) throws -> SessionOutcome {
        try outcome(SessionMachine.frame(command.encoded(), session: session, seq: seq))
    }

    func snapshot() throws -> [UInt8] { try machine.snapshot() }

    /// A fresh machine restored from this one's snapshot, continuing at the same index.
    func restoredCopy() throws -> SessionLog {
        let copy = SessionLog(index: index)
        try copy.machine.restore(try snapshot())
        return copy
    }
}

func isExpired(_ o: SessionOutcome) -> Bool {
    if case .expired = o { return true }
    return false
}

/// "LSS" v1 | blob(inner) | varint count | per session: id, floor, lastUsed,
/// result count, (seq, blob result)... | CRC-32C — built by hand, so a test
/// can write what `snapshot()` never would.
struct HandSession {
    var id: UInt64
    var floor: UInt64 = 0
    var lastUsed: UInt64
    var results: [(UInt64, [UInt8])] = []
}

func handSnapshot(inner: [UInt8] = KVStateMachine().snapshot(), sessions: [HandSession], count: UInt64? = nil,
                  trailing: [UInt8] = [], magic: [UInt8] = [0x4C, 0x53, 0x53, 0x01]) -> [UInt8] {
    var w = ByteWriter()
    w.magic(magic)
    w.blob(inner)
    w.varint(count ?? UInt64(sessions.count))
    for s in sessions {
        w.varint(s.id)
        w.varint(s.floor)
        w.varint(s.lastUsed)
        w.varint(UInt64(s.results.count))
        for (seq, r) in s.results {
            w.varint(seq)
            w.blob(r)
        }
    }
    w.raw(trailing)
    w.sealWithChecksum()
    return w.bytes
}

@Suite struct SessionMachineTests {
    @Test func registrationReturnsTheEntryIndex() throws {
        let log = SessionLog(index: 6)
        #expect(try log.register() == 7)
        try log.apply(KV.put(key: "a", value: [1]).encoded())
        try log.apply([])
        #expect(try log.register() == 10)
        #expect(log.machine.sessionCount == 2)
        #expect(SessionMachine.registration() == [0x4C, 0x53, 0x45, 0x01, 1])
        #expect(SessionMachine.frame([9], session: 0x0102, seq: 3)
            == [0x4C, 0x53, 0x45, 0x01, 2, 2, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9])
    }

    @Test func aWriteAppliesOnceAndARetryIsADuplicate() throws {
        let log = SessionLog()
        let s = try log.register()
        #expect(try log.write(s, 1, .cas(key: "k", expected: nil, new: [1])) == .applied([1]))
        #expect(log.kv.data["k"] == [1])
        let appliedAt = log.kv.appliedIndex
        // Another write moves the value on; a retry of the first must not bring it back.
        #expect(try log.write(s, 2, .put(key: "k", value: [2])) == .applied([]))
        #expect(try log.write(s, 1, .cas(key: "k", expected: nil, new: [1])) == .duplicate([1]))
        #expect(log.kv.data["k"] == [2])
        // Retries are answered from the table whatever they carry, any number of times.
        #expect(try log.write(s, 1, .delete(key: "k")) == .duplicate([1]))
        #expect(try log.write(s, 2, .delete(key: "k")) == .duplicate([]))
        #expect(log.kv.data["k"] == [2])
        #expect(log.kv.appliedIndex == appliedAt + 1, "a duplicate reached the inner machine")
        // A delete's result: existed / not.
        #expect(try log.write(s, 3, .delete(key: "k")) == .applied([1]))
        #expect(try log.write(s, 4, .delete(key: "k")) == .applied([0]))
        #expect(try log.write(s, 3, .delete(key: "k")) == .duplicate([1]))
        // Seq 0 and UInt64.max are ordinary seqs.
        #expect(try log.write(s, 0, .put(key: "z", value: [0])) == .applied([]))
        #expect(try log.write(s, .max, .get(key: "z")) == .applied([1, 0]))
        #expect(try log.write(s, .max, .get(key: "nothing")) == .duplicate([1, 0]))
        // Sessions are independent.
        let t = try log.register()
        #expect(try log.write(t, 1, .get(key: "k")) == .applied([0]))
        #expect(try log.write(s, 1, .get(key: "k")) == .duplicate([1]))
    }

    @Test func anUnknownSessionIsExpired() throws {
        let log = SessionLog()
        let before = try log.snapshot()
        let o = try log.write(42, 1, .put(key: "k", value: [1]))
        #expect(isExpired(o))
        #expect(log.kv.data.isEmpty)
        #expect(try log.snapshot() == before)
        let s = try log.register()
        #expect(isExpired(try log.write(s + 1, 1, .put(key: "k", value: [1]))))
        #expect(isExpired(try log.write(0, 1, .put(key: "k", value: [1]))))
        #expect(log.kv.data.isEmpty)
    }

    @Test func theWindowForgetsTheOldestSeq() throws {
        let log = SessionLog()
        let s = try log.register()
        let w = UInt64(SessionMachine.window)
        #expect(try log.write(s, 1, .put(key: "w", value: [1])) == .applied([]))
        for seq in 2...w { #expect(try log.write(s, seq, .put(key: "x\(seq)", value: [])) == .applied([])) }
        // Exactly `window` seqs: all remembered.
        #expect(try log.write(s, 1, .put(key: "w", value: [1])) == .duplicate([]))
        try log.apply(KV.delete(key: "w").encoded())  // unframed: the value goes away
        // One more: seq 1 is forgotten, and a retry of it is not applied again.
        #expect(try log.write(s, w + 1, .put(key: "x\(w + 1)", value: [])) == .applied([]))
        let o = try log.write(s, 1, .put(key: "w", value: [1]))
        #expect(isExpired(o), "\(o)")
        #expect(log.kv.data["w"] == nil, "a forgotten seq was applied again")
        #expect(try log.write(s, 2, .put(key: "w", value: [1])) == .duplicate([]))
        #expect(log.kv.data["w"] == nil)
        // Below the floor, never seen: expired too. Above: a new write.
        #expect(isExpired(try log.write(s, 0, .put(key: "w", value: [1]))))
        #expect(try log.write(s, w + 5, .put(key: "w", value: [5])) == .applied([]))
        #expect(log.kv.data["w"] == [5])
        // Seq 2 went out with w + 5.
        #expect(isExpired(try log.write(s, 2, .put(key: "w", value: [1]))))
        #expect(try log.write(s, 3, .put(key: "w", value: [1])) == .duplicate([]))
        // The floor survives a snapshot.
        let copy = try log.restoredCopy()
        #expect(try copy.snapshot() == log.snapshot())
        #expect(isExpired(try copy.write(s, 2, .put(key: "w", value: [1]))))
        #expect(try copy.write(s, 3, .put(key: "w", value: [1])) == .duplicate([]))
        #expect(copy.kv.data["w"] == [5])
        // Another session's window is its own.
        let t = try log.register()
        #expect(try log.write(t, 1, .get(key: "w")) == .applied([1, 5]))
    }

    /// A seq older than everything kept, but above the floor, is applied, and
    /// is the one the window drops next.
    @Test func aLateLowSeqIsAppliedThenForgotten() throws {
        let log = SessionLog()
        let s = try log.register()
        let w = UInt64(SessionMachine.window)
        for seq in 100..<(100 + w) { _ = try log.write(s, seq, .put(key: "x", value: [])) }
        #expect(try log.write(s, 5, .put(key: "late", value: [1])) == .applied([]))
        #expect(log.kv.data["late"] == [1])
        #expect(isExpired(try log.write(s, 5, .put(key: "late", value: [1]))))
        #expect(try log.write(s, 100, .put(key: "x", value: [])) == .duplicate([]))
    }

    /// The real limit: `maxSessions` registrations, then each new one evicts
    /// the session least recently used (by log index).
    @Test func evictionIsLeastRecentlyUsedByLogIndex() throws {
        let n = SessionMachine.maxSessions
        let log = SessionLog()
        for i in 1...n {
            let id = try log.register()
            if id != UInt64(i) { Issue.record("registration \(i) got id \(id)"); return }
        }
        #expect(log.machine.sessionCount == n)
        // Sessions 1 and 2 are used; 3 is then the least recently used.
        #expect(try log.write(1, 1, .put(key: "one", value: [1])) == .applied([]))
        #expect(try log.write(2, 1, .put(key: "two", value: [2])) == .applied([]))
        let copy = try log.restoredCopy()  // eviction order must survive a snapshot
        for l in [log, copy] {
            let a = try l.register()
            #expect(l.machine.sessionCount == n)
            #expect(isExpired(try l.write(3, 1, .put(key: "three", value: [3]))), "session 3 was not evicted")
            #expect(l.kv.data["three"] == nil)
            #expect(try l.write(1, 1, .put(key: "one", value: [1])) == .duplicate([]))
            #expect(try l.write(2, 1, .put(key: "two", value: [2])) == .duplicate([]))
            #expect(try l.write(a, 1, .put(key: "a", value: [])) == .applied([]))
            // A duplicate and an expired seq count as use too: 4 is touched, so 5 goes next.
            #expect(try l.write(4, 1, .put(key: "four", value: [])) == .applied([]))
            let b = try l.register()
            #expect(isExpired(try l.write(5, 1, .put(key: "five", value: []))), "session 5 was not evicted")
            #expect(try l.write(4, 1, .put(key: "four", value: [])) == .duplicate([]))
            #expect(try l.write(b, 1, .put(key: "b", value: [])) == .applied([]))
            #expect(l.machine.sessionCount == n)
        }
        #expect(try copy.snapshot() == log.snapshot())
    }

    @Test func snapshotRestoresSessionsAndInnerState() throws {
        let log = SessionLog(index: 100)
        let s = try log.register()
        let t = try log.register()
        #expect(try log.write(s, 1, .put(key: "a", value: [1, 2])) == .applied([]))
        #expect(try log.write(s, 2, .cas(key: "a", expected: [1, 2], new: [3])) == .applied([1]))
        #expect(try log.write(t, 7, .delete(key: "a")) == .applied([1]))
        #expect(try log.write(t, 9, .put(key: "b", value: [])) == .applied([]))
        try log.apply(KV.put(key: "c", value: [7]).encoded())

        let bytes = try log.snapshot()
        let copy = try log.restoredCopy()
        #expect(try copy.snapshot() == bytes)
        #expect(copy.kv.data == log.kv.data)
        #expect(copy.kv.appliedIndex == log.kv.appliedIndex)
        #expect(copy.machine.sessionCount == 2)
        // Duplicates are still recognised, with their results; nothing is re-applied.
        #expect(try copy.write(s, 2, .cas(key: "a", expected: [1, 2], new: [3])) == .duplicate([1]))
        #expect(try copy.write(t, 7, .delete(key: "a")) == .duplicate([1]))
        #expect(try copy.write(s, 1, .put(key: "a", value: [1, 2])) == .duplicate([]))
        #expect(copy.kv.data["a"] == nil)
        #expect(try copy.write(t, 8, .put(key: "a", value: [8])) == .applied([]))
        // Restoring over a machine replaces what it held.
        let other = SessionLog()
        _ = try other.register()
        try other.apply(KV.put(key: "zzz", value: [0]).encoded())
        try other.machine.restore(bytes)
        #expect(try other.snapshot() == bytes)
        #expect(other.kv.data["zzz"] == nil)
        // The empty snapshot is the empty machine.
        try other.machine.restore([])
        #expect(other.machine.sessionCount == 0)
        #expect(other.kv.data.isEmpty)
        #expect(try other.snapshot() == SessionLog().snapshot())
    }

    /// A hand-built snapshot in the documented layout restores to the state
    /// the machine itself would write (the layout is what the docs say).
    @Test func snapshotLayout() throws {
        let log = SessionLog(index: 9)
        let s = try log.register()  // 10
        #expect(try log.write(s, 3, .put(key: "a", value: [1])) == .applied([]))  // 11
        let kv = KVStateMachine()
        _ = kv.apply(RaftEntry(term: 1, index: 11, data: KV.put(key: "a", value: [1]).encoded()))
        let hand = handSnapshot(inner: kv.snapshot(), sessions: [HandSession(id: 10, lastUsed: 11, results: [(3, [])])])
        #expect(try log.snapshot() == hand)
    }

    @Test func corruptSnapshotsAreRefusedAndChangeNothing() throws {
        let source = SessionLog(index: 20)
        let s = try source.register()
        let t = try source.register()
        _ = try source.write(s, 1, .put(key: "a", value: [1]))
        _ = try source.write(s, 2, .delete(key: "nope"))
        _ = try source.write(t, 5, .cas(key: "b", expected: nil, new: [2, 2]))
        let bytes = try source.snapshot()

        let target = SessionLog()
        let u = try target.register()
        _ = try target.write(u, 1, .put(key: "mine", value: [9]))
        let before = try target.snapshot()
        func refusedAndUnchanged(_ bad: [UInt8]) throws -> Bool {
            var threw = false
            do { try target.machine.restore(bad) } catch { threw = true }
            let after = try target.snapshot()
            return threw && after == before && target.kv.data == ["mine": [9]]
        }
        // Every truncation but the empty one (which is the empty machine, by design).
        for cut in 1..<bytes.count {
            #expect(try refusedAndUnchanged(Array(bytes.prefix(cut))), "cut at \(cut)")
        }
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(try refusedAndUnchanged(flipped), "bit \(bit)")
        }
        #expect(try refusedAndUnchanged(bytes + [0]))

        // Re-sealed (the checksum is right) but wrong inside.
        let ok = HandSession(id: 5, lastUsed: 6, results: [(1, [1])])
        #expect(!(try refusedAndUnchanged(handSnapshot(sessions: [ok]))), "the hand-built baseline should restore")
        try target.machine.restore(before)
        let full = (1...UInt64(SessionMachine.window + 1)).map { ($0, [UInt8]()) }
        let bad: [(String, [UInt8])] = [
            ("version 2", handSnapshot(sessions: [ok], magic: [0x4C, 0x53, 0x53, 0x02])),
            ("another magic", handSnapshot(sessions: [ok], magic: [0x4C, 0x53, 0x45, 0x01])),
            ("ids out of order", handSnapshot(sessions: [HandSession(id: 7, lastUsed: 7), ok])),
            ("duplicate id", handSnapshot(sessions: [ok, ok])),
            ("seq below floor", handSnapshot(sessions: [HandSession(id: 5, floor: 3, lastUsed: 6, results: [(2, [])])])),
            ("duplicate seq", handSnapshot(sessions: [HandSession(id: 5, lastUsed: 6, results: [(2, []), (2, [1])])])),
            ("more results than the window", handSnapshot(sessions: [HandSession(id: 5, lastUsed: 6, results: full)])),
            ("more sessions than announced", handSnapshot(sessions: [ok], count: 2)),
            ("fewer sessions than announced", handSnapshot(sessions: [ok, HandSession(id: 8, lastUsed: 8)], count: 1)),
            ("a huge count", handSnapshot(sessions: [], count: .max)),
            ("trailing bytes", handSnapshot(sessions: [ok], trailing: [0])),
            ("a broken inner snapshot", handSnapshot(inner: [1, 2, 3, 4, 5], sessions: [ok])),
            ("an inner snapshot with a bad CRC", handSnapshot(inner: KVStateMachine().snapshot().map { $0 ^ 1 }, sessions: [ok])),
        ]
        for (what, b) in bad {
            #expect(try refusedAndUnchanged(b), "\(what)")
        }
        // More sessions than the limit.
        let many = (1...UInt64(SessionMachine.maxSessions + 1)).map { HandSession(id: $0, lastUsed: $0) }
        #expect(try refusedAndUnchanged(handSnapshot(sessions: many)), "more than maxSessions sessions")
        #expect(!(try refusedAndUnchanged(handSnapshot(sessions: Array(many.dropLast())))), "maxSessions sessions should restore")
        #expect(target.machine.sessionCount == SessionMachine.maxSessions)
    }

    @Test func unframedEntriesPassThrough() throws {
        let log = SessionLog()
        #expect(try log.apply(KV.put(key: "a", value: [1]).encoded()) == [])
        #expect(try log.apply(KV.get(key: "a").encoded()) == [1, 1])
        #expect(try log.apply(KV.delete(key: "a").encoded()) == [1])
        #expect(log.kv.appliedIndex == 3)
        // Empty no-ops, near-misses of the magic, another version, and a
        // membership change carrying session bytes all go to the inner machine.
        let s = try log.register()
        let before = log.machine.sessionCount
        for (data, kind) in [
            ([], EntryKind.normal),
            ([0x4C, 0x53, 0x45, 0x01], .normal),
            ([0x4C, 0x53, 0x45], .normal),
            ([0x4C, 0x53, 0x45, 0x02, 1], .normal),
            (SessionMachine.registration(), .confChange),
            (SessionMachine.frame(KV.put(key: "c", value: [1]).encoded(), session: s, seq: 1), .confChange),
        ] as [([UInt8], EntryKind)] {
            let index = log.index + 1
            #expect(try log.apply(data, kind: kind) == [], "\(data)")
            #expect(log.kv.appliedIndex == index, "\(data) did not reach the inner machine")
        }
        #expect(log.machine.sessionCount == before)
        #expect(log.kv.data["c"] == nil)
        // Seq 1 of s was not used by the confChange entry.
        #expect(try log.write(s, 1, .put(key: "c", value: [1])) == .applied([]))
    }

    @Test func malformedSessionFramesChangeNothing() throws {
        let log = SessionLog()
        let s = try log.register()
        _ = try log.write(s, 1, .put(key: "a", value: [1]))
        let magic: [UInt8] = [0x4C, 0x53, 0x45, 0x01]
        let full = SessionMachine.frame(KV.put(key: "b", value: [2]).encoded(), session: s, seq: 2)
        var malformed: [[UInt8]] = [
            magic + [1, 0],  // a registration with a trailing byte
            magic + [0],
            magic + [3],
            magic + [0xFF] + Array(full.dropFirst(5)),
        ]
        for cut in 5..<21 { malformed.append(Array(full.prefix(cut))) }  // a write without its whole header
        for data in malformed {
            let before = try log.snapshot()
            let kvBefore = log.kv.appliedIndex
            let o = try log.outcome(data)
            #expect(o == .expired("malformed session frame"), "\(data): \(o)")
            #expect(try log.snapshot() == before, "\(data) changed the machine")
            #expect(log.kv.appliedIndex == kvBefore)
        }
        // A write with an empty command is well framed: the inner machine sees an empty entry.
        #expect(try log.outcome(Array(full.prefix(21))) == .applied([]))
        #expect(try log.write(s, 2, .put(key: "b", value: [2])) == .duplicate([]))
        #expect(log.kv.data["b"] == nil)
    }

    @Test func sessionOutcomesRoundTrip() throws {
        for o: SessionOutcome in [.registered(0), .registered(.max), .applied([]), .applied([1, 2]), .duplicate([3]), .expired("why")] {
            #expect(try SessionOutcome(decoding: o.encoded()) == o)
            #expect(throws: LuigiError.self) { try SessionOutcome(decoding: o.encoded() + [0]) }
        }
        #expect(throws: LuigiError.self) { try SessionOutcome(decoding: []) }
        #expect(throws: LuigiError.self) { try SessionOutcome(decoding: [5]) }
    }

    /// Random logs of registrations, writes (with many retries), unframed
    /// commands, malformed frames and snapshot/restore hand-offs. Exactly
    /// once: a (session, seq) is applied at most once, a retry returns the
    /// result it got, and the inner machine is exactly a machine fed the
    /// applied commands alone; a restored copy agrees byte for byte.
    @Test func randomLogsAreExactlyOnce() {
        sweep(60, "session machine, random log") { seed in
            var rng = SplitMix64(seed: seed)
            var log = SessionLog(index: rng.next() % 1000)
            let model = KVStateMachine()
            var sessions: [UInt64] = []
            var applied: [[UInt64]: [UInt8]] = [:]
            let keys = ["a", "b", "c"]
            func command() -> KV {
                let k = keys[rng.int(0...2)]
                switch rng.int(0...3) {
                case 0: return .put(key: k, value: rng.bytes(upTo: 3))
                case 1: return .delete(key: k)
                case 2: return .cas(key: k, expected: rng.chance(0.5) ? nil : rng.bytes(upTo: 1), new: rng.bytes(upTo: 2))
                default: return .get(key: k)
                }
            }
            for step in 0..<400 {
                let roll = rng.int(0...99)
                if roll < 8 || sessions.isEmpty {
                    let id = try log.register()
                    try ensure(id == log.index && !sessions.contains(id), "step \(step): registered \(id) at \(log.index)")
                    sessions.append(id)
                } else if roll < 80 {
                    let known = !rng.chance(0.05)
                    let session = known ? sessions[rng.int(0...(sessions.count - 1))] : rng.next() % 100_000 + 1_000_000
                    let seq = UInt64(rng.int(0...15))
                    let c = command()
                    let o = try log.write(session, seq, c)
                    let index = log.index
                    switch o {
                    case .applied(let r):
                        try ensure(known, "step \(step): unknown session \(session) applied")
                        try ensure(applied[[session, seq]] == nil, "step \(step): (\(session), \(seq)) applied twice")
                        applied[[session, seq]] = r
                        let expected = model.apply(RaftEntry(term: 1, index: index, data: c.encoded()))
                        try ensure(r == expected, "step \(step): result \(r), the model says \(expected)")
                    case .duplicate(let r):
                        try ensure(applied[[session, seq]] == r, "step \(step): duplicate \(r), applied \(String(describing: applied[[session, seq]]))")
                    case .expired:
                        try ensure(!known, "step \(step): a known session's write expired")
                    case .registered:
                        throw CheckFailed(description: "step \(step): a write answered registered")
                    }
                } else if roll < 90 {
                    let c = command()
                    let r = try log.apply(c.encoded())
                    let expected = model.apply(RaftEntry(term: 1, index: log.index, data: c.encoded()))
                    try ensure(r == expected, "step \(step): unframed result \(r), model \(expected)")
                } else if roll < 95 {
                    let before = try log.snapshot()
                    let o = try log.outcome([0x4C, 0x53, 0x45, 0x01, UInt8(rng.int(0...3))] + rng.bytes(upTo: 10))
                    if case .registered(let id) = o {  // tag 1 with nothing after it
                        sessions.append(id)
                    } else {
                        // Shorter than a write's header, or another tag.
                        try ensure(o == .expired("malformed session frame"), "step \(step): random frame answered \(o)")
                        try ensure(try log.snapshot() == before, "step \(step): a refused frame changed the machine")
                    }
                } else {
                    let copy = try log.restoredCopy()
                    try ensure(try copy.snapshot() == log.snapshot(), "step \(step): the restored copy differs")
                    log = copy
                }
                try ensure(log.kv.data == model.data && log.kv.appliedIndex == model.appliedIndex,
                           "step \(step): inner \(log.kv.data) at \(log.kv.appliedIndex), model \(model.data) at \(model.appliedIndex)")
            }
        }
    }
}
