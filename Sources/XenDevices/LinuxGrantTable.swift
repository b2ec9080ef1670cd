import CXen
import LinuxSystem
import Synchronization
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// ``GrantTable`` over libxengnttab (/dev/xen/gntdev): maps through
/// `xengnttab_map_domain_grant_refs`, copies through `xengnttab_grant_copy`
/// (`IOCTL_GNTDEV_GRANT_COPY`). Mappings keep the handle open until they are
/// unmapped.
public final class LinuxGrantTable: GrantTable, @unchecked Sendable {
    // @unchecked: libxengnttab serialises its own bookkeeping; each call is
    // ioctl/mmap/munmap on one descriptor. The handle never changes.
    private let handle: OpaquePointer
    private let unmapFailures = Atomic<Int>(0)

    /// Opens /dev/xen/gntdev (close-on-exec).
    public init() throws(XenBusError) {
        guard let handle = xengnttab_open(nil, 0) else {
            throw .grantTable(operation: "open /dev/xen/gntdev", errno: Errno(rawValue: errno))
        }
        self.handle = handle
    }

    deinit {
        xengnttab_close(handle)
    }

    /// Unmaps that failed (at mapping teardown, where nothing can be thrown):
    /// each is leaked guest memory in our address space.
    public var unmapFailureCount: Int { unmapFailures.load(ordering: .relaxed) }

    public func map(domain: DomainID, refs: [GrantRef], writable: Bool) throws(XenBusError)
        -> GrantMapping
    {
        guard !refs.isEmpty, refs.count <= Int(UInt32.max) / xenPageSize else {
            throw .grantTable(operation: "map \(refs.count) refs", errno: .invalidArgument)
        }
        var raw = refs.map(\.rawValue)
        let protection = PROT_READ | (writable ? PROT_WRITE : 0)
        let address = raw.withUnsafeMutableBufferPointer { buffer in
            xengnttab_map_domain_grant_refs(
                handle, UInt32(buffer.count), UInt32(domain.rawValue), buffer.baseAddress,
                protection)
        }
        guard let address else {
            throw .grantTable(
                operation:
                    "map domain \(domain) refs \(refs.map(\.description).joined(separator: ","))",
                errno: Errno(rawValue: errno))
        }
        let count = refs.count
        let base = UnsafeMutableRawBufferPointer(start: address, count: count * xenPageSize)
        return GrantMapping(domain: domain, refs: refs, writable: writable, base: base) {
            [self] region in
            // Capturing self keeps the handle open while anything is mapped.
            if xengnttab_unmap(handle, region.baseAddress, UInt32(count)) != 0 {
                unmapFailures.add(1, ordering: .relaxed)
            }
        }
    }

    public func copy(_ segments: [GrantCopySegment], local: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> [GrantStatus]
    {
        var statuses = [GrantStatus](repeating: .okay, count: segments.count)
        var native: [xengnttab_grant_copy_segment_t] = []
        var nativeIndex: [Int] = []
        native.reserveCapacity(segments.count)
        for (index, segment) in segments.enumerated() {
            // Invalid segments never reach gntdev: it fails the whole batch
            // with EINVAL for one segment crossing a page.
            if let fault = segment.argumentFault(localCount: local.count) {
                statuses[index] = fault
                continue
            }
            guard let localBase = local.baseAddress else {
                statuses[index] = segment.length == 0 ? .okay : .badCopyArgument
                continue
            }
            var entry = xengnttab_grant_copy_segment_t()
            let localAddress = localBase + segment.localOffset
            switch segment.direction {
            case .fromGuest:
                entry.source.foreign.ref = segment.ref.rawValue
                entry.source.foreign.offset = segment.offset
                entry.source.foreign.domid = segment.domain.rawValue
                entry.dest.virt = localAddress
                entry.flags = CXEN_GNTCOPY_SOURCE_GREF
            case .toGuest:
                entry.source.virt = localAddress
                entry.dest.foreign.ref = segment.ref.rawValue
                entry.dest.foreign.offset = segment.offset
                entry.dest.foreign.domid = segment.domain.rawValue
                entry.flags = CXEN_GNTCOPY_DEST_GREF
            }
            entry.len = segment.length
            native.append(entry)
            nativeIndex.append(index)
        }
        guard !native.isEmpty else { return statuses }
        let result = native.withUnsafeMutableBufferPointer { buffer in
            retryingSyscall {
                xengnttab_grant_copy(handle, UInt32(buffer.count), buffer.baseAddress)
            }
        }
        if case .failure(let error) = result {
            throw .grantTable(operation: "grant copy of \(native.count) segments", errno: error)
        }
        for (entry, index) in zip(native, nativeIndex) {
            statuses[index] = GrantStatus(rawValue: entry.status)
        }
        return statuses
    }
}
