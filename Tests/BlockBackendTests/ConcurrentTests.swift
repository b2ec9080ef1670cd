import Testing
import XenBus
import XenBusTesting

@testable import BlockBackend

#if canImport(Glibc)
    import Glibc
#endif

/// A ring's requests in flight together: the io_uring engine on a real
/// file, and completions in any order (flush ordering, the journal's
/// slots, a restart in the middle).
@Suite("blkback with requests in flight together")
struct ConcurrentTests {
    @Test("io_uring engine on a temp file: writes, a flush, reads, a discard, many in flight")
    func uringFile() throws {
        let before = patternBytes(1 << 22, seed: 21)
        let file = try temporaryFile(before)
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        let engine = try UringEngine(storage)
        let limits = BlockDiskLimits(sectors: storage.sectorCount, readOnly: false, discard: true)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(engine: engine, limits: limits)
        let count = 24
        let source = rig.pages(2 * count, writable: false)
        let data = patternBytes(2 * count * 4096, seed: 22)
        source.bytes.copyBytes(from: data)
        // Two pages each, 64 KiB apart; the last one a partial page at its end.
        for index in 0..<count {
            let refs = [source.refs[2 * index], source.refs[2 * index + 1]]
            try rig.submit(
                rwRequest(
                    BlkifOperation.write, id: UInt64(index), sector: UInt64(index * 128),
                    refs: refs))
        }
        try rig.submit(BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 100))
        try rig.serve()
        let written = try rig.responses()
        #expect(written.count == count + 1)
        #expect(written.allSatisfy { $0.status == BlkifStatus.okay })
        // The flush was answered after every write (it waited for them).
        #expect(written.last?.id == 100)
        #expect(rig.endpoint.statistics.peakInFlight >= count, "the writes were in flight together")
        let onDisk = fileBytes(file.path)
        for index in 0..<count {
            let at = index * 128 * 512
            #expect(
                Array(onDisk[at..<(at + 8192)])
                    == Array(data[(index * 8192)..<((index + 1) * 8192)]))
        }
        // Untouched between the writes.
        #expect(Array(onDisk[8192..<(128 * 512)]) == Array(before[8192..<(128 * 512)]))

        let target = rig.pages(2 * count)
        for index in 0..<count {
            try rig.submit(
                rwRequest(
                    BlkifOperation.read, id: UInt64(200 + index), sector: UInt64(index * 128 + 1),
                    refs: [target.refs[2 * index], target.refs[2 * index + 1]], first: 0, last: 6
                ))
        }
        try rig.serve()
        let read = try rig.responses()
        #expect(read.count == count && read.allSatisfy { $0.status == BlkifStatus.okay })
        for index in 0..<count {
            // Segments of 7 sectors: the disk's sectors 1...14 of each write.
            let at = index * 128 * 512 + 512
            let first = Array(target.bytes[(2 * index * 4096)..<(2 * index * 4096 + 3584)])
            let second = Array(
                target.bytes[((2 * index + 1) * 4096)..<((2 * index + 1) * 4096 + 3584)])
            #expect(first + second == Array(onDisk[at..<(at + 7168)]))
        }

        var discard = BlkifRequest(operation: BlkifOperation.discard, id: 300)
        discard.sector = 2048
        discard.discardSectors = 2048
        #expect(try rig.run(discard)?.status == BlkifStatus.okay)
        #expect(fileBytes(file.path)[(2048 * 512)..<(4096 * 512)].allSatisfy { $0 == 0 })
        // Batches went through the ring; a lone operation ran inline.
        #expect(engine.ringCount >= 2 * count && engine.inlineCount >= 1)
        // Idle, the descriptor the worker waits on is quiet (no spinning):
        // a signal of the last completion that came after it was reaped
        // wakes the worker once, and that round's reap drains it.
        usleep(20_000)
        engine.reap { _ in }
        var idle = pollfd(
            fd: try #require(engine.completionDescriptor).rawValue, events: Int16(POLLIN),
            revents: 0)
        #expect(poll(&idle, 1, 0) == 0)
    }

    @Test("io_uring engine: drain returns with one operation queued, and with several in flight")
    func uringDrain() throws {
        let file = try temporaryFile(patternBytes(65536, seed: 29))
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 4096)
        defer { buffer.deallocate() }
        // One queued, nothing in the kernel: drain runs it inline (it once
        // went on to wait for a completion that could never come).
        let lone = try UringEngine(storage)
        lone.enqueue(
            .read(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096]), at: 0), tag: 1)
        lone.drain()
        #expect(lone.room == lone.entries && !lone.hasUnsubmitted && !lone.hasCompletions)
        // Several: submitted together, all waited for.
        let several = try UringEngine(storage)
        for index in 0..<4 {
            let part = UnsafeMutableRawBufferPointer(
                rebasing: buffer[(index * 4096)..<((index + 1) * 4096)])
            several.enqueue(.read(part, at: UInt64(index * 4096)), tag: UInt32(index))
        }
        several.drain()
        #expect(several.room == several.entries && !several.hasUnsubmitted)
    }

    @Test("io_uring engine: a read past a file shrunk under it fails, never returns stale bytes")
    func uringShrunk() throws {
        let file = try temporaryFile(patternBytes(65536, seed: 23))
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            engine: try UringEngine(storage),
            limits: BlockDiskLimits(sectors: storage.sectorCount, readOnly: false, discard: false))
        #expect(truncate(file.path, 4096) == 0)
        let page = rig.pages(1)
        let response = try rig.run(
            rwRequest(BlkifOperation.read, id: 1, sector: 64, refs: page.refs))
        #expect(response?.status == BlkifStatus.error)
    }

    @Test(
        "completions in random order: a flush still follows every earlier write, a barrier drains")
    func reorderedFlush() throws {
        for seed in UInt64(1)...UInt64(8) {
            let storage = MemoryStorage(sectors: 1024)
            let engine = ShuffledEngine(storage, seed: seed)
            let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
                engine: engine, limits: storage.limits)
            let source = rig.pages(8, writable: false)
            source.bytes.copyBytes(from: patternBytes(8 * 4096, seed: seed))
            for index in 0..<4 {
                try rig.submit(
                    rwRequest(
                        BlkifOperation.write, id: UInt64(index), sector: UInt64(index * 8),
                        refs: [source.refs[index]]))
            }
            try rig.submit(BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 100))
            try rig.submit(
                rwRequest(BlkifOperation.write, id: 4, sector: 32, refs: [source.refs[4]]))
            try rig.submit(
                rwRequest(BlkifOperation.writeBarrier, id: 101, sector: 40, refs: [source.refs[5]]))
            try rig.submit(
                rwRequest(BlkifOperation.write, id: 5, sector: 48, refs: [source.refs[6]]))
            try rig.serve()
            let responses = try rig.responses()
            #expect(responses.count == 8 && responses.allSatisfy { $0.status == BlkifStatus.okay })
            #expect(engine.peakSubmitted >= 4, "the first writes were in flight together")
            let calls = storage.calls
            let flushes = calls.indices.filter { calls[$0] == .flush }
            #expect(flushes.count == 3)
            let writesAt = { (offset: UInt64) in
                calls.firstIndex(of: .write(offset: offset, count: 4096))!
            }
            // The four writes before the flush, write 4 between it and the
            // barrier's flush, the barrier's data between its two flushes,
            // and write 5 only after the barrier.
            #expect((0..<4).allSatisfy { writesAt(UInt64($0 * 4096)) < flushes[0] })
            #expect(writesAt(16384) > flushes[0] && writesAt(16384) < flushes[1])
            #expect(writesAt(20480) > flushes[1] && writesAt(20480) < flushes[2])
            #expect(writesAt(24576) > flushes[2])
            let order = responses.map(\.id)
            #expect(
                order.firstIndex(of: 100)! > (0..<4).map { order.firstIndex(of: UInt64($0))! }
                    .max()!)
            #expect(order.firstIndex(of: 5)! > order.firstIndex(of: 101)!)
        }
    }

    @Test(
        "an older request still in flight: its journal slot is not reused, and a restart redoes it")
    func journalSlotReuse() throws {
        let grants = FakeGrantTable()
        let guest = DomainID(7)
        let ringPages = grants.grant(from: guest, pages: 1, writable: true)
        var front = try FrontRing<BlkifRequest64, BlkifResponse64>(initializing: ringPages.bytes)
        let slots = front.geometry.entryCount
        let memory = JournalMemory(slots: slots)
        let storage = MemoryStorage(sectors: 1024)
        let target = grants.grant(from: guest, pages: Int(slots) + 1, writable: true)
        func read(_ id: Int) -> BlkifRequest {
            rwRequest(
                BlkifOperation.read, id: UInt64(id), sector: UInt64(id % 64) * 8,
                refs: [target.refs[id]])
        }
        var answered: [UInt64: Int] = [:]
        do {
            let journal = try memory.formatted(identity: 5)
            let mapping = try grants.map(domain: guest, refs: ringPages.refs, writable: true)
            let ring = JournaledBackRing<BlkifRequest64, BlkifResponse64>(
                ring: try BackRing(mapping: mapping), journal: journal)
            let engine = ShuffledEngine(storage, seed: 9)
            engine.held = [0]  // ring index 0's request stays in flight
            let endpoint = BlockEndpoint(
                ring: ring, engine: engine, limits: storage.limits, grants: grants, frontend: guest
            ) { () throws(XenBusError) in }
            for id in 0..<Int(slots) { try front.enqueueRequest(BlkifRequest64(read(id))) }
            _ = front.pushRequests()
            for _ in 0..<200 { _ = try endpoint.serve(budget: 64) }
            while let response = try front.nextResponse() {
                answered[response.response.id, default: 0] += 1
            }
            #expect(answered.count == Int(slots) - 1 && answered[0] == nil)
            // The guest reuses ring slot 0 (a response freed room): index
            // `slots` would go to journal slot 0, still request 0's.
            try front.enqueueRequest(BlkifRequest64(read(Int(slots))))
            _ = front.pushRequests()
            for _ in 0..<50 { _ = try endpoint.serve(budget: 64) }
            #expect(endpoint.statistics.requests == Int(slots), "the new request waits")
            #expect(try front.nextResponse() == nil)
            // Killed here: the endpoint and its engine go away unanswered.
        }
        let recovered = try #require(memory.recovered(identity: 5))
        let ring = try JournaledBackRing<BlkifRequest64, BlkifResponse64>(
            resuming: ringPages.bytes, keepAlive: nil, journal: recovered)
        #expect(ring.pendingRedo == 1)
        let endpoint = BlockEndpoint(
            ring: ring, engine: ShuffledEngine(storage, seed: 10), limits: storage.limits,
            grants: grants, frontend: guest
        ) { () throws(XenBusError) in }
        var rounds = 0
        while try endpoint.serve(budget: 64) || endpoint.inFlight > 0 {
            rounds += 1
            #expect(rounds < 1000)
            if rounds >= 1000 { break }
        }
        while let response = try front.nextResponse() {
            #expect(response.response.status == BlkifStatus.okay)
            answered[response.response.id, default: 0] += 1
        }
        #expect(answered.count == Int(slots) + 1, "every request answered")
        #expect(answered.values.allSatisfy { $0 == 1 }, "exactly once")
        for id in [0, Int(slots)] {
            let at = (id % 64) * 4096
            #expect(
                Array(target.bytes[(id * 4096)..<((id + 1) * 4096)])
                    == Array(storage.bytes[at..<(at + 4096)]))
        }
    }

    @Test("page runs: first fit, freed out of order, never overlapping")
    func pageRuns() throws {
        var random = HostileTests.Generator(state: 77)
        var owner = [Int](repeating: -1, count: 1024)
        var live: [(Int, Int)] = []
        var pages = PageRunAllocator(pages: 1024)
        for step in 0..<4000 {
            if !live.isEmpty && Int.random(in: 0..<3, using: &random) == 0 {
                let (start, count) = live.remove(at: Int.random(in: 0..<live.count, using: &random))
                for page in start..<(start + count) { owner[page] = -1 }
                pages.release(start, count)
            } else {
                let count = Int.random(in: 1...256, using: &random)
                if let start = pages.allocate(count) {
                    #expect(owner[start..<(start + count)].allSatisfy { $0 == -1 }, "overlap")
                    for page in start..<(start + count) { owner[page] = step }
                    live.append((start, count))
                } else {
                    // No run of that size was free.
                    var longest = 0
                    var run = 0
                    for page in 0..<1024 {
                        run = owner[page] == -1 ? run + 1 : 0
                        longest = max(longest, run)
                    }
                    #expect(longest < count)
                }
            }
        }
        #expect(pages.usedCount == live.reduce(0) { $0 + $1.1 })
    }
}
