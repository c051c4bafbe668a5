#if canImport(Glibc)
import Glibc
#endif
import LuigiBase
import Testing

/// Seeds for a sweep: LUIGI_SEED=<n> replays one exactly;
/// LUIGI_SWEEP_SCALE=<k> runs k times as many (a soak).
func wireSeeds(_ count: Int) -> [UInt64] {
    if let p = getenv("LUIGI_SEED"), let seed = UInt64(String(cString: p)) { return [seed] }
    let scale = getenv("LUIGI_SWEEP_SCALE").flatMap { UInt64(String(cString: $0)) } ?? 1
    return (0..<UInt64(count) * max(scale, 1)).map { $0 &* 0x9E37_79B9 &+ 1 }
}

/// Runs `body` once per seed; the first failing seed is reported with the
/// line that replays it (`LUIGI_SEED=<n>`), and the sweep stops there.
func sweep(_ count: Int, _ name: String, _ body: (UInt64) throws -> Void) {
    for seed in wireSeeds(count) {
        do {
            try body(seed)
        } catch {
            print("\(name) failed: LUIGI_SEED=\(seed)")
            Issue.record("\(name) failed for seed \(seed) (replay: LUIGI_SEED=\(seed)): \(error)")
            return
        }
    }
}

struct CheckFailed: Error, CustomStringConvertible {
    var description: String
}

/// An invariant check inside a seeded sweep: throws, so the sweep reports the seed.
func ensure(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw CheckFailed(description: message()) }
}

extension SplitMix64 {
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
    mutating func bytes(upTo max: Int) -> [UInt8] { bytes(int(0...max)) }
    mutating func u64() -> UInt64 { next() }
}
