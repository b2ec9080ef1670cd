import BlockBackend
import Synchronization
import SystemPackage
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

/// A disk in memory that records every call, for ordering and range checks.
final class MemoryStorage: BlockStorage {
    enum Call: Equatable {
        case read(offset: UInt64, count: Int)
        case write(offset: UInt64, count: Int)
        case flush
        case discard(offset: UInt64, count: UInt64)
    }

    var bytes: [UInt8]
    let isReadOnly: Bool
    let discardSupport: BlockDiscardSupport?
    var calls: [Call] = []
    /// Makes every call fail with EIO while set.
    var failing = false
    var sectorCount: UInt64 { UInt64(bytes.count / 512) }
    var physicalSectorSize: Int { 512 }

    init(sectors: Int, readOnly: Bool = false, discard: Bool = true) {
        bytes = (0..<(sectors * 512)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        isReadOnly = readOnly
        discardSupport = discard ? BlockDiscardSupport(granularity: 512) : nil
    }

    var limits: BlockDiskLimits {
        BlockDiskLimits(sectors: sectorCount, readOnly: isReadOnly, discard: discardSupport != nil)
    }

    private func check(_ offset: UInt64, _ count: Int, _ what: String) throws(BlockStorageError) {
        if failing { throw BlockStorageError(what, path: "memory", errno: .ioError) }
        // The disk's bounds are the endpoint's to keep: a call outside them
        // is a bug the hostile tests look for (recorded, then refused).
        guard offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else {
            outOfRange += 1
            throw BlockStorageError(what, path: "memory", errno: .invalidArgument)
        }
    }

    var outOfRange = 0

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64)
        throws(BlockStorageError)
    {
        calls.append(.read(offset: offset, count: buffer.count))
        try check(offset, buffer.count, "read")
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(
                from: UnsafeRawBufferPointer(
                    rebasing: source[Int(offset)..<(Int(offset) + buffer.count)]))
        }
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockStorageError) {
        calls.append(.write(offset: offset, count: buffer.count))
        try check(offset, buffer.count, "write")
        for index in 0..<buffer.count { bytes[Int(offset) + index] = buffer[index] }
    }

    func flush() throws(BlockStorageError) {
        calls.append(.flush)
        if failing { throw BlockStorageError("flush", path: "memory", errno: .ioError) }
    }

    func discard(at offset: UInt64, count: UInt64, secure: Bool) throws(BlockStorageError) {
        calls.append(.discard(offset: offset, count: count))
        guard count <= UInt64(Int.max) else {
            throw BlockStorageError("discard", path: "memory", errno: .invalidArgument)
        }
        try check(offset, Int(count), "discard")
        for index in Int(offset)..<(Int(offset) + Int(count)) { bytes[index] = 0 }
    }
}

/// Counts calls from any thread.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// A guest with one blkif ring to a ``BlockEndpoint``, driven by hand: the
/// test queues requests, serves the endpoint on its own thread (the test's)
/// and reads the responses.
final class BlockRig<Request: BlkifWireRequest, Response: BlkifWireResponse> {
    let grants = FakeGrantTable()
    let guest = DomainID(7)
    let ringGrant: FakeGrantTable.Grant
    var front: FrontRing<Request, Response>
    let endpoint: BlockEndpoint<Request, Response>
    let notifications = Counter()

    convenience init(
        storage: any BlockStorage, limits: BlockDiskLimits, pageOrder: Int = 0,
        persistentGrants: Int? = nil
    ) throws {
        try self.init(
            engine: SynchronousEngine(storage), limits: limits, pageOrder: pageOrder,
            persistentGrants: persistentGrants)
    }

    init(
        engine: any BlockEngine, limits: BlockDiskLimits, pageOrder: Int = 0,
        persistentGrants: Int? = nil
    ) throws {
        ringGrant = grants.grant(from: guest, pages: 1 << pageOrder, writable: true)
        front = try FrontRing(initializing: ringGrant.bytes)
        let mapping = try grants.map(domain: guest, refs: ringGrant.refs, writable: true)
        let ring = JournaledBackRing<Request, Response>(
            ring: try BackRing(mapping: mapping), journal: nil)
        let counter = notifications
        endpoint = BlockEndpoint(
            ring: ring, engine: engine, limits: limits, grants: grants, frontend: guest,
            persistentGrants: persistentGrants
        ) { () throws(XenBusError) in counter.value.add(1, ordering: .relaxed) }
    }

    /// Guest pages for data; their bytes are the guest's view.
    func pages(_ count: Int, writable: Bool = true) -> FakeGrantTable.Grant {
        grants.grant(from: guest, pages: count, writable: writable)
    }

    func submit(_ request: BlkifRequest) throws {
        try front.enqueueRequest(Request(request))
        _ = front.pushRequests()
    }

    /// Serves until the endpoint has no work left and nothing in flight
    /// (an engine of real I/O is polled: its completions come meanwhile).
    func serve(budget: Int = 64) throws {
        var rounds = 0
        while try endpoint.serve(budget: budget) || endpoint.inFlight > 0 {
            rounds += 1
            if endpoint.inFlight > 0 { usleep(50) }
            if rounds > 400_000 {
                throw BlockBackendError.configuration("requests never completed")
            }
        }
    }

    func responses() throws -> [BlkifResponse] {
        var out: [BlkifResponse] = []
        while let response = try front.nextResponse() { out.append(response.response) }
        return out
    }

    /// Submits, serves and returns the one response.
    func run(_ request: BlkifRequest) throws -> BlkifResponse? {
        try submit(request)
        try serve()
        return try responses().first
    }
}

/// A 64-bit blkif ring's journal memory, zeroed: the test's stand-in for
/// the tmpfs file a restarted blkback maps again.
final class JournalMemory {
    let slots: UInt32
    let bytes: UnsafeMutableRawBufferPointer

    init(slots: UInt32) {
        self.slots = slots
        bytes = UnsafeMutableRawBufferPointer.allocate(
            byteCount: RingJournal.byteCount(
                slots: slots, requestSize: BlkifRequest64.wireSize,
                responseSize: BlkifResponse64.wireSize),
            alignment: 64)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    /// A fresh journal for the connection `identity` (the first process).
    func formatted(identity: UInt64) throws -> RingJournal {
        try RingJournal(
            formatting: bytes, slots: slots, requestSize: BlkifRequest64.wireSize,
            responseSize: BlkifResponse64.wireSize, identity: identity)
    }

    /// The journal as the successor process finds it.
    func recovered(identity: UInt64) -> RingJournal? {
        RingJournal(
            recovering: bytes, slots: slots, requestSize: BlkifRequest64.wireSize,
            responseSize: BlkifResponse64.wireSize, identity: identity)
    }
}

/// A read or write of whole pages: segment i covers `sectors[i]` of page
/// `refs[i]` (all 8 by default).
func rwRequest(
    _ operation: UInt8, id: UInt64, sector: UInt64, refs: [GrantRef],
    first: UInt8 = 0, last: UInt8 = 7
) -> BlkifRequest {
    var request = BlkifRequest(operation: operation, id: id)
    request.sector = sector
    request.segmentCount = UInt16(refs.count)
    for (index, ref) in refs.enumerated() where index < Blkif.maxDirectSegments {
        request.segments[index] = BlkifSegment(ref: ref, firstSector: first, lastSector: last)
    }
    return request
}

/// An indirect request whose segment descriptors are written into the
/// guest page `descriptors` (whole pages of `refs`).
func indirectRequest(
    _ operation: UInt8, id: UInt64, sector: UInt64, refs: [GrantRef],
    descriptors: FakeGrantTable.Grant
) -> BlkifRequest {
    for (index, ref) in refs.enumerated() {
        let offset = index * 8
        descriptors.bytes.storeBytes(
            of: ref.rawValue.littleEndian, toByteOffset: offset, as: UInt32.self)
        descriptors.bytes[offset + 4] = 0
        descriptors.bytes[offset + 5] = 7
    }
    var request = BlkifRequest(operation: BlkifOperation.indirect, id: id)
    request.indirectOperation = operation
    request.segmentCount = UInt16(refs.count)
    request.sector = sector
    for (index, ref) in descriptors.refs.enumerated() where index < 8 {
        request.indirectRefs[index] = ref
    }
    return request
}

/// Deterministic pseudo-random bytes (xorshift), so a failure repeats.
func patternBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// A temporary file of `bytes`, removed by the returned closure.
func temporaryFile(_ bytes: [UInt8]) throws -> (path: String, remove: () -> Void) {
    var template = Array("/tmp/blkback-test-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw BlockBackendError.configuration("mkstemp failed") }
    let path = String(
        decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard written == bytes.count else { throw BlockBackendError.configuration("short write") }
    return (path, { unlink(path) })
}

func fileBytes(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        out += buffer[0..<count]
    }
    return out
}

/// An engine whose operations complete in a random order, a random part
/// at each reap (so the backing sees them reordered, as concurrent I/O
/// may), running them on `storage` at completion; tags in `held` do not
/// complete until released. Its descriptor is never polled: the rig's
/// serve loop reaps.
final class ShuffledEngine: BlockEngine {
    let storage: any BlockStorage
    var random: HostileTests.Generator
    var held: Set<UInt32> = []
    private var queued: [(BlockOperation, UInt32)] = []
    private var submitted: [(BlockOperation, UInt32)] = []
    /// Operations submitted at once, at most.
    var peakSubmitted = 0

    init(_ storage: any BlockStorage, seed: UInt64) {
        self.storage = storage
        random = HostileTests.Generator(state: seed)
    }

    var room: Int { 256 - queued.count - submitted.count }
    var completionDescriptor: FileDescriptor? { FileDescriptor(rawValue: 0) }
    var hasUnsubmitted: Bool { !queued.isEmpty }
    /// Only the rig's serve loop reaps (completions "arrive" later).
    var hasCompletions: Bool { false }
    func enqueue(_ operation: BlockOperation, tag: UInt32) { queued.append((operation, tag)) }

    func submit() -> Bool {
        submitted += queued
        queued.removeAll()
        peakSubmitted = max(peakSubmitted, submitted.count)
        return true
    }

    func reap(_ body: (BlockCompletion) -> Void) {
        submitted.shuffle(using: &random)
        let count = submitted.isEmpty ? 0 : Int.random(in: 1...submitted.count, using: &random)
        var kept: [(BlockOperation, UInt32)] = []
        var done = 0
        for (operation, tag) in submitted {
            guard done < count, !held.contains(tag) else {
                kept.append((operation, tag))
                continue
            }
            done += 1
            body(BlockCompletion(tag: tag, error: storage.perform(operation)))
        }
        submitted = kept
    }

    func drain() {
        queued.removeAll()
        submitted.removeAll()
    }
}
