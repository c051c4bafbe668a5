import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiWatermark
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `luigi-cluster-demo sharded [--kills K]`: sharded transactions on real
/// processes. Three nodes run 2 watermark shards; 4 clients move money
/// between accounts on shard 0 and shard 1 (a transfer aborts rather than
/// overdraw), each also counting its own transfers on both shards, while 2
/// readers read every account in one transaction. The leader of one shard
/// is SIGKILLed and restarted K times, then the whole cluster is SIGKILLed
/// under load and restarted from disk; every link between nodes is delayed
/// by 20 ms throughout. Checks: every read saw the total conserved,
/// the counters agree across shards and cover every acknowledged transfer,
/// the balances still sum to the total, a restarted node's coordinator
/// took a new id, and in the end no shard holds a record of a killed one.
func runSharded(_ arguments: [String]) -> Never {
    var checks = Checklist()
    let kills = max(1, option("--kills", 2))
    let accounts = 8
    let initial: Int64 = 1_000
    let total = 2 * Int64(accounts) * initial
    let cluster: ProcessCluster
    do {
        cluster = try ProcessCluster(
            binary: executableDirectory() + "/luigi-node", size: 3, extraArguments: ["--shards", "2"], proxied: true)
        try cluster.startAll()
    } catch {
        say("cannot start the cluster: \(error)")
        exit(2)
    }
    let shardGroups: [UInt64] = [2001, 2002]
    guard shardGroups.allSatisfy({ cluster.awaitLeader(group: $0) != nil }) else {
        say("no shard leaders")
        exit(1)
    }
    say("sharded transactions: 2 shards on 3 nodes, 4 transferring clients and 2 readers; \(kills) shard-leader kills, then all")
    let seed = try? cluster.client(timeoutMillis: 10_000).transact([
        0: (0..<accounts).map { .write("a\($0)", initial) }, 1: (0..<accounts).map { .write("b\($0)", initial) },
    ])
    checks.check(seed?.outcome == .committed, "accounts opened: \(accounts) per shard, \(initial) each")

    let load = ShardedLoad(cluster, accounts: accounts, total: total)
    onThreads(7) { i in
        if i < 4 { load.transfer(i) } else if i < 6 { load.read() } else { load.killLeaders(kills) }
    }
    for event in load.events { checks.check(!event.hasPrefix("FAIL"), event) }
    let acked = load.acknowledged.withLock { $0 }
    let unknown = load.unknown.withLock { $0 }
    say("  \(acked.reduce(0, +)) transfers acknowledged, \(unknown.reduce(0, +)) without an answer, \(load.reads.load(ordering: .relaxed)) reads")
    checks.check(load.torn.withLock { $0 }.isEmpty, "every read saw the total \(total) (\(load.torn.withLock { $0 }.prefix(3)))")
    checks.check(acked.reduce(0, +) > 0, "transfers were acknowledged")

    let reader = try! cluster.client(timeoutMillis: 15_000)
    let all: [UInt64: [Op]] = [
        0: (0..<accounts).map { .read("a\($0)") } + (0..<4).map { .read("n\($0)") },
        1: (0..<accounts).map { .read("b\($0)") } + (0..<4).map { .read("n\($0)") },
    ]
    if let r = try? reader.transact(all) {
        let values = { (shard: UInt64, prefix: String) in
            (r.reads[shard] ?? []).filter { $0.key.hasPrefix(prefix) }.map { $0.value ?? 0 }
        }
        let sum = values(0, "a").reduce(0, +) + values(1, "b").reduce(0, +)
        checks.check(sum == total, "after the restart the balances sum to \(total) (\(sum))")
        let n0 = values(0, "n"), n1 = values(1, "n")
        checks.check(n0 == n1, "each client's transfer count is the same on both shards (\(n0) / \(n1))")
        let covered = (0..<4).allSatisfy { t in
            n0.count == 4 && n0[t] >= Int64(acked[t]) && n0[t] <= Int64(acked[t] + unknown[t])
        }
        checks.check(covered, "every acknowledged transfer applied, nothing else but unanswered ones (\(n0) vs \(acked) + \(unknown))")
    } else {
        checks.check(false, "the cluster answers a read after the restart")
    }
    // Every killed coordinator was taken over by its node's next one: once
    // they are done and the live ones retired theirs, no shard holds a record.
    var left: [UInt64] = []
    for _ in 0..<300 {
        left = shardRecords(cluster)
        if left.count == 3 && left.allSatisfy({ $0 == 0 }) { break }
        usleep(100_000)
    }
    checks.check(left.count == 3 && left.allSatisfy { $0 == 0 },
                 "every killed coordinator's transactions were taken over and retired: no shard record left (\(left) per node)")
    checks.finish(cluster, success: "sharded transactions survived shard-leader kills and a whole-cluster kill")
}

/// Each node's transaction records on its shard groups, from its /status
/// (absent nodes left out); a node still taking over counts one more.
func shardRecords(_ cluster: ProcessCluster) -> [UInt64] {
    cluster.ids.compactMap { id in
        guard let client = try? cluster.client(endpoints: [cluster.endpoint(id)], timeoutMillis: 5000),
            let text = try? client.status()
        else { return nil }
        return statusSum("records", in: text) + (text.contains("\"adopting\":true") ? 1 : 0)
    }
}

/// Each node's coordinator id from its /status (absent nodes left out).
func coordinatorIds(_ cluster: ProcessCluster) -> [UInt64: UInt64] {
    var out: [UInt64: UInt64] = [:]
    for id in cluster.ids {
        guard let client = try? cluster.client(endpoints: [cluster.endpoint(id)], timeoutMillis: 5000),
            let text = try? client.status(), let start = text.firstRange(of: "\"coordinator\":")
        else { continue }
        out[id] = UInt64(text[start.upperBound...].prefix { $0.isNumber })
    }
    return out
}

/// What the sharded run's threads share.
final class ShardedLoad: Sendable {
    let cluster: ProcessClusterBox
    let accounts: Int
    let total: Int64
    let acknowledged = Mutex<[Int]>([0, 0, 0, 0])
    let unknown = Mutex<[Int]>([0, 0, 0, 0])
    let torn = Mutex<[String]>([])
    let reads = Atomic<Int>(0)
    let done = Atomic<Bool>(false)
    let eventLog = Mutex<[String]>([])
    var events: [String] { eventLog.withLock { $0 } }

    init(_ cluster: ProcessCluster, accounts: Int, total: Int64) {
        self.cluster = ProcessClusterBox(cluster)
        self.accounts = accounts
        self.total = total
    }

    /// Client `t` moves 1...10 between a random account on each shard, in
    /// either direction, and counts the transfer on both shards.
    func transfer(_ t: Int) {
        guard let client = try? cluster.value.client(timeoutMillis: 5_000) else { return }
        var rng = SystemRandomNumberGenerator()
        while !done.load(ordering: .relaxed) {
            let from = UInt64.random(in: 0...1, using: &rng)
            let amount = Int64.random(in: 1...10, using: &rng)
            let a = Int.random(in: 0..<accounts, using: &rng), b = Int.random(in: 0..<accounts, using: &rng)
            let source = from == 0 ? "a\(a)" : "b\(b)", target = from == 0 ? "b\(b)" : "a\(a)"
            let txn: [UInt64: [Op]] = [
                from: [.add(source, -amount), .check(source, atLeast: 0), .add("n\(t)", 1)],
                1 - from: [.add(target, amount), .add("n\(t)", 1)],
            ]
            do {
                let r = try client.transact(txn)
                if r.outcome == .committed { acknowledged.withLock { $0[t] += 1 } }
            } catch {
                // Sent once: the outcome of an unanswered transfer is unknown.
                unknown.withLock { $0[t] += 1 }
            }
        }
    }

    /// Reads every account in one transaction: the sum is always the total.
    func read() {
        guard let client = try? cluster.value.client(timeoutMillis: 5_000) else { return }
        let ops: [UInt64: [Op]] = [
            0: (0..<accounts).map { .read("a\($0)") }, 1: (0..<accounts).map { .read("b\($0)") },
        ]
        while !done.load(ordering: .relaxed) {
            guard let r = try? client.transact(ops) else { continue }
            let sum = (r.reads.values.flatMap { $0 }).reduce(Int64(0)) { $0 + ($1.value ?? 0) }
            if sum != total { torn.withLock { $0.append("\(sum) at ts \(r.ts)") } }
            reads.add(1, ordering: .relaxed)
            usleep(5_000)
        }
    }

    /// SIGKILLs the leader of shard 0 or 1 (in turn) and restarts it.
    func killLeaders(_ kills: Int) {
        // Every link between nodes is slowed to 20 ms each way: a part runs
        // well before its record is replicated, so a killed leader takes
        // executed, unreplicated parts with it, and only the watermarks
        // keep the clients from being told of them.
        cluster.value.setDelay(20)
        usleep(1_500_000)
        for k in 0..<kills {
            let group: UInt64 = 2001 + UInt64(k % 2)
            guard let leader = cluster.value.leader(group: group) else {
                eventLog.withLock { $0.append("FAIL: no leader of group \(group) to kill") }
                continue
            }
            let before = acknowledged.withLock { $0.reduce(0, +) }
            cluster.value.kill(leader)
            usleep(1_500_000)
            let after = acknowledged.withLock { $0.reduce(0, +) }
            eventLog.withLock {
                $0.append((after > before ? "" : "FAIL: ") + "shard \(k % 2)'s leader \(leader) killed; \(after - before) transfers acknowledged in the next 1.5 s")
            }
            do { try cluster.value.start(leader) } catch {
                eventLog.withLock { $0.append("FAIL: restarting \(leader): \(error)") }
            }
            usleep(1_000_000)
        }
        // The whole cluster dies at once, mid-transfer, and restarts from
        // disk: what was acknowledged was on a majority's disk.
        let before = coordinatorIds(cluster.value)
        for id in cluster.value.ids { cluster.value.kill(id) }
        do { try cluster.value.startAll() } catch { eventLog.withLock { $0.append("FAIL: restart: \(error)") } }
        let after = coordinatorIds(cluster.value)
        let renewed = before.count == 3 && after.count == 3 && before.allSatisfy { after[$0.key] != $0.value }
        let ids = "\(before.sorted { $0.key < $1.key }.map(\.value)) -> \(after.sorted { $0.key < $1.key }.map(\.value))"
        eventLog.withLock {
            $0.append("\(renewed ? "" : "FAIL: ")the whole cluster killed under load and restarted; every coordinator took a new id (\(ids))")
        }
        usleep(1_500_000)
        done.store(true, ordering: .relaxed)
    }
}

/// The cluster handle shared by the load threads (each call is its own).
final class ProcessClusterBox: @unchecked Sendable {
    let value: ProcessCluster
    init(_ value: ProcessCluster) { self.value = value }
}
