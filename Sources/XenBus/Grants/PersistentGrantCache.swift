/// Persistent grants (`feature-persistent`, blkif): pages a frontend keeps
/// granted and reuses for I/O, mapped once per ref and kept mapped, so a
/// request costs no map/unmap. At most ``capacity`` pages stay mapped; past
/// that the least recently used page is evicted (its mapping dropped).
///
/// One cache per ring, for that ring's frontend ``domain``. Owned by one
/// thread (the ring's worker): deliberately not `Sendable`; make it there.
///
/// An evicted page is unmapped when the last ``GrantMapping`` to it goes: a
/// caller still holding the mapping ``page(_:writable:)`` returned keeps it
/// valid, so a request whose pages evict each other never reads unmapped
/// memory.
public final class PersistentGrantCache {
    /// Linux blkback's default `max_persistent_grants` per ring: 1056, i.e.
    /// 32 ring requests × (32 indirect segments + 1 indirect page), blkfront's
    /// default `max_indirect_segments` being 32.
    public static let linuxBlkbackDefaultCapacity = 1056

    /// The grant table pages are mapped through.
    public let table: any GrantTable
    /// The frontend whose grants are cached.
    public let domain: DomainID
    /// The most pages kept mapped (at least 1).
    public let capacity: Int

    /// Lookups served from the cache.
    public private(set) var hits = 0
    /// Lookups that mapped a page (new refs, and read-only pages asked for
    /// writable, which are remapped).
    public private(set) var misses = 0
    /// Pages dropped to stay within ``capacity``.
    public private(set) var evictions = 0

    private struct Slot {
        var ref = GrantRef(0)
        var mapping: GrantMapping?
        // Links of the recency list (slot indices, -1 for none).
        var newer = -1
        var older = -1
    }

    // Slots are preallocated; the index is reserved for `capacity` refs, so
    // neither grows after init and a hit only relinks two slots.
    private var slots: [Slot]
    private var index: [GrantRef: Int]
    private var free: [Int]
    private var newest = -1
    private var oldest = -1

    /// A cache of at most `capacity` pages (at least 1) of `domain`, mapped
    /// through `table`.
    public init(
        table: any GrantTable, domain: DomainID, capacity: Int = linuxBlkbackDefaultCapacity
    ) {
        let capacity = max(capacity, 1)
        self.table = table
        self.domain = domain
        self.capacity = capacity
        slots = [Slot](repeating: Slot(), count: capacity)
        index = [GrantRef: Int](minimumCapacity: capacity)
        free = Array((0..<capacity).reversed())
    }

    /// Pages currently cached.
    public var count: Int { index.count }

    /// Whether `ref` is cached, and if so whether writable; nil if not cached.
    public func cachedWritable(_ ref: GrantRef) -> Bool? {
        guard let slot = index[ref] else { return nil }
        return slots[slot].mapping?.isWritable
    }

    /// The page `ref` of ``domain``, mapped once and then served from the
    /// cache (no allocation on a hit). A writable request for a page cached
    /// read-only maps it again writable (the read-only mapping is dropped
    /// only once that succeeded). Throws what mapping throws; the cache is
    /// unchanged then.
    public func page(_ ref: GrantRef, writable: Bool) throws(XenBusError) -> GrantMapping {
        if let slot = index[ref], let mapping = slots[slot].mapping {
            if mapping.isWritable || !writable {
                hits += 1
                touch(slot)
                return mapping
            }
            let remapped = try table.map(domain: domain, ref: ref, writable: true)
            misses += 1
            slots[slot].mapping = remapped
            touch(slot)
            return remapped
        }
        let mapping = try table.map(domain: domain, ref: ref, writable: writable)
        misses += 1
        if free.isEmpty { evictOldest() }
        guard let slot = free.popLast() else { return mapping }
        slots[slot].ref = ref
        slots[slot].mapping = mapping
        index[ref] = slot
        link(slot)
        return mapping
    }

    /// Drops every cached page (frontend disconnect); counters are kept.
    public func removeAll() {
        var slot = oldest
        while slot >= 0 {
            let newer = slots[slot].newer
            slots[slot] = Slot()
            free.append(slot)
            slot = newer
        }
        index.removeAll(keepingCapacity: true)
        newest = -1
        oldest = -1
    }

    // MARK: recency list

    private func evictOldest() {
        let slot = oldest
        guard slot >= 0 else { return }
        unlink(slot)
        index[slots[slot].ref] = nil
        slots[slot] = Slot()
        free.append(slot)
        evictions += 1
    }

    private func touch(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        link(slot)
    }

    // Makes `slot` the newest.
    private func link(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private func unlink(_ slot: Int) {
        let older = slots[slot].older
        let newer = slots[slot].newer
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        slots[slot].older = -1
        slots[slot].newer = -1
    }
}
