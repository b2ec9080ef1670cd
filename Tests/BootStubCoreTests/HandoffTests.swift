import BootStubCore
import Testing

@Suite struct Multiboot1BuilderTests {
    @Test func roundTripsThroughTheParser() throws {
        let base: UInt32 = 0x10_8000
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 8)
        defer { buffer.deallocate() }
        var builder = try #require(Multiboot1Builder(buffer: buffer, physicalAddress: base))
        builder.setMemoryLimits(lowerKiB: 639, upperKiB: 2_096_000)
        builder.beginString()
        builder.write("xen console=com1")
        builder.setCommandLine(builder.endString())
        builder.beginString()
        builder.write("Proxenos bootstub")
        builder.setLoaderName(builder.endString())
        builder.beginString()
        builder.write("vmlinux console=hvc0")
        builder.addModule(start: 0x100_0000, end: 0x200_0000, string: builder.endString())
        builder.beginString()
        builder.write("initrd.gz")
        builder.addModule(start: 0x200_0000, end: 0x200_1000, string: builder.endString())
        builder.addRegion(MemoryRegion(base: 0, length: 0x9_fc00, type: 1))
        builder.addRegion(MemoryRegion(base: 0x10_0000, length: 0x7fee_0000, type: 1))
        let address = try builder.finish()
        #expect(address == base)
        // flags: memory, cmdline, modules, memory map, loader name
        #expect(buffer.load(as: UInt32.self) == 0x24d)

        let memory = BufferMemory(base: UInt64(base), buffer: UnsafeRawBufferPointer(buffer))
        let info = try Multiboot1.parse(at: address, memory: memory)
        #expect(text(of: info.commandLine, in: memory) == "xen console=com1")
        #expect(text(of: info.loaderName, in: memory) == "Proxenos bootstub")
        #expect(info.memoryLowerKiB == 639 && info.memoryUpperKiB == 2_096_000)
        #expect(info.modules.count == 2)
        #expect(info.modules.at(0)?.start == 0x100_0000 && info.modules.at(0)?.end == 0x200_0000)
        #expect(text(of: info.modules.at(0)?.commandLine, in: memory) == "vmlinux console=hvc0")
        #expect(text(of: info.modules.at(1)?.commandLine, in: memory) == "initrd.gz")
        #expect(info.memoryMap.count == 2)
        #expect(info.memoryMap.at(1) == MemoryRegion(base: 0x10_0000, length: 0x7fee_0000, type: 1))
    }

    @Test func overlongStringsAreReportedNotTruncatedSilently() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var builder = try #require(Multiboot1Builder(buffer: buffer, physicalAddress: 0x10_0000))
        builder.beginString()
        for _ in 0..<3000 { builder.write("x") }
        builder.setCommandLine(builder.endString())
        #expect(throws: BootStubError.handoffAreaFull) { _ = try builder.finish() }
    }

    @Test func stringFillingTheBufferExactlyIsReported() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var builder = try #require(Multiboot1Builder(buffer: buffer, physicalAddress: 0x10_0000))
        // Strings start at 1792; 2303 bytes plus the NUL fill the buffer.
        builder.beginString()
        for _ in 0..<2303 { builder.write("y") }
        builder.setCommandLine(builder.endString())
        #expect(throws: Never.self) { _ = try builder.finish() }
        builder.beginString()
        builder.setLoaderName(builder.endString())
        #expect(throws: BootStubError.handoffAreaFull) { _ = try builder.finish() }
    }

    @Test func rejectsSmallBuffers() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 8)
        defer { buffer.deallocate() }
        #expect(Multiboot1Builder(buffer: buffer, physicalAddress: 0x10_0000) == nil)
    }
}
