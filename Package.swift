// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "chill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kubectl-chill", targets: ["kubectl-chill"]),
        .executable(name: "chill-server", targets: ["ChillServer"]),
        .executable(name: "vllm-sim", targets: ["vllm-sim"]),
        .library(name: "Shared", targets: ["Shared"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // libcurl and libyaml from Debian's -dev packages; the headers add small
        // shims because curl_easy_setopt/getinfo are variadic.
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CYaml", path: "Sources/CYaml", pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]),
        .target(
            name: "Shared",
            dependencies: [
                "CCurl", "CYaml",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "kubectl-chill",
            dependencies: [
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "ChillServer",
            dependencies: [
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        // A simulator of vLLM's observable behaviour, for tests, benchmarks and the demo.
        .executableTarget(
            name: "vllm-sim",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // An in-process kube-apiserver look-alike for tests (HTTPS, client certs, tokens).
        .target(
            name: "KubeTestServer",
            dependencies: [
                "Shared",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]),
        // What more than one test target needs: the manual clock, bounded waits.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared", "KubeTestServer", "TestSupport"],
            exclude: ["Golden"]),
        .testTarget(
            name: "ChillServerTests",
            dependencies: [
                "ChillServer", "Shared", "KubeTestServer", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .testTarget(
            name: "KubectlChillTests",
            dependencies: ["kubectl-chill", "Shared", "KubeTestServer"],
            exclude: ["Golden"]),
    ]
)
