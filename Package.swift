// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "ShareBroker",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sharebroker", targets: ["sharebroker"]),
        .library(name: "BrokerCore", targets: ["BrokerCore"]),
        .library(name: "BrokerPayload", targets: ["BrokerPayload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // System libraries (Debian: libcurl4-openssl-dev, libjson-c-dev).
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CJSONC", path: "Sources/CJSONC", pkgConfig: "json-c",
                       providers: [.apt(["libjson-c-dev"])]),

        // Field paths and values shared by the policy engine and the payload codecs.
        .target(name: "BrokerFields", swiftSettings: strict),
        // Pure values and decisions: no I/O (json-c parsing is pure computation).
        .target(name: "BrokerCore",
                dependencies: ["BrokerFields", "BrokerPayload",
                               .product(name: "Yams", package: "Yams"),
                               .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict),
        // Bodies and query strings: strict parse, flatten, strip, re-serialize (json-c).
        .target(name: "BrokerPayload", dependencies: ["BrokerFields", "CJSONC"], swiftSettings: strict),
        // libcurl upstream client (curl multi, non-blocking).
        .target(name: "BrokerCurl",
                dependencies: ["CCurl", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // Protocols for the edges (share log, grant store), their records, the config file, policy from disk.
        .target(name: "BrokerService",
                dependencies: ["BrokerCore", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // Provider credentials: token caches, request signing, injection.
        .target(name: "BrokerCredentials",
                dependencies: ["BrokerCore", "BrokerCurl", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "_CryptoExtras", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The share pipeline and the HTTP gateway (Hummingbird): proxy, decisions, grants, operations.
        .target(name: "BrokerGateway",
                dependencies: ["BrokerService", "BrokerCredentials", "BrokerCurl",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "HummingbirdCore", package: "hummingbird"),
                               .product(name: "HTTPTypes", package: "swift-http-types"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The share log, subjects and grants in SQLite (GRDB): the embedded default.
        .target(name: "BrokerSQLite",
                dependencies: ["BrokerService", .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "GRDBSQLite", package: "GRDB.swift"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // Provider simulators: real loopback HTTP servers that check wire formats and credentials.
        .target(name: "BrokerTesting",
                dependencies: ["BrokerFields", .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "_CryptoExtras", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        .executableTarget(name: "sharebroker",
                          dependencies: ["BrokerCore", "BrokerPayload", "BrokerService", "BrokerGateway", "BrokerSQLite",
                                         "BrokerTesting", "BrokerCurl",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                          swiftSettings: strict),
        .executableTarget(name: "sharebroker-bench",
                          dependencies: ["BrokerCore", "BrokerPayload", "BrokerService", "BrokerSQLite", "BrokerGateway",
                                         "BrokerCurl", "BrokerTesting",
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                          path: "Benchmarks/sharebroker-bench",
                          swiftSettings: strict),

        .testTarget(name: "BrokerCoreTests", dependencies: ["BrokerCore", "BrokerPayload"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "BrokerPayloadTests", dependencies: ["BrokerPayload"], swiftSettings: strict),
        .testTarget(name: "BrokerCurlTests",
                    dependencies: ["BrokerCurl", .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                    swiftSettings: strict),
        .testTarget(name: "BrokerCredentialsTests",
                    dependencies: ["BrokerCredentials", .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: strict),
        .testTarget(name: "BrokerSQLiteTests",
                    dependencies: ["BrokerSQLite", .product(name: "GRDB", package: "GRDB.swift"),
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "BrokerTestingTests",
                    dependencies: ["BrokerTesting", .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "HTTPTypes", package: "swift-http-types")],
                    swiftSettings: strict),
        .testTarget(name: "BrokerServiceTests",
                    dependencies: ["BrokerService", .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: strict),
        .testTarget(name: "BrokerGatewayTests",
                    dependencies: ["BrokerGateway", "BrokerSQLite", "BrokerTesting", "BrokerCurl",
                                   .product(name: "GRDB", package: "GRDB.swift"),
                                   .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
                    swiftSettings: strict),
        .testTarget(name: "sharebrokerTests", dependencies: ["BrokerCore", "BrokerService", "BrokerTesting",
                                                          .product(name: "Logging", package: "swift-log")],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
    ]
)
