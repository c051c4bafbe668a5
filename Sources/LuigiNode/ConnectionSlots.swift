import NIOCore
import Synchronization

/// Who may hold a connection, in two budgets. A connection still in its
/// handshake takes one of `maxHandshakes`; when they are all taken, the
/// oldest is closed to make room, so a flood of connections that never
/// authenticate cannot keep anyone out for longer than it takes to open
/// `maxHandshakes` new ones. A client, once authenticated, takes one of
/// `maxClients` or is refused. A peer takes neither: the few members of the
/// cluster are never locked out by clients or strangers.
final class ConnectionSlots: Sendable {
    /// One accepted connection's place.
    final class Slot: Sendable {
        fileprivate let order: UInt64
        fileprivate let channel: any Channel
        fileprivate init(order: UInt64, channel: any Channel) {
            self.order = order
            self.channel = channel
        }
    }

    private struct State {
        var nextOrder: UInt64 = 0
        var handshaking: [UInt64: Slot] = [:]
        var clients: Set<UInt64> = []
    }

    let maxHandshakes: Int
    let maxClients: Int
    private let state = Mutex(State())

    init(maxHandshakes: Int, maxClients: Int) {
        self.maxHandshakes = maxHandshakes
        self.maxClients = maxClients
    }

    /// Connections in a handshake or held by clients.
    var held: Int { state.withLock { $0.handshaking.count + $0.clients.count } }

    /// A handshake slot for `channel`, and the connection closed to make
    /// room for it, if one was.
    func admit(_ channel: any Channel) -> (Slot, evicted: (any Channel)?) {
        state.withLock { s in
            var evicted: (any Channel)?
            if s.handshaking.count >= maxHandshakes, let oldest = s.handshaking.keys.min() {
                evicted = s.handshaking.removeValue(forKey: oldest)?.channel
            }
            s.nextOrder += 1
            let slot = Slot(order: s.nextOrder, channel: channel)
            s.handshaking[slot.order] = slot
            return (slot, evicted)
        }
    }

    /// The handshake succeeded. A peer leaves the budgets; a client takes a
    /// client slot, or gets false when all are held.
    func authenticated(_ slot: Slot, asPeer: Bool) -> Bool {
        state.withLock { s in
            s.handshaking.removeValue(forKey: slot.order)
            if asPeer { return true }
            guard s.clients.count < maxClients else { return false }
            s.clients.insert(slot.order)
            return true
        }
    }

    /// The connection closed: whatever slot it held is free.
    func closed(_ slot: Slot) {
        state.withLock { s in
            s.handshaking.removeValue(forKey: slot.order)
            s.clients.remove(slot.order)
        }
    }
}
