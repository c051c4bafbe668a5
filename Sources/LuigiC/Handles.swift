import CLuigi
import LuigiCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a handle refers to; a handle of one kind is never accepted as another.
enum HandleKind: UInt8 {
    case clock = 1, replica, txn, update, updateList, cluster, raft, raftReady, raftCluster
    case shardedCluster, wmCoordinator, wmShard, client, ops

    var name: String {
        switch self {
        case .clock: return "luigi_clock"
        case .replica: return "luigi_replica"
        case .txn: return "luigi_txn"
        case .update: return "luigi_update"
        case .updateList: return "luigi_update_list"
        case .cluster: return "luigi_cluster"
        case .raft: return "luigi_raft"
        case .raftReady: return "luigi_raft_ready"
        case .raftCluster: return "luigi_raft_cluster"
        case .shardedCluster: return "luigi_sharded_cluster"
        case .wmCoordinator: return "luigi_wm_coordinator"
        case .wmShard: return "luigi_wm_shard"
        case .client: return "luigi_client"
        case .ops: return "luigi_ops"
        }
    }
}

/// Holds a value type (clock, update, list) behind a handle.
/// Confined like the handle that holds it (see luigi.h on thread-safety).
final class Box<Value> {
    @exclusivity(unchecked) var value: Value
    init(_ value: Value) { self.value = value }
}

/// Every live handle. A handle is not a pointer but (generation << 32 | slot+1),
/// so a freed, forged or wrong-kind handle is detected instead of dereferenced.
final class HandleTable: @unchecked Sendable {  // all state behind `mutex`
    private struct Slot {
        var generation: UInt32 = 1
        var kind: HandleKind? = nil
        var object: AnyObject? = nil
    }

    private struct Slots {
        var slots: [Slot] = []
        var free: [Int] = []
    }

    // Only touched under `mutex`, so the dynamic exclusivity check adds nothing.
    @exclusivity(unchecked) private var slotsState = Slots()
    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    private func locked<R>(_ body: (inout Slots) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&slotsState)
    }

    static let shared = HandleTable()

    func insert(_ object: AnyObject, _ kind: HandleKind) -> OpaquePointer {
        let raw: UInt64 = locked { s in
            let index: Int
            if let reused = s.free.popLast() {
                index = reused
            } else {
                s.slots.append(Slot())
                index = s.slots.count - 1
            }
            s.slots[index].kind = kind
            s.slots[index].object = object
            return UInt64(s.slots[index].generation) << 32 | UInt64(index + 1)
        }
        return OpaquePointer(bitPattern: UInt(raw))!
    }

    private static func decode(_ handle: OpaquePointer) -> (index: Int, generation: UInt32) {
        let raw = UInt64(UInt(bitPattern: Int(bitPattern: handle)))
        return (Int(raw & 0xFFFF_FFFF) - 1, UInt32(truncatingIfNeeded: raw >> 32))
    }

    func get<T: AnyObject>(_ handle: OpaquePointer?, _ kind: HandleKind, as _: T.Type) throws -> T {
        guard let handle else { throw ABIError.invalidArgument("\(kind.name) handle is NULL") }
        let (index, generation) = Self.decode(handle)
        let object: AnyObject? = locked { s in
            guard index >= 0, index < s.slots.count, s.slots[index].generation == generation,
                s.slots[index].kind == kind
            else { return nil }
            return s.slots[index].object
        }
        guard let object else {
            throw ABIError.invalidHandle("not a live \(kind.name) handle (freed, unknown or another type)")
        }
        return unsafeDowncast(object, to: T.self)
    }

    /// Releases a handle; NULL and unknown handles are ignored (free never fails).
    func remove(_ handle: OpaquePointer?, _ kind: HandleKind) {
        guard let handle else { return }
        let (index, generation) = Self.decode(handle)
        let released: AnyObject? = locked { s in
            guard index >= 0, index < s.slots.count, s.slots[index].generation == generation,
                s.slots[index].kind == kind
            else { return nil }
            let object = s.slots[index].object
            s.slots[index] = Slot(generation: generation &+ 1 == 0 ? 1 : generation &+ 1)
            s.free.append(index)
            return object
        }
        _ = released  // deinit runs here, outside the lock
    }
}

let handles = HandleTable.shared
