import CXen
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Xen's console ring (what `xm dmesg` shows) read incrementally through
/// libxenctrl's `xc_readconsolering`: each call returns what Xen printed
/// since the last one, for `hypervisor.log`.
public final class XenHypervisorConsole: HypervisorConsoleSource {
    private let xch: OpaquePointer
    private var index: UInt32 = 0
    private var buffer = [CChar](repeating: 0, count: 64 * 1024)

    /// Opens /dev/xen/privcmd.
    public init() throws(ConsoledError) {
        guard let xch = xc_interface_open(nil, nil, 0) else {
            throw .system(
                operation: "opening /dev/xen/privcmd (xc_interface_open)",
                errno: Errno(rawValue: errno))
        }
        self.xch = xch
    }

    deinit { xc_interface_close(xch) }

    public func readNew() throws(ConsoledError) -> [UInt8] {
        var out: [UInt8] = []
        // Incremental reads continue at `index`; a full buffer means more
        // may be waiting (at most the ring, 16 KiB by default).
        for _ in 0..<4 {
            var size = UInt32(buffer.count)
            let result = buffer.withUnsafeMutableBufferPointer { pointer in
                xc_readconsolering(xch, pointer.baseAddress, &size, 0, 1, &index)
            }
            guard result >= 0 else {
                throw .system(operation: "xc_readconsolering", errno: Errno(rawValue: errno))
            }
            out += buffer.prefix(Int(min(size, UInt32(buffer.count)))).map { UInt8(bitPattern: $0) }
            if size < UInt32(buffer.count) { break }
        }
        return out
    }
}

/// Which domains Xen reports dying (`XEN_DOMINF_dying`): destroyed, but
/// kept until every mapping of their pages goes. consoled unmaps those at
/// once, as xenconsoled does, or a destroyed guest would stay dying for as
/// long as its xenstore home exists (and xend waits for it to vanish).
public final class XenDomainList: @unchecked Sendable {
    // @unchecked: the xc_interface handle is used only under `lock` (one
    // thread at a time, as libxenctrl asks).
    private let xch: OpaquePointer
    private let lock = Mutex(())

    public init() throws(ConsoledError) {
        guard let xch = xc_interface_open(nil, nil, 0) else {
            throw .system(
                operation: "opening /dev/xen/privcmd (xc_interface_open)",
                errno: Errno(rawValue: errno))
        }
        self.xch = xch
    }

    deinit { xc_interface_close(xch) }

    /// The dying domains now.
    public func dyingDomains() throws(ConsoledError) -> Set<UInt16> {
        try lock.withLock { _ throws(ConsoledError) -> Set<UInt16> in
            var dying: Set<UInt16> = []
            var next: UInt32 = 0
            let batch = 256
            var buffer = [xc_domaininfo_t](repeating: xc_domaininfo_t(), count: batch)
            while true {
                let count = xc_domain_getinfolist(xch, next, UInt32(batch), &buffer)
                guard count >= 0 else {
                    throw .system(operation: "xc_domain_getinfolist", errno: Errno(rawValue: errno))
                }
                for index in 0..<Int(count) {
                    let info = buffer[index]
                    if info.flags & (UInt32(1) << UInt32(_XEN_DOMINF_dying)) != 0 {
                        dying.insert(UInt16(truncatingIfNeeded: info.domain))
                    }
                }
                guard Int(count) == batch else { break }
                next = UInt32(buffer[batch - 1].domain) + 1
            }
            return dying
        }
    }
}
