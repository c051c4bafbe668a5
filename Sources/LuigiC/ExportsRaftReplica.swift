import CLuigi
import LuigiCore

// The algebraic replica as a Raft plugin: the coordinated path of its
// transactions (see ReplicaStateMachine).

private func replicaMachine(_ driver: RaftDriver) throws -> ReplicaStateMachine {
    guard let machine = driver.machine as? ReplicaStateMachine else {
        throw LuigiError.state("no replica is attached to this node (luigi_raft_attach_replica)")
    }
    return machine
}

@c @implementation public func luigi_raft_attach_replica(_ r: OpaquePointer!, _ rep: OpaquePointer!, _ logOrigin: UInt64)
    -> luigi_status
{
    guarded {
        let driver = try raft(r)
        try driver.attach(try ReplicaStateMachine(replica: try replica(rep), logOrigin: logOrigin))
    }
}

@c @implementation public func luigi_raft_propose_txn(
    _ r: OpaquePointer!, _ t: OpaquePointer!, _ out: UnsafeMutablePointer<UInt64>!
) -> luigi_status {
    output(out, "out_index") {
        let driver = try raft(r)
        return try replicaMachine(driver).propose(try txn(t), to: driver.node)
    }
}

@c @implementation public func luigi_raft_txn_outcome(
    _ r: OpaquePointer!, _ index: UInt64, _ outOutcome: UnsafeMutablePointer<UInt32>!,
    _ outRejection: UnsafeMutablePointer<luigi_status>!, _ outReason: UnsafeMutablePointer<luigi_buffer>!
) -> luigi_status {
    guarded {
        let outOutcome = try required(outOutcome, "out_outcome")
        let outcome = try replicaMachine(try raft(r)).outcome(at: index)
        var rejection = (LUIGI_OK, "")
        let code: Int32
        switch outcome {
        case .pending: code = LUIGI_TXN_PENDING
        case .committed: code = LUIGI_TXN_COMMITTED
        case .rejected(let error):
            code = LUIGI_TXN_REJECTED
            rejection = statusAndMessage(error)
        case .lost: code = LUIGI_TXN_LOST
        case .unknown: code = LUIGI_TXN_UNKNOWN
        }
        if let outReason { try fill(outReason, with: Array(rejection.1.utf8)) }
        outRejection?.pointee = rejection.0
        outOutcome.pointee = UInt32(code)
    }
}
