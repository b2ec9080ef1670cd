import BootStubCore
import Foundation
import Testing

@Suite struct ELF32Tests {
    /// A tiny ELF32 i386 executable: one PT_LOAD of 16 file bytes and 4 KiB
    /// in memory at 0x200000 (virtual 0xc0200000), entry at +8, and a
    /// PT_NOTE that must be ignored.
    static func tinyImage() -> [UInt8] {
        var b = Bytes()
        b.data += [0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0]  // magic, ELFCLASS32, LSB, version, SysV
        b.pad(to: 16)
        b.u16(2)  // e_type ET_EXEC
        b.u16(3)  // e_machine EM_386
        b.u32(1)  // e_version
        b.u32(0xc020_0008)  // e_entry (virtual)
        b.u32(52)  // e_phoff
        b.u32(0)  // e_shoff
        b.u32(0)  // e_flags
        b.u16(52)  // e_ehsize
        b.u16(32)  // e_phentsize
        b.u16(2)  // e_phnum
        b.u16(40)  // e_shentsize
        b.u16(0)  // e_shnum
        b.u16(0)  // e_shstrndx
        // PT_LOAD
        b.u32(1)  // p_type
        b.u32(128)  // p_offset
        b.u32(0xc020_0000)  // p_vaddr
        b.u32(0x0020_0000)  // p_paddr
        b.u32(16)  // p_filesz
        b.u32(0x1000)  // p_memsz
        b.u32(7)  // p_flags RWX
        b.u32(0x40)  // p_align
        // PT_NOTE
        b.u32(4)
        b.u32(128)
        b.u32(0)
        b.u32(0)
        b.u32(16)
        b.u32(16)
        b.u32(4)
        b.u32(4)
        b.pad(to: 128)
        b.data += Array(0..<16)
        return b.data
    }

    static func plan(_ bytes: [UInt8]) throws -> ElfLoadPlan {
        try bytes.withUnsafeBytes { try ELF32.plan($0) }
    }

    @Test func tinyImagePlan() throws {
        let plan = try Self.plan(Self.tinyImage())
        #expect(plan.entry == 0x20_0008)
        #expect(plan.segments.count == 1)
        #expect(
            plan.segments.at(0)
                == LoadSegment(
                    fileOffset: 128, physicalAddress: 0x20_0000, fileSize: 16, memorySize: 0x1000))
        #expect(plan.footprint == PhysicalRange(start: 0x20_0000, end: 0x20_1000))
    }

    @Test func rejectsBrokenImages() {
        func broken(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = Self.tinyImage()
            edit(&b)
            return b
        }
        let cases: [([UInt8], StaticString)] = [
            (broken { $0[0] = 0x1f }, "no ELF magic (gzipped? the stub needs it uncompressed)"),
            (broken { $0[4] = 2 }, "not ELFCLASS32"),
            (broken { $0[18] = 62 }, "not for i386 (EM_386)"),
            (
                broken {
                    $0[52 + 20] = 8
                    $0[52 + 21] = 0
                }, "segment file size exceeds memory size"
            ),
            (broken { $0[52 + 4] = 0xf0 }, "segment runs past the end of the file"),
            (
                broken {
                    $0[52 + 14] = 0x00
                    $0[52 + 13] = 0x00
                }, "segment outside 1 MiB..4 GiB"
            ),
            (
                broken {
                    $0[24] = 0x00
                    $0[27] = 0xd0
                }, "entry point outside every segment"
            ),
            (Array(Self.tinyImage()[0..<40]), "shorter than an ELF header"),
            (Array(Self.tinyImage()[0..<100]), "program headers outside the file"),
        ]
        for (bytes, reason) in cases {
            #expect(throws: BootStubError.xenImageInvalid(reason), "\(reason)") {
                try Self.plan(bytes)
            }
        }
    }

    static let debianXen: String = {
        if let path = ProcessInfo.processInfo.environment["BOOTSTUB_XEN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("cache/xen-4.17-amd64").path
    }()

    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: debianXen),
            "Debian's Xen image is absent: run bootstub/fetch-test-inputs.sh (or set BOOTSTUB_XEN)")
    )
    func debianXenPlan() throws {
        let image = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.debianXen)))
        let plan = try Self.plan(image)
        // Xen 4.17's x86 image: one PT_LOAD at 2 MiB, entered at its start;
        // the PT_NOTE (build id) is not loaded.
        #expect(plan.entry == 0x20_0000)
        #expect(plan.segments.count == 1)
        let segment = try #require(plan.segments.at(0))
        #expect(segment.physicalAddress == 0x20_0000)
        #expect(segment.fileSize <= segment.memorySize)
        #expect(UInt64(segment.fileOffset) + UInt64(segment.fileSize) <= UInt64(image.count))
        // The multiboot 1 header Xen carries lies in the loaded bytes.
        let header = image[Int(segment.fileOffset)..<Int(segment.fileOffset) + 8192]
        var found = false
        for i in stride(from: header.startIndex, to: header.endIndex - 4, by: 4)
        where header[i] == 0x02 && header[i + 1] == 0xb0 && header[i + 2] == 0xad
            && header[i + 3] == 0x1b
        {
            found = true
        }
        #expect(found, "no multiboot1 magic in Xen's first 8 KiB")
        #expect(plan.footprint.start == 0x20_0000)
        #expect(plan.footprint.end < 0x100_0000)
    }
}
