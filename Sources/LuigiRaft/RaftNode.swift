import LuigiBase

/// Settings of one Raft node.
public struct RaftConfig: Sendable {
    public var id: UInt64
    /// The Raft group this node is a member of: stamped on every message it
    /// sends; a message of another group is refused.
    public var group: UInt64 = 0
    /// Ticks without hearing from a leader before campaigning (randomized
    /// per election in [electionTick, 2 * electionTick)).
    public var electionTick: Int = 10
    public var heartbeatTick: Int = 1
    /// Campaign first without bumping the term, so a partitioned node cannot
    /// disrupt a healthy leader when it comes back.
    public var preVote: Bool = true
    /// A leader steps down when it has not heard from a quorum for an
    /// election timeout; followers ignore votes while they have a leader.
    public var checkQuorum: Bool = true
    /// Cap on the bytes of entries in one append message.
    public var maxSizePerMessage: Int = 1 << 20
    /// Pipelining bound per follower: appends in flight (and bytes, 0 = any).
    public var maxInflightMessages: Int = 256
    public var maxInflightBytes: Int = 0
    /// Cap on the bytes of committed entries handed out in one Ready.
    public var maxApplyBytes: Int = 64 << 20
    /// Seeds the election jitter.
    public var seed: UInt64 = 0

    public init(id: UInt64) { self.id = id }

    func validated() throws -> RaftConfig {
        guard id != 0 else { throw LuigiError.invalidArgument("raft node id must not be 0") }
        guard heartbeatTick >= 1, electionTick > heartbeatTick else {
            throw LuigiError.invalidArgument("need 1 <= heartbeat_tick < election_tick, got \(heartbeatTick) and \(electionTick)")
        }
        guard electionTick <= 1_000_000 else { throw LuigiError.invalidArgument("election_tick is too large") }
        guard maxInflightMessages >= 1, maxSizePerMessage >= 1, maxApplyBytes >= 1, maxInflightBytes >= 0 else {
            throw LuigiError.invalidArgument("flow-control limits must be positive")
        }
        return self
    }
}

public enum RaftRole: Int32, Sendable, CustomStringConvertible {
    case follower = 0
    case preCandidate = 1
    case candidate = 2
    case leader = 3

    public var description: String {
        switch self {
        case .follower: return "follower"
        case .preCandidate: return "pre-candidate"
        case .candidate: return "candidate"
        case .leader: return "leader"
        }
    }
}

/// A linearizable read point: once the state machine has applied `index`,
/// a read tagged `context` reflects every write committed before it began.
public struct ReadState: Equatable, Sendable {
    public var index: UInt64
    public var context: [UInt8]
}

/// What the driver must do next, in this order: persist `snapshot`,
/// `entries` and `hardState` (and sync), then send `messages`, then apply
/// `snapshot` and `committedEntries` to the state machine, then `advance`.
public struct Ready: Sendable {
    public var hardState: HardState?
    public var entries: [RaftEntry] = []
    public var snapshot: Snapshot?
    public var messages: [RaftMessage] = []
    public var committedEntries: [RaftEntry] = []
    public var readStates: [ReadState] = []
    /// True when what must be persisted also must be synced before messages
    /// go out: new entries, a snapshot, or a new term or vote. A hard state
    /// that only moves the commit index is written but need not be synced
    /// (as in etcd/raft): a lost commit index is learned again from the
    /// leader, and nothing is acknowledged on the strength of it.
    public var mustSync: Bool { termOrVoteChanged || !entries.isEmpty || snapshot != nil }
    var termOrVoteChanged = false
    /// Set by the `RaftDriver` that handed this batch out: its number there
    /// (1, 2, ...) and the driver itself, so that a foreign, stale or
    /// repeated batch is refused by `RaftDriver.advance`.
    public internal(set) var sequence: UInt64 = 0
    var issuer: ObjectIdentifier?
}

public struct RaftStatus: Equatable, Sendable {
    public var id: UInt64
    public var role: RaftRole
    public var term: UInt64
    public var vote: UInt64
    public var leader: UInt64
    public var commit: UInt64
    public var applied: UInt64
    public var firstIndex: UInt64
    public var lastIndex: UInt64
    public var conf: ConfState
}

/// The Raft consensus state machine (etcd/raft's shape): no I/O, no clock,
/// no threads. Inputs are `tick`, `step` (a message from a peer), `propose`,
/// `campaign`, `readIndex`, `transferLeadership`; output is `ready()`, which
/// the driver persists, sends and applies before calling `advance`.
public final class RaftNode {
    public let config: RaftConfig
    public var id: UInt64 { config.id }
    public private(set) var term: UInt64 = 0
    public private(set) var vote: UInt64 = 0
    public private(set) var role: RaftRole = .follower
    public private(set) var leader: UInt64 = 0
    public private(set) var conf: ConfState {
        didSet { refreshVoterProgress() }
    }

    var log: RaftLog
    private var progress: [UInt64: Progress] = [:] {
        didSet { refreshVoterProgress() }
    }
    /// The voters' entries of `progress` (the same objects), in `conf.voters`
    /// order, so that maybeCommit — run on every proposal — reads the
    /// matches without hashing. Kept up to date by the didSets above.
    private var voterProgress: [Progress?] = []
    private var votes: [UInt64: Bool] = [:]
    private var outbox: [RaftMessage] = []
    private var readStates: [ReadState] = []
    private var rng: SplitMix64

    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedElectionTimeout = 0
    /// Index of the last membership change not yet applied (one at a time).
    private var pendingConfIndex: UInt64 = 0
    private var transferee: UInt64 = 0
    private var pendingReads: [(context: [UInt8], index: UInt64, acks: Set<UInt64>)] = []
    /// Reads asked for before this leader committed an entry of its term.
    private var readsAwaitingCommit: [[UInt8]] = []
    private var previousHardState = HardState()
    /// New entries or a new commit point to tell followers about. Appends go
    /// out when the driver next takes a Ready, so every proposal and commit
    /// advance since the last one travels in one message per follower.
    private var broadcastPending = false

    public init(config: RaftConfig, storage: RaftStorage, voters: [UInt64] = []) throws {
        self.config = try config.validated()
        let (hardState, storedConf) = try storage.initialState()
        conf = storedConf.voters.isEmpty && storedConf.learners.isEmpty ? ConfState(voters: voters) : storedConf
        guard !conf.voters.isEmpty else { throw LuigiError.invalidArgument("a raft group needs at least one voter") }
        try conf.validate("membership")
        try RaftLimits.check(hardState.term, "stored term")
        log = try RaftLog(storage: storage, maxApplyBytes: config.maxApplyBytes)
        try RaftLimits.check(log.lastIndex, "stored last index")
        rng = SplitMix64(seed: config.seed ^ (config.id &* 0x9E37_79B9_7F4A_7C15))
        term = hardState.term
        vote = hardState.vote
        if hardState.commit > 0 { log.commitTo(hardState.commit) }
        previousHardState = hardState
        // Membership changes in the stored log after the snapshot take effect again on apply.
        becomeFollower(term: term, leader: 0)
    }

    // MARK: - Public inputs

    public func tick() {
        switch role {
        case .leader: tickLeader()
        default: tickElection()
        }
    }

    /// Starts an election now (pre-vote first when enabled).
    public func campaign() {
        guard isPromotable else { return }
        startCampaign(transfer: false)
    }

    /// Appends a command to the log (leader only).
    @discardableResult
    public func propose(_ data: [UInt8]) throws -> UInt64 {
        try appendProposal(RaftEntry(term: term, index: 0, kind: .normal, data: data))
    }

    /// Proposes one membership change (leader only, one at a time).
    @discardableResult
    public func proposeConfChange(_ change: ConfChange) throws -> UInt64 {
        guard pendingConfIndex <= log.applied else {
            throw LuigiError.state("a membership change (entry \(pendingConfIndex)) is still pending")
        }
        switch change.kind {
        case .removeNode:
            guard conf.contains(change.node) else { throw LuigiError.invalidArgument("node \(change.node) is not a member") }
            guard conf.voters != [change.node] else { throw LuigiError.invalidArgument("cannot remove the last voter") }
        case .addVoter:
            guard !conf.voters.contains(change.node) else { throw LuigiError.invalidArgument("node \(change.node) is already a voter") }
        case .addLearner:
            guard !conf.contains(change.node) else { throw LuigiError.invalidArgument("node \(change.node) is already a member") }
        }
        let index = try appendProposal(RaftEntry(term: term, index: 0, kind: .confChange, data: change.encoded()))
        pendingConfIndex = index
        return index
    }

    /// Asks for a linearizable read point (leader only); the answer arrives
    /// as a `ReadState` with the same context once a quorum confirmed this
    /// node still leads.
    public func readIndex(context: [UInt8]) throws {
        guard role == .leader else { throw notLeader() }
        guard (try? log.term(log.committed)) == term else {
            readsAwaitingCommit.append(context)
            return
        }
        startRead(context)
    }

    /// Hands leadership to `target` once it has caught up.
    public func transferLeadership(to target: UInt64) throws {
        guard role == .leader else { throw notLeader() }
        guard target != id else { return }
        guard conf.voters.contains(target) else { throw LuigiError.invalidArgument("node \(target) is not a voter") }
        transferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            send(RaftMessage(kind: .timeoutNow, to: target, from: id, term: term))
        } else {
            sendAppend(to: target)
        }
    }

    /// Feeds one message from a peer. A malformed or contradictory message
    /// is refused with an error and changes nothing: every check runs
    /// before the first change of state.
    public func step(_ m: RaftMessage) throws {
        try check(m)

        if m.term > term {
            if m.kind == .vote || m.kind == .preVote {
                let inLease = config.checkQuorum && leader != 0 && electionElapsed < config.electionTick
                if inLease && m.context != Self.transferContext { return }  // a healthy leader exists: ignore
            }
            switch m.kind {
            case .preVote: break  // never changes our term
            case .preVoteResponse where !m.reject: break  // counted below; the term moves when we win
            case .append, .heartbeat, .snapshot: becomeFollower(term: m.term, leader: m.from)
            default: becomeFollower(term: m.term, leader: 0)
            }
        } else if m.term < term {
            if (config.checkQuorum || config.preVote) && (m.kind == .heartbeat || m.kind == .append) {
                // Tell a stale leader about the newer term so it steps down.
                send(RaftMessage(kind: .appendResponse, to: m.from, from: id, term: term))
            } else if m.kind == .preVote {
                var reply = RaftMessage(kind: .preVoteResponse, to: m.from, from: id, term: term)
                reply.reject = true
                send(reply)
            }
            return
        }

        switch m.kind {
        case .vote, .preVote:
            handleVoteRequest(m)
            return
        default:
            break
        }
        switch role {
        case .leader: stepLeader(m)
        case .candidate, .preCandidate: try stepCandidate(m)
        case .follower: try stepFollower(m)
        }
    }

    // MARK: - Ready / advance

    public var hasReady: Bool {
        broadcastPending || currentHardState != previousHardState || !log.unstable.isEmpty || log.unstableSnapshot != nil
            || !outbox.isEmpty || log.committed > log.applied && !log.entriesToApply().isEmpty || !readStates.isEmpty
    }

    public func ready() -> Ready {
        if broadcastPending {
            broadcastPending = false
            if role == .leader { broadcastAppend() }
        }
        var rd = Ready()
        let hs = currentHardState
        if hs != previousHardState {
            rd.hardState = hs
            rd.termOrVoteChanged = hs.term != previousHardState.term || hs.vote != previousHardState.vote
        }
        rd.entries = log.unstable
        rd.snapshot = log.unstableSnapshot
        rd.messages = outbox
        rd.committedEntries = log.entriesToApply()
        rd.readStates = readStates
        outbox = []
        readStates = []
        return rd
    }

    /// The driver persisted, sent and applied `rd`.
    public func advance(_ rd: Ready) {
        if let hs = rd.hardState { previousHardState = hs }
        if let snap = rd.snapshot {
            log.stableSnapshotTo(snap.metadata.index)
            log.appliedSnapshot(snap.metadata.index)
        }
        if let last = rd.entries.last { log.stableTo(index: last.index, term: last.term) }
        for entry in rd.committedEntries where entry.kind == .confChange {
            if let change = try? ConfChange(decoding: entry.data) { applyConfChange(change) }
        }
        if let last = rd.committedEntries.last { log.appliedTo(last.index) }
    }

    public var status: RaftStatus {
        RaftStatus(
            id: id, role: role, term: term, vote: vote, leader: leader, commit: log.committed, applied: log.applied,
            firstIndex: log.firstIndex, lastIndex: log.lastIndex, conf: conf)
    }

    /// The leader's view of a follower's log: (match, next), for tests and tools.
    public func replicationState(of peer: UInt64) -> (match: UInt64, next: UInt64)? {
        progress[peer].map { ($0.match, $0.next) }
    }

    // MARK: - Roles

    private var currentHardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    private var isPromotable: Bool { conf.voters.contains(id) }
    private var quorum: Int { Quorum.size(conf.voters.count) }
    static let transferContext: [UInt8] = Array("transfer".utf8)

    private func reset(term newTerm: UInt64) {
        if term != newTerm {
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedElectionTimeout = config.electionTick + Int.random(in: 0..<config.electionTick, using: &rng)
        votes = [:]
        broadcastPending = false
        transferee = 0
        pendingReads = []
        readsAwaitingCommit = []
        progress = [:]
        for peer in conf.voters + conf.learners {
            let pr = Progress(
                next: log.lastIndex + 1, maxMessages: config.maxInflightMessages, maxBytes: config.maxInflightBytes,
                isLearner: conf.learners.contains(peer))
            if peer == id { pr.match = log.lastIndex }
            progress[peer] = pr
        }
    }

    private func becomeFollower(term newTerm: UInt64, leader newLeader: UInt64) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    private func becomePreCandidate() {
        // Like a candidate, but the term and vote stay as they are.
        votes = [:]
        role = .preCandidate
        leader = 0
    }

    private func becomeCandidate() {
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    private func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        progress[id]?.recentActive = true
        pendingConfIndex = log.lastIndex  // conservatively: changes in the old log may be unapplied
        // A no-op entry of the new term lets earlier entries commit (Figure 8).
        _ = log.append([RaftEntry(term: term, index: log.lastIndex + 1)])
        progress[id]?.match = log.lastIndex
        progress[id]?.next = log.lastIndex + 1
        maybeCommit()
        broadcastAppend()
    }

    private func startCampaign(transfer: Bool) {
        guard term < RaftLimits.maxTermOrIndex else { return }  // never reached: peers' terms are bounded
        let preVote = config.preVote && !transfer
        if preVote {
            becomePreCandidate()
        } else {
            becomeCandidate()
        }
        let kind: MessageKind = preVote ? .preVote : .vote
        let campaignTerm = preVote ? term + 1 : term
        if recordVote(from: id, granted: true) { return }
        for peer in conf.voters where peer != id {
            var m = RaftMessage(kind: kind, to: peer, from: id, term: campaignTerm)
            m.index = log.lastIndex
            m.logTerm = log.lastTerm
            if transfer { m.context = Self.transferContext }
            send(m)
        }
    }

    /// Records a vote and acts on a decided election. True when decided.
    private func recordVote(from voter: UInt64, granted: Bool) -> Bool {
        if votes[voter] == nil { votes[voter] = granted }
        let yes = votes.values.filter { $0 }.count
        let no = votes.count - yes
        if yes >= quorum {
            if role == .preCandidate {
                becomeCandidateAndRequestVotes()  // the pre-vote is won: now the real election
            } else {
                becomeLeader()
            }
            return true
        }
        if no >= quorum {
            becomeFollower(term: term, leader: 0)
            return true
        }
        return false
    }

    private func becomeCandidateAndRequestVotes() {
        becomeCandidate()
        if recordVote(from: id, granted: true) { return }
        for peer in conf.voters where peer != id {
            var m = RaftMessage(kind: .vote, to: peer, from: id, term: term)
            m.index = log.lastIndex
            m.logTerm = log.lastTerm
            send(m)
        }
    }

    // MARK: - Ticks

    private func tickElection() {
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            startCampaign(transfer: false)
        }
    }

    private func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTick {
            electionElapsed = 0
            if config.checkQuorum {
                let active = conf.voters.filter { $0 == id || progress[$0]?.recentActive == true }.count
                if active < quorum {
                    becomeFollower(term: term, leader: 0)
                    return
                }
                for peer in progress.keys where peer != id { progress[peer]?.recentActive = false }
            }
            transferee = 0  // a transfer that did not finish in an election timeout is abandoned
        }
        for peer in progress.keys {
            if case .snapshot = progress[peer]!.state {
                progress[peer]!.snapshotTicks += 1
                // The snapshot (or its reply) was lost: probe again, which resends it.
                if progress[peer]!.snapshotTicks >= config.electionTick { progress[peer]!.becomeProbe() }
            }
        }
        if heartbeatElapsed >= config.heartbeatTick {
            heartbeatElapsed = 0
            broadcastHeartbeat(context: [])
        }
    }

    // MARK: - Message handling

    private func handleVoteRequest(_ m: RaftMessage) {
        let isPre = m.kind == .preVote
        let canVote = vote == m.from || (vote == 0 && leader == 0) || (isPre && m.term > term)
        var reply = RaftMessage(kind: isPre ? .preVoteResponse : .voteResponse, to: m.from, from: id, term: term)
        if canVote && log.isUpToDate(lastIndex: m.index, term: m.logTerm) && conf.voters.contains(id) {
            // A granted pre-vote answers in the candidate's future term.
            reply.term = m.term
            if !isPre {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            reply.reject = true
        }
        send(reply)
    }

    private func stepLeader(_ m: RaftMessage) {
        guard progress[m.from] != nil else { return }
        switch m.kind {
        case .appendResponse:
            progress[m.from]!.recentActive = true
            if m.reject {
                var hint = m.rejectHint
                if m.logTerm > 0 { hint = log.findConflictByTerm(m.rejectHint, m.logTerm).index }
                if progress[m.from]!.maybeDecrease(rejected: m.index, hint: hint) {
                    if progress[m.from]!.state == .replicate { progress[m.from]!.becomeProbe() }
                    sendAppend(to: m.from)
                }
                return
            }
            let wasPaused = progress[m.from]!.isPaused
            guard progress[m.from]!.maybeUpdate(m.index) else {
                if wasPaused && !progress[m.from]!.isPaused { sendAppend(to: m.from) }
                return
            }
            switch progress[m.from]!.state {
            case .probe: progress[m.from]!.becomeReplicate()
            case .snapshot(let pending) where progress[m.from]!.match >= pending: progress[m.from]!.becomeProbe()
            case .replicate: progress[m.from]!.inflights.free(upTo: m.index)
            default: break
            }
            if maybeCommit() {
                broadcastPending = true
            } else {
                sendAppendsWhileUnpaused(to: m.from)
            }
            if m.from == transferee && progress[m.from]!.match == log.lastIndex {
                send(RaftMessage(kind: .timeoutNow, to: m.from, from: id, term: term))
            }
        case .heartbeatResponse:
            progress[m.from]!.recentActive = true
            progress[m.from]!.probeSent = false
            // Appends to a restarted or partitioned follower may all have been
            // lost: let one more through so a rejection can reset the pipeline.
            if progress[m.from]!.state == .replicate && progress[m.from]!.inflights.isFull {
                progress[m.from]!.inflights.freeFirst()
            }
            if progress[m.from]!.match < log.lastIndex { sendAppend(to: m.from) }
            if !m.context.isEmpty { acknowledgeRead(m.context, from: m.from) }
        default:
            break
        }
    }

    private func stepCandidate(_ m: RaftMessage) throws {
        switch m.kind {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            try handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case .voteResponse where role == .candidate, .preVoteResponse where role == .preCandidate:
            _ = recordVote(from: m.from, granted: !m.reject)
        default:
            break
        }
    }

    private func stepFollower(_ m: RaftMessage) throws {
        switch m.kind {
        case .append:
            electionElapsed = 0
            leader = m.from
            try handleAppend(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshot(m)
        case .timeoutNow:
            if isPromotable { startCampaign(transfer: true) }
        default:
            break
        }
    }

    private func handleAppend(_ m: RaftMessage) throws {
        var reply = RaftMessage(kind: .appendResponse, to: m.from, from: id, term: term)
        if m.index < log.committed {
            reply.index = log.committed
        } else if let lastNew = try log.maybeAppend(
            prevIndex: m.index, prevTerm: m.logTerm, commit: m.commit, entries: m.entries)
        {
            reply.index = lastNew
        } else {
            reply.reject = true
            reply.index = m.index
            let probe = min(m.index, log.lastIndex)
            let (hintIndex, hintTerm) = log.findConflictByTerm(probe, m.logTerm)
            reply.rejectHint = hintIndex
            reply.logTerm = hintTerm
        }
        send(reply)
    }

    private func handleHeartbeat(_ m: RaftMessage) {
        log.commitTo(m.commit)
        var reply = RaftMessage(kind: .heartbeatResponse, to: m.from, from: id, term: term)
        reply.context = m.context
        send(reply)
    }

    private func handleSnapshot(_ m: RaftMessage) {
        guard let snap = m.snapshot else { return }
        var reply = RaftMessage(kind: .appendResponse, to: m.from, from: id, term: term)
        let (index, snapTerm) = (snap.metadata.index, snap.metadata.term)
        if index <= log.committed {
            reply.index = log.committed
        } else if log.matchTerm(index, snapTerm) {
            // We already hold the entries: just move the commit point. Only
            // the snapshot's index is known to match the leader; entries
            // after it may be another term's, so acknowledge no further.
            log.commitTo(index)
            reply.index = index
        } else {
            log.restore(snap)
            conf = snap.metadata.conf
            for peer in conf.voters + conf.learners where progress[peer] == nil {
                progress[peer] = Progress(
                    next: log.lastIndex + 1, maxMessages: config.maxInflightMessages,
                    maxBytes: config.maxInflightBytes, isLearner: conf.learners.contains(peer))
            }
            reply.index = log.lastIndex
        }
        send(reply)
    }

    // MARK: - Replication

    private func send(_ m: RaftMessage) {
        var m = m
        m.group = config.group
        outbox.append(m)
    }

    private func notLeader() -> LuigiError {
        .state(leader == 0 ? "not the leader (no leader known)" : "not the leader (node \(leader) leads)")
    }

    private func appendProposal(_ entry: RaftEntry) throws -> UInt64 {
        guard role == .leader else { throw notLeader() }
        guard transferee == 0 else { throw LuigiError.state("leadership transfer to \(transferee) in progress") }
        guard log.lastIndex < RaftLimits.maxTermOrIndex else {
            throw LuigiError.state("the log has reached the largest index, 2^62")
        }
        var e = entry
        e.term = term
        e.index = log.lastIndex + 1
        log.append(e)
        if let me = progress[id] {
            me.match = e.index
            me.next = e.index + 1
        }
        maybeCommit()
        broadcastPending = true
        return e.index
    }

    private func broadcastAppend() {
        for peer in progress.keys.sorted() where peer != id { sendAppend(to: peer) }
    }

    private func sendAppendsWhileUnpaused(to peer: UInt64) {
        while let pr = progress[peer], !pr.isPaused, pr.next <= log.lastIndex {
            let before = pr.next
            sendAppend(to: peer)
            if progress[peer]?.next == before { break }
        }
    }

    private func broadcastHeartbeat(context: [UInt8]) {
        for peer in progress.keys.sorted() where peer != id {
            var m = RaftMessage(kind: .heartbeat, to: peer, from: id, term: term)
            m.commit = min(progress[peer]!.match, log.committed)
            m.context = context
            send(m)
        }
    }

    /// Sends the next append (or a snapshot) to one follower, if not paused.
    private func sendAppend(to peer: UInt64, allowEmpty: Bool = true) {
        guard let pr = progress[peer], !pr.isPaused else { return }
        let prevIndex = pr.next - 1
        guard let prevTerm = try? log.term(prevIndex),
            let entries = try? log.entries(pr.next, log.lastIndex + 1, maxBytes: config.maxSizePerMessage)
        else {
            sendSnapshot(to: peer)
            return
        }
        if entries.isEmpty && !allowEmpty { return }
        var m = RaftMessage(kind: .append, to: peer, from: id, term: term)
        m.index = prevIndex
        m.logTerm = prevTerm
        m.entries = entries
        m.commit = log.committed
        if let last = entries.last {
            switch pr.state {
            case .replicate:
                pr.next = last.index + 1
                pr.inflights.add(last: last.index, bytes: entries.reduce(0) { $0 + $1.size })
            case .probe:
                pr.probeSent = true
            case .snapshot:
                break
            }
        } else if pr.state == .probe {
            pr.probeSent = true
        }
        send(m)
    }

    private func sendSnapshot(to peer: UInt64) {
        guard let snap = try? log.snapshot(), !snap.isEmpty else { return }
        var m = RaftMessage(kind: .snapshot, to: peer, from: id, term: term)
        m.snapshot = snap
        progress[peer]?.becomeSnapshot(snap.metadata.index)
        send(m)
    }

    /// Commits the highest index a quorum of voters holds, if it is of the
    /// current term (a leader never commits an older term's entry by counting).
    @discardableResult
    private func maybeCommit() -> Bool {
        let candidate = Quorum.committedIndex(voterProgress)
        guard candidate > log.committed, (try? log.term(candidate)) == term else { return false }
        log.commitTo(candidate)
        if !readsAwaitingCommit.isEmpty {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit = []
            for context in waiting { startRead(context) }
        }
        return true
    }

    private func refreshVoterProgress() { voterProgress = conf.voters.map { progress[$0] } }

    // MARK: - ReadIndex

    private func startRead(_ context: [UInt8]) {
        if quorum == 1 {
            readStates.append(ReadState(index: log.committed, context: context))
            return
        }
        pendingReads.append((context, log.committed, [id]))
        broadcastHeartbeat(context: context)
    }

    private func acknowledgeRead(_ context: [UInt8], from peer: UInt64) {
        guard conf.voters.contains(peer), let at = pendingReads.firstIndex(where: { $0.context == context }) else {
            return
        }
        pendingReads[at].acks.insert(peer)
        guard pendingReads[at].acks.count >= quorum else { return }
        // This read and every earlier one are confirmed by the same quorum round.
        for read in pendingReads[...at] { readStates.append(ReadState(index: read.index, context: read.context)) }
        pendingReads.removeFirst(at + 1)
    }

    // MARK: - Membership

    private func applyConfChange(_ change: ConfChange) {
        var voters = Set(conf.voters), learners = Set(conf.learners)
        switch change.kind {
        case .addVoter:
            voters.insert(change.node)
            learners.remove(change.node)
        case .addLearner:
            if !voters.contains(change.node) { learners.insert(change.node) }
        case .removeNode:
            voters.remove(change.node)
            learners.remove(change.node)
        }
        guard !voters.isEmpty else { return }  // never remove the last voter
        conf = ConfState(voters: Array(voters), learners: Array(learners))
        for peer in conf.voters + conf.learners where progress[peer] == nil {
            progress[peer] = Progress(
                next: log.lastIndex + 1, maxMessages: config.maxInflightMessages, maxBytes: config.maxInflightBytes,
                isLearner: learners.contains(peer))
        }
        for peer in Array(progress.keys) where !conf.contains(peer) { progress[peer] = nil }
        for peer in learners { progress[peer]?.isLearner = true }
        for peer in voters { progress[peer]?.isLearner = false }
        guard role == .leader else { return }
        if !conf.voters.contains(id) {
            becomeFollower(term: term, leader: 0)  // removed leader steps down
            return
        }
        if transferee != 0 && !conf.voters.contains(transferee) { transferee = 0 }
        if maybeCommit() { broadcastAppend() }
    }

    // MARK: - Validation

    /// Every reason to refuse `m`, checked before anything changes.
    private func check(_ m: RaftMessage) throws {
        guard m.to == id else { throw LuigiError.invalidArgument("message for node \(m.to) stepped into node \(id)") }
        guard m.group == config.group else {
            throw LuigiError.invalidArgument("message of group \(m.group) stepped into a node of group \(config.group)")
        }
        guard m.from != 0, m.from != id else { throw LuigiError.invalidArgument("message from invalid node \(m.from)") }
        try RaftLimits.check(m.term, "message term")
        try RaftLimits.check(m.logTerm, "message log term")
        try RaftLimits.check(m.index, "message index")
        try RaftLimits.check(m.commit, "message commit")
        try RaftLimits.check(m.rejectHint, "message reject hint")
        try checkEntries(m)
        try checkSnapshot(m)
        // The message is well formed; refuse what contradicts this node's
        // state, before the term moves.
        if m.kind == .append && m.term >= term && !(role == .leader && m.term == term) {
            try log.checkAppend(prevIndex: m.index, prevTerm: m.logTerm, entries: m.entries)
        }
        if m.kind == .appendResponse && !m.reject && role == .leader && m.term == term && m.index > log.lastIndex {
            throw LuigiError.invalidArgument(
                "node \(m.from) acknowledges index \(m.index) beyond this leader's last index \(log.lastIndex)")
        }
    }

    private func checkEntries(_ m: RaftMessage) throws {
        guard !m.entries.isEmpty else { return }
        guard m.kind == .append else { throw LuigiError.invalidArgument("only append messages carry entries") }
        var previousTerm = m.logTerm
        for (i, e) in m.entries.enumerated() {
            // m.index <= 2^62 and the count fits in memory: no overflow.
            guard e.index == m.index + 1 + UInt64(i), e.term <= m.term, e.term >= previousTerm else {
                throw LuigiError.invalidArgument("append entries are not contiguous, or their terms are out of order")
            }
            previousTerm = e.term
        }
    }

    private func checkSnapshot(_ m: RaftMessage) throws {
        guard let snap = m.snapshot else {
            guard m.kind != .snapshot else { throw LuigiError.invalidArgument("snapshot message without a snapshot") }
            return
        }
        guard m.kind == .snapshot else { throw LuigiError.invalidArgument("only snapshot messages carry a snapshot") }
        let meta = snap.metadata
        try RaftLimits.check(meta.index, "snapshot index")
        guard meta.index >= 1, meta.term >= 1, meta.term <= m.term else {
            throw LuigiError.invalidArgument(
                "snapshot at index \(meta.index), term \(meta.term) is impossible in a term-\(m.term) message")
        }
        try meta.conf.validate("snapshot membership")
    }
}
