import LuigiCore
import LuigiSimulation

/// One op of a generated history, kept in a form a plain sequential model can
/// evaluate without any of Luigi's machinery.
enum ModelOp {
    case add(String, Int64)
    case max(String, Number)
    case min(String, Number)
    case union(String, Element)

    var key: String {
        switch self {
        case .add(let k, _), .max(let k, _), .min(let k, _), .union(let k, _): return k
        }
    }
}

/// The sequential reference: every op of every committed transaction applied
/// in commit order to plain values. Each key is used by one type only, so
/// the order-independence of the real replicas is what is being tested.
struct SequentialReference {
    var counters: [String: Int128] = [:]
    var maxes: [String: Number] = [:]
    var mins: [String: Number] = [:]
    var sets: [String: Set<Element>] = [:]

    mutating func apply(_ ops: [ModelOp]) {
        for op in ops {
            switch op {
            case .add(let k, let d): counters[k, default: 0] += Int128(d)
            case .max(let k, let n): maxes[k] = Swift.max(maxes[k] ?? n, n)
            case .min(let k, let n): mins[k] = Swift.min(mins[k] ?? n, n)
            case .union(let k, let e): sets[k, default: []].insert(e)
            }
        }
    }

    func matches(_ r: Replica) -> Bool {
        counters.allSatisfy { r.value($0.key) == .counter($0.value) }
            && maxes.allSatisfy { r.value($0.key) == .max($0.value) }
            && mins.allSatisfy { r.value($0.key) == .min($0.value) }
            && sets.allSatisfy { r.value($0.key) == .set($0.value) }
            && r.keyCount == counters.count + maxes.count + mins.count + sets.count
    }
}

/// Random transactions over a fixed key space where each key has one type.
struct HistoryGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func number() -> Number {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return .float(-0.0)
        case 1: return .float(0.0)
        case 2: return .float(Double(Int.random(in: -1000...1000, using: &rng)) / 7)
        case 3: return .float([Double.infinity, -.infinity, 1e300][Int.random(in: 0..<3, using: &rng)])
        default: return .int(Int64.random(in: -50...50, using: &rng))
        }
    }

    mutating func element() -> Element {
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return .int(Int64.random(in: -20...20, using: &rng))
        case 1: return .string("s\(Int.random(in: 0..<20, using: &rng))")
        default: return .bytes([UInt8.random(in: 0...3, using: &rng)])
        }
    }

    mutating func transaction() -> [ModelOp] {
        (0..<Int.random(in: 1...4, using: &rng)).map { _ in
            let k = Int.random(in: 0..<3, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: return .add("c\(k)", Int64.random(in: -1_000_000...1_000_000, using: &rng))
            case 1: return .max("hi\(k)", number())
            case 2: return .min("lo\(k)", number())
            default: return .union("s\(k)", element())
            }
        }
    }
}

extension Replica {
    @discardableResult
    func commit(_ ops: [ModelOp]) throws -> Update {
        try commit { tx in
            for op in ops {
                switch op {
                case .add(let k, let d): try tx.add(k, d)
                case .max(let k, let n): try tx.max(k, n)
                case .min(let k, let n): try tx.min(k, n)
                case .union(let k, let e): try tx.union(k, e)
                }
            }
        }
    }
}

/// Seeds for a sweep: LUIGI_SEED=<n> replays one exactly.
func seeds(_ count: Int) -> [UInt64] {
    if let env = getenvString("LUIGI_SEED"), let seed = UInt64(env) { return [seed] }
    return (0..<UInt64(count)).map { $0 &* 0x9E37_79B9 &+ 1 }
}

#if canImport(Glibc)
import Glibc
#endif

func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}
