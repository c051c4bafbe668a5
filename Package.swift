// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "luigi",
    products: [
        // libluigi.so: the stable C ABI (Include/luigi.h).
        .library(name: "luigi", type: .dynamic, targets: ["LuigiC"]),
        // The Swift API.
        .library(name: "LuigiCore", targets: ["LuigiCore"]),
        .library(name: "LuigiStorage", targets: ["LuigiStorage"]),
        .library(name: "LuigiSimulation", targets: ["LuigiSimulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // The CPU's CRC-32C instruction, behind a runtime check (C: Swift has no intrinsic for it).
        .target(name: "CCRC32C"),
        .target(name: "LuigiCore", dependencies: ["CCRC32C"], linkerSettings: [.linkedLibrary("m")]),
        .target(name: "LuigiStorage", dependencies: ["LuigiCore"]),
        .target(name: "LuigiSimulation", dependencies: ["LuigiCore"]),
        .systemLibrary(name: "CLuigi", path: "Include"),
        .target(
            name: "LuigiC",
            dependencies: ["LuigiCore", "LuigiStorage", "LuigiSimulation", "CLuigi"],
            exclude: ["exports.map"]
        ),
        .executableTarget(
            name: "luigi-geo-demo",
            dependencies: ["LuigiCore", "LuigiSimulation"],
            path: "examples/swift/geo-demo"
        ),
        .executableTarget(
            name: "luigi-raft-bench",
            dependencies: ["LuigiCore", "LuigiStorage"],
            path: "benchmarks/raft"
        ),
        .testTarget(
            name: "LuigiCoreTests",
            dependencies: ["LuigiCore", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "LuigiStorageTests",
            dependencies: ["LuigiCore", "LuigiStorage"]
        ),
        .testTarget(
            name: "LuigiRaftTests",
            dependencies: ["LuigiCore", "LuigiStorage", "LuigiSimulation"]
        ),
        .testTarget(
            name: "LuigiSimulationTests",
            dependencies: ["LuigiCore", "LuigiSimulation", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
    ]
)
