// swift-tools-version: 6.2
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency) and
/// explicit member imports.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let daemons: [(target: String, product: String, folder: String)] = [
    ("Collector", "collector", "Collector"),
    ("Hydration", "hydration", "Hydration"),
    ("Aggregator", "aggregator", "Aggregator"),
    ("Forwarder", "forwarder", "Forwarder"),
    ("HealthChecker", "health-checker", "HealthChecker"),
]

let runtimeDeps: [Target.Dependency] = [
    .product(name: "Crypto", package: "swift-crypto"),
    .product(name: "CompressNIO", package: "compress-nio"),
    .product(name: "HTTPTypes", package: "swift-http-types"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    "TributaryModels", "TributaryRedis", "TributaryPostgres", "TributaryHTTP", "TributaryRuntime",
    .product(name: "Logging", package: "swift-log"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "Configuration", package: "swift-configuration"),
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "Hummingbird", package: "hummingbird"),
]

var targets: [Target] = [
    // C libraries, through pkg-config with the Debian package that provides them.
    .systemLibrary(name: "CHiredis", path: "Shared/CHiredis", pkgConfig: "hiredis",
                   providers: [.apt(["libhiredis-dev"])]),
    .systemLibrary(name: "CLibpq", path: "Shared/CLibpq", pkgConfig: "libpq",
                   providers: [.apt(["libpq-dev"])]),
    .systemLibrary(name: "CCurl", path: "Shared/CCurl", pkgConfig: "libcurl",
                   providers: [.apt(["libcurl4-openssl-dev"])]),
    .systemLibrary(name: "CMaxMindDB", path: "Shared/CMaxMindDB", pkgConfig: "libmaxminddb",
                   providers: [.apt(["libmaxminddb-dev"])]),
    .systemLibrary(name: "CJemalloc", path: "Shared/CJemalloc", pkgConfig: "jemalloc",
                   providers: [.apt(["libjemalloc-dev"])]),

    .target(name: "TributaryModels", path: "Shared/Models", swiftSettings: swiftSettings),
    .target(
        name: "TributaryRedis",
        dependencies: [
            "CHiredis", "TributaryModels",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        path: "Shared/Redis", swiftSettings: swiftSettings),
    .target(
        name: "TributaryPostgres",
        dependencies: [
            "CLibpq",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        path: "Shared/Postgres", swiftSettings: swiftSettings),
    .target(
        name: "TributaryHTTP",
        dependencies: [
            "CCurl",
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Shared/HTTP", swiftSettings: swiftSettings),
    .target(
        name: "TributaryRuntime",
        dependencies: [
            "CJemalloc", "TributaryModels", "TributaryRedis", "TributaryPostgres",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
        ],
        path: "Shared/Runtime", swiftSettings: swiftSettings),
    .target(
        name: "TributaryTesting",
        dependencies: [
            "TributaryModels", "TributaryRedis", "TributaryPostgres", "TributaryRuntime",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Shared/Testing", swiftSettings: swiftSettings),

    // The end-to-end load generator and verifier (`make e2e`, the fault suite).
    .executableTarget(
        name: "tributary-load",
        dependencies: ["TributaryModels", "TributaryPostgres", "TributaryHTTP", "TributaryRuntime",
                       .product(name: "ArgumentParser", package: "swift-argument-parser"),
                       .product(name: "NIOPosix", package: "swift-nio")],
        path: "Tests/Load", swiftSettings: swiftSettings),
    // A consumer process the integration tests kill with SIGKILL mid-item.
    .executableTarget(
        name: "tributary-queue-fixture",
        dependencies: ["TributaryRedis", "TributaryPostgres", "TributaryTesting", "TributaryRuntime",
                       .product(name: "NIOPosix", package: "swift-nio")],
        path: "Tests/Fixtures/QueueFixture", swiftSettings: swiftSettings),

    .testTarget(
        name: "UnitTests",
        dependencies: ["TributaryModels", "TributaryRedis", "TributaryPostgres", "TributaryRuntime",
                       "TributaryTesting", "Collector", "Hydration", "Aggregator", "Forwarder", "HealthChecker", "TributaryHTTP",
                       .product(name: "Configuration", package: "swift-configuration"),
                       .product(name: "Logging", package: "swift-log")],
        path: "Tests/UnitTests", swiftSettings: swiftSettings),
    .testTarget(
        name: "IntegrationTests",
        dependencies: ["TributaryModels", "TributaryRedis", "TributaryPostgres", "TributaryHTTP",
                       "TributaryRuntime", "TributaryTesting",
                       "Collector", "Hydration", "Aggregator", "Forwarder", "HealthChecker",
                       .product(name: "Hummingbird", package: "hummingbird"),
                       .product(name: "HTTPTypes", package: "swift-http-types"),
                       .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                       .product(name: "Configuration", package: "swift-configuration"),
                       .product(name: "Logging", package: "swift-log")],
        path: "Tests/IntegrationTests", swiftSettings: swiftSettings),
]

/// Dependencies only one daemon needs.
let daemonDeps: [String: [Target.Dependency]] = [
    "Hydration": ["CMaxMindDB", .product(name: "Yams", package: "Yams")],
]

/// Files a daemon carries inside its binary (no resource bundle to install beside it).
let daemonResources: [String: [Resource]] = [
    "Collector": [.embedInCode("Tracker/tributary.js")],
]

for daemon in daemons {
    targets.append(.target(
        name: daemon.target, dependencies: runtimeDeps + (daemonDeps[daemon.target] ?? []),
        path: "Services/\(daemon.folder)", exclude: ["Main"], resources: daemonResources[daemon.target],
        swiftSettings: swiftSettings))
    targets.append(.executableTarget(
        name: daemon.product,
        dependencies: [.target(name: daemon.target),
                       .product(name: "ArgumentParser", package: "swift-argument-parser")],
        path: "Services/\(daemon.folder)/Main", swiftSettings: swiftSettings))
}

let package = Package(
    name: "Tributary",
    platforms: [.macOS(.v15)],
    products: daemons.map { .executable(name: $0.product, targets: [$0.product]) }
        + [.executable(name: "tributary-load", targets: ["tributary-load"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["JSON", "YAML"]),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)
