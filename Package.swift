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

        // MARK: Xen plumbing: pure protocol code, Linux devices, test fakes
        .target(
            name: "XenBus",
            dependencies: [
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "XenDevices",
            dependencies: [
                "XenBus",
                "CXen",
                "LinuxSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "XenBusTesting",
            dependencies: [
                "XenBus",
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

        // MARK: tests

        // Xen's own io/ring.h macros, compiled, for byte-for-byte ring checks.
        .target(name: "CRingReference", path: "Tests/CRingReference"),
        .testTarget(
            name: "XenBusTests",
            dependencies: ["XenBus", "XenBusTesting", "CRingReference"]
        ),
        .testTarget(name: "XenDevicesTests", dependencies: ["XenDevices", "XenBus", "CXen"]),
    ],
    swiftLanguageModes: [.v6]
)
