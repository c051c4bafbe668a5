import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiNode
import LuigiWatermark
import LuigiWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Sharded transactions through the watermark protocol on nodes over TCP:
/// 2 shards, each a Raft group on all 3 nodes, every node a coordinator.
@Suite(.serialized) struct ShardedTxnTests {
    func cluster() throws -> LocalCluster {
        try LocalCluster { config in
            config.shards = 2
            config.shardWorkers = 3
        }
    }

    /// Starts the cluster and waits for a first transaction to commit: the
    /// shard groups elect leaders and recover first (slow under a loaded CI).
    func started() async throws -> LocalCluster {
        let cluster = try cluster()
        try await cluster.startAll()
        let r = try cluster.client(timeoutMillis: 30_000).transact([0: [.read("warm")], 1: [.read("warm")]])
        #expect(r.outcome == .committed)
        return cluster
    }

    /// Both shards' counters, read in one transaction (a read-only one
    /// commits like any other).
    func counters(_ client: Client) throws -> (Int64?, Int64?) {
        let r = try client.transact([0: [.read("x")], 1: [.read("y")]])
        #expect(r.outcome == .committed)
        return (r.reads[0]?.first?.value, r.reads[1]?.first?.value)
    }

    /// Adds to a key on each shard from clients on every node while
    /// readers check that no transaction ever sees one shard's add without
    /// the other's: multi-shard atomicity and serializability over TCP.
    @Test func crossShardAddsAreAtomicAndEveryAcknowledgedOneApplies() async throws {
        let cluster = try await started()
        let writers = 4, perWriter = 40
        let acknowledged = Atomic<Int>(0)
        let torn = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        let credentials = try cluster.credentials()
        let endpoints = cluster.endpoints
        onThreads(writers + 2) { t in
            do {
                var options = Client.Options()
                options.timeoutMillis = 10_000
                // Writers start on different nodes: every coordinator works.
                let client = try Client(
                    endpoints: Array(endpoints[(t % 3)...] + endpoints[..<(t % 3)]), credentials: credentials, options: options)
                if t < writers {
                    for _ in 0..<perWriter {
                        let r = try client.transact([0: [.add("x", 1)], 1: [.add("y", 1)]])
                        guard r.outcome == .committed else { throw LuigiError.state("an add aborted") }
                        acknowledged.add(1, ordering: .relaxed)
                    }
                } else {
                    for _ in 0..<60 {
                        let r = try client.transact([0: [.read("x")], 1: [.read("y")]])
                        let x = r.reads[0]?.first?.value ?? 0, y = r.reads[1]?.first?.value ?? 0
                        if x != y { torn.withLock { $0.append("x \(x) y \(y) at \(r.ts)") } }
                    }
                }
            } catch {
                failures.withLock { $0.append("thread \(t): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(torn.withLock { $0 } == [], "a reader saw one shard's add without the other's")
        let total = Int64(acknowledged.load(ordering: .relaxed))
        #expect(total == Int64(writers * perWriter))
        let (x, y) = try counters(try cluster.client())
        #expect(x == total && y == total)
        await cluster.stopAll()
    }

    @Test func aFailedCheckAbortsEveryShardsPartAndBadRequestsAreRefused() async throws {
        let cluster = try await started()
        let client = try cluster.client()
        #expect(try client.transact([0: [.write("a", 5)], 1: [.write("b", 7)]]).outcome == .committed)
        // Shard 1's check fails: shard 0's write must not take effect.
        let r = try client.transact([0: [.write("a", 99)], 1: [.check("b", atLeast: 8), .write("b", 0)]])
        #expect(r.outcome == .aborted)
        let after = try client.transact([0: [.read("a")], 1: [.read("b")]])
        #expect(after.reads[0] == [ReadResult(key: "a", value: 5)])
        #expect(after.reads[1] == [ReadResult(key: "b", value: 7)])
        // An add that would overflow aborts; the value stays.
        #expect(try client.transact([0: [.write("big", Int64.max)]]).outcome == .committed)
        #expect(try client.transact([0: [.add("big", 1)]]).outcome == .aborted)
        #expect(try client.transact([0: [.read("big")]]).reads[0] == [ReadResult(key: "big", value: Int64.max)])
        // Refused before sending, and by the node (shard 2 of 2).
        #expect(throws: LuigiError.self) { try client.transact([:]) }
        #expect(throws: LuigiError.self) { try client.transact([0: []]) }
        #expect(throws: LuigiError.self) { try client.transact([0: [.read(String(repeating: "k", count: 2000))]]) }
        do {
            _ = try client.transact([2: [.read("k")]])
            Issue.record("a transaction on shard 2 of 2 was accepted")
        } catch let error as LuigiError {
            guard case .invalidArgument = error else { Issue.record("expected invalidArgument, got \(error)"); return }
        }
        await cluster.stopAll()
    }

    /// A shard leader stops under load: the shard elects another leader,
    /// which recovers the unfinished transactions, and the counters end
    /// equal, with every acknowledged add applied. A restarted node's
    /// coordinator takes a new incarnation.
    @Test func aShardLeaderStopsUnderLoadAndNothingAcknowledgedIsLost() async throws {
        let cluster = try await started()
        let client = try cluster.client()
        _ = try counters(client)
        guard let leader = try cluster.leader(group: ShardGroupsTestView.group(0)) else {
            Issue.record("shard 0 has no leader")
            return
        }
        let before = try coordinatorId(cluster, leader)
        let acknowledged = Atomic<Int>(0)
        let unknown = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let credentials = try cluster.credentials()
        let others = cluster.ids.filter { $0 != leader }.map { cluster.members[$0]!.description }
        let failures = Mutex<[String]>([])
        let load = Task.detached {
            onThreads(3) { _ in
                var options = Client.Options()
                options.timeoutMillis = 5_000
                guard let client = try? Client(endpoints: others, credentials: credentials, options: options) else { return }
                while !stop.load(ordering: .relaxed) {
                    do {
                        let r = try client.transact([0: [.add("x", 1)], 1: [.add("y", 1)]])
                        if r.outcome == .committed { acknowledged.add(1, ordering: .relaxed) }
                    } catch let error as LuigiError {
                        if case .timeout = error { unknown.add(1, ordering: .relaxed) } else {
                            failures.withLock { $0.append("\(error)") }
                        }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        await cluster.stop(leader)
        let atStop = acknowledged.load(ordering: .relaxed)
        #expect(await eventually(seconds: 10) { acknowledged.load(ordering: .relaxed) > atStop + 20 }, "no commits after the leader stopped")
        try await cluster.start(leader)
        try await Task.sleep(nanoseconds: 300_000_000)
        stop.store(true, ordering: .relaxed)
        await load.value
        #expect(failures.withLock { $0 } == [])
        let (x, y) = try counters(try cluster.client(timeoutMillis: 10_000))
        let acked = Int64(acknowledged.load(ordering: .relaxed)), maybe = Int64(unknown.load(ordering: .relaxed))
        #expect(x == y, "the shards disagree: x \(x ?? -1) y \(y ?? -1)")
        #expect((x ?? 0) >= acked && (x ?? 0) <= acked + maybe, "x \(x ?? -1), acknowledged \(acked), unknown \(maybe)")
        let after = try coordinatorId(cluster, leader)
        #expect(after != before && after >> 20 == leader, "coordinator \(before) -> \(after)")
        await cluster.stopAll()
    }

    /// Watermark frames larger than a piece travel in pieces like a snapshot.
    @Test func largeWatermarkFramesTravelInPieces() async throws {
        let cluster = try LocalCluster { config in
            config.shards = 2
            config.shardWorkers = 3
            config.peerChunkBytes = 1024
        }
        try await cluster.startAll()
        let client = try cluster.client(timeoutMillis: 30_000)
        let writes = (0..<200).map { Op.write("key-\($0)", Int64($0)) }
        for _ in 0..<3 { #expect(try client.transact([0: writes, 1: writes]).outcome == .committed) }
        let r = try client.transact([0: [.read("key-199")], 1: [.read("key-7")]])
        #expect(r.reads[0]?.first?.value == 199 && r.reads[1]?.first?.value == 7)
        let pieces = cluster.ids.reduce(0) { $0 + cluster.counter("luigi_peer_chunks_sent_total", node: $1) }
        #expect(pieces > 0, "no frame went in pieces")
        await cluster.stopAll()
    }

    /// Node 1's coordinator retires slowly (every 5 s), so stopping it
    /// right after a burst of transactions leaves their records on the
    /// shards. Its next incarnation takes them over: once it has, and every
    /// coordinator retired its own, no shard holds a record.
    @Test func aRestartedCoordinatorRetiresWhatItsPredecessorLeft() async throws {
        let cluster = try LocalCluster { config in
            config.shards = 2
            config.shardWorkers = 3
            if config.nodeId == 1 { config.shardTickMicros = 1_000_000 }
        }
        try await cluster.startAll()
        let one = try cluster.client(endpoints: [cluster.members[1]!.description], timeoutMillis: 30_000)
        for i in 0..<12 {
            let r = try one.transact([0: [.add("x", 1), .write("k\(i)", Int64(i))], 1: [.add("y", 1)]])
            #expect(r.outcome == .committed)
        }
        func records(_ id: UInt64) -> UInt64 {
            guard let status = try? cluster.client(endpoints: [cluster.members[id]!.description], timeoutMillis: 1000).status()
            else { return .max }
            return statusSum("records", in: status)
        }
        await cluster.stop(1)
        #expect(records(2) > 0, "nothing was left to take over")
        try await cluster.start(1)
        let status = { try cluster.client(endpoints: [cluster.members[1]!.description]).status() }
        #expect(await eventually(seconds: 20) { [1, 2, 3].allSatisfy { records($0) == 0 } }, "records left: \([1, 2, 3].map(records))")
        #expect(await eventually(seconds: 20) { (try? status())?.contains("\"adopting\":false") == true }, "still adopting")
        #expect(try !status().contains("\"adopted\":0,"), "the successor took nothing over")
        // The transactions' effects are all there, once.
        let r = try cluster.client().transact([0: [.read("x"), .read("k11")], 1: [.read("y")]])
        #expect(r.reads[0]?.map(\.value) == [12, 11] && r.reads[1]?.first?.value == 12)
        await cluster.stopAll()
    }

    /// A peer's watermark frames that lie about their shard or target, or
    /// hold garbage, are refused and counted; a message for an earlier
    /// coordinator incarnation is dropped; the node keeps serving. A client
    /// may not send watermark frames at all.
    @Test func badWatermarkFramesAreRefusedAndTheNodeStaysUp() async throws {
        let cluster = try await started()
        let credentials = try cluster.credentials()
        let port = cluster.members[1]!.port
        let badBefore = cluster.counter("luigi_bad_frames_total")
        let peer = try RawConnection(port: port)
        #expect(try peer.handshake(credentials, role: .peer(99))?.kind == .welcome)
        let txn = Txn(
            id: TxnId(coordinator: 2 << 20 | 1, worker: 0, seq: 1), ts: 10, mayAbort: false,
            parts: [ShardOps(shard: 1, ops: [.write("evil", 1)])])
        let submitTo1 = WatermarkEnvelope(to: 1, .submit(txn)).encoded()
        peer.send(Frame(.watermark, group: ShardGroupsTestView.group(0), payload: submitTo1))  // shard 1's message in shard 0's frame
        peer.send(Frame(.watermark, group: ShardGroupsTestView.group(1), payload: [0x4C, 0x57, 0x4D, 0x01, 99]))  // garbage
        peer.send(Frame(.watermark, group: 7, payload: submitTo1))  // not a shard group
        let marks = WatermarkEnvelope(to: 3 << 20 | 1, .marks(shard: 0, term: 1, marks: [1, 1, 1]))
        peer.send(Frame(.watermark, group: ShardGroupsTestView.group(0), payload: marks.encoded()))  // for node 3's coordinator
        let stale = WatermarkEnvelope(to: 1 << 20, .marks(shard: 0, term: 1, marks: [1, 1, 1]))
        peer.send(Frame(.watermark, group: ShardGroupsTestView.group(0), payload: stale.encoded()))  // an old incarnation: dropped, not bad
        // Shard ids at the top of the range (a group id computed from them must not overflow).
        peer.send(Frame(.watermark, group: 1, payload: WatermarkEnvelope(to: .max, .submit(txn)).encoded()))
        let topMarks = WatermarkEnvelope(to: 1 << 20 | 1, .marks(shard: .max - 2000, term: 1, marks: [1, 1, 1]))
        peer.send(Frame(.watermark, group: 1, payload: topMarks.encoded()))
        #expect(await eventually { cluster.counter("luigi_bad_frames_total") == badBefore + 6 })
        #expect(try cluster.client(endpoints: [cluster.members[1]!.description]).status().contains("\"stale_watermark_messages\":1,"))
        let client = try RawConnection(port: port)
        #expect(try client.handshake(credentials)?.kind == .welcome)
        client.send(Frame(.watermark, group: ShardGroupsTestView.group(0), payload: submitTo1))
        #expect(client.closedByPeer())
        let r = try cluster.client().transact([0: [.write("after", 1)], 1: [.read("evil")]])
        #expect(r.outcome == .committed && r.reads[1] == [ReadResult(key: "evil", value: nil)])
        await cluster.stopAll()
    }

    /// Three nodes with 2 shards, warmed by a first transaction, then nodes
    /// 2 and 3 stopped: node 1's transactions wait for a quorum that is gone.
    func withoutQuorum(_ tune: @escaping (inout NodeConfig) -> Void) async throws -> LocalCluster {
        let cluster = try LocalCluster { config in
            config.shards = 2
            tune(&config)
        }
        try await cluster.startAll()
        _ = try cluster.client(timeoutMillis: 30_000).transact([0: [.read("warm")], 1: [.read("warm")]])
        await cluster.stop(2)
        await cluster.stop(3)
        return cluster
    }

    /// Transactions that cannot finish (no shard has a quorum) count against
    /// the coordinator's bound after their clients gave up on them: past it,
    /// new ones are refused before any effect.
    @Test func theCoordinatorBoundsWhatItDrivesPastClientTimeouts() async throws {
        let cluster = try await withoutQuorum { $0.maxTransactionsInFlight = 3 }
        let lonely = try cluster.client(endpoints: [cluster.members[1]!.description], timeoutMillis: 50)
        for i in 0..<3 {
            do {
                _ = try lonely.transact([0: [.write("k\(i)", 1)]])
                Issue.record("transaction \(i) committed without a quorum")
            } catch let error as LuigiError {
                guard case .timeout = error else { Issue.record("transaction \(i): \(error)"); continue }
            }
        }
        do {
            _ = try lonely.transact([0: [.write("k3", 1)]])
            Issue.record("a fourth transaction was accepted past the bound of 3")
        } catch let error as LuigiError {
            guard case .state = error else { Issue.record("expected a refusal (state), got \(error)"); return }
        }
        await cluster.stopAll()
    }

    /// A connection's requests in flight are bounded by count and by
    /// bytes: past either, a request is answered `unavailable` at once and
    /// the ones taken keep waiting (here for a quorum that is gone).
    @Test func aConnectionsRequestsInFlightAreBoundedByCountAndBytes() async throws {
        let cluster = try await withoutQuorum { config in
            config.maxInflightPerConnection = 4
            config.maxInflightBytesPerConnection = 4096
        }
        let credentials = try cluster.credentials()
        // Sends transactions at once, the i-th writing `keys[i]` keys of
        // `keyBytes` bytes; returns the request seqs answered within a
        // second, and how.
        func flood(keys: [Int], keyBytes: Int) throws -> [UInt64: ReplyStatus] {
            let raw = try RawConnection(port: cluster.members[1]!.port)
            #expect(try raw.handshake(credentials)?.kind == .welcome)
            for (i, n) in keys.enumerated() {
                let seq = UInt64(i + 1)
                let ops = (0..<n).map { k in
                    Op.write(String(repeating: "k", count: keyBytes - 12) + format8(seq) + "-\(k % 10)\(k / 10 % 10)", 1)
                }
                let request = ClientRequest(
                    id: RequestID(client: 77, seq: seq), timeoutMillis: 20_000,
                    operation: .transact([ShardOps(shard: 0, ops: ops)]))
                raw.send(Frame(.request, group: 0, payload: request.encoded()))
            }
            var answered: [UInt64: ReplyStatus] = [:]
            while let frame = raw.frame(within: 1000), frame.kind == .reply {
                let reply = try ClientReply(decoding: frame.payload)
                answered[reply.id.seq] = reply.status
            }
            return answered
        }
        // By count: 4 small requests are taken, the other 6 refused.
        let byCount = try flood(keys: Array(repeating: 1, count: 10), keyBytes: 16)
        #expect(Set(byCount.keys) == Set(5...10), "\(byCount)")
        #expect(byCount.values.allSatisfy { $0 == .unavailable })
        // By bytes: ~1.4 KiB requests, 2 fit in 4 KiB, the other 4 refused.
        let byBytes = try flood(keys: Array(repeating: 2, count: 6), keyBytes: 700)
        #expect(Set(byBytes.keys) == Set(3...6), "\(byBytes)")
        #expect(byBytes.values.allSatisfy { $0 == .unavailable })
        // One request over the byte bound alone is taken; the next is not.
        let oversized = try flood(keys: [5, 1], keyBytes: 1000)
        #expect(Set(oversized.keys) == [2], "\(oversized)")
        await cluster.stopAll()
    }

    func coordinatorId(_ cluster: LocalCluster, _ node: UInt64) throws -> UInt64 {
        let status = try cluster.client(endpoints: [cluster.members[node]!.description]).status()
        guard let r = status.firstRange(of: "\"coordinator\":") else { return 0 }
        return UInt64(status[r.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}

enum ShardGroupsTestView {
    static func group(_ shard: UInt64) -> UInt64 { NodeConfig.shardGroupBase + 1 + shard }
}

/// `n` as 8 decimal digits.
private func format8(_ n: UInt64) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
