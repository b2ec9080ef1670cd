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
    /// Batches executed; each makes at most two grant-copy calls.
    public var batches = 0
    /// Grant-copy calls made for data.
    public var grantCopyCalls = 0
    /// `fdatasync` calls made for flushes and barriers.
    public var flushes = 0
}

/// One blkif ring's data path: takes requests, validates each from its
/// private copy, and executes them in batches against the backing:
///
/// 1. one grant copy brings every write's data of the batch into the
///    bounce buffer;
/// 2. the I/O runs in ring order (so a flush follows every earlier write's
///    completion, and a barrier is a batch of its own: earlier requests
///    drained and flushed, its data written, flushed again);
/// 3. one grant copy takes every read's data to the guest;
/// 4. every request of the batch is answered, then pushed.
///
/// Writes are answered once the backing returned (in its cache, so they
/// survive this process); flushes and barriers once `fdatasync` returned.
/// The ring is journaled: a successor redoes requests left unanswered,
/// which is safe because each is idempotent (reads and writes of fixed
/// sectors, flushes, discards).
public final class BlockEndpoint<Request: BlkifWireRequest, Response: BlkifWireResponse>:
    DataPathEndpoint
{
    /// A request of the current batch.
    private struct Planned {
        var token: RequestToken
        var request: BlockRequest
        /// Where its data lives in the bounce buffer.
        var localOffset: Int
        /// Its write-data segments in the copy batch (phase 1).
        var copyStart: Int
        var status: Int16 = BlkifStatus.okay
    }

    private var ring: JournaledBackRing<Request, Response>
    private let notify: () throws(XenBusError) -> Void
    private let storage: any BlockStorage
    private let frontend: DomainID
    private var validator: BlockRequestValidator
    private let bounce: UnsafeMutableRawBufferPointer
    private let copies: GrantCopyBatch
    private let grants: any GrantTable
    private var incoming: [BlkifSegment] = []
    private var segments: [BlkifSegment] = []
    private var planned: [Planned] = []
    private var bounceUsed = 0
    /// Whether a write completed since the last successful flush (a fresh
    /// process assumes so: its predecessor may have written).
    private var dirty = true
    public private(set) var statistics = BlockStatistics()
    /// Why the last request was refused (for diagnostics; guest text is
    /// never logged from the data path).
    public private(set) var lastRejection: String?

    /// Pages of bounce buffer per ring: two of the largest requests
    /// (256 segments of a page each).
    public static var bouncePages: Int { 2 * Blkif.maxIndirectSegments }

    /// Serves `ring` for the disk `storage` of `frontend`; `notify` signals
    /// the frontend's event channel.
    public init(
        ring: consuming JournaledBackRing<Request, Response>, storage: any BlockStorage,
        limits: BlockDiskLimits, grants: any GrantTable, frontend: DomainID,
        notify: @escaping () throws(XenBusError) -> Void
    ) {
        self.ring = ring
        self.notify = notify
        self.storage = storage
        self.frontend = frontend
        self.grants = grants
        validator = BlockRequestValidator(
            limits: limits,
            indirect: PrivateGrantCopy(table: grants, capacity: Blkif.maxIndirectPageSlots),
            frontend: frontend)
        bounce = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Self.bouncePages * xenPageSize, alignment: xenPageSize)
        copies = grants.makeCopyBatch(capacity: Self.bouncePages, local: bounce)
        incoming.reserveCapacity(Blkif.maxIndirectSegments)
        segments.reserveCapacity(Self.bouncePages)
        planned.reserveCapacity(Self.bouncePages)
    }

    deinit { bounce.deallocate() }

    public func serve(budget: Int) throws(XenBusError) -> Bool {
        var taken = 0
        while taken < budget, let (token, wire) = try ring.nextRequest() {
            taken += 1
            statistics.requests += 1
            incoming.removeAll(keepingCapacity: true)
            switch validator.validate(wire.request, segments: &incoming) {
            case .reject(let id, let operation, let status, let reason):
                statistics.rejected += 1
                lastRejection = reason
                try ring.respond(
                    to: token,
                    with: Response(BlkifResponse(id: id, operation: operation, status: status)))
            case .accept(let request):
                try plan(token, request)
            }
        }
        try execute()
        if ring.pushResponses() { try notify() }
        if taken == budget { return true }
        return try ring.finalCheckForRequests()
    }

    /// Adds a request to the batch, executing the batch first when the
    /// request does not fit or is a barrier (which waits for everything
    /// before it and runs alone).
    private func plan(_ token: RequestToken, _ request: BlockRequest) throws(XenBusError) {
        let bytes =
            request.command == .read || request.command.carriesWriteData
            ? Int(request.byteCount) : 0
        if request.command == .barrier || bounceUsed + bytes > bounce.count
            || segments.count + incoming.count > copies.capacity
        {
            try execute()
        }
        var entry = Planned(
            token: token, request: request, localOffset: bounceUsed, copyStart: copies.count)
        entry.request.segmentStart = segments.count
        var offset = bounceUsed
        for segment in incoming {
            segments.append(segment)
            let length = (Int(segment.lastSector) - Int(segment.firstSector) + 1) * Blkif.sectorSize
            if request.command.carriesWriteData {
                _ = copies.append(
                    GrantCopySegment(
                        .fromGuest, domain: frontend, ref: segment.ref,
                        offset: UInt16(segment.firstSector) * UInt16(Blkif.sectorSize),
                        length: UInt16(length), localOffset: offset))
            }
            offset += length
        }
        bounceUsed += bytes
        planned.append(entry)
        if request.command == .barrier { try execute() }
    }

    /// Runs the batch's four phases and answers its requests.
    private func execute() throws(XenBusError) {
        guard !planned.isEmpty else { return }
        statistics.batches += 1
        // 1: every write's data from the guest, one call.
        if copies.count > 0 {
            copyBatch()
            for index in planned.indices where planned[index].request.command.carriesWriteData {
                let request = planned[index].request
                let start = planned[index].copyStart
                for segment in start..<(start + request.segmentCount)
                where !copies.status(at: segment).isOkay {
                    planned[index].status = BlkifStatus.error
                }
            }
        }
        // 2: the I/O, in ring order.
        for index in planned.indices where planned[index].status == BlkifStatus.okay {
            planned[index].status = perform(planned[index])
        }
        // 3: every read's data to the guest, one call.
        copies.removeAll()
        for index in planned.indices
        where planned[index].request.command == .read && planned[index].status == BlkifStatus.okay {
            planned[index].copyStart = copies.count
            var offset = planned[index].localOffset
            let request = planned[index].request
            for segment in segments[
                request.segmentStart..<(request.segmentStart + request.segmentCount)]
            {
                let length =
                    (Int(segment.lastSector) - Int(segment.firstSector) + 1) * Blkif.sectorSize
                _ = copies.append(
                    GrantCopySegment(
                        .toGuest, domain: frontend, ref: segment.ref,
                        offset: UInt16(segment.firstSector) * UInt16(Blkif.sectorSize),
                        length: UInt16(length), localOffset: offset))
                offset += length
            }
        }
        if copies.count > 0 {
            copyBatch()
            for index in planned.indices
            where planned[index].request.command == .read
                && planned[index].status == BlkifStatus.okay
            {
                let start = planned[index].copyStart
                for segment in start..<(start + planned[index].request.segmentCount)
                where !copies.status(at: segment).isOkay {
                    planned[index].status = BlkifStatus.error
                }
            }
        }
        // 4: the answers.
        for entry in planned {
            if entry.status != BlkifStatus.okay { statistics.failed += 1 }
            try ring.respond(
                to: entry.token,
                with: Response(
                    BlkifResponse(
                        id: entry.request.id, operation: entry.request.responseOperation,
                        status: entry.status)))
        }
        planned.removeAll(keepingCapacity: true)
        segments.removeAll(keepingCapacity: true)
        copies.removeAll()
        bounceUsed = 0
    }

    /// One grant-copy call; a call failing as a whole leaves every segment
    /// not okay, which fails those requests only.
    private func copyBatch() {
        statistics.grantCopyCalls += 1
        do throws(XenBusError) { try grants.copy(copies) } catch {}
    }

    /// One request's backing I/O; its status.
    private func perform(_ entry: Planned) -> Int16 {
        let request = entry.request
        // Discards carry no data: their sector count is not a buffer size.
        let length =
            request.command == .read || request.command.carriesWriteData
            ? Int(request.byteCount) : 0
        let data = UnsafeMutableRawBufferPointer(
            rebasing: bounce[entry.localOffset..<(entry.localOffset + length)])
        do throws(BlockStorageError) {
            switch request.command {
            case .read:
                try storage.read(into: data, at: request.byteOffset)
            case .write:
                dirty = true
                try storage.write(UnsafeRawBufferPointer(data), at: request.byteOffset)
            case .flush, .barrier:
                // The flush covers every write completed before it; data
                // the request carries is written after it and made stable
                // before the answer.
                if dirty || request.segmentCount == 0 { try flush() }
                if request.segmentCount > 0 {
                    dirty = true
                    try storage.write(UnsafeRawBufferPointer(data), at: request.byteOffset)
                    try flush()
                }
            case .discard(let secure):
                dirty = true
                try storage.discard(
                    at: request.byteOffset, count: request.byteCount, secure: secure)
            }
            return BlkifStatus.okay
        } catch {
            return error.isNotSupported ? BlkifStatus.notSupported : BlkifStatus.error
        }
    }

    private func flush() throws(BlockStorageError) {
        statistics.flushes += 1
        try storage.flush()
        dirty = false
    }
}
