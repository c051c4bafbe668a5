#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry points of `luigi-fuzz`. The target is chosen once, from
/// `LUIGI_FUZZ_TARGET`; `LUIGI_FUZZ_WRITE_SEEDS=<dir>` instead writes every
/// target's seed inputs to `<dir>/<target>/` and exits, and `LUIGI_FUZZ_LIST=1`
/// prints the target names.

nonisolated(unsafe) private var selected: (([UInt8]) -> Void)? = nil

private func fail(_ text: String) -> Never {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

private func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { fail("luigi-fuzz: cannot write \(path)") }
    if !bytes.isEmpty { _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } }
    fclose(f)
}

/// mkdir -p
private func makeDirectories(_ path: String) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        mkdir(prefix, 0o755)
    }
}

private func writeSeeds(to root: String) -> Never {
    makeDirectories(root)
    for name in FuzzTargets.names {
        let dir = root + "/" + name
        mkdir(dir, 0o755)
        for (i, seed) in FuzzSeeds.inputs(for: name).enumerated() {
            writeFile(dir + "/seed-\(i)", seed)
        }
    }
    exit(0)
}

@_cdecl("LLVMFuzzerInitialize")
public func luigiFuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> CInt {
    if let dir = getenv("LUIGI_FUZZ_WRITE_SEEDS") { writeSeeds(to: String(cString: dir)) }
    if getenv("LUIGI_FUZZ_LIST") != nil {
        print(FuzzTargets.names.joined(separator: "\n"))
        exit(0)
    }
    let names = FuzzTargets.names.joined(separator: " ")
    guard let raw = getenv("LUIGI_FUZZ_TARGET") else { fail("luigi-fuzz: set LUIGI_FUZZ_TARGET to one of: \(names)") }
    let name = String(cString: raw)
    guard let run = FuzzTargets.named(name) else { fail("luigi-fuzz: unknown target '\(name)'; one of: \(names)") }
    selected = run
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func luigiFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    selected?(bytes)
    return 0
}
