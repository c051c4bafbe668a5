import LuigiCore
import LuigiHost

/// The protocols a `ShardedCluster` can run.
public enum ShardedProtocol: String, Sendable, CaseIterable {
    /// Watermark commit (the Luigi protocol).
    case watermark
    /// The baseline: two-phase commit over the same Raft shard groups.
    case twoPhaseCommit = "2pc"
}

/// N shards x R replicas (one Raft group per shard, each replica a
/// `RaftHost` with the protocol's `ClusterReplica`) and C coordinators, on virtual time in
/// microseconds, over the one `SimulatedNetwork`. Every node has its own
/// clock (skew and drift); faults are drop, duplicate, reorder, partitions
/// and crash/restart (a crashed replica keeps what its driver persisted).
/// Clients run closed loops of a `WatermarkWorkload`; the history and every
/// shard's committed log feed `WatermarkChecker`.
public final class ShardedCluster {
    public struct Options: Sendable {
        public var shards = 2
        public var replicas = 3
        public var workers = 4
        public var coordinators = 1
        /// Transactions in flight per coordinator (closed loop).
        public var window = 8
        public var seed: UInt64 = 0
        public var profile = DelayProfile.sameRegion
        /// Each node's clock is off by a fixed skew, uniform in ±skewUs...
        public var skewUs: UInt64 = 0
        /// ...and runs fast or slow by up to this many parts per million.
        public var driftPpm: Double = 0
        public var drop = 0.0
        public var duplicate = 0.0
        public var reorder = 0.0
        public var rule = CommitRule.allStreams
        public var proto = ShardedProtocol.watermark
        /// Coordinator headroom over its delay estimate (nil: 2 x spread).
        public var headroomUs: UInt64? = nil
        /// Each replica compacts its log into a shard snapshot once this
        /// many applied entries are in it (0: never; watermark only).
        public var compactEvery = 0
        /// Shards accept any coordinator id and push watermarks to those
        /// heard from (`ShardConfig.openCoordinators`), as in luigi-node.
        public var openCoordinators = false

        public init() {}

        func validated() throws -> Options {
            guard (1...64).contains(shards), (1...9).contains(replicas), (1...64).contains(workers),
                (1...64).contains(coordinators), (1...100_000).contains(window)
            else {
                throw LuigiError.invalidArgument("shards 1...64, replicas 1...9, workers 1...64, coordinators 1...64, window 1...100000")
            }
            guard proto == .watermark || (drop == 0 && duplicate == 0 && reorder == 0) else {
                throw LuigiError.invalidArgument("the two-phase baseline runs fault-free only (drop, duplicate and reorder must be 0)")
            }
            guard skewUs <= 10_000_000, driftPpm.isFinite, driftPpm >= 0, driftPpm <= 10_000 else {
                throw LuigiError.invalidArgument("skew must be at most 10 s and drift in [0, 10,000] ppm (each node draws its own within ±)")
            }
            guard compactEvery >= 0, compactEvery == 0 || proto == .watermark else {
                throw LuigiError.invalidArgument("compactEvery must be >= 0, and the two-phase baseline does not compact")
            }
            return self
        }
    }

    final class Replica {
        let id: UInt64
        let shard: UInt64
        let storage = MemoryRaftStorage()
        var host: RaftHost?
        var driver: RaftDriver?
        var replica: ClusterReplica?
        init(id: UInt64, shard: UInt64) {
            self.id = id
            self.shard = shard
        }
    }

    struct Clock {
        var skew: Int64
        var drift: Double
        func local(_ t: UInt64) -> UInt64 {
            let v = Int64(t) + skew + Int64((Double(t) * drift).rounded())
            return UInt64(max(0, v))
        }
        /// The earliest true time at which the local clock reads `l`.
        func global(_ l: UInt64) -> UInt64 {
            let g = (Double(l) - Double(skew)) / (1 + drift)
            return g <= 0 ? 0 : UInt64(g.rounded(.up))
        }
    }

    public let options: Options
    public private(set) var now: UInt64 = 0
    let network: SimulatedNetwork
    private var rng: SplitMix64
    var replicas: [UInt64: Replica] = [:]
    private(set) var coordinators: [ClusterCoordinator] = []
    private var clocks: [UInt64: Clock] = [:]
    private let raftTickUs: UInt64
    private let timerUs: UInt64
    private var nextRaftTick: UInt64
    private var nextTimer: UInt64
    private var workload: WatermarkWorkload?
    private var remaining = 0
    /// Client slots with a transaction in flight, per coordinator.
    private var busy: [Set<UInt32>] = []
    private var slotOf: [TxnId: UInt32] = [:]

    /// What each transaction asked of each shard, and how it ended.
    public private(set) var submitted: [TxnId: [UInt64: [Op]]] = [:]
    public private(set) var completions: [Completion] = []
    private(set) var completionsByID: [TxnId: Completion] = [:]
    /// Built-in workloads whose setup has run.
    var setUp: Set<BuiltinWorkload> = []
    /// Per shard: the committed log as first applied by any replica.
    public private(set) var committed: [[UInt64: (term: UInt64, data: [UInt8])]]
    /// A replica applied a different entry at an index another had applied.
    public private(set) var logMismatches: [String] = []
    /// Messages a node refused (malformed or misaddressed).
    public private(set) var refusedMessages: UInt64 = 0
    /// Log compactions, and state-machine restores from a snapshot (at a
    /// restart or from a leader), over every replica.
    public private(set) var compactions: UInt64 = 0
    public private(set) var snapshotRestores: UInt64 = 0
    /// FNV-1a over every delivered message (time, ends, bytes): the same
    /// seed and calls give the same hash, in any process.
    public private(set) var traceHash: UInt64 = 0xCBF2_9CE4_8422_2325

    public init(_ options: Options) throws {
        self.options = try options.validated()
        let p = options.profile
        network = try SimulatedNetwork(seed: options.seed, faults: NetworkFaults(
            drop: options.drop, duplicate: options.duplicate, reorder: options.reorder, maxDelay: 0, jitter: p.jitter))
        network.latency = { from, to in from == to ? 0 : p.floorUs }
        rng = SplitMix64(seed: options.seed ^ 0x7761_7465_726D_6B00)
        raftTickUs = 2 * p.meanUs
        timerUs = max(1, p.meanUs / 4)
        nextRaftTick = raftTickUs
        nextTimer = timerUs
        committed = Array(repeating: [:], count: options.shards)
        for s in 0..<UInt64(options.shards) {
            for id in replicaIDs(s) {
                replicas[id] = Replica(id: id, shard: s)
                clocks[id] = randomClock()
                try start(replicas[id]!)
            }
        }
        for c in 0..<options.coordinators {
            coordinators.append(try makeCoordinator(c, incarnation: 0))
            busy.append([])
        }
    }

    static let coordinatorBase: UInt64 = 100_000
    /// A coordinator that crashes comes back under a new id (its old
    /// transactions finish without it); this many incarnations each.
    static let incarnations: UInt64 = 8

    /// Every id coordinator slot `c` can have.
    static func coordinatorIDs(_ count: Int) -> [UInt64] {
        (0..<incarnations).flatMap { k in (0..<UInt64(count)).map { coordinatorBase + $0 + 1_000 * k } }
    }

    private func makeCoordinator(_ c: Int, incarnation: UInt64) throws -> ClusterCoordinator {
        let id = Self.coordinatorBase + UInt64(c) + 1_000 * incarnation
        let p = options.profile
        clocks[id] = clocks[Self.coordinatorBase + UInt64(c)] ?? randomClock()
        switch options.proto {
        case .watermark:
            var cfg = CoordinatorConfig(id: id, shardCount: options.shards, workers: options.workers)
            cfg.rule = options.rule
            cfg.headroom = options.headroomUs ?? 2 * p.spreadUs
            cfg.initialDelay = p.meanUs
            cfg.retryAfter = 30 * p.meanUs
            cfg.retireEvery = 5 * p.meanUs
            // It takes over the slot's earlier incarnations, as a node's does.
            cfg.predecessors = (0..<incarnation).map { k in
                let old = Self.coordinatorBase + UInt64(c) + 1_000 * k
                return old...old
            }
            return try Coordinator(config: cfg)
        case .twoPhaseCommit:
            return TwoPhaseClient(id: id, shardCount: options.shards, workers: options.workers,
                                  backoffUs: p.roundTripUs, seed: options.seed ^ id)
        }
    }

    private var incarnation: [Int: UInt64] = [:]
    /// What crashed coordinators had counted (the summary keeps it).
    private(set) var crashedCoordinatorStats: [Coordinator.Stats] = []

    /// Crashes coordinator slot `c`: its transactions in flight are never
    /// acknowledged (the shards finish them alone), and a new coordinator
    /// with a new id takes its clients. Refused after the last incarnation.
    public func crashCoordinator(_ c: Int) throws {
        try faultsAllowed("crash a coordinator")
        guard coordinators.indices.contains(c) else { throw LuigiError.invalidArgument("no coordinator \(c)") }
        let next = incarnation[c, default: 0] + 1
        guard next < Self.incarnations else { throw LuigiError.state("coordinator \(c) has no incarnation left") }
        incarnation[c] = next
        let old = coordinators[c].id
        if let stats = (coordinators[c] as? Coordinator)?.stats { crashedCoordinatorStats.append(stats) }
        network.discard(to: old)
        slotOf = slotOf.filter { $0.key.coordinator != old }
        busy[c] = []
        coordinators[c] = try makeCoordinator(c, incarnation: next)
    }

    public func replicaIDs(_ shard: UInt64) -> [UInt64] {
        let r = UInt64(options.replicas)
        return (0..<r).map { 1 + shard * r + $0 }
    }

    private func randomClock() -> Clock {
        let s = options.skewUs == 0 ? 0 : Int64.random(in: -Int64(options.skewUs)...Int64(options.skewUs), using: &rng)
        let d = options.driftPpm == 0 ? 0 : Double.random(in: -options.driftPpm...options.driftPpm, using: &rng) / 1e6
        return Clock(skew: s, drift: d)
    }

    private func localNow(_ id: UInt64) -> UInt64 { clocks[id]!.local(now) }

    private func start(_ r: Replica) throws {
        var rc = RaftConfig(id: r.id)
        rc.group = r.shard + 1
        rc.electionTick = 10
        rc.heartbeatTick = 1
        rc.seed = options.seed &+ r.id
        let driver = try RaftDriver(config: rc, storage: r.storage, voters: replicaIDs(r.shard))
        let replica: ClusterReplica
        switch options.proto {
        case .watermark:
            var sc = ShardConfig(shard: r.shard, shardCount: options.shards, workers: options.workers,
                                 coordinators: Self.coordinatorIDs(options.coordinators))
            let mean = options.profile.meanUs
            if options.openCoordinators {
                sc.openCoordinators = true
                sc.coordinators = []
            }
            sc.resendAfter = 6 * mean
            sc.marksEvery = max(1, mean / 2)
            replica = ShardReplica(shard: try ShardNode(config: sc), driver: driver)
        case .twoPhaseCommit:
            replica = TwoPhaseShard(shard: r.shard, driver: driver)
        }
        let host = RaftHost { [unowned self] envelopes in
            for e in envelopes { self.network.send(e.bytes, from: e.from, to: e.to, at: self.now) }
        }
        let shard = Int(r.shard)
        if options.compactEvery > 0 {
            host.afterAdvance = { [unowned self, unowned r] _, driver in try self.compactIfDue(r, driver) }
        }
        try host.add(driver, machine: replica.stateMachine, onApply: { [unowned self] entry, _ in
            if let seen = self.committed[shard][entry.index] {
                if seen.term != entry.term || seen.data != entry.data {
                    self.logMismatches.append("shard \(shard) index \(entry.index): terms \(seen.term) and \(entry.term)")
                }
            } else {
                self.committed[shard][entry.index] = (entry.term, entry.data)
            }
        }, onRestore: { [unowned self] _ in self.snapshotRestores += 1 })
        r.host = host
        r.driver = driver
        r.replica = replica
    }

    /// Compacts `r`'s log up to what it applied. Every compacted entry was
    /// applied here first, so `committed` (fed by `onApply`) keeps it.
    private func compactIfDue(_ r: Replica, _ driver: RaftDriver) throws {
        let first = try r.storage.firstIndex()
        let applied = driver.node.status.applied
        guard applied >= first, Int(applied - first) + 1 >= options.compactEvery else { return }
        try driver.snapshotMachine()
        compactions += 1
    }

    // MARK: - Faults

    public func isAlive(_ id: UInt64) -> Bool { replicas[id]?.host != nil }

    /// The live replica leading `shard` in the highest term, if any.
    public func leader(of shard: UInt64) -> UInt64? {
        replicaIDs(shard).compactMap { replicas[$0]?.driver?.node }.filter { $0.role == .leader }
            .max { $0.term < $1.term }?.id
    }

    /// Crashes a replica: its volatile state is gone, its persisted log stays.
    public func crash(_ id: UInt64) throws {
        try faultsAllowed("crash a replica")
        guard let r = replicas[id] else { return }
        r.host = nil
        r.driver = nil
        r.replica = nil
        network.discard(to: id)
    }

    public func restart(_ id: UInt64) throws {
        guard let r = replicas[id], r.host == nil else { return }
        try start(r)
    }

    public func crashedReplicas() -> [UInt64] { replicas.keys.sorted().filter { !isAlive($0) } }

    public func partition(_ groups: [[UInt64]]) throws {
        try faultsAllowed("partition the network")
        var table: [UInt64: Int] = [:]
        for (i, g) in groups.enumerated() { for id in g { table[id] = i } }
        network.partition(groupOf: table)
    }

    /// Cuts the link between two nodes (both directions) until `heal`.
    public func cut(_ a: UInt64, _ b: UInt64) throws {
        try faultsAllowed("cut a link")
        network.cut(a, b)
    }

    /// The two-phase baseline has no timeouts or failover: it runs
    /// fault-free only, and refuses every fault.
    private func faultsAllowed(_ what: String) throws {
        guard options.proto == .watermark else {
            throw LuigiError.state("cannot \(what): the two-phase baseline runs fault-free only")
        }
    }

    public func heal() { network.heal() }

    public func setNetworkFaults(drop: Double, duplicate: Double, reorder: Double) throws {
        if drop != 0 || duplicate != 0 || reorder != 0 { try faultsAllowed("set network faults") }
        try network.setFaults(NetworkFaults(drop: drop, duplicate: duplicate, reorder: reorder, maxDelay: 0,
                                            jitter: options.profile.jitter))
    }

    // MARK: - Clients

    /// Runs `count` transactions of `workload` as closed loops (each
    /// coordinator keeps `window` in flight), interleaved with `run`.
    public func load(_ workload: WatermarkWorkload, count: Int) throws {
        try awaitBaselineLeaders()
        self.workload = workload
        remaining += count
        fillWindows()
    }

    /// Submits one transaction now (outside any workload). Under two-phase
    /// commit this first runs until every shard has a leader: the baseline
    /// has no retries, so what reaches a shard before its leader is lost.
    @discardableResult
    public func submit(_ parts: [UInt64: [Op]], coordinator c: Int = 0, worker: UInt32 = 0) throws -> TxnId {
        guard coordinators.indices.contains(c) else { throw LuigiError.invalidArgument("no coordinator \(c)") }
        try awaitBaselineLeaders()
        let id = try coordinators[c].submit(parts, worker: worker, now: localNow(coordinators[c].id))
        submitted[id] = parts
        flush(coordinators[c])
        return id
    }

    public var inFlight: Int { coordinators.reduce(0) { $0 + $1.inFlightCount } }
    /// The coordinators' current ids (crashed ones are taken over by these).
    public var coordinatorIDs: [UInt64] { coordinators.map(\.id) }
    public var pendingSubmissions: Int { remaining }

    private func fillWindows() {
        guard let workload else { return }
        for (c, coord) in coordinators.enumerated() {
            while remaining > 0, busy[c].count < options.window {
                let slot = (0..<UInt32(options.window)).first { !busy[c].contains($0) }!
                let parts = workload.next(&rng, shards: options.shards)
                guard let id = try? coord.submit(parts, worker: slot % UInt32(options.workers), now: localNow(coord.id))
                else { remaining -= 1; continue }
                submitted[id] = parts
                busy[c].insert(slot)
                slotOf[id] = slot
                remaining -= 1
            }
            flush(coord)
        }
    }

    // MARK: - Time

    /// Runs the cluster for `us` microseconds of virtual time.
    public func run(forUs us: UInt64) throws {
        let end = now + us
        while true {
            let t = nextEvent()
            guard t <= end else { break }
            try advance(to: t)
        }
        now = end
    }

    /// Runs until no transaction is in flight, waiting, or unfinished at a
    /// shard (those of crashed coordinators too), or `limitUs` passes; true
    /// when everything finished.
    public func runUntilIdle(limitUs: UInt64) throws -> Bool {
        let end = now + limitUs
        while inFlight > 0 || remaining > 0 || replicas.values.contains(where: { $0.replica?.isIdle == false })
            || coordinators.contains(where: { ($0 as? Coordinator)?.isAdopting == true })
        {
            let t = nextEvent()
            guard t <= end else { return false }
            try advance(to: t)
        }
        return true
    }

    private func awaitBaselineLeaders() throws {
        guard options.proto == .twoPhaseCommit else { return }
        guard try awaitLeaders(limitUs: 10_000 * options.profile.roundTripUs) else {
            throw LuigiError.timeout("a shard elected no leader: the two-phase baseline cannot take transactions")
        }
    }

    /// Runs until every shard has a leader that serves (the two-phase
    /// baseline drops what arrives before one: it has no retries; a
    /// watermark leader serves once recovered). True when they do.
    public func awaitLeaders(limitUs: UInt64) throws -> Bool {
        let end = now + limitUs
        func serving(_ s: UInt64) -> Bool {
            replicaIDs(s).contains { replicas[$0]?.replica?.isServing == true }
        }
        while (0..<UInt64(options.shards)).contains(where: { !serving($0) }) {
            let t = nextEvent()
            guard t <= end else { return false }
            try advance(to: t)
        }
        return true
    }

    private func nextEvent() -> UInt64 {
        var t = min(nextRaftTick, nextTimer)
        if let due = network.nextDue { t = min(t, max(due, now)) }
        for r in replicas.values {
            if let d = r.replica?.nextDeadline { t = min(t, max(now, clocks[r.id]!.global(d))) }
        }
        return t
    }

    private func advance(to t: UInt64) throws {
        now = max(now, t)
        var touched = Set<UInt64>()
        for p in network.deliver(dueBy: now) {
            touched.insert(p.to)
            if let c = deliver(p) { touched.insert(c) }
        }
        var everyone = false
        if now >= nextRaftTick {
            nextRaftTick += raftTickUs
            for id in replicas.keys.sorted() { replicas[id]?.host?.tick() }
            everyone = true
        }
        if now >= nextTimer {
            nextTimer += timerUs
            for c in coordinators {
                c.tick(now: localNow(c.id))
                flush(c)
            }
            everyone = true
        }
        for id in replicas.keys.sorted() {
            guard let r = replicas[id], let replica = r.replica else { continue }
            let due = replica.nextDeadline.map { $0 <= localNow(id) } ?? false
            if everyone || due || touched.contains(id) { try pump(r) }
        }
        for c in coordinators where touched.contains(c.id) { collect(c) }
        fillWindows()
    }

    private func mix(_ v: UInt64) {
        for i in 0..<8 { traceHash = (traceHash ^ (v >> (8 * UInt64(i)) & 0xFF)) &* 0x0000_0100_0000_01B3 }
    }

    /// Delivers one packet; returns the coordinator that took it, if one
    /// did (a predecessor's messages go to the slot's current one).
    @discardableResult
    private func deliver(_ p: SimulatedNetwork.Packet) -> UInt64? {
        mix(now)
        mix(p.from)
        mix(p.to)
        for b in p.bytes { traceHash = (traceHash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        if p.bytes.starts(with: RaftMessage.magic.prefix(3)) {
            guard let host = replicas[p.to]?.host else { return nil }
            if (try? host.receive(p.bytes)) == nil { refusedMessages += 1 }
            return nil
        }
        if let r = replicas[p.to] {
            guard let replica = r.replica else { return nil }
            if (try? replica.receive(p.bytes, now: localNow(p.to))) == nil { refusedMessages += 1 }
        } else if let c = coordinators.first(where: { $0.id == p.to || ($0 as? Coordinator)?.answers(for: p.to) == true }) {
            if (try? c.receive(p.bytes, now: localNow(c.id))) == nil { refusedMessages += 1 }
            return c.id
        }
        return nil
    }

    /// The host loop of one replica: Raft's ready loop, then the shard's.
    private func pump(_ r: Replica) throws {
        guard let host = r.host, let replica = r.replica else { return }
        let local = localNow(r.id)
        replica.setClock(local)
        try host.process()
        let out = replica.pumpOutgoing(now: local)
        try host.process()
        route(out, from: r.id)
    }

    private func flush(_ c: ClusterCoordinator) { route(c.takeOutgoing(), from: c.id) }

    private func route(_ messages: [Outgoing], from: UInt64) {
        for m in messages {
            if m.toShard {
                for id in replicaIDs(m.to) where m.to < UInt64(options.shards) {
                    network.send(m.bytes, from: from, to: id, at: now)
                }
            } else {
                network.send(m.bytes, from: from, to: m.to, at: now)
            }
        }
    }

    private func collect(_ c: ClusterCoordinator) {
        flush(c)
        let ci = coordinators.firstIndex { $0 === c }!
        for done in c.takeCompletions() {
            completions.append(done)
            completionsByID[done.id] = done
            if let slot = slotOf.removeValue(forKey: done.id) { busy[ci].remove(slot) }
        }
    }

    // MARK: - Observing

    /// The last log index `replica` applied (nil while it is down).
    public func appliedIndex(of replica: UInt64) -> UInt64? { replicas[replica]?.driver?.node.status.applied }

    /// The replicated state of `replica` (nil while it is down).
    public func state(of replica: UInt64) -> ShardState? { (replicas[replica]?.replica as? ShardReplica)?.shard.state }

    /// The two-phase-commit replica (nil under the watermark protocol, or while down).
    public func twoPhaseShard(of replica: UInt64) -> TwoPhaseShard? { replicas[replica]?.replica as? TwoPhaseShard }

    /// The watermark coordinators' statistics (empty under two-phase commit).
    public func coordinatorStats() -> [Coordinator.Stats] { coordinators.compactMap { ($0 as? Coordinator)?.stats } }

    public func twoPhaseStats() -> [TwoPhaseClient.Stats] { coordinators.compactMap { ($0 as? TwoPhaseClient)?.stats } }
}

/// Generates transactions: each call returns the ops of one transaction by shard.
public protocol WatermarkWorkload {
    func next(_ rng: inout SplitMix64, shards: Int) -> [UInt64: [Op]]
}
