// Loading plan for Xen's ELF32 image: which bytes of the file go to which
// physical addresses. Xen's x86 image (xen.gz gunzipped, or xen/xen from a
// build) is an ELF32 i386 executable whose PT_LOAD segments carry physical
// addresses; its multiboot entry runs in 32-bit protected mode.

/// One PT_LOAD segment.
public struct LoadSegment: Equatable, Sendable {
    /// Offset of the segment's bytes in the file.
    public var fileOffset: UInt32
    /// Physical destination.
    public var physicalAddress: UInt32
    /// Bytes copied from the file.
    public var fileSize: UInt32
    /// Bytes occupied in memory (the rest is zeroed).
    public var memorySize: UInt32

    /// A segment of `fileSize` bytes at `fileOffset`, loaded to
    /// `physicalAddress` and zero-filled up to `memorySize`.
    public init(fileOffset: UInt32, physicalAddress: UInt32, fileSize: UInt32, memorySize: UInt32) {
        self.fileOffset = fileOffset
        self.physicalAddress = physicalAddress
        self.fileSize = fileSize
        self.memorySize = memorySize
    }

    /// The destination range in memory.
    public var destination: PhysicalRange {
        PhysicalRange(
            start: UInt64(physicalAddress), end: UInt64(physicalAddress) + UInt64(memorySize))
    }
}

/// What to copy where, and where to jump.
public struct ElfLoadPlan: Sendable {
    /// Physical entry address.
    public var entry: UInt32
    /// The loadable segments.
    public var segments = BoundedList<8, LoadSegment>(
        filler: LoadSegment(fileOffset: 0, physicalAddress: 0, fileSize: 0, memorySize: 0))

    /// The smallest range covering every segment.
    public var footprint: PhysicalRange {
        var low = UInt64.max
        var high: UInt64 = 0
        for i in 0..<segments.count {
            guard let s = segments.at(i) else { continue }
            low = min(low, s.destination.start)
            high = max(high, s.destination.end)
        }
        return low > high ? PhysicalRange(start: 0, end: 0) : PhysicalRange(start: low, end: high)
    }
}

/// ELF32 parsing for the loader.
public enum ELF32 {
    /// Lowest physical address a segment may be loaded to: below 1 MiB
    /// live the IVT, the BIOS data area, the EBDA and option ROMs.
    public static let lowestLoadAddress: UInt32 = 0x10_0000

    /// Plans how to load the ELF32 i386 executable in `image`.
    public static func plan(_ image: UnsafeRawBufferPointer) throws(BootStubError) -> ElfLoadPlan {
        guard image.count >= 52 else { throw .xenImageInvalid("shorter than an ELF header") }
        guard image[0] == 0x7f, image[1] == UInt8(ascii: "E"), image[2] == UInt8(ascii: "L"),
            image[3] == UInt8(ascii: "F")
        else { throw .xenImageInvalid("no ELF magic (gzipped? the stub needs it uncompressed)") }
        guard image[4] == 1 else { throw .xenImageInvalid("not ELFCLASS32") }
        guard image[5] == 1 else { throw .xenImageInvalid("not little-endian") }
        guard half(image, 16) == 2 else { throw .xenImageInvalid("not an executable (ET_EXEC)") }
        guard half(image, 18) == 3 else { throw .xenImageInvalid("not for i386 (EM_386)") }
        let entry = word(image, 24)
        let phoff = UInt64(word(image, 28))
        let phentsize = UInt64(half(image, 42))
        let phnum = UInt64(half(image, 44))
        guard phentsize >= 32 else { throw .xenImageInvalid("program header entries too small") }
        guard phnum > 0, phoff + phnum * phentsize <= UInt64(image.count) else {
            throw .xenImageInvalid("program headers outside the file")
        }
        var plan = ElfLoadPlan(entry: 0)
        var entryFound = false
        for i in 0..<phnum {
            let ph = Int(phoff + i * phentsize)
            guard word(image, ph) == 1 else { continue }  // PT_LOAD only
            let segment = LoadSegment(
                fileOffset: word(image, ph + 4), physicalAddress: word(image, ph + 12),
                fileSize: word(image, ph + 16), memorySize: word(image, ph + 20))
            let virtualAddress = word(image, ph + 8)
            if segment.memorySize == 0 { continue }
            guard segment.fileSize <= segment.memorySize else {
                throw .xenImageInvalid("segment file size exceeds memory size")
            }
            guard UInt64(segment.fileOffset) + UInt64(segment.fileSize) <= UInt64(image.count)
            else { throw .xenImageInvalid("segment runs past the end of the file") }
            guard segment.physicalAddress >= lowestLoadAddress,
                segment.destination.end <= 0x1_0000_0000
            else { throw .xenImageInvalid("segment outside 1 MiB..4 GiB") }
            for j in 0..<plan.segments.count {
                if let other = plan.segments.at(j), other.destination.overlaps(segment.destination)
                {
                    throw .xenImageInvalid("segments overlap")
                }
            }
            guard plan.segments.append(segment) else {
                throw .xenImageInvalid("more than 8 loadable segments")
            }
            // e_entry is virtual; translate through the segment holding it.
            if entry >= virtualAddress, UInt64(entry - virtualAddress) < UInt64(segment.memorySize)
            {
                plan.entry = segment.physicalAddress + (entry - virtualAddress)
                entryFound = true
            }
        }
        guard !plan.segments.isEmpty else { throw .xenImageInvalid("no loadable segment") }
        guard entryFound else { throw .xenImageInvalid("entry point outside every segment") }
        return plan
    }

    private static func half(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    private static func word(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
