import CXen
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// An open libxenctrl handle. Not safe for concurrent calls on its own:
/// `XenHypervisor` serialises the quick calls through a lock and opens a
/// private handle for every long one (build, save, restore).
struct XenControlHandle: ~Copyable {
    let xch: OpaquePointer

    init() throws(ToolstackError) {
        // NULL loggers: libxenctrl logs errors to stderr (xend's log file).
        guard let xch = xc_interface_open(nil, nil, 0) else {
            throw .hypervisor(
                operation: "opening /dev/xen/privcmd (xc_interface_open)",
                errno: Errno(rawValue: errno), detail: "is this a Xen dom0?")
        }
        self.xch = xch
    }

    deinit {
        xc_interface_close(xch)
    }

    /// libxenctrl's description of its last failure.
    var lastError: String {
        guard let error = xc_get_last_error(xch) else { return "" }
        return withUnsafeBytes(of: error.pointee.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Runs a libxenctrl call returning 0 or a negative value and errno.
    func check(_ operation: @autoclosure () -> String, _ result: Int32) throws(ToolstackError) {
        guard result >= 0 else {
            let code = Errno(rawValue: errno)
            throw .hypervisor(operation: operation(), errno: code, detail: lastError)
        }
    }
}

/// The hypervisor through Debian's libxenctrl and libxenguest (Xen 4.17).
public final class XenHypervisor: Hypervisor {
    private let control: Mutex<XenControlHandle>

    /// Opens /dev/xen/privcmd; throws when not running in a Xen dom0.
    public init() throws(ToolstackError) {
        control = Mutex(try XenControlHandle())
    }

    /// Xen's DOMID_INVALID: lets xc_domain_create pick the next free id.
    static let domidInvalid: UInt32 = 0x7FF4
    /// libxl's LIBXL_MAXMEM_CONSTANT: slack above maxmem for the hypervisor's
    /// own per-domain pages.
    static let maxmemSlackKiB: UInt64 = 1024
    /// libxl's default event channel limit for a guest.
    static let maxEventChannelPort: UInt32 = 1023

    // MARK: listing

    public func listDomains() throws(ToolstackError) -> [DomainInfo] {
        try control.withLock { (handle: inout XenControlHandle) throws(ToolstackError) in
            try Self.listDomains(handle)
        }
    }

    static func listDomains(_ handle: borrowing XenControlHandle) throws(ToolstackError)
        -> [DomainInfo]
    {
        var result: [DomainInfo] = []
        var next: UInt32 = 0
        let batch = 256
        var buffer = [xc_domaininfo_t](repeating: xc_domaininfo_t(), count: batch)
        while true {
            let count = xc_domain_getinfolist(handle.xch, next, UInt32(batch), &buffer)
            try handle.check("xc_domain_getinfolist", count)
            for index in 0..<Int(count) {
                result.append(Self.domainInfo(buffer[index]))
            }
            guard Int(count) == batch, let last = result.last else { break }
            next = last.domid + 1
        }
        return result
    }

    static func domainInfo(_ raw: xc_domaininfo_t) -> DomainInfo {
        let flags = raw.flags
        func has(_ bit: Int32) -> Bool { flags & (UInt32(1) << UInt32(bit)) != 0 }
        let reasonCode = Int((flags >> UInt32(XEN_DOMINF_shutdownshift)) & 0xff)
        let handle = withUnsafeBytes(of: raw.handle) { Array($0) }
        return DomainInfo(
            domid: UInt32(raw.domain),
            isDying: has(_XEN_DOMINF_dying), isShutdown: has(_XEN_DOMINF_shutdown),
            isPaused: has(_XEN_DOMINF_paused), isBlocked: has(_XEN_DOMINF_blocked),
            isRunning: has(_XEN_DOMINF_running), isHVM: has(_XEN_DOMINF_hvm_guest),
            shutdownReason: ShutdownReason(rawValue: reasonCode),
            totalPages: raw.tot_pages, maxPages: raw.max_pages, cpuTime: raw.cpu_time,
            onlineVCPUs: Int(raw.nr_online_vcpus), handle: handle)
    }

    // MARK: creating and building

    public func createDomain(_ creation: DomainCreation) throws(ToolstackError)
        -> CreatedDomain
    {
        guard creation.handle.count == 16 else {
            throw .invalidSpec("a domain handle has 16 bytes, not \(creation.handle.count)")
        }
        guard creation.vcpus >= 1 else { throw .invalidSpec("a domain needs at least one VCPU") }
        return try control.withLock { (handle: inout XenControlHandle) throws(ToolstackError) in
            var config = xen_domctl_createdomain()
            withUnsafeMutableBytes(of: &config.handle) { raw in
                raw.copyBytes(from: creation.handle)
            }
            config.flags = 0  // PV: no HVM, no HAP, no IOMMU.
            config.max_vcpus = UInt32(creation.vcpus)
            config.max_evtchn_port = Self.maxEventChannelPort
            // < 0: the hypervisor's defaults, as libxl leaves them.
            config.max_grant_frames = -1
            config.max_maptrack_frames = -1
            // Grant table v1 only (the low four bits hold the highest
            // version allowed); Linux PV guests use v1.
            config.grant_opts = 1
            config.arch.emulation_flags = 0  // PV guests emulate nothing.
            var domid = Self.domidInvalid
            try handle.check("xc_domain_create", xc_domain_create(handle.xch, &domid, &config))
            do throws(ToolstackError) {
                return try Self.prepare(handle, domid: domid, creation)
            } catch {
                // A half-made domain is destroyed before the error is reported.
                _ = xc_domain_destroy(handle.xch, domid)
                throw error
            }
        }
    }

    /// Limits, affinity, CPUID policy and the ring event channels of a new
    /// domain (libxl__build_pre and libxl__arch_domain_create for PV).
    private static func prepare(
        _ handle: borrowing XenControlHandle, domid: UInt32, _ creation: DomainCreation
    ) throws(ToolstackError) -> CreatedDomain {
        let xch = handle.xch
        try handle.check(
            "xc_domain_max_vcpus(\(domid), \(creation.vcpus))",
            xc_domain_max_vcpus(xch, domid, UInt32(creation.vcpus)))
        if let cpus = creation.cpus {
            try setAffinity(handle, domid: domid, vcpus: creation.vcpus, cpus: cpus)
        }
        try handle.check(
            "xc_domain_setmaxmem(\(domid))",
            xc_domain_setmaxmem(xch, domid, creation.maxMemoryKiB + maxmemSlackKiB))
        try handle.check(
            "xc_domain_set_memmap_limit(\(domid))",
            xc_domain_set_memmap_limit(xch, domid, UInt(creation.maxMemoryKiB)))
        if !creation.restoring {
            // libxl__cpuid_legacy for a PV guest: PAE on, no invariant TSC.
            try handle.check(
                "xc_cpuid_apply_policy(\(domid))",
                xc_cpuid_apply_policy(xch, domid, false, nil, 0, true, false, false, nil, nil))
        }
        let storePort = xc_evtchn_alloc_unbound(xch, domid, 0)
        try handle.check("allocating the xenstore event channel of \(domid)", storePort)
        let consolePort = xc_evtchn_alloc_unbound(xch, domid, 0)
        try handle.check("allocating the console event channel of \(domid)", consolePort)
        return CreatedDomain(
            domid: domid, storePort: UInt32(storePort), consolePort: UInt32(consolePort))
    }

    private static func setAffinity(
        _ handle: borrowing XenControlHandle, domid: UInt32, vcpus: Int, cpus: [Int]
    ) throws(ToolstackError) {
        let size = Int(xc_get_cpumap_size(handle.xch))
        guard size > 0 else {
            throw .hypervisor(
                operation: "xc_get_cpumap_size", errno: Errno(rawValue: errno),
                detail: handle.lastError)
        }
        var hard = [UInt8](repeating: 0, count: size)
        for cpu in cpus where cpu >= 0 && cpu / 8 < size {
            hard[cpu / 8] |= UInt8(1) << UInt8(cpu % 8)
        }
        guard hard.contains(where: { $0 != 0 }) else {
            throw .invalidSpec(
                "cpus = \(cpus) names no CPU this host has (it has \(size * 8) at most)")
        }
        for vcpu in 0..<vcpus {
            var map = hard
            var soft = [UInt8](repeating: 0, count: size)
            try handle.check(
                "xc_vcpu_setaffinity(\(domid), vcpu \(vcpu))",
                xc_vcpu_setaffinity(
                    handle.xch, domid, Int32(vcpu), &map, &soft, UInt32(XEN_VCPUAFFINITY_HARD)))
        }
    }

    public func buildPV(_ domain: CreatedDomain, image: PVImage) throws(ToolstackError)
        -> RingPages
    {
        // A private handle: building takes seconds and must not hold the
        // lock the quick calls (xm list) need.
        let handle = try XenControlHandle()
        return try Self.build(handle, domain, image)
    }

    /// libxl__build_pv + libxl__build_dom: the xc_dom steps in order.
    private static func build(
        _ handle: borrowing XenControlHandle, _ domain: CreatedDomain, _ image: PVImage
    ) throws(ToolstackError) -> RingPages {
        let xch = handle.xch
        // The builder's own log (/var/log/xen/domain-builder-ng.log).
        _ = xc_dom_loginit(xch)
        guard let dom = xc_dom_allocate(xch, image.cmdline, nil) else {
            throw .builder(step: "xc_dom_allocate", detail: handle.lastError)
        }
        defer { xc_dom_release(dom) }
        func step(_ name: String, _ result: Int32) throws(ToolstackError) {
            guard result == 0 else {
                let code = Errno(rawValue: errno)
                let detail = handle.lastError
                throw .builder(step: name, detail: detail.isEmpty ? "\(code)" : detail)
            }
        }
        // xc_dom_allocate zeroes the image: container_type is already PV.
        try step("loading the kernel \(image.kernel)", xc_dom_kernel_file(dom, image.kernel))
        if let ramdisk = image.ramdisk {
            try step("loading the ramdisk \(ramdisk)", xc_dom_module_file(dom, ramdisk, nil))
        }
        dom.pointee.flags = 0
        dom.pointee.console_evtchn = domain.consolePort
        dom.pointee.console_domid = 0
        dom.pointee.xenstore_evtchn = domain.storePort
        dom.pointee.xenstore_domid = 0
        dom.pointee.claim_enabled = 0
        dom.pointee.max_vcpus = UInt32(image.vcpus)
        try step("xc_dom_boot_xen_init", xc_dom_boot_xen_init(dom, xch, domain.domid))
        try step("parsing the kernel image", xc_dom_parse_image(dom))
        try step("xc_dom_mem_init", xc_dom_mem_init(dom, UInt32(image.memoryMiB)))
        try step("allocating guest memory", xc_dom_boot_mem_init(dom))
        try step("xc_dom_build_image", xc_dom_build_image(dom))
        try step("xc_dom_boot_image", xc_dom_boot_image(dom))
        try step("seeding the grant table", xc_dom_gnttab_init(dom))
        return RingPages(
            storeMFN: UInt64(xc_dom_p2m(dom, dom.pointee.xenstore_pfn)),
            consoleMFN: UInt64(xc_dom_p2m(dom, dom.pointee.console_pfn)))
    }

    // MARK: running

    public func pause(_ domid: UInt32) throws(ToolstackError) {
        try quick("xc_domain_pause(\(domid))") { xc_domain_pause($0, domid) }
    }

    public func unpause(_ domid: UInt32) throws(ToolstackError) {
        try quick("xc_domain_unpause(\(domid))") { xc_domain_unpause($0, domid) }
    }

    public func destroy(_ domid: UInt32) throws(ToolstackError) {
        try quick("xc_domain_destroy(\(domid))") { xc_domain_destroy($0, domid) }
    }

    public func resume(_ domid: UInt32) throws(ToolstackError) {
        // fast = 1: the guest sees its suspend hypercall return an error and
        // carries on, the cheap cancellation libxl uses.
        try quick("xc_domain_resume(\(domid))") { xc_domain_resume($0, domid, 1) }
    }

    private func quick(_ operation: String, _ call: (OpaquePointer) -> Int32)
        throws(ToolstackError)
    {
        try control.withLock { (handle: inout XenControlHandle) throws(ToolstackError) in
            try handle.check(operation, call(handle.xch))
        }
    }

    // MARK: save and restore

    public func save(
        _ domid: UInt32, to fd: FileDescriptor, suspend: @escaping @Sendable () -> Bool
    ) throws(ToolstackError) {
        let handle = try XenControlHandle()
        let box = Unmanaged.passRetained(SuspendBox(suspend))
        defer { box.release() }
        var callbacks = save_callbacks()
        callbacks.suspend = { data in
            guard let data else { return 0 }
            // The box outlives xc_domain_save (released after it returns).
            let box = Unmanaged<SuspendBox>.fromOpaque(data).takeUnretainedValue()
            return box.suspend() ? 1 : 0
        }
        callbacks.data = box.toOpaque()
        // flags 0: not live; the guest is suspended first, then copied.
        let result = xc_domain_save(
            handle.xch, fd.rawValue, domid, 0, &callbacks, XC_STREAM_PLAIN, -1)
        // libxenguest explains a failure on stderr (xend's log); its last
        // error alone is often just "Save failed".
        try handle.check(
            "saving domain \(domid) (xc_domain_save; details in /var/log/xen/xend.log)", result)
    }

    public func restore(_ domain: CreatedDomain, from fd: FileDescriptor) throws(ToolstackError)
        -> RingPages
    {
        let handle = try XenControlHandle()
        let xch = handle.xch
        var callbacks = restore_callbacks()
        // Streams from older Xen lack CPUID/MSR records: build the policy a
        // new domain would get (libxl's static_data_done does the same).
        let context = Unmanaged.passRetained(RestoreBox(xch: xch, domid: domain.domid))
        defer { context.release() }
        callbacks.static_data_done = { missing, data in
            guard let data, missing & UInt32(XGR_SDD_MISSING_CPUID) != 0 else { return 0 }
            let box = Unmanaged<RestoreBox>.fromOpaque(data).takeUnretainedValue()
            return xc_cpuid_apply_policy(
                box.xch, box.domid, true, nil, 0, true, false, false, nil, nil)
        }
        callbacks.data = context.toOpaque()
        var storeMFN: UInt = 0
        var consoleMFN: UInt = 0
        let result = xc_domain_restore(
            xch, fd.rawValue, domain.domid, domain.storePort, &storeMFN, 0, domain.consolePort,
            &consoleMFN, 0, XC_STREAM_PLAIN, &callbacks, -1)
        try handle.check(
            "restoring into domain \(domain.domid) (xc_domain_restore; details in "
                + "/var/log/xen/xend.log)", result)
        return RingPages(storeMFN: UInt64(storeMFN), consoleMFN: UInt64(consoleMFN))
    }

    // MARK: host

    public func hostInfo() throws(ToolstackError) -> HostInfo {
        try control.withLock { (handle: inout XenControlHandle) throws(ToolstackError) in
            try Self.hostInfo(handle)
        }
    }

    private static func hostInfo(_ handle: borrowing XenControlHandle) throws(ToolstackError)
        -> HostInfo
    {
        let xch = handle.xch
        var physical = xc_physinfo_t()
        try handle.check("xc_physinfo", xc_physinfo(xch, &physical))
        let version = xc_version(xch, XENVER_version, nil)
        try handle.check("xc_version", version)
        let extra = versionString(xch, XENVER_extraversion, size: 16)
        let caps = versionString(xch, XENVER_capabilities, size: 1024)
        let changeset = versionString(xch, XENVER_changeset, size: 64)
        var compile = xen_compile_info_t()
        _ = xc_version(xch, XENVER_compile_info, &compile)
        let pageKiB = 4
        let hardwareCaps: [UInt32] = withUnsafeBytes(of: physical.hw_cap) { raw in
            (0..<8).map { raw.load(fromByteOffset: $0 * 4, as: UInt32.self) }
        }
        return HostInfo(
            cpus: Int(physical.nr_cpus), nodes: Int(physical.nr_nodes),
            coresPerSocket: Int(physical.cores_per_socket),
            threadsPerCore: Int(physical.threads_per_core),
            cpuMHz: Int(physical.cpu_khz / 1000),
            hardwareCaps: hardwareCaps,
            totalMemoryMiB: Int(physical.total_pages) * pageKiB / 1024,
            freeMemoryMiB: Int(physical.free_pages) * pageKiB / 1024,
            xenMajor: Int(version >> 16), xenMinor: Int(version & 0xffff),
            xenExtra: extra, xenCaps: caps, xenChangeset: changeset,
            compiler: cString(compile.compiler), compiledBy: cString(compile.compile_by),
            compileDomain: cString(compile.compile_domain),
            compileDate: cString(compile.compile_date))
    }

    /// A XENVER_* string query into a zeroed buffer of `size` bytes.
    private static func versionString(_ xch: OpaquePointer, _ command: Int32, size: Int) -> String {
        var buffer = [UInt8](repeating: 0, count: size + 1)
        let result = buffer.withUnsafeMutableBytes { xc_version(xch, command, $0.baseAddress) }
        guard result >= 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    public func consoleRing(clear: Bool) throws(ToolstackError) -> String {
        try control.withLock { (handle: inout XenControlHandle) throws(ToolstackError) in
            // Xen's ring is 16 KiB by default; a bigger buffer is harmless.
            var size: UInt32 = 1 << 20
            var buffer = [CChar](repeating: 0, count: Int(size))
            var index: UInt32 = 0
            let result = buffer.withUnsafeMutableBufferPointer { pointer in
                xc_readconsolering(
                    handle.xch, pointer.baseAddress, &size, clear ? 1 : 0, 0, &index)
            }
            try handle.check("xc_readconsolering", result)
            let bytes = buffer.prefix(Int(min(size, UInt32(buffer.count)))).map {
                UInt8(bitPattern: $0)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// The suspend callback handed through libxenguest's `void *data`.
private final class SuspendBox: Sendable {
    let suspend: @Sendable () -> Bool
    init(_ suspend: @escaping @Sendable () -> Bool) { self.suspend = suspend }
}

/// What the restore callbacks need; used only on the restoring thread.
private final class RestoreBox {
    let xch: OpaquePointer
    let domid: UInt32
    init(xch: OpaquePointer, domid: UInt32) {
        self.xch = xch
        self.domid = domid
    }
}

/// A NUL-terminated C char array (imported as a tuple) as a String.
private func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
