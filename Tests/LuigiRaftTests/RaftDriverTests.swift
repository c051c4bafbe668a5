import LuigiCore
import Testing

/// A state machine attached to a RaftDriver sees every committed entry once,
/// in order, even when an apply fails and the batch is offered again.
@Suite struct RaftDriverTests {
    final class Recorder: RaftStateMachine {
        var applied: [UInt64] = []
        var failOnce: UInt64?
        func apply(_ entry: RaftEntry) throws -> [UInt8] {
            if entry.index == failOnce {
                failOnce = nil
                throw LuigiError.state("refused once")
            }
            applied.append(entry.index)
            return []
        }
        func snapshot() throws -> [UInt8] { applied.flatMap { withUnsafeBytes(of: $0) { Array($0) } } }
        func restore(_ snapshot: [UInt8]) throws {
            applied = stride(from: 0, to: snapshot.count, by: 8).map { i in
                snapshot[i..<i + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) }
            }
        }
    }

    @Test func failedApplyIsRetriedAndEveryEntryAppliesOnce() throws {
        let driver = try RaftDriver(config: RaftConfig(id: 1), storage: MemoryRaftStorage(), voters: [1])
        let machine = Recorder()
        try driver.attach(machine)
        driver.node.campaign()
        while let rd = try driver.nextReady() { try driver.advance(rd) }
        machine.failOnce = 4
        for i in 0..<5 { try driver.node.propose([UInt8(i)]) }
        #expect(throws: LuigiError.self) { _ = try driver.nextReady() }
        #expect(machine.applied == [1, 2, 3])
        while let rd = try driver.nextReady() { try driver.advance(rd) }
        #expect(machine.applied == [1, 2, 3, 4, 5, 6])
        #expect(driver.node.status.applied == 6)
    }

    @Test func snapshotOfTheMachineCompactsTheLogAndRestoresOnAttach() throws {
        let storage = MemoryRaftStorage()
        let driver = try RaftDriver(config: RaftConfig(id: 1), storage: storage, voters: [1])
        let machine = Recorder()
        try driver.attach(machine)
        driver.node.campaign()
        for i in 0..<10 {
            while let rd = try driver.nextReady() { try driver.advance(rd) }
            try driver.node.propose([UInt8(i)])
        }
        while let rd = try driver.nextReady() { try driver.advance(rd) }
        #expect(try driver.snapshotMachine() == 11)
        #expect(try storage.firstIndex() == 12)
        // A restarted node over the same storage restores the machine from the snapshot.
        let restarted = try RaftDriver(config: RaftConfig(id: 1), storage: storage, voters: [1])
        let fresh = Recorder()
        try restarted.attach(fresh)
        #expect(fresh.applied == Array(1...11))
    }
}
