import LuigiCore
import LuigiWire

/// A group's key-value machine, watched for the cluster's address book:
/// `member add` writes "__luigi/member/<id>" = "host:port" through the
/// group's log before the membership change, so every node that applies the
/// change (or restores a snapshot holding it) knows where the new member
/// listens. Clients may read the reserved keys but not write them.
final class AddressBookMachine: RaftStateMachine {
    static let prefix = "__luigi/member/"
    let kv = KVStateMachine()
    let onChange: (UInt64, Address?) -> Void

    init(onChange: @escaping (UInt64, Address?) -> Void) { self.onChange = onChange }

    static func key(_ id: UInt64) -> String { prefix + String(id) }

    static func isReserved(_ key: String) -> Bool { key.hasPrefix("__luigi/") }

    func apply(_ entry: RaftEntry) -> [UInt8] {
        let result = kv.apply(entry)
        if entry.kind == .normal, let command = try? KVStateMachine.Command(decoding: entry.data) {
            switch command {
            case .put(let key, let value): report(key, value)
            case .delete(let key): report(key, nil)
            default: break
            }
        }
        return result
    }

    private func report(_ key: String, _ value: [UInt8]?) {
        guard key.hasPrefix(Self.prefix), let id = UInt64(key.dropFirst(Self.prefix.count)) else { return }
        onChange(id, value.flatMap { try? Address(parsing: String(decoding: $0, as: UTF8.self)) })
    }

    func snapshot() -> [UInt8] { kv.snapshot() }

    func restore(_ snapshot: [UInt8]) throws {
        try kv.restore(snapshot)
        for (key, value) in kv.data.sorted(by: { $0.key < $1.key }) { report(key, value) }
    }
}
