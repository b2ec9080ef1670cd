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

    public var copyScratchLayout: GrantCopyScratchLayout { Self.nativeScratchLayout }

    public func copy(_ batch: GrantCopyBatch) throws(XenBusError) {
        guard batch.scratchLayout == Self.nativeScratchLayout else {
            throw .grantTable(
                operation: "grant copy with a batch not made by this grant table",
                errno: .invalidArgument)
        }
        let count = Self.encodeNative(batch)
        guard count > 0, let native = Self.nativeSegments(batch) else { return }
        // One ioctl for the whole batch: libxengnttab hands the array to
        // IOCTL_GNTDEV_GRANT_COPY as it is, without copying it.
        let result = retryingSyscall {
            xengnttab_grant_copy(handle, UInt32(count), native)
        }
        if case .failure(let error) = result {
            batch.failPending(.generalError)
            throw .grantTable(operation: "grant copy of \(count) segments", errno: error)
        }
        Self.decodeNative(batch, count: count)
    }
}

extension LinuxGrantTable {
    /// One `xengnttab_grant_copy_segment_t` per batch segment.
    static let nativeScratchLayout = GrantCopyScratchLayout(
        stride: MemoryLayout<xengnttab_grant_copy_segment_t>.stride,
        alignment: MemoryLayout<xengnttab_grant_copy_segment_t>.alignment)

    /// The batch's scratch as the native segment array; nil when it has none.
    static func nativeSegments(_ batch: GrantCopyBatch)
        -> UnsafeMutablePointer<xengnttab_grant_copy_segment_t>?
    {
        guard batch.scratchLayout == nativeScratchLayout, batch.capacity > 0 else { return nil }
        // The scratch was allocated for `capacity` native segments with
        // their stride and alignment (checked above); only this type uses it.
        return batch.scratch.baseAddress?.bindMemory(
            to: xengnttab_grant_copy_segment_t.self, capacity: batch.capacity)
    }

    /// Settles the segments that must not reach gntdev and writes the rest,
    /// in order, into the batch's native array; returns how many it wrote.
    /// In place: no Swift array is built.
    static func encodeNative(_ batch: GrantCopyBatch) -> Int {
        let count = batch.settleUnsendable()
        guard count > 0, let native = nativeSegments(batch) else { return 0 }
        for position in 0..<count {
            // A zeroed entry has no GNTCOPY flag: gntdev rejects the call
            // (EINVAL) rather than copy anything if one were left so.
            native[position] = xengnttab_grant_copy_segment_t()
            guard let pending = batch.pending(position) else { continue }
            let segment = pending.segment
            switch segment.direction {
            case .fromGuest:
                native[position].source.foreign.ref = segment.ref.rawValue
                native[position].source.foreign.offset = segment.offset
                native[position].source.foreign.domid = segment.domain.rawValue
                native[position].dest.virt = pending.localAddress
                native[position].flags = CXEN_GNTCOPY_SOURCE_GREF
            case .toGuest:
                native[position].source.virt = pending.localAddress
                native[position].dest.foreign.ref = segment.ref.rawValue
                native[position].dest.foreign.offset = segment.offset
                native[position].dest.foreign.domid = segment.domain.rawValue
                native[position].flags = CXEN_GNTCOPY_DEST_GREF
            }
            native[position].len = segment.length
        }
        return count
    }

    /// Copies the per-segment `GNTST_*` gntdev wrote back into the batch.
    static func decodeNative(_ batch: GrantCopyBatch, count: Int) {
        guard let native = nativeSegments(batch) else { return }
        for position in 0..<count {
            guard let pending = batch.pending(position) else { continue }
            batch.setStatus(GrantStatus(rawValue: native[position].status), at: pending.index)
        }
    }
}
