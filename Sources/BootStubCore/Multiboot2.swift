// Multiboot 2 boot information (Multiboot2 Specification 2.0, §3.6), read by
// the stub when GRUB's `multiboot2` started it.

/// Constants and parser of the multiboot 2 protocol.
public enum Multiboot2 {
    /// EAX on entry from a multiboot 2 loader.
    public static let bootloaderMagic: UInt32 = 0x36D7_6289

    /// Parses the boot information at `address`.
    public static func parse<M: PhysicalMemory>(at address: UInt32, memory: M)
        throws(BootStubError) -> BootInfo
    {
        let base = UInt64(address)
        guard let totalSize = memory.load32(base) else {
            throw .bootInfoMalformed("multiboot2 information unreadable")
        }
        guard totalSize >= 16 else {
            throw .bootInfoMalformed("multiboot2 information shorter than its end tag")
        }
        let end = base + UInt64(totalSize)
        var info = BootInfo(bootProtocol: .multiboot2)
        var cursor = base + 8
        while true {
            guard cursor + 8 <= end, let type = memory.load32(cursor),
                let size = memory.load32(cursor + 4)
            else { throw .bootInfoMalformed("multiboot2 tag list has no end tag") }
            guard size >= 8, cursor + UInt64(size) <= end else {
                throw .bootInfoMalformed("multiboot2 tag runs past the information")
            }
            switch type {
            case 0:
                return info
            case 1:
                info.commandLine = try tagString(
                    at: cursor + 8, tagEnd: cursor + UInt64(size), memory)
            case 2:
                info.loaderName = try tagString(
                    at: cursor + 8, tagEnd: cursor + UInt64(size), memory)
            case 3:
                guard size >= 17, let start = memory.load32(cursor + 8),
                    let moduleEnd = memory.load32(cursor + 12)
                else { throw .bootInfoMalformed("multiboot2 module tag truncated") }
                let string = try tagString(at: cursor + 16, tagEnd: cursor + UInt64(size), memory)
                try info.addModule(BootModule(start: start, end: moduleEnd, commandLine: string))
            case 4:
                guard size >= 16 else {
                    throw .bootInfoMalformed("multiboot2 memory-info tag truncated")
                }
                info.memoryLowerKiB = memory.load32(cursor + 8)
                info.memoryUpperKiB = memory.load32(cursor + 12)
            case 6:
                guard size >= 16, let entrySize = memory.load32(cursor + 8), entrySize >= 24 else {
                    throw .bootInfoMalformed("multiboot2 memory map tag malformed")
                }
                var entry = cursor + 16
                while entry + UInt64(entrySize) <= cursor + UInt64(size) {
                    guard let b = memory.load64(entry), let l = memory.load64(entry + 8),
                        let t = memory.load32(entry + 16)
                    else { throw .bootInfoMalformed("multiboot2 memory map entry unreadable") }
                    try info.addRegion(MemoryRegion(base: b, length: l, type: t))
                    entry += UInt64(entrySize)
                }
            default:
                break  // framebuffer, ELF sections, ACPI …: not needed by the stub
            }
            cursor = (cursor + UInt64(size) + 7) & ~7
        }
    }

    /// A NUL-terminated string that must end inside its tag.
    private static func tagString<M: PhysicalMemory>(
        at address: UInt64, tagEnd: UInt64, _ memory: M
    ) throws(BootStubError) -> MemoryString {
        guard tagEnd > address, address <= UInt64(UInt32.max),
            let s = memory.cString(at: UInt32(address), limit: UInt32(tagEnd - address))
        else { throw .bootInfoMalformed("multiboot2 string not terminated inside its tag") }
        return s
    }
}
