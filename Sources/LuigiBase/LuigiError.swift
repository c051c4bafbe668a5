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

    public var description: String {
        switch self {
        case .invalidArgument(let m), .decode(let m), .notAlgebraic(let m), .typeConflict(let m),
            .overflow(let m), .state(let m), .notConverged(let m), .timeout(let m):
            return m
        }
    }
}
