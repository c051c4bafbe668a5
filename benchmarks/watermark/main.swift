import LuigiCore
import LuigiSimulation

#if canImport(Glibc)
import Glibc
#endif

// luigi-watermark-sim: seeded sweeps of the watermark protocol with every
// invariant checked (make soak), and the protocol's benchmark.
//
//   luigi-watermark-sim sweep [first-seed] [count] [transactions]

func usage() -> Never {
    print("usage: luigi-watermark-sim sweep [first-seed] [count] [transactions]")
    exit(2)
}

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { usage() }
switch command {
case "sweep":
    let first = args.count > 1 ? UInt64(args[1]) ?? 0 : 0
    let count = args.count > 2 ? UInt64(args[2]) ?? 100 : 100
    let txns = args.count > 3 ? Int(args[3]) ?? 40 : 40
    var failures = 0, committed = 0, aborted = 0
    for seed in first..<(first + count) {
        do {
            let (_, checker) = try WatermarkSchedule.random(seed: seed, transactions: txns)
            committed += checker.committedCount
            aborted += checker.abortedCount
        } catch {
            failures += 1
            print("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
        }
    }
    print("\(count) schedules from seed \(first): \(failures) failed; \(committed) committed, \(aborted) aborted by their checks")
    exit(failures == 0 ? 0 : 1)
default:
    usage()
}
