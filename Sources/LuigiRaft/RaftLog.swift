import LuigiBase

/// The Raft log as the core sees it: what storage holds durably, plus the
/// "unstable" tail (entries and possibly a snapshot) not yet handed to the
/// driver for persistence, and the commit and apply points.
struct RaftLog {
    let storage: RaftStorage
    /// Entries not yet persisted; the first is at `unstableOffset`.
    private(set) var unstable: [RaftEntry] = []
    private(set) var unstableOffset: UInt64
    /// A received snapshot not yet persisted.
    private(set) var unstableSnapshot: Snapshot?
    private(set) var committed: UInt64
    private(set) var applied: UInt64
    /// Cap on the bytes of entries handed out at once.
    let maxApplyBytes: Int

    init(storage: RaftStorage, maxApplyBytes: Int) throws {
        self.storage = storage
        self.maxApplyBytes = maxApplyBytes
        let first = try storage.firstIndex()
        let last = try storage.lastIndex()
        unstableOffset = last + 1
        committed = first - 1
        applied = first - 1
    }

    // MARK: - Indices and terms

    var firstIndex: UInt64 {
        if let s = unstableSnapshot { return s.metadata.index + 1 }
        return (try? storage.firstIndex()) ?? 1
    }

    var lastIndex: UInt64 {
        if !unstable.isEmpty { return unstableOffset + UInt64(unstable.count) - 1 }
        if let s = unstableSnapshot { return s.metadata.index }
        return (try? storage.lastIndex()) ?? 0
    }

    var lastTerm: UInt64 { (try? term(lastIndex)) ?? 0 }

    func term(_ index: UInt64) throws -> UInt64 {
        if let s = unstableSnapshot, index == s.metadata.index { return s.metadata.term }
        if index >= unstableOffset {
            let offset = index - unstableOffset
            guard offset < UInt64(unstable.count) else { throw RaftLogError.unavailable }
            return unstable[Int(offset)].term
        }
        if unstableSnapshot != nil { throw RaftLogError.compacted }
        return try storage.term(index)
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool { (try? self.term(index)) == term }

    /// Raft's "at least as up to date" rule for granting votes.
    func isUpToDate(lastIndex candidateIndex: UInt64, term candidateTerm: UInt64) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// Entries in `lo..<hi`, at most `maxBytes` (at least one).
    func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
        guard lo < hi else { return [] }
        guard lo >= firstIndex else { throw RaftLogError.compacted }
        guard hi <= lastIndex + 1 else { throw RaftLogError.unavailable }
        var result: [RaftEntry] = []
        if lo < unstableOffset {
            result = try storage.entries(lo, min(hi, unstableOffset), maxBytes: maxBytes)
            if UInt64(result.count) < min(hi, unstableOffset) - lo { return result }  // size cap hit
        }
        if hi > unstableOffset {
            var bytes = result.reduce(0) { $0 + $1.size }
            for i in Int(max(lo, unstableOffset) - unstableOffset)..<Int(hi - unstableOffset) {
                bytes += unstable[i].size
                if !result.isEmpty && bytes > maxBytes { break }
                result.append(unstable[i])
            }
        }
        return result
    }

    /// Walks back from `index` to the last entry whose term is <= `term`
    /// (fast backtracking of a rejected append).
    func findConflictByTerm(_ index: UInt64, _ term: UInt64) -> (index: UInt64, term: UInt64) {
        var i = index
        while i > 0 {
            guard let t = try? self.term(i) else { return (i, 0) }
            if t <= term { return (i, t) }
            i -= 1
        }
        return (0, 0)
    }

    // MARK: - Appending

    /// Appends new leader-made entries at the end.
    mutating func append(_ entries: [RaftEntry]) -> UInt64 {
        guard let first = entries.first else { return lastIndex }
        truncateAndAppend(from: first.index, entries)
        return lastIndex
    }

    /// Appends one new leader-made entry at the end (a proposal), without
    /// wrapping it in an array.
    mutating func append(_ entry: RaftEntry) {
        if entry.index == unstableOffset + UInt64(unstable.count) {
            unstable.append(entry)
        } else {
            truncateAndAppend(from: entry.index, [entry])
        }
    }

    /// Refuses an append that would overwrite a committed entry (a correct
    /// leader never contradicts one). Changes nothing.
    func checkAppend(prevIndex: UInt64, prevTerm: UInt64, entries: [RaftEntry]) throws {
        guard prevIndex >= committed, matchTerm(prevIndex, prevTerm),
            let conflict = entries.first(where: { !matchTerm($0.index, $0.term) })
        else { return }
        guard conflict.index > committed else {
            throw LuigiError.invalidArgument("append conflicts with committed entry \(conflict.index)")
        }
    }

    /// A follower's append: if the entry before `entries` matches, keep the
    /// agreeing prefix, overwrite from the first conflict, and advance commit.
    /// Returns the last index now known to match the leader, or nil.
    mutating func maybeAppend(prevIndex: UInt64, prevTerm: UInt64, commit: UInt64, entries: [RaftEntry]) throws -> UInt64? {
        guard matchTerm(prevIndex, prevTerm) else { return nil }
        let lastNew = prevIndex + UInt64(entries.count)
        try checkAppend(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries)
        if let conflict = entries.first(where: { !matchTerm($0.index, $0.term) }) {
            let from = Int(conflict.index - entries[0].index)
            truncateAndAppend(from: conflict.index, Array(entries[from...]))
        }
        commitTo(min(commit, lastNew))
        return lastNew
    }

    private mutating func truncateAndAppend(from index: UInt64, _ entries: [RaftEntry]) {
        if index == unstableOffset + UInt64(unstable.count) {
            unstable.append(contentsOf: entries)
        } else if index <= unstableOffset {
            // Replaces part of what storage holds: the driver's append truncates it there.
            unstableOffset = index
            unstable = entries
        } else {
            unstable.removeSubrange(Int(index - unstableOffset)...)
            unstable.append(contentsOf: entries)
        }
    }

    /// Advances the commit point (never past the last entry held).
    mutating func commitTo(_ index: UInt64) {
        if index > committed { committed = min(index, lastIndex) }
    }

    // MARK: - Snapshots

    mutating func restore(_ snapshot: Snapshot) {
        committed = snapshot.metadata.index
        unstable = []
        unstableOffset = snapshot.metadata.index + 1
        unstableSnapshot = snapshot
    }

    func snapshot() throws -> Snapshot {
        if let s = unstableSnapshot { return s }
        return try storage.snapshot()
    }

    // MARK: - Ready / advance

    /// Committed entries not yet handed to the application.
    func entriesToApply() -> [RaftEntry] {
        guard committed > applied, applied + 1 >= firstIndex else { return [] }
        return (try? entries(applied + 1, committed + 1, maxBytes: maxApplyBytes)) ?? []
    }

    /// The driver persisted entries up to (index, term).
    mutating func stableTo(index: UInt64, term: UInt64) {
        guard index >= unstableOffset, matchTerm(index, term) else { return }
        let n = Int(index - unstableOffset) + 1
        guard n <= unstable.count, unstable[n - 1].term == term else { return }
        unstable.removeFirst(n)
        unstableOffset = index + 1
    }

    mutating func stableSnapshotTo(_ index: UInt64) {
        if unstableSnapshot?.metadata.index == index { unstableSnapshot = nil }
    }

    mutating func appliedTo(_ index: UInt64) {
        if index > applied { applied = min(index, committed) }
    }

    /// After a received snapshot is applied, apply resumes after it.
    mutating func appliedSnapshot(_ index: UInt64) {
        if index > applied { applied = index }
    }
}
