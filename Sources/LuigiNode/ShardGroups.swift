import Glibc
import Logging
import LuigiBase
import LuigiRaft
import LuigiWatermark
import LuigiWatermarkRaft
import LuigiWire
import NIOCore

/// The watermark shards this node replicates, and its coordinator.
///
/// Each shard is one Raft group (`NodeConfig.shardGroupBase + 1 + s`) on
/// every member, hosted by the node's `RaftHost` like any other group; the
/// `ShardReplica` bridge feeds its `ShardNode` the committed entries and
/// proposes its records. Every node also runs one `Coordinator` for the
/// `transact` requests it receives. Its id is `nodeId << 20 | incarnation`,
/// the incarnation raised durably at each start, so a restarted node never
/// reuses a transaction id; the shards accept any coordinator id
/// (`openCoordinators`). The new incarnation takes its predecessors over
/// (`CoordinatorConfig.predecessors`: every earlier incarnation of this
/// node): what they left on the shards is driven to its acknowledgement and
/// retired, so their records do not stay forever.
///
/// Routing: a shard-bound message goes to the shard's leader as this node
/// sees it (to every member while none is known: followers ignore it), a
/// coordinator-bound one to node `id >> 20`, whose current coordinator
/// steps it (its own id's, or a predecessor's). Messages for this node are
/// stepped here.
/// Confined to the node's host loop, like `NodeCore`.
final class ShardGroups {
    static let incarnationBits: UInt64 = 20

    /// Wraps for a shard id from the wire no node has (the caller then finds
    /// no such group), rather than trap.
    static func group(ofShard shard: UInt64) -> UInt64 { NodeConfig.shardGroupBase &+ 1 &+ shard }

    struct Waiting {
        let deadline: NIODeadline
        let reply: (ReplyStatus, String, [UInt8]) -> Void
    }

    let nodeId: UInt64
    let coordinatorId: UInt64
    let coordinator: Coordinator
    private let shardConfig: ShardConfig
    private(set) var replicas: [UInt64: ShardReplica] = [:]
    /// Client requests by transaction, answered when the coordinator
    /// acknowledges (or at their deadline, outcome unknown).
    private var waiting: [TxnId: Waiting] = [:]
    private let maxInFlight: Int
    private var nextWorker: UInt32 = 0
    private var clock = ProtocolClock()
    private var outbox: [UInt64: [Frame]] = [:]
    /// Messages for a coordinator id of this node that its coordinator
    /// does not answer for (none while every earlier one is a predecessor).
    private(set) var staleMessages: UInt64 = 0

    /// The leader of a group as this node sees it (0: unknown).
    var leaderOf: (UInt64) -> UInt64 = { _ in 0 }
    var members: () -> [UInt64] = { [] }
    var send: (UInt64, [Frame]) -> Void = { _, _ in }

    init(config: NodeConfig, incarnation: UInt64) throws {
        guard incarnation >= 1, incarnation < 1 << Self.incarnationBits else {
            throw LuigiError.state("coordinator incarnation \(incarnation) is out of ids (restarts 1...2^20)")
        }
        nodeId = config.nodeId
        maxInFlight = config.maxTransactionsInFlight
        coordinatorId = config.nodeId << Self.incarnationBits | incarnation
        var c = CoordinatorConfig(id: coordinatorId, shardCount: config.shards, workers: config.shardWorkers)
        c.retireEvery = UInt64(config.shardTickMicros) * 5
        if incarnation > 1 { c.predecessors = [(config.nodeId << Self.incarnationBits | 1)...(coordinatorId - 1)] }
        coordinator = try Coordinator(config: c)
        var s = ShardConfig(shard: 0, shardCount: config.shards, workers: config.shardWorkers, coordinators: [])
        s.openCoordinators = true
        s.marksEvery = UInt64(config.shardTickMicros)
        shardConfig = s
    }

    /// A shard replica on `driver` (shard group `group`): host the driver
    /// with the returned state machine.
    func attach(group: UInt64, driver: RaftDriver) throws -> RaftStateMachine {
        var s = shardConfig
        s.shard = group - NodeConfig.shardGroupBase - 1
        let replica = ShardReplica(shard: try ShardNode(config: s), driver: driver)
        replicas[s.shard] = replica
        return replica.stateMachine
    }

    /// Entries applied next see this time.
    func setClock() {
        let now = clock.now()
        for r in replicas.values { r.setClock(now) }
    }

    /// When the next held transaction comes due (this node's clock), as a
    /// delay from now; nil when nothing is held.
    var nextDue: TimeAmount? {
        let now = clock.now()
        guard let due = replicas.values.compactMap({ $0.shard.nextDeadline }).min() else { return nil }
        return .microseconds(Int64(due > now ? due - now : 0))
    }

    // MARK: - Clients

    /// Starts a client's sharded transaction; `reply` is called once.
    func transact(_ parts: [ShardOps], timeoutMillis: UInt32, reply: @escaping (ReplyStatus, String, [UInt8]) -> Void) {
        // Bounded by what the coordinator drives, not what clients still
        // wait for: a transaction outlives its client's timeout.
        guard coordinator.inFlightCount < maxInFlight else {
            return reply(.unavailable, "\(maxInFlight) transactions are in flight on this node; retry later", [])
        }
        var byShard: [UInt64: [Op]] = [:]
        for p in parts { byShard[p.shard] = p.ops }
        let worker = nextWorker
        do {
            let id = try coordinator.submit(byShard, worker: worker, now: clock.now())
            nextWorker = (nextWorker + 1) % UInt32(shardConfig.workers)
            waiting[id] = Waiting(deadline: .now() + .milliseconds(Int64(timeoutMillis)), reply: reply)
        } catch {
            reply(.invalid, "\(error)", [])
        }
    }

    /// Answers the transactions past their deadline: their outcome is not
    /// known yet (the coordinator keeps driving them).
    func expire(now: NIODeadline) {
        for (id, w) in waiting where w.deadline <= now {
            waiting[id] = nil
            w.reply(.timeout, "\(id) was not acknowledged within the timeout; it may still commit", [])
        }
    }

    /// Answers every waiting request (the node stops or failed).
    func abandon(_ why: String) {
        let all = waiting
        waiting = [:]
        for w in all.values { w.reply(.timeout, "\(why); the transaction may still commit", []) }
    }

    // MARK: - Peers

    /// A peer's watermark message. Refused input throws and changes nothing.
    func receive(_ frame: Frame) throws {
        let e = try WatermarkEnvelope(decoding: frame.payload)
        let now = clock.now()
        if e.toShard {
            guard frame.group == Self.group(ofShard: e.to), let replica = replicas[e.to] else {
                throw LuigiError.invalidArgument("a message for shard \(e.to) in the frame of group \(frame.group)")
            }
            try replica.step(e, now: now)
            return
        }
        guard let from = Self.sendingShard(e), frame.group == Self.group(ofShard: from), e.to >> Self.incarnationBits == nodeId else {
            throw LuigiError.invalidArgument("a shard's message for coordinator \(e.to) in the frame of group \(frame.group)")
        }
        guard coordinator.answers(for: e.to) else {
            staleMessages += 1
            return
        }
        try coordinator.step(e, now: now)
    }

    // MARK: - The loop

    /// Runs the roles' timers, answers acknowledged transactions and routes
    /// every output; messages for this node are stepped at once, for a
    /// bounded number of rounds. True when a shard proposed records (the
    /// host must process them).
    func pump() -> Bool {
        var proposed = false
        for _ in 0..<8 {
            let now = clock.now()
            var out: [WatermarkEnvelope] = []
            for shard in replicas.keys.sorted() {
                guard let r = replicas[shard] else { continue }
                let last = r.driver.node.status.lastIndex
                out += r.pump(now: now)
                if r.driver.node.status.lastIndex != last { proposed = true }
            }
            coordinator.tick(now: now)
            out += coordinator.takeOutput()
            answerCompletions()
            var stepped = false
            for e in out where route(e, now: now) { stepped = true }
            if !stepped { break }
        }
        for (peer, frames) in outbox { send(peer, frames) }
        outbox = [:]
        return proposed
    }

    private func answerCompletions() {
        for c in coordinator.takeCompletions() {
            guard let w = waiting.removeValue(forKey: c.id) else { continue }
            w.reply(.ok, "", TransactResult(outcome: c.outcome, ts: c.ts, reads: c.reads).encoded())
        }
    }

    /// Sends `e` on, or steps it here; true when stepped here.
    private func route(_ e: WatermarkEnvelope, now: UInt64) -> Bool {
        if e.toShard {
            let group = Self.group(ofShard: e.to)
            let leader = leaderOf(group)
            if leader == nodeId, let replica = replicas[e.to] {
                try? replica.step(e, now: now)  // our own output: well formed
                return true
            }
            let frame = Frame(.watermark, group: group, payload: e.encoded())
            for peer in leader != 0 ? [leader] : members() where peer != nodeId { outbox[peer, default: []].append(frame) }
            return false
        }
        let node = e.to >> Self.incarnationBits
        if node == nodeId {
            guard coordinator.answers(for: e.to) else { return false }  // a later incarnation's: none yet
            try? coordinator.step(e, now: now)
            return true
        }
        guard let shard = Self.sendingShard(e) else { return false }
        outbox[node, default: []].append(Frame(.watermark, group: Self.group(ofShard: shard), payload: e.encoded()))
        return false
    }

    /// The shard a coordinator-bound message comes from.
    static func sendingShard(_ e: WatermarkEnvelope) -> UInt64? {
        switch e.message {
        case .reply(let r): return r.shard
        case .marks(let shard, _, _), .orphans(let shard, _, _, _, _, _, _): return shard
        default: return nil
        }
    }

    /// A shard group's /status fields: its committed watermarks, and the
    /// transaction records it holds (not retired yet).
    func statusFields(group: UInt64) -> String? {
        guard let state = replicas[group &- NodeConfig.shardGroupBase &- 1]?.shard.state else { return nil }
        return ",\"watermarks\":\(state.marks),\"records\":\(state.txns.count)"
    }

    /// The coordinator's /status fields.
    var coordinatorStatusFields: String {
        "\"coordinator\":\(coordinatorId),\"adopting\":\(coordinator.isAdopting),\"adopted\":\(coordinator.stats.adopted),"
            + "\"stale_watermark_messages\":\(staleMessages),"
    }
}

/// Microseconds of wall time that never go back within the process. Shard
/// leaders and coordinators on different nodes compare their clocks; the
/// coordinator's delay estimate absorbs the skew between them, and a clock
/// behind only makes transactions wait longer, never run out of order.
struct ProtocolClock {
    private var last: UInt64 = 0

    mutating func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let us = UInt64(max(0, ts.tv_sec)) &* 1_000_000 &+ UInt64(max(0, ts.tv_nsec) / 1000)
        last = max(last, min(us, WatermarkLimits.maxTimestamp))
        return last
    }
}
