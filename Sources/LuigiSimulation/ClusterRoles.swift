import LuigiCore

/// Bytes a protocol role sends: to every replica of a shard, or to a coordinator.
public struct Outgoing: Sendable {
    public var toShard: Bool
    public var to: UInt64
    public var bytes: [UInt8]
}

/// One shard replica of a sharded protocol, as the simulated cluster drives
/// it: a Raft state machine for its shard's group, plus protocol messages,
/// timers and deadlines. The watermark shard and the two-phase-commit
/// baseline both plug in here, so both run the same loop and network.
public protocol ClusterReplica: AnyObject {
    var stateMachine: RaftStateMachine { get }
    func setClock(_ now: UInt64)
    func receive(_ bytes: [UInt8], now: UInt64) throws
    /// After Raft processed: run timers and releases, propose records, and
    /// return what to send.
    func pumpOutgoing(now: UInt64) -> [Outgoing]
    var nextDeadline: UInt64? { get }
    /// Leads its shard and takes transactions.
    var isServing: Bool { get }
    /// Holds no unfinished transaction.
    var isIdle: Bool { get }
}

/// The client-side coordinator of a sharded protocol.
public protocol ClusterCoordinator: AnyObject {
    var id: UInt64 { get }
    var inFlightCount: Int { get }
    func submit(_ parts: [UInt64: [Op]], worker: UInt32, now: UInt64) throws -> TxnId
    func receive(_ bytes: [UInt8], now: UInt64) throws
    func tick(now: UInt64)
    func takeOutgoing() -> [Outgoing]
    func takeCompletions() -> [Completion]
}

extension WatermarkEnvelope {
    var outgoing: Outgoing { Outgoing(toShard: toShard, to: to, bytes: encoded()) }
}

extension ShardReplica: ClusterReplica {
    public func receive(_ bytes: [UInt8], now: UInt64) throws {
        try step(try WatermarkEnvelope(decoding: bytes), now: now)
    }

    public func pumpOutgoing(now: UInt64) -> [Outgoing] { pump(now: now).map(\.outgoing) }

    public var nextDeadline: UInt64? { shard.nextDeadline }
    public var isServing: Bool { shard.isServing }
    public var isIdle: Bool { shard.isIdle }
}

extension Coordinator: ClusterCoordinator {
    public func receive(_ bytes: [UInt8], now: UInt64) throws {
        try step(try WatermarkEnvelope(decoding: bytes), now: now)
    }

    public func takeOutgoing() -> [Outgoing] { takeOutput().map(\.outgoing) }
}
