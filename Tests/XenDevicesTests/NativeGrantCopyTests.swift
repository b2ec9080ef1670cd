import CAllocationCounter
import CXen
import Testing
import XenBus

@testable import XenDevices

// The part of LinuxGrantTable.copy(_:) that needs no /dev/xen: a batch
// becomes the xengnttab_grant_copy_segment_t array in its scratch, and the
// statuses gntdev writes there come back per segment. Runs on any host.
@Suite("libxengnttab segment array of a grant copy batch")
struct NativeGrantCopyTests {
    let guest = DomainID(7)

    func makeBatch(capacity: Int, local: UnsafeMutableRawBufferPointer) -> GrantCopyBatch {
        GrantCopyBatch(
            capacity: capacity, local: local, scratchLayout: LinuxGrantTable.nativeScratchLayout)
    }

    @Test("segments become native entries in place; settled ones are left out")
    func encode() throws {
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { local.deallocate() }
        let base = try #require(local.baseAddress)
        let batch = makeBatch(capacity: 4, local: local)
        batch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(33), offset: 12, length: 100,
                localOffset: 4096))
        // crosses its guest page: never reaches gntdev
        batch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(34), offset: 4000, length: 200,
                localOffset: 0))
        batch.append(
            GrantCopySegment(
                .toGuest, domain: guest, ref: GrantRef(35), offset: 0, length: 512,
                localOffset: 8))
        // empty: okay without gntdev
        batch.append(
            GrantCopySegment(
                .toGuest, domain: guest, ref: GrantRef(36), offset: 0, length: 0, localOffset: 0
            ))

        #expect(LinuxGrantTable.encodeNative(batch) == 2)
        let native = try #require(LinuxGrantTable.nativeSegments(batch))
        #expect(UnsafeMutableRawPointer(native) == batch.scratch.baseAddress, "in the scratch")

        #expect(native[0].flags == CXEN_GNTCOPY_SOURCE_GREF)
        #expect(native[0].source.foreign.ref == 33)
        #expect(native[0].source.foreign.offset == 12)
        #expect(native[0].source.foreign.domid == 7)
        #expect(native[0].dest.virt == base + 4096)
        #expect(native[0].len == 100)

        #expect(native[1].flags == CXEN_GNTCOPY_DEST_GREF)
        #expect(native[1].source.virt == base + 8)
        #expect(native[1].dest.foreign.ref == 35)
        #expect(native[1].dest.foreign.offset == 0)
        #expect(native[1].dest.foreign.domid == 7)
        #expect(native[1].len == 512)

        // What gntdev writes back: okay for the first, a bad ref for the second.
        native[0].status = GrantStatus.okay.rawValue
        native[1].status = GrantStatus.badGrantRef.rawValue
        LinuxGrantTable.decodeNative(batch, count: 2)
        #expect(
            (0..<4).map { batch.status(at: $0) } == [
                .okay, .badCopyArgument, .badGrantRef, .okay,
            ])
    }

    @Test("a batch without the native scratch has no native array")
    func foreignBatch() {
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { local.deallocate() }
        let batch = GrantCopyBatch(capacity: 4, local: local)
        #expect(LinuxGrantTable.nativeSegments(batch) == nil)
        batch.append(
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(1), offset: 0, length: 8, localOffset: 0))
        #expect(LinuxGrantTable.encodeNative(batch) == 0)
    }

    @Test("encoding and decoding a full batch 1000 times allocates nothing")
    func noAllocation() throws {
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 4096, alignment: 4096)
        defer { local.deallocate() }
        let batch = makeBatch(capacity: 16, local: local)
        func round() -> Int {
            batch.removeAll()
            for page in 0..<16 {
                batch.append(
                    GrantCopySegment(
                        page.isMultiple(of: 2) ? .fromGuest : .toGuest, domain: guest,
                        ref: GrantRef(UInt32(100 + page)), offset: 0, length: 4096,
                        localOffset: page * 4096))
            }
            let count = LinuxGrantTable.encodeNative(batch)
            LinuxGrantTable.decodeNative(batch, count: count)
            return count
        }
        #expect(round() == 16)  // warm up

        var total = 0
        let before = allocation_counter_thread_total()
        for _ in 0..<1000 { total += round() }
        let counted = allocation_counter_thread_total() &- before
        #expect(counted == 0)
        #expect(total == 16_000)

        // The counter is live: one small array per round is 1000 allocations.
        let control = allocation_counter_thread_total()
        for index in 0..<1000 { total += [index, index].count }
        #expect(allocation_counter_thread_total() &- control >= 1000)
    }
}
