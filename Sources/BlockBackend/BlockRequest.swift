import XenBus

/// What a validated request asks of the backing.
public enum BlockCommand: Sendable, Equatable {
    case read
    case write
    /// `BLKIF_OP_FLUSH_DISKCACHE`: every earlier completed write stable;
    /// with segments, their data is written after that flush and flushed too.
    case flush
    /// `BLKIF_OP_WRITE_BARRIER`: earlier writes drained and flushed, then
    /// the segments' data (if any) written and flushed.
    case barrier
    /// `BLKIF_OP_DISCARD` of ``BlockRequest/sectorCount`` sectors.
    case discard(secure: Bool)

    /// Whether the command carries guest data to write.
    public var carriesWriteData: Bool {
        switch self {
        case .write, .flush, .barrier: return true
        case .read, .discard: return false
        }
    }
}

/// A request that passed ``BlockRequestValidator``: every field checked
/// against the disk, its segments (direct or from the indirect pages) in
/// the validator's output array at `segmentStart ..< segmentStart + segmentCount`.
public struct BlockRequest: Sendable, Equatable {
    /// The guest's `id`, echoed in the response.
    public var id: UInt64
    /// The operation code the response carries (for indirect requests the
    /// `indirect_op`, as Linux blkback answers and blkfront expects).
    public var responseOperation: UInt8
    public var command: BlockCommand
    /// First 512-byte sector.
    public var sector: UInt64
    /// Sectors covered: the segments' total, or a discard's `nr_sectors`.
    public var sectorCount: UInt64
    public var segmentStart: Int
    public var segmentCount: Int

    /// The byte range on the backing.
    public var byteOffset: UInt64 { sector &* UInt64(Blkif.sectorSize) }
    public var byteCount: UInt64 { sectorCount &* UInt64(Blkif.sectorSize) }
}

/// The validator's answer for one guest request.
public enum BlockVerdict: Sendable, Equatable {
    case accept(BlockRequest)
    /// Answer at once with `status`; `reason` is for the log.
    case reject(id: UInt64, operation: UInt8, status: Int16, reason: String)
}

/// The disk's side of validation: size, mode and features as published.
public struct BlockDiskLimits: Sendable, Equatable {
    public var sectors: UInt64
    public var readOnly: Bool
    public var discard: Bool
    public var secureDiscard: Bool

    public init(sectors: UInt64, readOnly: Bool, discard: Bool, secureDiscard: Bool = false) {
        self.sectors = sectors
        self.readOnly = readOnly
        self.discard = discard
        self.secureDiscard = secureDiscard
    }
}

/// Checks each request a guest puts on the ring before anything acts on it:
/// operation code, segment count, each segment's sectors within its page,
/// the sector range against the disk, the mode, and the contents of
/// indirect pages (copied once into private memory, then decoded). Whatever
/// the guest wrote, the result is a request that touches only its own
/// disk's sectors, or a rejection the guest gets as a response.
public struct BlockRequestValidator {
    public var limits: BlockDiskLimits
    /// Copies indirect descriptor pages privately (one connection's).
    let indirect: PrivateGrantCopy
    let frontend: DomainID

    /// A validator for one connection; `indirect` must hold at least
    /// ``Blkif/maxIndirectPageSlots`` pages.
    public init(limits: BlockDiskLimits, indirect: PrivateGrantCopy, frontend: DomainID) {
        self.limits = limits
        self.indirect = indirect
        self.frontend = frontend
    }

    /// Validates `raw`; accepted segments are appended to `segments`.
    public func validate(_ raw: BlkifRequest, segments: inout [BlkifSegment]) -> BlockVerdict {
        let start = segments.count
        let verdict = check(raw, start: start, segments: &segments)
        if case .reject = verdict { segments.removeSubrange(start...) }
        return verdict
    }

    private func reject(_ raw: BlkifRequest, _ operation: UInt8, _ status: Int16, _ reason: String)
        -> BlockVerdict
    {
        .reject(id: raw.id, operation: operation, status: status, reason: reason)
    }

    private func check(_ raw: BlkifRequest, start: Int, segments: inout [BlkifSegment])
        -> BlockVerdict
    {
        let operation = raw.operation
        let command: BlockCommand
        var responseOperation = operation
        let count = Int(raw.segmentCount)
        var allowsEmpty = false
        switch operation {
        case BlkifOperation.read:
            command = .read
        case BlkifOperation.write:
            command = .write
        case BlkifOperation.flushDiskCache, BlkifOperation.writeBarrier:
            // Not advertised on read-only disks: not supported there, which
            // blkfront takes as "stop sending them".
            if limits.readOnly {
                return reject(raw, operation, BlkifStatus.notSupported, "flush on a read-only disk")
            }
            command = operation == BlkifOperation.flushDiskCache ? .flush : .barrier
            allowsEmpty = true
        case BlkifOperation.discard:
            return checkDiscard(raw, start: start)
        case BlkifOperation.indirect:
            switch raw.indirectOperation {
            case BlkifOperation.read: command = .read
            case BlkifOperation.write: command = .write
            default:
                return reject(
                    raw, raw.indirectOperation, BlkifStatus.error,
                    "indirect request with operation \(raw.indirectOperation)")
            }
            responseOperation = raw.indirectOperation
        default:
            return reject(
                raw, operation, BlkifStatus.notSupported, "unknown operation \(operation)")
        }
        if command.carriesWriteData && limits.readOnly {
            return reject(raw, responseOperation, BlkifStatus.error, "write to a read-only disk")
        }
        let maximum =
            operation == BlkifOperation.indirect
            ? Blkif.maxIndirectSegments : Blkif.maxDirectSegments
        guard count <= maximum, count > 0 || allowsEmpty else {
            return reject(raw, responseOperation, BlkifStatus.error, "\(count) segments")
        }
        if operation == BlkifOperation.indirect {
            if let fault = copyIndirect(raw, count: count, into: &segments) {
                return reject(raw, responseOperation, BlkifStatus.error, fault)
            }
        } else {
            for index in 0..<count { segments.append(raw.segments[index]) }
        }
        var sectors: UInt64 = 0
        for index in start..<(start + count) {
            let segment = segments[index]
            guard segment.firstSector <= segment.lastSector,
                Int(segment.lastSector) < Blkif.sectorsPerPage
            else {
                return reject(
                    raw, responseOperation, BlkifStatus.error,
                    "segment \(index - start) sectors \(segment.firstSector)...\(segment.lastSector)"
                )
            }
            sectors += UInt64(segment.lastSector - segment.firstSector) + 1
        }
        // An empty flush or barrier names no sectors: whatever its
        // sector_number says, it touches none.
        guard count == 0 || inRange(raw.sector, sectors) else {
            return reject(
                raw, responseOperation, BlkifStatus.error,
                "sectors \(raw.sector)+\(sectors) beyond the disk's \(limits.sectors)")
        }
        return .accept(
            BlockRequest(
                id: raw.id, responseOperation: responseOperation, command: command,
                sector: raw.sector, sectorCount: sectors, segmentStart: start, segmentCount: count))
    }

    private func checkDiscard(_ raw: BlkifRequest, start: Int) -> BlockVerdict {
        let operation = BlkifOperation.discard
        guard limits.discard, !limits.readOnly else {
            return reject(raw, operation, BlkifStatus.notSupported, "discard not supported")
        }
        guard inRange(raw.sector, raw.discardSectors) else {
            return reject(
                raw, operation, BlkifStatus.error,
                "discard \(raw.sector)+\(raw.discardSectors) beyond the disk's \(limits.sectors)")
        }
        // io/blkif.h: the secure flag is ignored unless discard-secure is set.
        let secure = limits.secureDiscard && raw.discardFlags & Blkif.discardSecureFlag != 0
        return .accept(
            BlockRequest(
                id: raw.id, responseOperation: operation, command: .discard(secure: secure),
                sector: raw.sector, sectorCount: raw.discardSectors, segmentStart: start,
                segmentCount: 0))
    }

    /// `sector ..< sector + count` lies on the disk (no overflow).
    private func inRange(_ sector: UInt64, _ count: UInt64) -> Bool {
        count <= limits.sectors && sector <= limits.sectors - count
    }

    /// Copies the indirect pages the segment count needs and decodes the
    /// segments from that private copy; the fault text, or nil.
    private func copyIndirect(_ raw: BlkifRequest, count: Int, into segments: inout [BlkifSegment])
        -> String?
    {
        let pages = (count + Blkif.segmentsPerIndirectPage - 1) / Blkif.segmentsPerIndirectPage
        indirect.removeAll()
        for page in 0..<pages {
            guard indirect.append(domain: frontend, ref: raw.indirectRefs[page]) else {
                return "indirect pages exceed the copy's capacity"
            }
        }
        do throws(XenBusError) {
            try indirect.copy()
        } catch {
            return "indirect page: \(error)"
        }
        return indirect.withReader { reader in
            for index in 0..<count {
                let offset = index * 8
                guard let ref = reader.load(UInt32.self, at: offset),
                    let first = reader.load(UInt8.self, at: offset + 4),
                    let last = reader.load(UInt8.self, at: offset + 5)
                else { return "indirect segment \(index) outside the copied pages" }
                segments.append(
                    BlkifSegment(ref: GrantRef(ref), firstSector: first, lastSector: last))
            }
            return nil
        }
    }
}
