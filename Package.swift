// swift-tools-version:6.1
// Proxenos: a network-booted Xen dom0 appliance. One multi-call executable
// (`proxenos`) carries every dom0 program; the libraries below it are small
// and layered: C shims → OS wrappers → pure protocol code → daemons.
import PackageDescription

let systemPackage: Target.Dependency = .product(name: "SystemPackage", package: "swift-system")

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
        .systemLibrary(name: "CXen", pkgConfig: "xencontrol", providers: [.apt(["libxen-dev"])]),
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
        ),
        // blkback's I/O engine.
        .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        // The one importer of CURing (liburing's io_uring.h and swift-system's
        // must not meet in one module).
        .target(name: "Uring", dependencies: ["CURing"]),
        .systemLibrary(
            name: "CNftables",
            pkgConfig: "libnftables",
            providers: [.apt(["libnftables-dev"])]
        ),

        // MARK: OS wrappers
        .target(name: "LinuxSystem", dependencies: ["CLinux", systemPackage]),
        // TAP devices with virtio headers and offloads, and packet I/O on them.
        .target(name: "TapDevice", dependencies: ["CLinux", "LinuxSystem", systemPackage]),

        // MARK: pure protocol and format code, with their I/O
        .target(name: "XenStore", dependencies: ["CLinux", "LinuxSystem", systemPackage]),
        .target(
            name: "XenBus",
            dependencies: [systemPackage, .product(name: "Logging", package: "swift-log")]
        ),
        // The data-path runtime: one worker loop (thread, epoll, its own
        // event channel handle) for every backend, and ring journals on /run.
        .target(
            name: "DataPath", dependencies: ["XenBus", "CLinux", "LinuxSystem", systemPackage]),
        // The echo ring: the smallest complete backend, the template for the
        // others and the selftest's subject.
        .target(name: "EchoBackend", dependencies: ["DataPath", "XenBus", "LinuxSystem"]),
        // netback's protocol: netif messages, TX slots gathered into packets,
        // received packets planned into posted buffers (pure).
        .target(name: "NetBackend", dependencies: ["XenBus"]),
        // consoled: every guest's console ring on one DataPath worker, its
        // logs, and the clients attached over its socket; xm's client too.
        .target(
            name: "Consoled",
            dependencies: [
                "DataPath", "XenBus", "CLinux", "CXen", "LinuxSystem", systemPackage,
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // blkback: io/blkif.h requests validated from private copies, executed
        // in batches against a file or block device.
        .target(
            name: "BlockBackend",
            dependencies: [
                "DataPath", "XenBus", "CLinux", "Uring", "LinuxSystem", systemPackage,
                .product(name: "Logging", package: "swift-log"),
            ]),
        // netback: a vif's queues on the data-path runtime (TX and RX rings,
        // batched grant copy, the TAP) and its xenbus driver.
        .target(
            name: "VifBackend",
            dependencies: [
                "NetBackend", "DataPath", "XenBus", "TapDevice", "NetConf", systemPackage,
            ]
        ),
        .target(
            name: "XenDevices",
            dependencies: ["XenBus", "XenStore", "CXen", "LinuxSystem", systemPackage]),
        // S-expressions: one value type, parser and writer for xend-config.sxp,
        // xend's socket and save files, and xm's printed configs.
        .target(name: "SXP"),
        .target(name: "DomainConfig", dependencies: ["SXP", systemPackage]),
        .target(
            name: "NetConf",
            dependencies: ["CNetlink", "CNftables", "LinuxSystem", "SXP", systemPackage]
        ),

        // Provisioning's pure parts: the bundle's tar reader and layout, the
        // fetch URL and the HTTP/1.1 response parser.
        .target(name: "Provisioning"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // Provisioning's I/O: the fetch over TCP or TLS (OpenSSL), staging
        // and install, one attempt's outcome.
        .target(name: "Provisioner", dependencies: ["Provisioning", "COpenSSL", "CLinux", "LinuxSystem"]),

        // MARK: test support (never linked into the executable)
        .target(name: "InMemoryXenStore", dependencies: ["XenStore"]),
        .target(name: "XenBusTesting", dependencies: ["XenBus", systemPackage]),
        .target(name: "SeedConfigs"),
        // Xen's own io/ring.h macros, compiled, for byte-for-byte ring checks.
        .target(name: "CRingReference", path: "Tests/CRingReference"),
        // Counts a thread's heap allocations (interposes malloc in the test
        // binary), for the no-allocation checks of the data path.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),

        // MARK: daemons and programs
        .target(name: "Init", dependencies: ["CLinux", "LinuxSystem", "XenStore", systemPackage]),

        // `proxenos selftest`: the backend runtime on the real Xen.
        .target(
            name: "SelfTest",
            dependencies: [
                "DataPath", "EchoBackend", "LinuxSystem", "XenBus", "XenDevices", "XenStore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The SSH service: host keys, fingerprints and authorized_keys checks
        // around Debian's dropbear, which it becomes.
        .target(name: "SecureShell", dependencies: ["LinuxSystem", systemPackage]),

        // MARK: boot stub (pure parts; bootstub/bootstub.mk also builds them for i686)
        .target(name: "BootStubCore"),

        // MARK: toolstack: xend and xm
        .target(
            name: "Toolstack",
            dependencies: [
                "CXen", "CLinux", "LinuxSystem", "DomainConfig", "SXP", "XenStore", systemPackage,
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: front-ends
        .target(
            name: "Commands",
            dependencies: [
                "LinuxSystem", "Init", "XenStore", "NetConf", "Toolstack", "DomainConfig", "SelfTest",
                "BlockBackend", "Consoled", "DataPath", "VifBackend", "XenBus", "XenDevices", "CLinux",
                "SecureShell",
                "Provisioner", "Provisioning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "proxenos", dependencies: ["Commands"]),

        // MARK: tests
        .testTarget(name: "InitTests", dependencies: ["Init", "InMemoryXenStore"]),
        .testTarget(name: "DomainConfigTests", dependencies: ["DomainConfig", "SeedConfigs"]),
        .testTarget(name: "SXPTests", dependencies: ["SXP"]),
        .testTarget(
            name: "XenStoreTests",
            dependencies: ["XenStore", "InMemoryXenStore", "Commands"]
        ),
        .testTarget(name: "NetConfTests", dependencies: ["NetConf", "CLinux", "InMemoryXenStore"]),
        .testTarget(
            name: "XenBusTests",
            dependencies: ["XenBus", "XenBusTesting", "CRingReference", "CAllocationCounter"]
        ),
        .testTarget(
            name: "NetBackendTests", dependencies: ["NetBackend", "XenBus", "CNetifReference"]),
        .target(name: "CNetifReference", path: "Tests/CNetifReference"),
        .testTarget(
            name: "DataPathTests",
            dependencies: [
                "DataPath", "EchoBackend", "XenBus", "XenBusTesting", "LinuxSystem", systemPackage,
            ]
        ),
        .testTarget(
            name: "XenDevicesTests",
            dependencies: [
                "XenDevices", "XenBus", "XenStore", "InMemoryXenStore", "CXen",
                "CAllocationCounter",
            ]
        ),
        .testTarget(
            name: "ConsoledTests",
            dependencies: [
                "Consoled", "DataPath", "XenBus", "XenBusTesting", "LinuxSystem", systemPackage,
            ]
        ),
        .testTarget(
            name: "BlockBackendTests",
            dependencies: [
                "BlockBackend", "DataPath", "XenBus", "XenBusTesting", "CRingReference",
                "LinuxSystem", systemPackage,
            ]
        ),
        .testTarget(
            name: "VifBackendTests",
            dependencies: [
                "VifBackend", "NetBackend", "XenBus", "XenBusTesting", "TapDevice", "NetConf",
                "NetnsTesting", systemPackage,
            ]
        ),
        // Network namespaces of a test's own, and threads inside them.
        .target(name: "NetnsTesting", dependencies: ["CLinux"], path: "Tests/NetnsTesting"),
        .testTarget(
            name: "TapDeviceTests",
            dependencies: ["TapDevice", "NetBackend", "NetnsTesting", "LinuxSystem", systemPackage]),
        .testTarget(name: "BootStubCoreTests", dependencies: ["BootStubCore"]),
        .testTarget(name: "SecureShellTests", dependencies: ["SecureShell", "LinuxSystem"]),
        // One target for both modules, so the tests' tar builder exists once.
        .testTarget(name: "ProvisioningTests", dependencies: ["Provisioning", "Provisioner"]),
        .testTarget(
            name: "ToolstackTests",
            dependencies: [
                "Toolstack", "DomainConfig", "XenStore", "InMemoryXenStore", "SeedConfigs",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
