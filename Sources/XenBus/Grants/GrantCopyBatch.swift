/// The native per-segment scratch a grant table needs in a
/// ``GrantCopyBatch`` (libxengnttab: one `xengnttab_grant_copy_segment_t`
/// per segment), so the batch can preallocate it.
public struct GrantCopyScratchLayout: Sendable, Equatable {
    /// Bytes per segment (the native struct's stride).
    public var stride: Int
    /// Alignment of the native struct.
    public var alignment: Int

    public init(stride: Int, alignment: Int) {
        self.stride = max(stride, 0)
        self.alignment = max(alignment, 1)
    }

    /// No native scratch (tables that copy segments themselves, e.g. a fake).
    public static let none = GrantCopyScratchLayout(stride: 0, alignment: 1)
}

/// A reusable grant copy batch for one data path: up to ``capacity``
/// segments between guest pages and one local bounce buffer, copied by
/// ``GrantTable/copy(_:)`` with a single gntdev call. Storage for segments,
/// statuses and the grant table's native segment array is allocated once,
/// here; appending, copying and ``removeAll()`` never allocate.
///
/// Owned by one thread: make it on the ring's worker thread and use it only
/// there. It is deliberately not `Sendable` (it mutates without locks), so
/// the compiler keeps it on the thread that built it.
public final class GrantCopyBatch {
    /// The most segments the batch holds.
    public let capacity: Int
    /// The caller's bounce buffer; every segment's `localOffset` is into it.
    /// The caller keeps it allocated while the batch is in use.
    public let local: UnsafeMutableRawBufferPointer
    /// The native scratch layout this batch was made for.
    public let scratchLayout: GrantCopyScratchLayout
    /// Segments appended since the last ``removeAll()``.
    public private(set) var count = 0

    private let segments: UnsafeMutablePointer<GrantCopySegment>
    private let statuses: UnsafeMutablePointer<GrantStatus>
    // Batch indices of the segments that reach the grant table's device.
    private let pending: UnsafeMutablePointer<Int>
    private var pendingCount = 0
    /// The grant table's native segment array (`capacity * stride` bytes),
    /// for its ``GrantTable/copy(_:)`` only.
    public let scratch: UnsafeMutableRawBufferPointer

    /// For grant tables (callers use ``GrantTable/makeCopyBatch(capacity:local:)``):
    /// a batch of `capacity` segments (negative counts as 0) over `local`,
    /// with `scratchLayout.stride` bytes of native scratch per segment.
    public init(
        capacity: Int, local: UnsafeMutableRawBufferPointer,
        scratchLayout: GrantCopyScratchLayout = .none
    ) {
        let capacity = max(capacity, 0)
        self.capacity = capacity
        self.local = local
        self.scratchLayout = scratchLayout
        segments = .allocate(capacity: capacity)
        statuses = .allocate(capacity: capacity)
        pending = .allocate(capacity: capacity)
        scratch = .allocate(
            byteCount: capacity * scratchLayout.stride, alignment: scratchLayout.alignment)
    }

    deinit {
        // Segments and statuses are trivial values: deallocating is enough.
        segments.deallocate()
        statuses.deallocate()
        pending.deallocate()
        scratch.deallocate()
    }

    /// Adds `segment`; false (and nothing added) when the batch is full. Its
    /// status reads ``GrantStatus/generalError`` until the batch is copied.
    @discardableResult
    public func append(_ segment: GrantCopySegment) -> Bool {
        guard count < capacity else { return false }
        // Pointer arithmetic stays below `capacity`, checked above.
        (segments + count).initialize(to: segment)
        (statuses + count).initialize(to: .generalError)
        count += 1
        return true
    }

    /// Empties the batch for reuse; storage is kept.
    public func removeAll() {
        count = 0
        pendingCount = 0
    }

    /// Whether no segment can be appended.
    public var isFull: Bool { count == capacity }

    /// The segment at `index` (0..<count).
    public func segment(at index: Int) -> GrantCopySegment {
        guard index >= 0, index < count else {
            assertionFailure("grant copy segment \(index) outside \(count)")
            return GrantCopySegment(
                .fromGuest, domain: DomainID(0), ref: GrantRef(0), offset: 0, length: 0,
                localOffset: 0)
        }
        return segments[index]
    }

    /// The status of the segment at `index` after the last copy
    /// (``GrantStatus/generalError`` for an index outside the batch, which
    /// is a caller bug, asserted in debug builds).
    public func status(at index: Int) -> GrantStatus {
        guard index >= 0, index < count else {
            assertionFailure("grant copy status \(index) outside \(count)")
            return .generalError
        }
        return statuses[index]
    }

    /// True when every segment was copied (vacuously true when empty).
    public var allOkay: Bool {
        for index in 0..<count where !statuses[index].isOkay { return false }
        return true
    }

    // MARK: for grant tables

    /// For grant tables, first step of ``GrantTable/copy(_:)``: settles the
    /// segments that must not reach the device — argument faults get
    /// ``GrantStatus/badCopyArgument`` (gntdev would fail the whole call
    /// with EINVAL for one segment crossing a page) and empty ones
    /// ``GrantStatus/okay`` (gntdev copies nothing for them) — and returns
    /// how many remain; ``pending(_:)`` gives them, in batch order.
    public func settleUnsendable() -> Int {
        pendingCount = 0
        let hasLocal = local.baseAddress != nil
        for index in 0..<count {
            let segment = segments[index]
            if let fault = segment.argumentFault(localCount: local.count) {
                statuses[index] = fault
            } else if segment.length == 0 {
                statuses[index] = .okay
            } else if !hasLocal {
                // Unreachable (no local bytes fault every non-empty segment
                // above); kept so a pending segment always has an address.
                statuses[index] = .badCopyArgument
            } else {
                pending[pendingCount] = index
                pendingCount += 1
            }
        }
        return pendingCount
    }

    /// For grant tables: the `position`th segment left by
    /// ``settleUnsendable()``, its batch index and its local address; nil
    /// for a position outside them.
    public func pending(_ position: Int) -> PendingGrantCopy? {
        guard position >= 0, position < pendingCount, let base = local.baseAddress else {
            return nil
        }
        let index = pending[position]
        let segment = segments[index]
        return PendingGrantCopy(
            index: index, segment: segment, localAddress: base + segment.localOffset)
    }

    /// For grant tables: records the outcome of the segment at `index`.
    public func setStatus(_ status: GrantStatus, at index: Int) {
        guard index >= 0, index < count else {
            assertionFailure("grant copy status \(index) outside \(count)")
            return
        }
        statuses[index] = status
    }

    /// For grant tables: the pending segments' statuses all become `status`
    /// (after the device call failed as a whole).
    public func failPending(_ status: GrantStatus) {
        for position in 0..<pendingCount { statuses[pending[position]] = status }
    }
}

/// A segment of a ``GrantCopyBatch`` that must reach the device.
public struct PendingGrantCopy {
    /// Its index in the batch (for ``GrantCopyBatch/setStatus(_:at:)``).
    public var index: Int
    public var segment: GrantCopySegment
    /// `batch.local.baseAddress + segment.localOffset`, inside `local`.
    public var localAddress: UnsafeMutableRawPointer
}
