import LuigiBase

/// The majority rule (etcd/raft's quorum package): how many voters decide,
/// and which index a majority of them holds.
enum Quorum {
    /// Votes or acknowledgements that make a majority of `voters`.
    static func size(_ voters: Int) -> Int { voters / 2 + 1 }

    /// The highest index that a majority of the voters hold (a voter with no
    /// progress counts as holding nothing). Runs on every proposal, so the
    /// matches are sorted in a stack buffer rather than an array.
    static func committedIndex(_ voters: [Progress?]) -> UInt64 {
        guard !voters.isEmpty else { return 0 }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: voters.count) { buffer in
            var matches = buffer
            for (i, pr) in voters.enumerated() { matches[i] = pr?.match ?? 0 }
            matches.sort(by: >)
            return matches[size(voters.count) - 1]
        }
    }
}
