import BootStubCore
import Testing

@Suite struct Multiboot1Tests {
    /// A multiboot 1 information block as QEMU's -kernel loader builds it,
    /// placed at 0x9000, with its strings, module table and memory map.
    static func qemuStyleInfo() -> [UInt8] {
        var b = Bytes()
        b.u32(0x0000_024f)  // flags: mem, boot_device, cmdline, mods, mmap (bit 6), loader name (bit 9)
        b.u32(639)  // mem_lower KiB
        b.u32(2_096_000)  // mem_upper KiB
        b.u32(0x8000_ffff)  // boot_device
        b.u32(0x9100)  // cmdline
        b.u32(2)  // mods_count
        b.u32(0x9200)  // mods_addr
        b.pad(to: 44)  // syms
        b.u32(48)  // mmap_length: two 24-byte entries
        b.u32(0x9300)  // mmap_addr
        b.pad(to: 64)  // drives, config table
        b.u32(0x9180)  // boot_loader_name
        b.pad(to: 0x100)
        b.string("bootstub.elf insecure")  // 0x9100
        b.pad(to: 0x180)
        b.string("qemu")  // 0x9180
        b.pad(to: 0x200)
        // module table at 0x9200
        b.u32(0x0011_2000)
        b.u32(0x0038_f000)
        b.u32(0x9400)
        b.u32(0)
        b.u32(0x0038_f000)
        b.u32(0x0040_0000)
        b.u32(0x9420)
        b.u32(0)
        b.pad(to: 0x300)
        // memory map at 0x9300: size (excluding itself), base, length, type
        b.u32(20)
        b.u64(0)
        b.u64(0x9_fc00)
        b.u32(1)
        b.u32(20)
        b.u64(0x10_0000)
        b.u64(0x7fee_0000)
        b.u32(1)
        b.pad(to: 0x400)
        b.string("xen console=com1")  // 0x9400
        b.pad(to: 0x420)
        b.string("vmlinux console=hvc0")  // 0x9420
        return b.data
    }

    @Test func parsesEveryField() throws {
        try withMemory(Self.qemuStyleInfo(), at: 0x9000) { memory in
            let info = try Multiboot1.parse(at: 0x9000, memory: memory)
            #expect(info.bootProtocol == .multiboot1)
            #expect(info.memoryLowerKiB == 639 && info.memoryUpperKiB == 2_096_000)
            #expect(text(of: info.commandLine, in: memory) == "bootstub.elf insecure")
            #expect(text(of: info.loaderName, in: memory) == "qemu")
            #expect(info.modules.count == 2)
            #expect(info.modules.at(0)?.start == 0x11_2000 && info.modules.at(0)?.end == 0x38_f000)
            #expect(text(of: info.modules.at(1)?.commandLine, in: memory) == "vmlinux console=hvc0")
            #expect(info.memoryMap.count == 2)
            #expect(
                info.memoryMap.at(1) == MemoryRegion(base: 0x10_0000, length: 0x7fee_0000, type: 1))
            #expect(info.usableBytes == 0x9_fc00 + 0x7fee_0000)
        }
    }

    @Test func flagsGateTheFields() throws {
        var bytes = Self.qemuStyleInfo()
        bytes[0] = 0x00  // clear mem, cmdline, mods, mmap; keep loader name (bit 9)
        try withMemory(bytes, at: 0x9000) { memory in
            let info = try Multiboot1.parse(at: 0x9000, memory: memory)
            #expect(info.commandLine == nil && info.memoryLowerKiB == nil)
            #expect(info.modules.isEmpty && info.memoryMap.isEmpty)
            #expect(text(of: info.loaderName, in: memory) == "qemu")
        }
    }

    @Test func truncatedMemoryMapIsAnError() {
        var bytes = Self.qemuStyleInfo()
        bytes[44] = 40  // mmap_length cuts the second entry short
        withMemory(bytes, at: 0x9000) { memory in
            #expect(
                throws: BootStubError.bootInfoMalformed("multiboot1 memory map entry truncated")
            ) {
                try Multiboot1.parse(at: 0x9000, memory: memory)
            }
        }
    }

    @Test func moduleTableOutsideMemoryIsAnError() {
        var bytes = Self.qemuStyleInfo()
        bytes[26] = 0x50  // mods_addr = 0x509200
        withMemory(bytes, at: 0x9000) { memory in
            #expect(throws: BootStubError.bootInfoMalformed("multiboot1 module entry unreadable")) {
                try Multiboot1.parse(at: 0x9000, memory: memory)
            }
        }
    }

    @Test func tooManyModulesIsAnError() {
        var bytes = Self.qemuStyleInfo()
        bytes[20] = 9
        withMemory(bytes, at: 0x9000) { memory in
            #expect(throws: BootStubError.tooManyModules(limit: 8)) {
                try Multiboot1.parse(at: 0x9000, memory: memory)
            }
        }
    }

    @Test func infoOutsideMemoryIsAnError() {
        withMemory(Self.qemuStyleInfo(), at: 0x9000) { memory in
            #expect(throws: BootStubError.self) { try Multiboot1.parse(at: 0x100, memory: memory) }
        }
    }
}

@Suite struct Multiboot2Tests {
    /// Boot information as GRUB 2.06 builds it (the tags the stub reads plus
    /// one it skips), at 0x10000.
    static func grubStyleInfo() -> [UInt8] {
        var b = Bytes()
        b.u32(0)  // total_size, patched below
        b.u32(0)  // reserved
        // tag 1: command line
        b.u32(1)
        b.u32(8 + 9)
        b.string("insecure")
        b.align(8)
        // tag 2: boot loader name
        b.u32(2)
        b.u32(8 + 21)
        b.string("GRUB 2.06-13+deb12u2")
        b.align(8)
        // tag 3: module (start, end, string)
        b.u32(3)
        b.u32(16 + 17)
        b.u32(0x0020_0000)
        b.u32(0x0047_1000)
        b.string("console=com1 x=1")
        b.align(8)
        // tag 3: module with an empty string
        b.u32(3)
        b.u32(16 + 1)
        b.u32(0x0050_0000)
        b.u32(0x0050_1234)
        b.string("")
        b.align(8)
        // tag 4: basic memory information
        b.u32(4)
        b.u32(16)
        b.u32(639)
        b.u32(2_096_000)
        // tag 5: BIOS boot device (skipped by the stub)
        b.u32(5)
        b.u32(20)
        b.u32(0x80)
        b.u32(0xffff_ffff)
        b.u32(0xffff_ffff)
        b.align(8)
        // tag 6: memory map, entry_size 24, version 0, three entries
        b.u32(6)
        b.u32(16 + 3 * 24)
        b.u32(24)
        b.u32(0)
        b.u64(0)
        b.u64(0x9_fc00)
        b.u32(1)
        b.u32(0)
        b.u64(0xf_0000)
        b.u64(0x1_0000)
        b.u32(2)
        b.u32(0)
        b.u64(0x10_0000)
        b.u64(0x7fee_0000)
        b.u32(1)
        b.u32(0)
        // tag 0: end
        b.u32(0)
        b.u32(8)
        let total = UInt32(b.count)
        for i in 0..<4 { b.data[i] = UInt8(truncatingIfNeeded: total >> (8 * i)) }
        return b.data
    }

    @Test func parsesEveryTag() throws {
        try withMemory(Self.grubStyleInfo(), at: 0x1_0000) { memory in
            let info = try Multiboot2.parse(at: 0x1_0000, memory: memory)
            #expect(info.bootProtocol == .multiboot2)
            #expect(text(of: info.commandLine, in: memory) == "insecure")
            #expect(text(of: info.loaderName, in: memory) == "GRUB 2.06-13+deb12u2")
            #expect(info.modules.count == 2)
            #expect(
                info.modules.at(0)
                    == BootModule(
                        start: 0x20_0000, end: 0x47_1000,
                        commandLine: info.modules.at(0)?.commandLine))
            #expect(text(of: info.modules.at(0)?.commandLine, in: memory) == "console=com1 x=1")
            #expect(text(of: info.modules.at(1)?.commandLine, in: memory) == "")
            #expect(info.modules.at(1)?.size == 0x1234)
            #expect(info.memoryLowerKiB == 639 && info.memoryUpperKiB == 2_096_000)
            #expect(info.memoryMap.count == 3)
            #expect(info.memoryMap.at(1) == MemoryRegion(base: 0xf_0000, length: 0x1_0000, type: 2))
            #expect(info.usableBytes == 0x9_fc00 + 0x7fee_0000)
        }
    }

    @Test func missingEndTagIsAnError() {
        var bytes = Self.grubStyleInfo()
        bytes.removeLast(8)
        let total = UInt32(bytes.count)
        for i in 0..<4 { bytes[i] = UInt8(truncatingIfNeeded: total >> (8 * i)) }
        withMemory(bytes, at: 0x1_0000) { memory in
            #expect(throws: BootStubError.bootInfoMalformed("multiboot2 tag list has no end tag")) {
                try Multiboot2.parse(at: 0x1_0000, memory: memory)
            }
        }
    }

    @Test func tagRunningPastTheEndIsAnError() {
        var bytes = Self.grubStyleInfo()
        bytes[13] = 0xff  // first tag's size: 0xff11
        withMemory(bytes, at: 0x1_0000) { memory in
            #expect(
                throws: BootStubError.bootInfoMalformed("multiboot2 tag runs past the information")
            ) {
                try Multiboot2.parse(at: 0x1_0000, memory: memory)
            }
        }
    }

    @Test func unterminatedStringIsAnError() {
        var bytes = Self.grubStyleInfo()
        bytes[8 + 8 + 8] = UInt8(ascii: "x")  // overwrite the command line's NUL
        withMemory(bytes, at: 0x1_0000) { memory in
            #expect(throws: BootStubError.self) {
                try Multiboot2.parse(at: 0x1_0000, memory: memory)
            }
        }
    }

    @Test func everyTruncationFailsCleanly() {
        // Cut the block at every length: parsing must fail, never trap.
        let full = Self.grubStyleInfo()
        for cut in 0..<full.count {
            let bytes = Array(full[0..<cut])
            withMemory(bytes, at: 0x1_0000) { memory in
                #expect(throws: BootStubError.self) {
                    try Multiboot2.parse(at: 0x1_0000, memory: memory)
                }
            }
        }
    }

    @Test func usableRanges() throws {
        try withMemory(Self.grubStyleInfo(), at: 0x1_0000) { memory in
            let info = try Multiboot2.parse(at: 0x1_0000, memory: memory)
            #expect(info.isUsable(PhysicalRange(start: 0x20_0000, end: 0x5a_7000)))
            #expect(!info.isUsable(PhysicalRange(start: 0xf_8000, end: 0x10_8000)))
            #expect(!info.isUsable(PhysicalRange(start: 0x7fff_0000, end: 0x8000_1000)))
        }
    }

    @Test func memoryLimitsFallBackToTheMap() throws {
        try withMemory(Self.grubStyleInfo(), at: 0x1_0000) { memory in
            var info = try Multiboot2.parse(at: 0x1_0000, memory: memory)
            info.memoryLowerKiB = nil
            let limits = info.memoryLimitsKiB
            #expect(limits.lower == 0x9_fc00 / 1024 && limits.upper == 0x7fee_0000 / 1024)
        }
    }
}
