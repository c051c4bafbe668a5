import LuigiCore
import LuigiSimulation
import LuigiStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The table log through Raft: racing writers, retries across leader
/// crashes, snapshots installed on lagging nodes, restarts from disk.
@Suite struct TableLogClusterTests {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func cluster(seed: UInt64, faults: NetworkFaults = .none, compactAfter: Int = 0,
                        storage: (@Sendable (UInt64) throws -> RaftStorage)? = nil) throws -> (RaftCluster, TableLog) {
        var o = RaftCluster.Options(nodes: 3, seed: seed)
        o.faults = faults
        o.compactAfter = compactAfter
        o.openStorage = storage
        let c = try RaftCluster(TableLog.clusterOptions(o))
        try c.electLeader()
        return (c, try TableLog(c))
    }

    static func machine(_ c: RaftCluster, _ id: UInt64) -> TableLogMachine? { c.stateMachine(id) as? TableLogMachine }

    /// Every live node holds the same tables.
    static func converged(_ c: RaftCluster) throws {
        try c.settle()
        let live = c.nodeIDs.filter { c.isAlive($0) }
        guard let first = live.first, let reference = machine(c, first)?.tables else { throw Failure(description: "no live node") }
        for id in live where machine(c, id)?.tables != reference {
            throw Failure(description: "node \(id)'s tables differ from node \(first)'s")
        }
    }

    static func file(_ path: String, rows: UInt64 = 1) -> DataFile { DataFile(path: path, rows: rows, size: rows * 10) }

    @Test func concurrentCommitsOnOneBaseHaveExactlyOneWinner() throws {
        for seed in seeds(12) {
            do {
                let (c, log) = try Self.cluster(seed: seed, faults: NetworkFaults(drop: 0.05, duplicate: 0.05, reorder: 0.1, maxDelay: 2))
                try log.createTable("t")
                for round in 0..<8 {
                    let base = try log.latest("t")
                    let requests = (0..<5).map {
                        CommitRequest(table: "t", baseVersion: base, txnId: "r\(round)-w\($0)", adds: [Self.file("r\(round)/w\($0)")])
                    }
                    let outcomes = try log.commitAll(requests, timeout: 5_000)
                    let winners = outcomes.filter { if case .committed(base + 1, false)? = $0 { return true } else { return false } }
                    let losers = outcomes.filter { if case .conflict(base + 1, _)? = $0 { return true } else { return false } }
                    guard winners.count == 1, losers.count == 4 else {
                        throw Failure(description: "round \(round): \(outcomes)")
                    }
                }
                #expect(try log.latest("t") == 8)
                try Self.converged(c)
            } catch {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
            }
        }
    }

    /// Writers race on one table with retries through crashed leaders, a
    /// lossy network and leader transfers. Checks: every acknowledged commit
    /// is in the history exactly once, no transaction id appears twice, every
    /// version reads as the fold of the requests before it, and every node
    /// ends with the same tables.
    @Test func writersRaceThroughLeaderCrashes() throws {
        let scale = Int(getenvString("LUIGI_SWEEP_SCALE") ?? "") ?? 1  // make soak: 100
        for seed in seeds(10 * scale) {
            do { try Self.race(seed: seed) } catch {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
            }
        }
    }

    static func race(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed ^ 0x7AB1E)
        let (c, log) = try cluster(seed: seed, faults: NetworkFaults(drop: 0.03, reorder: 0.05, maxDelay: 1), compactAfter: 8)
        log.attemptTicks = 20
        try log.createTable("t", retain: 0)
        struct Writer { var base: UInt64 = 0; var pending: CommitRequest?; var n = 0 }
        var writers = [Writer](repeating: Writer(), count: 3)
        var requests: [String: CommitRequest] = [:]
        var acknowledged: [String: UInt64] = [:]
        var live: Set<String> = []  // a writer removes only files it saw live
        for step in 0..<60 {
            let w = Int(rng.next() % 3)
            if writers[w].pending == nil {
                writers[w].n += 1
                let removes = live.filter { $0.hasPrefix("w\(w)/") && rng.chance(0.3) }.sorted()
                writers[w].pending = CommitRequest(table: "t", baseVersion: writers[w].base, txnId: "w\(w)-\(writers[w].n)",
                    adds: [file("w\(w)/\(writers[w].n)", rows: rng.next() % 100)], removes: removes)
            }
            guard let r = writers[w].pending else { continue }
            requests[r.txnId] = r
            do {
                let v = try log.commit(r, timeout: 60)
                if let earlier = acknowledged[r.txnId], earlier != v {
                    throw Failure(description: "step \(step): \(r.txnId) acknowledged as \(earlier) and then \(v)")
                }
                acknowledged[r.txnId] = v
                writers[w].base = v
                writers[w].pending = nil
                for p in r.removes { live.remove(p) }
                for f in r.adds { live.insert(f.path) }
            } catch LuigiError.conflict(_, let latest) {
                // Lost the race: rebase the same files on the latest version
                // under a new id (the old one may still be in flight).
                writers[w].base = latest
                writers[w].n += 1
                writers[w].pending = CommitRequest(table: "t", baseVersion: latest, txnId: "w\(w)-\(writers[w].n)",
                    adds: r.adds, removes: r.removes.filter { live.contains($0) })
            } catch LuigiError.timeout {
                // Unknown: the next attempt retries the very same request.
            } catch LuigiError.invalidArgument(let m) {
                throw Failure(description: "step \(step): \(r.txnId) refused: \(m)")
            }
            switch rng.next() % 10 {
            case 0: if let l = c.leader { c.crash(l) }
            case 1: for id in c.nodeIDs where !c.isAlive(id) { try c.restart(id) }
            case 2: if let l = c.leader, let to = c.nodeIDs.filter({ $0 != l && c.isAlive($0) }).first { try? c.transferLeader(to: to) }
            default: break
            }
        }
        for id in c.nodeIDs where !c.isAlive(id) { try c.restart(id) }
        try c.setFaults(.none)
        try c.electLeader(maxTicks: 2_000)
        try converged(c)
        let versions = try log.versions("t")
        var seen: [String: UInt64] = [:]
        var model: [String: DataFile] = [:]
        for v in versions.dropFirst() {
            guard seen.updateValue(v.version, forKey: v.txnId) == nil else { throw Failure(description: "\(v.txnId) committed twice") }
            guard let r = requests[v.txnId] else { throw Failure(description: "version \(v.version) by unknown \(v.txnId)") }
            for p in r.removes { model[p] = nil }
            for f in r.adds { model[f.path] = f }
            let expected = model.values.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
            guard try log.files("t", at: v.version) == expected else { throw Failure(description: "version \(v.version) is not the fold") }
        }
        for (txn, v) in acknowledged where seen[txn] != v {
            throw Failure(description: "acknowledged \(txn) at \(v), history has \(seen[txn].map(String.init) ?? "nothing")")
        }
        guard acknowledged.count >= 10 else { throw Failure(description: "only \(acknowledged.count) commits acknowledged") }
    }

    /// A retry after the leader crashed with the commit in flight returns one
    /// version, whichever way the first proposal went.
    @Test func retryAcrossFailoverMidCommitAppliesOnce() throws {
        var sawLost = false, sawKept = false
        for seed in seeds(20) {
            let (c, log) = try Self.cluster(seed: seed)
            try log.createTable("t")
            let r = CommitRequest(table: "t", baseVersion: 0, txnId: "once", adds: [Self.file("a")])
            guard let l = c.leader else { Issue.record("seed \(seed): no leader"); continue }
            _ = try c.executeAll([TableCommand.commit(r).encoded()], timeout: Int(seed % 3))  // in flight
            c.crash(l)
            let v = try log.commit(r, timeout: 2_000)
            try c.restart(l)
            try Self.converged(c)
            let versions = try log.versions("t")
            #expect(versions.filter { $0.txnId == "once" }.map(\.version) == [v], "seed \(seed)")
            #expect(try log.latest("t") == 1, "seed \(seed)")
            if Self.machine(c, l)?.tables["t"]?.version(ofTransaction: "once") != nil { sawKept = true } else { sawLost = true }
            #expect(try log.commit(r) == v, "seed \(seed): a second retry")
            if case .committed(_, let duplicate)? = try log.commitAll([r])[0] { #expect(duplicate) }
        }
        #expect(sawKept || sawLost)
    }

    /// Snapshots keep every table: a node far behind gets an installed
    /// snapshot, leadership moves, the whole cluster restarts from disk.
    @Test func stateSurvivesSnapshotInstallLeaderChangeAndRestartFromDisk() throws {
        var template = Array("/tmp/luigi-tablelog-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { _ = system("rm -rf '\(root)'") }
        let (c, log) = try Self.cluster(seed: 3, compactAfter: 5) { id in try DurableRaftStorage(directory: "\(root)/node-\(id)") }
        try log.createTable("events", schema: Array("ts:int".utf8), retain: 4)
        try log.createTable("users", schema: [1], retain: 0)
        let lagging = c.nodeIDs.first { $0 != c.leader }!
        c.crash(lagging)
        for i in 0..<30 {
            _ = try log.commit(CommitRequest(table: "events", baseVersion: UInt64(i), txnId: "e\(i)",
                adds: [DataFile(path: "e/\(i)", rows: 1, size: 1, partition: "d=\(i % 3)", minStats: [UInt8(i)], maxStats: [0xFF])],
                removes: i > 0 ? ["e/\(i - 1)"] : []))
            _ = try log.commit(CommitRequest(table: "users", baseVersion: UInt64(i), txnId: "u\(i)", adds: [Self.file("u/\(i)")]))
        }
        #expect((c.storage(c.leader!).flatMap { try? $0.firstIndex() } ?? 0) > 10, "the leader compacted its log")
        try c.restart(lagging)
        try Self.converged(c)  // the lagging node caught up through a snapshot
        let before = Self.machine(c, c.leader!)?.tables
        #expect(Self.machine(c, lagging)?.tables == before)
        try c.transferLeader(to: lagging)
        try c.electLeader()
        #expect(try log.files("events", at: 27).map(\.path) == ["e/26"])
        #expect(throws: LuigiError.self) { try log.files("events", at: 26) }
        for id in c.nodeIDs { c.crash(id) }
        for id in c.nodeIDs { try c.restart(id) }
        try c.electLeader()
        try Self.converged(c)
        for id in c.nodeIDs { #expect(Self.machine(c, id)?.tables == before, "node \(id) after the restart") }
        #expect(try log.commit(CommitRequest(table: "users", baseVersion: 0, txnId: "u4", adds: [Self.file("u/4")])) == 5)
        #expect(try log.schema("events") == Array("ts:int".utf8))
    }

    /// Compaction is an ordinary commit: many small files out, one in;
    /// what readers see (rows, and every older version) is unchanged.
    @Test func compactionLeavesResultsUnchanged() throws {
        let (_, log) = try Self.cluster(seed: 9)
        try log.createTable("t")
        for i in 0..<20 {
            _ = try log.commit(CommitRequest(table: "t", baseVersion: UInt64(i), txnId: "small\(i)", adds: [Self.file("s/\(i)", rows: UInt64(i + 1))]))
        }
        let old = try log.files("t", at: 20)
        let rows = old.reduce(0) { $0 + $1.rows }
        let v = try log.commit(CommitRequest(table: "t", baseVersion: 20, txnId: "compact",
            adds: [DataFile(path: "big/0", rows: rows, size: old.reduce(0) { $0 + $1.size })], removes: old.map(\.path)))
        #expect(v == 21)
        #expect(try log.files("t").map(\.path) == ["big/0"])
        #expect(try log.files("t").reduce(0) { $0 + $1.rows } == rows)
        #expect(try log.files("t", at: 20) == old)
        #expect(try log.files("t", at: 7).count == 7)
    }

    @Test func badInputThroughTheClusterChangesNothing() throws {
        let (c, log) = try Self.cluster(seed: 4)
        try log.createTable("t")
        _ = try log.commit(CommitRequest(table: "t", baseVersion: 0, txnId: "a", adds: [Self.file("x")]))
        let before = Self.machine(c, c.leader!)?.snapshot()
        let lastIndex = c.status(c.leader!)?.lastIndex
        #expect(throws: LuigiError.self) { try log.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file("")])) }
        #expect(throws: LuigiError.self) { try log.commit(CommitRequest(table: "t", baseVersion: 1, txnId: "b", adds: [Self.file("p"), Self.file("p")])) }
        #expect(c.status(c.leader!)?.lastIndex == lastIndex, "malformed requests are refused before they reach the log")
        #expect(throws: LuigiError.invalidArgument("no table named u")) { try log.commit(CommitRequest(table: "u", baseVersion: 0, txnId: "b")) }
        #expect(throws: LuigiError.invalidArgument("no table named u")) { try log.latest("u") }
        // Raw garbage proposed straight to the log is applied as a refusal everywhere.
        #expect(try c.executeAll([[0x4C, 0x54, 0x4C, 0x01, 2, 0xFF]])[0].map { try TableOutcome(decoding: $0) }.map {
            if case .invalid = $0 { return true } else { return false } } == true)
        try c.settle()
        #expect(Self.machine(c, c.leader!)?.tables == { let m = TableLogMachine(); try? m.restore(before ?? []); return m.tables }())
        #expect(throws: LuigiError.self) { try TableLog(RaftCluster(RaftCluster.Options(nodes: 1, seed: 1))) }
    }
}

@Suite struct TableLogReadmeTests {
    /// The README's Swift example, as written there.
    @Test func readmeExample() throws {
        let cluster = try RaftCluster(TableLog.clusterOptions(RaftCluster.Options(nodes: 3, seed: 1)))
        let log = try TableLog(cluster)
        try log.createTable("events", schema: Array("id BIGINT".utf8))
        let v = try log.commit(CommitRequest(table: "events", baseVersion: 0, txnId: "load-1",
                                             adds: [DataFile(path: "part-0.parquet", rows: 1000, size: 1 << 20)]))
        // a stale base throws LuigiError.conflict(_, current: latest); the same txnId returns v again
        let files = try log.files("events", at: v)  // linearizable (ReadIndex), any retained version
        #expect(v == 1)
        #expect(files.map(\.path) == ["part-0.parquet"])
        #expect(throws: LuigiError.conflict("stale base: the commit is based on version 0 of events, whose latest version is 1", current: 1)) {
            try log.commit(CommitRequest(table: "events", baseVersion: 0, txnId: "load-2", adds: [DataFile(path: "p1", rows: 1, size: 1)]))
        }
        #expect(try log.commit(CommitRequest(table: "events", baseVersion: 0, txnId: "load-1",
                                             adds: [DataFile(path: "part-0.parquet", rows: 1000, size: 1 << 20)])) == v)
    }
}
