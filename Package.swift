// swift-tools-version:6.1
// Proxenos: a network-booted Xen dom0 appliance. One multi-call executable
// (`proxenos`) carries every dom0 program; the libraries below it are small
// and layered: C shims → OS wrappers → pure protocol code → daemons.
import PackageDescription

let package = Package(
    name: "Proxenos",
    products: [
        .executable(name: "proxenos", targets: ["proxenos"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // MARK: C shims and system libraries
        .target(name: "CLinux"),

        // MARK: Xen plumbing (XenBus, XenDevices, CXen)
        .systemLibrary(
            name: "CXen",
            pkgConfig: "xencontrol",
            providers: [.apt(["libxen-dev"])]
        ),

        // MARK: OS wrappers
        .target(
            name: "LinuxSystem",
            dependencies: [
                "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // MARK: pure protocol and format code
        .target(
            name: "DomainConfig",
            dependencies: [
                .product(name: "SystemPackage", package: "swift-system")
            ]
        ),

        // MARK: daemons and programs
        .target(
            name: "Init",
            dependencies: [
                "CLinux", "LinuxSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // MARK: toolstack: xend and xm
        .target(
            name: "Toolstack",
            dependencies: [
                "CXen", "CLinux", "LinuxSystem", "DomainConfig", "XenStore",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: front-ends
        .target(
            name: "Commands",
            dependencies: [
                "LinuxSystem", "Init", "Toolstack", "DomainConfig", "XenStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "proxenos", dependencies: ["Commands"]),

        // MARK: tests
        .testTarget(name: "InitTests", dependencies: ["Init"]),
        .testTarget(name: "DomainConfigTests", dependencies: ["DomainConfig"]),
        .testTarget(
            name: "ToolstackTests",
            dependencies: ["Toolstack", "DomainConfig", "XenStore", "InMemoryXenStore"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
