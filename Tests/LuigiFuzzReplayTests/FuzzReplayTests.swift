#if canImport(Glibc)
import Glibc
#endif
import LuigiFuzzTargets
import Testing

/// Replays the fuzz corpus and the saved crash inputs through every fuzz
/// target in the normal (debug) build, so a regression in a decoder, the WAL
/// or Raft step shows up in `swift test` without libFuzzer.
/// `fuzz/corpus/<target>` must not be empty (a lost corpus fails); a crash
/// input runs in its own process (an exit test), so one that still traps
/// fails its test instead of killing the run.
@Suite struct FuzzReplayTests {
    @Test(arguments: FuzzTargets.names)
    func corpusReplays(target: String) throws {
        let run = try #require(FuzzTargets.named(target))
        let files = inputFiles(in: "corpus", target)
        #expect(!files.isEmpty, "fuzz/corpus/\(target) is empty: restore it or run `make fuzz`")
        for path in files { run(try readFile(path)) }
    }

    @Test(arguments: FuzzTargets.names)
    func crashInputsNoLongerTrap(target: String) async throws {
        for path in inputFiles(in: "crashes", target) {
            let bytes = try readFile(path)
            await #expect(processExitsWith: .success, "\(path) (replay: LUIGI_FUZZ_TARGET=\(target) fuzz/.build/release/luigi-fuzz \(path))") {
                [target = target as String, bytes = bytes as [UInt8]] in
                FuzzTargets.named(target)?(bytes)
            }
        }
    }

    /// The seeds `make fuzz` starts from run cleanly too.
    @Test(arguments: FuzzTargets.names)
    func seedsRun(target: String) throws {
        let run = try #require(FuzzTargets.named(target))
        let seeds = FuzzSeeds.inputs(for: target)
        #expect(!seeds.isEmpty)
        for seed in seeds { run(seed) }
    }
}

/// The repository root: this file is `<root>/Tests/LuigiFuzzReplayTests/<file>`.
let repositoryRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// Regular files in `fuzz/<kind>/<target>`, sorted (no dot files or READMEs).
func inputFiles(in kind: String, _ target: String) -> [String] {
    let dir = "\(repositoryRoot)/fuzz/\(kind)/\(target)"
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let entry = readdir(d) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                String(cString: $0)
            }
        }
        if name.hasPrefix(".") || name.hasPrefix("README") { continue }
        var st = stat()
        if stat(dir + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { names.append(name) }
    }
    return names.sorted().map { dir + "/" + $0 }
}

struct ReadError: Error, CustomStringConvertible {
    var description: String
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw ReadError(description: "cannot open \(path): errno \(errno)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}
