import Testing
import XenBus
import XenBusTesting

@Suite("grant copy batch")
struct GrantCopyBatchTests {
    let guest = DomainID(5)

    @Test("one device call copies guest → local and local → guest")
    func bothDirections() throws {
        let table = FakeGrantTable()
        let writable = table.grant(from: guest, pages: 1, writable: true)
        let readOnly = table.grant(from: guest, pages: 1, writable: false)
        for index in 0..<4096 { readOnly.bytes[index] = UInt8(truncatingIfNeeded: index * 7) }
        let local = PageBuffer(pages: 2)
        for index in 0..<100 { local.bytes[4096 + index] = 0xA0 &+ UInt8(index) }

        let batch = table.makeCopyBatch(capacity: 4, local: local.bytes)
        // the whole read-only page into the first local page
        #expect(
            batch.append(
                GrantCopySegment(
                    .fromGuest, domain: guest, ref: readOnly.refs[0], offset: 0, length: 4096,
                    localOffset: 0)))
        // 100 bytes of the second local page to offset 10 of the writable page
        #expect(
            batch.append(
                GrantCopySegment(
                    .toGuest, domain: guest, ref: writable.refs[0], offset: 10, length: 100,
                    localOffset: 4096)))
        #expect(batch.status(at: 0) == .generalError, "not copied yet")
        #expect(!batch.allOkay)

        try table.copy(batch)
        #expect(batch.status(at: 0) == .okay)
        #expect(batch.status(at: 1) == .okay)
        #expect(batch.allOkay)
        #expect(Array(local.bytes[0..<4096]) == Array(readOnly.bytes))
        #expect(Array(writable.bytes[10..<110]) == (0..<100).map { 0xA0 &+ UInt8($0) })
        #expect(writable.bytes[9] == 0 && writable.bytes[110] == 0, "nothing beyond the segment")
        #expect(table.deviceCopyCalls == 1)
        #expect(table.deviceCopySegments == 2)
    }

    @Test("a bad segment fails alone; argument faults and empty segments never reach the device")
    func partialFailure() throws {
        let table = FakeGrantTable()
        let page = table.grant(from: guest, pages: 2, writable: false)
        page.bytes.initializeMemory(as: UInt8.self, repeating: 0x5A)
        let local = PageBuffer(pages: 1)
        let batch = table.makeCopyBatch(capacity: 8, local: local.bytes)
        let segments = [
            // good
            GrantCopySegment(
                .fromGuest, domain: guest, ref: page.refs[0], offset: 0, length: 8, localOffset: 0),
            // a ref never granted: the device says badGrantRef
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(60_000), offset: 0, length: 8,
                localOffset: 8),
            // good, after the bad one
            GrantCopySegment(
                .fromGuest, domain: guest, ref: page.refs[1], offset: 8, length: 8,
                localOffset: 16),
            // crosses its guest page: settled before the device
            GrantCopySegment(
                .fromGuest, domain: guest, ref: page.refs[0], offset: 4095, length: 2,
                localOffset: 24),
            // writes into a read-only grant: the device says permissionDenied
            GrantCopySegment(
                .toGuest, domain: guest, ref: page.refs[0], offset: 0, length: 8, localOffset: 32),
            // empty: okay without the device
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(60_001), offset: 0, length: 0,
                localOffset: 0),
        ]
        for segment in segments { #expect(batch.append(segment)) }
        try table.copy(batch)

        let statuses = (0..<batch.count).map { batch.status(at: $0) }
        #expect(
            statuses == [.okay, .badGrantRef, .okay, .badCopyArgument, .permissionDenied, .okay])
        #expect(!batch.allOkay)
        #expect(Array(local.bytes[0..<8]) == [UInt8](repeating: 0x5A, count: 8))
        #expect(Array(local.bytes[8..<16]) == [UInt8](repeating: 0, count: 8))
        #expect(Array(local.bytes[16..<24]) == [UInt8](repeating: 0x5A, count: 8))
        #expect(page.bytes[0] == 0x5A, "the read-only page was not written")
        #expect(table.deviceCopyCalls == 1)
        #expect(table.deviceCopySegments == 4, "all but the page-crossing and empty segments")
        #expect(table.operations == [.copy(segments)])
    }

    @Test("a full batch refuses more segments and copies all it holds")
    func full() throws {
        let table = FakeGrantTable()
        let pages = table.grant(from: guest, pages: 3, writable: true)
        for page in 0..<3 { pages.bytes[page * 4096] = UInt8(page + 1) }
        let local = PageBuffer(pages: 1)
        let batch = table.makeCopyBatch(capacity: 3, local: local.bytes)
        for page in 0..<3 {
            #expect(
                batch.append(
                    GrantCopySegment(
                        .fromGuest, domain: guest, ref: pages.refs[page], offset: 0, length: 1,
                        localOffset: page)))
        }
        #expect(batch.isFull)
        #expect(
            !batch.append(
                GrantCopySegment(
                    .fromGuest, domain: guest, ref: pages.refs[0], offset: 0, length: 1,
                    localOffset: 3)))
        #expect(batch.count == 3)
        try table.copy(batch)
        #expect(batch.allOkay)
        #expect(Array(local.bytes[0..<4]) == [1, 2, 3, 0], "the refused segment was not copied")
        #expect(table.deviceCopyCalls == 1)
    }

    @Test("after removeAll the batch is reused with fresh statuses")
    func reuse() throws {
        let table = FakeGrantTable()
        let page = table.grant(from: guest, pages: 1, writable: true)
        page.bytes[0] = 0x11
        page.bytes[1] = 0x22
        let local = PageBuffer(pages: 1)
        let batch = table.makeCopyBatch(capacity: 2, local: local.bytes)
        batch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(9999), offset: 0, length: 1,
                localOffset: 0))
        try table.copy(batch)
        #expect(batch.status(at: 0) == .badGrantRef)

        batch.removeAll()
        #expect(batch.count == 0)
        #expect(batch.allOkay, "empty")
        batch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: page.refs[0], offset: 1, length: 1,
                localOffset: 0))
        #expect(batch.status(at: 0) == .generalError, "a new segment is not copied yet")
        try table.copy(batch)
        #expect(batch.count == 1)
        #expect(batch.status(at: 0) == .okay)
        #expect(local.bytes[0] == 0x22)
        #expect(table.deviceCopyCalls == 2)
    }

    @Test("the array convenience copies through a batch")
    func arrayAPI() throws {
        let table = FakeGrantTable()
        let page = table.grant(from: guest, pages: 1, writable: true)
        let local = PageBuffer(pages: 1)
        let statuses = try table.copy(
            [
                GrantCopySegment(
                    .toGuest, domain: guest, ref: page.refs[0], offset: 0, length: 4,
                    localOffset: 0),
                GrantCopySegment(
                    .toGuest, domain: guest, ref: page.refs[0], offset: 4094, length: 4,
                    localOffset: 0),
            ], local: local.bytes)
        #expect(statuses == [.okay, .badCopyArgument])
        #expect(try table.copy([], local: local.bytes) == [])
        #expect(table.deviceCopyCalls == 1, "an empty copy never reaches the device")
    }

    @Test("copying a full batch 1000 times allocates nothing")
    func noAllocation() throws {
        let table = FakeGrantTable(recordsCopies: false)
        let pages = table.grant(from: guest, pages: 16, writable: true)
        let local = PageBuffer(pages: 16)
        let batch = table.makeCopyBatch(capacity: 16, local: local.bytes)
        func fill() {
            batch.removeAll()
            for page in 0..<16 {
                batch.append(
                    GrantCopySegment(
                        page.isMultiple(of: 2) ? .fromGuest : .toGuest, domain: guest,
                        ref: pages.refs[page], offset: 0, length: 4096, localOffset: page * 4096))
            }
        }
        fill()
        try table.copy(batch)  // warm up (lazy metadata, first-use caches)

        let counted = try allocations {
            for _ in 0..<1000 {
                fill()
                try table.copy(batch)
            }
        }
        #expect(counted == 0)
        #expect(batch.allOkay)

        // The counter sees allocations: the array API (a batch per call) and
        // the fake's operation log both allocate, so the check above can fail.
        let arrayCopies = try allocations {
            for _ in 0..<10 {
                _ = try table.copy([batch.segment(at: 0)], local: local.bytes)
            }
        }
        #expect(arrayCopies >= 10)
        let logging = FakeGrantTable(recordsCopies: true)
        let logged = logging.grant(from: guest, pages: 1, writable: true)
        let loggedBatch = logging.makeCopyBatch(capacity: 1, local: local.bytes)
        loggedBatch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: logged.refs[0], offset: 0, length: 8,
                localOffset: 0))
        let logCopies = try allocations { try logging.copy(loggedBatch) }
        #expect(logCopies > 0)
    }
}
