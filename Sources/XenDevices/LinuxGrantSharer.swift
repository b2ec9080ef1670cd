import CXen
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// Pages this domain grants to another through gntalloc
/// (/dev/xen/gntalloc, libxengnttab's `xengntshr_*`): the frontend's side
/// of a ring. dom0 uses it in `proxenos selftest`, granting pages to
/// itself to play a guest.
public final class LinuxGrantSharer: @unchecked Sendable {
    // @unchecked: libxengnttab's share/unshare are single ioctl/mmap calls
    // on one descriptor; the handle never changes.
    private let handle: OpaquePointer

    /// Opens /dev/xen/gntalloc.
    public init() throws(XenBusError) {
        guard let handle = xengntshr_open(nil, 0) else {
            throw .grantTable(operation: "open /dev/xen/gntalloc", errno: Errno(rawValue: errno))
        }
        self.handle = handle
    }

    deinit { xengntshr_close(handle) }

    /// Grants `pages` fresh zeroed pages to `domain`; the pages stay granted
    /// and mapped as long as the returned object lives.
    public func share(pages: Int, with domain: DomainID, writable: Bool) throws(XenBusError)
        -> SharedPages
    {
        guard pages > 0 else {
            throw .grantTable(operation: "share \(pages) pages", errno: .invalidArgument)
        }
        var refs = [UInt32](repeating: 0, count: pages)
        let address = refs.withUnsafeMutableBufferPointer { buffer in
            xengntshr_share_pages(
                handle, UInt32(domain.rawValue), Int32(pages), buffer.baseAddress,
                writable ? 1 : 0)
        }
        guard let address else {
            throw .grantTable(
                operation: "share \(pages) pages with domain \(domain)",
                errno: Errno(rawValue: errno))
        }
        let bytes = UnsafeMutableRawBufferPointer(start: address, count: pages * xenPageSize)
        return SharedPages(refs: refs.map { GrantRef($0) }, bytes: bytes) { [self] in
            // Capturing self keeps the handle open while the pages are shared.
            _ = xengntshr_unshare(handle, address, UInt32(pages))
        }
    }
}

/// Pages granted through ``LinuxGrantSharer``; ungranted and unmapped
/// when the object goes.
public final class SharedPages: @unchecked Sendable {
    // @unchecked: the address never changes; the pages' content is shared
    // memory on purpose.

    /// The grant refs, in page order.
    public let refs: [GrantRef]
    /// Our view of the pages.
    public let bytes: UnsafeMutableRawBufferPointer
    private let release: () -> Void

    init(refs: [GrantRef], bytes: UnsafeMutableRawBufferPointer, release: @escaping () -> Void) {
        self.refs = refs
        self.bytes = bytes
        self.release = release
    }

    deinit { release() }
}
