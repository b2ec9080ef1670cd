// What the loader tells the stub, whichever multiboot version it spoke.

/// One entry of the firmware memory map (e820 types: 1 usable, 2 reserved,
/// 3 ACPI reclaimable, 4 ACPI NVS, 5 bad).
public struct MemoryRegion: Equatable, Sendable {
    /// First byte.
    public var base: UInt64
    /// Length in bytes.
    public var length: UInt64
    /// e820 type.
    public var type: UInt32

    /// A region of `length` bytes at `base` of e820 `type`.
    public init(base: UInt64, length: UInt64, type: UInt32) {
        self.base = base
        self.length = length
        self.type = type
    }

    /// Whether the OS may use it freely.
    public var isUsable: Bool { type == 1 }

    /// The region as an address range (clamped at 2^64).
    public var range: PhysicalRange {
        PhysicalRange(start: base, end: base &+ length < base ? UInt64.max : base &+ length)
    }
}

/// One module as the loader placed it.
public struct BootModule: Equatable, Sendable {
    /// First byte.
    public var start: UInt32
    /// One past the last byte.
    public var end: UInt32
    /// The module's command line as the loader gave it.
    public var commandLine: MemoryString?

    /// A module at `[start, end)`.
    public init(start: UInt32, end: UInt32, commandLine: MemoryString?) {
        self.start = start
        self.end = end
        self.commandLine = commandLine
    }

    /// Size in bytes.
    public var size: UInt32 { end &- start }
}

/// Which multiboot protocol started the stub.
public enum BootProtocol: Equatable, Sendable {
    /// Multiboot 1 (iPXE, QEMU `-kernel`).
    case multiboot1
    /// Multiboot 2 (GRUB's `multiboot2`).
    case multiboot2
}

/// Capacity of the stub's copy of the memory map.
public let maximumMemoryRegions = 64

/// The loader's information, normalised across multiboot 1 and 2.
public struct BootInfo: Sendable {
    /// The protocol used.
    public var bootProtocol: BootProtocol
    /// The stub's own command line.
    public var commandLine: MemoryString?
    /// The loader's name, if it gave one.
    public var loaderName: MemoryString?
    /// KiB of conventional memory below 1 MiB, if the loader said.
    public var memoryLowerKiB: UInt32?
    /// KiB of contiguous memory above 1 MiB, if the loader said.
    public var memoryUpperKiB: UInt32?
    /// The firmware memory map.
    public var memoryMap = BoundedList<64, MemoryRegion>(
        filler: MemoryRegion(base: 0, length: 0, type: 0))
    /// The modules in the loader's order.
    public var modules = BoundedList<8, BootModule>(
        filler: BootModule(start: 0, end: 0, commandLine: nil))

    /// Empty information for `bootProtocol`.
    public init(bootProtocol: BootProtocol) {
        self.bootProtocol = bootProtocol
    }

    /// Bytes of usable RAM in the memory map.
    public var usableBytes: UInt64 {
        var total: UInt64 = 0
        for i in 0..<memoryMap.count {
            if let r = memoryMap.at(i), r.isUsable { total &+= r.length }
        }
        return total
    }

    /// Whether `range` lies entirely inside one usable region of the map.
    public func isUsable(_ range: PhysicalRange) -> Bool {
        for i in 0..<memoryMap.count {
            if let r = memoryMap.at(i), r.isUsable, r.range.contains(range) { return true }
        }
        return false
    }

    /// `memoryLowerKiB`/`memoryUpperKiB`, or values derived from the memory
    /// map: the usable region at 0 and the one starting at 1 MiB.
    public var memoryLimitsKiB: (lower: UInt32, upper: UInt32) {
        if let lower = memoryLowerKiB, let upper = memoryUpperKiB { return (lower, upper) }
        var lower: UInt64 = 0
        var upper: UInt64 = 0
        for i in 0..<memoryMap.count {
            guard let r = memoryMap.at(i), r.isUsable else { continue }
            if r.base == 0 { lower = min(r.length, 0xA0000) / 1024 }
            if r.base == 0x10_0000 { upper = min(r.length / 1024, UInt64(UInt32.max)) }
        }
        return (UInt32(lower), UInt32(upper))
    }

    mutating func addRegion(_ region: MemoryRegion) throws(BootStubError) {
        guard memoryMap.append(region) else { throw .tooManyMemoryRegions(limit: 64) }
    }

    mutating func addModule(_ module: BootModule) throws(BootStubError) {
        guard module.end >= module.start else {
            throw .bootInfoMalformed("a module ends before it starts")
        }
        guard modules.append(module) else { throw .tooManyModules(limit: maximumModules) }
    }
}
