import LuigiCore
import LuigiSimulation

#if canImport(Glibc)
import Glibc
#endif

// luigi-watermark-sim: seeded sweeps of the watermark protocol with every
// invariant checked (make soak), and one benchmark run printed as JSON.
//
//   luigi-watermark-sim sweep [first-seed] [count] [transactions]   (LUIGI_SEED=n: that seed alone)
//   luigi-watermark-sim bench [--key value ...]   (see runBench)

func usage() -> Never {
    print("""
        usage: luigi-watermark-sim sweep [first-seed] [count] [transactions]
               luigi-watermark-sim bench [--protocol luigi|2pc] [--shards N] [--replicas R] [--workers W]
                   [--profile same-region|same-continent|cross-continent|geo] [--window N] [--count N]
                   [--workload micro|bank|tpcc] [--cross F] [--skew US] [--seed N] [--rule all|own]
        """)
    exit(2)
}

func monotonicMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
}

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { usage() }
switch command {
case "sweep":
    // LUIGI_SEED=n replays the one schedule a failure printed.
    let replay = getenv("LUIGI_SEED").flatMap { UInt64(String(cString: $0)) }
    let first = replay ?? (args.count > 1 ? UInt64(args[1]) ?? 0 : 0)
    let count = replay != nil ? 1 : (args.count > 2 ? UInt64(args[2]) ?? 100 : 100)
    let txns = args.count > 3 ? Int(args[3]) ?? 40 : 40
    var failures = 0, committed = 0, aborted = 0, orphans = 0
    var trace: UInt64 = 0
    for seed in first..<(first + count) {
        do {
            let (cluster, checker) = try WatermarkSchedule.random(seed: seed, transactions: txns)
            trace = (trace ^ cluster.traceHash) &* 0x0000_0100_0000_01B3
            committed += checker.committedCount
            aborted += checker.abortedCount
            orphans += checker.finishedWithoutCoordinator
        } catch {
            failures += 1
            print("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
        }
    }
    print("\(count) schedules from seed \(first): \(failures) failed; \(committed) committed, \(aborted) aborted by their checks, \(orphans) finished after their coordinator crashed; trace \(String(trace, radix: 16))")
    exit(failures == 0 ? 0 : 1)
case "bench":
    var options: [String: String] = [:]
    var i = 1
    while i + 1 < args.count, args[i].hasPrefix("--") {
        options[String(args[i].dropFirst(2))] = args[i + 1]
        i += 2
    }
    guard i == args.count else { usage() }
    do {
        print(try runBench(options))
    } catch {
        print("error: \(error)")
        exit(1)
    }
default:
    usage()
}
