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
    }

    private let state = Mutex(State())

    public init() {}

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

    public func copy(_ segments: [GrantCopySegment], local: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> [GrantStatus]
    {
        state.withLock { state in
            state.operations.append(.copy(segments))
            return segments.map { segment in
                if let fault = segment.argumentFault(localCount: local.count) { return fault }
                guard let entry = state.entries[segment.ref], entry.domain == segment.domain
                else { return .badGrantRef }
                if segment.direction == .toGuest && !entry.writable { return .permissionDenied }
                guard segment.length > 0, let localBase = local.baseAddress else { return .okay }
                let guestBlock = state.blocks[entry.block].bytes
                let guest = guestBlock.baseAddress! + entry.page * xenPageSize + Int(segment.offset)
                let mine = localBase + segment.localOffset
                switch segment.direction {
                case .fromGuest: mine.copyMemory(from: guest, byteCount: Int(segment.length))
                case .toGuest: guest.copyMemory(from: mine, byteCount: Int(segment.length))
                }
                return .okay
            }
        }
    }
}
