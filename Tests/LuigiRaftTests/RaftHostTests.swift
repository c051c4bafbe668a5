import LuigiCore
import LuigiHost
import Testing

/// The host loop: groups routed by the envelope, results by request id.
@Suite struct RaftHostTests {
    /// Two hosts, each running groups 1 and 2 as a two-voter group, wired
    /// back to back.
    final class Pair {
        var queue: [Envelope] = []
        var hosts: [UInt64: RaftHost] = [:]
        var machines: [UInt64: [UInt64: KVStateMachine]] = [:]

        init() throws {
            for id: UInt64 in [1, 2] {
                let host = RaftHost { [unowned self] in self.queue += $0 }
                for group: UInt64 in [1, 2] {
                    var config = RaftConfig(id: id)
                    config.group = group
                    let machine = KVStateMachine()
                    machines[id, default: [:]][group] = machine
                    try host.add(RaftDriver(config: config, storage: MemoryRaftStorage(), voters: [1, 2]), machine: machine)
                }
                hosts[id] = host
            }
        }

        func run() throws {
            var busy = true
            while busy {
                busy = false
                for id: UInt64 in [1, 2] where try hosts[id]!.process() > 0 { busy = true }
                let batch = queue
                queue = []
                for e in batch {
                    busy = true
                    try hosts[e.to]!.receive(e.bytes)
                }
            }
        }
    }

    @Test func groupsAreRoutedByTheirEnvelopeAndResultsByRequest() throws {
        let p = try Pair()
        p.hosts[1]!.driver(1)!.node.campaign()
        p.hosts[2]!.driver(2)!.node.campaign()
        try p.run()
        #expect(p.hosts[1]!.driver(1)!.node.role == .leader && p.hosts[2]!.driver(2)!.node.role == .leader)
        try p.hosts[1]!.propose(KVStateMachine.Command.put(key: "k", value: [1]).encoded(), request: 77, group: 1)
        try p.hosts[2]!.propose(KVStateMachine.Command.put(key: "k", value: [2]).encoded(), request: 78, group: 2)
        try p.run()
        #expect(p.hosts[1]!.takeResult(of: 77) != nil)
        #expect(p.hosts[1]!.takeResult(of: 77) == nil, "a result is taken once")
        #expect(p.hosts[2]!.takeResult(of: 78) != nil)
        for id: UInt64 in [1, 2] {
            #expect(p.machines[id]![1]!.read("k") == [1, 1] && p.machines[id]![2]!.read("k") == [1, 2])  // found, value
        }
        // A message for a group the host does not run is refused.
        var stray = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 9)
        stray.group = 3
        #expect(throws: LuigiError.self) { try p.hosts[1]!.receive(stray.encoded()) }
        #expect(throws: LuigiError.self) { try p.hosts[1]!.receive([1, 2, 3]) }
        #expect(p.hosts[1]!.driver(1)!.node.term == 1)
    }
}
