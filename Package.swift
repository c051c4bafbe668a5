// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "luigi",
    products: [
        // libluigi.so: the stable C ABI (Include/luigi.h).
        .library(name: "luigi", type: .dynamic, targets: ["LuigiC"]),
        // The Swift API: everything through LuigiCore, or one layer at a time.
        .library(name: "LuigiCore", targets: ["LuigiCore"]),
        .library(name: "LuigiBase", targets: ["LuigiBase"]),
        .library(name: "LuigiAlgebraic", targets: ["LuigiAlgebraic"]),
        .library(name: "LuigiRaft", targets: ["LuigiRaft"]),
        .library(name: "LuigiReplicaRaft", targets: ["LuigiReplicaRaft"]),
        .library(name: "LuigiWatermark", targets: ["LuigiWatermark"]),
        .library(name: "LuigiWatermarkRaft", targets: ["LuigiWatermarkRaft"]),
        .library(name: "LuigiTableLog", targets: ["LuigiTableLog"]),
        .library(name: "LuigiHost", targets: ["LuigiHost"]),
        .library(name: "LuigiStorage", targets: ["LuigiStorage"]),
        .library(name: "LuigiSimulation", targets: ["LuigiSimulation"]),
        .library(name: "LuigiWire", targets: ["LuigiWire"]),
        .library(name: "LuigiClient", targets: ["LuigiClient"]),
        .library(name: "LuigiNode", targets: ["LuigiNode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // luigi-node: TCP (SwiftNIO), HMAC auth (swift-crypto), CLI, logs, metrics, lifecycle, config file.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
    ],
    targets: [
        // The CPU's CRC-32C instruction, behind a runtime check (C: Swift has no intrinsic for it).
        .target(name: "CCRC32C"),
        // Base layer: codecs, CRC-32C, vector clocks, seeded random numbers, errors.
        .target(name: "LuigiBase", dependencies: ["CCRC32C"], linkerSettings: [.linkedLibrary("m")]),
        // The kernels, one target each; pure and sans-I/O.
        .target(name: "LuigiAlgebraic", dependencies: ["LuigiBase"]),
        .target(name: "LuigiRaft", dependencies: ["LuigiBase"]),
        .target(name: "LuigiWatermark", dependencies: ["LuigiBase"]),
        // Bridges: the algebraic replica as a Raft state-machine plugin; a
        // watermark shard replica fed by its shard's Raft group.
        .target(name: "LuigiReplicaRaft", dependencies: ["LuigiAlgebraic", "LuigiRaft"]),
        .target(name: "LuigiWatermarkRaft", dependencies: ["LuigiWatermark", "LuigiRaft"]),
        // Raft plugins: versioned table metadata (optimistic commits against a base version).
        .target(name: "LuigiTableLog", dependencies: ["LuigiBase", "LuigiRaft"]),
        // One import for the whole Swift API (re-exports the kernels and bridges above).
        .target(
            name: "LuigiCore",
            dependencies: [
                "LuigiBase", "LuigiAlgebraic", "LuigiRaft", "LuigiReplicaRaft", "LuigiWatermark", "LuigiWatermarkRaft",
                "LuigiTableLog",
            ]
        ),
        // The sans-I/O host loop around the kernels, shared by every driver.
        .target(name: "LuigiHost", dependencies: ["LuigiBase", "LuigiRaft"]),
        .target(name: "LuigiStorage", dependencies: ["LuigiBase", "LuigiRaft"]),
        .target(name: "LuigiSimulation", dependencies: ["LuigiCore", "LuigiHost"]),
        // The node's wire: frames, the HMAC handshake, client requests and replies. Pure (no sockets).
        .target(name: "LuigiWire", dependencies: ["LuigiBase", "LuigiAlgebraic", "LuigiWatermark", .product(name: "Crypto", package: "swift-crypto")]),
        // The blocking client (POSIX sockets, no event loop): Swift callers and the C ABI.
        .target(name: "LuigiClient", dependencies: ["LuigiWire", "LuigiRaft", "LuigiWatermark"]),
        // The node runtime: the shared host loop on SwiftNIO, storage off the event loop, HTTP, metrics.
        .target(
            name: "LuigiNode",
            dependencies: [
                "LuigiCore", "LuigiHost", "LuigiStorage", "LuigiWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // luigi-node processes on loopback: spawn, kill, restart (make run, tests, the benchmark).
        .target(name: "LuigiLocalCluster", dependencies: ["LuigiClient", "LuigiWire"]),
        // make run: a 3-node cluster, a workload, the leader killed and restarted, every check.
        .executableTarget(
            name: "luigi-cluster-demo",
            dependencies: ["LuigiClient", "LuigiLocalCluster", "LuigiSimulation"]
        ),
        .executableTarget(
            name: "luigi-node",
            dependencies: [
                "LuigiNode", "LuigiClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
            ]
        ),
        .systemLibrary(name: "CLuigi", path: "Include"),
        .target(
            name: "LuigiC",
            dependencies: ["LuigiCore", "LuigiStorage", "LuigiSimulation", "LuigiClient", "LuigiWire", "CLuigi"],
            exclude: ["exports.map"]
        ),
        .executableTarget(
            name: "luigi-geo-demo",
            dependencies: ["LuigiCore", "LuigiSimulation"],
            path: "examples/swift/geo-demo"
        ),
        .executableTarget(
            name: "luigi-watermark-example",
            dependencies: ["LuigiCore", "LuigiSimulation"],
            path: "examples/swift/watermark"
        ),
        .executableTarget(
            name: "luigi-watermark-sim",
            dependencies: ["LuigiCore", "LuigiSimulation"],
            path: "benchmarks/watermark"
        ),
        .executableTarget(
            name: "luigi-raft-bench",
            dependencies: ["LuigiCore", "LuigiHost", "LuigiStorage"],
            path: "benchmarks/raft"
        ),
        .executableTarget(
            name: "luigi-node-bench",
            dependencies: ["LuigiClient", "LuigiLocalCluster", "LuigiWire", "LuigiAlgebraic"],
            path: "benchmarks/node"
        ),
        .executableTarget(
            name: "luigi-tablelog-bench",
            dependencies: ["LuigiCore", "LuigiSimulation", "LuigiStorage"],
            path: "benchmarks/tablelog"
        ),
        .testTarget(
            name: "LuigiCoreTests",
            dependencies: ["LuigiCore", "LuigiBase", "LuigiAlgebraic", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "LuigiStorageTests",
            dependencies: ["LuigiCore", "LuigiStorage"]
        ),
        .testTarget(
            name: "LuigiRaftTests",
            dependencies: ["LuigiCore", "LuigiAlgebraic", "LuigiReplicaRaft", "LuigiHost", "LuigiStorage", "LuigiSimulation"]
        ),
        .testTarget(
            name: "LuigiSimulationTests",
            dependencies: ["LuigiCore", "LuigiSimulation", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        // Fuzz targets (fuzz/README.md): run by libFuzzer in fuzz/ (`make fuzz`), replayed over the corpus by the test.
        .target(name: "LuigiFuzzTargets", dependencies: ["LuigiCore", "LuigiStorage", "LuigiHost", "LuigiWire"], path: "fuzz/Targets"),
        .testTarget(name: "LuigiFuzzReplayTests", dependencies: ["LuigiFuzzTargets"]),
        // The wire (frames, handshake, client messages) and the session table.
        .testTarget(name: "LuigiWireTests", dependencies: ["LuigiWire", "LuigiHost", "LuigiCore"]),
        // Nodes over real sockets: in-process clusters on ephemeral ports, and luigi-node processes.
        .testTarget(
            name: "LuigiNodeTests", dependencies: ["LuigiNode", "LuigiClient", "LuigiLocalCluster", "LuigiWire", "LuigiCore"]),
    ]
)
