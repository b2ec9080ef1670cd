import Glibc
import XenBus

/// The C reference's `struct cref_test_request` (24 bytes, align 8).
struct TestRequest: RingDecodable, RingEncodable, Equatable {
    static let wireSize = 24
    static let wireAlignment = 8

    var id: UInt32
    var op: UInt16
    var flags: UInt8
    var payload: UInt64
    var extra: UInt64

    init(id: UInt32, op: UInt16 = 1, flags: UInt8 = 0, payload: UInt64 = 0, extra: UInt64 = 0) {
        self.id = id
        self.op = op
        self.flags = flags
        self.payload = payload
        self.extra = extra
    }

    init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        op = entry.load(at: 4)
        flags = entry.load(at: 6)
        payload = entry.load(at: 8)
        extra = entry.load(at: 16)
    }

    func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(op, at: 4)
        entry.store(flags, at: 6)
        entry.store(payload, at: 8)
        entry.store(extra, at: 16)
    }
}

/// The C reference's `struct cref_test_response` (8 bytes, align 4).
struct TestResponse: RingDecodable, RingEncodable, Equatable {
    static let wireSize = 8
    static let wireAlignment = 4

    var id: UInt32
    var status: Int16

    init(id: UInt32, status: Int16) {
        self.id = id
        self.status = status
    }

    init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        status = entry.load(at: 4)
    }

    func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(status, at: 4)
    }
}

/// `struct blkif_request` of io/blkif.h (112 bytes on x86_64).
struct BlkRequest: RingDecodable, RingEncodable, Equatable {
    static let wireSize = 112
    static let wireAlignment = 8
    static let segmentsOffset = 24
    static let segmentStride = 8

    struct Segment: Equatable {
        var gref: UInt32
        var firstSector: UInt8
        var lastSector: UInt8
    }

    var operation: UInt8
    var handle: UInt16
    var id: UInt64
    var sector: UInt64
    var segments: [Segment]

    init(operation: UInt8, handle: UInt16, id: UInt64, sector: UInt64, segments: [Segment]) {
        self.operation = operation
        self.handle = handle
        self.id = id
        self.sector = sector
        self.segments = segments
    }

    init(ringEntry entry: RingEntryReader) {
        operation = entry.load(at: 0)
        let count = min(Int(entry.load(UInt8.self, at: 1)), 11)
        handle = entry.load(at: 2)
        id = entry.load(at: 8)
        sector = entry.load(at: 16)
        segments = (0..<count).map { index in
            let base = Self.segmentsOffset + index * Self.segmentStride
            return Segment(
                gref: entry.load(at: base), firstSector: entry.load(at: base + 4),
                lastSector: entry.load(at: base + 5))
        }
    }

    func encode(to entry: inout RingEntryWriter) {
        entry.store(operation, at: 0)
        entry.store(UInt8(segments.count), at: 1)
        entry.store(handle, at: 2)
        entry.store(id, at: 8)
        entry.store(sector, at: 16)
        for (index, segment) in segments.prefix(11).enumerated() {
            let base = Self.segmentsOffset + index * Self.segmentStride
            entry.store(segment.gref, at: base)
            entry.store(segment.firstSector, at: base + 4)
            entry.store(segment.lastSector, at: base + 5)
        }
    }
}

/// `struct blkif_response` (16 bytes on x86_64).
struct BlkResponse: RingDecodable, RingEncodable, Equatable {
    static let wireSize = 16
    static let wireAlignment = 8

    var id: UInt64
    var operation: UInt8
    var status: Int16

    init(id: UInt64, operation: UInt8, status: Int16) {
        self.id = id
        self.operation = operation
        self.status = status
    }

    init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        operation = entry.load(at: 8)
        status = entry.load(at: 10)
    }

    func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(operation, at: 8)
        entry.store(status, at: 10)
    }
}

/// Deterministic pseudo-random numbers (SplitMix64) so every failure replays.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Page-aligned memory for rings, freed on deinit.
final class PageBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(pages: Int, fill: UInt8 = 0) {
        bytes = .allocate(byteCount: pages * xenPageSize, alignment: xenPageSize)
        bytes.initializeMemory(as: UInt8.self, repeating: fill)
    }

    init(byteCount: Int) {
        bytes = .allocate(byteCount: max(byteCount, 1), alignment: xenPageSize)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    var array: [UInt8] { Array(bytes) }

    /// Byte-for-byte equality with another buffer of the same size.
    func sameBytes(as other: PageBuffer) -> Bool {
        bytes.count == other.bytes.count
            && memcmp(bytes.baseAddress!, other.bytes.baseAddress!, bytes.count) == 0
    }

    func load(_ offset: Int) -> UInt32 { bytes.load(fromByteOffset: offset, as: UInt32.self) }

    func store(_ value: UInt32, _ offset: Int) {
        bytes.storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
    }
}
