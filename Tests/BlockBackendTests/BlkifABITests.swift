import BlockBackend
import CRingReference
import Testing
import XenBus

@Suite("blkif wire layouts: both ABIs against io/blkif.h compiled")
struct BlkifABITests {
    static func reference(_ x86_32: Bool) -> [Int] {
        var fields = [size_t](repeating: 0, count: Int(CREF_BLKIF_ABI_FIELDS))
        fields.withUnsafeMutableBufferPointer {
            cref_blkif_abi_layout(x86_32 ? 1 : 0, $0.baseAddress)
        }
        return fields.map { Int($0) }
    }

    static func ours(_ layout: BlkifLayout, entry: Int) -> [Int] {
        [
            layout.requestSize, layout.requestAlignment, layout.responseSize,
            layout.responseAlignment, layout.rwID, layout.rwSector, layout.rwSegments,
            layout.discardID, layout.discardSector, layout.discardSectors, layout.indirectID,
            layout.indirectSector, layout.indirectHandle, layout.indirectRefs,
            layout.responseID, layout.responseOperation, layout.responseStatus,
            // sizeof the indirect member, discard's flag and indirect's
            // nr_segments: fixed by the decoder (refs end at +32).
            layout.indirectRefs + 32 + (layout == .x86_32 ? 8 : 4), 1, 2, entry,
        ]
    }

    @Test("x86_64 matches the native header")
    func x86_64() throws {
        let entry = try RingGeometry.unionSize(BlkifRequest64.self, BlkifResponse64.self)
        #expect(Self.ours(.x86_64, entry: entry) == Self.reference(false))
    }

    @Test("x86_32 matches the header in the i386 layout")
    func x86_32() throws {
        let entry = try RingGeometry.unionSize(BlkifRequest32.self, BlkifResponse32.self)
        #expect(Self.ours(.x86_32, entry: entry) == Self.reference(true))
    }

    @Test("one page holds 32 requests in both ABIs, 16 pages 512")
    func ringSizes() throws {
        #expect(
            try RingGeometry(
                bufferSize: 4096, request: BlkifRequest64.self, response: BlkifResponse64.self
            ).entryCount == 32)
        #expect(
            try RingGeometry(
                bufferSize: 4096, request: BlkifRequest32.self, response: BlkifResponse32.self
            ).entryCount == 32)
        #expect(
            try RingGeometry(
                bufferSize: 65536, request: BlkifRequest64.self, response: BlkifResponse64.self
            ).entryCount == 512)
        #expect(cref_const_ring_size(CREF_BLKIF, 65536) == 512)
    }

    @Test("an x86_32 read request decoded from literal bytes")
    func literal32() {
        var bytes = [UInt8](repeating: 0, count: 108)
        bytes[0] = 0  // operation READ
        bytes[1] = 2  // nr_segments
        bytes[2] = 0x01
        bytes[3] = 0xCA  // handle 0xCA01
        bytes[4...11] = [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]  // id at 4 (i386)
        bytes[12...19] = [0x10, 0, 0, 0, 0, 0, 0, 0]  // sector_number 16 at 12
        bytes[20...23] = [0x2A, 0, 0, 0]
        bytes[24] = 1
        bytes[25] = 6  // seg[0] gref 42, 1..6
        bytes[28...31] = [0x2B, 0, 0, 0]
        bytes[32] = 0
        bytes[33] = 7  // seg[1] gref 43, 0..7
        let request = RingEntryReader.withCopy(of: bytes) { BlkifRequest32(ringEntry: $0).request }
        #expect(request.operation == 0)
        #expect(request.segmentCount == 2)
        #expect(request.handle == 0xCA01)
        #expect(request.id == 0x1122_3344_5566_7788)
        #expect(request.sector == 16)
        #expect(
            request.segments[0] == BlkifSegment(ref: GrantRef(42), firstSector: 1, lastSector: 6))
        #expect(
            request.segments[1] == BlkifSegment(ref: GrantRef(43), firstSector: 0, lastSector: 7))
    }

    @Test("an x86_64 indirect request and a discard decoded from literal bytes")
    func literal64() {
        var bytes = [UInt8](repeating: 0, count: 112)
        bytes[0] = 6  // operation INDIRECT
        bytes[1] = 1  // indirect_op WRITE
        bytes[2] = 0x00
        bytes[3] = 0x01  // nr_segments 256
        bytes[8] = 9  // id 9 at 8
        bytes[16] = 0x00
        bytes[17] = 0x02  // sector 512 at 16
        bytes[24] = 0x03  // handle 3 at 24
        bytes[28] = 0x64  // indirect_grefs[0] 100 at 28
        bytes[32] = 0x65  // indirect_grefs[1] 101
        let indirect = RingEntryReader.withCopy(of: bytes) { BlkifRequest64(ringEntry: $0).request }
        #expect(indirect.operation == 6)
        #expect(indirect.indirectOperation == 1)
        #expect(indirect.segmentCount == 256)
        #expect(indirect.id == 9)
        #expect(indirect.sector == 512)
        #expect(indirect.handle == 3)
        #expect(indirect.indirectRefs[0] == GrantRef(100))
        #expect(indirect.indirectRefs[1] == GrantRef(101))

        var discard = [UInt8](repeating: 0, count: 112)
        discard[0] = 5  // DISCARD
        discard[1] = 1  // flag SECURE
        discard[8] = 4  // id 4
        discard[16] = 8  // sector 8
        discard[24] = 16  // nr_sectors 16 at 24
        let decoded = RingEntryReader.withCopy(of: discard) {
            BlkifRequest64(ringEntry: $0).request
        }
        #expect(decoded.discardFlags == 1)
        #expect(decoded.id == 4)
        #expect(decoded.sector == 8)
        #expect(decoded.discardSectors == 16)
    }

    @Test("responses encode as the header lays them out, in both ABIs")
    func responses() {
        let response = BlkifResponse(id: 0x0102_0304_0506_0708, operation: 1, status: -1)
        let wide = RingEntryWriter.encode(count: 16) { BlkifResponse64(response).encode(to: &$0) }
        #expect(wide == [8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0xFF, 0xFF, 0, 0, 0, 0])
        let narrow = RingEntryWriter.encode(count: 12) { BlkifResponse32(response).encode(to: &$0) }
        #expect(narrow == [8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0xFF, 0xFF])
    }
}
