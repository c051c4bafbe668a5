/// Every failure the core reports. Each case maps to one `luigi_status` code
/// and one Python exception class.
public enum LuigiError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case decode(String)
    case notAlgebraic(String)
    case typeConflict(String)
    case overflow(String)
    case state(String)
    case notConverged(String)
    case timeout(String)
    /// A write lost to another one: `current` is the version it must now
    /// be based on (a stale base, or an id already used for other contents).
    case conflict(String, current: UInt64)
    /// A node refused this client's or peer's proof of the cluster secret
    /// (or could not prove it knows it): a wrong secret or cluster id.
    case unauthenticated(String)

    public var description: String {
        switch self {
        case .invalidArgument(let m), .decode(let m), .notAlgebraic(let m), .typeConflict(let m),
            .overflow(let m), .state(let m), .notConverged(let m), .timeout(let m), .conflict(let m, _),
            .unauthenticated(let m):
            return m
        }
    }
}
