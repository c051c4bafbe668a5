import LuigiBase

/// A shard leader's answer to a coordinator about one transaction.
public struct TxnReply: Equatable, Sendable {
    public var id: TxnId
    public var shard: UInt64
    /// The leader's Raft term: a reply counts only against watermarks
    /// reported in the same or an earlier term (a newer leader may have
    /// re-executed the transaction).
    public var term: UInt64
    /// The agreed timestamp the shard executed at.
    public var ts: UInt64
    /// The part's outcome, or, while it waits for the other shards' votes,
    /// its vote: the transaction's outcome is the AND over its shards.
    public var outcome: Outcome
    /// True when `outcome` is final here: the part finished, or its outcome
    /// record is committed. False: a vote (the shard may still need the
    /// other shards' votes, so the coordinator must not retire it yet).
    public var decided: Bool
    public var reads: [ReadResult]
    /// The shard leader's clock when the submit arrived (delay estimates).
    public var receivedAt: UInt64
    /// The leader's clock when the part ran (or its outcome was decided).
    public var executedAt: UInt64
    /// The shard's committed watermarks, one per stream.
    public var marks: [UInt64]

    public init(id: TxnId, shard: UInt64, term: UInt64, ts: UInt64, outcome: Outcome, decided: Bool = true,
                reads: [ReadResult], receivedAt: UInt64, executedAt: UInt64, marks: [UInt64]) {
        self.id = id
        self.shard = shard
        self.term = term
        self.ts = ts
        self.outcome = outcome
        self.decided = decided
        self.reads = reads
        self.receivedAt = receivedAt
        self.executedAt = executedAt
        self.marks = marks
    }
}

/// What a shard knows of a transaction that involves a recovering leader's
/// shard.
public struct RecoveredTxn: Equatable, Sendable {
    public var txn: Txn
    /// Every proposal the answering shard holds for it (its own included).
    public var proposals: [ShardStamp]

    public init(txn: Txn, proposals: [ShardStamp]) {
        self.txn = txn
        self.proposals = proposals
    }
}

/// A retire point: every transaction of (coordinator, worker) below
/// `below` is finished on every shard.
public struct RetirePoint: Equatable, Sendable {
    public var coordinator: UInt64
    public var worker: UInt32
    public var below: UInt64

    public init(coordinator: UInt64, worker: UInt32, below: UInt64) {
        self.coordinator = coordinator
        self.worker = worker
        self.below = below
    }
}

/// Every message of the protocol. Shard-bound messages reach every replica
/// of the shard; only its leader acts on them.
public enum WatermarkMessage: Equatable, Sendable {
    /// Coordinator -> shard: run the transaction (a retry sends it again).
    case submit(Txn)
    /// Leader -> leader: `from`'s proposal for the transaction, made by its
    /// leader of `term`. The whole transaction rides along, so a shard that
    /// never got the submit runs it anyway. `ask` asks for the receiver's.
    case propose(Txn, from: UInt64, term: UInt64, ts: UInt64, ask: Bool)
    /// Leader -> leader: `from`'s vote on a may-abort transaction, sent only
    /// once its execution is committed in `from`'s log.
    case vote(id: TxnId, shards: [UInt64], from: UInt64, term: UInt64, commit: Bool, ask: Bool)
    /// Leader -> coordinator.
    case reply(TxnReply)
    /// Leader -> coordinator: committed watermarks, on a timer and after commits.
    case marks(shard: UInt64, term: UInt64, marks: [UInt64])
    /// Coordinator -> shard: every transaction of (coordinator, worker) below
    /// `below` is finished; its records may go.
    case retire(coordinator: UInt64, worker: UInt32, below: UInt64)
    /// A new leader, before it serves, asks every other shard what it
    /// knows of their shared unfinished transactions; the receiver fences
    /// the asker's older terms.
    case recover(from: UInt64, term: UInt64)
    /// The answer: the responder's term, and every transaction involving
    /// the asker it knows, with the proposals it holds.
    case recovered(from: UInt64, term: UInt64, txns: [RecoveredTxn])
    /// Coordinator -> shard: list the transactions you hold of coordinators
    /// `lowest...highest` (dead predecessors this coordinator takes over),
    /// after `after` in id order; `pass` is echoed.
    case orphansAsk(coordinator: UInt64, pass: UInt64, lowest: UInt64, highest: UInt64, after: TxnId?)
    /// Shard -> coordinator: the next page of them (at most
    /// `WatermarkLimits.orphansPerPage`), `more` when the list goes on; the
    /// first page also carries the shard's retire points of those
    /// coordinators (everything below one is finished on every shard).
    case orphans(shard: UInt64, term: UInt64, pass: UInt64, after: TxnId?, txns: [Txn], retired: [RetirePoint], more: Bool)
}

/// A message with its destination: a shard id for shard-bound kinds, a
/// coordinator id for `reply` and `marks`.
public struct WatermarkEnvelope: Equatable, Sendable {
    public var to: UInt64
    public var message: WatermarkMessage

    public init(to: UInt64, _ message: WatermarkMessage) {
        self.to = to
        self.message = message
    }

    /// True when `to` names a shard (false: a coordinator).
    public var toShard: Bool {
        switch message {
        case .submit, .propose, .vote, .retire, .recover, .recovered, .orphansAsk: return true
        case .reply, .marks, .orphans: return false
        }
    }

    // MARK: - Encoding: "LWM" v1 | kind | to | fields | CRC-32C

    public static let magic: [UInt8] = [0x4C, 0x57, 0x4D, 0x01]

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.magic(Self.magic)
        switch message {
        case .submit(let t):
            w.u8(1); w.varint(to); w.txn(t)
        case .propose(let t, let from, let term, let ts, let ask):
            w.u8(2); w.varint(to); w.txn(t); w.varint(from); w.varint(term); w.varint(ts); w.flag(ask)
        case .vote(let id, let shards, let from, let term, let commit, let ask):
            w.u8(3); w.varint(to); w.id(id); w.list(shards); w.varint(from); w.varint(term); w.flag(commit); w.flag(ask)
        case .reply(let r):
            w.u8(4); w.varint(to); w.id(r.id); w.varint(r.shard); w.varint(r.term); w.varint(r.ts)
            w.u8(r.outcome.rawValue); w.flag(r.decided); w.reads(r.reads); w.varint(r.receivedAt); w.varint(r.executedAt); w.list(r.marks)
        case .marks(let shard, let term, let marks):
            w.u8(5); w.varint(to); w.varint(shard); w.varint(term); w.list(marks)
        case .retire(let c, let worker, let below):
            w.u8(6); w.varint(to); w.varint(c); w.varint(UInt64(worker)); w.varint(below)
        case .recover(let from, let term):
            w.u8(7); w.varint(to); w.varint(from); w.varint(term)
        case .recovered(let from, let term, let txns):
            w.u8(8); w.varint(to); w.varint(from); w.varint(term); w.varint(UInt64(txns.count))
            for r in txns { w.txn(r.txn); w.proposals(r.proposals) }
        case .orphansAsk(let c, let pass, let lowest, let highest, let after):
            w.u8(9); w.varint(to); w.varint(c); w.varint(pass); w.varint(lowest); w.varint(highest); w.optionalId(after)
        case .orphans(let shard, let term, let pass, let after, let txns, let retired, let more):
            w.u8(10); w.varint(to); w.varint(shard); w.varint(term); w.varint(pass); w.optionalId(after)
            w.varint(UInt64(txns.count))
            for t in txns { w.txn(t) }
            w.varint(UInt64(retired.count))
            for p in retired { w.varint(p.coordinator); w.varint(UInt64(p.worker)); w.varint(p.below) }
            w.flag(more)
        }
        w.sealWithChecksum()
        return w.bytes
    }

    /// Decodes and range-checks a message; anything malformed throws
    /// `.decode` (nothing is trusted past this point but cross-field rules).
    public init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "watermark message")
        let kind = try r.u8()
        let to = try r.varint()
        let message: WatermarkMessage
        switch kind {
        case 1:
            message = .submit(try r.txn())
        case 2:
            let t = try r.txn(), from = try r.varint(), term = try r.timestamp("term")
            message = .propose(t, from: from, term: term, ts: try r.timestamp("proposal"), ask: try r.flag())
        case 3:
            let id = try r.id(), shards = try r.shardList(), from = try r.varint(), term = try r.timestamp("term")
            message = .vote(id: id, shards: shards, from: from, term: term, commit: try r.flag(), ask: try r.flag())
        case 4:
            let id = try r.id(), shard = try r.varint(), term = try r.timestamp("term"), ts = try r.timestamp("timestamp")
            guard let outcome = Outcome(rawValue: try r.u8()) else { throw LuigiError.decode("bad outcome") }
            let decided = try r.flag()
            message = .reply(TxnReply(id: id, shard: shard, term: term, ts: ts, outcome: outcome, decided: decided, reads: try r.reads(),
                                      receivedAt: try r.timestamp("receive stamp"), executedAt: try r.timestamp("execution stamp"),
                                      marks: try r.timestamps("marks")))
        case 5:
            let shard = try r.varint(), term = try r.timestamp("term")
            message = .marks(shard: shard, term: term, marks: try r.timestamps("marks"))
        case 6:
            let c = try r.varint(), worker = try r.varint()
            guard worker < UInt64(WatermarkLimits.maxWorkers) else { throw LuigiError.decode("worker out of range") }
            message = .retire(coordinator: c, worker: UInt32(worker), below: try r.timestamp("retire point"))
        case 7:
            message = .recover(from: try r.varint(), term: try r.timestamp("term"))
        case 8:
            let from = try r.varint(), term = try r.timestamp("term")
            let n = try r.count()
            message = .recovered(from: from, term: term, txns: try (0..<n).map { _ in
                RecoveredTxn(txn: try r.txn(), proposals: try r.proposals())
            })
        case 9:
            let c = try r.varint(), pass = try r.varint(), lowest = try r.varint(), highest = try r.varint()
            guard lowest <= highest else { throw LuigiError.decode("an empty coordinator range \(lowest)...\(highest)") }
            message = .orphansAsk(coordinator: c, pass: pass, lowest: lowest, highest: highest, after: try r.optionalId())
        case 10:
            let shard = try r.varint(), term = try r.timestamp("term"), pass = try r.varint(), after = try r.optionalId()
            let n = try r.count()
            guard n <= WatermarkLimits.orphansPerPage else { throw LuigiError.decode("\(n) orphans in one page") }
            let txns = try (0..<n).map { _ in try r.txn() }
            let points = try r.count()
            let retired = try (0..<points).map { _ in
                let c = try r.varint(), worker = try r.varint()
                guard worker < UInt64(WatermarkLimits.maxWorkers) else { throw LuigiError.decode("worker out of range") }
                return RetirePoint(coordinator: c, worker: UInt32(worker), below: try r.timestamp("retire point"))
            }
            message = .orphans(shard: shard, term: term, pass: pass, after: after, txns: txns, retired: retired, more: try r.flag())
        default:
            throw LuigiError.decode("unknown watermark message kind \(kind)")
        }
        try r.expectEnd("watermark message")
        self.init(to: to, message)
    }
}
