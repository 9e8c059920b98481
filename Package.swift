// swift-tools-version:6.0
import PackageDescription

/// Strict settings shared by every Swift target.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// For the data-path modules (RingfenceIO, RingfenceBroker): in release builds, no run-time
/// exclusivity checks. Their state is confined to one serial loop, and a profile of the broker
/// fanning out 64-byte messages put 12 % of its CPU in those checks (swift_beginAccess and its
/// thread-local access set). Debug builds, which the tests run, keep every check.
let dataPath: [SwiftSetting] = strict + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Ringfence",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "proxyd", targets: ["proxyd"]),
        .executable(name: "proxyctl", targets: ["proxyctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries, behind module maps only: no logic lives here.
        .systemLibrary(
            name: "CNFTables",
            pkgConfig: "libnftables",
            providers: [.apt(["libnftables-dev"])]
        ),
        // libnftnl and libmnl: nf_tables netlink messages, for set updates nft's language makes slow.
        .systemLibrary(
            name: "CNFTNetlink",
            pkgConfig: "libnftnl",
            providers: [.apt(["libnftnl-dev", "libmnl-dev"])]
        ),
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),

        // Pure value types: IP addresses, CIDRs, interval sets.
        .target(name: "RingfenceAddresses", swiftSettings: strict),
        // The status and report value types the data plane, the control server and proxyctl
        // share, and the enums of their wire values (cut and denial reasons, error codes, states).
        .target(name: "RingfenceStatus", swiftSettings: strict),
        // The TOML policy: parse, validate, report every problem with its position.
        .target(
            name: "RingfencePolicy",
            dependencies: ["RingfenceAddresses", "TOMLKit"],
            swiftSettings: strict
        ),
        // The kernel fence: render nftables rules (pure) and apply them through libnftables, set
        // elements through libnftnl.
        .target(
            name: "RingfenceFirewall",
            dependencies: [
                "RingfencePolicy", "RingfenceAddresses", "RingfenceSockets", "CNFTables", "CNFTNetlink",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // Linux calls glibc declares only under _GNU_SOURCE (accept4, splice, pipe2): prefixed wrappers.
        .target(name: "CRingfenceLinux"),
        // The one syscall wrapper (no Dispatch): sockets, pipes, addresses, the owning `Socket`,
        // Unix sockets and the socket killer. What the control client and the event loop share.
        .target(
            name: "RingfenceSockets",
            dependencies: [
                "CRingfenceLinux", "RingfenceAddresses", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: dataPath
        ),
        // The TCP listeners of proxyd's network namespace: sock_diag listings, their owners from
        // /proc, and a watch on the listen tracepoint (or polling) that reports them as they come and go.
        .target(
            name: "RingfenceListeners",
            dependencies: [
                "RingfenceSockets", "RingfenceAddresses", "CRingfenceLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The event loop on Dispatch: channels, connections, listeners, busy polling.
        .target(
            name: "RingfenceIO",
            dependencies: [
                "RingfenceSockets", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: dataPath
        ),
        // PyTorch TCPStore's wire protocol as a pure, incremental gate (no I/O).
        .target(name: "RingfenceTCPStore", swiftSettings: strict),
        // Who may connect to a guard: allowlist, caps, accept rate; refusals logged without flooding.
        .target(
            name: "RingfenceAdmission",
            dependencies: [
                "RingfenceAddresses", "RingfenceSockets", "RingfenceStatus", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // ZMTP 3.0/3.1 as a pure codec (no I/O): greeting, NULL handshake, frames, commands, subscriptions.
        .target(name: "RingfenceZMTP", swiftSettings: strict),
        // The one front end of every guard that carries traffic: listeners, admission, the redirect
        // check, the deadline sweep, update in place; the `Guard` protocol the daemon holds.
        .target(
            name: "RingfenceGuard",
            dependencies: [
                "RingfenceAddresses", "RingfenceAdmission", "RingfenceIO", "RingfenceSockets", "RingfenceStatus",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The `kind = "tcp"` guard: transparent relaying, the TCPStore gate.
        .target(
            name: "RingfenceRelay",
            dependencies: [
                "RingfenceGuard", "RingfenceIO", "RingfenceSockets", "RingfenceTCPStore", "RingfenceAddresses",
                "RingfenceAdmission", "RingfenceStatus", .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The `kind = "zmq-xpub"` guard: ZMTP subscribers in, one XSUB link to the engine's XPUB,
        // fan-out with per-subscriber high-water marks.
        .target(
            name: "RingfenceBroker",
            dependencies: [
                "RingfenceGuard", "RingfenceIO", "RingfenceSockets", "RingfenceZMTP", "RingfenceAddresses",
                "RingfenceAdmission", "RingfenceStatus", .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: dataPath
        ),
        // Discovery: which listeners of this host a `discover = true` guard brokers, and the
        // probe that classifies a listener without disturbing it.
        .target(
            name: "RingfenceDiscovery",
            dependencies: [
                "RingfenceSockets", "RingfenceZMTP", "RingfenceAddresses", "RingfenceStatus",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The control protocol: requests, replies, errors, their JSON codec, and the client (on
        // RingfenceSockets only: proxyctl does not link the event loop).
        .target(
            name: "RingfenceControl",
            dependencies: [
                "RingfenceStatus", "RingfenceSockets", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The control plane's servers: the control socket and the Prometheus metrics endpoint
        // (swift-metrics counters and gauges in a swift-prometheus registry).
        .target(
            name: "RingfenceControlServer",
            dependencies: [
                "RingfenceControl", "RingfenceStatus", "RingfenceIO", "RingfenceSockets",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // Peer names (`dns:NAME`, `lws:group`): the system resolver behind a thin wrapper, the DNS
        // answer decoder for TTLs, and the table of what each name resolves to.
        .target(
            name: "RingfenceNames",
            dependencies: ["CRingfenceLinux", "RingfenceAddresses", "RingfencePolicy", "RingfenceSockets"],
            swiftSettings: strict
        ),
        // The daemon's life cycle: load, apply, reload on SIGHUP, shut down.
        .target(
            name: "RingfenceDaemon",
            dependencies: [
                "RingfencePolicy", "RingfenceFirewall", "RingfenceGuard", "RingfenceRelay", "RingfenceBroker",
                "RingfenceAdmission", "RingfenceTCPStore", "RingfenceAddresses", "RingfenceIO", "RingfenceSockets",
                "RingfenceControl", "RingfenceControlServer", "RingfenceStatus", "RingfenceDiscovery", "RingfenceListeners",
                "RingfenceNames",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "proxyd",
            dependencies: [
                "RingfenceDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "proxyctl",
            dependencies: [
                "RingfenceStatus", "RingfenceControl", "RingfencePolicy", "RingfenceFirewall", "RingfenceAddresses",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PolicyBenchmark",
            dependencies: ["RingfencePolicy", "RingfenceFirewall", "RingfenceAddresses"],
            path: "Benchmarks/PolicyBenchmark",
            swiftSettings: strict
        ),

        // Fuzz targets (Fuzz/): each replays the inputs named on its command line through the function
        // libFuzzer calls; `make fuzz` builds them with -sanitize=fuzzer,address -D FUZZING instead.
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver"], path: "Fuzz/FuzzSupport", swiftSettings: strict),
        .executableTarget(
            name: "FuzzZMTP", dependencies: ["FuzzSupport", "RingfenceZMTP"], path: "Fuzz/FuzzZMTP", swiftSettings: strict),
        .executableTarget(
            name: "FuzzTCPStoreGate", dependencies: ["FuzzSupport", "RingfenceTCPStore"], path: "Fuzz/FuzzTCPStoreGate",
            swiftSettings: strict),
        .executableTarget(
            name: "FuzzPolicy", dependencies: ["FuzzSupport", "RingfencePolicy"], path: "Fuzz/FuzzPolicy", swiftSettings: strict),
        .executableTarget(
            name: "FuzzMetricsRequest", dependencies: ["FuzzSupport", "RingfenceControlServer"], path: "Fuzz/FuzzMetricsRequest",
            swiftSettings: strict),
        .executableTarget(
            name: "FuzzControlRequest", dependencies: ["FuzzSupport", "RingfenceControl"], path: "Fuzz/FuzzControlRequest",
            swiftSettings: strict),

        // What the unit test targets share (a seeded random generator, loopback clients, a libzmq
        // socket driven through its C API); no module of Sources uses it.
        .target(
            name: "RingfenceTestSupport",
            dependencies: ["CZeroMQ"],
            path: "Tests/RingfenceTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceAddressesTests",
            dependencies: ["RingfenceAddresses"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceNamesTests",
            dependencies: ["RingfenceNames", "RingfencePolicy", "RingfenceAddresses"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfencePolicyTests",
            dependencies: ["RingfencePolicy", "RingfenceAddresses"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceFirewallTests",
            dependencies: ["RingfenceFirewall", "RingfencePolicy", "RingfenceAddresses"],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceTCPStoreTests",
            dependencies: ["RingfenceTCPStore", "RingfenceTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceDaemonTests",
            dependencies: [
                "RingfenceDaemon", "RingfencePolicy", "RingfenceGuard", "RingfenceStatus", "RingfenceAddresses",
                "RingfenceAdmission", "RingfenceIO", "RingfenceControl", "RingfenceRelay", "RingfenceSockets",
                "RingfenceTCPStore", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceAdmissionTests",
            dependencies: ["RingfenceAdmission", "RingfenceAddresses"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceGuardTests",
            dependencies: [
                "RingfenceGuard", "RingfenceAdmission", "RingfenceAddresses", "RingfenceIO", "RingfenceSockets",
                "RingfenceStatus", "RingfenceTestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceRelayTests",
            dependencies: [
                "RingfenceRelay", "RingfenceDaemon", "RingfencePolicy", "RingfenceGuard", "RingfenceAdmission",
                "RingfenceAddresses", "RingfenceIO", "RingfenceSockets", "RingfenceStatus", "RingfenceTCPStore",
                "RingfenceTestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceBrokerTests",
            dependencies: [
                "RingfenceBroker", "RingfenceZMTP", "RingfenceIO", "RingfenceSockets", "RingfenceGuard",
                "RingfenceAdmission", "RingfenceAddresses", "RingfenceStatus", .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                // The differential test drives libzmq as the peer.
                "CZeroMQ", "RingfenceTestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceDiscoveryTests",
            dependencies: [
                "RingfenceDiscovery", "RingfenceSockets", "RingfenceAddresses", "RingfenceTestSupport", "CZeroMQ",
                "RingfenceListeners", "RingfenceZMTP",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceZMTPTests",
            dependencies: ["RingfenceZMTP", "CZeroMQ", "RingfenceTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceControlTests",
            dependencies: ["RingfenceControl", "RingfenceStatus"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceControlServerTests",
            dependencies: [
                "RingfenceControlServer", "RingfenceControl", "RingfenceStatus", "RingfenceIO", "RingfenceSockets",
                "RingfenceAddresses", .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceSocketsTests",
            dependencies: [
                "RingfenceSockets", "RingfenceAddresses", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceIOTests",
            dependencies: [
                "RingfenceIO", "RingfenceSockets", "RingfenceAddresses", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RingfenceListenersTests",
            dependencies: ["RingfenceListeners", "RingfenceSockets", "RingfenceAddresses"],
            swiftSettings: strict
        ),
        // Proves that the system-library targets link against Debian's libraries.
        .testTarget(
            name: "CLibrariesTests",
            dependencies: ["CNFTables", "CZeroMQ"],
            swiftSettings: strict
        ),
    ]
)
