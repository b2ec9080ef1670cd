import BootStubCore
import Testing

/// A file path node (MEDIA_FILEPATH_DP) for `path`, UCS-2 with its NUL.
func filePathNode(_ path: String) -> [UInt8] {
    var b = Bytes()
    let units = Array(path.utf16) + [0]
    b.data += [4, 4]
    b.u16(UInt16(4 + 2 * units.count))
    for u in units { b.u16(u) }
    return b.data
}

let endNode: [UInt8] = [0x7F, 0xFF, 4, 0]

func directory(of path: [UInt8]) throws -> String {
    var out = [UInt8](repeating: 0, count: 64)
    let n = try path.withUnsafeBytes { p throws -> Int in
        try out.withUnsafeMutableBytes { o throws -> Int in
            try EFIDevicePath.directory(ofFile: p, into: o)
        }
    }
    return String(decoding: out[0..<n], as: UTF8.self)
}

@Suite struct EFIMemoryMapTests {
    /// One EFI_MEMORY_DESCRIPTOR, padded to `size` bytes as firmware may.
    func descriptor(type: UInt32, start: UInt64, pages: UInt64, size: Int = 48) -> [UInt8] {
        var b = Bytes()
        b.u32(type)
        b.u32(0)
        b.u64(start)
        b.u64(0)  // VirtualStart
        b.u64(pages)
        b.u64(0xF)  // Attribute
        b.pad(to: size)
        return b.data
    }

    func regions(_ bytes: [UInt8], size: Int = 48) throws -> [MemoryRegion] {
        let list = try bytes.withUnsafeBytes { m throws in
            try EFIMemoryMap.regions(m, descriptorSize: size)
        }
        return (0..<list.count).compactMap { list.at($0) }
    }

    @Test func typesBecomeE820AndNeighboursMerge() throws {
        // OVMF-like: conventional, boot services and loader data side by
        // side are one usable region; ACPI NVS and MMIO stay apart.
        let map =
            descriptor(type: 7, start: 0, pages: 0xA0)
            + descriptor(type: 7, start: 0x10_0000, pages: 0x700)
            + descriptor(type: 10, start: 0x80_0000, pages: 8)
            + descriptor(type: 4, start: 0x80_8000, pages: 3)
            + descriptor(type: 2, start: 0x80_B000, pages: 5)
            + descriptor(type: 9, start: 0x81_0000, pages: 1)
            + descriptor(type: 11, start: 0xB000_0000, pages: 0x10000)
            + descriptor(type: 8, start: 0xC000_0000, pages: 1)
        let r = try regions(map)
        #expect(
            r == [
                MemoryRegion(base: 0, length: 0xA_0000, type: 1),
                MemoryRegion(base: 0x10_0000, length: 0x70_0000, type: 1),
                MemoryRegion(base: 0x80_0000, length: 0x8000, type: 4),
                MemoryRegion(base: 0x80_8000, length: 0x8000, type: 1),
                MemoryRegion(base: 0x81_0000, length: 0x1000, type: 3),
                MemoryRegion(base: 0xB000_0000, length: 0x1000_0000, type: 2),
                MemoryRegion(base: 0xC000_0000, length: 0x1000, type: 5),
            ])
    }

    @Test func strideIsTheDescriptorSizeNotTheStructSize() throws {
        let map =
            descriptor(type: 7, start: 0x1000, pages: 1, size: 56)
            + descriptor(type: 10, start: 0x2000, pages: 2, size: 56)
        let r = try regions(map, size: 56)
        #expect(r.count == 2)
        #expect(r.last == MemoryRegion(base: 0x2000, length: 0x2000, type: 4))
    }

    @Test func emptyDescriptorsAreSkipped() throws {
        let map =
            descriptor(type: 7, start: 0x1000, pages: 0) + descriptor(type: 7, start: 0, pages: 1)
        #expect(try regions(map) == [MemoryRegion(base: 0, length: 0x1000, type: 1)])
    }

    @Test func malformedMapsAreRefused() {
        let one = descriptor(type: 7, start: 0, pages: 1)
        #expect(throws: BootStubError.self) { try regions(one, size: 32) }
        #expect(throws: BootStubError.self) { try regions(Array(one.dropLast(8))) }
        let wraps = descriptor(type: 7, start: 0xFFFF_FFFF_FFFF_F000, pages: 2)
        #expect(throws: BootStubError.self) { try regions(wraps) }
    }

    @Test func tooManyRegionsIsAnError() {
        // 65 alternating types cannot merge into 64 slots.
        var map: [UInt8] = []
        for i in 0..<65 {
            map += descriptor(type: i % 2 == 0 ? 7 : 10, start: UInt64(i) << 12, pages: 1)
        }
        #expect(throws: BootStubError.tooManyMemoryRegions(limit: 64)) { try regions(map) }
    }
}

@Suite struct EFILoadedImageTests {
    func protocolBytes(revision: UInt32 = 0x1000, device: UInt64 = 0x7E00_1000) -> [UInt8] {
        var b = Bytes()
        b.u32(revision)
        b.u32(0)
        b.u64(0x7F00_0000)  // ParentHandle
        b.u64(0x7F80_0000)  // SystemTable
        b.u64(device)  // DeviceHandle
        b.u64(0x7E00_2000)  // FilePath
        b.u64(0)  // Reserved
        b.u32(24)  // LoadOptionsSize
        b.u32(0)
        b.u64(0x7E00_3000)  // LoadOptions
        b.u64(0x7D00_0000)  // ImageBase
        b.u64(0xA000)  // ImageSize
        b.u32(1)  // ImageCodeType
        b.u32(2)  // ImageDataType
        b.u64(0)  // Unload
        return b.data
    }

    @Test func fieldsAtTheirOffsets() throws {
        let image = try protocolBytes().withUnsafeBytes { b throws in
            try EFILoadedImage(b)
        }
        #expect(image.revision == 0x1000)
        #expect(image.deviceHandle == 0x7E00_1000)
        #expect(image.filePath == 0x7E00_2000)
        #expect(image.loadOptionsSize == 24)
        #expect(image.loadOptions == 0x7E00_3000)
        #expect(image.imageBase == 0x7D00_0000)
        #expect(image.imageSize == 0xA000)
    }

    @Test func truncatedOrForeignStructuresAreRefused() {
        #expect(throws: BootStubError.self) {
            try Array(protocolBytes().prefix(90)).withUnsafeBytes { b throws in
                try EFILoadedImage(b)
            }
        }
        #expect(throws: BootStubError.self) {
            try protocolBytes(revision: 0xDEAD_BEEF).withUnsafeBytes { b throws in
                try EFILoadedImage(b)
            }
        }
        #expect(throws: BootStubError.self) {
            try protocolBytes(device: 0).withUnsafeBytes { b throws in
                try EFILoadedImage(b)
            }
        }
    }

    @Test func loadOptionsAsText() {
        var b = Bytes()
        for u in Array("bootstub.efi insecure".utf16) + [0, 0x41] { b.u16(u) }
        var out = [UInt8](repeating: 0, count: 64)
        let n = b.data.withUnsafeBytes { u in out.withUnsafeMutableBytes { UCS2.ascii(u, into: $0) }
        }
        #expect(n.map { String(decoding: out[0..<$0], as: UTF8.self) } == "bootstub.efi insecure")
        // A boot entry's binary options are not text.
        let binary: [UInt8] = [0x01, 0x00, 0x00, 0x02]
        #expect(
            binary.withUnsafeBytes { u in out.withUnsafeMutableBytes { UCS2.ascii(u, into: $0) } }
                == nil)
    }
}

@Suite struct EFIDevicePathTests {
    @Test func directoryOfOneNode() throws {
        #expect(
            try directory(of: filePathNode("\\EFI\\BOOT\\BOOTX64.EFI") + endNode) == "EFI\\BOOT")
    }

    @Test func directoryOfSeveralNodes() throws {
        // Some firmware splits the path into a node per component.
        let path =
            filePathNode("\\EFI") + filePathNode("BOOT") + filePathNode("BOOTX64.EFI") + endNode
        #expect(try directory(of: path) == "EFI\\BOOT")
        let slashes = filePathNode("\\EFI\\") + filePathNode("\\proxenos/bootstub.efi") + endNode
        #expect(try directory(of: slashes) == "EFI\\proxenos")
    }

    @Test func imageAtTheRoot() throws {
        // iPXE's file system serves the downloaded images at its root.
        #expect(try directory(of: filePathNode("\\bootstub.efi") + endNode) == "")
        #expect(try directory(of: filePathNode("bootstub.efi") + endNode) == "")
    }

    @Test func nonFilePathsAreRefused() {
        let pci: [UInt8] = [1, 1, 6, 0, 0, 2]
        #expect(throws: BootStubError.self) { try directory(of: pci + endNode) }
        #expect(throws: BootStubError.self) { try directory(of: filePathNode("\\EFI\\x")) }
        var bad = filePathNode("\\EFI\\BOOT")
        bad[6] = 0xE9  // é: not ASCII
        #expect(throws: BootStubError.self) { try directory(of: bad + endNode) }
    }

    @Test func appendFileBuildsTheFullPath() throws {
        // PciRoot(0)/Pci(1f,2)/Sata/HD(...) shortened: two hardware nodes.
        let device: [UInt8] =
            [2, 1, 12, 0, 0xD0, 0x41, 0x03, 0x0A, 0, 0, 0, 0, 1, 1, 6, 0, 2, 0x1F] + endNode
        var out = [UInt8](repeating: 0xAA, count: 128)
        let n = try device.withUnsafeBytes { d throws -> Int in
            try Array("EFI\\BOOT".utf8).withUnsafeBytes { dir throws -> Int in
                try Array("xen.efi".utf8).withUnsafeBytes { name throws -> Int in
                    try out.withUnsafeMutableBytes { o throws -> Int in
                        try EFIDevicePath.appendFile(device: d, directory: dir, name: name, into: o)
                    }
                }
            }
        }
        let expected = Array(device.dropLast(4)) + filePathNode("\\EFI\\BOOT\\xen.efi") + endNode
        #expect(Array(out[0..<n]) == expected)
        // And the stub reads its directory back from such a path's file part.
        #expect(try directory(of: Array(expected.dropFirst(18))) == "EFI\\BOOT")
    }

    @Test func appendFileAtTheRootAndTooSmallBuffers() throws {
        let device = endNode
        var out = [UInt8](repeating: 0, count: 64)
        let n = try device.withUnsafeBytes { d throws -> Int in
            try out.withUnsafeMutableBytes { o throws -> Int in
                try Array("xen.efi".utf8).withUnsafeBytes { name throws -> Int in
                    try EFIDevicePath.appendFile(
                        device: d, directory: UnsafeRawBufferPointer(start: nil, count: 0),
                        name: name, into: o)
                }
            }
        }
        #expect(Array(out[0..<n]) == filePathNode("\\xen.efi") + endNode)
        var small = [UInt8](repeating: 0, count: 16)
        #expect(throws: BootStubError.self) {
            try device.withUnsafeBytes { d throws -> Int in
                try small.withUnsafeMutableBytes { o throws -> Int in
                    try Array("xen.efi".utf8).withUnsafeBytes { name throws -> Int in
                        try EFIDevicePath.appendFile(
                            device: d, directory: UnsafeRawBufferPointer(start: nil, count: 0),
                            name: name,
                            into: o)
                    }
                }
            }
        }
    }

    @Test func consoleWithAUART() {
        // ConOut as OVMF sets it: a graphics instance, then
        // PciRoot/Pci/Serial/Uart(115200,8,N,1)/VenVt100.
        let gop: [UInt8] = [2, 1, 12, 0, 0xD0, 0x41, 3, 0x0A, 0, 0, 0, 0, 1, 1, 6, 0, 0, 2]
        let endInstance: [UInt8] = [0x7F, 0x01, 4, 0]
        var uart: [UInt8] = [3, 14, 19, 0, 0, 0, 0, 0]
        uart += [0x00, 0xC2, 0x01, 0, 0, 0, 0, 0, 8, 1, 1]
        #expect(uart.count == 19)
        let withSerial = gop + endInstance + [1, 1, 6, 0, 0, 0x1F] + uart + endNode
        let without = gop + endNode
        #expect(withSerial.withUnsafeBytes { EFIDevicePath.hasUART($0) })
        #expect(!without.withUnsafeBytes { EFIDevicePath.hasUART($0) })
        // A cut-off path is read only as far as it goes.
        #expect(!Array(withSerial.prefix(20)).withUnsafeBytes { EFIDevicePath.hasUART($0) })
    }
}
