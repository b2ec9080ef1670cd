// The multiboot 1 information block the stub hands to Xen. Layout of the
// buffer: the 128-byte information structure, the module table (8 × 16
// bytes), the memory map (64 × 24 bytes), then the strings.

/// Writes a multiboot 1 information block into a buffer at a known
/// physical address. Strings are written through the `TextSink` methods
/// between `beginString()` and `endString()`.
public struct Multiboot1Builder: TextSink {
    private let buffer: UnsafeMutableRawBufferPointer
    private let physicalAddress: UInt32
    private var flags: UInt32 = 0
    private var moduleCount = 0
    private var regionCount = 0
    private var stringCursor = Multiboot1Builder.stringsOffset
    private var stringStart = 0
    private var overflowed = false

    static let modulesOffset = 128
    static let memoryMapOffset = 256
    static let stringsOffset = 256 + 64 * 24

    /// The smallest buffer the builder accepts.
    public static let minimumBufferSize = 4096

    /// A builder over `buffer`, which lives at `physicalAddress`; the buffer
    /// is zeroed. Nil if the buffer is smaller than `minimumBufferSize`.
    public init?(buffer: UnsafeMutableRawBufferPointer, physicalAddress: UInt32) {
        guard buffer.count >= Multiboot1Builder.minimumBufferSize,
            UInt64(physicalAddress) + UInt64(buffer.count) <= 0x1_0000_0000
        else { return nil }
        self.buffer = buffer
        self.physicalAddress = physicalAddress
        for i in 0..<buffer.count { buffer[i] = 0 }
    }

    private func store(_ value: UInt32, at offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    private func store64(_ value: UInt64, at offset: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Starts a NUL-terminated string.
    public mutating func beginString() {
        stringStart = stringCursor
    }

    public mutating func put(_ byte: UInt8) {
        // Keep one byte for the terminating NUL.
        guard stringCursor < buffer.count - 1 else {
            overflowed = true
            return
        }
        buffer[stringCursor] = byte
        stringCursor += 1
    }

    /// Terminates the current string and returns its physical address.
    public mutating func endString() -> UInt32 {
        guard stringCursor < buffer.count else {
            overflowed = true
            return physicalAddress + UInt32(stringStart)
        }
        buffer[stringCursor] = 0
        stringCursor += 1
        return physicalAddress + UInt32(stringStart)
    }

    /// Sets mem_lower/mem_upper.
    public mutating func setMemoryLimits(lowerKiB: UInt32, upperKiB: UInt32) {
        store(lowerKiB, at: 4)
        store(upperKiB, at: 8)
        flags |= Multiboot1.flagMemory
    }

    /// Sets the kernel command line to the string at `address`.
    public mutating func setCommandLine(_ address: UInt32) {
        store(address, at: 16)
        flags |= Multiboot1.flagCommandLine
    }

    /// Sets the boot loader name to the string at `address`.
    public mutating func setLoaderName(_ address: UInt32) {
        store(address, at: 64)
        flags |= Multiboot1.flagLoaderName
    }

    /// Appends a memory map entry.
    public mutating func addRegion(_ region: MemoryRegion) {
        guard regionCount < 64 else {
            overflowed = true
            return
        }
        let at = Multiboot1Builder.memoryMapOffset + regionCount * 24
        store(20, at: at)  // size of the entry without this field
        store64(region.base, at: at + 4)
        store64(region.length, at: at + 12)
        store(region.type, at: at + 20)
        regionCount += 1
    }

    /// Appends a module whose command line is the string at `string`.
    public mutating func addModule(start: UInt32, end: UInt32, string: UInt32) {
        guard moduleCount < 8 else {
            overflowed = true
            return
        }
        let at = Multiboot1Builder.modulesOffset + moduleCount * 16
        store(start, at: at)
        store(end, at: at + 4)
        store(string, at: at + 8)
        moduleCount += 1
    }

    /// Writes the counts and flags; returns the block's physical address.
    public mutating func finish() throws(BootStubError) -> UInt32 {
        guard !overflowed else { throw .handoffAreaFull }
        store(UInt32(moduleCount), at: 20)
        store(physicalAddress + UInt32(Multiboot1Builder.modulesOffset), at: 24)
        flags |= Multiboot1.flagModules
        if regionCount > 0 {
            store(UInt32(regionCount * 24), at: 44)
            store(physicalAddress + UInt32(Multiboot1Builder.memoryMapOffset), at: 48)
            flags |= Multiboot1.flagMemoryMap
        }
        store(flags, at: 0)
        return physicalAddress
    }
}
