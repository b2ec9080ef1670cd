import DataPath
import XenBus

/// Counters of one ring's data path (read on its worker thread, or after
/// the worker stopped).
public struct BlockStatistics: Sendable, Equatable {
    /// Requests taken off the ring (redone ones included).
    public var requests = 0
    /// Requests refused by validation (answered with an error status).
    public var rejected = 0
    /// Requests whose grant copy or backing I/O failed.
    public var failed = 0
    /// Submissions to the engine (each hands every operation queued since
    /// the last to the backing at once).
    public var batches = 0
    /// The most requests in flight at once.
    public var peakInFlight = 0
    /// Grant-copy calls made for data.
    public var grantCopyCalls = 0
    /// Persistent grants: data segments served from a page already mapped.
    public var persistentHits = 0
    /// Persistent grants: guest pages mapped (first use of a ref, and a
    /// page mapped again writable or after its eviction).
    public var persistentMaps = 0
    /// `fdatasync` calls made for flushes and barriers.
    public var flushes = 0
}

/// One blkif ring's data path: takes requests, validates each from its
/// private copy, and runs them concurrently on a ``BlockEngine``:
///
/// 1. requests taken in one round that carry data to write get it with one
///    grant copy into the bounce buffer, then every operation taken is
///    submitted at once;
/// 2. completions come in any order (from the engine's descriptor, which
///    wakes the worker); reads finished together go to the guest in one
///    grant copy, and every finished request is answered and pushed.
///
/// Ordering: a flush or barrier starts once every request taken before it
/// has completed (so it covers every earlier acknowledged write), and
/// nothing taken after it starts before it is answered. A barrier or a
/// flush with data flushes (when anything was written since the last
/// flush), writes, and flushes again. Writes are answered once the backing
/// has them (its cache: they survive this process); flushes and barriers
/// once `fdatasync` returned.
///
/// The ring is journaled: a successor redoes requests left unanswered,
/// which is safe because each is idempotent (reads and writes of fixed
/// sectors, flushes, discards). Answers go out of order, so the journal's
/// slot for a ring index (index modulo the ring size) may still hold an
/// older request in flight when the frontend has already reused the ring
/// slot: the endpoint takes the next request only once that journal slot
/// is free.
public final class BlockEndpoint<Request: BlkifWireRequest, Response: BlkifWireResponse>:
    DataPathEndpoint, BlockGrowable
{
    /// A request started and not yet answered, kept in the slot of its
    /// ring index.
    private struct InFlight {
        var token: RequestToken
        var request: BlockRequest
        /// Its run of bounce pages (its data at the run's start, segments
        /// packed; its segments at `pageStart * 8` of `segments`).
        var pageStart: Int
        var pageCount: Int
        /// The next of its operations (see ``operation(_:)``).
        var step = 0
        var status: Int16 = BlkifStatus.okay
    }

    private var ring: JournaledBackRing<Request, Response>
    private let notify: () throws(XenBusError) -> Void
    private let engine: any BlockEngine
    private let frontend: DomainID
    private var validator: BlockRequestValidator
    private let bounce: UnsafeMutableRawBufferPointer
    private var pages: PageRunAllocator
    private let copies: GrantCopyBatch
    private let grants: any GrantTable
    /// With `feature-persistent` negotiated: the frontend's data pages,
    /// mapped once and reused; data moves by memcpy between them and the
    /// bounce buffer instead of by grant copy.
    private let persistent: PersistentGrantCache?
    /// The validator's output for the request being taken (and for a held
    /// one, until it starts).
    private var incoming: [BlkifSegment] = []
    /// Segments of requests in flight, 8 per bounce page.
    private var segments: [BlkifSegment]
    private var slots: [InFlight?]
    private let slotMask: UInt32
    /// Requests in flight.
    public private(set) var inFlight = 0
    /// A request taken and accepted that cannot start yet (a flush waiting
    /// for the requests before it, or no room); nothing more is taken while
    /// it waits.
    private var held: (RequestToken, BlockRequest)?
    /// A flush or barrier is in flight: nothing else starts.
    private var ordering = false
    /// Requests started this round that wait for their write data's copy.
    private var starting: [Int] = []
    /// Requests finished by the completions of this round.
    private var finished: [Int] = []
    /// Whether a write completed since the last successful flush (a fresh
    /// process assumes so: its predecessor may have written).
    private var dirty = true
    private var counters = BlockStatistics()
    /// This ring's counters (the persistent-grant ones are its cache's).
    public var statistics: BlockStatistics {
        var statistics = counters
        statistics.persistentHits = persistent?.hits ?? 0
        statistics.persistentMaps = persistent?.misses ?? 0
        return statistics
    }
    /// Why the last request was refused (for diagnostics; guest text is
    /// never logged from the data path).
    public private(set) var lastRejection: String?

    /// Pages of bounce buffer per ring: four of the largest requests
    /// (256 segments of a page each), and many smaller ones in flight.
    public static var bouncePages: Int { 4 * Blkif.maxIndirectSegments }
    /// Segments one bounce page can carry (a segment is at least a sector).
    static var segmentsPerPage: Int { xenPageSize / Blkif.sectorSize }

    /// Serves `ring` for the disk `storage` of `frontend`, synchronously
    /// (``SynchronousEngine``); `notify` signals the frontend's event channel.
    public convenience init(
        ring: consuming JournaledBackRing<Request, Response>, storage: any BlockStorage,
        limits: BlockDiskLimits, grants: any GrantTable, frontend: DomainID,
        notify: @escaping () throws(XenBusError) -> Void
    ) {
        self.init(
            ring: ring, engine: SynchronousEngine(storage), limits: limits, grants: grants,
            frontend: frontend, notify: notify)
    }

    /// Serves `ring` on `engine`; attach the endpoint to the worker for the
    /// ring's port and for the engine's ``BlockEngine/completionDescriptor``.
    /// `persistentGrants` (the frontend's and our `feature-persistent`)
    /// keeps up to that many of the frontend's data pages mapped and moves
    /// data by memcpy; nil moves it by grant copy.
    public init(
        ring: consuming JournaledBackRing<Request, Response>, engine: any BlockEngine,
        limits: BlockDiskLimits, grants: any GrantTable, frontend: DomainID,
        persistentGrants: Int? = nil,
        notify: @escaping () throws(XenBusError) -> Void
    ) {
        let entries = Int(ring.ring.geometry.entryCount)
        self.ring = ring
        self.notify = notify
        self.engine = engine
        self.frontend = frontend
        self.grants = grants
        persistent = persistentGrants.map {
            PersistentGrantCache(table: grants, domain: frontend, capacity: $0)
        }
        validator = BlockRequestValidator(
            limits: limits,
            indirect: PrivateGrantCopy(table: grants, capacity: Blkif.maxIndirectPageSlots),
            frontend: frontend)
        bounce = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Self.bouncePages * xenPageSize, alignment: xenPageSize)
        pages = PageRunAllocator(pages: Self.bouncePages)
        let segmentCapacity = Self.bouncePages * Self.segmentsPerPage
        copies = grants.makeCopyBatch(capacity: segmentCapacity, local: bounce)
        segments = Array(
            repeating: BlkifSegment(ref: GrantRef(0), firstSector: 0, lastSector: 0),
            count: segmentCapacity)
        slots = Array(repeating: nil, count: entries)
        slotMask = UInt32(entries - 1)
        incoming.reserveCapacity(Blkif.maxIndirectSegments)
        starting.reserveCapacity(entries)
        finished.reserveCapacity(entries)
    }

    /// The backing grew: requests up to `sectors` are valid from now on.
    public func grow(to sectors: UInt64) {
        if sectors > validator.limits.sectors { validator.limits.sectors = sectors }
    }

    /// The disk size requests are checked against, in sectors.
    public var sectors: UInt64 { validator.limits.sectors }

    deinit {
        // The kernel may still be writing into the bounce buffer.
        engine.drain()
        bounce.deallocate()
    }

    public func serve(budget: Int) throws(XenBusError) -> Bool {
        var taken = 0
        var blocked = false
        while true {
            try reap()
            let (count, stalled) = try take(budget - taken)
            taken += count
            blocked = stalled
            if engine.hasUnsubmitted {
                counters.batches += 1
                engine.submit()
            }
            // What completed already (inline, or by the time we looked) is
            // answered now, and taking goes on while the budget lasts.
            guard engine.hasCompletions else { break }
        }
        if ring.pushResponses() { try notify() }
        // The kernel refused the submission for now: try again next round.
        if engine.hasUnsubmitted { return true }
        if taken >= budget && !blocked { return true }
        // Waiting for completions: their descriptor wakes the worker, and
        // the requests left on the ring are taken then.
        if blocked && inFlight > 0 { return false }
        return try ring.finalCheckForRequests()
    }

    // MARK: taking and starting

    /// Takes up to `limit` requests; how many, and whether taking stopped
    /// for want of a completion.
    private func take(_ limit: Int) throws(XenBusError) -> (Int, Bool) {
        var taken = 0
        var stalled = false
        while true {
            if held == nil {
                guard taken < limit else { break }
                if ring.pendingRedo == 0,
                    slots[Int(ring.ring.requestConsumer & slotMask)] != nil
                {
                    // The journal slot of the next ring index is an older
                    // request's, still in flight.
                    stalled = true
                    break
                }
                guard let (token, wire) = try ring.nextRequest() else { break }
                taken += 1
                counters.requests += 1
                incoming.removeAll(keepingCapacity: true)
                switch validator.validate(wire.request, segments: &incoming) {
                case .reject(let id, let operation, let status, let reason):
                    counters.rejected += 1
                    lastRejection = reason
                    try ring.respond(
                        to: token,
                        with: Response(BlkifResponse(id: id, operation: operation, status: status)))
                    continue
                case .accept(let request):
                    held = (token, request)
                }
            }
            guard let (token, request) = held, start(token, request) else {
                stalled = true
                break
            }
            held = nil
        }
        try copyWriteData()
        return (taken, stalled)
    }

    /// Bytes of bounce buffer a request needs.
    private static func dataBytes(_ request: BlockRequest) -> Int {
        // Discards carry no data: their sector count is not a buffer size.
        request.command == .read || request.command.carriesWriteData
            ? Int(request.byteCount) : 0
    }

    /// Starts a request if it may start now; false leaves it held.
    private func start(_ token: RequestToken, _ request: BlockRequest) -> Bool {
        let slot = Int(token.index & slotMask)
        let isOrdering = request.command == .flush || request.command == .barrier
        guard !ordering, slots[slot] == nil, engine.room > 0,
            !isOrdering || (inFlight == 0 && starting.isEmpty)
        else { return false }
        let bytes = Self.dataBytes(request)
        let count = (bytes + xenPageSize - 1) / xenPageSize
        guard let first = count == 0 ? 0 : pages.allocate(count) else { return false }
        var entry = InFlight(token: token, request: request, pageStart: first, pageCount: count)
        entry.request.segmentStart = first * Self.segmentsPerPage
        for (index, segment) in incoming.enumerated() {
            segments[entry.request.segmentStart + index] = segment
        }
        if isOrdering {
            ordering = true
            // Nothing to flush: go straight to the data (a preflush covers
            // completed writes, and none completed since the last flush).
            if !dirty && request.segmentCount > 0 { entry.step = 1 }
        }
        slots[slot] = entry
        inFlight += 1
        counters.peakInFlight = max(counters.peakInFlight, inFlight)
        if request.command.carriesWriteData && request.segmentCount > 0 {
            starting.append(slot)
        } else {
            queueStep(slot)
        }
        return true
    }

    /// One grant copy brings the data of every request started this round
    /// in; those whose copy failed are answered with an error, the others'
    /// first operations are queued.
    private func copyWriteData() throws(XenBusError) {
        guard !starting.isEmpty else { return }
        moveData(starting, direction: .fromGuest)
        for slot in starting {
            guard let entry = slots[slot] else { continue }
            if entry.status == BlkifStatus.okay {
                queueStep(slot)
            } else {
                finished.append(slot)
            }
        }
        starting.removeAll(keepingCapacity: true)
        try answerFinished()
    }

    /// Moves the data of the requests in `list` that still succeed and
    /// carry data that way (writes' from the guest, reads' to it) between
    /// their guest pages and their bounce pages: by one grant copy for all,
    /// or by memcpy through persistently mapped pages. A request whose
    /// segment failed to copy or map gets an error status.
    private func moveData(_ list: [Int], direction: GrantCopySegment.Direction) {
        func moves(_ entry: InFlight) -> Bool {
            guard entry.status == BlkifStatus.okay, entry.request.segmentCount > 0 else {
                return false
            }
            return direction == .toGuest
                ? entry.request.command == .read : entry.request.command.carriesWriteData
        }
        if let persistent {
            for slot in list {
                guard var entry = slots[slot], moves(entry) else { continue }
                if !copyPersistent(entry, persistent, direction: direction) {
                    entry.status = BlkifStatus.error
                    slots[slot] = entry
                }
            }
            return
        }
        copies.removeAll()
        var any = false
        for slot in list {
            guard let entry = slots[slot], moves(entry) else { continue }
            appendCopies(entry, direction: direction)
            any = true
        }
        guard any else { return }
        copyBatch()
        var position = 0
        for slot in list {
            guard var entry = slots[slot], moves(entry) else { continue }
            for index in position..<(position + entry.request.segmentCount)
            where !copies.status(at: index).isOkay {
                entry.status = BlkifStatus.error
            }
            position += entry.request.segmentCount
            slots[slot] = entry
        }
        copies.removeAll()
    }

    /// memcpy of a request's segments through the persistent mappings of
    /// their pages; false if a page could not be mapped (as the direction
    /// needs: writable to send a read's data).
    private func copyPersistent(
        _ entry: InFlight, _ cache: PersistentGrantCache, direction: GrantCopySegment.Direction
    ) -> Bool {
        guard let local = bounce.baseAddress else { return false }
        var offset = entry.pageStart * xenPageSize
        let request = entry.request
        for segment in segments[
            request.segmentStart..<(request.segmentStart + request.segmentCount)]
        {
            // The validator bounded both sectors to the page (first <= last < 8).
            let length = (Int(segment.lastSector) - Int(segment.firstSector) + 1) * Blkif.sectorSize
            let pageOffset = Int(segment.firstSector) * Blkif.sectorSize
            do throws(XenBusError) {
                let mapping = try cache.page(segment.ref, writable: direction == .toGuest)
                if direction == .toGuest {
                    guard let page = try mapping.writableBytes().baseAddress else { return false }
                    (page + pageOffset).copyMemory(from: local + offset, byteCount: length)
                } else {
                    guard let page = mapping.bytes.baseAddress else { return false }
                    (local + offset).copyMemory(from: page + pageOffset, byteCount: length)
                }
            } catch {
                return false
            }
            offset += length
        }
        return true
    }

    private func appendCopies(_ entry: InFlight, direction: GrantCopySegment.Direction) {
        var offset = entry.pageStart * xenPageSize
        let request = entry.request
        for segment in segments[
            request.segmentStart..<(request.segmentStart + request.segmentCount)]
        {
            let length = (Int(segment.lastSector) - Int(segment.firstSector) + 1) * Blkif.sectorSize
            _ = copies.append(
                GrantCopySegment(
                    direction, domain: frontend, ref: segment.ref,
                    offset: UInt16(segment.firstSector) * UInt16(Blkif.sectorSize),
                    length: UInt16(length), localOffset: offset))
            offset += length
        }
    }

    /// The operation step `step` of a request, nil when it has no more.
    private func operation(_ entry: InFlight) -> BlockOperation? {
        let request = entry.request
        let data = UnsafeMutableRawBufferPointer(
            rebasing: bounce[
                (entry.pageStart * xenPageSize)..<(entry.pageStart * xenPageSize
                    + Self.dataBytes(request))])
        switch request.command {
        case .read: return entry.step == 0 ? .read(data, at: request.byteOffset) : nil
        case .write:
            return entry.step == 0
                ? .write(UnsafeRawBufferPointer(data), at: request.byteOffset) : nil
        case .discard(let secure):
            return entry.step == 0
                ? .discard(at: request.byteOffset, count: request.byteCount, secure: secure) : nil
        case .flush, .barrier:
            // The flush covers every write completed before it; data the
            // request carries is written after it and made stable before
            // the answer.
            if request.segmentCount == 0 { return entry.step == 0 ? .flush : nil }
            switch entry.step {
            case 0: return .flush
            case 1: return .write(UnsafeRawBufferPointer(data), at: request.byteOffset)
            case 2: return .flush
            default: return nil
            }
        }
    }

    /// Queues a started request's next operation (room was checked: a
    /// request has one operation in the engine at a time).
    private func queueStep(_ slot: Int) {
        guard let entry = slots[slot], let next = operation(entry) else { return }
        switch next {
        case .write, .discard: dirty = true
        case .flush: counters.flushes += 1
        case .read: break
        }
        engine.enqueue(next, tag: UInt32(slot))
    }

    // MARK: completions

    /// Takes every completion ready: queues requests' next operations,
    /// sends finished reads' data in one grant copy, answers what finished.
    private func reap() throws(XenBusError) {
        engine.reap { completion in
            let slot = Int(completion.tag)
            guard slots.indices.contains(slot), var entry = slots[slot] else { return }
            if let error = completion.error {
                entry.status = error.isNotSupported ? BlkifStatus.notSupported : BlkifStatus.error
                slots[slot] = entry
                finished.append(slot)
                return
            }
            if case .flush = operation(entry) { dirty = false }
            entry.step += 1
            slots[slot] = entry
            if operation(entry) != nil {
                queueStep(slot)
            } else {
                finished.append(slot)
            }
        }
        guard !finished.isEmpty else { return }
        moveData(finished, direction: .toGuest)
        try answerFinished()
    }

    /// Answers the finished requests and frees their slots and pages.
    private func answerFinished() throws(XenBusError) {
        for slot in finished {
            guard let entry = slots[slot] else { continue }
            if entry.status != BlkifStatus.okay { counters.failed += 1 }
            slots[slot] = nil
            inFlight -= 1
            if entry.pageCount > 0 { pages.release(entry.pageStart, entry.pageCount) }
            let command = entry.request.command
            if command == .flush || command == .barrier { ordering = false }
            try ring.respond(
                to: entry.token,
                with: Response(
                    BlkifResponse(
                        id: entry.request.id, operation: entry.request.responseOperation,
                        status: entry.status)))
        }
        finished.removeAll(keepingCapacity: true)
    }

    /// One grant-copy call; a call failing as a whole leaves every segment
    /// not okay, which fails those requests only.
    private func copyBatch() {
        counters.grantCopyCalls += 1
        do throws(XenBusError) { try grants.copy(copies) } catch {}
    }
}

/// First-fit runs of pages in a ring's bounce buffer: requests finish in
/// any order, so their data cannot be a plain queue. A bitmap of 64-page
/// words; a run never crosses what is allocated.
struct PageRunAllocator {
    private var used: [UInt64]
    let pages: Int

    init(pages: Int) {
        self.pages = pages
        used = Array(repeating: 0, count: (pages + 63) / 64)
    }

    private func isUsed(_ page: Int) -> Bool { used[page >> 6] & (1 << UInt64(page & 63)) != 0 }

    /// The first page of a free run of `count` pages, marked used; nil when
    /// there is none now.
    mutating func allocate(_ count: Int) -> Int? {
        guard count > 0, count <= pages else { return nil }
        var start = 0
        while start + count <= pages {
            // Whole used words are skipped at once.
            if start & 63 == 0, used[start >> 6] == ~0 {
                start += 64
                continue
            }
            var length = 0
            while length < count, !isUsed(start + length) { length += 1 }
            if length == count {
                mark(start, count, true)
                return start
            }
            start += length + 1
        }
        return nil
    }

    mutating func release(_ start: Int, _ count: Int) { mark(start, count, false) }

    private mutating func mark(_ start: Int, _ count: Int, _ value: Bool) {
        for page in start..<(start + count) {
            let bit: UInt64 = 1 << UInt64(page & 63)
            if value { used[page >> 6] |= bit } else { used[page >> 6] &= ~bit }
        }
    }

    /// Pages in use.
    var usedCount: Int { used.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// A ring endpoint whose disk can grow while connected.
public protocol BlockGrowable: AnyObject {
    /// Requests up to `sectors` are valid from now on (never shrinks).
    func grow(to sectors: UInt64)
}
