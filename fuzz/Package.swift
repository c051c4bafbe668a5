// swift-tools-version: 6.1
// The libFuzzer harness: one executable, `luigi-fuzz`, built only by
// `make fuzz` (release, `-sanitize=fuzzer` on every Swift module so coverage
// reaches LuigiCore and LuigiStorage). It compiles the same sources as the
// root package's `LuigiFuzzTargets` (fuzz/Targets) plus the libFuzzer entry
// points (fuzz/Driver, fuzz/CMain); `LUIGI_FUZZ_TARGET` picks the target.
import PackageDescription

let package = Package(
    name: "luigi-fuzz",
    dependencies: [
        .package(name: "luigi", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "luigi-fuzz",
            dependencies: [
                "LuigiFuzzMain", .product(name: "LuigiCore", package: "luigi"),
                .product(name: "LuigiStorage", package: "luigi"),
                .product(name: "LuigiHost", package: "luigi"),
                .product(name: "LuigiWire", package: "luigi"),
            ],
            path: ".",
            exclude: ["CMain", "run.sh", "chunks.dict", "corpus", "crashes", "README.md"],
            sources: ["Targets", "Driver"]
        ),
        // `main`: SwiftPM aliases an executable's main to `luigi_fuzz_main`,
        // which starts libFuzzer's driver (LLVMFuzzerRunDriver).
        .target(name: "LuigiFuzzMain", path: "CMain"),
    ]
)
