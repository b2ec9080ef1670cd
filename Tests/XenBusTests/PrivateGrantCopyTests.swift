import Testing
import XenBus
import XenBusTesting

@Suite("private grant copy")
struct PrivateGrantCopyTests {
    let guest = DomainID(4)

    /// blkif_request_segment: grant ref (u32), first and last sector (u8
    /// each), 2 bytes padding; 512 per indirect page.
    func writeDescriptor(
        _ page: UnsafeMutableRawBufferPointer, at index: Int, gref: UInt32, first: UInt8,
        last: UInt8
    ) {
        page.storeBytes(of: gref.littleEndian, toByteOffset: index * 8, as: UInt32.self)
        page[index * 8 + 4] = first
        page[index * 8 + 5] = last
    }

    @Test("descriptors decode from the copy, whatever the guest writes afterwards")
    func copyOnce() throws {
        let table = FakeGrantTable()
        let indirect = table.grant(from: guest, pages: 2, writable: false)
        // descriptor 0 of page 0 and descriptor 511 of page 1
        writeDescriptor(indirect.bytes, at: 0, gref: 0x1234_5678, first: 0, last: 7)
        writeDescriptor(indirect.bytes, at: 512 + 511, gref: 99, first: 3, last: 5)
        let copy = PrivateGrantCopy(table: table, capacity: 8)
        for ref in indirect.refs { #expect(copy.append(domain: guest, ref: ref)) }
        try copy.copy()
        #expect(table.deviceCopyCalls == 1, "both pages in one batch")

        // The guest rewrites its pages after the copy (the double-fetch attack).
        writeDescriptor(indirect.bytes, at: 0, gref: 0xDEAD_BEEF, first: 0, last: 255)
        writeDescriptor(indirect.bytes, at: 512 + 511, gref: 1, first: 9, last: 200)
        let mapping = try table.map(domain: guest, refs: indirect.refs, writable: false)
        #expect(mapping.bytes.load(as: UInt32.self) == UInt32(0xDEAD_BEEF).littleEndian)

        copy.withReader { reader in
            #expect(reader.count == 8192)
            #expect(reader.load(UInt32.self, at: 0) == 0x1234_5678)
            #expect(reader.load(UInt8.self, at: 5) == 7)
            #expect(reader.load(UInt32.self, at: 8 * 1023) == 99)
            #expect(reader.load(UInt8.self, at: 8 * 1023 + 5) == 5)
        }
        copy.withReader(piece: 1) { page in
            #expect(page.count == 4096)
            let descriptor = page.slice(at: 8 * 511, count: 8)
            #expect(descriptor?.load(UInt32.self, at: 0) == 99)
            #expect(descriptor?.load(UInt8.self, at: 4) == 3)
        }
    }

    @Test("reads outside the copy are nil, never a trap")
    func bounds() throws {
        let table = FakeGrantTable()
        let page = table.grant(from: guest, pages: 1, writable: false)
        for index in 0..<16 { page.bytes[100 + index] = UInt8(index + 1) }
        let copy = PrivateGrantCopy(table: table, capacity: 2)
        copy.append(domain: guest, ref: page.refs[0], offset: 100, length: 16)
        try copy.copy()
        copy.withReader(piece: 0) { reader in
            #expect(reader.count == 16)
            #expect(reader.load(UInt64.self, at: 8) == 0x100F_0E0D_0C0B_0A09)
            #expect(reader.load(UInt64.self, at: 9) == nil)
            #expect(reader.load(UInt8.self, at: -1) == nil)
            #expect(reader.load(UInt8.self, at: Int.max) == nil)
            #expect(reader.slice(at: 12, count: 5) == nil)
            #expect(reader.slice(at: 16, count: 0)?.count == 0)
            var out = [UInt8](repeating: 0, count: 4)
            #expect(out.withUnsafeMutableBytes { reader.copyBytes(at: 2, count: 4, to: $0) })
            #expect(out == [3, 4, 5, 6])
            #expect(!out.withUnsafeMutableBytes { reader.copyBytes(at: 14, count: 4, to: $0) })
        }
        copy.withReader(piece: 1) { #expect($0.count == 0) }
        copy.withReader(piece: -1) { #expect($0.count == 0) }
    }

    @Test("a piece that fails throws the guest's fault and leaves nothing to read")
    func failure() throws {
        let table = FakeGrantTable()
        let page = table.grant(from: guest, pages: 1, writable: false)
        let copy = PrivateGrantCopy(table: table, capacity: 2)
        copy.append(domain: guest, ref: page.refs[0])
        copy.append(domain: guest, ref: GrantRef(4444))
        #expect(!copy.append(domain: guest, ref: page.refs[0]), "capacity 2")
        #expect(
            throws: XenBusError.grantRefused(
                domain: guest, ref: GrantRef(4444), status: .badGrantRef)
        ) { try copy.copy() }
        copy.withReader { #expect($0.count == 0) }
        copy.withReader(piece: 0) { #expect($0.count == 0) }

        copy.removeAll()
        copy.append(domain: guest, ref: page.refs[0], offset: 4000, length: 200)
        #expect(
            throws: XenBusError.grantRefused(
                domain: guest, ref: page.refs[0], status: .badCopyArgument)
        ) {
            try copy.copy()
        }
        #expect(
            XenBusError.grantRefused(domain: guest, ref: page.refs[0], status: .badCopyArgument)
                .isGuestFault)
    }

    @Test("copying and decoding 1000 times allocates nothing")
    func noAllocation() throws {
        let table = FakeGrantTable(recordsCopies: false)
        let pages = table.grant(from: guest, pages: 2, writable: false)
        writeDescriptor(pages.bytes, at: 3, gref: 77, first: 1, last: 2)
        let copy = PrivateGrantCopy(table: table, capacity: 2)
        var sum = 0
        func round() throws(XenBusError) {
            copy.removeAll()
            // Indexed: in a debug build, a for-in over the refs array
            // measured 2 allocations per loop (the caller's, not the copy's).
            for page in 0..<2 { copy.append(domain: guest, ref: pages.refs[page]) }
            try copy.copy()
            copy.withReader { sum += Int($0.load(UInt32.self, at: 24) ?? 0) }
        }
        try round()
        let counted = try allocations { for _ in 0..<1000 { try round() } }
        #expect(counted == 0)
        #expect(sum == 1001 * 77)
    }
}

@Suite("grants on the hot path, together")
struct GrantHotPathExampleTests {
    let frontend = DomainID(6)

    @Test(
        "docs/XENBUS.md's blkif indirect example: descriptors copied once, data in one batch"
    )
    func indirectRequest() throws {
        let grants = FakeGrantTable()
        let data = grants.grant(from: frontend, pages: 3, writable: false)
        for page in 0..<3 { data.bytes[page * 4096 + 512] = UInt8(0x10 + page) }
        let indirectPage = grants.grant(from: frontend, pages: 1, writable: false)
        for (index, ref) in data.refs.enumerated() {
            // blkif_request_segment: gref, first_sect 1, last_sect 2
            indirectPage.bytes.storeBytes(
                of: ref.rawValue.littleEndian, toByteOffset: index * 8, as: UInt32.self)
            indirectPage.bytes[index * 8 + 4] = 1
            indirectPage.bytes[index * 8 + 5] = 2
        }
        let indirectRefs = indirectPage.refs
        let (indirectPageCount, segmentCount) = (1, 3)

        // As in the document, once per connection:
        let bounce = UnsafeMutableRawBufferPointer.allocate(
            byteCount: 64 * xenPageSize, alignment: xenPageSize)
        defer { bounce.deallocate() }
        bounce.initializeMemory(as: UInt8.self, repeating: 0)
        let batch = grants.makeCopyBatch(capacity: 64, local: bounce)
        let indirect = PrivateGrantCopy(table: grants, capacity: 8)

        // Per request:
        indirect.removeAll()
        for page in 0..<indirectPageCount {
            indirect.append(domain: frontend, ref: indirectRefs[page])
        }
        try indirect.copy()
        batch.removeAll()
        try indirect.withReader { (reader) throws(XenBusError) in
            for index in 0..<segmentCount {
                guard let gref = reader.load(UInt32.self, at: index * 8),
                    let first = reader.load(UInt8.self, at: index * 8 + 4),
                    let last = reader.load(UInt8.self, at: index * 8 + 5), first <= last, last < 8
                else { throw .guestProtocol("bad indirect segment \(index)") }
                batch.append(
                    GrantCopySegment(
                        .fromGuest, domain: frontend, ref: GrantRef(gref),
                        offset: UInt16(first) * 512,
                        length: UInt16(last - first + 1) * 512,
                        localOffset: index * xenPageSize))
            }
        }
        try grants.copy(batch)
        #expect(batch.allOkay)
        #expect(batch.count == 3)
        for page in 0..<3 { #expect(bounce[page * 4096] == UInt8(0x10 + page)) }
        #expect(grants.deviceCopyCalls == 2, "one for the indirect page, one for the data")
    }
}
