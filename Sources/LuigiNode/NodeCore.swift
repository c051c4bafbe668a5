import CoreMetrics
import Logging
import LuigiCore
import LuigiHost
import LuigiStorage
import LuigiWire
import NIOCore

/// The node's Raft groups around the shared host loop (`RaftHost`), on a
/// thread of their own: `loop` is a one-thread event loop used as a serial
/// executor, separate from the network's loops. Every WAL append and
/// fdatasync happens here (inside `RaftHost.process`), so a sync never
/// blocks a socket; the network threads only hand frames in and write
/// frames out. All state is touched on `loop` only.
///
/// Each group keeps its own WAL and snapshots (`<data>/group-<id>`): a
/// group is recovered, compacted and snapshotted on its own, reusing the
/// single-group storage as it is. The price is one fdatasync per group per
/// batch; see ARCHITECTURE ("luigi-node") for the trade against one shared
/// WAL.
final class NodeCore: @unchecked Sendable {  // confined to `loop`
    struct Pending {
        enum Kind: Equatable {
            case register, write
            /// A member's new address: done when its address-book put applied.
            case address
            /// A membership change: done once the group's voters include
            /// (`adding`) or exclude the node.
            case member(id: UInt64, adding: Bool)
            /// A linearizable get served by ReadIndex: once a quorum
            /// confirmed the leadership (`index` known) and the group has
            /// applied through `index`, the key is read from the machine.
            case readIndex(key: String, index: UInt64?, asked: NIODeadline)
        }
        var group: UInt64
        var term: UInt64
        var kind: Kind
        var id: RequestID
        var deadline: NIODeadline
        var started: NIODeadline
        var reply: @Sendable (ClientReply) -> Void
    }

    let loop: any EventLoop
    let config: NodeConfig
    let logger: Logger
    let metrics: NodeMetrics
    private let host: RaftHost
    private var storages: [UInt64: DurableRaftStorage] = [:]
    /// The replica groups by id (the others are key-value groups).
    private var replicas: [UInt64: ReplicaGroup] = [:]
    /// Each key-value group's machine, read directly by ReadIndex gets.
    private var stores: [UInt64: KVStateMachine] = [:]
    private var antiEntropyTask: RepeatedTask?
    /// The watermark shards and this node's coordinator (nil: no shards).
    private var shards: ShardGroups?
    private var shardTimer: RepeatedTask?
    /// When the next one-shot wake-up for a held transaction is due.
    private var shardWake: NIODeadline?
    /// Each group's storage as the driver sees it: syncs counted and timed.
    private var counted: [UInt64: SyncCountingStorage] = [:]
    private var pending: [UInt64: Pending] = [:]
    /// The pending ReadIndex gets and membership changes: each batch checks
    /// these, not every pending request (writes are answered by `onResult`).
    private var pendingReads: Set<UInt64> = []
    private var pendingMembers: Set<UInt64> = []
    /// Host request ids start at a random point: an entry proposed before a
    /// restart must not route its result to a request made after it.
    private var nextRequest = UInt64.random(in: 1...(UInt64.max >> 2))
    private var processScheduled = false
    private var tickTask: RepeatedTask?
    private var gauges: [UInt64: [String: Gauge]] = [:]
    /// Each group's (role, term) when last seen: pending requests are
    /// re-checked for lost leadership only when it changes.
    private var leadership: [UInt64: (RaftRole, UInt64)] = [:]
    /// Set when a group's storage failed: the node stops serving (see /health).
    private(set) var failure: String?
    /// Hands frames to the link of a peer (thread-safe; set before `start`).
    var sendToPeer: @Sendable (UInt64, [Frame]) -> Void = { _, _ in }
    /// Every member's address: the config's, then what the groups' address
    /// books applied (`member add`).
    private(set) var members: [UInt64: Address]
    /// The peers this node talks to: the members with an address that some
    /// group's configuration still holds. A removed member drops out once
    /// every group applied its removal, and its link closes. Changes go to
    /// `onPeers`.
    private(set) var peers: [UInt64: Address] = [:]
    var onPeers: @Sendable ([UInt64: Address]) -> Void = { _ in }
    /// Each group's configuration when `peers` was last computed.
    private var confs: [UInt64: ConfState] = [:]

    init(config: NodeConfig, loop: any EventLoop, logger: Logger, metrics: NodeMetrics) {
        self.config = config
        self.loop = loop
        self.logger = logger
        self.metrics = metrics
        self.members = config.members
        self.host = RaftHost(send: { _ in })
    }

    private func learnAddress(_ id: UInt64, _ address: Address?) {
        guard id != config.nodeId, let address, members[id] != address else { return }
        members[id] = address
        logger.info("member address learned", metadata: ["member": "\(id)", "address": "\(address)"])
        refreshPeers(force: true)
    }

    /// Recomputes `peers` when an address or a group's configuration changed.
    private func refreshPeers(force: Bool = false) {
        var changed = force
        for group in host.groups {
            guard let conf = host.driver(group)?.node.conf, confs[group] != conf else { continue }
            confs[group] = conf
            changed = true
        }
        guard changed else { return }
        var inSomeGroup = Set<UInt64>()
        for conf in confs.values { inSomeGroup.formUnion(conf.voters + conf.learners) }
        let now = members.filter { $0.key != config.nodeId && inSomeGroup.contains($0.key) }
        guard now != peers else { return }
        for (id, _) in peers where now[id] == nil {
            logger.info("member left every group; its link closes", metadata: ["member": "\(id)"])
        }
        peers = now
        onPeers(peers)
    }

    /// Opens every group's storage and starts ticking. Runs on `loop`.
    func start() throws {
        loop.preconditionInEventLoop()
        host.sendsEarly = true
        host.send = { [sendToPeer, metrics] envelopes in
            // One write and flush per peer for the whole batch.
            var byPeer: [UInt64: [Frame]] = [:]
            for e in envelopes { byPeer[e.to, default: []].append(Frame(.raft, group: e.group, payload: e.bytes)) }
            for (peer, frames) in byPeer { sendToPeer(peer, frames) }
            metrics.framesOut.increment(by: envelopes.count)
        }
        host.onReadStates = { [unowned self] _, states in
            for state in states {
                var r = ByteReader(state.context)
                guard let number = try? r.u64le(), case .readIndex(let key, nil, let asked)? = pending[number]?.kind else { continue }
                pending[number]?.kind = .readIndex(key: key, index: state.index, asked: asked)
            }
        }
        host.onResult = { [unowned self] request, result in
            guard let p = pending[request] else { return }
            if case .member = p.kind { return }  // done when the membership change applies
            finish(request, reply(to: p, result: result))
        }
        host.afterAdvance = { [unowned self] group, driver in
            let status = driver.node.status
            guard status.applied >= status.firstIndex, Int(status.applied - status.firstIndex) + 1 >= config.compactAfter
            else { return }
            // A snapshot writes the whole state: taken only once the log
            // since the last one outweighs it, its cost stays proportional
            // to the bytes written, however large the state grows.
            if let storage = counted[group], storage.bytesSinceSnapshot < storage.snapshotBytes { return }
            try driver.snapshotMachine()
        }
        // A joining node starts with the current members as the group's
        // voters, itself not among them: it campaigns only once a leader
        // has added it (`member add`) and the change reached it.
        let voters = config.members.keys.filter { !config.join || $0 != config.nodeId }.sorted()
        if config.shards > 0 {
            let incarnation = try DurableCounter.next(at: "\(config.dataDirectory)/coordinator-incarnation")
            let groups = try ShardGroups(config: config, incarnation: incarnation)
            groups.leaderOf = { [unowned self] group in host.driver(group)?.node.leader ?? 0 }
            groups.members = { [unowned self] in peers.keys.sorted() }
            groups.send = { [sendToPeer, metrics] peer, frames in
                sendToPeer(peer, frames)
                metrics.framesOut.increment(by: frames.count)
            }
            shards = groups
            logger.info("coordinator started", metadata: ["coordinator": "\(groups.coordinatorId)"])
        }
        for group in config.groupIds {
            let directory = "\(config.dataDirectory)/group-\(group)"
            let storage: DurableRaftStorage
            do {
                storage = try DurableRaftStorage(directory: directory, conf: ConfState(voters: voters))
            } catch {
                throw LuigiError.state("cannot open \(directory): \(error)")
            }
            var raft = RaftConfig(id: config.nodeId)
            raft.group = group
            raft.electionTick = config.electionTicks
            raft.heartbeatTick = config.heartbeatTicks
            raft.seed = UInt64.random(in: 0...UInt64.max)
            let counting = SyncCountingStorage(storage)
            let driver = try RaftDriver(config: raft, storage: counting, voters: voters)
            if let shards, group > NodeConfig.shardGroupBase {
                try host.add(driver, machine: try shards.attach(group: group, driver: driver))
            } else if group > NodeConfig.replicaGroupBase {
                let replica = try ReplicaGroup(
                    group: group, nodeId: config.nodeId, directory: "\(config.dataDirectory)/replica-\(group)",
                    maxPending: config.maxPendingReplicaUpdates)
                replicas[group] = replica
                try host.add(driver, machine: SessionMachine(replica.machine))
            } else {
                let book = AddressBookMachine { [unowned self] id, address in learnAddress(id, address) }
                stores[group] = book.kv
                try host.add(driver, machine: SessionMachine(book))
            }
            storages[group] = storage
            counted[group] = counting
            logger.info(
                "group opened",
                metadata: [
                    "group": "\(group)", "snapshot": "\(storage.recovery.snapshotIndex)",
                    "last_index": "\(driver.node.status.lastIndex)",
                ])
        }
        refreshPeers(force: true)
        let interval = TimeAmount.milliseconds(Int64(config.tickMillis))
        tickTask = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.tick()
        }
        if shards != nil {
            let every = TimeAmount.microseconds(Int64(config.shardTickMicros))
            shardTimer = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in
                self?.pumpShards()
            }
        }
        if !replicas.isEmpty {
            let every = TimeAmount.milliseconds(Int64(config.antiEntropyMillis))
            antiEntropyTask = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in
                self?.sendDigests()
            }
        }
    }

    /// Stops ticking, answers what is pending and closes the WALs. Runs on `loop`.
    func stop() {
        tickTask?.cancel()
        tickTask = nil
        antiEntropyTask?.cancel()
        antiEntropyTask = nil
        shardTimer?.cancel()
        shardTimer = nil
        shards?.abandon("the node is shutting down")
        shards = nil
        for (request, p) in pending {
            host.forget(request)
            p.reply(ClientReply(id: p.id, status: .unavailable, message: "the node is shutting down"))
        }
        pending = [:]
        pendingReads = []
        pendingMembers = []
        for group in host.groups { host.remove(group) }
        for storage in storages.values { storage.close() }
        storages = [:]
        for (group, replica) in replicas.sorted(by: { $0.key < $1.key }) {
            // A graceful stop makes the last commits durable and answers them.
            if failure == nil, let synced = try? replica.sync() { push(synced, group: group) } else { replica.abandonUnsynced() }
            replica.close()
        }
        replicas = [:]
        counted = [:]
    }

    // MARK: - Inputs (each runs on `loop`)

    /// A Raft message from the authenticated peer `peer`. Its group, sender
    /// and recipient must agree with the frame and the connection, or it is
    /// dropped; a message the node refuses changes nothing.
    func receive(_ frame: Frame, from peer: UInt64) {
        metrics.framesIn.increment()
        do {
            let message = try RaftMessage(decoding: frame.payload)
            guard message.group == frame.group, message.from == peer, message.to == config.nodeId else {
                throw LuigiError.invalidArgument(
                    "message \(message.from)->\(message.to) in group \(message.group) on \(peer)'s connection, frame group \(frame.group)")
            }
            try host.receive(message)
        } catch {
            metrics.badFrames.increment()
            logger.debug("peer message refused", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return
        }
        scheduleProcess()
    }

    /// A client's request for `group`; `reply` is called exactly once.
    func submit(_ request: ClientRequest, group: UInt64, reply: @escaping @Sendable (ClientReply) -> Void) {
        metrics.requests.increment()
        let id = request.id
        func answer(_ status: ReplyStatus, _ message: String = "", result: [UInt8] = [], leader: UInt64 = 0) {
            if status != .ok { metrics.requestsFailed.increment() }
            reply(
                ClientReply(
                    id: id, status: status, leaderId: leader,
                    leaderAddress: members[leader]?.description ?? "", message: message, result: result))
        }
        if case .status = request.operation { return answer(.ok, result: Array(statusJSON().utf8)) }
        if let failure { return answer(.unavailable, "node failed: \(failure)") }
        if case .transact(let parts) = request.operation {
            guard let shards else { return answer(.unavailable, "this node runs no watermark shards (--shards)") }
            shards.transact(parts, timeoutMillis: request.timeoutMillis) { status, message, result in
                answer(status, message, result: result)
            }
            return scheduleProcess()
        }
        guard let driver = host.driver(group) else {
            return answer(.unavailable, "this node runs groups \(config.groupIds.first ?? 1)...\(config.groupIds.last ?? 1) (replica groups from \(NodeConfig.replicaGroupBase + 1), shard groups from \(NodeConfig.shardGroupBase + 1)), not \(group)")
        }
        let replica = replicas[group]
        switch request.operation {
        case .commit, .coordinate, .value:
            guard replica != nil else { return answer(.invalid, "group \(group) is a key-value group, not a replica group") }
        case .put, .get, .delete, .cas:
            guard replica == nil else { return answer(.invalid, "group \(group) is a replica group, not a key-value group") }
        default: break
        }
        // Coordination-free: any node commits and reads its own replica.
        if let replica {
            switch request.operation {
            case .commit(let ops):
                do {
                    _ = try replica.commit(ops) { update in
                        guard let update else {
                            return answer(.timeout, "the node failed before the commit was durable; its outcome is unknown")
                        }
                        var w = ByteWriter()
                        w.u64le(update.origin)
                        w.u64le(update.seq)
                        answer(.ok, result: w.bytes)
                    }
                    scheduleProcess()
                } catch let failed as StorageFailure {
                    fail(failed.description)
                    answer(.timeout, "the node failed while committing; the outcome is unknown")
                } catch let notReady as NotReady {
                    answer(.unavailable, notReady.description)
                } catch {
                    answer(.rejected, "\(error)", result: [RejectionKind(error).rawValue])
                }
                return
            case .value(let key):
                return answer(.ok, result: WireValue.encode(replica.replica.value(key)))
            default: break
            }
        }
        let node = driver.node
        guard node.role == .leader else {
            return answer(.notLeader, "node \(config.nodeId) does not lead group \(group)", leader: node.leader)
        }
        switch request.operation {
        case .put(let key, _), .delete(let key), .cas(let key, _, _):
            if AddressBookMachine.isReserved(key) { return answer(.invalid, "keys under __luigi/ are reserved") }
        case .addMember(let member, let text):
            return addMember(member, text, request: request, node: node, group: group, reply: reply, answer: answer)
        case .removeMember(let member):
            return removeMember(member, request: request, node: node, group: group, reply: reply, answer: answer)
        default: break
        }
        let kind: Pending.Kind
        let command: [UInt8]
        switch request.operation {
        case .register:
            kind = .register
            command = SessionMachine.registration()
        case .get(let key):
            // Linearizable without a log entry: ReadIndex (no write, no sync).
            let number = nextRequestNumber()
            do {
                try node.readIndex(context: Self.context(number))
            } catch {
                return answer(.notLeader, "read refused: \(error)", leader: node.leader)
            }
            return wait(
                for: request, group: group, node: node, kind: .readIndex(key: key, index: nil, asked: .now()),
                number: number, reply: reply)
        case .put(let key, let value):
            kind = .write
            command = SessionMachine.frame(
                KVStateMachine.Command.put(key: key, value: value).encoded(), session: id.client, seq: id.seq)
        case .delete(let key):
            kind = .write
            command = SessionMachine.frame(KVStateMachine.Command.delete(key: key).encoded(), session: id.client, seq: id.seq)
        case .cas(let key, let expected, let new):
            kind = .write
            command = SessionMachine.frame(
                KVStateMachine.Command.cas(key: key, expected: expected, new: new).encoded(), session: id.client,
                seq: id.seq)
        case .coordinate(let ops):
            guard let replica else { return }
            do {
                let tx = replica.replica.transaction()
                for op in ops { try op.record(in: tx) }
                kind = .write
                command = SessionMachine.frame(try replica.machine.command(for: tx), session: id.client, seq: id.seq)
                // A log entry must fit an append frame to the followers.
                guard command.count <= config.maxFramePayload / 2 else {
                    throw LuigiError.invalidArgument(
                        "a coordinated transaction of \(command.count) bytes exceeds \(config.maxFramePayload / 2)")
                }
            } catch {
                return answer(.rejected, "\(error)", result: [RejectionKind(error).rawValue])
            }
        case .status, .addMember, .removeMember, .commit, .value, .transact:
            return  // answered above
        }
        let requestNumber = nextRequestNumber()
        do {
            try host.propose(command, request: requestNumber, group: group)
        } catch {
            return answer(.notLeader, "proposal refused: \(error)", leader: node.leader)
        }
        wait(for: request, group: group, node: node, kind: kind, number: requestNumber, reply: reply)
    }

    /// Records a request that waits for the log.
    private func wait(
        for request: ClientRequest, group: UInt64, node: RaftNode, kind: Pending.Kind, number: UInt64? = nil,
        reply: @escaping @Sendable (ClientReply) -> Void
    ) {
        let now = NIODeadline.now()
        let number = number ?? nextRequestNumber()
        pending[number] = Pending(
            group: group, term: node.term, kind: kind, id: request.id,
            deadline: now + .milliseconds(Int64(request.timeoutMillis)), started: now,
            reply: reply)
        if case .readIndex = kind { pendingReads.insert(number) }
        if case .member = kind { pendingMembers.insert(number) }
        scheduleProcess()
    }

    // MARK: - Membership

    private func addMember(
        _ member: UInt64, _ text: String, request: ClientRequest, node: RaftNode, group: UInt64,
        reply: @escaping @Sendable (ClientReply) -> Void, answer: (ReplyStatus, String, [UInt8], UInt64) -> Void
    ) {
        guard let address = try? Address(parsing: text) else { return answer(.invalid, "bad address '\(text)'", [], 0) }
        if node.conf.voters.contains(member) && members[member] == address { return answer(.ok, "", [], 0) }
        do {
            // The address first: whoever applies the change already knows it.
            let record = KVStateMachine.Command.put(key: AddressBookMachine.key(member), value: Array(address.description.utf8))
            let number = nextRequestNumber()
            try host.propose(record.encoded(), request: number, group: group)
            if node.conf.voters.contains(member) {
                // Only the address changes: done when the put applied.
                return wait(for: request, group: group, node: node, kind: .address, number: number, reply: reply)
            }
            host.forget(number)
            try node.proposeConfChange(ConfChange(.addVoter, node: member))
            wait(for: request, group: group, node: node, kind: .member(id: member, adding: true), reply: reply)
        } catch {
            answer(.unavailable, "cannot add node \(member) now: \(error)", [], 0)
        }
    }

    private func removeMember(
        _ member: UInt64, request: ClientRequest, node: RaftNode, group: UInt64,
        reply: @escaping @Sendable (ClientReply) -> Void, answer: (ReplyStatus, String, [UInt8], UInt64) -> Void
    ) {
        guard node.conf.contains(member) else { return answer(.ok, "", [], 0) }
        do {
            try node.proposeConfChange(ConfChange(.removeNode, node: member))
            wait(for: request, group: group, node: node, kind: .member(id: member, adding: false), reply: reply)
        } catch {
            answer(.unavailable, "cannot remove node \(member) now: \(error)", [], 0)
        }
    }

    static func context(_ number: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.u64le(number)
        return w.bytes
    }

    /// ReadIndex gets whose read point the group has now applied; and,
    /// on a tick, ReadIndex rounds lost to a dropped message asked again.
    private func serveReads(reask: Bool) {
        let now = NIODeadline.now()
        let patience = TimeAmount.milliseconds(Int64(2 * config.electionTicks * config.tickMillis))
        for number in pendingReads {
            guard let p = pending[number], case .readIndex(let key, let index, let asked) = p.kind,
                let node = host.driver(p.group)?.node
            else { continue }
            if let index {
                guard node.status.applied >= index, let store = stores[p.group] else { continue }
                finish(number, ClientReply(id: p.id, status: .ok, result: store.read(key)))
            } else if reask, now - asked > patience, node.role == .leader {
                try? node.readIndex(context: Self.context(number))
                pending[number]?.kind = .readIndex(key: key, index: nil, asked: now)
            }
        }
    }

    private func nextRequestNumber() -> UInt64 {
        defer { nextRequest &+= 1 }
        return nextRequest
    }

    /// Membership requests whose change has now applied.
    private func finishMembershipChanges() {
        for number in pendingMembers {
            guard let p = pending[number], case .member(let id, let adding) = p.kind,
                let conf = host.driver(p.group)?.node.conf
            else { continue }
            if adding ? conf.voters.contains(id) : !conf.contains(id) {
                finish(number, ClientReply(id: p.id, status: .ok))
            }
        }
    }

    // MARK: - The loop

    private func scheduleProcess() {
        guard !processScheduled else { return }
        processScheduled = true
        loop.execute { [self] in
            processScheduled = false
            process()
        }
    }

    private func tick() {
        host.tick()
        let now = NIODeadline.now()
        for (request, p) in pending where p.deadline <= now {
            finish(request, ClientReply(id: p.id, status: .timeout, message: "no outcome within the timeout; retry with the same request id"))
        }
        shards?.expire(now: now)
        updateGauges()
        serveReads(reask: true)
        scheduleProcess()
    }

    /// The shards' timers (resends, watermark heartbeats), then their output.
    private func pumpShards() {
        guard failure == nil, let shards else { return }
        if shards.pump() { scheduleProcess() }
        scheduleShardWake()
    }

    /// Wakes the shards when the next held transaction's timestamp passes,
    /// rather than at the next timer tick.
    private func scheduleShardWake() {
        guard let due = shards?.nextDue else { return }
        let at = NIODeadline.now() + due
        if let wake = shardWake, wake <= at { return }
        shardWake = at
        loop.scheduleTask(deadline: at) { [weak self] in
            self?.shardWake = nil
            self?.pumpShards()
        }
    }

    private func process() {
        guard failure == nil else { return }
        do {
            shards?.setClock()
            try host.process()
            for (group, replica) in replicas.sorted(by: { $0.key < $1.key }) {
                push(try replica.sync(), group: group)
            }
        } catch {
            return fail("\(error)")
        }
        pumpShards()
        refreshPeers()
        finishMembershipChanges()
        serveReads(reask: false)
        // Results were answered as they applied (`onResult`); what is left
        // waits, unless its group's leadership changed under it.
        var changed: Set<UInt64> = []
        for group in host.groups {
            guard let node = host.driver(group)?.node else { continue }
            let now = (node.role, node.term)
            if let before = leadership[group], before != now { changed.insert(group) }
            leadership[group] = now
        }
        guard !changed.isEmpty else { return }
        for (request, p) in pending where changed.contains(p.group) {
            if let node = host.driver(p.group)?.node, node.role != .leader || node.term != p.term {
                // Lost leadership: the entry may still commit under the new
                // leader, so the client retries there with the same id.
                finish(
                    request,
                    ClientReply(
                        id: p.id, status: .notLeader, leaderId: node.leader,
                        leaderAddress: members[node.leader]?.description ?? "",
                        message: "leadership changed before the request committed"))
            }
        }
    }

    /// Storage (a WAL, a sync, a state machine) failed: the node stops
    /// serving rather than guess, and answers everything that waits: the
    /// Raft requests and the commits whose sync will not come.
    private func fail(_ reason: String) {
        guard failure == nil else { return }
        failure = reason
        logger.critical("storage or state machine failed; the node stops serving", metadata: ["error": "\(reason)"])
        for (request, p) in pending {
            finish(request, ClientReply(id: p.id, status: .unavailable, message: "node failed: \(reason)"))
        }
        for replica in replicas.values { replica.abandonUnsynced() }
        shards?.abandon("node failed: \(reason)")
    }

    private func reply(to p: Pending, result: [UInt8]) -> ClientReply {
        if p.kind == .address { return ClientReply(id: p.id, status: .ok) }
        switch try? SessionOutcome(decoding: result) {
        case .registered(let session):
            var w = ByteWriter()
            w.u64le(session)
            return ClientReply(id: p.id, status: .ok, result: w.bytes)
        case .applied(let inner), .duplicate(let inner):
            return ClientReply(id: p.id, status: .ok, result: inner)
        case .expired(let why):
            return ClientReply(id: p.id, status: .expired, message: why)
        case nil:
            return ClientReply(id: p.id, status: .unavailable, message: "unreadable session outcome")
        }
    }

    private func finish(_ request: UInt64, _ reply: ClientReply) {
        guard let p = pending.removeValue(forKey: request) else { return }
        pendingReads.remove(request)
        pendingMembers.remove(request)
        host.forget(request)
        if reply.status != .ok { metrics.requestsFailed.increment() }
        metrics.requestLatency.recordNanoseconds((NIODeadline.now() - p.started).nanoseconds)
        p.reply(reply)
    }

    /// A peer's watermark-protocol message: stepped into the shard or the
    /// coordinator it names; refused input changes nothing.
    func receiveWatermark(_ frame: Frame, from peer: UInt64) {
        metrics.framesIn.increment()
        do {
            guard let shards else { throw LuigiError.invalidArgument("this node runs no watermark shards") }
            try shards.receive(frame)
        } catch {
            metrics.badFrames.increment()
            logger.debug("watermark message refused", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return
        }
        scheduleProcess()
    }

    // MARK: - Anti-entropy

    /// Every replica group's version vector to every peer: each answers
    /// with the updates this node lacks.
    private func sendDigests() {
        for (group, replica) in replicas.sorted(by: { $0.key < $1.key }) {
            let frame = Frame(.delta, group: group, payload: SyncMessage.digest(replica.replica.clock).encoded())
            for peer in peers.keys.sorted() { sendToPeer(peer, [frame]) }
        }
    }

    /// This node's fresh commits, pushed to every peer once durable (so a
    /// crash can never make the node reuse a dot another node holds).
    private func push(_ updates: [Update], group: UInt64) {
        guard !updates.isEmpty else { return }
        // In frames of at most half the frame limit each.
        var frames: [Frame] = []
        var batch: [Update] = []
        var bytes = 0
        for update in updates {
            let size = update.encoded().count + 8
            if !batch.isEmpty && bytes + size > config.maxFramePayload / 2 {
                frames.append(Frame(.delta, group: group, payload: SyncMessage.reply(batch).encoded()))
                batch = []
                bytes = 0
            }
            batch.append(update)
            bytes += size
        }
        frames.append(Frame(.delta, group: group, payload: SyncMessage.reply(batch).encoded()))
        for peer in peers.keys.sorted() { sendToPeer(peer, frames) }
    }

    /// A peer's digest (answered with what it lacks) or updates (applied).
    func receiveDelta(_ frame: Frame, from peer: UInt64) {
        metrics.framesIn.increment()
        do {
            guard let replica = replicas[frame.group] else {
                throw LuigiError.invalidArgument("no replica group \(frame.group) here")
            }
            switch try SyncMessage(decoding: frame.payload) {
            case .digest(let clock):
                // Within the frame limit, with room for the envelope.
                let missing = replica.delta(since: clock, maxBytes: config.maxFramePayload / 2)
                if !missing.isEmpty {
                    sendToPeer(peer, [Frame(.delta, group: frame.group, payload: SyncMessage.reply(missing).encoded())])
                }
            case .reply(let updates):
                if try replica.receive(updates) > 0 { scheduleProcess() }
            }
        } catch let failed as StorageFailure {
            fail(failed.description)
        } catch {
            metrics.badFrames.increment()
            logger.debug("anti-entropy message refused", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    // MARK: - Status

    private func updateGauges() {
        for group in host.groups {
            guard let status = host.driver(group)?.node.status else { continue }
            var g = gauges[group] ?? [:]
            for name in ["role", "term", "commit", "applied", "last_index", "syncs"] where g[name] == nil {
                g[name] = metrics.groupGauge(name, group: group)
            }
            gauges[group] = g
            g["role"]?.record(Int64(status.role.rawValue))
            g["term"]?.record(Int64(clamping: status.term))
            g["commit"]?.record(Int64(clamping: status.commit))
            g["applied"]?.record(Int64(clamping: status.applied))
            g["last_index"]?.record(Int64(clamping: status.lastIndex))
            g["syncs"]?.record(Int64(counted[group]?.syncs ?? 0))
        }
    }

    /// The /status document: each group's role, term, commit, applied, and
    /// (on a leader) each follower's lag in entries.
    func statusJSON() -> String {
        var groups: [String] = []
        for group in host.groups {
            guard let node = host.driver(group)?.node else { continue }
            let s = node.status
            var lag: [String] = []
            if s.role == .leader {
                for peer in s.conf.voters + s.conf.learners where peer != config.nodeId {
                    let match = node.replicationState(of: peer)?.match ?? 0
                    lag.append("\"\(peer)\":\(s.lastIndex >= match ? s.lastIndex - match : 0)")
                }
            }
            groups.append(
                "{\"group\":\(group),\"role\":\"\(s.role)\",\"term\":\(s.term),\"leader\":\(s.leader),"
                    + "\"commit\":\(s.commit),\"applied\":\(s.applied),\"first_index\":\(s.firstIndex),"
                    + "\"last_index\":\(s.lastIndex),\"voters\":\(s.conf.voters),\"syncs\":\(counted[group]?.syncs ?? 0),"
                    + "\"sync_seconds\":\(Double(counted[group]?.syncNanos ?? 0) / 1e9),"
                    + "\"compactions\":\(counted[group]?.compactions ?? 0),\"snapshot_bytes\":\(counted[group]?.snapshotBytes ?? 0),"
                    + "\"log_bytes\":\(counted[group]?.bytesSinceSnapshot ?? 0),\"lag\":{\(lag.joined(separator: ","))}"
                    + (shards?.statusFields(group: group) ?? "")
                    + (replicas[group].map {
                        ",\"replica\":{\"updates\":\($0.replica.appliedCount),\"waiting\":\($0.replica.pendingCount),"
                            + "\"not_kept\":\($0.droppedForPending)}"
                    } ?? "") + "}")
        }
        let failed = failure.map { "\"\(jsonEscaped($0))\"" } ?? "null"
        return "{\"node\":\(config.nodeId),\"cluster\":\"\(jsonEscaped(config.credentials.clusterId))\","
            + (shards?.coordinatorStatusFields ?? "")
            + "\"peers\":\(peers.keys.sorted()),\"failure\":\(failed),\"pending_requests\":\(pending.count),\"groups\":[\(groups.joined(separator: ","))]}"
    }
}

func jsonEscaped(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
