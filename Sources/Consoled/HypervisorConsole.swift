import CXen
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
