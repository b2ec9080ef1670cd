import BlockBackend
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Every operation through the endpoint, against a real file
/// (``FileStorage``) and against the recording ``MemoryStorage``, in both ABIs.
@Suite("blkback operations")
struct OperationTests {
    static let sectors = 2048  // 1 MiB

    @Test("write then read back pages through a file, both ABIs")
    func writeReadFile() throws {
        try writeRead(BlkifRequest64.self, BlkifResponse64.self)
        try writeRead(BlkifRequest32.self, BlkifResponse32.self)
    }

    func writeRead<Q: BlkifWireRequest, R: BlkifWireResponse>(_: Q.Type, _: R.Type) throws {
        let original = patternBytes(Self.sectors * 512, seed: 1)
        let file = try temporaryFile(original)
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        #expect(storage.sectorCount == UInt64(Self.sectors))
        let rig = try BlockRig<Q, R>(
            storage: storage,
            limits: BlockDiskLimits(sectors: storage.sectorCount, readOnly: false, discard: true))
        // Write 11 pages (the most a direct request carries) at sector 80.
        let source = rig.pages(11, writable: false)
        let data = patternBytes(11 * 4096, seed: 2)
        source.bytes.copyBytes(from: data)
        let written = try rig.run(
            rwRequest(BlkifOperation.write, id: 41, sector: 80, refs: source.refs))
        #expect(
            written
                == BlkifResponse(id: 41, operation: BlkifOperation.write, status: BlkifStatus.okay))
        var expected = original
        expected.replaceSubrange((80 * 512)..<(80 * 512 + data.count), with: data)
        #expect(fileBytes(file.path) == expected)

        // Read a partial page (sectors 2...5 of one page) from sector 81.
        let target = rig.pages(1)
        let read = try rig.run(
            rwRequest(BlkifOperation.read, id: 42, sector: 81, refs: target.refs, first: 2, last: 5)
        )
        #expect(read?.status == BlkifStatus.okay)
        #expect(read?.id == 42)
        #expect(Array(target.bytes[1024..<3072]) == Array(expected[(81 * 512)..<(85 * 512)]))
        #expect(
            target.bytes[0..<1024].allSatisfy { $0 == 0 }, "bytes outside the segment untouched")
        #expect(target.bytes[3072..<4096].allSatisfy { $0 == 0 })
    }

    @Test("the read-only refusal: writes, barriers, flushes and discards never reach the file")
    func readOnly() throws {
        let original = patternBytes(Self.sectors * 512, seed: 3)
        let file = try temporaryFile(original)
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: false))
        #expect(storage.isReadOnly)
        #expect(storage.discardSupport == nil)
        let limits = BlockDiskLimits(sectors: storage.sectorCount, readOnly: true, discard: false)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(storage: storage, limits: limits)
        let source = rig.pages(2, writable: false)
        source.bytes.copyBytes(from: patternBytes(8192, seed: 4))
        #expect(
            try rig.run(rwRequest(BlkifOperation.write, id: 1, sector: 0, refs: source.refs))?
                .status == BlkifStatus.error)
        #expect(
            try rig.run(
                rwRequest(BlkifOperation.writeBarrier, id: 2, sector: 0, refs: source.refs))?.status
                == BlkifStatus.notSupported)
        var discard = BlkifRequest(operation: BlkifOperation.discard, id: 3)
        discard.discardSectors = 8
        #expect(try rig.run(discard)?.status == BlkifStatus.notSupported)
        #expect(fileBytes(file.path) == original)
        // Reads still work.
        let target = rig.pages(1)
        #expect(
            try rig.run(rwRequest(BlkifOperation.read, id: 4, sector: 8, refs: target.refs))?.status
                == BlkifStatus.okay)
        #expect(Array(target.bytes) == Array(original[4096..<8192]))
        // The driver's features for it: no flush, barrier or discard.
        let names = BlockDriver.features(storage).map(\.name)
        #expect(!names.contains("feature-flush-cache"))
        #expect(!names.contains("feature-discard"))
        #expect(names.contains("feature-max-indirect-segments"))
    }

    @Test("a discard punches a hole in the file: fewer blocks, zeros read back")
    func discardFile() throws {
        let file = try temporaryFile(patternBytes(Self.sectors * 512, seed: 5))
        defer { file.remove() }
        let storage = try FileStorage(BlockBacking(kind: .file, path: file.path, writable: true))
        let support = try #require(storage.discardSupport)
        #expect(support.granularity >= 512)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            storage: storage,
            limits: BlockDiskLimits(sectors: storage.sectorCount, readOnly: false, discard: true))
        var before = stat()
        stat(file.path, &before)
        var discard = BlkifRequest(operation: BlkifOperation.discard, id: 9)
        discard.sector = 256
        discard.discardSectors = 1024  // 512 KiB
        #expect(
            try rig.run(discard)
                == BlkifResponse(id: 9, operation: BlkifOperation.discard, status: 0))
        var after = stat()
        stat(file.path, &after)
        #expect(after.st_size == before.st_size, "size kept")
        #expect(
            after.st_blocks <= before.st_blocks - 1000,
            "blocks freed: \(before.st_blocks) → \(after.st_blocks)")
        let bytes = fileBytes(file.path)
        #expect(bytes[(256 * 512)..<(1280 * 512)].allSatisfy { $0 == 0 })
        #expect(bytes[(255 * 512)..<(256 * 512)] != ArraySlice(repeating: 0, count: 512))
    }

    @Test("indirect requests of 256 segments write and read 1 MiB, both ABIs")
    func indirect() throws {
        try indirectRoundTrip(BlkifRequest64.self, BlkifResponse64.self)
        try indirectRoundTrip(BlkifRequest32.self, BlkifResponse32.self)
    }

    func indirectRoundTrip<Q: BlkifWireRequest, R: BlkifWireResponse>(_: Q.Type, _: R.Type) throws {
        let storage = MemoryStorage(sectors: 4096)
        let rig = try BlockRig<Q, R>(storage: storage, limits: storage.limits)
        let source = rig.pages(256, writable: false)
        let data = patternBytes(256 * 4096, seed: 6)
        source.bytes.copyBytes(from: data)
        let descriptors = rig.pages(1, writable: false)
        let write = indirectRequest(
            BlkifOperation.write, id: 5, sector: 2048, refs: source.refs, descriptors: descriptors)
        #expect(
            try rig.run(write) == BlkifResponse(id: 5, operation: BlkifOperation.write, status: 0))
        #expect(Array(storage.bytes[(2048 * 512)..<(4096 * 512)]) == data)
        let target = rig.pages(256)
        let back = rig.pages(1, writable: false)
        let read = indirectRequest(
            BlkifOperation.read, id: 6, sector: 2048, refs: target.refs, descriptors: back)
        #expect(
            try rig.run(read) == BlkifResponse(id: 6, operation: BlkifOperation.read, status: 0))
        #expect(Array(target.bytes) == data)
        // The write's data came in one grant copy, the read's went out in one.
        #expect(rig.endpoint.statistics.grantCopyCalls == 2)
    }

    @Test("flush ordering: an acknowledged flush follows every earlier write's completion")
    func flushOrdering() throws {
        let storage = MemoryStorage(sectors: 1024)
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            storage: storage, limits: storage.limits)
        let source = rig.pages(8, writable: false)
        source.bytes.copyBytes(from: patternBytes(8 * 4096, seed: 7))
        // Writes, a flush, more writes, a barrier with data, a read: one batch.
        for index in 0..<4 {
            try rig.submit(
                rwRequest(
                    BlkifOperation.write, id: UInt64(index), sector: UInt64(index * 8),
                    refs: [source.refs[index]]))
        }
        try rig.submit(BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 100))
        try rig.submit(rwRequest(BlkifOperation.write, id: 4, sector: 32, refs: [source.refs[4]]))
        try rig.submit(
            rwRequest(BlkifOperation.writeBarrier, id: 101, sector: 40, refs: [source.refs[5]]))
        try rig.serve()
        let responses = try rig.responses()
        #expect(responses.count == 7)
        #expect(responses.allSatisfy { $0.status == BlkifStatus.okay })
        // Every write before the flush completed before it; the barrier
        // flushed what came before, wrote, flushed again.
        #expect(
            storage.calls == [
                .write(offset: 0, count: 4096), .write(offset: 4096, count: 4096),
                .write(offset: 8192, count: 4096), .write(offset: 12288, count: 4096),
                .flush, .write(offset: 16384, count: 4096),
                .flush, .write(offset: 20480, count: 4096), .flush,
            ])
        // The flush's answer follows the answers of the writes before it.
        let order = responses.map(\.id)
        let flushAt = try #require(order.firstIndex(of: 100))
        #expect(Set(order[..<flushAt]).isSuperset(of: [0, 1, 2, 3]))
        #expect(responses.first { $0.id == 100 }?.operation == BlkifOperation.flushDiskCache)
        #expect(responses.first { $0.id == 101 }?.operation == BlkifOperation.writeBarrier)
    }

    @Test("a failing backing answers errors, never okay")
    func failingBacking() throws {
        let storage = MemoryStorage(sectors: 64)
        storage.failing = true
        let rig = try BlockRig<BlkifRequest64, BlkifResponse64>(
            storage: storage, limits: storage.limits)
        let page = rig.pages(1)
        #expect(
            try rig.run(rwRequest(BlkifOperation.read, id: 1, sector: 0, refs: page.refs))?.status
                == BlkifStatus.error)
        #expect(
            try rig.run(rwRequest(BlkifOperation.write, id: 2, sector: 0, refs: page.refs))?.status
                == BlkifStatus.error)
        #expect(
            try rig.run(BlkifRequest(operation: BlkifOperation.flushDiskCache, id: 3))?.status
                == BlkifStatus.error)
        #expect(page.bytes.allSatisfy { $0 == 0 }, "a failed read gives the guest nothing")
    }

    @Test("backings from xend's nodes: file, tap:aio, phy with and without /dev/, modes")
    func backings() throws {
        #expect(
            try BlockBacking(type: "file", params: "/mnt/root.img", mode: "w")
                == BlockBacking(kind: .file, path: "/mnt/root.img", writable: true))
        #expect(
            try BlockBacking(type: "tap", params: "aio:/srv/a.img", mode: "r")
                == BlockBacking(kind: .file, path: "/srv/a.img", writable: false))
        #expect(
            try BlockBacking(type: "phy", params: "hdc", mode: "r")
                == BlockBacking(kind: .device, path: "/dev/hdc", writable: false))
        #expect(
            try BlockBacking(type: "phy", params: "/dev/loop0", mode: "w!")
                == BlockBacking(kind: .device, path: "/dev/loop0", writable: true))
        #expect(throws: BlockBackendError.self) {
            try BlockBacking(type: "tap", params: "qcow:/a", mode: "w")
        }
        #expect(throws: BlockBackendError.self) {
            try BlockBacking(type: "file", params: "relative.img", mode: "w")
        }
        #expect(throws: BlockBackendError.self) {
            try BlockBacking(type: "file", params: "/a", mode: "rw")
        }
        #expect(throws: BlockBackendError.self) {
            try BlockBacking(type: "nbd", params: "/a", mode: "w")
        }
        // A missing file and a directory are refused with their reasons.
        #expect(throws: BlockBackendError.self) {
            try FileStorage(
                BlockBacking(kind: .file, path: "/nonexistent/disk.img", writable: true))
        }
        #expect(throws: BlockBackendError.self) {
            try FileStorage(BlockBacking(kind: .file, path: "/tmp", writable: false))
        }
        #expect(throws: BlockBackendError.self) {
            try FileStorage(BlockBacking(kind: .device, path: "/dev/null", writable: false))
        }
    }
}

/// A backend killed after taking requests and before answering them: its
/// successor redoes them from the journal, each answered once, the data
/// where the guest asked.
@Suite("blkback redo after a restart")
struct RedoTests {
    @Test("requests taken and never answered are redone once by the successor")
    func redo() throws {
        let storage = MemoryStorage(sectors: 256)
        let grants = FakeGrantTable()
        let guest = DomainID(4)
        let ringPages = grants.grant(from: guest, pages: 1, writable: true)
        var front = try FrontRing<BlkifRequest64, BlkifResponse64>(initializing: ringPages.bytes)
        let memory = JournalMemory(slots: 32)
        let data = grants.grant(from: guest, pages: 6, writable: true)
        data.bytes.copyBytes(from: patternBytes(6 * 4096, seed: 21))
        for index in 0..<6 {
            let operation = index == 3 ? BlkifOperation.flushDiskCache : BlkifOperation.write
            var request = rwRequest(
                operation, id: UInt64(index), sector: UInt64(index * 8), refs: [data.refs[index]])
            if index == 3 { request.segmentCount = 0 }
            try front.enqueueRequest(BlkifRequest64(request))
        }
        _ = front.pushRequests()
        do {
            // The predecessor takes four requests and dies (nothing answered).
            let journal = try memory.formatted(identity: 3)
            var ring = JournaledBackRing<BlkifRequest64, BlkifResponse64>(
                ring: try BackRing(attaching: ringPages.bytes), journal: journal)
            for _ in 0..<4 { _ = try ring.nextRequest() }
        }
        let recovered = try #require(memory.recovered(identity: 3))
        let ring = try JournaledBackRing<BlkifRequest64, BlkifResponse64>(
            resuming: ringPages.bytes, keepAlive: nil, journal: recovered)
        #expect(ring.pendingRedo == 4)
        let endpoint = BlockEndpoint(
            ring: ring, storage: storage, limits: storage.limits, grants: grants, frontend: guest
        ) { () throws(XenBusError) in }
        while try endpoint.serve(budget: 64) {}
        var answered: [UInt64: Int] = [:]
        while let response = try front.nextResponse() {
            #expect(response.response.status == BlkifStatus.okay)
            answered[response.response.id, default: 0] += 1
        }
        #expect(answered == [0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1])
        for index in [0, 1, 2, 4, 5] {
            #expect(
                Array(storage.bytes[(index * 4096)..<((index + 1) * 4096)])
                    == Array(data.bytes[(index * 4096)..<((index + 1) * 4096)]))
        }
        // The redone flush still follows the writes taken before it.
        let flushAt = try #require(storage.calls.firstIndex(of: .flush))
        #expect(
            storage.calls[..<flushAt].filter { if case .write = $0 { true } else { false } }.count
                == 3)
    }
}
