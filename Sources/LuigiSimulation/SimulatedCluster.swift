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

    private struct InFlight {
        let deliverAt: UInt64
        let order: UInt64  // send order: ties are delivered FIFO
        let from: Int
        let to: Int
        let bytes: [UInt8]
    }

    public static let maxNodes = 1024

    public let replicas: [Replica]
    public let options: Options
    public private(set) var faults: NetworkFaults
    private var rng: SplitMix64
    private var inFlight: [InFlight] = []
    private var sent: UInt64 = 0
    private var groupOf: [Int]?
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
        self.faults = try options.faults.validated()
        self.rng = SplitMix64(seed: options.seed)
        self.replicas = (0..<options.nodes).map { Replica(nodeID: UInt64($0)) }
        self.awaiting = Array(repeating: [:], count: options.nodes)
    }

    public subscript(index: Int) -> Replica { replicas[index] }
    public var count: Int { replicas.count }

    public var stats: Stats {
        var s = counters
        s.typeConflicts = replicas.reduce(0) { $0 + $1.conflicts }
        return s
    }

    public func setFaults(_ faults: NetworkFaults) throws { self.faults = try faults.validated() }

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
        groupOf = assignment
    }

    /// Same, from a node -> group table.
    public func partition(groupOf table: [Int]) throws {
        guard table.count == replicas.count else {
            throw LuigiError.invalidArgument("partition table has \(table.count) entries for \(replicas.count) nodes")
        }
        groupOf = table
    }

    public func heal() { groupOf = nil }

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
        let due = inFlight.filter { $0.deliverAt <= now }.sorted { ($0.deliverAt, $0.order) < ($1.deliverAt, $1.order) }
        inFlight.removeAll { $0.deliverAt <= now }
        for message in due {
            if let groups = groupOf, groups[message.from] != groups[message.to] {
                counters.dropped += 1
                continue
            }
            receive(message)
        }
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
        return UInt64(2 + latency + 2 * extra)
    }

    private func receive(_ message: InFlight) {
        guard let decoded = try? SyncMessage(decoding: message.bytes) else {
            preconditionFailure("simulator produced an undecodable message")
        }
        let me = replicas[message.to]
        switch decoded {
        case .digest(let theirs):
            send(.reply(me.delta(since: theirs)), from: message.to, to: message.from)
        case .reply(let updates):
            awaiting[message.to][message.from] = nil
            for u in updates { me.apply(u) }
        }
    }

    private func send(_ message: SyncMessage, from: Int, to: Int) {
        let bytes = message.encoded()
        if case .reply(let updates) = message { counters.updatesShipped += UInt64(updates.count) }
        counters.messages += 1
        counters.bytes += UInt64(bytes.count)
        if rng.chance(faults.drop) {
            counters.dropped += 1
            return
        }
        enqueue(bytes, from: from, to: to)
        if rng.chance(faults.duplicate) {
            counters.duplicated += 1
            enqueue(bytes, from: from, to: to)
        }
    }

    private func enqueue(_ bytes: [UInt8], from: Int, to: Int) {
        var delay = UInt64(options.linkLatency?[from][to] ?? 0)
        if faults.maxDelay > 0 { delay += UInt64.random(in: 0...UInt64(faults.maxDelay), using: &rng) }
        if rng.chance(faults.reorder) { delay += UInt64.random(in: 1...UInt64(faults.maxDelay + 2), using: &rng) }
        sent += 1
        inFlight.append(InFlight(deliverAt: counters.rounds + 1 + delay, order: sent, from: from, to: to, bytes: bytes))
    }
}
