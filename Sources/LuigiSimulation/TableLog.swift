import LuigiCore

/// The client of a table log running on a simulated Raft cluster: commands
/// go through the log (retried with the same transaction id until they
/// complete, so a retry across a leader change never applies twice), reads
/// go through ReadIndex on the leader (linearizable).
///
/// Timeouts are in ticks of the cluster's virtual time. An operation that
/// does not complete in time throws `.timeout`: its outcome is unknown, and
/// retrying the same commit is safe.
public final class TableLog {
    public let cluster: RaftCluster
    /// Ticks one attempt waits before proposing again (a lost proposal).
    public var attemptTicks = 50

    /// Options for a cluster whose every node runs a `TableLogMachine`.
    public static func clusterOptions(_ options: RaftCluster.Options) -> RaftCluster.Options {
        var o = options
        o.makeMachine = { _ in TableLogMachine() }
        return o
    }

    /// `cluster` must run `TableLogMachine` (see `clusterOptions`).
    public init(_ cluster: RaftCluster) throws {
        guard cluster.nodeIDs.contains(where: { cluster.stateMachine($0) is TableLogMachine }) else {
            throw LuigiError.state("the cluster does not run the table-log state machine")
        }
        self.cluster = cluster
    }

    /// Creates a table (idempotent for the same schema and retention).
    public func createTable(_ name: String, schema: [UInt8] = [], retain: UInt64 = 0, timeout: Int = 1_000) throws {
        _ = try run(.createTable(name: name, schema: schema, retain: retain), timeout: timeout).version()
    }

    /// Commits and returns the new version (a retry: the original one).
    /// Throws `.conflict` (stale base, reused id; its `current` is the latest
    /// version), `.invalidArgument`, or `.timeout`.
    public func commit(_ request: CommitRequest, timeout: Int = 1_000) throws -> UInt64 {
        try run(.commit(request), timeout: timeout).version()
    }

    /// Commits concurrently (proposed together, as many writers would):
    /// each request's outcome, in order; nil for one that did not complete
    /// within `timeout` ticks (unknown: retrying it is safe). Requests that
    /// break a limit are refused before anything is proposed.
    public func commitAll(_ requests: [CommitRequest], timeout: Int = 1_000) throws -> [TableOutcome?] {
        try runAll(requests.map { .commit($0) }, timeout: timeout)
    }

    public func latest(_ table: String, timeout: Int = 1_000) throws -> UInt64 {
        try read(timeout) { try $0.table(table).latest }
    }

    /// The files at `version` (nil: the latest), in path order.
    public func files(_ table: String, at version: UInt64? = nil, timeout: Int = 1_000) throws -> [DataFile] {
        try read(timeout) { try $0.table(table).files(at: version) }
    }

    public func versions(_ table: String, timeout: Int = 1_000) throws -> [TableVersion] {
        try read(timeout) { try $0.table(table).versions }
    }

    public func schema(_ table: String, timeout: Int = 1_000) throws -> [UInt8] {
        try read(timeout) { try $0.table(table).schema }
    }

    /// Runs one command; `.timeout` when its outcome stays unknown.
    private func run(_ command: TableCommand, timeout: Int) throws -> TableOutcome {
        guard let outcome = try runAll([command], timeout: timeout)[0] else {
            throw LuigiError.timeout("a table-log command did not complete within \(timeout) ticks; its outcome is unknown")
        }
        return outcome
    }

    /// Runs commands through the log, proposing again those whose outcome
    /// is unknown after each attempt, until all are known or `timeout` ticks
    /// have passed.
    private func runAll(_ commands: [TableCommand], timeout: Int) throws -> [TableOutcome?] {
        guard timeout >= 1 else { throw LuigiError.invalidArgument("timeout must be at least 1 tick") }
        let encoded = try commands.map { try $0.validated().encoded() }
        var outcomes = [TableOutcome?](repeating: nil, count: commands.count)
        var left = timeout
        while left > 0, outcomes.contains(nil) {
            let open = outcomes.indices.filter { outcomes[$0] == nil }
            let ticks = min(left, attemptTicks)
            left -= ticks
            for (i, result) in zip(open, try cluster.executeAll(open.map { encoded[$0] }, timeout: ticks)) {
                if let result { outcomes[i] = try TableOutcome(decoding: result) }
            }
        }
        return outcomes
    }

    private func read<T>(_ timeout: Int, _ body: (TableLogMachine) throws -> T) throws -> T {
        let value = try cluster.linearizableRead(timeout: timeout) { machine in
            guard let m = machine as? TableLogMachine else { throw LuigiError.state("the node does not run the table log") }
            return try body(m)
        }
        guard let value else { throw LuigiError.timeout("a table-log read did not complete within \(timeout) ticks") }
        return value
    }
}
