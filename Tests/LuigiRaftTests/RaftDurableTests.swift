import LuigiCore
import LuigiSimulation
import LuigiStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Raft on the durable write-ahead log: whole-cluster crashes and a torn
/// WAL tail lose nothing that was acknowledged.
@Suite struct RaftDurableTests {
    static func tempDirectory() -> String {
        var template = Array("/tmp/luigi-raft-durable-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    static func cluster(_ root: String, seed: UInt64) throws -> RaftCluster {
        var o = RaftCluster.Options(nodes: 3, seed: seed)
        o.openStorage = { id in try DurableRaftStorage(directory: "\(root)/node-\(id)") }
        o.compactAfter = 40
        return try RaftCluster(o)
    }

    @Test func everyAcknowledgedWriteSurvivesAWholeClusterCrash() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let c = try Self.cluster(root, seed: 11)
        try c.electLeader()
        for i in 0..<100 { #expect(try c.put("k\(i % 7)", "v\(i)")) }
        for id in c.nodeIDs { c.crash(id) }
        for id in c.nodeIDs { try c.restart(id) }
        try c.electLeader()
        try c.settle()
        for id in c.nodeIDs {
            #expect(c.machine(id)?.data["k3"] == bytes("v94"), "node \(id)")
            #expect(c.machine(id)?.data.count == 7, "node \(id)")
        }
        #expect(try c.linearizableGet("k6") == [1] + bytes("v97"))
    }

    /// A cluster reopened from its data directories starts its client history
    /// from the recovered store, so that history is checkable too.
    @Test func historyOfAReopenedClusterStartsFromTheRecoveredStore() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        do {
            let first = try Self.cluster(root, seed: 13)
            try first.electLeader()
            for i in 0..<20 { #expect(try first.put("k\(i % 4)", "v\(i)")) }
            #expect(try first.execute(.delete(key: "k0")) != nil)
        }
        let c = try Self.cluster(root, seed: 14)
        #expect(c.history.initial == ["k1": bytes("v17"), "k2": bytes("v18"), "k3": bytes("v19")])
        #expect(c.history.operations.isEmpty)
        #expect(try c.linearizableGet("k3") == [1] + bytes("v19"))
        #expect(try c.execute(.cas(key: "k2", expected: bytes("v18"), new: bytes("w"))) == [1])
        #expect(try c.linearizableGet("k0") == [0])
        #expect(c.history.check() == .linearizable)
        // The same operations against a wrong starting store are refuted.
        var wrong = KVHistory(initial: ["k3": bytes("v3")])
        for op in c.history.operations {
            let id = wrong.invoke(client: op.client, kind: op.kind, at: op.invoke)
            wrong.complete(id, result: op.result!, at: op.response!)
        }
        #expect(wrong.check().isViolation)
    }

    /// A crash in the middle of a WAL write leaves a torn tail: on restart
    /// it is cut off, and the node catches up from the leader.
    @Test func restartAfterATornTail() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let c = try Self.cluster(root, seed: 12)
        let l = try c.electLeader()
        for i in 0..<30 { #expect(try c.put("a\(i)", "x")) }
        let victim = c.nodeIDs.first { $0 != l }!
        c.crash(victim)
        // Half a record at the end of the newest segment: a torn write.
        let dir = "\(root)/node-\(victim)"
        let newest = try #require(try listWAL(dir).last)
        let fd = open("\(dir)/\(newest)", O_WRONLY | O_APPEND)
        #expect(fd >= 0)
        let torn: [UInt8] = [200, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3]
        _ = torn.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        for i in 30..<60 { #expect(try c.put("a\(i)", "y")) }
        try c.restart(victim)
        let recovered = try #require(c.storage(victim) as? DurableRaftStorage)
        #expect(recovered.recovery.wal.truncatedBytes == torn.count, "the torn tail was cut off")
        try c.settle()
        #expect(c.machine(victim)?.data.count == 60)
        #expect(c.machine(victim)?.data["a59"] == bytes("y"))
    }

    @Test func missingParentsAreCreatedButImpossiblePathsFail() throws {
        let root = Self.tempDirectory()
        defer { _ = system("rm -rf '\(root)'") }
        let deep = try DurableRaftStorage(directory: "\(root)/a/b/c")
        deep.close()
        #expect(throws: StorageError.self) { try DurableRaftStorage(directory: "/proc/luigi-cannot/exist") }
    }

    func listWAL(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix("wal-") && name.hasSuffix(".log") { names.append(name) }
        }
        return names.sorted()
    }
}
