import BlockBackend
import Testing
import XenBus
import XenBusTesting

/// `feature-persistent`: the frontend's data pages mapped once and reused,
/// data moved by memcpy instead of grant copy.
@Suite("blkback persistent grants")
struct PersistentGrantTests {
    static let sectors = 2048

    func rig(capacity: Int = 1056) throws -> (
        BlockRig<BlkifRequest64, BlkifResponse64>, MemoryStorage
    ) {
        let storage = MemoryStorage(sectors: Self.sectors)
        return (
            try BlockRig(storage: storage, limits: storage.limits, persistentGrants: capacity),
            storage
        )
    }

    @Test("pages are mapped once and reused: no grant copy, data exact both ways")
    func reuse() throws {
        let (rig, storage) = try rig()
        let pages = rig.pages(4)
        let data = patternBytes(4 * 4096, seed: 11)
        pages.bytes.copyBytes(from: data)
        for round in 0..<3 {
            let written = try rig.run(
                rwRequest(
                    BlkifOperation.write, id: UInt64(round), sector: UInt64(round * 32),
                    refs: pages.refs))
            #expect(written?.status == BlkifStatus.okay)
            #expect(
                Array(storage.bytes[(round * 32 * 512)..<(round * 32 * 512 + data.count)]) == data)
        }
        // The same pages read back another part of the disk (writable use of
        // pages first mapped read-only: each is mapped once more).
        let read = try rig.run(
            rwRequest(BlkifOperation.read, id: 9, sector: 1000, refs: pages.refs, first: 1, last: 6)
        )
        #expect(read?.status == BlkifStatus.okay)
        for page in 0..<4 {
            let base = page * 4096
            let disk = (1000 + page * 6) * 512
            #expect(
                Array(pages.bytes[(base + 512)..<(base + 3584)])
                    == Array(storage.bytes[disk..<(disk + 3072)]))
            // Outside the segment: the guest's own bytes, untouched.
            #expect(Array(pages.bytes[base..<(base + 512)]) == Array(data[base..<(base + 512)]))
        }
        let stats = rig.endpoint.statistics
        #expect(stats.persistentMaps == 8, "4 read-only maps, then 4 writable ones")
        #expect(stats.persistentHits == 8, "rounds 2 and 3 reused the mappings")
        #expect(stats.grantCopyCalls == 0)
        #expect(rig.grants.deviceCopyCalls == 0)
        #expect(rig.grants.liveMappings == 1 + 4, "the ring and the four cached pages")
    }

    @Test("a page that cannot be mapped fails its request only")
    func unmappable() throws {
        let (rig, storage) = try rig()
        let pages = rig.pages(2)
        let before = storage.bytes
        // A ref nobody granted, after a good one.
        let bad = try rig.run(
            rwRequest(
                BlkifOperation.write, id: 1, sector: 0, refs: [pages.refs[0], GrantRef(9999)]))
        #expect(bad?.status == BlkifStatus.error)
        #expect(storage.bytes == before, "nothing of a failed write reaches the disk")
        // A read-only grant cannot take a read's data.
        let readOnly = rig.pages(1, writable: false)
        let refused = try rig.run(
            rwRequest(BlkifOperation.read, id: 2, sector: 0, refs: readOnly.refs))
        #expect(refused?.status == BlkifStatus.error)
        #expect(readOnly.bytes.allSatisfy { $0 == 0 })
        // Another domain's page is never mapped for this frontend.
        let foreign = rig.grants.grant(from: DomainID(9), pages: 1, writable: true)
        let other = try rig.run(
            rwRequest(BlkifOperation.read, id: 3, sector: 0, refs: foreign.refs))
        #expect(other?.status == BlkifStatus.error)
        #expect(foreign.bytes.allSatisfy { $0 == 0 })
        // The ring goes on.
        let good = try rig.run(rwRequest(BlkifOperation.read, id: 4, sector: 8, refs: pages.refs))
        #expect(good?.status == BlkifStatus.okay)
        #expect(Array(pages.bytes[0..<4096]) == Array(storage.bytes[4096..<8192]))
    }

    @Test("past the cache's capacity pages are evicted and mapped again, data still exact")
    func eviction() throws {
        let (rig, storage) = try rig(capacity: 2)
        let pages = rig.pages(3)
        for round in 0..<4 {
            let data = patternBytes(3 * 4096, seed: UInt64(20 + round))
            pages.bytes.copyBytes(from: data)
            let written = try rig.run(
                rwRequest(BlkifOperation.write, id: UInt64(round), sector: 64, refs: pages.refs))
            #expect(written?.status == BlkifStatus.okay)
            #expect(Array(storage.bytes[(64 * 512)..<(64 * 512 + data.count)]) == data)
        }
        #expect(
            rig.endpoint.statistics.persistentMaps == 12, "every use missed (LRU, 3 pages in 2)")
        #expect(rig.grants.liveMappings == 1 + 2)
    }

    @Test("a revoked grant still mapped keeps serving, as a real mapping would")
    func revokedWhileMapped() throws {
        let (rig, storage) = try rig()
        let pages = rig.pages(1)
        pages.bytes.copyBytes(from: patternBytes(4096, seed: 5))
        #expect(
            try rig.run(rwRequest(BlkifOperation.read, id: 1, sector: 0, refs: pages.refs))?.status
                == BlkifStatus.okay)
        rig.grants.revoke(pages.refs[0])
        #expect(
            try rig.run(rwRequest(BlkifOperation.read, id: 2, sector: 8, refs: pages.refs))?.status
                == BlkifStatus.okay)
        #expect(Array(pages.bytes[0..<4096]) == Array(storage.bytes[4096..<8192]))
    }
}
