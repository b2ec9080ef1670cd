// Where to move modules that sit where Xen (or the stub itself) must go.
// Loaders place modules right after the kernel they load, i.e. after the
// stub at 1 MiB, which is exactly where Xen's image (2 MiB up) will land.

/// Planning of module moves.
public enum ModuleRelocation {
    /// Moved modules go no lower: below 1 MiB is firmware territory.
    public static let floor: UInt64 = 0x10_0000
    /// Multiboot 1 addresses are 32-bit: everything stays below 4 GiB.
    public static let ceiling: UInt64 = 0x1_0000_0000
    /// Moved modules start page-aligned, as loaders place them.
    public static let alignment: UInt64 = 0x1000

    /// For every module, the address it must start at before the stub
    /// overwrites `reserved` (Xen's load footprint, the stub's own image):
    /// its current start if it overlaps nothing reserved, else the lowest
    /// page-aligned address in usable memory that overlaps no reserved
    /// range, no module's current place and no other module's new place.
    /// Because a destination never overlaps any current module, the moves
    /// can be done in any order without one clobbering another's source.
    public static func plan(
        modules: BoundedList<8, BootModule>,
        reserved: BoundedList<8, PhysicalRange>,
        memoryMap: BoundedList<64, MemoryRegion>
    ) throws(BootStubError) -> BoundedList<8, UInt32> {
        var occupied = BoundedList<32, PhysicalRange>(filler: PhysicalRange(start: 0, end: 0))
        for i in 0..<reserved.count {
            if let r = reserved.at(i) { occupied.append(r) }
        }
        for i in 0..<modules.count {
            if let m = modules.at(i) { occupied.append(range(of: m)) }
        }
        var result = BoundedList<8, UInt32>(filler: 0)
        for i in 0..<modules.count {
            guard let module = modules.at(i) else { continue }
            let current = range(of: module)
            var clashes = false
            for j in 0..<reserved.count {
                if let r = reserved.at(j), r.overlaps(current) { clashes = true }
            }
            if !clashes {
                result.append(module.start)
                continue
            }
            guard
                let start = lowestFit(
                    size: current.length, occupied: occupied, memoryMap: memoryMap)
            else { throw .noRoomForModule(index: i, size: current.length) }
            result.append(UInt32(start))
            occupied.append(PhysicalRange(start: start, end: start + current.length))
        }
        return result
    }

    static func range(of module: BootModule) -> PhysicalRange {
        PhysicalRange(start: UInt64(module.start), end: UInt64(module.end))
    }

    static func alignUp(_ value: UInt64) -> UInt64 {
        (value + alignment - 1) & ~(alignment - 1)
    }

    /// The lowest aligned start of `size` free bytes inside one usable region.
    static func lowestFit(
        size: UInt64, occupied: BoundedList<32, PhysicalRange>,
        memoryMap: BoundedList<64, MemoryRegion>
    ) -> UInt64? {
        var best: UInt64?
        for i in 0..<memoryMap.count {
            guard let region = memoryMap.at(i), region.isUsable else { continue }
            let low = max(region.range.start, floor)
            let high = min(region.range.end, ceiling)
            guard low < high else { continue }
            // Candidates: the region's start and the end of each occupied range.
            var candidate = alignUp(low)
            var k = -1
            while k < occupied.count {
                if k >= 0, let o = occupied.at(k) { candidate = alignUp(max(o.end, low)) }
                k += 1
                guard candidate + size <= high else { continue }
                if let b = best, candidate >= b { continue }
                let wanted = PhysicalRange(start: candidate, end: candidate + size)
                var free = true
                for j in 0..<occupied.count {
                    if let o = occupied.at(j), o.overlaps(wanted) { free = false }
                }
                if free { best = candidate }
            }
        }
        return best
    }
}
