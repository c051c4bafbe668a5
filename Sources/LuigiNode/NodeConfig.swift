import LuigiBase
import LuigiWire

/// "host:port", checked.
public struct Address: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) throws {
        guard !host.isEmpty, host.utf8.count <= 255, !host.contains(":") || host.hasPrefix("[") else {
            throw LuigiError.invalidArgument("bad host '\(host)'")
        }
        guard (0...65535).contains(port) else { throw LuigiError.invalidArgument("port \(port) outside 0...65535") }
        self.host = host
        self.port = port
    }

    /// Parses "host:port" (the last colon splits).
    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw LuigiError.invalidArgument("address '\(text)' is not host:port")
        }
        try self.init(host: String(text[..<colon]), port: port)
    }

    public var description: String { "\(host):\(port)" }
}

/// Everything a node needs to start. Built by the CLI from flags and the
/// config file; `validated()` checks it before anything opens.
public struct NodeConfig: Sendable {
    public var nodeId: UInt64
    /// Where peers and clients connect.
    public var listen: Address
    /// /metrics, /health, /status (nil: no HTTP port).
    public var http: Address?
    /// One data directory per node; each group keeps its log under it.
    public var dataDirectory: String
    public var credentials: ClusterCredentials
    /// Every member's node id and address, this node included.
    public var members: [UInt64: Address]
    /// The key-value Raft groups this node runs (ids 1...n).
    public var groups: Int = 1
    /// Replica groups (algebraic replicas with delta anti-entropy, plus a
    /// Raft group each for coordinated transactions), ids
    /// `replicaGroupBase + 1 ... replicaGroupBase + n`.
    public var replicaGroups: Int = 0
    public static let replicaGroupBase: UInt64 = 1000
    /// Watermark shards (the Luigi protocol's sharded transactions): shard
    /// s is Raft group `shardGroupBase + 1 + s`, replicated on every member.
    public var shards: Int = 0
    public static let shardGroupBase: UInt64 = 2000
    /// Streams per shard: each transaction is logged in one (round robin).
    public var shardWorkers: Int = 4
    /// Microseconds between a shard leader's watermark heartbeats (and the
    /// shards' timer): a larger value costs latency on an idle stream,
    /// a smaller one log entries and syncs.
    public var shardTickMicros: Int = 2_000
    /// Transactions this node's coordinator drives at once (past their
    /// clients' timeouts too); more are refused `unavailable`.
    public var maxTransactionsInFlight: Int = 65_536
    /// Peer updates a replica group holds while they wait for their causal
    /// predecessors; past it, such an update is left for anti-entropy to
    /// bring again.
    public var maxPendingReplicaUpdates: Int = 65_536
    /// Milliseconds between anti-entropy digests to each peer.
    public var antiEntropyMillis: Int = 100
    /// Joining a running cluster: the groups start with the other members
    /// as voters, and this node waits to be added (`member add`).
    public var join = false
    /// Milliseconds per Raft tick.
    public var tickMillis: Int = 10
    public var electionTicks: Int = 10
    public var heartbeatTicks: Int = 1
    /// Compact a group's log once this many entries are applied past its
    /// snapshot and the log since it holds at least the snapshot's bytes
    /// (so a snapshot of a large state is not rewritten every few entries).
    public var compactAfter: Int = 10_000
    /// The frame limit on every authenticated connection, a peer's too.
    public var maxFramePayload: Int = Frame.defaultMaxPayload
    /// A peer frame larger than this (a Raft snapshot, say) travels in
    /// pieces of this size (`chunk` frames), other frames between them; at
    /// most a frame's payload less the piece's header (`chunkBytes`).
    public var peerChunkBytes: Int = 4 << 20
    /// The largest frame a peer may send in pieces: it bounds a group's
    /// snapshot, and what one peer connection may make this node hold while
    /// the pieces arrive.
    public var maxPeerMessageBytes: Int = Frame.maxPayloadCeiling
    /// Bytes of one peer connection's frames that may wait for the host
    /// thread (busy with a sync, say); past this the connection is not read
    /// until they drain, and the peer's TCP window fills instead of memory.
    public var maxPeerQueuedBytes: Int = 64 << 20
    /// Authenticated client connections allowed at once; one more is
    /// refused after its handshake. Peers do not count.
    public var maxConnections: Int = 1024
    /// Connections allowed in their handshake at once; past this the oldest
    /// of them is closed for each new one.
    public var maxHandshakes: Int = 256
    /// Requests a client connection may have in flight; more are answered `unavailable`.
    public var maxInflightPerConnection: Int = 4096
    /// Request payload bytes a client connection may have in flight (one
    /// request is always taken); more are answered `unavailable`.
    public var maxInflightBytesPerConnection: Int = 64 << 20
    /// A connection must finish its handshake within this, and a started
    /// frame must complete within it, or the connection is closed.
    public var handshakeTimeoutMillis: Int = 2000
    public var frameTimeoutMillis: Int = 10_000

    public init(
        nodeId: UInt64, listen: Address, http: Address?, dataDirectory: String, credentials: ClusterCredentials,
        members: [UInt64: Address]
    ) {
        self.nodeId = nodeId
        self.listen = listen
        self.http = http
        self.dataDirectory = dataDirectory
        self.credentials = credentials
        self.members = members
    }

    public func validated() throws -> NodeConfig {
        guard nodeId != 0 else { throw LuigiError.invalidArgument("node id must not be 0") }
        guard members[nodeId] != nil else {
            throw LuigiError.invalidArgument("node \(nodeId) is not among the members \(members.keys.sorted())")
        }
        guard !members.keys.contains(0) else { throw LuigiError.invalidArgument("member id 0") }
        guard !dataDirectory.isEmpty else { throw LuigiError.invalidArgument("data directory is empty") }
        guard (1...1000).contains(groups) else { throw LuigiError.invalidArgument("groups \(groups) outside 1...1000") }
        guard (0...1000).contains(replicaGroups) else {
            throw LuigiError.invalidArgument("replica groups \(replicaGroups) outside 0...1000")
        }
        guard (0...1000).contains(shards) else { throw LuigiError.invalidArgument("shards \(shards) outside 0...1000") }
        guard (1...1024).contains(shardWorkers) else {
            throw LuigiError.invalidArgument("shard workers \(shardWorkers) outside 1...1024")
        }
        guard (100...1_000_000).contains(shardTickMicros) else {
            throw LuigiError.invalidArgument("shard tick \(shardTickMicros) µs outside 100...1000000")
        }
        guard maxTransactionsInFlight >= 1 else { throw LuigiError.invalidArgument("max transactions in flight must be >= 1") }
        // Coordinator ids are node id << 20 | incarnation, at most 2^62.
        guard members.keys.allSatisfy({ $0 < 1 << 42 }) else {
            throw LuigiError.invalidArgument("node ids must be below 2^42")
        }
        guard (1...60_000).contains(antiEntropyMillis) else {
            throw LuigiError.invalidArgument("anti-entropy interval \(antiEntropyMillis) ms outside 1...60000")
        }
        guard (1...10_000).contains(tickMillis) else { throw LuigiError.invalidArgument("tick \(tickMillis) ms outside 1...10000") }
        guard heartbeatTicks >= 1, electionTicks > heartbeatTicks, electionTicks <= 100_000 else {
            throw LuigiError.invalidArgument("need 1 <= heartbeat ticks < election ticks <= 100000")
        }
        guard compactAfter >= 1 else { throw LuigiError.invalidArgument("compact-after must be >= 1") }
        guard maxPeerQueuedBytes >= 1 else { throw LuigiError.invalidArgument("maxPeerQueuedBytes must be >= 1") }
        guard (1024...Frame.maxPayloadCeiling).contains(maxFramePayload) else {
            throw LuigiError.invalidArgument("max frame payload outside 1024...\(Frame.maxPayloadCeiling)")
        }
        guard peerChunkBytes >= 1024 else { throw LuigiError.invalidArgument("peer chunk bytes must be >= 1024") }
        guard (maxFramePayload...Frame.maxPayloadCeiling).contains(maxPeerMessageBytes) else {
            throw LuigiError.invalidArgument("max peer message bytes outside max frame payload...\(Frame.maxPayloadCeiling)")
        }
        guard maxPendingReplicaUpdates >= 0 else { throw LuigiError.invalidArgument("maxPendingReplicaUpdates must be >= 0") }
        guard maxConnections >= 1, maxHandshakes >= 1, maxInflightPerConnection >= 1, maxInflightBytesPerConnection >= 1 else {
            throw LuigiError.invalidArgument("connection limits must be positive")
        }
        guard handshakeTimeoutMillis >= 1, frameTimeoutMillis >= 1 else {
            throw LuigiError.invalidArgument("timeouts must be positive")
        }
        return self
    }

    /// Every group id this node runs: the key-value groups, the replica
    /// groups, then the shard groups.
    public var groupIds: [UInt64] {
        Array(1...UInt64(groups)) + (0..<UInt64(replicaGroups)).map { Self.replicaGroupBase + 1 + $0 }
            + (0..<UInt64(shards)).map { Self.shardGroupBase + 1 + $0 }
    }

    /// The size of a transfer's pieces: `peerChunkBytes`, within a frame.
    var chunkBytes: Int { min(peerChunkBytes, maxFramePayload - FrameChunk.headerSize) }

    /// Peers: every member but this node.
    public var peers: [UInt64: Address] { members.filter { $0.key != nodeId } }
}
