/// One shard's ops run in order over a view of its state: what they read,
/// the final value of every key they write, and the vote (false when a check
/// failed or an add would overflow; the overflowing add writes nothing).
/// The one interpreter of `Op`: the shard leader and the two-phase baseline
/// both run parts through it (the checker keeps its own, as an oracle).
package struct PartRun {
    package private(set) var reads: [ReadResult] = []
    package private(set) var written: [String: Int64] = [:]
    package private(set) var vote = true

    package init(_ ops: [Op], value: (String) -> Int64?) {
        func get(_ k: String) -> Int64? { written[k] ?? value(k) }
        for op in ops {
            switch op {
            case .read(let k):
                reads.append(ReadResult(key: k, value: get(k)))
            case .write(let k, let v):
                written[k] = v
            case .add(let k, let d):
                let (sum, overflow) = (get(k) ?? 0).addingReportingOverflow(d)
                if overflow { vote = false } else { written[k] = sum }
            case .check(let k, let atLeast):
                let v = get(k)
                reads.append(ReadResult(key: k, value: v))
                if (v ?? 0) < atLeast { vote = false }
            }
        }
    }

    /// The final values of `keys` (a key whose only write overflowed: 0).
    package func writes(_ keys: [String]) -> [WriteResult] {
        keys.map { WriteResult(key: $0, value: written[$0] ?? 0) }
    }
}
