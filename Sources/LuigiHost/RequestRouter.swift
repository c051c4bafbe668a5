import LuigiRaft

/// Wraps a state machine so that a client's request id travels with its
/// command through the log: "LRQ" v1 | request id (u64 LE) | command. The
/// machine sees only the command; the host gets (request id, result) when
/// the entry is applied. Entries without the frame go through unchanged.
/// `onApply` sees each entry as the log holds it (framed), with its result.
final class RequestRouter: RaftStateMachine {
    static let magic: [UInt8] = [0x4C, 0x52, 0x51, 0x01]  // "LRQ" v1

    let inner: RaftStateMachine
    let onApply: ((RaftEntry, [UInt8]) -> Void)?
    let onRestore: (([UInt8]) -> Void)?
    let route: (UInt64, [UInt8]) -> Void

    init(
        _ inner: RaftStateMachine, onApply: ((RaftEntry, [UInt8]) -> Void)?, onRestore: (([UInt8]) -> Void)?,
        route: @escaping (UInt64, [UInt8]) -> Void
    ) {
        self.inner = inner
        self.onApply = onApply
        self.onRestore = onRestore
        self.route = route
    }

    static func frame(_ command: [UInt8], request: UInt64) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(12 + command.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: request >> (8 * UInt64(i)))) }
        return bytes + command
    }

    /// (request id, command) of a framed entry, or nil.
    static func unframe(_ data: [UInt8]) -> (UInt64, [UInt8])? {
        guard data.count >= 12, data.starts(with: magic) else { return nil }
        let request = data[4..<12].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (request, Array(data[12...]))
    }

    func apply(_ entry: RaftEntry) throws -> [UInt8] {
        var unwrapped = entry
        var request: UInt64?
        if entry.kind == .normal, let (id, command) = Self.unframe(entry.data) {
            request = id
            unwrapped.data = command
        }
        let result = try inner.apply(unwrapped)
        onApply?(entry, result)
        if let request { route(request, result) }
        return result
    }

    func snapshot() throws -> [UInt8] { try inner.snapshot() }

    func restore(_ snapshot: [UInt8]) throws {
        try inner.restore(snapshot)
        onRestore?(snapshot)
    }
}
