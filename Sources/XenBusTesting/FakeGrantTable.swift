import Synchronization
import SystemPackage
import XenBus

/// A grant table over plain memory for tests. Guests grant pages through
/// ``grant(from:pages:writable:)`` and get the guest's view of them; the
/// backend maps or copies through the ``GrantTable`` protocol and sees the
/// same bytes. Every operation is recorded; refs that were not granted, a
/// wrong granting domain, and writable access to a read-only grant are
/// refused as Xen refuses them.
///
/// A multi-page map must name consecutive pages of one ``grant(from:pages:writable:)``
/// call, in order (real frontends allocate multi-page rings that way): plain
/// memory cannot alias scattered pages into one contiguous range.
public final class FakeGrantTable: GrantTable, @unchecked Sendable {
    // @unchecked: page memory is allocated once and freed in deinit; all
    // bookkeeping is in the Mutex.

    /// One recorded operation.
    public enum Operation: Sendable, Equatable {
        case map(domain: DomainID, refs: [GrantRef], writable: Bool)
        case mapRefused(domain: DomainID, refs: [GrantRef], writable: Bool)
        case unmap(domain: DomainID, refs: [GrantRef])
        /// One ``copy(_:)``: every segment of the batch, as passed.
        case copy([GrantCopySegment])
    }

    /// Pages a guest granted: their refs and the guest's own view.
    public struct Grant: @unchecked Sendable {
        // @unchecked: the pointer is the fake guest's memory, shared on purpose.
        public let domain: DomainID
        public let refs: [GrantRef]
        public let writable: Bool
        /// The guest's view of the granted pages (`refs.count` pages).
        public let bytes: UnsafeMutableRawBufferPointer
    }

    private struct Entry {
        var domain: DomainID
        var writable: Bool
        var block: Int
        var page: Int
    }

    /// Guest memory of one grant call.
    private struct PageBlock: @unchecked Sendable {
        // @unchecked: owned by the table, freed only in its deinit.
        let bytes: UnsafeMutableRawBufferPointer
    }

    private struct State {
        var blocks: [PageBlock] = []
        var entries: [GrantRef: Entry] = [:]
        // First refs are reserved in real grant tables (console, xenstore).
        var nextRef: UInt32 = 8
        var operations: [Operation] = []
        var liveMappings = 0
        var recordsCopies = true
        var deviceCopyCalls = 0
        var deviceCopySegments = 0
    }

    private let state = Mutex(State())

    /// `recordsCopies: false` leaves grant copies out of ``operations``, so
    /// that copying allocates nothing (for allocation tests).
    public init(recordsCopies: Bool = true) {
        state.withLock { $0.recordsCopies = recordsCopies }
    }

    deinit {
        for block in state.withLock({ $0.blocks }) { block.bytes.deallocate() }
    }

    /// `domain` grants `pages` fresh zeroed, contiguous pages.
    public func grant(from domain: DomainID, pages: Int, writable: Bool) -> Grant {
        let count = max(pages, 1)
        let bytes = UnsafeMutableRawBufferPointer.allocate(
            byteCount: count * xenPageSize, alignment: xenPageSize)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        let refs = state.withLock { state in
            state.blocks.append(PageBlock(bytes: bytes))
            let block = state.blocks.count - 1
            return (0..<count).map { page in
                let ref = GrantRef(state.nextRef)
                state.nextRef += 1
                state.entries[ref] = Entry(
                    domain: domain, writable: writable, block: block, page: page)
                return ref
            }
        }
        return Grant(domain: domain, refs: refs, writable: writable, bytes: bytes)
    }

    /// Ends a grant: later maps and copies of `ref` are refused (existing
    /// mappings keep working, as with a real grant still mapped).
    public func revoke(_ ref: GrantRef) {
        _ = state.withLock { $0.entries.removeValue(forKey: ref) }
    }

    /// Every operation so far, in order.
    public var operations: [Operation] { state.withLock { $0.operations } }

    /// Calls that reached the fake gntdev (one per ``copy(_:)`` with at
    /// least one segment left to copy).
    public var deviceCopyCalls: Int { state.withLock { $0.deviceCopyCalls } }

    /// Segments that reached the fake gntdev, over all calls.
    public var deviceCopySegments: Int { state.withLock { $0.deviceCopySegments } }

    /// Mappings made and not yet unmapped.
    public var liveMappings: Int { state.withLock { $0.liveMappings } }

    // MARK: GrantTable

    public func map(domain: DomainID, refs: [GrantRef], writable: Bool) throws(XenBusError)
        -> GrantMapping
    {
        let result: Result<UnsafeMutableRawBufferPointer, XenBusError> = state.withLock {
            state in
            guard let first = refs.first else {
                return .failure(.grantTable(operation: "map", errno: .invalidArgument))
            }
            var block = -1
            var firstPage = 0
            for (index, ref) in refs.enumerated() {
                guard let entry = state.entries[ref], entry.domain == domain else {
                    state.operations.append(
                        .mapRefused(domain: domain, refs: refs, writable: writable))
                    return .failure(.grantRefused(domain: domain, ref: ref, status: .badGrantRef))
                }
                guard entry.writable || !writable else {
                    state.operations.append(
                        .mapRefused(domain: domain, refs: refs, writable: writable))
                    return .failure(
                        .grantRefused(domain: domain, ref: ref, status: .permissionDenied))
                }
                if index == 0 {
                    block = entry.block
                    firstPage = entry.page
                } else if entry.block != block || entry.page != firstPage + index {
                    state.operations.append(
                        .mapRefused(domain: domain, refs: refs, writable: writable))
                    return .failure(
                        .grantTable(
                            operation: "map of refs starting at \(first) (the fake maps only "
                                + "consecutive pages of one grant)",
                            errno: .notSupported))
                }
            }
            state.operations.append(.map(domain: domain, refs: refs, writable: writable))
            state.liveMappings += 1
            let guestBlock = state.blocks[block].bytes
            return .success(
                UnsafeMutableRawBufferPointer(
                    start: guestBlock.baseAddress! + firstPage * xenPageSize,
                    count: refs.count * xenPageSize))
        }
        let base = try result.get()
        return GrantMapping(domain: domain, refs: refs, writable: writable, base: base) {
            [self] _ in
            // Capturing self keeps the guest memory alive while mapped.
            state.withLock { state in
                state.operations.append(.unmap(domain: domain, refs: refs))
                state.liveMappings -= 1
            }
        }
    }

    public var copyScratchLayout: GrantCopyScratchLayout { .none }

    /// Copies like gntdev: segments ``GrantCopyBatch/settleUnsendable()``
    /// leaves go through one (fake) device call, each with its own status.
    public func copy(_ batch: GrantCopyBatch) throws(XenBusError) {
        let pendingCount = batch.settleUnsendable()
        state.withLock { state in
            if state.recordsCopies {
                // The log is test instrumentation; it allocates, the copy does not.
                state.operations.append(
                    .copy((0..<batch.count).map { batch.segment(at: $0) }))
            }
            guard pendingCount > 0 else { return }
            state.deviceCopyCalls += 1
            state.deviceCopySegments += pendingCount
            for position in 0..<pendingCount {
                guard let pending = batch.pending(position) else { continue }
                batch.setStatus(Self.copy(pending, in: state), at: pending.index)
            }
        }
    }

    private static func copy(_ pending: PendingGrantCopy, in state: State) -> GrantStatus {
        let segment = pending.segment
        guard let entry = state.entries[segment.ref], entry.domain == segment.domain else {
            return .badGrantRef
        }
        if segment.direction == .toGuest && !entry.writable { return .permissionDenied }
        // The block is the guest memory of one grant call, alive until deinit;
        // the segment stays inside its page (settleUnsendable checked).
        guard let blockBase = state.blocks[entry.block].bytes.baseAddress else {
            return .badPage
        }
        let guest = blockBase + entry.page * xenPageSize + Int(segment.offset)
        switch segment.direction {
        case .fromGuest:
            pending.localAddress.copyMemory(from: guest, byteCount: Int(segment.length))
        case .toGuest:
            guest.copyMemory(from: pending.localAddress, byteCount: Int(segment.length))
        }
        return .okay
    }
}
