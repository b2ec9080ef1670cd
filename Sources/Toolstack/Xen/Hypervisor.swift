import SystemPackage

/// What a new domain gets from the hypervisor before its image is built:
/// identity, VCPUs and memory limits.
public struct DomainCreation: Sendable, Equatable {
    /// The 16-byte domain handle (xend's UUID).
    public var handle: [UInt8]
    public var vcpus: Int
    /// Physical CPUs the VCPUs may run on; nil lets Xen choose.
    public var cpus: [Int]?
    /// The most memory the guest may balloon up to, in KiB.
    public var maxMemoryKiB: UInt64
    /// True when the domain is restored from a save stream: its CPUID
    /// policy then comes from the stream.
    public var restoring: Bool

    public init(
        handle: [UInt8], vcpus: Int, cpus: [Int]? = nil, maxMemoryKiB: UInt64,
        restoring: Bool = false
    ) {
        self.handle = handle
        self.vcpus = vcpus
        self.cpus = cpus
        self.maxMemoryKiB = maxMemoryKiB
        self.restoring = restoring
    }
}

/// A created, still empty and paused domain, with the unbound event
/// channels its xenstore and console rings will use (remote end dom0).
public struct CreatedDomain: Sendable, Equatable {
    public var domid: UInt32
    public var storePort: UInt32
    public var consolePort: UInt32

    public init(domid: UInt32, storePort: UInt32, consolePort: UInt32) {
        self.domid = domid
        self.storePort = storePort
        self.consolePort = consolePort
    }
}

/// The PV kernel image and how to boot it.
public struct PVImage: Sendable, Equatable {
    public var kernel: String
    public var ramdisk: String?
    public var cmdline: String
    public var memoryMiB: Int
    public var vcpus: Int

    public init(kernel: String, ramdisk: String?, cmdline: String, memoryMiB: Int, vcpus: Int) {
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
    }
}

/// Where the guest's xenstore and console rings live (machine frame
/// numbers, which is what xenstored and xenconsoled map for PV guests).
public struct RingPages: Sendable, Equatable {
    public var storeMFN: UInt64
    public var consoleMFN: UInt64

    public init(storeMFN: UInt64, consoleMFN: UInt64) {
        self.storeMFN = storeMFN
        self.consoleMFN = consoleMFN
    }
}

/// The host as `xm info` shows it.
public struct HostInfo: Sendable, Equatable {
    public var cpus: Int
    public var nodes: Int
    public var coresPerSocket: Int
    public var threadsPerCore: Int
    public var cpuMHz: Int
    public var hardwareCaps: [UInt32]
    public var totalMemoryMiB: Int
    public var freeMemoryMiB: Int
    public var xenMajor: Int
    public var xenMinor: Int
    public var xenExtra: String
    public var xenCaps: String
    public var xenChangeset: String
    public var compiler: String
    public var compiledBy: String
    public var compileDomain: String
    public var compileDate: String

    public init(
        cpus: Int = 0, nodes: Int = 0, coresPerSocket: Int = 0, threadsPerCore: Int = 0,
        cpuMHz: Int = 0, hardwareCaps: [UInt32] = [], totalMemoryMiB: Int = 0,
        freeMemoryMiB: Int = 0, xenMajor: Int = 0, xenMinor: Int = 0, xenExtra: String = "",
        xenCaps: String = "", xenChangeset: String = "", compiler: String = "",
        compiledBy: String = "", compileDomain: String = "", compileDate: String = ""
    ) {
        self.cpus = cpus
        self.nodes = nodes
        self.coresPerSocket = coresPerSocket
        self.threadsPerCore = threadsPerCore
        self.cpuMHz = cpuMHz
        self.hardwareCaps = hardwareCaps
        self.totalMemoryMiB = totalMemoryMiB
        self.freeMemoryMiB = freeMemoryMiB
        self.xenMajor = xenMajor
        self.xenMinor = xenMinor
        self.xenExtra = xenExtra
        self.xenCaps = xenCaps
        self.xenChangeset = xenChangeset
        self.compiler = compiler
        self.compiledBy = compiledBy
        self.compileDomain = compileDomain
        self.compileDate = compileDate
    }
}

/// The hypervisor operations xend needs. `XenHypervisor` is the real one
/// (libxenctrl + libxenguest); tests use a fake.
///
/// `buildPV`, `save` and `restore` block for seconds: callers run them off
/// the cooperative thread pool (see ``offload(_:)``).
public protocol Hypervisor: Sendable {
    /// Every domain, dom0 included, in domid order.
    func listDomains() throws(ToolstackError) -> [DomainInfo]
    /// Creates an empty paused PV domain with its limits and two unbound
    /// event channels. On failure nothing is left behind.
    func createDomain(_ creation: DomainCreation) throws(ToolstackError) -> CreatedDomain
    /// Loads the kernel and ramdisk into a created domain (libxenguest's
    /// xc_dom builder) and seeds the grant table for the two rings.
    func buildPV(_ domain: CreatedDomain, image: PVImage) throws(ToolstackError) -> RingPages
    func pause(_ domid: UInt32) throws(ToolstackError)
    func unpause(_ domid: UInt32) throws(ToolstackError)
    /// Destroys the domain (its memory goes back to Xen).
    func destroy(_ domid: UInt32) throws(ToolstackError)
    /// Cancels a suspend: the guest continues where it stopped.
    func resume(_ domid: UInt32) throws(ToolstackError)
    /// Writes libxenguest's save stream of a domain to `fd`; `suspend` is
    /// called once to stop the guest and returns whether it did.
    func save(_ domid: UInt32, to fd: FileDescriptor, suspend: @escaping @Sendable () -> Bool)
        throws(ToolstackError)
    /// Reads a save stream into a created domain.
    func restore(_ domain: CreatedDomain, from fd: FileDescriptor) throws(ToolstackError)
        -> RingPages
    func hostInfo() throws(ToolstackError) -> HostInfo
    /// Xen's console ring (`xm dmesg`), optionally clearing it.
    func consoleRing(clear: Bool) throws(ToolstackError) -> String
}

extension Hypervisor {
    /// The domain with this id, or nil when the hypervisor has none.
    public func domain(_ domid: UInt32) throws(ToolstackError) -> DomainInfo? {
        try listDomains().first { $0.domid == domid }
    }
}
