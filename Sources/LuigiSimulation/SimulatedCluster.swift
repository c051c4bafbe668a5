import LuigiCore

/// N algebraic replicas (node ids 0..<N) on virtual time, kept in sync by
/// delta anti-entropy (pull): a node with no sync in progress sends its
/// version vector to `fanout` random peers, which answer with exactly the
/// updates it lacks. A node waits for those replies (or their timeout, when
/// the network lost them) before it asks again, so no update is shipped twice
/// to the same node by one peer. Messages cross a seeded network that can
/// delay, drop, duplicate, reorder and partition.
public final class SimulatedCluster {
    public struct Options: Sendable {
        public var nodes: Int
        public var seed: UInt64
        public var fanout: Int
        public var faults: NetworkFaults
        /// Optional fixed one-way latency in rounds between node pairs
        /// (`linkLatency[from][to]`), e.g. to model regions.
        public var linkLatency: [[Int]]?

        public init(nodes: Int, seed: UInt64 = 0, fanout: Int = 1, faults: NetworkFaults = .none,
                    linkLatency: [[Int]]? = nil) {
            self.nodes = nodes
            self.seed = seed
            self.fanout = fanout
            self.faults = faults
            self.linkLatency = linkLatency
        }
    }

    public struct Stats: Equatable, Sendable {
        public var rounds: UInt64 = 0
        public var messages: UInt64 = 0
        public var bytes: UInt64 = 0
        public var dropped: UInt64 = 0
        public var duplicated: UInt64 = 0
        public var updatesShipped: UInt64 = 0
        public var typeConflicts: UInt64 = 0
    }

    public static let maxNodes = 1024

    public let replicas: [Replica]
    public let options: Options
    public var faults: NetworkFaults { network.faults }
    /// Node i of the cluster is node id i on the network.
    private let network: SimulatedNetwork
    /// Picks the peers each round.
    private var rng: SplitMix64
    /// Per node: peer -> round by which its reply is due.
    private var awaiting: [[Int: UInt64]]
    private var counters = Stats()

    public init(_ options: Options) throws {
        guard (1...Self.maxNodes).contains(options.nodes) else {
            throw LuigiError.invalidArgument("nodes must be in 1...\(Self.maxNodes), got \(options.nodes)")
        }
        guard options.fanout >= 1 else {
            throw LuigiError.invalidArgument("fanout must be at least 1, got \(options.fanout)")
        }
        if let latency = options.linkLatency {
            guard latency.count == options.nodes, latency.allSatisfy({ $0.count == options.nodes }),
                latency.joined().allSatisfy({ (0...1_000).contains($0) })
            else { throw LuigiError.invalidArgument("link latency must be an N x N matrix of 0...1000 rounds") }
        }
        self.options = options
        self.network = try SimulatedNetwork(seed: options.seed, faults: options.faults)
        if let latency = options.linkLatency {
            network.latency = { from, to in UInt64(latency[Int(from)][Int(to)]) }
        }
        self.rng = SplitMix64(seed: options.seed)
        self.replicas = (0..<options.nodes).map { Replica(nodeID: UInt64($0)) }
        self.awaiting = Array(repeating: [:], count: options.nodes)
    }

    public subscript(index: Int) -> Replica { replicas[index] }
    public var count: Int { replicas.count }

    public var stats: Stats {
        var s = counters
        let n = network.stats
        s.messages = n.sent
        s.bytes = n.bytes
        s.dropped = n.dropped
        s.duplicated = n.duplicated
        s.typeConflicts = replicas.reduce(0) { $0 + $1.conflicts }
        return s
    }

    public func setFaults(_ faults: NetworkFaults) throws { try network.setFaults(faults) }

    /// Splits the nodes into groups that cannot reach each other; nodes named
    /// in no group form one more group together.
    public func partition(_ groups: [[Int]]) throws {
        var assignment = [Int](repeating: groups.count, count: replicas.count)
        var seen = Set<Int>()
        for (g, members) in groups.enumerated() {
            for node in members {
                guard replicas.indices.contains(node) else {
                    throw LuigiError.invalidArgument("node \(node) is not in the cluster")
                }
                guard seen.insert(node).inserted else {
                    throw LuigiError.invalidArgument("node \(node) is in two groups")
                }
                assignment[node] = g
            }
        }
        try partition(groupOf: assignment)
    }

    /// Same, from a node -> group table.
    public func partition(groupOf table: [Int]) throws {
        guard table.count == replicas.count else {
            throw LuigiError.invalidArgument("partition table has \(table.count) entries for \(replicas.count) nodes")
        }
        network.partition(groupOf: Dictionary(uniqueKeysWithValues: table.enumerated().map { (UInt64($0), $1) }))
    }

    public func heal() { network.heal() }

    /// Every replica has applied exactly the same updates and none waits.
    public var isConverged: Bool {
        let first = replicas[0].clock
        return replicas.allSatisfy { $0.pendingCount == 0 && $0.clock == first }
    }

    public func run(rounds: Int) {
        for _ in 0..<max(0, rounds) { step() }
    }

    /// Runs rounds until converged and returns how many it took.
    @discardableResult
    public func runUntilConverged(maxRounds: Int) throws -> Int {
        var rounds = 0
        while !isConverged {
            guard rounds < maxRounds else {
                throw LuigiError.notConverged("not converged after \(maxRounds) rounds")
            }
            step()
            rounds += 1
        }
        return rounds
    }

    /// One round: deliver what is due, then every idle node starts a sync.
    public func step() {
        counters.rounds += 1
        let now = counters.rounds
        for packet in network.deliver(dueBy: now) { receive(packet) }
        let n = replicas.count
        guard n > 1 else { return }
        for node in 0..<n {
            awaiting[node] = awaiting[node].filter { $0.value > now }
            guard awaiting[node].isEmpty else { continue }
            var peers = Set<Int>()
            while peers.count < min(options.fanout, n - 1) {
                let peer = Int.random(in: 0..<n - 1, using: &rng)
                peers.insert(peer >= node ? peer + 1 : peer)
            }
            for peer in peers.sorted() {
                awaiting[node][peer] = now + replyTimeout(node, peer)
                send(.digest(replicas[node].clock), from: node, to: peer)
            }
        }
    }

    /// Rounds after which a reply that has not arrived counts as lost.
    private func replyTimeout(_ a: Int, _ b: Int) -> UInt64 {
        let latency = (options.linkLatency?[a][b] ?? 0) + (options.linkLatency?[b][a] ?? 0)
        let extra = faults.maxDelay + (faults.reorder > 0 ? faults.maxDelay + 2 : 0)
        return UInt64(2 + latency + 2 * extra) + 2 * (faults.jitter?.cap ?? 0)
    }

    private func receive(_ packet: SimulatedNetwork.Packet) {
        // The simulator encodes every message itself: one that does not
        // decode is counted as lost rather than trusted.
        guard let decoded = try? SyncMessage(decoding: packet.bytes) else { return }
        let (from, to) = (Int(packet.from), Int(packet.to))
        let me = replicas[to]
        switch decoded {
        case .digest(let theirs):
            send(.reply(me.delta(since: theirs)), from: to, to: from)
        case .reply(let updates):
            awaiting[to][from] = nil
            for u in updates { me.apply(u) }
        }
    }

    /// Sent now, delivered from the next round on.
    private func send(_ message: SyncMessage, from: Int, to: Int) {
        if case .reply(let updates) = message { counters.updatesShipped += UInt64(updates.count) }
        network.send(message.encoded(), from: UInt64(from), to: UInt64(to), at: counters.rounds + 1)
    }
}
