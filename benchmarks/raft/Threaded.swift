// The durable harness: one OS thread per Raft node, so the nodes' fdatasyncs
// overlap as they would on three machines (here they still share one disk
// and the machine's cores). Each RaftDriver, its node and its storage are
// touched by their own thread only; threads talk through blocking inboxes.
import LuigiCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A node's inbox: other threads push messages, the owner takes them all at
/// once, blocking while it has nothing else to do.
final class Inbox: @unchecked Sendable {  // every field is guarded by `mutex`
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queued: [RaftMessage] = []
    private var closed = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func push(_ messages: [RaftMessage]) {
        pthread_mutex_lock(mutex)
        queued.append(contentsOf: messages)
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(cond)
    }

    /// Ends the run: a waiting owner wakes up and `take` returns nil.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_mutex_unlock(mutex)
        pthread_cond_broadcast(cond)
    }

    /// Everything queued (possibly nothing unless `wait`); with `wait`,
    /// blocks until something arrives. nil once closed.
    func take(wait: Bool) -> [RaftMessage]? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while wait && queued.isEmpty && !closed { pthread_cond_wait(cond, mutex) }
        if closed { return nil }
        let taken = queued
        queued = []
        return taken
    }
}

/// Runs `body` on a new OS thread; `join` waits for it.
final class OSThread: @unchecked Sendable {  // `thread` is set before start and read by `join` only
    private let body: () -> Void
    private var thread = pthread_t()

    init(_ body: @escaping () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<OSThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    func join() { pthread_join(thread, nil) }
}

/// One node and what its thread owns. Only that thread touches it while the
/// run lasts; the main thread reads the results after `join`.
final class NodeWorker: @unchecked Sendable {
    let driver: RaftDriver
    let storage: CountingStorage
    let inbox = Inbox()
    init(driver: RaftDriver, storage: CountingStorage) {
        self.driver = driver
        self.storage = storage
    }
}

/// The closed-loop client, on the leader's thread: keeps `concurrency`
/// proposals in flight and times each from propose to applied.
final class Client {
    let concurrency: Int
    let total: Int
    let payload: [UInt8]
    var proposed = 0
    var committed = 0
    /// Start time of each proposal by log index - `firstIndex` (0 once
    /// applied). An array, not a dictionary: this runs on the leader's
    /// thread for every entry, inside the round being measured.
    var proposedAt: [UInt64] = []
    var firstIndex: UInt64 = 0
    var latencies: [UInt64] = []
    var start: UInt64 = 0
    var end: UInt64 = 0

    init(concurrency: Int, total: Int, payload: Int) {
        self.concurrency = concurrency
        self.total = total
        self.payload = [UInt8](repeating: 0x5A, count: payload)
        latencies.reserveCapacity(total)
        proposedAt.reserveCapacity(total)
    }

    var done: Bool { committed >= total }

    func topUp(_ node: RaftNode) throws {
        guard node.role == .leader else { return }
        if start == 0 { start = nowNanos() }
        while proposed - committed < concurrency && proposed < total {
            let index = try node.propose(payload)
            if proposedAt.isEmpty { firstIndex = index }
            // One leader, so its proposals take consecutive indices.
            precondition(index == firstIndex + UInt64(proposedAt.count), "proposal indices are not consecutive")
            proposedAt.append(nowNanos())
            proposed += 1
        }
    }

    func applied(_ entries: [RaftEntry]) {
        let t = nowNanos()
        for e in entries where e.index >= firstIndex && e.index - firstIndex < UInt64(proposedAt.count) {
            let i = Int(e.index - firstIndex)
            if proposedAt[i] != 0 {
                latencies.append(t - proposedAt[i])
                proposedAt[i] = 0
                committed += 1
            }
        }
        if done && end == 0 { end = t }
    }
}

/// One node's thread: step what arrived, then persist/sync, send and apply
/// every Ready, and block only when there is nothing left to do.
/// With `sendEarly`, the leader hands out its appends before its own
/// write and sync (RaftDriver.nextReady(sendingEarly:)).
func nodeLoop(_ me: NodeWorker, peers: [UInt64: NodeWorker], client: Client?, sendEarly: Bool) {
    // One push per peer, so a batch wakes each thread once.
    func route(_ messages: [RaftMessage]) {
        var outgoing: [UInt64: [RaftMessage]] = [:]
        for m in messages { outgoing[m.to, default: []].append(m) }
        for (to, batch) in outgoing { peers[to]!.inbox.push(batch) }
    }
    do {
        let node = me.driver.node
        if client != nil { node.campaign() }
        while true {
            try client?.topUp(node)
            guard let arrived = me.inbox.take(wait: !node.hasReady) else { return }
            for m in arrived { try node.step(m) }
            try client?.topUp(node)
            while let rd = try me.driver.nextReady(sendingEarly: sendEarly ? route : nil) {
                route(rd.messages)
                client?.applied(rd.committedEntries)
                try me.driver.advance(rd)
            }
            if let client, client.done {
                for worker in peers.values { worker.inbox.close() }
                return
            }
        }
    } catch {
        fatalError("node \(me.driver.node.id): \(error)")
    }
}

/// Three nodes, one thread each; node 1 campaigns and then serves the client.
func runThreadedCluster(concurrency: Int, commits total: Int, payload: Int, storages: [CountingStorage], sendEarly: Bool)
    throws -> Run
{
    let ids: [UInt64] = [1, 2, 3]
    var workers: [UInt64: NodeWorker] = [:]
    for (i, id) in ids.enumerated() {
        var c = RaftConfig(id: id)
        c.maxInflightMessages = 4096
        c.seed = 7
        workers[id] = NodeWorker(driver: try RaftDriver(config: c, storage: storages[i], voters: ids), storage: storages[i])
    }
    let client = Client(concurrency: concurrency, total: total, payload: payload)
    let all = workers
    let threads = ids.map { id in
        let me = all[id]!
        let leaderClient = id == 1 ? client : nil
        return OSThread { nodeLoop(me, peers: all, client: leaderClient, sendEarly: sendEarly) }
    }
    for t in threads { t.join() }
    client.latencies.sort()
    return Run(concurrency: concurrency, commits: client.committed, seconds: Double(client.end - client.start) / 1e9,
               p50: percentile(client.latencies, 50), p99: percentile(client.latencies, 99),
               fdatasyncs: storages.reduce(0) { $0 + $1.syncs }, syncNanos: storages.reduce(0) { $0 + $1.syncNanos },
               sendEarly: sendEarly)
}

/// Latency samples gathered from several threads.
final class SharedSamples: Sendable {
    let all = Mutex<[UInt64]>([])
}

/// The disk's floor: `threads` threads, each writing 256 bytes + fdatasync
/// to its own file `count` times at once. With 1 thread this is the plain
/// fdatasync latency; with 3 it shows whether the disk overlaps concurrent
/// syncs (as three nodes on one disk need) or serializes them.
func measureFdatasync(directory: String, count: Int, threads: Int) -> (p50: UInt64, p99: UInt64, perSecond: Double) {
    let samples = SharedSamples()
    let start = nowNanos()
    let workers = (0..<threads).map { n in
        OSThread {
            let path = directory + "/fdatasync-\(n).probe"
            let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd); unlink(path) }
            let block = [UInt8](repeating: 1, count: 256)
            var mine: [UInt64] = []
            for i in 0..<count {
                let t = nowNanos()
                _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 256, off_t(i * 256)) }
                fdatasync(fd)
                mine.append(nowNanos() - t)
            }
            samples.all.withLock { $0.append(contentsOf: mine) }
        }
    }
    for w in workers { w.join() }
    let seconds = Double(nowNanos() - start) / 1e9
    let sorted = samples.all.withLock { $0.sorted() }
    return (percentile(sorted, 50), percentile(sorted, 99), Double(sorted.count) / seconds)
}
