import XenBus

/// io/blkif.h's operation codes (`BLKIF_OP_*`).
public enum BlkifOperation {
    public static let read: UInt8 = 0
    public static let write: UInt8 = 1
    public static let writeBarrier: UInt8 = 2
    public static let flushDiskCache: UInt8 = 3
    public static let discard: UInt8 = 5
    public static let indirect: UInt8 = 6
}

/// io/blkif.h's response statuses (`BLKIF_RSP_*`).
public enum BlkifStatus {
    public static let okay: Int16 = 0
    /// The request failed (EIO in the guest).
    public static let error: Int16 = -1
    /// The operation is not supported (the guest stops using it).
    public static let notSupported: Int16 = -2
}

/// io/blkif.h's limits and `info` bits.
public enum Blkif {
    /// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
    public static let maxDirectSegments = 11
    /// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`: slots for indirect page refs.
    public static let maxIndirectPageSlots = 8
    /// What we advertise in `feature-max-indirect-segments` (Linux
    /// blkback's `MAX_INDIRECT_SEGMENTS`).
    public static let maxIndirectSegments = 256
    /// `struct blkif_request_segment` is 8 bytes: 512 fit in one page.
    public static let segmentsPerIndirectPage = 512
    /// Sectors are 512 bytes in the protocol whatever the backing's.
    public static let sectorSize = 512
    /// Sectors in one 4 KiB page (`last_sect` is at most 7).
    public static let sectorsPerPage = 8
    /// `VDISK_CDROM`, `VDISK_REMOVABLE`, `VDISK_READONLY`.
    public static let infoCDROM: UInt32 = 0x1
    public static let infoRemovable: UInt32 = 0x2
    public static let infoReadOnly: UInt32 = 0x4
    /// `BLKIF_DISCARD_SECURE`.
    public static let discardSecureFlag: UInt8 = 0x1
}

/// One `struct blkif_request_segment`: a granted page and the sectors of it
/// the request covers (`first_sect` ... `last_sect`, inclusive), as the guest
/// wrote them: not yet validated.
public struct BlkifSegment: Sendable, Equatable {
    public var ref: GrantRef
    public var firstSector: UInt8
    public var lastSector: UInt8

    public init(ref: GrantRef, firstSector: UInt8, lastSector: UInt8) {
        self.ref = ref
        self.firstSector = firstSector
        self.lastSector = lastSector
    }
}

/// A blkif request decoded from the guest's slot, the same for every ABI:
/// the raw fields of whichever union member `operation` selects, not yet
/// validated (``BlockRequestValidator`` does that).
public struct BlkifRequest: Sendable {
    /// `operation`.
    public var operation: UInt8
    /// `id`: echoed in the response.
    public var id: UInt64
    /// `handle` (read/write, discard, indirect).
    public var handle: UInt16
    /// `sector_number`.
    public var sector: UInt64
    /// `nr_segments` (read/write: the slot's own; indirect: the 16-bit count).
    public var segmentCount: UInt16
    /// The direct segments (read/write), `segmentCount` of them valid.
    public var segments: InlineArray<11, BlkifSegment>
    /// `indirect_op` (indirect only).
    public var indirectOperation: UInt8
    /// `indirect_grefs` (indirect only).
    public var indirectRefs: InlineArray<8, GrantRef>
    /// `flag` (discard only).
    public var discardFlags: UInt8
    /// `nr_sectors` (discard only).
    public var discardSectors: UInt64

    /// An empty request of `operation`, for encoders and tests.
    public init(operation: UInt8, id: UInt64) {
        self.operation = operation
        self.id = id
        handle = 0
        sector = 0
        segmentCount = 0
        segments = InlineArray(
            repeating: BlkifSegment(ref: GrantRef(0), firstSector: 0, lastSector: 0))
        indirectOperation = 0
        indirectRefs = InlineArray(repeating: GrantRef(0))
        discardFlags = 0
        discardSectors = 0
    }
}

/// Field offsets of one ABI's request union members and response
/// (io/blkif.h; the x86_32 layout is i386's, where `uint64_t` is 4-aligned).
/// `BlkifABITests` checks them against the header compiled both ways.
public struct BlkifLayout: Sendable, Equatable {
    public var requestSize: Int
    public var requestAlignment: Int
    public var responseSize: Int
    public var responseAlignment: Int
    /// read/write: `id`, `sector_number`, `seg[0]`.
    public var rwID: Int
    public var rwSector: Int
    public var rwSegments: Int
    /// discard: `id`, `sector_number`, `nr_sectors`.
    public var discardID: Int
    public var discardSector: Int
    public var discardSectors: Int
    /// indirect: `id`, `sector_number`, `handle`, `indirect_grefs[0]`.
    public var indirectID: Int
    public var indirectSector: Int
    public var indirectHandle: Int
    public var indirectRefs: Int
    /// response: `id`, `operation`, `status`.
    public var responseID: Int
    public var responseOperation: Int
    public var responseStatus: Int

    /// x86_64 (and the native ABI of our x86_64 dom0).
    public static let x86_64 = BlkifLayout(
        requestSize: 112, requestAlignment: 8, responseSize: 16, responseAlignment: 8,
        rwID: 8, rwSector: 16, rwSegments: 24,
        discardID: 8, discardSector: 16, discardSectors: 24,
        indirectID: 8, indirectSector: 16, indirectHandle: 24, indirectRefs: 28,
        responseID: 0, responseOperation: 8, responseStatus: 10)

    /// x86_32: i386 aligns `uint64_t` to 4, so nothing pads before `id`.
    public static let x86_32 = BlkifLayout(
        requestSize: 108, requestAlignment: 4, responseSize: 12, responseAlignment: 4,
        rwID: 4, rwSector: 12, rwSegments: 20,
        discardID: 4, discardSector: 12, discardSectors: 20,
        indirectID: 4, indirectSector: 12, indirectHandle: 20, indirectRefs: 24,
        responseID: 0, responseOperation: 8, responseStatus: 10)

    /// Decodes a request slot (a private copy) with this layout.
    public func decode(_ entry: RingEntryReader) -> BlkifRequest {
        let operation: UInt8 = entry.load(at: 0)
        switch operation {
        case BlkifOperation.discard:
            var request = BlkifRequest(operation: operation, id: entry.load(at: discardID))
            request.discardFlags = entry.load(at: 1)
            request.handle = entry.load(at: 2)
            request.sector = entry.load(at: discardSector)
            request.discardSectors = entry.load(at: discardSectors)
            return request
        case BlkifOperation.indirect:
            var request = BlkifRequest(operation: operation, id: entry.load(at: indirectID))
            request.indirectOperation = entry.load(at: 1)
            request.segmentCount = entry.load(at: 2)
            request.sector = entry.load(at: indirectSector)
            request.handle = entry.load(at: indirectHandle)
            for index in 0..<Blkif.maxIndirectPageSlots {
                request.indirectRefs[index] = GrantRef(
                    entry.load(UInt32.self, at: indirectRefs + 4 * index))
            }
            return request
        default:
            // read, write, barrier, flush and unknown codes share the
            // read/write member (unknown ones only need `id`).
            var request = BlkifRequest(operation: operation, id: entry.load(at: rwID))
            request.segmentCount = UInt16(entry.load(UInt8.self, at: 1))
            request.handle = entry.load(at: 2)
            request.sector = entry.load(at: rwSector)
            for index in 0..<Blkif.maxDirectSegments {
                let offset = rwSegments + 8 * index
                request.segments[index] = BlkifSegment(
                    ref: GrantRef(entry.load(UInt32.self, at: offset)),
                    firstSector: entry.load(at: offset + 4), lastSector: entry.load(at: offset + 5))
            }
            return request
        }
    }

    /// Encodes `request` into a slot with this layout (the frontend's side,
    /// for tests and tools).
    public func encode(_ request: BlkifRequest, to entry: inout RingEntryWriter) {
        entry.store(request.operation, at: 0)
        switch request.operation {
        case BlkifOperation.discard:
            entry.store(request.discardFlags, at: 1)
            entry.store(request.handle, at: 2)
            entry.store(request.id, at: discardID)
            entry.store(request.sector, at: discardSector)
            entry.store(request.discardSectors, at: discardSectors)
        case BlkifOperation.indirect:
            entry.store(request.indirectOperation, at: 1)
            entry.store(request.segmentCount, at: 2)
            entry.store(request.id, at: indirectID)
            entry.store(request.sector, at: indirectSector)
            entry.store(request.handle, at: indirectHandle)
            for index in 0..<Blkif.maxIndirectPageSlots {
                entry.store(request.indirectRefs[index].rawValue, at: indirectRefs + 4 * index)
            }
        default:
            entry.store(UInt8(truncatingIfNeeded: request.segmentCount), at: 1)
            entry.store(request.handle, at: 2)
            entry.store(request.id, at: rwID)
            entry.store(request.sector, at: rwSector)
            for index in 0..<Blkif.maxDirectSegments {
                let offset = rwSegments + 8 * index
                let segment = request.segments[index]
                entry.store(segment.ref.rawValue, at: offset)
                entry.store(segment.firstSector, at: offset + 4)
                entry.store(segment.lastSector, at: offset + 5)
            }
        }
    }
}

/// A blkif response, the same for every ABI.
public struct BlkifResponse: Sendable, Equatable {
    public var id: UInt64
    public var operation: UInt8
    public var status: Int16

    public init(id: UInt64, operation: UInt8, status: Int16) {
        self.id = id
        self.operation = operation
        self.status = status
    }
}

/// A blkif ring's message types for one ABI: the ring is generic over them,
/// the endpoint works on ``BlkifRequest``/``BlkifResponse``.
public protocol BlkifWireRequest: RingDecodable, RingEncodable, Sendable {
    static var layout: BlkifLayout { get }
    var request: BlkifRequest { get }
    init(_ request: BlkifRequest)
}

/// The response half of ``BlkifWireRequest``.
public protocol BlkifWireResponse: RingDecodable, RingEncodable, Sendable {
    static var layout: BlkifLayout { get }
    var response: BlkifResponse { get }
    init(_ response: BlkifResponse)
}

extension BlkifWireRequest {
    public static var wireSize: Int { layout.requestSize }
    public static var wireAlignment: Int { layout.requestAlignment }
    public init(ringEntry entry: RingEntryReader) { self.init(Self.layout.decode(entry)) }
    public func encode(to entry: inout RingEntryWriter) { Self.layout.encode(request, to: &entry) }
}

extension BlkifWireResponse {
    public static var wireSize: Int { layout.responseSize }
    public static var wireAlignment: Int { layout.responseAlignment }

    public init(ringEntry entry: RingEntryReader) {
        let layout = Self.layout
        self.init(
            BlkifResponse(
                id: entry.load(at: layout.responseID),
                operation: entry.load(at: layout.responseOperation),
                status: entry.load(at: layout.responseStatus)))
    }

    public func encode(to entry: inout RingEntryWriter) {
        let layout = Self.layout
        entry.store(response.id, at: layout.responseID)
        entry.store(response.operation, at: layout.responseOperation)
        entry.store(response.status, at: layout.responseStatus)
    }
}

/// `struct blkif_request` of the x86_64 ABI (`protocol` = `x86_64-abi`, or
/// none: our native ABI).
public struct BlkifRequest64: BlkifWireRequest {
    public static let layout = BlkifLayout.x86_64
    public var request: BlkifRequest
    public init(_ request: BlkifRequest) { self.request = request }
}

/// `struct blkif_response` of the x86_64 ABI.
public struct BlkifResponse64: BlkifWireResponse {
    public static let layout = BlkifLayout.x86_64
    public var response: BlkifResponse
    public init(_ response: BlkifResponse) { self.response = response }
}

/// `struct blkif_request` of the x86_32 ABI (`protocol` = `x86_32-abi`).
public struct BlkifRequest32: BlkifWireRequest {
    public static let layout = BlkifLayout.x86_32
    public var request: BlkifRequest
    public init(_ request: BlkifRequest) { self.request = request }
}

/// `struct blkif_response` of the x86_32 ABI.
public struct BlkifResponse32: BlkifWireResponse {
    public static let layout = BlkifLayout.x86_32
    public var response: BlkifResponse
    public init(_ response: BlkifResponse) { self.response = response }
}
