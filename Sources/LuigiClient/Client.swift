import LuigiAlgebraic
import LuigiBase
import LuigiWatermark
import LuigiWire

#if canImport(Glibc)
import Glibc
#endif

/// A client of a Luigi cluster: linearizable put/get/delete/cas on a
/// node's key-value Raft groups, over blocking sockets.
///
/// - Leader discovery: a request goes to the last known leader of its
///   group (at first, the endpoints in turn); a `notLeader` reply names the
///   leader, and the client follows it.
/// - Exactly once: the client registers a session per group before its
///   first write, and every write carries (session, seq). A retry after a
///   timeout, a lost connection or a failover reuses the id, and the group
///   applies it once.
/// - Timeouts: each call has a deadline (`timeoutMillis`); past it the call
///   throws `.timeout` and a write's outcome is unknown.
///
/// One call at a time per client (a call holds the client); use one client
/// per thread for concurrency.
public final class Client {
    public struct Options: Sendable {
        /// Per-call deadline unless the call gives its own.
        public var timeoutMillis: Int = 5000
        /// The group calls go to unless they name one.
        public var group: UInt64 = 1
        public init() {}
    }

    public let endpoints: [String]
    public let options: Options
    private let credentials: ClusterCredentials
    private var sockets: [String: FrameSocket] = [:]
    private var leaders: [UInt64: String] = [:]
    private var sessionIds: [UInt64: UInt64] = [:]
    private var nextSeq: UInt64 = 1
    private var rotation = 0

    public init(endpoints: [String], credentials: ClusterCredentials, options: Options = Options()) throws {
        guard !endpoints.isEmpty else { throw LuigiError.invalidArgument("a client needs at least one endpoint") }
        for endpoint in endpoints {
            guard let colon = endpoint.lastIndex(of: ":"), colon != endpoint.startIndex,
                UInt16(endpoint[endpoint.index(after: colon)...]) != nil
            else { throw LuigiError.invalidArgument("endpoint '\(endpoint)' is not host:port") }
        }
        guard (1...Int(ClientLimits.maxTimeoutMillis)).contains(options.timeoutMillis) else {
            throw LuigiError.invalidArgument("timeout \(options.timeoutMillis) ms outside 1...\(ClientLimits.maxTimeoutMillis)")
        }
        guard options.group >= 1 else { throw LuigiError.invalidArgument("group ids start at 1") }
        self.endpoints = endpoints
        self.credentials = credentials
        self.options = options
    }

    deinit { close() }

    /// Closes every connection (a later call reconnects).
    public func close() {
        for socket in sockets.values { socket.close() }
        sockets = [:]
    }

    // MARK: - Key-value operations

    public func put(_ key: String, _ value: [UInt8], group: UInt64? = nil, timeoutMillis: Int? = nil) throws {
        _ = try write(.put(key: key, value: value), group: group, timeoutMillis: timeoutMillis)
    }

    /// The value, or nil when the key is absent.
    public func get(_ key: String, group: UInt64? = nil, timeoutMillis: Int? = nil) throws -> [UInt8]? {
        try ClientRequest.checkKey(key)
        let result = try call(.get(key: key), group: group ?? options.group, deadline: deadline(timeoutMillis), session: 0)
        guard let flag = result.first else { throw LuigiError.decode("empty get result") }
        return flag == 1 ? Array(result.dropFirst()) : nil
    }

    /// True when the key existed.
    @discardableResult
    public func delete(_ key: String, group: UInt64? = nil, timeoutMillis: Int? = nil) throws -> Bool {
        try write(.delete(key: key), group: group, timeoutMillis: timeoutMillis) == [1]
    }

    /// Sets `new` when the value equals `expected` (nil: absent); true when it did.
    public func cas(
        _ key: String, expected: [UInt8]?, new: [UInt8], group: UInt64? = nil, timeoutMillis: Int? = nil
    ) throws -> Bool {
        try write(.cas(key: key, expected: expected, new: new), group: group, timeoutMillis: timeoutMillis) == [1]
    }

    // MARK: - Replica groups (ids from NodeConfig.replicaGroupBase + 1)

    /// Commits `ops` without coordination on the first node that answers
    /// (any node of the group); it spreads to the others by anti-entropy.
    /// Returns the update's dot. Sent once: when the node does not answer
    /// after receiving it, the call fails with `.timeout` (the transaction
    /// may have committed) rather than commit it twice.
    @discardableResult
    public func commit(_ ops: [AlgebraicOp], group: UInt64, timeoutMillis: Int? = nil) throws -> Dot {
        guard (1...AlgebraicLimits.maxOps).contains(ops.count) else {
            throw LuigiError.invalidArgument("a transaction needs 1...\(AlgebraicLimits.maxOps) ops")
        }
        let result = try call(.commit(ops), group: group, deadline: deadline(timeoutMillis), session: 0, anyNode: true, resend: false)
        var r = ByteReader(result)
        return Dot(origin: try r.u64le(), seq: try r.u64le())
    }

    /// Runs a sharded transaction through the watermark protocol: `parts`
    /// maps each shard (0-based) to the ops its part runs, in order. Any node
    /// coordinates it (they take turns). Returns the outcome (`.aborted`
    /// when a check failed or an add would overflow: nothing was written),
    /// the agreed timestamp and each shard's reads. Sent once, like
    /// `commit`: a node that received it but did not answer makes the call
    /// fail with `.timeout` (the transaction may have committed).
    public func transact(_ parts: [UInt64: [Op]], timeoutMillis: Int? = nil) throws -> TransactResult {
        let ops = parts.keys.sorted().map { ShardOps(shard: $0, ops: parts[$0] ?? []) }
        let mayAbort = ops.contains { $0.ops.contains(where: \.mayAbort) }
        guard !ops.isEmpty else { throw LuigiError.invalidArgument("a transaction needs at least one shard's ops") }
        try Txn(id: TxnId(coordinator: 0, worker: 0, seq: 0), ts: 0, mayAbort: mayAbort, parts: ops).validate()
        let result = try call(.transact(ops), group: 0, deadline: deadline(timeoutMillis), session: 0, anyNode: true, resend: false)
        return try TransactResult(decoding: result)
    }

    /// Commits `ops` (which may `set`) through the group's log: every
    /// replica applies it at the same position, exactly once per call.
    public func coordinate(_ ops: [AlgebraicOp], group: UInt64, timeoutMillis: Int? = nil) throws {
        guard (1...AlgebraicLimits.maxOps).contains(ops.count) else {
            throw LuigiError.invalidArgument("a transaction needs 1...\(AlgebraicLimits.maxOps) ops")
        }
        let result = try write(.coordinate(ops), group: group, timeoutMillis: timeoutMillis)
        guard result.first == 1 else {
            throw LuigiError.typeConflict(
                "every replica rejected the transaction: \(String(decoding: result.dropFirst(), as: UTF8.self))")
        }
    }

    /// A key's value in one node's replica (the first that answers, or
    /// `endpoint`): what that node has seen so far.
    public func value(_ key: String, group: UInt64, endpoint: String? = nil, timeoutMillis: Int? = nil) throws -> Value? {
        try ClientRequest.checkKey(key)
        let deadline = try deadline(timeoutMillis)
        if let endpoint {
            let socket = try connection(endpoint, deadline: deadline)
            let id = RequestID(client: 0, seq: nextSeq)
            nextSeq += 1
            let request = ClientRequest(id: id, timeoutMillis: UInt32(max(1, deadline.millisecondsLeft)), operation: .value(key: key))
            do {
                try socket.send([Frame(.request, group: group, payload: request.encoded())], until: deadline)
                let reply = try awaitReply(id, on: socket, deadline: deadline)
                guard reply.status == .ok else { throw LuigiError.state("\(endpoint): \(reply.status): \(reply.message)") }
                return try WireValue.decode(reply.result)
            } catch {
                drop(endpoint)
                throw error
            }
        }
        return try WireValue.decode(try call(.value(key: key), group: group, deadline: deadline, session: 0, anyNode: true))
    }

    // MARK: - Membership

    /// Adds node `id`, listening at `address` ("host:port"), to a group's
    /// voters: the group's log records the address, then the change; the
    /// call returns once the change applied on the leader. Idempotent.
    public func addMember(_ id: UInt64, address: String, group: UInt64? = nil, timeoutMillis: Int? = nil) throws {
        guard id != 0, !address.isEmpty, address.utf8.count <= 300 else {
            throw LuigiError.invalidArgument("member id must be >= 1 and its address 1...300 bytes")
        }
        _ = try call(.addMember(id: id, address: address), group: group ?? options.group, deadline: deadline(timeoutMillis), session: 0)
    }

    /// Removes node `id` from a group's voters; returns once applied. Idempotent.
    public func removeMember(_ id: UInt64, group: UInt64? = nil, timeoutMillis: Int? = nil) throws {
        guard id != 0 else { throw LuigiError.invalidArgument("member id must be >= 1") }
        _ = try call(.removeMember(id: id), group: group ?? options.group, deadline: deadline(timeoutMillis), session: 0)
    }

    /// One node's /status document (JSON), from the first endpoint that answers.
    public func status(timeoutMillis: Int? = nil) throws -> String {
        let result = try call(.status, group: 0, deadline: deadline(timeoutMillis), session: 0, anyNode: true)
        return String(decoding: result, as: UTF8.self)
    }

    // MARK: - The request loop

    private func deadline(_ ms: Int?) throws -> Deadline {
        let ms = ms ?? options.timeoutMillis
        guard (1...Int(ClientLimits.maxTimeoutMillis)).contains(ms) else {
            throw LuigiError.invalidArgument("timeout \(ms) ms outside 1...\(ClientLimits.maxTimeoutMillis)")
        }
        return Deadline(millisecondsFromNow: ms)
    }

    private func write(_ op: ClientOperation, group: UInt64?, timeoutMillis: Int?) throws -> [UInt8] {
        switch op {
        case .put(let k, let v), .cas(let k, _, let v):
            try ClientRequest.checkKey(k)
            try ClientRequest.checkValue(v)
            if case .cas(_, let e?, _) = op { try ClientRequest.checkValue(e) }
        case .delete(let k): try ClientRequest.checkKey(k)
        default: break
        }
        // A coordinated transaction's ops are checked by the node (types need its replica).
        let group = group ?? options.group
        let deadline = try deadline(timeoutMillis)
        var freshSession = false
        while true {
            if sessionIds[group] == nil {
                let result = try call(.register, group: group, deadline: deadline, session: 0)
                var r = ByteReader(result)
                sessionIds[group] = try r.u64le()
                freshSession = true
            }
            do {
                return try call(op, group: group, deadline: deadline, session: sessionIds[group]!)
            } catch ExpiredSession.beforeFirstDelivery where !freshSession {
                // The group forgot our session before this write reached
                // it: nothing was applied, so a new session may send it.
                sessionIds[group] = nil
            } catch ExpiredSession.beforeFirstDelivery, ExpiredSession.afterDelivery {
                throw LuigiError.timeout("the group forgot this client's session; the write's outcome is unknown")
            }
        }
    }

    private enum ExpiredSession: Error { case beforeFirstDelivery, afterDelivery }

    /// A node's final answer (refused before any effect): not retried.
    private struct Definitive: Error {
        let error: LuigiError
        init(_ error: LuigiError) { self.error = error }
    }

    /// The longest pause between two attempts of one call (they start at
    /// 10 ms and double).
    static let maxRetryPauseMillis = 40

    /// Sends `op` until a definite answer or the deadline, following leader
    /// hints and moving on from nodes that are down. The request id stays
    /// the same across every attempt.
    private func call(
        _ op: ClientOperation, group: UInt64, deadline: Deadline, session: UInt64, anyNode: Bool = false,
        resend: Bool = true
    ) throws -> [UInt8] {
        let seq = nextSeq
        nextSeq += 1
        let id = RequestID(client: session, seq: seq)
        var sends = 0
        var lastProblem = "no node answered"
        var refusedBy: Set<String> = []
        var anyNodeAccepted = false
        var pause = 10
        while deadline.millisecondsLeft > 0 {
            let endpoint = anyNode ? nextEndpoint() : (leaders[group] ?? nextEndpoint())
            if !resend && sends > 0 {
                throw LuigiError.timeout("the transaction was sent but not answered (\(lastProblem)); it may have committed")
            }
            do {
                if !resend, let cached = sockets[endpoint], cached.isClosedByPeer { drop(endpoint) }
                let socket = try connection(endpoint, deadline: deadline)
                anyNodeAccepted = true
                let request = ClientRequest(
                    id: id, timeoutMillis: UInt32(max(1, min(deadline.millisecondsLeft, Int(ClientLimits.maxTimeoutMillis)))),
                    operation: op)
                try socket.send([Frame(.request, group: group, payload: request.encoded())], until: deadline)
                sends += 1
                let reply = try awaitReply(id, on: socket, deadline: deadline)
                switch reply.status {
                case .ok:
                    if !anyNode { leaders[group] = endpoint }
                    return reply.result
                case .notLeader:
                    lastProblem = reply.message
                    if !reply.leaderAddress.isEmpty && reply.leaderAddress != endpoint {
                        leaders[group] = reply.leaderAddress
                        continue
                    }
                    leaders[group] = nil
                case .unavailable where !resend:
                    // Refused before any effect (no such group, shutting down).
                    throw Definitive(LuigiError.state(reply.message))
                case .timeout, .unavailable:
                    lastProblem = reply.message
                    leaders[group] = nil
                case .invalid:
                    throw Definitive(LuigiError.invalidArgument(reply.message))
                case .expired:
                    throw sends > 1 ? ExpiredSession.afterDelivery : ExpiredSession.beforeFirstDelivery
                case .rejected:
                    throw Definitive((reply.result.first.flatMap(RejectionKind.init(rawValue:)) ?? .invalidArgument).error(reply.message))
                }
            } catch let definitive as Definitive {
                throw definitive.error
            } catch let error as LuigiError {
                if case .invalidArgument = error { throw error }
                if case .unauthenticated = error {
                    // Every node refusing our credentials will not change by waiting.
                    refusedBy.insert(endpoint)
                    if refusedBy.count == Set(endpoints).count { throw error }
                }
                lastProblem = "\(endpoint): \(error)"
                drop(endpoint)
                if leaders[group] == endpoint { leaders[group] = nil }
            }
            // Back off a little before the next node. An election takes
            // 100-200 ms: a longer pause would leave the new leader idle
            // (with 200 ms, failover measured 310 ms where the vote took 150).
            // Jittered (half to all of it), so clients do not retry in step.
            let sleepMs = min(Int.random(in: (pause + 1) / 2...pause), deadline.millisecondsLeft)
            if sleepMs > 0 { usleep(UInt32(sleepMs) * 1000) }
            pause = min(pause * 2, Self.maxRetryPauseMillis)
        }
        // Nodes refused our credentials and none let us in: that, not the
        // clock, is why nothing happened (some endpoints may be down).
        if !refusedBy.isEmpty && !anyNodeAccepted {
            throw LuigiError.unauthenticated("\(refusedBy.sorted().joined(separator: ", ")) refused the cluster credentials; no other node answered")
        }
        throw LuigiError.timeout("no outcome within the deadline (\(lastProblem)); the outcome is unknown")
    }

    /// The reply to `id`, skipping late replies to earlier attempts.
    private func awaitReply(_ id: RequestID, on socket: FrameSocket, deadline: Deadline) throws -> ClientReply {
        while true {
            let frame = try socket.receive(until: deadline)
            if frame.kind == .refuse { throw LuigiError.state("refused: \(Handshake.reason(ofRefusal: frame))") }
            guard frame.kind == .reply else { throw LuigiError.state("unexpected \(frame.kind) frame from the node") }
            let reply = try ClientReply(decoding: frame.payload)
            if reply.id == id { return reply }
        }
    }

    private func nextEndpoint() -> String {
        defer { rotation = (rotation + 1) % endpoints.count }
        return endpoints[rotation]
    }

    private func connection(_ endpoint: String, deadline: Deadline) throws -> FrameSocket {
        if let socket = sockets[endpoint] { return socket }
        let socket = try FrameSocket.connect(to: endpoint, credentials: credentials, deadline: deadline)
        sockets[endpoint] = socket
        return socket
    }

    private func drop(_ endpoint: String) {
        sockets.removeValue(forKey: endpoint)?.close()
    }
}
