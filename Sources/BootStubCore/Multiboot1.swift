// Multiboot 1 information (Multiboot Specification 0.6.96, §3.3), read by
// the stub when iPXE or QEMU's -kernel started it, and written for Xen.

/// Constants of the multiboot 1 protocol.
public enum Multiboot1 {
    /// EAX on entry from a multiboot 1 loader.
    public static let bootloaderMagic: UInt32 = 0x2BAD_B002
    /// `flags` bit: mem_lower/mem_upper valid.
    public static let flagMemory: UInt32 = 1 << 0
    /// `flags` bit: cmdline valid.
    public static let flagCommandLine: UInt32 = 1 << 2
    /// `flags` bit: mods_count/mods_addr valid.
    public static let flagModules: UInt32 = 1 << 3
    /// `flags` bit: mmap_length/mmap_addr valid.
    public static let flagMemoryMap: UInt32 = 1 << 6
    /// `flags` bit: boot_loader_name valid.
    public static let flagLoaderName: UInt32 = 1 << 9

    /// Parses the information block at `address`.
    public static func parse<M: PhysicalMemory>(at address: UInt32, memory: M)
        throws(BootStubError) -> BootInfo
    {
        let base = UInt64(address)
        guard let flags = memory.load32(base) else {
            throw .bootInfoMalformed("multiboot1 information unreadable")
        }
        var info = BootInfo(bootProtocol: .multiboot1)
        if flags & flagMemory != 0 {
            info.memoryLowerKiB = memory.load32(base + 4)
            info.memoryUpperKiB = memory.load32(base + 8)
        }
        if flags & flagCommandLine != 0, let p = memory.load32(base + 16) {
            info.commandLine = memory.cString(at: p)
        }
        if flags & flagLoaderName != 0, let p = memory.load32(base + 64) {
            info.loaderName = memory.cString(at: p)
        }
        if flags & flagModules != 0 {
            guard let count = memory.load32(base + 20), let table = memory.load32(base + 24) else {
                throw .bootInfoMalformed("multiboot1 module table unreadable")
            }
            guard count <= UInt32(maximumModules) else {
                throw .tooManyModules(limit: maximumModules)
            }
            for i in 0..<UInt64(count) {
                let entry = UInt64(table) + i * 16
                guard let start = memory.load32(entry), let end = memory.load32(entry + 4),
                    let string = memory.load32(entry + 8)
                else { throw .bootInfoMalformed("multiboot1 module entry unreadable") }
                try info.addModule(
                    BootModule(start: start, end: end, commandLine: memory.cString(at: string)))
            }
        }
        if flags & flagMemoryMap != 0 {
            guard let length = memory.load32(base + 44), let map = memory.load32(base + 48) else {
                throw .bootInfoMalformed("multiboot1 memory map unreadable")
            }
            // Each entry starts with its size, which does not count itself.
            var cursor = UInt64(map)
            let end = UInt64(map) + UInt64(length)
            while cursor < end {
                guard let size = memory.load32(cursor), size >= 20,
                    cursor + 4 + UInt64(size) <= end,
                    let regionBase = memory.load64(cursor + 4),
                    let regionLength = memory.load64(cursor + 12),
                    let type = memory.load32(cursor + 20)
                else { throw .bootInfoMalformed("multiboot1 memory map entry truncated") }
                try info.addRegion(MemoryRegion(base: regionBase, length: regionLength, type: type))
                cursor += 4 + UInt64(size)
            }
        }
        return info
    }
}
