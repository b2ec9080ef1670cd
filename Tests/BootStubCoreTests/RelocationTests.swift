import BootStubCore
import Testing

@Suite struct RelocationTests {
    static func modules(_ ranges: [(UInt32, UInt32)]) -> BoundedList<8, BootModule> {
        var list = BoundedList<8, BootModule>(
            filler: BootModule(start: 0, end: 0, commandLine: nil))
        for (s, e) in ranges { list.append(BootModule(start: s, end: e, commandLine: nil)) }
        return list
    }

    static func ranges(_ ranges: [(UInt64, UInt64)]) -> BoundedList<8, PhysicalRange> {
        var list = BoundedList<8, PhysicalRange>(filler: PhysicalRange(start: 0, end: 0))
        for (s, e) in ranges { list.append(PhysicalRange(start: s, end: e)) }
        return list
    }

    static func map(_ regions: [(UInt64, UInt64, UInt32)]) -> BoundedList<64, MemoryRegion> {
        var list = BoundedList<64, MemoryRegion>(filler: MemoryRegion(base: 0, length: 0, type: 0))
        for (b, l, t) in regions { list.append(MemoryRegion(base: b, length: l, type: t)) }
        return list
    }

    /// QEMU's -m 2048 map.
    static let qemuMap = map([
        (0, 0x9_fc00, 1), (0x9_fc00, 0x400, 2), (0xf_0000, 0x1_0000, 2),
        (0x10_0000, 0x7fee_0000, 1), (0x7ffe_0000, 0x2_0000, 2), (0xfffc_0000, 0x4_0000, 2),
    ])

    static func starts(_ list: BoundedList<8, UInt32>) -> [UInt32] {
        (0..<list.count).compactMap { list.at($0) }
    }

    @Test func qemuLayoutMovesOverlappingModulesAboveEverything() throws {
        // The stub at 1 MiB, QEMU's modules right after it: xen (2.5 MB),
        // vmlinux (60 MB), initrd (5 MiB); Xen will load at 2 MiB..0x5a7000.
        let vmlinuxEnd: UInt32 = 0x40_0000 + 60_000_000  // 0x3d38700
        let mods = Self.modules([
            (0x11_2000, 0x38_f000), (0x38_f000, vmlinuxEnd), (0x3d3_9000, 0x423_9000),
        ])
        let reserved = Self.ranges([(0x10_0000, 0x11_0000), (0x20_0000, 0x5a_7000)])
        let plan = try ModuleRelocation.plan(
            modules: mods, reserved: reserved, memoryMap: Self.qemuMap)
        // The initrd overlaps nothing reserved and stays; xen's module goes
        // to the first page after everything occupied, vmlinux right after it.
        #expect(Self.starts(plan) == [0x423_9000, 0x423_9000 + 0x27_d000, 0x3d3_9000])
        let xen = PhysicalRange(start: 0x423_9000, end: 0x423_9000 + 0x27_d000)
        let vmlinux = PhysicalRange(start: xen.end, end: xen.end + UInt64(vmlinuxEnd - 0x38_f000))
        for r in [xen, vmlinux] {
            for i in 0..<mods.count {
                let m = try #require(mods.at(i))
                #expect(!r.overlaps(PhysicalRange(start: UInt64(m.start), end: UInt64(m.end))))
            }
            #expect(!r.overlaps(PhysicalRange(start: 0x20_0000, end: 0x5a_7000)))
        }
    }

    @Test func lowestFitUsesAGapBetweenOccupiedRanges() throws {
        // One module at 2 MiB clashes with a reserved range; a 1 MiB gap at
        // 8 MiB between two other modules is the lowest free place.
        let mods = Self.modules([
            (0x20_0000, 0x30_0000), (0x40_0000, 0x80_0000), (0x90_0000, 0xa0_0000),
        ])
        let reserved = Self.ranges([(0x10_0000, 0x40_0000)])
        let plan = try ModuleRelocation.plan(
            modules: mods, reserved: reserved, memoryMap: Self.qemuMap)
        #expect(Self.starts(plan) == [0x80_0000, 0x40_0000, 0x90_0000])
    }

    @Test func skipsUnusableAndTooSmallRegions() throws {
        let memory = Self.map([
            (0, 0x9_f000, 1), (0x10_0000, 0x10_0000, 1), (0x20_0000, 0x100_0000, 2),
            (0x200_0000, 0x100_0000, 1),
        ])
        let mods = Self.modules([(0x10_0000, 0x18_0000)])
        let reserved = Self.ranges([(0x10_0000, 0x12_0000)])
        let plan = try ModuleRelocation.plan(modules: mods, reserved: reserved, memoryMap: memory)
        // 0x180000..0x200000 is only 512 KiB: too small for 512 KiB + the
        // module's own current place? The module is 0x80000 bytes and the
        // gap after it (0x180000..0x200000) fits exactly.
        #expect(Self.starts(plan) == [0x18_0000])
        let big = Self.modules([(0x10_0000, 0x1a_0000)])
        let planBig = try ModuleRelocation.plan(modules: big, reserved: reserved, memoryMap: memory)
        #expect(Self.starts(planBig) == [0x200_0000])
    }

    @Test func neverBelowOneMiBNorAboveFourGiB() throws {
        let memory = Self.map([
            (0, 0x9_f000, 1), (0x10_0000, 0xc000, 1), (0x1_0000_0000, 0x1_0000_0000, 1),
        ])
        let mods = Self.modules([(0x10_0000, 0x10_8000)])
        let reserved = Self.ranges([(0x10_0000, 0x10_1000)])
        #expect(throws: BootStubError.noRoomForModule(index: 0, size: 0x8000)) {
            try ModuleRelocation.plan(modules: mods, reserved: reserved, memoryMap: memory)
        }
    }

    @Test func untouchedWhenNothingOverlaps() throws {
        let mods = Self.modules([(0x100_0000, 0x200_0000), (0x200_0000, 0x200_0000)])
        let reserved = Self.ranges([(0x20_0000, 0x5a_7000)])
        let plan = try ModuleRelocation.plan(
            modules: mods, reserved: reserved, memoryMap: Self.qemuMap)
        #expect(Self.starts(plan) == [0x100_0000, 0x200_0000])
    }
}
