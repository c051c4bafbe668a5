import LuigiCore

/// One-way network delay between any two nodes of a simulated deployment:
/// a floor of `mean - spread` plus Pareto jitter whose mean is `spread`
/// (so the mean delay is `mean`), capped at 8 x spread. Every hop has the
/// same distribution: replicas are as far apart as shards, as in the
/// original evaluation.
public struct DelayProfile: Equatable, Sendable {
    public var name: String
    public var meanUs: UInt64
    public var spreadUs: UInt64

    public init(name: String, meanUs: UInt64, spreadUs: UInt64) {
        self.name = name
        self.meanUs = meanUs
        self.spreadUs = spreadUs
    }

    public static let sameRegion = DelayProfile(name: "same-region", meanUs: 2_000, spreadUs: 500)
    public static let sameContinent = DelayProfile(name: "same-continent", meanUs: 30_000, spreadUs: 5_000)
    public static let crossContinent = DelayProfile(name: "cross-continent", meanUs: 80_000, spreadUs: 10_000)
    public static let geo = DelayProfile(name: "geo", meanUs: 150_000, spreadUs: 20_000)
    public static let all = [sameRegion, sameContinent, crossContinent, geo]

    public static func named(_ name: String) throws -> DelayProfile {
        guard let p = all.first(where: { $0.name == name }) else {
            throw LuigiError.invalidArgument("unknown profile \"\(name)\" (one of \(all.map(\.name).joined(separator: ", ")))")
        }
        return p
    }

    var floorUs: UInt64 { meanUs - spreadUs }

    /// Pareto with shape 2.5 has mean scale / 1.5: scale 1.5 x spread.
    var jitter: ParetoJitter { ParetoJitter(scale: Double(spreadUs) * 1.5, shape: 2.5, cap: spreadUs * 8) }

    /// One wide-area round trip (µs), the unit latencies are reported in.
    public var roundTripUs: UInt64 { 2 * meanUs }
}
