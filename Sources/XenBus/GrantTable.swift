/// Maps and copies memory that a guest granted to us (libxengnttab over
/// /dev/xen/gntdev).
public protocol GrantTable: Sendable {
    /// Maps `refs`, all granted by `domain`, as one contiguous region of
    /// `refs.count` pages, in order. `writable` needs writable grants.
    func map(domain: DomainID, refs: [GrantRef], writable: Bool) throws(XenBusError)
        -> GrantMapping

    /// The native scratch each segment of a ``GrantCopyBatch`` needs for
    /// this table's ``copy(_:)``; ``makeCopyBatch(capacity:local:)`` uses it.
    var copyScratchLayout: GrantCopyScratchLayout { get }

    /// Grant copy (`GNTTABOP_copy`) of every segment in `batch`, setting one
    /// status per segment, with as few device calls as gntdev allows: one
    /// `IOCTL_GNTDEV_GRANT_COPY` for all segments that reach it (none when
    /// none do). Segments that cross their guest page or fall outside the
    /// batch's local buffer get ``GrantStatus/badCopyArgument`` and empty
    /// ones ``GrantStatus/okay`` without reaching the device. Throws only if
    /// the device call failed as a whole (then those segments read
    /// ``GrantStatus/generalError``; some may have been copied), or if
    /// `batch` was made for another kind of grant table. Implementations
    /// must not allocate here (LinuxGrantTable does not; FakeGrantTable only
    /// for its operation log, which can be turned off).
    ///
    /// Below the one ioctl (Linux drivers/xen/gntdev.c): gntdev splits each
    /// segment where its local side crosses a 4 KiB page, pins those local
    /// pages, and issues one `GNTTABOP_copy` hypercall per 16 such pieces
    /// (`GNTDEV_COPY_BATCH`). A page-aligned bounce buffer with segments
    /// that stay inside one local page keeps that at ceil(segments / 16)
    /// hypercalls.
    func copy(_ batch: GrantCopyBatch) throws(XenBusError)
}

extension GrantTable {
    /// Maps a single granted page.
    public func map(domain: DomainID, ref: GrantRef, writable: Bool) throws(XenBusError)
        -> GrantMapping
    {
        try map(domain: domain, refs: [ref], writable: writable)
    }

    /// A reusable batch of up to `capacity` segments over the bounce buffer
    /// `local`, with this table's native scratch preallocated.
    public func makeCopyBatch(capacity: Int, local: UnsafeMutableRawBufferPointer)
        -> GrantCopyBatch
    {
        GrantCopyBatch(capacity: capacity, local: local, scratchLayout: copyScratchLayout)
    }

    /// Grant copy of `segments` between guest pages and `local`: one status
    /// per segment, in order, as ``copy(_:)`` sets them. A convenience that
    /// allocates a batch per call; data paths keep a ``GrantCopyBatch``.
    public func copy(_ segments: [GrantCopySegment], local: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> [GrantStatus]
    {
        let batch = makeCopyBatch(capacity: segments.count, local: local)
        for segment in segments { batch.append(segment) }
        try copy(batch)
        return (0..<batch.count).map { batch.status(at: $0) }
    }
}

/// Guest memory mapped into our address space. It owns the mapping: the pages
/// are unmapped exactly once, when the last reference to it goes away, so
/// hold it as long as any pointer into it is in use (a ring keeps its own
/// mapping alive).
public final class GrantMapping: @unchecked Sendable {
    // @unchecked: the base pointer never changes; what happens in the shared
    // pages is the business of whoever reads them (rings use atomics).

    /// The granting domain.
    public let domain: DomainID
    /// The refs mapped, in page order.
    public let refs: [GrantRef]
    /// Whether the pages are mapped writable.
    public let isWritable: Bool
    private let base: UnsafeMutableRawBufferPointer
    private let release: @Sendable (UnsafeMutableRawBufferPointer) -> Void

    /// For grant table implementations: wraps a fresh mapping of
    /// `refs.count` pages at `base`; `release` unmaps it and is called once.
    public init(
        domain: DomainID, refs: [GrantRef], writable: Bool,
        base: UnsafeMutableRawBufferPointer,
        release: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void
    ) {
        self.domain = domain
        self.refs = refs
        self.isWritable = writable
        self.base = base
        self.release = release
    }

    deinit { release(base) }

    /// The mapped bytes, `refs.count * xenPageSize` of them.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(base) }

    /// The mapped bytes for writing; throws for a read-only mapping, where a
    /// write would fault.
    public func writableBytes() throws(XenBusError) -> UnsafeMutableRawBufferPointer {
        guard isWritable else { throw .mappingReadOnly }
        return base
    }
}

/// One grant copy: `length` bytes between `offset` in the guest page `ref`
/// of `domain` and `localOffset` in the local buffer.
public struct GrantCopySegment: Sendable, Equatable {
    public enum Direction: Sendable, Equatable {
        /// Guest page → local buffer (e.g. a block write, a TX packet).
        case fromGuest
        /// Local buffer → guest page (needs a writable grant).
        case toGuest
    }

    public var direction: Direction
    public var domain: DomainID
    public var ref: GrantRef
    /// Offset inside the guest page.
    public var offset: UInt16
    public var length: UInt16
    /// Offset inside the local buffer.
    public var localOffset: Int

    public init(
        _ direction: Direction, domain: DomainID, ref: GrantRef, offset: UInt16, length: UInt16,
        localOffset: Int
    ) {
        self.direction = direction
        self.domain = domain
        self.ref = ref
        self.offset = offset
        self.length = length
        self.localOffset = localOffset
    }

    /// Checks what the hypervisor cannot be asked: the guest side must stay
    /// inside its page (gntdev fails the whole batch otherwise) and the
    /// local side inside `localCount` bytes. nil when the segment is sound.
    public func argumentFault(localCount: Int) -> GrantStatus? {
        if Int(offset) + Int(length) > xenPageSize { return .badCopyArgument }
        if localOffset < 0 || localOffset > localCount - Int(length) { return .badCopyArgument }
        return nil
    }
}

/// A grant operation status (`GNTST_*` of xen/grant_table.h).
public struct GrantStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let okay = GrantStatus(rawValue: 0)
    public static let generalError = GrantStatus(rawValue: -1)
    public static let badDomain = GrantStatus(rawValue: -2)
    public static let badGrantRef = GrantStatus(rawValue: -3)
    public static let badHandle = GrantStatus(rawValue: -4)
    public static let badVirtualAddress = GrantStatus(rawValue: -5)
    public static let badDeviceAddress = GrantStatus(rawValue: -6)
    public static let noDeviceSpace = GrantStatus(rawValue: -7)
    public static let permissionDenied = GrantStatus(rawValue: -8)
    public static let badPage = GrantStatus(rawValue: -9)
    public static let badCopyArgument = GrantStatus(rawValue: -10)
    public static let addressTooBig = GrantStatus(rawValue: -11)
    public static let eagain = GrantStatus(rawValue: -12)
    public static let noSpace = GrantStatus(rawValue: -13)

    public var isOkay: Bool { rawValue == 0 }

    public var description: String {
        switch rawValue {
        case 0: return "okay"
        case -1: return "general error"
        case -2: return "unrecognised domain id"
        case -3: return "unrecognised or inappropriate grant reference"
        case -4: return "unrecognised or inappropriate handle"
        case -5: return "inappropriate virtual address to map"
        case -6: return "inappropriate device address to unmap"
        case -7: return "out of space in I/O MMU"
        case -8: return "not enough privilege for operation"
        case -9: return "specified page was invalid for operation"
        case -10: return "copy arguments cross page boundary"
        case -11: return "page address size too large"
        case -12: return "operation not done; try again"
        case -13: return "out of space"
        default: return "status \(rawValue)"
        }
    }
}
