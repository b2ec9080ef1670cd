// What the UEFI stub reads from the firmware, parsed from raw bytes: the
// memory map GetMemoryMap returns, the loaded image protocol's fields,
// device paths (its own file path, the console's devices) and UCS-2 text.
// Pure, so the host tests feed it literal bytes; efistub/ does the calls.

/// EFI memory types (UEFI 2.10, 7.2 EFI_MEMORY_TYPE) the stub tells apart.
public enum EFIMemoryType {
    /// EfiLoaderCode, EfiLoaderData: ours and our loader's, free once Xen runs.
    public static let loaderCode: UInt32 = 1
    public static let loaderData: UInt32 = 2
    /// EfiBootServicesCode/Data: the firmware's, free after ExitBootServices.
    public static let bootServicesCode: UInt32 = 3
    public static let bootServicesData: UInt32 = 4
    /// EfiConventionalMemory: free.
    public static let conventional: UInt32 = 7
    /// EfiUnusableMemory: errors detected.
    public static let unusable: UInt32 = 8
    /// EfiACPIReclaimMemory, EfiACPIMemoryNVS.
    public static let acpiReclaim: UInt32 = 9
    public static let acpiNVS: UInt32 = 10
    /// EfiPersistentMemory.
    public static let persistent: UInt32 = 14

    /// The e820 type the stub reports (and Xen derives) for an EFI type:
    /// what is free once boot services end counts as usable.
    public static func e820Type(_ efiType: UInt32) -> UInt32 {
        switch efiType {
        case loaderCode, loaderData, bootServicesCode, bootServicesData, conventional: return 1
        case acpiReclaim: return 3
        case acpiNVS: return 4
        case unusable: return 5
        default: return 2
        }
    }
}

/// The memory map as GetMemoryMap returns it: `descriptorSize`-byte
/// EFI_MEMORY_DESCRIPTORs (Type u32, pad, PhysicalStart u64, VirtualStart
/// u64, NumberOfPages u64, Attribute u64). The firmware may make
/// descriptors longer than the 40 bytes defined today; the stride is
/// always `descriptorSize`.
public enum EFIMemoryMap {
    /// Size of the descriptor fields the stub reads.
    public static let minimumDescriptorSize = 40

    /// The map as e820-typed regions, adjacent regions of one type merged
    /// (OVMF reports a hundred descriptors, most of them neighbours).
    public static func regions(_ map: UnsafeRawBufferPointer, descriptorSize: Int)
        throws(BootStubError) -> BoundedList<64, MemoryRegion>
    {
        guard descriptorSize >= minimumDescriptorSize else {
            throw .bootInfoMalformed("EFI memory descriptors shorter than 40 bytes")
        }
        guard map.count % descriptorSize == 0 else {
            throw .bootInfoMalformed("the EFI memory map is not a whole number of descriptors")
        }
        var list = BoundedList<64, MemoryRegion>(filler: MemoryRegion(base: 0, length: 0, type: 0))
        var offset = 0
        while offset < map.count {
            let type = map.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let start = map.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let pages = map.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            offset += descriptorSize
            guard pages > 0 else { continue }
            guard pages <= (UInt64.max - start) >> 12 else {
                throw .bootInfoMalformed("an EFI memory descriptor wraps past 2^64")
            }
            let region = MemoryRegion(
                base: UInt64(littleEndian: start), length: UInt64(littleEndian: pages) << 12,
                type: EFIMemoryType.e820Type(UInt32(littleEndian: type)))
            if list.count > 0, var last = list.at(list.count - 1), last.type == region.type,
                last.base &+ last.length == region.base
            {
                last.length += region.length
                list.set(list.count - 1, last)
            } else if !list.append(region) {
                throw .tooManyMemoryRegions(limit: 64)
            }
        }
        return list
    }
}

/// The fields of EFI_LOADED_IMAGE_PROTOCOL (revision 0x1000) the stub
/// uses, at their x86_64 offsets.
public struct EFILoadedImage: Equatable, Sendable {
    /// Byte size of the protocol structure on x86_64.
    public static let size = 96
    /// Offset of DeviceHandle, which the stub rewrites in Xen's image.
    public static let deviceHandleOffset = 24
    /// Offset of FilePath.
    public static let filePathOffset = 32

    /// Revision (0x1000 for every UEFI version so far).
    public var revision: UInt32
    /// The handle of the device the image was loaded from.
    public var deviceHandle: UInt64
    /// Address of the image's file path on that device (a device path).
    public var filePath: UInt64
    /// Size in bytes of the load options.
    public var loadOptionsSize: UInt32
    /// Address of the load options (UCS-2 text when a boot manager or shell set them).
    public var loadOptions: UInt64
    /// Where the image lies in memory.
    public var imageBase: UInt64
    /// How large it is there.
    public var imageSize: UInt64

    /// Parses the protocol structure from its bytes.
    public init(_ bytes: UnsafeRawBufferPointer) throws(BootStubError) {
        guard bytes.count >= EFILoadedImage.size else {
            throw .bootInfoMalformed("the loaded image protocol is truncated")
        }
        revision = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard revision >> 16 == 0 && revision >= 0x1000 else {
            throw .bootInfoMalformed("unknown loaded image protocol revision")
        }
        deviceHandle = UInt64(
            littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        filePath = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        loadOptionsSize = UInt32(
            littleEndian: bytes.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
        loadOptions = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 56, as: UInt64.self))
        imageBase = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 64, as: UInt64.self))
        imageSize = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 72, as: UInt64.self))
        guard deviceHandle != 0 else {
            throw .bootInfoMalformed("the loaded image names no device")
        }
    }
}

/// Device paths (UEFI 2.10, chapter 10): nodes of Type u8, SubType u8,
/// Length u16 (header included), ended by type 0x7F subtype 0xFF.
public enum EFIDevicePath {
    /// Type and subtype of a file path node (MEDIA_FILEPATH_DP).
    public static let mediaType: UInt8 = 4
    public static let filePathSubtype: UInt8 = 4
    /// Type of the end nodes; subtype 0xFF ends the path, 0x01 one instance.
    public static let endType: UInt8 = 0x7F
    public static let endEntire: UInt8 = 0xFF
    /// Messaging node of a UART (a serial console).
    public static let messagingType: UInt8 = 3
    public static let uartSubtype: UInt8 = 14

    /// The node header at `offset`: (type, subtype, length), or nil if the
    /// node is cut off or shorter than its header.
    static func node(_ path: UnsafeRawBufferPointer, at offset: Int) -> (UInt8, UInt8, Int)? {
        guard offset + 4 <= path.count else { return nil }
        let length = Int(path[offset + 2]) | Int(path[offset + 3]) << 8
        guard length >= 4, offset + length <= path.count else { return nil }
        return (path[offset], path[offset + 1], length)
    }

    /// Length in bytes of the path up to (not including) its end node.
    public static func lengthBeforeEnd(_ path: UnsafeRawBufferPointer) throws(BootStubError) -> Int
    {
        var offset = 0
        while let (type, subtype, length) = node(path, at: offset) {
            if type == endType && subtype == endEntire { return offset }
            offset += length
        }
        throw .bootInfoMalformed("a device path has no end node")
    }

    /// Whether any instance of the (multi-instance) path has a UART node,
    /// i.e. the firmware console already writes to a serial port.
    public static func hasUART(_ path: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while let (type, subtype, length) = node(path, at: offset) {
            if type == messagingType && subtype == uartSubtype { return true }
            if type == endType && subtype == endEntire { return false }
            offset += length
        }
        return false
    }

    /// The directory of the image whose file path is `path` (file path
    /// nodes, concatenated: firmware splits `\EFI\BOOT\BOOTX64.EFI` into one
    /// node or several), written as ASCII with `\` separators and without
    /// the trailing one into `directory`; returns its length. `\` alone
    /// (the root) gives length 0.
    public static func directory(
        ofFile path: UnsafeRawBufferPointer, into directory: UnsafeMutableRawBufferPointer
    ) throws(BootStubError) -> Int {
        // The whole path first, as `\A\B\NAME` with single separators.
        var length = 0
        func add(_ byte: UInt8) throws(BootStubError) {
            let separator = UInt8(ascii: "\\")
            if byte == separator && length > 0 && directory[length - 1] == separator { return }
            guard length < directory.count else {
                throw .bootInfoMalformed("the image's file path is too long")
            }
            directory[length] = byte
            length += 1
        }
        var offset = 0
        while true {
            guard let (type, subtype, nodeLength) = node(path, at: offset) else {
                throw .bootInfoMalformed("the image's file path is cut off")
            }
            if type == endType && subtype == endEntire { break }
            guard type == mediaType && subtype == filePathSubtype else {
                throw .bootInfoMalformed("the image's file path is not a file path")
            }
            // Each node is a path of its own: it joins the previous with a separator.
            try add(UInt8(ascii: "\\"))
            var i = offset + 4
            while i + 1 < offset + nodeLength {
                let unit = UInt16(path[i]) | UInt16(path[i + 1]) << 8
                i += 2
                if unit == 0 { break }
                guard unit >= 0x20 && unit < 0x7F else {
                    throw .bootInfoMalformed("the image's file path is not printable ASCII")
                }
                try add(unit == 0x2F ? UInt8(ascii: "\\") : UInt8(unit))
            }
            offset += nodeLength
        }
        // The directory: between the leading separator and the last one.
        var last = length - 1
        while last > 0 && directory[last] != UInt8(ascii: "\\") { last -= 1 }
        guard last > 0 else { return 0 }
        for i in 1..<last { directory[i - 1] = directory[i] }
        return last - 1
    }

    /// Writes into `out` the device path `device` (up to its end node)
    /// followed by one file path node for `\DIRECTORY\NAME` and an end
    /// node: the full path LoadImage wants for a file on that device.
    /// Returns the number of bytes written.
    public static func appendFile(
        device: UnsafeRawBufferPointer, directory: UnsafeRawBufferPointer,
        name: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(BootStubError) -> Int {
        let deviceLength = try lengthBeforeEnd(device)
        let characters = 1 + directory.count + (directory.count > 0 ? 1 : 0) + name.count
        let nodeLength = 4 + 2 * (characters + 1)
        guard nodeLength <= 0xFFFF, deviceLength + nodeLength + 4 <= out.count else {
            throw .bootInfoMalformed("the file's device path does not fit the stub's buffer")
        }
        for i in 0..<deviceLength { out[i] = device[i] }
        var o = deviceLength
        out[o] = mediaType
        out[o + 1] = filePathSubtype
        out[o + 2] = UInt8(truncatingIfNeeded: nodeLength)
        out[o + 3] = UInt8(truncatingIfNeeded: nodeLength >> 8)
        o += 4
        func unit(_ c: UInt8) {
            out[o] = c
            out[o + 1] = 0
            o += 2
        }
        unit(UInt8(ascii: "\\"))
        for c in directory { unit(c) }
        if directory.count > 0 { unit(UInt8(ascii: "\\")) }
        for c in name { unit(c) }
        unit(0)
        out[o] = endType
        out[o + 1] = endEntire
        out[o + 2] = 4
        out[o + 3] = 0
        return o + 4
    }
}

/// UCS-2 text, as the firmware passes load options.
public enum UCS2 {
    /// The text of `units` (little-endian UCS-2, up to a NUL or the end)
    /// as ASCII into `out`; nil if any character is outside printable
    /// ASCII (load options of a boot entry may be binary data).
    public static func ascii(
        _ units: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    )
        -> Int?
    {
        var n = 0
        var i = 0
        while i + 1 < units.count {
            let u = UInt16(units[i]) | UInt16(units[i + 1]) << 8
            i += 2
            if u == 0 { break }
            guard u >= 0x20 && u < 0x7F, n < out.count else { return nil }
            out[n] = UInt8(u)
            n += 1
        }
        return n
    }
}
