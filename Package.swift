// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "chill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kubectl-chill", targets: ["kubectl-chill"]),
        .executable(name: "chill-server", targets: ["ChillServer"]),
        .library(name: "Shared", targets: ["Shared"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
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
            ]),
        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared", "KubeTestServer"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "KubectlChillTests",
            dependencies: ["kubectl-chill", "Shared", "KubeTestServer"]),
    ]
)
