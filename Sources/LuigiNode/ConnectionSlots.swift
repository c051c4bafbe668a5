import NIOCore
import Synchronization

/// Who may hold a connection, in three budgets. A connection still in its
/// handshake takes one of `maxHandshakes`; when they are all taken, the
/// oldest is closed to make room, so a flood of connections that never
/// authenticate cannot keep anyone out for longer than it takes to open
/// `maxHandshakes` new ones. A client, once authenticated, takes one of
/// `maxClients` or is refused as busy. A peer takes one of `maxPerPeer` for
/// its id, its oldest connection closed for a new one (a reconnecting link
/// replaces a half-open one): clients never lock the cluster's members out.
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

    enum Role: Equatable {
        case client
        case peer(UInt64)
    }

    private struct State {
        var nextOrder: UInt64 = 0
        var handshaking: [UInt64: Slot] = [:]
        var clients: Set<UInt64> = []
        /// Each peer id's connections, oldest first.
        var peers: [UInt64: [Slot]] = [:]
        var held: Int { handshaking.count + clients.count + peers.values.reduce(0) { $0 + $1.count } }
    }

    let maxHandshakes: Int
    let maxClients: Int
    let maxPerPeer: Int
    /// Told the number of connections held after every change (under the lock,
    /// so the last value recorded is the current one).
    private let onChange: @Sendable (Int) -> Void
    private let state = Mutex(State())

    init(maxHandshakes: Int, maxClients: Int, maxPerPeer: Int = 4, onChange: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.maxHandshakes = maxHandshakes
        self.maxClients = maxClients
        self.maxPerPeer = maxPerPeer
        self.onChange = onChange
    }

    var held: Int { state.withLock { $0.held } }

    /// A handshake slot for `channel`, and the connection closed to make
    /// room for it, if one was (the caller closes it).
    func admit(_ channel: any Channel) -> (Slot, evicted: (any Channel)?) {
        state.withLock { s in
            var evicted: (any Channel)?
            if s.handshaking.count >= maxHandshakes, let oldest = s.handshaking.keys.min() {
                evicted = s.handshaking.removeValue(forKey: oldest)?.channel
            }
            s.nextOrder += 1
            let slot = Slot(order: s.nextOrder, channel: channel)
            s.handshaking[slot.order] = slot
            onChange(s.held)
            return (slot, evicted)
        }
    }

    enum Authenticated {
        /// The connection holds its slot; `replacing`, if any, is the same
        /// peer's oldest connection, to be closed.
        case admitted(replacing: (any Channel)?)
        /// A client over its budget: refuse it as busy.
        case busy
    }

    /// The handshake succeeded as `role`.
    func authenticated(_ slot: Slot, as role: Role) -> Authenticated {
        state.withLock { s in
            // Evicted meanwhile: its close is on the way.
            guard s.handshaking.removeValue(forKey: slot.order) != nil else { return .admitted(replacing: nil) }
            defer { onChange(s.held) }
            switch role {
            case .client:
                guard s.clients.count < maxClients else { return .busy }
                s.clients.insert(slot.order)
                return .admitted(replacing: nil)
            case .peer(let id):
                var mine = s.peers[id, default: []]
                mine.append(slot)
                let oldest = mine.count > maxPerPeer ? mine.removeFirst() : nil
                s.peers[id] = mine
                return .admitted(replacing: oldest?.channel)
            }
        }
    }

    /// The connection closed: whatever slot it held is free.
    func closed(_ slot: Slot) {
        state.withLock { s in
            s.handshaking.removeValue(forKey: slot.order)
            s.clients.remove(slot.order)
            for (id, mine) in s.peers where mine.contains(where: { $0 === slot }) {
                let rest = mine.filter { $0 !== slot }
                s.peers[id] = rest.isEmpty ? nil : rest
            }
            onChange(s.held)
        }
    }
}
