import Testing
import XenBus
import XenBusTesting

@testable import BlockBackend

#if canImport(Glibc)
    import Glibc
#endif

/// A frontend that keeps its ring full as Linux's blkfront does under
/// readahead: thousands of reads and writes of mixed shapes (direct,
/// indirect, partial pages) over the io_uring engine on a real file, the
/// ring wrapping many times while answers come out of order. Every read's
/// bytes are checked against a model of the disk the moment it is answered.
@Suite("blkback under a streaming frontend")
struct StreamingTests {
    /// One request the test's frontend has posted and not seen answered.
    private struct Outstanding {
        var write: Bool
        var sector: UInt64
        /// Guest pages and the sectors of each used, in order.
        var pages: [(index: Int, first: Int, last: Int)]
    }

    @Test("reads and writes streamed through a wrapping ring: every byte as the model says")
    func streamed() throws {
        for seed in [UInt64(0x51), 0x52, 0x53] {
            try stream(seed: seed)
        }
    }

    private func stream(seed: UInt64) throws {
        let sectors = 4096
        var model = patternBytes(sectors * 512, seed: seed)
        let file = try temporaryFile(model)
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            engine: try UringEngine(storage, entries: 64),
            limits: BlockDiskLimits(sectors: storage.sectorCount, readOnly: false, discard: false))
        var random = HostileTests.Generator(state: seed)
        // A pool of guest pages per ring slot's worth of requests: request
        // id i owns pages i*64 ..< i*64+64 while outstanding.
        let idCount = 32
        let pool = rig.pages(idCount * 64)
        let descriptors = (0..<idCount).map { _ in rig.pages(1) }
        var outstanding: [Int: Outstanding] = [:]
        var freeIDs = Array(0..<idCount)
        var posted = 0
        var answered = 0
        let total = 1000
        var rounds = 0
        while answered < total {
            rounds += 1
            #expect(rounds < 200_000, "the stream stalled at \(answered) of \(total)")
            if rounds >= 200_000 { return }
            // Post while there is room; never a write and another request
            // on one sector at once (a guest's page cache does not).
            while posted < total, !rig.front.isFull, let id = freeIDs.popLast() {
                let indirect = random.next() % 3 == 0
                let count = indirect ? Int(random.next() % 64) + 1 : Int(random.next() % 11) + 1
                var pages: [(index: Int, first: Int, last: Int)] = []
                var length = 0
                for slot in 0..<count {
                    // Whole pages mostly; now and then a partial one.
                    var first = 0
                    var last = 7
                    if random.next() % 5 == 0 {
                        first = Int(random.next() % 8)
                        last = first + Int(random.next() % UInt64(8 - first))
                    }
                    pages.append((id * 64 + slot, first, last))
                    length += last - first + 1
                }
                let sector = random.next() % UInt64(sectors - length)
                let range = Int(sector)..<(Int(sector) + length)
                let overlapping = outstanding.values.filter { other in
                    let otherLength = other.pages.reduce(0) { $0 + $1.last - $1.first + 1 }
                    return (Int(other.sector)..<(Int(other.sector) + otherLength)).overlaps(range)
                }
                if overlapping.contains(where: \.write) {
                    // Not while a write to those sectors is in flight.
                    freeIDs.append(id)
                    break
                }
                let write = overlapping.isEmpty && random.next() % 4 == 0
                if write {
                    for page in pages {
                        let bytes = patternBytes(4096, seed: random.next())
                        let at = page.index * 4096
                        for offset in 0..<4096 { pool.bytes[at + offset] = bytes[offset] }
                    }
                }
                let operation = write ? BlkifOperation.write : BlkifOperation.read
                var request: BlkifRequest
                if indirect {
                    let page = descriptors[id]
                    for (index, entry) in pages.enumerated() {
                        page.bytes.storeBytes(
                            of: pool.refs[entry.index].rawValue.littleEndian,
                            toByteOffset: index * 8, as: UInt32.self)
                        page.bytes[index * 8 + 4] = UInt8(entry.first)
                        page.bytes[index * 8 + 5] = UInt8(entry.last)
                    }
                    request = BlkifRequest(operation: BlkifOperation.indirect, id: UInt64(id))
                    request.indirectOperation = operation
                    request.indirectRefs[0] = page.refs[0]
                } else {
                    request = BlkifRequest(operation: operation, id: UInt64(id))
                    for (index, entry) in pages.enumerated() {
                        request.segments[index] = BlkifSegment(
                            ref: pool.refs[entry.index], firstSector: UInt8(entry.first),
                            lastSector: UInt8(entry.last))
                    }
                }
                request.sector = sector
                request.segmentCount = UInt16(count)
                try rig.front.enqueueRequest(BlkifRequest64(request))
                outstanding[id] = Outstanding(write: write, sector: sector, pages: pages)
                posted += 1
                // Pushed in small groups, as a frontend's plug does.
                if random.next() % 3 == 0 { _ = rig.front.pushRequests() }
            }
            _ = rig.front.pushRequests()
            _ = try rig.endpoint.serve(budget: Int(random.next() % 16) + 1)
            if rig.endpoint.inFlight > 0 { usleep(20) }
            for response in try rig.responses() {
                let id = Int(response.id)
                guard let request = outstanding.removeValue(forKey: id) else {
                    Issue.record("an answer for id \(id), which is not outstanding")
                    continue
                }
                #expect(response.status == BlkifStatus.okay)
                var at = Int(request.sector) * 512
                for page in request.pages {
                    let start = page.index * 4096 + page.first * 512
                    let count = (page.last - page.first + 1) * 512
                    if request.write {
                        for offset in 0..<count { model[at + offset] = pool.bytes[start + offset] }
                    } else if Array(pool.bytes[start..<(start + count)])
                        != Array(model[at..<(at + count)])
                    {
                        let where_ = "read id \(id) of sector \(request.sector), disk offset \(at)"
                        Issue.record("seed \(seed): the bytes of \(where_) differ from the disk's")
                    }
                    at += count
                }
                freeIDs.insert(id, at: 0)
                answered += 1
            }
        }
        #expect(fileBytes(file.path) == model, "the file is what the answered writes made it")
    }
}
