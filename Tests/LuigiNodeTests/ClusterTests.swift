import LuigiBase
import LuigiClient
import LuigiNode
import LuigiWire
import Testing

/// Nodes over real loopback sockets, in this process.
@Suite(.serialized) struct ClusterTests {
    @Test func putGetDeleteCasThroughAnyEndpoint() async throws {
        let cluster = try LocalCluster()
        try await cluster.startAll()
        let client = try cluster.client()
        try client.put("a", Array("1".utf8))
        #expect(try client.get("a") == Array("1".utf8))
        #expect(try client.get("missing") == nil)
        #expect(try client.cas("a", expected: Array("1".utf8), new: Array("2".utf8)))
        #expect(try !client.cas("a", expected: Array("1".utf8), new: Array("3".utf8)))
        #expect(try client.cas("fresh", expected: nil, new: Array("x".utf8)))
        #expect(try client.get("a") == Array("2".utf8))
        #expect(try client.delete("a"))
        #expect(try !client.delete("a"))
        #expect(try client.get("a") == nil)
        // Every endpoint alone finds the leader through redirects.
        for endpoint in cluster.endpoints {
            let single = try cluster.client(endpoints: [endpoint])
            try single.put("via-\(endpoint)", Array(endpoint.utf8))
            #expect(try single.get("fresh") == Array("x".utf8))
        }
        await cluster.stopAll()
    }

    @Test func manyGroupsHaveTheirOwnLeadersAndData() async throws {
        let cluster = try LocalCluster(groups: 4)
        try await cluster.startAll()
        let client = try cluster.client()
        for group in UInt64(1)...4 { try client.put("k", Array("g\(group)".utf8), group: group) }
        for group in UInt64(1)...4 { #expect(try client.get("k", group: group) == Array("g\(group)".utf8)) }
        #expect(throws: LuigiError.self) { try client.get("k", group: 5, timeoutMillis: 300) }
        await cluster.stopAll()
    }

    @Test func leaderStopFailsOverAndRestartKeepsEveryAcknowledgedWrite() async throws {
        let cluster = try LocalCluster()
        try await cluster.startAll()
        let client = try cluster.client()
        var acknowledged: [String: [UInt8]] = [:]
        for i in 0..<50 {
            try client.put("k\(i)", Array("v\(i)".utf8))
            acknowledged["k\(i)"] = Array("v\(i)".utf8)
        }
        for round in 0..<2 {
            guard let leader = try cluster.leader() else { Issue.record("no leader in round \(round)"); break }
            await cluster.stop(leader)
            for i in 0..<20 {
                let key = "r\(round)-\(i)"
                try client.put(key, Array(key.utf8))
                acknowledged[key] = Array(key.utf8)
            }
            try await cluster.start(leader)
        }
        // Stop everything, restart from disk: every acknowledged write is there.
        await cluster.stopAll()
        try await cluster.startAll()
        let fresh = try cluster.client()
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
            #expect(try fresh.get(key) == value, "\(key) lost")
        }
        await cluster.stopAll()
    }

    @Test func wrongSecretIsReportedEvenWithANodeDown() async throws {
        let cluster = try LocalCluster()
        try await cluster.startAll()
        await cluster.stop(3)
        var options = Client.Options()
        options.timeoutMillis = 1500
        let impostor = try Client(
            endpoints: cluster.endpoints, credentials: try cluster.credentials(secret: "wrong-secret-0123456"),
            options: options)
        #expect {
            try impostor.put("never", [1])
        } throws: { error in
            guard case LuigiError.unauthenticated = error else { return false }
            return true
        }
        #expect(try cluster.client().get("never") == nil)
        await cluster.stopAll()
    }

    @Test func membershipCallsAreIdempotentAndAnAddressChangeIsRecorded() async throws {
        let cluster = try LocalCluster()
        try await cluster.startAll()
        let client = try cluster.client()
        let real = cluster.members[2]!.description
        try client.addMember(2, address: real)  // already a voter at that address
        try client.removeMember(99)  // not a member
        // A voter's new address goes through the log's address book.
        try client.addMember(2, address: "127.0.0.1:1")
        #expect(try client.get("__luigi/member/2") == Array("127.0.0.1:1".utf8))
        try client.addMember(2, address: real)
        #expect(try client.get("__luigi/member/2") == Array(real.utf8))
        // Clients may read the address book, not write it.
        #expect(throws: LuigiError.self) { try client.put("__luigi/member/9", Array("h:1".utf8)) }
        #expect(throws: LuigiError.self) { try client.addMember(0, address: real) }
        try client.put("after", [1])
        #expect(try client.get("after") == [1])
        await cluster.stopAll()
    }

    @Test func aRemovedMembersLinksCloseAndReopenWhenItIsAddedBack() async throws {
        let cluster = try LocalCluster(groups: 2)
        try await cluster.startAll()
        let client = try cluster.client()
        try client.put("before", [1], group: 1)
        try client.put("before", [1], group: 2)
        #expect(await eventually { cluster.counter("luigi_peer_links", node: 1) == 2 })
        // Out of one group only: the others still talk to node 3.
        try client.removeMember(3, group: 1)
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(cluster.counter("luigi_peer_links", node: 1) == 2)
        #expect(cluster.counter("luigi_peer_links", node: 2) == 2)
        // Out of every group: its links close on the members.
        try client.removeMember(3, group: 2)
        for id: UInt64 in [1, 2] {
            #expect(await eventually { cluster.counter("luigi_peer_links", node: id) == 1 }, "node \(id) still links to 3")
            let status = try cluster.client(endpoints: [cluster.members[id]!.description]).status()
            #expect(status.contains("\"peers\":[\(3 - id)]"), "node \(id): \(status)")
        }
        try client.put("without-3", [2], group: 1)
        // Added back: its link reopens and it catches up.
        try client.addMember(3, address: cluster.members[3]!.description, group: 1)
        #expect(await eventually { cluster.counter("luigi_peer_links", node: 1) == 2 })
        try client.put("with-3", [3], group: 1)
        let leader = try #require(try cluster.leader(group: 1))
        let target = applied(try cluster.client(endpoints: [cluster.members[leader]!.description]).status())
        let three = try cluster.client(endpoints: [cluster.members[3]!.description])
        #expect(await eventually { (try? three.status()).map { applied($0) >= target } ?? false }, "node 3 did not catch up")
        await cluster.stopAll()
    }

    /// The snapshot travels in pieces (`chunk`), each within the frame
    /// limit, and is put back together whole.
    @Test func aSnapshotLargerThanTheFrameLimitCatchesUpAFollowerInPieces() async throws {
        let cluster = try LocalCluster { config in
            config.maxFramePayload = 64 << 10
            config.peerChunkBytes = 8 << 10
            config.compactAfter = 20
        }
        try await cluster.startAll()
        let client = try cluster.client()
        try client.put("first", [1])
        await cluster.stop(3)
        // 160 KiB of state over 40 entries: the log is compacted, so node 3
        // can only catch up from a snapshot bigger than a client frame.
        for i in 0..<40 { try client.put("big-\(i)", [UInt8](repeating: UInt8(i), count: 4096)) }
        let target = try [1, 2].map { id in
            applied(try cluster.client(endpoints: [cluster.members[UInt64(id)]!.description]).status())
        }.max() ?? 0
        try await cluster.start(3)
        let alone = try cluster.client(endpoints: [cluster.members[3]!.description], timeoutMillis: 1000)
        let caughtUp = await eventually(seconds: 15) { applied((try? alone.status()) ?? "") >= target }
        #expect(caughtUp, "node 3 never caught up from the snapshot")
        // 160 KiB in 8 KiB pieces: at least 20 of them.
        let pieces = cluster.counter("luigi_peer_chunks_sent_total", node: 1) + cluster.counter("luigi_peer_chunks_sent_total", node: 2)
        #expect(pieces >= 20, "\(pieces) pieces")
        #expect(firstGroup("first_index", try alone.status()) > 1, "node 3 has no snapshot")
        await cluster.stopAll()
    }

    @Test func statusReportsEveryGroup() async throws {
        let cluster = try LocalCluster(groups: 2)
        try await cluster.startAll()
        let client = try cluster.client()
        try client.put("x", [1])
        let status = try client.status()
        #expect(status.contains("\"cluster\":\"\(cluster.clusterId)\""))
        #expect(status.contains("\"group\":1"))
        #expect(status.contains("\"group\":2"))
        await cluster.stopAll()
    }

    /// A group compacts after `compactAfter` entries only once the log
    /// since its snapshot outweighs it: a growing state is not rewritten
    /// every few entries (count alone: 30 snapshots here), and what the
    /// snapshots hold comes back after a restart.
    @Test func compactionIsWeighedByTheSnapshotsSize() async throws {
        let cluster = try LocalCluster(size: 1) { $0.compactAfter = 20 }
        try await cluster.startAll()
        let client = try cluster.client()
        let value = [UInt8](repeating: 7, count: 200)
        for i in 0..<600 { try client.put("key-\(i)", value + [UInt8(i & 0xFF)]) }
        let status = try client.status()
        let compactions = firstGroup("compactions", status)
        #expect((2...9).contains(compactions), "\(compactions) compactions: \(status)")
        let first = firstGroup("first_index", status)
        #expect(first > 1, "the log was never compacted: \(status)")
        let entries = applied(status) + 1 - first
        #expect(entries < 20 || firstGroup("log_bytes", status) < firstGroup("snapshot_bytes", status), "\(status)")
        await cluster.stopAll()
        try await cluster.startAll()
        let fresh = try cluster.client()
        // The recovered log counts toward the next compaction.
        let restarted = try fresh.status()
        let (low, high) = (firstGroup("first_index", restarted), firstGroup("last_index", restarted))
        #expect(low <= high && firstGroup("log_bytes", restarted) >= (high + 1 - low) * 24, "\(restarted)")
        for i in stride(from: 0, to: 600, by: 7) {
            #expect(try fresh.get("key-\(i)") == value + [UInt8(i & 0xFF)], "key-\(i)")
        }
        await cluster.stopAll()
    }

    @Test func clientRefusesBadArgumentsBeforeSending() async throws {
        let cluster = try LocalCluster(size: 1)
        try await cluster.startAll()
        let client = try cluster.client()
        #expect(throws: LuigiError.self) { try client.put("", [1]) }
        #expect(throws: LuigiError.self) { try client.put(String(repeating: "k", count: 5000), [1]) }
        #expect(throws: LuigiError.self) { try client.put("k", [UInt8](repeating: 0, count: (8 << 20) + 1)) }
        #expect(throws: LuigiError.self) { try client.get("k", timeoutMillis: 0) }
        #expect(throws: LuigiError.self) { try Client(endpoints: [], credentials: try testCredentials()) }
        #expect(throws: LuigiError.self) { try Client(endpoints: ["nohostport"], credentials: try testCredentials()) }
        try client.put("k", [1])
        #expect(try client.get("k") == [1])
        await cluster.stopAll()
    }
}

/// Group 1's applied index in a status document.
func applied(_ status: String) -> UInt64 { firstGroup("applied", status) }

/// A number in the first group of a status document (0 when absent).
func firstGroup(_ field: String, _ status: String) -> UInt64 {
    let prefix = "\"\(field)\":"
    guard let range = status.split(separator: ",").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
    return UInt64(range.dropFirst(prefix.count)) ?? 0
}
