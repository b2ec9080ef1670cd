import Testing
import XenBus
import XenBusTesting

@Suite("persistent grant cache")
struct PersistentGrantCacheTests {
    let guest = DomainID(3)

    @Test("Linux blkback's default capacity per ring")
    func defaultCapacity() {
        let cache = PersistentGrantCache(table: FakeGrantTable(), domain: guest)
        #expect(cache.capacity == 1056)
        #expect(
            PersistentGrantCache(table: FakeGrantTable(), domain: guest, capacity: 0).capacity == 1)
    }

    @Test("a page is mapped once, then hit; the least recently used is evicted and unmapped")
    func hitMissEvict() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 3, writable: false)
        let (a, b, c) = (grant.refs[0], grant.refs[1], grant.refs[2])
        grant.bytes[4096 + 5] = 0x42
        let cache = PersistentGrantCache(table: table, domain: guest, capacity: 2)

        let first = try cache.page(b, writable: false)
        #expect(first.bytes[5] == 0x42)
        #expect(try cache.page(b, writable: false) === first, "a hit returns the same mapping")
        _ = try cache.page(a, writable: false)
        #expect((cache.hits, cache.misses, cache.evictions) == (1, 2, 0))

        // b was used before a: b is the least recently used and goes for c.
        _ = try cache.page(c, writable: false)
        #expect(cache.evictions == 1)
        #expect(cache.count == 2)
        #expect(cache.cachedWritable(b) == nil)
        #expect(table.liveMappings == 3, "the caller still holds b's mapping")
        _ = consume first
        #expect(table.liveMappings == 2, "dropping it unmaps the evicted page")

        // A hit on a makes c the oldest: mapping b again evicts c.
        _ = try cache.page(a, writable: false)
        _ = try cache.page(b, writable: false)
        #expect(cache.cachedWritable(c) == nil)
        #expect(cache.cachedWritable(a) == false)
        #expect((cache.hits, cache.misses, cache.evictions) == (2, 4, 2))
        #expect(
            table.operations == [
                .map(domain: guest, refs: [b], writable: false),
                .map(domain: guest, refs: [a], writable: false),
                .map(domain: guest, refs: [c], writable: false),
                .unmap(domain: guest, refs: [b]),
                .map(domain: guest, refs: [b], writable: false),
                .unmap(domain: guest, refs: [c]),
            ])
    }

    @Test("removeAll unmaps every cached page; the cache maps again afterwards")
    func removeAll() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 4, writable: true)
        let cache = PersistentGrantCache(table: table, domain: guest, capacity: 8)
        for ref in grant.refs { _ = try cache.page(ref, writable: true) }
        #expect(table.liveMappings == 4)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(table.liveMappings == 0)
        let unmapped = table.operations.compactMap { operation -> GrantRef? in
            if case .unmap(_, let refs) = operation { return refs.first }
            return nil
        }
        #expect(Set(unmapped) == Set(grant.refs))
        #expect(cache.evictions == 0, "a disconnect is not an eviction")

        _ = try cache.page(grant.refs[0], writable: true)
        #expect(cache.misses == 5)
        #expect(cache.count == 1)
    }

    @Test("a writable request for a page cached read-only remaps it writable")
    func remapWritable() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 1, writable: true)
        let ref = grant.refs[0]
        let cache = PersistentGrantCache(table: table, domain: guest)

        _ = try cache.page(ref, writable: false)
        #expect(cache.cachedWritable(ref) == false)
        let writable = try cache.page(ref, writable: true)
        try writable.writableBytes()[0] = 0x99
        #expect(grant.bytes[0] == 0x99)
        #expect(cache.cachedWritable(ref) == true)
        #expect(try cache.page(ref, writable: false) === writable, "writable serves reads")
        #expect((cache.hits, cache.misses, cache.count) == (1, 2, 1))
        #expect(
            table.operations == [
                .map(domain: guest, refs: [ref], writable: false),
                .map(domain: guest, refs: [ref], writable: true),
                .unmap(domain: guest, refs: [ref]),
            ])
    }

    @Test("a refused map leaves the cache as it was")
    func refused() throws {
        let table = FakeGrantTable()
        let readOnly = table.grant(from: guest, pages: 1, writable: false)
        let ref = readOnly.refs[0]
        let cache = PersistentGrantCache(table: table, domain: guest)
        _ = try cache.page(ref, writable: false)
        #expect(
            throws: XenBusError.grantRefused(domain: guest, ref: ref, status: .permissionDenied)
        ) {
            _ = try cache.page(ref, writable: true)
        }
        #expect(cache.cachedWritable(ref) == false, "the read-only mapping is kept")
        #expect(throws: XenBusError.self) { _ = try cache.page(GrantRef(55_555), writable: false) }
        #expect(cache.count == 1)
        #expect(cache.misses == 1)
    }

    @Test("1000 hits allocate nothing")
    func noAllocationOnHit() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 8, writable: true)
        let cache = PersistentGrantCache(table: table, domain: guest, capacity: 8)
        for ref in grant.refs { _ = try cache.page(ref, writable: true) }
        var seen = 0
        let hits = try allocations {
            for round in 0..<1000 {
                seen += try cache.page(grant.refs[round % 8], writable: round % 3 == 0).bytes.count
            }
        }
        #expect(hits == 0)
        #expect(seen == 1000 * 4096)
        #expect(cache.hits == 1000)

        // Misses map (a GrantMapping each), so the counter can see them.
        let small = PersistentGrantCache(table: table, domain: guest, capacity: 1)
        let misses = try allocations {
            for round in 0..<10 { _ = try small.page(grant.refs[round % 2], writable: false) }
        }
        #expect(misses >= 10)
        #expect(small.evictions == 9)
    }
}
