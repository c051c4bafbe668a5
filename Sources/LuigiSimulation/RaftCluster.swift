import LuigiCore
import LuigiHost

/// N Raft nodes (ids 1...N) running a state machine (the key-value one
/// unless `Options.makeMachine` says otherwise) on virtual time, over a
/// seeded faulty network, with crash and restart. Every step
/// checks Raft's safety properties; client operations are recorded as a
/// history for the linearizability checker.
///
/// Each node is a `RaftHost` running one group (the loop every driver
/// shares); its messages cross the `SimulatedNetwork` as bytes, carrying the
/// group id. Time: one `tick()` ticks every live node once and delivers the
/// messages due. Durability: each node's `RaftStorage` is what survived its
/// last sync; the driver persists and syncs every `Ready` before sending its
/// messages or applying its entries, so a crash loses only what was never
/// acknowledged.
public final class RaftCluster {
    public struct Options: Sendable {
        public var nodes: Int = 3
        public var seed: UInt64 = 0
        public var electionTick: Int = 10
        public var heartbeatTick: Int = 1
        public var preVote: Bool = true
        public var checkQuorum: Bool = true
        public var faults: NetworkFaults = .none
        /// Compact a node's log once it has applied this many entries past
        /// its snapshot (0 = never).
        public var compactAfter: Int = 0
        public var maxSizePerMessage: Int = 1 << 20
        public var maxInflightMessages: Int = 256
        /// Opens a node's durable storage (e.g. a `DurableRaftStorage` in its
        /// own directory). When set, a crash closes the storage and a restart
        /// reopens it, so only what was synced survives. Nil: in-memory logs.
        public var openStorage: (@Sendable (UInt64) throws -> RaftStorage)? = nil
        /// Builds a node's state machine at each start and restart (a crash
        /// loses it). Nil: a `KVStateMachine`, which `execute` and
        /// `linearizableGet` drive.
        public var makeMachine: (@Sendable (UInt64) throws -> RaftStateMachine)? = nil

        public init(nodes: Int = 3, seed: UInt64 = 0) {
            self.nodes = nodes
            self.seed = seed
        }
    }

    /// A broken safety property, with the evidence.
    public struct SafetyViolation: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    final class Member {
        let id: UInt64
        var storage: RaftStorage
        /// Nil while the node is down.
        var host: RaftHost?
        var driver: RaftDriver? { host?.driver(RaftCluster.group) }
        var raft: RaftNode? { driver?.node }
        var machine: RaftStateMachine = KVStateMachine()
        /// (index, term, data) of every entry applied, in order.
        var applied: [(index: UInt64, term: UInt64, data: [UInt8])] = [] {
            didSet { if applied.isEmpty { checked = 0 } }
        }
        /// How many of `applied` the safety check has seen.
        var checked = 0

        init(id: UInt64, storage: RaftStorage) {
            self.id = id
            self.storage = storage
        }
    }

    /// The group id every node of the cluster runs (and every message carries).
    static let group: UInt64 = 1

    public let options: Options
    public private(set) var now: UInt64 = 0
    private var members: [UInt64: Member] = [:]
    private var voters: [UInt64]
    /// Client request ids.
    private var rng: SplitMix64
    private let network: SimulatedNetwork
    /// term -> leader seen in it (at most one, checked).
    private var leaders: [UInt64: UInt64] = [:]
    /// The committed log as first observed: index -> (term, data, and the
    /// term of the node that first applied it, an upper bound on the term in
    /// which it was committed).
    private var committedLog: [UInt64: (term: UInt64, data: [UInt8], seenInTerm: UInt64)] = [:]
    /// Client request ids start at a random point so entries replayed from
    /// an earlier cluster's data directory never match a new request.
    private var nextRequest: UInt64
    /// Every client operation, for `LinearizabilityChecker`.
    public private(set) var history = KVHistory()
    public private(set) var messagesDelivered: UInt64 = 0

    /// `storages` (optional) gives nodes a pre-existing log, e.g. to start
    /// from the divergent logs of the Raft paper's figures.
    public init(_ options: Options, storages: [UInt64: RaftStorage] = [:]) throws {
        guard (1...64).contains(options.nodes) else {
            throw LuigiError.invalidArgument("nodes must be in 1...64, got \(options.nodes)")
        }
        self.options = options
        network = try SimulatedNetwork(seed: options.seed, faults: options.faults)
        rng = SplitMix64(seed: options.seed)
        nextRequest = rng.next() >> 1 | 1
        voters = (1...UInt64(options.nodes)).map { $0 }
        for id in voters {
            try start(Member(id: id, storage: try storages[id] ?? newStorage(id)), voters: voters)
        }
        if options.openStorage != nil, options.makeMachine == nil, try hasRecoveredState() {
            history = KVHistory(initial: try recoveredContents())
        }
    }

    private func hasRecoveredState() throws -> Bool {
        try members.values.contains { try $0.storage.lastIndex() > 0 }
    }

    /// Runs a cluster reopened from disk until a leader has committed an
    /// entry of its own term and applied everything: from then on no earlier
    /// entry can commit or vanish, so the leader's store is the state the
    /// client history starts from.
    private func recoveredContents(maxTicks: Int = 10_000) throws -> [String: [UInt8]] {
        for _ in 0..<maxTicks {
            if let l = leader, let node = members[l]?.raft, let kv = members[l]?.machine as? KVStateMachine {
                let s = node.status
                if s.commit == s.lastIndex, s.applied == s.commit, (try? members[l]!.storage.term(s.commit)) == s.term {
                    return kv.data
                }
            }
            try tick()
        }
        throw LuigiError.notConverged("the reopened cluster elected no leader within \(maxTicks) ticks")
    }

    public var faults: NetworkFaults { network.faults }

    public func setFaults(_ faults: NetworkFaults) throws { try network.setFaults(faults) }

    private func newStorage(_ id: UInt64) throws -> RaftStorage {
        try options.openStorage?(id) ?? MemoryRaftStorage()
    }

    private func config(for id: UInt64) -> RaftConfig {
        var c = RaftConfig(id: id)
        c.electionTick = options.electionTick
        c.heartbeatTick = options.heartbeatTick
        c.preVote = options.preVote
        c.checkQuorum = options.checkQuorum
        c.maxSizePerMessage = options.maxSizePerMessage
        c.maxInflightMessages = options.maxInflightMessages
        c.seed = options.seed
        c.group = Self.group
        return c
    }

    /// Starts (or restarts) a node: a host running its group, the machine
    /// attached through the driver (restored from the stored snapshot).
    private func start(_ member: Member, voters: [UInt64]) throws {
        let machine = try options.makeMachine?(member.id) ?? KVStateMachine()
        member.machine = machine
        member.applied = []
        let driver = try RaftDriver(config: config(for: member.id), storage: member.storage, voters: voters)
        let host = RaftHost { [unowned self] envelopes in
            for e in envelopes { self.network.send(e.bytes, from: e.from, to: e.to, at: self.now) }
        }
        host.onReadStates = { [unowned self] _, states in
            guard let watch = self.readWatch else { return }
            for rs in states where rs.context == watch.context { watch.found(rs.index) }
        }
        host.afterAdvance = { [unowned self, unowned member] _, _ in
            try self.compactIfDue(member)
            try self.checkSafety(member)
        }
        try host.add(
            driver, machine: machine,
            onApply: { [unowned member] entry, _ in member.applied.append((entry.index, entry.term, entry.data)) },
            onRestore: { [unowned member] _ in member.applied = [] })
        member.host = host
        members[member.id] = member
    }

    // MARK: - Observing

    public var nodeIDs: [UInt64] { members.keys.sorted() }
    public func isAlive(_ id: UInt64) -> Bool { members[id]?.raft != nil }
    public func node(_ id: UInt64) -> RaftNode? { members[id]?.raft }
    public func storage(_ id: UInt64) -> RaftStorage? { members[id]?.storage }
    public func machine(_ id: UInt64) -> KVStateMachine? { members[id]?.machine as? KVStateMachine }
    public func stateMachine(_ id: UInt64) -> RaftStateMachine? { members[id]?.machine }

    /// The live leader with the highest term, if any.
    public var leader: UInt64? {
        members.values.compactMap { $0.raft }.filter { $0.role == .leader }.max { $0.term < $1.term }?.id
    }

    public func status(_ id: UInt64) -> RaftStatus? { members[id]?.raft?.status }

    /// Every committed entry any node applied, by index (as first applied).
    public var committedEntries: [(index: UInt64, term: UInt64, data: [UInt8])] {
        committedLog.sorted { $0.key < $1.key }.map { ($0.key, $0.value.term, $0.value.data) }
    }

    /// Entries applied by a node so far (term, data), including no-ops.
    public func appliedLog(_ id: UInt64) -> [(term: UInt64, data: [UInt8])] {
        members[id]?.applied.map { ($0.term, $0.data) } ?? []
    }

    // MARK: - Faults

    public func isolate(_ id: UInt64) { network.isolate(id) }
    public func cut(_ a: UInt64, _ b: UInt64) { network.cut(a, b) }
    public func heal() { network.heal() }

    /// Stops a node: everything not synced (nothing, with this driver) and
    /// everything in memory (unstable log, votes in flight) is lost.
    public func crash(_ id: UInt64) {
        members[id]?.host = nil
        // Durable storage is dropped (its files stay) and reopened on restart.
        if options.openStorage != nil { members[id]?.storage = MemoryRaftStorage() }
        network.discard(to: id)
    }

    public func restart(_ id: UInt64) throws {
        guard let m = members[id], m.raft == nil else { return }
        if options.openStorage != nil { m.storage = try newStorage(id) }  // reopen: recover from disk
        try start(m, voters: voters)
    }

    // MARK: - Membership

    /// Starts a new empty node and asks the leader to add it as a voter.
    /// Returns its id; it becomes a voter once the change commits and applies.
    @discardableResult
    public func addNode() throws -> UInt64 {
        guard let l = leader, let raft = members[l]?.raft else { throw LuigiError.state("no leader") }
        let id = (members.keys.max() ?? 0) + 1
        try start(Member(id: id, storage: try newStorage(id)), voters: raft.conf.voters)
        try raft.proposeConfChange(ConfChange(.addVoter, node: id))
        voters.append(id)
        try process()
        return id
    }

    /// Asks the leader to remove a node from the group.
    public func removeNode(_ id: UInt64) throws {
        guard let l = leader, let raft = members[l]?.raft else { throw LuigiError.state("no leader") }
        try raft.proposeConfChange(ConfChange(.removeNode, node: id))
        voters.removeAll { $0 == id }
        try process()
    }

    /// Asks the leader to hand leadership to `target`.
    public func transferLeader(to target: UInt64) throws {
        guard let l = leader, let raft = members[l]?.raft else { throw LuigiError.state("no leader") }
        try raft.transferLeadership(to: target)
        try process()
    }

    /// Makes `id` campaign now.
    public func campaign(_ id: UInt64) throws {
        members[id]?.raft?.campaign()
        try process()
    }

    // MARK: - Driving

    /// Advances virtual time by `n` ticks.
    public func tick(_ n: Int = 1) throws {
        for _ in 0..<max(0, n) {
            now += 1
            for id in nodeIDs { members[id]?.host?.tick() }
            try process()
            try deliver(network.deliver(dueBy: now))
        }
    }

    /// Ticks until some node leads and has committed everything in its log
    /// (its no-op included); returns it.
    @discardableResult
    public func electLeader(maxTicks: Int = 500) throws -> UInt64 {
        for _ in 0..<maxTicks {
            if let l = leader, let s = status(l), s.commit >= s.lastIndex { return l }
            try tick()
        }
        throw LuigiError.notConverged("no leader after \(maxTicks) ticks")
    }

    /// Ticks until every live node holds and has applied the leader's whole log.
    public func settle(maxTicks: Int = 2_000) throws {
        for _ in 0..<maxTicks {
            if let l = leader, let ls = status(l), ls.commit == ls.lastIndex {
                let live = nodeIDs.filter { isAlive($0) }
                if live.allSatisfy({ status($0)?.applied == ls.commit && status($0)?.lastIndex == ls.lastIndex }) {
                    return
                }
            }
            try tick()
        }
        throw LuigiError.notConverged("not settled after \(maxTicks) ticks")
    }

    /// Delivers every message in flight (ignoring delays) until none is left,
    /// without ticking: the cluster does all the work it can right now.
    public func stabilize(maxRounds: Int = 10_000) throws {
        try process()
        var rounds = 0
        while !network.isEmpty {
            rounds += 1
            guard rounds <= maxRounds else { throw LuigiError.notConverged("messages still in flight after \(maxRounds) rounds") }
            try deliver(network.deliverAll())
        }
    }

    /// Hands each packet to its node's host (a message the host refuses is
    /// a bug of the simulated cluster: it throws), then runs the loops.
    private func deliver(_ packets: [SimulatedNetwork.Packet]) throws {
        guard !packets.isEmpty else { return }
        for p in packets {
            guard let host = members[p.to]?.host else { continue }
            messagesDelivered += 1
            try host.receive(p.bytes)
        }
        try process()
    }

    /// Runs every node's host loop: persist + sync, apply, send, advance.
    private func process() throws {
        for id in nodeIDs { try members[id]?.host?.process() }
    }

    private func compactIfDue(_ member: Member) throws {
        guard options.compactAfter > 0, let driver = member.driver else { return }
        let first = try member.storage.firstIndex()
        let applied = driver.node.status.applied
        if applied >= first && Int(applied - first) + 1 >= options.compactAfter {
            try driver.snapshotMachine()
        }
    }

    // MARK: - Safety, checked after every Ready

    private func checkSafety(_ member: Member) throws {
        guard let raft = member.raft else { return }
        // Election safety: at most one leader per term.
        if raft.role == .leader {
            if let other = leaders[raft.term], other != raft.id {
                throw SafetyViolation(description: "two leaders in term \(raft.term): \(other) and \(raft.id)")
            }
            leaders[raft.term] = raft.id
        }
        // State machine safety + log matching on what was applied: every node
        // applies exactly the same entry at each index.
        for entry in member.applied[member.checked...] {
            if let seen = committedLog[entry.index] {
                guard seen.term == entry.term && seen.data == entry.data else {
                    throw SafetyViolation(description:
                        "node \(member.id) applied (\(entry.index), term \(entry.term)) but (\(entry.index), term \(seen.term)) was committed")
                }
            } else {
                committedLog[entry.index] = (entry.term, entry.data, raft.term)
            }
        }
        member.checked = member.applied.count
        // Leader completeness: a leader of a later term than the one an entry
        // was committed in holds that entry.
        if raft.role == .leader {
            let first = try member.storage.firstIndex()
            for (index, seen) in committedLog where index >= first && raft.term > seen.seenInTerm {
                guard (try? member.storage.term(index)) == seen.term else {
                    throw SafetyViolation(description:
                        "leader \(raft.id) (term \(raft.term)) lacks committed entry \(index) (term \(seen.term))")
                }
            }
        }
    }

    // MARK: - Clients

    /// Proposes raw data through the current leader; returns its index.
    @discardableResult
    public func propose(_ data: [UInt8]) throws -> UInt64 {
        guard let l = leader, let raft = members[l]?.raft else { throw LuigiError.state("no leader") }
        let index = try raft.propose(data)
        try process()
        return index
    }

    /// Runs one key-value command to completion through the log, recording it
    /// in the history. Returns nil when it did not complete within `timeout`
    /// ticks (its outcome is then unknown).
    public func execute(_ command: KVStateMachine.Command, client: UInt64 = 0, timeout: Int = 200) throws -> [UInt8]? {
        guard options.makeMachine == nil else { throw LuigiError.state("commands need the key-value machine") }
        let op = history.invoke(client: client, kind: Self.kind(command), at: now)
        guard let result = try executeAll([command.encoded()], timeout: timeout)[0] else {
            return nil  // outcome unknown: it may still commit later
        }
        history.complete(op, result: Self.observed(command, result), at: now)
        return result
    }

    /// Runs commands of the attached state machine through the log at once:
    /// each is proposed through the current leader (again through the next
    /// one, if none was there yet) framed with a request id of its own, and
    /// its result is what applying it produced on whichever node applied it
    /// first. Nil for a command that did not complete within `timeout`
    /// ticks: its outcome is unknown (it may still commit later).
    public func executeAll(_ commands: [[UInt8]], timeout: Int = 200) throws -> [[UInt8]?] {
        let requests = commands.map { _ in
            defer { nextRequest &+= 1 }
            return nextRequest
        }
        var results = [[UInt8]?](repeating: nil, count: commands.count)
        var proposed = [Bool](repeating: false, count: commands.count)
        var open = commands.count
        defer { for id in nodeIDs { for r in requests { members[id]?.host?.forget(r) } } }
        func collect() {
            for i in results.indices where results[i] == nil {
                for id in nodeIDs {
                    guard let result = members[id]?.host?.takeResult(of: requests[i]) else { continue }
                    results[i] = result
                    open -= 1
                    break
                }
            }
        }
        for round in 0...timeout {
            // Every node (a restarted one too) reports what it applies.
            for id in nodeIDs { for (i, r) in requests.enumerated() where results[i] == nil { members[id]?.host?.awaitResult(of: r) } }
            if proposed.contains(false), let l = leader, let host = members[l]?.host {
                for i in commands.indices where !proposed[i] {
                    proposed[i] = (try? host.propose(commands[i], request: requests[i], group: Self.group)) != nil
                }
                try process()
            }
            collect()
            if open == 0 || round == timeout { break }
            try tick()
        }
        return results
    }

    /// A linearizable read through ReadIndex: the leader confirms with a
    /// quorum that it still leads, waits until it applied the read index, and
    /// answers from its state machine. Nil on timeout.
    public func linearizableGet(_ key: String, client: UInt64 = 0, timeout: Int = 200) throws -> [UInt8]? {
        guard options.makeMachine == nil else { throw LuigiError.state("reads need the key-value machine") }
        let op = history.invoke(client: client, kind: .get(key: key), at: now)
        let value = try linearizableRead(timeout: timeout) { machine in
            guard let kv = machine as? KVStateMachine else { throw LuigiError.state("reads need the key-value machine") }
            return kv.read(key)
        }
        guard let value else { return nil }
        history.complete(op, result: Self.observed(.get(key: key), value), at: now)
        return value
    }

    /// Runs `read` on the leader's state machine once ReadIndex confirmed it
    /// still leads and it applied everything committed before the call: the
    /// answer reflects every write completed before. Nil on timeout; an
    /// error `read` throws is passed on.
    public func linearizableRead<T>(timeout: Int = 200, _ read: (RaftStateMachine) throws -> T) throws -> T? {
        let context = Array("read-\(nextRequest)".utf8)
        nextRequest &+= 1
        var askedOf: UInt64? = nil
        var askedAt = 0
        var readIndex: UInt64? = nil
        for round in 0..<timeout {
            if askedOf == nil, let l = leader, let raft = members[l]?.raft {
                if (try? raft.readIndex(context: context)) != nil {
                    askedOf = l
                    askedAt = round
                    try processCollectingReads(context) { readIndex = $0 }
                }
            }
            if let index = readIndex, let l = askedOf, let member = members[l], let raft = member.raft,
                raft.status.applied >= index
            {
                return try read(member.machine)
            }
            if let l = askedOf, members[l]?.raft == nil || members[l]?.raft?.role != .leader {
                askedOf = nil  // that leader is gone: ask again
                readIndex = nil
            } else if readIndex == nil, round - askedAt >= 2 * options.electionTick {
                askedOf = nil  // the quorum round was lost (a dropped message): ask again
            }
            try tickCollectingReads(context) { readIndex = $0 }
        }
        return nil
    }

    private var readWatch: (context: [UInt8], found: (UInt64) -> Void)?

    static func kind(_ command: KVStateMachine.Command) -> KVOperation.Kind {
        switch command {
        case .put(let k, let v): return .put(key: k, value: v)
        case .delete(let k): return .delete(key: k)
        case .cas(let k, let e, let n): return .cas(key: k, expected: e, new: n)
        case .get(let k): return .get(key: k)
        }
    }

    /// What a client learns from a state-machine result.
    static func observed(_ command: KVStateMachine.Command, _ result: [UInt8]) -> KVOperation.Result {
        switch command {
        case .put, .delete: return .ok
        case .cas: return .swapped(result == [1])
        case .get: return .value(result.first == 1 ? Array(result.dropFirst()) : nil)
        }
    }

    private func processCollectingReads(_ context: [UInt8], _ found: @escaping (UInt64) -> Void) throws {
        readWatch = (context, found)
        defer { readWatch = nil }
        try process()
    }

    private func tickCollectingReads(_ context: [UInt8], _ found: @escaping (UInt64) -> Void) throws {
        readWatch = (context, found)
        defer { readWatch = nil }
        try tick()
    }
}
