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

        // MARK: OS wrappers
        .target(
            name: "LinuxSystem",
            dependencies: [
                "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // MARK: programs
        .target(
            name: "Commands",
            dependencies: [
                "LinuxSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "proxenos", dependencies: ["Commands"]),

        // MARK: boot stub (pure parts; bootstub/bootstub.mk also builds them for i686)
        .target(name: "BootStubCore"),

        // MARK: tests
        .testTarget(name: "BootStubCoreTests", dependencies: ["BootStubCore"]),
    ],
    swiftLanguageModes: [.v6]
)
