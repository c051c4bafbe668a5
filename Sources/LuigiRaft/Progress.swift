import LuigiBase

/// The leader's view of one follower's replication (etcd/raft's Progress).
/// A class, so `progress[peer]!.field = x` updates it in place: as a struct
/// in a dictionary every such write went through the dictionary's
/// Optional modify path (copy out, write back), on every proposal.
final class Progress {
    enum State: Equatable {
        /// Unknown how far the follower's log matches: one append at a time.
        case probe
        /// Matching: appends are pipelined, bounded by `inflights`.
        case replicate
        /// The follower needs a snapshot; appends wait until it is applied.
        case snapshot(index: UInt64)
    }

    var match: UInt64 = 0
    var next: UInt64
    var state: State = .probe
    /// In probe state: an append is outstanding.
    var probeSent = false
    /// Heard from since the last check-quorum round.
    var recentActive = false
    var isLearner = false
    var inflights: Inflights
    /// Ticks since the snapshot was sent (to resend a lost one).
    var snapshotTicks = 0

    init(next: UInt64, maxMessages: Int, maxBytes: Int, isLearner: Bool) {
        self.next = next
        self.isLearner = isLearner
        self.inflights = Inflights(maxMessages: maxMessages, maxBytes: maxBytes)
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    func becomeProbe() {
        if case .snapshot(let pending) = state {
            next = Swift.max(match + 1, pending + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.reset()
    }

    func becomeReplicate() {
        state = .replicate
        next = match + 1
        inflights.reset()
    }

    func becomeSnapshot(_ index: UInt64) {
        state = .snapshot(index: index)
        snapshotTicks = 0
        inflights.reset()
    }

    /// A successful append response up to `index`.
    func maybeUpdate(_ index: UInt64) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = Swift.max(next, index + 1)
        return updated
    }

    /// A rejected append of `rejected`; `hint` is the follower's suggestion
    /// for the highest index that may match. False if the rejection is stale.
    func maybeDecrease(rejected: UInt64, hint: UInt64) -> Bool {
        if state == .replicate {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next - 1 == rejected else { return false }
        next = Swift.max(Swift.min(rejected, hint + 1), 1)
        probeSent = false
        return true
    }
}
