import LuigiBase
import LuigiRaft
import LuigiWatermark

/// The bridge between the watermark kernel and the Raft kernel: one shard
/// replica is a `ShardNode` fed, as a Raft state machine, by its shard's
/// Raft group. Every runtime (the simulator, a node process) drives it the
/// same way: step Raft messages into the group's host, step watermark
/// messages into `step`, and call `pump` after each input or timer.
public final class ShardReplica {
    public let shard: ShardNode
    public let driver: RaftDriver
    let machine: ShardMachine

    /// Attaches `shard` to `driver` (whose log it replays from the start or
    /// the stored snapshot). The caller hosts the driver in a `RaftHost`
    /// with `machine` as its state machine (see `attach`).
    public init(shard: ShardNode, driver: RaftDriver) {
        self.shard = shard
        self.driver = driver
        machine = ShardMachine(shard)
    }

    /// The state machine to host the driver with.
    public var stateMachine: RaftStateMachine { machine }

    /// The clock the next applied entries see (the replica's own, µs).
    public func setClock(_ now: UInt64) { machine.now = now }

    /// Steps a watermark message; malformed input throws and changes nothing.
    public func step(_ e: WatermarkEnvelope, now: UInt64) throws { try shard.step(e, now: now) }

    /// After Raft has processed: tells the shard its role, runs its timers
    /// and releases, proposes its records to the group, and returns the
    /// messages to send. Records a deposed leader could not propose are
    /// dropped (the next leader rebuilds from the log).
    public func pump(now: UInt64) -> [WatermarkEnvelope] {
        machine.now = now
        let node = driver.node
        shard.setRole(leader: node.role == .leader, term: node.term)
        shard.tick(now: now)
        let out = shard.takeOutput()
        for record in out.appends {
            guard (try? node.propose(record.encoded())) != nil else {
                shard.setRole(leader: false, term: node.term)
                break
            }
        }
        return out.messages
    }
}

/// The shard as a Raft state machine: committed entries go to `apply`.
final class ShardMachine: RaftStateMachine {
    let shard: ShardNode
    var now: UInt64 = 0

    init(_ shard: ShardNode) { self.shard = shard }

    func apply(_ entry: RaftEntry) throws -> [UInt8] {
        shard.apply(entry: entry.kind == .normal ? entry.data : [], term: entry.term, now: now)
        return []
    }

    /// The replicated state, "LWS" (ShardSnapshot.swift). Nothing else is
    /// needed: a leader elected after a restore appends a no-op of its own
    /// term, and applying it makes the node caught up.
    func snapshot() throws -> [UInt8] { shard.state.encoded() }

    /// Refuses a malformed snapshot, or one of another shard or stream count.
    func restore(_ snapshot: [UInt8]) throws { try shard.restore(try ShardState(decoding: snapshot)) }
}
