import BlockBackend
import Testing
import XenBus
import XenBusTesting

/// A generated stream of garbage requests: random fields, out-of-range
/// values, bad and foreign grant refs, bad indirect pages. None may trap,
/// every one is answered exactly once, and the backing is only ever
/// touched inside a range some request of the stream claimed and inside
/// the disk.
@Suite("blkback against a hostile frontend")
struct HostileTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }

    @Test("random requests: answered once each, no write outside a claimed range or the disk")
    func randomStream() throws {
        for abi32 in [false, true] {
            if abi32 {
                try stream(BlkifRequest32.self, BlkifResponse32.self, seed: 0x5EED_0032)
            } else {
                try stream(BlkifRequest64.self, BlkifResponse64.self, seed: 0x5EED_0064)
            }
        }
    }

    @Test("random requests completing in random order: the same guarantees")
    func randomStreamReordered() throws {
        try stream(BlkifRequest64.self, BlkifResponse64.self, seed: 0x5EED_1064, reordered: true)
        try stream(BlkifRequest32.self, BlkifResponse32.self, seed: 0x5EED_1032, reordered: true)
    }

    @Test("random requests with persistent grants (a small cache, so pages evict): the same")
    func randomStreamPersistent() throws {
        try stream(BlkifRequest64.self, BlkifResponse64.self, seed: 0x5EED_2064, persistent: 5)
        try stream(
            BlkifRequest32.self, BlkifResponse32.self, seed: 0x5EED_2032, reordered: true,
            persistent: 5)
    }

    func stream<Q: BlkifWireRequest, R: BlkifWireResponse>(
        _: Q.Type, _: R.Type, seed: UInt64, reordered: Bool = false, persistent: Int? = nil
    ) throws {
        var random = Generator(state: seed)
        let disk = 512  // sectors
        let storage = MemoryStorage(sectors: disk)
        let rig =
            reordered
            ? try BlockRig<Q, R>(
                engine: ShuffledEngine(storage, seed: seed ^ 0xA5A5), limits: storage.limits,
                persistentGrants: persistent)
            : try BlockRig<Q, R>(
                storage: storage, limits: storage.limits, persistentGrants: persistent)
        let pages = rig.pages(16)
        let readOnlyPages = rig.pages(4, writable: false)
        // Another guest's page: never read or written through this device.
        let foreign = rig.grants.grant(from: DomainID(9), pages: 1, writable: true)
        foreign.bytes.copyBytes(from: patternBytes(4096, seed: 99))
        let foreignBefore = Array(foreign.bytes)
        let descriptorPages = rig.pages(2, writable: false)

        func someRef() -> GrantRef {
            switch Int.random(in: 0..<10, using: &random) {
            case 0: return foreign.refs[0]
            case 1: return GrantRef(UInt32.random(in: 0...UInt32.max, using: &random))
            case 2, 3: return readOnlyPages.refs.randomElement(using: &random)!
            default: return pages.refs.randomElement(using: &random)!
            }
        }
        func someSector() -> UInt64 {
            switch Int.random(in: 0..<6, using: &random) {
            case 0: return UInt64.random(in: 0...UInt64.max, using: &random)
            case 1: return UInt64(disk) - UInt64.random(in: 0...16, using: &random)
            case 2: return UInt64.max - UInt64.random(in: 0...16, using: &random)
            default: return UInt64.random(in: 0..<UInt64(disk), using: &random)
            }
        }
        func someSectorIndex() -> UInt8 {
            Int.random(in: 0..<8, using: &random) == 0
                ? UInt8.random(in: 0...255, using: &random)
                : UInt8.random(in: 0...7, using: &random)
        }

        var nextID: UInt64 = 1
        var answered: [UInt64: Int] = [:]
        var sent = 0
        var reachedDisk = 0
        for _ in 0..<40 {
            var claimed: [(UInt64, UInt64)] = []  // byte ranges requests named
            storage.calls.removeAll()
            let burst = Int.random(in: 1...24, using: &random)
            for _ in 0..<burst where !rig.front.isFull {
                let operations: [UInt8] = [0, 1, 2, 3, 5, 6, 6, 6, 4, 7, 255]
                var request = BlkifRequest(
                    operation: Int.random(in: 0..<8, using: &random) == 0
                        ? UInt8.random(in: 0...255, using: &random)
                        : operations.randomElement(using: &random)!,
                    id: nextID)
                nextID += 1
                request.sector = someSector()
                request.handle = UInt16.random(in: 0...UInt16.max, using: &random)
                var lengths = 0
                if request.operation == BlkifOperation.indirect {
                    request.indirectOperation =
                        Int.random(in: 0..<5, using: &random) == 0
                        ? UInt8.random(in: 0...255, using: &random)
                        : UInt8.random(in: 0...1, using: &random)
                    request.segmentCount =
                        Int.random(in: 0..<6, using: &random) == 0
                        ? UInt16.random(in: 0...UInt16.max, using: &random)
                        : UInt16.random(in: 0...260, using: &random)
                    // Descriptor page: random garbage or plausible segments.
                    let garbage = Int.random(in: 0..<3, using: &random) == 0
                    for index in 0..<512 {
                        let offset = index * 8
                        let ref =
                            garbage
                            ? GrantRef(UInt32.random(in: 0...UInt32.max, using: &random))
                            : someRef()
                        let first = someSectorIndex()
                        let last = someSectorIndex()
                        descriptorPages.bytes.storeBytes(
                            of: ref.rawValue.littleEndian, toByteOffset: offset, as: UInt32.self)
                        descriptorPages.bytes[offset + 4] = first
                        descriptorPages.bytes[offset + 5] = last
                        if index < Int(request.segmentCount) && last >= first {
                            lengths += (Int(last) - Int(first) + 1) * 512
                        }
                    }
                    for slot in 0..<8 {
                        request.indirectRefs[slot] =
                            Int.random(in: 0..<4, using: &random) == 0
                            ? someRef() : descriptorPages.refs[0]
                    }
                } else if request.operation == BlkifOperation.discard {
                    request.discardSectors =
                        Int.random(in: 0..<3, using: &random) == 0
                        ? UInt64.random(in: 0...UInt64.max, using: &random)
                        : UInt64.random(in: 0...64, using: &random)
                    request.discardFlags = UInt8.random(in: 0...255, using: &random)
                    claimed.append((request.sector &* 512, request.discardSectors &* 512))
                } else {
                    request.segmentCount = UInt16(UInt8.random(in: 0...13, using: &random))
                    for index in 0..<11 {
                        let first = someSectorIndex()
                        let last = someSectorIndex()
                        request.segments[index] = BlkifSegment(
                            ref: someRef(), firstSector: first, lastSector: last)
                        if index < Int(request.segmentCount) && last >= first {
                            lengths += (Int(last) - Int(first) + 1) * 512
                        }
                    }
                }
                if request.operation != BlkifOperation.discard {
                    claimed.append((request.sector &* 512, UInt64(lengths)))
                }
                try rig.submit(request)
                sent += 1
            }
            try rig.serve(budget: Int.random(in: 1...64, using: &random))
            for response in try rig.responses() { answered[response.id, default: 0] += 1 }
            reachedDisk += storage.calls.count
            for call in storage.calls {
                switch call {
                case .write(let offset, let count):
                    #expect(
                        claimed.contains { $0 == (offset, UInt64(count)) },
                        "write \(offset)+\(count) no request claimed")
                case .discard(let offset, let count):
                    #expect(
                        claimed.contains { $0 == (offset, count) },
                        "discard \(offset)+\(count) no request claimed")
                case .read, .flush: break
                }
            }
        }
        #expect(storage.outOfRange == 0, "a call reached the backing outside the disk")
        #expect(answered.count == sent, "every request answered")
        #expect(answered.values.allSatisfy { $0 == 1 }, "exactly once")
        #expect(Array(foreign.bytes) == foreignBefore, "another domain's page untouched")
        #expect(rig.endpoint.statistics.rejected > 0 && rig.endpoint.statistics.requests == sent)
        #expect(reachedDisk > 20, "the stream also made valid requests (\(reachedDisk) calls)")
    }

    @Test("ring index jumps are guest faults of this ring, never traps")
    func indexJumps() throws {
        var random = Generator(state: 77)
        for _ in 0..<200 {
            let storage = MemoryStorage(sectors: 64)
            let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
                storage: storage, limits: storage.limits)
            let page = rig.pages(1)
            try rig.submit(rwRequest(BlkifOperation.read, id: 1, sector: 0, refs: page.refs))
            // The guest scribbles req_prod (offset 0 of the shared ring).
            let producer = UInt32.random(in: 33...UInt32.max, using: &random)
            rig.ringGrant.bytes.storeBytes(
                of: producer.littleEndian, toByteOffset: 0, as: UInt32.self)
            do {
                try rig.serve()
                Issue.record("req_prod \(producer) accepted")
            } catch {
                #expect((error as? XenBusError)?.isGuestFault == true, "\(error)")
            }
            #expect(storage.calls.isEmpty, "nothing reaches the disk from a broken ring")
        }
    }

    @Test("the validator refuses each bad field on its own")
    func eachField() throws {
        let storage = MemoryStorage(sectors: 64)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            storage: storage, limits: storage.limits)
        let page = rig.pages(1)
        func status(_ request: BlkifRequest) throws -> Int16? { try rig.run(request)?.status }
        let good = rwRequest(BlkifOperation.write, id: 1, sector: 0, refs: page.refs)
        #expect(try status(good) == BlkifStatus.okay, "the control is accepted")
        var bad = good
        bad.segmentCount = 0
        #expect(try status(bad) == BlkifStatus.error, "no segments")
        bad = good
        bad.segmentCount = 12
        #expect(try status(bad) == BlkifStatus.error, "12 direct segments")
        bad = good
        bad.segments[0].firstSector = 5
        bad.segments[0].lastSector = 4
        #expect(try status(bad) == BlkifStatus.error, "first after last")
        bad = good
        bad.segments[0].lastSector = 8
        #expect(try status(bad) == BlkifStatus.error, "last sector beyond the page")
        bad = good
        bad.sector = 57
        #expect(try status(bad) == BlkifStatus.error, "runs past the disk's end")
        bad.sector = 56
        #expect(try status(bad) == BlkifStatus.okay, "ends exactly at the disk's end")
        bad.sector = UInt64.max - 3
        #expect(try status(bad) == BlkifStatus.error, "sector wraps")
        bad = good
        bad.segments[0].ref = GrantRef(9999)
        #expect(try status(bad) == BlkifStatus.error, "ungranted ref")
        bad = good
        bad.operation = 4
        #expect(try status(bad) == BlkifStatus.notSupported, "reserved operation")
        var discard = BlkifRequest(operation: BlkifOperation.discard, id: 2)
        discard.sector = 60
        discard.discardSectors = 5
        #expect(try status(discard) == BlkifStatus.error, "discard past the end")
        let descriptors = rig.pages(1, writable: false)
        var indirect = indirectRequest(
            BlkifOperation.write, id: 3, sector: 0, refs: page.refs, descriptors: descriptors)
        #expect(try status(indirect) == BlkifStatus.okay, "the indirect control is accepted")
        indirect.segmentCount = 257
        #expect(try status(indirect) == BlkifStatus.error, "257 indirect segments")
        indirect.segmentCount = 1
        indirect.indirectOperation = BlkifOperation.flushDiskCache
        #expect(try status(indirect) == BlkifStatus.error, "indirect flush")
        indirect.indirectOperation = BlkifOperation.write
        indirect.indirectRefs[0] = GrantRef(4242)
        #expect(try status(indirect) == BlkifStatus.error, "ungranted indirect page")
        var flush = BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 4)
        flush.sector = UInt64.max
        #expect(try status(flush) == BlkifStatus.okay, "an empty flush names no sectors")
        #expect(rig.endpoint.statistics.rejected == 11)
        #expect(rig.endpoint.statistics.failed == 1, "the ungranted data ref fails its copy")
    }
}
