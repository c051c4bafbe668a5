import LuigiCore
import Testing

/// The table-log state machine alone: the commit checks in their order, bad
/// input, snapshot reads against a fold of every version, retention, and
/// snapshots that keep every field.
@Suite struct TableLogMachineTests {
    static func file(_ path: String, rows: UInt64 = 10, partition: String = "") -> DataFile {
        DataFile(path: path, rows: rows, size: rows * 100, partition: partition)
    }

    static func machine(retain: UInt64 = 0) -> TableLogMachine {
        let m = TableLogMachine()
        #expect(m.execute(.createTable(name: "t", schema: [1, 2, 3], retain: retain)) == .committed(version: 0, duplicate: false))
        return m
    }

    static func commit(_ m: TableLogMachine, base: UInt64, txn: String, adds: [DataFile] = [], removes: [String] = [])
        -> TableOutcome
    {
        m.execute(.commit(CommitRequest(table: "t", baseVersion: base, txnId: txn, adds: adds, removes: removes)))
    }

    @Test func checksRunInTheDocumentedOrder() throws {
        let m = Self.machine()
        #expect(Self.commit(m, base: 0, txn: "a", adds: [Self.file("x"), Self.file("y")]) == .committed(version: 1, duplicate: false))
        #expect(Self.commit(m, base: 1, txn: "b", adds: [Self.file("z")], removes: ["x"]) == .committed(version: 2, duplicate: false))
        // 1. Unknown table, before anything else.
        #expect(m.execute(.commit(CommitRequest(table: "u", baseVersion: 2, txnId: "a"))) == .invalid("no table named u"))
        // 2. A known id with the same files (in another order, on a stale
        //    base) returns its version, even after later commits.
        #expect(Self.commit(m, base: 0, txn: "a", adds: [Self.file("y"), Self.file("x")]) == .committed(version: 1, duplicate: true))
        //    ... with other files: a conflict naming the latest version.
        guard case .conflict(let latest, let message) = Self.commit(m, base: 2, txn: "a", adds: [Self.file("w")]) else {
            Issue.record("a reused id with other files must conflict")
            return
        }
        #expect(latest == 2)
        #expect(message.contains("already committed version 1"))
        // 3. A stale base is a conflict naming the latest.
        #expect(throws: LuigiError.conflict(
            "stale base: the commit is based on version 1 of t, whose latest version is 2", current: 2)
        ) { try Self.commit(m, base: 1, txn: "c", adds: [Self.file("w")]).version() }
        // 4. Removed files must be live; added ones must not, unless removed.
        #expect(Self.commit(m, base: 2, txn: "c", removes: ["x"]) == .invalid("file x is not live in t at version 2"))
        #expect(Self.commit(m, base: 2, txn: "c", adds: [Self.file("y")]) == .invalid("file y is already live in t at version 2"))
        // A file replaced in one commit (removed and added again).
        #expect(Self.commit(m, base: 2, txn: "c", adds: [Self.file("y", rows: 99)], removes: ["y"]) == .committed(version: 3, duplicate: false))
        // 5. Versions count up by one.
        let t = try m.table("t")
        #expect(t.latest == 3)
        #expect(try t.files().map(\.path) == ["y", "z"])
        #expect(try t.files().first?.rows == 99)
        #expect(try t.files(at: 1).map(\.path) == ["x", "y"])
        #expect(t.versions.map(\.version) == [0, 1, 2, 3])
        #expect(t.versions.map(\.txnId) == ["", "a", "b", "c"])
        #expect(t.version(ofTransaction: "b") == 2)
    }

    @Test func badInputIsRefusedAndChangesNothing() throws {
        let m = Self.machine()
        _ = Self.commit(m, base: 0, txn: "a", adds: [Self.file("x")])
        let before = m.snapshot()
        let huge = UInt64(Int64.max) + 1
        let cases: [(TableCommand, String)] = [
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file("")])), "empty"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file("p"), Self.file("p")])), "added twice"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", removes: ["x", "x"])), "removed twice"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", removes: [""])), "empty"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [DataFile(path: "p", rows: huge, size: 1)])), "2^63-1"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [DataFile(path: "p", rows: 1, size: huge)])), "2^63-1"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "", adds: [Self.file("p")])), "transaction id is empty"),
            (.commit(CommitRequest(table: "", baseVersion: 1, txnId: "b")), "table name is empty"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file("a\0b")])), "NUL"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file(String(repeating: "p", count: 4097))])), "longer"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b",
                adds: [DataFile(path: "p", rows: 1, size: 1, minStats: [UInt8](repeating: 0, count: 65537))])), "statistics"),
            (.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b",
                adds: (0...100_000).map { Self.file("f\($0)") })), "at most 100000 files"),
            (.createTable(name: String(repeating: "n", count: 256), schema: [], retain: 0), "longer"),
            (.createTable(name: "s", schema: [UInt8](repeating: 0, count: (1 << 20) + 1), retain: 0), "schema"),
            (.createTable(name: "t", schema: [9], retain: 0), "another schema"),
        ]
        for (command, text) in cases {
            let outcome = m.execute(command)
            switch outcome {
            case .invalid(let message), .conflict(_, let message):
                #expect(message.contains(text), "\(message) should mention \(text)")
            case .committed:
                Issue.record("\(text): accepted")
            }
            #expect(m.snapshot() == before, "\(text): a refused command changed the state")
            if case .commit(let r) = command { #expect(throws: LuigiError.self) { _ = try r.validated() } }
        }
    }

    /// Random commits (valid and not) against a reference that keeps every
    /// version's files: every snapshot read equals the fold, refused
    /// commands change nothing, retention keeps exactly the last versions.
    @Test func snapshotReadsEqualTheFoldAcrossSeeds() throws {
        for seed in seeds(60) {
            do { try Self.randomRun(seed: seed, steps: 150) } catch {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
            }
        }
    }

    struct Mismatch: Error, CustomStringConvertible { let description: String }

    static func randomRun(seed: UInt64, steps: Int) throws {
        var rng = SplitMix64(seed: seed)
        let retain = [0, 1, 3, 10][Int(rng.next() % 4)]
        let m = Self.machine(retain: UInt64(retain))
        var model: [[String: DataFile]] = [[:]]  // files at every version
        var txns: [(id: String, version: Int, request: CommitRequest)] = []
        var nextPath = 0
        for step in 0..<steps {
            let latest = model.count - 1
            let live = model[latest].keys.sorted()
            let before = m.snapshot()
            let kind = rng.next() % 10
            func fresh() -> DataFile {
                nextPath += 1
                return DataFile(path: "d/\(nextPath)", rows: rng.next() % 1000, size: rng.next() % 100_000,
                    partition: ["", "p=1", "p=2"][Int(rng.next() % 3)], minStats: rng.chance(0.5) ? [UInt8(step & 0xFF)] : nil,
                    maxStats: rng.chance(0.3) ? [1, 2] : nil)
            }
            switch kind {
            case 0..<6:  // a valid commit (sometimes replacing a file)
                var removes = live.filter { _ in rng.chance(0.3) }
                var adds = (0..<Int(rng.next() % 4)).map { _ in fresh() }
                if let replaced = live.first(where: { !removes.contains($0) }), rng.chance(0.2) {
                    removes.append(replaced)
                    adds.append(DataFile(path: replaced, rows: 7, size: 7))
                }
                let r = CommitRequest(table: "t", baseVersion: UInt64(latest), txnId: "tx\(step)", adds: adds.shuffled(using: &rng), removes: removes)
                guard m.execute(.commit(r)) == .committed(version: UInt64(latest + 1), duplicate: false) else {
                    throw Mismatch(description: "step \(step): a valid commit was refused")
                }
                var files = model[latest]
                for p in removes { files[p] = nil }
                for f in adds { files[f.path] = f }
                model.append(files)
                txns.append((r.txnId, latest + 1, r))
            case 6:  // a retry: the same files in another order
                guard let t = txns.randomElement(using: &rng) else { continue }
                var r = t.request
                r.adds.shuffle(using: &rng)
                r.removes.shuffle(using: &rng)
                let kept = retain == 0 || t.version > latest - retain
                // A kept id answers whatever the base; a forgotten one is
                // refused by its base, which is stale (as a real retry's is).
                r.baseVersion = kept ? rng.next() % UInt64(latest + 1) : rng.next() % UInt64(latest)
                let outcome = m.execute(.commit(r))
                guard kept ? outcome == .committed(version: UInt64(t.version), duplicate: true) : outcome.isConflict else {
                    throw Mismatch(description: "step \(step): retry of \(t.id) (kept: \(kept)) gave \(outcome)")
                }
            case 7:  // the same id with other files: refused either way
                guard let t = txns.last else { continue }
                var r = t.request
                r.adds.append(fresh())
                guard m.execute(.commit(r)).isConflict else {
                    throw Mismatch(description: "step \(step): a reused id with other files was not refused")
                }
            case 8:  // a stale base
                guard latest > 0 else { continue }
                let r = CommitRequest(table: "t", baseVersion: UInt64(latest - 1), txnId: "stale\(step)", adds: [fresh()])
                guard m.execute(.commit(r)) == .conflict(latest: UInt64(latest), message:
                    "stale base: the commit is based on version \(latest - 1) of t, whose latest version is \(latest)")
                else { throw Mismatch(description: "step \(step): a stale base was not refused") }
            default:  // a file that is not live, or one already live
                let r = rng.chance(0.5) || live.isEmpty
                    ? CommitRequest(table: "t", baseVersion: UInt64(latest), txnId: "bad\(step)", removes: ["gone/\(step)"])
                    : CommitRequest(table: "t", baseVersion: UInt64(latest), txnId: "bad\(step)", adds: [DataFile(path: live[0], rows: 1, size: 1)])
                guard case .invalid = m.execute(.commit(r)) else { throw Mismatch(description: "step \(step): \(r) was accepted") }
            }
            if model.count - 1 == latest, m.snapshot() != before {
                throw Mismatch(description: "step \(step): a refused command changed the state")
            }
            try check(m.table("t"), model, retain: retain, step: step)
        }
        // Restored from its snapshot, the machine is the same in every field.
        let restored = TableLogMachine()
        try restored.restore(m.snapshot())
        guard restored.tables == m.tables else { throw Mismatch(description: "the restored state differs") }
    }

    static func check(_ t: TableState, _ model: [[String: DataFile]], retain: Int, step: Int) throws {
        let latest = model.count - 1
        let oldest = retain == 0 ? 0 : max(0, latest - retain + 1)
        guard t.latest == UInt64(latest), t.oldest == UInt64(oldest) else {
            throw Mismatch(description: "step \(step): versions \(t.oldest)...\(t.latest), expected \(oldest)...\(latest)")
        }
        guard t.versions.map(\.version) == (oldest...latest).map(UInt64.init) else {
            throw Mismatch(description: "step \(step): versions list \(t.versions.map(\.version))")
        }
        for v in oldest...latest {
            let expected = model[v].values.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
            guard try t.files(at: UInt64(v)) == expected else {
                throw Mismatch(description: "step \(step): files at version \(v) differ from the fold")
            }
        }
        if oldest > 0 {
            guard (try? t.files(at: UInt64(oldest - 1))) == nil else {
                throw Mismatch(description: "step \(step): version \(oldest - 1) is past retention but readable")
            }
        }
    }

    @Test func snapshotKeepsEveryField() throws {
        let m = TableLogMachine()
        _ = m.execute(.createTable(name: "events", schema: Array("id:int,ts:time".utf8), retain: 3))
        _ = m.execute(.createTable(name: "users", schema: [7], retain: 0))
        _ = m.execute(.createTable(name: "empty", schema: [], retain: 5))
        for i in 0..<6 {
            let f = DataFile(path: "e/\(i)", rows: UInt64(i + 1), size: 4096, partition: "day=\(i % 2)",
                minStats: [UInt8(i)], maxStats: [UInt8(i), 0xFF])
            _ = m.execute(.commit(CommitRequest(table: "events", baseVersion: UInt64(i), txnId: "e\(i)", adds: [f],
                removes: i > 0 ? ["e/\(i - 1)"] : [])))
            _ = m.execute(.commit(CommitRequest(table: "users", baseVersion: UInt64(i), txnId: "u\(i)",
                adds: [DataFile(path: "u/\(i)", rows: 1, size: 1)])))
        }
        _ = m.apply(RaftEntry(term: 2, index: 17, kind: .normal, data: []))
        let restored = TableLogMachine()
        try restored.restore(m.snapshot())
        // Every field of every table, compared whole (TableState is Equatable
        // over all of them), then through the public reads.
        #expect(restored.tables == m.tables)
        #expect(restored.appliedIndex == 17)
        let e = try restored.table("events")
        #expect(e.schema == Array("id:int,ts:time".utf8))
        #expect(e.retain == 3)
        #expect((e.oldest, e.latest) == (4, 6))
        #expect(try e.files(at: 4) == [DataFile(path: "e/3", rows: 4, size: 4096, partition: "day=1", minStats: [3], maxStats: [3, 0xFF])])
        #expect(e.version(ofTransaction: "e3") == 4)
        #expect(e.version(ofTransaction: "e2") == nil, "past retention")
        #expect(try restored.table("users").versions.map(\.txnId) == ["", "u0", "u1", "u2", "u3", "u4", "u5"])
        #expect(try restored.table("empty").retain == 5)
        // A retry after restore still returns its version.
        #expect(restored.execute(.commit(CommitRequest(table: "users", baseVersion: 0, txnId: "u2",
            adds: [DataFile(path: "u/2", rows: 1, size: 1)]))) == .committed(version: 3, duplicate: true))
        #expect(restored.snapshot() == m.snapshot())
    }

    @Test func damagedSnapshotsAndCommandsAreRefused() throws {
        let m = Self.machine(retain: 2)
        for i in 0..<4 { _ = Self.commit(m, base: UInt64(i), txn: "t\(i)", adds: [Self.file("f\(i)")]) }
        let snapshot = m.snapshot()
        let target = TableLogMachine()
        for cut in 0..<snapshot.count { #expect(throws: LuigiError.self) { try target.restore(Array(snapshot[..<cut].isEmpty ? [0] : snapshot[..<cut])) } }
        #expect(target.tables.isEmpty)
        let command = TableCommand.commit(CommitRequest(table: "t", baseVersion: 4, txnId: "x", adds: [Self.file("a", partition: "p")],
            removes: ["f3"]))
        let bytes = command.encoded()
        #expect(try TableCommand(decoding: bytes) == command)
        for i in 0..<bytes.count {
            for bit in 0..<8 {
                var flipped = bytes
                flipped[i] ^= 1 << bit
                // Either it decodes to a valid command or it is refused; never a trap.
                if let c = try? TableCommand(decoding: flipped) { #expect((try? c.validated()) == c) }
                _ = m.apply(RaftEntry(term: 1, index: 100, kind: .normal, data: flipped))
            }
        }
        for cut in 0..<bytes.count { #expect(throws: LuigiError.self) { try TableCommand(decoding: Array(bytes[..<cut])) } }
    }

    @Test func replayIsDeterministic() throws {
        var entries: [RaftEntry] = []
        var rng = SplitMix64(seed: 5)
        entries.append(RaftEntry(term: 1, index: 1, kind: .normal, data: TableCommand.createTable(name: "t", schema: [], retain: 4).encoded()))
        let writer = TableLogMachine()  // what the proposers saw
        _ = writer.apply(entries[0])
        for i in 2...200 {
            let latest = try writer.table("t").latest
            let base = rng.chance(0.7) ? latest : rng.next() % (latest + 1)
            let adds = (0..<Int(rng.next() % 3)).map { DataFile(path: "p\(i)-\($0)", rows: 1, size: 1) }
            entries.append(RaftEntry(term: 1, index: UInt64(i), kind: .normal,
                data: TableCommand.commit(CommitRequest(table: "t", baseVersion: base, txnId: "x\(rng.next() % 150)", adds: adds)).encoded()))
            _ = writer.apply(entries[entries.count - 1])
        }
        let a = TableLogMachine(), b = TableLogMachine()
        let ra = entries.map { a.apply($0) }, rb = entries.map { b.apply($0) }
        #expect(ra == rb)
        #expect(a.snapshot() == b.snapshot())
        #expect(a.snapshot() == writer.snapshot())
        #expect(try a.table("t").latest > 50)
    }
}

extension TableOutcome {
    var isConflict: Bool { if case .conflict = self { return true } else { return false } }
}
