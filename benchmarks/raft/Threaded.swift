// The durable harness: one OS thread per Raft node, so the nodes' fdatasyncs
// overlap as they would on three machines (here they still share one disk
// and the machine's cores). Each node is a RaftHost touched by its own
// thread only; threads pass encoded messages through blocking inboxes.
import LuigiCore
import LuigiHost
import LuigiStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A node's inbox of encoded messages: other threads push, the owner takes
/// them all at once, blocking while it has nothing else to do.
final class Inbox: @unchecked Sendable {  // every field is guarded by `mutex`
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queued: [[UInt8]] = []
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

    func push(_ messages: [[UInt8]]) {
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
    func take(wait: Bool) -> [[UInt8]]? {
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

/// The closed-loop client, on the leader's thread: keeps `concurrency`
/// proposals in flight and times each from propose to applied.
final class Client {
    let concurrency: Int
    let total: Int
    let payloadSize: Int
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

    init(concurrency: Int, total: Int, payloadSize: Int) {
        self.concurrency = concurrency
        self.total = total
        self.payloadSize = payloadSize
        latencies.reserveCapacity(total)
        proposedAt.reserveCapacity(total)
    }

    var done: Bool { committed >= total }

    func topUp(_ node: RaftNode) throws {
        guard node.role == .leader else { return }
        if start == 0 { start = nowNanos() }
        while proposed - committed < concurrency && proposed < total {
            let index = try node.propose(payload(proposed, size: payloadSize))
            if proposedAt.isEmpty { firstIndex = index }
            // One leader, so its proposals take consecutive indices.
            precondition(index == firstIndex + UInt64(proposedAt.count), "proposal indices are not consecutive")
            proposedAt.append(nowNanos())
            proposed += 1
        }
    }

    /// The leader's machine applied `e`.
    func applied(_ e: RaftEntry) {
        guard e.index >= firstIndex && e.index - firstIndex < UInt64(proposedAt.count) else { return }
        let i = Int(e.index - firstIndex)
        guard proposedAt[i] != 0 else { return }
        let t = nowNanos()
        latencies.append(t - proposedAt[i])
        proposedAt[i] = 0
        committed += 1
        if done && end == 0 { end = t }
    }
}

/// One node's thread: step what arrived, run its host's loop (persist/sync,
/// apply, send, advance), and block only when there is nothing left to do.
/// Each host, its driver, node, machine and storage are touched by their
/// own thread only while the run lasts.
func nodeLoop(_ host: RaftHost, inbox: Inbox, peers: [UInt64: Inbox], client: Client?) {
    do {
        let node = host.driver(0)!.node
        if client != nil { node.campaign() }
        while true {
            try client?.topUp(node)
            guard let arrived = inbox.take(wait: !node.hasReady) else { return }
            for bytes in arrived { try host.receive(bytes) }
            try client?.topUp(node)
            try host.process()
            if let client, client.done {
                for peer in peers.values { peer.close() }
                return
            }
        }
    } catch {
        fatalError("node \(host.driver(0)!.node.id): \(error)")
    }
}

/// Three nodes, one thread each; node 1 campaigns and then serves the client.
/// Afterwards the main thread lets the followers catch up and checks that
/// every node applied the same commands.
func runThreadedCluster(concurrency: Int, commits total: Int, payload: Int, storages: [SyncCountingStorage], sendEarly: Bool)
    throws -> Run
{
    let ids: [UInt64] = [1, 2, 3]
    let inboxes = Dictionary(uniqueKeysWithValues: ids.map { ($0, Inbox()) })
    // A batch's messages leave in one push per peer, so a batch wakes each
    // thread once.
    let trio = try Trio(storages: storages, send: { batch in
        var byPeer: [UInt64: [[UInt8]]] = [:]
        for e in batch { byPeer[e.to, default: []].append(e.bytes) }
        for (to, messages) in byPeer { inboxes[to]!.push(messages) }
    }, sendsEarly: sendEarly)
    let client = Client(concurrency: concurrency, total: total, payloadSize: payload)
    trio.machines[1]!.onApply = client.applied
    let threads = ids.map { id in
        let host = trio.hosts[id]!
        let inbox = inboxes[id]!
        let leaderClient = id == 1 ? client : nil
        return OSThread { nodeLoop(host, inbox: inbox, peers: inboxes, client: leaderClient) }
    }
    for t in threads { t.join() }
    // Catch-up on this thread: what was in the closed inboxes is lost, and
    // the leader's heartbeats and appends bring the followers up to date.
    var queue: [Envelope] = []
    for id in ids { trio.hosts[id]!.send = { queue += $0 } }
    for _ in 0..<10_000 where trio.machines.values.contains(where: { $0.applied < total }) {
        trio.hosts[1]!.tick()
        repeat {
            for id in ids { try trio.hosts[id]!.process() }
            let batch = queue
            queue = []
            for e in batch { try trio.hosts[e.to]!.receive(e.bytes) }
        } while !queue.isEmpty
    }
    trio.verify(total: total)
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
