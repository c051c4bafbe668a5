import LuigiBase
import LuigiRaft

/// One outgoing Raft message, already encoded (its group id is inside).
public struct Envelope: Sendable {
    public var group: UInt64
    public var from: UInt64
    public var to: UInt64
    public var bytes: [UInt8]

    /// Encodes `m` (its group id is the one its node stamped on it).
    public init(_ m: RaftMessage) {
        self.init(group: m.group, from: m.from, to: m.to, bytes: m.encoded())
    }

    public init(group: UInt64, from: UInt64, to: UInt64, bytes: [UInt8]) {
        self.group = group
        self.from = from
        self.to = to
        self.bytes = bytes
    }
}

/// The driver loop around Raft, written once: a sans-I/O host holds
/// `RaftDriver`s by group id and runs, for each, persist -> send -> apply ->
/// advance (the persist and the apply happen inside `RaftDriver.nextReady`,
/// which feeds the attached state machine; the host sends the batch's
/// messages, hands out its read states and advances it). It also ticks every
/// group and routes client request ids to the results their commands
/// produced. The simulator, the benchmark and the node process all run this
/// loop; a C caller of `luigi_raft_*` follows the same steps (see
/// `examples/c/raft_transport.c`).
///
/// No I/O: outgoing messages go to `send`, incoming ones come in through
/// `receive`. Not thread-safe: one thread drives a host.
public final class RaftHost {
    /// Everything a group's messages reach the transport through: called
    /// once per batch with all of its messages (a transport can coalesce
    /// them per peer), and once more for what a leader sends early.
    public var send: ([Envelope]) -> Void
    /// Read states confirmed in a batch (ReadIndex), by group.
    public var onReadStates: ((UInt64, [ReadState]) -> Void)?
    /// When set, an awaited request's result goes here as it is applied
    /// (inside `process`), instead of waiting for `takeResult`: a server
    /// with many requests in flight answers each once, without polling.
    public var onResult: ((UInt64, [UInt8]) -> Void)?
    /// Runs after each advanced batch (compaction policies, checks).
    public var afterAdvance: ((UInt64, RaftDriver) throws -> Void)?
    /// A leader hands its appends to `send` before its own write and sync,
    /// so followers persist in parallel (`RaftDriver.nextReady(sendingEarly:)`).
    public var sendsEarly = false

    private var drivers: [UInt64: RaftDriver] = [:]
    private var order: [UInt64] = []
    private var routers: [UInt64: RequestRouter] = [:]
    /// Results of commands proposed through `propose(request:)`, once applied.
    private var results: [UInt64: [UInt8]] = [:]
    private var awaited: Set<UInt64> = []

    public init(send: @escaping ([Envelope]) -> Void) { self.send = send }

    // MARK: - Groups

    public var groups: [UInt64] { order }

    public func driver(_ group: UInt64) -> RaftDriver? { drivers[group] }

    /// Hosts `driver` as `group` (its node's `config.group`), with `machine`
    /// attached through the driver: restored from the stored snapshot, then
    /// fed every committed entry exactly once. `onApply` sees each applied
    /// entry as the log holds it, and its result; `onRestore` each snapshot
    /// the machine was restored from.
    public func add(
        _ driver: RaftDriver, machine: RaftStateMachine,
        onApply: ((RaftEntry, [UInt8]) -> Void)? = nil, onRestore: (([UInt8]) -> Void)? = nil
    ) throws {
        let group = driver.node.config.group
        guard drivers[group] == nil else { throw LuigiError.invalidArgument("group \(group) is already hosted") }
        let router = RequestRouter(machine, onApply: onApply, onRestore: onRestore) { [weak self] request, result in
            guard let self, self.awaited.contains(request) else { return }
            if let onResult = self.onResult {
                self.awaited.remove(request)
                onResult(request, result)
            } else {
                self.results[request] = result
            }
        }
        try driver.attach(router)
        drivers[group] = driver
        routers[group] = router
        order.append(group)
        order.sort()
    }

    /// Stops hosting `group` (a crash: whatever was not persisted is gone).
    public func remove(_ group: UInt64) {
        drivers[group] = nil
        routers[group] = nil
        order.removeAll { $0 == group }
    }

    // MARK: - Inputs

    /// Steps a message from a peer into its group. Undecodable bytes, an
    /// unknown group or a refused message throw and change nothing.
    public func receive(_ bytes: [UInt8]) throws {
        try receive(try RaftMessage(decoding: bytes))
    }

    /// Steps an already decoded message into its group (a transport that
    /// checks the sender first decodes once).
    public func receive(_ message: RaftMessage) throws {
        guard let driver = drivers[message.group] else {
            throw LuigiError.invalidArgument("message for group \(message.group), which this host does not run")
        }
        try driver.node.step(message)
    }

    /// One tick of every group's logical clock.
    public func tick() {
        for group in order { drivers[group]?.node.tick() }
    }

    // MARK: - The loop

    /// Runs every group's ready loop until none has work; returns the
    /// number of batches handled.
    @discardableResult
    public func process() throws -> Int {
        var batches = 0
        var progressed = true
        while progressed {
            progressed = false
            for group in order {
                guard let driver = drivers[group] else { continue }
                let early: (([RaftMessage]) -> Void)? = sendsEarly ? { [send] in send($0.map(Envelope.init)) } : nil
                guard let rd = try driver.nextReady(sendingEarly: early) else { continue }
                progressed = true
                batches += 1
                if !rd.messages.isEmpty { send(rd.messages.map(Envelope.init)) }
                if !rd.readStates.isEmpty { onReadStates?(group, rd.readStates) }
                try driver.advance(rd)
                try afterAdvance?(group, driver)
            }
        }
        return batches
    }

    // MARK: - Requests

    /// Proposes `command` in `group` (its leader), framed with `request` so
    /// that `takeResult(of:)` returns what applying it produced. Returns the
    /// log index.
    @discardableResult
    public func propose(_ command: [UInt8], request: UInt64, group: UInt64) throws -> UInt64 {
        guard let driver = drivers[group] else { throw LuigiError.invalidArgument("no group \(group) here") }
        let index = try driver.node.propose(RequestRouter.frame(command, request: request))
        awaited.insert(request)
        return index
    }

    /// Also report `request`'s result when this host applies it (a client
    /// that may hear back from any node).
    public func awaitResult(of request: UInt64) { awaited.insert(request) }

    /// The result of an awaited request once applied on this host (taken:
    /// a second call returns nil), or nil.
    public func takeResult(of request: UInt64) -> [UInt8]? {
        guard let result = results.removeValue(forKey: request) else { return nil }
        awaited.remove(request)
        return result
    }

    /// Stop waiting for `request` (timed out): a late result is dropped.
    public func forget(_ request: UInt64) {
        awaited.remove(request)
        results[request] = nil
    }
}
